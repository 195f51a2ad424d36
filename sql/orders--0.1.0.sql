-- orders extension, version 0.1.0: customers, orders, items, history and
-- lifecycles; status transitions validated in C.
\echo Use "CREATE EXTENSION orders" to load this file. \quit

-- Every object below is schema-qualified; functions that run SQL pin their
-- search_path, so a caller's search_path never reaches them.

---------------------------------------------------------------------------
-- Identity and shared trigger functions (C)
---------------------------------------------------------------------------

CREATE FUNCTION orders.current_actor() RETURNS text
    LANGUAGE c STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'orders_current_actor_sql';
COMMENT ON FUNCTION orders.current_actor() IS
    'Who is acting: JWT sub of request.jwt.claims (PostgREST), else jwt.claims.sub (PostGraphile), else current_user; empty settings count as unset';

CREATE FUNCTION orders.set_updated_at() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_set_updated_at';
COMMENT ON FUNCTION orders.set_updated_at() IS
    'BEFORE UPDATE row trigger: sets updated_at (or the column named by the trigger argument) to now()';

CREATE FUNCTION orders.lifecycle_changed() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_lifecycle_changed';

CREATE FUNCTION orders.status_guard() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_status_guard';

CREATE FUNCTION orders.status_audit() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_status_audit';

---------------------------------------------------------------------------
-- Lifecycles as data
---------------------------------------------------------------------------

CREATE TABLE orders.lifecycles (
    name            text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]*$'),
    initial_status  text NOT NULL,
    description     text,
    builtin         boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE orders.lifecycles IS 'Order lifecycles; add your own with INSERT (builtin = false rows are dumped by pg_dump)';

CREATE TABLE orders.lifecycle_states (
    lifecycle   text NOT NULL REFERENCES orders.lifecycles (name) ON UPDATE CASCADE ON DELETE CASCADE,
    status      text NOT NULL CHECK (status ~ '^[a-z][a-z0-9_]*$'),
    category    text NOT NULL CHECK (category IN ('open', 'fulfilled', 'cancelled', 'returned')),
    position    integer NOT NULL DEFAULT 0,
    description text,
    builtin     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (lifecycle, status)
);
COMMENT ON TABLE orders.lifecycle_states IS 'Statuses of each lifecycle, with a category used by statistics (open, fulfilled, cancelled, returned)';

-- lifecycles.initial_status is not a foreign key: that would make the two
-- tables depend on each other and pg_restore (one COPY per table) could not
-- load them.  status_guard refuses new orders of a lifecycle whose initial
-- status is not one of its states (OR008).

CREATE TABLE orders.lifecycle_transitions (
    lifecycle     text NOT NULL,
    from_status   text NOT NULL,
    to_status     text NOT NULL,
    stamp_column  text,
    allowed_roles name[],
    description   text,
    builtin       boolean NOT NULL DEFAULT false,
    PRIMARY KEY (lifecycle, from_status, to_status),
    CHECK (from_status <> to_status),
    FOREIGN KEY (lifecycle, from_status) REFERENCES orders.lifecycle_states (lifecycle, status)
        ON UPDATE CASCADE ON DELETE CASCADE,
    FOREIGN KEY (lifecycle, to_status) REFERENCES orders.lifecycle_states (lifecycle, status)
        ON UPDATE CASCADE ON DELETE CASCADE
);
COMMENT ON TABLE orders.lifecycle_transitions IS 'Edges of each lifecycle: which status may follow which; stamp_column is set to now() on the edge; allowed_roles (NULL = anyone who may update the order) restricts who may take it';
COMMENT ON COLUMN orders.lifecycle_transitions.stamp_column IS 'timestamptz column of orders.orders set to now() when the edge is taken';
COMMENT ON COLUMN orders.lifecycle_transitions.allowed_roles IS 'NULL: any role that may update the order; else the caller must have the privileges of one of these roles';

