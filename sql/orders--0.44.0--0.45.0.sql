-- orders 0.44.0 -> 0.45.0
--  * Retention for the two tables that only grew: orders.purge_notifications
--    (older_than DEFAULT '180 days', read or not) and
--    orders.purge_workflow_executions (older_than DEFAULT '90 days'; a
--    time-based workflow's runs of the last two days stay), both owner
--    only, checked by orders.purge_cutoff as the other purges; cron_jobs()
--    lists them as the daily jobs orders-purge-notifications (03:47) and
--    orders-purge-workflow-executions (03:57) — run
--    orders.schedule_jobs() again to register them.
--  * orders.purge_retention (new table, the owner's): how long a nightly
--    purge keeps rows where not its default; cron_jobs() writes it into
--    the job's call, so schedule_jobs() keeps it (a DBA's changed job was
--    registered again with the default after every update).
--  * orders.erase_customer(customer_id): a customer who asked to be
--    forgotten, erased in one call of the owner's (personal data
--    overwritten or deleted, orders and money kept; OR123 while an order
--    of theirs is open).
--  * Shop webhooks find a customer by the stored email's key
--    (orders.webhook_email_key of it, new index customers_email_key_idx),
--    not by the stored text: a customer whose email staff wrote with
--    capitals was not found, and the delivery made a second customer.
--    webhook_ingest is replaced; webhook_email_key is PUBLIC (every writer
--    of customers computes the index).
--  * (library) A hold confirmed or released in the transaction that made
--    it leaves out the check of its foreign key to the slot, which it has
--    locked itself (reserve + confirm in one transaction: 1.48x -> 1.83x the
--    PL/pgSQL seed).
\echo Use "ALTER EXTENSION orders UPDATE TO '0.45.0'" to load this file. \quit

CREATE OR REPLACE FUNCTION orders.purge_notifications(older_than interval DEFAULT '180 days')
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
    cutoff timestamptz := orders.purge_cutoff('orders.purge_notifications', older_than);
BEGIN
    DELETE FROM orders.notifications x WHERE x.created_at < cutoff;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

CREATE OR REPLACE FUNCTION orders.purge_workflow_executions(older_than interval DEFAULT '90 days')
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
    cutoff timestamptz := orders.purge_cutoff('orders.purge_workflow_executions', older_than);
BEGIN
    DELETE FROM orders.workflow_executions x
     WHERE x.started_at < cutoff
       AND NOT (x.trigger_event ? 'scheduled_for' AND x.started_at >= now() - interval '2 days');
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- (0.45.0) purge_retention — how long a nightly purge keeps its rows where
-- the shop wants other than the function's default: cron_jobs() writes it
-- into the job's call, so that schedule_jobs() — run again after every
-- update — keeps it (a job a DBA had changed or replaced was registered
-- again with the default, and the next night deleted what was to be
-- kept).  Checked as the purges check their argument (purge_cutoff).  The
-- owner's; dumped with the data.
CREATE TABLE orders.purge_retention (
    purge       text PRIMARY KEY
                CHECK (purge IN ('webhook_logs', 'outbox', 'activity_logs', 'notifications', 'workflow_executions')),
    older_than  interval NOT NULL
);
COMMENT ON TABLE orders.purge_retention IS
    'How long each nightly purge keeps rows, where not its default (purge: webhook_logs, outbox, activity_logs, notifications, workflow_executions); run orders.schedule_jobs() after a change';
CREATE FUNCTION orders.check_purge_retention() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM orders.purge_cutoff('orders.purge_retention (' || NEW.purge || ')', NEW.older_than);
    RETURN NEW;
END
$$;
CREATE TRIGGER check_purge_retention BEFORE INSERT OR UPDATE ON orders.purge_retention
    FOR EACH ROW EXECUTE FUNCTION orders.check_purge_retention();
SELECT pg_catalog.pg_extension_config_dump('orders.purge_retention', '');
ALTER TABLE orders.purge_retention ENABLE ROW LEVEL SECURITY;   -- no policy: nobody but its owner
REVOKE ALL ON orders.purge_retention FROM PUBLIC;
REVOKE ALL ON FUNCTION orders.check_purge_retention() FROM PUBLIC;

