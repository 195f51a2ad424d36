#!/usr/bin/env bash
# Catalog benchmark (0.44.0): a storefront's page of product_catalog() on a
# catalog of 100,000 products, 8 pgbench clients, half the calls of one
# category.  One run, cases interleaved per round:
#   (1) ours: orders.product_catalog(category, after_name) — a page of 100
#   (2) floor: the same page written by hand on the tables
#   (3) 0.43.0's shape: the whole catalog sorted, 100 rows shown
# Usage: test/bench/catalog.sh [seconds per case, default 10] [rounds, default 2]
source "$(dirname "$0")/../lib.sh"
SECS=${1:-10}
ROUNDS=${2:-2}

bench_prepare
bench_db setup_catalog.sql

tps() {   # tps FILE
    pgbench -n -M prepared -c 8 -j 2 -T "$SECS" -f "$REPO_DIR/test/bench/$1.pgbench" orders_bench 2>&1 |
        awk '/^tps/ {print int($3)}'
}
s1=0 s2=0 s3=0
for r in $(seq 1 "$ROUNDS"); do
    t1=$(tps catalog_ours); t2=$(tps catalog_floor); t3=$(tps catalog_whole)
    echo "round $r: ours $t1  floor $t2  whole catalog sorted $t3 tps"
    s1=$((s1 + t1)) s2=$((s2 + t2)) s3=$((s3 + t3))
done
echo
echo "== a catalog page of 100 of 100,000 products, 8 clients, ${ROUNDS}x${SECS}s per case (mean tps)"
echo "product_catalog()        $((s1 / ROUNDS)) tps  $(ratio $s1 $s2)x floor"
echo "floor (by hand)          $((s2 / ROUNDS)) tps"
echo "whole catalog (0.43.0)   $((s3 / ROUNDS)) tps  $(ratio $s3 $s2)x floor"
bench_result "catalog: product_catalog page / floor" "$(ratio $s1 $s2)" "-"
bench_result "catalog: 0.43.0's whole-catalog sort / floor" "$(ratio $s3 $s2)" "-"
