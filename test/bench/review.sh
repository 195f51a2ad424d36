#!/usr/bin/env bash
# Agency-order review benchmark (issue 11): 8 pgbench clients on one client
# group of 1,000 suggested sites (link_count 1,000, so it never fills); each
# pgbench transaction approves one random site and sets it back:
#   (a) ours: orders.review_sites(group, [{selection_id, status}]) twice —
#       the site's status, its item made / taken away by site_items, the
#       counters by site_counts (C), the order's subtotal by its items
#   (b) floor: the same on same-shaped tables without triggers, by hand:
#       UPDATE the selection, INSERT the item, UPDATE the group's counters in
#       one transaction (one statement), and back (UPDATE, DELETE, UPDATE)
#   (b2) the floor plus the order's subtotal/total UPDATE (ours keeps them)
# One run, cases interleaved per round; target (a) >= 0.9x (b).
# The groups case (0.17.0): the same three, each client on its own group of
# the one order (a multi-client agency order reviewed by all its clients at
# once): the clients share the order's row (subtotal) but no group row.
# Usage: test/bench/review.sh [seconds per case, default 10] [rounds, default 2]
# ORDERS_BENCH_INSTALLED=1: the extension is installed already (e.g. with
# ORDERS_PG_BIN pointing at a private copy): skip the packages and the build.
source "$(dirname "$0")/../lib.sh"
SECS=${1:-10}
ROUNDS=${2:-2}

if [ "${ORDERS_BENCH_INSTALLED:-0}" = 1 ]; then start_bench_cluster; else bench_prepare; fi
bench_db setup_review.sql >/dev/null

tps() {   # tps SCRIPT
    pgbench -n -M prepared -c 8 -j 2 -T "$SECS" -f "$REPO_DIR/test/bench/$1.pgbench" orders_bench 2>&1 | awk '/^tps/ {print int($3)}'
}
a=0 b=0 b2=0 ga=0 gb=0 gb2=0
for r in $(seq 1 "$ROUNDS"); do
    ta=$(tps review_ours); tb=$(tps review_floor); tb2=$(tps review_floor_subtotal)
    echo "round $r, one group: ours $ta  floor $tb  floor+subtotal $tb2 tps  ($(ratio $ta $tb)x, $(ratio $ta $tb2)x)"
    a=$((a + ta)) b=$((b + tb)) b2=$((b2 + tb2))
    ta=$(tps review_ours_groups); tb=$(tps review_floor_groups); tb2=$(tps review_floor_subtotal_groups)
    echo "round $r, 8 groups: ours $ta  floor $tb  floor+subtotal $tb2 tps  ($(ratio $ta $tb)x, $(ratio $ta $tb2)x)"
    ga=$((ga + ta)) gb=$((gb + tb)) gb2=$((gb2 + tb2))
done
echo
echo "== review_sites approving one site of a group of 1,000 and setting it back, 8 clients, ${ROUNDS}x${SECS}s per case (mean tps)"
echo "one group:  ours $((a / ROUNDS))  floor $((b / ROUNDS))  floor+subtotal $((b2 / ROUNDS)) tps; ours/floor $(ratio $a $b)x  ours/(floor+subtotal) $(ratio $a $b2)x"
echo "8 groups of one order: ours $((ga / ROUNDS))  floor $((gb / ROUNDS))  floor+subtotal $((gb2 / ROUNDS)) tps; ours/floor $(ratio $ga $gb)x  ours/(floor+subtotal) $(ratio $ga $gb2)x"
bench_result "review: approve one site of 1,000 / floor" "$(ratio $a $b)" ">= 0.90"
bench_result "review: approve one site of 1,000 / floor + subtotal" "$(ratio $a $b2)" "-"
bench_result "review: 8 clients on 8 groups of one order / floor (/ + subtotal)" "$(ratio $ga $gb) ($(ratio $ga $gb2))" "-"
echo "groups whose counters disagree with a recount: $(psql -X -t -A -d orders_bench -c "SELECT count(*) FROM orders.recount_site_counts()")"
echo "items left on RB-1 (should be 0): ours $(psql -X -t -A -d orders_bench -c "SELECT count(*) FROM orders.order_items WHERE order_id = 'f0000000-0000-0000-0000-0000000000a1'")  floor $(psql -X -t -A -d orders_bench -c "SELECT count(*) FROM bench.items_floor WHERE order_id = 'f0000000-0000-0000-0000-0000000000a1'")"
echo "subtotals (should be 0.00): ours $(psql -X -t -A -d orders_bench -c "SELECT subtotal FROM orders.orders WHERE order_number = 'RB-1'")  floor $(psql -X -t -A -d orders_bench -c "SELECT subtotal FROM bench.orders_floor WHERE order_number = 'RB-1'")"
