-- orders 0.40.0 -> 0.41.0
--  * Bounds on what clients write into agency orders (23514, HTTP 400):
--    order_groups' target_pages 256 kB, anchor_texts and
--    requirement_overrides 64 kB each, order_requirements'
--    requirement_value 64 kB — by their binary size, uncompressed, and
--    with numbers below 1e20 of at most 20 decimals (orders.jsonb_within,
--    new, C: a compressed value measured by its stored size passed a first
--    cut and its dump did not restore; 8,200 numbers 1e131071 are 131 kB
--    and print as 1 GB — measured as text, or served, or dumped, they ran
--    the server out of memory) — and requirement_type a name of at most 63
--    characters.  A client stored 13.5 MB of target pages, which a share
--    link then served to anon.  Rows already larger stop the update (23514,
--    naming each column and how many rows).
--  * share_review_sites: a constraint's refusal is passed on without its
--    DETAIL — raised as the owner, "Failing row contains (…)" showed the
--    link's holder the site's internal notes and costs (the review refuses
--    over-long notes, URLs and anchors itself now, 22001: library).
--  * orders.metadata (customers write it) at most 1 MB with numbers below
--    1e20 of at most 20 decimals (orders_metadata_check, jsonb_within); the
--    webhook ingest refuses (400, OR094, not kept in the log) a payload
--    with such a number: a customer's or an unsigned endpoint's 74 kB of
--    1e131071 printed as 1 GB for every reader and pg_dump.  The update
--    reads orders to check (and refuses while rows exceed it).
--  * create_share_token: metadata is measured by orders.jsonb_within (4096
--    bytes; its text, measured before, could be 1 GB); metadata that is no
--    JSON object is 22023 (was the
--    table's 23514, whose DETAIL showed the new link's row, its token hash
--    among it); expires_in's message says "more than 0".
--  * webhook_ingest / webhook_placement: the shop's order id, the
--    customer's phone and email and the items' SKUs are taken whole, a
--    longer one refused (422, logged): an order id cut to 255 characters
--    made another order with the same first 255 a "duplicate", lost.
--  * Staff read the activity log (activity.view) and the shops' webhooks —
--    without their secret — and webhook logs (webhooks.view) through the
--    API: admins and managers by default (two new areas in
--    staff_role_defaults; policies staff_read; the authenticated roles
--    grant_api recorded get SELECT).  They were the owner's alone: an
--    admin screen needed a DBA's SECURITY DEFINER wrapper.
--  * The extension's advisory locks are in lock spaces of its own, which no
--    SQL call can take or hold: orders.xact_lock(bigint) (new, owner only)
--    replaces pg_advisory_xact_lock in webhook_ingest, check_staff_overlap
--    and run_scheduled_workflow, and the library's lead-move locks moved
--    likewise — any login could hold an order's lead lock (or a customer
--    phone's, a staff member's) with pg_advisory_lock and stop its writers.
--  * lifecycle_gates and workflows get an ENABLE REPLICA row copy of their
--    cache triggers: on a subscriber a replicated gate or workflow change
--    left every session's cached gates / active workflows as they were.
--  * id_stays (new): customers, products, variants, orders, slots and client
--    groups keep their ids (OR122).  Foreign keys are checked at the
--    statement's end, so one statement could re-key a parent and point its
--    children at the new id: subtotals, a campaign's leads and a customer's
--    statistics counted them twice, and a product's stock was taken twice
--    for good.
--  * may_share, shares_order and the trigger function customer_edit_recheck
--    are no longer PUBLIC (may_share told any login outside the API whether
--    an order id exists), nor check_webhook_url.
--  * (library) a login's role name or the acting_for label is never an
--    account: a role named after an admin's account id was served as that
--    admin without any claims.  The API request's cap of lead locks is the
--    superuser setting orders.lead_locks_per_request (default 200).
--    review_sites / share_review_sites name themselves, and an entry that
--    is no object or has no status, in their refusals.

\echo Use "ALTER EXTENSION orders UPDATE TO '0.41.0'" to load this file. \quit

