#!/usr/bin/env bash
# Size benchmark (issue 14): do costs grow with the data?  Two databases in
# one cluster, filled by test/bench/setup_size.sql:
#   small: 50,000 orders, 5,000 customers, 1,000 campaigns, 50,000 leads
#   large: 5,000,000 orders, 500,000 customers, 100,000 campaigns, 5,000,000 leads
# (one history row per order, about 10 orders per customer in both).  8
# pgbench clients run each operation on the same ids in both databases:
#   status  — orders.transition() a <-> b (notifications off)
#   lead    — an approved lead on one of 1,000 campaigns
#   payment — a delivered order's payment collected <-> pending
# interleaved per round (small, then large), and beside each the same work
# written by hand in one statement (test/bench/size_*_floor.pgbench) on the
# same tables with the extension's triggers off (session_replication_role =
# replica; the floors keep the counters the recounts check right — not the
# revenue ledger, which no floor writes and nothing here checks):
# what PostgreSQL itself loses on the larger tables.
# Target: ours on large >= 0.9x ours on small.
# Usage: test/bench/size.sh [seconds per case, default 10] [rounds, default 2]
# ORDERS_SIZE_LARGE=N (default 5000000) orders in the large database (its
# customers N/10, campaigns N/50); a smaller N gives a quick run.
source "$(dirname "$0")/../lib.sh"
SECS=${1:-10}
ROUNDS=${2:-2}
LARGE=${ORDERS_SIZE_LARGE:-5000000}

bench_prepare
psql -q -X -d postgres -c "ALTER SYSTEM SET maintenance_work_mem = '256MB'" -c "SELECT pg_reload_conf()" >/dev/null

declare -A customers=([small]=5000 [large]=$((LARGE / 10)))
make_db() {   # make_db NAME ORDERS CAMPAIGNS
    local started=$SECONDS
    psql -q -X -d postgres -c "DROP DATABASE IF EXISTS orders_$1" -c "CREATE DATABASE orders_$1"
    psql -q -X -d "orders_$1" -v ON_ERROR_STOP=1 -c "CREATE EXTENSION orders" -f "$REPO_DIR/test/bench/setup_size.sql" \
        -c "CALL bench.fill($2, ${customers[$1]}, $3)" \
        -c "VACUUM ANALYZE" -c "CHECKPOINT" >/dev/null
    echo "orders_$1: $2 orders loaded in $((SECONDS - started)) s, $(psql -X -t -A -d "orders_$1" -c "SELECT pg_size_pretty(pg_database_size(current_database()))");" \
         "$(recounts "$1")"
}
recounts() {   # recounts DB — the counters of what the clients touch, against a recount
    echo "customers whose statistics disagree with a recount: $(psql -X -t -A -d "orders_$1" -c \
        "SELECT count(*) FROM generate_series(1, least(${customers[$1]}, 17000)) c, orders.recount_customer_stats(bench.customer_id(c))"),"\
         "campaigns whose lead count disagrees: $(psql -X -t -A -d "orders_$1" -c \
        "SELECT count(*) FROM generate_series(16001, 17000) n, orders.recount_leads(bench.order_id(n))")"
}
make_db small 50000 1000
make_db large "$LARGE" $((LARGE / 50))

tps() {   # tps DB SCRIPT — SCRIPT: size_<operation>[_floor]
    local options="-c orders.notify=off"
    case $2 in *_floor) options="$options -c session_replication_role=replica" ;; esac
    case $2 in size_status*)   # every walk starts with all its orders in a
        psql -q -X -d "orders_$1" -c "SET session_replication_role = replica" \
            -c "UPDATE orders.orders SET status = 'a' WHERE lifecycle = 'bench' AND status <> 'a'" ;;
    esac
    PGOPTIONS="$options" pgbench -n -M prepared -c 8 -j 2 -T "$SECS" -D i=0 -D "customers=${customers[$1]}" \
        -f "$REPO_DIR/test/bench/$2.pgbench" "orders_$1" 2>&1 | awk '/^tps/ {print int($3)}'
}
declare -A sum
for r in $(seq 1 "$ROUNDS"); do
    for op in status lead payment; do
        s=$(tps small size_$op); l=$(tps large size_$op); fs=$(tps small size_${op}_floor); fl=$(tps large size_${op}_floor)
        [ -n "$s" ] && [ -n "$l" ] && [ -n "$fs" ] && [ -n "$fl" ] || { echo "a pgbench run of $op failed" >&2; exit 1; }
        sum[$op.small]=$(( ${sum[$op.small]:-0} + s )) sum[$op.large]=$(( ${sum[$op.large]:-0} + l ))
        sum[$op.fsmall]=$(( ${sum[$op.fsmall]:-0} + fs )) sum[$op.flarge]=$(( ${sum[$op.flarge]:-0} + fl ))
        echo "round $r: $op small/large: ours $s / $l tps ($(ratio "$l" "$s")x), floor $fs / $fl tps ($(ratio "$fl" "$fs")x)"
    done
done
echo
echo "== the same operations on ${LARGE} orders vs 50,000 orders, 8 clients, ${ROUNDS}x${SECS}s per case (mean tps)"
for op in status lead payment; do
    echo "$op: ours small $(( ${sum[$op.small]} / ROUNDS ))  large $(( ${sum[$op.large]} / ROUNDS )) tps, large/small $(ratio "${sum[$op.large]}" "${sum[$op.small]}")x (target >= 0.90x);" \
         "floor small $(( ${sum[$op.fsmall]} / ROUNDS ))  large $(( ${sum[$op.flarge]} / ROUNDS )) tps, large/small $(ratio "${sum[$op.flarge]}" "${sum[$op.fsmall]}")x"
    bench_result "size: $op on $LARGE orders / on 50,000" "$(ratio "${sum[$op.large]}" "${sum[$op.small]}")" ">= 0.90"
    bench_result "size: $op, its floor on $LARGE orders / on 50,000" "$(ratio "${sum[$op.flarge]}" "${sum[$op.fsmall]}")" "-"
done
for db in small large; do echo "orders_$db after the run: $(recounts $db)"; done
