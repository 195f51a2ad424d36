-- orders 0.36.0 -> 0.37.0
--  * webhook_ingest: a shop's cancellation not applied (a paid order, a
--    refused edge) is logged beside the note of items left as they were
--    (an update beyond defaults.max_items), not over it.
--  * order_columns_guard: in an API request nobody writes metadata's key
--    "webhook" (a customer set the shop's last update in the year 9999 and
--    the shop's cancellation was taken for stale), and only admins and
--    managers write an order's created_at (a customer pinned its order at
--    the top of the recent orders) — an INSERT of an order that exists (an
--    upsert's, looked for FOR KEY SHARE) is judged by its conflict action;
--    refuse_column's hint for such columns.
--  * deliveries: in an API request a delivery names its order's assigned
--    agent (delivery_agent_guard, OR042): a customer rep recorded one-star
--    deliveries of agents who never had the order.
--  * execute_workflow: the customer's name goes into a run's data at most
--    200 characters long (a 1.9 MB name went into every notification and
--    outbox message).
--  * (library) slots: in an API request "staff" for holds are active staff
--    with orders.edit only (the role orders.staff_role names was every
--    staff member's API role: a deactivated one booked places without an
--    order).
--  * (library) the activity log keeps a value whose text is longer than
--    4,096 bytes as its first 4,096 bytes, its size and a hash (a customer's 9.6 MB
--    notes wrote 19 MB of log at every update).
--  * (library) site_item_guard: a snapshot that is no JSON object names no
--    site (an array was read as an object past its end: a customer's
--    UPDATE of an item's snapshot crashed the server).
--  * (library) confirm_booking locks its item FOR SHARE and judges the item
--    and its order again once both are locked (a quantity lowered, a
--    product changed or the order given away while it waited: OR032,
--    OR033, OR028), and an item's UPDATE waits for the booking
--    (booked_item_guard then refuses it).
--  * complete_analysis: a group deleted while its sites' foreign key waited
--    for it is OR075, as a moment later (was 23503).
--  * leads_follow_order takes the order's lead lock (an advisory
--    transaction lock) before moving its leads, and (library) a lead
--    statement holds it shared while it judges the lead's customer (at
--    REPEATABLE READ a move committed after the snapshot is 40001, and a
--    move at REPEATABLE READ that finds a lead committed after its snapshot
--    is 40001: orders.leads_left_behind, C, new): a lead written while its
--    order moved to another customer stayed with the old one, every later
--    edit of it OR011.
--  * announce_truncated_changes: TRUNCATE orders.order_history at READ
--    COMMITTED only (25000): a transaction's snapshot missed the changes
--    committed after it, and the TRUNCATE removed them unannounced.
--  * create_share_token: a link's metadata at most 4096 bytes (22001; it
--    was unbounded).
--  * (library) site_items: a site without a client group is left to its NOT
--    NULL (its NULL was looked up as a uuid: a customer's INSERT of an
--    approved site without a group crashed the server); site_stays: the
--    same for an UPDATE (22004 on a NULL detail).
--  * (library) a cache loaded in a parallel query (the transaction's
--    snapshot) counts for that transaction only: at REPEATABLE READ the API
--    roles so read kept a removed role trusted for the rest of the session.
--  * (library) a customer_tag workflow without a tag (loaded with its
--    checks off) fires for no tag (it crashed every tag change); a
--    webhook mapping's alternatives free what they read (a 1 MB value read
--    by 100 alternatives took 120 MB).
--  * booked_item_guard reads the item's reservations with the latest
--    snapshot (orders.item_booked_places, C, new): at REPEATABLE READ a
--    booking committed after the snapshot was missed and the item's
--    quantity went below its places.
--  * schedule_matches: a schedule of more than 1000 characters is none
--    (check_workflow_trigger: OR112 on write; a 100 kB one took minutes to
--    read).

\echo Use "ALTER EXTENSION orders UPDATE TO '0.37.0'" to load this file. \quit

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

