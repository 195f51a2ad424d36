-- orders 0.13.0 -> 0.14.0
--  * The reach policies of orders and customers are one C call per row
--    (orders.sees_order, orders.sees_customer; src/row_scope.c) that reads
--    the caller's scope once per caller and command.  Written out in SQL
--    they asked the identity helpers up to ten times per query, an
--    InitPlan each: more than a small dashboard query's own work.  Who sees
--    what is unchanged.  Only policies still as 0.13.0 made them are
--    replaced (a warning names one that is not).
--  * orders.staff_sees_order (the review and workflow functions' staff
--    scope) is the same C rule, by role alone.
--  * grant_api grants the policies' functions to the authenticated role,
--    and the roles it configured get them now.
\echo Use "ALTER EXTENSION orders UPDATE TO '0.14.0'" to load this file. \quit
-- reach_support — the planner's estimate for the reach functions: a
-- caller reaches a small share of a table (4 %, as the written-out policies
-- were estimated), so a query's own conditions keep choosing the index.
CREATE FUNCTION orders.reach_support(internal) RETURNS internal
    LANGUAGE c IMMUTABLE STRICT
    AS 'MODULE_PATHNAME', 'orders_reach_support';
REVOKE ALL ON FUNCTION orders.reach_support(internal) FROM PUBLIC;
CREATE FUNCTION orders.sees_order(customer_id uuid, assigned_agent_id uuid, assigned_rep_id uuid,
                                  lifecycle text, status text) RETURNS boolean
    LANGUAGE c STABLE SUPPORT orders.reach_support
    AS 'MODULE_PATHNAME', 'orders_sees_order';
COMMENT ON FUNCTION orders.sees_order(uuid, uuid, uuid, text, text) IS
    'Whether the caller reaches an order with these values (the orders policy)';
CREATE FUNCTION orders.sees_customer(id uuid, account_id uuid) RETURNS boolean
    LANGUAGE c STABLE SUPPORT orders.reach_support
    AS 'MODULE_PATHNAME', 'orders_sees_customer';
COMMENT ON FUNCTION orders.sees_customer(uuid, uuid) IS
    'Whether the caller reaches a customer row with these values (the customers policy)';
-- CREATE OR REPLACE keeps the grants; the language, body and settings change
CREATE OR REPLACE FUNCTION orders.staff_sees_order(rep uuid, agent uuid, lifecycle text, status text) RETURNS boolean
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 'orders_staff_sees_order';
GRANT EXECUTE ON FUNCTION orders.sees_order(uuid, uuid, uuid, text, text), orders.sees_customer(uuid, uuid) TO PUBLIC;

-- grant_api grants the policies' functions to the authenticated role too
-- (a DBA who revokes EXECUTE from PUBLIC keeps the API working); the roles
-- it configured before get them now
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
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION orders.agent_serves_customer(uuid),
                    orders.sees_order(uuid, uuid, uuid, text, text), orders.sees_customer(uuid, uuid) TO %s', r);
    END LOOP;
END
$$;

-- the reach policies, where they are still as 0.13.0 made them; a policy
-- of that name a DBA dropped or changed is left alone, with a warning
DO $$
DECLARE
    p record;
BEGIN
    FOR p IN SELECT c.relname,
                    pg_catalog.pg_get_expr(x.polqual, x.polrelid) OPERATOR(pg_catalog.=) CASE c.relname
                      WHEN 'orders' THEN $e$((customer_id = ANY (( SELECT orders.current_customer_ids() AS current_customer_ids)::uuid[])) OR (( SELECT orders.has_permission('orders'::text, 'view'::text) AS has_permission) AND ((( SELECT orders.current_staff_role() AS current_staff_role) = ANY (ARRAY['admin'::text, 'manager'::text, 'accountant'::text])) OR ((assigned_agent_id = ( SELECT orders.current_staff_id() AS current_staff_id)) AND (( SELECT orders.current_staff_role() AS current_staff_role) = 'delivery_agent'::text)) OR ((( SELECT orders.current_staff_role() AS current_staff_role) = 'customer_rep'::text) AND ((assigned_rep_id = ( SELECT orders.current_staff_id() AS current_staff_id)) OR ((assigned_rep_id IS NULL) AND (orders.status_category(lifecycle, status) = 'open'::text)))))))$e$
                      ELSE $e$((account_id = ( SELECT orders.actor_account() AS actor_account)) OR (( SELECT orders.has_permission('customers'::text, 'view'::text) AS has_permission) AND ((( SELECT orders.current_staff_role() AS current_staff_role) <> 'delivery_agent'::text) OR orders.agent_serves_customer(id))))$e$
                    END AS as_made
               FROM (VALUES ('orders'), ('customers')) t (relname)
               JOIN pg_catalog.pg_class c ON c.relname OPERATOR(pg_catalog.=) t.relname
                AND c.relnamespace OPERATOR(pg_catalog.=) 'orders'::pg_catalog.regnamespace
               LEFT JOIN pg_catalog.pg_policy x ON x.polrelid OPERATOR(pg_catalog.=) c.oid
                AND x.polname OPERATOR(pg_catalog.=) 'reach' LOOP
        IF p.as_made IS NOT TRUE THEN
            RAISE WARNING 'policy "reach" on orders.% is not the one 0.13.0 made: left as it is', p.relname
                USING HINT = 'Compare it with the policy in the extension''s install script (doc/operations.md, Updating to 0.14.0).';
        ELSIF p.relname OPERATOR(pg_catalog.=) 'orders' THEN
            ALTER POLICY reach ON orders.orders
                USING (orders.sees_order(customer_id, assigned_agent_id, assigned_rep_id, lifecycle, status));
        ELSE
            ALTER POLICY reach ON orders.customers
                USING (orders.sees_customer(id, account_id));
        END IF;
    END LOOP;
END
$$;
