-- orders 0.34.0 -> 0.35.0
--  * (library) Every kept statement of the library is planned at once with
--    JIT off: a plan costed past jit_above_cost was compiled at every
--    execution (a keyed plan over a DBA's child table without an index:
--    105 ms per status change).  A plan the plan cache made again by
--    itself is prepared again at its next use.
--  * (library) A cancelled order's bookings are read through its items'
--    index, then theirs, whatever the statistics (a plan made before them
--    read every reservation at each cancellation).
--  * (library) A DO INSTEAD rule that replaces one of the extension's
--    writes is refused with 09000 naming its table (was XX000); a stock
--    move that a DBA's BEFORE trigger skipped, 09000 (was OR050).
--  * (library) A delivery agent changes no site's domain or metrics
--    (OR060): an approved site's item is priced from its metrics.
--  * (library) An approved site inserted where a site of its id, or of its
--    group and domain, exists makes no item (an INSERT ... ON CONFLICT
--    made one for the proposed row, never inserted).
--  * A delivery agent inserts no site (the sites' insert policy).
--  * A share link that converts is made by admins (was: customers.edit — a
--    customer rep took over a customer without a login).
--  * webhook_value, webhook_amount, webhook_time: the owner's (no longer
--    PUBLIC: an anonymous call allocated 1 GB).
--  * order_groups: a group's analysis (project, stamps, group_status) is
--    staff's in an API request (group_analysis_guard, C, OR060).
--  * order_site_selections: a site stays with its order (site_stays,
--    OR074); target_page_url at most 2,048 characters.
--  * order_items: an approved site's item goes with the site's approval
--    (site_item_guard, OR078: not deleted, not moved to another order, its
--    snapshot keeps naming its site; OR073: its price and quantity stay
--    once the order is paid or closed, judged on the order locked); a
--    shop's update replaces no items while one is among them.
--  * A NULL id to start_analysis, complete_analysis, site_internal_notes,
--    site_internal_metrics, set_site_internal_notes, create_share_token,
--    revive_outbox (and, in the library, review_sites): 22004 (was a "does
--    not exist" of <NULL>).  complete_analysis names a suggestion whose
--    metrics is no object (22023; was the INSERT's 23514).
--  * (library) review_sites: an entry naming no site is 22023 (was OR076
--    "site null"); a quoted value cut at 64 characters ends with "...".
\echo Use "ALTER EXTENSION orders UPDATE TO '0.35.0'" to load this file. \quit

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


ALTER POLICY insert_right ON orders.order_site_selections
    WITH CHECK (NOT (SELECT orders.api_request())
                OR ((SELECT orders.has_permission('orders', 'edit'))
                    AND (SELECT orders.current_staff_role()) IS DISTINCT FROM 'delivery_agent'));


-- group_analysis_guard — in an API request the analysis of a client group
-- (its project, its stamps, its status) is staff's (0.35.0, OR060): a
-- client stamped its group analysed and the order moved to "reviewing"
-- with the next group's analysis, its own never made.  In C
-- (src/review.c): the counters' direct write, which sets group_status as
-- the owner, leaves it out.
CREATE FUNCTION orders.group_analysis_guard() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_group_analysis_guard';
CREATE TRIGGER group_analysis_guard
    BEFORE INSERT OR UPDATE OF analysis_project_id, analysis_started_at, analysis_completed_at, group_status
    ON orders.order_groups FOR EACH ROW EXECUTE FUNCTION orders.group_analysis_guard();


-- site_stays — a site stays with its order (0.35.0, OR074, as its group
-- does): moved to a group of another order, an approved site left its item
-- in the first order and was then taken back there — from an order already
-- paid (OR073 was judged on the new group's order).  The groups are read as
-- the owner (the caller may not see the other group).  Its WHEN clause asks
-- for a move: other changes pay no call.
CREATE FUNCTION orders.site_stays() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF (SELECT g.order_id FROM orders.order_groups g WHERE g.id = NEW.order_group_id)
       IS DISTINCT FROM (SELECT g.order_id FROM orders.order_groups g WHERE g.id = OLD.order_group_id) THEN
        RAISE EXCEPTION 'site % of client group % stays with its order', left(OLD.domain, 64), OLD.order_group_id
            USING ERRCODE = 'OR074',
                  DETAIL = 'Client group ' || NEW.order_group_id || ' belongs to another order; an approved site''s item is its order''s.',
                  HINT = 'Add the site to the other order''s group instead.';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER site_stays BEFORE UPDATE OF order_group_id ON orders.order_site_selections
    FOR EACH ROW WHEN (NEW.order_group_id IS DISTINCT FROM OLD.order_group_id) EXECUTE FUNCTION orders.site_stays();

-- site_item_guard — an approved site's item goes with the site's approval
-- (0.35.0, OR078; OR073 for its price and quantity once the order is paid
-- or closed), for everybody: staff deleted such an item from a paid order
-- (the site stayed approved without it) or moved it to another order.  In
-- C (src/site_items.c); its WHEN clause asks for an item made for a site,
-- whose snapshot keeps naming its site (OR078 for a change of that name:
-- review, staff emptied the snapshot, then deleted the item).
CREATE FUNCTION orders.site_item_guard() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_site_item_guard';
CREATE TRIGGER site_item_guard BEFORE DELETE OR UPDATE OF order_id, unit_price, quantity, snapshot ON orders.order_items
    FOR EACH ROW WHEN (OLD.snapshot ? 'site_selection_id') EXECUTE FUNCTION orders.site_item_guard();

REVOKE ALL ON FUNCTION orders.group_analysis_guard(), orders.site_stays(), orders.site_item_guard() FROM PUBLIC;

ALTER TABLE orders.order_site_selections
    ADD CONSTRAINT order_site_selections_target_page_url_check CHECK (length(target_page_url) <= 2048);

REVOKE ALL ON FUNCTION orders.webhook_value(jsonb, text), orders.webhook_amount(jsonb, text),
                       orders.webhook_time(text) FROM PUBLIC;

-- (0.35.0) a NULL id: 22004, as the other API functions; complete_analysis:
-- metrics that is no object named (22023)

CREATE OR REPLACE FUNCTION orders.start_analysis(order_group_id uuid, analysis_project_id uuid)
    RETURNS orders.order_groups
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g orders.order_groups;
BEGIN
    -- (0.35.0) 22004, as the other API functions (was: a "does not exist" of <NULL>)
    IF start_analysis.order_group_id IS NULL THEN
        RAISE EXCEPTION 'orders.start_analysis: argument "order_group_id" must not be null' USING ERRCODE = '22004';
    END IF;
    UPDATE orders.order_groups og
       SET analysis_project_id = start_analysis.analysis_project_id,
           analysis_started_at = now(), analysis_completed_at = NULL, group_status = 'analyzing'
     WHERE og.id = start_analysis.order_group_id
    RETURNING og.* INTO g;
    IF NOT FOUND THEN
        PERFORM orders.group_not_found(start_analysis.order_group_id);
    END IF;
    RETURN g;
END
$$;

CREATE OR REPLACE FUNCTION orders.complete_analysis(order_group_id uuid, suggestions jsonb)
    RETURNS orders.order_groups
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g orders.order_groups;
    o orders.orders;
    bad jsonb;
    bad_n bigint;
BEGIN
    -- (0.35.0) 22004, as the other API functions (was: a "does not exist" of <NULL>)
    IF complete_analysis.order_group_id IS NULL THEN
        RAISE EXCEPTION 'orders.complete_analysis: argument "order_group_id" must not be null' USING ERRCODE = '22004';
    END IF;
    IF jsonb_typeof(suggestions) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'orders.complete_analysis: suggestions must be a JSON array of {domain, domain_id, metrics}'
            USING ERRCODE = '22023';
    END IF;
    -- a suggestion the INSERT would refuse in its own words, named here
    SELECT x.v, x.n INTO bad, bad_n FROM jsonb_array_elements(suggestions) WITH ORDINALITY x (v, n)
     WHERE coalesce(orders.normalize_domain(x.v ->> 'domain'), '') = ''
        OR NOT coalesce(x.v ->> 'domain_id', '00000000-0000-0000-0000-000000000000')
               ~* '^\{?[0-9a-f]{4}(-?[0-9a-f]{4}){7}\}?$'
     ORDER BY x.n LIMIT 1;
    IF FOUND AND coalesce(orders.normalize_domain(bad ->> 'domain'), '') = '' THEN
        RAISE EXCEPTION 'orders.complete_analysis: suggestion % has no domain', bad_n
            USING ERRCODE = '22023', HINT = 'Each suggestion is {domain, domain_id, metrics}: domain is the site''s host name.';
    ELSIF FOUND THEN
        RAISE EXCEPTION 'orders.complete_analysis: suggestion %: domain_id "%" is not a uuid', bad_n, left(bad ->> 'domain_id', 64)
            USING ERRCODE = '22P02', HINT = 'domain_id is the analysis''s id of the domain (a uuid); leave it out when there is none.';
    END IF;
    -- (0.35.0) metrics, when given, an object (an array failed the INSERT's
    -- check, 23514, without naming the suggestion)
    SELECT x.v -> 'metrics', x.n INTO bad, bad_n FROM jsonb_array_elements(suggestions) WITH ORDINALITY x (v, n)
     WHERE coalesce(jsonb_typeof(x.v -> 'metrics'), 'null') NOT IN ('object', 'null')
     ORDER BY x.n LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'orders.complete_analysis: suggestion %: metrics % is not a JSON object', bad_n, left(bad::text, 64)
            USING ERRCODE = '22023', HINT = 'metrics is an object such as {"dr": 54, "traffic": 1200, "price": 90}.';
    END IF;
    -- (0.29.0) the price the client pays for a site: a JSON number of at
    -- least 0 (a price sent as text made an item of 0; a negative or huge
    -- one failed the client's approval later with 23514 or 22003)
    SELECT x.v -> 'metrics' -> 'price', x.n INTO bad, bad_n FROM jsonb_array_elements(suggestions) WITH ORDINALITY x (v, n)
     WHERE jsonb_typeof(x.v -> 'metrics') = 'object'
       AND coalesce(jsonb_typeof(x.v -> 'metrics' -> 'price'), 'null') <> 'null'
       AND CASE WHEN jsonb_typeof(x.v -> 'metrics' -> 'price') = 'number'
                THEN (x.v -> 'metrics' ->> 'price')::numeric NOT BETWEEN 0 AND 9999999999.99
                ELSE true END
     ORDER BY x.n LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'orders.complete_analysis: suggestion %: metrics.price % is not an amount', bad_n, left(bad::text, 64)
            USING ERRCODE = '22023',
                  HINT = 'metrics.price is what the client pays for the site: a JSON number from 0 to 9999999999.99.';
    END IF;
    IF NOT EXISTS (SELECT FROM orders.orders ord JOIN orders.order_groups og ON og.order_id = ord.id
                    WHERE og.id = complete_analysis.order_group_id) THEN
        PERFORM orders.group_not_found(complete_analysis.order_group_id);
    END IF;
    INSERT INTO orders.order_site_selections (order_group_id, domain, domain_id, metrics)
    SELECT complete_analysis.order_group_id, orders.normalize_domain(s ->> 'domain'),
           (s ->> 'domain_id')::uuid, coalesce(nullif(s -> 'metrics', 'null'::jsonb), '{}')
      FROM jsonb_array_elements(suggestions) s
    ON CONFLICT ON CONSTRAINT order_site_selections_order_group_id_domain_key DO NOTHING;
    UPDATE orders.order_groups og
       SET analysis_started_at = coalesce(og.analysis_started_at, now()), analysis_completed_at = now(),
           group_status = CASE WHEN og.approved_count >= og.link_count THEN 'complete' ELSE 'reviewing' END
     WHERE og.id = complete_analysis.order_group_id
    RETURNING og.* INTO g;
    IF NOT FOUND THEN
        PERFORM orders.group_not_found(complete_analysis.order_group_id);
    END IF;
    SELECT * INTO o FROM orders.orders WHERE id = g.order_id FOR NO KEY UPDATE;
    IF FOUND AND o.status = 'analyzing'
       AND NOT EXISTS (SELECT FROM orders.order_groups og
                        WHERE og.order_id = o.id AND og.analysis_completed_at IS NULL) THEN
        PERFORM orders.transition(o.id, 'reviewing', 'analysis complete');
    END IF;
    RETURN g;
END
$$;

CREATE OR REPLACE FUNCTION orders.site_internal_notes(order_group_id uuid)
    RETURNS TABLE (selection_id uuid, domain text, internal_notes text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- (0.35.0) 22004, as the other API functions (was: a "does not exist" of <NULL>)
    IF site_internal_notes.order_group_id IS NULL THEN
        RAISE EXCEPTION 'orders.site_internal_notes: argument "order_group_id" must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT orders.has_permission('orders', 'view') OR NOT orders.staff_sees_group(site_internal_notes.order_group_id) THEN
        PERFORM orders.group_not_found(site_internal_notes.order_group_id);
    END IF;
    RETURN QUERY SELECT x.id, x.domain, x.internal_notes FROM orders.order_site_selections x
                  WHERE x.order_group_id = site_internal_notes.order_group_id ORDER BY x.domain;
END
$$;

CREATE OR REPLACE FUNCTION orders.site_internal_metrics(order_group_id uuid)
    RETURNS TABLE (selection_id uuid, domain text, internal_metrics jsonb)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- (0.35.0) 22004, as the other API functions (was: a "does not exist" of <NULL>)
    IF site_internal_metrics.order_group_id IS NULL THEN
        RAISE EXCEPTION 'orders.site_internal_metrics: argument "order_group_id" must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT orders.has_permission('orders', 'view') OR NOT orders.staff_sees_group(site_internal_metrics.order_group_id) THEN
        PERFORM orders.group_not_found(site_internal_metrics.order_group_id);
    END IF;
    RETURN QUERY SELECT x.id, x.domain, x.internal_metrics FROM orders.order_site_selections x
                  WHERE x.order_group_id = site_internal_metrics.order_group_id ORDER BY x.domain;
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
    UPDATE orders.order_site_selections x SET internal_notes = set_site_internal_notes.internal_notes
     WHERE x.id = set_site_internal_notes.selection_id;
END
$$;

CREATE OR REPLACE FUNCTION orders.revive_outbox(id uuid)
    RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m orders.outbox%ROWTYPE;
BEGIN
    -- (0.35.0) 22004, as the other API functions (was: a "does not exist" of <NULL>)
    IF revive_outbox.id IS NULL THEN
        RAISE EXCEPTION 'orders.revive_outbox: argument "id" must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT * INTO m FROM orders.outbox o WHERE o.id = revive_outbox.id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'outbox message % does not exist', revive_outbox.id USING ERRCODE = 'OR100';
    ELSIF m.dead_at IS NULL THEN
        RAISE EXCEPTION 'outbox message % is not dead', revive_outbox.id
            USING ERRCODE = 'OR102',
                  DETAIL = CASE WHEN m.done_at IS NOT NULL THEN 'It is done.' ELSE 'It is still pending.' END;
    END IF;
    UPDATE orders.outbox o
       SET dead_at = NULL, run_after = now(), attempts = 0, locked_by = NULL
     WHERE o.id = m.id;
END
$$;

-- (0.35.0) a shop's update replaces no items while an approved site's item
-- is among them (it goes with the site's approval)
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
        ext_id := left(orders.webhook_value(doc, m -> 'order' ->> 'external_id'), 255);
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
            IF ext_id IS NOT NULL OR delivery_id IS NOT NULL THEN
                PERFORM pg_advisory_xact_lock(hashtextextended(
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
                          FROM (SELECT left(orders.webhook_value(i.value, m -> 'items' ->> 'sku'), 255) AS sku,
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
                    c_phone := left(orders.webhook_value(doc, m -> 'customer' ->> 'phone'), 64);
                    c_email := left(lower(orders.webhook_value(doc, m -> 'customer' ->> 'email')), 255);
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
                        PERFORM pg_advisory_xact_lock(hashtextextended('orders.customer phone ' || c_phone, 0));
                    END IF;
                    IF c_email IS NOT NULL THEN
                        PERFORM pg_advisory_xact_lock(hashtextextended('orders.customer email ' || c_email, 0));
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
                            GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, err = MESSAGE_TEXT;
                            -- a rule's refusal (a gate, a staff edge, stock) is staff's to
                            -- settle: 200 and the log says why; anything else — a lock
                            -- timeout, a deadlock, a serialization failure — fails the
                            -- delivery (503: the shop retries; a 2xx would make its retry
                            -- a "duplicate", the cancellation lost)
                            IF NOT (code LIKE 'OR%' OR code LIKE '23%' OR code = '42501') THEN
                                RAISE;
                            END IF;
                            cancellation := format('not applied (%s): %s', code, left(err, 300));
                        END;
                    ELSIF NOT EXISTS (SELECT FROM orders.orders o
                                        JOIN orders.lifecycle_states s ON s.lifecycle = o.lifecycle AND s.status = o.status
                                       WHERE o.id = order_id AND s.category = 'cancelled') THEN
                        SELECT format('not applied: the order is "%s", which has no edge to a cancelled status', o.status)
                          INTO cancellation FROM orders.orders o WHERE o.id = order_id;
                    END IF;
                    IF cancellation LIKE 'not applied%' THEN
                        err := format('webhook "%s": the shop cancelled the order; %s', w.endpoint, cancellation);
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
