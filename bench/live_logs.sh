#!/usr/bin/env bash
# Benchmark: live ingestion by a `[[log]]` source. Starts `lookout run` (release) with one source on an empty access
# log, appends LINES combined lines as fast as `cat` can, and reads lookout's own counter
# (lookout_log_lines_total{result="parsed"} on /metrics) until every line is counted. Prints lines/s ingested,
# the lag (last append → all lines counted), lookout's CPU during ingestion and its peak RSS, and ratios against
# two ceilings measured in the same run on the same file: `wc -l` and `lookout logs --threads 1` (the same parser,
# one core, no store). A second phase measures what lookout sustains when the writer is not the limit: a file of
# LINES more lines, written beforehand, is renamed onto the log's path (a rotation, so it is read from its start),
# and the time until all of it is counted gives the backlog rate. Usage: LINES=5000000 bench/live_logs.sh   (SKIP_BUILD=1 to use the existing binary, LOOKOUT_BIN=path for another one)
set -euo pipefail
cd "$(dirname "$0")/.."
LINES=${LINES:-5000000}
bin=${LOOKOUT_BIN:-$PWD/target/release/lookout}
work=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2> /dev/null; then kill "$pid"; wait "$pid" 2> /dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

[ -n "${SKIP_BUILD:-}" ] || cargo build --release -q -p lookout
python3 bench/gen_log.py "$LINES" > "$work/source.log"
cp "$work/source.log" "$work/backlog.log"
: > "$work/access.log"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$work/lookout.toml" <<EOF
[store]
path = "$work/lookout.sqlite"

[web]
listen = "127.0.0.1:$port"

[[log]]
name = "bench"
access = "$work/access.log"
EOF
echo "input: $LINES lines, $(du -h "$work/source.log" | cut -f1), $(nproc) cores"

"$bin" run --config "$work/lookout.toml" > "$work/run.log" 2>&1 &
pid=$!
counted() { # lines lookout has counted so far ("" until the source has sent its first batch)
  curl -s "http://127.0.0.1:$port/metrics" 2> /dev/null |
    awk '/^lookout_log_lines_total\{/ && /source="bench"/ && /result="parsed"/ {print $2}'
}
# The source starts at the end of the file: wait for its first (empty) batch, so no appended line is skipped.
for _ in $(seq 1 200); do
  [ -n "$(counted)" ] && break
  kill -0 "$pid" 2> /dev/null || { echo "lookout run exited:"; tail -5 "$work/run.log"; exit 1; }
  sleep 0.05
done
[ -n "$(counted)" ] || { echo "no lookout_log_lines_total on /metrics"; tail -5 "$work/run.log"; exit 1; }

cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; } # user + system ticks
tick=$(getconf CLK_TCK)
cat "$work/source.log" > /dev/null # warm the page cache
cpu0=$(cpu)
t0=$(date +%s.%N)
cat "$work/source.log" >> "$work/access.log"
t_appended=$(date +%s.%N)
wait_for() { # until lookout has counted $1 lines (or 600 s have passed); sets n
  local deadline
  deadline=$(echo "$(date +%s.%N) + 600" | bc)
  n=0
  while :; do
    n=$(counted)
    [ "${n:-0}" -ge "$1" ] && break
    if [ "$(echo "$(date +%s.%N) > $deadline" | bc)" = 1 ]; then echo "gave up: $n of $1 lines counted"; break; fi
    sleep 0.02
  done
}
wait_for "$LINES"
t_done=$(date +%s.%N)
cpu1=$(cpu)
appended_n=$n

# Phase 2: a backlog the writer cannot slow down.
sleep 1
t2=$(date +%s.%N)
mv "$work/backlog.log" "$work/access.log"
wait_for $((2 * LINES))
t2_done=$(date +%s.%N)
cpu2=$(cpu)
backlog_n=$((n - appended_n))
rss=$(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$pid/status")
kill "$pid"
wait "$pid" 2> /dev/null || true
pid=""

n=$appended_n
secs=$(echo "$t_done - $t0" | bc -l)
rate=$(echo "$n / $secs" | bc -l)
secs2=$(echo "$t2_done - $t2" | bc -l)
rate2=$(echo "$backlog_n / $secs2" | bc -l)
cpu2_s=$(echo "($cpu2 - $cpu1) / $tick" | bc -l)
cpu_s=$(echo "($cpu1 - $cpu0) / $tick" | bc -l)
cores=$(echo "$cpu_s / $secs" | bc -l)

ceiling() { # seconds for a command over the appended file
  local a b
  a=$(date +%s.%N)
  "$@" > /dev/null
  b=$(date +%s.%N)
  echo "$b - $a" | bc -l
}
wc_s=$(ceiling wc -l "$work/access.log")
logs_s=$(ceiling "$bin" logs --json --threads 1 "$work/access.log")

printf '\nlive [[log]] ingestion of %d lines\n' "$LINES"
printf '  counted          %d of %d\n' "$n" "$LINES"
printf '  append time      %.2f s (cat)\n' "$(echo "$t_appended - $t0" | bc -l)"
printf '  ingested         %.0f lines/s (%.2f s from first append to last line counted)\n' "$rate" "$secs"
printf '  lag              %.2f s (last append → all lines counted)\n' "$(echo "$t_done - $t_appended" | bc -l)"
printf '  lookout CPU      %.2f cores during ingestion (%.2f CPU-s)\n' "$cores" "$cpu_s"
printf '  per CPU-second   %.0f lines (what one core sustains; the rate above is capped by the writer when lag ≈ 0)\n' \
  "$(echo "$n / ($cpu_s + 0.001)" | bc -l)"
printf '  backlog          %.0f lines/s (%d lines renamed onto the path, read from their start in %.2f s, %.2f cores)\n' \
  "$rate2" "$backlog_n" "$secs2" "$(echo "$cpu2_s / $secs2" | bc -l)"
printf '  lookout RSS      %d MB peak\n' "$rss"
echo
printf '%-34s %14s %14s %14s\n' ceiling lines/s "appended ×" "backlog ×"
for pair in "wc -l:$wc_s" "lookout logs --threads 1:$logs_s"; do
  name=${pair%%:*}
  s=${pair#*:}
  printf '%-34s %14.0f %14.3f %14.3f\n' "$name" "$(echo "$LINES / $s" | bc -l)" "$(echo "$rate * $s / $LINES" | bc -l)" \
    "$(echo "$rate2 * $s / $LINES" | bc -l)"
done
echo
per_core=$(echo "$n / ($cpu_s + 0.001)" | bc -l)
verdict() { [ "$(echo "$1 >= 1000000" | bc)" = 1 ] && echo PASS || echo FAIL; }
printf '%s one core sustains %.0f lines/s (per CPU-second) >= 1,000,000 (issue 13 part 7)\n' "$(verdict "$per_core")" "$per_core"
printf '%s backlog read at %.0f lines/s >= 1,000,000\n' "$(verdict "$rate2")" "$rate2"
