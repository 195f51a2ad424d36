-- orders 0.41.0 -> 0.42.0
--  * Bounds on every other JSON column an API role writes (23514, HTTP
--    400): its binary size, uncompressed, and numbers below 1e20 of at most
--    40 decimals (orders.jsonb_within, as 0.41.0 did for agency orders and
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
--  * Bounds on the lengths of the text columns API roles write (23514),
--    as 0.40.0 did for the indexed ones: names 500 characters (workflows'
--    200), addresses and the orders' delivery address 2,000, cities,
--    industries, job titles, lead sources 255, postal codes and phones 64,
--    URLs 2,048, notes, descriptions, feedback, return reasons and order
--    notes 10,000, products' descriptions 20,000, a lifecycle's initial
--    status 63.  A customer's 180 MB name (of control characters, which
--    JSON prints six times over) failed every staff page listing it and
--    pg_dump; a delivery agent's did the same to the staff list.  Rows
--    already longer stop the update (23514, naming each column).
--    webhook_ingest cuts a shop's address to 2,000 characters and its
--    note to 10,000, as it cuts names and cities.  A lifecycle edge's
--    allowed_roles holds at most 64 roles and allowed_staff 16 (a 36 MB
--    list was carried by every anonymous read of the graph); a share link
--    names each action once (create_share_token: 22023; three million
--    'view' made every anonymous open 24 MB) and sites' internal notes
--    hold 10,000 characters (set_site_internal_notes: 22001).
--  * (library) orders.jsonb_within takes numbers of up to 40 decimals (20
--    refused a JavaScript or Python double as small as 1/70000, printed
--    0.000014285714285714286, in every bounded column and shop payload);
--    the messages of create_share_token and the webhook ingest say so.

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
                                                    THEN 'with numbers past 1e20 or 40 decimals'
                                                    ELSE format('larger than %s or with numbers past 1e20 or 40 decimals',
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
    USING ((holder = (SELECT orders.current_actor()) AND held_by_subject = (SELECT orders.actor_is_subject())
            AND (held_by_subject OR NOT (SELECT orders.api_request())))
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

-- (0.42.0) bounds on the text columns API roles write (23514): a
-- customer's 180 MB name (of characters JSON prints six times over) failed
-- every staff page listing it and pg_dump; rows already longer stop the
-- update, naming each column and how many rows
DO $upgrade$
DECLARE
    bound record;
    n bigint;
    long_rows text := '';
BEGIN
    FOR bound IN
        SELECT * FROM (VALUES
            ('customers', 'address', 2000),
            ('customers', 'city', 255),
            ('customers', 'full_name', 500),
            ('customers', 'notes', 10000),
            ('customers', 'postal_code', 64),
            ('deliveries', 'customer_feedback', 10000),
            ('deliveries', 'photo_url', 2048),
            ('deliveries', 'signature_url', 2048),
            ('expenses', 'description', 10000),
            ('expenses', 'receipt_url', 2048),
            ('financial_transactions', 'notes', 10000),
            ('leads', 'company_name', 500),
            ('leads', 'contact_name', 500),
            ('leads', 'email', 320),
            ('leads', 'industry', 255),
            ('leads', 'job_title', 255),
            ('leads', 'location', 500),
            ('leads', 'notes', 10000),
            ('leads', 'phone', 64),
            ('leads', 'source', 255),
            ('leads', 'website', 2048),
            ('lifecycle_states', 'description', 10000),
            ('lifecycle_transitions', 'description', 10000),
            ('lifecycles', 'description', 10000),
            ('lifecycles', 'initial_status', 63),
            ('order_items', 'name', 500),
            ('order_notes', 'body', 10000),
            ('orders', 'customer_notes', 10000),
            ('orders', 'delivery_address', 2000),
            ('orders', 'name', 500),
            ('orders', 'return_reason', 10000),
            ('product_variants', 'name', 500),
            ('products', 'description', 20000),
            ('staff', 'full_name', 500),
            ('staff', 'phone', 64),
            ('workflows', 'description', 10000),
            ('workflows', 'name', 200)) b (tab, col, max_chars)
    LOOP
        EXECUTE format('SELECT count(*) FROM orders.%I WHERE length(%I) > $1', bound.tab, bound.col)
            INTO n USING bound.max_chars;
        IF n > 0 THEN
            long_rows := long_rows || format('%sorders.%s.%s: %s rows longer than %s characters',
                                             CASE WHEN long_rows = '' THEN '' ELSE '; ' END,
                                             bound.tab, bound.col, n, bound.max_chars);
        END IF;
    END LOOP;
    IF long_rows <> '' THEN
        RAISE EXCEPTION 'orders 0.42.0 bounds the lengths of the text API roles write, and rows are longer'
            USING ERRCODE = '23514', DETAIL = long_rows || '.',
                  HINT = 'Shorten them (e.g. UPDATE orders.customers SET address = left(address, 2000) WHERE length(address) > 2000), then ALTER EXTENSION orders UPDATE again.';
    END IF;
END
$upgrade$;

ALTER TABLE orders.customers
    ADD CONSTRAINT customers_address_check CHECK (length(address) <= 2000),
    ADD CONSTRAINT customers_city_check CHECK (length(city) <= 255),
    ADD CONSTRAINT customers_full_name_check CHECK (length(full_name) <= 500),
    ADD CONSTRAINT customers_notes_check CHECK (length(notes) <= 10000),
    ADD CONSTRAINT customers_postal_code_check CHECK (length(postal_code) <= 64);
ALTER TABLE orders.deliveries
    ADD CONSTRAINT deliveries_customer_feedback_check CHECK (length(customer_feedback) <= 10000),
    ADD CONSTRAINT deliveries_photo_url_check CHECK (length(photo_url) <= 2048),
    ADD CONSTRAINT deliveries_signature_url_check CHECK (length(signature_url) <= 2048);
ALTER TABLE orders.expenses
    ADD CONSTRAINT expenses_description_check CHECK (length(description) <= 10000),
    ADD CONSTRAINT expenses_receipt_url_check CHECK (length(receipt_url) <= 2048);
ALTER TABLE orders.financial_transactions
    ADD CONSTRAINT financial_transactions_notes_check CHECK (length(notes) <= 10000);
ALTER TABLE orders.leads
    ADD CONSTRAINT leads_company_name_check CHECK (length(company_name) <= 500),
    ADD CONSTRAINT leads_contact_name_check CHECK (length(contact_name) <= 500),
    ADD CONSTRAINT leads_email_check CHECK (length(email) <= 320),
    ADD CONSTRAINT leads_industry_check CHECK (length(industry) <= 255),
    ADD CONSTRAINT leads_job_title_check CHECK (length(job_title) <= 255),
    ADD CONSTRAINT leads_location_check CHECK (length(location) <= 500),
    ADD CONSTRAINT leads_notes_check CHECK (length(notes) <= 10000),
    ADD CONSTRAINT leads_phone_check CHECK (length(phone) <= 64),
    ADD CONSTRAINT leads_source_check CHECK (length(source) <= 255),
    ADD CONSTRAINT leads_website_check CHECK (length(website) <= 2048);
ALTER TABLE orders.lifecycle_states
    ADD CONSTRAINT lifecycle_states_description_check CHECK (length(description) <= 10000);
ALTER TABLE orders.lifecycle_transitions
    ADD CONSTRAINT lifecycle_transitions_description_check CHECK (length(description) <= 10000);
ALTER TABLE orders.lifecycles
    ADD CONSTRAINT lifecycles_description_check CHECK (length(description) <= 10000),
    ADD CONSTRAINT lifecycles_initial_status_check CHECK (length(initial_status) <= 63);
ALTER TABLE orders.order_items
    ADD CONSTRAINT order_items_name_check CHECK (length(name) <= 500);
ALTER TABLE orders.order_notes
    DROP CONSTRAINT order_notes_body_check,
    ADD CONSTRAINT order_notes_body_check CHECK (body <> '' AND length(body) <= 10000);
ALTER TABLE orders.orders
    ADD CONSTRAINT orders_customer_notes_check CHECK (length(customer_notes) <= 10000),
    ADD CONSTRAINT orders_delivery_address_check CHECK (length(delivery_address) <= 2000),
    ADD CONSTRAINT orders_name_check CHECK (length(name) <= 500),
    ADD CONSTRAINT orders_return_reason_check CHECK (length(return_reason) <= 10000);
ALTER TABLE orders.product_variants
    ADD CONSTRAINT product_variants_name_check CHECK (length(name) <= 500);
ALTER TABLE orders.products
    ADD CONSTRAINT products_description_check CHECK (length(description) <= 20000);
ALTER TABLE orders.staff
    ADD CONSTRAINT staff_full_name_check CHECK (length(full_name) <= 500),
    ADD CONSTRAINT staff_phone_check CHECK (length(phone) <= 64);
ALTER TABLE orders.workflows
    ADD CONSTRAINT workflows_description_check CHECK (length(description) <= 10000),
    ADD CONSTRAINT workflows_name_check CHECK (length(name) <= 200);


-- (0.42.0) an edge's lists of roles are bounded too: staff with
-- workflows.edit stored a 36 MB allowed_staff, which every anonymous read
-- of the lifecycle graph carried
DO $upgrade$
DECLARE
    n bigint;
BEGIN
    SELECT count(*) INTO n FROM orders.lifecycle_transitions
     WHERE cardinality(allowed_roles) > 64 OR cardinality(allowed_staff) > 16;
    IF n > 0 THEN
        RAISE EXCEPTION 'orders 0.42.0 bounds the role lists of lifecycle edges, and edges have longer ones'
            USING ERRCODE = '23514',
                  DETAIL = format('%s edges of orders.lifecycle_transitions have more than 64 allowed_roles or 16 allowed_staff.', n),
                  HINT = 'Remove the repeated roles, then ALTER EXTENSION orders UPDATE again.';
    END IF;
END
$upgrade$;
ALTER TABLE orders.lifecycle_transitions
    ADD CONSTRAINT lifecycle_transitions_allowed_roles_check CHECK (cardinality(allowed_roles) <= 64),
    DROP CONSTRAINT lifecycle_transitions_allowed_staff_check,
    ADD CONSTRAINT lifecycle_transitions_allowed_staff_check
        CHECK (allowed_staff <@ ARRAY['admin', 'manager', 'customer_rep', 'delivery_agent',
                                      'accountant', 'assigned_agent', 'assigned_rep']
               AND cardinality(allowed_staff) <= 16);


-- (0.42.0) a share link names each action once (three million 'view' were
-- stored, and every anonymous open of the link carried them), and sites'
-- internal notes hold 10,000 characters, as the clients' notes
DO $upgrade$
DECLARE
    links bigint := (SELECT count(*) FROM orders.order_share_tokens WHERE cardinality(allowed_actions) > 3);
    sites bigint := (SELECT count(*) FROM orders.order_site_selections WHERE length(internal_notes) > 10000);
BEGIN
    IF links > 0 OR sites > 0 THEN
        RAISE EXCEPTION 'orders 0.42.0 bounds share links'' actions and sites'' internal notes, and rows are larger'
            USING ERRCODE = '23514',
                  DETAIL = format('%s share links name more than 3 actions; %s sites have internal notes longer than 10000 characters.',
                                  links, sites),
                  HINT = 'Revoke or correct those links and shorten the notes, then ALTER EXTENSION orders UPDATE again.';
    END IF;
END
$upgrade$;
ALTER TABLE orders.order_share_tokens
    DROP CONSTRAINT order_share_tokens_allowed_actions_check,
    ADD CONSTRAINT order_share_tokens_allowed_actions_check
        CHECK (allowed_actions <@ ARRAY['view', 'approve', 'convert'] AND cardinality(allowed_actions) BETWEEN 1 AND 3);
ALTER TABLE orders.order_site_selections
    ADD CONSTRAINT order_site_selections_internal_notes_check CHECK (length(internal_notes) <= 10000);

CREATE OR REPLACE FUNCTION orders.webhook_ingest(endpoint text, body text, doc jsonb, signature text,
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
    adj numeric;
    incoming_at text;
    stored_at text;
    log_id uuid;
    phone_owned boolean;
    cancel_spec text;
    cancelled boolean := false;
    cancel_to text;
    cancellation text;
    was_status text;
    was_payment text;
    was_total numeric;
    acting_before text;
    too_many boolean := false;
    max_items integer;
    cancel_err text;
BEGIN
    -- the locks below serialise deliveries of one order; a transaction
    -- snapshot taken before them would not see the delivery it waited for
    PERFORM orders.require_read_committed('orders.ingest_webhook',
        'A transaction snapshot would not see the delivery of the same order it waited for.');
    -- through PostgREST, signature, delivery id and topic may come as headers
    headers := coalesce(nullif(current_setting('request.headers', true), ''), '{}')::jsonb;
    signature := coalesce(nullif(signature, ''), headers ->> 'x-shopify-hmac-sha256', headers ->> 'x-wc-webhook-signature');
    delivery_id := left(coalesce(nullif(delivery_id, ''), headers ->> 'x-shopify-webhook-id',
                                 headers ->> 'x-wc-webhook-delivery-id'), 255);
    topic := coalesce(nullif(topic, ''), headers ->> 'x-shopify-topic', headers ->> 'x-wc-webhook-topic');

    -- FOR KEY SHARE: a rename of the endpoint waits for the deliveries under
    -- way.  Other changes (is_active, the secret, the mapping) apply to the
    -- deliveries that start after they commit: FOR SHARE would make them
    -- wait for the deliveries under way, but also every delivery wait for
    -- a change of the webhook's name in an open transaction (0.34.0's first
    -- cut; its wait failed the call before the log)
    SELECT * INTO w FROM orders.webhooks wh WHERE wh.endpoint = webhook_ingest.endpoint AND wh.is_active FOR KEY SHARE;
    -- (0.32.0) what the delivery changes is the shop's: history and the
    -- activity log name "webhook:<endpoint>", not the extension's owner
    -- (orders.acting_for, superusers' only; put back as it was before the
    -- result is returned, and by the rollback of an error)
    acting_before := current_setting('orders.acting_for', true);
    IF w.id IS NOT NULL THEN
        PERFORM set_config('orders.acting_for', 'webhook:' || w.endpoint, true);
    END IF;
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
        -- (0.29.0) a body nested past the stack's depth is no JSON either;
        -- (0.34.0) nor one with a number past numeric's range (valid JSON,
        -- as a \u0000 escape or a lone surrogate is, which jsonb refuses)
        EXCEPTION WHEN invalid_text_representation OR untranslatable_character OR statement_too_complex
                       OR numeric_value_out_of_range THEN
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
    -- (0.41.0) a number that prints wider than a few characters is refused
    -- and not kept: 1e131071 is 8 bytes sent and 131 kB printed — 74 kB of
    -- them in the log printed as 1 GB, for its readers and for pg_dump
    IF http IS NULL AND NOT orders.jsonb_within(doc, 2147483647) THEN
        http := 400; code := 'OR094'; doc := NULL;
        err := format('the payload for webhook "%s" has a number past 1e20 or with more than 40 decimals', w.endpoint);
    END IF;
    -- (0.34.0) a Shopify or WooCommerce topic whose payload is not an order
    -- (refunds/create, orders/delete's bare id, orders/edited's order edit,
    -- order_transactions/create; WooCommerce's order.deleted, product.*,
    -- action.*) sent to an order webhook: logged and answered 200, nothing
    -- changed (a refund's id was taken for a shop order's, the delivery
    -- refused as an order without a customer, 422, retried by the shop for
    -- ever).  Other sources' topics are theirs: any may be an order's.
    IF http IS NULL AND topic IS NOT NULL
       AND ((w.source = 'shopify'
             AND lower(topic) !~ '^orders/(create|updated|cancelled|paid|fulfilled|partially_fulfilled)$')
         OR (w.source = 'woocommerce' AND lower(topic) !~ '^order\.(created|updated|restored)$')) THEN
        http := 200; result_status := 'ignored';
        err := format('webhook "%s": topic "%s" is not about orders: nothing done', w.endpoint, left(topic, 64));
    END IF;

    IF http IS NULL THEN
        m := w.field_mapping;
        d := w.defaults;
        max_items := coalesce((d ->> 'max_items')::integer, 500);
        ext_id := orders.webhook_value(doc, m -> 'order' ->> 'external_id');
        -- (0.29.0) the shop cancelled the order: "path" (any value but empty,
        -- false or 0: Shopify's cancelled_at) or "path = a, b" (one of the
        -- values: WooCommerce's status)
        cancel_spec := m -> 'order' ->> 'cancelled';
        IF strpos(cancel_spec, '=') > 0 THEN
            cancelled := coalesce(orders.webhook_value(doc, split_part(cancel_spec, '=', 1))
                                  IN (SELECT btrim(v) FROM unnest(string_to_array(split_part(cancel_spec, '=', 2), ',')) v), false);
        ELSIF cancel_spec IS NOT NULL THEN
            cancelled := coalesce(orders.webhook_value(doc, cancel_spec) NOT IN ('false', '0'), false);
        END IF;
        -- (0.34.0) from the advisory lock on, inside the subtransaction: a
        -- wait that runs out (a lock timeout, a deadlock) — for another
        -- delivery of the order, a keyed transition holding it — is
        -- answered 503 and logged; it failed the call unlogged
        BEGIN
            -- (0.41.0) the shop's order id, the customer's phone and email and
            -- the items' SKUs are taken whole (a longer one is refused by its
            -- column's bound, 422): cut to 255 characters, an order whose id
            -- began with another's 255 was answered "duplicate" and lost
            IF length(ext_id) > 255 THEN
                RAISE EXCEPTION 'the payload''s order id has % characters: an order''s external_id holds at most 255',
                                length(ext_id)
                    USING ERRCODE = '22001';
            END IF;
            IF ext_id IS NOT NULL OR delivery_id IS NOT NULL THEN
                PERFORM orders.xact_lock(hashtextextended(
                    'orders.webhook ' || w.id || ' ' || coalesce('order ' || ext_id, 'delivery ' || delivery_id), 0));
            END IF;
            -- a delivery id alone names the request only when the payload has no
            -- shop order id: the signature does not cover the delivery id, so a
            -- replayed body under another order's future delivery id must not
            -- make that order a "duplicate"
            IF ext_id IS NULL AND delivery_id IS NOT NULL THEN
                -- (0.34.0) one that made or named an order: an "ignored" topic's
                -- 200 names none, and made a later order of its delivery id a
                -- "duplicate"
                SELECT l.order_created_id INTO known
                  FROM orders.webhook_logs l
                 WHERE l.webhook_id = w.id AND l.delivery_id = webhook_ingest.delivery_id
                   AND l.response_status BETWEEN 200 AND 299 AND l.order_created_id IS NOT NULL
                 ORDER BY l.created_at LIMIT 1;
                IF FOUND THEN
                    result_status := 'duplicate'; http := 200;
                    -- (0.34.0) the order as it is, kept until the log row names
                    -- it (one deleted meanwhile failed the log row's key,
                    -- unlogged): deleted while this waited, the answer names
                    -- none; a later retry makes it anew (its log rows name
                    -- none any more)
                    SELECT o.id INTO order_id FROM orders.orders o WHERE o.id = known FOR KEY SHARE;
                END IF;
            END IF;
            IF http IS NULL AND ext_id IS NOT NULL THEN
                -- (0.34.0) FOR KEY SHARE: a deletion of the order waits for the
                -- delivery, or the delivery for it — then the shop order is
                -- unknown again and made anew, as a later retry would (an update
                -- of a vanished order failed on its log row's key, unlogged)
                SELECT o.id INTO known FROM orders.orders o
                 WHERE o.webhook_source = w.endpoint AND o.external_id = ext_id FOR KEY SHARE;
                IF FOUND THEN
                    order_id := known; http := 200;
                    result_status := CASE WHEN topic ~* 'update' OR cancelled THEN 'updated' ELSE 'duplicate' END;
                END IF;
            END IF;
            IF http IS NULL OR result_status = 'updated' THEN
                -- (0.29.0) the order is judged for its workflows once, at the end:
                -- not on the totals it passes through (inserted, its items, its
                -- adjustment; its items replaced), which fired a min_order_value
                -- workflow for an order whose total ended below it, and again on
                -- every update
                PERFORM orders.hold_order_workflows();
                items := CASE WHEN m -> 'order' ->> 'items' IS NULL THEN '[]'
                              ELSE coalesce(doc #> string_to_array(m -> 'order' ->> 'items', '.'), '[]') END;
                IF jsonb_typeof(items) <> 'array' THEN
                    RAISE EXCEPTION 'the items of the payload ("%") are not an array', m -> 'order' ->> 'items'
                        USING ERRCODE = 'OR092';
                -- (0.36.0) a bound on the rows one delivery writes: a 1 MB
                -- payload of empty items made 340,000 of them (10 s), from an
                -- endpoint without a secret anybody can reach.  A new order is
                -- refused; an update of a known one (a cancellation, an address)
                -- is applied without its items, which stay as they are, with
                -- their amounts (as for a payload without items)
                ELSIF jsonb_array_length(items) > max_items THEN
                    IF result_status = 'updated' THEN
                        too_many := true;
                        err := format('webhook "%s": the payload has %s items, more than the %s it takes: the order''s items and amounts are left as they were',
                                      w.endpoint, jsonb_array_length(items), max_items);
                        items := '[]';
                    ELSE
                        RAISE EXCEPTION 'the payload has % items, more than the % webhook "%" takes',
                                        jsonb_array_length(items), max_items, w.endpoint
                            USING ERRCODE = 'OR092',
                                  HINT = 'Raise defaults.max_items of the webhook (orders.webhooks) if its shop sends such orders.';
                    END IF;
                ELSIF EXISTS (SELECT FROM jsonb_array_elements(items) i WHERE jsonb_typeof(i) <> 'object') THEN
                    RAISE EXCEPTION 'the items of the payload ("%") are not all objects', m -> 'order' ->> 'items'
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
                    -- (0.39.0) the order's items first (id order), then the order,
                    -- as every writer of items locks them (its statement's items,
                    -- then their order at the statement's end): an item UPDATE by
                    -- staff and this delivery, which replaces the items once it
                    -- holds the order, deadlocked (40P01, answered 503)
                    PERFORM FROM orders.order_items it WHERE it.order_id = ingest.order_id ORDER BY it.id FOR UPDATE;
                    SELECT o.metadata -> 'webhook' ->> 'updated_at', o.status, o.payment_status, o.total_amount
                      INTO stored_at, was_status, was_payment, was_total
                      FROM orders.orders o WHERE o.id = order_id FOR UPDATE;
                    -- (0.28.0) strictly older only: shops stamp whole seconds, and a
                    -- second update within the same second was dropped as stale; a
                    -- Shopify retry of an update already applied (its delivery id —
                    -- X-Shopify-Webhook-Id, the same on every retry — logged for this
                    -- order) is a duplicate: not applied, no workflow again (a webhook
                    -- of another source fed by Shopify: by its header).  Not for
                    -- WooCommerce: its delivery ids are new on every attempt and may
                    -- repeat within a second.
                    IF (w.source = 'shopify' OR headers ? 'x-shopify-webhook-id') AND delivery_id IS NOT NULL AND EXISTS (
                           SELECT FROM orders.webhook_logs l
                            WHERE l.webhook_id = w.id AND l.delivery_id = webhook_ingest.delivery_id
                              AND l.order_created_id = order_id AND l.response_status BETWEEN 200 AND 299) THEN
                        result_status := 'duplicate';
                    ELSIF orders.webhook_time(incoming_at) < orders.webhook_time(stored_at) THEN
                        result_status := 'stale';		-- an older update delivered late: nothing changes
                    ELSE
                        UPDATE orders.orders o
                           -- a note the payload leaves out stays; one it sends empty or null goes
                           -- (a note mapped by a plain path; one of alternatives "a | b" or
                           -- parts "a + b" is kept when they all are empty)
                           SET customer_notes = CASE
                                   WHEN orders.webhook_value(doc, m -> 'order' ->> 'notes') IS NOT NULL
                                       THEN left(orders.webhook_value(doc, m -> 'order' ->> 'notes'), 10000)
                                   WHEN doc #> string_to_array(m -> 'order' ->> 'notes', '.') IS NOT NULL THEN NULL
                                   ELSE o.customer_notes END,
                               delivery_address = coalesce(left(orders.webhook_value(doc, m -> 'customer' ->> 'address'), 2000), o.delivery_address),
                               delivery_area = coalesce(left(orders.webhook_value(doc, m -> 'customer' ->> 'city'), 255), o.delivery_area),
                               metadata = CASE WHEN orders.webhook_time(incoming_at) IS NULL THEN o.metadata
                                               ELSE o.metadata || jsonb_build_object('webhook',
                                                        coalesce(o.metadata -> 'webhook', '{}') || jsonb_build_object('updated_at', incoming_at)) END
                         WHERE o.id = order_id;
                        -- items and amounts follow the shop only before the order leaves
                        -- its initial status, and (0.28.0) only from a payload that has
                        -- its items: an update without them emptied the order (total 0);
                        -- its currency with them, when the payload names one (it kept
                        -- the old currency under the new amounts)
                        IF EXISTS (SELECT 1 FROM orders.orders o JOIN orders.lifecycles l ON l.name = o.lifecycle
                                    WHERE o.id = order_id AND o.status = l.initial_status)
                           AND NOT too_many
                           AND doc #> string_to_array(m -> 'order' ->> 'items', '.') IS NOT NULL THEN
                            UPDATE orders.orders o
                               SET currency = upper(coalesce(orders.webhook_value(doc, m -> 'order' ->> 'currency'), o.currency))
                             WHERE o.id = order_id;
                            SELECT o.adjustment INTO adj FROM orders.orders o WHERE o.id = order_id;
                            -- (0.29.0) the items are replaced only when they changed (a
                            -- cancellation carries them as they were), and not while a
                            -- slot books one of them (its place is given back by
                            -- cancelling the order: OR031 refused the whole delivery,
                            -- its cancellation with it); the amounts follow either way
                            IF (SELECT coalesce(jsonb_agg(jsonb_build_array(it.sku, it.name, it.quantity, it.unit_price,
                                                                            it.product_id, it.variant_id)
                                                          ORDER BY it.sku, it.name, it.quantity, it.unit_price), '[]')
                                  FROM orders.order_items it WHERE it.order_id = ingest.order_id)
                               IS DISTINCT FROM
                               (SELECT coalesce(jsonb_agg(jsonb_build_array(x.sku, x.name, x.quantity, x.unit_price,
                                                                            x.product_id, x.variant_id)
                                                          ORDER BY x.sku, x.name, x.quantity, x.unit_price), '[]')
                                  FROM jsonb_to_recordset(resolved) AS x(sku text, name text, quantity integer, unit_price numeric,
                                                                        product_id uuid, variant_id uuid))
                               AND NOT EXISTS (SELECT FROM orders.order_items it
                                                 JOIN orders.slot_reservations sr ON sr.order_item_id = it.id
                                                WHERE it.order_id = ingest.order_id AND sr.status IN ('held', 'confirmed'))
                               -- (0.35.0) nor while an approved site's item is among them
                               -- (it goes with the site's approval: OR078 refused the
                               -- whole delivery)
                               AND NOT EXISTS (SELECT FROM orders.order_items it
                                                 JOIN orders.order_site_selections x ON x.order_item_id = it.id
                                                WHERE it.order_id = ingest.order_id AND x.status = 'approved') THEN
                                -- without its items a discount larger than the fee would make the
                                -- total negative (refused): a negative adjustment waits for them
                                IF adj < 0 THEN
                                    UPDATE orders.orders o SET adjustment = 0 WHERE o.id = order_id;
                                END IF;
                                DELETE FROM orders.order_items it WHERE it.order_id = ingest.order_id;
                                PERFORM orders.webhook_insert_items(order_id, resolved);
                            END IF;
                            IF total IS NOT NULL THEN
                                -- the parts written, the shop's total follows exactly (a total
                                -- written equal to the one stored would not count as written)
                                UPDATE orders.orders o SET delivery_fee = fee, adjustment = total - o.subtotal - fee
                                 WHERE o.id = order_id;
                            ELSE
                                UPDATE orders.orders o SET delivery_fee = fee, adjustment = adj WHERE o.id = order_id;
                            END IF;
                        END IF;
                    END IF;
                ELSE
                    c_phone := orders.webhook_value(doc, m -> 'customer' ->> 'phone');
                    c_email := lower(orders.webhook_value(doc, m -> 'customer' ->> 'email'));
                    IF c_phone IS NULL AND c_email IS NULL THEN
                        RAISE EXCEPTION 'the payload has neither a phone nor an email of the customer'
                            USING ERRCODE = 'OR092', HINT = 'Check the customer section of the webhook''s field_mapping.';
                    END IF;
                    -- one customer per phone and per email, also when new orders of a new
                    -- customer race: a lock per key the lookup uses, the phone's first.
                    -- (0.28.0) Only customers without a login: a logged-in customer
                    -- writes its own phone and email, and took over a shopper's orders
                    -- by writing theirs.  A phone only customers with a login have
                    -- makes a new customer (the email is not asked then: it would find
                    -- a row that somebody else's order made with that email).
                    IF c_phone IS NOT NULL THEN
                        PERFORM orders.xact_lock(hashtextextended('orders.customer phone ' || c_phone, 0));
                    END IF;
                    IF c_email IS NOT NULL THEN
                        PERFORM orders.xact_lock(hashtextextended('orders.customer email ' || c_email, 0));
                    END IF;
                    IF c_phone IS NOT NULL THEN
                        SELECT c.id, c.account_id IS NOT NULL INTO customer_id, phone_owned FROM orders.customers c
                         WHERE c.phone = c_phone ORDER BY c.account_id IS NOT NULL, c.created_at, c.id LIMIT 1;
                        IF phone_owned THEN
                            customer_id := NULL;
                        END IF;
                    END IF;
                    IF customer_id IS NULL AND phone_owned IS NOT TRUE AND c_email IS NOT NULL THEN
                        SELECT c.id INTO customer_id FROM orders.customers c
                         WHERE c.email = c_email AND c.account_id IS NULL ORDER BY c.created_at, c.id LIMIT 1;
                    END IF;
                    IF customer_id IS NULL THEN
                        INSERT INTO orders.customers (full_name, email, phone, address, city, postal_code)
                        VALUES (left(coalesce(orders.webhook_value(doc, m -> 'customer' ->> 'name'), c_email, c_phone), 200),
                                c_email, c_phone,
                                left(orders.webhook_value(doc, m -> 'customer' ->> 'address'), 2000),
                                left(orders.webhook_value(doc, m -> 'customer' ->> 'city'), 255),
                                left(orders.webhook_value(doc, m -> 'customer' ->> 'postal_code'), 64))
                        RETURNING id INTO customer_id;
                    END IF;
                    -- the adjustment makes the total the shop's (tax, discounts); until the
                    -- items are in, the total is fee + adjustment, which a discount larger
                    -- than the fee would make negative (refused): that part waits for them
                    adj := coalesce(total - coalesce(items_sum, 0) - fee, 0);
                    INSERT INTO orders.orders (customer_id, lifecycle, priority, currency, delivery_fee, adjustment,
                                               customer_notes, delivery_address, delivery_area,
                                               source, webhook_source, external_id, metadata)
                    VALUES (customer_id, coalesce(d ->> 'lifecycle', 'cod'), coalesce((d ->> 'priority')::integer, 0),
                            upper(coalesce(orders.webhook_value(doc, m -> 'order' ->> 'currency'), d ->> 'currency', 'USD')),
                            fee, greatest(adj, -fee),
                            left(orders.webhook_value(doc, m -> 'order' ->> 'notes'), 10000),
                            left(orders.webhook_value(doc, m -> 'customer' ->> 'address'), 2000),
                            left(orders.webhook_value(doc, m -> 'customer' ->> 'city'), 255),
                            'webhook', w.endpoint, ext_id,
                            jsonb_build_object('webhook', jsonb_strip_nulls(jsonb_build_object(
                                'source', w.source,
                                'order_number', orders.webhook_value(doc, m -> 'order' ->> 'order_number'),
                                'updated_at', CASE WHEN orders.webhook_time(orders.webhook_value(doc, m -> 'order' ->> 'updated_at')) IS NOT NULL
                                                   THEN orders.webhook_value(doc, m -> 'order' ->> 'updated_at') END))))
                    RETURNING id INTO order_id;
                    PERFORM orders.webhook_insert_items(order_id, resolved);
                    IF adj < -fee THEN
                        UPDATE orders.orders o SET adjustment = adj WHERE o.id = order_id;
                    END IF;
                    result_status := 'created'; http := 201;
                END IF;
                -- (0.29.0) a cancellation by the shop takes the order's edge to a
                -- cancelled status (the one named "cancelled" first), with its
                -- history, stock and statistics; an order already cancelled stays;
                -- one without such an edge (delivered, paid) is left to staff, and
                -- so is a cancellation the lifecycle refuses (a gate, a rule): the
                -- rest of the delivery stands and the log says why (the shop gets
                -- its 200 and does not retry what only staff can settle)
                IF cancelled AND result_status IN ('created', 'updated') THEN
                    SELECT t.to_status INTO cancel_to
                      FROM orders.orders o
                      JOIN orders.lifecycle_transitions t ON t.lifecycle = o.lifecycle AND t.from_status = o.status
                      JOIN orders.lifecycle_states s ON s.lifecycle = t.lifecycle AND s.status = t.to_status
                     WHERE o.id = order_id AND s.category = 'cancelled'
                     ORDER BY t.to_status <> 'cancelled', s.position, t.to_status
                     LIMIT 1;
                    IF cancel_to IS NOT NULL AND EXISTS (SELECT FROM orders.orders o WHERE o.id = order_id
                                                            AND (o.paid_at IS NOT NULL OR o.payment_status NOT IN ('pending', 'failed'))) THEN
                        -- paid or collected: a refund is staff's (0.29.0)
                        SELECT format('not applied: the order is "%s" and paid (payment "%s"): a refund is staff''s', o.status, o.payment_status)
                          INTO cancellation FROM orders.orders o WHERE o.id = order_id;
                    ELSIF cancel_to IS NOT NULL THEN
                        BEGIN
                            PERFORM orders.transition(order_id, cancel_to, 'cancelled in the shop');
                            cancellation := 'applied';
                        EXCEPTION WHEN OTHERS THEN
                            GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, cancel_err = MESSAGE_TEXT;
                            -- a rule's refusal (a gate, a staff edge, stock) is staff's to
                            -- settle: 200 and the log says why; anything else — a lock
                            -- timeout, a deadlock, a serialization failure — fails the
                            -- delivery (503: the shop retries; a 2xx would make its retry
                            -- a "duplicate", the cancellation lost)
                            IF NOT (code LIKE 'OR%' OR code LIKE '23%' OR code = '42501') THEN
                                RAISE;
                            END IF;
                            cancellation := format('not applied (%s): %s', code, left(cancel_err, 300));
                        END;
                    ELSIF NOT EXISTS (SELECT FROM orders.orders o
                                        JOIN orders.lifecycle_states s ON s.lifecycle = o.lifecycle AND s.status = o.status
                                       WHERE o.id = order_id AND s.category = 'cancelled') THEN
                        SELECT format('not applied: the order is "%s", which has no edge to a cancelled status', o.status)
                          INTO cancellation FROM orders.orders o WHERE o.id = order_id;
                    END IF;
                    -- (0.37.0) beside the note of items left as they were, not over it
                    IF cancellation LIKE 'not applied%' THEN
                        err := concat_ws('; ', err, format('webhook "%s": the shop cancelled the order; %s', w.endpoint, cancellation));
                        code := NULL;
                    END IF;
                END IF;
                PERFORM orders.judge_order_workflows(order_id, was_status, was_payment, was_total);
                -- webhook workflows (sql/schema/99_workflows.sql) run with the
                -- order, inside the subtransaction (0.34.0): one that meets a lock
                -- (a lock timeout, a deadlock, a serialization failure) fails the
                -- delivery with 503, logged, the order undone — it failed the
                -- call, unlogged, after the log row
                IF result_status IN ('created', 'updated') THEN
                    log_id := orders.new_id();
                    PERFORM orders.fire_webhook_workflows(w.id, order_id,
                                                          CASE result_status WHEN 'created' THEN 'order.created' ELSE 'order.updated' END,
                                                          log_id);
                END IF;
            END IF;
        EXCEPTION
            WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, err = MESSAGE_TEXT;
                http := CASE WHEN code IN ('40001', '40P01', '55P03') THEN 503
                             WHEN code LIKE '22%' OR code LIKE '23%' OR code LIKE 'OR%' OR code LIKE '54%' THEN 422
                             ELSE 500 END;
                err := format('webhook "%s": %s', w.endpoint, left(err, 500));
                -- what the block set is undone with it (0.34.0: a cancellation
                -- rolled back was answered "applied")
                result_status := NULL; order_id := NULL; log_id := NULL;
                cancellation := NULL; cancel_to := NULL; known := NULL;
        END;
    END IF;

    INSERT INTO orders.webhook_logs (id, webhook_id, delivery_id, request_payload, response_status, order_created_id, error_message)
    VALUES (coalesce(log_id, orders.new_id()), w.id, delivery_id, CASE WHEN http NOT IN (401, 404, 413) THEN doc END,
            http, order_id, err)
    RETURNING id INTO log_id;
    PERFORM set_config('response.status', http::text, true);
    PERFORM set_config('orders.acting_for', coalesce(acting_before, ''), true);
    RETURN jsonb_strip_nulls(jsonb_build_object(
        'status', coalesce(result_status, 'rejected'), 'http_status', http, 'order_id', order_id,
        'log_id', log_id, 'code', CASE WHEN http >= 300 THEN code END,
        'error', CASE WHEN http >= 300 OR result_status = 'ignored' THEN err END,
        'cancellation', cancellation));
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
    -- (0.40.0) and as a span from now: '3 mons' compares as 90 days but
    -- ran up to 92 ('1 mon -30 days' compares as 0 but may end tomorrow)
    IF expires_in IS NULL OR expires_in <= interval '0' OR expires_in > interval '90 days'
       OR now() + expires_in > now() + interval '90 days' OR now() + expires_in <= now() THEN
        RAISE EXCEPTION 'orders.create_share_token: expires_in must be more than 0 and at most 90 days'
            USING ERRCODE = '22023';
    END IF;
    -- (0.40.0) a list: '{{view},{view}}' was stored as given; (0.42.0) each
    -- action once: three million 'view' were stored, and every anonymous
    -- open of the link carried them (24 MB)
    IF cardinality(allowed_actions) = 0 OR array_ndims(allowed_actions) <> 1
       OR NOT allowed_actions <@ ARRAY['view', 'approve', 'convert']
       OR cardinality(allowed_actions) <> (SELECT count(DISTINCT a) FROM unnest(allowed_actions) a) THEN
        RAISE EXCEPTION 'orders.create_share_token: allowed_actions must be some of view, approve, convert, each once, not %',
                        left(allowed_actions::text, 100)
            USING ERRCODE = '22023';
    END IF;
    -- (0.37.0) what a link carries for the marketing (UTM and the like) is
    -- small: it was unbounded, a store of any size for whoever may share
    -- (0.41.0) an object, refused here: the table's CHECK, raised as the
    -- owner, showed the new link's row (its token hash among it) in DETAIL
    IF jsonb_typeof(create_share_token.metadata) <> 'object' THEN
        RAISE EXCEPTION 'orders.create_share_token: metadata must be a JSON object, not %',
                        jsonb_typeof(create_share_token.metadata)
            USING ERRCODE = '22023';
    END IF;
    -- (0.41.0) measured without printing it (a 74 kB array of 1e131071
    -- printed as 1 GB, and the server ran out of memory)
    IF NOT orders.jsonb_within(create_share_token.metadata, 4096) THEN
        RAISE EXCEPTION 'orders.create_share_token: metadata may have at most 4096 bytes and numbers below 1e20 with at most 40 decimals'
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

CREATE OR REPLACE FUNCTION orders.set_site_internal_notes(selection_id uuid, internal_notes text)
    RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    grp uuid := (SELECT x.order_group_id FROM orders.order_site_selections x WHERE x.id = set_site_internal_notes.selection_id);
BEGIN
    -- (0.35.0) 22004, as the other API functions (was: a "does not exist" of <NULL>)
    IF set_site_internal_notes.selection_id IS NULL THEN
        RAISE EXCEPTION 'orders.set_site_internal_notes: argument "selection_id" must not be null' USING ERRCODE = '22004';
    END IF;
    IF grp IS NULL OR NOT orders.has_permission('orders', 'edit') OR NOT orders.staff_sees_group(grp) THEN
        RAISE EXCEPTION 'site % does not exist', set_site_internal_notes.selection_id
            USING ERRCODE = 'OR076', HINT = 'Either no site has this id or you may not edit its order.';
    END IF;
    -- (0.42.0) at most 10,000 characters, as the client's notes: staff
    -- stored 50 million, which every reader of the site's notes received
    IF length(set_site_internal_notes.internal_notes) > 10000 THEN
        RAISE EXCEPTION 'orders.set_site_internal_notes: argument "internal_notes" may have at most 10000 characters, not %',
                        length(set_site_internal_notes.internal_notes)
            USING ERRCODE = '22001';
    END IF;
    UPDATE orders.order_site_selections x SET internal_notes = set_site_internal_notes.internal_notes
     WHERE x.id = set_site_internal_notes.selection_id;
END
$$;
