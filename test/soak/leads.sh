#!/usr/bin/env bash
# Lead counter soak (TAP): 16 pgbench clients insert, move, re-status and
# delete leads of 4 campaigns at once (single rows and bulk moves, with
# rollbacks from deadlock retries), then every stored leads_delivered must
# equal a recount.  Usage: test/soak/leads.sh [seconds, default 20]
# Needs PGHOST/PGPORT/PGUSER of a running cluster with the extension installed.
NAME=leads source "$(dirname "$0")/lib.sh"
check "every stored count equals the recount" 0 "$(q $db -c "SELECT count(*) FROM orders.recount_leads()")"
check "the counts add up to the counted leads" \
    "$(q $db -c "SELECT count(*) FROM orders.leads WHERE order_id IS NOT NULL AND status IN ('approved', 'lead')")" \
    "$(q $db -c "SELECT sum(leads_delivered) FROM orders.orders")"
q $db -c "SELECT '# ' || order_number || ': ' || leads_delivered || ' delivered' FROM orders.orders ORDER BY 1"
check_server_log
soak_done
