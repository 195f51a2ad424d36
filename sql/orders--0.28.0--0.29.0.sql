-- orders 0.28.0 -> 0.29.0
--  * A client group names a client the caller can see (OR077): a client
--    named another account's customer by its id, and shared_order showed
--    that customer's name to whoever held the link.
--  * Shop cancellations cancel (doc/webhooks.md step 6a): the mapping's
--    order.cancelled (Shopify cancelled_at, WooCommerce status =
--    cancelled) takes the order's edge to its cancelled status; an
--    orders/cancelled answered "duplicate" and the order was delivered.
--  * Order workflows fire at the end of the statement, after the
--    customers' statistics (a step's condition read them from before the
--    change), and when a new order's items raise its total to
--    min_order_value (such a workflow never fired for a shop order or an
--    API client's: the order is inserted before its items).  Library
--    first, then recycle pooled connections (a 0.28.0 library refuses the
--    new triggers' function).
--  * What a tester found over the API: a customer rep delivered leads to a
--    campaign outside its scope (and so completed it): leads count toward
--    orders in the writer's scope only; an order moved to another customer
--    takes its leads along (leads_follow_order; they counted for the old
--    customer, and OR011 then refused every edit); the built-in gates'
--    checks named any order's clients to anon (no EXECUTE now: the
--    transitions call the extension's own checks without it); run_workflow
--    for a customer alone checks the caller reaches it; a workflow written
--    without workflows.create is refused before its config is judged
--    (42501, not OR110); assign_lead answers 42501 for a lead the caller
--    reads but may not change.
--  * A second tester: a shop's cancellation that met a lock timeout or a
--    deadlock answered 200 "not applied" (its retry then a duplicate: the
--    cancellation lost) — only a rule's refusal is "not applied" now,
--    other errors fail the delivery (503); a paid order is not cancelled
--    by the shop; a booking's update no longer replaces its booked items
--    (OR031 refused every update and the cancellation with it), nor items
--    that did not change; over-long SKUs and cities no longer give 500; a
--    body nested past the stack is a 400; a reviewed order is paid only
--    while its review is complete (gate client_review_kept); an analysis
--    prices its sites with JSON numbers from 0 (22023 otherwise: a price
--    sent as text made an item of 0).
--  * A third tester: delivery agents
--    change no item's product/variant and no order's customer, and a
--    customer row's login (account_id) is set only by the customer
--    signing up or by an admin (OR060; the three column guards' triggers
--    are re-created watching those columns).
--  * Staff without orders.create / orders.edit writing an order (as its
--    customer: a staff member may be one) are judged by a customer's
--    column rules (an accountant placed its own order "collected").
--  * The currency of an order that has earned stays (OR053,
--    earned_currency_guard): a change posted nothing in either currency.
--  * agent_performance_view counts an agent's completed deliveries by
--    order (an agent recorded ten completed deliveries of one order).
\echo Use "ALTER EXTENSION orders UPDATE TO '0.29.0'" to load this file. \quit

-- group_client_guard — in an API request a client group names a client the
-- caller can see (0.29.0, OR077): the customers policy decides, asked as
-- the caller.  A client named a customer of somebody else by its id, and
-- shared_order showed that customer's name to whoever held the link.  An
-- id that does not exist gets the same answer (the foreign key's check
-- runs later: no oracle for ids).
CREATE FUNCTION orders.group_client_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF orders.by_maintainer(TG_RELID)
       OR (TG_OP = 'UPDATE' AND NEW.client_id IS NOT DISTINCT FROM OLD.client_id)
       OR EXISTS (SELECT FROM orders.customers c WHERE c.id = NEW.client_id) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'client % of client group % is not a customer you can see', NEW.client_id, NEW.id
        USING ERRCODE = 'OR077',
              HINT = 'Name one of your own customers; staff who may view customers name any.';
END
$$;
CREATE TRIGGER group_client_guard BEFORE INSERT OR UPDATE OF client_id ON orders.order_groups
    FOR EACH ROW WHEN (orders.api_request()) EXECUTE FUNCTION orders.group_client_guard();
REVOKE ALL ON FUNCTION orders.group_client_guard() FROM PUBLIC;

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
        -- (0.29.0) a body nested past the stack's depth is no JSON either
        EXCEPTION WHEN invalid_text_representation OR untranslatable_character OR statement_too_complex THEN
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
                result_status := CASE WHEN topic ~* 'update' OR cancelled THEN 'updated' ELSE 'duplicate' END;
            END IF;
        END IF;
    END IF;

    IF http IS NULL OR result_status = 'updated' THEN
        BEGIN
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
                                            WHERE it.order_id = ingest.order_id AND sr.status IN ('held', 'confirmed')) THEN
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
        EXCEPTION
            WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, err = MESSAGE_TEXT;
                http := CASE WHEN code IN ('40001', '40P01', '55P03') THEN 503
                             WHEN code LIKE '22%' OR code LIKE '23%' OR code LIKE 'OR%' OR code LIKE '54%' THEN 422
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
        'log_id', log_id, 'code', CASE WHEN http >= 300 THEN code END, 'error', CASE WHEN http >= 300 THEN err END,
        'cancellation', cancellation));
