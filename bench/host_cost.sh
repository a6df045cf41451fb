#!/usr/bin/env bash
# What watching the server costs: `lookout run` (release) with everything of issue 17 on — the host (CPU, load,
# memory, swap, descriptors, every data filesystem), a `[[process]]` and an Apache `[[status]]` page, each every
# 10 s — against the same binary watching nothing, and against Prometheus' node_exporter scraped every 10 s (the
# peer users run for host metrics today), all in the same run for DURATION seconds (default 300).
# Prints each one's CPU time as a share of one core and its RSS at the end; the pass mark is "under 1 % of one
# core and a few MB of RSS" for the difference between watching and not.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-300}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done; wait 2> /dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

[ -x ./target/release/lookout ] || cargo build --release -q
command -v prometheus-node-exporter > /dev/null || { echo "SKIPPED: no prometheus-node-exporter (apt install prometheus-node-exporter)"; exit 1; }
port_of() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
STATUS=$(port_of); NODE=$(port_of)

# A status page as Apache's mod_status?auto writes it (a 400-slot event-MPM scoreboard), served by a small server.
mkdir -p "$work/www"
{
  printf 'ServerVersion: Apache/2.4.62 (Debian)\nServerMPM: event\nTotal Accesses: 1234\nTotal kBytes: 5678\n'
  printf 'CPULoad: .12\nUptime: 3600\nReqPerSec: .34\nBusyWorkers: 3\nIdleWorkers: 47\nConnsTotal: 4\n'
  printf 'Scoreboard: %s\n' "$(python3 -c 'print("_" * 47 + "WWW" + "." * 350)')"
} > "$work/www/server-status"
python3 -m http.server "$STATUS" --bind 127.0.0.1 --directory "$work/www" > /dev/null 2>&1 & pids+=($!)

cat > "$work/watching.toml" << EOF
[store]
path = "$work/watching.sqlite"
[web]
enabled = false
[host]
interval = "10s"
[[process]]
name = "python3"
[[status]]
name = "apache"
type = "apache"
url = "http://127.0.0.1:$STATUS/server-status"
interval = "10s"
EOF
cat > "$work/idle.toml" << EOF
[store]
path = "$work/idle.sqlite"
[web]
enabled = false
[host]
enabled = false
EOF
./target/release/lookout run --config "$work/watching.toml" 2> "$work/watching.err" & WATCHING=$!; pids+=($WATCHING)
./target/release/lookout run --config "$work/idle.toml" 2> "$work/idle.err" & IDLE=$!; pids+=($IDLE)
prometheus-node-exporter --web.listen-address="127.0.0.1:$NODE" > /dev/null 2>&1 & NODE_PID=$!; pids+=($NODE_PID)
( while true; do curl -s -o /dev/null "http://127.0.0.1:$NODE/metrics" || true; sleep 10; done ) & pids+=($!)

# `lookout run` re-executes itself once at start (arena and malloc settings): measure the process that stays.
sleep 5
WATCHING=$(pgrep -n -f "lookout run --config $work/watching.toml")
IDLE=$(pgrep -n -f "lookout run --config $work/idle.toml")
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
declare -A t0
for p in "$WATCHING" "$IDLE" "$NODE_PID"; do t0[$p]=$(ticks "$p"); done
sleep "$DURATION"
hz=$(getconf CLK_TCK)
share() { python3 -c "print(f'{($(ticks "$1") - ${t0[$1]}) / $hz / $DURATION * 100:.3f}')"; }
w=$(share "$WATCHING"); i=$(share "$IDLE"); n=$(share "$NODE_PID")
wr=$(rss_mb "$WATCHING"); ir=$(rss_mb "$IDLE"); nr=$(rss_mb "$NODE_PID")
readings=$(sqlite3 "$work/watching.sqlite" "select count(distinct target) || ' targets, ' || count(*) || ' readings' from readings" 2> /dev/null || echo "?")
echo "host cost over $DURATION s (CPU as % of one core; RSS at the end):"
printf '  lookout watching host+process+status  %7s %%  %6s MB   (%s stored)\n' "$w" "$wr" "$readings"
printf '  lookout watching nothing              %7s %%  %6s MB\n' "$i" "$ir"
printf '  node_exporter scraped every 10 s      %7s %%  %6s MB\n' "$n" "$nr"
python3 -c "
w, i, n, wr, ir, nr = $w, $i, $n, $wr, $ir, $nr
print(f'  watching costs {w - i:.3f} % of one core and {wr - ir:.1f} MB more than watching nothing;'
      f' node_exporter/lookout-watching CPU ratio {n / max(w, 1e-9):.1f}x, RSS {nr / max(wr, 1e-9):.2f}x')
print('PASS' if w - i < 1.0 and wr - ir < 8 else 'FAIL: over 1 % of a core or 8 MB')
"
errors=$(grep -c ERROR "$work/watching.err" || true)
echo "ERROR lines of the watching lookout: $errors"
