//! The one panic the targets let through: urlpattern 0.6's bracket-depth
//! underflow on a `]` closing no `[` in a hostname (a `usize` decremented
//! past zero, which panics under the overflow checks fuzz builds have).
//! herald-hub catches it (`Pattern::new` in `matcher.rs`, and the unit test
//! `a_stray_bracket_in_the_hostname_is_no_panic`), but libFuzzer's panic
//! hook aborts on every panic, caught or not. This hook forwards every
//! other panic to it, so overflow checks stay on for all the rest, and a
//! new urlpattern version (another path) is fuzzed without the exception.

use std::panic::{self, PanicHookInfo};
use std::sync::Once;

/// Whether `info` is the known underflow.
fn is_known(info: &PanicHookInfo<'_>) -> bool {
    info.location().is_some_and(|at| {
        at.file()
            .ends_with("urlpattern-0.6.0/src/constructor_parser.rs")
            && at.line() == 409
    })
}

/// Installs the hook once, over libFuzzer's.
pub fn tolerate() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let abort = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !is_known(info) {
                abort(info);
            }
        }));
    });
}
