#!/usr/bin/env bash
# bench/compare.sh: the same `herald bench` scenarios against Herald and its
# peers, in one run, and one table of the results.
#
#   bench/compare.sh                      # every scenario, every peer
#   SCENARIOS="fanout idle" PEERS="herald-memory nchan" bench/compare.sh
#
# Peers: herald-memory, herald-redb (Herald with memory / durable history),
# herald-redis (Herald with its history in a local redis-server, as one
# node of a cluster), baseline-memory, baseline-redb (the same with the
# herald binary at $BASELINE, e.g. a build of an earlier commit, for a
# before/after comparison in one run), nchan (Debian's nginx + libnginx-mod-nchan, one worker), axum (axum's Sse
# over a tokio broadcast channel, bench/peers/axum-sse), node (Express
# writing data: lines to every open response, bench/peers/node-express).
# Each scenario gets a fresh server, so memory figures start from zero.
# Results: one JSON per scenario and peer, the logs, and summary.md in
# $OUT (default bench/results/DATE, not committed). Everything runs on
# loopback and stops by itself. It installs what is missing (apt, npm)
# and fails loudly when it cannot. A run that fails (losses, duplicates,
# errors) does not stop the others: it is listed in $OUT/failed.txt and
# the summary, and the script exits non-zero once the summary is written.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SCENARIOS=${SCENARIOS:-"fanout idle many-topics storm publish"}
PEERS=${PEERS:-"herald-memory herald-redb nchan axum node"}
OUT=${OUT:-$ROOT/bench/results/$(date -u +%Y-%m-%dT%H%M%S)}
EXTRA=${EXTRA:-}   # more herald bench flags for every run, e.g. "--duration 5s"
BASELINE=${BASELINE:-}   # another herald binary, for the baseline-* peers
KEY=compare-secret-key-long-enough-for-hs256
mkdir -p "$OUT"
RUN=$(mktemp -d /tmp/herald-compare.XXXXXX)

say() { printf '\n==> %s\n' "$*" >&2; }
die() { printf '\ncompare.sh: %s\n' "$*" >&2; exit 1; }
# As test.sh: root runs it directly, anyone else through sudo.
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root (or sudo) to run: $*"
  fi
}

# --- what the peers need -------------------------------------------------
need_apt=()
command -v nginx >/dev/null || need_apt+=(nginx)
[ -f /usr/lib/nginx/modules/ngx_nchan_module.so ] || need_apt+=(libnginx-mod-nchan)
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
if [ ${#need_apt[@]} -gt 0 ]; then
  say "installing ${need_apt[*]}"
  command -v apt-get >/dev/null || die "missing ${need_apt[*]} and no apt-get to install them"
  as_root apt-get update -q || die "apt-get update failed"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_apt[@]}" \
    || die "cannot install ${need_apt[*]}"
fi
[ -f /usr/lib/nginx/modules/ngx_nchan_module.so ] || die "the nchan module is still missing"

say "building herald (release) and the axum peer"
# Where cargo puts them: $CARGO_TARGET_DIR when set (made absolute, as
# the axum peer builds from its own directory), else each project's own.
if [ -n "${CARGO_TARGET_DIR:-}" ]; then
  case $CARGO_TARGET_DIR in /*) ;; *) CARGO_TARGET_DIR=$ROOT/$CARGO_TARGET_DIR ;; esac
  export CARGO_TARGET_DIR
fi
cargo build --release -p herald || die "cannot build herald"
HERALD=${CARGO_TARGET_DIR:-$ROOT/target}/release/herald
(cd bench/peers/axum-sse && cargo build --release) || die "cannot build bench/peers/axum-sse"
AXUM=${CARGO_TARGET_DIR:-$ROOT/bench/peers/axum-sse/target}/release/axum-sse-peer
if [ ! -d bench/peers/node-express/node_modules/express ]; then
  say "installing the node peer's packages"
  (cd bench/peers/node-express && npm ci --no-audit --no-fund) || die "npm ci failed in bench/peers/node-express"
fi

ulimit -n 20000 2>/dev/null || true
[ "$(ulimit -n)" -ge 20000 ] || say "warning: only $(ulimit -n) open files allowed; the idle scenario will hold fewer"

# --- starting and stopping a peer -----------------------------------------
PID=""       # the process we started (stopped at the end)
REDIS_PID="" # herald-redis's redis-server
MEM_PID=""   # the process whose memory is measured
ARGS=()      # herald bench flags that point at the peer

wait_port() {  # PORT LOG: waits up to 10 s for the peer that logs to LOG
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  # nginx writes its error log under $RUN, which goes at exit: keep a copy.
  local extra
  for extra in "$RUN"/*/error.log; do
    if [ -f "$extra" ]; then cat "$extra" >>"$2"; fi
  done
  die "nothing listens on port $1 (see $2)"
}