CREATE OR REPLACE FUNCTION orders.refuse_column(tbl text, col text, who text) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'column "%" of % is reserved to %', col, tbl, who
        USING ERRCODE = 'OR060',
              HINT = CASE WHEN who LIKE 'the lifecycle%'
                          THEN 'Leave it out of the request (or send it unchanged); the status change sets it.'
                          WHEN who LIKE 'the %'
                          THEN 'Leave it out of the request (or send it unchanged).'
                          ELSE 'Leave it out of the request; staff with the right permission set it.' END;
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
    agent_fixed constant text[] := '{total_amount,adjustment,delivery_fee,currency,leads_purchased,source,customer_id}';
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

DO $upgrade$
DECLARE
    was "char";
BEGIN
    SELECT tgenabled INTO was FROM pg_catalog.pg_trigger
     WHERE tgrelid = 'orders.orders'::pg_catalog.regclass AND tgname = 'order_columns_guard';
    IF was IS NOT NULL THEN         -- dropped by a DBA: left dropped
        CREATE OR REPLACE TRIGGER order_columns_guard
            BEFORE INSERT OR UPDATE OF priority, delivery_fee, total_amount, adjustment, payment_status,
                assigned_rep_id, assigned_agent_id, source, webhook_source, delivery_proof, review_completed_at, reviewed_by,
                leads_purchased, external_id, currency, confirmed_at, started_at, paused_at, reviewed_at, paid_at, shipped_at,
                delivered_at, returned_at, completed_at, cancelled_at, customer_id, created_at, metadata
            ON orders.orders FOR EACH ROW WHEN (orders.api_request())
            EXECUTE FUNCTION orders.order_columns_guard();
        IF was <> 'O' THEN
            EXECUTE pg_catalog.format('ALTER TABLE orders.orders %s TRIGGER order_columns_guard',
                                      CASE was WHEN 'A' THEN 'ENABLE ALWAYS' WHEN 'R' THEN 'ENABLE REPLICA'
                                               ELSE 'DISABLE' END);
        END IF;
    END IF;
END
$upgrade$;

CREATE FUNCTION orders.delivery_agent_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    assigned uuid;
    number text;
BEGIN
    IF orders.by_maintainer(TG_RELID)
       OR (TG_OP = 'UPDATE' AND NEW.order_id = OLD.order_id AND NEW.agent_id = OLD.agent_id)
       OR NOT orders.has_permission('orders', 'edit') THEN
        RETURN NEW;
    END IF;
    SELECT o.assigned_agent_id, o.order_number INTO assigned, number FROM orders.orders o WHERE o.id = NEW.order_id;
    IF FOUND AND assigned IS DISTINCT FROM NEW.agent_id THEN
        RAISE EXCEPTION 'a delivery of order % is its assigned agent''s', number
            USING ERRCODE = 'OR042',
                  DETAIL = CASE WHEN assigned IS NULL THEN 'The order has no delivery agent assigned.'
                                ELSE 'The delivery names another staff member than the order''s agent.' END,
                  HINT = 'Assign the agent to the order first (orders.assigned_agent_id), then record its delivery.';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER delivery_agent_guard BEFORE INSERT OR UPDATE OF order_id, agent_id ON orders.deliveries
    FOR EACH ROW WHEN (orders.api_request()) EXECUTE FUNCTION orders.delivery_agent_guard();
REVOKE ALL ON FUNCTION orders.delivery_agent_guard() FROM PUBLIC;

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
    e_code text;
    e_msg text;
    e_detail text;
    e_hint text;
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
        'data', jsonb_strip_nulls(jsonb_build_object(
            'order_id', order_id, 'order_number', o.order_number, 'status', o.status,
            'payment_status', o.payment_status, 'total_amount', o.total_amount, 'currency', o.currency,
            'customer_id', customer_id,
            -- (0.37.0) at most 200 characters: a customer's 1.9 MB name went into
            -- every notification and outbox message of its workflows
            'customer_name', (SELECT left(c.full_name, 200) FROM orders.customers c WHERE c.id = customer_id),
            'workflow', w.name)));
    IF depth >= 8 THEN
        errors := jsonb_build_array(jsonb_build_object(
            'step_id', NULL, 'error', 'workflow runs nested more than 8 deep (a workflow loop?)',
            'error_code', 'OR118', 'timestamp', clock_timestamp()));
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

