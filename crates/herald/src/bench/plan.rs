//! What the options of `herald bench` make: the plan of a run (a
//! scenario's defaults under the flags given) and the publisher's
//! configuration.

use std::time::Duration;

use anyhow::{bail, Context};

use super::http;
use super::hubs;
use super::options::{BenchArgs, Scenario};
use super::publisher::PubConfig;
use super::transport::Transport;

/// The plan a scenario and the flags make.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    pub(super) subscribers: usize,
    pub(super) topics: usize,
    /// Rates of the steps; `None` in a step: as fast as possible.
    pub(super) steps: Vec<Option<f64>>,
    pub(super) step: Duration,
    pub(super) events: Option<u64>,
    pub(super) publishers: usize,
    pub(super) window: usize,
    pub(super) storm_gap: Option<Duration>,
    /// Publish nothing; hold the connections this long.
    pub(super) idle: bool,
    pub(super) ramp: bool,
    /// Hubs (servers) loaded: the number of --hub, or one with templates.
    pub(super) hubs: usize,
    /// In a storm, subscribers resume on the next hub rather than their own.
    pub(super) resume_elsewhere: bool,
    /// The protocol subscribers speak.
    pub(super) transport: Transport,
    /// Subscribers per connection, for HTTP/2.
    pub(super) streams: usize,
}

impl Plan {
    /// Subscribers per HTTP/2 connection (`None` over HTTP/1.1).
    pub(super) fn streams_per_connection(&self) -> Option<usize> {
        self.transport.http2().then_some(self.streams)
    }
}

pub(super) fn plan(args: &BenchArgs) -> anyhow::Result<Plan> {
    use Scenario::*;
    let hubs = hubs::count(args)?;
    let (subs, topics, rates, step, publishers, window): (
        usize,
        usize,
        Vec<Option<f64>>,
        u64,
        usize,
        usize,
    ) = match args.scenario {
        Custom => (1_000, 1, vec![Some(10.0)], 10, 1, 1),
        Idle => (19_500, 1, vec![Some(0.0)], 10, 1, 1),
        Fanout => (
            10_000,
            1,
            [1.0, 10.0, 25.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1600.0]
                .into_iter()
                .map(Some)
                .collect(),
            8,
            16,
            1,
        ),
        ManyTopics => (10_000, 10_000, vec![Some(2_000.0)], 20, 8, 1),
        Storm => (10_000, 1, vec![Some(20.0)], 5, 1, 1),
        Publish => (100, 100, vec![None], 15, 32, 1),
        Soak => (2_000, 100, vec![Some(50.0)], 3_600, 2, 1),
    };
    let mut steps = rates;
    if let Some(rate) = &args.rate {
        steps = vec![match rate.as_str() {
            "max" => None,
            r => Some(
                r.parse::<f64>()
                    .with_context(|| format!("invalid --rate {r:?}: a number or max"))?,
            ),
        }];
    }
    if let Some(ramp) = &args.ramp {
        steps = ramp.iter().map(|r| Some(*r)).collect();
    }
    if steps
        .iter()
        .any(|r| r.is_some_and(|r| !(r >= 0.0 && r.is_finite())))
    {
        bail!("rates must be finite and not negative");
    }
    let subscribers = args.subscribers.unwrap_or(subs);
    if subscribers == 0 {
        bail!("-n/--subscribers must be at least 1: deliveries are measured at subscribers");
    }
    let topics = args.topics.unwrap_or(topics).max(1);
    let idle = steps.iter().all(|r| *r == Some(0.0));
    Ok(Plan {
        subscribers,
        topics,
        ramp: steps.len() > 1,
        steps,
        step: args
            .duration
            .map(Into::into)
            .unwrap_or(Duration::from_secs(step)),
        events: args.events,
        // By default every hub gets a publishing connection of its own.
        publishers: args.publishers.unwrap_or(publishers.max(hubs)).max(1),
        window: args.window.unwrap_or(window).max(1),
        storm_gap: (args.scenario == Storm || args.storm_gap.is_some()).then(|| {
            args.storm_gap
                .map(Into::into)
                .unwrap_or(Duration::from_secs(1))
        }),
        idle,
        hubs,
        resume_elsewhere: hubs > 1 && !args.resume_same_hub,
        transport: Transport::resolve(args.transport, &subscribe_urls(args))?,
        streams: args.streams_per_connection as usize,
    })
}