start_peer() {
  local peer=$1 log=$OUT/$peer-$2.server.log
  case $peer in
    herald-memory|herald-redb|baseline-memory|baseline-redb)
      local history=${peer#*-} bin=$HERALD
      if [ "${peer%%-*}" = baseline ]; then
        [ -x "$BASELINE" ] || die "peer $peer needs BASELINE=/path/to/another/herald"
        bin=$BASELINE
      fi
      rm -rf "$RUN/redb"
      # Every bench subscriber comes from 127.0.0.1: no limit per client
      # (as a variable, which an older BASELINE ignores).
      HERALD_MAX_STREAMS_PER_CLIENT=0 "$bin" serve --listen 127.0.0.1:9400 --jwt-key "$KEY" --anonymous --history "$history" \
        --data-dir "$RUN/redb" --ui off --log warn >"$log" 2>&1 &
      PID=$!; MEM_PID=$PID; wait_port 9400 "$log"
      ARGS=(--hub http://127.0.0.1:9400/.well-known/mercure --jwt-key "$KEY") ;;
    herald-redis)
      command -v redis-server >/dev/null || die "herald-redis needs redis-server (Debian's redis-server package)"
      rm -rf "$RUN/redis"; mkdir -p "$RUN/redis"
      # AOF with an fsync per write: the same promise as herald-redb's.
      redis-server --bind 127.0.0.1 --port 9500 --dir "$RUN/redis" --appendonly yes \
        --appendfsync always --save '' >"$OUT/$peer-$2.redis.log" 2>&1 &
      REDIS_PID=$!; wait_port 9500 "$OUT/$peer-$2.redis.log"
      HERALD_MAX_STREAMS_PER_CLIENT=0 "$HERALD" serve --listen 127.0.0.1:9400 --jwt-key "$KEY" --anonymous --history redis \
        --redis-url redis://127.0.0.1:9500/0 --ui off --log warn >"$log" 2>&1 &
      PID=$!; MEM_PID=$PID; wait_port 9400 "$log"
      ARGS=(--hub http://127.0.0.1:9400/.well-known/mercure --jwt-key "$KEY") ;;
    nchan)
      rm -rf "$RUN/nchan"; mkdir -p "$RUN/nchan/tmp"
      nginx -p "$RUN/nchan/" -c "$ROOT/bench/peers/nchan/nginx.conf" >"$log" 2>&1 &
      PID=$!; wait_port 9100 "$log"
      MEM_PID=$(tr -d ' ' <"/proc/$PID/task/$PID/children")
      [ -n "$MEM_PID" ] || die "the nginx worker did not start"
      ARGS=(--sub-url 'http://127.0.0.1:9100/sub/{topic}' --pub-url 'http://127.0.0.1:9100/pub/{topic}') ;;
    axum)
      "$AXUM" 127.0.0.1:9200 >"$log" 2>&1 &
      PID=$!; MEM_PID=$PID; wait_port 9200 "$log"
      ARGS=(--sub-url 'http://127.0.0.1:9200/sub/{topic}' --pub-url 'http://127.0.0.1:9200/pub/{topic}') ;;
    node)
      node "$ROOT/bench/peers/node-express/server.js" 9300 >"$log" 2>&1 &
      PID=$!; MEM_PID=$PID; wait_port 9300 "$log"
      ARGS=(--sub-url 'http://127.0.0.1:9300/sub/{topic}' --pub-url 'http://127.0.0.1:9300/pub/{topic}') ;;
    *) die "unknown peer $peer" ;;
  esac
  sleep 1
}

stop_peer() {
  if [ -n "$PID" ]; then
    kill -TERM "$PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  if [ -n "$REDIS_PID" ]; then
    kill -TERM "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
  fi
  PID=""; MEM_PID=""; REDIS_PID=""
  sleep 2 # let TIME_WAIT sockets and the port settle
}
trap 'stop_peer; rm -rf "$RUN"' EXIT

# --- the runs ---------------------------------------------------------------
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r), loopback"
  echo "herald: $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet -- crates || echo ' (modified)')"
  echo "nginx: $(nginx -v 2>&1 | sed 's/.*: //'), nchan: $(dpkg-query -W -f='${Version}' libnginx-mod-nchan 2>/dev/null || echo '?'), node: $(node --version)"
} >"$OUT/machine.txt"
cat "$OUT/machine.txt" >&2

failed=()   # SCENARIO-PEER of each run whose herald bench failed
: >"$OUT/failed.txt"
for scenario in $SCENARIOS; do
  for peer in $PEERS; do
    say "$scenario against $peer"
    start_peer "$peer" "$scenario"
    # shellcheck disable=SC2086
    if ! "$HERALD" bench --scenario "$scenario" "${ARGS[@]}" --hub-pid "$MEM_PID" --name "$peer" \
      --json "$OUT/$scenario-$peer.json" $EXTRA 2>"$OUT/$scenario-$peer.bench.log" | tee "$OUT/$scenario-$peer.txt"
    then
      say "$scenario against $peer FAILED: losses, duplicates or errors (see $OUT/$scenario-$peer.txt and .bench.log)"
      failed+=("$scenario-$peer")
      echo "$scenario-$peer" >>"$OUT/failed.txt"
    fi
    stop_peer
  done
done

node "$ROOT/bench/summarize.js" "$OUT" >"$OUT/summary.md" || die "bench/summarize.js failed on $OUT"
say "summary ($OUT/summary.md)"
cat "$OUT/summary.md"
if [ ${#failed[@]} -gt 0 ]; then
  die "${#failed[@]} run(s) failed: ${failed[*]} (see $OUT/failed.txt and the logs next to it)"
fi
