//! A hub node of a cluster: `herald serve --history redis` on a test's own
//! redis-server.

use super::redis_server::RedisServer;
use super::{serve_command, start, Serving};

/// The JWT key every cluster test's nodes share.
pub const CLUSTER_KEY: &str = "cluster-test-secret-cluster-test-secret";

/// Starts a node on `redis`'s log (anonymous subscribers, [`CLUSTER_KEY`])
/// with `extra` options, and waits until it serves.
pub fn redis_node(redis: &RedisServer, extra: &[&str]) -> Serving {
    let url = redis.url();
    let mut args = vec![
        "--listen",
        "127.0.0.1:0",
        "--anonymous",
        "--history",
        "redis",
        "--redis-url",
        &url,
    ];
    args.extend_from_slice(extra);
    let mut cmd = serve_command(&args);
    cmd.env("HERALD_JWT_KEY", CLUSTER_KEY);
    start(cmd)
}
