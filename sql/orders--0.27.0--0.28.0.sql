-- orders 0.27.0 -> 0.28.0
--  * Staff's edges of the built-in agency and campaign lifecycles: a client
--    took its own agency order "payment received" (payment_pending ->
--    in_progress, stamping paid_at) and "completed", and reopened its
--    completed campaign.  analyzing -> reviewing, payment_pending ->
--    in_progress, in_progress -> completed / cancelled and campaign
--    draft / paused / completed -> active get allowed_staff, unless a DBA
--    set them.
--  * Deleting a client group of a paid or closed order took its approved
--    sites, and their items, away (the sites went by the foreign key's
--    cascade, when site_items no longer found their order): the group's
--    own trigger, orders.group_sites_stay, refuses first (OR073); a group
--    stays with its order (OR074: a client moved a paid order's group to
--    another order of its own and deleted it there).
--  * (library) A customer rep who closes an unassigned order becomes its
--    rep: cancelling one was refused with a bare row level security error.
--  * What a newcomer and two reviews found (doc/decisions.md, 0.28.0):
--    customers (and staff without the edge) wrote the lifecycle stamps
--    (cleared paid_at, changed a paid agency order, stamped it paid again)
--    — its edges' alone now; external_id (the shop's next order taken for
--    a duplicate) and a placed order's currency — staff's (OR060; the shop
--    ids admins' and managers'); a delivery agent changes no amount of an
--    order, prices no item, rates none of its deliveries and only collects,
--    fails or retries a payment; customers edit groups of unpaid orders only;
--    shop orders attach only to customers without a login (a customer
--    wrote a shopper's phone and took over their orders); a share link
--    that converts is made by staff with customers.edit (42501) and
--    redeemed by no staff account (OR084); staff start and resume
--    campaigns.
\echo Use "ALTER EXTENSION orders UPDATE TO '0.28.0'" to load this file. \quit

UPDATE orders.lifecycle_transitions t SET allowed_staff = w.who::text[]
  FROM (VALUES
    ('review',   'analyzing',       'reviewing',   '{admin,manager,customer_rep}'),
    ('review',   'payment_pending', 'in_progress', '{admin,manager}'),
    ('review',   'in_progress',     'completed',   '{admin,manager,customer_rep}'),
    ('review',   'in_progress',     'cancelled',   '{admin,manager}'),
    ('campaign', 'draft',           'active',      '{admin,manager,customer_rep}'),
    ('campaign', 'paused',          'active',      '{admin,manager,customer_rep}'),
    ('campaign', 'completed',       'active',      '{admin,manager,customer_rep}')
  ) w (lifecycle, from_status, to_status, who)
 WHERE t.lifecycle = w.lifecycle AND t.builtin AND t.from_status = w.from_status AND t.to_status = w.to_status
   AND t.allowed_staff IS NULL;

CREATE FUNCTION orders.group_sites_stay() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_group_sites_stay';
CREATE TRIGGER group_sites_stay BEFORE DELETE OR UPDATE OF order_id ON orders.order_groups
    FOR EACH ROW EXECUTE FUNCTION orders.group_sites_stay();
REVOKE ALL ON FUNCTION orders.group_sites_stay() FROM PUBLIC;

-- shop deliveries (doc/webhooks.md, 0.28.0): a shop's timestamp that is none
-- is not stored; shop orders attach only to customers without a login; an
-- update without items keeps them, one with items brings its currency; a
-- second update within the same second applies; items must be objects
CREATE FUNCTION orders.webhook_time(value text)
    RETURNS timestamptz
    LANGUAGE sql STABLE
RETURN CASE WHEN value ~ '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?)? ?(Z|z|[+-](0[0-9]|1[0-5])(:?[0-5][0-9])?)?$'
                 AND substr(value, 1, 4) <> '0000'
                 AND substr(value, 9, 2)::integer
                     <= extract(day FROM make_date(substr(value, 1, 4)::integer, substr(value, 6, 2)::integer, 1)
                                         + interval '1 month - 1 day')
            THEN value::timestamptz END;
GRANT EXECUTE ON FUNCTION orders.webhook_time(text) TO PUBLIC;

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
                SELECT o.metadata -> 'webhook' ->> 'updated_at' INTO stored_at FROM orders.orders o WHERE o.id = order_id FOR UPDATE;
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
                           delivery_area = coalesce(orders.webhook_value(doc, m -> 'customer' ->> 'city'), o.delivery_area),
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
                            'updated_at', CASE WHEN orders.webhook_time(orders.webhook_value(doc, m -> 'order' ->> 'updated_at')) IS NOT NULL
                                               THEN orders.webhook_value(doc, m -> 'order' ->> 'updated_at') END))))
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

