
---------------------------------------------------------------------------
-- Orders from shop webhooks (issue 12, seed 004; doc/webhooks.md): a
-- Shopify, WooCommerce or custom order webhook becomes a customer, an order
-- in its lifecycle's initial status and its items, verified (HMAC-SHA256 in
-- C, src/webhook_signature.c) and exactly once per delivery and per shop
-- order, whoever calls orders.ingest_webhook.  Every request is logged.
---------------------------------------------------------------------------

CREATE TABLE orders.webhooks (
    id             uuid PRIMARY KEY DEFAULT orders.new_id(),
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
                                AND (defaults ->> 'max_payload_bytes') ~ '^[0-9]{1,9}$'))
                       AND (defaults -> 'max_items' IS NULL
                            OR (jsonb_typeof(defaults -> 'max_items') = 'number'
                                AND (defaults ->> 'max_items') ~ '^[0-9]{1,6}$'))),
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
    'lifecycle, currency, priority, require_sku_match (boolean), max_payload_bytes (default 1 MB), max_items (default 500)';
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

-- (0.28.0) a webhook whose orders carry shop order ids is deactivated, not
-- deleted: its orders keep its endpoint (webhook_source), and a new webhook
-- made under that endpoint took them for its own (its shop's orders were
-- answered "duplicate" and never stored, its updates rewrote the other
-- shop's orders)
CREATE FUNCTION orders.webhook_keeps_orders() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT FROM orders.orders o WHERE o.webhook_source = OLD.endpoint AND o.external_id IS NOT NULL) THEN
        RAISE EXCEPTION 'webhook "%" has orders: deactivate it instead of deleting it', OLD.endpoint
            USING ERRCODE = 'OR096',
                  DETAIL = 'Its orders keep its endpoint; a new webhook with that endpoint would take them for its own.',
                  HINT = format('UPDATE orders.webhooks SET is_active = false WHERE endpoint = %L', OLD.endpoint);
    END IF;
    RETURN OLD;
END
$$;
CREATE TRIGGER webhook_keeps_orders BEFORE DELETE ON orders.webhooks
    FOR EACH ROW EXECUTE FUNCTION orders.webhook_keeps_orders();

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

CREATE TABLE orders.webhook_logs (
    id                uuid PRIMARY KEY DEFAULT orders.new_id(),
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
-- (0.45.0) the customers by that key: a delivery finds a customer whose
-- email staff wrote with capitals (Cara@Example.com) — it compared the
-- stored text and made a second customer.  An update that changes the
-- function rebuilds this index.
-- Every writer of customers computes it, so every role may execute it
-- (a pure function of its argument; 0.44.0 had it the owner's).
CREATE INDEX customers_email_key_idx ON orders.customers (orders.webhook_email_key(email));
GRANT EXECUTE ON FUNCTION orders.webhook_email_key(text) TO PUBLIC;

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
                    "notes": "note", "updated_at": "updated_at", "items": "line_items",
                    "cancelled": "cancelled_at"},
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
                    "notes": "customer_note", "updated_at": "date_modified_gmt", "items": "line_items",
                    "cancelled": "status = cancelled"},
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

-- webhook_time — a shop's ISO 8601 timestamp, or NULL when the value is
-- none (0.28.0: a create stored "14/03/2025 10:21:07" — or "2025-02-30…",
-- a day that does not exist — and every later update of the order failed
-- comparing with it, 422 until the shop gave up).  Its form and fields are
-- checked (the day within its month, the offset within ±15:59) before the
-- cast, which then cannot fail: no subtransaction.  One match without
-- captures (regexp_match with captures of this shape took 176 µs a call)
-- in a SQL-standard body (names bound when it is made: no search_path
-- reaches it, and no SET clause re-plans it at every call), not STRICT:
-- the planner then inlines it into the caller's statement (a NULL gives
-- NULL through the CASE) — called as a function it cost a plan a call.
-- (0.43.0) A time without an offset is UTC (WooCommerce's
-- date_modified_gmt): it was read in the session's TimeZone, and in a
-- zone's skipped spring-forward hour an hour late — a later update, or the
-- shop's cancellation, was then answered "stale" and lost.
CREATE FUNCTION orders.webhook_time(value text)
    RETURNS timestamptz
    LANGUAGE sql STABLE
