#!/usr/bin/env bash
# Stock and money soak (TAP): 16 pgbench clients confirm, deliver, cancel
# and return cod orders, change their items and payments, restock, create
# and delete orders at once; afterwards every product's and variant's stock
# equals its starting stock + restocks - the items of orders holding stock,
# every order's stock_held records what it holds (0.30.0),
# no stock is negative, the ledger agrees with what every order earned, and
# the customer statistics equal a recount.
# Usage: test/soak/stock.sh [seconds, default 20]
#        ORDERS_SOAK_STRESS=1 test/soak/stock.sh 120   # stress mode, see lib.sh
NAME=stock source "$(dirname "$0")/lib.sh"
[ "$stress" = 1 ] || check "orders reached delivered, returned and cancelled" 3 \
    "$(q $db -c "SELECT count(DISTINCT status) FROM orders.orders WHERE status IN ('delivered', 'returned', 'cancelled')")"
check "some requests were refused for lack of stock (OR050)" 1 \
    "$(q $db -c "SELECT (count(*) > 0)::int FROM soak.refusals WHERE code = 'OR050'")"
check "every stock equals start + restocks - items of orders holding stock" 0 "$(q $db -c "
    WITH held AS (
        SELECT coalesce(i.variant_id, i.product_id) AS id, sum(i.quantity) AS units
          FROM orders.order_items i
          JOIN orders.orders o ON o.id = i.order_id
          JOIN orders.lifecycle_states s ON s.lifecycle = o.lifecycle AND s.status = o.status
         WHERE s.holds_stock AND i.product_id IS NOT NULL GROUP BY 1),
    stock AS (SELECT id, stock_quantity FROM orders.products UNION ALL SELECT id, stock_quantity FROM orders.product_variants)
    SELECT count(*) FROM stock k JOIN soak.initial i USING (id)
      LEFT JOIN held h USING (id)
      LEFT JOIN (SELECT id, sum(units) AS units FROM soak.restocks GROUP BY id) r USING (id)
     WHERE k.stock_quantity <> i.stock_quantity + coalesce(r.units, 0) - coalesce(h.units, 0)")"
check "every order's stock_held records what it holds: its stock items while its status holds stock" 0 "$(q $db -c "
    SELECT count(*) FROM orders.orders o
      JOIN orders.lifecycle_states s ON s.lifecycle = o.lifecycle AND s.status = o.status
      LEFT JOIN LATERAL (
        SELECT jsonb_strip_nulls(jsonb_build_object(
                 'products', jsonb_object_agg(u.product_id::text, u.units) FILTER (WHERE u.variant_id IS NULL),
                 'variants', jsonb_object_agg(u.variant_id::text, u.units) FILTER (WHERE u.variant_id IS NOT NULL))) AS held
          FROM (SELECT i.product_id, i.variant_id, sum(i.quantity) AS units FROM orders.order_items i
                 WHERE i.order_id = o.id AND i.product_id IS NOT NULL GROUP BY 1, 2) u
        HAVING count(*) > 0) h ON s.holds_stock
     WHERE o.stock_held IS DISTINCT FROM h.held")"
check "no stock is negative" 0 "$(q $db -c "SELECT count(*) FROM (SELECT stock_quantity FROM orders.products
    UNION ALL SELECT stock_quantity FROM orders.product_variants) s WHERE stock_quantity < 0")"
[ "$stress" = 1 ] || check "revenue was posted" 1 "$(q $db -c "SELECT (count(*) > 0)::int FROM orders.financial_transactions WHERE type = 'revenue'")"
check "every order's subtotal equals its items, and its total the sum of its parts" 0 \
    "$(q $db -c "SELECT count(*) FROM orders.orders o
                 WHERE o.subtotal <> coalesce((SELECT sum(i.total) FROM orders.order_items i WHERE i.order_id = o.id), 0)
                    OR o.total_amount <> o.subtotal + o.delivery_fee + o.adjustment")"
check "the ledger agrees with what every order earned" 0 "$(q $db -c "SELECT count(*) FROM orders.ledger_discrepancies")"
check "every customer's statistics equal a recount" 0 "$(q $db -c "SELECT count(*) FROM orders.recount_customer_stats()")"
q $db -c "SELECT '# ' || sku || ': ' || stock_quantity || ' in stock' FROM orders.products ORDER BY sku"
q $db -c "SELECT '# refusals ' || code || ': ' || count(*) FROM soak.refusals GROUP BY code ORDER BY code"
q $db -c "SELECT '# ledger: ' || count(*) || ' postings, net ' || sum(CASE type WHEN 'revenue' THEN amount ELSE -amount END)
          FROM orders.financial_transactions"
check_server_log
soak_done
