-- orders 0.43.0 -> 0.44.0
--  * product_catalog reads one page: at most max_products products (new
--    parameter, default 100, 1..1000; 22023 otherwise) in (name,
--    product_id) order after (after_name, after_id), each with its active
--    variants — an anonymous call sorted the whole catalog (100k products:
--    55 MB of temporary file per request).  Two partial indexes serve the
--    pages; the function's signature is (text, integer, text, uuid) and the
--    roles that could execute the old one can execute it.
\echo Use "ALTER EXTENSION orders UPDATE TO '0.44.0'" to load this file. \quit

-- (0.44.0) a page of product_catalog(), of the whole catalog or of a category
CREATE INDEX products_catalog_idx ON orders.products (name, id) WHERE is_active;
CREATE INDEX products_category_catalog_idx ON orders.products (category, name, id) WHERE is_active;

-- catalog_rows — product_catalog's page (its arguments renamed: PL/pgSQL
-- keeps no input named as an output column), with its plans kept for the
-- session: max_products 1..1000 and after_id only with after_name (22023
-- otherwise); each kind of call, of a category or not, has its own
-- statement and so its own index.
CREATE FUNCTION orders.catalog_rows(in_category text, in_max integer, in_after_name text, in_after_id uuid)
    RETURNS TABLE (product_id uuid, variant_id uuid, name text, variant_name text, sku text,
                   description text, category text, price numeric, attributes jsonb, images jsonb)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    after_n text := coalesce(in_after_name, '');
    after_i uuid := coalesce(in_after_id, '00000000-0000-0000-0000-000000000000');
BEGIN
    IF in_max IS NULL OR in_max NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'orders.product_catalog: max_products must be between 1 and 1000, not %',
                        coalesce(in_max::text, 'NULL')
            USING ERRCODE = '22023',
                  HINT = 'Read the catalog a page at a time: pass the last product''s name and product_id as after_name and after_id.';
    END IF;
    IF in_after_id IS NOT NULL AND in_after_name IS NULL THEN
        RAISE EXCEPTION 'orders.product_catalog: after_id needs after_name'
            USING ERRCODE = '22023', HINT = 'Pass the name and the product_id of the last product read.';
    END IF;
    IF in_category IS NULL THEN
        RETURN QUERY
        SELECT p.id, r.variant_id, p.name::text, r.variant_name, r.sku, p.description, p.category,
               r.price, r.attributes, p.images::jsonb
          FROM (SELECT q.id, q.name, q.sku, q.description, q.category, q.price, q.images
                  FROM orders.products q
                 WHERE q.is_active AND (q.name::text, q.id) > (after_n, after_i)
                 ORDER BY q.name, q.id
                 LIMIT in_max) p
      CROSS JOIN LATERAL (
            SELECT NULL::uuid AS variant_id, NULL::text AS variant_name, p.sku::text AS sku,
                   p.price::numeric AS price, '{}'::jsonb AS attributes
            UNION ALL
            SELECT v.id, v.name::text, v.sku::text, coalesce(v.price, p.price)::numeric, v.attributes::jsonb
              FROM orders.product_variants v
             WHERE v.product_id = p.id AND v.is_active) r
     ORDER BY p.name, p.id, r.variant_id IS NOT NULL, r.variant_name, r.variant_id;
    ELSE
        RETURN QUERY
        SELECT p.id, r.variant_id, p.name::text, r.variant_name, r.sku, p.description, p.category,
               r.price, r.attributes, p.images::jsonb
          FROM (SELECT q.id, q.name, q.sku, q.description, q.category, q.price, q.images
                  FROM orders.products q
                 WHERE q.is_active AND q.category = in_category AND (q.name::text, q.id) > (after_n, after_i)
                 ORDER BY q.name, q.id
                 LIMIT in_max) p
      CROSS JOIN LATERAL (
            SELECT NULL::uuid AS variant_id, NULL::text AS variant_name, p.sku::text AS sku,
                   p.price::numeric AS price, '{}'::jsonb AS attributes
            UNION ALL
            SELECT v.id, v.name::text, v.sku::text, coalesce(v.price, p.price)::numeric, v.attributes::jsonb
              FROM orders.product_variants v
             WHERE v.product_id = p.id AND v.is_active) r
     ORDER BY p.name, p.id, r.variant_id IS NOT NULL, r.variant_name, r.variant_id;
    END IF;
END
$$;
REVOKE ALL ON FUNCTION orders.catalog_rows(text, integer, text, uuid) FROM PUBLIC;

CREATE FUNCTION orders.product_catalog(category text DEFAULT NULL, max_products integer DEFAULT 100,
                                       after_name text DEFAULT NULL, after_id uuid DEFAULT NULL)
    RETURNS TABLE (product_id uuid, variant_id uuid, name text, variant_name text, sku text,
                   description text, category text, price numeric, attributes jsonb, images jsonb)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT * FROM orders.catalog_rows(product_catalog.category, product_catalog.max_products,
                                      product_catalog.after_name, product_catalog.after_id);
END;
COMMENT ON FUNCTION orders.product_catalog(text, integer, text, uuid) IS
    'The active products and variants with the price a customer''s item must carry (no cost, no stock); optionally of one category; a page of at most max_products products after (after_name, after_id)';
REVOKE ALL ON FUNCTION orders.product_catalog(text, integer, text, uuid) FROM PUBLIC;

-- the roles that could execute product_catalog(text) (PUBLIC too, if a DBA
-- granted it) can execute the new one
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT a.grantee FROM pg_catalog.aclexplode((SELECT p.proacl FROM pg_catalog.pg_proc p
                                                           WHERE p.oid = 'orders.product_catalog(text)'::pg_catalog.regprocedure)) a
              WHERE a.privilege_type = 'EXECUTE' LOOP
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION orders.product_catalog(text, integer, text, uuid) TO %s',
                                  CASE WHEN r.grantee = 0 THEN 'PUBLIC' ELSE r.grantee::pg_catalog.regrole::text END);
    END LOOP;
END
$$;
DROP FUNCTION orders.product_catalog(text);

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
