
---------------------------------------------------------------------------
-- Money (seed 004, doc/stock_and_money.md): every change of what an order
-- has earned posts one automatic ledger row (C); expenses; summaries.
---------------------------------------------------------------------------

CREATE TABLE orders.financial_transactions (
    id                   uuid PRIMARY KEY DEFAULT orders.new_id(),
    order_id             uuid REFERENCES orders.orders (id) ON DELETE SET NULL,
    type                 text NOT NULL CHECK (type IN ('revenue', 'refund')),
    amount               orders.positive_amount NOT NULL,
    currency             char(3) NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    method               text CHECK (method IN ('cod', 'bank_transfer', 'cash', 'card', 'other')),
    recorded_by_user_id  uuid REFERENCES orders.staff (id) ON DELETE SET NULL
                         DEFAULT orders.current_staff_id(),
    notes                text CHECK (length(notes) <= 10000),
    date                 date NOT NULL DEFAULT orders.business_date(),
    automatic            boolean NOT NULL DEFAULT false,
    created_at           timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE orders.financial_transactions IS
    'Money in (revenue) and back out (refund); automatic rows are posted by the order lifecycle';
COMMENT ON COLUMN orders.financial_transactions.automatic IS
    'Posted by orders.post_revenue: per order, automatic revenue - refunds = what the order has earned now';
CREATE INDEX financial_transactions_order_idx ON orders.financial_transactions (order_id);
CREATE INDEX financial_transactions_date_type_idx ON orders.financial_transactions (date, type);
CREATE INDEX financial_transactions_recorded_by_idx ON orders.financial_transactions (recorded_by_user_id)
    WHERE recorded_by_user_id IS NOT NULL;
CREATE INDEX financial_transactions_created_idx ON orders.financial_transactions (created_at DESC);

CREATE TABLE orders.expenses (
    id                   uuid PRIMARY KEY DEFAULT orders.new_id(),
    category             text NOT NULL CHECK (category <> '' AND length(category) <= 200),
    amount               orders.positive_amount NOT NULL,
    currency             char(3) NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    description          text CHECK (length(description) <= 10000),
    receipt_url          text CHECK (length(receipt_url) <= 2048),
    recorded_by_user_id  uuid REFERENCES orders.staff (id) ON DELETE SET NULL
                         DEFAULT orders.current_staff_id(),
    date                 date NOT NULL DEFAULT orders.business_date(),
    created_at           timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE orders.expenses IS 'Business expenses (seed 004); the only place an expense is recorded';
CREATE INDEX expenses_category_idx ON orders.expenses (category);
CREATE INDEX expenses_date_idx ON orders.expenses (date);
CREATE INDEX expenses_recorded_by_idx ON orders.expenses (recorded_by_user_id)
    WHERE recorded_by_user_id IS NOT NULL;
CREATE INDEX expenses_created_idx ON orders.expenses (created_at DESC);

CREATE FUNCTION orders.post_revenue() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_post_revenue';
CREATE FUNCTION orders.ledger_guard() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_ledger_guard';
CREATE TRIGGER post_revenue_insert AFTER INSERT ON orders.orders
    REFERENCING NEW TABLE AS new_orders
    FOR EACH STATEMENT EXECUTE FUNCTION orders.post_revenue();
CREATE TRIGGER post_revenue_update AFTER UPDATE ON orders.orders
    REFERENCING OLD TABLE AS old_orders NEW TABLE AS new_orders
    FOR EACH STATEMENT EXECUTE FUNCTION orders.post_revenue();
-- earned_currency_guard — (0.29.0) the currency of an order that has earned
-- stays: its revenue row is in that currency, and a change posted nothing
-- (revenue 40 USD, then a refund 40 EUR; ledger_discrepancies compares
-- amounts only).  Refund it first (its refund is posted in the old
-- currency), change the currency, collect it again.  For every writer.
CREATE FUNCTION orders.earned_currency_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF OLD.payment_status = 'collected' AND orders.status_category(OLD.lifecycle, OLD.status) = 'fulfilled' THEN
        RAISE EXCEPTION 'order "%" has earned % %: its currency stays', OLD.order_number, OLD.total_amount, OLD.currency
            USING ERRCODE = 'OR053',
                  HINT = 'Mark its payment refunded first (the refund is posted in its currency), then change the currency and collect it again.';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER earned_currency_guard BEFORE UPDATE OF currency ON orders.orders
    FOR EACH ROW WHEN (OLD.currency IS DISTINCT FROM NEW.currency)
    EXECUTE FUNCTION orders.earned_currency_guard();
CREATE TRIGGER ledger_guard BEFORE INSERT OR UPDATE OR DELETE ON orders.financial_transactions
    FOR EACH ROW EXECUTE FUNCTION orders.ledger_guard();

-- Per day and currency: revenue, refunds and expenses, and what remains.
CREATE VIEW orders.daily_financial_summary WITH (security_invoker = true) AS
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

-- Orders whose automatic ledger rows disagree with what they have earned
-- (empty unless the ledger was edited by hand as the owner).
CREATE VIEW orders.ledger_discrepancies WITH (security_invoker = true) AS
SELECT o.id AS order_id, o.order_number, e.earned::numeric(14,2) AS earned,
       coalesce(l.posted, 0)::numeric(14,2) AS posted
  FROM orders.orders o
  JOIN orders.lifecycle_states s ON s.lifecycle = o.lifecycle AND s.status = o.status
  CROSS JOIN LATERAL (SELECT CASE WHEN s.category = 'fulfilled' AND o.payment_status = 'collected'
                                  THEN o.total_amount ELSE 0 END AS earned) e
  LEFT JOIN (SELECT t.order_id,
                    sum(CASE t.type WHEN 'revenue' THEN t.amount ELSE -t.amount END) AS posted
               FROM orders.financial_transactions t
              WHERE t.automatic AND t.order_id IS NOT NULL
              GROUP BY t.order_id) l ON l.order_id = o.id
 WHERE e.earned <> coalesce(l.posted, 0);
COMMENT ON VIEW orders.ledger_discrepancies IS
    'Orders whose automatic ledger rows (revenue - refunds) differ from what they have earned';

SELECT pg_catalog.pg_extension_config_dump('orders.financial_transactions', '');
SELECT pg_catalog.pg_extension_config_dump('orders.expenses', '');
REVOKE ALL ON orders.financial_transactions, orders.expenses, orders.daily_financial_summary,
              orders.ledger_discrepancies FROM PUBLIC;
REVOKE ALL ON FUNCTION orders.post_revenue(), orders.ledger_guard(), orders.earned_currency_guard() FROM PUBLIC;
