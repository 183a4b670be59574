//! The roster of a shared log ([`Roster`]) in Redis.
//!
//! Keys, beside the log's: `{PREFIX}:nodes`, a sorted set of node names
//! scored by when their lease ends (milliseconds, Redis's clock, so nodes
//! need no synchronised clocks); `{PREFIX}:roster:{NODE}`, a hash of the
//! node's records by topic; `{PREFIX}:ending:{NODE}`, the claim of the node
//! that is ending a lapsed node's subscriptions. The scripts build the
//! per-node key names themselves, which is fine on the standalone servers
//! this backend accepts (Redis Cluster is refused at connect).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::Script;

use super::Inner;
use crate::history::{HistoryError, Lease, Orphans, Roster};

/// How long a claim on a lapsed node's records lasts: enough to publish
/// the end of thousands of subscriptions; a node that dies while ending
/// them leaves the rest to whoever claims after it.
const CLAIM: Duration = Duration::from_secs(30);

const NOW: &str = "local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
";

/// KEYS: nodes, this node's claim key. ARGV: node, lease (ms).
/// Returns 0 held, 1 lapsed, 2 lapsed and being ended.
const RENEW: &str = "
local was = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
if redis.call('EXISTS', KEYS[2]) == 1 then return 2 end
if (not was) or tonumber(was) < now then return 1 end
return 0
";

/// KEYS: nodes. ARGV: prefix, this node, claim (ms).
/// Returns nil or {node, {records...}}.
const CLAIM_LAPSED: &str = "
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now, 'LIMIT', 0, 16)
for _, node in ipairs(lapsed) do
  if node ~= ARGV[2] then
    local ending = '{' .. ARGV[1] .. '}:ending:' .. node
    if redis.call('SET', ending, ARGV[2], 'NX', 'PX', ARGV[3]) then
      return {node, redis.call('HVALS', '{' .. ARGV[1] .. '}:roster:' .. node)}
    end
  end
end
return false
";

/// KEYS: nodes, the node's roster, the node's claim key. ARGV: node.
const RELEASE: &str = "
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if (not score) or tonumber(score) < now then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('DEL', KEYS[2])
end
redis.call('DEL', KEYS[3])
return 1
";

/// KEYS: nodes. ARGV: prefix. Returns the records of every live node.
const LOAD: &str = "
local records = {}
for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')) do
  for _, record in ipairs(redis.call('HVALS', '{' .. ARGV[1] .. '}:roster:' .. node)) do
    records[#records + 1] = record
  end
end
return records
";

/// This node's place in the roster of the log at `inner`.
#[derive(Debug)]
pub(super) struct RedisRoster {
    inner: Arc<Inner>,
    node: String,
    nodes: String,
    records: String,
    lease: Duration,
    renew: Script,
    claim: Script,
    release: Script,
    load: Script,
}

impl RedisRoster {
    /// A new node (a random name: every start is a new incarnation, and
    /// the previous one's records are ended by whoever sees its lease
    /// lapse), holding its lease for `lease` after each renewal.
    pub(super) fn new(inner: Arc<Inner>, lease: Duration) -> RedisRoster {
        let node = uuid::Uuid::new_v4().simple().to_string();
        let prefix = &inner.options.key_prefix;
        RedisRoster {
            nodes: format!("{{{prefix}}}:nodes"),
            records: format!("{{{prefix}}}:roster:{node}"),
            node,
            lease,
            renew: Script::new(&format!("{NOW}{RENEW}")),
            claim: Script::new(&format!("{NOW}{CLAIM_LAPSED}")),
            release: Script::new(&format!("{NOW}{RELEASE}")),
            load: Script::new(&format!("{NOW}{LOAD}")),
            inner,
        }
    }

    fn prefix(&self) -> &str {
        &self.inner.options.key_prefix
    }

    fn claim_key(&self, node: &str) -> String {
        format!("{{{}}}:ending:{node}", self.prefix())
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, HistoryError> {
        let mut conn = self.inner.conn.clone();
        self.inner
            .bounded(
                self.inner.options.timeout,
                invocation.invoke_async(&mut conn),
            )
            .await
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[async_trait]
impl Roster for RedisRoster {
    fn node(&self) -> &str {
        &self.node
    }

    fn lease(&self) -> Duration {
        self.lease
    }

    async fn enter(&self, records: &[(String, String)]) -> Result<(), HistoryError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut hset = redis::cmd("HSET");
        hset.arg(&self.records);
        for (topic, record) in records {
            hset.arg(topic).arg(record);
        }
        self.inner.query(&hset).await
    }

    async fn leave(&self, topics: &[String]) -> Result<(), HistoryError> {
        if topics.is_empty() {
            return Ok(());
        }
        self.inner
            .query(redis::cmd("HDEL").arg(&self.records).arg(topics))
            .await
    }

    async fn load(&self) -> Result<Vec<String>, HistoryError> {
        let mut invocation = self.load.prepare_invoke();
        invocation.key(&self.nodes).arg(self.prefix());
        self.run(&invocation).await
    }

    async fn renew(&self) -> Result<Lease, HistoryError> {
        let mut invocation = self.renew.prepare_invoke();
        invocation
            .key(&self.nodes)
            .key(self.claim_key(&self.node))
            .arg(&self.node)
            .arg(millis(self.lease));
        Ok(match self.run::<u8>(&invocation).await? {
            0 => Lease::Held,
            1 => Lease::Lapsed,
            _ => Lease::BeingEnded,
        })
    }

    async fn claim_lapsed(&self) -> Result<Option<Orphans>, HistoryError> {
        let mut invocation = self.claim.prepare_invoke();
        invocation
            .key(&self.nodes)
            .arg(self.prefix())
            .arg(&self.node)
            .arg(millis(CLAIM));
        let claimed: Option<(String, Vec<String>)> = self.run(&invocation).await?;
        Ok(claimed.map(|(node, records)| Orphans { node, records }))
    }

    async fn release(&self, node: &str) -> Result<(), HistoryError> {
        let mut invocation = self.release.prepare_invoke();
        invocation
            .key(&self.nodes)
            .key(format!("{{{}}}:roster:{node}", self.prefix()))
            .key(self.claim_key(node))
            .arg(node);
        self.run::<u8>(&invocation).await.map(drop)
    }
}
