
---------------------------------------------------------------------------
-- Who may see and do what (doc/security.md has the persona × table ×
-- operation table).  Identity is orders.current_actor(), the JWT sub;
-- authorization comes from data: a customer is an actor whose sub is a
-- customers.account_id, a staff member one whose sub is the account_id of
-- an active orders.staff row, with its role's default permissions refined
-- by staff.permissions.  Row level security is enabled on every table; the
-- owner (maintenance, pg_cron, DBAs) is not subject to it.  The orders and
-- customers policies are one C call per row that reads the caller's scope
-- once per query (sees_order, sees_customer); the others call the identity
-- helpers as (SELECT orders.f()), evaluated once per query.  Either way a
-- query's own conditions stay index conditions.  orders.grant_api() is a
-- DBA's whole set-up.
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
-- (0.44.0) where session_replication_role = replica (a DBA's bulk script, an
-- apply worker) the statement trigger does not fire: this row copy does, as
-- the lifecycle tables' do — a role taken out there stayed trusted by every
-- living session
CREATE TRIGGER api_roles_changed_applied AFTER INSERT OR UPDATE OR DELETE
    ON orders.api_roles FOR EACH ROW EXECUTE FUNCTION orders.api_roles_changed();
ALTER TABLE orders.api_roles ENABLE REPLICA TRIGGER api_roles_changed_applied;
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
    ('workflows', 'delete', '{admin}'),
    -- (0.41.0) the activity log, and the shops' webhooks and their logs, read
    -- through the API (they were the owner's alone)
    ('activity', 'view',   '{admin,manager}'),
    ('webhooks', 'view',   '{admin,manager}')
  ) p (area, action, roles) ON r.role = ANY (p.roles::text[]);
COMMENT ON VIEW orders.staff_role_defaults IS
    'What each staff role may do unless staff.permissions says otherwise (orders.has_permission)';

-- actor_account — the caller's JWT sub as a uuid (account ids are uuids),
-- or NULL when it is not one (C: the parse the identity lookup uses).
CREATE FUNCTION orders.actor_account() RETURNS uuid
    LANGUAGE c STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'orders_actor_account';
COMMENT ON FUNCTION orders.actor_account() IS 'The caller''s JWT sub as a uuid, or NULL';
-- (0.42.0) actor_is_subject — is current_actor() a person's subject (a
-- believed JWT sub, or the owner's acting_for label) rather than the
-- login's role name?  A slot hold is its holder's by both (the read policy
-- below, confirm_booking, release_reservation).
CREATE FUNCTION orders.actor_is_subject() RETURNS boolean
    LANGUAGE c STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'orders_actor_is_subject';
COMMENT ON FUNCTION orders.actor_is_subject() IS
    'Whether orders.current_actor() is a JWT subject (or the acting_for label), not a login''s role name';

-- The caller in the data (C, src/identity.c): its customer rows, staff row,
-- role and permissions.  Every policy asks, once per query (InitPlans); one
-- lookup per command answers all of them, read as the owner of orders.staff
-- (so they answer whatever the caller may read), and only about the caller.
-- (current_customer_ids is in 20_people.sql, 0.44.0: recent_orders asks it)

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

-- agent_serves_customer — whether an order of this customer is assigned to
-- the caller, an active delivery agent who may view orders (C,
-- src/agent_scope.c): the customers policy's agent branch.  One index-only
-- scan of the agent's orders per query, then a hash lookup per row; it
-- answers only about the caller.
CREATE FUNCTION orders.agent_serves_customer(customer_id uuid) RETURNS boolean
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 'orders_agent_serves_customer';
COMMENT ON FUNCTION orders.agent_serves_customer(uuid) IS
    'Whether an order of this customer is assigned to the caller (an active delivery agent who may view orders)';

-- The reach policies of orders and customers, one call per row (C,
-- src/row_scope.c).  The first row of a query reads the caller's scope once
-- (the lookup above) and keeps it while the caller, command and
-- subtransaction stay the same; every other row is that check and a few
-- comparisons.  Written out in SQL, a policy asked the
-- helpers above up to ten times per query, an InitPlan each, which cost a
-- small dashboard query more than its own work (doc/benchmarks.md, 0.14.0).
-- They answer only about the caller.
--   reach_support: the planner's estimate for them — a caller reaches a
--   small share of a table (4 %, as the written-out policies were
--   estimated), so a query's own conditions keep choosing the index.
CREATE FUNCTION orders.reach_support(internal) RETURNS internal
    LANGUAGE c IMMUTABLE STRICT
    AS 'MODULE_PATHNAME', 'orders_reach_support';
REVOKE ALL ON FUNCTION orders.reach_support(internal) FROM PUBLIC;
--   sees_order: a customer its own orders; active staff with orders.view by
--   role — admins, managers and accountants every order, a delivery agent
--   the ones assigned to it, a customer rep its own and the unassigned ones
--   whose status is open.
CREATE FUNCTION orders.sees_order(customer_id uuid, assigned_agent_id uuid, assigned_rep_id uuid,
                                  lifecycle text, status text) RETURNS boolean
    LANGUAGE c STABLE SUPPORT orders.reach_support
    AS 'MODULE_PATHNAME', 'orders_sees_order';
COMMENT ON FUNCTION orders.sees_order(uuid, uuid, uuid, text, text) IS
    'Whether the caller reaches an order with these values (the orders policy)';
--   sees_customer: the caller's own customer rows; active staff with
--   customers.view, a delivery agent only the customers of its orders
--   (agent_serves_customer).
CREATE FUNCTION orders.sees_customer(id uuid, account_id uuid) RETURNS boolean
    LANGUAGE c STABLE SUPPORT orders.reach_support
    AS 'MODULE_PATHNAME', 'orders_sees_customer';
COMMENT ON FUNCTION orders.sees_customer(uuid, uuid) IS
    'Whether the caller reaches a customer row with these values (the customers policy)';