CREATE OR REPLACE FUNCTION orders.cron_jobs()
    RETURNS TABLE (jobname text, schedule text, command text)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT 'orders-cleanup-expired-holds', '* * * * *', 'SELECT orders.cleanup_expired_reservations()'
    UNION ALL
    SELECT 'orders-purge-' || replace(p.purge, '_', '-'), p.schedule,
           format('SELECT orders.purge_%s(%s)', p.purge,
                  (SELECT quote_literal(r.older_than::text) || '::interval' FROM orders.purge_retention r WHERE r.purge = p.purge))
      FROM (VALUES ('webhook_logs', '17 3 * * *'), ('outbox', '27 3 * * *'), ('activity_logs', '37 3 * * *'),
                   ('notifications', '47 3 * * *'), ('workflow_executions', '57 3 * * *')) p (purge, schedule)
    UNION ALL
    SELECT 'orders-workflow-' || w.id,
           orders.workflow_cron_schedule(w.trigger_config ->> 'schedule', coalesce(w.trigger_config ->> 'timezone', 'UTC')),
           format('SELECT orders.run_scheduled_workflow(%L)', w.id)
      FROM orders.workflows w
     WHERE w.is_active AND w.trigger_type = 'time_based';
END;

REVOKE ALL ON FUNCTION orders.purge_notifications(interval), orders.purge_workflow_executions(interval) FROM PUBLIC;

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

CREATE FUNCTION orders.erase_customer(customer_id uuid)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    who uuid := erase_customer.customer_id;
    order_ids uuid[];
    order_keys text[];
    reach uuid[];          -- its orders and those of the groups it is the client of
    account text;
    more bigint;
    open_orders text[];
    run_keys text[];
    done jsonb;
    n bigint;