END
$$;

CREATE OR REPLACE FUNCTION orders.webhook_mapping(platform text)
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

-- webhooks made from the ready mappings (unchanged since) learn the shop's
-- cancellations; a mapping a DBA wrote stays as it is
UPDATE orders.webhooks w
   SET field_mapping = jsonb_set(w.field_mapping, '{order,cancelled}',
                                 CASE w.source WHEN 'shopify' THEN '"cancelled_at"'::jsonb ELSE '"status = cancelled"'::jsonb END)
 WHERE w.source IN ('shopify', 'woocommerce')
   AND w.field_mapping = orders.webhook_mapping(w.source::text) #- '{order,cancelled}';

-- Order workflows fire once a statement ends, after the customers'
-- statistics, and also when the total reaches min_order_value: the row
-- triggers fire_workflows (AFTER INSERT) and fire_workflows_on_change
-- (AFTER UPDATE OF status, payment_status) of orders.orders become the
-- statement triggers stats_then_workflows_insert / _update, each with the
-- setting a DBA gave the one it replaces (ENABLE ALWAYS / REPLICA,
-- DISABLE); one a DBA dropped is not made.
CREATE FUNCTION orders.fire_order_workflows() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_fire_order_workflows';
REVOKE ALL ON FUNCTION orders.fire_order_workflows() FROM PUBLIC;
DO $upgrade$
DECLARE
    was "char";
    t record;
BEGIN
    FOR t IN SELECT * FROM (VALUES
        ('fire_workflows', 'stats_then_workflows_insert',
         'AFTER INSERT ON orders.orders REFERENCING NEW TABLE AS new_orders FOR EACH STATEMENT'),
        ('fire_workflows_on_change', 'stats_then_workflows_update',
         'AFTER UPDATE ON orders.orders REFERENCING OLD TABLE AS old_orders NEW TABLE AS new_orders FOR EACH STATEMENT')) v(old, name, event)
    LOOP
        SELECT tgenabled INTO was FROM pg_catalog.pg_trigger
         WHERE tgrelid = 'orders.orders'::pg_catalog.regclass AND tgname = t.old;
        CONTINUE WHEN was IS NULL;      -- dropped by a DBA: left dropped
        EXECUTE pg_catalog.format('DROP TRIGGER %I ON orders.orders', t.old);
        EXECUTE pg_catalog.format('CREATE TRIGGER %I %s EXECUTE FUNCTION orders.fire_order_workflows()', t.name, t.event);
        IF was <> 'O' THEN
            EXECUTE pg_catalog.format('ALTER TABLE orders.orders %s TRIGGER %I',
                                      CASE was WHEN 'A' THEN 'ENABLE ALWAYS' WHEN 'R' THEN 'ENABLE REPLICA'
                                               ELSE 'DISABLE' END, t.name);
        END IF;
    END LOOP;
