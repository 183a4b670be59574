//! Development mode: with no key on a loopback address, a key made for the
//! run, tokens signed with it, and a banner with ready-to-paste examples.

use std::net::SocketAddr;

use anyhow::Context;
use herald_hub::{JwtKey, HUB_PATH};
use jsonwebtoken::Algorithm;

use crate::token::sign;

/// Development mode: a key made for this run, and the tokens signed with it.
pub(super) struct DevMode {
    pub(super) key: JwtKey,
    pub(super) publisher_token: String,
    pub(super) subscriber_token: String,
}

pub(super) fn dev_mode() -> anyhow::Result<DevMode> {
    let secret: String = rand::random::<[u8; 32]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let key = JwtKey {
        algorithm: Algorithm::HS256,
        key: secret.into_bytes(),
    };
    let everything = ["*".to_owned()];
    let publisher_token = sign(key.algorithm, &key.key, &everything, &[], "none", None)
        .context("cannot sign the development publisher token")?;
    let subscriber_token = sign(key.algorithm, &key.key, &[], &everything, "none", None)
        .context("cannot sign the development subscriber token")?;
    Ok(DevMode {
        key,
        publisher_token,
        subscriber_token,
    })
}

pub(super) fn print_dev_banner(scheme: &str, local: SocketAddr, dev: &DevMode, ui: bool) {
    let url = format!("{scheme}://{local}{HUB_PATH}");
    let topic = "https://example.com/hello";
    let secret = String::from_utf8_lossy(&dev.key.key);
    let ui = if ui {
        format!("\nWeb UI at {scheme}://{local}/ : paste the tokens below into its forms.\n")
    } else {
        String::new()
    };
    println!(
        "\
Herald hub running at {url}
{ui}
DEVELOPMENT MODE: no JWT key was configured, so this run made one, admits
anonymous subscribers and lets any origin read without cookies (CORS `*`).
Set --jwt-key (or HERALD_JWT_KEY) for anything else.

  Key (HS256):       {secret}
  Publisher token:   {pub_token}
  Subscriber token:  {sub_token}

Subscribe (in another terminal):
  curl -N '{url}?topic={topic}'

Publish:
  curl -d 'topic={topic}' -d 'data=Hello, Herald' \\
       -H 'Authorization: Bearer {pub_token}' {url}

In a browser console:
  new EventSource('{url}?topic={topic}').onmessage = (e) => console.log(e.lastEventId, e.data)

Stop with Ctrl-C.",
        pub_token = dev.publisher_token,
        sub_token = dev.subscriber_token,
    );
}
