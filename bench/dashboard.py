#!/usr/bin/env python3
"""Dashboard cost against a day of 1 s results: 8 clients load `GET /` as fast as they can while lookout probes
10 targets every second; prints page-time percentiles, lookout's peak RSS, and the alert latency (target breaks →
webhook arrives) without and with the load. The page must not grow with the results kept (aggregates in the
store, rows computed at most once a second), so p95 stays well under 200 ms and alert latency does not move.

    bench/dashboard.py                      # builds the release binary first
    LOOKOUT_BIN=target/debug/lookout bench/dashboard.py --seconds 10
Only Python's standard library; everything on 127.0.0.1.
"""
import argparse
import http.client
import http.server
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("--targets", type=int, default=10)
ap.add_argument("--clients", type=int, default=8)
ap.add_argument("--seconds", type=int, default=20)
args = ap.parse_args()

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
binary = os.environ.get("LOOKOUT_BIN")
if not binary:
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "lookout"], cwd=root, check=True)
    binary = os.path.join(root, "target", "release", "lookout")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


broken = {"flag": False}
fired = {}  # target -> arrival time of its first firing message


class Site(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = 500 if broken["flag"] and self.path == "/flip" else 200
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *a):
        pass


class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        for a in body.get("alerts", [body]):
            key = (a.get("target"), a.get("state"))
            fired.setdefault(key, time.monotonic())
        self.send_response(204)
        self.end_headers()

    def log_message(self, *a):
        pass


def serve(handler):
    port = free_port()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return port


site, hook, web = serve(Site), serve(Hook), free_port()
work = tempfile.mkdtemp(prefix="lookout-bench-")
db = os.path.join(work, "lookout.sqlite")
names = [f"t{i}" for i in range(args.targets)] + ["flip"]
config = f'[store]\npath = "{db}"\n\n[web]\nlisten = "127.0.0.1:{web}"\n\n'
for n in names:
    path = "/flip" if n == "flip" else "/"
    config += (f'[[target]]\nname = "{n}"\nurl = "http://127.0.0.1:{site}{path}"\ninterval = "1s"\n'
               f'failure_threshold = 1\nsuccess_threshold = 1\n\n')
config += f'[[notify]]\nname = "ops"\ntype = "webhook"\nurl = "http://127.0.0.1:{hook}/hook"\n'
cfg = os.path.join(work, "lookout.toml")
open(cfg, "w").write(config)


def start():
    return subprocess.Popen([binary, "run", "--config", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def get(path, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", web, timeout=timeout)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body


def wait_api(proc):
    for _ in range(200):
        try:
            if get("/api/v1/targets")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    proc.kill()
    sys.exit("lookout did not serve")


# A day of 1 s results per target, written before lookout runs again (it created and migrated the store).
p = start()
wait_api(p)
p.terminate()
p.wait()
now_ms = int(time.time() * 1000)
con = sqlite3.connect(db)
t0 = time.time()
# The compact schema (migration 0007): targets by integer id, latency in microseconds, NULL where a column is empty.
con.executemany("INSERT OR IGNORE INTO targets (name) VALUES (?)", [(n,) for n in names])
ids = dict(con.execute("SELECT name, id FROM targets"))
for n in names:
    rows = ((ids[n], now_ms - 86_400_000 + i * 1000, 0, 1, 200, 2000 + (i % 50) * 100) for i in range(86_400))
    con.executemany("INSERT INTO results (target, at, seq, ok, status, latency_us) VALUES (?,?,?,?,?,?)", rows)
con.commit()
con.close()
print(f"stored {len(names)} × 86,400 results in {time.time() - t0:.1f} s")

proc = start()
wait_api(proc)


def rss_kib():
    for line in open(f"/proc/{proc.pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def alert_latency(label):
    fired.clear()
    broken["flag"] = True
    t = time.monotonic()
    while ("flip", "firing") not in fired and time.monotonic() - t < 30:
        time.sleep(0.005)
    latency = fired.get(("flip", "firing"), float("nan")) - t
    broken["flag"] = False
    t2 = time.monotonic()
    while ("flip", "resolved") not in fired and time.monotonic() - t2 < 30:
        time.sleep(0.01)
    print(f"alert latency {label}: {latency:.2f} s")
    return latency


time.sleep(2)
alert_latency("without load")
times, stop, peak = [], threading.Event(), [rss_kib()]


def client():
    while not stop.is_set():
        t = time.monotonic()
        status, _ = get("/")
        if status == 200:
            times.append(time.monotonic() - t)


threads = [threading.Thread(target=client) for _ in range(args.clients)]
for th in threads:
    th.start()
deadline = time.monotonic() + args.seconds
half = time.monotonic() + args.seconds / 2
measured = False
while time.monotonic() < deadline:
    peak[0] = max(peak[0], rss_kib())
    if not measured and time.monotonic() > half:
        measured = True
        threading.Thread(target=alert_latency, args=(f"with {args.clients} dashboard clients",)).start()
    time.sleep(0.1)
stop.set()
for th in threads:
    th.join()
time.sleep(1)
proc.terminate()
proc.wait()
times.sort()


def q(x):
    return times[min(len(times) - 1, int(round((len(times) - 1) * x)))] * 1000 if times else float("nan")


print(f"{len(times)} pages by {args.clients} clients in {args.seconds} s: "
      f"p50 {q(0.5):.1f} ms, p95 {q(0.95):.1f} ms, p99 {q(0.99):.1f} ms, max {q(1.0):.1f} ms")
print(f"lookout peak RSS: {peak[0] / 1024:.1f} MiB")