RETURN CASE WHEN value ~ '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?)? ?(Z|z|[+-](0[0-9]|1[0-5])(:?[0-5][0-9])?)?$'
                 AND substr(value, 1, 4) <> '0000'
                 AND substr(value, 9, 2)::integer
                     <= extract(day FROM make_date(substr(value, 1, 4)::integer, substr(value, 6, 2)::integer, 1)
                                         + interval '1 month - 1 day')
            THEN CASE WHEN value ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9:.]+)? ?(Z|z|[+-][0-9:]+)$' THEN value::timestamptz
                      ELSE value::timestamp AT TIME ZONE 'UTC' END END;

---------------------------------------------------------------------------
-- webhook_ingest — the one implementation behind both entry points
-- (ingest_webhook, ingest_webhook_body), which run it as the owner: the
-- caller needs EXECUTE on an entry point only.  "doc" is the body parsed
-- (NULL, as both entry points pass it since 0.34.0: parsed here, after the
-- checks, and a body jsonb refuses is logged).  Order of work:
--   endpoint (404) → size (413) → signature (401) → JSON (400) → a
--   Shopify or WooCommerce topic whose payload is no order (200
--   "ignored": a refund) → — from here inside one subtransaction, so a
--   payload that cannot be mapped (422) or a wait that runs out (503)
--   leaves only its log row — one advisory lock per shop order (or
--   delivery) of this webhook, so two deliveries of one order never both
--   pass → duplicate by delivery id or shop order id (200, nothing
--   created; an orders/updated payload updates, never moves status) →
--   customer (by phone, else email, else created; an advisory lock per
--   phone/email) → order → items (by SKU: variant, then product) → the
--   webhook's workflows.
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
                        -- (0.45.0) by the stored email's key (customers_email_key_idx); of
                        -- two whose emails differ in capitals only, the one stored as the key
                        -- first — the shop's own customer, which 0.44.0 made beside a staff-
                        -- written one and which has the shop's orders
                        SELECT c.id INTO customer_id FROM orders.customers c
                         WHERE orders.webhook_email_key(c.email) = c_email AND c.account_id IS NULL
                         ORDER BY c.email = c_email DESC, c.created_at, c.id LIMIT 1;
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

