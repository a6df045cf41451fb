#!/usr/bin/env bash
# Soak: `lookout run` (release) for DURATION seconds (default 3600) with 1,000 HTTP targets every 10 s — a tenth
# of them failing and recovering in turns —, a [[log]] source fed ~50 lines/s (a burst of 5xx now and then), a
# webhook receiver, and an API client reading the dashboard, /api/v1/targets and /metrics every second.
# Samples lookout's RSS and open descriptors every minute into $CSV (default /tmp/lookout-soak.csv); prints first,
# peak and last, the last/first ratios and the second half's: flat memory and no descriptor growth over the second
# half is the pass mark.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-3600}
CSV=${CSV:-/tmp/lookout-soak.csv}
TARGETS=${TARGETS:-1000}
work=$(mktemp -d)
pids=()
# STOP_SIGNAL=KILL ends lookout without its clean stop: under heaptrack, everything still allocated then is reported
# as "leaked", and two soaks of different lengths diffed (heaptrack_print --diff) show what grows.
cleanup() {
  [ -n "${LOOKOUT:-}" ] && kill -s "${STOP_SIGNAL:-TERM}" "$LOOKOUT" 2> /dev/null
  for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
  wait 2> /dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cargo build --release -q
port_of() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SITE=$(port_of); HOOK=$(port_of); WEB=$(port_of)

# The site: /t/N answers 200, or 500 while N is in the failing tenth (which moves every 3 minutes).
cat > "$work/site.py" << 'PY'
import http.server, sys, time, socketserver
N = int(sys.argv[2])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        n = int(self.path.rsplit("/", 1)[-1] or 0)
        turn = int(time.time() // 180) % 10
        code = 500 if n % 10 == turn and int(time.time() // 90) % 2 == 0 else 200
        self.send_response(code); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer): daemon_threads = True; request_queue_size = 1024
S(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
# The receiver: counts webhook POSTs.
cat > "$work/hook.py" << 'PY'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0))); self.send_response(204); self.end_headers()
        open(sys.argv[2], "a").write("1\n")
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
python3 "$work/site.py" "$SITE" "$TARGETS" & pids+=($!)
python3 "$work/hook.py" "$HOOK" "$work/hooks" & pids+=($!)

{
  printf '[store]\npath = "%s/lookout.sqlite"\n\n[web]\nlisten = "127.0.0.1:%s"\n\n' "$work" "$WEB"
  printf '[[notify]]\nname = "ops"\ntype = "webhook"\nurl = "http://127.0.0.1:%s/hook"\n\n' "$HOOK"
  printf '[[log]]\nname = "access"\naccess = "%s/access.log"\nfire_when = ["[5XX_RATIO] > 20%%"]\n\n' "$work"
  for i in $(seq 0 $((TARGETS - 1))); do
    printf '[[target]]\nname = "t%s"\nurl = "http://127.0.0.1:%s/t/%s"\ninterval = "10s"\ntimeout = "2s"\n' "$i" "$SITE" "$i"
    printf 'conditions = ["[STATUS] == 200"]\ngroup = "g%s"\n\n' $((i % 20))
  done
} > "$work/lookout.toml"
touch "$work/access.log"

# LOOKOUT_RUN_PREFIX runs it under a profiler (e.g. "heaptrack -o /tmp/soak"); the samples are then of lookout's
# own process, found by its command line.
# A copy of the binary runs: a rebuild during the hour would delete the file under the running process, and gdb or
# heaptrack attached later (`gdb /proc/PID/exe -p PID -batch -ex 'call (void)malloc_stats()'`) needs its symbols.
cp ./target/release/lookout "$work/lookout"
${LOOKOUT_RUN_PREFIX:-} "$work/lookout" run --config "$work/lookout.toml" 2> "$work/lookout.err" & LOOKOUT=$!; pids+=($LOOKOUT)
if [ -n "${LOOKOUT_RUN_PREFIX:-}" ]; then
  sleep 5
  LOOKOUT=$(pgrep -n -f "$work/lookout run --config $work/lookout.toml")
  pids+=($LOOKOUT)
fi

# Log traffic: ~50 lines/s, a burst of 5xx for 20 s every 5 minutes.
python3 - "$work/access.log" << 'PY' &
import sys, time
f = open(sys.argv[1], "a", buffering=1)
while True:
    bad = int(time.time()) % 300 < 20
    for i in range(50):
        code = 500 if bad and i % 2 else 200
        f.write('127.0.0.%d - - [%s] "GET /p/%d HTTP/1.1" %d 512 "-" "soak"\n'
                % (i % 250 + 1, time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()), i, code))
    time.sleep(1)
