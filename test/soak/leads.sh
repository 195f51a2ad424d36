#!/usr/bin/env bash
# Lead counter soak (TAP): 16 pgbench clients insert, move, re-status and
# delete leads of 4 campaigns at once (single rows and bulk moves, with
# rollbacks from deadlock retries), then every stored leads_delivered must
# equal a recount.  Usage: test/soak/leads.sh [seconds, default 20]
# Needs PGHOST/PGPORT/PGUSER of a running cluster with the extension installed.
set -eu
secs=${1:-20}
dir=$(cd "$(dirname "$0")" && pwd)
db=orders_soak
q() { psql -X -q -t -A -v ON_ERROR_STOP=1 -d "$@"; }

q postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
q $db -c "CREATE EXTENSION orders" -f "$dir/leads_setup.sql"
pgbench -n -c 16 -j 2 -T "$secs" --max-tries=20 -f "$dir/leads.pgbench" $db > /tmp/orders-soak-leads.log 2>&1 || true
grep -E "number of transactions actually processed|number of failed|tps =" /tmp/orders-soak-leads.log | sed 's/^/# /'

n=0 failed=0
check() { n=$((n + 1)); if [ "$2" = "$3" ]; then echo "ok $n - $1"; else echo "not ok $n - $1 (expected $2, got $3)"; failed=$((failed + 1)); fi; }
processed=$(awk '/actually processed/ {print $NF}' /tmp/orders-soak-leads.log | cut -d/ -f1)
check "the soak ran (transactions processed > 1000)" 1 "$([ "${processed:-0}" -gt 1000 ] && echo 1 || echo 0)"
check "no client aborted" 0 "$(grep -c 'aborted in command' /tmp/orders-soak-leads.log || true)"
check "every stored count equals the recount" 0 "$(q $db -c "SELECT count(*) FROM orders.recount_leads()")"
check "the counts add up to the counted leads" \
    "$(q $db -c "SELECT count(*) FROM orders.leads WHERE order_id IS NOT NULL AND status IN ('approved', 'lead')")" \
    "$(q $db -c "SELECT sum(leads_delivered) FROM orders.orders")"
q $db -c "SELECT '# ' || order_number || ': ' || leads_delivered || ' delivered' FROM orders.orders ORDER BY 1"
q postgres -c "DROP DATABASE $db"
echo "1..$n"
[ "$failed" -eq 0 ]
