
---------------------------------------------------------------------------
-- Orders, their items and their history.  status_guard (C) admits only the
-- changes the lifecycle graph allows; status_audit (C) writes history and
-- notifies in the changing transaction (doc/lifecycles.md).
---------------------------------------------------------------------------

-- (0.30.0) the _held symbols: a session still running an older library
-- (which keeps no stock_held) fails instead of writing past the stock's ledger
CREATE FUNCTION orders.status_guard() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_status_guard_held';

CREATE FUNCTION orders.status_audit() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_status_audit';

CREATE SEQUENCE orders.order_number_seq;

-- Order numbers starting with ORD- are the generator's: a client may store
-- one only when the generator just handed it to its session (the column
-- default of the row it inserts), so nobody takes the numbers others will
-- get (order_number.c).  The sequence part grows past 6 digits.
CREATE FUNCTION orders.next_order_number() RETURNS text
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'orders_next_order_number';
COMMENT ON FUNCTION orders.next_order_number() IS
    'Default of orders.order_number: ORD-<year>-<sequence, at least 6 digits>';

-- Columns by capability, in the order the upgrades added them (the order
-- of the row type): the order itself; lead campaigns (seed 002: name ..
-- completion_date; leads_delivered is maintained, 50_leads.sql); COD
-- operations (seed 004: assigned_rep_id .. return_reason); adjustment.
CREATE TABLE orders.orders (
    id              uuid PRIMARY KEY DEFAULT orders.new_id(),
    order_number    text NOT NULL UNIQUE DEFAULT orders.next_order_number()
                    CHECK (order_number <> ''),
    customer_id     uuid NOT NULL REFERENCES orders.customers (id) ON DELETE RESTRICT,
    lifecycle       text NOT NULL DEFAULT 'cod' REFERENCES orders.lifecycles (name),
    status          text NOT NULL,
    priority        integer NOT NULL DEFAULT 0,
    subtotal        orders.amount NOT NULL DEFAULT 0,
    delivery_fee    orders.amount NOT NULL DEFAULT 0,
    total_amount    orders.amount NOT NULL DEFAULT 0,
    currency        char(3) NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    payment_status  text NOT NULL DEFAULT 'pending'
                    CHECK (payment_status IN ('pending', 'collected', 'failed', 'refunded')),
    payment_method  text CHECK (payment_method IN ('cod', 'bank_transfer', 'cash', 'card', 'other')),
    notes           text,
    -- (0.41.0) at most 1 MB, numbers that print in a few characters
    -- (orders.jsonb_within): a customer's 74 kB of 1e131071 printed as 1 GB
    metadata        jsonb NOT NULL DEFAULT '{}'
                    CHECK (jsonb_typeof(metadata) = 'object' AND orders.jsonb_within(metadata, 1048576)),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- per-status stamps, set by the lifecycle edges that name them
    confirmed_at    timestamptz,
    started_at      timestamptz,
    paused_at       timestamptz,
    reviewed_at     timestamptz,
    paid_at         timestamptz,
    shipped_at      timestamptz,
    delivered_at    timestamptz,
    returned_at     timestamptz,
    completed_at    timestamptz,
    cancelled_at    timestamptz,
    -- lead campaigns
    name                 text CHECK (length(name) <= 500),
    leads_purchased      integer NOT NULL DEFAULT 0 CHECK (leads_purchased >= 0),
    leads_delivered      integer NOT NULL DEFAULT 0 CHECK (leads_delivered >= 0),
    leads_remaining      integer GENERATED ALWAYS AS (leads_purchased - leads_delivered) STORED,
    target_delivery_date date,
    start_date           date,
    completion_date      date,
    -- COD operations
    assigned_rep_id    uuid REFERENCES orders.staff (id) ON DELETE SET NULL,
    assigned_agent_id  uuid REFERENCES orders.staff (id) ON DELETE SET NULL,
    delivery_address   text CHECK (length(delivery_address) <= 2000),
    delivery_area      text CHECK (length(delivery_area) <= 255),
    source             text NOT NULL DEFAULT 'manual'
                       CHECK (source IN ('manual', 'webhook', 'csv', 'api')),
    webhook_source     text CHECK (length(webhook_source) <= 100),
    customer_notes     text CHECK (length(customer_notes) <= 10000),
    delivery_proof     jsonb CHECK (orders.jsonb_within(delivery_proof, 1048576)),
    return_reason      text CHECK (length(return_reason) <= 10000),
    -- money tied together (42_order_money.sql)
    adjustment         orders.signed_amount NOT NULL DEFAULT 0,
    -- agency orders (97_review.sql)
    requires_client_review  boolean NOT NULL DEFAULT false,
    review_completed_at     timestamptz,
    reviewed_by             text,
    analysis_project_id     uuid,
    -- shop webhooks (98_webhooks.sql): the shop's order id, unique per webhook_source
    external_id             text CHECK (length(external_id) <= 255),
    -- stock (75_stock.sql, 0.30.0): what the order holds out of stock now
    stock_held              jsonb,
    CONSTRAINT orders_leads_delivered_within_purchase CHECK (leads_delivered <= leads_purchased)
)
-- (0.31.0) half of each page left free: every order is written again soon
-- after it is made (its items' subtotal, delivered leads, stock held), and
-- a new version that fits on its page leaves the 16 indexes alone (HOT) —
-- a bulk load's items wrote every order's index entries again without it
WITH (fillfactor = 50);
COMMENT ON COLUMN orders.orders.priority IS 'Higher is more urgent (seed 004 high/medium/low = 2/1/0)';
-- (0.44.0) "@hasDefault": a PostGraphile smart tag — status_guard fills the
-- column in, so a GraphQL client need not name it (it was a required field)
COMMENT ON COLUMN orders.orders.status IS E'@hasDefault\nCurrent status; changes only along orders.lifecycle_transitions (see orders.transition); a new order''s is its lifecycle''s initial status';
COMMENT ON COLUMN orders.orders.stock_held IS
    'Units the order holds out of stock now, {"products": {id: units}, "variants": {id: units}}, NULL for none; kept by the stock triggers, never written by hand';
COMMENT ON COLUMN orders.orders.leads_delivered IS
    'Leads with status approved or lead assigned to this order; maintained by orders.leads_count, never written by hand';
CREATE INDEX orders_customer_created_idx ON orders.orders (customer_id, created_at DESC);
CREATE INDEX orders_status_created_idx ON orders.orders (status, created_at DESC);
CREATE INDEX orders_lifecycle_status_idx ON orders.orders (lifecycle, status);
CREATE INDEX orders_created_at_idx ON orders.orders (created_at DESC);
CREATE INDEX orders_payment_status_idx ON orders.orders (payment_status);
CREATE INDEX orders_customer_status_idx ON orders.orders (customer_id, status);
CREATE INDEX orders_target_delivery_date_idx ON orders.orders (target_delivery_date)
    WHERE target_delivery_date IS NOT NULL;
CREATE INDEX orders_assigned_rep_idx ON orders.orders (assigned_rep_id, status);
-- customer_id rides along for orders.agent_serves_customer() (the customers
-- policy's agent branch): an index-only scan, no heap page per order
CREATE INDEX orders_assigned_agent_idx ON orders.orders (assigned_agent_id, status) INCLUDE (customer_id);
CREATE INDEX orders_area_status_idx ON orders.orders (delivery_area, status);
CREATE INDEX orders_delivered_at_idx ON orders.orders (delivered_at DESC) WHERE delivered_at IS NOT NULL;
CREATE INDEX orders_source_idx ON orders.orders (source);
CREATE INDEX orders_priority_created_idx ON orders.orders (priority DESC, created_at DESC);

-- An item with a product_id takes its units (of the variant, when given)
-- out of stock while its order holds stock (70_stock.sql).
CREATE TABLE orders.order_items (
    id          uuid PRIMARY KEY DEFAULT orders.new_id(),
    order_id    uuid NOT NULL REFERENCES orders.orders (id) ON DELETE CASCADE,
    item_type   text NOT NULL DEFAULT 'product'
                CHECK (item_type IN ('product', 'service', 'subscription')),
    sku         text CHECK (length(sku) <= 255),
    name        text NOT NULL CHECK (length(name) <= 500),
    quantity    integer NOT NULL DEFAULT 1 CHECK (quantity > 0),
    unit_price  orders.amount NOT NULL DEFAULT 0,
    snapshot    jsonb NOT NULL DEFAULT '{}'
                CHECK (jsonb_typeof(snapshot) = 'object' AND orders.jsonb_within(snapshot, 262144)),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    product_id  uuid REFERENCES orders.products (id) ON DELETE RESTRICT,
    variant_id  uuid,
    total       numeric(14,2) GENERATED ALWAYS AS (quantity * unit_price) STORED,
    CONSTRAINT order_items_variant_fkey FOREIGN KEY (product_id, variant_id)
        REFERENCES orders.product_variants (product_id, id) ON DELETE RESTRICT
);
COMMENT ON COLUMN orders.order_items.product_id IS
    'The product the item takes from stock while its order holds stock; NULL: not a stock item';
COMMENT ON COLUMN orders.order_items.variant_id IS 'The variant (of product_id) whose stock the item takes';
CREATE INDEX order_items_order_id_idx ON orders.order_items (order_id);
CREATE INDEX order_items_sku_idx ON orders.order_items (sku);
CREATE INDEX order_items_product_idx ON orders.order_items (product_id) WHERE product_id IS NOT NULL;
CREATE INDEX order_items_variant_idx ON orders.order_items (variant_id) WHERE variant_id IS NOT NULL;

CREATE TABLE orders.order_history (
    id               bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    order_id         uuid NOT NULL REFERENCES orders.orders (id) ON DELETE CASCADE,
    old_status       text,
    new_status       text NOT NULL,
    changed_by       text NOT NULL,
    notes            text,
    idempotency_key  text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    announce         boolean NOT NULL DEFAULT false
);
COMMENT ON COLUMN orders.order_history.announce IS
    'The database''s status announcer sends this change on channel orders_status (orders.notify = batched; set by status_audit)';
CREATE INDEX order_history_order_id_idx ON orders.order_history (order_id, id);
CREATE UNIQUE INDEX order_history_idempotency_idx
    ON orders.order_history (order_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX order_history_created_at_idx ON orders.order_history (created_at DESC);
COMMENT ON TABLE orders.order_history IS 'One row per status change, written by orders.status_audit in the changing transaction';

CREATE TRIGGER status_guard BEFORE INSERT OR UPDATE ON orders.orders
    FOR EACH ROW EXECUTE FUNCTION orders.status_guard();
-- no WHEN clause (the function passes over an unchanged status):
-- PostgreSQL would parse and plan it again for every statement.  (0.31.0)
-- On every UPDATE, not UPDATE OF status: that fires on the SET list, and a
-- status a BEFORE trigger set (a DBA's) changed without a history row.
CREATE TRIGGER status_audit AFTER UPDATE ON orders.orders
    FOR EACH ROW EXECUTE FUNCTION orders.status_audit();
CREATE TRIGGER set_updated_at BEFORE UPDATE ON orders.orders
    FOR EACH ROW EXECUTE FUNCTION orders.set_updated_at();
CREATE TRIGGER id_stays BEFORE UPDATE OF id ON orders.orders
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION orders.id_stays();
CREATE TRIGGER set_updated_at BEFORE UPDATE ON orders.order_items
    FOR EACH ROW EXECUTE FUNCTION orders.set_updated_at();

-- TRUNCATE skips row triggers: the customers' statistics and the stock held
-- by orders would stay behind.  Refused while there is any (as for leads);
-- (0.30.0) at READ COMMITTED only: a REPEATABLE READ snapshot predates the
-- lock TRUNCATE waited for, and missed an order confirmed meanwhile.
-- SECURITY DEFINER: it must count every customer and order, not the ones
-- the caller's row level security shows.
CREATE FUNCTION orders.orders_truncate_guard() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    counted bigint;
    holding bigint;
BEGIN
    PERFORM orders.require_read_committed('TRUNCATE orders.orders',
        'Its check that nothing counts the rows needs a snapshot taken after the table''s lock.');
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
CREATE TRIGGER orders_truncate_guard BEFORE TRUNCATE ON orders.orders
    FOR EACH STATEMENT EXECUTE FUNCTION orders.orders_truncate_guard();

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
    PERFORM orders.require_read_committed('TRUNCATE orders.order_items',
        'Its check that nothing counts the rows needs a snapshot taken after the table''s lock.');
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

CREATE FUNCTION orders.transition(order_id uuid, to_status text,
                                  notes text DEFAULT NULL,
                                  idempotency_key text DEFAULT NULL)
    RETURNS orders.orders
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'orders_transition';
COMMENT ON FUNCTION orders.transition(uuid, text, text, text) IS
    'Change the status of an order along its lifecycle; returns the order. Same idempotency_key twice: the second call is a no-op.';

CREATE FUNCTION orders.allowed_transitions(order_id uuid)
    RETURNS SETOF text
    LANGUAGE c STABLE ROWS 8
    AS 'MODULE_PATHNAME', 'orders_allowed_transitions';
COMMENT ON FUNCTION orders.allowed_transitions(uuid) IS
    'Statuses the caller may move the order to now';

SELECT pg_catalog.pg_extension_config_dump('orders.orders', '');
SELECT pg_catalog.pg_extension_config_dump('orders.order_items', '');
SELECT pg_catalog.pg_extension_config_dump('orders.order_history', '');
SELECT pg_catalog.pg_extension_config_dump('orders.order_number_seq', '');
SELECT pg_catalog.pg_extension_config_dump('orders.order_history_id_seq', '');

-- The API runs with the caller's rights: the DBA grants table rights to the
-- API roles (doc/security.md).  Clients draw order numbers by the default.
REVOKE ALL ON orders.orders, orders.order_items, orders.order_history FROM PUBLIC;
REVOKE ALL ON FUNCTION orders.status_guard(), orders.status_audit(), orders.orders_truncate_guard(),
                       orders.items_truncate_guard() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orders.transition(uuid, text, text, text), orders.allowed_transitions(uuid),
                          orders.next_order_number() TO PUBLIC;
GRANT USAGE ON SEQUENCE orders.order_number_seq TO PUBLIC;