-- Refuse a transition row whose stamp column or roles do not exist.
CREATE FUNCTION orders.check_transition_row() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r name;
BEGIN
    IF NEW.stamp_column IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM pg_attribute
         WHERE attrelid = 'orders.orders'::regclass
           AND attname = NEW.stamp_column
           AND atttypid = 'timestamptz'::regtype
           AND attnum > 0 AND NOT attisdropped) THEN
        RAISE EXCEPTION 'lifecycle "%": stamp column "%" of transition "%" -> "%" is not a timestamptz column of orders.orders',
            NEW.lifecycle, NEW.stamp_column, NEW.from_status, NEW.to_status
            USING ERRCODE = 'OR008',
                  HINT = 'Add the column with ALTER TABLE orders.orders ADD COLUMN ... timestamptz, or leave stamp_column NULL.';
    END IF;
    FOREACH r IN ARRAY coalesce(NEW.allowed_roles, '{}'::name[]) LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            RAISE EXCEPTION 'lifecycle "%": role "%" of transition "%" -> "%" does not exist',
                NEW.lifecycle, r, NEW.from_status, NEW.to_status
                USING ERRCODE = 'OR008';
        END IF;
    END LOOP;
    RETURN NEW;
END
$$;

CREATE TRIGGER check_transition_row
    BEFORE INSERT OR UPDATE ON orders.lifecycle_transitions
    FOR EACH ROW EXECUTE FUNCTION orders.check_transition_row();

-- Any committed change of the graph invalidates every backend's cache.
CREATE TRIGGER lifecycle_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON orders.lifecycles FOR EACH STATEMENT EXECUTE FUNCTION orders.lifecycle_changed();
CREATE TRIGGER lifecycle_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON orders.lifecycle_states FOR EACH STATEMENT EXECUTE FUNCTION orders.lifecycle_changed();
CREATE TRIGGER lifecycle_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON orders.lifecycle_transitions FOR EACH STATEMENT EXECUTE FUNCTION orders.lifecycle_changed();

---------------------------------------------------------------------------
-- Customers, orders, items, history
---------------------------------------------------------------------------

CREATE TABLE orders.customers (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id    uuid,
    full_name     text NOT NULL,
    email         text,
    phone         text,
    address       text,
    city          text,
    area          text,
    postal_code   text,
    tags          jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(tags) = 'array'),
    notes         text,
    total_orders  integer NOT NULL DEFAULT 0 CHECK (total_orders >= 0),
    total_spent   numeric(14,2) NOT NULL DEFAULT 0 CHECK (total_spent >= 0),
    return_rate   numeric(5,2) NOT NULL DEFAULT 0 CHECK (return_rate BETWEEN 0 AND 100),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX customers_account_id_idx ON orders.customers (account_id);
CREATE INDEX customers_phone_idx ON orders.customers (phone);
CREATE INDEX customers_email_idx ON orders.customers (email);
COMMENT ON COLUMN orders.customers.account_id IS 'The login that owns this customer (matched against the JWT sub)';

CREATE SEQUENCE orders.order_number_seq;

-- Next generated order number, e.g. ORD-2026-000042.
CREATE FUNCTION orders.next_order_number() RETURNS text
    LANGUAGE sql VOLATILE
    SET search_path = pg_catalog, pg_temp
    RETURN 'ORD-' || to_char(now(), 'YYYY') || '-'
           || lpad(nextval('orders.order_number_seq')::text, 6, '0');

