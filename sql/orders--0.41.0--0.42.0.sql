-- orders 0.41.0 -> 0.42.0
--  * Bounds on every other JSON column an API role writes (23514, HTTP
--    400): its binary size, uncompressed, and numbers below 1e20 of at most
--    20 decimals (orders.jsonb_within, as 0.41.0 did for agency orders and
--    orders' metadata) — customers' tags, staff's permissions, products'
--    images, variants' attributes, sites' metrics and internal metrics
--    64 kB; trigger_config of workflows 64 kB, their steps and order items'
--    snapshots 256 kB; leads' metadata, orders' delivery_proof, deliveries'
--    route_data and proof_of_delivery 1 MB; share links' metadata 4096
--    bytes (create_share_token's own bound, now also a constraint).  Staff
--    could store {"n": 1e131071} in a lead's metadata (8 bytes sent): it
--    printed as 131 kB, and a few kB of such numbers as 1 GB — every
--    reader of the row and pg_dump ran out of memory.  Rows already larger
--    stop the update (23514, naming each column and how many rows), and so
--    do webhook logs keeping a payload with such a number (kept before
--    0.41.0 refused them at the ingest; a log has no constraint, the
--    ingest is its bound).
--  * Slot holds are their holder's by its text and its kind
--    (slot_reservations.held_by_subject, new; orders.actor_is_subject(),
--    new): a JWT subject or the acting_for label, or a login's role name.
--    By the text alone a login named after a customer's subject read,
--    released and booked that customer's holds (and its order items), a
--    subject named like a login those of the login; staff_holds_lapse
--    lapses subjects' holds only.  (library) An API request without a
--    subject gets no hold (42501): every such request was one holder.

\echo Use "ALTER EXTENSION orders UPDATE TO '0.42.0'" to load this file. \quit

DO $upgrade$
DECLARE
    bound record;
    n bigint;
    large_rows text := '';
BEGIN
    FOR bound IN
        SELECT * FROM (VALUES
            ('customers', 'tags', 65536), ('deliveries', 'proof_of_delivery', 1048576),
            ('deliveries', 'route_data', 1048576), ('leads', 'metadata', 1048576),
            ('order_items', 'snapshot', 262144), ('order_share_tokens', 'metadata', 4096),
            ('order_site_selections', 'internal_metrics', 65536), ('order_site_selections', 'metrics', 65536),
            ('orders', 'delivery_proof', 1048576), ('product_variants', 'attributes', 65536),
            ('products', 'images', 65536), ('staff', 'permissions', 65536),
            ('webhook_logs', 'request_payload', 2147483647),
            ('workflows', 'trigger_config', 65536), ('workflows', 'workflow_steps', 262144)) b (tab, col, max_bytes)
    LOOP
        EXECUTE format('SELECT count(*) FROM orders.%I WHERE NOT orders.jsonb_within(%I, $1)', bound.tab, bound.col)
            INTO n USING bound.max_bytes;
        IF n > 0 THEN
            large_rows := large_rows || format('%sorders.%s.%s: %s rows %s',
                                               CASE WHEN large_rows = '' THEN '' ELSE '; ' END, bound.tab, bound.col, n,
                                               CASE WHEN bound.max_bytes = 2147483647
                                                    THEN 'with numbers past 1e20 or 20 decimals'
                                                    ELSE format('larger than %s or with numbers past 1e20 or 20 decimals',
                                                                CASE WHEN bound.max_bytes >= 1048576
                                                                     THEN bound.max_bytes / 1048576 || ' MB'
                                                                     WHEN bound.max_bytes >= 65536
                                                                     THEN bound.max_bytes / 1024 || ' kB'
                                                                     ELSE bound.max_bytes || ' bytes' END) END);
        END IF;
    END LOOP;
    IF large_rows <> '' THEN
        RAISE EXCEPTION 'orders 0.42.0 bounds the JSON API roles write, and rows are larger'
            USING ERRCODE = '23514', DETAIL = large_rows || '.',
                  HINT = 'Shrink them (e.g. SELECT id FROM orders.leads WHERE NOT orders.jsonb_within(metadata, 1048576)), '
                         'delete such webhook logs, then ALTER EXTENSION orders UPDATE again.';
    END IF;
END
$upgrade$;

ALTER TABLE orders.customers
    DROP CONSTRAINT customers_tags_check,
    ADD CONSTRAINT customers_tags_check CHECK (jsonb_typeof(tags) = 'array' AND orders.jsonb_within(tags, 65536));
ALTER TABLE orders.staff
    DROP CONSTRAINT staff_permissions_check,
    ADD CONSTRAINT staff_permissions_check
        CHECK (jsonb_typeof(permissions) = 'object' AND orders.jsonb_within(permissions, 65536));
ALTER TABLE orders.products
    ADD CONSTRAINT products_images_check CHECK (orders.jsonb_within(images, 65536));
ALTER TABLE orders.product_variants
    ADD CONSTRAINT product_variants_attributes_check CHECK (orders.jsonb_within(attributes, 65536));
ALTER TABLE orders.orders
    ADD CONSTRAINT orders_delivery_proof_check CHECK (orders.jsonb_within(delivery_proof, 1048576));
ALTER TABLE orders.order_items
    DROP CONSTRAINT order_items_snapshot_check,
    ADD CONSTRAINT order_items_snapshot_check
        CHECK (jsonb_typeof(snapshot) = 'object' AND orders.jsonb_within(snapshot, 262144));
ALTER TABLE orders.leads
    DROP CONSTRAINT leads_metadata_check,
    ADD CONSTRAINT leads_metadata_check
        CHECK (jsonb_typeof(metadata) = 'object' AND orders.jsonb_within(metadata, 1048576));
ALTER TABLE orders.deliveries
    ADD CONSTRAINT deliveries_route_data_check CHECK (orders.jsonb_within(route_data, 1048576)),
    ADD CONSTRAINT deliveries_proof_of_delivery_check CHECK (orders.jsonb_within(proof_of_delivery, 1048576));
ALTER TABLE orders.order_site_selections
    DROP CONSTRAINT order_site_selections_metrics_check,
    ADD CONSTRAINT order_site_selections_metrics_check
        CHECK (jsonb_typeof(metrics) = 'object' AND orders.jsonb_within(metrics, 65536)),
    DROP CONSTRAINT order_site_selections_internal_metrics_check,
    ADD CONSTRAINT order_site_selections_internal_metrics_check
        CHECK (jsonb_typeof(internal_metrics) = 'object' AND orders.jsonb_within(internal_metrics, 65536));
ALTER TABLE orders.order_share_tokens
    DROP CONSTRAINT order_share_tokens_metadata_check,
    ADD CONSTRAINT order_share_tokens_metadata_check
        CHECK (jsonb_typeof(metadata) = 'object' AND orders.jsonb_within(metadata, 4096));
ALTER TABLE orders.workflows
    ADD CONSTRAINT workflows_trigger_config_check CHECK (orders.jsonb_within(trigger_config, 65536)),
    ADD CONSTRAINT workflows_workflow_steps_check CHECK (orders.jsonb_within(workflow_steps, 262144));

-- (0.42.0) a slot hold is its holder's by the holder's text and kind: a
-- JWT subject (or the owner's acting_for label) or a login's role name.
-- By the text alone, a login named after a customer's subject read,
-- released and booked that customer's holds (its order items too), a
-- subject named like a login (e.g. "postgres") those of the login, and
-- every API request without a subject shared the API role's holds (the
-- library now refuses them a hold, 42501).  Existing holds: a holder that
-- names a role was that role's.
ALTER TABLE orders.slot_reservations ADD COLUMN held_by_subject boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN orders.slot_reservations.held_by_subject IS
    'The holder is a JWT subject (or the acting_for label), not a role name (0.42.0)';
UPDATE orders.slot_reservations r SET held_by_subject = true
 WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles a WHERE a.rolname = r.holder);

-- (0.42.0) actor_is_subject — is current_actor() a person's subject (a
-- believed JWT sub, or the owner's acting_for label) rather than the
-- login's role name?  A slot hold is its holder's by both (the read policy
-- below, confirm_booking, release_reservation).
CREATE FUNCTION orders.actor_is_subject() RETURNS boolean
    LANGUAGE c STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'orders_actor_is_subject';
COMMENT ON FUNCTION orders.actor_is_subject() IS
    'Whether orders.current_actor() is a JWT subject (or the acting_for label), not a login''s role name';
GRANT EXECUTE ON FUNCTION orders.actor_is_subject() TO PUBLIC;

ALTER POLICY reach ON orders.slot_reservations
    USING ((holder = (SELECT orders.current_actor()) AND held_by_subject = (SELECT orders.actor_is_subject()))
           OR ((SELECT orders.has_permission('orders', 'view'))
               AND (SELECT orders.current_staff_role()) <> 'delivery_agent'));

CREATE OR REPLACE FUNCTION orders.staff_holds_lapse() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE orders.slot_reservations r SET expires_at = now()
     WHERE r.id IN (SELECT h.id FROM orders.slot_reservations h
                     WHERE lower(h.holder) = OLD.account_id::text AND h.held_by_subject
                       AND h.status = 'held' AND h.expires_at > now()
                     ORDER BY h.id FOR UPDATE)
       AND r.status = 'held' AND r.expires_at > now();
    RETURN NULL;
END
$$;

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