END
$upgrade$;

CREATE OR REPLACE FUNCTION orders.assign_lead(lead_id uuid, order_id uuid)
    RETURNS orders.leads
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result orders.leads;
BEGIN
    IF assign_lead.lead_id IS NULL THEN
        RAISE EXCEPTION 'orders.assign_lead: argument "lead_id" must not be null'
            USING ERRCODE = '22004';
    END IF;
    UPDATE orders.leads l
       SET order_id = assign_lead.order_id,
           customer_id = coalesce(l.customer_id,
                                  (SELECT o.customer_id FROM orders.orders o WHERE o.id = assign_lead.order_id))
     WHERE l.id = assign_lead.lead_id
    RETURNING l.* INTO result;
    IF NOT FOUND THEN
        -- (0.29.0) a lead the caller reads but may not change is no "unknown lead"
        IF EXISTS (SELECT FROM orders.leads l WHERE l.id = assign_lead.lead_id) THEN
            RAISE EXCEPTION 'lead % may not be changed by you', assign_lead.lead_id
                USING ERRCODE = '42501',
                      HINT = 'Changing a lead takes permission orders.edit, for a lead of an order in your scope.';
        END IF;
        RAISE EXCEPTION 'lead % does not exist', assign_lead.lead_id
            USING ERRCODE = 'OR015',
                  HINT = 'Either no lead has this id or row level security hides it from you.';
    END IF;
    RETURN result;
END
$$;

CREATE OR REPLACE FUNCTION orders.run_workflow(workflow_id uuid, order_id uuid DEFAULT NULL, customer_id uuid DEFAULT NULL)
    RETURNS orders.workflow_executions
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w orders.workflows%ROWTYPE;
    order_customer uuid;
    exec_id uuid;
    result orders.workflow_executions;
BEGIN
    IF workflow_id IS NULL THEN
        RAISE EXCEPTION 'orders.run_workflow: workflow_id must not be NULL' USING ERRCODE = '22004';
    ELSIF orders.api_request() AND NOT orders.has_permission('workflows', 'edit') THEN
        RAISE EXCEPTION 'running workflows needs the workflows.edit permission' USING ERRCODE = '42501';
    END IF;
    SELECT * INTO w FROM orders.workflows x WHERE x.id = run_workflow.workflow_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'workflow % does not exist', workflow_id USING ERRCODE = 'OR114';
    ELSIF NOT w.is_active THEN
        RAISE EXCEPTION 'workflow "%" is not active', left(w.name, 64) USING ERRCODE = 'OR115',
              HINT = 'Set is_active to true to run it.';
    END IF;
    IF order_id IS NOT NULL THEN
        -- an API caller runs a workflow only for an order in their scope
        SELECT o.customer_id INTO order_customer FROM orders.orders o
         WHERE o.id = run_workflow.order_id
           AND (NOT orders.api_request()
                OR orders.staff_sees_order(o.assigned_rep_id, o.assigned_agent_id, o.lifecycle, o.status));
        IF NOT FOUND THEN
            RAISE EXCEPTION 'order % does not exist', order_id USING ERRCODE = 'OR006';
        ELSIF customer_id IS NOT NULL AND customer_id <> order_customer THEN
            RAISE EXCEPTION 'order % belongs to another customer than %', order_id, customer_id USING ERRCODE = 'OR116';
        END IF;
    -- (0.29.0) and for a customer in their reach (the customers policy's
    -- rule): an agent with workflows.edit tagged a customer it cannot see
    ELSIF customer_id IS NOT NULL AND NOT EXISTS (
              SELECT 1 FROM orders.customers c WHERE c.id = run_workflow.customer_id
                 AND (NOT orders.api_request() OR orders.sees_customer(c.id, c.account_id))) THEN
        RAISE EXCEPTION 'customer % does not exist', customer_id USING ERRCODE = 'OR116';
    END IF;
    exec_id := orders.execute_workflow(w.id, order_id, customer_id,
                                       jsonb_build_object('event', 'manual', 'actor', orders.current_actor()));
    IF exec_id IS NULL THEN            -- deactivated or deleted meanwhile
        RAISE EXCEPTION 'workflow "%" is not active', left(w.name, 64) USING ERRCODE = 'OR115';
    END IF;
    SELECT * INTO result FROM orders.workflow_executions e WHERE e.id = exec_id;
    RETURN result;
