#!/usr/bin/env bash
# Benchmark: how big the store grows (issue 13, "a store that stays small"). Writes a simulated stretch of
# 10,000 targets probed every 10 s (~1 % failing) through the Store trait, runs the roll-up, measures the SQLite
# pages in use, and prints bytes per result (before: the schema up to migration 0006; after: raw rows,
# aggregates) and the extrapolated 90-day size against the 5 GB goal.
#
# HOURS=24 writes the full simulated day (86.4 M results; ~1 h 45 min at ~14,000 results/s on 2 cores); the
# default, 1 hour of 10,000 targets, gives the same bytes per result. Retentions: RAW_HOURS (24), DETAIL_DAYS (7),
# HOURLY_DAYS (90).
set -euo pipefail
cd "$(dirname "$0")/.."
export HOURS=${HOURS:-1} TARGETS=${TARGETS:-10000} INTERVAL_S=${INTERVAL_S:-10}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
DIR="$work" cargo run --release -q -p lookout-store --example store_size
