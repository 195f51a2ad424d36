-- orders 0.5.0 -> 0.6.0: the rest of seed 004's COD operations — products
-- and variants whose stock the lifecycle takes and gives back exactly once
-- per order, the money each order earns posted once to a ledger, expenses,
-- the daily financial summary, and the dashboard queries backed by indexes.
\echo Use "ALTER EXTENSION orders UPDATE TO '0.6.0'" to load this file. \quit

-- ---------------------------------------------------------------- stock --

ALTER TABLE orders.lifecycle_states
    ADD COLUMN holds_stock boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN orders.lifecycle_states.holds_stock IS
    'An order in this status has its stock items out of stock (entering takes them, leaving gives them back)';
UPDATE orders.lifecycle_states SET holds_stock = true
 WHERE lifecycle = 'cod'
   AND status IN ('confirmed', 'being_prepared', 'ready_for_pickup', 'out_for_delivery', 'delivered');

-- A state's category (statistics, money) and holds_stock (stock) decide
-- what its orders count for; changing either while orders are in the state
-- would leave those counts behind.  Refused (OR008) until the state is
-- empty; orders.orders is locked in SHARE mode meanwhile so that no order
-- enters it before the change commits.
CREATE FUNCTION orders.state_meaning_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF (NEW.category, NEW.holds_stock) IS DISTINCT FROM (OLD.category, OLD.holds_stock) THEN
        LOCK TABLE orders.orders IN SHARE MODE;
        IF EXISTS (SELECT 1 FROM orders.orders o WHERE o.lifecycle = OLD.lifecycle AND o.status = OLD.status) THEN
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
CREATE TRIGGER state_meaning_guard BEFORE UPDATE OF category, holds_stock ON orders.lifecycle_states
    FOR EACH ROW EXECUTE FUNCTION orders.state_meaning_guard();
REVOKE ALL ON FUNCTION orders.state_meaning_guard() FROM PUBLIC;

-- TRUNCATE skips row triggers: the customers' statistics and the stock held
-- by orders would stay behind.  Refused while there is any (as for leads).
CREATE FUNCTION orders.orders_truncate_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    counted bigint := (SELECT count(*) FROM orders.customers c
                        WHERE c.total_orders <> 0 OR c.returned_orders <> 0 OR c.total_spent <> 0);
    holding bigint := (SELECT count(DISTINCT o.id) FROM orders.orders o
                         JOIN orders.lifecycle_states s ON s.lifecycle = o.lifecycle AND s.status = o.status
                         JOIN orders.order_items i ON i.order_id = o.id
                        WHERE s.holds_stock AND i.product_id IS NOT NULL);
BEGIN
    IF counted > 0 OR holding > 0 THEN
        RAISE EXCEPTION 'cannot truncate orders.orders: % customers count orders, % orders hold stock', counted, holding
            USING ERRCODE = 'OR014',
                  HINT = 'Use DELETE FROM orders.orders (statistics and stock follow it), or cancel the orders holding stock first.';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER orders_truncate_guard BEFORE TRUNCATE ON orders.orders
    FOR EACH STATEMENT EXECUTE FUNCTION orders.orders_truncate_guard();
REVOKE ALL ON FUNCTION orders.orders_truncate_guard() FROM PUBLIC;

-- Stock rows change on every confirmation, cancellation and return, so
-- they are laid out for cheap updates (+~25 % status changes per second in
-- test/bench/stock.sh):
-- * the column rules are domains: PostgreSQL checks a domain only on the
--   columns a statement assigns, with the rule cached, while every table
--   CHECK is re-read and evaluated on every UPDATE;
-- * stock_quantity is in no index, not even a partial one (is_low, a stored
--   generated column, carries the low-stock index), and half of each page is
--   kept free: a stock change is a HOT update that touches no index.
CREATE DOMAIN orders.label AS text CHECK (VALUE <> '');
CREATE DOMAIN orders.amount AS numeric(12,2) CHECK (VALUE >= 0);
CREATE DOMAIN orders.units AS integer CHECK (VALUE >= 0);
CREATE DOMAIN orders.json_array AS jsonb CHECK (pg_catalog.jsonb_typeof(VALUE) = 'array');
CREATE DOMAIN orders.json_object AS jsonb CHECK (pg_catalog.jsonb_typeof(VALUE) = 'object');

