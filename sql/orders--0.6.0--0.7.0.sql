-- orders 0.6.0 -> 0.7.0: security fixes (issue 16).
--  * SQL the extension runs as the table owner resolves names in pg_catalog
--    only (the C library pins it; nothing to do here).
--  * Order numbers: generated in C, never cut, not forgeable by clients.
--  * available_slots no longer shows which staff member a slot belongs to.
--  * A state's meaning (category, holds_stock) changes only at READ COMMITTED.
\echo Use "ALTER EXTENSION orders UPDATE TO '0.7.0'" to load this file. \quit

-- Order numbers starting with ORD- are the generator's: a client may store
-- one only when the generator just handed it to its session (the column
-- default of the row it inserts), so nobody takes the numbers others will
-- get.  The sequence part grows past 6 digits instead of being cut (lpad
-- cut it, which would have repeated numbers after 999999 orders).
CREATE OR REPLACE FUNCTION orders.next_order_number() RETURNS text
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'orders_next_order_number';
COMMENT ON FUNCTION orders.next_order_number() IS
    'Default of orders.order_number: ORD-<year>-<sequence, at least 6 digits>';

-- Availability for anybody (SECURITY DEFINER, pinned search_path): free
-- places only — neither who holds them nor which staff member serves.
DROP FUNCTION orders.available_slots(uuid, timestamptz, timestamptz);
CREATE FUNCTION orders.available_slots(service_id uuid, "from" timestamptz, "to" timestamptz)
    RETURNS TABLE (capacity_id uuid, starts_at timestamptz, ends_at timestamptz,
                   max_capacity integer, booked integer, held integer, remaining integer)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT c.id, c.starts_at, c.ends_at, c.max_capacity, c.booked_count,
           h.live::integer, (c.max_capacity - c.booked_count - h.live)::integer
      FROM orders.service_capacity c
      CROSS JOIN LATERAL (
          SELECT coalesce(pg_catalog.sum(r.quantity), 0) AS live
            FROM orders.slot_reservations r
           WHERE r.capacity_id = c.id AND r.status = 'held' AND r.expires_at > pg_catalog.now()) h
     WHERE c.service_id = available_slots.service_id
       AND c.starts_at >= available_slots."from" AND c.starts_at < available_slots."to"
       AND c.starts_at > pg_catalog.now()
       AND c.is_available
       AND c.max_capacity - c.booked_count - h.live > 0
     ORDER BY c.starts_at, c.id;
END;
COMMENT ON FUNCTION orders.available_slots(uuid, timestamptz, timestamptz) IS
    'Bookable slots of a service starting in [from, to), with the places left';
GRANT EXECUTE ON FUNCTION orders.available_slots(uuid, timestamptz, timestamptz) TO PUBLIC;

-- The check that no order is in a state whose meaning changes must read
-- the orders committed after the SHARE lock: only READ COMMITTED does (a
-- REPEATABLE READ snapshot predates the lock).
CREATE OR REPLACE FUNCTION orders.state_meaning_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF (NEW.category, NEW.holds_stock) IS DISTINCT FROM (OLD.category, OLD.holds_stock) THEN
        IF pg_catalog.current_setting('transaction_isolation') OPERATOR(pg_catalog.<>) 'read committed' THEN
            RAISE EXCEPTION 'lifecycle "%": the category and holds_stock of state "%" change only at READ COMMITTED',
                            OLD.lifecycle, OLD.status
                USING ERRCODE = '25000',
                      DETAIL = 'The check that no order is in the state needs a snapshot taken after the lock on orders.orders.';
        END IF;
        LOCK TABLE orders.orders IN SHARE MODE;
        IF EXISTS (SELECT FROM orders.orders o
                    WHERE o.lifecycle OPERATOR(pg_catalog.=) OLD.lifecycle
                      AND o.status OPERATOR(pg_catalog.=) OLD.status) THEN
            RAISE EXCEPTION 'lifecycle "%": state "%" has orders; its category and holds_stock cannot change',
                            OLD.lifecycle, OLD.status
                USING ERRCODE = 'OR008',
                      DETAIL = 'Customer statistics, the ledger and stock count the orders in it by these.',
                      HINT = 'Move its orders to another state first, or add a new state.';
        END IF;
    END IF;
    RETURN NEW;
END
$$;