--   staff_sees_order: the staff half of sees_order by role alone (without
--   orders.view): what the review and workflow functions ask about the staff
--   member they act for.
CREATE FUNCTION orders.staff_sees_order(rep uuid, agent uuid, lifecycle text, status text) RETURNS boolean
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 'orders_staff_sees_order';
--   order_in_scope (0.29.0): in an API request, whether the caller reads
--   the order — what a lead policy asks of the order a lead counts toward
--   (a function, so that writers outside the API need no right on orders).
CREATE FUNCTION orders.order_in_scope(order_id uuid) RETURNS boolean
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 'orders_order_in_scope';

-- act_as — (0.38.0) from now until act_back, the identity's questions
-- (has_permission, sees_order, …) are answered for account "account": the
-- JWT subject and the orders.acting_for label set to it — which of the two
-- decides who acts depends on whether the session's claims are believed (a
-- DBA's own login believes none) — returning what act_back puts back.  How
-- a share link's creator and a workflow's author are asked whether they
-- still may.  The label is superusers': for functions that run as the owner.
CREATE FUNCTION orders.act_as(account uuid) RETURNS text[]
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    saved text[] := ARRAY[current_setting('request.jwt.claims', true), current_setting('orders.acting_for', true)];
BEGIN
    PERFORM set_config('request.jwt.claims', json_build_object('sub', account)::text, true);
    PERFORM set_config('orders.acting_for', account::text, true);
    RETURN saved;
END
$$;
CREATE FUNCTION orders.act_back(saved text[]) RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM set_config('request.jwt.claims', coalesce(saved[1], ''), true);
    PERFORM set_config('orders.acting_for', coalesce(saved[2], ''), true);
END
$$;
REVOKE ALL ON FUNCTION orders.act_as(uuid), orders.act_back(text[]) FROM PUBLIC;

-- A refusal of the column rules below: OR060, naming table and column.
CREATE FUNCTION orders.refuse_column(tbl text, col text, who text) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'column "%" of % is reserved to %', col, tbl, who
        USING ERRCODE = 'OR060',
              HINT = CASE WHEN who LIKE 'the lifecycle%'
                          THEN 'Leave it out of the request (or send it unchanged); the status change sets it.'
                          WHEN who LIKE 'the %'
                          THEN 'Leave it out of the request (or send it unchanged).'
                          ELSE 'Leave it out of the request; staff with the right permission set it.' END;
END
$$;

-- by_maintainer — the current user has the rights of the table's owner
-- (the extension's own maintenance runs as the owner; superusers have
-- them): column rules do not apply (C: the rules ask for every row).
CREATE FUNCTION orders.by_maintainer(rel oid) RETURNS boolean
    LANGUAGE c STABLE STRICT
    AS 'MODULE_PATHNAME', 'orders_by_maintainer';

-- restoring (0.39.0) — is the table being loaded by a restore (a top-level
-- COPY FROM into it by its owner — the session's role, also inside a
-- SECURITY DEFINER function —, row_security off: src/trigger_util.c)?
-- The C triggers' question, for the PL/pgSQL ones.
CREATE FUNCTION orders.restoring(rel oid) RETURNS boolean
    LANGUAGE c STABLE STRICT
    AS 'MODULE_PATHNAME', 'orders_restoring';

-- Columns of an order only staff set, with the value a new order has
-- without them; customers may not set them (OR060).  Staff need
-- orders.assign to set the assignments.  (0.27.0) leads_purchased too: what
-- a campaign bought is priced by staff, as its total is — a customer raised
-- its own campaign from 3 leads to 1000.  (0.28.0) external_id (a customer
-- re-pointed its shop order's id and the shop's next order was taken for a
-- duplicate) — with webhook_source, admins' and managers' among staff —
-- and a placed order's currency (the ledger posts in it).  The lifecycle's
-- stamps (the built-in edges' and the review gate's) are its edges' alone:
-- nobody writes them in an API request (a client cleared paid_at, changed
-- its paid agency order and stamped it paid again; a rep stamped an order
-- paid without the staff edge).  A delivery agent changes no amount of an
-- order (total, adjustment, fee, currency), nor what was bought or where
-- the order came from, and its payment only between pending, failed and
-- collected (an agent zeroed a total, or marked a collected order
-- refunded: the refund row followed; a failed attempt is collected on the
-- next one).  (0.37.0) When an order was placed (created_at) is set in an
-- API request by admins and managers only (a customer moved its order to
-- the top of the recent orders, and into or out of the day's summary), and
-- metadata's key "webhook", where the webhook ingest keeps the shop's last
-- update, by nobody (a customer set it in the year 9999 and the shop's
-- cancellation was taken for stale).  (0.38.0) A customer changes its
-- order's delivery_address and delivery_area while the order is open and
-- not shipped (shipped_at); afterwards they are staff's.  (0.39.0) So its
-- payment_method, also once the payment is collected or refunded — and a
-- delivery agent changes none (an agent relabelled its cash order "card"
-- before collecting, and the ledger's revenue row said card; a customer
-- relabelled a collected order, which then disagreed with the ledger).
-- (0.43.0) default_currency — the shop's currency: the default of
-- orders.orders.currency (C, src/default_currency.c), which a customer's
-- new order is in (order_columns_guard).  The catalog's prices carry none.
CREATE FUNCTION orders.default_currency() RETURNS text
    LANGUAGE c STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'orders_default_currency';
COMMENT ON FUNCTION orders.default_currency() IS
    'The shop''s currency: the default of orders.orders.currency; a customer''s new order is in it (0.43.0)';

CREATE FUNCTION orders.order_columns_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    staff_only constant jsonb := '{"priority": 0, "delivery_fee": 0, "total_amount": 0, "adjustment": 0,
        "payment_status": "pending", "assigned_rep_id": null, "assigned_agent_id": null,
        "webhook_source": null, "delivery_proof": null, "leads_purchased": 0, "external_id": null}';
    stamps constant text[] := '{confirmed_at,started_at,paused_at,reviewed_at,paid_at,shipped_at,delivered_at,
        returned_at,completed_at,cancelled_at,review_completed_at,reviewed_by}';
    -- (0.29.0) customer_id: an agent moved its order to another customer, whom it then read
    agent_fixed constant text[] := '{total_amount,adjustment,delivery_fee,currency,leads_purchased,source,customer_id,payment_method}';
    new_row jsonb;
    old_row jsonb;
    col text;
    role text;