CREATE TABLE orders.orders (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_number    text NOT NULL UNIQUE DEFAULT orders.next_order_number()
                    CHECK (order_number <> ''),
    customer_id     uuid NOT NULL REFERENCES orders.customers (id) ON DELETE RESTRICT,
    lifecycle       text NOT NULL DEFAULT 'cod' REFERENCES orders.lifecycles (name),
    status          text NOT NULL,
    priority        integer NOT NULL DEFAULT 0,
    subtotal        numeric(12,2) NOT NULL DEFAULT 0 CHECK (subtotal >= 0),
    delivery_fee    numeric(12,2) NOT NULL DEFAULT 0 CHECK (delivery_fee >= 0),
    total_amount    numeric(12,2) NOT NULL DEFAULT 0 CHECK (total_amount >= 0),
    currency        char(3) NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    payment_status  text NOT NULL DEFAULT 'pending'
                    CHECK (payment_status IN ('pending', 'collected', 'failed', 'refunded')),
    payment_method  text CHECK (payment_method IN ('cod', 'bank_transfer', 'cash', 'card', 'other')),
    notes           text,
    metadata        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
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
    cancelled_at    timestamptz
);
COMMENT ON COLUMN orders.orders.priority IS 'Higher is more urgent (seed 004 high/medium/low = 2/1/0)';
COMMENT ON COLUMN orders.orders.status IS 'Current status; changes only along orders.lifecycle_transitions (see orders.transition)';
CREATE INDEX orders_customer_id_idx ON orders.orders (customer_id);
CREATE INDEX orders_status_created_idx ON orders.orders (status, created_at DESC);
CREATE INDEX orders_lifecycle_status_idx ON orders.orders (lifecycle, status);
CREATE INDEX orders_created_at_idx ON orders.orders (created_at DESC);
CREATE INDEX orders_payment_status_idx ON orders.orders (payment_status);

