#!/usr/bin/env bash
# Activity-log benchmark (issue 13): what the activity log costs a status
# change.  8 pgbench clients change random orders' status through
# orders.transition() (test/bench/transition_api.pgbench), in turn
#   (a) with the activity log (the orders_activity triggers as installed)
#   (b) without it (the triggers disabled on every tracked table)
# in the same run, interleaved per round.  Target (a) >= 0.85x (b).
# Usage: test/bench/activity.sh [seconds per case, default 20] [rounds, default 3]
source "$(dirname "$0")/../lib.sh"
SECS=${1:-20}
ROUNDS=${2:-3}

bench_prepare
bench_db setup_transition.sql

tracked="orders.orders orders.customers orders.products orders.staff orders.webhooks"
triggers() {   # triggers ENABLE|DISABLE
    for t in $tracked; do echo "ALTER TABLE $t $1 TRIGGER orders_activity;"; done | psql -q -X -d orders_bench
}
run() {
    PGOPTIONS="-c orders.notify=off" pgbench -n -M prepared -c 8 -j 2 -T "$SECS" -D i=0 \
        -f "$REPO_DIR/test/bench/transition_api.pgbench" orders_bench 2>&1 | awk '/^tps/ {print int($3)}'
}
reset() {   # equal start for every case: all orders in 'a', empty history and log, vacuumed
    psql -q -X -d orders_bench -c "SET session_replication_role = replica" \
        -c "UPDATE orders.orders SET status = 'a' WHERE lifecycle = 'bench' AND status <> 'a'" \
        -c "TRUNCATE orders.order_history, orders.activity_logs" \
        -c "VACUUM ANALYZE orders.orders, orders.order_history, orders.activity_logs" -c "CHECKPOINT"
}
with=0 without=0 logged=0
for r in $(seq 1 "$ROUNDS"); do
    triggers ENABLE; reset; a=$(run)
    logged=$(psql -X -t -A -d orders_bench -c "SELECT count(*) FROM orders.activity_logs")
    triggers DISABLE; reset; b=$(run)
    echo "round $r: with the activity log $a tps ($logged rows logged), without $b tps ($(ratio $a $b)x)"
    with=$((with + a)) without=$((without + b))
done
triggers ENABLE
echo
echo "== status changes through orders.transition(), 8 clients, ${ROUNDS}x${SECS}s per case (mean tps)"
echo "with the activity log $((with / ROUNDS)), without $((without / ROUNDS)) tps: $(ratio $with $without)x (target >= 0.85x)"
bench_result "activity log: status change with / without it" "$(ratio $with $without)" ">= 0.85"