-- hold_order_workflows / judge_order_workflows (C, src/workflows.c): the
-- ingest's order is judged for its order_status workflows once, at the end
-- of the ingest (0.29.0).  The owner's alone.
CREATE FUNCTION orders.hold_order_workflows() RETURNS void
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'orders_hold_order_workflows';
CREATE FUNCTION orders.judge_order_workflows(order_id uuid, status text, payment_status text, total numeric)
    RETURNS void
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'orders_judge_order_workflows';

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
-- PL/pgSQL, not SQL (0.13.0): a SQL function with SET is never inlined, and
-- its body was parsed, analysed and planned again on every delivery;
-- PL/pgSQL keeps the plan for the session (a few per cent of an ingest).
CREATE FUNCTION orders.ingest_webhook(endpoint text, payload json, signature text DEFAULT NULL,
                                      delivery_id text DEFAULT NULL, topic text DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- (0.34.0) the body is parsed as jsonb by webhook_ingest, after the
    -- size and signature checks: valid JSON that jsonb refuses — a \u0000
    -- escape, a lone surrogate, a number past numeric's range, nesting past
    -- the stack — is logged as malformed (400).  Parsed here before, it
    -- failed the call unlogged (all but \u0000), and an unsigned 1 MB body
    -- was parsed before its 413.
    RETURN orders.webhook_ingest(endpoint, payload::text, NULL, signature, delivery_id, topic);
END
$$;
COMMENT ON FUNCTION orders.ingest_webhook(text, json, text, text, text) IS
    'A shop''s order webhook becomes a customer, an order and its items: verified, exactly once, logged (doc/webhooks.md)';

-- ingest_webhook_body — the same for a body that may not be JSON (an edge
-- function or worker passing bytes on): a malformed body is logged (400).
CREATE FUNCTION orders.ingest_webhook_body(endpoint text, body text, signature text DEFAULT NULL,
                                           delivery_id text DEFAULT NULL, topic text DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN orders.webhook_ingest(endpoint, body, NULL, signature, delivery_id, topic);
END
$$;
COMMENT ON FUNCTION orders.ingest_webhook_body(text, text, text, text, text) IS
    'orders.ingest_webhook for a body that may not be JSON: the same, and a malformed body is logged (400)';

-- webhook_placement — where a delivery belongs when the orders live on
-- several nodes (issue 15, doc/scale-out.md): asked of every node by the
-- proxy's ingest_webhook before it routes the delivery.  {"known": true}
-- when this node has the shop order the payload names (or, for a payload
-- without one, a successful delivery with its delivery id) — the delivery
-- goes there; "route": a hash of the customer's phone, else of its
-- lower-cased email, the same on every node (the mapping is reference
-- data) — where a new customer's order goes, so the deliveries of one order
-- meet on one node and its locks and unique index keep them exactly once.
-- A request ingest_webhook would refuse (no such webhook, too large, not
-- JSON, unsigned or wrongly signed when the webhook has a secret) is known
-- nowhere and has no route: it goes to partition 0, whose node logs the
-- refusal.  It only reads, and answers nothing about a signed webhook to
-- a caller without its signature.
CREATE FUNCTION orders.webhook_placement(endpoint text, payload json, signature text DEFAULT NULL,
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
COMMENT ON FUNCTION orders.webhook_placement(text, json, text, text) IS
    'Where a delivery belongs on a cluster of nodes: known here (the shop order is on this node), and a route hash of the customer (doc/scale-out.md)';

-- purge_webhook_logs — delete log rows older than "older_than"; the number deleted.
CREATE FUNCTION orders.purge_webhook_logs(older_than interval DEFAULT '90 days')
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
    cutoff timestamptz := orders.purge_cutoff('orders.purge_webhook_logs', older_than);
BEGIN
    DELETE FROM orders.webhook_logs l WHERE l.created_at < cutoff;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

SELECT pg_catalog.pg_extension_config_dump('orders.webhooks', '');
SELECT pg_catalog.pg_extension_config_dump('orders.webhook_logs', '');

-- written by the owner only; callers need EXECUTE on the entry points
-- alone.  (0.41.0) Read by staff with webhooks.view (admins and managers by
-- default): the webhooks without their secret (grant_api grants the other
-- columns), the logs whole — an admin's screen of failed deliveries
ALTER TABLE orders.webhooks ENABLE ROW LEVEL SECURITY;
ALTER TABLE orders.webhook_logs ENABLE ROW LEVEL SECURITY;
CREATE POLICY staff_read ON orders.webhooks FOR SELECT USING ((SELECT orders.has_permission('webhooks', 'view')));
CREATE POLICY staff_read ON orders.webhook_logs FOR SELECT USING ((SELECT orders.has_permission('webhooks', 'view')));
REVOKE ALL ON orders.webhooks, orders.webhook_logs FROM PUBLIC;
REVOKE ALL ON FUNCTION orders.hold_order_workflows(), orders.judge_order_workflows(uuid, text, text, numeric) FROM PUBLIC;
REVOKE ALL ON FUNCTION orders.webhook_signature_ok(text, text, text), orders.webhook_endpoint_renamed(), orders.webhook_insert_items(uuid, jsonb),
                       orders.webhook_keeps_orders(),
                       orders.webhook_ingest(text, text, jsonb, text, text, text),
                       orders.purge_webhook_logs(interval),
                       -- (0.35.0) the owner's: an anonymous call of webhook_value
                       -- joined a 1 MB value 1,000 times ("a + a + …": 1 GB)
                       orders.webhook_value(jsonb, text), orders.webhook_amount(jsonb, text),
                       orders.webhook_time(text),
                       -- (0.44.0)
                       orders.webhook_phone_key(text), orders.webhook_defaults_check(),
                       orders.webhooks_truncate_guard() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orders.ingest_webhook(text, json, text, text, text),
                          orders.ingest_webhook_body(text, text, text, text, text),
                          orders.webhook_placement(text, json, text, text),
                          orders.webhook_mapping(text) TO PUBLIC;
