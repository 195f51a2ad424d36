
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

-- (0.43.0) The shop's day (C, src/business_day.c): today, and the zone
-- it is counted in — TimeZone as the database configures it for the
-- session (postgresql.conf, ALTER DATABASE / ALTER ROLE … SET, the login's
-- options), not what the session SETs: the ledger's day, the day's
-- summary, campaigns' days left and an order number's year.  An API client
-- sets the session's zone (PostgREST's "Prefer: timezone=…"); a payment
-- collected from Kiritimati was dated tomorrow, its refund from Baker
-- Island yesterday.  PARALLEL RESTRICTED: a parallel worker starts with
-- TimeZone's built-in default as its reset value.
CREATE FUNCTION orders.business_date() RETURNS date
    LANGUAGE c STABLE PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'orders_business_date';
COMMENT ON FUNCTION orders.business_date() IS
    'Today (at the transaction''s start) in the database''s configured time zone (orders.business_timezone()), whatever the session SETs';
CREATE FUNCTION orders.business_timezone() RETURNS text
    LANGUAGE c STABLE PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'orders_business_timezone';
COMMENT ON FUNCTION orders.business_timezone() IS
    'The time zone business days are counted in: the setting orders.business_timezone when set, else TimeZone as configured for the session (server, database, role, login), not as SET';

-- require_read_committed — 25000 ("<what> runs at READ COMMITTED only",
-- DETAIL <why>) unless each statement of the transaction takes its own
-- snapshot: READ COMMITTED, or READ UNCOMMITTED, which PostgreSQL runs as
-- READ COMMITTED (0.32.0: refused before).  For checks that lock, then
-- read what others committed (C, src/read_committed.c).
CREATE FUNCTION orders.require_read_committed(what text, why text DEFAULT NULL) RETURNS void
    LANGUAGE c STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'orders_require_read_committed_sql';

