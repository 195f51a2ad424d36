-- orders 0.43.0 -> 0.44.0
--  * product_catalog reads one page: at most max_products products (new
--    parameter, default 100, 1..1000; 22023 otherwise) in (name,
--    product_id) order after (after_name, after_id), each with its active
--    variants — an anonymous call sorted the whole catalog (100k products:
--    55 MB of temporary file per request).  Two partial indexes serve the
--    pages; the function's signature is (text, integer, text, uuid) and the
--    roles that could execute the old one can execute it.
--  * Shop webhooks (library and SQL): a phone is a customer's key only with
--    five digits or more, and a customer found by it whose email is
--    another is another person (orders.webhook_phone_key, new) — a
--    checkout's "-" made every such shopper one customer, their
--    notifications sent to the first one's email; signatures are checked
--    over the UTF-8 bytes the shop signed (a LATIN1 database refused
--    every order with an accent, 401; a SQL_ASCII database's bytes are
--    hashed as they are); in a SQL_ASCII database a \u
--    escape past ASCII is "not JSON" (400, logged), not an unlogged
--    error; currencies and topics change case as in "C", emails their
--    ASCII letters first (orders.webhook_email_key, new: a Turkish
--    database made al\u0131ce@… and \u0130NR); OR095 names the first
--    unmatched SKU; a webhook's defaults.lifecycle must name a lifecycle
--    when written (OR002; a typo refused every delivery); TRUNCATE of the
--    webhooks is refused while orders carry their shop order ids (OR096,
--    as DELETE is: a new webhook with the endpoint took the old shop's
--    orders).
--  * A site's domain and a workflow webhook's host lower-case as in "C".
--  * api_roles: a row copy of its invalidation trigger fires where
--    session_replication_role = replica (a role taken out there stayed
--    trusted by every living session).
--  * recent_orders: a customer's call reads its own orders by index (one
--    branch per kind of caller) — it read every order and customer under
--    the row policies (30 ms at 100k orders; now 0.1 ms).
--  * OR031's hint for deleting a booked item says what an owner does for an
--    order in a final status (release, then recount_slots).
--  * orders.orders.status's comment carries PostGraphile's @hasDefault tag
--    (its trigger fills it in; a GraphQL createOrder required it).
--  * (library) orders.business_timezone, a new superuser setting, names
--    the shop's zone outright (a client's startup TimeZone — pgjdbc's
--    JVM zone — moved the business day).
\echo Use "ALTER EXTENSION orders UPDATE TO '0.44.0'" to load this file. \quit

