//! `herald serve`: runs the hub.
//!
//! Options come from flags, `HERALD_*` environment variables and an
//! optional TOML file, in that order of precedence; every option has a
//! default that gives a working hub. With no JWT key on a loopback address
//! the hub starts in development mode: it makes a key for the run, prints a
//! publisher token and examples, and admits anonymous subscribers.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::{bail, Context};
use herald_hub::server::{Server, TlsConfig, DEFAULT_H2_MAX_STREAMS};
use herald_hub::{Hub, HUB_PATH};

use args::{DEFAULT_LISTEN, DEFAULT_LISTEN_BACKLOG, MAX_LISTEN_BACKLOG};
use config::{default_hub_url, hub_config};
use dev::print_dev_banner;
use history::open_history;

mod args;
mod config;
mod dev;
mod history;
mod issuers;

/// The default of `--drain`: long enough to spread a node's reconnections
/// over the other nodes, short enough for an orchestrator's grace period
/// (Kubernetes gives 30 s).
const DEFAULT_DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// How long a stopping hub waits for the end of its subscriptions to be
/// announced (one publish each, milliseconds unless history is down).
const SETTLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

pub(crate) use args::ServeArgs;

/// Runs the hub until SIGINT or SIGTERM.
pub(crate) fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let args = args.merge_file()?;
    init_logging(args.log.as_deref().unwrap_or("info"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args))?;
    Ok(ExitCode::SUCCESS)
}

