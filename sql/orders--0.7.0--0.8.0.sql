-- orders 0.7.0 -> 0.8.0: secure by default behind PostgREST (issue 10).
--  * Row level security on every table, with the extension's policies
--    (doc/security.md: persona × table × operation); views security_invoker.
--  * JWT claims are believed only under the API roles orders.grant_api()
--    records (or a superuser); grant_api() is a DBA's whole set-up.
--  * orders.has_permission(), identity helpers, column rules (OR060).
--  * orders.internal_notes moves to the staff-only table orders.order_notes.
--  * The integrity triggers that read other rows run as their owner, so
--    row level security cannot hide a row from the check.
--  * Lifecycle edges reserved to staff (allowed_staff) and gated by
--    registered checks (lifecycle_gates).
--  * Agency orders (issue 11, seeds 000/001): client groups, site review,
--    approved sites as items, the client-review gate, share links.
-- A DBA who wrote policies of their own: doc/security.md, "Upgrading".
\echo Use "ALTER EXTENSION orders UPDATE TO '0.8.0'" to load this file. \quit

ALTER FUNCTION orders.check_assignment() SECURITY DEFINER;
ALTER FUNCTION orders.state_meaning_guard() SECURITY DEFINER;
ALTER FUNCTION orders.check_staff_overlap() SECURITY DEFINER;
ALTER FUNCTION orders.orders_truncate_guard() SECURITY DEFINER;

ALTER VIEW orders.lifecycle_graph SET (security_invoker = true);
ALTER VIEW orders.order_details_view SET (security_invoker = true);
ALTER VIEW orders.agent_performance_view SET (security_invoker = true);
ALTER VIEW orders.order_summary SET (security_invoker = true);
ALTER VIEW orders.low_stock_view SET (security_invoker = true);
ALTER VIEW orders.daily_financial_summary SET (security_invoker = true);
ALTER VIEW orders.ledger_discrepancies SET (security_invoker = true);
ALTER VIEW orders.todays_order_summary SET (security_invoker = true);
-- today's bounds as timestamptz: leakproof, so an index condition under row
-- level security (timestamptz >= date is not)
CREATE OR REPLACE VIEW orders.todays_order_summary WITH (security_invoker = true) AS
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

-- lifecycle edges reserved to staff (and the builtin COD edges' rules)
ALTER TABLE orders.lifecycle_transitions
    ADD COLUMN allowed_staff text[] CHECK (allowed_staff <@ ARRAY['admin', 'manager', 'customer_rep', 'delivery_agent',
                                                                  'accountant', 'assigned_agent', 'assigned_rep']);
COMMENT ON COLUMN orders.lifecycle_transitions.allowed_staff IS
    'NULL: no staff rule; else in an API request only active staff of these roles, or the order''s assigned_agent / assigned_rep, take the edge';
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

-- gates (registered checks an order must pass to take an edge)
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

ALTER TABLE orders.lifecycle_transitions
    ADD COLUMN gate text REFERENCES orders.lifecycle_gates (name) ON UPDATE CASCADE;
COMMENT ON COLUMN orders.lifecycle_transitions.gate IS 'NULL, or the orders.lifecycle_gates check an order must pass to take the edge';
CREATE TRIGGER lifecycle_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON orders.lifecycle_gates FOR EACH STATEMENT EXECUTE FUNCTION orders.lifecycle_changed();
SELECT pg_catalog.pg_extension_config_dump('orders.lifecycle_gates', 'WHERE NOT builtin');
REVOKE ALL ON orders.lifecycle_gates FROM PUBLIC;
GRANT SELECT ON orders.lifecycle_gates TO PUBLIC;
REVOKE ALL ON FUNCTION orders.check_gate_row() FROM PUBLIC;

-- agency orders: the order's review columns
ALTER TABLE orders.orders
    ADD COLUMN requires_client_review boolean NOT NULL DEFAULT false,
    ADD COLUMN review_completed_at timestamptz,
    ADD COLUMN reviewed_by text,
    ADD COLUMN analysis_project_id uuid;

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

-- 0.7.0's internal notes become the first note of their order
INSERT INTO orders.order_notes (order_id, author_id, body, created_at)
SELECT o.id, NULL, o.internal_notes, o.updated_at
  FROM orders.orders o
 WHERE o.internal_notes IS NOT NULL AND o.internal_notes <> '';
ALTER TABLE orders.orders DROP COLUMN internal_notes;

-- seed 001's migration rule: a single-client order is an order with one
-- group.  Every review order gets one for its customer, with as many links
-- as it has items (at least one).
INSERT INTO orders.order_groups (order_id, client_id, link_count)
SELECT o.id, o.customer_id, greatest((SELECT count(*) FROM orders.order_items i WHERE i.order_id = o.id), 1)
  FROM orders.orders o
 WHERE o.lifecycle = 'review' AND NOT EXISTS (SELECT FROM orders.order_groups g WHERE g.order_id = o.id);
