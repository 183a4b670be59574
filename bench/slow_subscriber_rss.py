#!/usr/bin/env python3
"""RSS of `herald serve` with one subscriber that never reads, under large
updates: before, during and after the load (bench/RESULTS.md, "A subscriber
that stops reading").

    python3 bench/slow_subscriber_rss.py HERALD_BIN [--runs 3] [--events 300]
        [--size 1000000] [--after 2,20] [-- EXTRA SERVE OPTIONS]

Each run starts `HERALD_BIN serve` on a free loopback port (memory history
of 8 MiB, anonymous subscribers), opens one subscriber over raw TCP with a
4 KiB receive buffer that it never reads, publishes EVENTS updates of SIZE
bytes of data one after another (each acknowledged before the next), then
closes the subscriber and waits for the hub to count it gone. RSS (VmRSS of
/proc/PID/status) is read: `before` (idle, after start), `during` (the
highest seen while publishing, read after every publish), `end` (when the
last update is acknowledged, the subscriber still connected) and `after Ns`
(N seconds after the subscriber is gone, nothing published meanwhile).
Prints one line per run and the medians, in MiB. Loopback only; every loop
is bounded in count and time.
"""

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import time

KEY = "rss-bench-secret"


def token():
    def b64(raw):
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64(json.dumps({"mercure": {"publish": ["*"]}}).encode())
    signed = f"{header}.{claims}".encode()
    signature = hmac.new(KEY.encode(), signed, hashlib.sha256).digest()
    return f"{header}.{claims}.{b64(signature)}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def get(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def metric(port, name):
    _, body = get(port, "/metrics")
    for line in body.splitlines():
        if line.startswith(name + " "):
            return int(line.split()[1])
    raise RuntimeError(f"no {name}")


def wait_for(what, done, limit=60):
    deadline = time.monotonic() + limit
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def one_run(binary, events, size, after, extra):
    port = free_port()
    hub = subprocess.Popen(
        [binary, "serve", "--listen", f"127.0.0.1:{port}", "--jwt-key", KEY,
         "--anonymous", "--history", "memory", "--history-max-bytes", "8MiB",
         "--log", "warn", *extra],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def ready():
            try:
                return get(port, "/healthz")[0] == 200
            except OSError:
                return False
        wait_for("the hub to listen", ready)
        before = rss_mib(hub.pid)

        sub = socket.socket()
        sub.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sub.connect(("127.0.0.1", port))
        sub.sendall(b"GET /.well-known/mercure?topic=t HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_for("the subscriber", lambda: metric(port, "herald_subscribers") == 1)

        body = ("topic=t&data=" + "x" * size).encode()
        headers = {"Authorization": f"Bearer {token()}",
                   "Content-Type": "application/x-www-form-urlencoded"}
        publisher = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        during = before
        for _ in range(events):
            publisher.request("POST", "/.well-known/mercure", body, headers)
            response = publisher.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"publish answered {response.status}")
            during = max(during, rss_mib(hub.pid))
        publisher.close()
        end = rss_mib(hub.pid)
        slow = metric(port, "herald_slow_subscriber_disconnects_total")

        sub.close()
        wait_for("the subscriber to go", lambda: metric(port, "herald_subscribers") == 0)
        gone = time.monotonic()
        later = []
        for seconds in after:
            time.sleep(max(0.0, gone + seconds - time.monotonic()))
            later.append(rss_mib(hub.pid))
        return {"before": before, "during": during, "end": end, "after": later, "slow": slow}
    finally:
        hub.terminate()
        try:
            hub.wait(timeout=15)
        except subprocess.TimeoutExpired:
            hub.kill()


def main():
    argv = sys.argv[1:]
    extra = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("binary")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--after", default="2,20", help="seconds, comma-separated")
    args = parser.parse_args(argv)
    after = [float(s) for s in args.after.split(",")]
    if not os.access(args.binary, os.X_OK):
        sys.exit(f"{args.binary} is not executable")
    results = []
    for run in range(args.runs):
        r = one_run(args.binary, args.events, args.size, after, extra)
        results.append(r)
        later = " ".join(f"after{s:g}s={v:.1f}" for s, v in zip(after, r["after"]))
        print(f"run {run + 1}: before={r['before']:.1f} during={r['during']:.1f} "
              f"end={r['end']:.1f} {later} slow={r['slow']} (MiB)", flush=True)
    med = lambda key: statistics.median(r[key] for r in results)
    later = " ".join(
        f"after{s:g}s={statistics.median(r['after'][i] for r in results):.1f}"
        for i, s in enumerate(after))
    print(f"median: before={med('before'):.1f} during={med('during'):.1f} "
          f"end={med('end'):.1f} {later} (MiB)")


if __name__ == "__main__":
    main()
