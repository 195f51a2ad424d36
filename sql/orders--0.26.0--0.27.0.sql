-- orders 0.26.0 -> 0.27.0
--  * A site's cost is no client's: the analysis' metrics.cost was hidden
--    from share links (shared_order) but a logged-in client read it in
--    order_site_selections.metrics and in its item's snapshot.  It is now
--    kept in the new column internal_metrics, which no API role may read;
--    a trigger moves a cost written into metrics (by complete_analysis,
--    staff or a DBA) there; staff read it with orders.site_internal_metrics.
--    Costs already stored move now, out of the items' snapshots too.
--  * grant_api grants the accessor; the roles it configured get it now.
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

-- the costs stored so far: out of the sites' metrics and of the snapshots
-- of the items approved sites made
UPDATE orders.order_site_selections
   SET internal_metrics = internal_metrics || jsonb_build_object('cost', metrics -> 'cost'),
       metrics = metrics - 'cost'
 WHERE metrics ? 'cost';
UPDATE orders.order_items
   SET snapshot = snapshot #- '{metrics,cost}'
 WHERE snapshot ? 'site_selection_id' AND snapshot -> 'metrics' ? 'cost';

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
