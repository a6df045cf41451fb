#!/usr/bin/env bash
# Benchmark: `lookout preflight` (issue 16, item 9) on real applications (Debian's wordpress and mediawiki) and on
# a synthetic tree of FILES PHP files (default 10,000) full of includes, against
#   - the reading floor: `grep -rc 'require\|include' TREE` (reads every byte once, understands nothing);
#   - `php -l` over every .php file (`xargs -P2`, what a CI job often runs): real trees only, skipped if php is
#     missing (apt-get install php-cli).
# Goal: preflight within 3× of grep, and the 10,000-file tree in under 2 s. Each contender runs RUNS times (default
# 10), grep and preflight taking turns so that whatever else the machine does falls on both alike, on a warm page
# cache after a `sync` (the synthetic tree is written just before: its writeback slowed the first contender), and
# its fastest run counts; php -l runs once (it takes minutes on MediaWiki). A tree that
# is not installed (apt-get install wordpress mediawiki) is reported and skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=${FILES:-10000}
RUNS=${RUNS:-10}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

[ -n "${SKIP_BUILD:-}" ] || cargo build --release -q -p lookout
lookout=./target/release/lookout

# The synthetic tree: 100 directories of FILES/100 files; each file defines nothing, includes its neighbours by
# __DIR__, a sibling directory by dirname(__DIR__), a constant-based path and a guarded optional file, and carries
# ~3 KB of ordinary code (strings, comments, a heredoc) so reading it costs what reading real code costs.
synthetic="$work/synthetic"
python3 - "$synthetic" "$FILES" <<'PY'
import os, sys
root, total = sys.argv[1], int(sys.argv[2])
dirs = 100
per = max(1, total // dirs)
os.makedirs(root, exist_ok=True)
with open(os.path.join(root, "config.php"), "w") as f:
    f.write("<?php\ndefine('APP_ROOT', __DIR__ . '/');\nconst LIB = 'd0';\n")
body = "".join(
    f"""
/**
 * Function {k}: a doc comment that mentions include 'not/this.php' and require "nor/that.php".
 */
function helper_{{n}}_{k}($x) {{
    $s = "text with include and require in it: $x";
    $t = <<<EOT
    heredoc include 'nothing.php'; {k}
    EOT;
    return str_replace('<?php include("x.php") ?>', $s, $t) . strlen($x) * {k};
}}
"""
    for k in range(12)
)
n = 0
for d in range(dirs):
    sub = os.path.join(root, f"d{d}")
    os.makedirs(sub, exist_ok=True)
    for i in range(per):
        nxt, other = (i + 1) % per, (d + 1) % dirs
        with open(os.path.join(sub, f"f{i}.php"), "w") as f:
            f.write("<?php\n")
            f.write(f"require_once __DIR__ . '/f{nxt}.php';\n")
            f.write(f"require_once dirname(__DIR__) . '/d{other}/f{i}.php';\n")
            f.write(f"include_once APP_ROOT . LIB . '/f{i % per}.php';\n")
            f.write(f"if (file_exists(__DIR__ . '/local{i}.php')) {{ include __DIR__ . '/local{i}.php'; }}\n")
            f.write(f"require $plugin . '/x.php';\n")
            f.write(body.replace("{n}", str(n)))
        n += 1
PY
real_trees=()
for t in /usr/share/wordpress /usr/share/mediawiki; do
  if [ -d "$t" ]; then real_trees+=("$t"); else echo "$t not installed (apt-get install $(basename "$t")): skipped"; fi
done
trees=("${real_trees[@]}" "$synthetic")
have_php=1
command -v php > /dev/null || { have_php=0; echo "php not installed (apt-get install php-cli): php -l skipped"; }

declare -A secs
run() { # key, runs, command... — exit 1 is a result (grep: no match; preflight: errors found), not a failure
  local key=$1 runs=$2; shift 2
  local t0 t1 s i rc
  for i in $(seq 1 "$runs"); do
    t0=$(date +%s.%N)
    rc=0; "$@" > "$work/out" 2> "$work/err" || rc=$?
    t1=$(date +%s.%N)
    if [ "$rc" -gt 1 ]; then echo "$key failed (exit $rc): $(tail -1 "$work/err")"; return; fi
    s=$(echo "$t1 - $t0" | bc -l)
    if [ -z "${secs[$key]:-}" ] || [ "$(echo "$s < ${secs[$key]}" | bc)" = 1 ]; then secs[$key]=$s; fi
  done
}

declare -A nfiles summary
for t in "${trees[@]}"; do
  name=$(basename "$t")
  nfiles[$name]=$(find "$t" -name '*.php' | wc -l)
  sync
  grep -rc 'require\|include' "$t" > /dev/null || true  # warm the page cache for every contender alike
  for _ in $(seq 1 "$RUNS"); do
    run "$name grep" 1 grep -rc 'require\|include' "$t"
    run "$name preflight" 1 "$lookout" preflight "$t"
  done
  summary[$name]=$(grep '^preflight:' "$work/out" || true)
  if [ "$have_php" = 1 ] && [ "$t" != "$synthetic" ]; then
    run "$name php -l" 1 sh -c "find '$t' -name '*.php' -print0 | xargs -0 -n1 -P2 php -l > /dev/null 2>&1; exit 0"
  fi
done

echo
echo "$(nproc) cores; fastest of $RUNS runs (php -l: one run)"
printf '%-10s %7s %9s %11s %9s %16s %18s\n' tree "files" "grep s" "preflight s" "php -l s" "preflight÷grep" "php -l÷preflight"
for t in "${trees[@]}"; do
  name=$(basename "$t")
  g=${secs["$name grep"]:-} p=${secs["$name preflight"]:-} l=${secs["$name php -l"]:-}
  [ -n "$g" ] && [ -n "$p" ] || continue
  if [ -n "$l" ]; then
    lcol=$(printf '%9.2f' "$l") ratio=$(printf '%18.1f' "$(echo "$l / $p" | bc -l)")
  else
    lcol=$(printf '%9s' -) ratio=$(printf '%18s' -)
  fi
  printf '%-10s %7d %9.3f %11.3f %s %16.2f %s\n' "$name" "${nfiles[$name]}" "$g" "$p" "$lcol" "$(echo "$p / $g" | bc -l)" "$ratio"
done
echo
for t in "${trees[@]}"; do
  name=$(basename "$t")
  echo "$name: ${summary[$name]:-}"
done
s=${secs["synthetic preflight"]:-}
if [ -n "$s" ]; then
  verdict=$([ "$(echo "$s < 2" | bc)" = 1 ] && echo "meets" || echo "MISSES")
  printf 'synthetic %d files: preflight %.3f s — %s the goal of under 2 s\n' "${nfiles[synthetic]}" "$s" "$verdict"
  r=$(echo "$s / ${secs["synthetic grep"]}" | bc -l)
  verdict=$([ "$(echo "$r < 3" | bc)" = 1 ] && echo "meets" || echo "MISSES")
  printf 'synthetic: preflight %.2f× grep — %s the goal of within 3×\n' "$r" "$verdict"
fi
