#!/usr/bin/env bash
# Scale: `lookout run` (release) with TARGETS (default 10,000) HTTP targets every 10 s against a private nginx on
# 127.0.0.1, measured over WINDOW seconds (default 180) after WARMUP seconds (default 40). Prints, with a
# PASS/FAIL line per goal of issue 13 part 4:
# - load evenness: the server's requests per one-second bucket (nginx access log, $msec), max / mean ≤ 1.5;
# - p99 start delay ≤ 100 ms: how late checks start after their phase (lookout_probe_start_delay_seconds, read
#   from /metrics before and after the window, so only the window counts);
# - CPU ≤ 25 % of one core: lookout's utime+stime over the window (/proc/PID/stat);
# - RSS ≤ 100 MB: peak (VmHWM) and final (VmRSS).
# - nothing lost at shutdown (part 2): after SIGTERM, lookout exits 0 and its store holds a result for every request
#   the server answered during the whole run (nginx's log against the store's rows).
# Needs nginx (Debian: nginx-light). RUNS=3 repeats the whole measurement (the issue's figures are medians of 3).
# Extra environment for lookout (e.g. MALLOC_ARENA_MAX) is passed through unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGETS=${TARGETS:-10000}
WINDOW=${WINDOW:-180}
WARMUP=${WARMUP:-40}
RUNS=${RUNS:-1}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
[ -x "$NGINX" ] || { echo "scale: needs nginx (apt-get install -y nginx-light)"; exit 2; }
[ -n "${NO_BUILD:-}" ] || cargo build --release -q -p lookout
BIN=${BIN:-./target/release/lookout}

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done; wait 2> /dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port_of() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SITE=$(port_of); WEB=$(port_of)

# nginx, privately: its own prefix, pid, logs and temp dirs; one worker (lookout gets the other core); the
# connection is closed after each answer so the TIME_WAITs are on the server's side, not lookout's ports.
mkdir -p "$work/nginx/logs"
cat > "$work/nginx/nginx.conf" << EOF
daemon off;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  log_format t '\$msec \$status';
  access_log $work/nginx/logs/access.log t buffer=256k flush=1s;
  client_body_temp_path $work/nginx/body; proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fcgi; uwsgi_temp_path $work/nginx/uwsgi; scgi_temp_path $work/nginx/scgi;
  keepalive_timeout 0;
  server {
    listen 127.0.0.1:$SITE;
    location / { default_type text/plain; return 200 "ok"; }
  }
}
EOF
"$NGINX" -p "$work/nginx" -c "$work/nginx/nginx.conf" 2> "$work/nginx/stderr" & pids+=($!)

{
  printf '[store]\npath = "%s/lookout.sqlite"\n\n[web]\nlisten = "127.0.0.1:%s"\n\n' "$work" "$WEB"
  python3 - "$TARGETS" "$SITE" << 'PY'
import sys
n, port = int(sys.argv[1]), sys.argv[2]
out = []
for i in range(n):
    out.append(f'[[target]]\nname = "t{i}"\nurl = "http://127.0.0.1:{port}/t/{i}"\ninterval = "10s"\ntimeout = "2s"\n'
               f'conditions = ["[STATUS] == 200"]\ngroup = "g{i % 20}"\n\n')
sys.stdout.write("".join(out))
PY
} > "$work/lookout.toml"

CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
scrape() { curl -sf -o "$1" "http://127.0.0.1:$WEB/metrics"; }

for run in $(seq 1 "$RUNS"); do
  rm -f "$work/lookout.sqlite"*
  : > "$work/nginx/logs/access.log"
  "$BIN" run --config "$work/lookout.toml" 2> "$work/lookout.err" & LOOKOUT=$!; pids+=($LOOKOUT)
  sleep "$WARMUP"
  kill -0 "$LOOKOUT" 2> /dev/null || { echo "lookout died:"; tail -20 "$work/lookout.err"; exit 1; }
  scrape "$work/m0"
  t0=$(date +%s.%N); c0=$(cpu_ticks "$LOOKOUT")
  sleep "$WINDOW"
  t1=$(date +%s.%N); c1=$(cpu_ticks "$LOOKOUT")
  rss=$(status_kb "$LOOKOUT" VmRSS); hwm=$(status_kb "$LOOKOUT" VmHWM); threads=$(status_kb "$LOOKOUT" Threads)
  scrape "$work/m1"
  ts0=$(date +%s.%N)
  kill -TERM "$LOOKOUT"; rc=0; wait "$LOOKOUT" || rc=$?
  stop_s=$(echo "$(date +%s.%N) - $ts0" | bc -l)
  sleep 1.5 # nginx flushes its log buffer every second
  python3 - "$work" "$t0" "$t1" "$c0" "$c1" "$CLK_TCK" "$rss" "$hwm" "$threads" "$TARGETS" "$run" "$rc" "$stop_s" << 'PY'
