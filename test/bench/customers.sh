#!/usr/bin/env bash
# Customer statistics benchmark (issue: customer statistics).  8 pgbench
# clients toggle payments of random orders of one customer having 1k, 10k
# and 100k orders; one run, ratios printed:
#   (a) C triggers applying deltas (statistics; since 0.6.0 also the ledger
#   posting)  (b) floor: order UPDATE + customers UPDATE by the delta, no
#   triggers  (b2) the floor plus the ledger row  (c) seed 004's recompute trigger
# Usage: test/bench/customers.sh [seconds per case, default 15] [rounds, default 3]
source "$(dirname "$0")/../lib.sh"
SECS=${1:-15}
ROUNDS=${2:-3}

bench_prepare
bench_db setup_customers.sql

tps() {   # tps SCRIPT K SIZE
    pgbench -n -M prepared -c 8 -j 2 -T "$SECS" -D k="$2" -D size="$3" \
        -f "$REPO_DIR/test/bench/$1.pgbench" orders_bench 2>&1 | awk '/^tps/ {print int($3)}'
}
summary=""
for kn in 3:1000 4:10000 5:100000; do
    k=${kn%%:*} n=${kn#*:}
    a=0 b=0 b2=0 c=0
    for r in $(seq 1 "$ROUNDS"); do
        ta=$(tps customers_ours $k $n); tb=$(tps customers_floor $k $n)
        tb2=$(tps customers_floor_ledger $k $n); tc=$(tps customers_seed $k $n)
        echo "customer with $n orders, round $r: ours $ta  floor $tb  floor+ledger $tb2  seed $tc tps"
        a=$((a + ta)) b=$((b + tb)) b2=$((b2 + tb2)) c=$((c + tc))
    done
    summary="$summary
customer with $n orders: ours $((a / ROUNDS))  floor $((b / ROUNDS))  floor+ledger $((b2 / ROUNDS))  seed $((c / ROUNDS)) tps; ours/floor $(ratio $a $b)x  ours/(floor+ledger) $(ratio $a $b2)x  ours/seed $(ratio $a $c)x"
    bench_result "customer statistics ($n orders) / floor + ledger" "$(ratio $a $b2)" "-"
done
echo
echo "== customer statistics, 8 clients, ${ROUNDS}x${SECS}s per case (mean tps)$summary"
echo "customers whose statistics disagree with a recount: $(psql -X -t -A -d orders_bench -c "SELECT count(*) FROM orders.recount_customer_stats()")"
echo "orders whose ledger disagrees with what they earned: $(psql -X -t -A -d orders_bench -c "SELECT count(*) FROM orders.ledger_discrepancies")"
