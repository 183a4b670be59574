#!/usr/bin/env node
// Summarizes a bench/compare.sh run: reads DIR/SCENARIO-PEER.json (herald
// bench reports) and prints Markdown tables, one per scenario. The runs
// listed in DIR/failed.txt (herald bench exited non-zero) are named first
// and marked "(failed)" in the tables.
//   node bench/summarize.js DIR
'use strict';
const fs = require('fs');
const path = require('path');

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node bench/summarize.js DIR');
  process.exit(2);
}
const failedFile = path.join(dir, 'failed.txt');
const failed = fs.existsSync(failedFile)
  ? fs.readFileSync(failedFile, 'utf8').split('\n').map((l) => l.trim()).filter(Boolean)
  : [];
const unreadable = [];
const reports = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .flatMap((f) => {
    try {
      return [JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'))];
    } catch (e) {
      unreadable.push(`${f} (${e.message})`);
      return [];
    }
  });

const num = (v, d = 0) => (v === null || v === undefined ? '?' : Number(v).toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }));
const ms = (v) => (v === undefined ? '?' : num(v, 2));
const kib = (v) => (v === null || v === undefined ? '?' : num(v / 1024, 1) + ' MiB');
const by = (scenario) => reports.filter((r) => r.scenario === scenario);
const lossCell = (r) => `${r.totals.lost} / ${r.totals.duplicates}`;
const mem = (r) => r.memory || {};
const peer = (r) => (failed.includes(`${r.scenario}-${r.target}`) ? `${r.target} (failed)` : r.target);

const out = [];
const machine = path.join(dir, 'machine.txt');
if (fs.existsSync(machine)) {
  out.push('```', fs.readFileSync(machine, 'utf8').trim(), '```', '');
}
if (failed.length) {
  out.push(`**Failed runs** (herald bench exited non-zero: losses, duplicates or errors; see SCENARIO-PEER.txt and .bench.log): ${failed.join(', ')}`, '');
}
if (unreadable.length) {
  out.push(`**Unreadable reports**: ${unreadable.join(', ')}`, '');
}

const fanout = by('fanout');
if (fanout.length) {
  out.push(`### fan-out: ${fanout[0].subscribers.toLocaleString('en-US')} subscribers on one topic, rate ramped to saturation`, '');
  out.push('| peer | peak deliveries/s | at step | p99 at 1 ev/s (ms) | p50 / p99 / p99.9 / max at peak (ms) | lost / dup | disconnects |');
  out.push('| --- | ---: | --- | ---: | --- | ---: | ---: |');
  for (const r of fanout) {
    const peak = r.steps.reduce((a, s) => (s.deliveries_per_second > (a ? a.deliveries_per_second : -1) ? s : a), null);
    const one = r.steps.find((s) => s.offered_events_per_second === 1);
    out.push(`| ${peer(r)} | ${num(r.peak_deliveries_per_second)} | ${peak ? peak.name : '?'} | ${one ? ms(one.latency.p99_ms) : '?'} | ${peak ? [peak.latency.p50_ms, peak.latency.p99_ms, peak.latency.p999_ms, peak.latency.max_ms].map(ms).join(' / ') : '?'} | ${lossCell(r)} | ${r.totals.disconnects} |`);
  }
  out.push('', 'Each step (deliveries/s, p99 ms):', '');
  for (const r of fanout) {
    out.push(`- ${peer(r)}: ` + r.steps.map((s) => `${s.name} → ${num(s.deliveries_per_second)} (${ms(s.latency.p99_ms)})`).join('; '));
  }
  out.push('');
}

const idle = by('idle');
if (idle.length) {
  out.push(`### idle: ${idle[0].subscribers.toLocaleString('en-US')} idle subscribers, memory per connection`, '');
  out.push('| peer | connected | connect errors | connects/s | RSS start | RSS connected | bytes per subscriber | kernel TCP per subscriber (both ends) |');
  out.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of idle) {
    const m = mem(r);
    out.push(`| ${peer(r)} | ${r.connect.connected} | ${r.connect.errors} | ${num(r.connects_per_second)} | ${kib(m.hub_rss_start_kib)} | ${kib(m.hub_rss_connected_kib)} | ${num(m.hub_bytes_per_subscriber)} | ${num(m.kernel_tcp_bytes_per_subscriber)} |`);
  }
  out.push('');
}

const many = by('many-topics');
if (many.length) {
  out.push(`### many topics: ${many[0].subscribers.toLocaleString('en-US')} subscribers, each on its own topic, random publishes`, '');
  out.push('| peer | offered ev/s | acked/s | deliveries/s | p50 / p99 / p99.9 / max (ms) | lost / dup | RSS connected |');
  out.push('| --- | ---: | ---: | ---: | --- | ---: | ---: |');
  for (const r of many) {
    const s = r.steps[0] || { latency: {} };
    out.push(`| ${peer(r)} | ${num(s.offered_events_per_second)} | ${num(s.acked_per_second)} | ${num(s.deliveries_per_second)} | ${[s.latency.p50_ms, s.latency.p99_ms, s.latency.p999_ms, s.latency.max_ms].map(ms).join(' / ')} | ${lossCell(r)} | ${kib(mem(r).hub_rss_connected_kib)} |`);
  }
  out.push('');
}

const storm = by('storm');
if (storm.length) {
  out.push(`### reconnect storm: ${storm[0].subscribers.toLocaleString('en-US')} subscribers drop at once and resume with Last-Event-ID`, '');
  out.push('| peer | reconnected | in (s) | caught up | in (s) | lost | duplicated | behind at end |');
  out.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of storm) {
    const s = r.storm || {};
    out.push(`| ${peer(r)} | ${s.reconnected}/${s.dropped} | ${num(s.reconnect_seconds, 2)} | ${s.caught_up}/${s.dropped} | ${num(s.caught_up_seconds, 2)} | ${r.totals.lost} | ${r.totals.duplicates} | ${r.totals.behind} |`);
  }
  out.push('');
}

const publish = by('publish');
if (publish.length) {
  out.push('### publish throughput: concurrent publishers, each waiting for its acknowledgement', '');
  out.push('| peer | acknowledged publishes/s | ack p50 / p99 (ms) | deliveries/s | publish errors | RSS end |');
  out.push('| --- | ---: | --- | ---: | ---: | ---: |');
  for (const r of publish) {
    const s = r.steps[0] || { publish: { ack_latency: {} } };
    out.push(`| ${peer(r)} | ${num(s.acked_per_second)} | ${ms(s.publish.ack_latency.p50_ms)} / ${ms(s.publish.ack_latency.p99_ms)} | ${num(s.deliveries_per_second)} | ${r.publish_errors} | ${kib(mem(r).hub_rss_end_kib)} |`);
  }
  out.push('');
}

console.log(out.join('\n'));
