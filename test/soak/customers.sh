#!/usr/bin/env bash
# Customer statistics soak (TAP): 16 pgbench clients change orders of 3
# customers at once (status steps, payments, amounts, inserts, deletes,
# moves between customers); afterwards every customer's statistics equal a
# recount.  Usage: test/soak/customers.sh [seconds, default 20]
set -eu
secs=${1:-20}
dir=$(cd "$(dirname "$0")" && pwd)
db=orders_soak_customers
q() { psql -X -q -t -A -v ON_ERROR_STOP=1 -d "$@"; }

q postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
q $db -c "CREATE EXTENSION orders" -f "$dir/customers_setup.sql"
pgbench -n -c 16 -j 2 -T "$secs" --max-tries=20 -f "$dir/customers.pgbench" $db > /tmp/orders-soak-customers.log 2>&1 || true
grep -E "number of transactions actually processed|number of failed|tps =" /tmp/orders-soak-customers.log | sed 's/^/# /'

n=0 failed=0
check() { n=$((n + 1)); if [ "$2" = "$3" ]; then echo "ok $n - $1"; else echo "not ok $n - $1 (expected $2, got $3)"; failed=$((failed + 1)); fi; }
processed=$(awk '/actually processed/ {print $NF}' /tmp/orders-soak-customers.log | cut -d/ -f1)
check "the soak ran (transactions processed > 1000)" 1 "$([ "${processed:-0}" -gt 1000 ] && echo 1 || echo 0)"
check "no client aborted" 0 "$(grep -c 'aborted in command' /tmp/orders-soak-customers.log || true)"
check "orders went to fulfilled, returned and cancelled statuses" 3 \
    "$(q $db -c "SELECT count(DISTINCT s.category) FROM orders.order_history h JOIN orders.lifecycle_states s
                 ON s.lifecycle = 'cod' AND s.status = h.new_status WHERE s.category <> 'open'")"
check "every customer's statistics equal a recount" 0 "$(q $db -c "SELECT count(*) FROM orders.recount_customer_stats()")"
q $db -c "SELECT '# ' || full_name || ': ' || total_orders || ' orders, ' || total_spent || ' spent, ' || return_rate || '% returned'
          FROM orders.customers ORDER BY 1"
q postgres -c "DROP DATABASE $db"
echo "1..$n"
[ "$failed" -eq 0 ]