-- (0.43.0) purge_cutoff — the time before which "caller" (a purge:
-- purge_webhook_logs, purge_outbox, purge_activity_logs; 0.45.0:
-- purge_notifications, purge_workflow_executions) deletes rows:
-- now() - older_than, refused when that is after now (22023: a negative
-- span, also one that mixes signs, '-1 mon +30 days 1 hour', which the
-- comparison with interval '0' — a month as 30 days — let through and
-- which deleted everything), or outside the times PostgreSQL can hold
-- (22023, not the subtraction's 22008); NULL is 22004.  PUBLIC: the purges
-- run with their caller's rights, and a DBA grants them to a worker role.
CREATE FUNCTION orders.purge_cutoff(caller text, older_than interval) RETURNS timestamptz
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cutoff timestamptz;
BEGIN
    IF older_than IS NULL THEN
        RAISE EXCEPTION '%: older_than must not be NULL', caller USING ERRCODE = '22004';
    END IF;
    BEGIN
        cutoff := now() - older_than;
    EXCEPTION WHEN datetime_field_overflow THEN
        RAISE EXCEPTION '%: older_than (%) puts the cutoff outside the times a timestamp holds', caller, older_than
            USING ERRCODE = '22023';
    END;
    IF cutoff > now() THEN
        RAISE EXCEPTION '%: older_than must not be negative (%)', caller, older_than
            USING ERRCODE = '22023', DETAIL = format('It puts the cutoff at %s, after now.', cutoff);
    END IF;
    RETURN cutoff;
END
$$;

CREATE FUNCTION orders.set_updated_at() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_set_updated_at';
COMMENT ON FUNCTION orders.set_updated_at() IS
    'BEFORE UPDATE row trigger: sets updated_at (or the column named by the trigger argument) to now()';

-- (0.41.0) jsonb_within — a JSON value within "max_bytes" (its binary size,
-- uncompressed) whose every number prints in a few characters (below 1e20,
-- at most 40 decimals since the 0.42.0 library, 20 before), checked in time and memory linear in its size: the
-- bound of what clients write (the groups' pages, anchors and overrides,
-- the requirements' values, a share link's metadata, orders' metadata,
-- shop payloads; 0.42.0: every JSON column an API role writes).  Neither the stored
-- size (a compressed value passed), nor the text (1e131071 prints as
-- 131 kB), nor the binary size alone (8,200 such numbers are 131 kB, and
-- print as 1 GB) would do.  PUBLIC: the CHECKs call it as the writer.
CREATE FUNCTION orders.jsonb_within(value jsonb, max_bytes integer) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'orders_jsonb_within';

-- (0.41.0) id_stays — BEFORE UPDATE OF id on the rows others are counted
-- against (customers, products, variants, orders, slots, client groups):
-- a row keeps its id (OR122).  The foreign keys to them are checked at the
-- statement's end, so one statement could change a parent's id and point
-- its children at the new one: the counters took the children off a row
-- that was gone and added them onto one that already counted them (a
-- subtotal, a campaign's leads, a customer's orders twice; a product's
-- stock taken twice for good).
CREATE FUNCTION orders.id_stays() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'row % of orders.% keeps its id', OLD.id, TG_TABLE_NAME
        USING ERRCODE = 'OR122',
              DETAIL = format('It would become %s; what is counted against it (items, leads, orders, reservations, sites) follows rows by id.', NEW.id),
              HINT = 'Insert a row with the new id, move what hangs on the old one to it, then delete the old one.';
END
$$;

CREATE FUNCTION orders.lifecycle_changed() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_lifecycle_changed';

-- (0.40.0) Names are at most 63 characters (an identifier's length): a
-- 40 kB name met its index's 54000 (HTTP 500), also in the columns that
-- name a lifecycle or status and are checked by a foreign key only after
-- the index (lifecycle_states.lifecycle, lifecycle_transitions' three).
CREATE TABLE orders.lifecycles (
    name            text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    initial_status  text NOT NULL CHECK (length(initial_status) <= 63),
    description     text CHECK (length(description) <= 10000),
    builtin         boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE orders.lifecycles IS 'Order lifecycles; add your own with INSERT (builtin = false rows are dumped by pg_dump)';

-- category: what an order in the status counts for (customer statistics,
-- revenue); accepts_leads: leads delivered now count toward the order;
-- holds_stock: the order's items are out of stock.
CREATE TABLE orders.lifecycle_states (
    lifecycle   text NOT NULL REFERENCES orders.lifecycles (name) ON UPDATE CASCADE ON DELETE CASCADE
                CHECK (length(lifecycle) <= 63),
    status      text NOT NULL CHECK (status ~ '^[a-z][a-z0-9_]{0,62}$'),
    category    text NOT NULL CHECK (category IN ('open', 'fulfilled', 'cancelled', 'returned')),
    position    integer NOT NULL DEFAULT 0,
    description text CHECK (length(description) <= 10000),
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
    lifecycle     text NOT NULL CHECK (length(lifecycle) <= 63),
    from_status   text NOT NULL CHECK (length(from_status) <= 63),
    to_status     text NOT NULL CHECK (length(to_status) <= 63),
    stamp_column  text,
    allowed_roles name[] CHECK (cardinality(allowed_roles) <= 64),
    description   text CHECK (length(description) <= 10000),
    builtin       boolean NOT NULL DEFAULT false,
    allowed_staff text[] CHECK (allowed_staff <@ ARRAY['admin', 'manager', 'customer_rep', 'delivery_agent',
                                                       'accountant', 'assigned_agent', 'assigned_rep']
                                AND cardinality(allowed_staff) <= 16),
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
-- would leave those counts behind.  Renaming a state (or moving it to
-- another lifecycle) or deleting it would leave its orders in a status
-- their lifecycle does not have (0.32.0; before, a rename also changed the
-- meaning of orders by name: two states swapped their names under them),
-- and renaming a state to a status orders are in that no state has would
-- give those orders its meaning.  All refused (OR008) while the state has
-- orders, and TRUNCATE (which skips row triggers) while any order exists;
-- orders.orders is locked in SHARE mode meanwhile so that no order enters
-- the state before the change commits.  The check must read the orders
-- committed before the lock was granted: only READ COMMITTED does (a
-- REPEATABLE READ snapshot predates the lock: refused with 25000).
-- A lifecycle deleted or renamed takes its states along by the cascade:
-- the orders' foreign key on lifecycle refuses that while orders use it
-- (23503), and the guard stays out of it — no lock: the lifecycle's row is
-- locked already, and an order written meanwhile waits for that row while
-- holding its lock on orders.orders (a deadlock in 0.32.0's first cut).
-- SECURITY DEFINER: it must count every order, not the ones the caller's
-- row level security shows.
CREATE FUNCTION orders.state_meaning_guard() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    change text;
    what text := 'TRUNCATE orders.lifecycle_states';
BEGIN
    IF TG_OP OPERATOR(pg_catalog.=) 'TRUNCATE' THEN
        NULL;
    ELSIF TG_OP OPERATOR(pg_catalog.=) 'DELETE' THEN
        change := 'it cannot be deleted';
    ELSIF (NEW.lifecycle, NEW.status) IS DISTINCT FROM (OLD.lifecycle, OLD.status) THEN
        change := 'it cannot be renamed';
    ELSIF (NEW.category, NEW.holds_stock) IS DISTINCT FROM (OLD.category, OLD.holds_stock) THEN
        change := 'its category and holds_stock cannot change';
    ELSE
        RETURN NEW;
    END IF;
    IF TG_OP OPERATOR(pg_catalog.<>) 'TRUNCATE' THEN
        -- the lifecycle's cascade: its row is gone and the change comes from
        -- its foreign key's trigger (a statement that deletes the lifecycle
        -- and its states itself, and puts the lifecycle back, is checked)
        IF pg_catalog.pg_trigger_depth() OPERATOR(pg_catalog.>) 1
           AND NOT EXISTS (SELECT FROM orders.lifecycles l WHERE l.name OPERATOR(pg_catalog.=) OLD.lifecycle) THEN
            RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
        END IF;
        what := pg_catalog.format('lifecycle "%s": renaming, deleting or changing the meaning of state "%s"',
                                  OLD.lifecycle, OLD.status);
    END IF;
    PERFORM orders.require_read_committed(what,
        'The check that no order is in the state needs a snapshot taken after the lock on orders.orders.');
    LOCK TABLE orders.orders IN SHARE MODE;
    IF TG_OP OPERATOR(pg_catalog.=) 'TRUNCATE' THEN
        IF EXISTS (SELECT FROM orders.orders) THEN
            RAISE EXCEPTION 'cannot truncate orders.lifecycle_states: orders are in its states'
                USING ERRCODE = 'OR008',
                      DETAIL = 'They would be left in statuses their lifecycles do not have.',
                      HINT = 'Delete the states you no longer need (refused while they have orders) instead.';
        END IF;
        RETURN NULL;
    END IF;
    IF EXISTS (SELECT FROM orders.orders o
                WHERE o.lifecycle OPERATOR(pg_catalog.=) OLD.lifecycle
                  AND o.status OPERATOR(pg_catalog.=) OLD.status) THEN
        RAISE EXCEPTION 'lifecycle "%": state "%" has orders; %', OLD.lifecycle, OLD.status, change
            USING ERRCODE = 'OR008',
                  DETAIL = CASE WHEN change LIKE 'its%' THEN 'Customer statistics, the ledger and stock count the orders in it by these.'
                                ELSE 'Its orders would be left in a status their lifecycle does not have.' END,
                  HINT = CASE WHEN change LIKE 'its%' THEN 'Move its orders to another state first, or add a new state.'
                              ELSE 'Move its orders to another state first.' END;
    END IF;
    IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE'
       AND (NEW.lifecycle, NEW.status) IS DISTINCT FROM (OLD.lifecycle, OLD.status)
       AND NOT EXISTS (SELECT FROM orders.lifecycle_states s
                        WHERE s.lifecycle OPERATOR(pg_catalog.=) NEW.lifecycle
                          AND s.status OPERATOR(pg_catalog.=) NEW.status)
       AND EXISTS (SELECT FROM orders.orders o
                    WHERE o.lifecycle OPERATOR(pg_catalog.=) NEW.lifecycle
                      AND o.status OPERATOR(pg_catalog.=) NEW.status) THEN
        RAISE EXCEPTION 'lifecycle "%": orders are in status "%", which no state has; state "%" cannot take its name',
                        NEW.lifecycle, NEW.status, OLD.status
            USING ERRCODE = 'OR008',
                  DETAIL = 'Those orders would be counted as the renamed state counts its orders.',
                  HINT = 'Add the state with INSERT instead (its orders stay as they are counted now), or choose another name.';
    END IF;
    RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END
$$;
CREATE TRIGGER state_meaning_guard BEFORE UPDATE OF lifecycle, status, category, holds_stock OR DELETE
    ON orders.lifecycle_states
    FOR EACH ROW EXECUTE FUNCTION orders.state_meaning_guard();
CREATE TRIGGER state_truncate_guard BEFORE TRUNCATE ON orders.lifecycle_states
    FOR EACH STATEMENT EXECUTE FUNCTION orders.state_meaning_guard();

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
-- (0.41.0) the gates too, which the graph holds: a gate closed on the
-- publisher stayed open in every session of a subscriber
CREATE TRIGGER lifecycle_changed_applied AFTER INSERT OR UPDATE OR DELETE
    ON orders.lifecycle_gates FOR EACH ROW EXECUTE FUNCTION orders.lifecycle_changed();
ALTER TABLE orders.lifecycles ENABLE REPLICA TRIGGER lifecycle_changed_applied;
ALTER TABLE orders.lifecycle_states ENABLE REPLICA TRIGGER lifecycle_changed_applied;
ALTER TABLE orders.lifecycle_transitions ENABLE REPLICA TRIGGER lifecycle_changed_applied;
ALTER TABLE orders.lifecycle_gates ENABLE REPLICA TRIGGER lifecycle_changed_applied;

-- The category of a status, from the cached lifecycle graph (C).
CREATE FUNCTION orders.status_category(lifecycle text, status text) RETURNS text
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'orders_status_category';
COMMENT ON FUNCTION orders.status_category(text, text) IS
    'Category (open, fulfilled, cancelled, returned) of a status of a lifecycle; NULL when unknown';

-- Lifecycle graph as a readable list (one row per edge).
CREATE VIEW orders.lifecycle_graph WITH (security_invoker = true) AS
SELECT t.lifecycle, t.from_status, fs.category AS from_category,
       t.to_status, ts.category AS to_category, t.stamp_column, t.allowed_roles,
       t.allowed_staff, t.gate
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
REVOKE ALL ON FUNCTION orders.set_updated_at(), orders.id_stays(), orders.lifecycle_changed(),
                       orders.check_transition_row(), orders.state_meaning_guard(),
                       orders.check_gate_row() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orders.current_actor(), orders.status_category(text, text),
                          orders.require_read_committed(text, text) TO PUBLIC;