-- (0.41.0) jsonb_within — a JSON value within "max_bytes" (its binary size,
-- uncompressed) whose every number prints in a few characters (below 1e20,
-- at most 20 decimals), checked in time and memory linear in its size: the
-- bound of what clients write (the groups' pages, anchors and overrides,
-- the requirements' values, a share link's metadata).  Neither the stored
-- size (a compressed value passed), nor the text (1e131071 prints as
-- 131 kB), nor the binary size alone (8,200 such numbers are 131 kB, and
-- print as 1 GB) would do.  PUBLIC: the CHECKs call it as the writer.
CREATE FUNCTION orders.jsonb_within(value jsonb, max_bytes integer) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'orders_jsonb_within';

DO $upgrade$
DECLARE
    bound record;
    n bigint;
    large_rows text := '';
BEGIN
    FOR bound IN
        SELECT * FROM (VALUES
            ('order_groups', 'target_pages', 'NOT orders.jsonb_within(target_pages, 262144)', 'larger than 256 kB or with numbers past 1e20 or 20 decimals'),
            ('order_groups', 'anchor_texts', 'NOT orders.jsonb_within(anchor_texts, 65536)', 'larger than 64 kB or with numbers past 1e20 or 20 decimals'),
            ('order_groups', 'requirement_overrides', 'NOT orders.jsonb_within(requirement_overrides, 65536)', 'larger than 64 kB or with numbers past 1e20 or 20 decimals'),
            ('order_requirements', 'requirement_value', 'NOT orders.jsonb_within(requirement_value, 65536)', 'larger than 64 kB or with numbers past 1e20 or 20 decimals'),
            ('order_requirements', 'requirement_type', 'length(requirement_type) > 63', 'longer than 63 characters'),
            ('orders', 'metadata', 'NOT orders.jsonb_within(metadata, 1048576)', 'larger than 1 MB or with numbers past 1e20 or 20 decimals')) b (tab, col, test, what)
    LOOP
        EXECUTE format('SELECT count(*) FROM orders.%I WHERE %s', bound.tab, bound.test) INTO n;
        IF n > 0 THEN
            large_rows := large_rows || format('%sorders.%s.%s: %s rows %s',
                                               CASE WHEN large_rows = '' THEN '' ELSE '; ' END,
                                               bound.tab, bound.col, n, bound.what);
        END IF;
    END LOOP;
    IF large_rows <> '' THEN
        RAISE EXCEPTION 'orders 0.41.0 bounds what clients write into agency orders and orders'' metadata, and rows are larger'
            USING ERRCODE = '23514', DETAIL = large_rows || '.',
                  HINT = 'Shrink them (e.g. SELECT id FROM orders.order_groups WHERE NOT orders.jsonb_within(target_pages, 262144)), then ALTER EXTENSION orders UPDATE again.';
    END IF;
END
$upgrade$;

ALTER TABLE orders.order_groups
    DROP CONSTRAINT order_groups_target_pages_check,
    ADD CONSTRAINT order_groups_target_pages_check
        CHECK (jsonb_typeof(target_pages) = 'array' AND orders.jsonb_within(target_pages, 262144)),
    DROP CONSTRAINT order_groups_anchor_texts_check,
    ADD CONSTRAINT order_groups_anchor_texts_check
        CHECK (jsonb_typeof(anchor_texts) = 'array' AND orders.jsonb_within(anchor_texts, 65536)),
    DROP CONSTRAINT order_groups_requirement_overrides_check,
    ADD CONSTRAINT order_groups_requirement_overrides_check
        CHECK (jsonb_typeof(requirement_overrides) = 'object' AND orders.jsonb_within(requirement_overrides, 65536));
ALTER TABLE orders.orders
    DROP CONSTRAINT orders_metadata_check,
    ADD CONSTRAINT orders_metadata_check CHECK (jsonb_typeof(metadata) = 'object' AND orders.jsonb_within(metadata, 1048576));
