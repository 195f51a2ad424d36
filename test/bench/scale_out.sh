#!/usr/bin/env bash
# Scale-out benchmark (issue 15): what the proxy's routing hop costs.  Two
# node clusters and a proxy cluster on this machine (PL/Proxy, the proxy's
# API from sql/proxy/orders_proxy.sql), 16 pgbench clients, in turn:
#   direct  — the calls on node 0 itself
#   proxy/1 — through a proxy whose cluster has one partition (node 0)
#   proxy/2 — through a proxy over both nodes (calls alternate nodes)
# for two operations: a status change (orders.transition, a <-> b, each
# client walking its own 1,000 orders) and a lead (re)assigned to one of a
# campaign's four orders or unassigned (orders.assign_lead).  Cases
# interleaved per round.  All clusters share this machine's cores, so two
# nodes cannot add CPU here: the figure is proxy/direct (doc/benchmarks.md).
# Usage: test/bench/scale_out.sh [seconds per case, default 10] [rounds, default 2]
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../tap.sh"   # q
SECS=${1:-10}
ROUNDS=${2:-2}
BASE=${ORDERS_BENCH_DIR:-/tmp/orders-bench}-scale
PPORT=${ORDERS_BENCH_PORT:-54332}
node_dir() { echo "$BASE/node$1"; }
node_port() { echo $((PPORT + 1 + $1)); }
cleanup() { for d in proxy node0 node1; do stop_cluster "$BASE/$d"; done; rm -rf "$BASE"; }

if [ "${ORDERS_BENCH_NO_INSTALL:-0}" != 1 ]; then ensure_packages; build_install; fi
trap cleanup EXIT
cleanup
# the clusters of test/scale_out.sh (the proxy's database "orders" over
# both nodes), with fsync on and synchronous_commit off like every benchmark
ORDERS_FSYNC=on scale_out_clusters "$BASE" "$PPORT" 2
for hp in "$BASE/proxy $PPORT" "$(node_dir 0) $(node_port 0)" "$(node_dir 1) $(node_port 1)"; do
    set -- $hp
    q postgres -h "$1" -p "$2" -U postgres -c "ALTER SYSTEM SET synchronous_commit = off" -c "SELECT pg_reload_conf()" >/dev/null
done
export PGOPTIONS="-c client_min_messages=warning"
node() { local k=$1; shift; q orders -h "$(node_dir $k)" -p "$(node_port $k)" -U postgres "$@"; }
proxy() { local db=$1; shift; q "$db" -h "$BASE/proxy" -p "$PPORT" -U postgres "$@"; }

# nodes: 16,000 orders walking a <-> b, 4,000 approved leads and a campaign
# of four orders (leads move between them), ids listed in bench.ids /
# bench.leads for the direct case
for k in 0 1; do
    node $k >/dev/null <<SQL
\\i $REPO_DIR/test/bench/bench_lifecycle.sql
INSERT INTO orders.customers (full_name) VALUES ('Scale bench client');
INSERT INTO orders.orders (customer_id, lifecycle) SELECT (SELECT id FROM orders.customers), 'bench' FROM generate_series(1, 16000);
INSERT INTO orders.orders (customer_id, lifecycle, leads_purchased) SELECT (SELECT id FROM orders.customers), 'campaign', 1000000000 FROM generate_series(1, 4);
UPDATE orders.orders SET status = 'active' WHERE lifecycle = 'campaign';
INSERT INTO orders.leads (customer_id, status) SELECT (SELECT id FROM orders.customers), 'approved' FROM generate_series(1, 4000);
CREATE TABLE bench.ids AS SELECT row_number() OVER (ORDER BY id)::int AS n, id FROM orders.orders WHERE lifecycle = 'bench';
CREATE TABLE bench.leads AS SELECT row_number() OVER (ORDER BY id)::int AS n, id AS lead,
       (SELECT array_agg(o.id ORDER BY o.id) FROM orders.orders o WHERE o.lifecycle = 'campaign') AS campaigns FROM orders.leads;
ALTER TABLE bench.ids ADD PRIMARY KEY (n);
ALTER TABLE bench.leads ADD PRIMARY KEY (n);
VACUUM ANALYZE;
SQL
done

# proxies: orders1 over node 0 alone, orders2 over both (scale_out_clusters'
# database, renamed); their bench.ids / bench.leads name node 0's rows
# (orders1) or alternate the nodes (orders2)
q postgres -h "$BASE/proxy" -p "$PPORT" -U postgres -c "ALTER DATABASE orders RENAME TO orders2" -c "CREATE DATABASE orders1"
proxy_api "$BASE/proxy" "$PPORT" orders1 "p0 'host=$(node_dir 0) port=$(node_port 0) dbname=orders'"
for db in orders1 orders2; do
    proxy $db >/dev/null <<SQL
CREATE SCHEMA bench;
CREATE TABLE bench.ids (n int PRIMARY KEY, id uuid);
CREATE TABLE bench.leads (n int PRIMARY KEY, lead uuid, campaigns uuid[]);
SQL
done
node 0 -c "COPY bench.ids TO STDOUT" | proxy orders1 -c "COPY bench.ids FROM STDIN"
node 0 -c "COPY bench.leads TO STDOUT" | proxy orders1 -c "COPY bench.leads FROM STDIN"
(node 0 -c "SELECT 2 * n - 1, id FROM bench.ids WHERE n <= 8000"; node 1 -c "SELECT 2 * n, id FROM bench.ids WHERE n <= 8000") |
    tr '|' '\t' | proxy orders2 -c "COPY bench.ids FROM STDIN"
