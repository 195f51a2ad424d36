-- orders 0.8.0 -> 0.9.0
--  * A warning on PostgreSQL 15.0-15.19, whose multixact bug fails
--    concurrent updates with XX000 (doc/multixact.md; issue 9).
--  * DROP EXTENSION orders removes the extension's pg_cron jobs of this
--    database (event trigger orders_unschedule_jobs; issue 9).
--  * Orders from shop webhooks (issue 12): orders.webhooks, webhook_logs,
--    orders.external_id, ingest_webhook; a pg_cron job purges old logs.
--  * The activity log (issue 13): orders.activity_logs, the C trigger
--    track_changes on orders, customers, products, staff, webhooks,
--    track_activity / untrack_activity, a pg_cron purge.
--  * Staff notifications (issue 13): orders.notifications, unread_notifications,
--    mark_notifications_read; grant_api grants them.
--  * The outbox (issue 13, first part): orders.outbox, enqueue_outbox,
--    claim_outbox, complete_outbox, the view outbox_dead.
--    The parts after "98_webhooks.sql" and "99_outbox.sql" are verbatim
--    copies of those files.
\echo Use "ALTER EXTENSION orders UPDATE TO '0.9.0'" to load this file. \quit

DO $$
BEGIN
    IF pg_catalog.current_setting('server_version_num')::integer BETWEEN 150000 AND 150019 THEN
        RAISE WARNING 'PostgreSQL % can fail concurrent updates with "new multixact has more than one updating member"',
                      pg_catalog.current_setting('server_version')
            USING DETAIL = 'A bug of PostgreSQL 15.0 to 15.19, fixed in 15.20: an UPDATE does not wait for an aborting earlier updater of the row.',
                  HINT = 'Install PostgreSQL 15.20 or later (a minor release: restart only, no dump or pg_upgrade).';
    END IF;
END
$$;

CREATE FUNCTION orders.unschedule_on_drop()
    RETURNS event_trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'orders_unschedule_on_drop';
COMMENT ON FUNCTION orders.unschedule_on_drop() IS
    'Event trigger: DROP EXTENSION orders removes the extension''s pg_cron jobs of this database';
CREATE EVENT TRIGGER orders_unschedule_jobs ON ddl_command_start
    WHEN TAG IN ('DROP EXTENSION', 'DROP SCHEMA')
    EXECUTE FUNCTION orders.unschedule_on_drop();
REVOKE ALL ON FUNCTION orders.unschedule_on_drop() FROM PUBLIC;

ALTER TABLE orders.orders ADD COLUMN external_id text;

CREATE OR REPLACE FUNCTION orders.cron_jobs()
    RETURNS TABLE (jobname text, schedule text, command text)
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT 'orders-cleanup-expired-holds', '* * * * *', 'SELECT orders.cleanup_expired_reservations()'
    UNION ALL
    SELECT 'orders-purge-webhook-logs', '17 3 * * *', 'SELECT orders.purge_webhook_logs()'
    UNION ALL
    SELECT 'orders-purge-outbox', '27 3 * * *', 'SELECT orders.purge_outbox()'
    UNION ALL
    SELECT 'orders-purge-activity-logs', '37 3 * * *', 'SELECT orders.purge_activity_logs()';
END;

-- 98_webhooks.sql

---------------------------------------------------------------------------
-- Orders from shop webhooks (issue 12, seed 004; doc/webhooks.md): a
-- Shopify, WooCommerce or custom order webhook becomes a customer, an order
-- in its lifecycle's initial status and its items, verified (HMAC-SHA256 in
-- C, src/webhook_signature.c) and exactly once per delivery and per shop
-- order, whoever calls orders.ingest_webhook.  Every request is logged.
---------------------------------------------------------------------------