BEGIN
    IF orders.by_maintainer(TG_RELID) OR NOT orders.api_request() THEN
        RETURN NEW;				-- before any work: every INSERT of an order comes here
    END IF;
    new_row := to_jsonb(NEW);
    old_row := CASE WHEN TG_OP = 'UPDATE' THEN to_jsonb(OLD) ELSE staff_only END;
    FOREACH col IN ARRAY stamps LOOP
        IF new_row -> col IS DISTINCT FROM (CASE WHEN TG_OP = 'UPDATE' THEN old_row -> col ELSE 'null' END) THEN
            PERFORM orders.refuse_column('orders.orders', col, 'the lifecycle''s edges (orders.transition)');
        END IF;
    END LOOP;
    role := orders.current_staff_role();
    -- (an INSERT of an order that exists — an upsert, which sends the row as
    -- it was read — is judged by its conflict action's UPDATE, if any; the
    -- row is locked FOR KEY SHARE: one being deleted is waited for, and gone,
    -- the INSERT is judged — a customer's insert racing a delete of the same
    -- id stored a forbidden value)
    IF (new_row -> 'metadata' -> 'webhook' IS DISTINCT FROM (CASE WHEN TG_OP = 'UPDATE' THEN old_row -> 'metadata' -> 'webhook' END)
        OR (NEW.created_at IS DISTINCT FROM (CASE WHEN TG_OP = 'UPDATE' THEN OLD.created_at ELSE now() END)
            AND (role IS NULL OR role NOT IN ('admin', 'manager')
                 OR NOT orders.has_permission('orders', CASE TG_OP WHEN 'INSERT' THEN 'create' ELSE 'edit' END))))
       AND (TG_OP = 'UPDATE' OR NOT EXISTS (SELECT FROM orders.orders o WHERE o.id = NEW.id OR o.order_number = NEW.order_number
                                            FOR KEY SHARE)) THEN
        IF new_row -> 'metadata' -> 'webhook' IS DISTINCT FROM (CASE WHEN TG_OP = 'UPDATE' THEN old_row -> 'metadata' -> 'webhook' END) THEN
            PERFORM orders.refuse_column('orders.orders', 'metadata', 'the webhook ingest (its key "webhook")');
        END IF;
        PERFORM orders.refuse_column('orders.orders', 'created_at', 'admins and managers (an import of past orders)');
    END IF;
    -- (0.29.0) staff without the right to this write reach the order only as
    -- its customer (a staff member may be a customer too): a customer's
    -- rules — an accountant placed its own order "collected" with total 0
    IF role IS NULL OR NOT orders.has_permission('orders', CASE TG_OP WHEN 'INSERT' THEN 'create' ELSE 'edit' END) THEN
        FOR col IN SELECT jsonb_object_keys(staff_only) LOOP
            IF new_row -> col IS DISTINCT FROM old_row -> col THEN
                PERFORM orders.refuse_column('orders.orders', col, 'staff');
            END IF;
        END LOOP;
        IF NEW.source NOT IN ('manual', 'api')
           AND NEW.source IS DISTINCT FROM (CASE WHEN TG_OP = 'UPDATE' THEN OLD.source END) THEN
            PERFORM orders.refuse_column('orders.orders', 'source', 'staff');
        END IF;
        IF TG_OP = 'UPDATE' AND NEW.currency IS DISTINCT FROM OLD.currency THEN
            PERFORM orders.refuse_column('orders.orders', 'currency', 'staff');
        -- (0.43.0) nor chosen for a new order: the catalog's prices are the
        -- shop's currency's (a customer bought a 100.00 lamp for 100 VND)
        ELSIF TG_OP = 'INSERT' AND NEW.currency IS DISTINCT FROM orders.default_currency() THEN
            PERFORM orders.refuse_column('orders.orders', 'currency', 'staff (a customer''s order is in the shop''s currency, the column''s default)');
        END IF;
        -- (0.38.0) where it goes is the customer's until it has left or is
        -- closed: a customer changed the address of a delivered order;
        -- (0.39.0) how it is paid likewise, and not once paid
        IF TG_OP = 'UPDATE' AND (OLD.shipped_at IS NOT NULL OR orders.status_category(OLD.lifecycle, OLD.status) <> 'open') THEN
            FOREACH col IN ARRAY ARRAY['delivery_address', 'delivery_area', 'payment_method'] LOOP
                IF new_row -> col IS DISTINCT FROM old_row -> col THEN
                    PERFORM orders.refuse_column('orders.orders', col, 'staff once the order has shipped or is closed');
                END IF;
            END LOOP;
        END IF;
        IF TG_OP = 'UPDATE' AND OLD.payment_status IN ('collected', 'refunded')
           AND NEW.payment_method IS DISTINCT FROM OLD.payment_method THEN
            PERFORM orders.refuse_column('orders.orders', 'payment_method', 'staff once the payment is collected');
        END IF;
        RETURN NEW;
    END IF;
    IF role NOT IN ('admin', 'manager') THEN
        FOREACH col IN ARRAY ARRAY['external_id', 'webhook_source'] LOOP
            IF new_row -> col IS DISTINCT FROM old_row -> col THEN
                PERFORM orders.refuse_column('orders.orders', col, 'admins and managers');
            END IF;
        END LOOP;
    END IF;
    IF role = 'delivery_agent' AND TG_OP = 'UPDATE' THEN
        FOREACH col IN ARRAY agent_fixed LOOP
            IF new_row -> col IS DISTINCT FROM old_row -> col THEN
                PERFORM orders.refuse_column('orders.orders', col, 'staff other than delivery agents');
            END IF;
        END LOOP;
        IF NEW.payment_status IS DISTINCT FROM OLD.payment_status
           AND NOT (OLD.payment_status IN ('pending', 'failed') AND NEW.payment_status IN ('pending', 'failed', 'collected')) THEN
            PERFORM orders.refuse_column('orders.orders', 'payment_status',
                                         'staff other than delivery agents (an agent collects, fails or retries a payment not yet collected)');
        END IF;
    END IF;
    IF (new_row -> 'assigned_rep_id', new_row -> 'assigned_agent_id')
          IS DISTINCT FROM (old_row -> 'assigned_rep_id', old_row -> 'assigned_agent_id')
          AND NOT orders.has_permission('orders', 'assign') THEN
        PERFORM orders.refuse_column('orders.orders',
            CASE WHEN new_row -> 'assigned_rep_id' IS DISTINCT FROM old_row -> 'assigned_rep_id'
                 THEN 'assigned_rep_id' ELSE 'assigned_agent_id' END, 'staff with permission orders.assign');
    END IF;
    RETURN NEW;
