-- orders 0.37.0 -> 0.38.0
--  * lifecycle_graph shows each edge's allowed_staff and gate (the staff
--    roles that take it in an API request, and the check it waits for):
--    an API client reading the graph saw only allowed_roles, the database
--    roles, which API requests never are.
--  * product_catalog(category), new: the active products (and each active
--    variant of them) with the price a customer's item must carry (no
--    cost, no stock) — customers
--    and anon read no product table, so a shopper could not learn the
--    price its own item had to name (OR061).  grant_api grants it to both
--    API roles, and this update to the API roles already recorded.
--  * workflows run with their author's authority (workflow_author_refusal,
--    new, asked by execute_workflow): active staff with workflows.create
--    or .edit who reaches the run's order and customer — else the run is
--    stored failed (42501) and no step runs.  A deactivated or demoted
--    admin's workflow kept sending order data to its URL, and a rep's
--    reached orders outside the rep's scope.  check_workflow: whoever
--    changes a workflow through the API, leaving it active, becomes its
--    author; workflow_author_deleted (new trigger on staff): a deleted
--    author's workflows stop (an API DELETE of such a staff member failed
--    with 23503 before: check_workflow put the deleted author back).
--  * order_share_tokens.customer_id, new: a share link is for the order's
--    customer when it was made (the links made before: its customer now);
--    share_token_row and convert_share_token refuse it (OR080) once the
--    order belongs to another customer — a link followed its order to
--    another customer, and converting it handed that customer's row (its
--    address, its other orders) to whoever redeemed it.
--  * act_as / act_back, new: how a share link's creator and a workflow's
--    author are asked whether they still may (the JWT subject and the
--    orders.acting_for label set to their account, then put back) — the
--    claims alone are not believed for a DBA's own login, where a
--    deactivated creator's links kept showing.
--  * shares_order, new: may_share's judgement of the acting account by the
--    data (may_share lets any caller outside the API share); a link's
--    creator is asked it, behind a DBA's login too.
--  * workflow_recipients locks the staff it names FOR KEY SHARE (VOLATILE
--    now): a recipient being deleted is waited for and left out — the
--    step failed on the notification's foreign key (23503) after the
--    run's earlier steps, and the other recipients lost theirs.
--  * convert_share_token locks the order FOR SHARE first (then its
--    customer, then the link): a move, cancellation or delete of the order
--    under way is waited for (it converted the link's customer while the
--    order went to another).
--  * share_token_customer, new trigger: a link inserted without its
--    customer (a DBA's, a restore of links dumped before 0.38.0) gets its
--    order's customer of the moment.
--  * check_workflow judges a workflow's trigger config and steps when
--    they are written (a webhook deleted since refused every other change,
--    the deactivation of a deleted author's workflows too: OR110).
--  * share_creator_may_share: a link that converts, made by staff, stands
--    while its creator is an admin (only admins make one): an admin demoted to
--    customer rep kept a converting link, and another account of theirs
--    redeemed it to take the customer over.
--  * order_columns_guard: in an API request a customer changes its order's
--    delivery_address and delivery_area only while the order is open and
--    not shipped (a customer changed a delivered order's address); its
--    trigger is re-created with the two columns in its list (a DBA's
--    DISABLE / ENABLE ALWAYS kept, left dropped when dropped).
--  * todays_order_summary: collected_amount and pending_amount are 0.00
--    when no order counts, as when some do (a customer saw 0, staff 0.00).
--  * (library) the caller's identity (staff row, role, permissions,
--    customer rows) is looked up again when the statement's snapshot sees
--    other committed rows: a READ COMMITTED transaction's read-only
--    statements kept a deactivated staff member's authority until its
--    first write.
--  * (library) a status change run by a trigger of another (a DBA's
--    trigger calling orders.transition()) leaves the outer change its
--    notes, idempotency key and actor.
--  * (library) a generated order number comes back when its INSERT is
--    rolled back to a savepoint, and an upsert may send an order's own
--    number back (OR009 only for an ORD- number no order has); in an API
--    request only customers and active staff draw a number (anon burnt
--    the sequence's numbers: 42501) — and writers row level security does
--    not hold (a DBA's BYPASSRLS guest checkout); an existing order's
--    number is looked for FOR KEY SHARE (one deleted meanwhile had its
--    number stored for another order).
--  * (library) the role defaults are read again after a first read that
--    failed (a lock timeout left every staff member of that backend
--    without them).

\echo Use "ALTER EXTENSION orders UPDATE TO '0.38.0'" to load this file. \quit

CREATE OR REPLACE VIEW orders.lifecycle_graph WITH (security_invoker = true) AS
SELECT t.lifecycle, t.from_status, fs.category AS from_category,
       t.to_status, ts.category AS to_category, t.stamp_column, t.allowed_roles,
       t.allowed_staff, t.gate
  FROM orders.lifecycle_transitions t
  JOIN orders.lifecycle_states fs ON fs.lifecycle = t.lifecycle AND fs.status = t.from_status
  JOIN orders.lifecycle_states ts ON ts.lifecycle = t.lifecycle AND ts.status = t.to_status
 ORDER BY t.lifecycle, fs.position, ts.position;

CREATE OR REPLACE VIEW orders.todays_order_summary WITH (security_invoker = true) AS
SELECT count(*)::integer AS orders_today,
       (count(*) FILTER (WHERE s.category = 'fulfilled'))::integer AS delivered_count,
       coalesce(sum(o.total_amount) FILTER (WHERE s.category = 'fulfilled' AND o.payment_status = 'collected'), 0.00)
           AS collected_amount,
       coalesce(sum(o.total_amount) FILTER (WHERE s.category = 'fulfilled' AND o.payment_status = 'pending'), 0.00)
           AS pending_amount,
       (count(*) FILTER (WHERE s.category = 'cancelled'))::integer AS cancelled_count,
       (count(*) FILTER (WHERE s.category = 'returned'))::integer AS returned_count
  FROM orders.orders o
  JOIN orders.lifecycle_states s ON s.lifecycle = o.lifecycle AND s.status = o.status
 WHERE o.created_at >= CURRENT_DATE::timestamptz AND o.created_at < (CURRENT_DATE + 1)::timestamptz;

CREATE OR REPLACE FUNCTION orders.share_creator_may_share(t orders.order_share_tokens) RETURNS boolean
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    account uuid;
    saved text[];
    may boolean;
BEGIN
    IF t.created_by IS NULL
       OR t.created_by !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
        RETURN true;
    END IF;
    account := t.created_by::uuid;
    saved := orders.act_as(account);
    may := orders.shares_order(t.order_id)
           AND (NOT 'convert' = ANY (t.allowed_actions) OR orders.current_staff_id() IS NULL
                OR orders.current_staff_role() IS NOT DISTINCT FROM 'admin');
    PERFORM orders.act_back(saved);
    RETURN may;
END
$$;

-- product_catalog — what a storefront shows a shopper (0.38.0): each active
-- product, and each active variant of it, with the unit price a customer's
-- item of it must carry (customer_item_price: OR061 otherwise) — the
-- product alone (variant_id NULL) at the product's price, a variant at its
-- own or else the product's — and no cost or stock figures.  Customers and
-- anon read no product table (staff with products.view read it all), so
-- before this a shopper could not learn the price its own item had to
-- name.  SECURITY DEFINER with a body bound at creation.  A shop whose
-- catalog is not public revokes EXECUTE from its anon role (grant_api
-- grants it).
CREATE FUNCTION orders.product_catalog(category text DEFAULT NULL)
    RETURNS TABLE (product_id uuid, variant_id uuid, name text, variant_name text, sku text,
                   description text, category text, price numeric, attributes jsonb, images jsonb)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT c.* FROM (
        SELECT p.id, NULL::uuid, p.name::text, NULL::text, p.sku::text, p.description, p.category,
               p.price::numeric, '{}'::jsonb, p.images::jsonb
          FROM orders.products p
         WHERE p.is_active AND (product_catalog.category IS NULL OR p.category = product_catalog.category)
        UNION ALL
        SELECT p.id, v.id, p.name::text, v.name::text, v.sku::text, p.description, p.category,
               coalesce(v.price, p.price)::numeric, v.attributes::jsonb, p.images::jsonb
          FROM orders.products p JOIN orders.product_variants v ON v.product_id = p.id AND v.is_active
         WHERE p.is_active AND (product_catalog.category IS NULL OR p.category = product_catalog.category)
    ) c (product_id, variant_id, name, variant_name, sku, description, category, price, attributes, images)
     ORDER BY c.name, c.variant_name NULLS FIRST, c.product_id, c.variant_id;
END;
COMMENT ON FUNCTION orders.product_catalog(text) IS
    'The active products and variants with the price a customer''s item must carry (no cost, no stock); optionally of one category';
REVOKE ALL ON FUNCTION orders.product_catalog(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION orders.grant_api(anon_role name DEFAULT 'anon', authenticated_role name DEFAULT 'authenticated')
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
                    orders.has_permission(text, text), orders.product_catalog(text) TO %I, %I',
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
    EXECUTE format('GRANT USAGE ON SEQUENCE orders.order_number_seq TO %I', authenticated_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION orders.transition(uuid, text, text, text),
                    orders.assign_lead(uuid, uuid), orders.order_stats(),
                    orders.reserve_time_slot(uuid, integer, integer), orders.confirm_booking(uuid, uuid),
                    orders.release_reservation(uuid),
                    orders.current_customer_ids(), orders.current_staff_id(), orders.current_staff_role(),
                    orders.actor_account(), orders.staff_sees_order(uuid, uuid, text, text),
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

-- the API roles grant_api recorded before get the catalog as it now grants it
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT a.role_oid FROM orders.api_roles a JOIN pg_catalog.pg_roles p ON p.oid = a.role_oid LOOP
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION orders.product_catalog(text) TO %s', r.role_oid::regrole);
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION orders.order_columns_guard() RETURNS trigger
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
    agent_fixed constant text[] := '{total_amount,adjustment,delivery_fee,currency,leads_purchased,source,customer_id}';
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
        END IF;
        -- (0.38.0) where it goes is the customer's until it has left or is
        -- closed: a customer changed the address of a delivered order
        IF TG_OP = 'UPDATE' AND (OLD.shipped_at IS NOT NULL OR orders.status_category(OLD.lifecycle, OLD.status) <> 'open') THEN
            FOREACH col IN ARRAY ARRAY['delivery_address', 'delivery_area'] LOOP
                IF new_row -> col IS DISTINCT FROM old_row -> col THEN
                    PERFORM orders.refuse_column('orders.orders', col, 'staff once the order has shipped or is closed');
                END IF;
            END LOOP;
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

DO $upgrade$
DECLARE
    was "char";
BEGIN
    SELECT tgenabled INTO was FROM pg_catalog.pg_trigger
     WHERE tgrelid = 'orders.orders'::pg_catalog.regclass AND tgname = 'order_columns_guard';
    IF was IS NOT NULL THEN         -- dropped by a DBA: left dropped
        CREATE OR REPLACE TRIGGER order_columns_guard
            BEFORE INSERT OR UPDATE OF priority, delivery_fee, total_amount, adjustment, payment_status,
                assigned_rep_id, assigned_agent_id, source, webhook_source, delivery_proof, review_completed_at, reviewed_by,
                leads_purchased, external_id, currency, confirmed_at, started_at, paused_at, reviewed_at, paid_at, shipped_at,
                delivered_at, returned_at, completed_at, cancelled_at, customer_id, created_at, metadata,
                delivery_address, delivery_area
            ON orders.orders FOR EACH ROW WHEN (orders.api_request())
            EXECUTE FUNCTION orders.order_columns_guard();
        IF was <> 'O' THEN
            EXECUTE pg_catalog.format('ALTER TABLE orders.orders %s TRIGGER order_columns_guard',
                                      CASE was WHEN 'A' THEN 'ENABLE ALWAYS' WHEN 'R' THEN 'ENABLE REPLICA'
                                               ELSE 'DISABLE' END);
        END IF;
    END IF;
END
$upgrade$;

-- (0.38.0) a share link is for the order's customer when it was made; the
-- links made before are for the customer their order has now
ALTER TABLE orders.order_share_tokens ADD COLUMN customer_id uuid;
COMMENT ON COLUMN orders.order_share_tokens.customer_id IS
    'The order''s customer when the link was made (0.38.0): the link stands while the order is that customer''s';
UPDATE orders.order_share_tokens t SET customer_id = o.customer_id FROM orders.orders o WHERE o.id = t.order_id;
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT a.role_oid FROM orders.api_roles a JOIN pg_catalog.pg_roles p ON p.oid = a.role_oid
              WHERE a.kind = 'authenticated' LOOP
        EXECUTE pg_catalog.format('GRANT SELECT (customer_id) ON orders.order_share_tokens TO %s', r.role_oid::regrole);
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION orders.create_share_token(order_id uuid, expires_in interval DEFAULT '7 days',
                                          allowed_actions text[] DEFAULT '{view}', metadata jsonb DEFAULT '{}')
    RETURNS text
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    token text;
BEGIN
    -- (0.35.0) 22004, as the other API functions (was: a "does not exist" of <NULL>)
    IF create_share_token.order_id IS NULL THEN
        RAISE EXCEPTION 'orders.create_share_token: argument "order_id" must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT orders.may_share(create_share_token.order_id) THEN
        RAISE EXCEPTION 'order % does not exist', create_share_token.order_id
            USING ERRCODE = 'OR006',
                  HINT = 'Either no order has this id, row level security hides it, or you may not share it.';
    END IF;
    IF expires_in IS NULL OR expires_in <= interval '0' OR expires_in > interval '90 days' THEN
        RAISE EXCEPTION 'orders.create_share_token: expires_in must be between 0 and 90 days'
            USING ERRCODE = '22023';
    END IF;
    IF cardinality(allowed_actions) = 0 OR NOT allowed_actions <@ ARRAY['view', 'approve', 'convert'] THEN
        RAISE EXCEPTION 'orders.create_share_token: allowed_actions must be some of view, approve, convert, not %',
                        left(allowed_actions::text, 100)
            USING ERRCODE = '22023';
    END IF;
    -- (0.37.0) what a link carries for the marketing (UTM and the like) is
    -- small: it was unbounded, a store of any size for whoever may share
    IF octet_length(create_share_token.metadata::text) > 4096 THEN
        RAISE EXCEPTION 'orders.create_share_token: metadata may have at most 4096 bytes, not %',
                        octet_length(create_share_token.metadata::text)
            USING ERRCODE = '22001';
    END IF;
    -- (0.28.0) a link that converts hands the order's customer row to
    -- whoever redeems it: staff who may edit customers make those (a
    -- delivery agent made one for a shop customer and took it over)
    -- (0.35.0) by admins only, as customers.account_id is written (0.29.0):
    -- a customer rep made one for a shop customer without a login in its
    -- scope, converted it with another account of its own and read that
    -- customer's other orders
    IF 'convert' = ANY (allowed_actions) AND orders.api_request() AND orders.current_staff_role() IS DISTINCT FROM 'admin' THEN
        RAISE EXCEPTION 'a share link that converts (allowed_actions "convert") is made by admins'
            USING ERRCODE = '42501',
                  HINT = 'Leave "convert" out: the link still shows (and may let approve) the order.';
    END IF;
    -- an id of this database's partition (a proxy routes the token by it),
    -- then a random uuid: 184 random bits in all
    token := translate(encode(uuid_send(orders.new_id()) || uuid_send(gen_random_uuid()), 'base64'), '+/=', '-_');
    INSERT INTO orders.order_share_tokens (order_id, token_hash, expires_at, allowed_actions, created_by, metadata)
    VALUES (create_share_token.order_id, sha256(convert_to(token, 'UTF8')), now() + expires_in,
            coalesce(create_share_token.allowed_actions, '{view}'), orders.current_actor(),
            coalesce(create_share_token.metadata, '{}'));
    RETURN token;
END
$$;

CREATE OR REPLACE FUNCTION orders.share_token_row(token text, action text)
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
    IF NOT FOUND
       OR NOT EXISTS (SELECT FROM orders.orders o WHERE o.id = t.order_id AND o.customer_id = t.customer_id)
       OR NOT orders.share_creator_may_share(t) THEN
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

CREATE OR REPLACE FUNCTION orders.convert_share_token(token text) RETURNS uuid
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
            USING ERRCODE = 'OR082',
                  DETAIL = CASE WHEN orders.current_actor() = current_user THEN 'The request carries no JWT sub.'
                                ELSE format('Its JWT sub "%s" is no account id (a uuid).', left(orders.current_actor(), 64)) END;
    END IF;
    -- (0.28.0) a staff account is nobody's customer: it acts on orders as staff
    IF EXISTS (SELECT FROM orders.staff s WHERE s.account_id = account) THEN
        RAISE EXCEPTION 'account % is staff: a share link converts a prospect, not a staff member', account
            USING ERRCODE = 'OR084', HINT = 'Redeem the link logged in as the customer it was made for.';
    END IF;
    -- (0.38.0) the order first, FOR SHARE — the extension's lock order
    -- (order, then its customer, then what hangs on the order, the link
    -- here): a move, cancellation or delete of the order under way is
    -- waited for, and the customer read as it commits.  Locked by a
    -- statement of its own, before the customer (a join locks its rows in
    -- the plan's order), and before the link (a first cut locked the link
    -- first: a cancellation that then revoked the link deadlocked with it)
    PERFORM FROM orders.orders o WHERE o.id = t.order_id FOR SHARE;
    SELECT o.customer_id, c.account_id INTO customer, owner_account
      FROM orders.orders o JOIN orders.customers c ON c.id = o.customer_id
     WHERE o.id = t.order_id FOR NO KEY UPDATE OF c;
    -- (0.38.0) the customer the link was made for, and no other (the order
    -- moved since share_token_row looked, or is gone)
    IF customer IS DISTINCT FROM t.customer_id THEN
        RAISE EXCEPTION 'this share link is not valid'
            USING ERRCODE = 'OR080', HINT = 'Ask for a new link.';
    END IF;
    UPDATE orders.order_share_tokens s SET used_at = clock_timestamp(), converted_to_account_id = account
     WHERE s.id = t.id AND s.used_at IS NULL AND s.revoked_at IS NULL AND s.expires_at > clock_timestamp();
    IF NOT FOUND THEN
        RAISE EXCEPTION 'this share link is not valid'
            USING ERRCODE = 'OR080', HINT = 'Ask for a new link.';
    END IF;
    IF owner_account IS NOT NULL AND owner_account <> account THEN
        RAISE EXCEPTION 'the shared order belongs to another account'
            USING ERRCODE = 'OR083', HINT = 'The link was for a prospect; ask the agency for an order of your own.';
    END IF;
    UPDATE orders.customers SET account_id = account WHERE id = customer AND account_id IS NULL;
    RETURN customer;
END
$$;

CREATE OR REPLACE FUNCTION orders.check_workflow() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- (0.29.0) the policies' rights first: this trigger runs before them, and
    -- a caller who may not write workflows heard what was wrong with its
    -- config instead — and whether a webhook id exists
    IF TG_OP = 'INSERT' AND orders.api_request() AND NOT orders.has_permission('workflows', 'create') THEN
        RAISE EXCEPTION 'creating workflows needs the workflows.create permission' USING ERRCODE = '42501';
    END IF;
    IF NEW.trigger_type NOT IN ('webhook', 'order_status', 'customer_tag', 'time_based', 'manual') THEN
        RAISE EXCEPTION 'unknown workflow trigger type %', left(NEW.trigger_type, 64)
            USING ERRCODE = 'OR110', HINT = 'Trigger types: order_status, customer_tag, webhook, time_based, manual.';
    END IF;
    -- (0.38.0) judged when written: a webhook deleted since no longer
    -- refuses every other change of the workflow (deleting its author
    -- deactivates it, and failed with OR110)
    IF NEW.trigger_config IS NOT NULL
       AND (TG_OP = 'INSERT' OR (NEW.trigger_type, NEW.trigger_config) IS DISTINCT FROM (OLD.trigger_type, OLD.trigger_config)) THEN
        PERFORM orders.check_workflow_trigger(NEW.trigger_type, NEW.trigger_config);
    END IF;
    IF NEW.workflow_steps IS NOT NULL AND (TG_OP = 'INSERT' OR NEW.workflow_steps IS DISTINCT FROM OLD.workflow_steps) THEN
        PERFORM orders.check_workflow_steps(NEW.workflow_steps);
    END IF;
    -- (0.38.0) created_by_user_id is the workflow's author, whose authority
    -- it runs with (workflow_author_refusal): its creator, then whoever
    -- last changed it through the API leaving it active — what it does is
    -- theirs now (a change that leaves it inactive, as stopping it, keeps
    -- the author).  Only for a request's own statement (trigger depth 1):
    -- the foreign key's SET NULL of a deleted author, and the deactivation
    -- by workflow_author_deleted, write what they write.
    IF orders.api_request() AND pg_trigger_depth() = 1 THEN
        NEW.created_by_user_id := CASE WHEN TG_OP = 'INSERT' OR NEW.is_active THEN orders.current_staff_id()
                                       ELSE OLD.created_by_user_id END;
    ELSIF TG_OP = 'INSERT' AND NEW.created_by_user_id IS NULL THEN
        NEW.created_by_user_id := orders.current_staff_id();
    END IF;
    IF TG_OP = 'UPDATE' THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION orders.workflow_author_refusal(author uuid, order_id uuid, customer_id uuid) RETURNS text
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    account uuid;
    saved text[];
    refusal text;
BEGIN
    IF author IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT s.account_id INTO account FROM orders.staff s WHERE s.id = author;
    IF account IS NULL THEN
        RETURN 'its author has no login: nobody to answer for it';
    END IF;
    saved := orders.act_as(account);
    refusal := CASE
        WHEN NOT (orders.has_permission('workflows', 'create') OR orders.has_permission('workflows', 'edit'))
            THEN 'its author is not active staff with workflows.create or workflows.edit'
        WHEN workflow_author_refusal.order_id IS NOT NULL AND NOT EXISTS (
                 SELECT FROM orders.orders o
                  WHERE o.id = workflow_author_refusal.order_id AND orders.has_permission('orders', 'view')
                    AND orders.staff_sees_order(o.assigned_rep_id, o.assigned_agent_id, o.lifecycle, o.status))
            THEN 'the order is outside its author''s reach'
        WHEN workflow_author_refusal.customer_id IS NOT NULL AND NOT EXISTS (
                 SELECT FROM orders.customers c
                  WHERE c.id = workflow_author_refusal.customer_id AND orders.sees_customer(c.id, c.account_id))
            THEN 'the customer is outside its author''s reach' END;
    PERFORM orders.act_back(saved);
    RETURN refusal;
END
$$;

CREATE OR REPLACE FUNCTION orders.execute_workflow(workflow_id uuid, order_id uuid, customer_id uuid, trigger_event jsonb)
    RETURNS uuid
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w orders.workflows%ROWTYPE;
    o orders.orders%ROWTYPE;
    exec_id uuid := orders.new_id();
    ctx jsonb;
    step jsonb;
    sid text;
    started timestamptz := clock_timestamp();
    step_started timestamptz;
    output jsonb;
    done jsonb := '[]';
    errors jsonb := '[]';
    depth integer := CASE WHEN current_setting('orders_workflow.depth', true) ~ '^[0-9]{1,2}$'
                          THEN current_setting('orders_workflow.depth', true)::integer ELSE 0 END;
    e_code text;
    e_msg text;
    e_detail text;
    e_hint text;
    refusal text;
BEGIN
    -- the workflow as this transaction sees it, kept from being deleted
    -- until the run is stored: one deleted, deactivated or created after
    -- the transaction's snapshot does not run
    SELECT * INTO w FROM orders.workflows x
     WHERE x.id = execute_workflow.workflow_id AND x.is_active
       FOR KEY SHARE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
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
            -- (0.37.0) at most 200 characters: a customer's 1.9 MB name went into
            -- every notification and outbox message of its workflows
            'customer_name', (SELECT left(c.full_name, 200) FROM orders.customers c WHERE c.id = customer_id),
            'workflow', w.name)));
    refusal := CASE WHEN depth < 8 THEN orders.workflow_author_refusal(w.created_by_user_id, order_id, customer_id) END;
    IF depth >= 8 THEN
        errors := jsonb_build_array(jsonb_build_object(
            'step_id', NULL, 'error', 'workflow runs nested more than 8 deep (a workflow loop?)',
            'error_code', 'OR118', 'timestamp', clock_timestamp()));
    ELSIF refusal IS NOT NULL THEN
        -- (0.38.0) its author may not run it now: no step runs
        errors := jsonb_build_array(jsonb_build_object(
            'step_id', NULL, 'error', format('workflow "%s" did not run: %s', left(w.name, 64), refusal),
            'error_code', '42501',
            'details', jsonb_build_object('author', w.created_by_user_id,
                                          'hint', 'An admin who changes the workflow becomes its author.'),
            'timestamp', clock_timestamp()));
    ELSE
        PERFORM set_config('orders_workflow.depth', (depth + 1)::text, true);
        -- a step without an id is "step-<its place in the list>", as validated
        FOR step IN SELECT s || jsonb_build_object('id', coalesce(s ->> 'id', 'step-' || i))
                      FROM jsonb_array_elements(w.workflow_steps) WITH ORDINALITY e(s, i)
                     ORDER BY (s ->> 'order')::numeric NULLS LAST, i LOOP
            sid := step ->> 'id';
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

CREATE OR REPLACE FUNCTION orders.workflow_author_deleted() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE orders.workflows w SET is_active = false
     WHERE w.created_by_user_id = OLD.id AND w.is_active;
    RETURN OLD;
END
$$;
REVOKE ALL ON FUNCTION orders.workflow_author_refusal(uuid, uuid, uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION orders.workflow_author_deleted() FROM PUBLIC;
CREATE TRIGGER workflow_author_deleted BEFORE DELETE ON orders.staff
    FOR EACH ROW EXECUTE FUNCTION orders.workflow_author_deleted();

CREATE OR REPLACE FUNCTION orders.act_as(account uuid) RETURNS text[]
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

CREATE OR REPLACE FUNCTION orders.act_back(saved text[]) RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM set_config('request.jwt.claims', coalesce(saved[1], ''), true);
    PERFORM set_config('orders.acting_for', coalesce(saved[2], ''), true);
END
$$;

CREATE OR REPLACE FUNCTION orders.share_token_customer() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.customer_id := (SELECT o.customer_id FROM orders.orders o WHERE o.id = NEW.order_id);
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION orders.act_as(uuid), orders.act_back(text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION orders.share_token_customer() FROM PUBLIC;
CREATE TRIGGER share_token_customer BEFORE INSERT ON orders.order_share_tokens
    FOR EACH ROW WHEN (NEW.customer_id IS NULL) EXECUTE FUNCTION orders.share_token_customer();

CREATE OR REPLACE FUNCTION orders.shares_order(order_id uuid) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT o.customer_id = ANY (orders.current_customer_ids())
                            OR (orders.has_permission('orders', 'edit')
                                AND orders.staff_sees_order(o.assigned_rep_id, o.assigned_agent_id, o.lifecycle, o.status))
                       FROM orders.orders o WHERE o.id = shares_order.order_id), false)
$$;

CREATE OR REPLACE FUNCTION orders.may_share(order_id uuid) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT NOT orders.api_request() OR orders.shares_order(o.id)
                       FROM orders.orders o WHERE o.id = may_share.order_id), false)
$$;

CREATE OR REPLACE FUNCTION orders.workflow_recipients(recipient text, order_id uuid)
    RETURNS SETOF orders.staff
    LANGUAGE sql VOLATILE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT s.* FROM orders.staff s
     WHERE s.is_active
       AND CASE recipient
           WHEN 'assigned_rep' THEN s.id = (SELECT o.assigned_rep_id FROM orders.orders o WHERE o.id = order_id)
           WHEN 'assigned_agent' THEN s.id = (SELECT o.assigned_agent_id FROM orders.orders o WHERE o.id = order_id)
           ELSE s.role = recipient
                OR s.id = CASE WHEN recipient ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                               THEN recipient::uuid END
           END
     ORDER BY s.id
       FOR KEY SHARE OF s;
END;

