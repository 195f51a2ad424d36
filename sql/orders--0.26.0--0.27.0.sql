-- orders 0.26.0 -> 0.27.0
--  * A site's cost is no client's: the analysis' metrics.cost was hidden
--    from share links (shared_order) but a logged-in client read it in
--    order_site_selections.metrics and in its item's snapshot.  It is now
--    kept in the new column internal_metrics, which no API role may read;
--    a trigger moves a cost written into metrics (by complete_analysis,
--    staff or a DBA) there; staff read it with orders.site_internal_metrics.
--    Costs already stored move now, out of the items' snapshots too.
--  * grant_api grants the accessor; the roles it configured get it now.
--  * What a newcomer's second try found (doc/decisions.md, 0.27.0):
--    - a customer wrote the items of its orders in any open status (emptied
--      an order out for delivery, its stock coming back; deleted the item of
--      an approved site) and at any price: now only while the order is in
--      its lifecycle's first status and no approved site's
--      (orders.customer_cart_item), at the catalog's price of a product for
--      sale (orders.customer_item_price, OR061);
--    - a delivery agent recorded deliveries of others' orders, and a
--      deactivated one kept reading its deliveries and notifications: the
--      policies of orders.deliveries and orders.notifications ask for an
--      active staff member and, for a delivery written, an order it sees;
--    - staff recorded ledger rows and expenses in another's name: only an
--      admin may name (or change) the recorder (orders.recorder_guard);
--    - a workflow run's id came from gen_random_uuid(), not orders.new_id();
--    - vip_customers found only tags written as {"id": tag}, not the string
--      form workflows accept too;
--    - a customer raised leads_purchased of its own campaign: it is one of
--      the staff-only columns of order_columns_guard now (OR060);
--    - a customer completed its own booking order (keeping its places for
--      good): the built-in booking lifecycle's check-in, completion and
--      no-show edges are staff's (allowed_staff), unless a DBA set them;
--    - an item booked by a live reservation could be deleted (the place
--      then taken for good): booked_item_guard refuses it (OR031), and a
--      booked item's quantity below its places (OR032, which the library's
--      confirm_booking raises for a holder's booking beyond its item).
\echo Use "ALTER EXTENSION orders UPDATE TO '0.27.0'" to load this file. \quit

ALTER TABLE orders.order_site_selections
    ADD COLUMN internal_metrics jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(internal_metrics) = 'object');
COMMENT ON COLUMN orders.order_site_selections.metrics IS
    'What the analysis found and the client may see (dr, traffic, price...); a cost written here moves to internal_metrics';
COMMENT ON COLUMN orders.order_site_selections.internal_metrics IS
    'Staff only: the analysis'' figures no client may see (cost); no API role may read or write it (orders.site_internal_metrics)';

-- A site's cost is the agency's, not the client's: whoever writes it into
-- metrics (complete_analysis, staff over the API, a DBA), it is kept in
-- internal_metrics, which no API role may read, so the client's view of
-- the site and the snapshot of its item never show it (0.27.0).  Named to
-- fire before site_items, whose snapshot copies metrics.
CREATE FUNCTION orders.keep_internal_metrics() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.internal_metrics := coalesce(NEW.internal_metrics, '{}') || jsonb_build_object('cost', NEW.metrics -> 'cost');
    NEW.metrics := NEW.metrics - 'cost';
    RETURN NEW;
END
$$;
CREATE TRIGGER site_internal_metrics BEFORE INSERT OR UPDATE OF metrics ON orders.order_site_selections
    FOR EACH ROW WHEN (jsonb_typeof(NEW.metrics) = 'object' AND NEW.metrics ? 'cost') EXECUTE FUNCTION orders.keep_internal_metrics();

CREATE FUNCTION orders.site_internal_metrics(order_group_id uuid)
    RETURNS TABLE (selection_id uuid, domain text, internal_metrics jsonb)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT orders.has_permission('orders', 'view') OR NOT orders.staff_sees_group(site_internal_metrics.order_group_id) THEN
        PERFORM orders.group_not_found(site_internal_metrics.order_group_id);
    END IF;
    RETURN QUERY SELECT x.id, x.domain, x.internal_metrics FROM orders.order_site_selections x
                  WHERE x.order_group_id = site_internal_metrics.order_group_id ORDER BY x.domain;