END
$$;

CREATE OR REPLACE FUNCTION orders.check_workflow() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- (0.29.0) the policies' rights first: this trigger runs before them, and
    -- a caller who may not write workflows heard what was wrong with its
    -- config instead — and whether a webhook id exists
    IF TG_OP = 'INSERT' AND orders.api_request() AND NOT orders.has_permission('workflows', 'create') THEN
        RAISE EXCEPTION 'creating workflows needs the workflows.create permission' USING ERRCODE = '42501';
    END IF;
    IF NEW.trigger_type NOT IN ('webhook', 'order_status', 'customer_tag', 'time_based', 'manual') THEN
        RAISE EXCEPTION 'unknown workflow trigger type %', left(NEW.trigger_type, 64)
            USING ERRCODE = 'OR110', HINT = 'Trigger types: order_status, customer_tag, webhook, time_based, manual.';
    END IF;
    IF NEW.trigger_config IS NOT NULL THEN
        PERFORM orders.check_workflow_trigger(NEW.trigger_type, NEW.trigger_config);
    END IF;
    IF NEW.workflow_steps IS NOT NULL THEN
        PERFORM orders.check_workflow_steps(NEW.workflow_steps);
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF orders.api_request() OR NEW.created_by_user_id IS NULL THEN
            NEW.created_by_user_id := orders.current_staff_id();
        END IF;
    ELSE
        IF orders.api_request() THEN
            NEW.created_by_user_id := OLD.created_by_user_id;
        END IF;
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION orders.leads_follow_order() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE orders.leads l SET customer_id = NEW.customer_id
     WHERE l.order_id = NEW.id AND l.customer_id IS DISTINCT FROM NEW.customer_id;
    RETURN NULL;
END
$$;
CREATE TRIGGER leads_follow_order AFTER UPDATE OF customer_id ON orders.orders
    FOR EACH ROW WHEN (OLD.customer_id IS DISTINCT FROM NEW.customer_id)
    EXECUTE FUNCTION orders.leads_follow_order();
REVOKE ALL ON FUNCTION orders.leads_follow_order() FROM PUBLIC;
-- leads already on an order of another customer (moved before 0.29.0) follow it now
UPDATE orders.leads l SET customer_id = o.customer_id
  FROM orders.orders o
 WHERE o.id = l.order_id AND l.customer_id IS DISTINCT FROM o.customer_id;

-- a lead counts toward an order in the writer's scope only
CREATE FUNCTION orders.order_in_scope(order_id uuid) RETURNS boolean
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 'orders_order_in_scope';
GRANT EXECUTE ON FUNCTION orders.order_in_scope(uuid) TO PUBLIC;
ALTER POLICY insert_right ON orders.leads
    WITH CHECK (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('orders', 'edit'))
                AND (SELECT orders.current_staff_role()) <> 'delivery_agent'
                AND orders.order_in_scope(order_id));
ALTER POLICY update_right ON orders.leads
    USING (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('orders', 'edit'))
           AND (SELECT orders.current_staff_role()) <> 'delivery_agent'
           AND orders.order_in_scope(order_id));

