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

# What the suite needs from Debian is installed when missing, as root.
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root (or sudo) to run: $*"
  fi
}
apt_updated=
apt_install() {
  if [ -z "$apt_updated" ]; then
    as_root apt-get update || die "apt-get update failed"
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" \
    || die "could not install $* with apt-get"
}
# The listen-backlog tests read the kernel's view of a listening socket
# with ss (Debian's iproute2, absent from minimal images).
if ! command -v ss >/dev/null; then
  say "installing ss (Debian's iproute2 package)"
  apt_install iproute2
fi

# The herald binary's allocator (jemalloc) is built from C with make.
if ! command -v make >/dev/null; then
  say "installing make (Debian's make package)"
  apt_install make
fi

# The cluster tests start their own redis-server (Debian's redis-server,
# which brings redis-cli), each on its own port and directory.
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  say "installing Redis (Debian's redis-server package)"
  apt_install redis-server
fi

say "cargo fmt --check"
cargo fmt --all -- --check

say "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
# An application that embeds the hub may turn its optional parts off
# (redb, tls, ui): the crate builds, lints and passes its unit tests so.
say "herald-hub without its default features"
cargo clippy -p herald-hub --no-default-features -- -D warnings
cargo test -p herald-hub --no-default-features --lib

say "cargo test"
cargo test --workspace --all-targets
cargo test --workspace --doc

# The library crates' documentation has no broken link.
say "cargo doc (the library crates)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -p herald-sse -p herald-client -p herald-hub

# Each library crate builds from its package alone (no file from outside
# it), as crates.io would build it.
say "cargo package (the library crates)"
cargo package --allow-dirty -p herald-sse -p herald-client -p herald-hub

# The fuzz targets (cargo-fuzz crates of their own, run with `cargo fuzz`:
# see their READMEs) keep compiling against the code they fuzz. libfuzzer-sys
# builds libFuzzer from C++, and wants nightly features (RUSTC_BOOTSTRAP).
if ! command -v c++ >/dev/null; then
  say "installing a C++ compiler (Debian's g++ package) for libFuzzer"
  apt_install g++
fi
say "cargo check of the fuzz targets"
for fuzz in crates/herald-sse/fuzz crates/herald-hub/fuzz; do
  (cd "$fuzz" && RUSTC_BOOTSTRAP=1 cargo check --bins) || die "the fuzz targets of $fuzz do not compile"
done

# ---- end-to-end: the hub in a real browser (e2e/) ----
# Debian's Chromium driven by npm's playwright-core (never a downloaded
# browser), run by node's built-in test runner.
if [ ! -x /usr/bin/chromium ]; then
  say "installing Chromium (Debian's chromium package)"
  apt_install chromium
fi
# The reverse-proxy scenarios (e2e/tests/11-nginx, 12-caddy) run Debian's
# nginx and Caddy with docs/deploy.md's configuration, a certificate made
# with openssl, and check the documented systemd unit with systemd-analyze.
if [ ! -x /usr/sbin/nginx ]; then
  say "installing nginx (Debian's nginx package)"
  apt_install nginx
fi
if [ ! -x /usr/bin/caddy ]; then
  say "installing Caddy (Debian's caddy package)"
  apt_install caddy
fi
if ! command -v openssl >/dev/null; then
  say "installing openssl (Debian's openssl package)"
  apt_install openssl
fi
if ! command -v systemd-analyze >/dev/null; then
  say "installing systemd-analyze (Debian's systemd package)"
  apt_install systemd
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  say "installing Node.js and npm (Debian's packages)"
  apt_install nodejs npm
fi
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)' \
  || die "node $(node --version) is too old for the e2e suite: 18 or later is needed"
# npm ci when a package the lockfile pins is missing or at another version
# (a node_modules left by an older checkout).
locked_packages() {
  node -e 'const fs = require("fs");
    const packages = JSON.parse(fs.readFileSync("e2e/package-lock.json", "utf8")).packages;
    for (const [where, locked] of Object.entries(packages)) {
      if (!where.startsWith("node_modules/")) continue;
      let have = null;
      try { have = JSON.parse(fs.readFileSync(`e2e/${where}/package.json`, "utf8")).version; } catch {}
      if (have !== locked.version) process.exit(1);
    }'
}
if ! locked_packages; then
  say "npm ci (e2e)"
  (cd e2e && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund) || die "npm ci failed in e2e/"
fi

say "e2e: building herald"
cargo build --workspace --all-targets  # a no-op after cargo test: same features, same binary
target_dir=$(cargo metadata --format-version 1 --no-deps \
  | node -e 'let s = ""; process.stdin.on("data", (d) => { s += d; }).on("end", () => console.log(JSON.parse(s).target_directory))')
export HERALD_BIN="$target_dir/debug/herald"
[ -x "$HERALD_BIN" ] || die "the herald binary is not at $HERALD_BIN"

say "e2e: node --test (Chromium $(/usr/bin/chromium --version 2>/dev/null | awk '{print $2}'))"
# One test file at a time, each in its own `node --test`: the
# timing-sensitive scenarios (reconnection, the 6-connection limit) stay
# deterministic on small machines, the same on every node version, and the
# first failing file stops the suite.
run_e2e() {
  local file
  for file in tests/*.test.js; do
    [ -e "$file" ] || { echo "no e2e test files in e2e/tests/" >&2; return 1; }
    printf '\n--> %s\n' "$file"
    timeout 600 node --test "$file" || { echo "FAILED: e2e/$file" >&2; return 1; }
  done
}
(cd e2e && rm -rf artifacts && run_e2e) \
  || die "the end-to-end suite failed: see e2e/artifacts/ for screenshots and console logs"

say "all tests passed"