END
$$;
REVOKE ALL ON FUNCTION orders.keep_internal_metrics(), orders.site_internal_metrics(uuid) FROM PUBLIC;

-- the costs stored so far: out of the sites' metrics (each site keeps its
-- current cost) and of the snapshots of the items approved sites made (the
-- cost a snapshot kept from its approval is dropped, not moved: items have
-- no staff-only column)
UPDATE orders.order_site_selections
   SET internal_metrics = internal_metrics || jsonb_build_object('cost', metrics -> 'cost'),
       metrics = metrics - 'cost'
 WHERE metrics ? 'cost';
UPDATE orders.order_items
   SET snapshot = snapshot #- '{metrics,cost}'
 WHERE snapshot ? 'site_selection_id' AND jsonb_typeof(snapshot -> 'metrics') = 'object'
   AND snapshot -> 'metrics' ? 'cost';

-- grant_api: the accessor for the authenticated role
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
    -- columns no API role may touch: internal notes and metrics of sites, token hashes
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
                    orders.recent_orders(text[], integer), orders.agent_active_deliveries(uuid),
                    orders.unassigned_orders_in_area(text), orders.customer_order_history(uuid, integer),
                    orders.vip_customers(text, text) TO %I', authenticated_role);

    INSERT INTO orders.api_roles (role_oid, kind)
    VALUES (anon_role::regrole, 'anon'), (authenticated_role::regrole, 'authenticated')
    ON CONFLICT (role_oid) DO UPDATE SET kind = EXCLUDED.kind
        WHERE orders.api_roles.kind IS DISTINCT FROM EXCLUDED.kind;
END
$$;

DO $$
DECLARE
    r regrole;
BEGIN
    FOR r IN SELECT a.role_oid FROM orders.api_roles a WHERE a.kind = 'authenticated' LOOP
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION orders.site_internal_metrics(uuid) TO %s', r);
    END LOOP;
END
$$;

---------------------------------------------------------------------------
-- A customer's items: its cart only, at the catalog's prices
---------------------------------------------------------------------------
-- customer_cart_item — may the customer calling write this item of its
-- cart (a row of order "order_id" with id "item_id")?  Its
-- order is the caller's and still in its lifecycle's first status (cod
-- "new", booking "pending", campaign "draft", review "configuring": the
-- cart; once the shop has taken the order on, staff change its items),
-- and the item is no approved site's (the review's items change by the
-- review: OR073 keeps paid ones; a booked item is kept by
-- booked_item_guard, for everybody).  0.27.0: before, any open status — a
-- customer could empty an order out for delivery, its stock coming back,
-- or take an order back to "configuring" and zero its sites' items.
-- SECURITY DEFINER: the sites of an item are looked up whoever asks
-- (PL/pgSQL: the sites' table comes later in this script).
CREATE FUNCTION orders.customer_cart_item(order_id uuid, item_id uuid) RETURNS boolean
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN EXISTS (SELECT FROM orders.orders o JOIN orders.lifecycles l ON l.name = o.lifecycle
                    WHERE o.id = customer_cart_item.order_id
                      AND o.customer_id = ANY (orders.current_customer_ids())
                      AND o.status = l.initial_status)
       AND NOT EXISTS (SELECT FROM orders.order_site_selections x WHERE x.order_item_id = customer_cart_item.item_id);
END
$$;

-- customer_item_price — true when "unit_price" is what a customer's item
-- costs: its product's price (its variant's, when the variant has one), 0
-- for an item without a product (staff price it); else OR061 (0.27.0:
-- before, a customer chose what it paid).  The catalog's price is not
-- named (customers do not see products: the client sends the price its
-- storefront showed, and learns that it changed).  An unknown product is
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

GRANT EXECUTE ON FUNCTION orders.customer_cart_item(uuid, uuid), orders.customer_item_price(uuid, uuid, numeric) TO PUBLIC;
ALTER POLICY insert_right ON orders.order_items
    WITH CHECK (NOT (SELECT orders.api_request()) OR (SELECT orders.has_permission('orders', 'edit'))
           OR (orders.customer_cart_item(order_id, id) AND orders.customer_item_price(product_id, variant_id, unit_price)));
ALTER POLICY update_right ON orders.order_items
    USING (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('orders', 'edit')) OR orders.customer_cart_item(order_id, id))
    WITH CHECK (NOT (SELECT orders.api_request()) OR (SELECT orders.has_permission('orders', 'edit'))
           OR (orders.customer_cart_item(order_id, id) AND orders.customer_item_price(product_id, variant_id, unit_price)));