CREATE OR REPLACE FUNCTION orders.ingest_webhook(endpoint text, payload json, signature text DEFAULT NULL,
                                      delivery_id text DEFAULT NULL, topic text DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- a body jsonb refuses — a \u0000 escape, valid JSON, the one thing a
    -- json value jsonb does not take in a UTF-8 database — is parsed after
    -- the signature check and logged as any malformed one (0.28.0: the call
    -- failed before the log); any other is parsed here, without the
    -- subtransaction that catching the error takes
    RETURN orders.webhook_ingest(endpoint, payload::text,
                                 CASE WHEN strpos(payload::text, '\u0000') = 0 THEN payload::jsonb END,
                                 signature, delivery_id, topic);
END
$$;

-- a webhook with orders is deactivated, not deleted
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
REVOKE ALL ON FUNCTION orders.webhook_keeps_orders() FROM PUBLIC;


-- customers edit groups, requirements and site reviews of unpaid orders only
CREATE OR REPLACE FUNCTION orders.customer_may_edit_items(order_id uuid) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT FROM orders.orders o
                    WHERE o.id = customer_may_edit_items.order_id
                      AND o.customer_id = ANY (orders.current_customer_ids())
                      AND o.paid_at IS NULL
                      AND orders.status_category(o.lifecycle, o.status) = 'open')
$$;

-- the lifecycle's stamps are its edges'; external_id and a placed order's
-- currency are staff's; a delivery agent changes no amount and only
-- collects, fails or retries a payment
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
    agent_fixed constant text[] := '{total_amount,adjustment,delivery_fee,currency,leads_purchased,source}';
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
    IF role IS NULL THEN
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
    IF was IS NOT NULL THEN             -- dropped by a DBA: left dropped
        CREATE OR REPLACE TRIGGER order_columns_guard
            BEFORE INSERT OR UPDATE OF priority, delivery_fee, total_amount, adjustment, payment_status,
                assigned_rep_id, assigned_agent_id, source, webhook_source, delivery_proof, review_completed_at, reviewed_by,
                leads_purchased, external_id, currency, confirmed_at, started_at, paused_at, reviewed_at, paid_at, shipped_at,
                delivered_at, returned_at, completed_at, cancelled_at
            ON orders.orders FOR EACH ROW WHEN (orders.api_request())
            EXECUTE FUNCTION orders.order_columns_guard();
        IF was <> 'O' THEN
            EXECUTE pg_catalog.format('ALTER TABLE orders.orders %s TRIGGER order_columns_guard',
                                      CASE was WHEN 'A' THEN 'ENABLE ALWAYS' WHEN 'R' THEN 'ENABLE REPLICA' ELSE 'DISABLE' END);
        END IF;
    END IF;
END
$upgrade$;

-- share links that convert: made by staff who may edit customers, redeemed by no staff account
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
    -- (0.28.0) a link that converts hands the order's customer row to
    -- whoever redeems it: staff who may edit customers make those (a
    -- delivery agent made one for a shop customer and took it over)
    IF 'convert' = ANY (allowed_actions) AND orders.api_request() AND NOT orders.has_permission('customers', 'edit') THEN
        RAISE EXCEPTION 'a share link that converts (allowed_actions "convert") is made by staff with permission customers.edit'
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
    -- (0.28.0) a staff account is nobody's customer: it acts on orders as staff
    IF EXISTS (SELECT FROM orders.staff s WHERE s.account_id = account) THEN
        RAISE EXCEPTION 'account % is staff: a share link converts a prospect, not a staff member', account
            USING ERRCODE = 'OR084', HINT = 'Redeem the link logged in as the customer it was made for.';
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

