#!/usr/bin/env bash
# Memory of a bulk load (issue 14: "memory bounded — no per-row growth
# beyond the statement's transition tables"): the peak anonymous memory of
# the backend running one INSERT ... SELECT of 20,000 and of 100,000 orders
# (then of their 40,000 and 200,000 items), each in a session of its own,
# into the extension's tables and into the floor's (test/bench/setup_bulk.sql,
# the tables without triggers).  The difference between the two sizes over
# the rows added is what one more row costs in memory while the statement
# runs: PostgreSQL queues one event per row for every AFTER ROW trigger
# (the foreign keys' checks among them) until the statement ends; the
# transition tables the statement triggers read spill to disk past
# work_mem.  Reads /proc/<pid>/smaps_rollup of the server's backend: run as
# root (or as the server's user).
# Usage: test/bench/bulk_memory.sh
source "$(dirname "$0")/../lib.sh"

bench_prepare
bench_db setup_bulk.sql

cols_o="id, order_number, customer_id, delivery_area, source"
cols_i="order_id, sku, name, quantity, unit_price, product_id"
empty() {   # as bulk.sh: both sides' orders and items gone, statistics back to 0
    psql -X -q -d orders_bench -c "SET client_min_messages = warning" -c "SET session_replication_role = replica" \
        -c "TRUNCATE orders.orders, bench.orders_floor CASCADE" -c "TRUNCATE orders.activity_logs" \
        -c "UPDATE orders.customers SET total_orders = 0, total_spent = 0, returned_orders = 0, return_rate = 0" >/dev/null
}
peak_kb() {   # peak_kb SQL -> the largest anonymous memory (kB) of the importer's backend while SQL ran
    local out pid max=0 a
    out=$(mktemp)
    psql -X -q -A -t -U bulk_importer -d orders_bench -v ON_ERROR_STOP=1 \
         -c "SELECT pg_backend_pid()" -c "SELECT pg_sleep(0.5)" -c "$1" > "$out" 2>&1 &
    local job=$!
    while [ ! -s "$out" ]; do sleep 0.05; done
    pid=$(head -1 "$out")
    while kill -0 "$job" 2>/dev/null; do
        a=$(awk '/^Anonymous:/ {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null)
        [ -n "$a" ] && [ "$a" -gt "$max" ] && max=$a
        sleep 0.05
    done
    wait "$job" || { cat "$out" >&2; rm -f "$out"; exit 1; }
    rm -f "$out"
    echo "$max"
}
orders_sql() { echo "INSERT INTO $1 ($cols_o) SELECT $cols_o FROM bench.stage_orders WHERE substr(order_number, 6)::int <= $2"; }
items_sql() {
    echo "INSERT INTO $1 ($cols_i) SELECT $cols_i FROM bench.stage_items i
           WHERE i.order_id IN (SELECT id FROM bench.stage_orders WHERE substr(order_number, 6)::int <= $2)"
}
per_row() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.0f", (b - a) * 1024 / n }'; }

declare -A kb
for side in ours floor; do
    if [ $side = ours ]; then o=orders.orders i=orders.order_items; else o=bench.orders_floor i=bench.items_floor; fi
    for n in 20000 100000; do
        empty; kb[$side-orders-$n]=$(peak_kb "$(orders_sql $o $n)")
        kb[$side-items-$n]=$(peak_kb "$(items_sql $i $n)")
    done
done
echo
echo "== peak backend memory of one INSERT ... SELECT (anonymous kB), 20,000 / 100,000 orders and their 40,000 / 200,000 items"
for t in orders items; do
    rows=80000; [ $t = items ] && rows=160000
    a=$(per_row "${kb[ours-$t-20000]}" "${kb[ours-$t-100000]}" $rows)
    b=$(per_row "${kb[floor-$t-20000]}" "${kb[floor-$t-100000]}" $rows)
    printf '%-7s ours %6s / %6s kB: %4s bytes per row;  floor %6s / %6s kB: %4s bytes per row\n' "$t" \
        "${kb[ours-$t-20000]}" "${kb[ours-$t-100000]}" "$a" "${kb[floor-$t-20000]}" "${kb[floor-$t-100000]}" "$b"
done
echo "after-trigger events per inserted row: orders ours $(psql -X -t -A -d orders_bench -c "
    SELECT count(*) FROM pg_trigger WHERE tgrelid = 'orders.orders'::regclass AND tgenabled <> 'D'
       AND tgtype & 1 = 1 AND tgtype & 2 = 0 AND tgtype & 4 <> 0"), floor $(psql -X -t -A -d orders_bench -c "
    SELECT count(*) FROM pg_trigger WHERE tgrelid = 'bench.orders_floor'::regclass
       AND tgtype & 1 = 1 AND tgtype & 2 = 0 AND tgtype & 4 <> 0"); items ours $(psql -X -t -A -d orders_bench -c "
    SELECT count(*) FROM pg_trigger WHERE tgrelid = 'orders.order_items'::regclass AND tgenabled <> 'D'
       AND tgtype & 1 = 1 AND tgtype & 2 = 0 AND tgtype & 4 <> 0"), floor $(psql -X -t -A -d orders_bench -c "
    SELECT count(*) FROM pg_trigger WHERE tgrelid = 'bench.items_floor'::regclass
       AND tgtype & 1 = 1 AND tgtype & 2 = 0 AND tgtype & 4 <> 0") (AFTER ROW INSERT triggers, foreign keys' included)"