ALTER TABLE orders.order_requirements
    DROP CONSTRAINT order_requirements_requirement_type_check,
    ADD CONSTRAINT order_requirements_requirement_type_check CHECK (requirement_type ~ '^[a-z][a-z0-9_]{0,62}$'),
    ADD CONSTRAINT order_requirements_requirement_value_check CHECK (orders.jsonb_within(requirement_value, 65536));

-- (0.41.0) the activity log, and the shops' webhooks (not their secrets)
-- and logs, read by staff with activity.view / webhooks.view
CREATE OR REPLACE VIEW orders.staff_role_defaults (role, area, action) WITH (security_invoker = true) AS
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
CREATE POLICY staff_read ON orders.activity_logs FOR SELECT USING ((SELECT orders.has_permission('activity', 'view')));
CREATE POLICY staff_read ON orders.webhooks FOR SELECT USING ((SELECT orders.has_permission('webhooks', 'view')));
CREATE POLICY staff_read ON orders.webhook_logs FOR SELECT USING ((SELECT orders.has_permission('webhooks', 'view')));
-- the authenticated roles grant_api recorded before get them as it now grants them
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT a.role_oid FROM orders.api_roles a JOIN pg_catalog.pg_roles p ON p.oid = a.role_oid
              WHERE a.kind = 'authenticated' LOOP
        EXECUTE pg_catalog.format('GRANT SELECT ON orders.activity_logs, orders.webhook_logs TO %s', r.role_oid::regrole);
        EXECUTE pg_catalog.format('GRANT SELECT (id, name, source, endpoint, field_mapping, defaults, is_active, created_at, updated_at)
                                   ON orders.webhooks TO %s', r.role_oid::regrole);
    END LOOP;
END
$$;

-- (0.41.0) the extension's keyed transaction lock, in a lock space no SQL
-- call builds (the functions below take it instead of pg_advisory_xact_lock)
CREATE FUNCTION orders.xact_lock(key bigint) RETURNS void
    LANGUAGE c STRICT VOLATILE
    AS 'MODULE_PATHNAME', 'orders_xact_lock';
REVOKE ALL ON FUNCTION orders.xact_lock(bigint) FROM PUBLIC;

-- (0.41.0) a subscriber's sessions forget the gates and the active
-- workflows when the apply worker changes them
CREATE TRIGGER lifecycle_changed_applied AFTER INSERT OR UPDATE OR DELETE
    ON orders.lifecycle_gates FOR EACH ROW EXECUTE FUNCTION orders.lifecycle_changed();
ALTER TABLE orders.lifecycle_gates ENABLE REPLICA TRIGGER lifecycle_changed_applied;
CREATE TRIGGER workflows_changed_applied AFTER INSERT OR UPDATE OR DELETE ON orders.workflows
    FOR EACH ROW EXECUTE FUNCTION orders.workflows_changed();
ALTER TABLE orders.workflows ENABLE REPLICA TRIGGER workflows_changed_applied;

-- (0.41.0) a row others are counted against keeps its id (OR122)
CREATE FUNCTION orders.id_stays() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'row % of orders.% keeps its id', OLD.id, TG_TABLE_NAME
        USING ERRCODE = 'OR122',
              DETAIL = format('It would become %s; what is counted against it (items, leads, orders, reservations, sites) follows rows by id.', NEW.id),
              HINT = 'Insert a row with the new id, move what hangs on the old one to it, then delete the old one.';
END
$$;
REVOKE ALL ON FUNCTION orders.id_stays() FROM PUBLIC;
CREATE TRIGGER id_stays BEFORE UPDATE OF id ON orders.customers
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION orders.id_stays();
CREATE TRIGGER id_stays BEFORE UPDATE OF id ON orders.products
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION orders.id_stays();
CREATE TRIGGER id_stays BEFORE UPDATE OF id ON orders.product_variants
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION orders.id_stays();
CREATE TRIGGER id_stays BEFORE UPDATE OF id ON orders.orders
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION orders.id_stays();
CREATE TRIGGER id_stays BEFORE UPDATE OF id ON orders.service_capacity
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION orders.id_stays();
CREATE TRIGGER id_stays BEFORE UPDATE OF id ON orders.order_groups
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION orders.id_stays();

REVOKE ALL ON FUNCTION orders.may_share(uuid), orders.shares_order(uuid), orders.customer_edit_recheck(),
    orders.check_webhook_url(text, text) FROM PUBLIC;

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
    -- (0.40.0) a list: '{{view},{view}}' was stored as given
    IF cardinality(allowed_actions) = 0 OR array_ndims(allowed_actions) <> 1
       OR NOT allowed_actions <@ ARRAY['view', 'approve', 'convert'] THEN
        RAISE EXCEPTION 'orders.create_share_token: allowed_actions must be some of view, approve, convert, not %',
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
        RAISE EXCEPTION 'orders.create_share_token: metadata may have at most 4096 bytes and numbers below 1e20 with at most 20 decimals'
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

CREATE OR REPLACE FUNCTION orders.share_review_sites(token text, order_group_id uuid, selections jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t orders.order_share_tokens := orders.share_token_row(share_review_sites.token, 'approve');
    g orders.order_groups;
    state text;
    msg text;
    hint text;
BEGIN
    -- (0.39.0) 22004, as review_sites (was OR075 naming <NULL>)
    IF share_review_sites.order_group_id IS NULL THEN
        RAISE EXCEPTION 'orders.share_review_sites: argument "order_group_id" must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT EXISTS (SELECT FROM orders.order_groups og
                    WHERE og.id = share_review_sites.order_group_id AND og.order_id = t.order_id) THEN
        PERFORM orders.group_not_found(share_review_sites.order_group_id);
    END IF;
    -- (0.28.0) a link reviews what its order's customer may: the sites of an
    -- open, unpaid order (a customer's own link rewrote a paid order's
    -- approved site and rejected the others) — judged by apply_review
    -- (0.34.0) before the review and again on the order locked after its
    -- sites and group (OR073)
    g := orders.apply_review(share_review_sites.order_group_id, share_review_sites.selections, 'share:' || t.id);
    RETURN jsonb_build_object('id', g.id, 'link_count', g.link_count, 'approved', g.approved_count,
                              'rejected', g.rejected_count, 'suggested', g.suggested_count,
                              'group_status', g.group_status);
EXCEPTION WHEN integrity_constraint_violation THEN
    -- (0.41.0) raised as the owner, a constraint's DETAIL ("Failing row
    -- contains …") shows every column of the row — a site's internal notes
    -- and costs — to the link's holder: passed on without it (the review
    -- refuses over-long texts itself, 22001, before it writes)
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
    IF hint <> '' THEN
        RAISE EXCEPTION USING ERRCODE = state, MESSAGE = msg, HINT = hint;
    END IF;
    RAISE EXCEPTION USING ERRCODE = state, MESSAGE = msg;
