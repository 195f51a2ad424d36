#!/usr/bin/env bash
# Row level security benchmark (issue: policies must stay fast).  On pgTAP
# 12's data set (100k orders, 20k customers; test/bench/setup_rls.sql), each
# query of the dashboard and of a customer's order list runs in three
# shapes, all as PostgREST sends a request (pgbench logs in as
# authenticator; per transaction set_config('role', …) and the persona's
# JWT claims, then the query):
#   (a) as the owner (the role switched to is the extension's owner, a
#       superuser: no row level security) — the floor
#   (b) as the API: role authenticated, under the policies
#   (c) the API without the policies (role rls_floor: BYPASSRLS with
#       authenticated's rights), so the policies' own cost is visible
# The three shapes run at the same time, each its own pgbench (3 clients,
# application_name naming the shape), and each shape's speed is the server
# CPU its backends spent per transaction (/proc, sampled until they exit):
# whatever else the machine does slows the three alike, and a shape's
# waits (for a core, for the client) are not counted as its work.  The
# ratio API/owner = CPU per request of the owner / of the API — the issue
# asks >= 0.8.  It is stricter than a throughput ratio, which would also
# count the client's equal share.  Measured apart (one shape after the
# other) one case's ratio moved by up to 0.4 between rounds on a shared
# 2-core machine; mixed as scripts of one run it was steady but diluted
# towards 1 (doc/decisions.md, "Measuring the policies' cost").
# Usage: test/bench/rls.sh [seconds per round, default 8] [rounds, default 3]
# ORDERS_BENCH_NO_INSTALL=1 skips the package check and build/install (the
# extension is already installed in ORDERS_PG_BIN); ORDERS_BENCH_EXPLAIN=1
# prints EXPLAIN ANALYZE of every case as owner and persona first.
ORDERS_BENCH_PORT=${ORDERS_BENCH_PORT:-54342}
ORDERS_BENCH_DIR=${ORDERS_BENCH_DIR:-/tmp/orders-bench-rls}
export ORDERS_BENCH_PORT ORDERS_BENCH_DIR
source "$(dirname "$0")/../lib.sh"
SECS=${1:-8}
ROUNDS=${2:-3}

bench_prepare
bench_db setup_rls.sql
# (c)'s role: the API path without the policies (BYPASSRLS, authenticated's rights)
psql -q -X -d orders_bench -v ON_ERROR_STOP=1 \
    -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rls_floor') THEN
            CREATE ROLE rls_floor NOLOGIN BYPASSRLS; END IF; END \$\$" \
    -c "GRANT authenticated TO rls_floor" -c "GRANT rls_floor TO authenticator" >/dev/null
# (a)'s role: the extension's owner, taken by the benchmark's login (only in
# this throwaway cluster: never let an API login take the owner's role)
owner=$(psql -X -t -A -d orders_bench -c "SELECT extowner::regrole FROM pg_extension WHERE extname = 'orders'")
psql -q -X -d orders_bench -v ON_ERROR_STOP=1 -c "GRANT \"$owner\" TO authenticator" >/dev/null

# personas (JWT subs of setup_rls.sql)
admin=00000000-0000-0000-ac50-000000000001
rep=00000000-0000-0000-ac50-000000000003
agent=00000000-0000-0000-ac50-000000000007
cust=00000000-0000-0000-acc1-00000000000a        # customer 10: 5 orders
cust_id=00000000-0000-0000-0001-00000000000a
# name|persona sub|query
CASES="recent_orders/admin|$admin|SELECT * FROM orders.recent_orders()
recent_orders/rep|$rep|SELECT * FROM orders.recent_orders()
agent_active_deliveries/agent|$agent|SELECT * FROM orders.agent_active_deliveries('00000000-0000-0000-0000-000000000007')
unassigned_orders_in_area/admin|$admin|SELECT * FROM orders.unassigned_orders_in_area('area-10')
customer_order_history/admin|$admin|SELECT * FROM orders.customer_order_history('$cust_id')
customer_order_history/customer|$cust|SELECT * FROM orders.customer_order_history('$cust_id')
vip_customers/admin|$admin|SELECT * FROM orders.vip_customers('area-7')
todays_order_summary/admin|$admin|SELECT * FROM orders.todays_order_summary
low_stock_view/admin|$admin|SELECT * FROM orders.low_stock_view
own_orders/customer|$cust|SELECT * FROM orders.orders WHERE customer_id = '$cust_id' ORDER BY created_at DESC
orders_unfiltered/customer|$cust|SELECT * FROM orders.orders ORDER BY created_at DESC LIMIT 20"

SCRIPTS=$BENCH_DIR/scripts
mkdir -p "$SCRIPTS"
[ "$(id -u)" -eq 0 ] && chmod 755 "$SCRIPTS"
n=0
while IFS='|' read -r name sub query; do
    n=$((n + 1))
    for mode in owner bypass api; do
        awk -v q="$query" '{ gsub(/@QUERY@/, q); print }' "$REPO_DIR/test/bench/rls_$mode.pgbench" > "$SCRIPTS/$n.$mode.pgbench"
    done
done <<< "$CASES"

