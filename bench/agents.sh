#!/usr/bin/env bash
# Agents (issue 14 item 9): AGENTS (default 3) `lookout run` processes (release) sharing one private PostgreSQL,
# all in the location "eu", with TARGETS (default 10,000) HTTP targets every INTERVAL (default 60 s, timeout 5 s)
# against a private nginx on 127.0.0.1. After WARMUP seconds (default 90; the agents must have settled their
# shares of the checks by then) it measures over WINDOW seconds (default 180, three intervals):
# - p99 start delay per agent (lookout_probe_start_delay_seconds, read from /metrics before and after the
#   window, so only the window counts) ≤ 1 s;
# - probes on schedule: nginx's requests per target (path /t/{i}) over the window — every target probed about
#   WINDOW/INTERVAL times (one agent per check in a location, not one per agent): none unprobed, none probed by
#   two agents (two requests of one target closer than half an interval);
# - CPU (% of one core, utime+stime from /proc/PID/stat) and RSS (VmRSS, VmHWM) per agent, and PostgreSQL's CPU;
# - PostgreSQL rows written per second (pg_stat_database: tup_inserted+tup_updated+tup_deleted of the database;
#   pg_stat_user_tables per table) and transactions per second (xact_commit), so batching shows;
# - failover: the leader (from `lookout agents --json`) is killed with SIGKILL; seconds until another agent leads
#   (≤ 15 s), until the killed agent's checks are held by the others (their logged shares sum to TARGETS again,
#   and check_leases agrees) (≤ 15 s), and the longest gap in requests of the killed agent's targets.
# PEER=1 (default) then runs ONE agent with the same targets on the same PostgreSQL (a database of its own) for the
# same WARMUP and WINDOW, and prints each agent's CPU and RSS as a ratio to it; PEER=0 skips it (half the time).
# Default runtime about 10 minutes. Smoke test: TARGETS=500 INTERVAL=10 WINDOW=30 WARMUP=30.
# The PostgreSQL is a throw-away cluster (initdb in a temp dir, as the user `postgres` when run as root) with
# fsync=off and full_page_writes=off: commits still go through the WAL, but a bench on a real disk would add the
# flush latency of each commit (which batching amortises). It logs lock waits over 1 s and statements slower than
# PG_SLOW_MS (default 500 ms), counted at the end. KEEP=1 keeps the work directory (logs) for a look.
# Exit status: 0 if every goal passed, 1 if one failed, 2 if something needed is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGETS=${TARGETS:-10000}
INTERVAL=${INTERVAL:-60}
INTERVAL=${INTERVAL%s}
TIMEOUT=${TIMEOUT:-5}
AGENTS=${AGENTS:-3}
WARMUP=${WARMUP:-90}
WINDOW=${WINDOW:-180}
PEER=${PEER:-1}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
[ -x "$NGINX" ] || { echo "agents: needs nginx (apt-get install -y nginx-light)"; exit 2; }
[ -x "$PGBIN/initdb" ] || { echo "agents: needs PostgreSQL in $PGBIN (apt-get install -y postgresql)"; exit 2; }
command -v psql > /dev/null || { echo "agents: needs psql (apt-get install -y postgresql-client)"; exit 2; }
[ -n "${NO_BUILD:-}" ] || cargo build --release -q -p lookout

work=$(mktemp -d /tmp/lookout-agents.XXXXXX)
# The binary is copied: a build by someone else during the run must not change what the peer runs.
cp "${BIN:-./target/release/lookout}" "$work/lookout"
BIN=$work/lookout
HERE=$(pwd)/bench
pgdir=$work/pg # PostgreSQL's own directory: data, socket, log (owned by `postgres` when we are root)
pids=()
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
  wait 2> /dev/null || true
  [ -f "$pgdir/data/postmaster.pid" ] && (cd "$pgdir" && as_pg "$PGBIN/pg_ctl" -D "$pgdir/data" -m immediate -w stop > /dev/null 2>&1 || true)
  if [ -n "${KEEP:-}" ]; then echo "agents: work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
port_of() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SITE=$(port_of); PGPORT=$(port_of)
strip() { sed 's/\x1b\[[0-9;]*m//g' "$@"; }
now() { date +%s.%N; }

# PostgreSQL, privately: trust authentication on 127.0.0.1 only.
mkdir -p "$pgdir"
chmod 755 "$work"
[ "$(id -u)" = 0 ] && chown postgres:postgres "$pgdir"
(cd "$pgdir" && as_pg "$PGBIN/initdb" -D "$pgdir/data" -A trust -U postgres -E UTF8 --locale=C --no-sync \
  --no-instructions > "$pgdir/initdb.log" 2>&1) || { cat "$pgdir/initdb.log"; exit 1; }