/// The subscribe URLs as given (their scheme tells HTTP from HTTPS), before
/// [`hubs::sub_urls`] checks them.
fn subscribe_urls(args: &BenchArgs) -> Vec<String> {
    match &args.sub_url {
        Some(url) => vec![url.clone()],
        None => args.hubs.clone(),
    }
}

pub(super) fn pub_config(args: &BenchArgs, plan: &Plan) -> anyhow::Result<PubConfig> {
    let mut headers = Vec::new();
    let (urls, body, content_type) = match &args.pub_url {
        Some(url) => (
            vec![url.clone()],
            args.pub_body.clone().unwrap_or_else(|| "{data}".into()),
            args.pub_content_type
                .clone()
                .unwrap_or_else(|| "text/plain".into()),
        ),
        None => {
            let token = match (&args.token, &args.jwt_key) {
                (Some(t), _) => Some(t.clone()),
                (None, Some(key)) => Some(
                    crate::token::sign(
                        jsonwebtoken::Algorithm::HS256,
                        key.as_bytes(),
                        &["*".to_owned()],
                        &[],
                        "none",
                        None,
                    )
                    .context("cannot mint a publisher token")?,
                ),
                (None, None) => None,
            };
            if let Some(token) = token {
                headers.push(("Authorization".into(), format!("Bearer {token}")));
            }
            (
                hubs::endpoints(args)?,
                args.pub_body
                    .clone()
                    .unwrap_or_else(|| "topic={topic}&data={data}".into()),
                args.pub_content_type
                    .clone()
                    .unwrap_or_else(|| "application/x-www-form-urlencoded".into()),
            )
        }
    };
    let mut tls = false;
    for url in &urls {
        tls |= http::Url::parse(&http::fill(url, "t", "", true))
            .context("invalid publish URL")?
            .tls;
    }
    let tls = tls
        .then(|| args.tls().connector(&[b"http/1.1"]))
        .transpose()?;
    Ok(PubConfig {
        tls,
        urls,
        method: args.pub_method.clone(),
        body,
        content_type,
        headers,
        topic_prefix: args.topic_prefix.clone(),
        topics: plan.topics,
        window: plan.window,
        payload: args.payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn args(extra: &[&str]) -> BenchArgs {
        Cli::parse_from(std::iter::once("bench").chain(extra.iter().copied())).args
    }

    /// The one subscribe URL of a run against one server.
    fn sub_url(a: &BenchArgs) -> anyhow::Result<String> {
        let mut urls = hubs::sub_urls(a)?;
        assert_eq!(urls.len(), 1, "{urls:?}");
        Ok(urls.remove(0))
    }

    #[test]
    fn scenarios_set_defaults_and_flags_win() {
        let p = plan(&args(&["--scenario", "fanout"])).unwrap();
        assert_eq!((p.subscribers, p.topics), (10_000, 1));
        assert!(p.ramp && p.steps.len() > 3);
        let p = plan(&args(&["--scenario", "fanout", "-n", "50", "--rate", "5"])).unwrap();
        assert_eq!(p.subscribers, 50);
        assert_eq!(p.steps, vec![Some(5.0)]);
        assert!(!p.ramp);
        let p = plan(&args(&["--scenario", "idle"])).unwrap();
        assert!(p.idle);
        let p = plan(&args(&["--scenario", "storm"])).unwrap();
        assert_eq!(p.storm_gap, Some(Duration::from_secs(1)));
        let p = plan(&args(&["--scenario", "publish"])).unwrap();
        assert_eq!(p.steps, vec![None]);
        let p = plan(&args(&["--scenario", "soak"])).unwrap();
        assert_eq!(
            (p.step, p.steps.clone()),
            (Duration::from_secs(3600), vec![Some(50.0)])
        );
        let p = plan(&args(&["--scenario", "soak", "--duration", "5s"])).unwrap();
        assert_eq!(p.step, Duration::from_secs(5));
        assert!(plan(&args(&["--rate", "fast"])).is_err());
        assert!(plan(&args(&["--rate=-1"])).is_err());
        let err = plan(&args(&["-n", "0"])).unwrap_err();
        assert!(err.to_string().contains("at least 1"), "{err}");
    }

    #[test]
    fn urls_default_to_mercure_and_templates_are_taken_as_given() {
        let a = args(&[]);
        assert_eq!(
            sub_url(&a).unwrap(),
            "http://127.0.0.1:8080/.well-known/mercure?topic={topic}"
        );
        let c = pub_config(&a, &plan(&a).unwrap()).unwrap();
        assert_eq!(c.body, "topic={topic}&data={data}");
        assert!(c.headers.is_empty());
        let a = args(&[
            "--sub-url",
            "http://127.0.0.1:9/sub/{topic}",
            "--pub-url",
            "http://127.0.0.1:9/pub/{topic}",
        ]);
        assert_eq!(sub_url(&a).unwrap(), "http://127.0.0.1:9/sub/{topic}");
        let c = pub_config(&a, &plan(&a).unwrap()).unwrap();
        assert_eq!(
            (c.body.as_str(), c.content_type.as_str()),
            ("{data}", "text/plain")
        );
        let a = args(&["--jwt-key", "secret"]);
        let c = pub_config(&a, &plan(&a).unwrap()).unwrap();
        assert!(c.headers[0].1.starts_with("Bearer ey"));
        assert!(pub_config(
            &args(&["--hub", "http://10.1.1.1/"]),
            &plan(&args(&[])).unwrap()
        )
        .is_err());
    }

    #[test]
    fn the_transport_follows_the_hub_and_https_hubs_need_trust() {
        let p = plan(&args(&[])).unwrap();
        assert_eq!(
            (p.transport, p.streams_per_connection()),
            (Transport::Http1, None)
        );
        let h2c = args(&["--transport", "h2c", "--streams-per-connection", "250"]);
        let p = plan(&h2c).unwrap();
        assert_eq!(
            (p.transport, p.streams_per_connection()),
            (Transport::H2c, Some(250))
        );
        assert!(pub_config(&h2c, &p).unwrap().tls.is_none());
        let https = ["--hub", "https://127.0.0.1:8443"];
        let p = plan(&args(&https)).unwrap();
        assert_eq!(p.transport, Transport::Https);
        let p = plan(&args(&[&https[..], &["--transport", "h2"]].concat())).unwrap();
        assert_eq!(
            (p.transport, p.streams_per_connection()),
            (Transport::H2, Some(100))
        );
        // Publishers go over TLS too, trusting what subscribers trust.
        let err = pub_config(&args(&https), &p).unwrap_err().to_string();
        assert!(
            err.contains("--cacert") && err.contains("--insecure"),
            "{err}"
        );
        let insecure = args(&[&https[..], &["--insecure"]].concat());
        assert!(pub_config(&insecure, &p).unwrap().tls.is_some());
        assert!(plan(&args(&["--transport", "h2"])).is_err());
        assert!(Cli::try_parse_from(["bench", "--streams-per-connection", "0"]).is_err());
    }

    #[test]
    fn a_hub_base_url_gets_the_mercure_path_as_for_herald_pub() {
        for hub in ["http://127.0.0.1:8080", "http://127.0.0.1:8080/"] {
            let a = args(&["--hub", hub]);
            assert_eq!(
                sub_url(&a).unwrap(),
                "http://127.0.0.1:8080/.well-known/mercure?topic={topic}"
            );
            let c = pub_config(&a, &plan(&a).unwrap()).unwrap();
            assert_eq!(c.urls, ["http://127.0.0.1:8080/.well-known/mercure"]);
        }
        let a = args(&["--hub", "http://127.0.0.1:8080/custom?x=1"]);
        assert_eq!(
            sub_url(&a).unwrap(),
            "http://127.0.0.1:8080/custom?x=1&topic={topic}"
        );
        assert!(sub_url(&args(&["--hub", "127.0.0.1:8080"])).is_err());
        // Templates for other servers are not touched.
        let a = args(&["--hub", "nonsense", "--sub-url", "http://127.0.0.1:9/"]);
        assert_eq!(sub_url(&a).unwrap(), "http://127.0.0.1:9/");
    }

    #[test]
    fn hub_repeats_for_the_nodes_of_a_cluster() {
        // No --hub: the one default; one --hub replaces it.
        let p = plan(&args(&[])).unwrap();
        assert_eq!((p.hubs, p.resume_elsewhere, p.publishers), (1, false, 1));
        let a = args(&["--hub", "http://127.0.0.1:9611"]);
        assert_eq!(a.hubs, ["http://127.0.0.1:9611"]);
        assert_eq!(plan(&a).unwrap().hubs, 1);

        let two = [
            "--hub",
            "http://127.0.0.1:9611",
            "--hub",
            "http://127.0.0.1:9612/",
        ];
        let a = args(&two);
        let p = plan(&a).unwrap();
        assert_eq!(p.hubs, 2);
        // A storm resumes elsewhere unless told not to.
        assert!(p.resume_elsewhere);
        let a = args(&[&two[..], &["--resume-same-hub"]].concat());
        assert!(!plan(&a).unwrap().resume_elsewhere);
        // Every hub gets a publishing connection by default; flags win.
        let six: Vec<String> = (9401..=9406)
            .flat_map(|port| ["--hub".to_owned(), format!("http://127.0.0.1:{port}")])
            .collect();
        let six: Vec<&str> = six.iter().map(String::as_str).collect();
        assert_eq!(plan(&args(&six)).unwrap().publishers, 6);
        let fanout = args(&[&six[..], &["--scenario", "fanout"]].concat());
        assert_eq!(plan(&fanout).unwrap().publishers, 16);
        let one = args(&[&six[..], &["--publishers", "1"]].concat());
        assert_eq!(plan(&one).unwrap().publishers, 1);
    }

    #[test]
    fn subscribers_and_publishers_spread_over_the_hubs() {
        let a = args(&[
            "--hub",
            "http://127.0.0.1:9611",
            "--hub",
            "http://127.0.0.1:9612/.well-known/mercure",
            "--hub",
            "http://127.0.0.1:9613/custom?x=1",
        ]);
        let subs = hubs::sub_urls(&a).unwrap();
        assert_eq!(
            subs,
            [
                "http://127.0.0.1:9611/.well-known/mercure?topic={topic}",
                "http://127.0.0.1:9612/.well-known/mercure?topic={topic}",
                "http://127.0.0.1:9613/custom?x=1&topic={topic}",
            ]
        );
        // Subscriber i on hub i mod 3.
        let on: Vec<&str> = (0..4)
            .map(|i| subs[hubs::assigned_hub(i, subs.len())].as_str())
            .collect();
        assert_eq!(on, [&subs[0], &subs[1], &subs[2], &subs[0]]);
        // Publishing connection j to hub j mod 3.
        let c = pub_config(&a, &plan(&a).unwrap()).unwrap();
        let to: Vec<&str> = (0..5).map(|j| c.url_of(j)).collect();
        assert_eq!(
            to,
            [
                "http://127.0.0.1:9611/.well-known/mercure",
                "http://127.0.0.1:9612/.well-known/mercure",
                "http://127.0.0.1:9613/custom?x=1",
                "http://127.0.0.1:9611/.well-known/mercure",
                "http://127.0.0.1:9612/.well-known/mercure",
            ]
        );
        // One bad hub among several is refused.
        let a = args(&["--hub", "http://127.0.0.1:9611", "--hub", "9612"]);
        assert!(hubs::sub_urls(&a).is_err());
        assert!(pub_config(&a, &plan(&a).unwrap()).is_err());
    }

    #[test]
    fn several_hubs_refuse_templates_and_want_one_pid_each() {
        let two = [
            "--hub",
            "http://127.0.0.1:9611",
            "--hub",
            "http://127.0.0.1:9612",
        ];
        for template in ["--sub-url", "--pub-url"] {
            let a = args(&[&two[..], &[template, "http://127.0.0.1:9/{topic}"]].concat());
            let err = plan(&a).unwrap_err().to_string();
            assert!(
                err.contains("--sub-url and --pub-url address one server"),
                "{err}"
            );
        }
        // One server of another kind with a template is as before.
        let a = args(&["--sub-url", "http://127.0.0.1:9/{topic}", "--hub-pid", "7"]);
        assert_eq!(plan(&a).unwrap().hubs, 1);

        let a = args(&[&two[..], &["--hub-pid", "7", "--hub-pid", "8"]].concat());
        assert_eq!(a.hub_pids, [7, 8]);
        assert!(plan(&a).is_ok());
        let three = ["--hub-pid", "7", "--hub-pid", "8", "--hub-pid", "9"];
        for pids in [&three[..2], &three[..]] {
            let a = args(&[&two[..], pids].concat());
            let err = plan(&a).unwrap_err().to_string();
            assert!(err.contains("one --hub-pid per --hub"), "{err}");
        }
        let a = args(&["--hub-pid", "7", "--hub-pid", "8"]);
        let err = plan(&a).unwrap_err().to_string();
        assert!(err.contains("2 --hub-pid for 1 hub(s)"), "{err}");
    }
}