END
$$;

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
        err := format('the payload for webhook "%s" has a number past 1e20 or with more than 20 decimals', w.endpoint);
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
                                       THEN orders.webhook_value(doc, m -> 'order' ->> 'notes')
                                   WHEN doc #> string_to_array(m -> 'order' ->> 'notes', '.') IS NOT NULL THEN NULL
                                   ELSE o.customer_notes END,
                               delivery_address = coalesce(orders.webhook_value(doc, m -> 'customer' ->> 'address'), o.delivery_address),
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
                                orders.webhook_value(doc, m -> 'customer' ->> 'address'),
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
                            orders.webhook_value(doc, m -> 'order' ->> 'notes'),
                            orders.webhook_value(doc, m -> 'customer' ->> 'address'),
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
                   OR numeric_value_out_of_range THEN
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
    c_email := lower(orders.webhook_value(doc, w.field_mapping -> 'customer' ->> 'email'));
    RETURN jsonb_strip_nulls(jsonb_build_object(
        'known', known,
        'route', hashtext(coalesce('phone ' || c_phone, 'email ' || c_email))));
END
$$;

CREATE OR REPLACE FUNCTION orders.convert_share_token(token text) RETURNS uuid
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    account uuid := orders.actor_account();
    t orders.order_share_tokens;
    customer uuid;
    owner_account uuid;
