-- Shop webhooks as PostgREST delivers them (issue 12): POST
-- /rpc/api_shop_webhook with the shop's raw JSON body, as anon, signature,
-- delivery id and topic in request.headers; the answer's HTTP status in
-- response.status.  The caller has EXECUTE and nothing else.
\set shop `cat test/webhooks/shopify_order.json | sed 's/5678901234567/7700001/'`
BEGIN;
SELECT plan(21);

-- pg_temp.request(body, signature, delivery) — one request as PostgREST runs it
CREATE FUNCTION pg_temp.request(body text, signature text, delivery text) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    res jsonb;
BEGIN
    PERFORM set_config('role', 'anon', true);
    PERFORM set_config('request.jwt.claims', '{"role":"anon"}', true);
    PERFORM set_config('request.headers', json_build_object('content-type', 'application/json',
        'x-shopify-hmac-sha256', signature, 'x-shopify-webhook-id', delivery,
        'x-shopify-topic', 'orders/create', 'x-shopify-shop-domain', 'api-shop.myshopify.com')::text, true);
    res := public.api_shop_webhook(body::json);
    PERFORM set_config('role', 'none', true);
    RETURN res || jsonb_build_object('response.status', current_setting('response.status', true));
END
$$;
CREATE TEMP TABLE r (name text PRIMARY KEY, res jsonb);
GRANT ALL ON pg_temp.r TO PUBLIC;
SELECT encode(hmac(:'shop', 'api-secret', 'sha256'), 'base64') AS sig \gset

INSERT INTO r SELECT 'first', pg_temp.request(:'shop', :'sig', 'wh-1');
SELECT is((SELECT res ->> 'status' || ' ' || (res ->> 'response.status') FROM r WHERE name = 'first'), 'created 201',
          'anon, signed in the headers: created, HTTP 201');
INSERT INTO r SELECT 'retry', pg_temp.request(:'shop', :'sig', 'wh-1');
SELECT is((SELECT res ->> 'status' || ' ' || (res ->> 'response.status') || ' ' || (res -> 'order_id' = (SELECT res -> 'order_id' FROM r WHERE name = 'first'))
             FROM r WHERE name = 'retry'), 'duplicate 200 true', 'Shopify''s retry of the delivery: duplicate of the first order, HTTP 200');
INSERT INTO r SELECT 'forged', pg_temp.request(:'shop', encode(hmac(:'shop', 'guess', 'sha256'), 'base64'), 'wh-2');
SELECT is((SELECT res ->> 'code' || ' ' || (res ->> 'response.status') FROM r WHERE name = 'forged'), 'OR091 401',
          'a forged signature: OR091, HTTP 401');
INSERT INTO r SELECT 'unsigned', pg_temp.request(:'shop', NULL, 'wh-3');
SELECT is((SELECT res ->> 'response.status' FROM r WHERE name = 'unsigned'), '401', 'no signature header: HTTP 401');

SELECT set_config('role', 'anon', true);
SELECT is((SELECT count(*)::int FROM information_schema.table_privileges
            WHERE grantee IN ('anon', 'PUBLIC') AND table_schema = 'orders'
              AND table_name IN ('customers', 'orders', 'order_items', 'webhooks', 'webhook_logs')), 0,
          'anon holds no right on customers, orders, items, webhooks or logs');
SELECT throws_ok($$SELECT count(*) FROM orders.webhook_logs$$, '42501', NULL, 'anon cannot read the logs');
SELECT throws_ok($$SELECT secret FROM orders.webhooks$$, '42501', NULL, 'nor the secrets');
SELECT set_config('role', 'none', true);

-- as the login (no API role): what the requests left, read through the owner's view of it
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"authenticated"}', true);
SELECT is((SELECT count(*)::int FROM orders.orders WHERE external_id = '7700001'), 1,
          'an admin sees the one order the four requests made');
SELECT is((SELECT string_agg(sku || 'x' || quantity, ' ' ORDER BY sku) FROM orders.order_items i
             JOIN orders.orders o ON o.id = i.order_id WHERE o.external_id = '7700001'),
          'KET-1x1 MUG-2x2 TEA-3x3', '... with its three items');
-- (0.37.0) what the ingest keeps in metadata ("webhook": the shop's last
-- update) no request writes — but an upsert sending the row as read does
-- not write it
SELECT ok((SELECT metadata ? 'webhook' FROM orders.orders WHERE external_id = '7700001'),
          '... its metadata holds the shop''s last update');
SELECT lives_ok($$INSERT INTO orders.orders (id, customer_id, lifecycle, created_at, metadata, notes)
                  SELECT id, customer_id, lifecycle, created_at, metadata, 'call first'
                    FROM orders.orders WHERE external_id = '7700001'
                  ON CONFLICT (id) DO UPDATE SET notes = EXCLUDED.notes, metadata = EXCLUDED.metadata$$,
                'an admin''s upsert of it sending metadata and created_at as read: accepted');
SELECT throws_ok($$UPDATE orders.orders SET metadata = metadata - 'webhook' WHERE external_id = '7700001'$$, 'OR060', NULL,
                 '... taking the key out: OR060');
-- (0.32.0) the label the ingest gives its changes (webhook:<endpoint>) is
-- nobody else's to set: no forged actor in history or the activity log
SELECT throws_ok($$SELECT set_config('orders.acting_for', 'webhook:api-shop', true)$$, '42501', NULL,
                 'a request may not name itself a webhook (orders.acting_for is the superuser''s)');
SELECT is(orders.current_actor(), '44444444-4444-4444-4444-444444444444', '... its actor is still its JWT subject');

-- (0.41.0) an admin's screens of deliveries and changes: the logs, the
-- webhooks without their secret, the activity log (GET /webhook_logs, …)
SELECT is((SELECT string_agg(response_status::text, ' ' ORDER BY response_status) FROM orders.webhook_logs l
             JOIN orders.webhooks w ON w.id = l.webhook_id WHERE w.endpoint = 'api-shop'),
          '200 201 401 401', '(0.41.0) an admin reads the four deliveries'' log rows (webhooks.view)');
SELECT is((SELECT name || ' ' || source || ' ' || is_active FROM orders.webhooks WHERE endpoint = 'api-shop'),
          'API shop, signed shopify true', '... and the webhook''s configuration');
SELECT throws_ok($$SELECT secret FROM orders.webhooks$$, '42501', NULL, '... not its secret (no column privilege)');
SELECT ok((SELECT count(*) FROM orders.activity_logs
            WHERE entity_type = 'orders' AND actor = 'webhook:api-shop' AND action = 'created') = 1,
          '... and the activity log: the order the webhook created (activity.view)');
SELECT throws_ok($$INSERT INTO orders.activity_logs (actor, action, entity_type) VALUES ('forged', 'created', 'orders')$$,
                 '42501', NULL, '... which it cannot write');
SELECT set_config('request.jwt.claims', '{"sub":"55555555-5555-5555-5555-555555555555","role":"authenticated"}', true);
SELECT is((SELECT count(*) FROM orders.activity_logs) + (SELECT count(*) FROM orders.webhook_logs)
          + (SELECT count(*) FROM orders.webhooks), 0::bigint, 'a customer rep reads none of them (no permission by default)');
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}', true);
SELECT is((SELECT count(*) FROM orders.activity_logs) + (SELECT count(*) FROM orders.webhook_logs)
          + (SELECT count(*) FROM orders.webhooks), 0::bigint, '... nor a customer');
SELECT * FROM finish();
ROLLBACK;
