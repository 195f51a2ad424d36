#!/usr/bin/env bash
# Status-change benchmark (issue: foundation).  One run, 8 pgbench clients,
# each case in turn, ratios printed against the hand-written floor:
#   (a1) orders.transition()        (a2) UPDATE through the C triggers
#   (b)  floor: UPDATE + INSERT history, no triggers
#   (c)  seed 004's PL/pgSQL triggers
# (a1) and (a2) run with the default configuration (orders.notify =
# batched: the database's announcer sends the NOTIFYs after commit, in
# batches) and with orders.notify off ("+quiet"), since neither (b) nor (c)
# notifies; (a1) also with "+immediate" (each transaction notifies at its
# commit, the default up to 0.20.0: PostgreSQL serializes the commits of
# notifying transactions).
# Usage: test/bench/transition.sh [seconds per case, default 20] [rounds, default 3]
# Starts its own throwaway cluster (fsync on, synchronous_commit off, so the
# figures measure CPU work rather than the disk).
source "$(dirname "$0")/../lib.sh"
SECS=${1:-20}
ROUNDS=${2:-3}

bench_prepare
bench_db setup_transition.sql

run() {   # run CASE -> tps; "+quiet" runs its script with orders.notify off, "+immediate" immediate
    local script=${1%+*} opts=""
    case "$1" in
        *+quiet) opts="-c orders.notify=off" ;;
        *+immediate) opts="-c orders.notify=immediate" ;;
    esac
    PGOPTIONS="$opts" pgbench -n -M prepared -c 8 -j 2 -T "$SECS" -D i=0 \
        -f "$REPO_DIR/test/bench/$script.pgbench" orders_bench 2>&1 | awk '/^tps/ {print int($3)}'
}
declare -A sum
cases="transition_floor transition_plpgsql transition_api transition_update transition_api+immediate transition_api+quiet transition_update+quiet"
for c in $cases; do sum[$c]=0; done
reset() {   # equal start for every case: all orders in 'a', empty history and activity log, vacuumed
    psql -q -X -d orders_bench -c "SET session_replication_role = replica" \
        -c "UPDATE orders.orders SET status = 'a' WHERE lifecycle = 'bench' AND status <> 'a'" \
        -c "TRUNCATE orders.order_history, orders.activity_logs, bench.history_floor, bench.history_plpgsql" \
        -c "VACUUM ANALYZE orders.orders, bench.orders_floor, bench.orders_plpgsql, orders.order_history, orders.activity_logs, bench.history_floor, bench.history_plpgsql" \
        -c "CHECKPOINT"
}
for r in $(seq 1 "$ROUNDS"); do
    for c in $cases; do
        reset
        tps=$(run "$c")
        echo "round $r  $c: $tps tps"
        sum[$c]=$(( ${sum[$c]} + tps ))
    done
done
b=${sum[transition_floor]}
echo
echo "== status changes, 8 clients, ${ROUNDS}x${SECS}s per case (mean tps, ratio to floor)"
for c in $cases; do
    awk -v n="$c" -v s="${sum[$c]}" -v r="$ROUNDS" -v b="$b" \
        'BEGIN { printf "%-20s %8.0f tps   %.2fx floor\n", n, s / r, s / b }'
done
awk -v a="${sum[transition_update+quiet]}" -v c="${sum[transition_plpgsql]}" \
    'BEGIN { printf "C trigger UPDATE (orders.notify off) vs seed PL/pgSQL (no notify): %.2fx\n", a / c }'
bench_result "status change: transition(), notify off / floor" "$(ratio "${sum[transition_api+quiet]}" "$b")" ">= 1.00"
bench_result "status change: UPDATE, notify off / floor" "$(ratio "${sum[transition_update+quiet]}" "$b")" ">= 1.00"
bench_result "status change: transition(), default configuration / floor" "$(ratio "${sum[transition_api]}" "$b")" ">= 0.90"
bench_result "status change: UPDATE, default configuration / floor" "$(ratio "${sum[transition_update]}" "$b")" ">= 0.90"
bench_result "status change: transition(), orders.notify = immediate / floor" "$(ratio "${sum[transition_api+immediate]}" "$b")" "-"
bench_result "status change: UPDATE, notify off / seed PL/pgSQL" "$(ratio "${sum[transition_update+quiet]}" "${sum[transition_plpgsql]}")" "-"
psql -X -d orders_bench -t -A -c "SELECT 'changes sent by the status announcer in all rounds: ' || announced FROM orders.status_announcer"
psql -X -d orders_bench -t -A -c "SELECT 'history rows of the last case: ' || (SELECT count(*) FROM orders.order_history)
    || ' (each an edge of the graph: ' || (SELECT bool_and(e.from_status IS NOT NULL) FROM orders.order_history h
       LEFT JOIN orders.lifecycle_transitions e ON e.lifecycle = 'bench' AND e.from_status = h.old_status AND e.to_status = h.new_status) || ')'"
