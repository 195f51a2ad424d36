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
--    (orders.recount_stock_held(), new: no stock moves, no updated_at
--    changes).  Library first, and recycle pooled connections: the
--    triggers now call the library's _held symbols, which a session still
--    running 0.29.0 lacks — it fails rather than move stock past the
--    ledger.
--  * daily_financial_summary.paid_orders counts the orders paid that day
--    (more money in than back that day, none kept from earlier days): it counted every order with a
--    revenue row that day (a refunded order, an order raised on a later
--    day again).
--  * TRUNCATE orders.order_items is refused while any order counts items
--    (a subtotal, stock held): it left both behind.  The TRUNCATE guards
--    of orders, items and sites run at READ COMMITTED only (a REPEATABLE
--    READ snapshot predates TRUNCATE's lock and missed an order confirmed
--    while it waited: its stock was lost); leads' reads the latest.
\echo Use "ALTER EXTENSION orders UPDATE TO '0.30.0'" to load this file. \quit

ALTER TABLE orders.orders ADD COLUMN stock_held jsonb;
COMMENT ON COLUMN orders.orders.stock_held IS
    'Units the order holds out of stock now, {"products": {id: units}, "variants": {id: units}}, NULL for none; kept by the stock triggers, never written by hand';

-- the _held symbols: a session still running the 0.29.0 library fails on
-- every write of an order instead of moving stock past the ledger
CREATE OR REPLACE FUNCTION orders.status_guard() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_status_guard_held';
CREATE OR REPLACE FUNCTION orders.stock_on_status() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_stock_on_status_held';
CREATE OR REPLACE FUNCTION orders.stock_on_items() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_stock_on_items_held';

CREATE FUNCTION orders.recount_stock_held() RETURNS bigint
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'orders_recount_stock_held';
COMMENT ON FUNCTION orders.recount_stock_held() IS
    'Records in every order''s stock_held what it holds (its stock items while its status holds stock) without moving stock — after pg_restore --disable-triggers of a dump from before 0.30.0; returns the orders rewritten (owner only)';
REVOKE ALL ON FUNCTION orders.recount_stock_held() FROM PUBLIC;

-- what every order holds now, locked and read with the latest snapshot;
-- the stock already counts it: no stock moves, no updated_at changes,
-- whatever ENABLE ALWAYS a DBA gave the triggers
SELECT orders.recount_stock_held();

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

-- (0.30.0) TRUNCATE of the items skips their triggers too: the orders'
-- subtotals and the stock they hold (stock_held) would stay behind, given
-- back later for items nobody has.  Refused while any order counts items.
CREATE FUNCTION orders.items_truncate_guard() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    counting bigint;
BEGIN
    IF pg_catalog.current_setting('transaction_isolation') OPERATOR(pg_catalog.<>) 'read committed' THEN
        RAISE EXCEPTION 'TRUNCATE orders.order_items runs at READ COMMITTED only'
            USING ERRCODE = '25000',
                  DETAIL = 'Its check that nothing counts the rows needs a snapshot taken after the table''s lock.',
                  HINT = 'Run it in a READ COMMITTED transaction (BEGIN ISOLATION LEVEL READ COMMITTED).';
    END IF;
    counting := (SELECT count(*) FROM orders.orders o WHERE o.subtotal <> 0 OR o.stock_held IS NOT NULL);
    IF counting > 0 THEN
        RAISE EXCEPTION 'cannot truncate orders.order_items: % orders count their items (subtotal, stock held)', counting
            USING ERRCODE = 'OR014',
                  HINT = 'Use DELETE FROM orders.order_items (subtotals and stock follow it).';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER items_truncate_guard BEFORE TRUNCATE ON orders.order_items
    FOR EACH STATEMENT EXECUTE FUNCTION orders.items_truncate_guard();

CREATE OR REPLACE FUNCTION orders.orders_truncate_guard() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    counted bigint;
    holding bigint;
BEGIN
    IF pg_catalog.current_setting('transaction_isolation') OPERATOR(pg_catalog.<>) 'read committed' THEN
        RAISE EXCEPTION 'TRUNCATE orders.orders runs at READ COMMITTED only'
            USING ERRCODE = '25000',
                  DETAIL = 'Its check that nothing counts the rows needs a snapshot taken after the table''s lock.',
                  HINT = 'Run it in a READ COMMITTED transaction (BEGIN ISOLATION LEVEL READ COMMITTED).';
    END IF;
    counted := (SELECT count(*) FROM orders.customers c
                 WHERE c.total_orders <> 0 OR c.returned_orders <> 0 OR c.total_spent <> 0);
    holding := (SELECT count(DISTINCT o.id) FROM orders.orders o
                  JOIN orders.lifecycle_states s ON s.lifecycle = o.lifecycle AND s.status = o.status
                  JOIN orders.order_items i ON i.order_id = o.id
                 WHERE s.holds_stock AND i.product_id IS NOT NULL);
    IF counted > 0 OR holding > 0 THEN
        RAISE EXCEPTION 'cannot truncate orders.orders: % customers count orders, % orders hold stock', counted, holding
            USING ERRCODE = 'OR014',
                  HINT = 'Use DELETE FROM orders.orders (statistics and stock follow it), or cancel the orders holding stock first.';
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION orders.sites_truncate_guard() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_catalog.current_setting('transaction_isolation') OPERATOR(pg_catalog.<>) 'read committed' THEN
        RAISE EXCEPTION 'TRUNCATE orders.order_site_selections runs at READ COMMITTED only'
            USING ERRCODE = '25000',
                  DETAIL = 'Its check that nothing counts the rows needs a snapshot taken after the table''s lock.',
                  HINT = 'Run it in a READ COMMITTED transaction (BEGIN ISOLATION LEVEL READ COMMITTED).';
    END IF;
    IF EXISTS (SELECT FROM orders.order_groups g
                WHERE g.suggested_count <> 0 OR g.approved_count <> 0 OR g.rejected_count <> 0) THEN
        RAISE EXCEPTION 'cannot truncate orders.order_site_selections while client groups count their sites'
            USING ERRCODE = 'OR014', HINT = 'Use DELETE; the counters and items follow it.';
    END IF;
    RETURN NULL;
END
$$;