(node 0 -c "SELECT 2 * n - 1, lead, campaigns FROM bench.leads WHERE n <= 2000"; node 1 -c "SELECT 2 * n, lead, campaigns FROM bench.leads WHERE n <= 2000") |
    tr '|' '\t' | proxy orders2 -c "COPY bench.leads FROM STDIN"
for db in orders1 orders2; do proxy $db -c "VACUUM ANALYZE bench.ids, bench.leads"; done

cat > "$BASE/status.pgbench" <<'PGB'
\set n :client_id * 1000 + (:i % 1000) + 1
SELECT (orders.transition(b.id, CASE WHEN (:i / 1000) % 2 = 0 THEN 'b' ELSE 'a' END)).status FROM bench.ids b WHERE b.n = :n;
\set i :i + 1
PGB
cat > "$BASE/lead.pgbench" <<'PGB'
\set n random(1, 4000)
\set c random(0, 4)
SELECT (orders.assign_lead(l.lead, CASE WHEN :c = 0 THEN NULL ELSE l.campaigns[:c] END)).status FROM bench.leads l WHERE l.n = :n;
PGB
tps() {   # tps CASE OPERATION
    local host=$BASE/proxy port=$PPORT db=$1
    if [ "$1" = direct ]; then host=$(node_dir 0) port=$(node_port 0) db=orders; fi
    # every status walk starts with all orders in a
    [ "$2" = lead ] || for k in 0 1; do
        node $k -c "SET session_replication_role = replica" -c "UPDATE orders.orders SET status = 'a' WHERE lifecycle = 'bench' AND status <> 'a'"
    done
    sleep 1   # the reset's backend exits and is reaped
    local before="$(cluster_cpu "$BASE/proxy") $(cluster_cpu "$(node_dir 0)") $(cluster_cpu "$(node_dir 1)")" out
    out=$(pgbench -n -M prepared -c 16 -j 2 -T "$SECS" -D i=0 -h "$host" -p "$port" -U postgres -f "$BASE/$2.pgbench" "$db" 2>&1)
    sleep 1   # the backends exit and are reaped
    # "tps proxy-CPU-µs-per-call nodes-CPU-µs-per-call"
    echo "$out" | awk -v b="$before" -v a="$(cluster_cpu "$BASE/proxy") $(cluster_cpu "$(node_dir 0)") $(cluster_cpu "$(node_dir 1)")" '
        /^number of transactions actually processed/ {n = $NF}
        /^tps/ {t = int($3)}
        END {if (n == 0) {print "0 0 0"; exit}
             split(b, x, " "); split(a, y, " ");
             printf "%d %d %d\n", t, (y[1] - x[1]) * 1e6 / n, (y[2] - x[2] + y[3] - x[3]) * 1e6 / n}'
}
declare -A sum
for r in $(seq 1 "$ROUNDS"); do
    for op in status lead; do
        read -r d _ dn <<<"$(tps direct $op)"; read -r p1 p1p p1n <<<"$(tps orders1 $op)"; read -r p2 p2p p2n <<<"$(tps orders2 $op)"
        sum[$op.d]=$(( ${sum[$op.d]:-0} + d )) sum[$op.p1]=$(( ${sum[$op.p1]:-0} + p1 )) sum[$op.p2]=$(( ${sum[$op.p2]:-0} + p2 ))
        echo "round $r: $op: direct $d  proxy/1 node $p1  proxy/2 nodes $p2 tps;" \
             "CPU per call (proxy + nodes, µs): direct 0 + $dn, proxy/1 $p1p + $p1n, proxy/2 $p2p + $p2n"
    done
done
echo
echo "== through the proxy vs direct, 16 clients, ${ROUNDS}x${SECS}s per case (mean tps)"
for op in status lead; do
    echo "$op: direct $(( ${sum[$op.d]} / ROUNDS ))  proxy/1 node $(( ${sum[$op.p1]} / ROUNDS ))  proxy/2 nodes $(( ${sum[$op.p2]} / ROUNDS )) tps;" \
         "proxy(1)/direct $(ratio "${sum[$op.p1]}" "${sum[$op.d]}")x  proxy(2)/proxy(1) $(ratio "${sum[$op.p2]}" "${sum[$op.p1]}")x"
    bench_result "scale-out: $op through the proxy (1 node) / direct" "$(ratio "${sum[$op.p1]}" "${sum[$op.d]}")" "-"
    bench_result "scale-out: $op, proxy over 2 nodes / over 1 (one machine)" "$(ratio "${sum[$op.p2]}" "${sum[$op.p1]}")" "-"
done
for k in 0 1; do
    echo "node $k: campaigns whose lead count disagrees with a recount: $(node $k -c "SELECT count(*) FROM orders.recount_leads()")," \
         "customers whose statistics disagree: $(node $k -c "SELECT count(*) FROM orders.recount_customer_stats()")"
done
