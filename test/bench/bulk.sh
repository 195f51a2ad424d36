#!/usr/bin/env bash
# Bulk loads (issue 14): 200,000 orders with 400,000 items (two each) loaded
#   (a) by COPY ... FROM STDIN (the seed's csv source), orders then items,
#   (b) by INSERT ... SELECT from a staging table (a set-based import),
# and a bulk status UPDATE of 100,000 of them (new -> confirmation_pending),
# each into the extension's tables (every trigger: order numbers, status
# guard, statistics, subtotals, stock, workflows, activity log) and into the
# same tables without triggers (test/bench/setup_bulk.sql), in one run,
# interleaved, each load into emptied tables.  Ratios: time without /
# time with (>= 0.7 asked for the loads), and time with / without for the
# UPDATE (<= 1.5 asked).  Loaded as an application's importer role
# (bulk_importer, BYPASSRLS), not the owner: an owner's COPY is a restore,
# whose rows the triggers take as dumped.
# Usage: test/bench/bulk.sh [unused] [rounds, default 2]
source "$(dirname "$0")/../lib.sh"
ROUNDS=${2:-2}

bench_prepare
bench_db setup_bulk.sql
DATA=$BENCH_DIR/bulk-data
mkdir -p "$DATA"
psql -X -q -d orders_bench -c "\copy bench.stage_orders TO '$DATA/orders.csv' CSV" \
     -c "\copy bench.stage_items TO '$DATA/items.csv' CSV"

ms() {   # ms SQL... -> milliseconds the statements took together (psql \timing), as the importer
    psql -X -q -U bulk_importer -d orders_bench -v ON_ERROR_STOP=1 -c '\timing on' "$@" 2>&1 |
        awk '/^Time:/ {s += $2} /ERROR/ {print > "/dev/stderr"} END {printf "%.0f", s}'
}
empty() {   # empty both sides' orders and items (no triggers: session_replication_role), statistics back to 0
    psql -X -q -d orders_bench -c "SET client_min_messages = warning" -c "SET session_replication_role = replica" \
        -c "TRUNCATE orders.orders, bench.orders_floor CASCADE" -c "TRUNCATE orders.activity_logs" \
        -c "UPDATE orders.customers SET total_orders = 0, total_spent = 0, returned_orders = 0, return_rate = 0" \
        -c "VACUUM ANALYZE orders.orders, orders.order_items, bench.orders_floor, bench.items_floor" -c "CHECKPOINT" >/dev/null
}
cols_o="id, order_number, customer_id, delivery_area, source"
cols_i="order_id, sku, name, quantity, unit_price, product_id"
copy_into() {   # copy_into ORDERS_TABLE ITEMS_TABLE
    ms -c "\copy $1 ($cols_o) FROM '$DATA/orders.csv' CSV" -c "\copy $2 ($cols_i) FROM '$DATA/items.csv' CSV"
}
insert_into() {
    ms -c "INSERT INTO $1 ($cols_o) SELECT $cols_o FROM bench.stage_orders" \
       -c "INSERT INTO $2 ($cols_i) SELECT $cols_i FROM bench.stage_items"
}
update_in() {
    ms -c "UPDATE $1 SET status = 'confirmation_pending' WHERE source = 'csv' AND substr(order_number, 6)::int % 2 = 0"
}
declare -A t
for k in copy_ours copy_floor insert_ours insert_floor update_ours update_floor; do t[$k]=0; done
for r in $(seq 1 "$ROUNDS"); do
    empty; a=$(copy_into orders.orders orders.order_items); b=$(copy_into bench.orders_floor bench.items_floor)
    ua=$(update_in orders.orders); ub=$(update_in bench.orders_floor)
    empty; c=$(insert_into orders.orders orders.order_items); d=$(insert_into bench.orders_floor bench.items_floor)
    echo "round $r: COPY ours $a ms, floor $b ms; INSERT ... SELECT ours $c ms, floor $d ms; UPDATE of 100k ours $ua ms, floor $ub ms"
    t[copy_ours]=$((t[copy_ours] + a)) t[copy_floor]=$((t[copy_floor] + b))
    t[insert_ours]=$((t[insert_ours] + c)) t[insert_floor]=$((t[insert_floor] + d))
    t[update_ours]=$((t[update_ours] + ua)) t[update_floor]=$((t[update_floor] + ub))
done
sql() { psql -X -t -A -d orders_bench -c "$1"; }
echo
echo "== bulk loads of 200,000 orders with 400,000 items, ${ROUNDS} rounds (mean ms; ratio = floor time / our time)"
echo "COPY:                $((t[copy_ours] / ROUNDS)) ms ours, $((t[copy_floor] / ROUNDS)) ms floor: $(ratio ${t[copy_floor]} ${t[copy_ours]})x (target >= 0.7x)"
echo "INSERT ... SELECT:   $((t[insert_ours] / ROUNDS)) ms ours, $((t[insert_floor] / ROUNDS)) ms floor: $(ratio ${t[insert_floor]} ${t[insert_ours]})x (target >= 0.7x)"
echo "UPDATE of 100k:      $((t[update_ours] / ROUNDS)) ms ours, $((t[update_floor] / ROUNDS)) ms floor: our time $(ratio ${t[update_ours]} ${t[update_floor]})x the floor's (target <= 1.5x)"
echo "orders loaded: $(sql "SELECT count(*) FROM orders.orders WHERE source = 'csv'"), items: $(sql "SELECT count(*) FROM orders.order_items"), subtotals that disagree with a recount: $(sql "SELECT count(*) FROM orders.recount_subtotals()"), customer statistics: $(sql "SELECT count(*) FROM orders.recount_customer_stats()")"
bench_result "bulk: COPY of 200k orders + 400k items, floor time / ours" "$(ratio ${t[copy_floor]} ${t[copy_ours]})" ">= 0.70"
bench_result "bulk: INSERT ... SELECT of the same, floor time / ours" "$(ratio ${t[insert_floor]} ${t[insert_ours]})" ">= 0.70"
bench_result "bulk: UPDATE of 100k orders' status, our time / floor's" "$(ratio ${t[update_ours]} ${t[update_floor]})" "<= 1.50"
