-- orders 0.29.0 -> 0.30.0
--  * Stock moves once per order whatever one statement changes: the
--    ledger orders.orders.stock_held records what each order holds out of
--    stock, stock moves exactly when it changes (stock_on_status, from the
--    UPDATE's old and new rows), and it changes only to what the order
--    should hold — status_guard sets it when an order enters or leaves a
--    holding status, stock_on_items when its items change.  A statement
--    that changed an order's status and its items (a writable CTE, a
--    transition() nested in an item statement) moved the stock twice or
--    not at all.  Library first: the 0.30.0 library on a 0.29.0 schema
--    moves stock as before until this update adds the column.
--  * The update records what every order in a holding status holds now
--    (the stock already counts it): the UPDATE runs with the replica
--    role, so no trigger fires and nothing else changes.
--  * daily_financial_summary.paid_orders counts the orders paid that day
--    (more money in than back that day, none kept from earlier days): it counted every order with a
--    revenue row that day (a refunded order, an order raised on a later
--    day again).
\echo Use "ALTER EXTENSION orders UPDATE TO '0.30.0'" to load this file. \quit

ALTER TABLE orders.orders ADD COLUMN stock_held jsonb;
COMMENT ON COLUMN orders.orders.stock_held IS
    'Units the order holds out of stock now, {"products": {id: units}, "variants": {id: units}}, NULL for none; kept by the stock triggers, never written by hand';

DO $fill$
DECLARE
    was text := pg_catalog.current_setting('session_replication_role');
BEGIN
    PERFORM pg_catalog.set_config('session_replication_role', 'replica', true);
    UPDATE orders.orders o
       SET stock_held = h.held
      FROM (SELECT u.order_id,
                   pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                       'products', pg_catalog.jsonb_object_agg(u.product_id::text, u.units) FILTER (WHERE u.variant_id IS NULL),
                       'variants', pg_catalog.jsonb_object_agg(u.variant_id::text, u.units) FILTER (WHERE u.variant_id IS NOT NULL))) AS held
              FROM (SELECT i.order_id, i.product_id, i.variant_id, pg_catalog.sum(i.quantity) AS units
                      FROM orders.order_items i
                     WHERE i.product_id IS NOT NULL
                     GROUP BY i.order_id, i.product_id, i.variant_id
                    HAVING pg_catalog.sum(i.quantity) OPERATOR(pg_catalog.<>) 0) u
             GROUP BY u.order_id) h
     WHERE o.id OPERATOR(pg_catalog.=) h.order_id
       AND EXISTS (SELECT FROM orders.lifecycle_states s
                    WHERE s.lifecycle OPERATOR(pg_catalog.=) o.lifecycle
                      AND s.status OPERATOR(pg_catalog.=) o.status AND s.holds_stock);
    PERFORM pg_catalog.set_config('session_replication_role', was, true);
END
$fill$;

CREATE OR REPLACE VIEW orders.daily_financial_summary WITH (security_invoker = true) AS
SELECT d.date, d.currency,
       sum(d.revenue)::numeric(14,2) AS total_revenue,
       sum(d.refunds)::numeric(14,2) AS total_refunds,
       sum(d.expenses)::numeric(14,2) AS total_expenses,
       (sum(d.revenue) - sum(d.refunds))::numeric(14,2) AS net_revenue,
       (sum(d.revenue) - sum(d.refunds) - sum(d.expenses))::numeric(14,2) AS net_profit,
       sum(d.paid_orders)::integer AS paid_orders
  FROM (SELECT o.date, o.currency, sum(o.revenue) AS revenue, sum(o.refunds) AS refunds,
               0::numeric AS expenses,
               -- (0.30.0) orders paid that day: more money in than back
               -- that day, none kept from earlier days (a refunded order, and
               -- one raised on a later day, counted again)
               count(*) FILTER (WHERE o.order_id IS NOT NULL AND o.revenue > o.refunds
                                  AND coalesce((SELECT sum(CASE e.type WHEN 'revenue' THEN e.amount ELSE -e.amount END)
                                                  FROM orders.financial_transactions e
                                                 WHERE e.order_id = o.order_id AND e.date < o.date), 0) <= 0) AS paid_orders
          FROM (SELECT t.date, t.currency, t.order_id,
                       coalesce(sum(t.amount) FILTER (WHERE t.type = 'revenue'), 0) AS revenue,
                       coalesce(sum(t.amount) FILTER (WHERE t.type = 'refund'), 0) AS refunds
                  FROM orders.financial_transactions t
                 GROUP BY t.date, t.currency, t.order_id) o
         GROUP BY o.date, o.currency
        UNION ALL
        SELECT e.date, e.currency, 0, 0, sum(e.amount), 0
          FROM orders.expenses e
         GROUP BY e.date, e.currency) d
 GROUP BY d.date, d.currency;
COMMENT ON VIEW orders.daily_financial_summary IS
    'Per day and currency: revenue, refunds, expenses, net revenue and net profit (seed 004), and the orders paid that day (more money in than back, none kept from earlier days)';