-- the built-in gates' checks are the transitions' alone (library: no EXECUTE needed there)
REVOKE ALL ON FUNCTION orders.has_client_groups(uuid), orders.client_review_complete(uuid) FROM PUBLIC;

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
    -- columns no API role may touch: internal notes and metrics of sites, token hashes
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

-- agent_performance_view counts completed deliveries by order, not by row
CREATE OR REPLACE VIEW orders.agent_performance_view WITH (security_invoker = true) AS
SELECT s.id AS agent_id, s.full_name AS agent_name, s.is_active, s.availability_status,
       count(d.id) AS total_deliveries,
       round(avg(d.rating), 2) AS average_rating,
       count(DISTINCT d.order_id) FILTER (WHERE d.delivery_time IS NOT NULL) AS completed_deliveries,
       (SELECT count(*) FROM orders.orders o
         JOIN orders.lifecycle_states st ON st.lifecycle = o.lifecycle AND st.status = o.status
        WHERE o.assigned_agent_id = s.id AND st.category = 'fulfilled') AS successful_orders
  FROM orders.staff s
  LEFT JOIN orders.deliveries d ON d.agent_id = s.id
 WHERE s.role = 'delivery_agent'
 GROUP BY s.id;

-- a webhook's order is judged for its workflows once, at the end of the ingest
CREATE FUNCTION orders.hold_order_workflows() RETURNS void
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'orders_hold_order_workflows';
CREATE FUNCTION orders.judge_order_workflows(order_id uuid, status text, payment_status text, total numeric)
    RETURNS void
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'orders_judge_order_workflows';
REVOKE ALL ON FUNCTION orders.hold_order_workflows(), orders.judge_order_workflows(uuid, text, text, numeric) FROM PUBLIC;

-- a reviewed agency order is paid only while its review is still complete
INSERT INTO orders.lifecycle_gates (name, check_function, stamp_column, actor_column, description, builtin) VALUES
  ('client_review_kept', 'orders.client_review_complete(uuid)', NULL, NULL,
   'an order that requires client review still has every group''s sites approved when it is paid', true);
UPDATE orders.lifecycle_transitions SET gate = 'client_review_kept'
 WHERE lifecycle = 'review' AND builtin AND from_status = 'payment_pending' AND to_status = 'in_progress'
   AND gate IS NULL;

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

CREATE OR REPLACE FUNCTION orders.customer_columns_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF orders.by_maintainer(TG_RELID) OR NOT orders.api_request() THEN
        RETURN NEW;
    END IF;
    -- (0.29.0) whose login a customer row is: its own (a sign-up), or an
    -- admin's decision — a customer rep re-pointed a customer's account_id
    -- to its own account and read that customer's orders outside its scope
    IF (CASE WHEN TG_OP = 'INSERT' THEN NEW.account_id IS NOT NULL AND NEW.account_id IS DISTINCT FROM orders.actor_account()
             ELSE NEW.account_id IS DISTINCT FROM OLD.account_id END)
       AND orders.current_staff_role() IS DISTINCT FROM 'admin' THEN
        PERFORM orders.refuse_column('orders.customers', 'account_id', 'admins (and a customer signing up, its own)');
    END IF;
    IF orders.has_permission('customers', 'edit') THEN
        RETURN NEW;
    END IF;
    IF (TG_OP = 'INSERT' AND NEW.tags <> '[]') OR (TG_OP = 'UPDATE' AND NEW.tags IS DISTINCT FROM OLD.tags) THEN
        PERFORM orders.refuse_column('orders.customers', 'tags', 'staff');
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION orders.item_price_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF orders.by_maintainer(TG_RELID) THEN
        RETURN NEW;
    ELSIF TG_OP = 'INSERT' THEN
        PERFORM orders.customer_item_price(NEW.product_id, NEW.variant_id, NEW.unit_price);
    ELSIF NEW.unit_price IS DISTINCT FROM OLD.unit_price THEN
        PERFORM orders.refuse_column('orders.order_items', 'unit_price', 'staff other than delivery agents');
    -- (0.29.0) nor what it is: an agent made two lamps two gold watches at
    -- the lamps' price, moving stock between products
    ELSIF NEW.product_id IS DISTINCT FROM OLD.product_id THEN
        PERFORM orders.refuse_column('orders.order_items', 'product_id', 'staff other than delivery agents');
    ELSIF NEW.variant_id IS DISTINCT FROM OLD.variant_id THEN
        PERFORM orders.refuse_column('orders.order_items', 'variant_id', 'staff other than delivery agents');
    END IF;
    RETURN NEW;