-- a delivery agent writes no rating or customer feedback of its deliveries
-- delivery_verdict_guard — in an API request a delivery agent writes no
-- delivery's rating or customer feedback (0.28.0): they are the customer's
-- verdict on the agent, which agent_performance_view averages (an agent
-- recorded ten five-star deliveries of one order).
CREATE FUNCTION orders.delivery_verdict_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF orders.by_maintainer(TG_RELID) OR orders.current_staff_role() IS DISTINCT FROM 'delivery_agent' THEN
        RETURN NEW;
    END IF;
    IF NEW.rating IS DISTINCT FROM (CASE WHEN TG_OP = 'UPDATE' THEN OLD.rating END) THEN
        PERFORM orders.refuse_column('orders.deliveries', 'rating', 'staff other than delivery agents');
    ELSIF NEW.customer_feedback IS DISTINCT FROM (CASE WHEN TG_OP = 'UPDATE' THEN OLD.customer_feedback END) THEN
        PERFORM orders.refuse_column('orders.deliveries', 'customer_feedback', 'staff other than delivery agents');
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER delivery_verdict_guard BEFORE INSERT OR UPDATE OF rating, customer_feedback ON orders.deliveries
    FOR EACH ROW WHEN (orders.api_request()) EXECUTE FUNCTION orders.delivery_verdict_guard();
REVOKE ALL ON FUNCTION orders.delivery_verdict_guard() FROM PUBLIC;

-- a delivery agent prices no item
CREATE FUNCTION orders.item_price_guard() RETURNS trigger
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
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER item_price_guard BEFORE INSERT OR UPDATE OF unit_price ON orders.order_items
    FOR EACH ROW WHEN (orders.api_request() AND orders.current_staff_role() IS NOT DISTINCT FROM 'delivery_agent')
    EXECUTE FUNCTION orders.item_price_guard();
REVOKE ALL ON FUNCTION orders.item_price_guard() FROM PUBLIC;

