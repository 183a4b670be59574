//! The Redis options through the binary, as a user sets them (flag,
//! `HERALD_*` variable, config file): the log is really in the Redis they
//! name, under the key they name, with the retention they ask for; what
//! cannot work is refused at start with a message that says why.

mod support;
mod support_options;
use support::redis_server::RedisServer;
use support::TempDir;
use support_options::{assert_refused, publish_ok, run_to_exit, serve, start, KEY};

/// `herald serve` keyed with [`KEY`], its history in Redis at `url`, plus
/// `extra`.
fn on_redis(url: &str, extra: &[&str]) -> tokio::process::Command {
    let mut cmd = serve(&["--jwt-key", KEY, "--history", "redis", "--redis-url", url]);
    cmd.args(extra);
    cmd
}

#[tokio::test]
async fn the_log_goes_to_the_redis_and_key_given_by_flag_environment_or_file() {
    let redis = RedisServer::start("options-where");
    let url = redis.url();

    let hub = start(on_redis(&url, &["--redis-key", "by-flag"])).await;
    publish_ok(&hub, "topic=t&id=one").await;
    assert_eq!(redis.cli(&["XLEN", "{by-flag}:log"]).trim(), "1");

    let mut from_env = serve(&["--jwt-key", KEY]);
    from_env
        .env("HERALD_HISTORY", "redis")
        .env("HERALD_REDIS_URL", &url)
        .env("HERALD_REDIS_KEY", "by-env")
        .env("HERALD_HISTORY_SIZE", "2");
    let hub = start(from_env).await;
    for id in ["a", "b", "c"] {
        publish_ok(&hub, &format!("topic=t&id={id}")).await;
    }
    assert_eq!(
        redis.cli(&["XLEN", "{by-env}:log"]).trim(),
        "2",
        "--history-size trims the stream"
    );

    let dir = TempDir::new("options-redis-file");
    let file = dir.join("herald.toml");
    std::fs::write(
        &file,
        format!("history = \"redis\"\nredis-url = \"{url}\"\nredis-key = \"by-file\"\nredis-timeout = \"2s\"\n"),
    )
    .unwrap();
    let hub = start(serve(&[
        "--jwt-key",
        KEY,
        "--config",
        file.to_str().unwrap(),
    ]))
    .await;
    publish_ok(&hub, "topic=t&id=one").await;
    assert_eq!(redis.cli(&["XLEN", "{by-file}:log"]).trim(), "1");
}

#[tokio::test]
async fn options_that_cannot_work_with_redis_are_refused_at_start() {
    let redis = RedisServer::start("options-refused");
    let url = redis.url();
    let base = ["--jwt-key", KEY, "--history", "redis"];
    let refused = |extra: &'static [&'static str], url: Option<String>| {
        let mut args: Vec<String> = base.iter().map(|s| s.to_string()).collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        if let Some(url) = url {
            args.extend(["--redis-url".to_string(), url]);
        }
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run_to_exit(serve(&args)).await
        }
    };

    let out = refused(&[], None).await;
    assert_refused(&out, "--history redis needs --redis-url");
    let out = refused(&["--history-size", "0"], Some(url.clone())).await;
    assert_refused(&out, "--history-size 0 cannot work with --history redis");
    let out = refused(&["--durability", "periodic"], Some(url.clone())).await;
    assert_refused(&out, "--durability applies to --history redb only");
    let out = refused(&["--redis-timeout", "soon"], Some(url.clone())).await;
    assert_refused(&out, "invalid --redis-timeout \"soon\"");
    let out = refused(&["--redis-node-lease", "10ms"], Some(url.clone())).await;
    assert_refused(
        &out,
        "invalid --redis-node-lease \"10ms\": use at least 300ms",
    );
    let out = refused(&["--redis-key", "a{b}"], Some(url.clone())).await;
    assert_refused(&out, "invalid --redis-key");
    let out = refused(
        &[],
        Some("redis+sentinel://127.0.0.1:26379/mymaster".into()),
    )
    .await;
    assert_refused(&out, "Sentinel URLs are not supported");

    // Redis options without the Redis history are a mistake, said so.
    let out = run_to_exit(serve(&["--jwt-key", KEY, "--redis-url", &url])).await;
    assert_refused(&out, "--redis-url applies to --history redis only");
}

#[tokio::test]
async fn an_unreachable_redis_stops_the_start_naming_it_without_its_password() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = format!("redis://herald:hunter2@127.0.0.1:{port}/0");
    let out = run_to_exit(on_redis(&url, &["--redis-timeout", "2s"])).await;
    let stderr = assert_refused(&out, "cannot open the shared history");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(!stderr.contains("hunter2"), "the password leaked: {stderr}");
}