END
$$;

-- the column guards watch customer_id (orders), account_id (customers),
-- product_id and variant_id (items) too; a DBA's ENABLE/DISABLE kept
DO $upgrade$
DECLARE
    was "char";
    t record;
BEGIN
    FOR t IN SELECT * FROM (VALUES
        ('orders.orders', 'order_columns_guard',
         'BEFORE INSERT OR UPDATE OF priority, delivery_fee, total_amount, adjustment, payment_status,'
         ' assigned_rep_id, assigned_agent_id, source, webhook_source, delivery_proof, review_completed_at, reviewed_by,'
         ' leads_purchased, external_id, currency, confirmed_at, started_at, paused_at, reviewed_at, paid_at, shipped_at,'
         ' delivered_at, returned_at, completed_at, cancelled_at, customer_id'
         ' ON orders.orders FOR EACH ROW WHEN (orders.api_request())',
         'orders.order_columns_guard()'),
        ('orders.customers', 'customer_columns_guard',
         'BEFORE INSERT OR UPDATE OF tags, account_id ON orders.customers FOR EACH ROW WHEN (orders.api_request())',
         'orders.customer_columns_guard()'),
        ('orders.order_items', 'item_price_guard',
         'BEFORE INSERT OR UPDATE OF unit_price, product_id, variant_id ON orders.order_items FOR EACH ROW'
         ' WHEN (orders.api_request() AND orders.current_staff_role() IS NOT DISTINCT FROM ''delivery_agent'')',
         'orders.item_price_guard()')) v(tab, name, event, fn)
    LOOP
        SELECT tgenabled INTO was FROM pg_catalog.pg_trigger
         WHERE tgrelid = t.tab::pg_catalog.regclass AND tgname = t.name;
        CONTINUE WHEN was IS NULL;      -- dropped by a DBA: left dropped
        EXECUTE pg_catalog.format('CREATE OR REPLACE TRIGGER %I %s EXECUTE FUNCTION %s', t.name, t.event, t.fn);
        IF was <> 'O' THEN
            EXECUTE pg_catalog.format('ALTER TABLE %s %s TRIGGER %I', t.tab,
                                      CASE was WHEN 'A' THEN 'ENABLE ALWAYS' WHEN 'R' THEN 'ENABLE REPLICA'
                                               ELSE 'DISABLE' END, t.name);
        END IF;
    END LOOP;
END
$upgrade$;

CREATE OR REPLACE FUNCTION orders.earned_currency_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF OLD.payment_status = 'collected' AND orders.status_category(OLD.lifecycle, OLD.status) = 'fulfilled' THEN
        RAISE EXCEPTION 'order "%" has earned % %: its currency stays', OLD.order_number, OLD.total_amount, OLD.currency
            USING ERRCODE = 'OR053',
                  HINT = 'Mark its payment refunded first (the refund is posted in its currency), then change the currency and collect it again.';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER earned_currency_guard BEFORE UPDATE OF currency ON orders.orders
    FOR EACH ROW WHEN (OLD.currency IS DISTINCT FROM NEW.currency)
    EXECUTE FUNCTION orders.earned_currency_guard();
REVOKE ALL ON FUNCTION orders.earned_currency_guard() FROM PUBLIC;