-- a share link reviews the sites of an open, unpaid order only
CREATE OR REPLACE FUNCTION orders.share_review_sites(token text, order_group_id uuid, selections jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t orders.order_share_tokens := orders.share_token_row(share_review_sites.token, 'approve');
    g orders.order_groups;
    o orders.orders;
BEGIN
    IF NOT EXISTS (SELECT FROM orders.order_groups og
                    WHERE og.id = share_review_sites.order_group_id AND og.order_id = t.order_id) THEN
        PERFORM orders.group_not_found(share_review_sites.order_group_id);
    END IF;
    -- (0.28.0) a link reviews what its order's customer may: the sites of an
    -- open, unpaid order (a customer's own link rewrote a paid order's
    -- approved site and rejected the others)
    SELECT * INTO o FROM orders.orders x WHERE x.id = t.order_id;
    IF o.paid_at IS NOT NULL OR orders.status_category(o.lifecycle, o.status) <> 'open' THEN
        RAISE EXCEPTION 'order "%" is %: its sites are final', o.order_number,
                        CASE WHEN o.paid_at IS NOT NULL THEN 'paid' ELSE o.status END
            USING ERRCODE = 'OR073', HINT = 'A share link reviews the sites of an order until it is paid.';
    END IF;
    g := orders.apply_review(share_review_sites.order_group_id, share_review_sites.selections, 'share:' || t.id);
    RETURN jsonb_build_object('id', g.id, 'link_count', g.link_count, 'approved', g.approved_count,
                              'rejected', g.rejected_count, 'suggested', g.suggested_count,
                              'group_status', g.group_status);
END
$$;

-- schedules as pg_cron reads them: no "n/step"; a day of month or week
-- starting with "*" makes both required
CREATE OR REPLACE FUNCTION orders.cron_field_values(field text, lo integer, hi integer)
    RETURNS integer[]
    LANGUAGE plpgsql IMMUTABLE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    part text;
    m text[];
    a integer;
    b integer;
    step integer;
    vals integer[] := '{}';
BEGIN
    FOREACH part IN ARRAY string_to_array(field, ',') LOOP
        m := regexp_match(part, '^(?:(\*)|([0-9]{1,2})-([0-9]{1,2})|([0-9]{1,2}))(?:/([0-9]{1,2}))?$');
        IF m IS NULL THEN
            RETURN NULL;
        END IF;
        IF m[1] = '*' THEN
            a := lo; b := hi;
        ELSIF m[2] IS NOT NULL THEN
            a := m[2]::integer; b := m[3]::integer;
        ELSE
            a := m[4]::integer; b := CASE WHEN m[5] IS NOT NULL THEN hi ELSE a END;
        END IF;
        step := coalesce(m[5]::integer, 1);
        IF a < lo OR b > hi OR a > b OR step < 1 THEN
            RETURN NULL;
        END IF;
        vals := vals || ARRAY(SELECT generate_series(a, b, step));
    END LOOP;
    RETURN vals;
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
    IF array_length(f, 1) IS DISTINCT FROM 5 OR f[1] ~ '(^|,)[0-9]{1,2}/' THEN
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

CREATE OR REPLACE FUNCTION orders.refuse_column(tbl text, col text, who text) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'column "%" of % is reserved to %', col, tbl, who
        USING ERRCODE = 'OR060',
              HINT = CASE WHEN who LIKE 'the lifecycle%'
                          THEN 'Leave it out of the request (or send it unchanged); the status change sets it.'
                          ELSE 'Leave it out of the request; staff with the right permission set it.' END;
END
$$;

CREATE OR REPLACE FUNCTION orders.booked_item_guard() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    places bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF EXISTS (SELECT FROM orders.slot_reservations r
                    WHERE r.order_item_id = OLD.id AND r.status IN ('held', 'confirmed')) THEN
            RAISE EXCEPTION 'order item % is booked: a slot reservation holds its place', OLD.id
                USING ERRCODE = 'OR031',
                      HINT = 'Cancel its order to give the place back (release_cancelled_bookings), or confirm the booking for another item first.';
        END IF;
        RETURN OLD;
    END IF;
    IF (NEW.product_id IS DISTINCT FROM OLD.product_id OR NEW.order_id IS DISTINCT FROM OLD.order_id)
       AND EXISTS (SELECT FROM orders.slot_reservations r
                    WHERE r.order_item_id = OLD.id AND r.status IN ('held', 'confirmed')) THEN
        IF NEW.order_id IS DISTINCT FROM OLD.order_id THEN
            RAISE EXCEPTION 'order item % is booked: it stays with its order', OLD.id
                USING ERRCODE = 'OR031', HINT = 'Cancel its order to give the place back, then book for an item of the other order.';
        END IF;
        RAISE EXCEPTION 'order item % is booked: its product stays', OLD.id
            USING ERRCODE = 'OR033', HINT = 'Cancel its order to give the place back, then book for another item.';
    END IF;
    IF NEW.quantity < OLD.quantity THEN
        places := (SELECT sum(r.quantity) FROM orders.slot_reservations r
                    WHERE r.order_item_id = OLD.id AND r.status = 'confirmed');
        IF places > NEW.quantity THEN
            RAISE EXCEPTION 'order item % books % places: its quantity cannot go below that', OLD.id, places
                USING ERRCODE = 'OR032', HINT = 'Cancel its order to give the places back.';
        END IF;
    END IF;
    RETURN NEW;
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
                      HINT = 'minute hour day-of-month month day-of-week, each *, n, a-b, optionally /step (no n/step in the minutes: pg_cron refuses it), joined by commas; for example 0 9 * * 1-5.';
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
DO $upgrade$
DECLARE
    was "char";
BEGIN
    -- a booked item's product and order stay: the trigger watches product_id and order_id too
    SELECT tgenabled INTO was FROM pg_catalog.pg_trigger
     WHERE tgrelid = 'orders.order_items'::pg_catalog.regclass AND tgname = 'booked_item_guard';
    IF was IS NOT NULL THEN             -- dropped by a DBA: left dropped
        CREATE OR REPLACE TRIGGER booked_item_guard BEFORE DELETE OR UPDATE OF quantity, product_id, order_id
            ON orders.order_items FOR EACH ROW EXECUTE FUNCTION orders.booked_item_guard();
        IF was <> 'O' THEN
            EXECUTE pg_catalog.format('ALTER TABLE orders.order_items %s TRIGGER booked_item_guard',
                                      CASE was WHEN 'A' THEN 'ENABLE ALWAYS' WHEN 'R' THEN 'ENABLE REPLICA' ELSE 'DISABLE' END);
        END IF;
    END IF;
END
$upgrade$;
