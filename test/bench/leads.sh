#!/usr/bin/env bash
# Lead counter benchmark (issue: lead campaigns).  One run, 8 pgbench
# clients inserting approved leads, ratios printed:
#   hot order pre-loaded with 10k, then 100k leads: (a) C counter, (b) floor
#     (INSERT; UPDATE counter; in one transaction, no triggers), (b1) the same
#     in one statement, (c) seed 002's recount trigger;
#   leads spread over 1,000 orders: (a) vs (b1) vs a bare INSERT with no counter;
#   a 100k-row bulk UPDATE moving leads between orders: with the counter vs
#     the same UPDATE with the counter trigger disabled.
# Usage: test/bench/leads.sh [seconds per case, default 15] [rounds, default 3]
source "$(dirname "$0")/../lib.sh"
SECS=${1:-15}
ROUNDS=${2:-3}

bench_prepare

tps() {   # tps SCRIPT
    pgbench -n -M prepared -c 8 -j 2 -T "$SECS" -f "$REPO_DIR/test/bench/$1.pgbench" orders_bench 2>&1 \
        | awk '/^tps/ {print int($3)}'
}
mean() {  # mean SCRIPT -> mean tps over ROUNDS (cases interleaved by the caller)
    local s=0; for v in "$@"; do s=$((s + v)); done; echo $((s / $#))
}
setup() { # setup PRELOAD
    bench_db setup_leads.sql -v preload="$1"
}

declare -A res
for preload in 10000 100000; do
    setup $preload
    a=(); b=(); b1=(); c=()
    for r in $(seq 1 "$ROUNDS"); do
        a+=("$(tps leads_hot_ours)"); b+=("$(tps leads_hot_floor)"); b1+=("$(tps leads_hot_floor1)"); c+=("$(tps leads_hot_seed)")
        echo "hot order, $preload leads, round $r: ours ${a[-1]}  floor ${b[-1]}  one-statement floor ${b1[-1]}  seed ${c[-1]} tps"
    done
    res[a$preload]=$(mean "${a[@]}"); res[b$preload]=$(mean "${b[@]}"); res[b1$preload]=$(mean "${b1[@]}"); res[c$preload]=$(mean "${c[@]}")
done

setup 0
s=(); f=(); n=()
for r in $(seq 1 "$ROUNDS"); do
    s+=("$(tps leads_spread_ours)"); f+=("$(tps leads_spread_floor1)"); n+=("$(tps leads_spread_bare)")
    echo "spread over 1,000 orders, round $r: ours ${s[-1]}  one-statement floor ${f[-1]}  bare ${n[-1]} tps"
done
res[spread]=$(mean "${s[@]}"); res[sfloor]=$(mean "${f[@]}"); res[bare]=$(mean "${n[@]}")

# bulk: 100k counted leads on LB-1, moved to LB-2 and back, timed by the server
psql -q -X -d orders_bench -c "INSERT INTO orders.leads (customer_id, order_id, status)
    SELECT 'c0000000-0000-0000-0000-000000000000', 'c0000000-0000-0000-0000-000000000001', 'approved'
      FROM generate_series(1, 100000)" -c "VACUUM ANALYZE orders.leads"
bulk() {  # bulk FROM TO -> milliseconds
    psql -X -q -t -A -d orders_bench -c "\\timing on" -c "UPDATE orders.leads SET order_id = 'c0000000-0000-0000-0000-00000000000$2' WHERE order_id = 'c0000000-0000-0000-0000-00000000000$1'" \
        | awk '/^Time:/ {print $2}'
}
on=(); off=()
for r in $(seq 1 "$ROUNDS"); do
    on+=("$(bulk 1 2)")
    psql -q -X -d orders_bench -c "ALTER TABLE orders.leads DISABLE TRIGGER leads_count_update"
    off+=("$(bulk 2 1)")
    psql -q -X -d orders_bench -c "ALTER TABLE orders.leads ENABLE TRIGGER leads_count_update" -c "VACUUM orders.leads"
    # the disabled run moved leads without counting: put the counters right for the next round
    psql -q -X -d orders_bench -c "SELECT count(*) FROM orders.recount_leads()" >/dev/null
    echo "bulk UPDATE of 100k leads, round $r: with counter ${on[-1]} ms, counter disabled ${off[-1]} ms"
done
on_ms=$(printf '%s\n' "${on[@]}" | awk '{s += $1} END {printf "%.0f", s / NR}')
off_ms=$(printf '%s\n' "${off[@]}" | awk '{s += $1} END {printf "%.0f", s / NR}')

echo
echo "== lead counter, 8 clients, ${ROUNDS}x${SECS}s per case (mean tps)"
for p in 10000 100000; do
    echo "hot order with $p leads: ours ${res[a$p]}  floor ${res[b$p]}  one-statement floor ${res[b1$p]}  seed ${res[c$p]} tps;" \
         "ours/floor $(ratio ${res[a$p]} ${res[b$p]})x  ours/one-statement $(ratio ${res[a$p]} ${res[b1$p]})x  ours/seed $(ratio ${res[a$p]} ${res[c$p]})x"
done
echo "spread over 1,000 orders: ours ${res[spread]}  one-statement floor ${res[sfloor]}  bare INSERT ${res[bare]} tps;" \
     "ours/floor $(ratio ${res[spread]} ${res[sfloor]})x  ours/bare $(ratio ${res[spread]} ${res[bare]})x  floor/bare $(ratio ${res[sfloor]} ${res[bare]})x"
echo "bulk UPDATE of 100k leads: ${on_ms} ms with the counter, ${off_ms} ms without; $(ratio $on_ms $off_ms)x"
for p in 10000 100000; do
    bench_result "lead on a hot order ($p leads) / one-statement floor" "$(ratio ${res[a$p]} ${res[b1$p]})" ">= 1.00"
done
bench_result "lead spread over 1,000 orders / one-statement floor" "$(ratio ${res[spread]} ${res[sfloor]})" "-"
bench_result "bulk UPDATE of 100k leads, time with / without the counter" "$(ratio $on_ms $off_ms)" "-"
echo "stored counts wrong after the run: $(psql -X -t -A -d orders_bench -c "SELECT count(*) FROM orders.recount_leads()")"
