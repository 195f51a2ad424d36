-- orders extension: the current schema, in one place.
--
-- The Makefile concatenates sql/schema/*.sql, in name order, into the
-- install script of the current version (sql/orders--<version>.sql, not
-- committed).  Each file holds one capability.  Existing installations move
-- forward with the upgrade scripts sql/orders--A--B.sql instead; the test
-- command proves that both roads end in identical catalogs
-- (test/catalog_identity.sh), so a change goes into the file here AND into
-- the newest upgrade script.
--
-- Every object is schema-qualified.  Functions that run SQL pin
-- search_path = pg_catalog, pg_temp (SQL-standard bodies are bound when
-- created); the C library runs its own SQL as the table owner with
-- pg_catalog alone on the path (doc/security.md).
\echo Use "CREATE EXTENSION orders" to load this file. \quit

-- PostgreSQL 15.0-15.19 can fail an UPDATE of a row whose previous updater
-- is aborting with XX000 "new multixact has more than one updating member"
-- (fixed in 15.20; doc/multixact.md).  The extension's stock, counters and
-- savepoint-using callers meet that pattern: say so where the DBA looks.
DO $$
BEGIN
    IF pg_catalog.current_setting('server_version_num')::integer BETWEEN 150000 AND 150019 THEN
        RAISE WARNING 'PostgreSQL % can fail concurrent updates with "new multixact has more than one updating member"',
                      pg_catalog.current_setting('server_version')
            USING DETAIL = 'A bug of PostgreSQL 15.0 to 15.19, fixed in 15.20: an UPDATE does not wait for an aborting earlier updater of the row.',
                  HINT = 'Install PostgreSQL 15.20 or later (a minor release: restart only, no dump or pg_upgrade).';
    END IF;
END
$$;

---------------------------------------------------------------------------
-- Lifecycles as data (doc/lifecycles.md): which statuses an order of each
-- lifecycle can be in, what each status means, which status may follow
-- which.  The C library caches the graph per backend.
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

CREATE TABLE orders.lifecycles (
    name            text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]*$'),
    initial_status  text NOT NULL,
    description     text,
    builtin         boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE orders.lifecycles IS 'Order lifecycles; add your own with INSERT (builtin = false rows are dumped by pg_dump)';

-- category: what an order in the status counts for (customer statistics,
-- revenue); accepts_leads: leads delivered now count toward the order;
-- holds_stock: the order's items are out of stock.
CREATE TABLE orders.lifecycle_states (
    lifecycle   text NOT NULL REFERENCES orders.lifecycles (name) ON UPDATE CASCADE ON DELETE CASCADE,
    status      text NOT NULL CHECK (status ~ '^[a-z][a-z0-9_]*$'),
    category    text NOT NULL CHECK (category IN ('open', 'fulfilled', 'cancelled', 'returned')),
    position    integer NOT NULL DEFAULT 0,
    description text,
    builtin     boolean NOT NULL DEFAULT false,
    accepts_leads boolean NOT NULL DEFAULT false,
    holds_stock boolean NOT NULL DEFAULT false,
    PRIMARY KEY (lifecycle, status)
);
COMMENT ON TABLE orders.lifecycle_states IS 'Statuses of each lifecycle, with a category used by statistics (open, fulfilled, cancelled, returned)';
COMMENT ON COLUMN orders.lifecycle_states.accepts_leads IS
    'Leads may be delivered (counted) to an order while it is in this status';
COMMENT ON COLUMN orders.lifecycle_states.holds_stock IS
    'An order in this status has its stock items out of stock (entering takes them, leaving gives them back)';

-- lifecycles.initial_status is not a foreign key: that would make the two
-- tables depend on each other and pg_restore (one COPY per table) could not
-- load them.  status_guard refuses new orders of a lifecycle whose initial
-- status is not one of its states (OR008).

-- Gates: checks an order must pass to take an edge (0.8.0).  A gate names
-- a function (order_id uuid) RETURNS text — NULL lets the order through,
-- anything else says what is missing and refuses the change (OR071) — and
-- optionally the columns of orders.orders stamped with the time and the
-- actor when the order passes.  An edge names its gate in
-- lifecycle_transitions.gate; the built-in ones are in 97_review.sql.
CREATE TABLE orders.lifecycle_gates (
    name            text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]*$'),
    check_function  regprocedure NOT NULL,
    stamp_column    text,
    actor_column    text,
    description     text,
    builtin         boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE orders.lifecycle_gates IS
    'Checks an order must pass to take a lifecycle edge: check_function(order_id uuid) returns NULL to pass, else what is missing';

-- Refuse a gate whose function is not (order_id uuid) -> text or whose
-- columns orders.orders does not have.
CREATE FUNCTION orders.check_gate_row() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_proc p
                    WHERE p.oid = NEW.check_function::oid AND p.pronargs = 1
                      AND p.proargtypes[0] = 'uuid'::regtype AND p.prorettype = 'text'::regtype
                      AND NOT p.proretset) THEN
        RAISE EXCEPTION 'gate "%": % must take one uuid (the order id) and return text', NEW.name, NEW.check_function
            USING ERRCODE = 'OR008';
    END IF;
    IF NEW.stamp_column IS NOT NULL AND NOT EXISTS (
        SELECT FROM pg_attribute WHERE attrelid = 'orders.orders'::regclass AND attname = NEW.stamp_column
           AND atttypid = 'timestamptz'::regtype AND attnum > 0 AND NOT attisdropped) THEN
        RAISE EXCEPTION 'gate "%": stamp column "%" is not a timestamptz column of orders.orders', NEW.name, NEW.stamp_column
            USING ERRCODE = 'OR008';
    END IF;
    IF NEW.actor_column IS NOT NULL AND NOT EXISTS (
        SELECT FROM pg_attribute WHERE attrelid = 'orders.orders'::regclass AND attname = NEW.actor_column
           AND atttypid = 'text'::regtype AND attnum > 0 AND NOT attisdropped) THEN
        RAISE EXCEPTION 'gate "%": actor column "%" is not a text column of orders.orders', NEW.name, NEW.actor_column
            USING ERRCODE = 'OR008';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER check_gate_row BEFORE INSERT OR UPDATE ON orders.lifecycle_gates
    FOR EACH ROW EXECUTE FUNCTION orders.check_gate_row();

CREATE TABLE orders.lifecycle_transitions (
    lifecycle     text NOT NULL,
    from_status   text NOT NULL,
    to_status     text NOT NULL,
    stamp_column  text,
    allowed_roles name[],
    description   text,
    builtin       boolean NOT NULL DEFAULT false,
    allowed_staff text[] CHECK (allowed_staff <@ ARRAY['admin', 'manager', 'customer_rep', 'delivery_agent',
                                                       'accountant', 'assigned_agent', 'assigned_rep']),
    gate          text REFERENCES orders.lifecycle_gates (name) ON UPDATE CASCADE,
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
COMMENT ON COLUMN orders.lifecycle_transitions.gate IS 'NULL, or the orders.lifecycle_gates check an order must pass to take the edge';
COMMENT ON COLUMN orders.lifecycle_transitions.allowed_staff IS
    'NULL: no staff rule; else in an API request only active staff of these roles, or the order''s assigned_agent / assigned_rep, take the edge';

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

-- A state's category (statistics, money) and holds_stock (stock) decide
-- what its orders count for; changing either while orders are in the state
-- would leave those counts behind.  Refused (OR008) until the state is
-- empty; orders.orders is locked in SHARE mode meanwhile so that no order
-- enters it before the change commits.  The check must read the orders
-- committed before the lock was granted: only READ COMMITTED does (a
-- REPEATABLE READ snapshot predates the lock: refused with 25000).
-- SECURITY DEFINER: it must count every order, not the ones the caller's
-- row level security shows.
CREATE FUNCTION orders.state_meaning_guard() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
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
CREATE TRIGGER state_meaning_guard BEFORE UPDATE OF category, holds_stock ON orders.lifecycle_states
    FOR EACH ROW EXECUTE FUNCTION orders.state_meaning_guard();

-- Any committed change of the graph invalidates every backend's cache.
CREATE TRIGGER lifecycle_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON orders.lifecycles FOR EACH STATEMENT EXECUTE FUNCTION orders.lifecycle_changed();
CREATE TRIGGER lifecycle_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON orders.lifecycle_states FOR EACH STATEMENT EXECUTE FUNCTION orders.lifecycle_changed();
CREATE TRIGGER lifecycle_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON orders.lifecycle_transitions FOR EACH STATEMENT EXECUTE FUNCTION orders.lifecycle_changed();
CREATE TRIGGER lifecycle_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON orders.lifecycle_gates FOR EACH STATEMENT EXECUTE FUNCTION orders.lifecycle_changed();

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

-- The category of a status, from the cached lifecycle graph (C).
CREATE FUNCTION orders.status_category(lifecycle text, status text) RETURNS text
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'orders_status_category';
COMMENT ON FUNCTION orders.status_category(text, text) IS
    'Category (open, fulfilled, cancelled, returned) of a status of a lifecycle; NULL when unknown';

-- Lifecycle graph as a readable list (one row per edge).
CREATE VIEW orders.lifecycle_graph WITH (security_invoker = true) AS
SELECT t.lifecycle, t.from_status, fs.category AS from_category,
       t.to_status, ts.category AS to_category, t.stamp_column, t.allowed_roles
  FROM orders.lifecycle_transitions t
  JOIN orders.lifecycle_states fs ON fs.lifecycle = t.lifecycle AND fs.status = t.from_status
  JOIN orders.lifecycle_states ts ON ts.lifecycle = t.lifecycle AND ts.status = t.to_status
 ORDER BY t.lifecycle, fs.position, ts.position;

SELECT pg_catalog.pg_extension_config_dump('orders.lifecycles', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('orders.lifecycle_states', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('orders.lifecycle_transitions', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('orders.lifecycle_gates', 'WHERE NOT builtin');

-- Anybody may use the schema, read the definitions and call the identity
-- and category functions; the trigger functions are nobody's to call.
GRANT USAGE ON SCHEMA orders TO PUBLIC;
REVOKE ALL ON orders.lifecycles, orders.lifecycle_states, orders.lifecycle_transitions,
              orders.lifecycle_gates, orders.lifecycle_graph FROM PUBLIC;
GRANT SELECT ON orders.lifecycles, orders.lifecycle_states, orders.lifecycle_transitions,
                orders.lifecycle_gates, orders.lifecycle_graph TO PUBLIC;
REVOKE ALL ON FUNCTION orders.set_updated_at(), orders.lifecycle_changed(),
                       orders.check_transition_row(), orders.state_meaning_guard(),
                       orders.check_gate_row() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orders.current_actor(), orders.status_category(text, text) TO PUBLIC;

---------------------------------------------------------------------------
-- Customers and staff.  A login is a customer when its JWT sub is a
-- customers.account_id, staff when it is a staff.account_id.
---------------------------------------------------------------------------

-- total_orders .. return_rate are maintained by orders.customer_stats
-- (50_customer_stats.sql), never written by hand.
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
    updated_at    timestamptz NOT NULL DEFAULT now(),
    returned_orders integer NOT NULL DEFAULT 0 CHECK (returned_orders >= 0)
);
COMMENT ON COLUMN orders.customers.account_id IS 'The login that owns this customer (matched against the JWT sub)';
COMMENT ON COLUMN orders.customers.total_orders IS
    'Orders not in a cancelled-category status; maintained by orders.customer_stats';
COMMENT ON COLUMN orders.customers.total_spent IS
    'Sum of total_amount of orders in a fulfilled-category status with payment_status collected; maintained';
COMMENT ON COLUMN orders.customers.returned_orders IS
    'Orders in a returned-category status; maintained (the numerator of return_rate)';
COMMENT ON COLUMN orders.customers.return_rate IS
    'returned_orders / total_orders in percent, 2 decimals; maintained';
CREATE INDEX customers_account_id_idx ON orders.customers (account_id);
CREATE INDEX customers_phone_idx ON orders.customers (phone);
CREATE INDEX customers_email_idx ON orders.customers (email);
CREATE INDEX customers_total_orders_idx ON orders.customers (total_orders DESC);
CREATE INDEX customers_total_spent_idx ON orders.customers (total_spent DESC);
CREATE INDEX customers_area_idx ON orders.customers (area);
CREATE INDEX customers_tags_idx ON orders.customers USING gin (tags jsonb_path_ops);
CREATE TRIGGER set_updated_at BEFORE UPDATE ON orders.customers
    FOR EACH ROW EXECUTE FUNCTION orders.set_updated_at();

CREATE TABLE orders.staff (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id           uuid UNIQUE,
    full_name            text NOT NULL,
    email                text UNIQUE,
    phone                text,
    role                 text NOT NULL
                         CHECK (role IN ('admin', 'manager', 'customer_rep', 'delivery_agent', 'accountant')),
    permissions          jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(permissions) = 'object'),
    is_active            boolean NOT NULL DEFAULT true,
    availability_status  text NOT NULL DEFAULT 'offline'
                         CHECK (availability_status IN ('available', 'busy', 'offline')),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE orders.staff IS
    'Staff directory (seed 004 users, without passwords: authentication belongs to the API layer)';
COMMENT ON COLUMN orders.staff.account_id IS 'The login of the staff member (matched against the JWT sub)';
CREATE INDEX staff_role_idx ON orders.staff (role);
CREATE INDEX staff_active_availability_idx ON orders.staff (is_active, availability_status);
CREATE TRIGGER set_updated_at BEFORE UPDATE ON orders.staff
    FOR EACH ROW EXECUTE FUNCTION orders.set_updated_at();

-- staff_id_of — the staff member whose account_id is "actor" (a JWT sub).
CREATE FUNCTION orders.staff_id_of(actor text) RETURNS uuid
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.id FROM orders.staff s
     WHERE s.account_id = CASE WHEN actor ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                               THEN actor::uuid END
$$;
-- current_staff_id — the caller's staff id (from the JWT sub), or NULL (C,
-- src/identity.c: read as the owner of orders.staff).
CREATE FUNCTION orders.current_staff_id() RETURNS uuid
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 'orders_current_staff_id';
COMMENT ON FUNCTION orders.current_staff_id() IS
    'The orders.staff id whose account_id is the caller''s JWT sub, or NULL';

SELECT pg_catalog.pg_extension_config_dump('orders.customers', '');
SELECT pg_catalog.pg_extension_config_dump('orders.staff', '');
REVOKE ALL ON orders.customers, orders.staff FROM PUBLIC;
REVOKE ALL ON FUNCTION orders.staff_id_of(text) FROM PUBLIC;

---------------------------------------------------------------------------
-- Products and variants: the catalog whose stock the order lifecycle takes
-- and gives back (70_stock.sql, doc/stock_and_money.md).
---------------------------------------------------------------------------

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
-- * amounts are never NaN: numeric holds 'NaN', which passes ">= 0" (NaN
--   sorts above every number) and would poison every sum it enters
--   (numeric(12,2) refuses the infinities by itself).
CREATE DOMAIN orders.amount AS numeric(12,2) CHECK (VALUE >= 0 AND VALUE <> 'NaN');
CREATE DOMAIN orders.positive_amount AS numeric(12,2) CHECK (VALUE > 0 AND VALUE <> 'NaN');
CREATE DOMAIN orders.signed_amount AS numeric(12,2) CHECK (VALUE <> 'NaN');
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

SELECT pg_catalog.pg_extension_config_dump('orders.products', '');
SELECT pg_catalog.pg_extension_config_dump('orders.product_variants', '');
REVOKE ALL ON orders.products, orders.product_variants FROM PUBLIC;

---------------------------------------------------------------------------
-- Orders, their items and their history.  status_guard (C) admits only the
-- changes the lifecycle graph allows; status_audit (C) writes history and
-- notifies in the changing transaction (doc/lifecycles.md).
---------------------------------------------------------------------------

CREATE FUNCTION orders.status_guard() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_status_guard';

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
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
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
    cancelled_at    timestamptz,
    -- lead campaigns
    name                 text,
    leads_purchased      integer NOT NULL DEFAULT 0 CHECK (leads_purchased >= 0),
    leads_delivered      integer NOT NULL DEFAULT 0 CHECK (leads_delivered >= 0),
    leads_remaining      integer GENERATED ALWAYS AS (leads_purchased - leads_delivered) STORED,
    target_delivery_date date,
    start_date           date,
    completion_date      date,
    -- COD operations
    assigned_rep_id    uuid REFERENCES orders.staff (id) ON DELETE SET NULL,
    assigned_agent_id  uuid REFERENCES orders.staff (id) ON DELETE SET NULL,
    delivery_address   text,
    delivery_area      text,
    source             text NOT NULL DEFAULT 'manual'
                       CHECK (source IN ('manual', 'webhook', 'csv', 'api')),
    webhook_source     text,
    customer_notes     text,
    delivery_proof     jsonb,
    return_reason      text,
    -- money tied together (42_order_money.sql)
    adjustment         orders.signed_amount NOT NULL DEFAULT 0,
    -- agency orders (97_review.sql)
    requires_client_review  boolean NOT NULL DEFAULT false,
    review_completed_at     timestamptz,
    reviewed_by             text,
    analysis_project_id     uuid,
    -- shop webhooks (98_webhooks.sql): the shop's order id, unique per webhook_source
    external_id             text,
    CONSTRAINT orders_leads_delivered_within_purchase CHECK (leads_delivered <= leads_purchased)
);
COMMENT ON COLUMN orders.orders.priority IS 'Higher is more urgent (seed 004 high/medium/low = 2/1/0)';
COMMENT ON COLUMN orders.orders.status IS 'Current status; changes only along orders.lifecycle_transitions (see orders.transition)';
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
CREATE INDEX orders_assigned_agent_idx ON orders.orders (assigned_agent_id, status);
CREATE INDEX orders_area_status_idx ON orders.orders (delivery_area, status);
CREATE INDEX orders_delivered_at_idx ON orders.orders (delivered_at DESC) WHERE delivered_at IS NOT NULL;
CREATE INDEX orders_source_idx ON orders.orders (source);
CREATE INDEX orders_priority_created_idx ON orders.orders (priority DESC, created_at DESC);

-- An item with a product_id takes its units (of the variant, when given)
-- out of stock while its order holds stock (70_stock.sql).
CREATE TABLE orders.order_items (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id    uuid NOT NULL REFERENCES orders.orders (id) ON DELETE CASCADE,
    item_type   text NOT NULL DEFAULT 'product'
                CHECK (item_type IN ('product', 'service', 'subscription')),
    sku         text,
    name        text NOT NULL,
    quantity    integer NOT NULL DEFAULT 1 CHECK (quantity > 0),
    unit_price  orders.amount NOT NULL DEFAULT 0,
    snapshot    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(snapshot) = 'object'),
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
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_history_order_id_idx ON orders.order_history (order_id, id);
CREATE UNIQUE INDEX order_history_idempotency_idx
    ON orders.order_history (order_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX order_history_created_at_idx ON orders.order_history (created_at DESC);
COMMENT ON TABLE orders.order_history IS 'One row per status change, written by orders.status_audit in the changing transaction';

CREATE TRIGGER status_guard BEFORE INSERT OR UPDATE ON orders.orders
    FOR EACH ROW EXECUTE FUNCTION orders.status_guard();
CREATE TRIGGER status_audit AFTER UPDATE OF status ON orders.orders
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION orders.status_audit();
CREATE TRIGGER set_updated_at BEFORE UPDATE ON orders.orders
    FOR EACH ROW EXECUTE FUNCTION orders.set_updated_at();
CREATE TRIGGER set_updated_at BEFORE UPDATE ON orders.order_items
    FOR EACH ROW EXECUTE FUNCTION orders.set_updated_at();

-- TRUNCATE skips row triggers: the customers' statistics and the stock held
-- by orders would stay behind.  Refused while there is any (as for leads).
-- SECURITY DEFINER: it must count every customer and order, not the ones
-- the caller's row level security shows.
CREATE FUNCTION orders.orders_truncate_guard() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
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
REVOKE ALL ON FUNCTION orders.status_guard(), orders.status_audit(), orders.orders_truncate_guard() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orders.transition(uuid, text, text, text), orders.allowed_transitions(uuid),
                          orders.next_order_number() TO PUBLIC;
GRANT USAGE ON SEQUENCE orders.order_number_seq TO PUBLIC;

---------------------------------------------------------------------------
-- An order's amounts tied together (C, order_money.c, doc/stock_and_money.md):
-- subtotal = the sum of its items' totals, kept exact like the other
-- counters; total_amount = subtotal + delivery_fee + adjustment, kept by
-- status_guard — writing total_amount sets adjustment, writing the parts
-- (or changing items) moves the total.
---------------------------------------------------------------------------

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

---------------------------------------------------------------------------
-- The built-in lifecycles (doc/lifecycles.md), after orders.orders: the
-- transitions' stamp columns are checked against it.
---------------------------------------------------------------------------

-- Built-in lifecycles (doc/lifecycles.md).  pg_dump keeps only the rows
-- with builtin = false: the built-in ones come with the extension.
INSERT INTO orders.lifecycles (name, initial_status, description, builtin) VALUES
  ('cod',      'new',         'Cash-on-delivery order (seed 004)', true),
  ('campaign', 'draft',       'Lead-delivery campaign (seed 002)', true),
  ('review',   'configuring', 'Agency order with site review (seeds 000/001)', true),
  ('booking',  'pending',     'Service booking with a held time slot (seed 003)', true);

INSERT INTO orders.lifecycle_states (lifecycle, status, category, position, builtin, accepts_leads, holds_stock) VALUES
  ('cod', 'new',                  'open',      10, true, false, false),
  ('cod', 'confirmation_pending', 'open',      20, true, false, false),
  ('cod', 'confirmed',            'open',      30, true, false, true),
  ('cod', 'being_prepared',       'open',      40, true, false, true),
  ('cod', 'ready_for_pickup',     'open',      50, true, false, true),
  ('cod', 'out_for_delivery',     'open',      60, true, false, true),
  ('cod', 'delivered',            'fulfilled', 70, true, false, true),
  ('cod', 'returned',             'returned',  80, true, false, false),
  ('cod', 'cancelled',            'cancelled', 90, true, false, false),
  ('campaign', 'draft',     'open',      10, true, false, false),
  ('campaign', 'active',    'open',      20, true, true,  false),
  ('campaign', 'paused',    'open',      30, true, false, false),
  ('campaign', 'completed', 'fulfilled', 40, true, false, false),
  ('campaign', 'cancelled', 'cancelled', 50, true, false, false),
  ('review', 'configuring',     'open',      10, true, false, false),
  ('review', 'analyzing',       'open',      20, true, false, false),
  ('review', 'reviewing',       'open',      30, true, false, false),
  ('review', 'payment_pending', 'open',      40, true, false, false),
  ('review', 'in_progress',     'open',      50, true, false, false),
  ('review', 'completed',       'fulfilled', 60, true, false, false),
  ('review', 'cancelled',       'cancelled', 70, true, false, false),
  ('booking', 'pending',     'open',      10, true, false, false),
  ('booking', 'confirmed',   'open',      20, true, false, false),
  ('booking', 'in_progress', 'open',      30, true, false, false),
  ('booking', 'completed',   'fulfilled', 40, true, false, false),
  ('booking', 'no_show',     'cancelled', 50, true, false, false),
  ('booking', 'cancelled',   'cancelled', 60, true, false, false);

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
  ('campaign', 'draft',     'active',    'started_at',   NULL, true),
  ('campaign', 'draft',     'cancelled', 'cancelled_at', NULL, true),
  ('campaign', 'active',    'paused',    'paused_at',    NULL, true),
  ('campaign', 'active',    'completed', 'completed_at', NULL, true),
  ('campaign', 'active',    'cancelled', 'cancelled_at', NULL, true),
  ('campaign', 'paused',    'active',    NULL,           'resume', true),
  ('campaign', 'paused',    'completed', 'completed_at', 'close early', true),
  ('campaign', 'paused',    'cancelled', 'cancelled_at', NULL, true),
  ('campaign', 'completed', 'active',    NULL,           'reopen: more leads are owed', true),
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

-- COD work by staff (seed 004), in API requests: the customer confirms or
-- cancels an order until it is being prepared; staff prepare it; the
-- assigned agent (or a manager) takes it out, delivers it or brings it back.
UPDATE orders.lifecycle_transitions t SET allowed_staff = w.who::text[]
  FROM (VALUES
    ('new',              'confirmation_pending', '{admin,manager,customer_rep}'),
    ('confirmed',        'being_prepared',       '{admin,manager,customer_rep,assigned_agent}'),
    ('being_prepared',   'ready_for_pickup',     '{admin,manager,customer_rep,assigned_agent}'),
    ('being_prepared',   'cancelled',            '{admin,manager,customer_rep}'),
    ('ready_for_pickup', 'out_for_delivery',     '{admin,manager,assigned_agent}'),
    ('ready_for_pickup', 'cancelled',            '{admin,manager,customer_rep}'),
    ('out_for_delivery', 'delivered',            '{admin,manager,assigned_agent}'),
    ('out_for_delivery', 'ready_for_pickup',     '{admin,manager,assigned_agent}'),
    ('out_for_delivery', 'returned',             '{admin,manager,assigned_agent}'),
    ('delivered',        'returned',             '{admin,manager,customer_rep}')
  ) w (from_status, to_status, who)
 WHERE t.lifecycle = 'cod' AND t.builtin AND t.from_status = w.from_status AND t.to_status = w.to_status;

---------------------------------------------------------------------------
-- Lead campaigns (seed 002, doc/leads.md): orders.orders.leads_delivered
-- follows every INSERT, UPDATE and DELETE of leads, exactly, in C.
---------------------------------------------------------------------------

CREATE TABLE orders.leads (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    customer_id   uuid REFERENCES orders.customers (id) ON DELETE RESTRICT,
    order_id      uuid REFERENCES orders.orders (id) ON DELETE SET NULL,
    status        text NOT NULL DEFAULT 'new'
                  CHECK (status IN ('new', 'contacted', 'approved', 'lead', 'rejected')),
    company_name  text,
    contact_name  text,
    job_title     text,
    email         text,
    phone         text,
    website       text,
    industry      text,
    location      text,
    source        text,
    notes         text,
    metadata      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE orders.leads IS
    'Leads of lead-generation campaigns (seed 002); status approved or lead counts toward the order';
COMMENT ON COLUMN orders.leads.customer_id IS 'The client the lead is for';
COMMENT ON COLUMN orders.leads.order_id IS 'The campaign order the lead is delivered under';
CREATE INDEX leads_order_id_idx ON orders.leads (order_id);
CREATE INDEX leads_customer_order_idx ON orders.leads (customer_id, order_id);
CREATE INDEX leads_status_idx ON orders.leads (status);

CREATE FUNCTION orders.leads_count() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_leads_count';
CREATE FUNCTION orders.leads_truncate() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_leads_truncate';
CREATE FUNCTION orders.lead_capacity_guard() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_lead_capacity_guard';

-- one statement trigger per event: transition tables allow only one event
CREATE TRIGGER leads_count_insert AFTER INSERT ON orders.leads
    REFERENCING NEW TABLE AS new_leads
    FOR EACH STATEMENT EXECUTE FUNCTION orders.leads_count();
CREATE TRIGGER leads_count_update AFTER UPDATE ON orders.leads
    REFERENCING OLD TABLE AS old_leads NEW TABLE AS new_leads
    FOR EACH STATEMENT EXECUTE FUNCTION orders.leads_count();
CREATE TRIGGER leads_count_delete AFTER DELETE ON orders.leads
    REFERENCING OLD TABLE AS old_leads
    FOR EACH STATEMENT EXECUTE FUNCTION orders.leads_count();
CREATE TRIGGER leads_truncate BEFORE TRUNCATE ON orders.leads
    FOR EACH STATEMENT EXECUTE FUNCTION orders.leads_truncate();
CREATE TRIGGER set_updated_at BEFORE UPDATE ON orders.leads
    FOR EACH ROW EXECUTE FUNCTION orders.set_updated_at();
CREATE TRIGGER lead_capacity_guard BEFORE INSERT OR UPDATE OF leads_purchased, leads_delivered
    ON orders.orders FOR EACH ROW EXECUTE FUNCTION orders.lead_capacity_guard();

-- Assign a lead to an order (NULL: unassign).  A lead without a customer
-- takes the order's.  Runs with the caller's rights.
CREATE FUNCTION orders.assign_lead(lead_id uuid, order_id uuid)
    RETURNS orders.leads
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result orders.leads;
BEGIN
    IF assign_lead.lead_id IS NULL THEN
        RAISE EXCEPTION 'orders.assign_lead: argument "lead_id" must not be null'
            USING ERRCODE = '22004';
    END IF;
    UPDATE orders.leads l
       SET order_id = assign_lead.order_id,
           customer_id = coalesce(l.customer_id,
                                  (SELECT o.customer_id FROM orders.orders o WHERE o.id = assign_lead.order_id))
     WHERE l.id = assign_lead.lead_id
    RETURNING l.* INTO result;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'lead % does not exist', assign_lead.lead_id
            USING ERRCODE = 'OR015',
                  HINT = 'Either no lead has this id or row level security hides it from you.';
    END IF;
    RETURN result;
END
$$;
COMMENT ON FUNCTION orders.assign_lead(uuid, uuid) IS
    'Assign a lead to a campaign order (NULL unassigns); the order''s leads_delivered follows';

-- Repair: recount leads_delivered from the leads and return the orders whose
-- stored count was wrong (normally none).  Locks the orders first, then
-- counts, so concurrent lead writers are neither missed nor counted twice.
CREATE FUNCTION orders.recount_leads(order_id uuid DEFAULT NULL)
    RETURNS TABLE (id uuid, order_number text, stored integer, counted integer)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'orders.recount_leads must run at READ COMMITTED isolation'
            USING ERRCODE = '25000',
                  DETAIL = 'A transaction snapshot would not see leads committed while it waits for the orders.';
    END IF;
    PERFORM 1 FROM orders.orders o
     WHERE recount_leads.order_id IS NULL OR o.id = recount_leads.order_id
     ORDER BY o.id FOR UPDATE;
    RETURN QUERY
    WITH actual AS (
        SELECT o.id, o.order_number, o.leads_delivered AS stored,
               (SELECT count(*)::integer FROM orders.leads l
                 WHERE l.order_id = o.id AND l.status IN ('approved', 'lead')) AS counted
          FROM orders.orders o
         WHERE recount_leads.order_id IS NULL OR o.id = recount_leads.order_id),
    fixed AS (
        UPDATE orders.orders o SET leads_delivered = a.counted
          FROM actual a WHERE o.id = a.id AND a.stored <> a.counted
        RETURNING o.id)
    SELECT a.id, a.order_number, a.stored, a.counted
      FROM actual a WHERE a.stored <> a.counted ORDER BY a.order_number;
END
$$;
COMMENT ON FUNCTION orders.recount_leads(uuid) IS
    'Recount leads_delivered (all orders, or one); returns and repairs the orders whose count was wrong';

CREATE VIEW orders.order_summary WITH (security_invoker = true) AS
SELECT o.id, o.order_number, o.customer_id, c.full_name AS client_name, o.name, o.status,
       o.leads_purchased, o.leads_delivered, o.leads_remaining,
       o.target_delivery_date, o.start_date, o.completion_date,
       CASE WHEN o.leads_purchased > 0
            THEN round(o.leads_delivered::numeric / o.leads_purchased * 100, 1)
            ELSE 0.0 END AS completion_percentage,
       o.target_delivery_date - CURRENT_DATE AS days_remaining,
       o.priority, o.created_at, o.updated_at
  FROM orders.orders o
  JOIN orders.customers c ON c.id = o.customer_id
 WHERE o.lifecycle = 'campaign' OR o.leads_purchased > 0;
COMMENT ON VIEW orders.order_summary IS 'Campaign progress per order (seed 002)';

-- Admin dashboard figures over campaign orders.  "near capacity": an open
-- campaign with 90% or more of its leads delivered.
CREATE FUNCTION orders.order_stats()
    RETURNS TABLE (total bigint, active bigint, overdue bigint,
                   near_capacity bigint, completed_this_month bigint)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT count(*),
           count(*) FILTER (WHERE o.status = 'active'),
           count(*) FILTER (WHERE s.category = 'open' AND o.target_delivery_date < CURRENT_DATE),
           count(*) FILTER (WHERE s.category = 'open' AND o.leads_purchased > 0
                              AND o.leads_delivered * 10 >= o.leads_purchased * 9),
           count(*) FILTER (WHERE s.category = 'fulfilled'
                              AND o.completed_at >= date_trunc('month', now()))
      FROM orders.orders o
      JOIN orders.lifecycle_states s ON s.lifecycle = o.lifecycle AND s.status = o.status
     WHERE o.lifecycle = 'campaign' OR o.leads_purchased > 0;
END;
COMMENT ON FUNCTION orders.order_stats() IS
    'Campaign dashboard: total, active, overdue, near capacity (>= 90% delivered), completed this month';

SELECT pg_catalog.pg_extension_config_dump('orders.leads', '');

REVOKE ALL ON orders.leads, orders.order_summary FROM PUBLIC;
REVOKE ALL ON FUNCTION orders.leads_count(), orders.leads_truncate(), orders.lead_capacity_guard(),
                       orders.recount_leads(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orders.assign_lead(uuid, uuid), orders.order_stats() TO PUBLIC;

---------------------------------------------------------------------------
-- Service slots (seed 003, doc/slots.md): time slots with a capacity, holds
-- during checkout, bookings, expiry; never oversold.  pg_cron jobs.
---------------------------------------------------------------------------

CREATE TABLE orders.service_capacity (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    service_id    uuid NOT NULL,
    staff_id      uuid,
    starts_at     timestamptz NOT NULL,
    ends_at       timestamptz NOT NULL,
    max_capacity  integer NOT NULL DEFAULT 1 CHECK (max_capacity >= 1),
    booked_count  integer NOT NULL DEFAULT 0 CHECK (booked_count >= 0),
    held_count    integer NOT NULL DEFAULT 0 CHECK (held_count >= 0),
    is_available  boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at),
    CONSTRAINT service_capacity_not_overbooked CHECK (booked_count <= max_capacity)
);
COMMENT ON TABLE orders.service_capacity IS
    'Bookable time slots (seed 003); booked_count and held_count are maintained by the slot functions';
COMMENT ON COLUMN orders.service_capacity.staff_id IS 'NULL: a generic slot; else a staff member, whose slots never overlap';
COMMENT ON COLUMN orders.service_capacity.held_count IS
    'Places in holds not yet confirmed, released or marked expired (holds past expires_at count as free already)';
CREATE INDEX service_capacity_service_starts_idx ON orders.service_capacity (service_id, starts_at);
CREATE INDEX service_capacity_staff_starts_idx ON orders.service_capacity (staff_id, starts_at)
    WHERE staff_id IS NOT NULL;

CREATE TABLE orders.slot_reservations (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    capacity_id    uuid NOT NULL REFERENCES orders.service_capacity (id) ON DELETE RESTRICT,
    holder         text NOT NULL,
    quantity       integer NOT NULL DEFAULT 1 CHECK (quantity >= 1),
    status         text NOT NULL DEFAULT 'held'
                   CHECK (status IN ('held', 'confirmed', 'released', 'expired')),
    expires_at     timestamptz NOT NULL,
    order_item_id  uuid REFERENCES orders.order_items (id) ON DELETE SET NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    confirmed_at   timestamptz,
    released_at    timestamptz
);
COMMENT ON TABLE orders.slot_reservations IS
    'Holds and bookings of time slots; written only by the slot functions';
COMMENT ON COLUMN orders.slot_reservations.holder IS 'JWT sub of the caller when set, else current_user';
CREATE INDEX slot_reservations_capacity_status_idx ON orders.slot_reservations (capacity_id, status, expires_at);
CREATE INDEX slot_reservations_held_expiry_idx ON orders.slot_reservations (expires_at) WHERE status = 'held';
CREATE INDEX slot_reservations_order_item_idx ON orders.slot_reservations (order_item_id)
    WHERE order_item_id IS NOT NULL;
CREATE INDEX slot_reservations_holder_idx ON orders.slot_reservations (holder);

-- A staff member's slots never overlap.  An exclusion constraint would need
-- btree_gist (CREATE EXTENSION orders would then need CASCADE); this trigger
-- serializes the slots of one staff member with a transaction-level
-- advisory lock and checks after taking it.
-- SECURITY DEFINER: the overlap check must see every slot of the staff
-- member, not the ones the caller's row level security shows.
CREATE FUNCTION orders.check_staff_overlap() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    other uuid;
BEGIN
    IF NEW.staff_id IS NULL THEN
        RETURN NEW;
    END IF;
    IF current_setting('transaction_isolation') = 'repeatable read' THEN
        RAISE EXCEPTION 'slots of a staff member must be written at READ COMMITTED or SERIALIZABLE isolation'
            USING ERRCODE = '25000',
                  DETAIL = 'A REPEATABLE READ snapshot cannot see a concurrent slot of the same staff member.';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('orders.staff:' || NEW.staff_id::text, 0));
    SELECT c.id INTO other FROM orders.service_capacity c
     WHERE c.staff_id = NEW.staff_id AND c.id <> NEW.id
       AND c.starts_at < NEW.ends_at AND NEW.starts_at < c.ends_at
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'staff member % already has slot % overlapping % .. %',
            NEW.staff_id, other, NEW.starts_at, NEW.ends_at
            USING ERRCODE = 'OR027',
                  HINT = 'A staff member''s slots must not overlap; adjacent slots (one ends when the next starts) are fine.';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER check_staff_overlap BEFORE INSERT OR UPDATE OF staff_id, starts_at, ends_at
    ON orders.service_capacity FOR EACH ROW EXECUTE FUNCTION orders.check_staff_overlap();

CREATE FUNCTION orders.slot_counts_guard() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_slot_counts_guard';
CREATE TRIGGER slot_counts_guard BEFORE INSERT OR UPDATE OF booked_count, held_count
    ON orders.service_capacity FOR EACH ROW EXECUTE FUNCTION orders.slot_counts_guard();
CREATE TRIGGER slot_counts_guard BEFORE INSERT OR UPDATE OR DELETE
    ON orders.slot_reservations FOR EACH ROW EXECUTE FUNCTION orders.slot_counts_guard();
CREATE TRIGGER set_updated_at BEFORE UPDATE ON orders.service_capacity
    FOR EACH ROW EXECUTE FUNCTION orders.set_updated_at();

CREATE FUNCTION orders.release_cancelled_bookings() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_release_cancelled_bookings';
-- queued only for changes into a cancelled-category status
CREATE TRIGGER release_cancelled_bookings AFTER UPDATE OF status ON orders.orders
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status
                       AND orders.status_category(NEW.lifecycle, NEW.status) = 'cancelled')
    EXECUTE FUNCTION orders.release_cancelled_bookings();

-- The API (C, doc/slots.md).
CREATE FUNCTION orders.reserve_time_slot(capacity_id uuid, duration_minutes integer DEFAULT NULL,
                                         quantity integer DEFAULT 1)
    RETURNS uuid
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'orders_reserve_time_slot';
COMMENT ON FUNCTION orders.reserve_time_slot(uuid, integer, integer) IS
    'Hold places of a time slot (duration NULL: orders.hold_minutes, 10); returns the reservation id';

CREATE FUNCTION orders.confirm_booking(reservation_id uuid, order_item_id uuid DEFAULT NULL)
    RETURNS orders.slot_reservations
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'orders_confirm_booking';
COMMENT ON FUNCTION orders.confirm_booking(uuid, uuid) IS
    'Make a live hold a booking, linked to an order item; confirming twice is a no-op';

CREATE FUNCTION orders.release_reservation(reservation_id uuid)
    RETURNS boolean
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'orders_release_reservation';
COMMENT ON FUNCTION orders.release_reservation(uuid) IS
    'Give a hold back now; false when there was no live hold to release';

CREATE FUNCTION orders.cleanup_expired_reservations()
    RETURNS integer
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'orders_cleanup_expired_reservations';
COMMENT ON FUNCTION orders.cleanup_expired_reservations() IS
    'Mark lapsed holds expired and free their places; returns how many (0 when another run is busy)';

-- Slots of a service with room left in [from, to), correct before any
-- cleanup: lapsed holds are not counted.  SECURITY DEFINER (search_path
-- pinned): it shows anybody free places only — neither who holds them nor
-- which staff member serves.
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

-- Repair: recount booked_count/held_count from the reservations (owner only).
CREATE FUNCTION orders.recount_slots(capacity_id uuid DEFAULT NULL)
    RETURNS TABLE (id uuid, stored_booked integer, counted_booked integer,
                   stored_held integer, counted_held integer)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM 1 FROM orders.service_capacity c
     WHERE recount_slots.capacity_id IS NULL OR c.id = recount_slots.capacity_id
     ORDER BY c.id FOR UPDATE;
    RETURN QUERY
    WITH actual AS (
        SELECT c.id, c.booked_count AS sb, c.held_count AS sh,
               coalesce((SELECT sum(r.quantity) FROM orders.slot_reservations r
                          WHERE r.capacity_id = c.id AND r.status = 'confirmed'), 0)::integer AS cb,
               coalesce((SELECT sum(r.quantity) FROM orders.slot_reservations r
                          WHERE r.capacity_id = c.id AND r.status = 'held'), 0)::integer AS ch
          FROM orders.service_capacity c
         WHERE recount_slots.capacity_id IS NULL OR c.id = recount_slots.capacity_id),
    fixed AS (
        UPDATE orders.service_capacity c SET booked_count = a.cb, held_count = a.ch
          FROM actual a WHERE c.id = a.id AND (a.sb, a.sh) IS DISTINCT FROM (a.cb, a.ch)
        RETURNING c.id)
    SELECT a.id, a.sb, a.cb, a.sh, a.ch FROM actual a
     WHERE (a.sb, a.sh) IS DISTINCT FROM (a.cb, a.ch) ORDER BY a.id;
END
$$;

-- pg_cron jobs (pg_cron itself is optional): orders.cron_jobs() lists
-- them (defined last, sql/schema/99_workflows.sql: time-based workflows
-- have a job each).

-- Refuse (OR030) when pg_cron is not installed in this database, saying what to do.
CREATE FUNCTION orders.require_pg_cron()
    RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'pg_cron is not installed in database %', current_database()
            USING ERRCODE = 'OR030',
                  DETAIL = 'orders.schedule_jobs() and orders.unschedule_jobs() work through pg_cron in this database.',
                  HINT = 'Add pg_cron to shared_preload_libraries and run CREATE EXTENSION pg_cron in the database named by cron.database_name; '
                         'if that is another database, schedule the jobs of orders.cron_jobs() there with cron.schedule_in_database (see README).';
    END IF;
END
$$;

CREATE FUNCTION orders.schedule_jobs()
    RETURNS TABLE (jobname text, jobid bigint)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j record;
BEGIN
    PERFORM orders.require_pg_cron();
    FOR j IN SELECT * FROM orders.cron_jobs() LOOP
        jobname := j.jobname;
        EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO jobid USING j.jobname, j.schedule, j.command;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION orders.schedule_jobs() IS
    'Register the extension''s pg_cron jobs (idempotent: re-running updates them)';

CREATE FUNCTION orders.unschedule_jobs()
    RETURNS TABLE (jobname text, removed boolean)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j record;
BEGIN
    PERFORM orders.require_pg_cron();
    FOR j IN SELECT * FROM orders.cron_jobs() LOOP
        jobname := j.jobname;
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM cron.job WHERE jobname = $1 AND username = current_user)'
           INTO removed USING j.jobname;
        IF removed THEN
            EXECUTE 'SELECT cron.unschedule($1)' USING j.jobname;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION orders.unschedule_jobs() IS
    'Remove the extension''s pg_cron jobs (idempotent)';

-- DROP EXTENSION orders (or DROP SCHEMA orders CASCADE) unschedules this
-- database's jobs of orders.cron_jobs() in the same transaction: pg_cron's
-- rows do not depend on the extension (src/cron_cleanup.c).
CREATE FUNCTION orders.unschedule_on_drop()
    RETURNS event_trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'orders_unschedule_on_drop';
COMMENT ON FUNCTION orders.unschedule_on_drop() IS
    'Event trigger: DROP EXTENSION orders removes the extension''s pg_cron jobs of this database';
CREATE EVENT TRIGGER orders_unschedule_jobs ON ddl_command_start
    WHEN TAG IN ('DROP EXTENSION', 'DROP SCHEMA')
    EXECUTE FUNCTION orders.unschedule_on_drop();

SELECT pg_catalog.pg_extension_config_dump('orders.service_capacity', '');
SELECT pg_catalog.pg_extension_config_dump('orders.slot_reservations', '');

REVOKE ALL ON orders.service_capacity, orders.slot_reservations FROM PUBLIC;
REVOKE ALL ON FUNCTION orders.check_staff_overlap(), orders.slot_counts_guard(),
                       orders.release_cancelled_bookings(), orders.recount_slots(uuid),
                       orders.schedule_jobs(), orders.unschedule_jobs(), orders.require_pg_cron(),
                       orders.unschedule_on_drop(),
                       orders.cleanup_expired_reservations() FROM PUBLIC;
-- Reading availability is public; holding and booking run as the owner, so
-- they are granted by the DBA to the roles that may book (doc/slots.md).
REVOKE ALL ON FUNCTION orders.reserve_time_slot(uuid, integer, integer),
                       orders.confirm_booking(uuid, uuid),
                       orders.release_reservation(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orders.available_slots(uuid, timestamptz, timestamptz) TO PUBLIC;

---------------------------------------------------------------------------
-- Customer statistics (seed 004, doc/customers.md): total_orders,
-- total_spent, returned_orders and return_rate of orders.customers, kept
-- exact by deltas for every lifecycle, by the category of each status.
---------------------------------------------------------------------------

CREATE FUNCTION orders.customer_stats() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_customer_stats';
CREATE FUNCTION orders.customer_stats_guard() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_customer_stats_guard';

-- One statement trigger per event (transition tables allow only one event).
-- AFTER statement triggers of one event fire in name order.  Those that lock
-- rows many writers share (a customer's statistics, a popular product's
-- stock) go last, so that each transaction holds those locks for as short a
-- time as possible before it commits: post_revenue_* (no shared row), then
-- stats_customer_*, then stock_on_status.  (Measured: with the statistics
-- first, 8 clients on one customer ran at 0.7x.)
CREATE TRIGGER stats_customer_insert AFTER INSERT ON orders.orders
    REFERENCING NEW TABLE AS new_orders
    FOR EACH STATEMENT EXECUTE FUNCTION orders.customer_stats();
CREATE TRIGGER stats_customer_update AFTER UPDATE ON orders.orders
    REFERENCING OLD TABLE AS old_orders NEW TABLE AS new_orders
    FOR EACH STATEMENT EXECUTE FUNCTION orders.customer_stats();
CREATE TRIGGER stats_customer_delete AFTER DELETE ON orders.orders
    REFERENCING OLD TABLE AS old_orders
    FOR EACH STATEMENT EXECUTE FUNCTION orders.customer_stats();
CREATE TRIGGER customer_stats_guard
    BEFORE INSERT OR UPDATE OF total_orders, total_spent, return_rate, returned_orders ON orders.customers
    FOR EACH ROW EXECUTE FUNCTION orders.customer_stats_guard();

-- Repair: recompute the statistics (all customers, or one) and return those
-- that were wrong.  Locks the customers first, then reads their orders.
CREATE FUNCTION orders.recount_customer_stats(customer_id uuid DEFAULT NULL)
    RETURNS TABLE (id uuid, full_name text,
                   stored_orders integer, counted_orders integer,
                   stored_spent numeric, counted_spent numeric,
                   stored_returned integer, counted_returned integer)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'orders.recount_customer_stats must run at READ COMMITTED isolation'
            USING ERRCODE = '25000';
    END IF;
    PERFORM 1 FROM orders.customers c
     WHERE recount_customer_stats.customer_id IS NULL OR c.id = recount_customer_stats.customer_id
     ORDER BY c.id FOR UPDATE;
    RETURN QUERY
    WITH counted AS (
        SELECT c.id, c.full_name, c.total_orders, c.total_spent, c.returned_orders,
               coalesce(a.n_orders, 0)::integer AS n_orders,
               coalesce(a.spent, 0)::numeric(14,2) AS spent,
               coalesce(a.n_returned, 0)::integer AS n_returned
          FROM orders.customers c
          LEFT JOIN LATERAL (
              SELECT count(*) FILTER (WHERE s.category <> 'cancelled') AS n_orders,
                     sum(o.total_amount) FILTER (WHERE s.category = 'fulfilled'
                                                   AND o.payment_status = 'collected') AS spent,
                     count(*) FILTER (WHERE s.category = 'returned') AS n_returned
                FROM orders.orders o
                JOIN orders.lifecycle_states s ON s.lifecycle = o.lifecycle AND s.status = o.status
               WHERE o.customer_id = c.id) a ON true
         WHERE recount_customer_stats.customer_id IS NULL OR c.id = recount_customer_stats.customer_id),
    fixed AS (
        UPDATE orders.customers c
           SET total_orders = k.n_orders, total_spent = k.spent, returned_orders = k.n_returned,
               return_rate = CASE WHEN k.n_orders > 0 THEN round(k.n_returned * 100.0 / k.n_orders, 2) ELSE 0 END
          FROM counted k
         WHERE c.id = k.id
           AND (k.total_orders, k.total_spent, k.returned_orders) IS DISTINCT FROM (k.n_orders, k.spent, k.n_returned)
        RETURNING c.id)
    SELECT k.id, k.full_name, k.total_orders, k.n_orders, k.total_spent, k.spent, k.returned_orders, k.n_returned
      FROM counted k
     WHERE (k.total_orders, k.total_spent, k.returned_orders) IS DISTINCT FROM (k.n_orders, k.spent, k.n_returned)
     ORDER BY k.id;
END
$$;
COMMENT ON FUNCTION orders.recount_customer_stats(uuid) IS
    'Recompute customer statistics (all customers, or one); returns and repairs those that were wrong';
REVOKE ALL ON FUNCTION orders.customer_stats(), orders.customer_stats_guard(),
                       orders.recount_customer_stats(uuid) FROM PUBLIC;

---------------------------------------------------------------------------
-- COD operations (seed 004, doc/customers.md): assignment of reps and
-- delivery agents, deliveries, and the seed's views.
---------------------------------------------------------------------------

-- Only an active delivery agent can be assigned to deliver, only an active
-- customer rep (or manager/admin) to follow an order up.  The staff row is
-- locked FOR SHARE, so a concurrent deactivation waits for the assignment
-- (or the assignment for it) instead of slipping past the check.
-- SECURITY DEFINER: the check must see and lock the staff row whatever the
-- caller's row level security lets it read.
CREATE FUNCTION orders.check_assignment() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s orders.staff;
BEGIN
    IF NEW.assigned_agent_id IS NOT NULL
       AND NEW.assigned_agent_id IS DISTINCT FROM (CASE WHEN TG_OP = 'UPDATE' THEN OLD.assigned_agent_id END) THEN
        SELECT * INTO s FROM orders.staff WHERE id = NEW.assigned_agent_id FOR SHARE;
        IF FOUND AND s.role <> 'delivery_agent' THEN
            RAISE EXCEPTION 'order "%": % (role %) is not a delivery agent', NEW.order_number, s.full_name, s.role
                USING ERRCODE = 'OR040', HINT = 'Assign a staff member whose role is delivery_agent.';
        ELSIF FOUND AND NOT s.is_active THEN
            RAISE EXCEPTION 'order "%": delivery agent % is inactive', NEW.order_number, s.full_name
                USING ERRCODE = 'OR041', HINT = 'Reactivate the agent or choose an active one.';
        END IF;
    END IF;
    IF NEW.assigned_rep_id IS NOT NULL
       AND NEW.assigned_rep_id IS DISTINCT FROM (CASE WHEN TG_OP = 'UPDATE' THEN OLD.assigned_rep_id END) THEN
        SELECT * INTO s FROM orders.staff WHERE id = NEW.assigned_rep_id FOR SHARE;
        IF FOUND AND s.role NOT IN ('customer_rep', 'manager', 'admin') THEN
            RAISE EXCEPTION 'order "%": % (role %) is not a customer rep', NEW.order_number, s.full_name, s.role
                USING ERRCODE = 'OR040', HINT = 'Assign a customer_rep (or a manager or admin).';
        ELSIF FOUND AND NOT s.is_active THEN
            RAISE EXCEPTION 'order "%": customer rep % is inactive', NEW.order_number, s.full_name
                USING ERRCODE = 'OR041';
        END IF;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER check_assignment BEFORE INSERT OR UPDATE OF assigned_agent_id, assigned_rep_id
    ON orders.orders FOR EACH ROW EXECUTE FUNCTION orders.check_assignment();

CREATE TABLE orders.deliveries (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id           uuid NOT NULL REFERENCES orders.orders (id) ON DELETE CASCADE,
    agent_id           uuid NOT NULL REFERENCES orders.staff (id) ON DELETE RESTRICT,
    pickup_time        timestamptz,
    delivery_time      timestamptz,
    route_data         jsonb,
    proof_of_delivery  jsonb,
    signature_url      text,
    photo_url          text,
    customer_feedback  text,
    rating             integer CHECK (rating BETWEEN 1 AND 5),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (delivery_time IS NULL OR pickup_time IS NULL OR delivery_time >= pickup_time)
);
CREATE INDEX deliveries_order_id_idx ON orders.deliveries (order_id);
CREATE INDEX deliveries_agent_delivery_time_idx ON orders.deliveries (agent_id, delivery_time DESC);
CREATE INDEX deliveries_pickup_time_idx ON orders.deliveries (pickup_time);
CREATE INDEX deliveries_rating_idx ON orders.deliveries (rating) WHERE rating IS NOT NULL;
CREATE TRIGGER set_updated_at BEFORE UPDATE ON orders.deliveries
    FOR EACH ROW EXECUTE FUNCTION orders.set_updated_at();

CREATE VIEW orders.order_details_view WITH (security_invoker = true) AS
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

CREATE VIEW orders.agent_performance_view WITH (security_invoker = true) AS
SELECT s.id AS agent_id, s.full_name AS agent_name, s.is_active, s.availability_status,
       count(d.id) AS total_deliveries,
       round(avg(d.rating), 2) AS average_rating,
       count(d.id) FILTER (WHERE d.delivery_time IS NOT NULL) AS completed_deliveries,
       (SELECT count(*) FROM orders.orders o
         JOIN orders.lifecycle_states st ON st.lifecycle = o.lifecycle AND st.status = o.status
        WHERE o.assigned_agent_id = s.id AND st.category = 'fulfilled') AS successful_orders
  FROM orders.staff s
  LEFT JOIN orders.deliveries d ON d.agent_id = s.id
 WHERE s.role = 'delivery_agent'
 GROUP BY s.id;
COMMENT ON VIEW orders.agent_performance_view IS 'Delivery agents: deliveries, average rating, fulfilled orders (seed 004)';

SELECT pg_catalog.pg_extension_config_dump('orders.deliveries', '');
REVOKE ALL ON orders.deliveries, orders.order_details_view, orders.agent_performance_view FROM PUBLIC;
REVOKE ALL ON FUNCTION orders.check_assignment() FROM PUBLIC;

---------------------------------------------------------------------------
-- Stock taken and given back by the order lifecycle, exactly once per order
-- (C, doc/stock_and_money.md): an order's stock items are out of stock
-- exactly while its status has holds_stock.
---------------------------------------------------------------------------

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
CREATE VIEW orders.low_stock_view WITH (security_invoker = true) AS
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

REVOKE ALL ON orders.low_stock_view FROM PUBLIC;
REVOKE ALL ON FUNCTION orders.stock_on_status(), orders.stock_on_items(), orders.stock_delete_guard() FROM PUBLIC;

---------------------------------------------------------------------------
-- Money (seed 004, doc/stock_and_money.md): every change of what an order
-- has earned posts one automatic ledger row (C); expenses; summaries.
---------------------------------------------------------------------------

CREATE TABLE orders.financial_transactions (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id             uuid REFERENCES orders.orders (id) ON DELETE SET NULL,
    type                 text NOT NULL CHECK (type IN ('revenue', 'refund')),
    amount               orders.positive_amount NOT NULL,
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
    amount               orders.positive_amount NOT NULL,
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
CREATE VIEW orders.daily_financial_summary WITH (security_invoker = true) AS
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
REVOKE ALL ON FUNCTION orders.post_revenue(), orders.ledger_guard() FROM PUBLIC;

---------------------------------------------------------------------------
-- Dashboard (seed 004's queries, doc/stock_and_money.md).
---------------------------------------------------------------------------

-- Seed 004's dashboard queries as functions (PostgREST RPC).  They run with
-- the caller's rights (row level security applies) and are plain SQL so the
-- planner inlines them: EXPLAIN SELECT * FROM orders.recent_orders() shows
-- the index each one uses (test/pgtap/12_dashboard_indexes.sql checks).

-- Their indexes are with the tables (orders_customer_created_idx,
-- customers_area_idx, customers_tags_idx, ...).

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
-- which no index can serve).  The bounds are timestamptz: timestamptz >= date
-- is not leakproof, so under row level security it could not be an index
-- condition ahead of the policies (a sequential scan of every order).
CREATE VIEW orders.todays_order_summary WITH (security_invoker = true) AS
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
 WHERE o.created_at >= CURRENT_DATE::timestamptz AND o.created_at < (CURRENT_DATE + 1)::timestamptz;
COMMENT ON VIEW orders.todays_order_summary IS 'Dashboard: today''s orders by outcome (seed 004 query 5)';

REVOKE ALL ON orders.todays_order_summary FROM PUBLIC;

---------------------------------------------------------------------------
-- Who may see and do what (doc/security.md has the persona × table ×
-- operation table).  Identity is orders.current_actor(), the JWT sub;
-- authorization comes from data: a customer is an actor whose sub is a
-- customers.account_id, a staff member one whose sub is the account_id of
-- an active orders.staff row, with its role's default permissions refined
-- by staff.permissions.  Row level security is enabled on every table; the
-- owner (maintenance, pg_cron, DBAs) is not subject to it.  Policies call
-- the identity helpers as (SELECT orders.f()): evaluated once per query,
-- so comparisons with them stay index conditions.  orders.grant_api() is
-- a DBA's whole set-up.
---------------------------------------------------------------------------

-- The roles PostgREST/PostGraphile switch to for a request.  Their JWT
-- settings are believed only while one of these (or a superuser) is the
-- outer role; any other login that sets request.jwt.claims stays itself
-- (src/api_roles.c caches the table per backend).
CREATE TABLE orders.api_roles (
    role_oid    regrole PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('anon', 'authenticated')),
    granted_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE orders.api_roles IS
    'API roles recorded by orders.grant_api(): JWT claims are honoured only while one of them (or a superuser) is acting';
CREATE FUNCTION orders.api_roles_changed() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_api_roles_changed';
-- api_request — the outer role is one of them: an API request.  The
-- policies' restrictive halves and the column rules hold API requests to
-- the persona model; roles a DBA creates with policies of their own are
-- judged by those alone.
CREATE FUNCTION orders.api_request() RETURNS boolean
    LANGUAGE c STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'orders_api_request';
CREATE TRIGGER api_roles_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON orders.api_roles FOR EACH STATEMENT EXECUTE FUNCTION orders.api_roles_changed();
SELECT pg_catalog.pg_extension_config_dump('orders.api_roles', '');

-- Defaults of each staff role (seed 004's areas and actions); a staff
-- member's own permissions JSONB ({"orders": {"delete": true}}) overrides
-- them action by action.
CREATE VIEW orders.staff_role_defaults (role, area, action) WITH (security_invoker = true) AS
SELECT r.role, p.area, p.action
  FROM (VALUES ('admin'), ('manager'), ('customer_rep'), ('delivery_agent'), ('accountant')) r (role)
  JOIN (VALUES
    ('orders', 'view',   '{admin,manager,customer_rep,delivery_agent,accountant}'),
    ('orders', 'create', '{admin,manager,customer_rep}'),
    ('orders', 'edit',   '{admin,manager,customer_rep,delivery_agent}'),
    ('orders', 'assign', '{admin,manager,customer_rep}'),
    ('orders', 'delete', '{admin,manager}'),
    ('customers', 'view',   '{admin,manager,customer_rep,delivery_agent,accountant}'),
    ('customers', 'create', '{admin,manager,customer_rep}'),
    ('customers', 'edit',   '{admin,manager,customer_rep}'),
    ('customers', 'delete', '{admin,manager}'),
    ('products', 'view',   '{admin,manager,customer_rep,delivery_agent,accountant}'),
    ('products', 'create', '{admin,manager}'),
    ('products', 'edit',   '{admin,manager}'),
    ('products', 'delete', '{admin,manager}'),
    ('financial', 'view',   '{admin,manager,accountant}'),
    ('financial', 'create', '{admin,manager,accountant}'),
    ('financial', 'edit',   '{admin,manager,accountant}'),
    ('financial', 'export', '{admin,manager,accountant}'),
    ('workflows', 'view',   '{admin,manager,customer_rep}'),
    ('workflows', 'create', '{admin}'),
    ('workflows', 'edit',   '{admin}'),
    ('workflows', 'delete', '{admin}')
  ) p (area, action, roles) ON r.role = ANY (p.roles::text[]);
COMMENT ON VIEW orders.staff_role_defaults IS
    'What each staff role may do unless staff.permissions says otherwise (orders.has_permission)';

-- actor_account — the caller's JWT sub as a uuid (account ids are uuids),
-- or NULL when it is not one (C: the parse the identity lookup uses).
CREATE FUNCTION orders.actor_account() RETURNS uuid
    LANGUAGE c STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'orders_actor_account';
COMMENT ON FUNCTION orders.actor_account() IS 'The caller''s JWT sub as a uuid, or NULL';

-- The caller in the data (C, src/identity.c): its customer rows, staff row,
-- role and permissions.  Every policy asks, once per query (InitPlans); one
-- lookup per command answers all of them, read as the owner of orders.staff
-- (so they answer whatever the caller may read), and only about the caller.
CREATE FUNCTION orders.current_customer_ids() RETURNS uuid[]
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 'orders_current_customer_ids';
COMMENT ON FUNCTION orders.current_customer_ids() IS
    'The orders.customers ids whose account_id is the caller''s JWT sub (empty: not a customer)';

-- (defined in 20_people.sql for the ledger's defaults; replaced here so that
-- the upgrade, which copies this file, replaces 0.7.0's SQL version)
CREATE OR REPLACE FUNCTION orders.current_staff_id() RETURNS uuid
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 'orders_current_staff_id';

CREATE FUNCTION orders.current_staff_role() RETURNS text
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 'orders_current_staff_role';
COMMENT ON FUNCTION orders.current_staff_role() IS
    'The role of the active orders.staff row whose account_id is the caller''s JWT sub, or NULL';

-- has_permission — may the caller do "action" in "area"?  False for anyone
-- who is not active staff; for staff staff.permissions -> area -> action
-- when it is a JSON boolean, else the role's default.
CREATE FUNCTION orders.has_permission(area text, action text) RETURNS boolean
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 'orders_has_permission';
COMMENT ON FUNCTION orders.has_permission(text, text) IS
    'Whether the caller (active staff) may do action in area: staff.permissions, else the role''s default (orders.staff_role_defaults)';

-- staff_sees_order — whether an order with these assignments and status is
-- in the caller's staff scope: admins, managers and accountants see every
-- order, a customer rep its own and the unassigned open ones, a delivery
-- agent the ones assigned to it.  Written out in the policies below (a
-- function call per row would hide the comparisons from the planner); this
-- one serves refusals and tests.
CREATE FUNCTION orders.staff_sees_order(rep uuid, agent uuid, lifecycle text, status text) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE orders.current_staff_role()
             WHEN 'admin' THEN true WHEN 'manager' THEN true WHEN 'accountant' THEN true
             WHEN 'delivery_agent' THEN agent IS NOT DISTINCT FROM orders.current_staff_id()
             WHEN 'customer_rep' THEN rep IS NOT DISTINCT FROM orders.current_staff_id()
                  OR (rep IS NULL AND orders.status_category(lifecycle, status) = 'open')
             ELSE false END
$$;

-- A refusal of the column rules below: OR060, naming table and column.
CREATE FUNCTION orders.refuse_column(tbl text, col text, who text) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'column "%" of % is reserved to %', col, tbl, who
        USING ERRCODE = 'OR060',
              HINT = 'Leave it out of the request; staff with the right permission set it.';
END
$$;

-- by_maintainer — the current user has the rights of the table's owner
-- (the extension's own maintenance runs as the owner; superusers have
-- them): column rules do not apply (C: the rules ask for every row).
CREATE FUNCTION orders.by_maintainer(rel oid) RETURNS boolean
    LANGUAGE c STABLE STRICT
    AS 'MODULE_PATHNAME', 'orders_by_maintainer';

-- Columns of an order only staff set, with the value a new order has
-- without them; customers may not set them (OR060).  Staff need
-- orders.assign to set the assignments.
CREATE FUNCTION orders.order_columns_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    staff_only constant jsonb := '{"priority": 0, "delivery_fee": 0, "total_amount": 0, "adjustment": 0,
        "payment_status": "pending", "assigned_rep_id": null, "assigned_agent_id": null,
        "webhook_source": null, "delivery_proof": null, "review_completed_at": null, "reviewed_by": null}';
    new_row jsonb;
    old_row jsonb;
    col text;
BEGIN
    IF orders.by_maintainer(TG_RELID) OR NOT orders.api_request() THEN
        RETURN NEW;				-- before any work: every INSERT of an order comes here
    END IF;
    new_row := to_jsonb(NEW);
    old_row := CASE WHEN TG_OP = 'UPDATE' THEN to_jsonb(OLD) ELSE staff_only END;
    IF orders.current_staff_role() IS NULL THEN
        FOR col IN SELECT jsonb_object_keys(staff_only) LOOP
            IF new_row -> col IS DISTINCT FROM old_row -> col THEN
                PERFORM orders.refuse_column('orders.orders', col, 'staff');
            END IF;
        END LOOP;
        IF NEW.source NOT IN ('manual', 'api')
           AND NEW.source IS DISTINCT FROM (CASE WHEN TG_OP = 'UPDATE' THEN OLD.source END) THEN
            PERFORM orders.refuse_column('orders.orders', 'source', 'staff');
        END IF;
    ELSIF (new_row -> 'assigned_rep_id', new_row -> 'assigned_agent_id')
          IS DISTINCT FROM (old_row -> 'assigned_rep_id', old_row -> 'assigned_agent_id')
          AND NOT orders.has_permission('orders', 'assign') THEN
        PERFORM orders.refuse_column('orders.orders',
            CASE WHEN new_row -> 'assigned_rep_id' IS DISTINCT FROM old_row -> 'assigned_rep_id'
                 THEN 'assigned_rep_id' ELSE 'assigned_agent_id' END, 'staff with permission orders.assign');
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER order_columns_guard
    BEFORE INSERT OR UPDATE OF priority, delivery_fee, total_amount, adjustment, payment_status,
        assigned_rep_id, assigned_agent_id, source, webhook_source, delivery_proof, review_completed_at, reviewed_by
    ON orders.orders FOR EACH ROW EXECUTE FUNCTION orders.order_columns_guard();

-- Who a staff member is (role, permissions, active, login, email) only an
-- admin changes; staff update the rest of their own row.
CREATE FUNCTION orders.staff_columns_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    col text;
BEGIN
    IF orders.by_maintainer(TG_RELID) OR NOT orders.api_request() OR orders.current_staff_role() = 'admin' THEN
        RETURN NEW;
    END IF;
    FOREACH col IN ARRAY ARRAY['role', 'permissions', 'is_active', 'account_id', 'email'] LOOP
        IF to_jsonb(NEW) -> col IS DISTINCT FROM to_jsonb(OLD) -> col THEN
            PERFORM orders.refuse_column('orders.staff', col, 'admins');
        END IF;
    END LOOP;
    RETURN NEW;
END
$$;
CREATE TRIGGER staff_columns_guard BEFORE UPDATE OF role, permissions, is_active, account_id, email
    ON orders.staff FOR EACH ROW EXECUTE FUNCTION orders.staff_columns_guard();

-- Notes staff keep about an order, never shown to its customer (0.7.0's
-- orders.internal_notes column moved here).
CREATE TABLE orders.order_notes (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id    uuid NOT NULL REFERENCES orders.orders (id) ON DELETE CASCADE,
    author_id   uuid DEFAULT orders.current_staff_id() REFERENCES orders.staff (id) ON DELETE SET NULL,
    body        text NOT NULL CHECK (body <> ''),
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE orders.order_notes IS 'Staff-only notes on an order (its customer never sees them)';
CREATE INDEX order_notes_order_idx ON orders.order_notes (order_id, created_at);
SELECT pg_catalog.pg_extension_config_dump('orders.order_notes', '');

---------------------------------------------------------------------------
-- Policies.  One permissive policy per table says which rows a persona
-- reaches at all; restrictive policies add what each command needs.
---------------------------------------------------------------------------

-- lifecycle definitions: everybody reads them; admins (workflows.edit) edit
ALTER TABLE orders.lifecycles ENABLE ROW LEVEL SECURITY;
ALTER TABLE orders.lifecycle_states ENABLE ROW LEVEL SECURITY;
ALTER TABLE orders.lifecycle_transitions ENABLE ROW LEVEL SECURITY;
CREATE POLICY readable ON orders.lifecycles FOR SELECT USING (true);
CREATE POLICY editable ON orders.lifecycles USING ((SELECT orders.has_permission('workflows', 'edit')));
CREATE POLICY readable ON orders.lifecycle_states FOR SELECT USING (true);
CREATE POLICY editable ON orders.lifecycle_states USING ((SELECT orders.has_permission('workflows', 'edit')));
CREATE POLICY readable ON orders.lifecycle_transitions FOR SELECT USING (true);
CREATE POLICY editable ON orders.lifecycle_transitions USING ((SELECT orders.has_permission('workflows', 'edit')));

-- api_roles: the owner's alone
ALTER TABLE orders.api_roles ENABLE ROW LEVEL SECURITY;

-- customers: their own rows; staff with customers.view (agents: the
-- customers of their orders)
ALTER TABLE orders.customers ENABLE ROW LEVEL SECURITY;
CREATE POLICY reach ON orders.customers
    USING (account_id = (SELECT orders.actor_account())
           OR ((SELECT orders.has_permission('customers', 'view'))
               AND ((SELECT orders.current_staff_role()) <> 'delivery_agent'
                    OR id IN (SELECT o.customer_id FROM orders.orders o
                               WHERE o.assigned_agent_id = (SELECT orders.current_staff_id())))))
    WITH CHECK (account_id = (SELECT orders.actor_account())
                OR (SELECT orders.has_permission('customers', 'view')));
CREATE POLICY insert_right ON orders.customers AS RESTRICTIVE FOR INSERT
    WITH CHECK (NOT (SELECT orders.api_request())
           OR account_id = (SELECT orders.actor_account()) OR (SELECT orders.has_permission('customers', 'create')));
CREATE POLICY update_right ON orders.customers AS RESTRICTIVE FOR UPDATE
    USING (NOT (SELECT orders.api_request())
           OR account_id = (SELECT orders.actor_account()) OR (SELECT orders.has_permission('customers', 'edit')));
CREATE POLICY delete_right ON orders.customers AS RESTRICTIVE FOR DELETE
    USING (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('customers', 'delete')));

-- staff: the directory is for staff; each edits its own row, admins any
ALTER TABLE orders.staff ENABLE ROW LEVEL SECURITY;
CREATE POLICY reach ON orders.staff USING ((SELECT orders.current_staff_role()) IS NOT NULL);
CREATE POLICY update_right ON orders.staff AS RESTRICTIVE FOR UPDATE
    USING (NOT (SELECT orders.api_request())
           OR id = (SELECT orders.current_staff_id()) OR (SELECT orders.current_staff_role()) = 'admin');
CREATE POLICY insert_right ON orders.staff AS RESTRICTIVE FOR INSERT
    WITH CHECK (NOT (SELECT orders.api_request())
           OR (SELECT orders.current_staff_role()) = 'admin');
CREATE POLICY delete_right ON orders.staff AS RESTRICTIVE FOR DELETE
    USING (NOT (SELECT orders.api_request())
           OR (SELECT orders.current_staff_role()) = 'admin');

-- products and variants: staff by products.*
ALTER TABLE orders.products ENABLE ROW LEVEL SECURITY;
ALTER TABLE orders.product_variants ENABLE ROW LEVEL SECURITY;
CREATE POLICY reach ON orders.products USING ((SELECT orders.has_permission('products', 'view')));
CREATE POLICY insert_right ON orders.products AS RESTRICTIVE FOR INSERT
    WITH CHECK (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('products', 'create')));
CREATE POLICY update_right ON orders.products AS RESTRICTIVE FOR UPDATE
    USING (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('products', 'edit')));
CREATE POLICY delete_right ON orders.products AS RESTRICTIVE FOR DELETE
    USING (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('products', 'delete')));
CREATE POLICY reach ON orders.product_variants USING ((SELECT orders.has_permission('products', 'view')));
CREATE POLICY insert_right ON orders.product_variants AS RESTRICTIVE FOR INSERT
    WITH CHECK (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('products', 'create')));
CREATE POLICY update_right ON orders.product_variants AS RESTRICTIVE FOR UPDATE
    USING (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('products', 'edit')));
CREATE POLICY delete_right ON orders.product_variants AS RESTRICTIVE FOR DELETE
    USING (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('products', 'delete')));

-- orders: a customer's own; staff their scope (staff_sees_order, written
-- out); the command's permission on top
ALTER TABLE orders.orders ENABLE ROW LEVEL SECURITY;
CREATE POLICY reach ON orders.orders
    USING (customer_id = ANY ((SELECT orders.current_customer_ids())::uuid[])
           OR ((SELECT orders.has_permission('orders', 'view'))
               AND ((SELECT orders.current_staff_role()) IN ('admin', 'manager', 'accountant')
                    OR (assigned_agent_id = (SELECT orders.current_staff_id())
                        AND (SELECT orders.current_staff_role()) = 'delivery_agent')
                    OR ((SELECT orders.current_staff_role()) = 'customer_rep'
                        AND (assigned_rep_id = (SELECT orders.current_staff_id())
                             OR (assigned_rep_id IS NULL
                                 AND orders.status_category(lifecycle, status) = 'open'))))))
    WITH CHECK (customer_id = ANY ((SELECT orders.current_customer_ids())::uuid[])
                OR (SELECT orders.has_permission('orders', 'view')));
CREATE POLICY insert_right ON orders.orders AS RESTRICTIVE FOR INSERT
    WITH CHECK (NOT (SELECT orders.api_request())
           OR customer_id = ANY ((SELECT orders.current_customer_ids())::uuid[])
                OR (SELECT orders.has_permission('orders', 'create')));
CREATE POLICY update_right ON orders.orders AS RESTRICTIVE FOR UPDATE
    USING (NOT (SELECT orders.api_request())
           OR customer_id = ANY ((SELECT orders.current_customer_ids())::uuid[])
           OR (SELECT orders.has_permission('orders', 'edit')));
CREATE POLICY delete_right ON orders.orders AS RESTRICTIVE FOR DELETE
    USING (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('orders', 'delete')));

-- customer_may_edit_items — the order is one of the caller's own and its
-- status is still open (a customer edits the items of an order in progress,
-- not of one being delivered or done).
CREATE FUNCTION orders.customer_may_edit_items(order_id uuid) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT FROM orders.orders o
                    WHERE o.id = customer_may_edit_items.order_id
                      AND o.customer_id = ANY (orders.current_customer_ids())
                      AND orders.status_category(o.lifecycle, o.status) = 'open')
$$;

-- items, history and notes follow their order (the subquery sees the
-- orders the caller's policies let through)
ALTER TABLE orders.order_items ENABLE ROW LEVEL SECURITY;
CREATE POLICY reach ON orders.order_items
    USING (EXISTS (SELECT FROM orders.orders o WHERE o.id = order_id));
CREATE POLICY insert_right ON orders.order_items AS RESTRICTIVE FOR INSERT
    WITH CHECK (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('orders', 'edit')) OR orders.customer_may_edit_items(order_id));
CREATE POLICY update_right ON orders.order_items AS RESTRICTIVE FOR UPDATE
    USING (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('orders', 'edit')) OR orders.customer_may_edit_items(order_id));
CREATE POLICY delete_right ON orders.order_items AS RESTRICTIVE FOR DELETE
    USING (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('orders', 'edit')) OR orders.customer_may_edit_items(order_id));

ALTER TABLE orders.order_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY reach ON orders.order_history FOR SELECT
    USING (EXISTS (SELECT FROM orders.orders o WHERE o.id = order_id));

ALTER TABLE orders.order_notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY reach ON orders.order_notes
    USING ((SELECT orders.current_staff_role()) IS NOT NULL
           AND EXISTS (SELECT FROM orders.orders o WHERE o.id = order_id))
    WITH CHECK (author_id = (SELECT orders.current_staff_id())
                OR (SELECT orders.current_staff_role()) = 'admin');
CREATE POLICY update_right ON orders.order_notes AS RESTRICTIVE FOR UPDATE
    USING (NOT (SELECT orders.api_request())
           OR author_id = (SELECT orders.current_staff_id()) OR (SELECT orders.current_staff_role()) = 'admin');
CREATE POLICY delete_right ON orders.order_notes AS RESTRICTIVE FOR DELETE
    USING (NOT (SELECT orders.api_request())
           OR author_id = (SELECT orders.current_staff_id()) OR (SELECT orders.current_staff_role()) = 'admin');

-- leads: a customer's own; staff except delivery agents by orders.*
ALTER TABLE orders.leads ENABLE ROW LEVEL SECURITY;
CREATE POLICY reach ON orders.leads
    USING (customer_id = ANY ((SELECT orders.current_customer_ids())::uuid[])
           OR ((SELECT orders.has_permission('orders', 'view'))
               AND (SELECT orders.current_staff_role()) <> 'delivery_agent'));
CREATE POLICY insert_right ON orders.leads AS RESTRICTIVE FOR INSERT
    WITH CHECK (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('orders', 'edit'))
                AND (SELECT orders.current_staff_role()) <> 'delivery_agent');
CREATE POLICY update_right ON orders.leads AS RESTRICTIVE FOR UPDATE
    USING (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('orders', 'edit'))
           AND (SELECT orders.current_staff_role()) <> 'delivery_agent');
CREATE POLICY delete_right ON orders.leads AS RESTRICTIVE FOR DELETE
    USING (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('orders', 'delete')));

-- slots: staff read capacity, admins (workflows.edit) define it; holders
-- read their holds, staff all (bookings are made through the functions)
ALTER TABLE orders.service_capacity ENABLE ROW LEVEL SECURITY;
CREATE POLICY reach ON orders.service_capacity FOR SELECT
    USING ((SELECT orders.has_permission('orders', 'view')));
CREATE POLICY editable ON orders.service_capacity
    USING ((SELECT orders.has_permission('workflows', 'edit')));
ALTER TABLE orders.slot_reservations ENABLE ROW LEVEL SECURITY;
CREATE POLICY reach ON orders.slot_reservations FOR SELECT
    USING (holder = (SELECT orders.current_actor())
           OR ((SELECT orders.has_permission('orders', 'view'))
               AND (SELECT orders.current_staff_role()) <> 'delivery_agent'));

-- deliveries: an agent its own; other staff those of the orders they see
ALTER TABLE orders.deliveries ENABLE ROW LEVEL SECURITY;
CREATE POLICY reach ON orders.deliveries
    USING (agent_id = (SELECT orders.current_staff_id())
           OR ((SELECT orders.has_permission('orders', 'view'))
               AND (SELECT orders.current_staff_role()) <> 'delivery_agent'
               AND EXISTS (SELECT FROM orders.orders o WHERE o.id = order_id)));
CREATE POLICY insert_right ON orders.deliveries AS RESTRICTIVE FOR INSERT
    WITH CHECK (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('orders', 'edit')));
CREATE POLICY update_right ON orders.deliveries AS RESTRICTIVE FOR UPDATE
    USING (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('orders', 'edit')));
CREATE POLICY delete_right ON orders.deliveries AS RESTRICTIVE FOR DELETE
    USING (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('orders', 'delete')));

-- money: financial.*; nothing is deleted through the API
ALTER TABLE orders.financial_transactions ENABLE ROW LEVEL SECURITY;
ALTER TABLE orders.expenses ENABLE ROW LEVEL SECURITY;
CREATE POLICY reach ON orders.financial_transactions FOR SELECT
    USING ((SELECT orders.has_permission('financial', 'view')));
CREATE POLICY add ON orders.financial_transactions FOR INSERT
    WITH CHECK ((SELECT orders.has_permission('financial', 'create')));
CREATE POLICY edit ON orders.financial_transactions FOR UPDATE
    USING ((SELECT orders.has_permission('financial', 'edit')));
CREATE POLICY reach ON orders.expenses FOR SELECT
    USING ((SELECT orders.has_permission('financial', 'view')));
CREATE POLICY add ON orders.expenses FOR INSERT
    WITH CHECK ((SELECT orders.has_permission('financial', 'create')));
CREATE POLICY edit ON orders.expenses FOR UPDATE
    USING ((SELECT orders.has_permission('financial', 'edit')));

---------------------------------------------------------------------------
-- grant_api — everything the API roles need, in one idempotent statement:
-- the table rights the policies above refine, the views, the API
-- functions; records the two roles in orders.api_roles (their JWT claims
-- are believed from then on).  Refuses roles that would bypass the
-- policies (superusers, BYPASSRLS, the owner).
---------------------------------------------------------------------------
CREATE FUNCTION orders.grant_api(anon_role name DEFAULT 'anon', authenticated_role name DEFAULT 'authenticated')
    RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    role_name name;
BEGIN
    FOREACH role_name IN ARRAY ARRAY[anon_role, authenticated_role] LOOP
        SELECT * INTO r FROM pg_roles WHERE rolname = role_name;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'orders.grant_api: role "%" does not exist', role_name
                USING ERRCODE = '42704', HINT = 'CREATE ROLE ' || quote_ident(role_name) || ' NOLOGIN;';
        ELSIF r.rolsuper OR r.rolbypassrls
              OR pg_has_role(r.oid, (SELECT c.relowner FROM pg_class c WHERE c.oid = 'orders.orders'::regclass), 'MEMBER') THEN
            RAISE EXCEPTION 'orders.grant_api: role "%" would bypass row level security', role_name
                USING ERRCODE = '22023',
                      DETAIL = 'It is a superuser, has BYPASSRLS or is a member of the extension''s owner.',
                      HINT = 'API roles must be plain NOLOGIN roles.';
        END IF;
    END LOOP;

    -- anon: the lifecycle definitions and the public functions (PUBLIC
    -- already has them; granted again so revoking from PUBLIC keeps the API)
    EXECUTE format('GRANT USAGE ON SCHEMA orders TO %I, %I', anon_role, authenticated_role);
    EXECUTE format('GRANT SELECT ON orders.lifecycles, orders.lifecycle_states, orders.lifecycle_transitions,
                    orders.lifecycle_graph TO %I, %I', anon_role, authenticated_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION orders.current_actor(), orders.status_category(text, text),
                    orders.available_slots(uuid, timestamptz, timestamptz), orders.allowed_transitions(uuid),
                    orders.has_permission(text, text) TO %I, %I', anon_role, authenticated_role);

    -- authenticated: tables (policies decide the rows), views, functions
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON orders.lifecycles, orders.lifecycle_states,
                    orders.lifecycle_transitions, orders.customers, orders.staff, orders.products,
                    orders.product_variants, orders.orders, orders.order_items, orders.order_notes,
                    orders.leads, orders.service_capacity, orders.deliveries TO %I', authenticated_role);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON orders.financial_transactions, orders.expenses TO %I',
                   authenticated_role);
    EXECUTE format('GRANT SELECT ON orders.order_history, orders.slot_reservations, orders.staff_role_defaults,
                    orders.order_details_view, orders.agent_performance_view, orders.order_summary,
                    orders.low_stock_view, orders.todays_order_summary, orders.daily_financial_summary,
                    orders.ledger_discrepancies TO %I', authenticated_role);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON orders.order_groups, orders.order_requirements TO %I',
                   authenticated_role);
    -- columns no API role may touch: internal notes of sites, token hashes
    EXECUTE format('GRANT SELECT (id, order_group_id, domain, domain_id, metrics, status, target_page_url, anchor_text,
                                  reviewed_at, reviewed_by, client_notes, order_item_id, created_at, updated_at),
                          INSERT (id, order_group_id, domain, domain_id, metrics, status, target_page_url, anchor_text,
                                  client_notes),
                          UPDATE (status, client_notes, target_page_url, anchor_text, domain, domain_id, metrics),
                          DELETE
                    ON orders.order_site_selections TO %I', authenticated_role);
    EXECUTE format('GRANT SELECT (id, order_id, expires_at, allowed_actions, created_by, used_at,
                                  converted_to_account_id, revoked_at, metadata, created_at)
                    ON orders.order_share_tokens TO %I', authenticated_role);
    EXECUTE format('GRANT SELECT ON orders.lifecycle_gates TO %I, %I', anon_role, authenticated_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION orders.shared_order(text), orders.share_review_sites(text, uuid, jsonb),
                    orders.convert_share_token(text) TO %I, %I', anon_role, authenticated_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION orders.start_analysis(uuid, uuid), orders.complete_analysis(uuid, jsonb),
                    orders.review_sites(uuid, jsonb), orders.create_share_token(uuid, interval, text[], jsonb),
                    orders.revoke_share_token(uuid), orders.site_internal_notes(uuid),
                    orders.set_site_internal_notes(uuid, text) TO %I', authenticated_role);
    -- notifications (0.9.0): staff read, mark read and delete their own
    EXECUTE format('GRANT SELECT, DELETE, UPDATE (is_read) ON orders.notifications TO %I', authenticated_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION orders.unread_notifications(), orders.mark_notifications_read(uuid[]) TO %I',
                   authenticated_role);
    -- workflows (0.10.0): staff with the workflows permissions define them
    -- and read their runs; runs are written by the extension
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON orders.workflows TO %I', authenticated_role);
    EXECUTE format('GRANT SELECT ON orders.workflow_executions TO %I', authenticated_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION orders.run_workflow(uuid, uuid, uuid) TO %I', authenticated_role);
    EXECUTE format('GRANT USAGE ON SEQUENCE orders.order_number_seq TO %I', authenticated_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION orders.transition(uuid, text, text, text),
                    orders.assign_lead(uuid, uuid), orders.order_stats(),
                    orders.reserve_time_slot(uuid, integer, integer), orders.confirm_booking(uuid, uuid),
                    orders.release_reservation(uuid),
                    orders.current_customer_ids(), orders.current_staff_id(), orders.current_staff_role(),
                    orders.actor_account(), orders.staff_sees_order(uuid, uuid, text, text),
                    orders.customer_may_edit_items(uuid),
                    orders.recent_orders(text[], integer), orders.agent_active_deliveries(uuid),
                    orders.unassigned_orders_in_area(text), orders.customer_order_history(uuid, integer),
                    orders.vip_customers(text, text) TO %I', authenticated_role);

    INSERT INTO orders.api_roles (role_oid, kind)
    VALUES (anon_role::regrole, 'anon'), (authenticated_role::regrole, 'authenticated')
    ON CONFLICT (role_oid) DO UPDATE SET kind = EXCLUDED.kind
        WHERE orders.api_roles.kind IS DISTINCT FROM EXCLUDED.kind;
END
$$;
COMMENT ON FUNCTION orders.grant_api(name, name) IS
    'Grant the API roles what the policies need and believe their JWT claims (idempotent)';

REVOKE ALL ON orders.api_roles, orders.order_notes, orders.staff_role_defaults FROM PUBLIC;
REVOKE ALL ON FUNCTION orders.api_roles_changed(), orders.grant_api(name, name),
    orders.order_columns_guard(), orders.staff_columns_guard() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orders.actor_account(), orders.current_customer_ids(), orders.current_staff_role(),
    orders.has_permission(text, text), orders.staff_sees_order(uuid, uuid, text, text),
    orders.customer_may_edit_items(uuid), orders.by_maintainer(oid), orders.api_request(), orders.refuse_column(text, text, text) TO PUBLIC;

---------------------------------------------------------------------------
-- Agency orders (seeds 000/001, doc/review.md): an order split into client
-- groups; sites suggested by an analysis, reviewed by the client (logged in
-- or through a share link); approved sites become the order's items; a
-- gate keeps a reviewed order from payment until every group is complete.
---------------------------------------------------------------------------

-- A client group: the links of one of the agency's clients within an
-- order.  Its counters are kept exact by orders.site_counts (C).
CREATE TABLE orders.order_groups (
    id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id               uuid NOT NULL REFERENCES orders.orders (id) ON DELETE CASCADE,
    client_id              uuid NOT NULL REFERENCES orders.customers (id) ON DELETE RESTRICT,
    link_count             integer NOT NULL CHECK (link_count > 0),
    target_pages           jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(target_pages) = 'array'),
    anchor_texts           jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(anchor_texts) = 'array'),
    requirement_overrides  jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(requirement_overrides) = 'object'),
    analysis_project_id    uuid,
    analysis_started_at    timestamptz,
    analysis_completed_at  timestamptz,
    group_status           text NOT NULL DEFAULT 'pending'
                           CHECK (group_status IN ('pending', 'analyzing', 'reviewing', 'complete')),
    suggested_count        integer NOT NULL DEFAULT 0 CHECK (suggested_count >= 0),
    approved_count         integer NOT NULL DEFAULT 0 CHECK (approved_count >= 0),
    rejected_count         integer NOT NULL DEFAULT 0 CHECK (rejected_count >= 0),
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE orders.order_groups IS
    'Client groups of an agency order (seed 001): link_count sites for one client; counters maintained by orders.site_counts';
COMMENT ON COLUMN orders.order_groups.analysis_project_id IS 'The analysis (outside the extension) that suggests its sites; no foreign key';
CREATE INDEX order_groups_order_idx ON orders.order_groups (order_id);
CREATE INDEX order_groups_client_idx ON orders.order_groups (client_id);
CREATE INDEX order_groups_analysis_idx ON orders.order_groups (analysis_project_id) WHERE analysis_project_id IS NOT NULL;
CREATE TRIGGER set_updated_at BEFORE UPDATE ON orders.order_groups
    FOR EACH ROW EXECUTE FUNCTION orders.set_updated_at();
CREATE FUNCTION orders.group_counts_guard() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_group_counts_guard';
CREATE TRIGGER group_counts_guard
    BEFORE INSERT OR UPDATE OF suggested_count, approved_count, rejected_count, link_count
    ON orders.order_groups FOR EACH ROW EXECUTE FUNCTION orders.group_counts_guard();

-- A site suggested for a group, and the client's verdict on it.
CREATE TABLE orders.order_site_selections (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_group_id   uuid NOT NULL REFERENCES orders.order_groups (id) ON DELETE CASCADE,
    domain           text NOT NULL CHECK (domain ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$'
                                          AND length(domain) <= 253),
    domain_id        uuid,
    metrics          jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metrics) = 'object'),
    status           text NOT NULL DEFAULT 'suggested'
                     CHECK (status IN ('suggested', 'approved', 'rejected', 'alternate')),
    target_page_url  text,
    anchor_text      text CHECK (length(anchor_text) <= 255),
    reviewed_at      timestamptz,
    reviewed_by      text,
    client_notes     text CHECK (length(client_notes) <= 10000),
    internal_notes   text,
    order_item_id    uuid REFERENCES orders.order_items (id) ON DELETE SET NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (order_group_id, domain)
);
COMMENT ON TABLE orders.order_site_selections IS
    'Sites suggested for a client group and reviewed (seed 001); an approved site is an order item';
COMMENT ON COLUMN orders.order_site_selections.domain IS 'Normalised host: lower case, no scheme, path or www.';
COMMENT ON COLUMN orders.order_site_selections.internal_notes IS
    'Staff only: no API role may read or write it (orders.site_internal_notes)';
CREATE INDEX order_site_selections_status_idx ON orders.order_site_selections (order_group_id, status);
CREATE INDEX order_site_selections_domain_idx ON orders.order_site_selections (domain_id) WHERE domain_id IS NOT NULL;
CREATE INDEX order_site_selections_item_idx ON orders.order_site_selections (order_item_id) WHERE order_item_id IS NOT NULL;
CREATE TRIGGER set_updated_at BEFORE UPDATE ON orders.order_site_selections
    FOR EACH ROW EXECUTE FUNCTION orders.set_updated_at();

CREATE FUNCTION orders.site_counts() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_site_counts';
CREATE TRIGGER site_counts_insert AFTER INSERT ON orders.order_site_selections
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION orders.site_counts();
CREATE TRIGGER site_counts_update AFTER UPDATE ON orders.order_site_selections
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION orders.site_counts();
CREATE TRIGGER site_counts_delete AFTER DELETE ON orders.order_site_selections
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION orders.site_counts();

-- normalize_domain — the host of a URL or domain: lower case, without
-- scheme, user, port, path or a leading "www.".
CREATE FUNCTION orders.normalize_domain(domain text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT regexp_replace(
             regexp_replace(lower(btrim(domain)), '^([a-z][a-z0-9+.-]*://)?([^@/]*@)?([^/:?#]*).*$', '\3'),
             '^www\.', '')
$$;

-- An approved site is an item of the order (service, named by its domain,
-- priced by metrics.price when the analysis gives one, its snapshot what
-- was approved); a site no longer approved takes its item away — until the
-- order is paid (paid_at) or closed: then approved sites stay (OR073).
-- SECURITY DEFINER: the item must follow whoever changes the site, also a
-- client who may not write items.  The item goes in the BEFORE trigger
-- (the site links it), the old one out in the AFTER trigger, once the site
-- no longer links it.
CREATE FUNCTION orders.site_items() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o record;
    item uuid;
    approving boolean := TG_OP <> 'DELETE' AND NEW.status = 'approved'
                         AND (TG_OP = 'INSERT' OR OLD.status <> 'approved');
    unapproving boolean := TG_OP <> 'INSERT' AND OLD.status = 'approved'
                           AND (TG_OP = 'DELETE' OR NEW.status <> 'approved');
BEGIN
    -- an approval adds an item to what was paid for (or earned), taking one
    -- back removes one: neither once the order is paid or closed (OR073)
    IF approving OR unapproving THEN
        SELECT ord.order_number, ord.status, ord.paid_at, orders.status_category(ord.lifecycle, ord.status) AS category
          INTO o
          FROM orders.order_groups g JOIN orders.orders ord ON ord.id = g.order_id
         WHERE g.id = CASE WHEN TG_OP = 'DELETE' THEN OLD.order_group_id ELSE NEW.order_group_id END;
        IF FOUND AND (o.paid_at IS NOT NULL OR o.category <> 'open') AND approving THEN
            RAISE EXCEPTION 'order "%" is %: site % cannot be approved any more', o.order_number,
                            CASE WHEN o.paid_at IS NOT NULL THEN 'paid' ELSE o.status END, NEW.domain
                USING ERRCODE = 'OR073',
                      HINT = 'Once the order is paid its sites are final; start a new order for more.';
        ELSIF FOUND AND (o.paid_at IS NOT NULL OR o.category <> 'open') THEN
            RAISE EXCEPTION 'order "%" is %: approved site % stays', o.order_number,
                            CASE WHEN o.paid_at IS NOT NULL THEN 'paid' ELSE o.status END, OLD.domain
                USING ERRCODE = 'OR073',
                      HINT = 'Approved sites become items; once the order is paid they are no longer taken back.';
        END IF;
    END IF;
    IF unapproving THEN
        IF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
        NEW.order_item_id := NULL;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.status = 'approved' AND NEW.order_item_id IS NULL THEN
        INSERT INTO orders.order_items (order_id, item_type, name, quantity, unit_price, snapshot)
        SELECT g.order_id, 'service', NEW.domain, 1,
               CASE WHEN jsonb_typeof(NEW.metrics -> 'price') = 'number' THEN (NEW.metrics ->> 'price')::numeric ELSE 0 END,
               jsonb_build_object('site_selection_id', NEW.id, 'order_group_id', NEW.order_group_id,
                                  'domain', NEW.domain, 'domain_id', NEW.domain_id, 'metrics', NEW.metrics,
                                  'target_page_url', NEW.target_page_url, 'anchor_text', NEW.anchor_text,
                                  'approved_by', NEW.reviewed_by)
          FROM orders.order_groups g WHERE g.id = NEW.order_group_id
        RETURNING id INTO item;
        NEW.order_item_id := item;
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;
CREATE TRIGGER site_items BEFORE INSERT OR UPDATE OF status OR DELETE ON orders.order_site_selections
    FOR EACH ROW EXECUTE FUNCTION orders.site_items();
CREATE FUNCTION orders.site_items_gone() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF OLD.order_item_id IS NOT NULL
       AND (TG_OP = 'DELETE' OR NEW.order_item_id IS DISTINCT FROM OLD.order_item_id) THEN
        DELETE FROM orders.order_items WHERE id = OLD.order_item_id;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER site_items_gone AFTER UPDATE OF status OR DELETE ON orders.order_site_selections
    FOR EACH ROW EXECUTE FUNCTION orders.site_items_gone();

-- Who reviewed a site and when is recorded, not written: in an API request
-- the reviewer is the caller (the extension's owner — share_review_sites —
-- names the link itself).  Customers review (status, notes, target page,
-- anchor); what the analysis found (domain, metrics) is staff's (OR060).
CREATE FUNCTION orders.site_review_columns() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF orders.by_maintainer(TG_RELID) OR NOT orders.api_request() THEN
        RETURN NEW;
    END IF;
    IF (NEW.domain, NEW.domain_id, NEW.metrics) IS DISTINCT FROM (OLD.domain, OLD.domain_id, OLD.metrics)
       AND orders.current_staff_role() IS NULL THEN
        PERFORM orders.refuse_column('orders.order_site_selections',
            CASE WHEN NEW.domain IS DISTINCT FROM OLD.domain THEN 'domain'
                 WHEN NEW.domain_id IS DISTINCT FROM OLD.domain_id THEN 'domain_id' ELSE 'metrics' END, 'staff');
    END IF;
    IF (NEW.status, NEW.client_notes, NEW.target_page_url, NEW.anchor_text)
       IS DISTINCT FROM (OLD.status, OLD.client_notes, OLD.target_page_url, OLD.anchor_text) THEN
        NEW.reviewed_at := now();
        NEW.reviewed_by := orders.current_actor();
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER site_review_columns BEFORE UPDATE ON orders.order_site_selections
    FOR EACH ROW EXECUTE FUNCTION orders.site_review_columns();

-- Configuration of an order (seed 000): minimum DR, traffic range, niche...
CREATE TABLE orders.order_requirements (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id           uuid NOT NULL REFERENCES orders.orders (id) ON DELETE CASCADE,
    requirement_type   text NOT NULL CHECK (requirement_type ~ '^[a-z][a-z0-9_]*$'),
    requirement_value  jsonb NOT NULL,
    is_mandatory       boolean NOT NULL DEFAULT false,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_requirements_order_idx ON orders.order_requirements (order_id);

-- Share links (seed 000).  The token itself is never stored: its SHA-256.
CREATE TABLE orders.order_share_tokens (
    id                       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id                 uuid NOT NULL REFERENCES orders.orders (id) ON DELETE CASCADE,
    token_hash               bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    expires_at               timestamptz NOT NULL,
    allowed_actions          text[] NOT NULL DEFAULT '{view}'
                             CHECK (allowed_actions <@ ARRAY['view', 'approve', 'convert'] AND cardinality(allowed_actions) > 0),
    created_by               text NOT NULL DEFAULT orders.current_actor(),
    used_at                  timestamptz,
    converted_to_account_id  uuid,
    revoked_at               timestamptz,
    metadata                 jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    created_at               timestamptz NOT NULL DEFAULT now()
);
COMMENT ON COLUMN orders.order_share_tokens.token_hash IS 'SHA-256 of the token; no API role may read it';
CREATE INDEX order_share_tokens_order_idx ON orders.order_share_tokens (order_id);
CREATE INDEX order_share_tokens_expires_idx ON orders.order_share_tokens (expires_at);

SELECT pg_catalog.pg_extension_config_dump('orders.order_groups', '');
SELECT pg_catalog.pg_extension_config_dump('orders.order_site_selections', '');
SELECT pg_catalog.pg_extension_config_dump('orders.order_requirements', '');
SELECT pg_catalog.pg_extension_config_dump('orders.order_share_tokens', '');

---------------------------------------------------------------------------
-- The flow: analysis, review, the gate.
---------------------------------------------------------------------------

-- group_not_found — OR075 for a group that does not exist or is hidden.
CREATE FUNCTION orders.group_not_found(order_group_id uuid) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'client group % does not exist', order_group_id
        USING ERRCODE = 'OR075',
              HINT = 'Either no group has this id or row level security hides it from you.';
END
$$;

-- start_analysis — the analysis of a group started (stamps it).
CREATE FUNCTION orders.start_analysis(order_group_id uuid, analysis_project_id uuid)
    RETURNS orders.order_groups
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g orders.order_groups;
BEGIN
    UPDATE orders.order_groups og
       SET analysis_project_id = start_analysis.analysis_project_id,
           analysis_started_at = now(), analysis_completed_at = NULL, group_status = 'analyzing'
     WHERE og.id = start_analysis.order_group_id
    RETURNING og.* INTO g;
    IF NOT FOUND THEN
        PERFORM orders.group_not_found(start_analysis.order_group_id);
    END IF;
    RETURN g;
END
$$;

-- complete_analysis — the analysis of a group suggests its sites
-- ([{domain, domain_id, metrics}], duplicates ignored) and is stamped; when
-- the last group of an order in "analyzing" completes, the order moves to
-- "reviewing" through its lifecycle, in this transaction.  The order row is
-- locked first, so two groups completing at once cannot both miss the
-- other (READ COMMITTED: each statement sees what committed before it).
CREATE FUNCTION orders.complete_analysis(order_group_id uuid, suggestions jsonb)
    RETURNS orders.order_groups
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g orders.order_groups;
    o orders.orders;
BEGIN
    IF jsonb_typeof(suggestions) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'orders.complete_analysis: suggestions must be a JSON array of {domain, domain_id, metrics}'
            USING ERRCODE = '22023';
    END IF;
    SELECT * INTO o FROM orders.orders
     WHERE id = (SELECT og.order_id FROM orders.order_groups og WHERE og.id = complete_analysis.order_group_id)
       FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        PERFORM orders.group_not_found(complete_analysis.order_group_id);
    END IF;
    INSERT INTO orders.order_site_selections (order_group_id, domain, domain_id, metrics)
    SELECT complete_analysis.order_group_id, orders.normalize_domain(s ->> 'domain'),
           (s ->> 'domain_id')::uuid, coalesce(s -> 'metrics', '{}')
      FROM jsonb_array_elements(suggestions) s
    ON CONFLICT ON CONSTRAINT order_site_selections_order_group_id_domain_key DO NOTHING;
    UPDATE orders.order_groups og
       SET analysis_completed_at = now(),
           group_status = CASE WHEN og.approved_count >= og.link_count THEN 'complete' ELSE 'reviewing' END
     WHERE og.id = complete_analysis.order_group_id
    RETURNING og.* INTO g;
    IF o.status = 'analyzing'
       AND NOT EXISTS (SELECT FROM orders.order_groups og
                        WHERE og.order_id = o.id AND og.analysis_completed_at IS NULL) THEN
        PERFORM orders.transition(o.id, 'reviewing', 'analysis complete');
    END IF;
    RETURN g;
END
$$;

-- review_sites — apply a client's verdicts on sites of one group, all or
-- nothing: [{selection_id | domain, status, client_notes, target_page_url,
-- anchor_text}].  One UPDATE: the counters and the cap (OR070) judge the
-- whole review at once.  reviewed_by is the caller (or "who").
CREATE FUNCTION orders.review_sites(order_group_id uuid, selections jsonb)
    RETURNS orders.order_groups
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN orders.apply_review(review_sites.order_group_id, review_sites.selections, orders.current_actor());
END
$$;

-- apply_review — the review itself, for review_sites and share_review_sites.
-- "who" is recorded as the reviewer only when the extension's owner calls
-- (share_review_sites names the link); anybody else is recorded as itself.
CREATE FUNCTION orders.apply_review(order_group_id uuid, selections jsonb, who text)
    RETURNS orders.order_groups
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g orders.order_groups;
    -- the owner (share_review_sites) names the reviewer; anybody else is
    -- recorded as itself, by the trigger site_review_columns
    reviewer text := CASE WHEN orders.by_maintainer('orders.order_groups'::regclass)
                          THEN coalesce(who, orders.current_actor()) END;
    problem text;
    sites uuid[];
    entries jsonb[];
    updated bigint;
BEGIN
    IF jsonb_typeof(selections) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'orders.review_sites: selections must be a JSON array of {selection_id | domain, status, ...}'
            USING ERRCODE = '22023';
    END IF;
    SELECT * INTO g FROM orders.order_groups og WHERE og.id = apply_review.order_group_id;
    IF NOT FOUND THEN
        PERFORM orders.group_not_found(apply_review.order_group_id);
    END IF;
    -- every entry a known status, a site of the group, named once; each
    -- entry resolved to its site through an index (the id's canonical text,
    -- or the group's normalised domain), not by scanning the group's sites
    WITH i AS (
        SELECT e.n, e.s, e.s ->> 'status' AS status,
               coalesce(e.s ->> 'selection_id', e.s ->> 'domain') AS named,
               CASE WHEN e.s ? 'selection_id'
                    THEN (SELECT x.id FROM orders.order_site_selections x
                           WHERE x.id = CASE WHEN (e.s ->> 'selection_id') ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                                             THEN (e.s ->> 'selection_id')::uuid END
                             AND x.order_group_id = g.id)
                    ELSE (SELECT x.id FROM orders.order_site_selections x
                           WHERE x.order_group_id = g.id AND x.domain = orders.normalize_domain(e.s ->> 'domain')) END AS site
          FROM jsonb_array_elements(selections) WITH ORDINALITY AS e (s, n))
    SELECT (SELECT CASE WHEN status IS NULL OR status NOT IN ('suggested', 'approved', 'rejected', 'alternate')
                        THEN format('status "%s" is not one of suggested, approved, rejected, alternate', left(coalesce(status, 'null'), 64))
                        WHEN site IS NULL THEN format('site %s is not a site of client group %s', left(coalesce(named, 'null'), 64), g.id)
                        ELSE format('site %s is named twice', site) END
              FROM i
             WHERE status IS NULL OR status NOT IN ('suggested', 'approved', 'rejected', 'alternate') OR site IS NULL
                OR site IN (SELECT i2.site FROM i i2 GROUP BY i2.site HAVING count(*) > 1)
             ORDER BY n LIMIT 1),
           (SELECT array_agg(i.site ORDER BY i.n) FROM i), (SELECT array_agg(i.s ORDER BY i.n) FROM i)
      INTO problem, sites, entries;
    IF problem LIKE 'site % is not a site of%' THEN
        RAISE EXCEPTION '%', problem USING ERRCODE = 'OR076', HINT = 'Review the sites the group''s analysis suggested.';
    ELSIF problem IS NOT NULL THEN
        RAISE EXCEPTION 'orders.review_sites: %', problem USING ERRCODE = '22023';
    END IF;
    IF reviewer IS NULL THEN
        -- any caller but the owner: the trigger site_review_columns records it
        UPDATE orders.order_site_selections x
           SET status = e.s ->> 'status',
               client_notes = coalesce(e.s ->> 'client_notes', x.client_notes),
               target_page_url = coalesce(e.s ->> 'target_page_url', x.target_page_url),
               anchor_text = coalesce(e.s ->> 'anchor_text', x.anchor_text)
          FROM unnest(sites, entries) AS e (site, s)
         WHERE x.id = e.site AND x.order_group_id = g.id;
    ELSE
        UPDATE orders.order_site_selections x
           SET status = e.s ->> 'status',
               client_notes = coalesce(e.s ->> 'client_notes', x.client_notes),
               target_page_url = coalesce(e.s ->> 'target_page_url', x.target_page_url),
               anchor_text = coalesce(e.s ->> 'anchor_text', x.anchor_text),
               reviewed_at = now(), reviewed_by = reviewer
          FROM unnest(sites, entries) AS e (site, s)
         WHERE x.id = e.site AND x.order_group_id = g.id;
    END IF;
    -- every entry names a distinct site of the group: fewer rows updated
    -- means a site was deleted meanwhile (OR076) or row level security kept
    -- the caller from changing it (e.g. a client and its closed order:
    -- 42501) — refused, never a silent no-op
    GET DIAGNOSTICS updated = ROW_COUNT;
    IF updated < cardinality(sites)
       AND (SELECT count(*) FROM orders.order_site_selections x WHERE x.id = ANY (sites)) < cardinality(sites) THEN
        RAISE EXCEPTION 'a site of the review is no longer a site of client group %', g.id
            USING ERRCODE = 'OR076', HINT = 'It was deleted meanwhile; review the group''s sites again.';
    ELSIF updated < cardinality(sites) THEN
        RAISE EXCEPTION 'you may not review the sites of order "%"',
                        (SELECT o.order_number FROM orders.orders o WHERE o.id = g.order_id)
            USING ERRCODE = '42501',
                  HINT = 'A client reviews the sites of its own orders while they are open.';
    END IF;
    SELECT * INTO g FROM orders.order_groups og WHERE og.id = g.id;
    RETURN g;
END
$$;

-- The gates of the review lifecycle (orders.lifecycle_gates).  SECURITY
-- DEFINER: they judge every group of the order, whatever the caller sees.
CREATE FUNCTION orders.has_client_groups(order_id uuid) RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN NOT EXISTS (SELECT FROM orders.order_groups g WHERE g.order_id = has_client_groups.order_id)
                THEN 'The order has no client group: add one per client (orders.order_groups) first.' END
$$;
CREATE FUNCTION orders.client_review_complete(order_id uuid) RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN o.requires_client_review THEN
             (SELECT 'Groups short of approved sites: '
                     || string_agg(format('%s (%s of %s approved)', c.full_name, g.approved_count, g.link_count),
                                   ', ' ORDER BY c.full_name, g.id)
                FROM orders.order_groups g JOIN orders.customers c ON c.id = g.client_id
               WHERE g.order_id = o.id AND g.approved_count < g.link_count)
           END
      FROM orders.orders o WHERE o.id = client_review_complete.order_id
$$;
INSERT INTO orders.lifecycle_gates (name, check_function, stamp_column, actor_column, description, builtin) VALUES
  ('client_groups', 'orders.has_client_groups(uuid)', NULL, NULL,
   'an agency order has at least one client group before its analysis', true),
  ('client_review', 'orders.client_review_complete(uuid)', 'review_completed_at', 'reviewed_by',
   'an order that requires client review has every group''s sites approved', true);
UPDATE orders.lifecycle_transitions SET gate = 'client_groups'
 WHERE lifecycle = 'review' AND builtin AND from_status = 'configuring' AND to_status = 'analyzing';
UPDATE orders.lifecycle_transitions SET gate = 'client_review'
 WHERE lifecycle = 'review' AND builtin AND from_status = 'reviewing' AND to_status = 'payment_pending';

-- Staff-only notes on sites: no API role has the column; staff with
-- orders.view read and (orders.edit) write them here, for orders in their
-- scope (orders.staff_sees_order, the policies' rule, judged by the
-- caller's identity: these functions run as their owner).
CREATE FUNCTION orders.staff_sees_group(order_group_id uuid) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT orders.staff_sees_order(o.assigned_rep_id, o.assigned_agent_id, o.lifecycle, o.status)
                       FROM orders.order_groups g JOIN orders.orders o ON o.id = g.order_id
                      WHERE g.id = staff_sees_group.order_group_id), false)
$$;
CREATE FUNCTION orders.site_internal_notes(order_group_id uuid)
    RETURNS TABLE (selection_id uuid, domain text, internal_notes text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT orders.has_permission('orders', 'view') OR NOT orders.staff_sees_group(site_internal_notes.order_group_id) THEN
        PERFORM orders.group_not_found(site_internal_notes.order_group_id);
    END IF;
    RETURN QUERY SELECT x.id, x.domain, x.internal_notes FROM orders.order_site_selections x
                  WHERE x.order_group_id = site_internal_notes.order_group_id ORDER BY x.domain;
END
$$;
CREATE FUNCTION orders.set_site_internal_notes(selection_id uuid, internal_notes text)
    RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    grp uuid := (SELECT x.order_group_id FROM orders.order_site_selections x WHERE x.id = set_site_internal_notes.selection_id);
BEGIN
    IF grp IS NULL OR NOT orders.has_permission('orders', 'edit') OR NOT orders.staff_sees_group(grp) THEN
        RAISE EXCEPTION 'site % does not exist', set_site_internal_notes.selection_id
            USING ERRCODE = 'OR076', HINT = 'Either no site has this id or you may not edit its order.';
    END IF;
    UPDATE orders.order_site_selections x SET internal_notes = set_site_internal_notes.internal_notes
     WHERE x.id = set_site_internal_notes.selection_id;
END
$$;

-- may_share — whether the caller may create or revoke links of the order:
-- its customer, or staff with orders.edit whose scope has it; outside API
-- requests (DBAs, jobs) whoever may call the functions.
CREATE FUNCTION orders.may_share(order_id uuid) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT NOT orders.api_request()
                            OR o.customer_id = ANY (orders.current_customer_ids())
                            OR (orders.has_permission('orders', 'edit')
                                AND orders.staff_sees_order(o.assigned_rep_id, o.assigned_agent_id, o.lifecycle, o.status))
                       FROM orders.orders o WHERE o.id = may_share.order_id), false)
$$;

---------------------------------------------------------------------------
-- Share links: a token shows (and may let approve or convert) one order to
-- whoever holds it, without a login.  Unknown, expired, revoked and used
-- tokens get one refusal (OR080, one message: no oracle) and change nothing.
---------------------------------------------------------------------------

-- create_share_token — a URL-safe token of 244 random bits, returned once;
-- only its hash is kept.  For the order's customer or staff with
-- orders.edit on it (orders.may_share); API roles cannot write the table.
CREATE FUNCTION orders.create_share_token(order_id uuid, expires_in interval DEFAULT '7 days',
                                          allowed_actions text[] DEFAULT '{view}', metadata jsonb DEFAULT '{}')
    RETURNS text
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    token text;
BEGIN
    IF NOT orders.may_share(create_share_token.order_id) THEN
        RAISE EXCEPTION 'order % does not exist', create_share_token.order_id
            USING ERRCODE = 'OR006',
                  HINT = 'Either no order has this id, row level security hides it, or you may not share it.';
    END IF;
    IF expires_in IS NULL OR expires_in <= interval '0' OR expires_in > interval '90 days' THEN
        RAISE EXCEPTION 'orders.create_share_token: expires_in must be between 0 and 90 days'
            USING ERRCODE = '22023';
    END IF;
    token := translate(encode(decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'),
                              'base64'), '+/=', '-_');
    INSERT INTO orders.order_share_tokens (order_id, token_hash, expires_at, allowed_actions, created_by, metadata)
    VALUES (create_share_token.order_id, sha256(convert_to(token, 'UTF8')), now() + expires_in,
            coalesce(create_share_token.allowed_actions, '{view}'), orders.current_actor(),
            coalesce(create_share_token.metadata, '{}'));
    RETURN token;
END
$$;

-- share_token_row — the valid token "token" (not expired, revoked or used)
-- allowing "action", as its owner sees it; OR080 otherwise (OR081 when
-- valid but not for this action).
CREATE FUNCTION orders.share_token_row(token text, action text)
    RETURNS orders.order_share_tokens
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t orders.order_share_tokens;
BEGIN
    SELECT * INTO t FROM orders.order_share_tokens s
     WHERE s.token_hash = sha256(convert_to(coalesce(share_token_row.token, ''), 'UTF8'))
       AND s.expires_at > clock_timestamp() AND s.revoked_at IS NULL AND s.used_at IS NULL;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'this share link is not valid'
            USING ERRCODE = 'OR080', HINT = 'Ask for a new link.';
    END IF;
    IF NOT share_token_row.action = ANY (t.allowed_actions) THEN
        RAISE EXCEPTION 'this share link does not allow "%"', share_token_row.action
            USING ERRCODE = 'OR081', HINT = 'Ask for a link that allows it.';
    END IF;
    RETURN t;
END
$$;

-- shared_order — what a share link shows (seed 000's "order with full
-- context"): the order's state and configuration, its groups with their
-- sites and requirements; no internal notes, costs or other customers'
-- data.  Viewing never consumes the token.
CREATE FUNCTION orders.shared_order(token text) RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t orders.order_share_tokens := orders.share_token_row(shared_order.token, 'view');
BEGIN
    RETURN (
      SELECT jsonb_build_object(
               'id', o.id, 'order_number', o.order_number, 'lifecycle', o.lifecycle, 'status', o.status,
               'requires_client_review', o.requires_client_review, 'review_completed_at', o.review_completed_at,
               'currency', o.currency, 'subtotal', o.subtotal, 'total_amount', o.total_amount,
               'created_at', o.created_at, 'analysis_project_id', o.analysis_project_id,
               'allowed_actions', to_jsonb(t.allowed_actions), 'expires_at', t.expires_at,
               'requirements', coalesce((SELECT jsonb_agg(jsonb_build_object('type', r.requirement_type,
                                                  'value', r.requirement_value, 'mandatory', r.is_mandatory)
                                                  ORDER BY r.created_at, r.id)
                                           FROM orders.order_requirements r WHERE r.order_id = o.id), '[]'),
               'groups', coalesce((SELECT jsonb_agg(jsonb_build_object(
                     'id', g.id, 'client', c.full_name, 'link_count', g.link_count,
                     'target_pages', g.target_pages, 'anchor_texts', g.anchor_texts,
                     'group_status', g.group_status, 'suggested', g.suggested_count,
                     'approved', g.approved_count, 'rejected', g.rejected_count,
                     'sites', coalesce((SELECT jsonb_agg(jsonb_build_object(
                                 'id', x.id, 'domain', x.domain, 'metrics', x.metrics - 'cost',
                                 'status', x.status, 'target_page_url', x.target_page_url,
                                 'anchor_text', x.anchor_text, 'client_notes', x.client_notes,
                                 'reviewed_at', x.reviewed_at) ORDER BY x.domain)
                               FROM orders.order_site_selections x WHERE x.order_group_id = g.id), '[]'))
                     ORDER BY g.created_at, g.id)
                   FROM orders.order_groups g JOIN orders.customers c ON c.id = g.client_id
                  WHERE g.order_id = o.id), '[]'))
        FROM orders.orders o WHERE o.id = t.order_id);
END
$$;

-- share_review_sites — review_sites through a link that allows "approve";
-- the reviewer recorded is the link ("share:<token id>").
CREATE FUNCTION orders.share_review_sites(token text, order_group_id uuid, selections jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t orders.order_share_tokens := orders.share_token_row(share_review_sites.token, 'approve');
    g orders.order_groups;
BEGIN
    IF NOT EXISTS (SELECT FROM orders.order_groups og
                    WHERE og.id = share_review_sites.order_group_id AND og.order_id = t.order_id) THEN
        PERFORM orders.group_not_found(share_review_sites.order_group_id);
    END IF;
    g := orders.apply_review(share_review_sites.order_group_id, share_review_sites.selections, 'share:' || t.id);
    RETURN jsonb_build_object('id', g.id, 'link_count', g.link_count, 'approved', g.approved_count,
                              'rejected', g.rejected_count, 'suggested', g.suggested_count,
                              'group_status', g.group_status);
END
$$;

-- convert_share_token — a prospect who just logged in (JWT sub) takes the
-- shared order: its customer becomes the prospect's account.  Single use:
-- of two conversions at once exactly one wins (the token row is updated
-- only while unused); the other gets OR080.
CREATE FUNCTION orders.convert_share_token(token text) RETURNS uuid
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    account uuid := orders.actor_account();
    t orders.order_share_tokens := orders.share_token_row(convert_share_token.token, 'convert');
    customer uuid;
    owner_account uuid;
BEGIN
    IF account IS NULL THEN
        RAISE EXCEPTION 'converting a share link needs a logged-in account (a JWT whose sub is its id)'
            USING ERRCODE = 'OR082';
    END IF;
    UPDATE orders.order_share_tokens s SET used_at = clock_timestamp(), converted_to_account_id = account
     WHERE s.id = t.id AND s.used_at IS NULL AND s.revoked_at IS NULL AND s.expires_at > clock_timestamp();
    IF NOT FOUND THEN
        RAISE EXCEPTION 'this share link is not valid'
            USING ERRCODE = 'OR080', HINT = 'Ask for a new link.';
    END IF;
    SELECT o.customer_id, c.account_id INTO customer, owner_account
      FROM orders.orders o JOIN orders.customers c ON c.id = o.customer_id
     WHERE o.id = t.order_id FOR NO KEY UPDATE OF c;
    IF owner_account IS NOT NULL AND owner_account <> account THEN
        RAISE EXCEPTION 'the shared order belongs to another account'
            USING ERRCODE = 'OR083', HINT = 'The link was for a prospect; ask the agency for an order of your own.';
    END IF;
    UPDATE orders.customers SET account_id = account WHERE id = customer AND account_id IS NULL;
    RETURN customer;
END
$$;

-- revoke_share_token — the link stops working, for good (by its id, for
-- whoever may share the order).
CREATE FUNCTION orders.revoke_share_token(token_id uuid) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE orders.order_share_tokens s SET revoked_at = clock_timestamp()
     WHERE s.id = revoke_share_token.token_id AND s.revoked_at IS NULL AND orders.may_share(s.order_id);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'this share link is not valid'
            USING ERRCODE = 'OR080', HINT = 'It does not exist, is already revoked, or you may not revoke it.';
    END IF;
END
$$;

-- recount_site_counts — repair: recount a group's counters from its sites
-- (owner, READ COMMITTED); returns the groups that were wrong.
CREATE FUNCTION orders.recount_site_counts(order_group_id uuid DEFAULT NULL)
    RETURNS TABLE (id uuid, stored integer[], counted integer[])
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'orders.recount_site_counts() runs at READ COMMITTED only'
            USING ERRCODE = '25000';
    END IF;
    PERFORM 1 FROM orders.order_groups g
     WHERE recount_site_counts.order_group_id IS NULL OR g.id = recount_site_counts.order_group_id
     ORDER BY g.id FOR NO KEY UPDATE;
    RETURN QUERY
    WITH counted AS (
        SELECT g.id, ARRAY[g.suggested_count, g.approved_count, g.rejected_count] AS stored,
               ARRAY[count(*) FILTER (WHERE x.status = 'suggested'), count(*) FILTER (WHERE x.status = 'approved'),
                     count(*) FILTER (WHERE x.status = 'rejected')]::integer[] AS counted
          FROM orders.order_groups g LEFT JOIN orders.order_site_selections x ON x.order_group_id = g.id
         WHERE recount_site_counts.order_group_id IS NULL OR g.id = recount_site_counts.order_group_id
         GROUP BY g.id),
    fixed AS (
        UPDATE orders.order_groups g
           SET suggested_count = c.counted[1], approved_count = c.counted[2], rejected_count = c.counted[3]
          FROM counted c WHERE g.id = c.id AND c.stored <> c.counted
        RETURNING g.id)
    SELECT c.id, c.stored, c.counted FROM counted c JOIN fixed f ON f.id = c.id;
END
$$;

-- TRUNCATE skips the row and statement triggers that keep the counters:
-- refused while a group counts a site.
CREATE FUNCTION orders.sites_truncate_guard() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT FROM orders.order_groups g
                WHERE g.suggested_count <> 0 OR g.approved_count <> 0 OR g.rejected_count <> 0) THEN
        RAISE EXCEPTION 'cannot truncate orders.order_site_selections while client groups count their sites'
            USING ERRCODE = 'OR014', HINT = 'Use DELETE; the counters and items follow it.';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER sites_truncate_guard BEFORE TRUNCATE ON orders.order_site_selections
    FOR EACH STATEMENT EXECUTE FUNCTION orders.sites_truncate_guard();

---------------------------------------------------------------------------
-- Policies (doc/security.md): everything follows the order.  A customer
-- reviews the sites of its own orders; staff by their order scope.
---------------------------------------------------------------------------
ALTER TABLE orders.lifecycle_gates ENABLE ROW LEVEL SECURITY;
CREATE POLICY readable ON orders.lifecycle_gates FOR SELECT USING (true);

ALTER TABLE orders.order_groups ENABLE ROW LEVEL SECURITY;
CREATE POLICY reach ON orders.order_groups
    USING (EXISTS (SELECT FROM orders.orders o WHERE o.id = order_id));
CREATE POLICY insert_right ON orders.order_groups AS RESTRICTIVE FOR INSERT
    WITH CHECK (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('orders', 'edit')) OR orders.customer_may_edit_items(order_id));
CREATE POLICY update_right ON orders.order_groups AS RESTRICTIVE FOR UPDATE
    USING (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('orders', 'edit')) OR orders.customer_may_edit_items(order_id));
CREATE POLICY delete_right ON orders.order_groups AS RESTRICTIVE FOR DELETE
    USING (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('orders', 'edit')) OR orders.customer_may_edit_items(order_id));

ALTER TABLE orders.order_site_selections ENABLE ROW LEVEL SECURITY;
CREATE POLICY reach ON orders.order_site_selections
    USING (EXISTS (SELECT FROM orders.order_groups g WHERE g.id = order_group_id));
CREATE POLICY update_right ON orders.order_site_selections AS RESTRICTIVE FOR UPDATE
    USING (NOT (SELECT orders.api_request()) OR (SELECT orders.has_permission('orders', 'edit'))
           OR orders.customer_may_edit_items((SELECT g.order_id FROM orders.order_groups g WHERE g.id = order_group_id)));
CREATE POLICY insert_right ON orders.order_site_selections AS RESTRICTIVE FOR INSERT
    WITH CHECK (NOT (SELECT orders.api_request()) OR (SELECT orders.has_permission('orders', 'edit')));
CREATE POLICY delete_right ON orders.order_site_selections AS RESTRICTIVE FOR DELETE
    USING (NOT (SELECT orders.api_request()) OR (SELECT orders.has_permission('orders', 'edit')));

ALTER TABLE orders.order_requirements ENABLE ROW LEVEL SECURITY;
CREATE POLICY reach ON orders.order_requirements
    USING (EXISTS (SELECT FROM orders.orders o WHERE o.id = order_id));
CREATE POLICY insert_right ON orders.order_requirements AS RESTRICTIVE FOR INSERT
    WITH CHECK (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('orders', 'edit')) OR orders.customer_may_edit_items(order_id));
CREATE POLICY update_right ON orders.order_requirements AS RESTRICTIVE FOR UPDATE
    USING (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('orders', 'edit')) OR orders.customer_may_edit_items(order_id));
CREATE POLICY delete_right ON orders.order_requirements AS RESTRICTIVE FOR DELETE
    USING (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('orders', 'edit')) OR orders.customer_may_edit_items(order_id));

-- share links: seen (without their hash) by whoever may edit the order
ALTER TABLE orders.order_share_tokens ENABLE ROW LEVEL SECURITY;
CREATE POLICY reach ON orders.order_share_tokens
    USING (EXISTS (SELECT FROM orders.orders o WHERE o.id = order_id
                      AND (o.customer_id = ANY ((SELECT orders.current_customer_ids())::uuid[])
                           OR (SELECT orders.has_permission('orders', 'edit')))));

REVOKE ALL ON orders.order_groups, orders.order_site_selections, orders.order_requirements,
              orders.order_share_tokens FROM PUBLIC;
REVOKE ALL ON FUNCTION orders.group_counts_guard(), orders.site_counts(), orders.site_items(),
    orders.site_items_gone(), orders.sites_truncate_guard(), orders.recount_site_counts(uuid),
    orders.site_review_columns() FROM PUBLIC;
-- the staff and customer functions: not anon's (they would refuse it anyway)
REVOKE ALL ON FUNCTION orders.site_internal_notes(uuid), orders.set_site_internal_notes(uuid, text),
    orders.start_analysis(uuid, uuid), orders.complete_analysis(uuid, jsonb), orders.review_sites(uuid, jsonb),
    orders.create_share_token(uuid, interval, text[], jsonb), orders.revoke_share_token(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orders.has_client_groups(uuid), orders.client_review_complete(uuid),
    orders.normalize_domain(text), orders.group_not_found(uuid), orders.staff_sees_group(uuid), orders.may_share(uuid),
    orders.apply_review(uuid, jsonb, text) TO PUBLIC;

---------------------------------------------------------------------------
-- Orders from shop webhooks (issue 12, seed 004; doc/webhooks.md): a
-- Shopify, WooCommerce or custom order webhook becomes a customer, an order
-- in its lifecycle's initial status and its items, verified (HMAC-SHA256 in
-- C, src/webhook_signature.c) and exactly once per delivery and per shop
-- order, whoever calls orders.ingest_webhook.  Every request is logged.
---------------------------------------------------------------------------

CREATE TABLE orders.webhooks (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name           orders.label NOT NULL,
    source         text NOT NULL CHECK (source IN ('shopify', 'woocommerce', 'custom', 'other')),
    endpoint       text NOT NULL UNIQUE CHECK (endpoint ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$'),
    secret         text CHECK (secret <> ''),
    field_mapping  orders.json_object NOT NULL DEFAULT '{}',
    defaults       orders.json_object NOT NULL DEFAULT '{}'
                   CONSTRAINT webhooks_defaults_shape CHECK (
                       coalesce(jsonb_typeof(defaults -> 'lifecycle'), 'string') = 'string'
                       AND coalesce(jsonb_typeof(defaults -> 'currency'), 'string') = 'string'
                       AND coalesce(jsonb_typeof(defaults -> 'require_sku_match'), 'boolean') = 'boolean'
                       AND (defaults -> 'priority' IS NULL
                            OR (jsonb_typeof(defaults -> 'priority') = 'number'
                                AND (defaults ->> 'priority') ~ '^-?[0-9]{1,9}$'))
                       AND (defaults -> 'max_payload_bytes' IS NULL
                            OR (jsonb_typeof(defaults -> 'max_payload_bytes') = 'number'
                                AND (defaults ->> 'max_payload_bytes') ~ '^[0-9]{1,9}$'))),
    is_active      boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE orders.webhooks IS
    'Shop webhooks: the endpoint name callers of orders.ingest_webhook use, its secret, mapping and defaults';
COMMENT ON COLUMN orders.webhooks.endpoint IS 'The name a caller passes to orders.ingest_webhook (letters, digits, _ . -)';
COMMENT ON COLUMN orders.webhooks.secret IS
    'Key of the HMAC-SHA256 signature (NULL: unsigned requests accepted); readable by the owner only';
COMMENT ON COLUMN orders.webhooks.field_mapping IS
    'Sections customer, order, items of dotted paths into the payload ("a.b | c.d": first non-empty; "a + b": joined); see orders.webhook_mapping()';
COMMENT ON COLUMN orders.webhooks.defaults IS
    'lifecycle, currency, priority, require_sku_match (boolean), max_payload_bytes (default 1 MB)';
CREATE INDEX webhooks_source_idx ON orders.webhooks (source);
CREATE INDEX webhooks_is_active_idx ON orders.webhooks (is_active);
CREATE TRIGGER set_updated_at BEFORE UPDATE ON orders.webhooks
    FOR EACH ROW EXECUTE FUNCTION orders.set_updated_at();

-- a renamed endpoint takes its orders along: the shop order ids stay unique
-- per webhook (a duplicate after the rename is still a duplicate)
CREATE FUNCTION orders.webhook_endpoint_renamed() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE orders.orders o SET webhook_source = NEW.endpoint
     WHERE o.webhook_source = OLD.endpoint;
    RETURN NULL;
END
$$;
CREATE TRIGGER webhook_endpoint_renamed AFTER UPDATE OF endpoint ON orders.webhooks
    FOR EACH ROW WHEN (OLD.endpoint IS DISTINCT FROM NEW.endpoint)
    EXECUTE FUNCTION orders.webhook_endpoint_renamed();

CREATE TABLE orders.webhook_logs (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    webhook_id        uuid REFERENCES orders.webhooks (id) ON DELETE SET NULL,
    delivery_id       text,
    request_payload   jsonb,
    response_status   integer NOT NULL CHECK (response_status BETWEEN 100 AND 599),
    order_created_id  uuid REFERENCES orders.orders (id) ON DELETE SET NULL,
    error_message     text,
    created_at        timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE orders.webhook_logs IS
    'Every request to orders.ingest_webhook, success or failure: the HTTP status answered, the payload (not kept for 401, 404, 413, or when not JSON)';
COMMENT ON COLUMN orders.webhook_logs.order_created_id IS 'The order the request created, updated or was a duplicate of';
CREATE INDEX webhook_logs_webhook_id_idx ON orders.webhook_logs (webhook_id, delivery_id);
CREATE INDEX webhook_logs_order_created_id_idx ON orders.webhook_logs (order_created_id);
CREATE INDEX webhook_logs_created_at_idx ON orders.webhook_logs (created_at);
CREATE INDEX webhook_logs_response_status_idx ON orders.webhook_logs (response_status);
CREATE INDEX webhook_logs_payload_idx ON orders.webhook_logs USING gin (request_payload jsonb_path_ops)
    WHERE request_payload IS NOT NULL;

-- the shop's order id, unique per webhook (orders.webhook_source holds the
-- webhook's endpoint for orders it created)
CREATE UNIQUE INDEX orders_webhook_external_id_idx ON orders.orders (webhook_source, external_id)
    WHERE external_id IS NOT NULL;

-- webhook_signature_ok — base64 HMAC-SHA256 of the body matches (C).
CREATE FUNCTION orders.webhook_signature_ok(secret text, body text, signature text)
    RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'orders_webhook_signature_ok';

-- webhook_value — the value a mapping spec names in a payload: dotted
-- paths ("shipping_address.city", "line_items.0.sku"); "a | b": the first
-- non-empty; "a + b": the non-empty parts joined by a space.  NULL when
-- nothing is there (C, src/webhook_mapping.c).
CREATE FUNCTION orders.webhook_value(doc jsonb, spec text)
    RETURNS text
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'orders_webhook_value';

-- webhook_mapping — the ready field_mapping of a platform ('shopify',
-- 'woocommerce'); 22023 for another.
CREATE FUNCTION orders.webhook_mapping(platform text)
    RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    CASE platform
    WHEN 'shopify' THEN
        RETURN '{
          "customer": {"name": "customer.first_name + customer.last_name | shipping_address.name | billing_address.name",
                       "email": "email | contact_email | customer.email",
                       "phone": "phone | customer.phone | shipping_address.phone | billing_address.phone",
                       "address": "shipping_address.address1 + shipping_address.address2",
                       "city": "shipping_address.city",
                       "postal_code": "shipping_address.zip"},
          "order": {"external_id": "id", "order_number": "name", "currency": "currency",
                    "total": "total_price", "delivery_fee": "total_shipping_price_set.shop_money.amount",
                    "notes": "note", "updated_at": "updated_at", "items": "line_items"},
          "items": {"sku": "sku", "name": "name | title", "quantity": "quantity", "price": "price"}
        }'::jsonb;
    WHEN 'woocommerce' THEN
        RETURN '{
          "customer": {"name": "billing.first_name + billing.last_name | shipping.first_name + shipping.last_name",
                       "email": "billing.email",
                       "phone": "billing.phone | shipping.phone",
                       "address": "shipping.address_1 + shipping.address_2 | billing.address_1 + billing.address_2",
                       "city": "shipping.city | billing.city",
                       "postal_code": "shipping.postcode | billing.postcode"},
          "order": {"external_id": "id", "order_number": "number", "currency": "currency",
                    "total": "total", "delivery_fee": "shipping_total",
                    "notes": "customer_note", "updated_at": "date_modified_gmt", "items": "line_items"},
          "items": {"sku": "sku", "name": "name", "quantity": "quantity", "price": "subtotal / quantity"}
        }'::jsonb;
    ELSE
        RAISE EXCEPTION 'no ready webhook mapping for platform "%"', left(platform, 64)
            USING ERRCODE = '22023', HINT = 'Ready mappings: shopify, woocommerce; write field_mapping yourself for others.';
    END CASE;
END
$$;

-- webhook_amount — an amount of a payload: a number or a numeric string,
-- or "a / b" (WooCommerce's line subtotal over quantity), rounded to cents
-- (C, src/webhook_mapping.c); 22P02 for a value that is not a number.
CREATE FUNCTION orders.webhook_amount(doc jsonb, spec text)
    RETURNS numeric
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'orders_webhook_amount';

---------------------------------------------------------------------------
-- webhook_ingest — the one implementation behind both entry points
-- (ingest_webhook, ingest_webhook_body), which run it as the owner: the
-- caller needs EXECUTE on an entry point only.  "doc" is the body parsed
-- (NULL: parse it here, a malformed body is logged).  Order of work:
--   endpoint (404) → size (413) → signature (401) → JSON (400) →
--   one advisory lock per shop order (or delivery) of this webhook, so two
--   deliveries of one order never both pass → duplicate by delivery id or
--   shop order id (200, nothing created; an orders/updated payload updates,
--   never moves status) → customer (by phone, else email, else created;
--   an advisory lock per phone/email) → order → items (by SKU: variant,
--   then product) — inside one subtransaction, so a payload that cannot
--   be mapped (422) leaves only its log row.
---------------------------------------------------------------------------
CREATE FUNCTION orders.webhook_ingest(endpoint text, body text, doc jsonb, signature text,
                                      delivery_id text, topic text)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
<<ingest>>
DECLARE
    headers jsonb;
    w orders.webhooks%ROWTYPE;
    m jsonb;
    d jsonb;
    max_bytes bigint;
    ext_id text;
    known uuid;
    result_status text;
    http integer;
    code text;
    err text;
    order_id uuid;
    customer_id uuid;
    c_phone text;
    c_email text;
    items jsonb;
    resolved jsonb;
    item_count integer;
    matched integer;
    items_sum numeric;
    fee numeric;
    total numeric;
    incoming_at text;
    stored_at text;
    log_id uuid;
BEGIN
    -- the locks below serialise deliveries of one order; a transaction
    -- snapshot taken before them would not see the delivery it waited for
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'orders.ingest_webhook must run at READ COMMITTED isolation'
            USING ERRCODE = '25000',
                  DETAIL = 'A transaction snapshot would not see the delivery of the same order it waited for.';
    END IF;
    -- through PostgREST, signature, delivery id and topic may come as headers
    headers := coalesce(nullif(current_setting('request.headers', true), ''), '{}')::jsonb;
    signature := coalesce(nullif(signature, ''), headers ->> 'x-shopify-hmac-sha256', headers ->> 'x-wc-webhook-signature');
    delivery_id := left(coalesce(nullif(delivery_id, ''), headers ->> 'x-shopify-webhook-id',
                                 headers ->> 'x-wc-webhook-delivery-id'), 255);
    topic := coalesce(nullif(topic, ''), headers ->> 'x-shopify-topic', headers ->> 'x-wc-webhook-topic');

    -- FOR KEY SHARE: a rename of the endpoint waits for the deliveries under way
    SELECT * INTO w FROM orders.webhooks wh WHERE wh.endpoint = webhook_ingest.endpoint AND wh.is_active FOR KEY SHARE;
    max_bytes := CASE WHEN w.id IS NULL THEN 65536
                      ELSE coalesce((w.defaults ->> 'max_payload_bytes')::bigint, 1048576) END;
    IF w.id IS NULL THEN
        http := 404; code := 'OR090';
        err := format('no active webhook with endpoint "%s"', left(endpoint, 64));
    ELSIF body IS NULL THEN
        http := 400; code := 'OR094';
        err := format('the request to webhook "%s" has no payload', w.endpoint);
    ELSIF octet_length(body) > max_bytes THEN
        http := 413; code := 'OR093';
        err := format('payload of %s bytes is larger than the %s bytes webhook "%s" accepts',
                      octet_length(body), max_bytes, w.endpoint);
    ELSIF w.secret IS NOT NULL AND (signature IS NULL OR NOT orders.webhook_signature_ok(w.secret, body, signature)) THEN
        http := 401; code := 'OR091';
        err := CASE WHEN signature IS NULL THEN format('webhook "%s" needs a signature', w.endpoint)
                    ELSE format('the signature does not match the payload for webhook "%s"', w.endpoint) END;
    END IF;
    IF doc IS NULL AND http IS NULL THEN
        BEGIN
            doc := body::jsonb;
        EXCEPTION WHEN invalid_text_representation OR untranslatable_character THEN
            IF http IS NULL THEN
                http := 400; code := 'OR094';
                err := format('the payload for webhook "%s" is not JSON: %s', w.endpoint, left(SQLERRM, 200));
            END IF;
        END;
    END IF;
    IF http IS NULL AND jsonb_typeof(doc) <> 'object' THEN
        http := 400; code := 'OR094';
        err := format('the payload for webhook "%s" is not a JSON object', w.endpoint);
    END IF;

    IF http IS NULL THEN
        m := w.field_mapping;
        d := w.defaults;
        ext_id := left(orders.webhook_value(doc, m -> 'order' ->> 'external_id'), 255);
        IF ext_id IS NOT NULL OR delivery_id IS NOT NULL THEN
            PERFORM pg_advisory_xact_lock(hashtextextended(
                'orders.webhook ' || w.id || ' ' || coalesce('order ' || ext_id, 'delivery ' || delivery_id), 0));
        END IF;
        -- a delivery id alone names the request only when the payload has no
        -- shop order id: the signature does not cover the delivery id, so a
        -- replayed body under another order's future delivery id must not
        -- make that order a "duplicate"
        IF ext_id IS NULL AND delivery_id IS NOT NULL THEN
            SELECT l.order_created_id INTO known
              FROM orders.webhook_logs l
             WHERE l.webhook_id = w.id AND l.delivery_id = webhook_ingest.delivery_id
               AND l.response_status BETWEEN 200 AND 299
             ORDER BY l.created_at LIMIT 1;
            IF FOUND THEN
                result_status := 'duplicate'; http := 200; order_id := known;
            END IF;
        END IF;
        IF http IS NULL AND ext_id IS NOT NULL THEN
            SELECT o.id INTO known FROM orders.orders o
             WHERE o.webhook_source = w.endpoint AND o.external_id = ext_id;
            IF FOUND THEN
                order_id := known; http := 200;
                result_status := CASE WHEN topic ~* 'update' THEN 'updated' ELSE 'duplicate' END;
            END IF;
        END IF;
    END IF;

    IF http IS NULL OR result_status = 'updated' THEN
        BEGIN
            items := CASE WHEN m -> 'order' ->> 'items' IS NULL THEN '[]'
                          ELSE coalesce(doc #> string_to_array(m -> 'order' ->> 'items', '.'), '[]') END;
            IF jsonb_typeof(items) <> 'array' THEN
                RAISE EXCEPTION 'the items of the payload ("%") are not an array', m -> 'order' ->> 'items'
                    USING ERRCODE = 'OR092';
            END IF;
            -- each item resolved once: its values, its variant or product by SKU
            SELECT count(*), count(x.product_id), sum(x.unit_price * x.quantity),
                   coalesce(jsonb_agg(to_jsonb(x) ORDER BY x.ord), '[]')
              INTO item_count, matched, items_sum, resolved
              FROM (SELECT y.sku, left(coalesce(y.name, v.name, p.name, y.sku, 'item'), 500) AS name, y.quantity,
                           coalesce(y.price, v.price, p.price, 0) AS unit_price,
                           coalesce(v.product_id, p.id) AS product_id, v.id AS variant_id, y.ord
                      FROM (SELECT orders.webhook_value(i.value, m -> 'items' ->> 'sku') AS sku,
                                   orders.webhook_value(i.value, m -> 'items' ->> 'name') AS name,
                                   coalesce(orders.webhook_value(i.value, m -> 'items' ->> 'quantity')::integer, 1) AS quantity,
                                   orders.webhook_amount(i.value, m -> 'items' ->> 'price') AS price,
                                   i.ordinality AS ord
                              FROM jsonb_array_elements(items) WITH ORDINALITY i) y
                      LEFT JOIN orders.product_variants v ON v.sku = y.sku
                      LEFT JOIN orders.products p ON v.id IS NULL AND p.sku = y.sku) x;
            IF matched < item_count AND coalesce((d ->> 'require_sku_match')::boolean, false) THEN
                RAISE EXCEPTION '% of % items of the payload have no product with their SKU', item_count - matched, item_count
                    USING ERRCODE = 'OR095', HINT = 'Create the products (or variants) with these SKUs, or set require_sku_match to false.';
            END IF;
            fee := coalesce(orders.webhook_amount(doc, m -> 'order' ->> 'delivery_fee'), 0);
            total := orders.webhook_amount(doc, m -> 'order' ->> 'total');

            IF result_status = 'updated' THEN
                incoming_at := orders.webhook_value(doc, m -> 'order' ->> 'updated_at');
                SELECT o.metadata -> 'webhook' ->> 'updated_at' INTO stored_at FROM orders.orders o WHERE o.id = order_id FOR UPDATE;
                IF incoming_at IS NOT NULL AND stored_at IS NOT NULL AND incoming_at::timestamptz <= stored_at::timestamptz THEN
                    result_status := 'stale';		-- an older update delivered late: nothing changes
                ELSE
                    UPDATE orders.orders o
                       SET customer_notes = orders.webhook_value(doc, m -> 'order' ->> 'notes'),
                           delivery_address = coalesce(orders.webhook_value(doc, m -> 'customer' ->> 'address'), o.delivery_address),
                           delivery_area = coalesce(orders.webhook_value(doc, m -> 'customer' ->> 'city'), o.delivery_area),
                           metadata = CASE WHEN incoming_at IS NULL THEN o.metadata
                                           ELSE o.metadata || jsonb_build_object('webhook',
                                                    coalesce(o.metadata -> 'webhook', '{}') || jsonb_build_object('updated_at', incoming_at)) END
                     WHERE o.id = order_id;
                    -- items and amounts follow the shop only before the order leaves its initial status
                    IF EXISTS (SELECT 1 FROM orders.orders o JOIN orders.lifecycles l ON l.name = o.lifecycle
                                WHERE o.id = order_id AND o.status = l.initial_status) THEN
                        DELETE FROM orders.order_items it WHERE it.order_id = ingest.order_id;
                        PERFORM orders.webhook_insert_items(order_id, resolved);
                        UPDATE orders.orders o SET delivery_fee = fee WHERE o.id = order_id;
                        IF total IS NOT NULL THEN
                            UPDATE orders.orders o SET total_amount = total WHERE o.id = order_id;
                        END IF;
                    END IF;
                END IF;
            ELSE
                c_phone := left(orders.webhook_value(doc, m -> 'customer' ->> 'phone'), 64);
                c_email := left(lower(orders.webhook_value(doc, m -> 'customer' ->> 'email')), 255);
                IF c_phone IS NULL AND c_email IS NULL THEN
                    RAISE EXCEPTION 'the payload has neither a phone nor an email of the customer'
                        USING ERRCODE = 'OR092', HINT = 'Check the customer section of the webhook''s field_mapping.';
                END IF;
                -- one customer per phone and per email, also when new orders of a new
                -- customer race: a lock per key the lookup uses, the phone's first
                IF c_phone IS NOT NULL THEN
                    PERFORM pg_advisory_xact_lock(hashtextextended('orders.customer phone ' || c_phone, 0));
                END IF;
                IF c_email IS NOT NULL THEN
                    PERFORM pg_advisory_xact_lock(hashtextextended('orders.customer email ' || c_email, 0));
                END IF;
                IF c_phone IS NOT NULL THEN
                    SELECT c.id INTO customer_id FROM orders.customers c WHERE c.phone = c_phone ORDER BY c.created_at, c.id LIMIT 1;
                END IF;
                IF customer_id IS NULL AND c_email IS NOT NULL THEN
                    SELECT c.id INTO customer_id FROM orders.customers c WHERE c.email = c_email ORDER BY c.created_at, c.id LIMIT 1;
                END IF;
                IF customer_id IS NULL THEN
                    INSERT INTO orders.customers (full_name, email, phone, address, city, postal_code)
                    VALUES (left(coalesce(orders.webhook_value(doc, m -> 'customer' ->> 'name'), c_email, c_phone), 200),
                            c_email, c_phone,
                            orders.webhook_value(doc, m -> 'customer' ->> 'address'),
                            orders.webhook_value(doc, m -> 'customer' ->> 'city'),
                            orders.webhook_value(doc, m -> 'customer' ->> 'postal_code'))
                    RETURNING id INTO customer_id;
                END IF;
                INSERT INTO orders.orders (customer_id, lifecycle, priority, currency, delivery_fee, adjustment,
                                           customer_notes, delivery_address, delivery_area,
                                           source, webhook_source, external_id, metadata)
                VALUES (customer_id, coalesce(d ->> 'lifecycle', 'cod'), coalesce((d ->> 'priority')::integer, 0),
                        upper(coalesce(orders.webhook_value(doc, m -> 'order' ->> 'currency'), d ->> 'currency', 'USD')),
                        fee, coalesce(total - coalesce(items_sum, 0) - fee, 0),
                        orders.webhook_value(doc, m -> 'order' ->> 'notes'),
                        orders.webhook_value(doc, m -> 'customer' ->> 'address'),
                        orders.webhook_value(doc, m -> 'customer' ->> 'city'),
                        'webhook', w.endpoint, ext_id,
                        jsonb_build_object('webhook', jsonb_strip_nulls(jsonb_build_object(
                            'source', w.source,
                            'order_number', orders.webhook_value(doc, m -> 'order' ->> 'order_number'),
                            'updated_at', orders.webhook_value(doc, m -> 'order' ->> 'updated_at')))))
                RETURNING id INTO order_id;
                PERFORM orders.webhook_insert_items(order_id, resolved);
                result_status := 'created'; http := 201;
            END IF;
        EXCEPTION
            WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, err = MESSAGE_TEXT;
                http := CASE WHEN code IN ('40001', '40P01', '55P03') THEN 503
                             WHEN code LIKE '22%' OR code LIKE '23%' OR code LIKE 'OR%' THEN 422
                             ELSE 500 END;
                err := format('webhook "%s": %s', w.endpoint, left(err, 500));
                result_status := NULL; order_id := NULL;
        END;
    END IF;

    INSERT INTO orders.webhook_logs (webhook_id, delivery_id, request_payload, response_status, order_created_id, error_message)
    VALUES (w.id, delivery_id, CASE WHEN http NOT IN (401, 404, 413) THEN doc END, http, order_id, err)
    RETURNING id INTO log_id;
    -- webhook workflows (sql/schema/99_workflows.sql) run with the order
    IF result_status IN ('created', 'updated') THEN
        PERFORM orders.fire_webhook_workflows(w.id, order_id,
                                              CASE result_status WHEN 'created' THEN 'order.created' ELSE 'order.updated' END,
                                              log_id);
    END IF;
    PERFORM set_config('response.status', http::text, true);
    RETURN jsonb_strip_nulls(jsonb_build_object(
        'status', coalesce(result_status, 'rejected'), 'http_status', http, 'order_id', order_id,
        'log_id', log_id, 'code', CASE WHEN http >= 300 THEN code END, 'error', err));
END
$$;

-- webhook_insert_items — the resolved items of a payload (webhook_ingest
-- maps and matches them) as rows of order_items, in the payload's order.
CREATE FUNCTION orders.webhook_insert_items(order_id uuid, resolved jsonb)
    RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO orders.order_items (order_id, sku, name, quantity, unit_price, product_id, variant_id)
    SELECT webhook_insert_items.order_id, r.sku, r.name, r.quantity, r.unit_price, r.product_id, r.variant_id
      FROM jsonb_to_recordset(resolved) AS r(sku text, name text, quantity integer, unit_price numeric,
                                             product_id uuid, variant_id uuid, ord bigint)
     ORDER BY r.ord;
END
$$;

-- ingest_webhook — a shop's order webhook in, as received (json keeps the
-- bytes the signature covers).  Result: {"status": created | duplicate |
-- updated | stale | rejected, "http_status", "order_id", "log_id", "code",
-- "error"}; response.status carries the HTTP status for PostgREST.
CREATE FUNCTION orders.ingest_webhook(endpoint text, payload json, signature text DEFAULT NULL,
                                      delivery_id text DEFAULT NULL, topic text DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    RETURN orders.webhook_ingest(endpoint, payload::text, payload::jsonb, signature, delivery_id, topic);
COMMENT ON FUNCTION orders.ingest_webhook(text, json, text, text, text) IS
    'A shop''s order webhook becomes a customer, an order and its items: verified, exactly once, logged (doc/webhooks.md)';

-- ingest_webhook_body — the same for a body that may not be JSON (an edge
-- function or worker passing bytes on): a malformed body is logged (400).
CREATE FUNCTION orders.ingest_webhook_body(endpoint text, body text, signature text DEFAULT NULL,
                                           delivery_id text DEFAULT NULL, topic text DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    RETURN orders.webhook_ingest(endpoint, body, NULL, signature, delivery_id, topic);
COMMENT ON FUNCTION orders.ingest_webhook_body(text, text, text, text, text) IS
    'orders.ingest_webhook for a body that may not be JSON: the same, and a malformed body is logged (400)';

-- purge_webhook_logs — delete log rows older than "older_than"; the number deleted.
CREATE FUNCTION orders.purge_webhook_logs(older_than interval DEFAULT '90 days')
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    IF older_than IS NULL THEN
        RAISE EXCEPTION 'orders.purge_webhook_logs: older_than must not be NULL' USING ERRCODE = '22004';
    ELSIF older_than < interval '0' THEN
        RAISE EXCEPTION 'orders.purge_webhook_logs: older_than must not be negative (%)', older_than
            USING ERRCODE = '22023';
    END IF;
    DELETE FROM orders.webhook_logs l WHERE l.created_at < now() - older_than;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

SELECT pg_catalog.pg_extension_config_dump('orders.webhooks', '');
SELECT pg_catalog.pg_extension_config_dump('orders.webhook_logs', '');

-- owner only: no API role reads secrets or logs (row level security on,
-- no policy); callers need EXECUTE on the entry points alone
ALTER TABLE orders.webhooks ENABLE ROW LEVEL SECURITY;
ALTER TABLE orders.webhook_logs ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON orders.webhooks, orders.webhook_logs FROM PUBLIC;
REVOKE ALL ON FUNCTION orders.webhook_signature_ok(text, text, text), orders.webhook_endpoint_renamed(), orders.webhook_insert_items(uuid, jsonb),
                       orders.webhook_ingest(text, text, jsonb, text, text, text),
                       orders.purge_webhook_logs(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orders.ingest_webhook(text, json, text, text, text),
                          orders.ingest_webhook_body(text, text, text, text, text),
                          orders.webhook_mapping(text), orders.webhook_value(jsonb, text),
                          orders.webhook_amount(jsonb, text) TO PUBLIC;

---------------------------------------------------------------------------
-- The activity log (issue 13, seed 004; doc/activity.md): who changed what.
-- A C row trigger (src/activity.c) writes one row per inserted, updated or
-- deleted row of a tracked table, with only the changed columns, the actor
-- (JWT sub or role) and their staff id; as the owner, so nobody forges a
-- row.  Tracked: orders, customers, products, staff, webhooks; any table
-- with orders.track_activity(regclass).
---------------------------------------------------------------------------

CREATE TABLE orders.activity_logs (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid REFERENCES orders.staff (id) ON DELETE SET NULL,
    actor        text NOT NULL,
    action       text NOT NULL CHECK (action IN ('created', 'updated', 'deleted')),
    entity_type  text NOT NULL,
    entity_id    text,
    details      orders.json_object NOT NULL DEFAULT '{}',
    ip_address   text,
    -- the clock, not the transaction's start: a transaction's changes in order
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
COMMENT ON TABLE orders.activity_logs IS
    'Who changed what (seed 004): one row per changed row of a tracked table, written by orders.track_changes as the owner';
COMMENT ON COLUMN orders.activity_logs.details IS '{"changes": {column: {"old": …, "new": …}}}, the changed columns only (updated_at left out)';
COMMENT ON COLUMN orders.activity_logs.ip_address IS
    'The client address PostgREST saw (first of X-Forwarded-For), when the caller''s JWT claims are believed';
-- Every status change writes here, so few and cheap indexes: a user's and
-- an entity's timelines (btree), time ranges by BRIN (rows arrive in time
-- order); the seed's index on action alone is left out (three values: filter
-- it within a time range or an entity).
CREATE INDEX activity_logs_user_id_idx ON orders.activity_logs (user_id, created_at);
CREATE INDEX activity_logs_entity_idx ON orders.activity_logs (entity_type, entity_id);
CREATE INDEX activity_logs_created_at_idx ON orders.activity_logs USING brin (created_at);

CREATE FUNCTION orders.track_changes() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_track_changes';
COMMENT ON FUNCTION orders.track_changes() IS
    'AFTER INSERT OR UPDATE OR DELETE row trigger: one orders.activity_logs row per changed row';

-- track_activity — log the changes of "tbl" (idempotent); untrack_activity
-- stops it.  Owner only.
CREATE FUNCTION orders.track_activity(tbl regclass)
    RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'orders.track_activity: tbl must not be NULL' USING ERRCODE = '22004';
    ELSIF (SELECT c.relkind FROM pg_class c WHERE c.oid = tbl) NOT IN ('r', 'p') THEN
        RAISE EXCEPTION 'orders.track_activity: % is not a table', tbl USING ERRCODE = '42809';
    ELSIF NOT EXISTS (SELECT FROM pg_trigger t WHERE t.tgrelid = tbl AND t.tgname = 'orders_activity') THEN
        EXECUTE format('CREATE TRIGGER orders_activity AFTER INSERT OR UPDATE OR DELETE ON %s
                        FOR EACH ROW EXECUTE FUNCTION orders.track_changes()', tbl);
    END IF;
END
$$;
CREATE FUNCTION orders.untrack_activity(tbl regclass)
    RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'orders.untrack_activity: tbl must not be NULL' USING ERRCODE = '22004';
    END IF;
    EXECUTE format('DROP TRIGGER IF EXISTS orders_activity ON %s', tbl);
END
$$;

-- purge_activity_logs — delete rows older than "older_than"; the number deleted.
CREATE FUNCTION orders.purge_activity_logs(older_than interval DEFAULT '365 days')
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    IF older_than IS NULL THEN
        RAISE EXCEPTION 'orders.purge_activity_logs: older_than must not be NULL' USING ERRCODE = '22004';
    ELSIF older_than < interval '0' THEN
        RAISE EXCEPTION 'orders.purge_activity_logs: older_than must not be negative (%)', older_than USING ERRCODE = '22023';
    END IF;
    DELETE FROM orders.activity_logs l WHERE l.created_at < now() - older_than;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

CREATE TRIGGER orders_activity AFTER INSERT OR UPDATE OR DELETE ON orders.orders
    FOR EACH ROW EXECUTE FUNCTION orders.track_changes();
CREATE TRIGGER orders_activity AFTER INSERT OR UPDATE OR DELETE ON orders.customers
    FOR EACH ROW EXECUTE FUNCTION orders.track_changes();
CREATE TRIGGER orders_activity AFTER INSERT OR UPDATE OR DELETE ON orders.products
    FOR EACH ROW EXECUTE FUNCTION orders.track_changes();
CREATE TRIGGER orders_activity AFTER INSERT OR UPDATE OR DELETE ON orders.staff
    FOR EACH ROW EXECUTE FUNCTION orders.track_changes();
CREATE TRIGGER orders_activity AFTER INSERT OR UPDATE OR DELETE ON orders.webhooks
    FOR EACH ROW EXECUTE FUNCTION orders.track_changes();

SELECT pg_catalog.pg_extension_config_dump('orders.activity_logs', '');
-- owner only: nobody but the trigger writes, admins read through the owner's tools
ALTER TABLE orders.activity_logs ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON orders.activity_logs FROM PUBLIC;
REVOKE ALL ON FUNCTION orders.track_changes(), orders.track_activity(regclass), orders.untrack_activity(regclass),
                       orders.purge_activity_logs(interval) FROM PUBLIC;

---------------------------------------------------------------------------
-- Staff notifications (issue 13, seed 004; doc/notifications.md): rows for
-- one staff member each, written by the extension's owner (workflows, the
-- DBA's jobs); a staff member reads, marks read and deletes only their own
-- (row level security on user_id = orders.current_staff_id()).
---------------------------------------------------------------------------

CREATE TABLE orders.notifications (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL REFERENCES orders.staff (id) ON DELETE CASCADE,
    type        text NOT NULL CHECK (type IN ('order', 'delivery', 'system', 'workflow', 'alert')),
    title       orders.label NOT NULL,
    message     text,
    data        orders.json_object NOT NULL DEFAULT '{}',
    is_read     boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE orders.notifications IS
    'Notifications of staff members (seed 004): each reads and marks only their own';
-- a staff member's list, newest first; the unread count and list
CREATE INDEX notifications_user_idx ON orders.notifications (user_id, created_at DESC);
CREATE INDEX notifications_unread_idx ON orders.notifications (user_id, created_at DESC) WHERE NOT is_read;

ALTER TABLE orders.notifications ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON orders.notifications
    USING (user_id = (SELECT orders.current_staff_id()));

-- unread_notifications — the caller's unread notifications, newest first.
CREATE FUNCTION orders.unread_notifications()
    RETURNS SETOF orders.notifications
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT n.* FROM orders.notifications n
     WHERE n.user_id = orders.current_staff_id() AND NOT n.is_read
     ORDER BY n.created_at DESC, n.id;
END;

-- mark_notifications_read — mark the caller's notifications read: those of
-- "ids", or all (NULL); the number marked.  Ids of others' (or unknown)
-- notifications mark nothing.  42501 for a caller who is no staff member.
CREATE FUNCTION orders.mark_notifications_read(ids uuid[] DEFAULT NULL)
    RETURNS integer
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    me uuid := orders.current_staff_id();
    n integer;
BEGIN
    IF me IS NULL THEN
        RAISE EXCEPTION 'only staff members have notifications'
            USING ERRCODE = '42501', HINT = 'Log in with an account that orders.staff.account_id names.';
    END IF;
    UPDATE orders.notifications x SET is_read = true
     WHERE x.user_id = me AND NOT x.is_read AND (ids IS NULL OR x.id = ANY (ids));
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- announce_notification — AFTER INSERT: NOTIFY orders_notifications with
-- {"id", "user_id", "type"} (never the title or message: any session may
-- LISTEN; the listener reads the row through its own policies).
CREATE FUNCTION orders.announce_notification() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_notify('orders_notifications',
                      json_build_object('id', NEW.id, 'user_id', NEW.user_id, 'type', NEW.type)::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER announce_notification AFTER INSERT ON orders.notifications
    FOR EACH ROW EXECUTE FUNCTION orders.announce_notification();

SELECT pg_catalog.pg_extension_config_dump('orders.notifications', '');
REVOKE ALL ON orders.notifications FROM PUBLIC;
REVOKE ALL ON FUNCTION orders.announce_notification() FROM PUBLIC;

---------------------------------------------------------------------------
-- The outbox (issue 13, first part; doc/outbox.md): what must leave the
-- database — an SMS, an e-mail, an HTTP call — is written as a row in the
-- same transaction as the change that causes it, and workers outside claim
-- it (FOR UPDATE SKIP LOCKED, with a lease), do it and complete it.
-- Delivery is at least once: a worker that crashes after sending but before
-- completing leaves the message to come back after its lease; receivers
-- deduplicate on idempotency_key, which stays the same across retries.
---------------------------------------------------------------------------

CREATE TABLE orders.outbox (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    kind             text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_.-]{0,62}$'),
    payload          orders.json_object NOT NULL DEFAULT '{}',
    idempotency_key  text NOT NULL UNIQUE DEFAULT gen_random_uuid()::text
                     CHECK (idempotency_key <> '' AND length(idempotency_key) <= 255),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts     integer NOT NULL DEFAULT 10 CHECK (max_attempts BETWEEN 1 AND 1000),
    run_after        timestamptz NOT NULL DEFAULT now(),
    locked_by        text,
    locked_until     timestamptz,
    last_error       text,
    done_at          timestamptz,
    dead_at          timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT outbox_done_or_dead CHECK (done_at IS NULL OR dead_at IS NULL)
);
COMMENT ON TABLE orders.outbox IS
    'Messages for the outside world (SMS, e-mail, HTTP), claimed by workers with orders.claim_outbox, at least once';
COMMENT ON COLUMN orders.outbox.idempotency_key IS
    'Stable across retries: the receiver deduplicates on it; enqueueing the same key twice keeps one message';
COMMENT ON COLUMN orders.outbox.attempts IS 'Claims so far (a claim counts as an attempt, also when the worker crashes)';
COMMENT ON COLUMN orders.outbox.locked_until IS 'End of the current claim''s lease; afterwards the message may be claimed again';
-- the claim's scan: pending messages in the order they become due
CREATE INDEX outbox_pending_idx ON orders.outbox (run_after, id) WHERE done_at IS NULL AND dead_at IS NULL;
-- the claim's first pass: held messages whose lease ran out
CREATE INDEX outbox_held_idx ON orders.outbox (locked_until)
    WHERE done_at IS NULL AND dead_at IS NULL AND locked_until IS NOT NULL;

-- enqueue_outbox — one message; the same idempotency key again returns the
-- first message's id and changes nothing.
CREATE FUNCTION orders.enqueue_outbox(kind text, payload jsonb DEFAULT '{}', idempotency_key text DEFAULT NULL,
                                      run_after timestamptz DEFAULT NULL, max_attempts integer DEFAULT 10)
    RETURNS uuid
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_id uuid;
BEGIN
    INSERT INTO orders.outbox (kind, payload, idempotency_key, run_after, max_attempts)
    VALUES (kind, coalesce(payload, '{}'), coalesce(idempotency_key, gen_random_uuid()::text),
            coalesce(run_after, now()), max_attempts)
    ON CONFLICT ON CONSTRAINT outbox_idempotency_key_key DO NOTHING
    RETURNING id INTO new_id;
    IF new_id IS NULL THEN
        SELECT o.id INTO new_id FROM orders.outbox o WHERE o.idempotency_key = enqueue_outbox.idempotency_key;
    END IF;
    RETURN new_id;
END
$$;

-- claim_outbox — up to "batch" due messages for "worker", each leased for
-- "lease" and its attempts counted; messages another transaction is
-- claiming are skipped, never waited for or handed out twice.  A message
-- whose lease ran out (its worker crashed) is due again; one that ran out
-- of attempts that way is dead instead.
CREATE FUNCTION orders.claim_outbox(worker text, batch integer DEFAULT 10, lease interval DEFAULT '1 min')
    RETURNS SETOF orders.outbox
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF worker IS NULL OR worker = '' OR length(worker) > 200 THEN
        RAISE EXCEPTION 'orders.claim_outbox: worker must name the worker (1 to 200 characters)' USING ERRCODE = '22023';
    ELSIF batch IS NULL OR batch NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'orders.claim_outbox: batch must be between 1 and 1000, not %', batch USING ERRCODE = '22023';
    ELSIF lease IS NULL OR lease < interval '1 second' OR lease > interval '1 day' THEN
        RAISE EXCEPTION 'orders.claim_outbox: lease must be between 1 second and 1 day, not %', lease USING ERRCODE = '22023';
    END IF;
    -- a crashed worker's last attempt: dead, not claimed again
    UPDATE orders.outbox o
       SET dead_at = now(), locked_until = NULL,
           last_error = coalesce(o.last_error || '; ', '') || 'lease of ' || o.locked_by || ' ran out on the last attempt'
     WHERE o.id IN (SELECT d.id FROM orders.outbox d
                     WHERE d.done_at IS NULL AND d.dead_at IS NULL AND d.locked_until < clock_timestamp()
                       AND d.attempts >= d.max_attempts
                     FOR UPDATE SKIP LOCKED);
    RETURN QUERY
    UPDATE orders.outbox o
       SET locked_by = worker, locked_until = clock_timestamp() + lease, attempts = o.attempts + 1
      FROM (SELECT c.id FROM orders.outbox c
             WHERE c.done_at IS NULL AND c.dead_at IS NULL AND c.run_after <= clock_timestamp()
               AND (c.locked_until IS NULL OR c.locked_until < clock_timestamp())
               AND c.attempts < c.max_attempts
             ORDER BY c.run_after, c.id
             LIMIT batch
             FOR UPDATE SKIP LOCKED) claimed
     WHERE o.id = claimed.id
    RETURNING o.*;
END
$$;

-- complete_outbox — the worker holding message "id" reports: done (error
-- NULL), or failed: tried again after 2^attempts seconds (at most an hour),
-- dead after max_attempts.  Returns done, retry or dead.  Refused: an
-- unknown message (OR100); one that is not held within a lease — done,
-- dead, never claimed since its last attempt, its lease ran out — or, when
-- held by another worker (OR101); a call without "worker" (22023).  The
-- completing worker's retried "done" answers done again.  Leases are
-- measured by the clock, not the transaction's start.
CREATE FUNCTION orders.complete_outbox(id uuid, error text DEFAULT NULL, worker text DEFAULT NULL)
    RETURNS text
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m orders.outbox%ROWTYPE;
BEGIN
    IF worker IS NULL OR worker = '' THEN
        RAISE EXCEPTION 'orders.complete_outbox: worker must name the worker that claimed the message'
            USING ERRCODE = '22023',
                  HINT = 'Pass the name given to orders.claim_outbox: without it a late worker could complete another''s claim.';
    END IF;
    SELECT * INTO m FROM orders.outbox o WHERE o.id = complete_outbox.id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'outbox message % does not exist', complete_outbox.id
            USING ERRCODE = 'OR100';
    ELSIF m.done_at IS NOT NULL AND error IS NULL AND worker = m.locked_by THEN
        RETURN 'done';			-- the completing worker's retried call
    ELSIF m.done_at IS NOT NULL OR m.dead_at IS NOT NULL OR m.locked_until IS NULL
          OR m.locked_until < clock_timestamp() OR m.locked_by IS DISTINCT FROM worker THEN
        RAISE EXCEPTION 'outbox message % is not held by %', complete_outbox.id,
                        'worker ' || quote_literal(left(worker, 64))
            USING ERRCODE = 'OR101',
                  DETAIL = CASE WHEN m.done_at IS NOT NULL THEN 'It is done.'
                                WHEN m.dead_at IS NOT NULL THEN 'It is dead.'
                                WHEN m.locked_until IS NULL THEN 'Nobody has claimed it since its last attempt.'
                                ELSE 'Its lease ran out or another worker holds it; it will be (or was) tried again.' END,
                  HINT = 'Claim messages with orders.claim_outbox and complete them within the lease.';
    END IF;
    IF error IS NULL THEN
        -- locked_by stays: the completing worker (its retried call answers done)
        UPDATE orders.outbox o SET done_at = now(), locked_until = NULL WHERE o.id = m.id;
        RETURN 'done';
    ELSIF m.attempts >= m.max_attempts THEN
        UPDATE orders.outbox o SET dead_at = now(), locked_until = NULL, last_error = left(error, 1000)
         WHERE o.id = m.id;
        RETURN 'dead';
    END IF;
    UPDATE orders.outbox o
       SET run_after = clock_timestamp() + least(interval '1 second' * power(2, least(m.attempts, 12)), interval '1 hour'),
           locked_by = NULL, locked_until = NULL, last_error = left(error, 1000)
     WHERE o.id = m.id;
    RETURN 'retry';
END
$$;

-- revive_outbox — a dead message back to pending, its attempts from 0 again
-- (an operator fixed the cause).  OR100 unknown; OR102 when it is
-- not dead.
CREATE FUNCTION orders.revive_outbox(id uuid)
    RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m orders.outbox%ROWTYPE;
BEGIN
    SELECT * INTO m FROM orders.outbox o WHERE o.id = revive_outbox.id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'outbox message % does not exist', revive_outbox.id USING ERRCODE = 'OR100';
    ELSIF m.dead_at IS NULL THEN
        RAISE EXCEPTION 'outbox message % is not dead', revive_outbox.id
            USING ERRCODE = 'OR102',
                  DETAIL = CASE WHEN m.done_at IS NOT NULL THEN 'It is done.' ELSE 'It is still pending.' END;
    END IF;
    UPDATE orders.outbox o
       SET dead_at = NULL, run_after = now(), attempts = 0, locked_by = NULL
     WHERE o.id = m.id;
END
$$;

-- purge_outbox — delete done and dead messages finished before
-- now() - older_than; the number deleted.  Pending ones stay.
CREATE FUNCTION orders.purge_outbox(older_than interval DEFAULT '30 days')
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    IF older_than IS NULL THEN
        RAISE EXCEPTION 'orders.purge_outbox: older_than must not be NULL' USING ERRCODE = '22004';
    ELSIF older_than < interval '0' THEN
        RAISE EXCEPTION 'orders.purge_outbox: older_than must not be negative (%)', older_than USING ERRCODE = '22023';
    END IF;
    DELETE FROM orders.outbox o WHERE coalesce(o.done_at, o.dead_at) < now() - older_than;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- The messages that gave up, for an operator to look at.
CREATE VIEW orders.outbox_dead WITH (security_invoker = true) AS
SELECT o.id, o.kind, o.idempotency_key, o.attempts, o.last_error, o.dead_at, o.created_at, o.payload
  FROM orders.outbox o
 WHERE o.dead_at IS NOT NULL;

SELECT pg_catalog.pg_extension_config_dump('orders.outbox', '');

-- owner only; a DBA grants the worker role EXECUTE on claim_outbox and
-- complete_outbox, and the role that enqueues EXECUTE on enqueue_outbox
ALTER TABLE orders.outbox ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON orders.outbox, orders.outbox_dead FROM PUBLIC;
REVOKE ALL ON FUNCTION orders.enqueue_outbox(text, jsonb, text, timestamptz, integer),
                       orders.claim_outbox(text, integer, interval),
                       orders.complete_outbox(uuid, text, text), orders.revive_outbox(uuid),
                       orders.purge_outbox(interval) FROM PUBLIC;

---------------------------------------------------------------------------
-- Workflows (issue 13, seed 004; doc/workflows.md): "when an order is
-- delivered and collected and worth at least 100, tag the customer VIP,
-- notify the rep, text the customer" as data.  A workflow names its trigger
-- (order_status, customer_tag, webhook, time_based, manual) with a config
-- and a list of steps (update_customer_tag, send_notification,
-- create_task); both are validated on write.  An execution runs inside the
-- transaction of the change that fired it, as the extension's owner: its
-- row and its in-database effects commit or roll back with that change, and
-- what must leave the database goes to the outbox.  A failing step fails
-- the execution (visible in workflow_executions.error_log) and undoes only
-- its own effects, never the change that fired it.
---------------------------------------------------------------------------

CREATE TABLE orders.workflows (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                orders.label NOT NULL,
    description         text,
    trigger_type        text NOT NULL
                        CHECK (trigger_type IN ('webhook', 'order_status', 'customer_tag', 'time_based', 'manual')),
    trigger_config      orders.json_object NOT NULL DEFAULT '{}',
    workflow_steps      orders.json_array NOT NULL DEFAULT '[]',
    is_active           boolean NOT NULL DEFAULT true,
    created_by_user_id  uuid REFERENCES orders.staff (id) ON DELETE SET NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE orders.workflows IS
    'Automations (seed 004): a trigger and its config, and the steps to run; validated on write';
CREATE INDEX workflows_trigger_type_idx ON orders.workflows (trigger_type) WHERE is_active;
CREATE INDEX workflows_created_by_idx ON orders.workflows (created_by_user_id);
CREATE INDEX workflows_trigger_config_idx ON orders.workflows USING gin (trigger_config jsonb_path_ops);

CREATE TABLE orders.workflow_executions (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workflow_id      uuid NOT NULL REFERENCES orders.workflows (id) ON DELETE CASCADE,
    order_id         uuid REFERENCES orders.orders (id) ON DELETE SET NULL,
    customer_id      uuid REFERENCES orders.customers (id) ON DELETE SET NULL,
    status           text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'completed', 'failed')),
    trigger_event    orders.json_object NOT NULL DEFAULT '{}',
    steps_completed  orders.json_array NOT NULL DEFAULT '[]',
    error_log        orders.json_array NOT NULL DEFAULT '[]',
    started_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz
);
COMMENT ON TABLE orders.workflow_executions IS
    'One row per run of a workflow (seed 004), written as the owner in the transaction of the change that fired it';
COMMENT ON COLUMN orders.workflow_executions.trigger_event IS
    'What fired the run: the status change, the tag added, the webhook delivery, the scheduled minute or the manual call';
CREATE INDEX workflow_executions_workflow_idx ON orders.workflow_executions (workflow_id, started_at DESC);
CREATE INDEX workflow_executions_order_idx ON orders.workflow_executions (order_id) WHERE order_id IS NOT NULL;
CREATE INDEX workflow_executions_customer_idx ON orders.workflow_executions (customer_id) WHERE customer_id IS NOT NULL;
CREATE INDEX workflow_executions_failed_idx ON orders.workflow_executions (started_at DESC) WHERE status = 'failed';
CREATE INDEX workflow_executions_started_idx ON orders.workflow_executions (started_at DESC);
-- a time-based workflow runs once per scheduled minute, however often pg_cron calls
CREATE UNIQUE INDEX workflow_executions_scheduled_idx
    ON orders.workflow_executions (workflow_id, (trigger_event ->> 'scheduled_for'))
    WHERE trigger_event ? 'scheduled_for';

---------------------------------------------------------------------------
-- The fixed grammars: cron schedules and step conditions are parsed, never
-- executed as SQL.
---------------------------------------------------------------------------

-- cron_field_values — the values one field of a five-field cron schedule
-- allows within lo..hi ("*", "n", "a-b", each optionally "/step", joined by
-- commas), or NULL when the field is not of that form or leaves the range.
CREATE FUNCTION orders.cron_field_values(field text, lo integer, hi integer)
    RETURNS integer[]
    LANGUAGE plpgsql IMMUTABLE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    part text;
    m text[];
    a integer;
    b integer;
    step integer;
    vals integer[] := '{}';
BEGIN
    FOREACH part IN ARRAY string_to_array(field, ',') LOOP
        m := regexp_match(part, '^(\*|([0-9]{1,2})(-([0-9]{1,2}))?)(/([0-9]{1,2}))?$');
        IF m IS NULL THEN
            RETURN NULL;
        END IF;
        IF m[1] = '*' THEN
            a := lo; b := hi;
        ELSE
            a := m[2]::integer;
            b := coalesce(m[4]::integer, CASE WHEN m[6] IS NOT NULL THEN hi ELSE a END);
        END IF;
        step := coalesce(m[6]::integer, 1);
        IF a < lo OR b > hi OR a > b OR step < 1 THEN
            RETURN NULL;
        END IF;
        vals := vals || ARRAY(SELECT generate_series(a, b, step));
    END LOOP;
    RETURN vals;
END
$$;

-- schedule_matches — does the five-field cron schedule (minute hour
-- day-of-month month day-of-week, as pg_cron and cron read them: a
-- restricted day of month and day of week match either) match the local
-- time "at"?  NULL for a schedule that is not valid.
CREATE FUNCTION orders.schedule_matches(schedule text, at timestamp)
    RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f text[] := regexp_split_to_array(btrim(schedule), '\s+');
    mi integer[];
    hr integer[];
    dom integer[];
    mon integer[];
    dow integer[];
    day_ok boolean;
BEGIN
    IF array_length(f, 1) IS DISTINCT FROM 5 THEN
        RETURN NULL;
    END IF;
    mi := orders.cron_field_values(f[1], 0, 59);
    hr := orders.cron_field_values(f[2], 0, 23);
    dom := orders.cron_field_values(f[3], 1, 31);
    mon := orders.cron_field_values(f[4], 1, 12);
    dow := orders.cron_field_values(f[5], 0, 7);
    IF mi IS NULL OR hr IS NULL OR dom IS NULL OR mon IS NULL OR dow IS NULL THEN
        RETURN NULL;
    END IF;
    day_ok := CASE
        WHEN f[3] = '*' AND f[5] = '*' THEN true
        WHEN f[3] = '*' THEN extract(dow FROM at)::integer = ANY (dow) OR (extract(dow FROM at) = 0 AND 7 = ANY (dow))
        WHEN f[5] = '*' THEN extract(day FROM at)::integer = ANY (dom)
        ELSE extract(day FROM at)::integer = ANY (dom)
             OR extract(dow FROM at)::integer = ANY (dow) OR (extract(dow FROM at) = 0 AND 7 = ANY (dow))
    END;
    RETURN day_ok AND extract(minute FROM at)::integer = ANY (mi) AND extract(hour FROM at)::integer = ANY (hr)
       AND extract(month FROM at)::integer = ANY (mon);
END
$$;

-- workflow_cron_schedule — the schedule pg_cron runs a time-based workflow's
-- job on (pg_cron reads schedules in GMT): the workflow's minutes of every
-- hour when the time zone is a whole number of hours from UTC all year,
-- else every minute; orders.run_scheduled_workflow then matches the full
-- schedule against the local time, so daylight saving time is honoured.
CREATE FUNCTION orders.workflow_cron_schedule(schedule text, timezone text)
    RETURNS text
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT CASE WHEN bool_and(extract(minute FROM (t AT TIME ZONE timezone) - (t AT TIME ZONE 'UTC')) = 0)
                THEN split_part(btrim(schedule), ' ', 1) || ' * * * *'
                ELSE '* * * * *' END
      FROM generate_series(date_trunc('year', now()), date_trunc('year', now()) + interval '11 months',
                           interval '1 month') AS t;
END;

-- workflow_condition — a step's condition "field comparison literal" over
-- the customer's columns (total_orders >= 10, city = 'Cairo'): parsed into
-- {field, op, value}; refused (OR113) when it is not of that form, names
-- another column, or compares a text column with < or >.
CREATE FUNCTION orders.workflow_condition(condition text)
    RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m text[] := regexp_match(condition,
        '^\s*([a-z_]+)\s*(>=|<=|<>|!=|=|<|>)\s*(-?[0-9]{1,12}(\.[0-9]{1,4})?|''[^'']{0,200}'')\s*$');
    numeric_field boolean;
BEGIN
    IF m IS NULL THEN
        RAISE EXCEPTION 'workflow condition "%" is not "field comparison literal"', left(condition, 64)
            USING ERRCODE = 'OR113',
                  HINT = 'For example total_orders >= 10 or city = ''Cairo''; comparisons: = != < <= > >=.';
    END IF;
    numeric_field := m[1] IN ('total_orders', 'total_spent', 'return_rate', 'returned_orders');
    IF NOT numeric_field AND m[1] NOT IN ('city', 'area', 'postal_code') THEN
        RAISE EXCEPTION 'workflow condition "%": "%" is not a customer field a condition may use', left(condition, 64), m[1]
            USING ERRCODE = 'OR113',
                  HINT = 'Fields: total_orders, total_spent, return_rate, returned_orders, city, area, postal_code.';
    ELSIF numeric_field <> (left(m[3], 1) <> '''') THEN
        RAISE EXCEPTION 'workflow condition "%": % compares with a %', left(condition, 64), m[1],
                        CASE WHEN numeric_field THEN 'text' ELSE 'number' END
            USING ERRCODE = 'OR113';
    ELSIF NOT numeric_field AND m[2] NOT IN ('=', '!=', '<>') THEN
        RAISE EXCEPTION 'workflow condition "%": text fields compare with = or != only', left(condition, 64)
            USING ERRCODE = 'OR113';
    END IF;
    RETURN jsonb_build_object('field', m[1], 'op', CASE m[2] WHEN '<>' THEN '!=' ELSE m[2] END,
                              'value', CASE WHEN numeric_field THEN to_jsonb(m[3]::numeric)
                                            ELSE to_jsonb(substr(m[3], 2, length(m[3]) - 2)) END);
END
$$;

-- workflow_condition_holds — does the customer satisfy the condition?
CREATE FUNCTION orders.workflow_condition_holds(condition text, customer_id uuid)
    RETURNS boolean
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c jsonb := orders.workflow_condition(condition);
    v jsonb;
BEGIN
    SELECT to_jsonb(x) -> (c ->> 'field') INTO v FROM orders.customers x WHERE x.id = customer_id;
    IF v IS NULL OR v = 'null' THEN
        RETURN false;
    ELSIF jsonb_typeof(c -> 'value') = 'number' THEN
        RETURN CASE c ->> 'op'
            WHEN '=' THEN v::numeric = (c ->> 'value')::numeric
            WHEN '!=' THEN v::numeric <> (c ->> 'value')::numeric
            WHEN '<' THEN v::numeric < (c ->> 'value')::numeric
            WHEN '<=' THEN v::numeric <= (c ->> 'value')::numeric
            WHEN '>' THEN v::numeric > (c ->> 'value')::numeric
            ELSE v::numeric >= (c ->> 'value')::numeric END;
    ELSE
        RETURN CASE c ->> 'op' WHEN '=' THEN v #>> '{}' = c ->> 'value' ELSE v #>> '{}' <> c ->> 'value' END;
    END IF;
END
$$;

---------------------------------------------------------------------------
-- Validation on write
---------------------------------------------------------------------------

-- check_workflow_recipient — a recipient of a step: the order's
-- assigned_rep or assigned_agent, a staff role (every active member), a
-- staff id, or (with "customer_ok") the order's customer.
CREATE FUNCTION orders.check_workflow_recipient(recipient jsonb, step_id text, key text, customer_ok boolean)
    RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF jsonb_typeof(recipient) IS DISTINCT FROM 'string'
       OR NOT (recipient #>> '{}' IN ('assigned_rep', 'assigned_agent', 'admin', 'manager', 'customer_rep',
                                      'delivery_agent', 'accountant')
               OR (customer_ok AND recipient #>> '{}' = 'customer')
               OR recipient #>> '{}' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$') THEN
        RAISE EXCEPTION 'workflow step "%": % must name a recipient, not %', step_id, key, coalesce(left(recipient::text, 64), 'nothing')
            USING ERRCODE = 'OR111',
                  HINT = 'assigned_rep, assigned_agent, a staff role (admin, manager, customer_rep, delivery_agent, accountant), a staff id'
                         || CASE WHEN customer_ok THEN ' or customer.' ELSE '.' END;
    END IF;
END
$$;

-- check_workflow_keys — refuse (with "code") keys of "obj" outside "allowed".
CREATE FUNCTION orders.check_workflow_keys(obj jsonb, allowed text[], what text, code text)
    RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    extra text;
BEGIN
    SELECT k INTO extra FROM jsonb_object_keys(obj) k WHERE k <> ALL (allowed) ORDER BY k LIMIT 1;
    IF extra IS NOT NULL THEN
        RAISE EXCEPTION '%: unknown key "%"', what, left(extra, 64)
            USING ERRCODE = code, HINT = 'Keys: ' || array_to_string(allowed, ', ') || '.';
    END IF;
END
$$;

-- check_workflow_trigger — the trigger config of a trigger type (OR110;
-- schedules and time zones OR112).
CREATE FUNCTION orders.check_workflow_trigger(trigger_type text, config jsonb)
    RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    what text := format('workflow trigger config (%s)', trigger_type);
    cond jsonb := config -> 'conditions';
    lifecycles text[];
    s text;
BEGIN
    IF config ? 'type' AND config ->> 'type' IS DISTINCT FROM trigger_type THEN
        RAISE EXCEPTION '%: "type" is %, not the workflow''s trigger_type', what, left(config ->> 'type', 64)
            USING ERRCODE = 'OR110';
    END IF;
    CASE trigger_type
    WHEN 'order_status' THEN
        PERFORM orders.check_workflow_keys(config, '{type,conditions}', what, 'OR110');
        IF jsonb_typeof(cond) IS DISTINCT FROM 'object' OR cond = '{}' THEN
            RAISE EXCEPTION '%: "conditions" must be an object with at least one condition', what
                USING ERRCODE = 'OR110', HINT = 'Conditions: status, payment_status, min_order_value, lifecycle.';
        END IF;
        PERFORM orders.check_workflow_keys(cond, '{status,payment_status,min_order_value,lifecycle}',
                                           what || ' conditions', 'OR110');
        IF cond ? 'lifecycle' THEN
            IF jsonb_typeof(cond -> 'lifecycle') = 'string' THEN
                lifecycles := ARRAY[cond ->> 'lifecycle'];
            ELSIF jsonb_typeof(cond -> 'lifecycle') = 'array' AND jsonb_array_length(cond -> 'lifecycle') > 0
                  AND NOT jsonb_path_exists(cond -> 'lifecycle', '$[*] ? (@.type() != "string")') THEN
                lifecycles := ARRAY(SELECT jsonb_array_elements_text(cond -> 'lifecycle'));
            ELSE
                RAISE EXCEPTION '%: "lifecycle" must be a lifecycle name or a list of them', what USING ERRCODE = 'OR110';
            END IF;
            SELECT l INTO s FROM unnest(lifecycles) l
             WHERE NOT EXISTS (SELECT 1 FROM orders.lifecycles x WHERE x.name = l) LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION '%: lifecycle "%" does not exist', what, left(s, 64) USING ERRCODE = 'OR110';
            END IF;
        END IF;
        IF cond ? 'status' THEN
            IF jsonb_typeof(cond -> 'status') IS DISTINCT FROM 'array' OR jsonb_array_length(cond -> 'status') = 0
               OR jsonb_path_exists(cond -> 'status', '$[*] ? (@.type() != "string")') THEN
                RAISE EXCEPTION '%: "status" must be a non-empty list of statuses', what USING ERRCODE = 'OR110';
            END IF;
            SELECT x INTO s FROM jsonb_array_elements_text(cond -> 'status') x
             WHERE NOT EXISTS (SELECT 1 FROM orders.lifecycle_states st
                                WHERE st.status = x AND (lifecycles IS NULL OR st.lifecycle = ANY (lifecycles)))
             LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION '%: status "%" is no status of %', what, left(s, 64),
                                coalesce('lifecycle ' || array_to_string(lifecycles, ', '), 'any lifecycle')
                    USING ERRCODE = 'OR110';
            END IF;
        END IF;
        IF cond ? 'payment_status' AND (jsonb_typeof(cond -> 'payment_status') IS DISTINCT FROM 'array'
               OR jsonb_array_length(cond -> 'payment_status') = 0
               OR jsonb_path_exists(cond -> 'payment_status',
                                    '$[*] ? (!(@ == "pending" || @ == "collected" || @ == "failed" || @ == "refunded"))')) THEN
            RAISE EXCEPTION '%: "payment_status" must be a non-empty list of pending, collected, failed, refunded', what
                USING ERRCODE = 'OR110';
        END IF;
        IF cond ? 'min_order_value' AND (jsonb_typeof(cond -> 'min_order_value') IS DISTINCT FROM 'number'
               OR (cond ->> 'min_order_value')::numeric < 0) THEN
            RAISE EXCEPTION '%: "min_order_value" must be a number of at least 0', what USING ERRCODE = 'OR110';
        END IF;
    WHEN 'customer_tag' THEN
        PERFORM orders.check_workflow_keys(config, '{type,tag_id}', what, 'OR110');
        IF jsonb_typeof(config -> 'tag_id') IS DISTINCT FROM 'string' OR config ->> 'tag_id' = ''
           OR length(config ->> 'tag_id') > 64 THEN
            RAISE EXCEPTION '%: "tag_id" must name the tag (1 to 64 characters)', what USING ERRCODE = 'OR110';
        END IF;
    WHEN 'webhook' THEN
        PERFORM orders.check_workflow_keys(config, '{type,webhook_id,event_types}', what, 'OR110');
        IF config ? 'webhook_id' AND NOT EXISTS (
               SELECT 1 FROM orders.webhooks h
                WHERE jsonb_typeof(config -> 'webhook_id') = 'string'
                  AND h.id::text = lower(config ->> 'webhook_id')) THEN
            RAISE EXCEPTION '%: "webhook_id" names no webhook', what USING ERRCODE = 'OR110';
        END IF;
        IF config ? 'event_types' AND (jsonb_typeof(config -> 'event_types') IS DISTINCT FROM 'array'
               OR jsonb_array_length(config -> 'event_types') = 0
               OR jsonb_path_exists(config -> 'event_types', '$[*] ? (!(@ == "order.created" || @ == "order.updated"))')) THEN
            RAISE EXCEPTION '%: "event_types" must be a non-empty list of order.created, order.updated', what
                USING ERRCODE = 'OR110';
        END IF;
    WHEN 'time_based' THEN
        PERFORM orders.check_workflow_keys(config, '{type,schedule,timezone}', what, 'OR110');
        IF jsonb_typeof(config -> 'schedule') IS DISTINCT FROM 'string'
           OR orders.schedule_matches(config ->> 'schedule', localtimestamp) IS NULL THEN
            RAISE EXCEPTION '%: "schedule" % is not a five-field cron schedule', what,
                            coalesce(left(config ->> 'schedule', 64), 'missing')
                USING ERRCODE = 'OR112',
                      HINT = 'minute hour day-of-month month day-of-week, each *, n, a-b, optionally /step, joined by commas; for example 0 9 * * 1-5.';
        END IF;
        IF config ? 'timezone' AND (jsonb_typeof(config -> 'timezone') IS DISTINCT FROM 'string'
               OR NOT EXISTS (SELECT 1 FROM pg_timezone_names z WHERE z.name = config ->> 'timezone')) THEN
            RAISE EXCEPTION '%: "timezone" % is not a time zone name', what, left(config ->> 'timezone', 64)
                USING ERRCODE = 'OR112', HINT = 'A name of pg_timezone_names, such as America/New_York or UTC.';
        END IF;
    ELSE        -- manual
        PERFORM orders.check_workflow_keys(config, '{type}', what, 'OR110');
    END CASE;
END
$$;

-- check_workflow_steps — the steps (OR111; conditions OR113): 1 to 50
-- objects {id, type, config, order}, ids unique.
CREATE FUNCTION orders.check_workflow_steps(steps jsonb)
    RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    step jsonb;
    n integer := 0;
    sid text;
    cfg jsonb;
    ids text[] := '{}';
BEGIN
    IF jsonb_array_length(steps) NOT BETWEEN 1 AND 50 THEN
        RAISE EXCEPTION 'workflow_steps must hold 1 to 50 steps, not %', jsonb_array_length(steps) USING ERRCODE = 'OR111';
    END IF;
    FOR step IN SELECT s FROM jsonb_array_elements(steps) s LOOP
        n := n + 1;
        IF jsonb_typeof(step) IS DISTINCT FROM 'object' THEN
            RAISE EXCEPTION 'workflow step % is not an object', n USING ERRCODE = 'OR111';
        END IF;
        sid := coalesce(step ->> 'id', 'step-' || n);
        PERFORM orders.check_workflow_keys(step, '{id,type,config,order}', format('workflow step "%s"', left(sid, 64)), 'OR111');
        IF step ? 'id' AND (jsonb_typeof(step -> 'id') <> 'string' OR sid = '' OR length(sid) > 64) THEN
            RAISE EXCEPTION 'workflow step %: "id" must be a name of 1 to 64 characters', n USING ERRCODE = 'OR111';
        ELSIF sid = ANY (ids) THEN
            RAISE EXCEPTION 'workflow step id "%" is used twice', sid USING ERRCODE = 'OR111';
        ELSIF step ? 'order' AND jsonb_typeof(step -> 'order') <> 'number' THEN
            RAISE EXCEPTION 'workflow step "%": "order" must be a number', sid USING ERRCODE = 'OR111';
        END IF;
        ids := ids || sid;
        cfg := coalesce(step -> 'config', '{}');
        IF jsonb_typeof(cfg) <> 'object' THEN
            RAISE EXCEPTION 'workflow step "%": "config" must be an object', sid USING ERRCODE = 'OR111';
        END IF;
        CASE step ->> 'type'
        WHEN 'update_customer_tag' THEN
            PERFORM orders.check_workflow_keys(cfg, '{tag_id,action,label,color,condition}',
                                               format('workflow step "%s"', sid), 'OR111');
            IF jsonb_typeof(cfg -> 'tag_id') IS DISTINCT FROM 'string' OR cfg ->> 'tag_id' = ''
               OR length(cfg ->> 'tag_id') > 64 THEN
                RAISE EXCEPTION 'workflow step "%": "tag_id" must name the tag (1 to 64 characters)', sid USING ERRCODE = 'OR111';
            ELSIF cfg ? 'action' AND coalesce(cfg ->> 'action', '') NOT IN ('add', 'remove') THEN
                RAISE EXCEPTION 'workflow step "%": "action" must be add or remove', sid USING ERRCODE = 'OR111';
            ELSIF jsonb_path_exists(cfg, '$.label ? (@.type() != "string")')
                  OR jsonb_path_exists(cfg, '$.color ? (@.type() != "string")') THEN
                RAISE EXCEPTION 'workflow step "%": "label" and "color" must be strings', sid USING ERRCODE = 'OR111';
            END IF;
            IF cfg ? 'condition' THEN
                IF jsonb_typeof(cfg -> 'condition') <> 'string' THEN
                    RAISE EXCEPTION 'workflow step "%": "condition" must be a string', sid USING ERRCODE = 'OR113';
                END IF;
                PERFORM orders.workflow_condition(cfg ->> 'condition');
            END IF;
        WHEN 'send_notification' THEN
            PERFORM orders.check_workflow_keys(cfg, '{target,channel,template,title,message,type,url}',
                                               format('workflow step "%s"', sid), 'OR111');
            IF cfg ? 'channel' AND coalesce(cfg ->> 'channel', '') NOT IN ('in_app', 'sms', 'email', 'webhook') THEN
                RAISE EXCEPTION 'workflow step "%": "channel" must be in_app, sms, email or webhook', sid USING ERRCODE = 'OR111';
            ELSIF cfg ->> 'channel' = 'webhook' THEN
                IF coalesce(cfg ->> 'url', '') !~ '^https?://[^\s]{1,2000}$' THEN
                    RAISE EXCEPTION 'workflow step "%": a webhook notification needs "url" (http or https)', sid USING ERRCODE = 'OR111';
                END IF;
            ELSE
                PERFORM orders.check_workflow_recipient(cfg -> 'target', sid, 'target', true);
                IF cfg ->> 'target' = 'customer' AND cfg ->> 'channel' = 'in_app' THEN
                    RAISE EXCEPTION 'workflow step "%": customers have no in-app notifications', sid
                        USING ERRCODE = 'OR111', HINT = 'Use channel sms or email for the customer.';
                END IF;
            END IF;
            IF jsonb_typeof(cfg -> 'template') IS DISTINCT FROM 'string' AND jsonb_typeof(cfg -> 'title') IS DISTINCT FROM 'string' THEN
                RAISE EXCEPTION 'workflow step "%": a notification needs a "template" or a "title"', sid USING ERRCODE = 'OR111';
            ELSIF cfg ? 'type' AND coalesce(cfg ->> 'type', '') NOT IN ('order', 'delivery', 'system', 'workflow', 'alert') THEN
                RAISE EXCEPTION 'workflow step "%": "type" must be order, delivery, system, workflow or alert', sid USING ERRCODE = 'OR111';
            END IF;
        WHEN 'create_task' THEN
            PERFORM orders.check_workflow_keys(cfg, '{assigned_to,title,message,due_days}',
                                               format('workflow step "%s"', sid), 'OR111');
            PERFORM orders.check_workflow_recipient(cfg -> 'assigned_to', sid, 'assigned_to', false);
            IF jsonb_typeof(cfg -> 'title') IS DISTINCT FROM 'string' OR cfg ->> 'title' = '' THEN
                RAISE EXCEPTION 'workflow step "%": a task needs a "title"', sid USING ERRCODE = 'OR111';
            ELSIF cfg ? 'due_days' AND (jsonb_typeof(cfg -> 'due_days') <> 'number'
                  OR (cfg ->> 'due_days')::numeric NOT BETWEEN 0 AND 365 OR (cfg ->> 'due_days')::numeric % 1 <> 0) THEN
                RAISE EXCEPTION 'workflow step "%": "due_days" must be a whole number from 0 to 365', sid USING ERRCODE = 'OR111';
            END IF;
        ELSE
            RAISE EXCEPTION 'workflow step "%": unknown step type %', sid, coalesce(left(step ->> 'type', 64), '(none)')
                USING ERRCODE = 'OR111', HINT = 'Step types: update_customer_tag, send_notification, create_task.';
        END CASE;
    END LOOP;
END
$$;

-- check_workflow — BEFORE INSERT OR UPDATE on workflows: the config and the
-- steps are valid (else nothing is stored), updated_at moves, and an API
-- caller cannot name another creator.  Runs as the owner: the checks read
-- webhooks, which API roles cannot.
CREATE FUNCTION orders.check_workflow() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.trigger_type NOT IN ('webhook', 'order_status', 'customer_tag', 'time_based', 'manual') THEN
        RAISE EXCEPTION 'unknown workflow trigger type %', left(NEW.trigger_type, 64)
            USING ERRCODE = 'OR110', HINT = 'Trigger types: order_status, customer_tag, webhook, time_based, manual.';
    END IF;
    IF NEW.trigger_config IS NOT NULL THEN
        PERFORM orders.check_workflow_trigger(NEW.trigger_type, NEW.trigger_config);
    END IF;
    IF NEW.workflow_steps IS NOT NULL THEN
        PERFORM orders.check_workflow_steps(NEW.workflow_steps);
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF orders.api_request() OR NEW.created_by_user_id IS NULL THEN
            NEW.created_by_user_id := orders.current_staff_id();
        END IF;
    ELSE
        IF orders.api_request() THEN
            NEW.created_by_user_id := OLD.created_by_user_id;
        END IF;
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER check_workflow BEFORE INSERT OR UPDATE ON orders.workflows
    FOR EACH ROW EXECUTE FUNCTION orders.check_workflow();

---------------------------------------------------------------------------
-- Running
---------------------------------------------------------------------------

-- workflow_recipients — the active staff members a recipient names for the
-- order (assigned_rep, assigned_agent, a role, a staff id).
CREATE FUNCTION orders.workflow_recipients(recipient text, order_id uuid)
    RETURNS SETOF orders.staff
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT s.* FROM orders.staff s
     WHERE s.is_active
       AND CASE recipient
           WHEN 'assigned_rep' THEN s.id = (SELECT o.assigned_rep_id FROM orders.orders o WHERE o.id = order_id)
           WHEN 'assigned_agent' THEN s.id = (SELECT o.assigned_agent_id FROM orders.orders o WHERE o.id = order_id)
           ELSE s.role = recipient
                OR (recipient ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                    AND s.id = CASE WHEN recipient ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                                    THEN recipient::uuid END)
           END
     ORDER BY s.id;
END;

-- workflow_render — "text" with each {{key}} replaced by data's value of key
-- (unknown keys by nothing).
CREATE FUNCTION orders.workflow_render(text text, data jsonb)
    RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT string_agg(CASE WHEN p.n % 2 = 0 THEN coalesce(data ->> btrim(p.part), '') ELSE p.part END, '' ORDER BY p.n)
      FROM regexp_split_to_table(text, '\{\{|\}\}') WITH ORDINALITY AS p(part, n);
END;

-- workflow_tag_step — update_customer_tag: add or remove a tag object
-- {"id", "label", "color"} when the condition (if any) holds.
CREATE FUNCTION orders.workflow_tag_step(config jsonb, customer_id uuid)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tag text := config ->> 'tag_id';
    n integer;
BEGIN
    IF customer_id IS NULL THEN
        RAISE EXCEPTION 'update_customer_tag needs a customer' USING ERRCODE = 'OR116',
              DETAIL = 'The run has no order and no customer.';
    ELSIF config ? 'condition' AND NOT orders.workflow_condition_holds(config ->> 'condition', customer_id) THEN
        RETURN jsonb_build_object('skipped', true, 'condition', config ->> 'condition');
    END IF;
    IF coalesce(config ->> 'action', 'add') = 'add' THEN
        UPDATE orders.customers c
           SET tags = c.tags || jsonb_build_array(jsonb_strip_nulls(jsonb_build_object(
                          'id', tag, 'label', coalesce(config ->> 'label', tag), 'color', config ->> 'color')))
         WHERE c.id = customer_id
           AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(c.tags) t WHERE t ->> 'id' = tag OR t #>> '{}' = tag);
        GET DIAGNOSTICS n = ROW_COUNT;
        RETURN jsonb_build_object('tag_added', n > 0, 'tag_id', tag);
    ELSE
        UPDATE orders.customers c
           SET tags = coalesce((SELECT jsonb_agg(t ORDER BY i) FROM jsonb_array_elements(c.tags) WITH ORDINALITY e(t, i)
                                 WHERE NOT (t ->> 'id' IS NOT DISTINCT FROM tag OR t #>> '{}' = tag)), '[]')
         WHERE c.id = customer_id
           AND EXISTS (SELECT 1 FROM jsonb_array_elements(c.tags) t WHERE t ->> 'id' = tag OR t #>> '{}' = tag);
        GET DIAGNOSTICS n = ROW_COUNT;
        RETURN jsonb_build_object('tag_removed', n > 0, 'tag_id', tag);
    END IF;
END
$$;

-- workflow_notify_step — send_notification: staff recipients on channel
-- in_app get a notifications row (and a NOTIFY on orders_notifications);
-- sms, email and the customer go to the outbox with the template and the
-- data; webhook posts the data to "url" through the outbox.  The outbox's
-- idempotency key is execution, step and recipient.  OR117 when the target
-- names nobody who can be reached that way.
CREATE FUNCTION orders.workflow_notify_step(config jsonb, step_id text, ctx jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    target text := config ->> 'target';
    channel text := coalesce(config ->> 'channel', CASE WHEN config ->> 'target' = 'customer' THEN 'sms' ELSE 'in_app' END);
    data jsonb := ctx -> 'data';
    title text := left(orders.workflow_render(coalesce(config ->> 'title', initcap(replace(config ->> 'template', '_', ' '))), data), 200);
    body text := orders.workflow_render(config ->> 'message', data);
    key text := 'workflow:' || (ctx ->> 'execution_id') || ':' || step_id;
    ids jsonb := '[]';
    s record;
    address text;
BEGIN
    IF channel = 'webhook' THEN
        ids := ids || to_jsonb(orders.enqueue_outbox('webhook',
            jsonb_build_object('url', config ->> 'url', 'template', config ->> 'template', 'title', title,
                               'message', body, 'data', data), key));
        RETURN jsonb_build_object('channel', channel, 'outbox_ids', ids);
    ELSIF target = 'customer' THEN
        SELECT CASE channel WHEN 'sms' THEN c.phone ELSE c.email END INTO address
          FROM orders.customers c WHERE c.id = (ctx ->> 'customer_id')::uuid;
        IF ctx ->> 'customer_id' IS NULL THEN
            RAISE EXCEPTION 'send_notification to the customer needs a customer' USING ERRCODE = 'OR116',
                  DETAIL = 'The run has no order and no customer.';
        ELSIF coalesce(address, '') = '' THEN
            RAISE EXCEPTION 'the customer has no % for send_notification', CASE channel WHEN 'sms' THEN 'phone' ELSE 'e-mail' END
                USING ERRCODE = 'OR117', DETAIL = format('customer %s', ctx ->> 'customer_id');
        END IF;
        ids := ids || to_jsonb(orders.enqueue_outbox(channel,
            jsonb_build_object('to', address, 'customer_id', ctx ->> 'customer_id', 'template', config ->> 'template',
                               'title', title, 'message', body, 'data', data), key || ':customer'));
        RETURN jsonb_build_object('channel', channel, 'outbox_ids', ids);
    END IF;
    IF target IN ('assigned_rep', 'assigned_agent') AND ctx ->> 'order_id' IS NULL THEN
        RAISE EXCEPTION 'send_notification to the % needs an order', target USING ERRCODE = 'OR116';
    END IF;
    FOR s IN SELECT * FROM orders.workflow_recipients(target, (ctx ->> 'order_id')::uuid) LOOP
        IF channel = 'in_app' THEN
            INSERT INTO orders.notifications (user_id, type, title, message, data)
            VALUES (s.id, coalesce(config ->> 'type', 'workflow'), coalesce(nullif(title, ''), ctx ->> 'workflow_name'), body,
                    data || jsonb_build_object('workflow_id', ctx ->> 'workflow_id', 'execution_id', ctx ->> 'execution_id'));
            ids := ids || to_jsonb(s.id);
        ELSE
            address := CASE channel WHEN 'sms' THEN s.phone ELSE s.email END;
            CONTINUE WHEN coalesce(address, '') = '';
            ids := ids || to_jsonb(orders.enqueue_outbox(channel,
                jsonb_build_object('to', address, 'staff_id', s.id, 'template', config ->> 'template',
                                   'title', title, 'message', body, 'data', data), key || ':' || s.id));
        END IF;
    END LOOP;
    IF ids = '[]' THEN
        RAISE EXCEPTION 'send_notification: % names no active staff member%', target,
                        CASE WHEN channel = 'in_app' THEN '' ELSE ' with a ' || CASE channel WHEN 'sms' THEN 'phone' ELSE 'e-mail' END END
            USING ERRCODE = 'OR117';
    END IF;
    RETURN jsonb_build_object('channel', channel,
                              CASE WHEN channel = 'in_app' THEN 'notified' ELSE 'outbox_ids' END, ids);
END
$$;

-- workflow_task_step — create_task: a notification of type workflow for
-- each staff member "assigned_to" names, with the due date in its data.
CREATE FUNCTION orders.workflow_task_step(config jsonb, ctx jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    due date := CASE WHEN config ? 'due_days' THEN current_date + (config ->> 'due_days')::integer END;
    n integer;
BEGIN
    IF config ->> 'assigned_to' IN ('assigned_rep', 'assigned_agent') AND ctx ->> 'order_id' IS NULL THEN
        RAISE EXCEPTION 'create_task for the % needs an order', config ->> 'assigned_to' USING ERRCODE = 'OR116';
    END IF;
    INSERT INTO orders.notifications (user_id, type, title, message, data)
    SELECT s.id, 'workflow', left(orders.workflow_render(config ->> 'title', ctx -> 'data'), 200),
           orders.workflow_render(config ->> 'message', ctx -> 'data'),
           ctx -> 'data' || jsonb_strip_nulls(jsonb_build_object('task', true, 'due_date', due,
                                              'workflow_id', ctx ->> 'workflow_id', 'execution_id', ctx ->> 'execution_id'))
      FROM orders.workflow_recipients(config ->> 'assigned_to', (ctx ->> 'order_id')::uuid) s;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        RAISE EXCEPTION 'create_task: % names no active staff member', config ->> 'assigned_to' USING ERRCODE = 'OR117';
    END IF;
    RETURN jsonb_strip_nulls(jsonb_build_object('tasks', n, 'due_date', due));
END
$$;

-- execute_workflow — one run of a workflow for an order and/or customer:
-- the steps in their "order" (then list order), each in a subtransaction;
-- the first failing step ends the run as failed with its error logged,
-- and undoes only its own effects.  The run's row is written last, in the
-- caller's transaction; its id is returned.  Runs that start runs (a tag
-- added by one fires another) nest at most 8 deep.  Serialization failures
-- and deadlocks are not caught: they end the transaction, to be retried.
CREATE FUNCTION orders.execute_workflow(workflow_id uuid, order_id uuid, customer_id uuid, trigger_event jsonb)
    RETURNS uuid
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w orders.workflows%ROWTYPE;
    o orders.orders%ROWTYPE;
    exec_id uuid := gen_random_uuid();
    ctx jsonb;
    step jsonb;
    sid text;
    n integer := 0;
    started timestamptz := clock_timestamp();
    step_started timestamptz;
    output jsonb;
    done jsonb := '[]';
    errors jsonb := '[]';
    depth integer := coalesce(nullif(current_setting('orders_workflow.depth', true), '')::integer, 0);
    e_code text;
    e_msg text;
    e_detail text;
    e_hint text;
BEGIN
    SELECT * INTO w FROM orders.workflows x WHERE x.id = execute_workflow.workflow_id;
    IF order_id IS NOT NULL THEN
        SELECT * INTO o FROM orders.orders x WHERE x.id = execute_workflow.order_id;
        customer_id := coalesce(customer_id, o.customer_id);
    END IF;
    ctx := jsonb_build_object(
        'execution_id', exec_id, 'workflow_id', w.id, 'workflow_name', w.name,
        'order_id', order_id, 'customer_id', customer_id,
        'data', jsonb_strip_nulls(jsonb_build_object(
            'order_id', order_id, 'order_number', o.order_number, 'status', o.status,
            'payment_status', o.payment_status, 'total_amount', o.total_amount, 'currency', o.currency,
            'customer_id', customer_id,
            'customer_name', (SELECT c.full_name FROM orders.customers c WHERE c.id = customer_id),
            'workflow', w.name)));
    IF depth >= 8 THEN
        errors := jsonb_build_array(jsonb_build_object(
            'step_id', NULL, 'error', 'workflow runs nested more than 8 deep (a workflow loop?)',
            'error_code', 'OR118', 'timestamp', clock_timestamp()));
    ELSE
        PERFORM set_config('orders_workflow.depth', (depth + 1)::text, true);
        FOR step IN SELECT s FROM jsonb_array_elements(w.workflow_steps) WITH ORDINALITY e(s, i)
                     ORDER BY (s ->> 'order')::numeric NULLS LAST, i LOOP
            n := n + 1;
            sid := coalesce(step ->> 'id', 'step-' || n);
            step_started := clock_timestamp();
            BEGIN
                output := CASE step ->> 'type'
                    WHEN 'update_customer_tag' THEN orders.workflow_tag_step(step -> 'config', customer_id)
                    WHEN 'send_notification' THEN orders.workflow_notify_step(step -> 'config', sid, ctx)
                    WHEN 'create_task' THEN orders.workflow_task_step(step -> 'config', ctx) END;
                done := done || jsonb_build_object(
                    'step_id', sid, 'status', CASE WHEN output ? 'skipped' THEN 'skipped' ELSE 'completed' END,
                    'started_at', step_started, 'completed_at', clock_timestamp(), 'output', output);
            EXCEPTION
                WHEN serialization_failure OR deadlock_detected OR lock_not_available THEN
                    RAISE;
                WHEN OTHERS THEN
                    GET STACKED DIAGNOSTICS e_code = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT,
                                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
                    errors := errors || jsonb_build_object(
                        'step_id', sid, 'error', left(e_msg, 1000), 'error_code', e_code,
                        'details', jsonb_strip_nulls(jsonb_build_object('detail', nullif(e_detail, ''), 'hint', nullif(e_hint, ''))),
                        'timestamp', clock_timestamp());
                    EXIT;
            END;
        END LOOP;
        PERFORM set_config('orders_workflow.depth', depth::text, true);
    END IF;
    INSERT INTO orders.workflow_executions (id, workflow_id, order_id, customer_id, status, trigger_event,
                                            steps_completed, error_log, started_at, completed_at)
    VALUES (exec_id, w.id, order_id, customer_id, CASE WHEN errors = '[]' THEN 'completed' ELSE 'failed' END,
            coalesce(trigger_event, '{}'), done, errors, started, clock_timestamp())
    ON CONFLICT DO NOTHING;
    RETURN exec_id;
END
$$;

-- active_trigger_workflows — the active order_status and customer_tag
-- workflows with their trigger configs taken apart, in the order they run
-- (oldest first): what orders.fire_workflows() caches.
CREATE FUNCTION orders.active_trigger_workflows()
    RETURNS TABLE (id uuid, on_tags boolean, statuses text[], payment_statuses text[], lifecycles text[],
                   min_value numeric, tag_id text)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT w.id, w.trigger_type = 'customer_tag',
           CASE WHEN jsonb_typeof(w.trigger_config #> '{conditions,status}') = 'array'
                THEN ARRAY(SELECT jsonb_array_elements_text(w.trigger_config #> '{conditions,status}')) END,
           CASE WHEN jsonb_typeof(w.trigger_config #> '{conditions,payment_status}') = 'array'
                THEN ARRAY(SELECT jsonb_array_elements_text(w.trigger_config #> '{conditions,payment_status}')) END,
           CASE jsonb_typeof(w.trigger_config #> '{conditions,lifecycle}')
                WHEN 'array' THEN ARRAY(SELECT jsonb_array_elements_text(w.trigger_config #> '{conditions,lifecycle}'))
                WHEN 'string' THEN ARRAY[w.trigger_config #>> '{conditions,lifecycle}'] END,
           CASE WHEN jsonb_typeof(w.trigger_config #> '{conditions,min_order_value}') = 'number'
                THEN (w.trigger_config #>> '{conditions,min_order_value}')::numeric END,
           w.trigger_config ->> 'tag_id'
      FROM orders.workflows w
     WHERE w.is_active AND w.trigger_type IN ('order_status', 'customer_tag')
     ORDER BY w.created_at, w.id;
END;

-- fire_workflows — AFTER INSERT OR UPDATE OF status, payment_status on
-- orders and OF tags on customers (C, src/workflows.c): runs the active
-- order_status workflows whose conditions the order has just come to meet
-- (exactly once per change), and the customer_tag workflows of each tag
-- just added.  The active workflows are cached per backend.
CREATE FUNCTION orders.fire_workflows() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_fire_workflows';
CREATE FUNCTION orders.workflows_changed() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_workflows_changed';
CREATE TRIGGER workflows_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON orders.workflows
    FOR EACH STATEMENT EXECUTE FUNCTION orders.workflows_changed();
CREATE TRIGGER fire_workflows AFTER INSERT ON orders.orders
    FOR EACH ROW EXECUTE FUNCTION orders.fire_workflows();
CREATE TRIGGER fire_workflows_on_change AFTER UPDATE OF status, payment_status ON orders.orders
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.payment_status IS DISTINCT FROM NEW.payment_status)
    EXECUTE FUNCTION orders.fire_workflows();
CREATE TRIGGER fire_workflows AFTER INSERT ON orders.customers
    FOR EACH ROW WHEN (NEW.tags <> '[]') EXECUTE FUNCTION orders.fire_workflows();
CREATE TRIGGER fire_workflows_on_change AFTER UPDATE OF tags ON orders.customers
    FOR EACH ROW WHEN (OLD.tags IS DISTINCT FROM NEW.tags) EXECUTE FUNCTION orders.fire_workflows();

-- fire_webhook_workflows — the active webhook workflows for an order a
-- webhook delivery created (order.created) or updated (order.updated):
-- those naming this webhook or none, and this event type or none.
CREATE FUNCTION orders.fire_webhook_workflows(webhook_id uuid, order_id uuid, event_type text, log_id uuid)
    RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w record;
    n integer := 0;
BEGIN
    FOR w IN SELECT x.id FROM orders.workflows x
              WHERE x.is_active AND x.trigger_type = 'webhook'
                AND (NOT x.trigger_config ? 'webhook_id' OR lower(x.trigger_config ->> 'webhook_id') = webhook_id::text)
                AND (NOT x.trigger_config ? 'event_types' OR x.trigger_config -> 'event_types' ? event_type)
              ORDER BY x.created_at, x.id LOOP
        PERFORM orders.execute_workflow(w.id, order_id, NULL,
            jsonb_build_object('event', 'webhook', 'event_type', event_type, 'webhook_id', webhook_id, 'log_id', log_id));
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

-- run_workflow — run an active workflow now for an order and/or customer
-- (any trigger type: a manual workflow, or trying one out); the execution
-- row.  Refused: an unknown workflow (OR114), an inactive one (OR115), an
-- unknown order (OR006) or customer (OR116), an order of another customer
-- (OR116); through the API, a caller without workflows.edit (42501).
CREATE FUNCTION orders.run_workflow(workflow_id uuid, order_id uuid DEFAULT NULL, customer_id uuid DEFAULT NULL)
    RETURNS orders.workflow_executions
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w orders.workflows%ROWTYPE;
    order_customer uuid;
    result orders.workflow_executions;
BEGIN
    IF workflow_id IS NULL THEN
        RAISE EXCEPTION 'orders.run_workflow: workflow_id must not be NULL' USING ERRCODE = '22004';
    ELSIF orders.api_request() AND NOT orders.has_permission('workflows', 'edit') THEN
        RAISE EXCEPTION 'running workflows needs the workflows.edit permission' USING ERRCODE = '42501';
    END IF;
    SELECT * INTO w FROM orders.workflows x WHERE x.id = run_workflow.workflow_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'workflow % does not exist', workflow_id USING ERRCODE = 'OR114';
    ELSIF NOT w.is_active THEN
        RAISE EXCEPTION 'workflow "%" is not active', w.name USING ERRCODE = 'OR115',
              HINT = 'Set is_active to true to run it.';
    END IF;
    IF order_id IS NOT NULL THEN
        SELECT o.customer_id INTO order_customer FROM orders.orders o WHERE o.id = run_workflow.order_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'order % does not exist', order_id USING ERRCODE = 'OR006';
        ELSIF customer_id IS NOT NULL AND customer_id <> order_customer THEN
            RAISE EXCEPTION 'order % belongs to another customer than %', order_id, customer_id USING ERRCODE = 'OR116';
        END IF;
    ELSIF customer_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM orders.customers c WHERE c.id = run_workflow.customer_id) THEN
        RAISE EXCEPTION 'customer % does not exist', customer_id USING ERRCODE = 'OR116';
    END IF;
    SELECT * INTO result FROM orders.workflow_executions e
     WHERE e.id = orders.execute_workflow(w.id, order_id, customer_id,
                                          jsonb_build_object('event', 'manual', 'actor', orders.current_actor()));
    RETURN result;
END
$$;

-- run_scheduled_workflow — what a time-based workflow's pg_cron job runs:
-- the workflow once when its schedule matches this minute in its time zone
-- (pg_cron may call more often; a minute runs at most once).  Returns the
-- execution's id, or NULL when nothing was due.
CREATE FUNCTION orders.run_scheduled_workflow(workflow_id uuid)
    RETURNS uuid
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w orders.workflows%ROWTYPE;
    tz text;
    minute timestamptz := date_trunc('minute', now());
    local timestamp;
    exec_id uuid;
BEGIN
    SELECT * INTO w FROM orders.workflows x WHERE x.id = run_scheduled_workflow.workflow_id;
    IF NOT FOUND OR NOT w.is_active OR w.trigger_type <> 'time_based' THEN
        RETURN NULL;
    END IF;
    tz := coalesce(w.trigger_config ->> 'timezone', 'UTC');
    local := minute AT TIME ZONE tz;
    IF NOT coalesce(orders.schedule_matches(w.trigger_config ->> 'schedule', local), false) THEN
        RETURN NULL;
    END IF;
    exec_id := orders.execute_workflow(w.id, NULL, NULL,
        jsonb_build_object('event', 'schedule', 'scheduled_for', minute, 'local_time', local, 'timezone', tz));
    RETURN CASE WHEN EXISTS (SELECT 1 FROM orders.workflow_executions e WHERE e.id = exec_id) THEN exec_id END;
END
$$;

-- sync_workflow_job — AFTER INSERT OR UPDATE OR DELETE on workflows: keep a
-- time-based workflow's pg_cron job (named orders-workflow-<id>, owned by
-- the extension's owner) in step with the row, when pg_cron is installed
-- in this database; without it, orders.schedule_jobs() registers the jobs
-- once it is (orders.cron_jobs() lists them).
CREATE FUNCTION orders.sync_workflow_job() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    job text := 'orders-workflow-' || coalesce(NEW.id, OLD.id);
    wanted boolean := TG_OP <> 'DELETE' AND NEW.is_active AND NEW.trigger_type = 'time_based';
    present boolean;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        RETURN NULL;
    END IF;
    EXECUTE 'SELECT EXISTS (SELECT 1 FROM cron.job WHERE jobname = $1 AND username = current_user)'
       INTO present USING job;
    IF wanted THEN
        EXECUTE 'SELECT cron.schedule($1, $2, $3)' USING job,
            orders.workflow_cron_schedule(NEW.trigger_config ->> 'schedule', coalesce(NEW.trigger_config ->> 'timezone', 'UTC')),
            format('SELECT orders.run_scheduled_workflow(%L)', NEW.id);
    ELSIF present THEN
        EXECUTE 'SELECT cron.unschedule($1)' USING job;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER sync_workflow_job AFTER INSERT OR UPDATE OR DELETE ON orders.workflows
    FOR EACH ROW EXECUTE FUNCTION orders.sync_workflow_job();

-- cron_jobs — every pg_cron job of the extension: its maintenance jobs and
-- one per active time-based workflow.
CREATE FUNCTION orders.cron_jobs()
    RETURNS TABLE (jobname text, schedule text, command text)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT 'orders-cleanup-expired-holds', '* * * * *', 'SELECT orders.cleanup_expired_reservations()'
    UNION ALL
    SELECT 'orders-purge-webhook-logs', '17 3 * * *', 'SELECT orders.purge_webhook_logs()'
    UNION ALL
    SELECT 'orders-purge-outbox', '27 3 * * *', 'SELECT orders.purge_outbox()'
    UNION ALL
    SELECT 'orders-purge-activity-logs', '37 3 * * *', 'SELECT orders.purge_activity_logs()'
    UNION ALL
    SELECT 'orders-workflow-' || w.id,
           orders.workflow_cron_schedule(w.trigger_config ->> 'schedule', coalesce(w.trigger_config ->> 'timezone', 'UTC')),
           format('SELECT orders.run_scheduled_workflow(%L)', w.id)
      FROM orders.workflows w
     WHERE w.is_active AND w.trigger_type = 'time_based';
END;

CREATE TRIGGER orders_activity AFTER INSERT OR UPDATE OR DELETE ON orders.workflows
    FOR EACH ROW EXECUTE FUNCTION orders.track_changes();

-- who may do what: staff with workflows.view read workflows and their runs;
-- create, edit and delete follow those permissions; runs are written by
-- the extension only
ALTER TABLE orders.workflows ENABLE ROW LEVEL SECURITY;
ALTER TABLE orders.workflow_executions ENABLE ROW LEVEL SECURITY;
CREATE POLICY reach ON orders.workflows USING ((SELECT orders.has_permission('workflows', 'view')));
CREATE POLICY insert_right ON orders.workflows AS RESTRICTIVE FOR INSERT
    WITH CHECK ((SELECT orders.has_permission('workflows', 'create')));
CREATE POLICY update_right ON orders.workflows AS RESTRICTIVE FOR UPDATE
    USING ((SELECT orders.has_permission('workflows', 'edit')));
CREATE POLICY delete_right ON orders.workflows AS RESTRICTIVE FOR DELETE
    USING ((SELECT orders.has_permission('workflows', 'delete')));
CREATE POLICY reach ON orders.workflow_executions FOR SELECT
    USING ((SELECT orders.has_permission('workflows', 'view')));

SELECT pg_catalog.pg_extension_config_dump('orders.workflows', '');
SELECT pg_catalog.pg_extension_config_dump('orders.workflow_executions', '');
REVOKE ALL ON orders.workflows, orders.workflow_executions FROM PUBLIC;
REVOKE ALL ON FUNCTION orders.cron_field_values(text, integer, integer), orders.schedule_matches(text, timestamp),
                       orders.workflow_cron_schedule(text, text), orders.workflow_condition(text),
                       orders.workflow_condition_holds(text, uuid),
                       orders.check_workflow_recipient(jsonb, text, text, boolean),
                       orders.check_workflow_keys(jsonb, text[], text, text),
                       orders.check_workflow_trigger(text, jsonb), orders.check_workflow_steps(jsonb),
                       orders.check_workflow(), orders.workflow_recipients(text, uuid),
                       orders.workflow_render(text, jsonb), orders.workflow_tag_step(jsonb, uuid),
                       orders.workflow_notify_step(jsonb, text, jsonb), orders.workflow_task_step(jsonb, jsonb),
                       orders.execute_workflow(uuid, uuid, uuid, jsonb), orders.fire_workflows(), orders.active_trigger_workflows(),
                       orders.workflows_changed(), orders.fire_webhook_workflows(uuid, uuid, text, uuid),
                       orders.run_workflow(uuid, uuid, uuid), orders.run_scheduled_workflow(uuid),
                       orders.sync_workflow_job() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orders.cron_jobs() TO PUBLIC;
