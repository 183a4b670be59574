//! Several hubs: the nodes of one Herald cluster, loaded in one run.
//!
//! `--hub` may be repeated. With N hubs, subscriber `i` subscribes on hub
//! `i mod N` and publishing connection `j` publishes to hub `j mod N`, so
//! every node holds its share of the subscribers and takes its share of
//! the publishes; in a cluster every subscriber still receives every
//! event, whichever node it was published on, so the accounting (one
//! sequence per topic and publishing connection) stays exact. In a
//! reconnect storm a subscriber resumes on the next hub (`(i + 1) mod N`),
//! with the `Last-Event-ID` it got from the one before, unless
//! `--resume-same-hub`. The assignment lives here, in two functions, so
//! subscribers in any process, publishers and the tests agree on it.
//!
//! `--sub-url` and `--pub-url` describe one server of another kind and are
//! refused with several hubs; `--hub-pid`, when given, names one process
//! per hub, in the order of `--hub`.

use anyhow::bail;

use super::BenchArgs;

/// The hub (an index into the hub list) that subscriber or publishing
/// connection `index` uses: `index mod hubs`.
pub(crate) fn assigned_hub(index: usize, hubs: usize) -> usize {
    index % hubs.max(1)
}

/// The hub a subscriber on `hub` resumes on when it resumes elsewhere: the
/// next one, wrapping around.
pub(crate) fn next_hub(hub: usize, hubs: usize) -> usize {
    (hub + 1) % hubs.max(1)
}

/// How many hubs (servers) the run loads, once the flags are found to make
/// sense together: the number of `--hub`, or one with the templates.
pub(crate) fn count(args: &BenchArgs) -> anyhow::Result<usize> {
    let hubs = args.hubs.len();
    if hubs > 1 && (args.sub_url.is_some() || args.pub_url.is_some()) {
        bail!(
            "--sub-url and --pub-url address one server: give them with at most one --hub (several --hub are the nodes of a Herald cluster, and need no templates)"
        );
    }
    let hubs = hubs.max(1);
    let pids = args.hub_pids.len();
    if pids > 0 && pids != hubs {
        bail!(
            "{pids} --hub-pid for {hubs} hub(s): give one --hub-pid per --hub, in the same order"
        );
    }
    Ok(hubs)
}

/// The endpoint of each `--hub`, normalized as `herald pub` and `herald sub`
/// do: a base URL gets `/.well-known/mercure`.
pub(crate) fn endpoints(args: &BenchArgs) -> anyhow::Result<Vec<String>> {
    if args.hubs.is_empty() {
        bail!("no --hub given");
    }
    args.hubs
        .iter()
        .map(|hub| crate::publish::hub_endpoint(hub))
        .collect()
}

/// The subscribe URL template of each hub (`{topic}` to be filled), or the
/// one `--sub-url`.
pub(crate) fn sub_urls(args: &BenchArgs) -> anyhow::Result<Vec<String>> {
    if let Some(url) = &args.sub_url {
        return Ok(vec![url.clone()]);
    }
    Ok(endpoints(args)?
        .into_iter()
        .map(|hub| {
            let sep = if hub.contains('?') { '&' } else { '?' };
            format!("{hub}{sep}topic={{topic}}")
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_i_goes_to_hub_i_mod_n_and_resumes_on_the_next() {
        let on: Vec<usize> = (0..7).map(|i| assigned_hub(i, 3)).collect();
        assert_eq!(on, [0, 1, 2, 0, 1, 2, 0]);
        // Resuming on the next hub of one's own is hub (i + 1) mod N.
        for i in 0..12 {
            assert_eq!(next_hub(assigned_hub(i, 6), 6), (i + 1) % 6);
        }
        // One hub: everything on it, and the next one is itself.
        assert_eq!((assigned_hub(5, 1), next_hub(0, 1)), (0, 0));
        // No hub cannot divide by zero.
        assert_eq!((assigned_hub(5, 0), next_hub(0, 0)), (0, 0));
    }
}
