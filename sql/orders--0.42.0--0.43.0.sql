-- orders 0.42.0 -> 0.43.0 (three test rounds: time and clocks, cost
-- amplification by one API caller, money and numbers)
--  * The business day (orders.business_date(), orders.business_timezone(),
--    new; C): today in the TimeZone the database configures for the
--    session (server, database, role, login options), not the one the
--    session SETs — an API client picks that (PostgREST's "Prefer:
--    timezone"): a payment collected from UTC+14 was dated tomorrow, its
--    refund from UTC-12 yesterday.  The ledger's and expenses' date default
--    to it; todays_order_summary, order_summary's days_remaining and
--    order_stats() count by it (and, library, an order number's year).
--  * A customer's new order is in the shop's currency, the default of
--    orders.currency (orders.default_currency(), new; C): OR060 for
--    another — a 100.00 lamp was bought for 100 VND (order_columns_guard).
--  * A customer's cart is staff's once they priced the order (an
--    adjustment other than 0; customer_cart_item, and library, the locked
--    re-check): a discount of 50 on 500 stayed 50 when the customer cut its
--    items to 100.
--  * A site's metrics.price is in cents (orders.site_price_valid, new: the
--    one rule of site_price_check — its trigger recreated — and
--    complete_analysis): 12.345 made an item of 12.35, 0.004 a free one.
--    (library) A shop webhook's amount in fractions of a cent is refused
--    (22003, logged, 422), not rounded.
--  * Purges refuse an older_than whose cutoff is after now — also a span
--    mixing signs, '-1 mon +30 days 1 hour', which deleted everything — or
--    out of range (22023, was 22008): orders.purge_cutoff (new), used by
--    purge_webhook_logs, purge_outbox, purge_activity_logs.
--  * A request to no active webhook (404) is answered, not logged
--    (webhook_ingest): anybody could add rows to nobody's log.
--  * webhook_time reads a time without an offset as UTC (WooCommerce's
--    date_modified_gmt was read in the session's zone: in a spring-forward
--    hour an hour late, and the shop's cancellation answered "stale").
--  * Share links last expires_in from when they are made (clock), not from
--    the transaction's start (create_share_token).
--  * Scheduled workflows: a schedule naming its hours runs once per local
--    time (the repeated fall-back hour ran a daily job twice), and a time
--    the spring-forward skips runs an hour later (orders.schedule_due, new;
--    run_scheduled_workflow); create_task counts due days in the workflow's
--    zone, else the business day (workflow_task_step, execute_workflow).
--  * (library only) reserve_time_slot reads the clock once the slot is
--    locked; through the API a holder who is not staff holds and has
--    booked ahead at most orders.hold_places (new setting, 20) places —
--    live holds, and bookings of orders the shop has not taken on (OR034;
--    the holder's keyed lock taken after the slot's); TimeZone's numeric
--    and INTERVAL spellings are read as the setting reads them;
--    review_sites refuses more than 10,000 entries (22023) and finds twins
--    by sorting; an order_status workflow does not fire again when only the
--    total rose to the minimum again in statuses it already ran in.
\echo Use "ALTER EXTENSION orders UPDATE TO '0.43.0'" to load this file. \quit

CREATE FUNCTION orders.default_currency() RETURNS text
    LANGUAGE c STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'orders_default_currency';
COMMENT ON FUNCTION orders.default_currency() IS
    'The shop''s currency: the default of orders.orders.currency; a customer''s new order is in it (0.43.0)';

CREATE FUNCTION orders.site_price_valid(price jsonb) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN jsonb_typeof(price) = 'number'
            THEN price::numeric BETWEEN 0 AND 9999999999.99 AND price::numeric = round(price::numeric, 2)
            ELSE coalesce(jsonb_typeof(price), 'null') = 'null' END;
-- the trigger's new rule, its DBA's setting kept (disabled, or dropped)
DO $upgrade$
DECLARE
    was "char";
BEGIN
    SELECT tgenabled INTO was FROM pg_catalog.pg_trigger
     WHERE tgrelid = 'orders.order_site_selections'::pg_catalog.regclass AND tgname = 'site_price_check';
    IF was IS NOT NULL THEN         -- dropped by a DBA: left dropped
        CREATE OR REPLACE TRIGGER site_price_check BEFORE INSERT OR UPDATE OF metrics ON orders.order_site_selections
            FOR EACH ROW WHEN (NOT orders.site_price_valid(NEW.metrics -> 'price'))
            EXECUTE FUNCTION orders.site_price_check();
        IF was <> 'O' THEN
            EXECUTE pg_catalog.format('ALTER TABLE orders.order_site_selections %s TRIGGER site_price_check',
                                      CASE was WHEN 'A' THEN 'ENABLE ALWAYS' WHEN 'R' THEN 'ENABLE REPLICA'
                                               ELSE 'DISABLE' END);
        END IF;
    END IF;
END
$upgrade$;

CREATE FUNCTION orders.business_date() RETURNS date
    LANGUAGE c STABLE PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'orders_business_date';
COMMENT ON FUNCTION orders.business_date() IS
    'Today (at the transaction''s start) in the database''s configured time zone (orders.business_timezone()), whatever the session SETs';
CREATE FUNCTION orders.business_timezone() RETURNS text
    LANGUAGE c STABLE PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'orders_business_timezone';
COMMENT ON FUNCTION orders.business_timezone() IS
    'The time zone business days are counted in: TimeZone as configured for the session (server, database, role, login), not as SET';

ALTER TABLE orders.financial_transactions ALTER COLUMN date SET DEFAULT orders.business_date();
ALTER TABLE orders.expenses ALTER COLUMN date SET DEFAULT orders.business_date();

CREATE OR REPLACE VIEW orders.todays_order_summary WITH (security_invoker = true) AS
SELECT count(*)::integer AS orders_today,
       (count(*) FILTER (WHERE s.category = 'fulfilled'))::integer AS delivered_count,
       coalesce(sum(o.total_amount) FILTER (WHERE s.category = 'fulfilled' AND o.payment_status = 'collected'), 0.00)
           AS collected_amount,
       coalesce(sum(o.total_amount) FILTER (WHERE s.category = 'fulfilled' AND o.payment_status = 'pending'), 0.00)
           AS pending_amount,
       (count(*) FILTER (WHERE s.category = 'cancelled'))::integer AS cancelled_count,
       (count(*) FILTER (WHERE s.category = 'returned'))::integer AS returned_count
  FROM orders.orders o
  JOIN orders.lifecycle_states s ON s.lifecycle = o.lifecycle AND s.status = o.status
 WHERE o.created_at >= orders.business_date()::timestamp AT TIME ZONE orders.business_timezone()
   AND o.created_at < (orders.business_date() + 1)::timestamp AT TIME ZONE orders.business_timezone();
COMMENT ON VIEW orders.todays_order_summary IS 'Dashboard: today''s orders by outcome (seed 004 query 5); (0.43.0) today is the business day (orders.business_date())';

CREATE OR REPLACE VIEW orders.order_summary WITH (security_invoker = true) AS
SELECT o.id, o.order_number, o.customer_id, c.full_name AS client_name, o.name, o.status,
       o.leads_purchased, o.leads_delivered, o.leads_remaining,
       o.target_delivery_date, o.start_date, o.completion_date,
       CASE WHEN o.leads_purchased > 0
            THEN round(o.leads_delivered::numeric / o.leads_purchased * 100, 1)
            ELSE 0.0 END AS completion_percentage,
       o.target_delivery_date - orders.business_date() AS days_remaining,
       o.priority, o.created_at, o.updated_at
  FROM orders.orders o
  JOIN orders.customers c ON c.id = o.customer_id
 WHERE o.lifecycle = 'campaign' OR o.leads_purchased > 0;

CREATE OR REPLACE FUNCTION orders.order_stats()
    RETURNS TABLE (total bigint, active bigint, overdue bigint,
                   near_capacity bigint, completed_this_month bigint)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT count(*),
           count(*) FILTER (WHERE o.status = 'active'),
           count(*) FILTER (WHERE s.category = 'open' AND o.target_delivery_date < orders.business_date()),
           count(*) FILTER (WHERE s.category = 'open' AND o.leads_purchased > 0
                              AND o.leads_delivered::bigint * 10 >= o.leads_purchased::bigint * 9),
           count(*) FILTER (WHERE s.category = 'fulfilled'
                              AND o.completed_at >= date_trunc('month', orders.business_date()::timestamp)
                                                      AT TIME ZONE orders.business_timezone())
      FROM orders.orders o
      JOIN orders.lifecycle_states s ON s.lifecycle = o.lifecycle AND s.status = o.status
     WHERE o.lifecycle = 'campaign' OR o.leads_purchased > 0;
END;

CREATE FUNCTION orders.schedule_due(schedule text, timezone text, at timestamptz)
    RETURNS timestamp
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT CASE WHEN orders.schedule_matches(schedule, l) THEN l
                WHEN ((l - interval '1 hour') AT TIME ZONE timezone) AT TIME ZONE timezone <> l - interval '1 hour'
                     AND orders.schedule_matches(schedule, l - interval '1 hour') THEN l - interval '1 hour' END
      FROM (SELECT date_trunc('minute', at) AT TIME ZONE timezone AS l) x;
END;
REVOKE ALL ON FUNCTION orders.schedule_due(text, text, timestamptz) FROM PUBLIC;


CREATE FUNCTION orders.purge_cutoff(caller text, older_than interval) RETURNS timestamptz
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cutoff timestamptz;
BEGIN
    IF older_than IS NULL THEN
        RAISE EXCEPTION '%: older_than must not be NULL', caller USING ERRCODE = '22004';
    END IF;
    BEGIN
        cutoff := now() - older_than;
    EXCEPTION WHEN datetime_field_overflow THEN
        RAISE EXCEPTION '%: older_than (%) puts the cutoff outside the times a timestamp holds', caller, older_than
            USING ERRCODE = '22023';
    END;
    IF cutoff > now() THEN
        RAISE EXCEPTION '%: older_than must not be negative (%)', caller, older_than
            USING ERRCODE = '22023', DETAIL = format('It puts the cutoff at %s, after now.', cutoff);
    END IF;
    RETURN cutoff;
END
$$;

CREATE OR REPLACE FUNCTION orders.purge_webhook_logs(older_than interval DEFAULT '90 days')
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

CREATE OR REPLACE FUNCTION orders.purge_activity_logs(older_than interval DEFAULT '365 days')
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
    cutoff timestamptz := orders.purge_cutoff('orders.purge_activity_logs', older_than);
BEGIN
    DELETE FROM orders.activity_logs l WHERE l.created_at < cutoff;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

CREATE OR REPLACE FUNCTION orders.purge_outbox(older_than interval DEFAULT '30 days')
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
    cutoff timestamptz := orders.purge_cutoff('orders.purge_outbox', older_than);
BEGIN
    DELETE FROM orders.outbox o WHERE coalesce(o.done_at, o.dead_at) < cutoff;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
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
    VALUES (create_share_token.order_id, sha256(convert_to(token, 'UTF8')), clock_timestamp() + expires_in,
            coalesce(create_share_token.allowed_actions, '{view}'), orders.current_actor(),
            coalesce(create_share_token.metadata, '{}'));
    RETURN token;
END
$$;

CREATE OR REPLACE FUNCTION orders.webhook_time(value text)
    RETURNS timestamptz
    LANGUAGE sql STABLE
RETURN CASE WHEN value ~ '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?)? ?(Z|z|[+-](0[0-9]|1[0-5])(:?[0-5][0-9])?)?$'
                 AND substr(value, 1, 4) <> '0000'
                 AND substr(value, 9, 2)::integer
                     <= extract(day FROM make_date(substr(value, 1, 4)::integer, substr(value, 6, 2)::integer, 1)
                                         + interval '1 month - 1 day')
            THEN CASE WHEN value ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9:.]+)? ?(Z|z|[+-][0-9:]+)$' THEN value::timestamptz
                      ELSE value::timestamp AT TIME ZONE 'UTC' END END;

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
    local := orders.schedule_due(w.trigger_config ->> 'schedule', tz, minute);
    IF local IS NULL THEN
        RETURN NULL;
    END IF;
    -- one run per minute: concurrent calls wait here, then see the first run
    due := to_char(minute AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI"Z"');
    PERFORM orders.xact_lock(hashtextextended('orders.run_scheduled_workflow ' || w.id || ' ' || due, 0));
    -- (0.43.0) and once per local time when the schedule names its hours:
    -- in the hour a fall-back repeats, a daily 01:30 matched twice (two
    -- minutes of UTC); an hourly schedule runs in both real hours
    IF EXISTS (SELECT 1 FROM orders.workflow_executions e
                WHERE e.workflow_id = w.id AND e.trigger_event ? 'scheduled_for'
                  AND (e.trigger_event ->> 'scheduled_for' = due
                       OR ((regexp_split_to_array(btrim(w.trigger_config ->> 'schedule'), '\s+'))[2] !~ '^[*]'
                           AND e.trigger_event -> 'local_time' = to_jsonb(local)
                           AND e.trigger_event ->> 'timezone' = tz))) THEN
        RETURN NULL;
    END IF;
    exec_id := orders.execute_workflow(w.id, NULL, NULL,
        jsonb_build_object('event', 'schedule', 'scheduled_for', due, 'local_time', local, 'timezone', tz));
    RETURN CASE WHEN EXISTS (SELECT 1 FROM orders.workflow_executions e WHERE e.id = exec_id) THEN exec_id END;
END
$$;

CREATE OR REPLACE FUNCTION orders.workflow_task_step(config jsonb, ctx jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- (0.39.0) through numeric: 3.0 passes check_workflow_steps as a whole
    -- number, and as text it failed every run (22P02)
    -- (0.43.0) days from today in the workflow's time zone (a schedule's),
    -- else the business day: the session's date was yesterday in Tokyo
    due date := CASE WHEN config ? 'due_days'
                     THEN coalesce((now() AT TIME ZONE (ctx ->> 'timezone'))::date, orders.business_date())
                          + (config ->> 'due_days')::numeric::integer END;
    n integer;
BEGIN
    IF config ->> 'assigned_to' IN ('assigned_rep', 'assigned_agent') AND ctx ->> 'order_id' IS NULL THEN
        RAISE EXCEPTION 'create_task for the % needs an order', config ->> 'assigned_to' USING ERRCODE = 'OR116';
    END IF;
    INSERT INTO orders.notifications (user_id, type, title, message, data)
    SELECT s.id, 'workflow', left(orders.workflow_render(config ->> 'title', ctx -> 'data'), 200),
           left(orders.workflow_render(config ->> 'message', ctx -> 'data'), 2000),
           ctx -> 'data' || jsonb_strip_nulls(jsonb_build_object('task', true, 'due_date', due,
                                              'workflow_id', ctx ->> 'workflow_id', 'execution_id', ctx ->> 'execution_id'))
      FROM orders.workflow_recipients(config ->> 'assigned_to', (ctx ->> 'order_id')::uuid) s;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        RAISE EXCEPTION 'create_task: % names no active staff member', config ->> 'assigned_to' USING ERRCODE = 'OR117';
    END IF;
    RETURN jsonb_strip_nulls(jsonb_build_object('tasks', n, 'due_date', due));
END
$$;

CREATE OR REPLACE FUNCTION orders.execute_workflow(workflow_id uuid, order_id uuid, customer_id uuid, trigger_event jsonb)
    RETURNS uuid
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w orders.workflows%ROWTYPE;
    o orders.orders%ROWTYPE;
    exec_id uuid := orders.new_id();
    ctx jsonb;
    step jsonb;
    sid text;
    started timestamptz := clock_timestamp();
    step_started timestamptz;
    output jsonb;
    done jsonb := '[]';
    errors jsonb := '[]';
    depth integer := CASE WHEN current_setting('orders_workflow.depth', true) ~ '^[0-9]{1,2}$'
                          THEN current_setting('orders_workflow.depth', true)::integer ELSE 0 END;
    -- (0.39.0) the runs one top-level run started, at any depth: customer_tag
    -- workflows that remove and add their own tag fanned out exponentially
    -- (two adds per run, 8 deep: 512 runs; three: over two minutes)
    nested integer := CASE WHEN current_setting('orders_workflow.nested', true) ~ '^[0-9]{1,9}$'
                           THEN current_setting('orders_workflow.nested', true)::integer ELSE 0 END;
    e_code text;
    e_msg text;
    e_detail text;
    e_hint text;
    refusal text;
BEGIN
    -- the workflow as this transaction sees it, kept from being deleted
    -- until the run is stored: one deleted, deactivated or created after
    -- the transaction's snapshot does not run
    SELECT * INTO w FROM orders.workflows x
     WHERE x.id = execute_workflow.workflow_id AND x.is_active
       FOR KEY SHARE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF order_id IS NOT NULL THEN
        SELECT * INTO o FROM orders.orders x WHERE x.id = execute_workflow.order_id;
        customer_id := coalesce(customer_id, o.customer_id);
    END IF;
    ctx := jsonb_build_object(
        'execution_id', exec_id, 'workflow_id', w.id, 'workflow_name', w.name,
        'order_id', order_id, 'customer_id', customer_id,
        -- (0.43.0) a time-based workflow's zone: create_task counts its due days there
        'timezone', w.trigger_config ->> 'timezone',
        'data', jsonb_strip_nulls(jsonb_build_object(
            'order_id', order_id, 'order_number', o.order_number, 'status', o.status,
            'payment_status', o.payment_status, 'total_amount', o.total_amount, 'currency', o.currency,
            'customer_id', customer_id,
            -- (0.37.0) at most 200 characters: a customer's 1.9 MB name went into
            -- every notification and outbox message of its workflows
            'customer_name', (SELECT left(c.full_name, 200) FROM orders.customers c WHERE c.id = customer_id),
            'workflow', w.name)));
    nested := CASE WHEN depth = 0 THEN 0 ELSE nested + 1 END;
    PERFORM set_config('orders_workflow.nested', nested::text, true);
    IF nested > 65 THEN
        RETURN NULL;        -- the 65th was stored failed: the rest neither run nor write
    END IF;
    refusal := CASE WHEN depth < 8 AND nested <= 64 THEN
                   orders.workflow_author_refusal(w.created_by_user_id, order_id, customer_id,
                                                  w.workflow_steps @? '$[*] ? (@.type == "update_customer_tag")') END;
    IF depth >= 8 THEN
        errors := jsonb_build_array(jsonb_build_object(
            'step_id', NULL, 'error', 'workflow runs nested more than 8 deep (a workflow loop?)',
            'error_code', 'OR118', 'timestamp', clock_timestamp()));
    ELSIF nested > 64 THEN
        errors := jsonb_build_array(jsonb_build_object(
            'step_id', NULL, 'error', 'one workflow run started more than 64 others (a workflow loop?)',
            'error_code', 'OR118', 'timestamp', clock_timestamp()));
    ELSIF refusal IS NOT NULL THEN
        -- (0.38.0) its author may not run it now: no step runs
        errors := jsonb_build_array(jsonb_build_object(
            'step_id', NULL, 'error', format('workflow "%s" did not run: %s', left(w.name, 64), refusal),
            'error_code', '42501',
            'details', jsonb_build_object('author', w.created_by_user_id,
                                          'hint', 'An admin who changes the workflow becomes its author.'),
            'timestamp', clock_timestamp()));
    ELSE
        PERFORM set_config('orders_workflow.depth', (depth + 1)::text, true);
        -- a step without an id is "step-<its place in the list>", as validated
        FOR step IN SELECT s || jsonb_build_object('id', coalesce(s ->> 'id', 'step-' || i))
                      FROM jsonb_array_elements(w.workflow_steps) WITH ORDINALITY e(s, i)
                     ORDER BY (s ->> 'order')::numeric NULLS LAST, i LOOP
            sid := step ->> 'id';
            step_started := clock_timestamp();
            BEGIN
                output := CASE step ->> 'type'
                    WHEN 'update_customer_tag' THEN orders.workflow_tag_step(step -> 'config', customer_id)
                    WHEN 'send_notification' THEN orders.workflow_notify_step(step -> 'config', sid, ctx)
                    WHEN 'create_task' THEN orders.workflow_task_step(step -> 'config', ctx) END;
                done := done || jsonb_build_object(
                    'step_id', sid, 'status', CASE WHEN output ? 'skipped' THEN 'skipped' ELSE 'completed' END,
                    'started_at', step_started, 'completed_at', clock_timestamp(), 'output', output);
            EXCEPTION
                WHEN serialization_failure OR deadlock_detected OR lock_not_available THEN
                    RAISE;
                WHEN OTHERS THEN
                    GET STACKED DIAGNOSTICS e_code = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT,
                                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
                    errors := errors || jsonb_build_object(
                        'step_id', sid, 'error', left(e_msg, 1000), 'error_code', e_code,
                        'details', jsonb_strip_nulls(jsonb_build_object('detail', nullif(e_detail, ''), 'hint', nullif(e_hint, ''))),
                        'timestamp', clock_timestamp());
                    EXIT;
            END;
        END LOOP;
        PERFORM set_config('orders_workflow.depth', depth::text, true);
    END IF;
    INSERT INTO orders.workflow_executions (id, workflow_id, order_id, customer_id, status, trigger_event,
                                            steps_completed, error_log, started_at, completed_at)
    VALUES (exec_id, w.id, order_id, customer_id, CASE WHEN errors = '[]' THEN 'completed' ELSE 'failed' END,
            coalesce(trigger_event, '{}'), done, errors, started, clock_timestamp())
    ON CONFLICT DO NOTHING;
    RETURN exec_id;
END
$$;

CREATE OR REPLACE FUNCTION orders.site_price_check() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF orders.restoring(TG_RELID) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'site %: metrics.price % is not an amount', left(NEW.domain, 64), left((NEW.metrics -> 'price')::text, 64)
        USING ERRCODE = '22023',
              HINT = 'metrics.price is what the client pays for the site: a JSON number of cents from 0 to 9999999999.99 (or leave it out).';
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
    -- (0.39.0) a domain that normalises to no host name (a number, "a_b.com",
    -- "-x.org", "localhost", over 253 characters) failed the INSERT's check,
    -- 23514, without naming the suggestion
    SELECT x.v -> 'domain', x.n INTO bad, bad_n FROM jsonb_array_elements(suggestions) WITH ORDINALITY x (v, n)
     WHERE NOT (orders.normalize_domain(x.v ->> 'domain') ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$'
                AND length(orders.normalize_domain(x.v ->> 'domain')) <= 253)
     ORDER BY x.n LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'orders.complete_analysis: suggestion %: domain "%" is not a host name', bad_n, left(bad #>> '{}', 64)
            USING ERRCODE = '22023', HINT = 'A domain is a host name such as blog.example.com (letters, digits and hyphens, dot-separated).';
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
       AND NOT orders.site_price_valid(x.v -> 'metrics' -> 'price')
     ORDER BY x.n LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'orders.complete_analysis: suggestion %: metrics.price % is not an amount', bad_n, left(bad::text, 64)
            USING ERRCODE = '22023',
                  HINT = 'metrics.price is what the client pays for the site: a JSON number of cents from 0 to 9999999999.99.';
    END IF;
    IF NOT EXISTS (SELECT FROM orders.orders ord JOIN orders.order_groups og ON og.order_id = ord.id
                    WHERE og.id = complete_analysis.order_group_id) THEN
        PERFORM orders.group_not_found(complete_analysis.order_group_id);
    END IF;
    -- (0.37.0) a group deleted while the INSERT's foreign key waited for it
    -- is the group_not_found it would have been a moment earlier (was 23503)
    BEGIN
        INSERT INTO orders.order_site_selections (order_group_id, domain, domain_id, metrics)
        SELECT complete_analysis.order_group_id, orders.normalize_domain(s ->> 'domain'),
               (s ->> 'domain_id')::uuid, coalesce(nullif(s -> 'metrics', 'null'::jsonb), '{}')
          FROM jsonb_array_elements(suggestions) s
        ON CONFLICT ON CONSTRAINT order_site_selections_order_group_id_domain_key DO NOTHING;
    EXCEPTION WHEN foreign_key_violation THEN
        PERFORM orders.group_not_found(complete_analysis.order_group_id);
    END;
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

CREATE OR REPLACE FUNCTION orders.customer_cart_item(order_id uuid, item_id uuid) RETURNS boolean
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN EXISTS (SELECT FROM orders.orders o JOIN orders.lifecycles l ON l.name = o.lifecycle
                    WHERE o.id = customer_cart_item.order_id
                      AND o.customer_id = ANY (orders.current_customer_ids())
                      AND o.status = l.initial_status AND o.adjustment = 0)
       AND NOT EXISTS (SELECT FROM orders.order_site_selections x WHERE x.order_item_id = customer_cart_item.item_id);
END
$$;

CREATE OR REPLACE FUNCTION orders.order_columns_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    staff_only constant jsonb := '{"priority": 0, "delivery_fee": 0, "total_amount": 0, "adjustment": 0,
        "payment_status": "pending", "assigned_rep_id": null, "assigned_agent_id": null,
        "webhook_source": null, "delivery_proof": null, "leads_purchased": 0, "external_id": null}';
    stamps constant text[] := '{confirmed_at,started_at,paused_at,reviewed_at,paid_at,shipped_at,delivered_at,
        returned_at,completed_at,cancelled_at,review_completed_at,reviewed_by}';
    -- (0.29.0) customer_id: an agent moved its order to another customer, whom it then read
    agent_fixed constant text[] := '{total_amount,adjustment,delivery_fee,currency,leads_purchased,source,customer_id,payment_method}';
    new_row jsonb;
    old_row jsonb;
    col text;
    role text;