CREATE TABLE orders.products (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                 orders.label NOT NULL,
    sku                  orders.label NOT NULL UNIQUE,
    description          text,
    category             text,
    price                orders.amount NOT NULL DEFAULT 0,
    cost_price           orders.amount,
    stock_quantity       orders.units NOT NULL DEFAULT 0,
    low_stock_threshold  orders.units NOT NULL DEFAULT 5,
    images               orders.json_array NOT NULL DEFAULT '[]',
    is_active            boolean NOT NULL DEFAULT true,
    is_low               boolean NOT NULL
                         GENERATED ALWAYS AS (is_active AND stock_quantity <= low_stock_threshold) STORED,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 50);
COMMENT ON TABLE orders.products IS 'Product catalog (seed 004); variants are rows of orders.product_variants';
COMMENT ON COLUMN orders.products.stock_quantity IS
    'Units in stock of the product ordered without a variant; orders holding stock have taken theirs already';
COMMENT ON COLUMN orders.products.is_low IS 'Active and at or below low_stock_threshold (generated; indexed)';
CREATE INDEX products_category_idx ON orders.products (category);
CREATE INDEX products_low_stock_idx ON orders.products (is_low) WHERE is_low;
CREATE INDEX products_name_search_idx ON orders.products USING gin (to_tsvector('simple', name));
CREATE TRIGGER set_updated_at BEFORE UPDATE ON orders.products
    FOR EACH ROW EXECUTE FUNCTION orders.set_updated_at();

CREATE TABLE orders.product_variants (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    product_id           uuid NOT NULL REFERENCES orders.products (id) ON DELETE CASCADE,
    sku                  orders.label NOT NULL UNIQUE,
    name                 orders.label NOT NULL,
    price                orders.amount,
    attributes           orders.json_object NOT NULL DEFAULT '{}',
    stock_quantity       orders.units NOT NULL DEFAULT 0,
    low_stock_threshold  orders.units NOT NULL DEFAULT 5,
    is_active            boolean NOT NULL DEFAULT true,
    is_low               boolean NOT NULL
                         GENERATED ALWAYS AS (is_active AND stock_quantity <= low_stock_threshold) STORED,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (product_id, id)
) WITH (fillfactor = 50);
COMMENT ON TABLE orders.product_variants IS
    'Variants of a product (seed 004 products.variants), each with its own SKU and stock';
COMMENT ON COLUMN orders.product_variants.price IS 'NULL: the product''s price';
CREATE INDEX product_variants_attributes_idx ON orders.product_variants USING gin (attributes jsonb_path_ops);
CREATE INDEX product_variants_low_stock_idx ON orders.product_variants (is_low) WHERE is_low;
CREATE TRIGGER set_updated_at BEFORE UPDATE ON orders.product_variants
    FOR EACH ROW EXECUTE FUNCTION orders.set_updated_at();

ALTER TABLE orders.order_items
    ADD COLUMN product_id uuid REFERENCES orders.products (id) ON DELETE RESTRICT,
    ADD COLUMN variant_id uuid,
    ADD CONSTRAINT order_items_variant_fkey FOREIGN KEY (product_id, variant_id)
        REFERENCES orders.product_variants (product_id, id) ON DELETE RESTRICT;
COMMENT ON COLUMN orders.order_items.product_id IS
    'The product the item takes from stock while its order holds stock; NULL: not a stock item';
COMMENT ON COLUMN orders.order_items.variant_id IS 'The variant (of product_id) whose stock the item takes';
CREATE INDEX order_items_product_idx ON orders.order_items (product_id) WHERE product_id IS NOT NULL;
CREATE INDEX order_items_variant_idx ON orders.order_items (variant_id) WHERE variant_id IS NOT NULL;

