#!/usr/bin/env bash
# Every benchmark, one after the other, then one table of all their ratios
# with the issues' targets beside them (issue 14).  Not part of the test
# command: figures go to doc/benchmarks.md, they are never asserted.
# Usage: test/bench/all.sh [seconds per case, default 10] [rounds, default 2]
#   ORDERS_BENCH_ONLY="transition leads" runs only those benchmarks.
# Each benchmark runs in its own throwaway cluster (test/lib.sh,
# start_bench_cluster); the packages and the build are seen to once here.
# Prints each benchmark's own output as it goes; the table comes last and is
# also written to /tmp/orders-bench-all.tsv.
source "$(dirname "$0")/../lib.sh"
SECS=${1:-10}
ROUNDS=${2:-2}
BENCHES=${ORDERS_BENCH_ONLY:-"transition leads slots stock customers review webhooks create activity workflows rls catalog bulk size scale_out"}
RESULTS=/tmp/orders-bench-all.tsv

ensure_packages
build_install
: > "$RESULTS"
[ "$(id -u)" -eq 0 ] && chmod 644 "$RESULTS"
failed=""
for b in $BENCHES; do
    log "benchmark: $b ($SECS s x $ROUNDS rounds per case)"
    start=$(date +%s)
    if ! ORDERS_BENCH_NO_INSTALL=1 ORDERS_BENCH_RESULTS=$RESULTS bash "$REPO_DIR/test/bench/$b.sh" "$SECS" "$ROUNDS"; then
        failed="$failed $b"
    fi
    echo "($b: $(( $(date +%s) - start )) s)"
done

echo
echo "== all benchmarks: $SECS s x $ROUNDS rounds per case, 8 clients (rls: 3 per shape, the shapes at the same time), $(nproc) cores, $(date -u '+%Y-%m-%d %H:%M') UTC, orders $(sed -n "s/^default_version = '\(.*\)'/\1/p" "$REPO_DIR/orders.control")"
awk -F '\t' '
    function met(v, t,   op, x) {
        if (t == "-") return ""
        split(t, p, " "); op = p[1]; x = p[2] + 0
        if (op == ">=") return (v + 0 >= x) ? "met" : "NOT MET"
        if (op == "<=") return (v + 0 <= x) ? "met" : "NOT MET"
        return "?"
    }
    BEGIN { printf "%-68s %7s  %-8s %s\n", "ratio", "value", "target", "" }
    { printf "%-68s %6.2fx  %-8s %s\n", $1, $2, $3, met($2, $3) }' "$RESULTS"
[ -z "$failed" ] || { echo "benchmarks that failed:$failed"; exit 1; }