CREATE TABLE orders.order_items (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id    uuid NOT NULL REFERENCES orders.orders (id) ON DELETE CASCADE,
    item_type   text NOT NULL DEFAULT 'product'
                CHECK (item_type IN ('product', 'service', 'subscription')),
    sku         text,
    name        text NOT NULL,
    quantity    integer NOT NULL DEFAULT 1 CHECK (quantity > 0),
    unit_price  numeric(12,2) NOT NULL DEFAULT 0 CHECK (unit_price >= 0),
    total       numeric(14,2) GENERATED ALWAYS AS (quantity * unit_price) STORED,
    snapshot    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(snapshot) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_items_order_id_idx ON orders.order_items (order_id);
CREATE INDEX order_items_sku_idx ON orders.order_items (sku);

CREATE TABLE orders.order_history (
    id               bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    order_id         uuid NOT NULL REFERENCES orders.orders (id) ON DELETE CASCADE,
    old_status       text,
    new_status       text NOT NULL,
    changed_by       text NOT NULL,
    notes            text,
    idempotency_key  text,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_history_order_id_idx ON orders.order_history (order_id, id);
CREATE UNIQUE INDEX order_history_idempotency_idx
    ON orders.order_history (order_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX order_history_created_at_idx ON orders.order_history (created_at DESC);
COMMENT ON TABLE orders.order_history IS 'One row per status change, written by orders.status_audit in the changing transaction';

---------------------------------------------------------------------------
-- Triggers
---------------------------------------------------------------------------

CREATE TRIGGER status_guard BEFORE INSERT OR UPDATE ON orders.orders
    FOR EACH ROW EXECUTE FUNCTION orders.status_guard();
CREATE TRIGGER status_audit AFTER UPDATE OF status ON orders.orders
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION orders.status_audit();

CREATE TRIGGER set_updated_at BEFORE UPDATE ON orders.customers
    FOR EACH ROW EXECUTE FUNCTION orders.set_updated_at();
CREATE TRIGGER set_updated_at BEFORE UPDATE ON orders.orders
    FOR EACH ROW EXECUTE FUNCTION orders.set_updated_at();
CREATE TRIGGER set_updated_at BEFORE UPDATE ON orders.order_items
    FOR EACH ROW EXECUTE FUNCTION orders.set_updated_at();

---------------------------------------------------------------------------
-- API
---------------------------------------------------------------------------

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

-- Lifecycle graph as a readable list (one row per edge).
CREATE VIEW orders.lifecycle_graph AS
SELECT t.lifecycle, t.from_status, fs.category AS from_category,
       t.to_status, ts.category AS to_category, t.stamp_column, t.allowed_roles
  FROM orders.lifecycle_transitions t
  JOIN orders.lifecycle_states fs ON fs.lifecycle = t.lifecycle AND fs.status = t.from_status
  JOIN orders.lifecycle_states ts ON ts.lifecycle = t.lifecycle AND ts.status = t.to_status
 ORDER BY t.lifecycle, fs.position, ts.position;

---------------------------------------------------------------------------
-- Built-in lifecycles (see doc/lifecycles.md)
---------------------------------------------------------------------------

INSERT INTO orders.lifecycles (name, initial_status, description, builtin) VALUES
  ('cod',      'new',         'Cash-on-delivery order (seed 004)', true),
  ('campaign', 'draft',       'Lead-delivery campaign (seed 002)', true),
  ('review',   'configuring', 'Agency order with site review (seeds 000/001)', true),
  ('booking',  'pending',     'Service booking with a held time slot (seed 003)', true);

INSERT INTO orders.lifecycle_states (lifecycle, status, category, position, builtin) VALUES
  ('cod', 'new',                  'open',      10, true),
  ('cod', 'confirmation_pending', 'open',      20, true),
  ('cod', 'confirmed',            'open',      30, true),
  ('cod', 'being_prepared',       'open',      40, true),
  ('cod', 'ready_for_pickup',     'open',      50, true),
  ('cod', 'out_for_delivery',     'open',      60, true),
  ('cod', 'delivered',            'fulfilled', 70, true),
  ('cod', 'returned',             'returned',  80, true),
  ('cod', 'cancelled',            'cancelled', 90, true),
  ('campaign', 'draft',     'open',      10, true),
  ('campaign', 'active',    'open',      20, true),
  ('campaign', 'paused',    'open',      30, true),
  ('campaign', 'completed', 'fulfilled', 40, true),
  ('campaign', 'cancelled', 'cancelled', 50, true),
  ('review', 'configuring',     'open',      10, true),
  ('review', 'analyzing',       'open',      20, true),
  ('review', 'reviewing',       'open',      30, true),
  ('review', 'payment_pending', 'open',      40, true),
  ('review', 'in_progress',     'open',      50, true),
  ('review', 'completed',       'fulfilled', 60, true),
  ('review', 'cancelled',       'cancelled', 70, true),
  ('booking', 'pending',     'open',      10, true),
  ('booking', 'confirmed',   'open',      20, true),
  ('booking', 'in_progress', 'open',      30, true),
  ('booking', 'completed',   'fulfilled', 40, true),
  ('booking', 'no_show',     'cancelled', 50, true),
  ('booking', 'cancelled',   'cancelled', 60, true);

INSERT INTO orders.lifecycle_transitions (lifecycle, from_status, to_status, stamp_column, description, builtin) VALUES
  -- cod
  ('cod', 'new',                  'confirmation_pending', NULL,           'call the customer', true),
  ('cod', 'new',                  'confirmed',            'confirmed_at', 'confirmed at once', true),
  ('cod', 'new',                  'cancelled',            'cancelled_at', NULL, true),
  ('cod', 'confirmation_pending', 'confirmed',            'confirmed_at', NULL, true),
  ('cod', 'confirmation_pending', 'cancelled',            'cancelled_at', 'customer declined or unreachable', true),
  ('cod', 'confirmed',            'being_prepared',       NULL,           NULL, true),
  ('cod', 'confirmed',            'cancelled',            'cancelled_at', NULL, true),
  ('cod', 'being_prepared',       'ready_for_pickup',     NULL,           NULL, true),
  ('cod', 'being_prepared',       'cancelled',            'cancelled_at', NULL, true),
  ('cod', 'ready_for_pickup',     'out_for_delivery',     'shipped_at',   'agent picked it up', true),
  ('cod', 'ready_for_pickup',     'cancelled',            'cancelled_at', NULL, true),
  ('cod', 'out_for_delivery',     'delivered',            'delivered_at', NULL, true),
  ('cod', 'out_for_delivery',     'ready_for_pickup',     NULL,           'delivery attempt failed, back to the depot', true),
  ('cod', 'out_for_delivery',     'returned',             'returned_at',  'refused at the door', true),
  ('cod', 'delivered',            'returned',             'returned_at',  'returned after delivery', true),
  -- campaign
  ('campaign', 'draft',  'active',    'started_at',   NULL, true),
  ('campaign', 'draft',  'cancelled', 'cancelled_at', NULL, true),
  ('campaign', 'active', 'paused',    'paused_at',    NULL, true),
  ('campaign', 'active', 'completed', 'completed_at', NULL, true),
  ('campaign', 'active', 'cancelled', 'cancelled_at', NULL, true),
  ('campaign', 'paused', 'active',    NULL,           'resume', true),
  ('campaign', 'paused', 'completed', 'completed_at', 'close early', true),
  ('campaign', 'paused', 'cancelled', 'cancelled_at', NULL, true),
  -- review
  ('review', 'configuring',     'analyzing',       NULL,           NULL, true),
  ('review', 'configuring',     'cancelled',       'cancelled_at', NULL, true),
  ('review', 'analyzing',       'reviewing',       NULL,           NULL, true),
  ('review', 'analyzing',       'configuring',     NULL,           'change the configuration', true),
  ('review', 'analyzing',       'cancelled',       'cancelled_at', NULL, true),
  ('review', 'reviewing',       'payment_pending', 'reviewed_at',  'client approved the sites', true),
  ('review', 'reviewing',       'analyzing',       NULL,           'client asks for more sites', true),
  ('review', 'reviewing',       'cancelled',       'cancelled_at', NULL, true),
  ('review', 'payment_pending', 'in_progress',     'paid_at',      'payment received', true),
  ('review', 'payment_pending', 'reviewing',       NULL,           'client changes the selection', true),
  ('review', 'payment_pending', 'cancelled',       'cancelled_at', NULL, true),
  ('review', 'in_progress',     'completed',       'completed_at', NULL, true),
  ('review', 'in_progress',     'cancelled',       'cancelled_at', 'cancelled after payment: refund', true),
  -- booking
  ('booking', 'pending',     'confirmed',   'confirmed_at', 'payment succeeded, slot booked', true),
  ('booking', 'pending',     'cancelled',   'cancelled_at', 'checkout abandoned or hold expired', true),
  ('booking', 'confirmed',   'in_progress', 'started_at',   'customer checked in', true),
  ('booking', 'confirmed',   'completed',   'completed_at', NULL, true),
  ('booking', 'confirmed',   'no_show',     'cancelled_at', NULL, true),
  ('booking', 'confirmed',   'cancelled',   'cancelled_at', NULL, true),
  ('booking', 'in_progress', 'completed',   'completed_at', NULL, true);

---------------------------------------------------------------------------
-- pg_dump: user data and user-defined lifecycle rows are dumped
---------------------------------------------------------------------------

SELECT pg_catalog.pg_extension_config_dump('orders.lifecycles', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('orders.lifecycle_states', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('orders.lifecycle_transitions', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('orders.customers', '');
SELECT pg_catalog.pg_extension_config_dump('orders.orders', '');
SELECT pg_catalog.pg_extension_config_dump('orders.order_items', '');
SELECT pg_catalog.pg_extension_config_dump('orders.order_history', '');
SELECT pg_catalog.pg_extension_config_dump('orders.order_number_seq', '');
SELECT pg_catalog.pg_extension_config_dump('orders.order_history_id_seq', '');

---------------------------------------------------------------------------
-- Privileges: nothing for PUBLIC but reading the lifecycle definitions and
-- calling the API; the DBA grants table rights to API roles (doc/security.md).
---------------------------------------------------------------------------

REVOKE ALL ON ALL TABLES IN SCHEMA orders FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA orders FROM PUBLIC;
GRANT USAGE ON SCHEMA orders TO PUBLIC;
GRANT SELECT ON orders.lifecycles, orders.lifecycle_states, orders.lifecycle_transitions,
                orders.lifecycle_graph TO PUBLIC;
GRANT EXECUTE ON FUNCTION orders.current_actor(), orders.transition(uuid, text, text, text),
                          orders.allowed_transitions(uuid), orders.next_order_number()
    TO PUBLIC;
GRANT USAGE ON SEQUENCE orders.order_number_seq TO PUBLIC;