END
$$;
-- (0.23.0) WHEN: the guard refuses only in API requests (its first test),
-- so other writers (a bulk load, a webhook's worker, pg_cron) skip its call
CREATE TRIGGER order_columns_guard
    BEFORE INSERT OR UPDATE OF priority, delivery_fee, total_amount, adjustment, payment_status,
        assigned_rep_id, assigned_agent_id, source, webhook_source, delivery_proof, review_completed_at, reviewed_by,
        leads_purchased, external_id, currency, confirmed_at, started_at, paused_at, reviewed_at, paid_at, shipped_at,
        delivered_at, returned_at, completed_at, cancelled_at, customer_id, created_at, metadata,
        delivery_address, delivery_area, payment_method
    ON orders.orders FOR EACH ROW WHEN (orders.api_request())
    EXECUTE FUNCTION orders.order_columns_guard();

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

-- A customer's tags segment customers for staff and fire customer_tag
-- workflows (run as the owner): in an API request only staff with
-- customers.edit set them; a customer signing up or editing their own row
-- leaves them as they are (0.10.0).
CREATE FUNCTION orders.customer_columns_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF orders.by_maintainer(TG_RELID) OR NOT orders.api_request() THEN
        RETURN NEW;
    END IF;
    -- (0.29.0) whose login a customer row is: its own (a sign-up), or an
    -- admin's decision — a customer rep re-pointed a customer's account_id
    -- to its own account and read that customer's orders outside its scope
    IF (CASE WHEN TG_OP = 'INSERT' THEN NEW.account_id IS NOT NULL AND NEW.account_id IS DISTINCT FROM orders.actor_account()
             ELSE NEW.account_id IS DISTINCT FROM OLD.account_id END)
       AND orders.current_staff_role() IS DISTINCT FROM 'admin' THEN
        PERFORM orders.refuse_column('orders.customers', 'account_id', 'admins (and a customer signing up, its own)');
    END IF;
    -- (0.39.0) a customer row keeps its id: a customer re-keyed its own row
    -- (one without orders), or learnt from 23505 which ids other customers have
    IF TG_OP = 'UPDATE' AND NEW.id IS DISTINCT FROM OLD.id THEN
        PERFORM orders.refuse_column('orders.customers', 'id', 'the extension (a row keeps its id)');
    END IF;
    IF orders.has_permission('customers', 'edit') THEN
        RETURN NEW;
    END IF;
    IF (TG_OP = 'INSERT' AND NEW.tags <> '[]') OR (TG_OP = 'UPDATE' AND NEW.tags IS DISTINCT FROM OLD.tags) THEN
        PERFORM orders.refuse_column('orders.customers', 'tags', 'staff');
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER customer_columns_guard BEFORE INSERT OR UPDATE OF tags, account_id, id
    ON orders.customers FOR EACH ROW WHEN (orders.api_request())    -- (0.23.0) as order_columns_guard
    EXECUTE FUNCTION orders.customer_columns_guard();

-- Notes staff keep about an order, never shown to its customer (0.7.0's
-- orders.internal_notes column moved here).
CREATE TABLE orders.order_notes (
    id          uuid PRIMARY KEY DEFAULT orders.new_id(),
    order_id    uuid NOT NULL REFERENCES orders.orders (id) ON DELETE CASCADE,
    author_id   uuid DEFAULT orders.current_staff_id() REFERENCES orders.staff (id) ON DELETE SET NULL,
    body        text NOT NULL CHECK (body <> '' AND length(body) <= 10000),
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
    USING (orders.sees_customer(id, account_id))
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

-- orders: a customer's own; staff their scope (sees_order); the command's
-- permission on top
ALTER TABLE orders.orders ENABLE ROW LEVEL SECURITY;
CREATE POLICY reach ON orders.orders
    USING (orders.sees_order(customer_id, assigned_agent_id, assigned_rep_id, lifecycle, status))
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
-- status is still open: an agency order's groups and requirements, and the
-- review of its sites, are the client's while the order is in progress
-- and unpaid (its items: customer_cart_item below).  (0.28.0) Unpaid: a
-- client raised a paid order's link_count and approved more sites.
CREATE FUNCTION orders.customer_may_edit_items(order_id uuid) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT FROM orders.orders o
                    WHERE o.id = customer_may_edit_items.order_id
                      AND o.customer_id = ANY (orders.current_customer_ids())
                      AND o.paid_at IS NULL
                      AND orders.status_category(o.lifecycle, o.status) = 'open')
$$;

-- customer_cart_item — may the customer calling write this item of its
-- cart (a row of order "order_id" with id "item_id")?  Its
-- order is the caller's and still in its lifecycle's first status (cod
-- "new", booking "pending", campaign "draft", review "configuring": the
-- cart; once the shop has taken the order on, staff change its items),
-- and the item is no approved site's (the review's items change by the
-- review: OR073 keeps paid ones; a booked item is kept by
-- booked_item_guard, for everybody).  (0.43.0) Nor once staff priced the
-- order (an adjustment: a discount of 50 on 500 became half the price when
-- the customer then cut its items to 100).  0.27.0: before, any open status — a
-- customer could empty an order out for delivery, its stock coming back,
-- or take an order back to "configuring" and zero its sites' items.
-- SECURITY DEFINER: the sites of an item are looked up whoever asks
-- (PL/pgSQL: the sites' table comes later in this script).  It judges
-- with the statement's snapshot; the items' statement judges the orders
-- again once it holds their locks (0.32.0, orders.subtotal_on_items: an
-- order taken on meanwhile refuses the customer's items).
CREATE FUNCTION orders.customer_cart_item(order_id uuid, item_id uuid) RETURNS boolean
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN EXISTS (SELECT FROM orders.orders o JOIN orders.lifecycles l ON l.name = o.lifecycle
                    WHERE o.id = customer_cart_item.order_id
                      AND o.customer_id = ANY (orders.current_customer_ids())
                      AND o.status = l.initial_status AND o.adjustment = 0)
       AND NOT EXISTS (SELECT FROM orders.order_site_selections x WHERE x.order_item_id = customer_cart_item.item_id);
END
$$;

-- customer_item_price — true when "unit_price" is what a customer's item
-- (false for a caller who is neither customer nor staff)
-- costs: its product's price (its variant's, when the variant has one), 0
-- for an item without a product (staff price it); else OR061 (0.27.0:
-- before, a customer chose what it paid).  The catalog's price is not
-- named (the client sends the price its storefront showed —
-- orders.product_catalog(), 0.38.0 — and learns that it changed).  An unknown product is
-- left to the foreign key (23503); a variant needs its product; an
-- inactive product or variant is not for sale (OR061).
CREATE FUNCTION orders.customer_item_price(product_id uuid, variant_id uuid, unit_price numeric) RETURNS boolean
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    price numeric := 0;
    for_sale boolean;
BEGIN
    -- (0.36.0) it judges the items of customers and of delivery agents
    -- (item_price_guard): anybody else (anon) learnt from it which products
    -- exist, which are for sale and at what price
    IF coalesce(cardinality(orders.current_customer_ids()), 0) = 0 AND orders.current_staff_role() IS NULL THEN
        RETURN false;
    END IF;
    IF customer_item_price.product_id IS NULL AND customer_item_price.variant_id IS NOT NULL THEN
        RAISE EXCEPTION 'an item of variant % names no product', customer_item_price.variant_id
            USING ERRCODE = 'OR061', HINT = 'Send the variant''s product_id with it.';
    ELSIF customer_item_price.product_id IS NOT NULL THEN
        SELECT coalesce(v.price, p.price), p.is_active AND coalesce(v.is_active, true) INTO price, for_sale
          FROM orders.products p
          LEFT JOIN orders.product_variants v ON v.product_id = p.id AND v.id = customer_item_price.variant_id
         WHERE p.id = customer_item_price.product_id;
        IF NOT FOUND THEN
            RETURN true;
        ELSIF NOT for_sale THEN
            RAISE EXCEPTION 'product % is not for sale', customer_item_price.product_id
                USING ERRCODE = 'OR061', HINT = 'It (or its variant) is inactive; choose another.';
        END IF;
    END IF;
    IF customer_item_price.unit_price IS DISTINCT FROM price THEN
        RAISE EXCEPTION '%', CASE WHEN customer_item_price.product_id IS NULL
                THEN format('an item without a product costs 0 until staff price it, not %s', customer_item_price.unit_price)
                ELSE format('unit_price %s is not the catalog''s price of product %s', customer_item_price.unit_price,
                            customer_item_price.product_id) END
            USING ERRCODE = 'OR061',
                  HINT = 'Send the price the catalog shows now (it may have changed); staff set other prices.';
    END IF;
    RETURN true;
END
$$;

-- items, history and notes follow their order (the subquery sees the
-- orders the caller's policies let through); a customer writes the items
-- of its cart only, at the catalog's prices
ALTER TABLE orders.order_items ENABLE ROW LEVEL SECURITY;
CREATE POLICY reach ON orders.order_items
    USING (EXISTS (SELECT FROM orders.orders o WHERE o.id = order_id));
CREATE POLICY insert_right ON orders.order_items AS RESTRICTIVE FOR INSERT
    WITH CHECK (NOT (SELECT orders.api_request()) OR (SELECT orders.has_permission('orders', 'edit'))
           OR (orders.customer_cart_item(order_id, id) AND orders.customer_item_price(product_id, variant_id, unit_price)));
CREATE POLICY update_right ON orders.order_items AS RESTRICTIVE FOR UPDATE
    USING (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('orders', 'edit')) OR orders.customer_cart_item(order_id, id))
    WITH CHECK (NOT (SELECT orders.api_request()) OR (SELECT orders.has_permission('orders', 'edit'))
           OR (orders.customer_cart_item(order_id, id) AND orders.customer_item_price(product_id, variant_id, unit_price)));
CREATE POLICY delete_right ON orders.order_items AS RESTRICTIVE FOR DELETE
    USING (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('orders', 'edit')) OR orders.customer_cart_item(order_id, id));