(cd "$pgdir" && as_pg "$PGBIN/pg_ctl" -D "$pgdir/data" -w -t 60 -l "$pgdir/log" -o \
  "-p $PGPORT -k '$pgdir' -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=300 -c log_lock_waits=on -c log_min_duration_statement=${PG_SLOW_MS:-500}" \
  start > /dev/null) || { tail -20 "$pgdir/log"; exit 1; }
PSQL=(psql -X -q -At -F, -h 127.0.0.1 -p "$PGPORT" -U postgres)
"${PSQL[@]}" -d postgres -c "CREATE DATABASE lookout" -c "CREATE DATABASE lookout_peer"
pg_version=$("${PSQL[@]}" -d postgres -c "SHOW server_version")

# nginx, privately (as bench/scale.sh): one worker, every request logged with its time and path.
mkdir -p "$work/nginx/logs"
cat > "$work/nginx/nginx.conf" << EOF
daemon off;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  log_format t '\$msec \$uri \$status';
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

# One config per database; the agents' names, location and web ports come from the environment.
config() {
  printf '[store]\nurl = "postgresql://postgres@127.0.0.1:%s/%s"\n\n' "$PGPORT" "$1"
  printf '[web]\nenabled = true\nlisten = "127.0.0.1:9"\npublic_reads = true\n\n'
  python3 - "$TARGETS" "$SITE" "$INTERVAL" "$TIMEOUT" << 'PY'
import sys
n, port, interval, timeout = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
sys.stdout.write("".join(
    f'[[target]]\nname = "t{i}"\nurl = "http://127.0.0.1:{port}/t/{i}"\ninterval = "{interval}s"\n'
    f'timeout = "{timeout}s"\nconditions = ["[STATUS] == 200"]\ngroup = "g{i % 20}"\n\n' for i in range(n)))
PY
}
config lookout > "$work/multi.toml"
config lookout_peer > "$work/peer.toml"

CLK_TCK=$(getconf CLK_TCK)
declare -A PID WEB
start_agent() { # name config
  WEB[$1]=$(port_of)
  LOOKOUT_AGENT_NAME=$1 LOOKOUT_AGENT_LOCATION=eu LOOKOUT_WEB_LISTEN=127.0.0.1:${WEB[$1]} \
    "$BIN" run --config "$2" 2> "$work/$1.log" &
  PID[$1]=$!; pids+=($!)
}
alive_or_die() {
  for a in "$@"; do
    kill -0 "${PID[$a]}" 2> /dev/null || { echo "agents: $a died:"; strip "$work/$a.log" | tail -20; exit 1; }
  done
}
# The latest share each agent logged ("This agent's share of its location's checks. … checks=N").
shares() { python3 "$HERE/agents_report.py" shares "$work" "$@"; }
# PostgreSQL's CPU ticks: the postmaster and its live children, plus what its ended children used (cutime).
pg_ticks() {
  local pm; pm=$(head -1 "$pgdir/data/postmaster.pid")
  { awk '{print $14 + $15 + $16 + $17}' "/proc/$pm/stat"
    for c in $(pgrep -P "$pm"); do awk '{print $14 + $15}' "/proc/$c/stat" 2> /dev/null || true; done
  } | awk '{s += $1} END {print s}'
}
pg_stats() { # database file
  "${PSQL[@]}" -d "$1" -c "SELECT 'db', tup_inserted, tup_updated, tup_deleted, xact_commit, xact_rollback
      FROM pg_stat_database WHERE datname = '$1'
    UNION ALL SELECT relname, n_tup_ins, n_tup_upd, n_tup_del, n_tup_hot_upd, 0 FROM pg_stat_user_tables" > "$2"
}
snapshot() { # phase dir, 0|1, agents...
  local d=$1 k=$2; shift 2
  for a in "$@"; do curl -sf -o "$d/m${k}_$a" "http://127.0.0.1:${WEB[$a]}/metrics" || echo "no /metrics from $a" >&2; done
  pg_stats "$DB" "$d/pg$k"
  {
    echo "t$k $(now)"
    echo "pgcpu$k $(pg_ticks)"
    for a in "$@"; do
      echo "cpu${k}_$a $(awk '{print $14 + $15}' "/proc/${PID[$a]}/stat")"
      awk -v k="$k" -v a="$a" '$1 ~ /^(VmRSS|VmHWM|Threads):$/ {sub(":", "", $1); print $1 k "_" a, $2}' \
        "/proc/${PID[$a]}/status"
    done
  } >> "$d/meta"
}