claims() { printf '{"sub":"%s","role":"authenticated"}' "$1"; }
# together CASE_NUMBER SUB — the three shapes at once; prints, per shape
# (owner, bypass, api): "transactions CPU-µs-per-transaction"
together() {
    local mode pids=() p v
    declare -A cpu=()
    for mode in owner bypass api; do
        PGAPPNAME="rls_$mode" pgbench -n -M prepared -c 3 -j 1 -T "$SECS" -U authenticator -D claims="$(claims "$2")" \
            -D owner="$owner" -f "$SCRIPTS/$1.$mode.pgbench" orders_bench > "$SCRIPTS/out.$mode" 2>&1 &
    done
    for mode in owner bypass api; do   # each shape's 3 backends, once connected
        local found="" tries=0
        until [ "$(echo "$found" | tr ',' '\n' | grep -c .)" = 3 ]; do
            [ $((tries += 1)) -le 50 ] || { echo "rls.sh: the $mode clients did not connect" >&2; exit 1; }
            sleep 0.1
            found=$(psql -X -t -A -d orders_bench -c "SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE application_name = 'rls_$mode'")
        done
        pids+=("$mode:$found")
    done
    while [ -n "$(jobs -r)" ]; do   # each backend's time on a core, last seen before it exits
        for p in "${pids[@]}"; do
            for v in $(echo "${p#*:}" | tr ',' ' '); do
                cpu[$v]=$(cut -d ' ' -f 1 "/proc/$v/schedstat" 2>/dev/null || echo "${cpu[$v]:-0}")   # ns on a core
            done
        done
        sleep 0.1
    done
    for p in "${pids[@]}"; do
        mode=${p%%:*}
        local ns=0 n
        for v in $(echo "${p#*:}" | tr ',' ' '); do ns=$((ns + ${cpu[$v]:-0})); done
        n=$(awk '/^number of transactions actually processed/ {print $NF} /ERROR|error:/ {print > "/dev/stderr"}' "$SCRIPTS/out.$mode")
        awk -v t="$ns" -v n="${n:-0}" 'BEGIN { printf "%d %.1f ", n, (n > 0 ? t / 1e3 / n : 0) }'
    done
    echo
}

if [ "${ORDERS_BENCH_EXPLAIN:-0}" = 1 ]; then
    while IFS='|' read -r name sub query; do
        for user in postgres authenticator; do
            echo; echo "== $name as $user"
            psql -X -q -U "$user" -d orders_bench -v ON_ERROR_STOP=1 <<SQL
BEGIN;
SELECT set_config('role', CASE WHEN current_user = 'postgres' THEN '$owner' ELSE 'authenticated' END, true),
       set_config('request.jwt.claims', '$(claims "$sub")', true) \\g /dev/null
SELECT count(*) AS rows FROM ($query) q;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) $query;
ROLLBACK;
SQL
        done
    done <<< "$CASES"
fi

declare -A sa sb sc rr
for r in $(seq 1 "$ROUNDS"); do
    n=0
    while IFS='|' read -r name sub query; do
        n=$((n + 1))
        read -r na a nc c nb b <<<"$(together $n "$sub")"
        echo "round $r  $name: server CPU per request owner $a  api-without-policies $c  api $b µs ($na / $nc / $nb transactions)"
        sa[$n]=$(awk -v s="${sa[$n]:-0}" -v x="$a" 'BEGIN {print s + x}')
        sb[$n]=$(awk -v s="${sb[$n]:-0}" -v x="$b" 'BEGIN {print s + x}')
        sc[$n]=$(awk -v s="${sc[$n]:-0}" -v x="$c" 'BEGIN {print s + x}')
        rr[$n]="${rr[$n]:-} $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"   # this round's API/owner
    done <<< "$CASES"
done

echo
echo "== row level security, ${ROUNDS} rounds of ${SECS}s, owner / API without policies / API at the same time (3 clients each);"
echo "   server CPU per request (mean over the rounds); API/owner = owner's CPU / API's — the issue asks >= 0.80 —"
echo "   and the same against the API without policies; rounds: each round's API/owner"
n=0
while IFS='|' read -r name sub query; do
    n=$((n + 1))
    rows=$(psql -X -q -t -A -U authenticator -d orders_bench -c "BEGIN" \
        -c "SELECT set_config('role', 'authenticated', true), set_config('request.jwt.claims', '$(claims "$sub")', true)" \
        -c "SELECT count(*) FROM ($query) q" -c "COMMIT" | sed -n 2p)
    awk -v n="$name" -v a="${sa[$n]}" -v b="${sb[$n]}" -v c="${sc[$n]}" -v r="$ROUNDS" -v rounds="${rr[$n]}" -v rows="$rows" \
        'BEGIN { printf "%-34s owner %7.1f  no-policies %7.1f  api %7.1f µs  %5.2fx owner  %5.2fx no-policies  rounds%s  %s rows%s\n",
                 n, a / r, c / r, b / r, (b > 0 ? a / b : 0), (b > 0 ? c / b : 0), rounds, rows, (b > 0 && a / b < 0.8 ? "  < 0.80" : "") }'
    bench_result "rls: $name, API/owner (server CPU per request)" "$(ratio "${sa[$n]}" "${sb[$n]}")" ">= 0.80"
done <<< "$CASES"