fn init_logging(filter: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .with_context(|| format!("invalid --log filter {filter:?}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let listen: SocketAddr = match args.listen {
        Some(addr) => addr,
        None => DEFAULT_LISTEN.parse()?,
    };
    let backlog = listen_backlog(&args)?;
    let (mut config, dev) = hub_config(&args, listen)?;
    // Every option is checked before the history is opened, which creates
    // the data directory: a bad option leaves nothing behind.
    let tls = tls_config(&args, listen)?;
    // The handlers are installed before the hub says it is listening: a
    // signal at any moment after that line is a graceful stop, never the
    // default action that kills the process.
    let signals = ShutdownSignals::install()?;
    let listener = bind(listen, backlog).with_context(|| {
        format!(
            "cannot listen on {listen} (is another process using it? choose another with --listen)"
        )
    })?;
    let local = listener.local_addr()?;
    if args.hub_url.is_none() {
        // The address bound, not the one asked for: `--listen …:0` picks
        // the port only now.
        config.hub_url = default_hub_url(&args, local)?;
        if let (Some(tokens), None) = (&mut config.access_tokens, &args.resource) {
            tokens.resource = config.hub_url.to_string();
        }
    }
    let history = open_history(&args).await?;
    let hub = Hub::with_history(config, history).context("cannot start the hub")?;
    let mut server = Server::new(&hub)
        .h2_max_concurrent_streams(args.h2_max_streams.unwrap_or(DEFAULT_H2_MAX_STREAMS));
    if let Some(tls) = &tls {
        server = server.tls(tls).context("cannot serve HTTPS")?;
    }
    let drain = match args.drain.as_deref() {
        None => DEFAULT_DRAIN,
        Some(text) => humantime::parse_duration(text)
            .with_context(|| format!("invalid --drain {text:?}: use e.g. 5s, 500ms or 0"))?,
    };
    let stop = {
        let hub = hub.clone();
        let mut signals = signals;
        async move {
            signals.recv().await;
            tracing::info!(
                drain = ?drain,
                "shutting down: refusing new streams, ending open ones over the drain window, finishing in-flight publishes"
            );
            // A second signal cuts the drain short.
            tokio::select! {
                () = hub.drain(drain) => {}
                () = signals.recv() => {
                    tracing::info!("second signal: ending every stream now");
                    hub.shutdown();
                }
            }
        }
    };
    // Said last, once nothing else can fail the start.
    let self_signed = tls.as_ref().filter(|_| args.tls_self_signed == Some(true));
    announce_ready(
        local,
        tls.is_some(),
        dev.as_ref(),
        hub.config().ui,
        self_signed,
    );
    server
        .serve(listener, stop)
        .await
        .context("the server failed")?;
    // The streams just ended: their `active: false` events are on their way
    // to history, and a graceful stop should not cut them off.
    if !hub.settle(SETTLE_LIMIT).await {
        tracing::warn!("stopped before every subscription's end was announced");
    }
    tracing::info!("stopped");
    Ok(())
}

/// The listen backlog the options ask for, checked.
fn listen_backlog(args: &ServeArgs) -> anyhow::Result<u32> {
    let backlog = args.listen_backlog.unwrap_or(DEFAULT_LISTEN_BACKLOG);
    if backlog == 0 || backlog > MAX_LISTEN_BACKLOG {
        bail!("invalid --listen-backlog {backlog}: use 1 to {MAX_LISTEN_BACKLOG} (the kernel caps it at net.core.somaxconn)");
    }
    Ok(backlog)
}

/// A listener on `addr` with room for `backlog` connections not yet
/// accepted (`TcpListener::bind` always asks for mio's fixed 1024). Like std, it sets
/// SO_REUSEADDR on Unix, so a restart does not wait out the old sockets'
/// TIME_WAIT.
fn bind(addr: SocketAddr, backlog: u32) -> std::io::Result<tokio::net::TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Says the hub is ready, in development mode with the banner (stdout),
/// otherwise with the log line "Herald hub listening on URL" (stderr): the
/// one statement of readiness, made once the listener is bound and the
/// signal handlers are installed. Connections that arrive from then on wait
/// in the listener's backlog until the accept loop takes them.
fn announce_ready(
    local: SocketAddr,
    https: bool,
    dev: Option<&dev::DevMode>,
    ui: bool,
    self_signed: Option<&TlsConfig>,
) {
    let scheme = if https { "https" } else { "http" };
    match dev {
        Some(dev) => print_dev_banner(scheme, local, dev, ui),
        None => tracing::info!("Herald hub listening on {scheme}://{local}{HUB_PATH}"),
    }
    if let Some(tls) = self_signed {
        tracing::info!(
            fingerprint = %tls.fingerprint(),
            "serving HTTPS with a self-signed certificate made for this run (development only)"
        );
        if dev.is_some() {
            println!(
                "Self-signed certificate (SHA-256 {}): browsers warn once; use curl -k.\n",
                tls.fingerprint()
            );
        }
    }
}

/// The TLS certificate the options ask for, if any.
fn tls_config(args: &ServeArgs, listen: SocketAddr) -> anyhow::Result<Option<TlsConfig>> {
    let self_signed = args.tls_self_signed == Some(true);
    match (&args.tls_cert, &args.tls_key) {
        (Some(_), Some(_)) | (None, None) => {}
        _ => bail!("--tls-cert and --tls-key go together: give both, or --tls-self-signed"),
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        if self_signed {
            bail!("--tls-self-signed and --tls-cert exclude each other: choose one");
        }
        return TlsConfig::from_pem_files(cert, key)
            .map(Some)
            .context("cannot load the TLS certificate");
    }
    if !self_signed {
        return Ok(None);
    }
    TlsConfig::self_signed(&self_signed_names(listen))
        .map(Some)
        .context("cannot make a self-signed certificate")
}

/// The names a self-signed certificate is made for: the loopback ones a
/// browser or curl on this machine uses, and the listen address when it is
/// one specific non-loopback address (which clients elsewhere then use).
fn self_signed_names(listen: SocketAddr) -> Vec<String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    if !listen.ip().is_unspecified() && !listen.ip().is_loopback() {
        names.push(listen.ip().to_string());
    }
    names
}

/// SIGINT and SIGTERM, listened for from the moment this is made.
struct ShutdownSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    /// Installs the handlers now; `tokio::signal::ctrl_c` would install
    /// them only when first polled, after the hub may have said it is up.
    fn install() -> anyhow::Result<ShutdownSignals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(ShutdownSignals {
                interrupt: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
                terminate: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        Ok(ShutdownSignals {})
    }

    /// Waits for the first of the signals.
    async fn recv(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_certificate_names_loopback_and_a_specific_listen_address() {
        let loopback = ["localhost", "127.0.0.1", "::1"];
        for any in ["127.0.0.1:8443", "[::1]:8443", "0.0.0.0:8443", "[::]:8443"] {
            assert_eq!(self_signed_names(any.parse().unwrap()), loopback, "{any}");
        }
        assert_eq!(
            self_signed_names("192.0.2.7:8443".parse().unwrap()),
            ["localhost", "127.0.0.1", "::1", "192.0.2.7"]
        );
        assert_eq!(
            self_signed_names("[2001:db8::7]:8443".parse().unwrap()),
            ["localhost", "127.0.0.1", "::1", "2001:db8::7"]
        );
    }
}