CREATE FUNCTION orders.leads_left_behind(order_id uuid, customer_id uuid) RETURNS boolean
    LANGUAGE c VOLATILE STRICT
    AS 'MODULE_PATHNAME', 'orders_leads_left_behind';
COMMENT ON FUNCTION orders.leads_left_behind(uuid, uuid) IS
    'Whether an order has a lead of another customer, latest snapshot; for leads_follow_order at REPEATABLE READ';
REVOKE ALL ON FUNCTION orders.leads_left_behind(uuid, uuid) FROM PUBLIC;
CREATE OR REPLACE FUNCTION orders.leads_follow_order() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_catalog.pg_advisory_xact_lock(1330791506, pg_catalog.uuid_hash(NEW.id));
    UPDATE orders.leads l SET customer_id = NEW.customer_id
     WHERE l.order_id = NEW.id AND l.customer_id IS DISTINCT FROM NEW.customer_id;
    -- at REPEATABLE READ the UPDATE saw its snapshot's leads only: a lead
    -- committed after it (the lock waited for its statement) would stay
    IF pg_catalog.current_setting('transaction_isolation') IN ('repeatable read', 'serializable')
       AND orders.leads_left_behind(NEW.id, NEW.customer_id) THEN
        RAISE EXCEPTION 'could not serialize access: a lead of order % was written after this transaction''s snapshot',
                        NEW.order_number
            USING ERRCODE = '40001';
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION orders.announce_truncated_changes() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM orders.require_read_committed('TRUNCATE orders.order_history',
        'The unannounced changes it keeps must be read with a snapshot taken after the table''s lock.');
    INSERT INTO orders.deleted_changes (id, order_id, old_status, new_status, changed_by)
    SELECT h.id, h.order_id, h.old_status, h.new_status, h.changed_by
      FROM orders.order_history h
     WHERE h.announce
       AND h.id > coalesce((SELECT s.watermark FROM orders.status_announcer s), 0)
    ON CONFLICT (id) DO UPDATE
       SET order_id = excluded.order_id, old_status = excluded.old_status,
           new_status = excluded.new_status, changed_by = excluded.changed_by;
    RETURN NULL;
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
    IF expires_in IS NULL OR expires_in <= interval '0' OR expires_in > interval '90 days' THEN
        RAISE EXCEPTION 'orders.create_share_token: expires_in must be between 0 and 90 days'
            USING ERRCODE = '22023';
    END IF;
    IF cardinality(allowed_actions) = 0 OR NOT allowed_actions <@ ARRAY['view', 'approve', 'convert'] THEN
        RAISE EXCEPTION 'orders.create_share_token: allowed_actions must be some of view, approve, convert, not %',
                        left(allowed_actions::text, 100)
            USING ERRCODE = '22023';
    END IF;
    -- (0.37.0) what a link carries for the marketing (UTM and the like) is
    -- small: it was unbounded, a store of any size for whoever may share
    IF octet_length(create_share_token.metadata::text) > 4096 THEN
        RAISE EXCEPTION 'orders.create_share_token: metadata may have at most 4096 bytes, not %',
                        octet_length(create_share_token.metadata::text)
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

