#!/usr/bin/env bash
# Activity-log benchmark (issue 13): what the activity log costs a status
# change.  8 pgbench clients change random orders' status through
# orders.transition() (test/bench/transition_api.pgbench), in turn
#   (a) with the activity log (the orders_activity triggers as installed)
#   (b) without it (the triggers disabled on every tracked table)
# in the same run, interleaved per round (which goes first alternates).
# Two readings: tps, and the instructions one backend runs per change
# (callgrind; steadier on a shared machine).  Target (a) >= 0.85x (b).
# Each change comes as PostgREST behind a proxy sends it (0.31.0): with a
# client address (request.headers' X-Forwarded-For; the superuser's claims
# are believed) — the request that still writes an activity row beside its
# history row; without one, a status change by no staff member is
# order_history's alone and (a) would measure no log at all.
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
request='-c request.headers={"x-forwarded-for":"203.0.113.7"}'
run() {
    PGOPTIONS="-c orders.notify=off $request" pgbench -n -M prepared -c 8 -j 2 -T "$SECS" -D i=0 \
        -f "$REPO_DIR/test/bench/transition_api.pgbench" orders_bench 2>&1 | awk '/^tps/ {print int($3)}'
}
reset() {   # equal start for every case: all orders in 'a', empty history and log, vacuumed
    psql -q -X -d orders_bench -c "SET session_replication_role = replica" \
        -c "UPDATE orders.orders SET status = 'a' WHERE lifecycle = 'bench' AND status <> 'a'" \
        -c "TRUNCATE orders.order_history, orders.activity_logs" \
        -c "VACUUM ANALYZE orders.orders, orders.order_history, orders.activity_logs" -c "CHECKPOINT"
}
case_with() { triggers ENABLE; reset; a=$(run); logged=$(psql -X -t -A -d orders_bench -c "SELECT count(*) FROM orders.activity_logs"); }
case_without() { triggers DISABLE; reset; b=$(run); }
with=0 without=0
for r in $(seq 1 "$ROUNDS"); do
    # alternate which case runs first: a drift over the run favours neither
    if [ $((r % 2)) = 1 ]; then case_with; case_without; else case_without; case_with; fi
    [ "$logged" -gt 0 ] || { echo "activity.sh: the case with the log logged nothing" >&2; exit 1; }
    echo "round $r: with the activity log $a tps ($logged rows logged), without $b tps ($(ratio $a $b)x)"
    with=$((with + a)) without=$((without + b))
done

# Work per change, steadier than tps on a shared machine (whose rounds
# swing by +-10 %): the instructions the backend serving one client runs per
# status change under valgrind's callgrind — the difference between 1,550
# and 50 changes, so that start-up is left out.  Not in it: the WAL writer,
# lock waits, cache misses (what tps adds on top).
ensure_packages valgrind
as_pg $PG_BIN/pg_ctl -D "$BENCH_DIR/data" -m fast -w stop >/dev/null
mkdir -p "$BENCH_DIR/callgrind"; chown "$(stat -c %U "$BENCH_DIR/data")" "$BENCH_DIR/callgrind"
as_pg valgrind --tool=callgrind --dump-instr=no --callgrind-out-file="$BENCH_DIR/callgrind/%p" \
    $PG_BIN/postgres -D "$BENCH_DIR/data" -c orders.notify=off > "$BENCH_DIR/callgrind.log" 2>&1 &
valgrind_pid=$!
for k in $(seq 1 120); do pg_isready -q -h "$BENCH_DIR" -p "$PGPORT" && break; sleep 1; done
changes() {   # changes N: instructions of the backend that made N status changes
    local before f
    reset; sleep 2   # the reset's backend has written its file
    before=$(ls "$BENCH_DIR/callgrind")
    PGOPTIONS="$request" pgbench -n -M prepared -c 1 -t "$1" -D i=0 -f "$REPO_DIR/test/bench/transition_api.pgbench" orders_bench >/dev/null 2>&1
    sleep 2
    for f in $(comm -13 <(echo "$before" | sort) <(ls "$BENCH_DIR/callgrind" | sort)); do
        grep -q orders_transition "$BENCH_DIR/callgrind/$f" && awk '/^summary:/ {print $2}' "$BENCH_DIR/callgrind/$f"
    done
}
work() { local small large; small=$(changes 50); large=$(changes 1550); echo $(( (large - small) / 1500 )); }
triggers ENABLE; work_with=$(work)
triggers DISABLE; work_without=$(work)
triggers ENABLE
# the server under valgrind writes its last profiles after pg_ctl sees it
# stopped: wait for valgrind itself, or the next benchmark's removal of
# $BENCH_DIR races with those writes ("Directory not empty")
as_pg $PG_BIN/pg_ctl -D "$BENCH_DIR/data" -m fast -w stop >/dev/null
wait "$valgrind_pid" 2>/dev/null || true

echo
echo "== status changes through orders.transition(), 8 clients, ${ROUNDS}x${SECS}s per case (mean tps)"
echo "with the activity log $((with / ROUNDS)), without $((without / ROUNDS)) tps: $(ratio $with $without)x (target >= 0.85x)"
echo "work per change (instructions of one backend, callgrind): with $work_with, without $work_without: $(ratio $work_without $work_with)x"
bench_result "activity log: status change with / without it (tps; instructions)" "$(ratio $with $without); $(ratio $work_without $work_with)" ">= 0.85"
