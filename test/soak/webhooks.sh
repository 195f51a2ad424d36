#!/usr/bin/env bash
# Shop webhook soak (TAP): 16 pgbench clients deliver signed Shopify order
# webhooks (3 items each) to orders.ingest_webhook at once; ~30 % of the
# deliveries are duplicates — a re-send of one of the 16 latest shop orders
# with its delivery id, or with a new delivery id — often while the first
# delivery of that order is still in flight.  Consecutive orders share new
# customers, so their first orders race to create them.  Afterwards: one
# order per shop order delivered, each created exactly once and every other
# delivery answered "duplicate"; one log row per delivery, all 2xx; 3 items
# per order; one customer per phone; subtotals and totals as the payloads
# say; the recounts of subtotals and customer statistics find nothing; the
# server logged no internal error (XX000).
# Usage: test/soak/webhooks.sh [seconds, default 20]
# The server log (test/soak/lib.sh) is read for internal errors; the
# clients ask for verbose errors so that it names each error's SQLSTATE.
export PGOPTIONS="${PGOPTIONS:-} -c log_error_verbosity=verbose"
NAME=webhooks source "$(dirname "$0")/lib.sh"
d() { q $db -c "$1"; }
deliveries=$(d "SELECT count(*) FROM soak.deliveries")
shop_orders=$(d "SELECT count(DISTINCT n) FROM soak.deliveries")
check "deliveries tallied = transactions pgbench processed" "$processed" "$deliveries"
check "20-40 % of the deliveries were duplicates" 1 \
    "$(d "SELECT (count(*) - count(DISTINCT n) BETWEEN 0.2 * count(*) AND 0.4 * count(*))::int FROM soak.deliveries")"
check "duplicates were delivered while the first delivery of their order was in flight" 1 "$(d "
    SELECT (count(*) > 0)::int FROM soak.deliveries x JOIN soak.deliveries c ON c.n = x.n AND c.result ->> 'status' = 'created'
     WHERE x.result ->> 'status' = 'duplicate' AND x.started < c.answered")"
check "webhook orders = shop orders delivered" "$shop_orders" \
    "$(d "SELECT count(*) FROM orders.orders WHERE source = 'webhook'")"
check "each shop order created exactly once (201), every other delivery a duplicate (200)" "$shop_orders 0" "$(d "
    SELECT count(*) FILTER (WHERE result ->> 'status' = 'created' AND result ->> 'http_status' = '201') || ' ' ||
           count(*) FILTER (WHERE NOT (result ->> 'status' = 'created' AND result ->> 'http_status' = '201')
                              AND NOT (result ->> 'status' = 'duplicate' AND result ->> 'http_status' = '200'))
      FROM soak.deliveries")"
check "every answer names the order of its shop order id" 0 "$(d "
    SELECT count(*) FROM soak.deliveries x LEFT JOIN orders.orders o ON o.id = (x.result ->> 'order_id')::uuid
     WHERE o.external_id IS DISTINCT FROM (5000000000000 + x.n)::text OR o.webhook_source IS DISTINCT FROM 'soak-shop'")"
check "webhook_logs rows = deliveries made" "$deliveries" "$(d "SELECT count(*) FROM orders.webhook_logs")"
check "every log row has a 2xx status" 0 "$(d "SELECT count(*) FROM orders.webhook_logs WHERE response_status NOT BETWEEN 200 AND 299")"
d "SELECT '# ' || response_status || ' ' || left(error_message, 160) || ': ' || count(*) FROM orders.webhook_logs
    WHERE response_status NOT BETWEEN 200 AND 299 GROUP BY response_status, error_message ORDER BY count(*) DESC LIMIT 5"
check "every log row names its order, each delivery id logged with one order" 0 "$(d "
    SELECT count(*) FROM (SELECT delivery_id FROM orders.webhook_logs GROUP BY delivery_id
                          HAVING count(order_created_id) <> count(*) OR count(DISTINCT order_created_id) <> 1) l")"
check "every webhook order has exactly its 3 items (no second set)" 0 "$(d "
    SELECT count(*) FROM orders.orders o
     WHERE o.source = 'webhook'
       AND (SELECT count(*) || string_agg(i.sku, ',' ORDER BY i.sku) FROM orders.order_items i WHERE i.order_id = o.id)
           <> '3KET-1,MUG-2,TEA-3'")"
check "every item is linked to its product by SKU" 0 \
    "$(d "SELECT count(*) FROM orders.order_items i LEFT JOIN orders.products p ON p.id = i.product_id WHERE p.sku IS DISTINCT FROM i.sku")"
check "customers: one per phone delivered, none duplicated" \
    "$(d "SELECT count(DISTINCT soak.shopify_order(n)::json #>> '{customer,phone}') FROM (SELECT DISTINCT n FROM soak.deliveries) s") 0" \
    "$(d "SELECT count(*) || ' ' || (count(*) - count(DISTINCT phone)) FROM orders.customers")"
check "every order's customer has the phone of its payload" 0 "$(d "
    SELECT count(*) FROM orders.orders o JOIN orders.customers c ON c.id = o.customer_id
     WHERE c.phone IS DISTINCT FROM soak.shopify_order(o.external_id::bigint - 5000000000000)::json #>> '{customer,phone}'")"
check "every order's subtotal equals its items, and its total the sum of its parts" 0 \
    "$(d "SELECT count(*) FROM orders.orders o
          WHERE o.subtotal <> coalesce((SELECT sum(i.total) FROM orders.order_items i WHERE i.order_id = o.id), 0)
             OR o.total_amount <> o.subtotal + o.delivery_fee + o.adjustment")"
check "every order's subtotal, fee and total are its payload's" 0 "$(d "
    SELECT count(*) FROM orders.orders o, LATERAL (SELECT soak.shopify_order(o.external_id::bigint - 5000000000000)::jsonb AS p) x
     WHERE o.subtotal <> (x.p ->> 'subtotal_price')::numeric OR o.delivery_fee <> 5.90
        OR o.total_amount <> (x.p ->> 'total_price')::numeric OR o.adjustment <> 0")"
check "every order's subtotal equals a recount (orders.recount_subtotals())" 0 "$(d "SELECT count(*) FROM orders.recount_subtotals()")"
check "every customer's statistics equal a recount (orders.recount_customer_stats())" 0 \
    "$(d "SELECT count(*) FROM orders.recount_customer_stats()")"
check_server_log
d "SELECT '# deliveries ' || sum(c) || ': ' || string_agg(k || ' ' || c, ', ' ORDER BY k)
     FROM (SELECT kind || '/' || (result ->> 'status') AS k, count(*) AS c FROM soak.deliveries GROUP BY 1) s"
d "SELECT '# shop orders ' || count(DISTINCT n) || ', duplicates ' || count(*) - count(DISTINCT n)
          || ' (' || round(100.0 * (count(*) - count(DISTINCT n)) / count(*), 1) || ' %), of them in flight '
          || (SELECT count(*) FROM soak.deliveries x JOIN soak.deliveries c ON c.n = x.n AND c.result ->> 'status' = 'created'
               WHERE x.result ->> 'status' = 'duplicate' AND x.started < c.answered)
          || '; customers ' || (SELECT count(*) FROM orders.customers)
     FROM soak.deliveries"
soak_done