ALTER TABLE orders.order_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY reach ON orders.order_history FOR SELECT
    USING (EXISTS (SELECT FROM orders.orders o WHERE o.id = order_id));

ALTER TABLE orders.order_notes ENABLE ROW LEVEL SECURITY;
-- (0.36.0) a note is written, as it is read, by active staff on an order
-- they see: the check named only the author, and a delivery agent (or a
-- deactivated rep) wrote notes on any order by its id
CREATE POLICY reach ON orders.order_notes
    USING ((SELECT orders.current_staff_role()) IS NOT NULL
           AND EXISTS (SELECT FROM orders.orders o WHERE o.id = order_id))
    WITH CHECK ((SELECT orders.current_staff_role()) IS NOT NULL
                AND EXISTS (SELECT FROM orders.orders o WHERE o.id = order_id)
                AND (author_id = (SELECT orders.current_staff_id())
                     OR (SELECT orders.current_staff_role()) = 'admin'));
CREATE POLICY update_right ON orders.order_notes AS RESTRICTIVE FOR UPDATE
    USING (NOT (SELECT orders.api_request())
           OR author_id = (SELECT orders.current_staff_id()) OR (SELECT orders.current_staff_role()) = 'admin');
CREATE POLICY delete_right ON orders.order_notes AS RESTRICTIVE FOR DELETE
    USING (NOT (SELECT orders.api_request())
           OR author_id = (SELECT orders.current_staff_id()) OR (SELECT orders.current_staff_role()) = 'admin');