CREATE TABLE orders.webhooks (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name           orders.label NOT NULL,
    source         text NOT NULL CHECK (source IN ('shopify', 'woocommerce', 'custom', 'other')),
    endpoint       text NOT NULL UNIQUE CHECK (endpoint ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$'),
    secret         text CHECK (secret <> ''),
    field_mapping  orders.json_object NOT NULL DEFAULT '{}',
    defaults       orders.json_object NOT NULL DEFAULT '{}'
                   CONSTRAINT webhooks_defaults_shape CHECK (
                       coalesce(jsonb_typeof(defaults -> 'lifecycle'), 'string') = 'string'
                       AND coalesce(jsonb_typeof(defaults -> 'currency'), 'string') = 'string'
                       AND coalesce(jsonb_typeof(defaults -> 'require_sku_match'), 'boolean') = 'boolean'
                       AND (defaults -> 'priority' IS NULL
                            OR (jsonb_typeof(defaults -> 'priority') = 'number'
                                AND (defaults ->> 'priority') ~ '^-?[0-9]{1,9}$'))
                       AND (defaults -> 'max_payload_bytes' IS NULL
                            OR (jsonb_typeof(defaults -> 'max_payload_bytes') = 'number'
                                AND (defaults ->> 'max_payload_bytes') ~ '^[0-9]{1,9}$'))),
    is_active      boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE orders.webhooks IS
    'Shop webhooks: the endpoint name callers of orders.ingest_webhook use, its secret, mapping and defaults';
COMMENT ON COLUMN orders.webhooks.endpoint IS 'The name a caller passes to orders.ingest_webhook (letters, digits, _ . -)';
COMMENT ON COLUMN orders.webhooks.secret IS
    'Key of the HMAC-SHA256 signature (NULL: unsigned requests accepted); readable by the owner only';
COMMENT ON COLUMN orders.webhooks.field_mapping IS
    'Sections customer, order, items of dotted paths into the payload ("a.b | c.d": first non-empty; "a + b": joined); see orders.webhook_mapping()';
COMMENT ON COLUMN orders.webhooks.defaults IS
    'lifecycle, currency, priority, require_sku_match (boolean), max_payload_bytes (default 1 MB)';
CREATE INDEX webhooks_source_idx ON orders.webhooks (source);
CREATE INDEX webhooks_is_active_idx ON orders.webhooks (is_active);
CREATE TRIGGER set_updated_at BEFORE UPDATE ON orders.webhooks
    FOR EACH ROW EXECUTE FUNCTION orders.set_updated_at();

-- a renamed endpoint takes its orders along: the shop order ids stay unique
-- per webhook (a duplicate after the rename is still a duplicate)
CREATE FUNCTION orders.webhook_endpoint_renamed() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE orders.orders o SET webhook_source = NEW.endpoint
     WHERE o.webhook_source = OLD.endpoint;
    RETURN NULL;
END
$$;
CREATE TRIGGER webhook_endpoint_renamed AFTER UPDATE OF endpoint ON orders.webhooks
    FOR EACH ROW WHEN (OLD.endpoint IS DISTINCT FROM NEW.endpoint)
    EXECUTE FUNCTION orders.webhook_endpoint_renamed();

CREATE TABLE orders.webhook_logs (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    webhook_id        uuid REFERENCES orders.webhooks (id) ON DELETE SET NULL,
    delivery_id       text,
    request_payload   jsonb,
    response_status   integer NOT NULL CHECK (response_status BETWEEN 100 AND 599),
    order_created_id  uuid REFERENCES orders.orders (id) ON DELETE SET NULL,
    error_message     text,
    created_at        timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE orders.webhook_logs IS
    'Every request to orders.ingest_webhook, success or failure: the HTTP status answered, the payload (not kept for 401, 404, 413, or when not JSON)';
COMMENT ON COLUMN orders.webhook_logs.order_created_id IS 'The order the request created, updated or was a duplicate of';
CREATE INDEX webhook_logs_webhook_id_idx ON orders.webhook_logs (webhook_id, delivery_id);
CREATE INDEX webhook_logs_order_created_id_idx ON orders.webhook_logs (order_created_id);
CREATE INDEX webhook_logs_created_at_idx ON orders.webhook_logs (created_at);
CREATE INDEX webhook_logs_response_status_idx ON orders.webhook_logs (response_status);
CREATE INDEX webhook_logs_payload_idx ON orders.webhook_logs USING gin (request_payload jsonb_path_ops)
    WHERE request_payload IS NOT NULL;

-- the shop's order id, unique per webhook (orders.webhook_source holds the
-- webhook's endpoint for orders it created)
CREATE UNIQUE INDEX orders_webhook_external_id_idx ON orders.orders (webhook_source, external_id)
    WHERE external_id IS NOT NULL;

-- webhook_signature_ok — base64 HMAC-SHA256 of the body matches (C).
CREATE FUNCTION orders.webhook_signature_ok(secret text, body text, signature text)
    RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'orders_webhook_signature_ok';

-- webhook_value — the value a mapping spec names in a payload: dotted
-- paths ("shipping_address.city", "line_items.0.sku"); "a | b": the first
-- non-empty; "a + b": the non-empty parts joined by a space.  NULL when
-- nothing is there (C, src/webhook_mapping.c).
CREATE FUNCTION orders.webhook_value(doc jsonb, spec text)
    RETURNS text
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'orders_webhook_value';

-- webhook_mapping — the ready field_mapping of a platform ('shopify',
-- 'woocommerce'); 22023 for another.
CREATE FUNCTION orders.webhook_mapping(platform text)
    RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    CASE platform
    WHEN 'shopify' THEN
        RETURN '{
          "customer": {"name": "customer.first_name + customer.last_name | shipping_address.name | billing_address.name",
                       "email": "email | contact_email | customer.email",
                       "phone": "phone | customer.phone | shipping_address.phone | billing_address.phone",
                       "address": "shipping_address.address1 + shipping_address.address2",
                       "city": "shipping_address.city",
                       "postal_code": "shipping_address.zip"},
          "order": {"external_id": "id", "order_number": "name", "currency": "currency",
                    "total": "total_price", "delivery_fee": "total_shipping_price_set.shop_money.amount",
                    "notes": "note", "updated_at": "updated_at", "items": "line_items"},
          "items": {"sku": "sku", "name": "name | title", "quantity": "quantity", "price": "price"}
        }'::jsonb;
    WHEN 'woocommerce' THEN
        RETURN '{
          "customer": {"name": "billing.first_name + billing.last_name | shipping.first_name + shipping.last_name",
                       "email": "billing.email",
                       "phone": "billing.phone | shipping.phone",
                       "address": "shipping.address_1 + shipping.address_2 | billing.address_1 + billing.address_2",
                       "city": "shipping.city | billing.city",
                       "postal_code": "shipping.postcode | billing.postcode"},
          "order": {"external_id": "id", "order_number": "number", "currency": "currency",
                    "total": "total", "delivery_fee": "shipping_total",
                    "notes": "customer_note", "updated_at": "date_modified_gmt", "items": "line_items"},
          "items": {"sku": "sku", "name": "name", "quantity": "quantity", "price": "subtotal / quantity"}
        }'::jsonb;
    ELSE
        RAISE EXCEPTION 'no ready webhook mapping for platform "%"', left(platform, 64)
            USING ERRCODE = '22023', HINT = 'Ready mappings: shopify, woocommerce; write field_mapping yourself for others.';
    END CASE;
END
$$;

-- webhook_amount — an amount of a payload: a number or a numeric string,
-- or "a / b" (WooCommerce's line subtotal over quantity), rounded to cents
-- (C, src/webhook_mapping.c); 22P02 for a value that is not a number.
CREATE FUNCTION orders.webhook_amount(doc jsonb, spec text)
    RETURNS numeric
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'orders_webhook_amount';

---------------------------------------------------------------------------
-- webhook_ingest — the one implementation behind both entry points
-- (ingest_webhook, ingest_webhook_body), which run it as the owner: the
-- caller needs EXECUTE on an entry point only.  "doc" is the body parsed
-- (NULL: parse it here, a malformed body is logged).  Order of work:
--   endpoint (404) → size (413) → signature (401) → JSON (400) →
--   one advisory lock per shop order (or delivery) of this webhook, so two
--   deliveries of one order never both pass → duplicate by delivery id or
--   shop order id (200, nothing created; an orders/updated payload updates,
--   never moves status) → customer (by phone, else email, else created;
--   an advisory lock per phone/email) → order → items (by SKU: variant,
--   then product) — inside one subtransaction, so a payload that cannot
--   be mapped (422) leaves only its log row.
---------------------------------------------------------------------------
CREATE FUNCTION orders.webhook_ingest(endpoint text, body text, doc jsonb, signature text,
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
                        DELETE FROM orders.order_items it WHERE it.order_id = ingest.order_id;
                        PERFORM orders.webhook_insert_items(order_id, resolved);
                        UPDATE orders.orders o SET delivery_fee = fee WHERE o.id = order_id;
                        IF total IS NOT NULL THEN
                            UPDATE orders.orders o SET total_amount = total WHERE o.id = order_id;
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
                INSERT INTO orders.orders (customer_id, lifecycle, priority, currency, delivery_fee, adjustment,
                                           customer_notes, delivery_address, delivery_area,
                                           source, webhook_source, external_id, metadata)
                VALUES (customer_id, coalesce(d ->> 'lifecycle', 'cod'), coalesce((d ->> 'priority')::integer, 0),
                        upper(coalesce(orders.webhook_value(doc, m -> 'order' ->> 'currency'), d ->> 'currency', 'USD')),
                        fee, coalesce(total - coalesce(items_sum, 0) - fee, 0),
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
    PERFORM set_config('response.status', http::text, true);
    RETURN jsonb_strip_nulls(jsonb_build_object(
        'status', coalesce(result_status, 'rejected'), 'http_status', http, 'order_id', order_id,
        'log_id', log_id, 'code', CASE WHEN http >= 300 THEN code END, 'error', err));
END
$$;

-- webhook_insert_items — the resolved items of a payload (webhook_ingest
-- maps and matches them) as rows of order_items, in the payload's order.
CREATE FUNCTION orders.webhook_insert_items(order_id uuid, resolved jsonb)
    RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO orders.order_items (order_id, sku, name, quantity, unit_price, product_id, variant_id)
    SELECT webhook_insert_items.order_id, r.sku, r.name, r.quantity, r.unit_price, r.product_id, r.variant_id
      FROM jsonb_to_recordset(resolved) AS r(sku text, name text, quantity integer, unit_price numeric,
                                             product_id uuid, variant_id uuid, ord bigint)
     ORDER BY r.ord;
END
$$;

-- ingest_webhook — a shop's order webhook in, as received (json keeps the
-- bytes the signature covers).  Result: {"status": created | duplicate |
-- updated | stale | rejected, "http_status", "order_id", "log_id", "code",
-- "error"}; response.status carries the HTTP status for PostgREST.
CREATE FUNCTION orders.ingest_webhook(endpoint text, payload json, signature text DEFAULT NULL,
                                      delivery_id text DEFAULT NULL, topic text DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    RETURN orders.webhook_ingest(endpoint, payload::text, payload::jsonb, signature, delivery_id, topic);
COMMENT ON FUNCTION orders.ingest_webhook(text, json, text, text, text) IS
    'A shop''s order webhook becomes a customer, an order and its items: verified, exactly once, logged (doc/webhooks.md)';

-- ingest_webhook_body — the same for a body that may not be JSON (an edge
-- function or worker passing bytes on): a malformed body is logged (400).
CREATE FUNCTION orders.ingest_webhook_body(endpoint text, body text, signature text DEFAULT NULL,
                                           delivery_id text DEFAULT NULL, topic text DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    RETURN orders.webhook_ingest(endpoint, body, NULL, signature, delivery_id, topic);
COMMENT ON FUNCTION orders.ingest_webhook_body(text, text, text, text, text) IS
    'orders.ingest_webhook for a body that may not be JSON: the same, and a malformed body is logged (400)';

-- purge_webhook_logs — delete log rows older than "older_than"; the number deleted.
CREATE FUNCTION orders.purge_webhook_logs(older_than interval DEFAULT '90 days')
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    IF older_than IS NULL THEN
        RAISE EXCEPTION 'orders.purge_webhook_logs: older_than must not be NULL' USING ERRCODE = '22004';
    ELSIF older_than < interval '0' THEN
        RAISE EXCEPTION 'orders.purge_webhook_logs: older_than must not be negative (%)', older_than
            USING ERRCODE = '22023';
    END IF;
    DELETE FROM orders.webhook_logs l WHERE l.created_at < now() - older_than;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

SELECT pg_catalog.pg_extension_config_dump('orders.webhooks', '');
SELECT pg_catalog.pg_extension_config_dump('orders.webhook_logs', '');

-- owner only: no API role reads secrets or logs (row level security on,
-- no policy); callers need EXECUTE on the entry points alone
ALTER TABLE orders.webhooks ENABLE ROW LEVEL SECURITY;
ALTER TABLE orders.webhook_logs ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON orders.webhooks, orders.webhook_logs FROM PUBLIC;
REVOKE ALL ON FUNCTION orders.webhook_signature_ok(text, text, text), orders.webhook_endpoint_renamed(), orders.webhook_insert_items(uuid, jsonb),
                       orders.webhook_ingest(text, text, jsonb, text, text, text),
                       orders.purge_webhook_logs(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orders.ingest_webhook(text, json, text, text, text),
                          orders.ingest_webhook_body(text, text, text, text, text),
                          orders.webhook_mapping(text), orders.webhook_value(jsonb, text),
                          orders.webhook_amount(jsonb, text) TO PUBLIC;

-- 99_activity.sql

---------------------------------------------------------------------------
-- The activity log (issue 13, seed 004; doc/activity.md): who changed what.
-- A C row trigger (src/activity.c) writes one row per inserted, updated or
-- deleted row of a tracked table, with only the changed columns, the actor
-- (JWT sub or role) and their staff id; as the owner, so nobody forges a
-- row.  Tracked: orders, customers, products, staff, webhooks; any table
-- with orders.track_activity(regclass).
---------------------------------------------------------------------------

CREATE TABLE orders.activity_logs (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid REFERENCES orders.staff (id) ON DELETE SET NULL,
    actor        text NOT NULL,
    action       text NOT NULL CHECK (action IN ('created', 'updated', 'deleted')),
    entity_type  text NOT NULL,
    entity_id    text,
    details      orders.json_object NOT NULL DEFAULT '{}',
    ip_address   text,
    -- the clock, not the transaction's start: a transaction's changes in order
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
COMMENT ON TABLE orders.activity_logs IS
    'Who changed what (seed 004): one row per changed row of a tracked table, written by orders.track_changes as the owner';
COMMENT ON COLUMN orders.activity_logs.details IS '{"changes": {column: {"old": …, "new": …}}}, the changed columns only (updated_at left out)';
COMMENT ON COLUMN orders.activity_logs.ip_address IS
    'The client address PostgREST saw (first of X-Forwarded-For), when the caller''s JWT claims are believed';
-- Every status change writes here, so few and cheap indexes: a user's and
-- an entity's timelines (btree), time ranges by BRIN (rows arrive in time
-- order); the seed's index on action alone is left out (three values: filter
-- it within a time range or an entity).
CREATE INDEX activity_logs_user_id_idx ON orders.activity_logs (user_id, created_at);
CREATE INDEX activity_logs_entity_idx ON orders.activity_logs (entity_type, entity_id);
CREATE INDEX activity_logs_created_at_idx ON orders.activity_logs USING brin (created_at);

CREATE FUNCTION orders.track_changes() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_track_changes';
COMMENT ON FUNCTION orders.track_changes() IS
    'AFTER INSERT OR UPDATE OR DELETE row trigger: one orders.activity_logs row per changed row';

-- track_activity — log the changes of "tbl" (idempotent); untrack_activity
-- stops it.  Owner only.
CREATE FUNCTION orders.track_activity(tbl regclass)
    RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'orders.track_activity: tbl must not be NULL' USING ERRCODE = '22004';
    ELSIF (SELECT c.relkind FROM pg_class c WHERE c.oid = tbl) NOT IN ('r', 'p') THEN
        RAISE EXCEPTION 'orders.track_activity: % is not a table', tbl USING ERRCODE = '42809';
    ELSIF NOT EXISTS (SELECT FROM pg_trigger t WHERE t.tgrelid = tbl AND t.tgname = 'orders_activity') THEN
        EXECUTE format('CREATE TRIGGER orders_activity AFTER INSERT OR UPDATE OR DELETE ON %s
                        FOR EACH ROW EXECUTE FUNCTION orders.track_changes()', tbl);
    END IF;
END
$$;
CREATE FUNCTION orders.untrack_activity(tbl regclass)
    RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'orders.untrack_activity: tbl must not be NULL' USING ERRCODE = '22004';
    END IF;
    EXECUTE format('DROP TRIGGER IF EXISTS orders_activity ON %s', tbl);
END
$$;

-- purge_activity_logs — delete rows older than "older_than"; the number deleted.
CREATE FUNCTION orders.purge_activity_logs(older_than interval DEFAULT '365 days')
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    IF older_than IS NULL THEN
        RAISE EXCEPTION 'orders.purge_activity_logs: older_than must not be NULL' USING ERRCODE = '22004';
    ELSIF older_than < interval '0' THEN
        RAISE EXCEPTION 'orders.purge_activity_logs: older_than must not be negative (%)', older_than USING ERRCODE = '22023';
    END IF;
    DELETE FROM orders.activity_logs l WHERE l.created_at < now() - older_than;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

CREATE TRIGGER orders_activity AFTER INSERT OR UPDATE OR DELETE ON orders.orders
    FOR EACH ROW EXECUTE FUNCTION orders.track_changes();
CREATE TRIGGER orders_activity AFTER INSERT OR UPDATE OR DELETE ON orders.customers
    FOR EACH ROW EXECUTE FUNCTION orders.track_changes();
CREATE TRIGGER orders_activity AFTER INSERT OR UPDATE OR DELETE ON orders.products
    FOR EACH ROW EXECUTE FUNCTION orders.track_changes();
CREATE TRIGGER orders_activity AFTER INSERT OR UPDATE OR DELETE ON orders.staff
    FOR EACH ROW EXECUTE FUNCTION orders.track_changes();
CREATE TRIGGER orders_activity AFTER INSERT OR UPDATE OR DELETE ON orders.webhooks
    FOR EACH ROW EXECUTE FUNCTION orders.track_changes();

SELECT pg_catalog.pg_extension_config_dump('orders.activity_logs', '');
-- owner only: nobody but the trigger writes, admins read through the owner's tools
ALTER TABLE orders.activity_logs ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON orders.activity_logs FROM PUBLIC;
REVOKE ALL ON FUNCTION orders.track_changes(), orders.track_activity(regclass), orders.untrack_activity(regclass),
                       orders.purge_activity_logs(interval) FROM PUBLIC;

-- 99_notifications.sql

---------------------------------------------------------------------------
-- Staff notifications (issue 13, seed 004; doc/notifications.md): rows for
-- one staff member each, written by the extension's owner (workflows, the
-- DBA's jobs); a staff member reads, marks read and deletes only their own
-- (row level security on user_id = orders.current_staff_id()).
---------------------------------------------------------------------------

CREATE TABLE orders.notifications (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL REFERENCES orders.staff (id) ON DELETE CASCADE,
    type        text NOT NULL CHECK (type IN ('order', 'delivery', 'system', 'workflow', 'alert')),
    title       orders.label NOT NULL,
    message     text,
    data        orders.json_object NOT NULL DEFAULT '{}',
    is_read     boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE orders.notifications IS
    'Notifications of staff members (seed 004): each reads and marks only their own';
-- a staff member's list, newest first; the unread count and list
CREATE INDEX notifications_user_idx ON orders.notifications (user_id, created_at DESC);
CREATE INDEX notifications_unread_idx ON orders.notifications (user_id, created_at DESC) WHERE NOT is_read;

ALTER TABLE orders.notifications ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON orders.notifications
    USING (user_id = (SELECT orders.current_staff_id()));

-- unread_notifications — the caller's unread notifications, newest first.
CREATE FUNCTION orders.unread_notifications()
    RETURNS SETOF orders.notifications
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT n.* FROM orders.notifications n
     WHERE n.user_id = orders.current_staff_id() AND NOT n.is_read
     ORDER BY n.created_at DESC, n.id;
END;

-- mark_notifications_read — mark the caller's notifications read: those of
-- "ids", or all (NULL); the number marked.  Ids of others' (or unknown)
-- notifications mark nothing.  42501 for a caller who is no staff member.
CREATE FUNCTION orders.mark_notifications_read(ids uuid[] DEFAULT NULL)
    RETURNS integer
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    me uuid := orders.current_staff_id();
    n integer;
BEGIN
    IF me IS NULL THEN
        RAISE EXCEPTION 'only staff members have notifications'
            USING ERRCODE = '42501', HINT = 'Log in with an account that orders.staff.account_id names.';
    END IF;
    UPDATE orders.notifications x SET is_read = true
     WHERE x.user_id = me AND NOT x.is_read AND (ids IS NULL OR x.id = ANY (ids));
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

SELECT pg_catalog.pg_extension_config_dump('orders.notifications', '');
REVOKE ALL ON orders.notifications FROM PUBLIC;

-- 99_outbox.sql

---------------------------------------------------------------------------
-- The outbox (issue 13, first part; doc/outbox.md): what must leave the
-- database — an SMS, an e-mail, an HTTP call — is written as a row in the
-- same transaction as the change that causes it, and workers outside claim
-- it (FOR UPDATE SKIP LOCKED, with a lease), do it and complete it.
-- Delivery is at least once: a worker that crashes after sending but before
-- completing leaves the message to come back after its lease; receivers
-- deduplicate on idempotency_key, which stays the same across retries.
---------------------------------------------------------------------------

CREATE TABLE orders.outbox (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    kind             text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_.-]{0,62}$'),
    payload          orders.json_object NOT NULL DEFAULT '{}',
    idempotency_key  text NOT NULL UNIQUE DEFAULT gen_random_uuid()::text
                     CHECK (idempotency_key <> '' AND length(idempotency_key) <= 255),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts     integer NOT NULL DEFAULT 10 CHECK (max_attempts BETWEEN 1 AND 1000),
    run_after        timestamptz NOT NULL DEFAULT now(),
    locked_by        text,
    locked_until     timestamptz,
    last_error       text,
    done_at          timestamptz,
    dead_at          timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT outbox_done_or_dead CHECK (done_at IS NULL OR dead_at IS NULL)
);
COMMENT ON TABLE orders.outbox IS
    'Messages for the outside world (SMS, e-mail, HTTP), claimed by workers with orders.claim_outbox, at least once';
COMMENT ON COLUMN orders.outbox.idempotency_key IS
    'Stable across retries: the receiver deduplicates on it; enqueueing the same key twice keeps one message';
COMMENT ON COLUMN orders.outbox.attempts IS 'Claims so far (a claim counts as an attempt, also when the worker crashes)';
COMMENT ON COLUMN orders.outbox.locked_until IS 'End of the current claim''s lease; afterwards the message may be claimed again';
-- the claim's scan: pending messages in the order they become due
CREATE INDEX outbox_pending_idx ON orders.outbox (run_after, id) WHERE done_at IS NULL AND dead_at IS NULL;
-- the claim's first pass: held messages whose lease ran out
CREATE INDEX outbox_held_idx ON orders.outbox (locked_until)
    WHERE done_at IS NULL AND dead_at IS NULL AND locked_until IS NOT NULL;

-- enqueue_outbox — one message; the same idempotency key again returns the
-- first message's id and changes nothing.
CREATE FUNCTION orders.enqueue_outbox(kind text, payload jsonb DEFAULT '{}', idempotency_key text DEFAULT NULL,
                                      run_after timestamptz DEFAULT NULL, max_attempts integer DEFAULT 10)
    RETURNS uuid
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_id uuid;
BEGIN
    INSERT INTO orders.outbox (kind, payload, idempotency_key, run_after, max_attempts)
    VALUES (kind, coalesce(payload, '{}'), coalesce(idempotency_key, gen_random_uuid()::text),
            coalesce(run_after, now()), max_attempts)
    ON CONFLICT ON CONSTRAINT outbox_idempotency_key_key DO NOTHING
    RETURNING id INTO new_id;
    IF new_id IS NULL THEN
        SELECT o.id INTO new_id FROM orders.outbox o WHERE o.idempotency_key = enqueue_outbox.idempotency_key;
    END IF;
    RETURN new_id;
END
$$;

-- claim_outbox — up to "batch" due messages for "worker", each leased for
-- "lease" and its attempts counted; messages another transaction is
-- claiming are skipped, never waited for or handed out twice.  A message
-- whose lease ran out (its worker crashed) is due again; one that ran out
-- of attempts that way is dead instead.
CREATE FUNCTION orders.claim_outbox(worker text, batch integer DEFAULT 10, lease interval DEFAULT '1 min')
    RETURNS SETOF orders.outbox
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF worker IS NULL OR worker = '' OR length(worker) > 200 THEN
        RAISE EXCEPTION 'orders.claim_outbox: worker must name the worker (1 to 200 characters)' USING ERRCODE = '22023';
    ELSIF batch IS NULL OR batch NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'orders.claim_outbox: batch must be between 1 and 1000, not %', batch USING ERRCODE = '22023';
    ELSIF lease IS NULL OR lease < interval '1 second' OR lease > interval '1 day' THEN
        RAISE EXCEPTION 'orders.claim_outbox: lease must be between 1 second and 1 day, not %', lease USING ERRCODE = '22023';
    END IF;
    -- a crashed worker's last attempt: dead, not claimed again
    UPDATE orders.outbox o
       SET dead_at = now(), locked_until = NULL,
           last_error = coalesce(o.last_error || '; ', '') || 'lease of ' || o.locked_by || ' ran out on the last attempt'
     WHERE o.id IN (SELECT d.id FROM orders.outbox d
                     WHERE d.done_at IS NULL AND d.dead_at IS NULL AND d.locked_until < clock_timestamp()
                       AND d.attempts >= d.max_attempts
                     FOR UPDATE SKIP LOCKED);
    RETURN QUERY
    UPDATE orders.outbox o
       SET locked_by = worker, locked_until = clock_timestamp() + lease, attempts = o.attempts + 1
      FROM (SELECT c.id FROM orders.outbox c
             WHERE c.done_at IS NULL AND c.dead_at IS NULL AND c.run_after <= clock_timestamp()
               AND (c.locked_until IS NULL OR c.locked_until < clock_timestamp())
               AND c.attempts < c.max_attempts
             ORDER BY c.run_after, c.id
             LIMIT batch
             FOR UPDATE SKIP LOCKED) claimed
     WHERE o.id = claimed.id
    RETURNING o.*;
END
$$;

-- complete_outbox — the worker holding message "id" reports: done (error
-- NULL), or failed: tried again after 2^attempts seconds (at most an hour),
-- dead after max_attempts.  Returns done, retry or dead.  Refused: an
-- unknown message (OR100); one that is not held within a lease — done,
-- dead, never claimed since its last attempt, its lease ran out — or, when
-- held by another worker (OR101); a call without "worker" (22023).  The
-- completing worker's retried "done" answers done again.  Leases are
-- measured by the clock, not the transaction's start.
CREATE FUNCTION orders.complete_outbox(id uuid, error text DEFAULT NULL, worker text DEFAULT NULL)
    RETURNS text
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m orders.outbox%ROWTYPE;
BEGIN
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
                                ELSE 'Its lease ran out or another worker holds it; it will be (or was) tried again.' END,
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

-- revive_outbox — a dead message back to pending, its attempts from 0 again
-- (an operator fixed the cause).  OR100 unknown; OR102 when it is
-- not dead.
CREATE FUNCTION orders.revive_outbox(id uuid)
    RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m orders.outbox%ROWTYPE;
BEGIN
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

-- purge_outbox — delete done and dead messages finished before
-- now() - older_than; the number deleted.  Pending ones stay.
CREATE FUNCTION orders.purge_outbox(older_than interval DEFAULT '30 days')
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    IF older_than IS NULL THEN
        RAISE EXCEPTION 'orders.purge_outbox: older_than must not be NULL' USING ERRCODE = '22004';
    ELSIF older_than < interval '0' THEN
        RAISE EXCEPTION 'orders.purge_outbox: older_than must not be negative (%)', older_than USING ERRCODE = '22023';
    END IF;
    DELETE FROM orders.outbox o WHERE coalesce(o.done_at, o.dead_at) < now() - older_than;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- The messages that gave up, for an operator to look at.
CREATE VIEW orders.outbox_dead WITH (security_invoker = true) AS
SELECT o.id, o.kind, o.idempotency_key, o.attempts, o.last_error, o.dead_at, o.created_at, o.payload
  FROM orders.outbox o
 WHERE o.dead_at IS NOT NULL;

SELECT pg_catalog.pg_extension_config_dump('orders.outbox', '');

-- owner only; a DBA grants the worker role EXECUTE on claim_outbox and
-- complete_outbox, and the role that enqueues EXECUTE on enqueue_outbox
ALTER TABLE orders.outbox ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON orders.outbox, orders.outbox_dead FROM PUBLIC;
REVOKE ALL ON FUNCTION orders.enqueue_outbox(text, jsonb, text, timestamptz, integer),
                       orders.claim_outbox(text, integer, interval),
                       orders.complete_outbox(uuid, text, text), orders.revive_outbox(uuid),
                       orders.purge_outbox(interval) FROM PUBLIC;

-- grant_api as in 95_security.sql (notifications added)
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
    EXECUTE format('GRANT USAGE ON SEQUENCE orders.order_number_seq TO %I', authenticated_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION orders.transition(uuid, text, text, text),
                    orders.assign_lead(uuid, uuid), orders.order_stats(),
                    orders.reserve_time_slot(uuid, integer, integer), orders.confirm_booking(uuid, uuid),
                    orders.release_reservation(uuid),
                    orders.current_customer_ids(), orders.current_staff_id(), orders.current_staff_role(),
                    orders.actor_account(), orders.staff_sees_order(uuid, uuid, text, text),
                    orders.customer_may_edit_items(uuid),
                    orders.recent_orders(text[], integer), orders.agent_active_deliveries(uuid),
                    orders.unassigned_orders_in_area(text), orders.customer_order_history(uuid, integer),
                    orders.vip_customers(text, text) TO %I', authenticated_role);

    INSERT INTO orders.api_roles (role_oid, kind)
    VALUES (anon_role::regrole, 'anon'), (authenticated_role::regrole, 'authenticated')
    ON CONFLICT (role_oid) DO UPDATE SET kind = EXCLUDED.kind
        WHERE orders.api_roles.kind IS DISTINCT FROM EXCLUDED.kind;
END
$$;

-- Installations that scheduled the 0.8.0 jobs get the new purges too.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
        IF EXISTS (SELECT FROM cron.job j
                    WHERE j.jobname = 'orders-cleanup-expired-holds'
                      AND j.database = pg_catalog.current_database()) THEN
            PERFORM orders.schedule_jobs();
        END IF;
    END IF;
END
$$;
