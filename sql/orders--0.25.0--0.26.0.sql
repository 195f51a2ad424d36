-- orders 0.25.0 -> 0.26.0
--  * orders.webhook_ingest: a shop order whose discount is larger than its
--    shipping fee was refused (23514, "total_amount would be negative"):
--    the order was inserted with its final adjustment before its items, so
--    its total was fee + adjustment < 0.  Such an adjustment is now set once
--    the items are in; an orders/updated delivery replacing the items of
--    such an order sets the adjustment aside while it does (doc/webhooks.md).
--  * Clearer refusals (found by a newcomer's first try): complete_analysis
--    names the suggestion without a domain (22023) or with a domain_id that
--    is no uuid (22P02) instead of failing inside its INSERT, and stamps
--    analysis_started_at when start_analysis was not called;
--    create_share_token refuses unknown allowed_actions with 22023 (was the
--    table's CHECK, 23514, whose DETAIL showed the row); convert_share_token's
--    OR082 says what it got instead of an account id.
\echo Use "ALTER EXTENSION orders UPDATE TO '0.26.0'" to load this file. \quit

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
BEGIN
    -- the locks below serialise deliveries of one order; a transaction
    -- snapshot taken before them would not see the delivery it waited for
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'orders.ingest_webhook must run at READ COMMITTED isolation'
            USING ERRCODE = '25000',
                  DETAIL = 'A transaction snapshot would not see the delivery of the same order it waited for.';
    END IF;
    -- through PostgREST, signature, delivery id and topic may come as headers
    headers := coalesce(nullif(current_setting('request.headers', true), ''), '{}')::jsonb;
    signature := coalesce(nullif(signature, ''), headers ->> 'x-shopify-hmac-sha256', headers ->> 'x-wc-webhook-signature');
    delivery_id := left(coalesce(nullif(delivery_id, ''), headers ->> 'x-shopify-webhook-id',
                                 headers ->> 'x-wc-webhook-delivery-id'), 255);
    topic := coalesce(nullif(topic, ''), headers ->> 'x-shopify-topic', headers ->> 'x-wc-webhook-topic');

    -- FOR KEY SHARE: a rename of the endpoint waits for the deliveries under way
    SELECT * INTO w FROM orders.webhooks wh WHERE wh.endpoint = webhook_ingest.endpoint AND wh.is_active FOR KEY SHARE;
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
        EXCEPTION WHEN invalid_text_representation OR untranslatable_character THEN
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

    IF http IS NULL THEN
        m := w.field_mapping;
        d := w.defaults;
        ext_id := left(orders.webhook_value(doc, m -> 'order' ->> 'external_id'), 255);
        IF ext_id IS NOT NULL OR delivery_id IS NOT NULL THEN
            PERFORM pg_advisory_xact_lock(hashtextextended(
                'orders.webhook ' || w.id || ' ' || coalesce('order ' || ext_id, 'delivery ' || delivery_id), 0));
        END IF;
        -- a delivery id alone names the request only when the payload has no
        -- shop order id: the signature does not cover the delivery id, so a
        -- replayed body under another order's future delivery id must not
        -- make that order a "duplicate"
        IF ext_id IS NULL AND delivery_id IS NOT NULL THEN
            SELECT l.order_created_id INTO known
              FROM orders.webhook_logs l
             WHERE l.webhook_id = w.id AND l.delivery_id = webhook_ingest.delivery_id
               AND l.response_status BETWEEN 200 AND 299
             ORDER BY l.created_at LIMIT 1;
            IF FOUND THEN
                result_status := 'duplicate'; http := 200; order_id := known;
            END IF;
        END IF;
        IF http IS NULL AND ext_id IS NOT NULL THEN
            SELECT o.id INTO known FROM orders.orders o
             WHERE o.webhook_source = w.endpoint AND o.external_id = ext_id;
            IF FOUND THEN
                order_id := known; http := 200;
                result_status := CASE WHEN topic ~* 'update' THEN 'updated' ELSE 'duplicate' END;
            END IF;
        END IF;
    END IF;

    IF http IS NULL OR result_status = 'updated' THEN
        BEGIN
            items := CASE WHEN m -> 'order' ->> 'items' IS NULL THEN '[]'
                          ELSE coalesce(doc #> string_to_array(m -> 'order' ->> 'items', '.'), '[]') END;
            IF jsonb_typeof(items) <> 'array' THEN
                RAISE EXCEPTION 'the items of the payload ("%") are not an array', m -> 'order' ->> 'items'
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
                SELECT o.metadata -> 'webhook' ->> 'updated_at' INTO stored_at FROM orders.orders o WHERE o.id = order_id FOR UPDATE;
                IF incoming_at IS NOT NULL AND stored_at IS NOT NULL AND incoming_at::timestamptz <= stored_at::timestamptz THEN
                    result_status := 'stale';		-- an older update delivered late: nothing changes
                ELSE
                    UPDATE orders.orders o
                       SET customer_notes = orders.webhook_value(doc, m -> 'order' ->> 'notes'),
                           delivery_address = coalesce(orders.webhook_value(doc, m -> 'customer' ->> 'address'), o.delivery_address),
                           delivery_area = coalesce(orders.webhook_value(doc, m -> 'customer' ->> 'city'), o.delivery_area),
                           metadata = CASE WHEN incoming_at IS NULL THEN o.metadata
                                           ELSE o.metadata || jsonb_build_object('webhook',
                                                    coalesce(o.metadata -> 'webhook', '{}') || jsonb_build_object('updated_at', incoming_at)) END
                     WHERE o.id = order_id;
                    -- items and amounts follow the shop only before the order leaves its initial status
                    IF EXISTS (SELECT 1 FROM orders.orders o JOIN orders.lifecycles l ON l.name = o.lifecycle
                                WHERE o.id = order_id AND o.status = l.initial_status) THEN
                        -- without its items a discount larger than the fee would make the
                        -- total negative (refused): a negative adjustment waits for them
                        SELECT o.adjustment INTO adj FROM orders.orders o WHERE o.id = order_id;
                        IF adj < 0 THEN
                            UPDATE orders.orders o SET adjustment = 0 WHERE o.id = order_id;
                        END IF;
                        DELETE FROM orders.order_items it WHERE it.order_id = ingest.order_id;
                        PERFORM orders.webhook_insert_items(order_id, resolved);
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
                -- customer race: a lock per key the lookup uses, the phone's first
                IF c_phone IS NOT NULL THEN
                    PERFORM pg_advisory_xact_lock(hashtextextended('orders.customer phone ' || c_phone, 0));
                END IF;
                IF c_email IS NOT NULL THEN
                    PERFORM pg_advisory_xact_lock(hashtextextended('orders.customer email ' || c_email, 0));
                END IF;
                IF c_phone IS NOT NULL THEN
                    SELECT c.id INTO customer_id FROM orders.customers c WHERE c.phone = c_phone ORDER BY c.created_at, c.id LIMIT 1;
                END IF;
                IF customer_id IS NULL AND c_email IS NOT NULL THEN
                    SELECT c.id INTO customer_id FROM orders.customers c WHERE c.email = c_email ORDER BY c.created_at, c.id LIMIT 1;
                END IF;
                IF customer_id IS NULL THEN
                    INSERT INTO orders.customers (full_name, email, phone, address, city, postal_code)
                    VALUES (left(coalesce(orders.webhook_value(doc, m -> 'customer' ->> 'name'), c_email, c_phone), 200),
                            c_email, c_phone,
                            orders.webhook_value(doc, m -> 'customer' ->> 'address'),
                            orders.webhook_value(doc, m -> 'customer' ->> 'city'),
                            orders.webhook_value(doc, m -> 'customer' ->> 'postal_code'))
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
                        orders.webhook_value(doc, m -> 'customer' ->> 'city'),
                        'webhook', w.endpoint, ext_id,
                        jsonb_build_object('webhook', jsonb_strip_nulls(jsonb_build_object(
                            'source', w.source,
                            'order_number', orders.webhook_value(doc, m -> 'order' ->> 'order_number'),
                            'updated_at', orders.webhook_value(doc, m -> 'order' ->> 'updated_at')))))
                RETURNING id INTO order_id;
                PERFORM orders.webhook_insert_items(order_id, resolved);
                IF adj < -fee THEN
                    UPDATE orders.orders o SET adjustment = adj WHERE o.id = order_id;
                END IF;
                result_status := 'created'; http := 201;
            END IF;
        EXCEPTION
            WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, err = MESSAGE_TEXT;
                http := CASE WHEN code IN ('40001', '40P01', '55P03') THEN 503
                             WHEN code LIKE '22%' OR code LIKE '23%' OR code LIKE 'OR%' THEN 422
                             ELSE 500 END;
                err := format('webhook "%s": %s', w.endpoint, left(err, 500));
                result_status := NULL; order_id := NULL;
        END;
    END IF;

    INSERT INTO orders.webhook_logs (webhook_id, delivery_id, request_payload, response_status, order_created_id, error_message)
    VALUES (w.id, delivery_id, CASE WHEN http NOT IN (401, 404, 413) THEN doc END, http, order_id, err)
    RETURNING id INTO log_id;
    -- webhook workflows (sql/schema/99_workflows.sql) run with the order
    IF result_status IN ('created', 'updated') THEN
        PERFORM orders.fire_webhook_workflows(w.id, order_id,
                                              CASE result_status WHEN 'created' THEN 'order.created' ELSE 'order.updated' END,
                                              log_id);
    END IF;
    PERFORM set_config('response.status', http::text, true);
    RETURN jsonb_strip_nulls(jsonb_build_object(
        'status', coalesce(result_status, 'rejected'), 'http_status', http, 'order_id', order_id,
        'log_id', log_id, 'code', CASE WHEN http >= 300 THEN code END, 'error', err));
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
    IF NOT EXISTS (SELECT FROM orders.orders ord JOIN orders.order_groups og ON og.order_id = ord.id
                    WHERE og.id = complete_analysis.order_group_id) THEN
        PERFORM orders.group_not_found(complete_analysis.order_group_id);
    END IF;
    INSERT INTO orders.order_site_selections (order_group_id, domain, domain_id, metrics)
    SELECT complete_analysis.order_group_id, orders.normalize_domain(s ->> 'domain'),
           (s ->> 'domain_id')::uuid, coalesce(s -> 'metrics', '{}')
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

CREATE OR REPLACE FUNCTION orders.create_share_token(order_id uuid, expires_in interval DEFAULT '7 days',
                                          allowed_actions text[] DEFAULT '{view}', metadata jsonb DEFAULT '{}')
    RETURNS text
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    token text;
BEGIN
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
    UPDATE orders.order_share_tokens s SET used_at = clock_timestamp(), converted_to_account_id = account
     WHERE s.id = t.id AND s.used_at IS NULL AND s.revoked_at IS NULL AND s.expires_at > clock_timestamp();
    IF NOT FOUND THEN
        RAISE EXCEPTION 'this share link is not valid'
            USING ERRCODE = 'OR080', HINT = 'Ask for a new link.';
    END IF;
    SELECT o.customer_id, c.account_id INTO customer, owner_account
      FROM orders.orders o JOIN orders.customers c ON c.id = o.customer_id
     WHERE o.id = t.order_id FOR NO KEY UPDATE OF c;
    IF owner_account IS NOT NULL AND owner_account <> account THEN
        RAISE EXCEPTION 'the shared order belongs to another account'
            USING ERRCODE = 'OR083', HINT = 'The link was for a prospect; ask the agency for an order of your own.';
    END IF;
    UPDATE orders.customers SET account_id = account WHERE id = customer AND account_id IS NULL;
    RETURN customer;
END
$$;