-- leads: a customer's own; staff except delivery agents by orders.*, a
-- lead of a campaign only when they read the campaign's order (0.39.0: a
-- rep read — and with orders.delete deleted — the leads, contacts
-- included, of another rep's campaign it could not see; a lead without a
-- campaign stays every such staff member's)
ALTER TABLE orders.leads ENABLE ROW LEVEL SECURITY;
CREATE POLICY reach ON orders.leads
    USING (customer_id = ANY ((SELECT orders.current_customer_ids())::uuid[])
           OR ((SELECT orders.has_permission('orders', 'view'))
               AND (SELECT orders.current_staff_role()) <> 'delivery_agent'
               AND (order_id IS NULL OR EXISTS (SELECT FROM orders.orders o WHERE o.id = order_id))));
-- (0.29.0) a lead counts toward an order in the writer's scope only: a
-- customer rep delivered leads to another rep's campaign it cannot see,
-- which completed it in the rep's name (permissions widen the actions, not
-- the scope — as transition() holds it)
CREATE POLICY insert_right ON orders.leads AS RESTRICTIVE FOR INSERT
    WITH CHECK (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('orders', 'edit'))
                AND (SELECT orders.current_staff_role()) <> 'delivery_agent'
                AND orders.order_in_scope(order_id));
CREATE POLICY update_right ON orders.leads AS RESTRICTIVE FOR UPDATE
    USING (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('orders', 'edit'))
           AND (SELECT orders.current_staff_role()) <> 'delivery_agent'
           AND orders.order_in_scope(order_id));
CREATE POLICY delete_right ON orders.leads AS RESTRICTIVE FOR DELETE
    USING (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('orders', 'delete')));

-- slots: staff read capacity, admins (workflows.edit) define it; holders
-- read their holds, staff all (bookings are made through the functions).
-- (0.42.0) A holder by text and kind; an API request without a subject
-- reads none (its actor, the API role, is every such request's).
ALTER TABLE orders.service_capacity ENABLE ROW LEVEL SECURITY;
CREATE POLICY reach ON orders.service_capacity FOR SELECT
    USING ((SELECT orders.has_permission('orders', 'view')));
CREATE POLICY editable ON orders.service_capacity
    USING ((SELECT orders.has_permission('workflows', 'edit')));
ALTER TABLE orders.slot_reservations ENABLE ROW LEVEL SECURITY;
CREATE POLICY reach ON orders.slot_reservations FOR SELECT
    USING ((holder = (SELECT orders.current_actor()) AND held_by_subject = (SELECT orders.actor_is_subject())
            AND (held_by_subject OR NOT (SELECT orders.api_request())))
           OR ((SELECT orders.has_permission('orders', 'view'))
               AND (SELECT orders.current_staff_role()) <> 'delivery_agent'));

-- deliveries: an active agent its own; other staff those of the orders
-- they see.  A delivery written is one of an order the writer sees (0.27.0:
-- an agent recorded deliveries, and ratings, of others' orders; a
-- deactivated agent kept reading its own).
ALTER TABLE orders.deliveries ENABLE ROW LEVEL SECURITY;
CREATE POLICY reach ON orders.deliveries
    USING ((agent_id = (SELECT orders.current_staff_id()) AND (SELECT orders.current_staff_role()) IS NOT NULL)
           OR ((SELECT orders.has_permission('orders', 'view'))
               AND (SELECT orders.current_staff_role()) <> 'delivery_agent'
               AND EXISTS (SELECT FROM orders.orders o WHERE o.id = order_id)))
    WITH CHECK (EXISTS (SELECT FROM orders.orders o WHERE o.id = order_id)
           AND ((agent_id = (SELECT orders.current_staff_id()) AND (SELECT orders.current_staff_role()) IS NOT NULL)
                OR ((SELECT orders.has_permission('orders', 'view'))
                    AND (SELECT orders.current_staff_role()) <> 'delivery_agent')));
CREATE POLICY insert_right ON orders.deliveries AS RESTRICTIVE FOR INSERT
    WITH CHECK (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('orders', 'edit')));
CREATE POLICY update_right ON orders.deliveries AS RESTRICTIVE FOR UPDATE
    USING (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('orders', 'edit')));
CREATE POLICY delete_right ON orders.deliveries AS RESTRICTIVE FOR DELETE
    USING (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('orders', 'delete')));

-- money: financial.*; nothing is deleted through the API; a row is
-- recorded by its writer (an admin may name another: 0.27.0)
ALTER TABLE orders.financial_transactions ENABLE ROW LEVEL SECURITY;
ALTER TABLE orders.expenses ENABLE ROW LEVEL SECURITY;
CREATE POLICY reach ON orders.financial_transactions FOR SELECT
    USING ((SELECT orders.has_permission('financial', 'view')));