# One phase: start the agents, warm up until their shares settle (and WARMUP has passed), measure over WINDOW.
phase() { # name database config agents...
  local name=$1; DB=$2; local cfg=$3; shift 3
  local d=$work/$name; mkdir -p "$d"
  echo "agents: $name: starting $* ($TARGETS targets every ${INTERVAL}s) ..."
  local start; start=$(now)
  for a in "$@"; do start_agent "$a" "$cfg"; done
  local settled=""
  while :; do
    sleep 1
    alive_or_die "$@"
    local el; el=$(python3 -c "print($(now) - $start)")
    if [ -z "$settled" ] && [ "$(shares "$@" | awk '{print $NF}')" = "$TARGETS" ]; then
      settled=$el; echo "agents: $name: shares settled after ${settled%.*} s: $(shares "$@")"
    fi
    python3 -c "import sys; sys.exit(0 if $el >= $WARMUP else 1)" && break
  done
  echo "settled ${settled:--1}" > "$d/meta"
  echo "start $start" >> "$d/meta"
  echo "shares_warm $(shares "$@")" >> "$d/meta"
  echo "agents $*" >> "$d/meta"
  echo "agents: $name: measuring over $WINDOW s ..."
  snapshot "$d" 0 "$@"
  sleep "$WINDOW"
  alive_or_die "$@"
  snapshot "$d" 1 "$@"
}

agent_names=(); for i in $(seq 1 "$AGENTS"); do agent_names+=("a$i"); done
phase multi lookout "$work/multi.toml" "${agent_names[@]}"

# Failover: SIGKILL the leader, then watch who leads and who holds its checks.
leader=$("$BIN" agents --json --config "$work/multi.toml" | python3 -c '
import json, sys
for a in json.load(sys.stdin):
    if a.get("leader"):
        print(a.get("name") or a.get("info", {}).get("name"))' | head -1)
fo=$work/failover; mkdir -p "$fo"
if [ -z "$leader" ]; then
  echo "agents: failover: no agent leads" | tee "$fo/meta"
else
  "${PSQL[@]}" -d lookout -c "SELECT target FROM check_leases WHERE location = 'eu' AND holder = '$leader'" > "$fo/killed_targets"
  survivors=(); for a in "${agent_names[@]}"; do [ "$a" = "$leader" ] || survivors+=("$a"); done
  echo "agents: failover: killing the leader $leader (pid ${PID[$leader]}, $(wc -l < "$fo/killed_targets") checks) ..."
  t_kill=$(now)
  kill -KILL "${PID[$leader]}"
  python3 "$HERE/agents_report.py" failover "$work" "$BIN" "$work/multi.toml" "$leader" "$t_kill" "$TARGETS" \
    "$PGPORT" "${survivors[@]}" > "$fo/meta"
  cat "$fo/meta"
  # Every target of the killed agent is due once more after its checks were retaken: watch one more interval.
  retaken=$(awk '$1 == "retaken" {print $2}' "$fo/meta")
  [ "$retaken" = "-1" ] && retaken=30
  wait_more=$(python3 -c "print(max(0, $t_kill + $retaken + $INTERVAL + 5 - $(now)))")
  echo "agents: failover: watching the requests for another ${wait_more%.*} s ..."
  sleep "$wait_more"
  alive_or_die "${survivors[@]}"
  echo "t_end $(now)" >> "$fo/meta"
fi
for a in "${agent_names[@]}"; do kill -TERM "${PID[$a]}" 2> /dev/null || true; done
for a in "${agent_names[@]}"; do wait "${PID[$a]}" 2> /dev/null || true; done

if [ "$PEER" != 0 ]; then
  phase peer lookout_peer "$work/peer.toml" solo
  kill -TERM "${PID[solo]}"; wait "${PID[solo]}" || true
fi
sleep 1.5 # nginx flushes its log buffer every second
set +e
python3 "$HERE/agents_report.py" report "$work" "$TARGETS" "$INTERVAL" "$CLK_TCK" "$PEER" "$pg_version"
status=$?
pg_errors=$(grep -cE "ERROR|FATAL|PANIC" "$pgdir/log")
pg_slow=$(grep -c "LOG:  duration:" "$pgdir/log")
pg_waits=$(grep -c "still waiting for" "$pgdir/log")
echo "PostgreSQL log: $pg_errors ERROR/FATAL/PANIC lines, $pg_slow statements slower than ${PG_SLOW_MS:-500} ms, $pg_waits lock waits over 1 s"
grep -E "ERROR|FATAL|PANIC|LOG:  duration:|still waiting for" "$pgdir/log" | cut -c1-400 | head -8
exit "$status"
