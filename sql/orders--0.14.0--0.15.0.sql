-- orders 0.14.0 -> 0.15.0
--  * orders.webhook_placement(endpoint, payload, signature, delivery_id):
--    where a shop's delivery belongs when the orders live on several nodes
--    behind the PL/Proxy proxy (issue 15): whether this node has the shop
--    order, and a route hash of the customer's phone (else email).  It
--    only reads; EXECUTE for everyone, like ingest_webhook.
--  * The library (no catalog change for these): the JWT claims setting
--    found once instead of by name per policy call; a delivery agent's open
--    orders read as one index range per run of open status names; the
--    caller's customer rows read only when a policy needs them.
\echo Use "ALTER EXTENSION orders UPDATE TO '0.15.0'" to load this file. \quit
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
    EXCEPTION WHEN invalid_text_representation OR untranslatable_character THEN
        RETURN jsonb_build_object('known', false);
    END;
    IF jsonb_typeof(doc) <> 'object' THEN
        RETURN jsonb_build_object('known', false);
    END IF;
    ext_id := left(orders.webhook_value(doc, w.field_mapping -> 'order' ->> 'external_id'), 255);
    IF ext_id IS NOT NULL THEN
        known := EXISTS (SELECT FROM orders.orders o WHERE o.webhook_source = w.endpoint AND o.external_id = ext_id);
    ELSE
        known := delivery_id IS NOT NULL
                 AND EXISTS (SELECT FROM orders.webhook_logs l
                              WHERE l.webhook_id = w.id AND l.delivery_id = webhook_placement.delivery_id
                                AND l.response_status BETWEEN 200 AND 299);
    END IF;
    c_phone := left(orders.webhook_value(doc, w.field_mapping -> 'customer' ->> 'phone'), 64);
    c_email := left(lower(orders.webhook_value(doc, w.field_mapping -> 'customer' ->> 'email')), 255);
    RETURN jsonb_strip_nulls(jsonb_build_object(
        'known', known,
        'route', hashtext(coalesce('phone ' || c_phone, 'email ' || c_email))));
END
$$;
COMMENT ON FUNCTION orders.webhook_placement(text, json, text, text) IS
    'Where a delivery belongs on a cluster of nodes: known here (the shop order is on this node), and a route hash of the customer (doc/scale-out.md)';
GRANT EXECUTE ON FUNCTION orders.webhook_placement(text, json, text, text) TO PUBLIC;
