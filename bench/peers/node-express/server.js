// The seeds' design, as a peer for `herald bench`: an Express server that
// keeps every open SSE response in a set per topic and writes a `data:`
// line to each of them on publish. No history, no auth.
//   GET  /sub/:topic   text/event-stream
//   POST /pub/:topic   body = the event's data
// Usage: node server.js [PORT] (default 9300), listening on 127.0.0.1.
'use strict';
const express = require('express');

const port = Number(process.argv[2] || 9300);
const app = express();
const topics = new Map();

app.get('/sub/:topic', (req, res) => {
  res.writeHead(200, {
    'Content-Type': 'text/event-stream',
    'Cache-Control': 'no-cache',
    Connection: 'keep-alive',
  });
  res.write(': ok\n\n');
  const topic = req.params.topic;
  let set = topics.get(topic);
  if (!set) {
    set = new Set();
    topics.set(topic, set);
  }
  set.add(res);
  req.on('close', () => {
    set.delete(res);
  });
});

app.post('/pub/:topic', express.text({ type: '*/*', limit: '1mb' }), (req, res) => {
  const set = topics.get(req.params.topic);
  if (set) {
    const frame = `data: ${req.body}\n\n`;
    for (const sub of set) sub.write(frame);
  }
  res.status(200).end('ok');
});

const server = app.listen(port, '127.0.0.1', () => {
  console.log(`node-express peer listening on http://127.0.0.1:${port}`);
});
server.keepAliveTimeout = 120000;
server.headersTimeout = 125000;
server.requestTimeout = 0;