BEGIN
    -- (0.41.0) a retry of the account's own conversion (the answer lost on
    -- the way) gets the answer the conversion gave — the customer it took,
    -- while that customer is still the account's and the order its — not
    -- OR080 "not valid", which told the prospect its link was bad
    IF account IS NOT NULL THEN
        SELECT c.id INTO customer
          FROM orders.order_share_tokens s
          JOIN orders.orders o ON o.id = s.order_id AND o.customer_id = s.customer_id
          JOIN orders.customers c ON c.id = o.customer_id
         WHERE s.token_hash = sha256(convert_to(coalesce(convert_share_token.token, ''), 'UTF8'))
           AND s.converted_to_account_id = account AND c.account_id = account;
        IF FOUND THEN
            RETURN customer;
        END IF;
    END IF;
    t := orders.share_token_row(convert_share_token.token, 'convert');
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

CREATE OR REPLACE FUNCTION orders.revoke_share_token(token_id uuid) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE orders.order_share_tokens s SET revoked_at = clock_timestamp()
     WHERE s.id = revoke_share_token.token_id AND s.revoked_at IS NULL AND orders.may_share(s.order_id);
    -- (0.41.0) revoking a revoked link is done already (a retry, a double
    -- click): only a link that does not exist or is not the caller's to
    -- revoke is refused
    IF NOT FOUND AND NOT EXISTS (SELECT FROM orders.order_share_tokens s
                                  WHERE s.id = revoke_share_token.token_id AND orders.may_share(s.order_id)) THEN
        RAISE EXCEPTION 'this share link is not valid'
            USING ERRCODE = 'OR080', HINT = 'It does not exist, or you may not revoke it.';
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION orders.complete_outbox(id uuid, error text DEFAULT NULL, worker text DEFAULT NULL)
    RETURNS text
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m orders.outbox%ROWTYPE;
BEGIN
    -- (0.39.0) 22004 (was OR100 naming <NULL>)
    IF complete_outbox.id IS NULL THEN
        RAISE EXCEPTION 'orders.complete_outbox: argument "id" must not be null' USING ERRCODE = '22004';
    END IF;
    IF worker IS NULL OR worker = '' THEN
        RAISE EXCEPTION 'orders.complete_outbox: worker must name the worker that claimed the message'
            USING ERRCODE = '22023',
                  HINT = 'Pass the name given to orders.claim_outbox: without it a late worker could complete another''s claim.';
    END IF;
    SELECT * INTO m FROM orders.outbox o WHERE o.id = complete_outbox.id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'outbox message % does not exist', complete_outbox.id
            USING ERRCODE = 'OR100';
    ELSIF m.done_at IS NOT NULL AND error IS NULL AND worker = m.locked_by THEN
        RETURN 'done';			-- the completing worker's retried call
    ELSIF m.done_at IS NOT NULL OR m.dead_at IS NOT NULL OR m.locked_until IS NULL
          OR m.locked_until < clock_timestamp() OR m.locked_by IS DISTINCT FROM worker THEN
        RAISE EXCEPTION 'outbox message % is not held by %', complete_outbox.id,
                        'worker ' || quote_literal(left(worker, 64))
            USING ERRCODE = 'OR101',
                  DETAIL = CASE WHEN m.done_at IS NOT NULL THEN 'It is done.'
                                WHEN m.dead_at IS NOT NULL THEN 'It is dead.'
                                WHEN m.locked_until IS NULL THEN 'Nobody has claimed it since its last attempt.'
                                -- (0.41.0) which of the two (one text for both before)
                                WHEN m.locked_by IS DISTINCT FROM worker AND m.locked_until >= clock_timestamp()
                                    THEN 'Another worker holds it; its lease runs until ' || m.locked_until || '.'
                                WHEN m.locked_by IS DISTINCT FROM worker
                                    THEN 'Another worker held it; that lease ran out, and it will be (or was) tried again.'
                                ELSE 'Your lease ran out; it will be (or was) tried again.' END,
                  HINT = 'Claim messages with orders.claim_outbox and complete them within the lease.';
    END IF;
    IF error IS NULL THEN
        -- locked_by stays: the completing worker (its retried call answers done)
        UPDATE orders.outbox o SET done_at = now(), locked_until = NULL WHERE o.id = m.id;
        RETURN 'done';
    ELSIF m.attempts >= m.max_attempts THEN
        UPDATE orders.outbox o SET dead_at = now(), locked_until = NULL, last_error = left(error, 1000)
         WHERE o.id = m.id;
        RETURN 'dead';
    END IF;
    UPDATE orders.outbox o
       SET run_after = clock_timestamp() + least(interval '1 second' * power(2, least(m.attempts, 12)), interval '1 hour'),
           locked_by = NULL, locked_until = NULL, last_error = left(error, 1000)
     WHERE o.id = m.id;
    RETURN 'retry';
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

