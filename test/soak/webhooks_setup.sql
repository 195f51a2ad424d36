-- Webhook soak fixtures: one Shopify webhook "shop" with a secret and the
-- ready Shopify mapping, products KET-1, MUG-2, TEA-3 with plenty of stock,
-- pgcrypto (contrib) to sign payloads in the clients, soak.shopify_order(n)
-- building shop order n as Shopify sends it, the sequence of new shop
-- order numbers and the tally of deliveries made.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE SCHEMA soak;
CREATE EXTENSION pgcrypto SCHEMA soak;
INSERT INTO orders.products (name, sku, price, stock_quantity) VALUES
  ('Stovetop Kettle', 'KET-1', 29.90, 1000000000),
  ('Stoneware Mug', 'MUG-2', 12.50, 1000000000),
  ('Sencha Green Tea', 'TEA-3', 6.40, 1000000000);
INSERT INTO orders.webhooks (name, source, endpoint, secret, field_mapping)
VALUES ('Soak shop', 'shopify', 'soak-shop', 'soak-secret-7f3a', orders.webhook_mapping('shopify'));
CREATE SEQUENCE soak.shop_orders;
-- soak.shopify_order(n) — shop order n (Shopify id 5000000000000 + n) as
-- the text of its JSON body: 3 line items (quantities from n), a shipping
-- fee, total_price = items + fee.  Its customer (phone and email): one of
-- 50 returning customers for every 5th order, else new customer n / 3 —
-- consecutive orders, delivered at once by different clients, race to
-- create the same new customer.  The same n gives the same bytes (a
-- re-delivery).
CREATE FUNCTION soak.shopify_order(n bigint) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', 5000000000000 + n,
        'admin_graphql_api_id', 'gid://shopify/Order/' || (5000000000000 + n),
        'name', '#' || (1000 + n), 'order_number', 1000 + n,
        'email', 'buyer' || c || '@example.com', 'contact_email', 'buyer' || c || '@example.com',
        'phone', NULL, 'currency', 'USD', 'financial_status', 'paid', 'confirmed', true,
        'created_at', '2025-03-14T10:21:05-04:00', 'updated_at', '2025-03-14T10:21:07-04:00',
        'note', CASE WHEN n % 5 = 0 THEN 'Leave it with the concierge (' || n || ')' END,
        'subtotal_price', to_char(items, 'FM999999990.00'),
        'total_price', to_char(items + 5.90, 'FM999999990.00'),
        'total_shipping_price_set', jsonb_build_object(
            'shop_money', jsonb_build_object('amount', '5.90', 'currency_code', 'USD'),
            'presentment_money', jsonb_build_object('amount', '5.90', 'currency_code', 'USD')),
        'customer', jsonb_build_object('id', 7000000000000 + c, 'email', 'buyer' || c || '@example.com',
            'first_name', 'Buyer', 'last_name', 'No' || c, 'phone', phone),
        'shipping_address', jsonb_build_object('first_name', 'Buyer', 'last_name', 'No' || c, 'name', 'Buyer No' || c,
            'address1', abs(c) || ' Fifth Avenue', 'address2', 'Apt ' || (abs(c) % 40), 'city', 'New York', 'zip', '10118',
            'country_code', 'US', 'phone', phone),
        'line_items', jsonb_build_array(
            jsonb_build_object('id', 14000000000000 + 3 * n, 'sku', 'KET-1', 'title', 'Stovetop Kettle',
                               'name', 'Stovetop Kettle', 'quantity', q1, 'price', '29.90'),
            jsonb_build_object('id', 14000000000001 + 3 * n, 'sku', 'MUG-2', 'title', 'Stoneware Mug',
                               'name', 'Stoneware Mug - Blue / 350 ml', 'quantity', q2, 'price', '12.50'),
            jsonb_build_object('id', 14000000000002 + 3 * n, 'sku', 'TEA-3', 'title', 'Sencha Green Tea',
                               'name', 'Sencha Green Tea - 100 g', 'quantity', q3, 'price', '6.40')),
        'shipping_lines', jsonb_build_array(jsonb_build_object('code', 'Standard', 'price', '5.90')))::json::text
      FROM (SELECT c, CASE WHEN c < 0 THEN '+1556' || lpad((-c)::text, 7, '0') ELSE '+1555' || lpad(c::text, 7, '0') END AS phone,
                   1 + n % 3 AS q1, 1 + n % 2 AS q2, 1 + n % 4 AS q3
              FROM (SELECT CASE WHEN n % 5 = 0 THEN -(n % 50) - 1 ELSE n / 3 END AS c) k) x,
           LATERAL (SELECT 29.90 * q1 + 12.50 * q2 + 6.40 * q3 AS items) t
$$;
-- one row per delivery made, written in the transaction of the delivery:
-- kind new (first delivery), resend (same delivery id) or retry (same
-- shop order, new delivery id); started = the transaction's start,
-- answered = when ingest_webhook returned
CREATE TABLE soak.deliveries (
    n          bigint NOT NULL,
    delivery   text NOT NULL,
    kind       text NOT NULL,
    result     jsonb NOT NULL,
    started    timestamptz NOT NULL,
    answered   timestamptz NOT NULL
);
ANALYZE;