-- Money refuses NaN (issue 9).  PostgreSQL's numeric holds 'NaN', which
-- passes every ">= 0" check (NaN sorts above every number) and, once in an
-- order, made its customer's total_spent, its ledger rows and the daily
-- summary NaN for good.  Every amount is now one of two domains that refuse
-- it; numeric(12,2) already refuses the infinities.  The four views that
-- read the columns are rebuilt around the type change, keeping the
-- privileges a DBA gave on them; order_items.total is computed from
-- unit_price, so it is dropped and added back (it becomes the last column).
DO $$
DECLARE
    found text := '';
    n bigint;
    c record;
BEGIN
    FOR c IN SELECT * FROM (VALUES ('orders', 'subtotal'), ('orders', 'delivery_fee'), ('orders', 'total_amount'),
                                   ('order_items', 'unit_price'), ('products', 'price'), ('products', 'cost_price'),
                                   ('product_variants', 'price'), ('financial_transactions', 'amount'),
                                   ('expenses', 'amount')) v(t, col) LOOP
        EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM orders.%I WHERE %I::pg_catalog.numeric = ''NaN''',
                                  c.t, c.col) INTO n;
        IF n > 0 THEN
            found := found || pg_catalog.format(' orders.%s.%s: %s rows;', c.t, c.col, n);
        END IF;
    END LOOP;
    IF found <> '' THEN
        RAISE EXCEPTION 'orders 0.7.0 refuses NaN amounts, and this database holds some:%', found
            USING ERRCODE = '23514',
                  HINT = 'As the table owner, set the NaN amounts of orders to numbers first (their ledger postings '
                         'follow), then correct or delete the NaN rows of the ledger and expenses, then ALTER EXTENSION '
                         'orders UPDATE again and run orders.recount_customer_stats().';
    END IF;
END
$$;
ALTER DOMAIN orders.amount DROP CONSTRAINT amount_check;
ALTER DOMAIN orders.amount ADD CONSTRAINT amount_check CHECK (VALUE >= 0 AND VALUE <> 'NaN');
CREATE DOMAIN orders.positive_amount AS numeric(12,2) CHECK (VALUE > 0 AND VALUE <> 'NaN');

CREATE TEMP TABLE orders_070_view_grants ON COMMIT DROP AS
SELECT c.relname, a.grantee, a.privilege_type, a.is_grantable
  FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a
 WHERE c.relnamespace = 'orders'::regnamespace AND a.grantee <> c.relowner
   AND c.relname IN ('order_details_view', 'todays_order_summary', 'ledger_discrepancies',
                     'daily_financial_summary');
DROP VIEW orders.order_details_view, orders.todays_order_summary, orders.ledger_discrepancies,
          orders.daily_financial_summary;

ALTER TABLE orders.orders
    DROP CONSTRAINT orders_subtotal_check,
    DROP CONSTRAINT orders_delivery_fee_check,
    DROP CONSTRAINT orders_total_amount_check,
    ALTER COLUMN subtotal TYPE orders.amount,
    ALTER COLUMN delivery_fee TYPE orders.amount,
    ALTER COLUMN total_amount TYPE orders.amount;
ALTER TABLE orders.order_items
    DROP COLUMN total,
    DROP CONSTRAINT order_items_unit_price_check,
    ALTER COLUMN unit_price TYPE orders.amount,
    ADD COLUMN total numeric(14,2) GENERATED ALWAYS AS (quantity * unit_price) STORED;
ALTER TABLE orders.financial_transactions
    DROP CONSTRAINT financial_transactions_amount_check,
    ALTER COLUMN amount TYPE orders.positive_amount;
ALTER TABLE orders.expenses
    DROP CONSTRAINT expenses_amount_check,
    ALTER COLUMN amount TYPE orders.positive_amount;

CREATE VIEW orders.order_details_view AS
SELECT o.id, o.order_number, o.lifecycle, o.status, o.priority, o.total_amount, o.currency,
       o.payment_status, o.payment_method, o.source, o.delivery_address, o.delivery_area,
       o.customer_notes, o.created_at, o.confirmed_at, o.delivered_at,
       c.id AS customer_id, c.full_name AS customer_name, c.phone AS customer_phone, c.email AS customer_email,
       r.id AS rep_id, r.full_name AS rep_name,
       a.id AS agent_id, a.full_name AS agent_name, a.phone AS agent_phone,
       a.availability_status AS agent_availability
  FROM orders.orders o
  JOIN orders.customers c ON c.id = o.customer_id
  LEFT JOIN orders.staff r ON r.id = o.assigned_rep_id
  LEFT JOIN orders.staff a ON a.id = o.assigned_agent_id;
COMMENT ON VIEW orders.order_details_view IS 'Orders with customer, rep and agent details (seed 004)';
CREATE VIEW orders.todays_order_summary AS
SELECT count(*)::integer AS orders_today,
       (count(*) FILTER (WHERE s.category = 'fulfilled'))::integer AS delivered_count,
       coalesce(sum(o.total_amount) FILTER (WHERE s.category = 'fulfilled' AND o.payment_status = 'collected'), 0)
           AS collected_amount,
       coalesce(sum(o.total_amount) FILTER (WHERE s.category = 'fulfilled' AND o.payment_status = 'pending'), 0)
           AS pending_amount,
       (count(*) FILTER (WHERE s.category = 'cancelled'))::integer AS cancelled_count,
       (count(*) FILTER (WHERE s.category = 'returned'))::integer AS returned_count
  FROM orders.orders o
  JOIN orders.lifecycle_states s ON s.lifecycle = o.lifecycle AND s.status = o.status
 WHERE o.created_at >= CURRENT_DATE AND o.created_at < CURRENT_DATE + 1;
COMMENT ON VIEW orders.todays_order_summary IS 'Dashboard: today''s orders by outcome (seed 004 query 5)';
CREATE VIEW orders.daily_financial_summary AS
SELECT d.date, d.currency,
       sum(d.revenue)::numeric(14,2) AS total_revenue,
       sum(d.refunds)::numeric(14,2) AS total_refunds,
       sum(d.expenses)::numeric(14,2) AS total_expenses,
       (sum(d.revenue) - sum(d.refunds))::numeric(14,2) AS net_revenue,
       (sum(d.revenue) - sum(d.refunds) - sum(d.expenses))::numeric(14,2) AS net_profit,
       sum(d.paid_orders)::integer AS paid_orders
  FROM (SELECT t.date, t.currency,
               coalesce(sum(t.amount) FILTER (WHERE t.type = 'revenue'), 0) AS revenue,
               coalesce(sum(t.amount) FILTER (WHERE t.type = 'refund'), 0) AS refunds,
               0::numeric AS expenses,
               count(DISTINCT t.order_id) FILTER (WHERE t.type = 'revenue') AS paid_orders
          FROM orders.financial_transactions t
         GROUP BY t.date, t.currency
        UNION ALL
        SELECT e.date, e.currency, 0, 0, sum(e.amount), 0
          FROM orders.expenses e
         GROUP BY e.date, e.currency) d
 GROUP BY d.date, d.currency;
COMMENT ON VIEW orders.daily_financial_summary IS
    'Per day and currency: revenue, refunds, expenses, net revenue and net profit (seed 004)';
CREATE VIEW orders.ledger_discrepancies AS
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
REVOKE ALL ON orders.order_details_view, orders.todays_order_summary, orders.ledger_discrepancies,
              orders.daily_financial_summary FROM PUBLIC;
DO $$
DECLARE
    g record;
BEGIN
    FOR g IN SELECT * FROM pg_temp.orders_070_view_grants LOOP
        EXECUTE pg_catalog.format('GRANT %s ON orders.%I TO %s%s', g.privilege_type, g.relname,
                                  CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE g.grantee::regrole::text END,
                                  CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
END
$$;
DROP TABLE pg_temp.orders_070_view_grants;

-- Labels reviewed (doc/decisions.md): status_category answers NULL for a
-- NULL argument, so it is STRICT (the executor then skips the call).
ALTER FUNCTION orders.status_category(text, text) STRICT;

-- Logical replication applies rows without firing statement triggers: on a
-- subscriber these row-level copies (ENABLE REPLICA: they fire only where
-- session_replication_role = replica, i.e. for the apply worker) invalidate
-- the cached graph when a change of the lifecycle tables arrives
-- (doc/operations.md).
CREATE TRIGGER lifecycle_changed_applied AFTER INSERT OR UPDATE OR DELETE
    ON orders.lifecycles FOR EACH ROW EXECUTE FUNCTION orders.lifecycle_changed();
CREATE TRIGGER lifecycle_changed_applied AFTER INSERT OR UPDATE OR DELETE
    ON orders.lifecycle_states FOR EACH ROW EXECUTE FUNCTION orders.lifecycle_changed();
CREATE TRIGGER lifecycle_changed_applied AFTER INSERT OR UPDATE OR DELETE
    ON orders.lifecycle_transitions FOR EACH ROW EXECUTE FUNCTION orders.lifecycle_changed();
ALTER TABLE orders.lifecycles ENABLE REPLICA TRIGGER lifecycle_changed_applied;
ALTER TABLE orders.lifecycle_states ENABLE REPLICA TRIGGER lifecycle_changed_applied;
ALTER TABLE orders.lifecycle_transitions ENABLE REPLICA TRIGGER lifecycle_changed_applied;

-- An order's amounts tied together (issue 9): subtotal = the sum of its
-- items, kept exact; total_amount = subtotal + delivery_fee + adjustment.
-- Existing orders keep their totals: their subtotal becomes their items'
-- sum and the rest of the total goes into adjustment (triggers off: no
-- updated_at, no posting, nothing changes but the split).
CREATE DOMAIN orders.signed_amount AS numeric(12,2) CHECK (VALUE <> 'NaN');
ALTER TABLE orders.orders ADD COLUMN adjustment orders.signed_amount NOT NULL DEFAULT 0;
SET LOCAL session_replication_role = replica;
UPDATE orders.orders o
   SET subtotal = s.items, adjustment = o.total_amount - s.items - o.delivery_fee
  FROM (SELECT o2.id, coalesce((SELECT pg_catalog.sum(i.total) FROM orders.order_items i
                                 WHERE i.order_id OPERATOR(pg_catalog.=) o2.id), 0) AS items
          FROM orders.orders o2) s
 WHERE s.id OPERATOR(pg_catalog.=) o.id
   AND (o.subtotal, o.adjustment) IS DISTINCT FROM (s.items, o.total_amount - s.items - o.delivery_fee);
RESET session_replication_role;
COMMENT ON COLUMN orders.orders.subtotal IS
    'Sum of the order''s items (quantity × unit_price); maintained by orders.subtotal_on_items, never written by hand';
COMMENT ON COLUMN orders.orders.adjustment IS
    'What the total adds to subtotal + delivery_fee (negative: a discount); set by writing it, or by writing total_amount';
COMMENT ON COLUMN orders.orders.total_amount IS
    'subtotal + delivery_fee + adjustment, always; writing it sets adjustment';

CREATE FUNCTION orders.subtotal_on_items() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_subtotal_on_items';
-- one statement trigger per event: transition tables allow only one event
CREATE TRIGGER subtotal_on_items_insert AFTER INSERT ON orders.order_items
    REFERENCING NEW TABLE AS new_items
    FOR EACH STATEMENT EXECUTE FUNCTION orders.subtotal_on_items();
CREATE TRIGGER subtotal_on_items_update AFTER UPDATE ON orders.order_items
    REFERENCING OLD TABLE AS old_items NEW TABLE AS new_items
    FOR EACH STATEMENT EXECUTE FUNCTION orders.subtotal_on_items();
CREATE TRIGGER subtotal_on_items_delete AFTER DELETE ON orders.order_items
    REFERENCING OLD TABLE AS old_items
    FOR EACH STATEMENT EXECUTE FUNCTION orders.subtotal_on_items();

-- Repair: recount subtotals from the items (all orders, or one) and return
-- the orders whose stored subtotal was wrong (their totals follow).  Locks
-- the orders first, then sums, so concurrent item writers are neither
-- missed nor counted twice.
CREATE FUNCTION orders.recount_subtotals(order_id uuid DEFAULT NULL)
    RETURNS TABLE (id uuid, order_number text, stored numeric, counted numeric)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'orders.recount_subtotals must run at READ COMMITTED isolation'
            USING ERRCODE = '25000',
                  DETAIL = 'A transaction snapshot would not see items committed while it waits for the orders.';
    END IF;
    PERFORM 1 FROM orders.orders o
     WHERE recount_subtotals.order_id IS NULL OR o.id = recount_subtotals.order_id
     ORDER BY o.id FOR UPDATE;
    RETURN QUERY
    WITH actual AS (
        SELECT o.id, o.order_number, o.subtotal::numeric AS stored,
               coalesce((SELECT sum(i.total) FROM orders.order_items i WHERE i.order_id = o.id), 0)::numeric(12,2)
                   AS counted
          FROM orders.orders o
         WHERE recount_subtotals.order_id IS NULL OR o.id = recount_subtotals.order_id),
    fixed AS (
        UPDATE orders.orders o SET subtotal = a.counted
          FROM actual a WHERE o.id = a.id AND a.stored <> a.counted
        RETURNING o.id)
    SELECT a.id, a.order_number, a.stored, a.counted
      FROM actual a WHERE a.stored <> a.counted ORDER BY a.order_number;
END
$$;
COMMENT ON FUNCTION orders.recount_subtotals(uuid) IS
    'Recount subtotals from the items (all orders, or one); returns and repairs the orders whose subtotal was wrong';

REVOKE ALL ON FUNCTION orders.subtotal_on_items(), orders.recount_subtotals(uuid) FROM PUBLIC;