BEGIN
    IF orders.by_maintainer(TG_RELID) OR NOT orders.api_request() THEN
        RETURN NEW;				-- before any work: every INSERT of an order comes here
    END IF;
    new_row := to_jsonb(NEW);
    old_row := CASE WHEN TG_OP = 'UPDATE' THEN to_jsonb(OLD) ELSE staff_only END;
    FOREACH col IN ARRAY stamps LOOP
        IF new_row -> col IS DISTINCT FROM (CASE WHEN TG_OP = 'UPDATE' THEN old_row -> col ELSE 'null' END) THEN
            PERFORM orders.refuse_column('orders.orders', col, 'the lifecycle''s edges (orders.transition)');
        END IF;
    END LOOP;
    role := orders.current_staff_role();
    -- (an INSERT of an order that exists — an upsert, which sends the row as
    -- it was read — is judged by its conflict action's UPDATE, if any; the
    -- row is locked FOR KEY SHARE: one being deleted is waited for, and gone,
    -- the INSERT is judged — a customer's insert racing a delete of the same
    -- id stored a forbidden value)
    IF (new_row -> 'metadata' -> 'webhook' IS DISTINCT FROM (CASE WHEN TG_OP = 'UPDATE' THEN old_row -> 'metadata' -> 'webhook' END)
        OR (NEW.created_at IS DISTINCT FROM (CASE WHEN TG_OP = 'UPDATE' THEN OLD.created_at ELSE now() END)
            AND (role IS NULL OR role NOT IN ('admin', 'manager')
                 OR NOT orders.has_permission('orders', CASE TG_OP WHEN 'INSERT' THEN 'create' ELSE 'edit' END))))
       AND (TG_OP = 'UPDATE' OR NOT EXISTS (SELECT FROM orders.orders o WHERE o.id = NEW.id OR o.order_number = NEW.order_number
                                            FOR KEY SHARE)) THEN
        IF new_row -> 'metadata' -> 'webhook' IS DISTINCT FROM (CASE WHEN TG_OP = 'UPDATE' THEN old_row -> 'metadata' -> 'webhook' END) THEN
            PERFORM orders.refuse_column('orders.orders', 'metadata', 'the webhook ingest (its key "webhook")');
        END IF;
        PERFORM orders.refuse_column('orders.orders', 'created_at', 'admins and managers (an import of past orders)');
    END IF;
    -- (0.29.0) staff without the right to this write reach the order only as
    -- its customer (a staff member may be a customer too): a customer's
    -- rules — an accountant placed its own order "collected" with total 0
    IF role IS NULL OR NOT orders.has_permission('orders', CASE TG_OP WHEN 'INSERT' THEN 'create' ELSE 'edit' END) THEN
        FOR col IN SELECT jsonb_object_keys(staff_only) LOOP
            IF new_row -> col IS DISTINCT FROM old_row -> col THEN
                PERFORM orders.refuse_column('orders.orders', col, 'staff');
            END IF;
        END LOOP;
        IF NEW.source NOT IN ('manual', 'api')
           AND NEW.source IS DISTINCT FROM (CASE WHEN TG_OP = 'UPDATE' THEN OLD.source END) THEN
            PERFORM orders.refuse_column('orders.orders', 'source', 'staff');
        END IF;
        IF TG_OP = 'UPDATE' AND NEW.currency IS DISTINCT FROM OLD.currency THEN
            PERFORM orders.refuse_column('orders.orders', 'currency', 'staff');
        -- (0.43.0) nor chosen for a new order: the catalog's prices are the
        -- shop's currency's (a customer bought a 100.00 lamp for 100 VND)
        ELSIF TG_OP = 'INSERT' AND NEW.currency IS DISTINCT FROM orders.default_currency() THEN
            PERFORM orders.refuse_column('orders.orders', 'currency', 'staff (a customer''s order is in the shop''s currency, the column''s default)');
        END IF;
        -- (0.38.0) where it goes is the customer's until it has left or is
        -- closed: a customer changed the address of a delivered order;
        -- (0.39.0) how it is paid likewise, and not once paid
        IF TG_OP = 'UPDATE' AND (OLD.shipped_at IS NOT NULL OR orders.status_category(OLD.lifecycle, OLD.status) <> 'open') THEN
            FOREACH col IN ARRAY ARRAY['delivery_address', 'delivery_area', 'payment_method'] LOOP
                IF new_row -> col IS DISTINCT FROM old_row -> col THEN
                    PERFORM orders.refuse_column('orders.orders', col, 'staff once the order has shipped or is closed');
                END IF;
            END LOOP;
        END IF;
        IF TG_OP = 'UPDATE' AND OLD.payment_status IN ('collected', 'refunded')
           AND NEW.payment_method IS DISTINCT FROM OLD.payment_method THEN
            PERFORM orders.refuse_column('orders.orders', 'payment_method', 'staff once the payment is collected');
        END IF;
        RETURN NEW;
    END IF;
    IF role NOT IN ('admin', 'manager') THEN
        FOREACH col IN ARRAY ARRAY['external_id', 'webhook_source'] LOOP
            IF new_row -> col IS DISTINCT FROM old_row -> col THEN
                PERFORM orders.refuse_column('orders.orders', col, 'admins and managers');
            END IF;
        END LOOP;
    END IF;
    IF role = 'delivery_agent' AND TG_OP = 'UPDATE' THEN
        FOREACH col IN ARRAY agent_fixed LOOP
            IF new_row -> col IS DISTINCT FROM old_row -> col THEN
                PERFORM orders.refuse_column('orders.orders', col, 'staff other than delivery agents');
            END IF;
        END LOOP;
        IF NEW.payment_status IS DISTINCT FROM OLD.payment_status
           AND NOT (OLD.payment_status IN ('pending', 'failed') AND NEW.payment_status IN ('pending', 'failed', 'collected')) THEN
            PERFORM orders.refuse_column('orders.orders', 'payment_status',
                                         'staff other than delivery agents (an agent collects, fails or retries a payment not yet collected)');
        END IF;
    END IF;
    IF (new_row -> 'assigned_rep_id', new_row -> 'assigned_agent_id')
          IS DISTINCT FROM (old_row -> 'assigned_rep_id', old_row -> 'assigned_agent_id')
          AND NOT orders.has_permission('orders', 'assign') THEN
        PERFORM orders.refuse_column('orders.orders',
            CASE WHEN new_row -> 'assigned_rep_id' IS DISTINCT FROM old_row -> 'assigned_rep_id'
                 THEN 'assigned_rep_id' ELSE 'assigned_agent_id' END, 'staff with permission orders.assign');
    END IF;
    RETURN NEW;
END
$$;