PY
pids+=($!)

# An API client.
( while true; do
    curl -s -o /dev/null "http://127.0.0.1:$WEB/" || true
    curl -s -o /dev/null "http://127.0.0.1:$WEB/api/v1/targets" || true
    curl -s -o /dev/null "http://127.0.0.1:$WEB/metrics" || true
    sleep 1
  done ) & pids+=($!)

sample() { # seconds, rss MB, fds, anonymous rss MB (RSS less the binary's and libraries' pages, which grow as
  # code paths are first run: what a leak would grow), and where the anonymous pages are: the main malloc arena
  # ([heap], grown by brk) and every other anonymous mapping (the second arena, thread stacks, large blocks).
  local rss fds anon maps
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$LOOKOUT/status")
  anon=$(awk '/RssAnon/ {print $2}' "/proc/$LOOKOUT/status")
  fds=$(ls "/proc/$LOOKOUT/fd" | wc -l)
  maps=$(awk '/^[0-9a-f]+-[0-9a-f]+ / {name = $6} /^Rss:/ {if (name == "[heap]") h += $2; else if (name == "") a += $2}
    END {printf "%.1f,%.1f", h / 1024, a / 1024}' "/proc/$LOOKOUT/smaps")
  # CPU: user + system seconds used so far (fields 14 and 15 of stat; the command name has no spaces).
  local cpu
  cpu=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.1f", ($14 + $15) / hz}' "/proc/$LOOKOUT/stat")
  echo "$1,$((rss / 1024)),$fds,$((anon / 1024)),$maps,$(ls "/proc/$LOOKOUT/task" | wc -l),$cpu"
}
echo "seconds,rss_mb,fds,anon_mb,brk_heap_mb,anon_maps_mb,threads,cpu_s" > "$CSV"
sleep "${WARMUP:-120}"
start=$(date +%s)
while true; do
  now=$(date +%s)
  kill -0 "$LOOKOUT" 2> /dev/null || { echo "lookout died:"; tail -20 "$work/lookout.err"; exit 1; }
  sample $((now - start)) >> "$CSV"
  [ $((now - start)) -ge "$DURATION" ] && break
  sleep 60
done

hooks=$(wc -l 2> /dev/null < "$work/hooks" || echo 0)
errors=$(grep -c ERROR "$work/lookout.err" || true)
python3 - "$hooks" "$errors" "$DURATION" "$TARGETS" "$CSV" << 'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[5])))
first, last = rows[0], rows[-1]
peak = max(rows, key=lambda r: int(r["rss_mb"]))
print(f"soak: {sys.argv[3]} s, {sys.argv[4]} targets every 10 s, {len(rows)} samples; webhooks received: {sys.argv[1]}; ERROR lines: {sys.argv[2]}")
print(f"RSS MB   first {first['rss_mb']:>5}  peak {peak['rss_mb']:>5}  last {last['rss_mb']:>5}  last/first {int(last['rss_mb'])/max(1,int(first['rss_mb'])):.2f}")
print(f"open fds first {first['fds']:>5}  peak {max(int(r['fds']) for r in rows):>5}  last {last['fds']:>5}  last/first {int(last['fds'])/max(1,int(first['fds'])):.2f}")
# Warm-up lasts longer than the 2 minutes before the first sample (every target takes its failing turn within 30
# minutes, adding its series to /metrics; caches fill): the second half says whether memory keeps growing.
mid = rows[len(rows) // 2]
print(f"second half: RSS {mid['rss_mb']} -> {last['rss_mb']} MB (x{int(last['rss_mb'])/max(1,int(mid['rss_mb'])):.2f}), fds {mid['fds']} -> {last['fds']}")
print(f"anonymous RSS (heap, stacks): first {first['anon_mb']} MB, second half {mid['anon_mb']} -> {last['anon_mb']} MB (x{int(last['anon_mb'])/max(1,int(mid['anon_mb'])):.2f})")
print(f"  of it: main arena (brk) {first['brk_heap_mb']} -> {mid['brk_heap_mb']} -> {last['brk_heap_mb']} MB, other anonymous mappings {first['anon_maps_mb']} -> {mid['anon_maps_mb']} -> {last['anon_maps_mb']} MB")
print(f"threads: first {first['threads']}, peak {max(int(r['threads']) for r in rows)}, last {last['threads']}")
span = max(1, int(last["seconds"]) - int(first["seconds"]))
print(f"CPU: {float(last['cpu_s']) - float(first['cpu_s']):.0f} s over {span} s sampled = {100 * (float(last['cpu_s']) - float(first['cpu_s'])) / span:.1f}% of one core")
PY
