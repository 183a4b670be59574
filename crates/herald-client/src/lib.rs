//! herald-client: an async EventSource for Rust. Filled in by its own issue.
