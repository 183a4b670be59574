#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every test of every crate.
# It installs what it needs when missing and fails loudly when it cannot.
set -euo pipefail
cd "$(dirname "$0")"

say() { printf '\n==> %s\n' "$*"; }
die() { printf '\ntest.sh: %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null || die "cargo not found: install the Rust toolchain (https://rustup.rs)"

# rustfmt and clippy are rustup components; add them when missing.
for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    command -v rustup >/dev/null || die "cargo $component is missing and rustup is not available to install it"
    say "installing the $component component"
    rustup component add "$component" || die "could not install $component"
  fi
done

say "cargo fmt --check"
cargo fmt --all -- --check

say "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

say "cargo test"
cargo test --workspace --all-targets
cargo test --workspace --doc

say "all tests passed"
