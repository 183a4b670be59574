//! What the allocation-counting benchmarks share: how much to count, and
//! the runtime to count it on.

/// How many operations to warm up with, then to count: thousands under
/// `cargo bench` (the `--bench` flag), a few under `cargo test`, which
/// only checks that the benchmark still runs and counts.
pub(crate) fn warm_up_and_measured() -> (usize, usize) {
    if std::env::args().any(|a| a == "--bench") {
        (200, 2_000)
    } else {
        (2, 5)
    }
}

/// A single-threaded runtime: every allocation counted is this process's
/// work for the operation, in one order.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}