CREATE FUNCTION orders.stock_on_status() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_stock_on_status';
CREATE FUNCTION orders.stock_on_items() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_stock_on_items';
CREATE FUNCTION orders.stock_delete_guard() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_stock_delete_guard';

CREATE TRIGGER stock_on_status AFTER UPDATE ON orders.orders
    REFERENCING OLD TABLE AS old_orders NEW TABLE AS new_orders
    FOR EACH STATEMENT EXECUTE FUNCTION orders.stock_on_status();
CREATE TRIGGER stock_delete_guard BEFORE DELETE ON orders.orders
    FOR EACH ROW EXECUTE FUNCTION orders.stock_delete_guard();
CREATE TRIGGER stock_on_items_insert AFTER INSERT ON orders.order_items
    REFERENCING NEW TABLE AS new_items
    FOR EACH STATEMENT EXECUTE FUNCTION orders.stock_on_items();
CREATE TRIGGER stock_on_items_update AFTER UPDATE ON orders.order_items
    REFERENCING OLD TABLE AS old_items NEW TABLE AS new_items
    FOR EACH STATEMENT EXECUTE FUNCTION orders.stock_on_items();
CREATE TRIGGER stock_on_items_delete AFTER DELETE ON orders.order_items
    REFERENCING OLD TABLE AS old_items
    FOR EACH STATEMENT EXECUTE FUNCTION orders.stock_on_items();

-- Stock-keeping units at or below their low-stock threshold: products
-- without variants, and variants (a product with variants keeps its stock
-- in them).
CREATE VIEW orders.low_stock_view AS
SELECT p.id AS product_id, NULL::uuid AS variant_id, p.name, p.sku, p.category,
       p.stock_quantity, p.low_stock_threshold
  FROM orders.products p
 WHERE p.is_low
   AND NOT EXISTS (SELECT 1 FROM orders.product_variants v WHERE v.product_id = p.id)
UNION ALL
SELECT p.id, v.id, p.name || ' / ' || v.name, v.sku, p.category,
       v.stock_quantity, v.low_stock_threshold
  FROM orders.product_variants v
  JOIN orders.products p ON p.id = v.product_id
 WHERE v.is_low AND p.is_active;
COMMENT ON VIEW orders.low_stock_view IS
    'Products and variants at or below their low-stock threshold (seed 004 "low stock products")';

-- AFTER statement triggers of one event fire in name order.  Those that lock
-- rows many writers share (a customer's statistics, a popular product's
-- stock) go last, so that each transaction holds those locks for as short a
-- time as possible before it commits: post_revenue_* (no shared row), then
-- stats_customer_*, then stock_on_status.  (Measured: with the statistics
-- first, 8 clients on one customer ran at 0.7x.)
ALTER TRIGGER customer_stats_insert ON orders.orders RENAME TO stats_customer_insert;
ALTER TRIGGER customer_stats_update ON orders.orders RENAME TO stats_customer_update;
ALTER TRIGGER customer_stats_delete ON orders.orders RENAME TO stats_customer_delete;

-- ---------------------------------------------------------------- money --

-- staff_id_of — the staff member whose account_id is "actor" (a JWT sub).
CREATE FUNCTION orders.staff_id_of(actor text) RETURNS uuid
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.id FROM orders.staff s
     WHERE s.account_id = CASE WHEN actor ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                               THEN actor::uuid END
$$;
-- current_staff_id — the caller's staff id (from the JWT sub), or NULL.
CREATE FUNCTION orders.current_staff_id() RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$ SELECT orders.staff_id_of(orders.current_actor()) $$;
COMMENT ON FUNCTION orders.current_staff_id() IS
    'The orders.staff id whose account_id is the caller''s JWT sub, or NULL';