ALTER POLICY delete_right ON orders.order_items
    USING (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('orders', 'edit')) OR orders.customer_cart_item(order_id, id));

---------------------------------------------------------------------------
-- Deliveries and notifications: active staff; deliveries of orders seen
---------------------------------------------------------------------------
ALTER POLICY reach ON orders.deliveries
    USING ((agent_id = (SELECT orders.current_staff_id()) AND (SELECT orders.current_staff_role()) IS NOT NULL)
           OR ((SELECT orders.has_permission('orders', 'view'))
               AND (SELECT orders.current_staff_role()) <> 'delivery_agent'
               AND EXISTS (SELECT FROM orders.orders o WHERE o.id = order_id)))
    WITH CHECK (EXISTS (SELECT FROM orders.orders o WHERE o.id = order_id)
           AND ((agent_id = (SELECT orders.current_staff_id()) AND (SELECT orders.current_staff_role()) IS NOT NULL)
                OR ((SELECT orders.has_permission('orders', 'view'))
                    AND (SELECT orders.current_staff_role()) <> 'delivery_agent')));
ALTER POLICY own ON orders.notifications
    USING (user_id = (SELECT orders.current_staff_id()) AND (SELECT orders.current_staff_role()) IS NOT NULL);
CREATE OR REPLACE FUNCTION orders.mark_notifications_read(ids uuid[] DEFAULT NULL)
    RETURNS integer
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    me uuid := CASE WHEN orders.current_staff_role() IS NOT NULL THEN orders.current_staff_id() END;
    n integer;
BEGIN
    IF me IS NULL THEN
        RAISE EXCEPTION 'only active staff members have notifications'
            USING ERRCODE = '42501', HINT = 'Log in with an account that orders.staff.account_id names.';
    END IF;
    UPDATE orders.notifications x SET is_read = true
     WHERE x.user_id = me AND NOT x.is_read AND (ids IS NULL OR x.id = ANY (ids));
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

---------------------------------------------------------------------------
-- Money: a row is recorded by its writer (an admin may name another)
---------------------------------------------------------------------------
ALTER POLICY add ON orders.financial_transactions
    WITH CHECK ((SELECT orders.has_permission('financial', 'create'))
                AND (recorded_by_user_id IS NOT DISTINCT FROM (SELECT orders.current_staff_id())
                     OR (SELECT orders.current_staff_role()) = 'admin'));
ALTER POLICY add ON orders.expenses
    WITH CHECK ((SELECT orders.has_permission('financial', 'create'))
                AND (recorded_by_user_id IS NOT DISTINCT FROM (SELECT orders.current_staff_id())
                     OR (SELECT orders.current_staff_role()) = 'admin'));
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
REVOKE ALL ON FUNCTION orders.recorder_guard() FROM PUBLIC;

---------------------------------------------------------------------------
-- A workflow run's id: orders.new_id(), as every id column's
---------------------------------------------------------------------------
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
            'customer_name', (SELECT c.full_name FROM orders.customers c WHERE c.id = customer_id),
            'workflow', w.name)));
    IF depth >= 8 THEN
        errors := jsonb_build_array(jsonb_build_object(
            'step_id', NULL, 'error', 'workflow runs nested more than 8 deep (a workflow loop?)',
            'error_code', 'OR118', 'timestamp', clock_timestamp()));
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

---------------------------------------------------------------------------
-- vip_customers: a tag as {"id": tag} or as the string tag
---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION orders.vip_customers(customer_area text, tag text DEFAULT 'vip')
    RETURNS TABLE (id uuid, full_name text, phone text, area text, total_orders integer, total_spent numeric)
    LANGUAGE sql STABLE
AS $$
    SELECT c.id, c.full_name, c.phone, c.area, c.total_orders, c.total_spent
      FROM orders.customers c
     WHERE (c.tags OPERATOR(pg_catalog.@>) pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('id', tag))
            OR c.tags OPERATOR(pg_catalog.@>) pg_catalog.jsonb_build_array(tag))
       AND c.area OPERATOR(pg_catalog.=) customer_area
     ORDER BY c.total_spent DESC
$$;
COMMENT ON FUNCTION orders.vip_customers(text, text) IS
    'Dashboard: customers of an area carrying a tag (default vip) as {"id": tag} or "tag", biggest spenders first (seed 004 query 8)';

