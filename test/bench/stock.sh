#!/usr/bin/env bash
# Stock benchmark: what the stock moves cost a status change.  8 pgbench
# clients move random orders between two statuses; every order has two stock
# items.  One run, cases interleaved per round:
#   (1) the second status holds stock, items of 2 hot products
#   (2) the second status holds stock, items of 1,000 products
#   (3) baseline: the same lifecycle without holds_stock (no stock moves)
# Usage: test/bench/stock.sh [seconds per case, default 15] [rounds, default 3]
source "$(dirname "$0")/../lib.sh"
SECS=${1:-15}
ROUNDS=${2:-3}

bench_prepare
bench_db setup_stock.sql

tps() {   # tps K
    PGOPTIONS="-c orders.notify=off" pgbench -n -M prepared -c 8 -j 2 -T "$SECS" -D k="$1" \
        -f "$REPO_DIR/test/bench/stock_toggle.pgbench" orders_bench 2>&1 | awk '/^tps/ {print int($3)}'
}
s1=0 s2=0 s3=0
for r in $(seq 1 "$ROUNDS"); do
    t1=$(tps 1); t2=$(tps 2); t3=$(tps 3)
    echo "round $r: hot products $t1  spread $t2  no stock $t3 tps"
    s1=$((s1 + t1)) s2=$((s2 + t2)) s3=$((s3 + t3))
done
echo
echo "== status changes moving stock, 8 clients, ${ROUNDS}x${SECS}s per case (mean tps, orders.notify off)"
echo "hot products (2)     $((s1 / ROUNDS)) tps  $(ratio $s1 $s3)x no-stock baseline"
echo "spread (1,000)       $((s2 / ROUNDS)) tps  $(ratio $s2 $s3)x no-stock baseline"
echo "no stock (baseline)  $((s3 / ROUNDS)) tps"
bench_result "stock: status change moving 2 hot products / no stock" "$(ratio $s1 $s3)" ">= 0.80"
bench_result "stock: status change moving spread products / no stock" "$(ratio $s2 $s3)" "-"
echo "products whose stock disagrees with the orders holding it: $(psql -X -t -A -d orders_bench -c "
    SELECT count(*) FROM orders.products p
      LEFT JOIN (SELECT i.product_id, sum(i.quantity) AS held FROM orders.order_items i
                   JOIN orders.orders o ON o.id = i.order_id
                  WHERE o.lifecycle = 'stock_bench' AND o.status = 'b' GROUP BY 1) h ON h.product_id = p.id
     WHERE p.stock_quantity <> 1000000000 - coalesce(h.held, 0)")"