CREATE OR REPLACE FUNCTION orders.site_stays() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- (0.37.0) no group: its NOT NULL refuses the row (23502; the NULL
    -- made this RAISE's DETAIL null, 22004)
    IF NEW.order_group_id IS NOT NULL
       AND (SELECT g.order_id FROM orders.order_groups g WHERE g.id = NEW.order_group_id)
       IS DISTINCT FROM (SELECT g.order_id FROM orders.order_groups g WHERE g.id = OLD.order_group_id) THEN
        RAISE EXCEPTION 'site % of client group % stays with its order', left(OLD.domain, 64), OLD.order_group_id
            USING ERRCODE = 'OR074',
                  DETAIL = 'Client group ' || NEW.order_group_id || ' belongs to another order; an approved site''s item is its order''s.',
                  HINT = 'Add the site to the other order''s group instead.';
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION orders.schedule_matches(schedule text, at timestamp)
    RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f text[] := regexp_split_to_array(btrim(schedule), '\s+');
    mi integer[];
    hr integer[];
    dom integer[];
    mon integer[];
    dow integer[];
    day_ok boolean;
BEGIN
    IF length(schedule) > 1000 OR array_length(f, 1) IS DISTINCT FROM 5 OR f[1] ~ '(^|,)[0-9]{1,2}/' THEN
        RETURN NULL;
    END IF;
    mi := orders.cron_field_values(f[1], 0, 59);
    hr := orders.cron_field_values(f[2], 0, 23);
    dom := orders.cron_field_values(f[3], 1, 31);
    mon := orders.cron_field_values(f[4], 1, 12);
    dow := orders.cron_field_values(f[5], 0, 7);
    IF mi IS NULL OR hr IS NULL OR dom IS NULL OR mon IS NULL OR dow IS NULL THEN
        RETURN NULL;
    END IF;
    day_ok := CASE
        WHEN left(f[3], 1) = '*' OR left(f[5], 1) = '*' THEN
             extract(day FROM at)::integer = ANY (dom)
             AND (extract(dow FROM at)::integer = ANY (dow) OR (extract(dow FROM at) = 0 AND 7 = ANY (dow)))
        ELSE extract(day FROM at)::integer = ANY (dom)
             OR extract(dow FROM at)::integer = ANY (dow) OR (extract(dow FROM at) = 0 AND 7 = ANY (dow))
    END;
    RETURN day_ok AND extract(minute FROM at)::integer = ANY (mi) AND extract(hour FROM at)::integer = ANY (hr)
       AND extract(month FROM at)::integer = ANY (mon);
END
$$;

CREATE OR REPLACE FUNCTION orders.check_workflow_trigger(trigger_type text, config jsonb)
    RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    what text := format('workflow trigger config (%s)', trigger_type);
    cond jsonb := config -> 'conditions';
    lifecycles text[];
    s text;
BEGIN
    IF config ? 'type' AND config ->> 'type' IS DISTINCT FROM trigger_type THEN
        RAISE EXCEPTION '%: "type" is %, not the workflow''s trigger_type', what, left(config ->> 'type', 64)
            USING ERRCODE = 'OR110';
    END IF;
    CASE trigger_type
    WHEN 'order_status' THEN
        PERFORM orders.check_workflow_keys(config, '{type,conditions}', what, 'OR110');
        IF jsonb_typeof(cond) IS DISTINCT FROM 'object' OR NOT (cond ? 'status' OR cond ? 'payment_status') THEN
            RAISE EXCEPTION '%: "conditions" must name a status or payment_status list (the changes that fire it)', what
                USING ERRCODE = 'OR110',
                      HINT = 'Conditions: status, payment_status (at least one), and the filters min_order_value, lifecycle.';
        END IF;
        PERFORM orders.check_workflow_keys(cond, '{status,payment_status,min_order_value,lifecycle}',
                                           what || ' conditions', 'OR110');
        IF cond ? 'lifecycle' THEN
            IF jsonb_typeof(cond -> 'lifecycle') = 'string' THEN
                lifecycles := ARRAY[cond ->> 'lifecycle'];
            ELSIF orders.json_string_list(cond -> 'lifecycle') THEN
                lifecycles := ARRAY(SELECT jsonb_array_elements_text(cond -> 'lifecycle'));
            ELSE
                RAISE EXCEPTION '%: "lifecycle" must be a lifecycle name or a list of them', what USING ERRCODE = 'OR110';
            END IF;
            SELECT l INTO s FROM unnest(lifecycles) l
             WHERE NOT EXISTS (SELECT 1 FROM orders.lifecycles x WHERE x.name = l) LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION '%: lifecycle "%" does not exist', what, left(s, 64) USING ERRCODE = 'OR110';
            END IF;
        END IF;
        IF cond ? 'status' THEN
            IF NOT orders.json_string_list(cond -> 'status') THEN
                RAISE EXCEPTION '%: "status" must be a non-empty list of statuses', what USING ERRCODE = 'OR110';
            END IF;
            SELECT x INTO s FROM jsonb_array_elements_text(cond -> 'status') x
             WHERE NOT EXISTS (SELECT 1 FROM orders.lifecycle_states st
                                WHERE st.status = x AND (lifecycles IS NULL OR st.lifecycle = ANY (lifecycles)))
             LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION '%: status "%" is no status of %', what, left(s, 64),
                                coalesce('lifecycle ' || array_to_string(lifecycles, ', '), 'any lifecycle')
                    USING ERRCODE = 'OR110';
            END IF;
        END IF;
        IF cond ? 'payment_status'
           AND NOT orders.json_string_list(cond -> 'payment_status', '{pending,collected,failed,refunded}') THEN
            RAISE EXCEPTION '%: "payment_status" must be a non-empty list of pending, collected, failed, refunded', what
                USING ERRCODE = 'OR110';
        END IF;
        IF cond ? 'min_order_value' AND (jsonb_typeof(cond -> 'min_order_value') IS DISTINCT FROM 'number'
               OR (cond ->> 'min_order_value')::numeric < 0) THEN
            RAISE EXCEPTION '%: "min_order_value" must be a number of at least 0', what USING ERRCODE = 'OR110';
        END IF;
    WHEN 'customer_tag' THEN
        PERFORM orders.check_workflow_keys(config, '{type,tag_id}', what, 'OR110');
        IF jsonb_typeof(config -> 'tag_id') IS DISTINCT FROM 'string' OR config ->> 'tag_id' = ''
           OR length(config ->> 'tag_id') > 64 THEN
            RAISE EXCEPTION '%: "tag_id" must name the tag (1 to 64 characters)', what USING ERRCODE = 'OR110';
        END IF;
    WHEN 'webhook' THEN
        PERFORM orders.check_workflow_keys(config, '{type,webhook_id,event_types}', what, 'OR110');
        IF config ? 'webhook_id' AND NOT EXISTS (
               SELECT 1 FROM orders.webhooks h
                WHERE jsonb_typeof(config -> 'webhook_id') = 'string'
                  AND h.id::text = lower(config ->> 'webhook_id')) THEN
            RAISE EXCEPTION '%: "webhook_id" names no webhook', what USING ERRCODE = 'OR110';
        END IF;
        IF config ? 'event_types'
           AND NOT orders.json_string_list(config -> 'event_types', '{order.created,order.updated}') THEN
            RAISE EXCEPTION '%: "event_types" must be a non-empty list of order.created, order.updated', what
                USING ERRCODE = 'OR110';
        END IF;
    WHEN 'time_based' THEN
        PERFORM orders.check_workflow_keys(config, '{type,schedule,timezone}', what, 'OR110');
        IF jsonb_typeof(config -> 'schedule') IS DISTINCT FROM 'string'
           OR orders.schedule_matches(config ->> 'schedule', localtimestamp) IS NULL THEN
            RAISE EXCEPTION '%: "schedule" % is not a five-field cron schedule', what,
                            coalesce(left(config ->> 'schedule', 64), 'missing')
                USING ERRCODE = 'OR112',
                      HINT = 'minute hour day-of-month month day-of-week, each *, n, a-b, optionally /step (no n/step in the minutes: pg_cron refuses it), joined by commas, 1000 characters at most; for example 0 9 * * 1-5.';
        END IF;
        IF config ? 'timezone' AND (jsonb_typeof(config -> 'timezone') IS DISTINCT FROM 'string'
               OR NOT EXISTS (SELECT 1 FROM pg_timezone_names z WHERE z.name = config ->> 'timezone')) THEN
            RAISE EXCEPTION '%: "timezone" % is not a time zone name', what, left(config ->> 'timezone', 64)
                USING ERRCODE = 'OR112', HINT = 'A name of pg_timezone_names, such as America/New_York or UTC.';
        END IF;
    ELSE        -- manual
        PERFORM orders.check_workflow_keys(config, '{type}', what, 'OR110');
    END CASE;
END
$$;

CREATE FUNCTION orders.item_booked_places(item_id uuid) RETURNS bigint
    LANGUAGE c VOLATILE STRICT
    AS 'MODULE_PATHNAME', 'orders_item_booked_places';
COMMENT ON FUNCTION orders.item_booked_places(uuid) IS
    'Places the confirmed reservations of an order item hold (0 when only held, NULL when none is live), latest snapshot; for booked_item_guard';
REVOKE ALL ON FUNCTION orders.item_booked_places(uuid) FROM PUBLIC;
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
                      HINT = 'Cancel its order to give the place back (release_cancelled_bookings), or confirm the booking for another item first.';
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