import collections, re, sqlite3, sys
work, t0, t1 = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
c0, c1, tck, rss, hwm, threads, targets, run, rc = (int(x) for x in sys.argv[4:13])
stop_s = float(sys.argv[13])
# Requests per whole second inside the window (partial seconds at the edges left out).
buckets = collections.Counter()
codes = collections.Counter()
answered = 0
for line in open(f"{work}/nginx/logs/access.log"):
    ts, code = line.split()
    answered += 1
    t = float(ts)
    if int(t0) + 1 <= t < int(t1):
        buckets[int(t)] += 1
        codes[code] += 1
secs = range(int(t0) + 1, int(t1))
counts = [buckets.get(s, 0) for s in secs]
mean = sum(counts) / max(1, len(counts))
ratio = max(counts) / mean if mean else float("inf")
def hist(path):
    b, n = {}, 0
    for line in open(path):
        m = re.match(r'lookout_probe_start_delay_seconds_bucket\{le="([^"]+)"\} (\d+)', line)
        if m:
            b[m.group(1)] = int(m.group(2))
        m = re.match(r"lookout_probe_start_delay_seconds_count (\d+)", line)
        if m:
            n = int(m.group(1))
    return b, n
(b0, n0), (b1, n1) = hist(f"{work}/m0"), hist(f"{work}/m1")
n = n1 - n0
bounds = sorted((float("inf") if k == "+Inf" else float(k), k) for k in b1)
p99 = float("inf")
for v, k in bounds:  # the smallest bucket bound holding 99 % of the window's checks
    if n and (b1[k] - b0.get(k, 0)) >= 0.99 * n:
        p99 = v
        break
under100 = (b1.get("0.1", 0) - b0.get("0.1", 0)) / n if n else 0.0
cpu = (c1 - c0) / tck / (t1 - t0) * 100
expected = targets / 10
ok = lambda b: "PASS" if b else "FAIL"
print(f"scale run {run}: {targets} targets every 10 s, window {t1 - t0:.0f} s; server answered {sum(counts)} "
      f"({dict(codes)}), {mean:.0f}/s (expected {expected:.0f}/s); lookout threads {threads}")
print(f"  requests per second: min {min(counts)} mean {mean:.0f} max {max(counts)}  max/mean {ratio:.2f}")
print(f"  start delay: {n} checks, p99 <= {p99 * 1000:.1f} ms (bucket bound), {under100 * 100:.2f} % within 100 ms")
print(f"  CPU {cpu:.1f} % of one core; RSS peak {hwm / 1024:.0f} MB, final {rss / 1024:.0f} MB")
print(f"  {ok(ratio <= 1.5)} evenness: max/mean {ratio:.2f} <= 1.5")
print(f"  {ok(under100 >= 0.99)} p99 start delay <= 100 ms")
print(f"  {ok(cpu <= 25)} CPU {cpu:.1f} % <= 25 % of one core")
print(f"  {ok(hwm <= 100 * 1024)} RSS peak {hwm / 1024:.0f} MB <= 100 MB")
con = sqlite3.connect(f"{work}/lookout.sqlite")
recorded = con.execute("SELECT count(*) FROM results").fetchone()[0]
recorded += con.execute("SELECT coalesce(sum(n), 0) FROM result_blocks").fetchone()[0]
con.close()
print(f"  shutdown: exit {rc} after {stop_s:.2f} s; the server answered {answered} requests in the run, the store "
      f"holds {recorded} results (lost: {max(0, answered - recorded)})")
print(f"  {ok(rc == 0 and recorded >= answered)} nothing lost at shutdown")
print(f"  {ok(mean >= 0.98 * expected)} throughput: {mean:.0f}/s >= 98 % of {expected:.0f}/s (no missed interval)")
PY
done
errors=$(grep -c ERROR "$work/lookout.err" || true)
echo "ERROR lines in lookout's log (last run): $errors"
