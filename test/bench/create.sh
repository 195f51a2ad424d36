#!/usr/bin/env bash
# Creating an order with its items over SQL, as an application or PostgREST
# does it (issue 14: what users of an order system hit most): one
# transaction, the order INSERT, then its 3 items, 8 clients, against the
# same two statements on same-shaped tables without the extension's
# triggers (test/bench/setup_webhooks.sql's floor tables), rounds
# interleaved.  No target in the issue: reported, and kept from regressing.
# Usage: test/bench/create.sh [seconds per case, default 10] [rounds, default 3]
source "$(dirname "$0")/../lib.sh"
SECS=${1:-10}
ROUNDS=${2:-3}

bench_prepare
bench_db setup_webhooks.sql >/dev/null
psql -q -X -d orders_bench -v ON_ERROR_STOP=1 <<'SQL'
CREATE TABLE bench.customers_ours (n int PRIMARY KEY, id uuid NOT NULL);
WITH c AS (INSERT INTO orders.customers (full_name, phone)
           SELECT 'Buyer ' || n, '+1555' || lpad(n::text, 7, '0') FROM generate_series(1, 1000) n RETURNING id, phone)
INSERT INTO bench.customers_ours SELECT right(phone, 7)::int, id FROM c;
INSERT INTO bench.customers_floor (full_name, phone)
SELECT 'Buyer ' || n, '+1555' || lpad(n::text, 7, '0') FROM generate_series(1, 1000) n;
VACUUM ANALYZE;
SQL
tps() {   # tps SCRIPT
    pgbench -n -M prepared -c 8 -j 2 -T "$SECS" -f "$REPO_DIR/test/bench/$1.pgbench" orders_bench 2>&1 | awk '/^tps/ {print int($3)}'
}
tps create_ours >/dev/null; tps create_floor >/dev/null     # warm-up: plans, caches, the first pages
a=0 b=0
for r in $(seq 1 "$ROUNDS"); do
    ta=$(tps create_ours); tb=$(tps create_floor)
    echo "round $r: ours $ta  floor $tb tps  ($(ratio $ta $tb)x)"
    a=$((a + ta)) b=$((b + tb))
done
sql() { psql -X -t -A -d orders_bench -c "$1"; }
echo
echo "== an order and its 3 items created in one transaction, 8 clients, ${ROUNDS}x${SECS}s per case (mean tps)"
echo "ours   $((a / ROUNDS)) tps  $(ratio $a $b)x the floor"
echo "floor  $((b / ROUNDS)) tps"
echo "orders: $(sql "SELECT count(*) FROM orders.orders WHERE source = 'api'"); subtotals that disagree with a recount: $(sql "SELECT count(*) FROM orders.recount_subtotals()"), customer statistics: $(sql "SELECT count(*) FROM orders.recount_customer_stats()")"
bench_result "order created with 3 items over SQL / floor" "$(ratio $a $b)" "-"
