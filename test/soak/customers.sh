#!/usr/bin/env bash
# Customer statistics soak (TAP): 16 pgbench clients change orders of 3
# customers at once (status steps, payments, amounts, inserts, deletes,
# moves between customers); afterwards every customer's statistics equal a
# recount.  Usage: test/soak/customers.sh [seconds, default 20]
NAME=customers source "$(dirname "$0")/lib.sh"
check "orders went to fulfilled, returned and cancelled statuses" 3 \
    "$(q $db -c "SELECT count(DISTINCT s.category) FROM orders.order_history h JOIN orders.lifecycle_states s
                 ON s.lifecycle = 'cod' AND s.status = h.new_status WHERE s.category <> 'open'")"
check "every customer's statistics equal a recount" 0 "$(q $db -c "SELECT count(*) FROM orders.recount_customer_stats()")"
q $db -c "SELECT '# ' || full_name || ': ' || total_orders || ' orders, ' || total_spent || ' spent, ' || return_rate || '% returned'
          FROM orders.customers ORDER BY 1"
check_server_log
soak_done