-- The order of this script (a live shop's update, 0.44.0): first what waits
-- for maintenance of orders.orders (the COMMENT takes SHARE UPDATE
-- EXCLUSIVE on it: a running VACUUM or ANALYZE holds it up) while nothing
-- else is held; last the two index builds, whose SHARE lock on
-- orders.products holds every writer of products — a status change that
-- takes or gives back stock — until the update commits (0.4 s per 100,000
-- products).

-- (0.44.0) "@hasDefault": a PostGraphile smart tag — status_guard fills the
-- column in, so a GraphQL client need not name it (it was a required field)
COMMENT ON COLUMN orders.orders.status IS E'@hasDefault\nCurrent status; changes only along orders.lifecycle_transitions (see orders.transition); a new order''s is its lifecycle''s initial status';



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

-- (0.44.0) webhook_phone_key — "phone" when it can tell a customer from
-- another, five digits or more (ASCII, Arabic-Indic, full-width); else
-- NULL: a checkout's placeholder ("-", "0", "N/A") is nobody's phone.
-- The text is compared as sent (no normalisation).
CREATE FUNCTION orders.webhook_phone_key(phone text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN pg_catalog.regexp_count(phone, '[0-9\u0660-\u0669\u06F0-\u06F9\uFF10-\uFF19]') >= 5 THEN phone END;

-- (0.44.0) webhook_email_key — "email" as customers are found by it:
-- lower case, its ASCII letters first (in a Turkish database lower('I') is
-- a dotless i: alice@ became al\u0131ce@), then the rest as the database
-- lowers it (an accented capital too, as 0.43.0 did).
CREATE FUNCTION orders.webhook_email_key(email text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN pg_catalog.lower(pg_catalog.translate(email, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'));

-- (0.44.0) a webhook's defaults.lifecycle names a lifecycle when it is
-- written (OR002): a typo ("COD") was accepted and then refused every
-- delivery of the shop.  Only when written: a lifecycle dropped later
-- refuses the deliveries (OR002, logged).
CREATE FUNCTION orders.webhook_defaults_check() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- a restore loads the rows as dumped (its lifecycles may come after)
    IF orders.restoring(TG_RELID) THEN
        RETURN NEW;
    END IF;
    IF jsonb_typeof(NEW.defaults -> 'lifecycle') = 'string'   -- another type: the CHECK's (23514)
       AND NOT EXISTS (SELECT FROM orders.lifecycles l WHERE l.name = NEW.defaults ->> 'lifecycle') THEN
        RAISE EXCEPTION 'webhook "%": defaults.lifecycle "%" is not a lifecycle',
                        left(NEW.endpoint, 64), left(NEW.defaults ->> 'lifecycle', 64)
            USING ERRCODE = 'OR002', HINT = 'Name one of orders.lifecycles; names are case-sensitive.';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER webhook_defaults_check BEFORE INSERT OR UPDATE OF defaults ON orders.webhooks
    FOR EACH ROW EXECUTE FUNCTION orders.webhook_defaults_check();
REVOKE ALL ON FUNCTION orders.webhook_phone_key(text), orders.webhook_email_key(text), orders.webhook_defaults_check() FROM PUBLIC;

-- (0.44.0) TRUNCATE skips the row trigger above: refused (OR096) while an
-- order carries a shop order id of one of the webhooks — a webhook made
-- again with the endpoint took the old shop's orders for its own (its
-- updates overwrote their addresses and notes).  AFTER the truncation, so
-- that a TRUNCATE of the orders in the same statement counts: the webhooks
-- are gone then, and any order still naming an endpoint (with a shop order
-- id) names one of them — a webhook with such orders cannot be deleted.
CREATE FUNCTION orders.webhooks_truncate_guard() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    endpoints bigint;
    named text;
BEGIN
    PERFORM orders.require_read_committed('TRUNCATE orders.webhooks',
        'Its check that no order keeps an endpoint needs a snapshot taken after the table''s lock.');
    SELECT count(*), string_agg(format('"%s"', left(e.webhook_source, 64)), ', ' ORDER BY e.webhook_source)
                         FILTER (WHERE e.n <= 5)
      INTO endpoints, named
      FROM (SELECT o.webhook_source, row_number() OVER (ORDER BY o.webhook_source) AS n
              FROM orders.orders o
             WHERE o.webhook_source IS NOT NULL AND o.external_id IS NOT NULL
             GROUP BY o.webhook_source) e;
    IF endpoints > 0 THEN
        RAISE EXCEPTION 'cannot truncate orders.webhooks: orders of % webhooks keep their endpoints', endpoints
            USING ERRCODE = 'OR096',
                  DETAIL = format('Endpoints %s%s: their orders keep them; a new webhook with one would take them for its own.',
                                  named, CASE WHEN endpoints > 5 THEN ', …' ELSE '' END),
                  HINT = 'Deactivate them (UPDATE orders.webhooks SET is_active = false), or delete their orders first.';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER webhooks_truncate_guard AFTER TRUNCATE ON orders.webhooks
    FOR EACH STATEMENT EXECUTE FUNCTION orders.webhooks_truncate_guard();
REVOKE ALL ON FUNCTION orders.webhooks_truncate_guard() FROM PUBLIC;

-- (0.44.0) where session_replication_role = replica (a DBA's bulk script, an
-- apply worker) the statement trigger does not fire: this row copy does, as
-- the lifecycle tables' do — a role taken out there stayed trusted by every
-- living session
CREATE TRIGGER api_roles_changed_applied AFTER INSERT OR UPDATE OR DELETE
    ON orders.api_roles FOR EACH ROW EXECUTE FUNCTION orders.api_roles_changed();
ALTER TABLE orders.api_roles ENABLE REPLICA TRIGGER api_roles_changed_applied;

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
    phone_key text;
    other_person boolean;
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
        -- as a \u0000 escape or a lone surrogate is, which jsonb refuses);
        -- (0.44.0) nor, in a SQL_ASCII database, a \u escape past ASCII (0A000)
        EXCEPTION WHEN invalid_text_representation OR untranslatable_character OR statement_too_complex
                       OR numeric_value_out_of_range OR feature_not_supported THEN
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
             AND lower(topic COLLATE "C") !~ '^orders/(create|updated|cancelled|paid|fulfilled|partially_fulfilled)$')
         OR (w.source = 'woocommerce' AND lower(topic COLLATE "C") !~ '^order\.(created|updated|restored)$')) THEN
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
                    -- (0.44.0) the first of them named (the log keeps the message):
                    -- SKUs compare exactly, the payload's without the spaces around it
                    SELECT format('item %s, SKU %s', x.v ->> 'ord',
                                  coalesce('"' || left(x.v ->> 'sku', 64) || '"', 'none'))
                      INTO err
                      FROM jsonb_array_elements(resolved) x (v)
                     WHERE x.v ->> 'product_id' IS NULL
                     ORDER BY (x.v ->> 'ord')::integer
                     LIMIT 1;
                    RAISE EXCEPTION '% of % items of the payload have no product with their SKU (the first: %)',
                                    item_count - matched, item_count, err
                        USING ERRCODE = 'OR095',
                              HINT = 'Create the products (or variants) with these SKUs, or set require_sku_match to false.';
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
                               SET currency = upper(coalesce(orders.webhook_value(doc, m -> 'order' ->> 'currency'), o.currency) COLLATE "C")
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
                    c_email := orders.webhook_email_key(orders.webhook_value(doc, m -> 'customer' ->> 'email'));
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
                    -- (0.44.0) A phone is a key only with five digits or more (a
                    -- checkout's "-", "0", "N/A" made every such shopper one customer,
                    -- their notifications sent to the first one's email), and a
                    -- customer found by it whose email is another is another person:
                    -- the email decides then.
                    phone_key := orders.webhook_phone_key(c_phone);
                    IF phone_key IS NOT NULL THEN
                        PERFORM orders.xact_lock(hashtextextended('orders.customer phone ' || phone_key, 0));
                    END IF;
                    IF c_email IS NOT NULL THEN
                        PERFORM orders.xact_lock(hashtextextended('orders.customer email ' || c_email, 0));
                    END IF;
                    IF phone_key IS NOT NULL THEN
                        -- among the phone's customers: one with the payload's email
                        -- first, then one with none, then another person's
                        SELECT c.id, c.account_id IS NOT NULL,
                               coalesce(orders.webhook_email_key(c.email) <> c_email, false)
                          INTO customer_id, phone_owned, other_person
                          FROM orders.customers c
                         WHERE c.phone = phone_key
                         ORDER BY c.account_id IS NOT NULL,
                                  coalesce(orders.webhook_email_key(c.email) = c_email, false) DESC,
                                  coalesce(orders.webhook_email_key(c.email) <> c_email, false),
                                  c.created_at, c.id
                         LIMIT 1;
                        IF phone_owned OR other_person THEN
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
                            upper(coalesce(orders.webhook_value(doc, m -> 'order' ->> 'currency'), d ->> 'currency', 'USD') COLLATE "C"),
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

    -- (0.43.0) a request to no webhook is not logged: anybody could add a
    -- row per request (six indexes, kept 90 days) to nobody's log
    IF w.id IS NOT NULL THEN
        INSERT INTO orders.webhook_logs (id, webhook_id, delivery_id, request_payload, response_status, order_created_id, error_message)
        VALUES (coalesce(log_id, orders.new_id()), w.id, delivery_id, CASE WHEN http NOT IN (401, 413) THEN doc END,
                http, order_id, err)
        RETURNING id INTO log_id;
    END IF;
    PERFORM set_config('response.status', http::text, true);
    PERFORM set_config('orders.acting_for', coalesce(acting_before, ''), true);
    RETURN jsonb_strip_nulls(jsonb_build_object(
        'status', coalesce(result_status, 'rejected'), 'http_status', http, 'order_id', order_id,
        'log_id', log_id, 'code', CASE WHEN http >= 300 THEN code END,
        'error', CASE WHEN http >= 300 OR result_status = 'ignored' THEN err END,
        'cancellation', cancellation));
END
$$;

CREATE OR REPLACE FUNCTION orders.webhook_placement(endpoint text, payload json, signature text DEFAULT NULL,
                                         delivery_id text DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    headers jsonb := coalesce(nullif(current_setting('request.headers', true), ''), '{}')::jsonb;
    w orders.webhooks%ROWTYPE;
    body text := payload::text;
    doc jsonb;
    ext_id text;
    c_phone text;
    c_email text;
    known boolean;
BEGIN
    signature := coalesce(nullif(signature, ''), headers ->> 'x-shopify-hmac-sha256', headers ->> 'x-wc-webhook-signature');
    delivery_id := left(coalesce(nullif(delivery_id, ''), headers ->> 'x-shopify-webhook-id',
                                 headers ->> 'x-wc-webhook-delivery-id'), 255);
    SELECT * INTO w FROM orders.webhooks wh WHERE wh.endpoint = webhook_placement.endpoint AND wh.is_active;
    IF w.id IS NULL OR body IS NULL
       OR octet_length(body) > coalesce((w.defaults ->> 'max_payload_bytes')::bigint, 1048576)
       OR (w.secret IS NOT NULL AND (signature IS NULL OR NOT orders.webhook_signature_ok(w.secret, body, signature))) THEN
        RETURN jsonb_build_object('known', false);
    END IF;
    BEGIN
        doc := body::jsonb;
    EXCEPTION WHEN invalid_text_representation OR untranslatable_character OR statement_too_complex
                   OR numeric_value_out_of_range OR feature_not_supported THEN
        RETURN jsonb_build_object('known', false);
    END;
    IF jsonb_typeof(doc) <> 'object' THEN
        RETURN jsonb_build_object('known', false);
    END IF;
    ext_id := orders.webhook_value(doc, w.field_mapping -> 'order' ->> 'external_id');
    IF ext_id IS NOT NULL THEN
        known := EXISTS (SELECT FROM orders.orders o WHERE o.webhook_source = w.endpoint AND o.external_id = ext_id);
    ELSE
        known := delivery_id IS NOT NULL
                 AND EXISTS (SELECT FROM orders.webhook_logs l
                              WHERE l.webhook_id = w.id AND l.delivery_id = webhook_placement.delivery_id
                                AND l.response_status BETWEEN 200 AND 299);
    END IF;
    c_phone := orders.webhook_value(doc, w.field_mapping -> 'customer' ->> 'phone');
    c_email := orders.webhook_email_key(orders.webhook_value(doc, w.field_mapping -> 'customer' ->> 'email'));
    RETURN jsonb_strip_nulls(jsonb_build_object(
        'known', known,
        'route', hashtext(coalesce('phone ' || orders.webhook_phone_key(c_phone), 'email ' || c_email))));
END
$$;

CREATE OR REPLACE FUNCTION orders.normalize_domain(domain text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT regexp_replace(
             regexp_replace(lower(btrim(domain) COLLATE "C"), '^([a-z][a-z0-9+.-]*://)?([^@/]*@)?([^/:?#]*).*$', '\3'),
             '^www\.', '')
$$;

CREATE OR REPLACE FUNCTION orders.check_webhook_url(url text, step_id text)
    RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    authority text := substring(url FROM '^[Hh][Tt][Tt][Pp][Ss]?://([^/?#]*)');
    host text;
BEGIN
    -- the whole authority, up to the path: a "\" or "@" in it is user
    -- information to some clients (curl, Python read hooks.example.com\@10.0.0.1
    -- as a user before the host 10.0.0.1)
    IF authority ~ '[@\\]' THEN
        RAISE EXCEPTION 'workflow step "%": a webhook URL carries no user or password', left(step_id, 64)
            USING ERRCODE = 'OR111';
    END IF;
    host := lower(rtrim(regexp_replace(coalesce(authority, ''), ':[0-9]{0,5}$', ''), '.') COLLATE "C");
    IF host !~ '^([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'
       OR host ~ '(^|\.)(0x[0-9a-f]*|[0-9]+)$' OR host ~ '(^|\.)localhost$' OR length(host) > 253 THEN
        RAISE EXCEPTION 'workflow step "%": a webhook URL names its receiver by a public host name, not "%"',
                        left(step_id, 64), left(host, 64)
            USING ERRCODE = 'OR111',
                  HINT = 'IP addresses (in any spelling) and localhost are refused, Unicode names are written in punycode (xn--); the outbox worker checks where the name resolves.';
    END IF;
END
$$;

COMMENT ON FUNCTION orders.business_timezone() IS
    'The time zone business days are counted in: the setting orders.business_timezone when set, else TimeZone as configured for the session (server, database, role, login), not as SET';


CREATE OR REPLACE FUNCTION orders.booked_item_guard() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    places bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF orders.item_booked_places(OLD.id) IS NOT NULL THEN
            RAISE EXCEPTION 'order item % is booked: a slot reservation holds its place', OLD.id
                USING ERRCODE = 'OR031',
                      HINT = 'Cancel its order to give the place back (release_cancelled_bookings), or confirm the booking for another item first; an order in a final status keeps its booking: its owner releases the reservation, then runs orders.recount_slots() (doc/operations.md).';
        END IF;
        RETURN OLD;
    END IF;
    IF (NEW.product_id IS DISTINCT FROM OLD.product_id OR NEW.order_id IS DISTINCT FROM OLD.order_id)
       AND orders.item_booked_places(OLD.id) IS NOT NULL THEN
        IF NEW.order_id IS DISTINCT FROM OLD.order_id THEN
            RAISE EXCEPTION 'order item % is booked: it stays with its order', OLD.id
                USING ERRCODE = 'OR031', HINT = 'Cancel its order to give the place back, then book for an item of the other order.';
        END IF;
        RAISE EXCEPTION 'order item % is booked: its product stays', OLD.id
            USING ERRCODE = 'OR033', HINT = 'Cancel its order to give the place back, then book for another item.';
    END IF;
    IF NEW.quantity < OLD.quantity THEN
        places := orders.item_booked_places(OLD.id);
        IF places > NEW.quantity THEN
            RAISE EXCEPTION 'order item % books % places: its quantity cannot go below that', OLD.id, places
                USING ERRCODE = 'OR032', HINT = 'Cancel its order to give the places back.';
        END IF;
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION orders.recent_orders(statuses text[] DEFAULT ARRAY['new', 'confirmation_pending', 'confirmed'],
                                     max_rows integer DEFAULT 50)
    RETURNS TABLE (id uuid, order_number text, status text, priority integer, total_amount numeric,
                   created_at timestamptz, customer_name text, customer_phone text)
    LANGUAGE sql STABLE
AS $$
    SELECT r.* FROM (
        (SELECT o.id, o.order_number, o.status, o.priority, o.total_amount, o.created_at, c.full_name, c.phone
           FROM orders.orders o
           JOIN orders.customers c ON c.id OPERATOR(pg_catalog.=) o.customer_id
          WHERE NOT (pg_catalog.row_security_active('orders.orders'::pg_catalog.regclass)
                     AND pg_catalog.cardinality(orders.current_customer_ids()) OPERATOR(pg_catalog.>) 0
                     AND orders.current_staff_id() IS NULL)
            AND o.status OPERATOR(pg_catalog.=) ANY (statuses)
          ORDER BY o.priority DESC, o.created_at DESC
          LIMIT max_rows)
        UNION ALL
        (SELECT o.id, o.order_number, o.status, o.priority, o.total_amount, o.created_at, c.full_name, c.phone
           FROM orders.orders o
           JOIN orders.customers c ON c.id OPERATOR(pg_catalog.=) o.customer_id
          WHERE pg_catalog.row_security_active('orders.orders'::pg_catalog.regclass)
            AND pg_catalog.cardinality(orders.current_customer_ids()) OPERATOR(pg_catalog.>) 0
            AND orders.current_staff_id() IS NULL
            AND o.customer_id OPERATOR(pg_catalog.=) ANY (orders.current_customer_ids())
            AND o.status OPERATOR(pg_catalog.=) ANY (statuses)
          ORDER BY o.priority DESC, o.created_at DESC
          LIMIT max_rows)
    ) r (id, order_number, status, priority, total_amount, created_at, customer_name, customer_phone)
     ORDER BY r.priority DESC, r.created_at DESC
     LIMIT max_rows
$$;

-- (0.44.0) a page of product_catalog(), of the whole catalog or of a category
CREATE INDEX products_catalog_idx ON orders.products (name, id) WHERE is_active;
CREATE INDEX products_category_catalog_idx ON orders.products (category, name, id) WHERE is_active;