CREATE POLICY add ON orders.financial_transactions FOR INSERT
    WITH CHECK ((SELECT orders.has_permission('financial', 'create'))
                AND (recorded_by_user_id IS NOT DISTINCT FROM (SELECT orders.current_staff_id())
                     OR (SELECT orders.current_staff_role()) = 'admin'));
CREATE POLICY edit ON orders.financial_transactions FOR UPDATE
    USING ((SELECT orders.has_permission('financial', 'edit')));
CREATE POLICY reach ON orders.expenses FOR SELECT
    USING ((SELECT orders.has_permission('financial', 'view')));
CREATE POLICY add ON orders.expenses FOR INSERT
    WITH CHECK ((SELECT orders.has_permission('financial', 'create'))
                AND (recorded_by_user_id IS NOT DISTINCT FROM (SELECT orders.current_staff_id())
                     OR (SELECT orders.current_staff_role()) = 'admin'));
CREATE POLICY edit ON orders.expenses FOR UPDATE
    USING ((SELECT orders.has_permission('financial', 'edit')));
-- recorder_guard — in an API request only an admin changes who recorded a
-- ledger row or an expense (0.27.0; the INSERT policies above keep a new
-- row its writer's).  A staff row deleted sets the column NULL as the
-- owner (its foreign key), which passes.
CREATE FUNCTION orders.recorder_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.recorded_by_user_id IS DISTINCT FROM OLD.recorded_by_user_id AND NOT orders.by_maintainer(TG_RELID)
       AND orders.current_staff_role() IS DISTINCT FROM 'admin' THEN
        PERFORM orders.refuse_column('orders.' || TG_TABLE_NAME, 'recorded_by_user_id', 'admins');
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER recorder_guard BEFORE UPDATE OF recorded_by_user_id ON orders.financial_transactions
    FOR EACH ROW WHEN (orders.api_request()) EXECUTE FUNCTION orders.recorder_guard();
CREATE TRIGGER recorder_guard BEFORE UPDATE OF recorded_by_user_id ON orders.expenses
    FOR EACH ROW WHEN (orders.api_request()) EXECUTE FUNCTION orders.recorder_guard();
-- delivery_verdict_guard — in an API request a delivery agent writes no
-- delivery's rating or customer feedback (0.28.0): they are the customer's
-- verdict on the agent, which agent_performance_view averages (an agent
-- recorded ten five-star deliveries of one order).
CREATE FUNCTION orders.delivery_verdict_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF orders.by_maintainer(TG_RELID) OR orders.current_staff_role() IS DISTINCT FROM 'delivery_agent' THEN
        RETURN NEW;
    END IF;
    IF NEW.rating IS DISTINCT FROM (CASE WHEN TG_OP = 'UPDATE' THEN OLD.rating END) THEN
        PERFORM orders.refuse_column('orders.deliveries', 'rating', 'staff other than delivery agents');
    ELSIF NEW.customer_feedback IS DISTINCT FROM (CASE WHEN TG_OP = 'UPDATE' THEN OLD.customer_feedback END) THEN
        PERFORM orders.refuse_column('orders.deliveries', 'customer_feedback', 'staff other than delivery agents');
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER delivery_verdict_guard BEFORE INSERT OR UPDATE OF rating, customer_feedback ON orders.deliveries
    FOR EACH ROW WHEN (orders.api_request()) EXECUTE FUNCTION orders.delivery_verdict_guard();
-- delivery_agent_guard — in an API request a delivery is its order's
-- assigned agent's (0.37.0): a customer rep recorded deliveries, with
-- one-star ratings, of agents who never had the order (or of an admin),
-- which agent_performance_view counted.  Asked when a delivery is written
-- or moved to another order or agent; a writer without orders.edit, or an
-- order the writer does not see, is left to the policies (42501).
CREATE FUNCTION orders.delivery_agent_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    assigned uuid;
    number text;
BEGIN
    IF orders.by_maintainer(TG_RELID)
       OR (TG_OP = 'UPDATE' AND NEW.order_id = OLD.order_id AND NEW.agent_id = OLD.agent_id)
       OR NOT orders.has_permission('orders', 'edit') THEN
        RETURN NEW;
    END IF;
    SELECT o.assigned_agent_id, o.order_number INTO assigned, number FROM orders.orders o WHERE o.id = NEW.order_id;
    IF FOUND AND assigned IS DISTINCT FROM NEW.agent_id THEN
        RAISE EXCEPTION 'a delivery of order % is its assigned agent''s', number
            USING ERRCODE = 'OR042',
                  DETAIL = CASE WHEN assigned IS NULL THEN 'The order has no delivery agent assigned.'
                                ELSE 'The delivery names another staff member than the order''s agent.' END,
                  HINT = 'Assign the agent to the order first (orders.assigned_agent_id), then record its delivery.';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER delivery_agent_guard BEFORE INSERT OR UPDATE OF order_id, agent_id ON orders.deliveries
    FOR EACH ROW WHEN (orders.api_request()) EXECUTE FUNCTION orders.delivery_agent_guard();
-- item_price_guard — in an API request a delivery agent prices no item
-- (0.28.0): it adds an item at the catalog's price only (as a customer
-- does, OR061) and changes no item's price (an agent set a delivered,
-- collected order's prices to 0: the total followed, and the automatic
-- refund with it).  Quantities stay the agent's (an item refused at the
-- door) — while its order is open and uncollected: an agent's statement
-- that moves the subtotal of a delivered or collected order is refused at
-- its end, under the orders' locks (orders.subtotal_on_items, in C).  Its
-- WHEN clause asks for an agent: other writers pay no call.
CREATE FUNCTION orders.item_price_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF orders.by_maintainer(TG_RELID) THEN
        RETURN NEW;
    ELSIF TG_OP = 'INSERT' THEN
        PERFORM orders.customer_item_price(NEW.product_id, NEW.variant_id, NEW.unit_price);
    ELSIF NEW.unit_price IS DISTINCT FROM OLD.unit_price THEN
        PERFORM orders.refuse_column('orders.order_items', 'unit_price', 'staff other than delivery agents');
    -- (0.29.0) nor what it is: an agent made two lamps two gold watches at
    -- the lamps' price, moving stock between products
    ELSIF NEW.product_id IS DISTINCT FROM OLD.product_id THEN
        PERFORM orders.refuse_column('orders.order_items', 'product_id', 'staff other than delivery agents');
    ELSIF NEW.variant_id IS DISTINCT FROM OLD.variant_id THEN
        PERFORM orders.refuse_column('orders.order_items', 'variant_id', 'staff other than delivery agents');
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER item_price_guard BEFORE INSERT OR UPDATE OF unit_price, product_id, variant_id ON orders.order_items
    FOR EACH ROW WHEN (orders.api_request() AND orders.current_staff_role() IS NOT DISTINCT FROM 'delivery_agent')
    EXECUTE FUNCTION orders.item_price_guard();

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
                    orders.has_permission(text, text), orders.product_catalog(text, integer, text, uuid) TO %I, %I',
                   anon_role, authenticated_role);

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
    -- columns no API role may touch: internal notes and metrics of sites, token hashes
    EXECUTE format('GRANT SELECT (id, order_group_id, domain, domain_id, metrics, status, target_page_url, anchor_text,
                                  reviewed_at, reviewed_by, client_notes, order_item_id, created_at, updated_at),
                          INSERT (id, order_group_id, domain, domain_id, metrics, status, target_page_url, anchor_text,
                                  client_notes),
                          UPDATE (status, client_notes, target_page_url, anchor_text, domain, domain_id, metrics),
                          DELETE
                    ON orders.order_site_selections TO %I', authenticated_role);
    EXECUTE format('GRANT SELECT (id, order_id, expires_at, allowed_actions, created_by, used_at,
                                  converted_to_account_id, revoked_at, metadata, created_at, customer_id)
                    ON orders.order_share_tokens TO %I', authenticated_role);
    EXECUTE format('GRANT SELECT ON orders.lifecycle_gates TO %I, %I', anon_role, authenticated_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION orders.shared_order(text), orders.share_review_sites(text, uuid, jsonb),
                    orders.convert_share_token(text) TO %I, %I', anon_role, authenticated_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION orders.start_analysis(uuid, uuid), orders.complete_analysis(uuid, jsonb),
                    orders.review_sites(uuid, jsonb), orders.create_share_token(uuid, interval, text[], jsonb),
                    orders.revoke_share_token(uuid), orders.site_internal_notes(uuid),
                    orders.set_site_internal_notes(uuid, text), orders.site_internal_metrics(uuid) TO %I',
                   authenticated_role);
    -- notifications (0.9.0): staff read, mark read and delete their own
    EXECUTE format('GRANT SELECT, DELETE, UPDATE (is_read) ON orders.notifications TO %I', authenticated_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION orders.unread_notifications(), orders.mark_notifications_read(uuid[]) TO %I',
                   authenticated_role);
    -- workflows (0.10.0): staff with the workflows permissions define them
    -- and read their runs; runs are written by the extension
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON orders.workflows TO %I', authenticated_role);
    EXECUTE format('GRANT SELECT ON orders.workflow_executions TO %I', authenticated_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION orders.run_workflow(uuid, uuid, uuid) TO %I', authenticated_role);
    -- stock movements (0.22.0): staff with products.edit move stock, staff
    -- with products.view read how it moved
    EXECUTE format('GRANT SELECT ON orders.stock_movements TO %I', authenticated_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION orders.move_stock(uuid, uuid, integer, uuid, text, integer) TO %I',
                   authenticated_role);
    -- (0.41.0) the activity log, and the shops' webhooks (not their secrets)
    -- and logs: staff with activity.view / webhooks.view read them
    EXECUTE format('GRANT SELECT ON orders.activity_logs, orders.webhook_logs TO %I', authenticated_role);
    EXECUTE format('GRANT SELECT (id, name, source, endpoint, field_mapping, defaults, is_active, created_at, updated_at)
                    ON orders.webhooks TO %I', authenticated_role);
    EXECUTE format('GRANT USAGE ON SEQUENCE orders.order_number_seq TO %I', authenticated_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION orders.transition(uuid, text, text, text),
                    orders.assign_lead(uuid, uuid), orders.order_stats(),
                    orders.reserve_time_slot(uuid, integer, integer), orders.confirm_booking(uuid, uuid),
                    orders.release_reservation(uuid),
                    orders.current_customer_ids(), orders.current_staff_id(), orders.current_staff_role(),
                    orders.actor_account(), orders.actor_is_subject(), orders.staff_sees_order(uuid, uuid, text, text),
                    orders.customer_may_edit_items(uuid), orders.agent_serves_customer(uuid),
                    orders.sees_order(uuid, uuid, uuid, text, text), orders.sees_customer(uuid, uuid),
                    orders.order_in_scope(uuid), orders.recent_orders(text[], integer), orders.agent_active_deliveries(uuid),
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
    orders.order_columns_guard(), orders.staff_columns_guard(), orders.customer_columns_guard(),
    orders.recorder_guard(), orders.delivery_verdict_guard(), orders.delivery_agent_guard(), orders.item_price_guard() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orders.actor_account(), orders.actor_is_subject(), orders.current_customer_ids(), orders.current_staff_role(),
    orders.has_permission(text, text), orders.staff_sees_order(uuid, uuid, text, text),
    orders.customer_may_edit_items(uuid), orders.customer_cart_item(uuid, uuid), orders.customer_item_price(uuid, uuid, numeric),
    orders.by_maintainer(oid), orders.restoring(oid), orders.api_request(), orders.refuse_column(text, text, text),
    orders.agent_serves_customer(uuid), orders.sees_order(uuid, uuid, uuid, text, text),
    orders.sees_customer(uuid, uuid), orders.order_in_scope(uuid) TO PUBLIC;
