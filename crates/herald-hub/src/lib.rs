//! herald-hub: a Mercure-compatible Server-Sent Events hub, as a library.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod auth;
pub mod topic;