CREATE OR REPLACE FUNCTION orders.check_staff_overlap() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    other uuid;
BEGIN
    IF NEW.staff_id IS NULL THEN
        RETURN NEW;
    END IF;
    IF current_setting('transaction_isolation') = 'repeatable read' THEN
        RAISE EXCEPTION 'slots of a staff member must be written at READ COMMITTED or SERIALIZABLE isolation'
            USING ERRCODE = '25000',
                  DETAIL = 'A REPEATABLE READ snapshot cannot see a concurrent slot of the same staff member.';
    END IF;
    PERFORM orders.xact_lock(hashtextextended('orders.staff:' || NEW.staff_id::text, 0));
    SELECT c.id INTO other FROM orders.service_capacity c
     WHERE c.staff_id = NEW.staff_id AND c.id <> NEW.id
       AND c.starts_at < NEW.ends_at AND NEW.starts_at < c.ends_at
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'staff member % already has slot % overlapping % .. %',
            NEW.staff_id, other, NEW.starts_at, NEW.ends_at
            USING ERRCODE = 'OR027',
                  HINT = 'A staff member''s slots must not overlap; adjacent slots (one ends when the next starts) are fine.';
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION orders.run_scheduled_workflow(workflow_id uuid)
    RETURNS uuid
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w orders.workflows%ROWTYPE;
    tz text;
    minute timestamptz := date_trunc('minute', now());
    local timestamp;
    due text;
    exec_id uuid;
BEGIN
    SELECT * INTO w FROM orders.workflows x WHERE x.id = run_scheduled_workflow.workflow_id;
    IF NOT FOUND OR NOT w.is_active OR w.trigger_type <> 'time_based' THEN
        RETURN NULL;
    END IF;
    tz := coalesce(w.trigger_config ->> 'timezone', 'UTC');
    local := minute AT TIME ZONE tz;
    IF NOT coalesce(orders.schedule_matches(w.trigger_config ->> 'schedule', local), false) THEN
        RETURN NULL;
    END IF;
    -- one run per minute: concurrent calls wait here, then see the first run
    due := to_char(minute AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI"Z"');
    PERFORM orders.xact_lock(hashtextextended('orders.run_scheduled_workflow ' || w.id || ' ' || due, 0));
    IF EXISTS (SELECT 1 FROM orders.workflow_executions e
                WHERE e.workflow_id = w.id AND e.trigger_event ? 'scheduled_for'
                  AND e.trigger_event ->> 'scheduled_for' = due) THEN
        RETURN NULL;
    END IF;
    exec_id := orders.execute_workflow(w.id, NULL, NULL,
        jsonb_build_object('event', 'schedule', 'scheduled_for', due, 'local_time', local, 'timezone', tz));
    RETURN CASE WHEN EXISTS (SELECT 1 FROM orders.workflow_executions e WHERE e.id = exec_id) THEN exec_id END;
END
$$;
