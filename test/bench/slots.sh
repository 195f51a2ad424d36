#!/usr/bin/env bash
# Slot benchmark (issue: service slots).  8 pgbench clients reserve and
# confirm places on a pool of 2,000 slots, in one run, ratios printed:
#   (a) orders.reserve_time_slot + orders.confirm_booking (C)
#   (b) floor: one conditional UPDATE of the count + the reservation INSERT
#   (c) the same two steps as PL/pgSQL functions (seed 003's description)
# Usage: test/bench/slots.sh [seconds per case, default 15] [rounds, default 3]
source "$(dirname "$0")/../lib.sh"
SECS=${1:-15}
ROUNDS=${2:-3}

bench_prepare
bench_db setup_slots.sql

tps() { pgbench -n -M prepared -c 8 -j 2 -T "$SECS" -f "$REPO_DIR/test/bench/$1.pgbench" orders_bench 2>&1 | awk '/^tps/ {print int($3)}'; }
a=0; b=0; c=0
for r in $(seq 1 "$ROUNDS"); do
    ta=$(tps slots_ours); tb=$(tps slots_floor); tc=$(tps slots_plpgsql)
    echo "round $r: ours $ta  floor $tb  plpgsql $tc tps"
    a=$((a + ta)); b=$((b + tb)); c=$((c + tc))
done
echo
echo "== reserve + confirm, 8 clients, ${ROUNDS}x${SECS}s per case (mean tps)"
awk -v a=$a -v b=$b -v c=$c -v r=$ROUNDS 'BEGIN {
    printf "ours %.0f  floor %.0f  plpgsql %.0f tps; ours/floor %.2fx  ours/plpgsql %.2fx\n", a / r, b / r, c / r, a / b, a / c }'
bench_result "slots: reserve + confirm / PL/pgSQL" "$(ratio $a $c)" ">= 1.50"
bench_result "slots: reserve + confirm / one-statement floor" "$(ratio $a $b)" "-"
echo "slots whose counts disagree with their reservations: $(psql -X -t -A -d orders_bench -c "SELECT count(*) FROM orders.recount_slots()")"
