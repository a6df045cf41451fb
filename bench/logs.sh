#!/usr/bin/env bash
# Benchmark: `lookout logs` (full report) against peers on the same 2,000,000-line combined log, in one run.
# Prints lines/s for each, peak RSS, each peer's ratio to lookout, and each one's ratio to the ceiling `wc -l`
# (reading and counting lines, nothing else). lookout runs on all cores and on one (`--threads 1`), to show how it
# scales. Each contender runs RUNS times (default 3) and its fastest run counts, so a busy machine skews less.
# Needs goaccess and mtail (apt-get install goaccess mtail); a peer that is missing is reported and skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
LINES=${LINES:-2000000}
RUNS=${RUNS:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log="$work/access.log"

[ -n "${SKIP_BUILD:-}" ] || cargo build --release -q -p lookout
python3 bench/gen_log.py "$LINES" > "$log"
echo "input: $LINES lines, $(du -h "$log" | cut -f1), $(nproc) cores"
cat "$log" > /dev/null  # warm the page cache for every contender alike

declare -A secs rss
run() { # name, command...
  local name=$1; shift
  local t0 t1 s i
  for i in $(seq 1 "$RUNS"); do
    t0=$(date +%s.%N)
    /usr/bin/time -f "%M" -o "$work/rss" "$@" > /dev/null 2> "$work/err" || { echo "$name failed: $(tail -1 "$work/err")"; return; }
    t1=$(date +%s.%N)
    s=$(echo "$t1 - $t0" | bc -l)
    if [ -z "${secs[$name]:-}" ] || [ "$(echo "$s < ${secs[$name]}" | bc)" = 1 ]; then secs[$name]=$s; fi
    rss[$name]=$(( $(tail -1 "$work/rss") / 1024 ))
  done
}

run lookout ./target/release/lookout logs --json "$log"
run lookout-1 ./target/release/lookout logs --json --threads 1 "$log"
run "wc -l" wc -l "$log"
run awk sh -c "awk '{print \$9}' '$log' | sort | uniq -c"
if command -v goaccess > /dev/null; then
  run goaccess goaccess "$log" --log-format=COMBINED -o "$work/report.json"
else
  echo "goaccess not installed: skipped"
fi
if command -v mtail > /dev/null; then
  cat > "$work/status.mtail" <<'PROG'
counter http_requests_total by status
/^\S+ \S+ \S+ \[[^\]]+\] "[^"]*" (?P<status>\d{3}) / {
  http_requests_total[$status]++
}
PROG
  run mtail mtail --one_shot --one_shot_format=json --progs "$work/status.mtail" --logs "$log"
else
  echo "mtail not installed: skipped"
fi

printf '\n%-10s %10s %14s %10s %18s %14s\n' tool seconds lines/s "RSS MB" "lookout is ×faster" "× of wc -l"
for name in lookout lookout-1 "wc -l" awk goaccess mtail; do
  [ -n "${secs[$name]:-}" ] || continue
  s=${secs[$name]}
  printf '%-10s %10.2f %14.0f %10d %18.1f %14.2f\n' "$name" "$s" "$(echo "$LINES / $s" | bc -l)" "${rss[$name]}" \
    "$(echo "$s / ${secs[lookout]}" | bc -l)" "$(echo "${secs["wc -l"]} / $s" | bc -l)"
done
echo "lookout on $(nproc) cores is $(printf '%.2f' "$(echo "${secs[lookout-1]} / ${secs[lookout]}" | bc -l)")× lookout on one core"

