//! Publish storms and the subscribers that watch them: the acknowledgements
//! publishers got, and followers that read a topic's events across node
//! failures, resuming with `Last-Event-ID` as a browser would.

use std::io::{ErrorKind, Read, Write};
use std::sync::{Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::http::connect;
use super::DEADLINE;

/// Every publish that got a 200: (publisher, its sequence number, id), in
/// the order the answers came; `grew` is notified on each.
#[derive(Default)]
pub struct Acks {
    pub list: Mutex<Vec<(usize, u64, String)>>,
    grew: Condvar,
}

impl Acks {
    pub fn push(&self, ack: (usize, u64, String)) {
        self.list.lock().unwrap().push(ack);
        self.grew.notify_all();
    }

    /// How many publishes were acknowledged so far.
    pub fn len(&self) -> usize {
        self.list.lock().unwrap().len()
    }

    /// Waits until there are at least `count` acknowledgements.
    pub fn wait_for(&self, count: usize) {
        let deadline = Instant::now() + DEADLINE;
        let mut list = self.list.lock().unwrap();
        while list.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "only {} of {count} publishes acknowledged within {DEADLINE:?}",
                list.len()
            );
            list = self.grew.wait_timeout(list, left).unwrap().0;
        }
    }
}

/// A subscriber on its own thread, reading one topic until an event whose
/// data is its marker. When its stream ends (its node died, say) it
/// resumes on the next node of its list with `Last-Event-ID`, as a browser
/// behind a load balancer would.
pub struct Follower {
    thread: JoinHandle<Followed>,
}

/// What a follower saw: every event as (data, id), and the nodes it read
/// from, in order.
#[derive(Debug)]
pub struct Followed {
    pub events: Vec<(String, String)>,
    pub nodes: Vec<String>,
}

impl Follower {
    /// Subscribes to `topic` on `nodes[0]` (returning once the hub has
    /// answered, so the subscription is registered) and follows it to
    /// `marker`.
    pub fn start(nodes: &[String], topic: &str, marker: &str) -> Follower {
        Follower::subscribe(nodes, &format!("topic={topic}"), &[], marker)
    }

    /// [`Follower::start`] with any subscribe query (`topic=a&topic=b`)
    /// and request headers (a token, say).
    pub fn subscribe(
        nodes: &[String],
        query: &str,
        headers: &[(&str, &str)],
        marker: &str,
    ) -> Follower {
        let request = Request {
            query: query.to_owned(),
            headers: headers
                .iter()
                .map(|(k, v)| format!("{k}: {v}\r\n"))
                .collect(),
        };
        let nodes = nodes.to_vec();
        let first = open(&nodes[0], &request, None).expect("the first node answers");
        let marker = marker.to_owned();
        let thread = std::thread::spawn(move || follow(first, &nodes, &request, &marker));
        Follower { thread }
    }

    /// Waits for the marker; the test fails if the follower panicked.
    pub fn join(self) -> Followed {
        self.thread.join().expect("the follower failed")
    }
}

/// What a follower asks each node for.
struct Request {
    query: String,
    /// Header lines, each ending in CRLF.
    headers: String,
}

/// An open subscription whose events are read one at a time; it hangs
/// up when dropped, as a client whose connection breaks.
pub struct Subscribed {
    tcp: std::net::TcpStream,
    parser: herald_sse::Parser,
}

impl Subscribed {
    /// Subscribes to `topic` on `addr`, returning once the hub has answered
    /// (so the subscription is registered).
    pub fn open(addr: &str, topic: &str) -> Subscribed {
        let request = Request {
            query: format!("topic={topic}"),
            headers: String::new(),
        };
        Subscribed::new(open(addr, &request, None).expect("the node answers"))
    }

    fn new(tcp: std::net::TcpStream) -> Subscribed {
        Subscribed {
            tcp,
            parser: herald_sse::Parser::new(),
        }
    }

    /// The next event as (data, id); `None` once the stream ended or broke.
    pub fn next_event(&mut self) -> Option<(String, String)> {
        let mut buf = [0u8; 16 * 1024];
        loop {
            if let Some(event) = self.parser.next_event() {
                let event = event.expect("the hub's output parses");
                return Some((event.data().to_string(), event.last_event_id().to_string()));
            }
            match self.tcp.read(&mut buf) {
                Ok(0) => return None,
                Ok(n) => self.parser.feed(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
    }

    /// The next `n` events, as (data, id).
    pub fn take(&mut self, n: usize) -> Vec<(String, String)> {
        (0..n)
            .map(|i| {
                self.next_event()
                    .unwrap_or_else(|| panic!("the stream ended after {i} events"))
            })
            .collect()
    }
}

/// A stream for `request` on `addr` (HTTP/1.0: the body is the raw event
/// stream) from `last_event_id`, once its head arrived; `None` when the
/// node does not answer with a 200.
fn open(addr: &str, request: &Request, last_event_id: Option<&str>) -> Option<std::net::TcpStream> {
    let mut tcp = connect(addr).ok()?;
    let resume = last_event_id
        .map(|id| format!("last-event-id: {id}\r\n"))
        .unwrap_or_default();
    write!(
        tcp,
        "GET /.well-known/mercure?{} HTTP/1.0\r\nhost: {addr}\r\n{}{resume}\r\n",
        request.query, request.headers
    )
    .ok()?;
    // The head, a byte at a time so that no event is consumed with it.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match tcp.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    (head.starts_with(b"HTTP/1.0 200") || head.starts_with(b"HTTP/1.1 200")).then_some(tcp)
}

fn follow(tcp: std::net::TcpStream, nodes: &[String], request: &Request, marker: &str) -> Followed {
    let mut followed = Followed {
        events: Vec::new(),
        nodes: vec![nodes[0].clone()],
    };
    let mut node = 0;
    let mut last_id = String::new();
    let deadline = Instant::now() + 4 * DEADLINE;
    let mut stream = Subscribed::new(tcp);
    loop {
        while let Some((data, id)) = stream.next_event() {
            last_id = id;
            if data == marker {
                return followed;
            }
            followed.events.push((data, last_id.clone()));
        }
        // The stream ended: resume on the next node that answers.
        stream = loop {
            assert!(
                Instant::now() < deadline,
                "no node took the follower back: {followed:?}"
            );
            node = (node + 1) % nodes.len();
            let resume = Some(last_id.as_str()).filter(|id| !id.is_empty());
            if let Some(tcp) = open(&nodes[node], request, resume) {
                followed.nodes.push(nodes[node].clone());
                break Subscribed::new(tcp);
            }
            std::thread::sleep(Duration::from_millis(50));
        };
    }
}