---------------------------------------------------------------------------
-- leads_purchased: staff-only, as an order's total (order_columns_guard);
-- the trigger re-created with the column, keeping a DBA's ENABLE/DISABLE
---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION orders.order_columns_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    staff_only constant jsonb := '{"priority": 0, "delivery_fee": 0, "total_amount": 0, "adjustment": 0,
        "payment_status": "pending", "assigned_rep_id": null, "assigned_agent_id": null,
        "webhook_source": null, "delivery_proof": null, "review_completed_at": null, "reviewed_by": null,
        "leads_purchased": 0}';
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
DO $upgrade$
DECLARE
    was "char";
BEGIN
    SELECT tgenabled INTO was FROM pg_catalog.pg_trigger
     WHERE tgrelid = 'orders.orders'::pg_catalog.regclass AND tgname = 'order_columns_guard';
    IF was IS NOT NULL THEN             -- dropped by a DBA: left dropped
        CREATE OR REPLACE TRIGGER order_columns_guard
            BEFORE INSERT OR UPDATE OF priority, delivery_fee, total_amount, adjustment, payment_status,
                assigned_rep_id, assigned_agent_id, source, webhook_source, delivery_proof, review_completed_at, reviewed_by,
                leads_purchased
            ON orders.orders FOR EACH ROW WHEN (orders.api_request())
            EXECUTE FUNCTION orders.order_columns_guard();
        IF was <> 'O' THEN
            EXECUTE pg_catalog.format('ALTER TABLE orders.orders %s TRIGGER order_columns_guard',
                                      CASE was WHEN 'A' THEN 'ENABLE ALWAYS' WHEN 'R' THEN 'ENABLE REPLICA' ELSE 'DISABLE' END);
        END IF;
    END IF;
END
$upgrade$;

---------------------------------------------------------------------------
-- Booking work by staff: the built-in edges a DBA left as installed
---------------------------------------------------------------------------
UPDATE orders.lifecycle_transitions t SET allowed_staff = '{admin,manager,customer_rep}'
 WHERE t.lifecycle = 'booking' AND t.builtin AND t.allowed_staff IS NULL
   AND (t.from_status, t.to_status) IN (('confirmed', 'in_progress'), ('confirmed', 'completed'),
                                        ('confirmed', 'no_show'), ('in_progress', 'completed'));

---------------------------------------------------------------------------
-- A booked item goes only with its booking
---------------------------------------------------------------------------
-- An item a live reservation books goes only with its booking: a booking
-- is given back by cancelling its order (release_cancelled_bookings), and
-- an item deleted first — by anybody, or by a customer racing the
-- confirmation — would leave the place taken for good (the reservation's
-- link is ON DELETE SET NULL) (0.27.0).  Its query runs after the row's
-- lock, with a new snapshot: a confirmation the delete waited for counts.
-- Nor is its quantity lowered below the places its bookings hold (each
-- place is one unit of the item: confirm_booking's OR032).
-- SECURITY DEFINER: the reservations of an item are not all the caller's.
CREATE FUNCTION orders.booked_item_guard() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    places bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF EXISTS (SELECT FROM orders.slot_reservations r
                    WHERE r.order_item_id = OLD.id AND r.status IN ('held', 'confirmed')) THEN
            RAISE EXCEPTION 'order item % is booked: a slot reservation holds its place', OLD.id
                USING ERRCODE = 'OR031',
                      HINT = 'Cancel its order to give the place back (release_cancelled_bookings), or confirm the booking for another item first.';
        END IF;
        RETURN OLD;
    END IF;
    IF NEW.quantity < OLD.quantity THEN
        places := (SELECT sum(r.quantity) FROM orders.slot_reservations r
                    WHERE r.order_item_id = OLD.id AND r.status = 'confirmed');
        IF places > NEW.quantity THEN
            RAISE EXCEPTION 'order item % books % places: its quantity cannot go below that', OLD.id, places
                USING ERRCODE = 'OR032', HINT = 'Cancel its order to give the places back.';
        END IF;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER booked_item_guard BEFORE DELETE OR UPDATE OF quantity ON orders.order_items
    FOR EACH ROW EXECUTE FUNCTION orders.booked_item_guard();
REVOKE ALL ON FUNCTION orders.booked_item_guard() FROM PUBLIC;
