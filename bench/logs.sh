#!/usr/bin/env bash
# Benchmark: `lookout logs` (full report) against peers on the same 2,000,000-line combined log, in one run.
# Prints lines/s for each, peak RSS, and each peer's ratio to lookout. Needs goaccess and mtail
# (apt-get install goaccess mtail); a peer that is missing is reported and skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
LINES=${LINES:-2000000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log="$work/access.log"

cargo build --release -q
python3 bench/gen_log.py "$LINES" > "$log"
echo "input: $LINES lines, $(du -h "$log" | cut -f1), $(nproc) cores"
cat "$log" > /dev/null  # warm the page cache for every contender alike

declare -A secs rss
run() { # name, command...
  local name=$1; shift
  local t0 t1
  t0=$(date +%s.%N)
  /usr/bin/time -f "%M" -o "$work/rss" "$@" > /dev/null 2> "$work/err" || { echo "$name failed: $(tail -1 "$work/err")"; return; }
  t1=$(date +%s.%N)
  secs[$name]=$(echo "$t1 - $t0" | bc -l)
  rss[$name]=$(( $(tail -1 "$work/rss") / 1024 ))
}

run lookout ./target/release/lookout logs --json "$log"
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

printf '\n%-10s %10s %14s %10s %18s\n' tool seconds lines/s "RSS MB" "lookout is ×faster"
for name in lookout awk goaccess mtail; do
  [ -n "${secs[$name]:-}" ] || continue
  s=${secs[$name]}
  printf '%-10s %10.2f %14.0f %10d %18.1f\n' "$name" "$s" "$(echo "$LINES / $s" | bc -l)" "${rss[$name]}" \
    "$(echo "$s / ${secs[lookout]}" | bc -l)"
done