BEGIN
    IF who IS NULL THEN
        RAISE EXCEPTION 'orders.erase_customer: customer_id must not be NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM orders.require_read_committed('orders.erase_customer',
        'It reads what others committed after taking its locks; at REPEATABLE READ rows they wrote meanwhile would stay.');
    IF EXISTS (SELECT 1 FROM unnest(ARRAY['customers', 'orders', 'order_items', 'order_history', 'order_notes', 'deliveries',
                                          'financial_transactions', 'order_groups', 'order_site_selections',
                                          'order_share_tokens', 'webhook_logs', 'workflow_executions', 'notifications',
                                          'outbox', 'activity_logs', 'lifecycle_states']) t
                WHERE row_security_active('orders.' || t)) THEN
        RAISE EXCEPTION 'orders.erase_customer runs as the owner of the extension''s tables, or a role that bypasses row level security'
            USING ERRCODE = '42501',
                  DETAIL = format('Row level security applies to %s here: rows it hides or lets no one change would stay.', current_user),
                  HINT = 'Call it as the extension''s owner (a SECURITY DEFINER function of yours must be owned by it).';
    END IF;
    -- in an API request the column rules of the orders hold for all but the
    -- owner (its review stamp): refused here rather than by them halfway
    IF orders.api_request() AND NOT orders.by_maintainer('orders.orders'::regclass) THEN
        RAISE EXCEPTION 'orders.erase_customer in an API request runs as the owner of the extension''s tables only'
            USING ERRCODE = '42501',
                  HINT = 'Call it as the extension''s owner (a SECURITY DEFINER function of yours must be owned by it).';
    END IF;
    PERFORM 1 FROM orders.orders o WHERE o.customer_id = who ORDER BY o.id FOR UPDATE;
    -- (a uuid's text is lower case; a JWT sub may carry capitals: compared lowered)
    SELECT c.account_id::text INTO account FROM orders.customers c WHERE c.id = who FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'customer % does not exist', who USING ERRCODE = 'OR116';
    END IF;
    SELECT coalesce(array_agg(x.id ORDER BY x.id), '{}') INTO order_ids
      FROM (SELECT o.id FROM orders.orders o WHERE o.customer_id = who ORDER BY o.id FOR UPDATE) x;
    order_keys := order_ids::text[];
    SELECT array_agg(o.order_number ORDER BY o.created_at, o.order_number) INTO open_orders
      FROM orders.orders o
      JOIN orders.lifecycle_states s ON s.lifecycle = o.lifecycle AND s.status = o.status
     WHERE o.id = ANY (order_ids) AND s.category = 'open';
    IF open_orders IS NOT NULL THEN
        RAISE EXCEPTION 'customer % has % open orders: it can be erased once they are closed', who, cardinality(open_orders)
            USING ERRCODE = 'OR123',
                  DETAIL = format('Open: %s%s.', array_to_string(open_orders[1:5], ', '),
                                  CASE WHEN cardinality(open_orders) > 5 THEN ', ...' ELSE '' END),
                  HINT = 'Deliver, complete or cancel them first: an open order still needs its address.';
    END IF;

    SELECT order_ids || coalesce(array_agg(DISTINCT g.order_id), '{}') INTO reach
      FROM orders.order_groups g WHERE g.client_id = who;
    UPDATE orders.customers c
       SET full_name = 'Erased customer', email = NULL, phone = NULL, address = NULL, city = NULL,
           area = NULL, postal_code = NULL, notes = NULL, tags = '[]', account_id = NULL
     WHERE c.id = who;
    done := jsonb_build_object('customer', who, 'orders', cardinality(order_ids));
    UPDATE orders.orders o
       SET delivery_address = NULL, delivery_area = NULL, customer_notes = NULL, notes = NULL,
           delivery_proof = NULL, return_reason = NULL
     WHERE o.id = ANY (order_ids)
       AND (o.delivery_address IS NOT NULL OR o.delivery_area IS NOT NULL OR o.customer_notes IS NOT NULL
            OR o.notes IS NOT NULL OR o.delivery_proof IS NOT NULL OR o.return_reason IS NOT NULL);
    GET DIAGNOSTICS n = ROW_COUNT;
    done := done || jsonb_build_object('orders_overwritten', n);
    UPDATE orders.order_history h SET notes = NULL WHERE h.order_id = ANY (order_ids) AND h.notes IS NOT NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    done := done || jsonb_build_object('order_history', n);
    DELETE FROM orders.order_notes x WHERE x.order_id = ANY (order_ids);
    GET DIAGNOSTICS n = ROW_COUNT;
    done := done || jsonb_build_object('order_notes', n);
    UPDATE orders.deliveries d
       SET customer_feedback = NULL, proof_of_delivery = NULL, signature_url = NULL, photo_url = NULL, route_data = NULL
     WHERE d.order_id = ANY (order_ids)
       AND (d.customer_feedback IS NOT NULL OR d.proof_of_delivery IS NOT NULL OR d.signature_url IS NOT NULL
            OR d.photo_url IS NOT NULL OR d.route_data IS NOT NULL);
    GET DIAGNOSTICS n = ROW_COUNT;
    done := done || jsonb_build_object('deliveries', n);
    -- an accountant's notes; the lifecycle's own rows say "automatic: order <number>"
    UPDATE orders.financial_transactions f SET notes = NULL
     WHERE f.order_id = ANY (order_ids) AND NOT f.automatic AND f.notes IS NOT NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    done := done || jsonb_build_object('financial_transactions', n);
    -- its orders' sites, and the sites it reviewed as an agency's client
    UPDATE orders.order_site_selections s
       SET client_notes = NULL, internal_notes = NULL,
           reviewed_by = CASE WHEN lower(s.reviewed_by) = account THEN 'erased' ELSE s.reviewed_by END
      FROM orders.order_groups g
     WHERE g.id = s.order_group_id AND (g.order_id = ANY (order_ids) OR g.client_id = who)
       AND (s.client_notes IS NOT NULL OR s.internal_notes IS NOT NULL OR lower(s.reviewed_by) = account);
    GET DIAGNOSTICS n = ROW_COUNT;
    done := done || jsonb_build_object('order_site_selections', n);
    UPDATE orders.order_share_tokens t
       SET revoked_at = coalesce(t.revoked_at, now()), converted_to_account_id = NULL, metadata = '{}',
           created_by = CASE WHEN lower(t.created_by) = account THEN 'erased' ELSE t.created_by END
     WHERE (t.order_id = ANY (order_ids) OR t.customer_id = who)
       AND (t.revoked_at IS NULL OR t.converted_to_account_id IS NOT NULL OR t.metadata <> '{}'
            OR lower(t.created_by) = account);
    GET DIAGNOSTICS n = ROW_COUNT;
    -- the links of its client groups' orders it reviewed through ("share:<link>"):
    -- their metadata (whom they were sent to) goes; the links stay the agency's
    UPDATE orders.order_share_tokens t SET metadata = '{}'
     WHERE t.order_id = ANY (reach) AND t.metadata <> '{}'
       AND EXISTS (SELECT 1 FROM orders.order_site_selections s JOIN orders.order_groups g ON g.id = s.order_group_id
                    WHERE g.client_id = who AND s.reviewed_by = 'share:' || t.id);
    GET DIAGNOSTICS more = ROW_COUNT;
    done := done || jsonb_build_object('order_share_tokens', n + more);
    -- its login's id where it was recorded as the actor (the JWT subject)
    IF account IS NOT NULL THEN
        UPDATE orders.order_history h SET changed_by = 'erased' WHERE h.order_id = ANY (reach) AND lower(h.changed_by) = account;
        GET DIAGNOSTICS n = ROW_COUNT;
        UPDATE orders.orders o SET reviewed_by = 'erased' WHERE o.id = ANY (reach) AND lower(o.reviewed_by) = account;
        GET DIAGNOSTICS more = ROW_COUNT;
        n := n + more;
        UPDATE orders.order_items i SET snapshot = jsonb_set(i.snapshot, '{approved_by}', '"erased"')
         WHERE i.order_id = ANY (reach) AND lower(i.snapshot ->> 'approved_by') = account;
        GET DIAGNOSTICS more = ROW_COUNT;
        done := done || jsonb_build_object('actor_stamps', n + more);
    END IF;
    UPDATE orders.webhook_logs l SET request_payload = NULL
     WHERE l.order_created_id = ANY (order_ids) AND l.request_payload IS NOT NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    done := done || jsonb_build_object('webhook_logs', n);
    WITH gone AS (DELETE FROM orders.workflow_executions x
                   WHERE x.customer_id = who OR x.order_id = ANY (order_ids) RETURNING x.id)
    SELECT coalesce(array_agg(gone.id::text), '{}') INTO run_keys FROM gone;
    done := done || jsonb_build_object('workflow_executions', cardinality(run_keys));
    -- a run's notifications and messages carry its order and customer (and name) in "data"
    DELETE FROM orders.notifications x
     WHERE x.data ->> 'customer_id' = who::text OR x.data ->> 'order_id' = ANY (order_keys)
        OR x.data ->> 'execution_id' = ANY (run_keys);
    GET DIAGNOSTICS n = ROW_COUNT;
    done := done || jsonb_build_object('notifications', n);
    DELETE FROM orders.outbox x
     WHERE x.payload ->> 'customer_id' = who::text OR x.payload -> 'data' ->> 'customer_id' = who::text
        OR x.payload -> 'data' ->> 'order_id' = ANY (order_keys);
    GET DIAGNOSTICS n = ROW_COUNT;
    done := done || jsonb_build_object('outbox', n);
    -- last: the rows the writes above logged go with the others (a deleted
    -- order's row is found by the customer it had)
    DELETE FROM orders.activity_logs a
     WHERE a.entity_id = who::text OR a.entity_id = ANY (order_keys)
        OR a.details -> 'changes' -> 'customer_id' ->> 'old' = who::text
        OR a.details -> 'changes' -> 'customer_id' ->> 'new' = who::text
        -- the orders of the groups it is the client of: what it did there, its id as their reviewer
        OR (a.entity_id = ANY (reach::text[])
            AND (lower(a.actor) = account OR lower(a.details -> 'changes' -> 'reviewed_by' ->> 'old') = account
                 OR lower(a.details -> 'changes' -> 'reviewed_by' ->> 'new') = account));
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN done || jsonb_build_object('activity_logs', n);
END
$$;
COMMENT ON FUNCTION orders.erase_customer(uuid) IS
    'Erase a customer who asked to be forgotten: personal data overwritten or deleted, orders and money kept (doc/operations.md); owner only';
REVOKE ALL ON FUNCTION orders.erase_customer(uuid) FROM PUBLIC;

-- last: the index build's SHARE lock on orders.customers holds every writer
-- of customers (a new order counts its customer) until the update commits
GRANT EXECUTE ON FUNCTION orders.webhook_email_key(text) TO PUBLIC;   -- every writer of customers computes it
CREATE INDEX customers_email_key_idx ON orders.customers (orders.webhook_email_key(email));