CREATE TABLE orders.financial_transactions (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id             uuid REFERENCES orders.orders (id) ON DELETE SET NULL,
    type                 text NOT NULL CHECK (type IN ('revenue', 'refund')),
    amount               numeric(12,2) NOT NULL CHECK (amount > 0),
    currency             char(3) NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    method               text CHECK (method IN ('cod', 'bank_transfer', 'cash', 'card', 'other')),
    recorded_by_user_id  uuid REFERENCES orders.staff (id) ON DELETE SET NULL
                         DEFAULT orders.current_staff_id(),
    notes                text,
    date                 date NOT NULL DEFAULT CURRENT_DATE,
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
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    category             text NOT NULL CHECK (category <> ''),
    amount               numeric(12,2) NOT NULL CHECK (amount > 0),
    currency             char(3) NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    description          text,
    receipt_url          text,
    recorded_by_user_id  uuid REFERENCES orders.staff (id) ON DELETE SET NULL
                         DEFAULT orders.current_staff_id(),
    date                 date NOT NULL DEFAULT CURRENT_DATE,
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
CREATE TRIGGER ledger_guard BEFORE INSERT OR UPDATE OR DELETE ON orders.financial_transactions
    FOR EACH ROW EXECUTE FUNCTION orders.ledger_guard();

-- Per day and currency: revenue, refunds and expenses, and what remains.
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

-- Orders whose automatic ledger rows disagree with what they have earned
-- (empty unless the ledger was edited by hand as the owner).
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

-- The revenue of orders delivered and collected before this version.
INSERT INTO orders.financial_transactions (order_id, type, amount, currency, method, notes, automatic)
SELECT o.id, 'revenue', o.total_amount, o.currency, o.payment_method,
       'automatic: order ' || o.order_number || ' earned before orders 0.6.0', true
  FROM orders.orders o
  JOIN orders.lifecycle_states s ON s.lifecycle = o.lifecycle AND s.status = o.status
 WHERE s.category = 'fulfilled' AND o.payment_status = 'collected' AND o.total_amount > 0;

-- ------------------------------------------------------------ dashboard --
-- Seed 004's dashboard queries as functions (PostgREST RPC).  They run with
-- the caller's rights (row level security applies) and are plain SQL so the
-- planner inlines them: EXPLAIN SELECT * FROM orders.recent_orders() shows
-- the index each one uses (test/pgtap/12_dashboard_indexes.sql checks).

DROP INDEX orders.orders_customer_id_idx;
CREATE INDEX orders_customer_created_idx ON orders.orders (customer_id, created_at DESC);
CREATE INDEX customers_area_idx ON orders.customers (area);
CREATE INDEX customers_tags_idx ON orders.customers USING gin (tags jsonb_path_ops);

CREATE FUNCTION orders.recent_orders(statuses text[] DEFAULT ARRAY['new', 'confirmation_pending', 'confirmed'],
                                     max_rows integer DEFAULT 50)
    RETURNS TABLE (id uuid, order_number text, status text, priority integer, total_amount numeric,
                   created_at timestamptz, customer_name text, customer_phone text)
    LANGUAGE sql STABLE
AS $$
    SELECT o.id, o.order_number, o.status, o.priority, o.total_amount, o.created_at, c.full_name, c.phone
      FROM orders.orders o
      JOIN orders.customers c ON c.id OPERATOR(pg_catalog.=) o.customer_id
     WHERE o.status OPERATOR(pg_catalog.=) ANY (statuses)
     ORDER BY o.priority DESC, o.created_at DESC
     LIMIT max_rows
$$;
COMMENT ON FUNCTION orders.recent_orders(text[], integer) IS
    'Dashboard: newest orders in the given statuses, most urgent first (seed 004 query 1)';

CREATE FUNCTION orders.agent_active_deliveries(agent_id uuid)
    RETURNS TABLE (id uuid, order_number text, status text, delivery_address text, delivery_area text,
                   customer_notes text, customer_phone text, total_amount numeric, priority integer,
                   created_at timestamptz)
    LANGUAGE sql STABLE
AS $$
    SELECT o.id, o.order_number, o.status, o.delivery_address, o.delivery_area, o.customer_notes,
           c.phone, o.total_amount, o.priority, o.created_at
      FROM orders.orders o
      JOIN orders.customers c ON c.id OPERATOR(pg_catalog.=) o.customer_id
     WHERE o.assigned_agent_id OPERATOR(pg_catalog.=) agent_active_deliveries.agent_id
       AND o.status OPERATOR(pg_catalog.=) ANY (ARRAY['ready_for_pickup', 'out_for_delivery'])
     ORDER BY o.priority DESC, o.created_at
$$;
COMMENT ON FUNCTION orders.agent_active_deliveries(uuid) IS
    'Dashboard: a delivery agent''s orders ready for pickup or out for delivery (seed 004 query 2)';

CREATE FUNCTION orders.unassigned_orders_in_area(area text)
    RETURNS TABLE (id uuid, order_number text, delivery_address text, delivery_area text, priority integer,
                   total_amount numeric, customer_name text, customer_phone text, created_at timestamptz)
    LANGUAGE sql STABLE
AS $$
    SELECT o.id, o.order_number, o.delivery_address, o.delivery_area, o.priority, o.total_amount,
           c.full_name, c.phone, o.created_at
      FROM orders.orders o
      JOIN orders.customers c ON c.id OPERATOR(pg_catalog.=) o.customer_id
     WHERE o.delivery_area OPERATOR(pg_catalog.=) unassigned_orders_in_area.area
       AND o.status OPERATOR(pg_catalog.=) 'ready_for_pickup'
       AND o.assigned_agent_id IS NULL
     ORDER BY o.priority DESC, o.created_at
$$;
COMMENT ON FUNCTION orders.unassigned_orders_in_area(text) IS
    'Dashboard: orders ready for pickup in an area with no agent yet (seed 004 query 3)';

CREATE FUNCTION orders.customer_order_history(customer_id uuid, max_rows integer DEFAULT 100)
    RETURNS TABLE (id uuid, order_number text, status text, total_amount numeric,
                   created_at timestamptz, delivered_at timestamptz)
    LANGUAGE sql STABLE
AS $$
    SELECT o.id, o.order_number, o.status, o.total_amount, o.created_at, o.delivered_at
      FROM orders.orders o
     WHERE o.customer_id OPERATOR(pg_catalog.=) customer_order_history.customer_id
     ORDER BY o.created_at DESC
     LIMIT max_rows
$$;
COMMENT ON FUNCTION orders.customer_order_history(uuid, integer) IS
    'Dashboard: a customer''s orders, newest first (seed 004 query 4)';

CREATE FUNCTION orders.vip_customers(customer_area text, tag text DEFAULT 'vip')
    RETURNS TABLE (id uuid, full_name text, phone text, area text, total_orders integer, total_spent numeric)
    LANGUAGE sql STABLE
AS $$
    SELECT c.id, c.full_name, c.phone, c.area, c.total_orders, c.total_spent
      FROM orders.customers c
     WHERE c.tags OPERATOR(pg_catalog.@>) pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('id', tag))
       AND c.area OPERATOR(pg_catalog.=) customer_area
     ORDER BY c.total_spent DESC
$$;
COMMENT ON FUNCTION orders.vip_customers(text, text) IS
    'Dashboard: customers of an area carrying a tag (default vip), biggest spenders first (seed 004 query 8)';

-- Today's orders by outcome (seed 004 query 5, by status category so that
-- every lifecycle counts; a created_at range instead of DATE(created_at),
-- which no index can serve).
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

-- ------------------------------------------------------------ ownership --

SELECT pg_catalog.pg_extension_config_dump('orders.products', '');
SELECT pg_catalog.pg_extension_config_dump('orders.product_variants', '');
SELECT pg_catalog.pg_extension_config_dump('orders.financial_transactions', '');
SELECT pg_catalog.pg_extension_config_dump('orders.expenses', '');
REVOKE ALL ON orders.products, orders.product_variants, orders.financial_transactions, orders.expenses,
              orders.low_stock_view, orders.daily_financial_summary, orders.ledger_discrepancies,
              orders.todays_order_summary
    FROM PUBLIC;
REVOKE ALL ON FUNCTION orders.stock_on_status(), orders.stock_on_items(), orders.stock_delete_guard(),
                       orders.post_revenue(), orders.ledger_guard(), orders.staff_id_of(text)
    FROM PUBLIC;
