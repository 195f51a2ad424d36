-- Benchmark fixtures for test/bench/webhooks.sh: (a) a Shopify webhook
-- "bench-shop" with a secret and the ready mapping, products KET-1, MUG-2,
-- TEA-3; pgcrypto (contrib) so that webhooks.sh signs the deliveries as the
-- shop does;
-- bench.shopify_order(n), shop order n as the text of its body (3 line
-- items, the customer a new one for odd n, else one of 1,000 returning);
-- (b) the same shapes in schema bench without the extension's triggers:
-- customers, orders, items and logs copied with LIKE ... INCLUDING
-- DEFAULTS INDEXES CONSTRAINTS, the same foreign keys between them and to
-- products, lifecycles and webhooks, and a unique index on the customers'
-- phone (the floor's ON CONFLICT; the extension finds a customer by phone
-- under an advisory lock instead).
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS bench CASCADE;
CREATE SCHEMA bench;
CREATE EXTENSION pgcrypto SCHEMA bench;
INSERT INTO orders.products (name, sku, price, stock_quantity) VALUES
  ('Stovetop Kettle', 'KET-1', 29.90, 1000000000),
  ('Stoneware Mug', 'MUG-2', 12.50, 1000000000),
  ('Sencha Green Tea', 'TEA-3', 6.40, 1000000000);
INSERT INTO orders.webhooks (name, source, endpoint, secret, field_mapping)
VALUES ('Bench shop', 'shopify', 'bench-shop', 'bench-secret-41c9', orders.webhook_mapping('shopify'));
CREATE SEQUENCE bench.ours_orders;
CREATE SEQUENCE bench.floor_orders;
CREATE SEQUENCE bench.checked_orders START 1000000000;

CREATE FUNCTION bench.shopify_order(n bigint) RETURNS text LANGUAGE sql STABLE AS $$
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
              FROM (SELECT CASE WHEN n % 2 = 0 THEN -(n % 1000) - 1 ELSE n END AS c) k) x,
           LATERAL (SELECT 29.90 * q1 + 12.50 * q2 + 6.40 * q3 AS items) t
$$;

-- (b) the floor: same-shaped tables, no triggers
CREATE TABLE bench.customers_floor (LIKE orders.customers INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING CONSTRAINTS);
DROP INDEX bench.customers_floor_phone_idx;      -- the copy of customers_phone_idx, made unique:
CREATE UNIQUE INDEX customers_floor_phone_key ON bench.customers_floor (phone);
CREATE TABLE bench.orders_floor (LIKE orders.orders INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING CONSTRAINTS INCLUDING GENERATED);
CREATE TABLE bench.items_floor (LIKE orders.order_items INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING CONSTRAINTS INCLUDING GENERATED);
CREATE TABLE bench.logs_floor (LIKE orders.webhook_logs INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING CONSTRAINTS);
ALTER TABLE bench.orders_floor ADD FOREIGN KEY (customer_id) REFERENCES bench.customers_floor (id) ON DELETE RESTRICT,
                               ADD FOREIGN KEY (lifecycle) REFERENCES orders.lifecycles (name);
ALTER TABLE bench.items_floor ADD FOREIGN KEY (order_id) REFERENCES bench.orders_floor (id) ON DELETE CASCADE,
                              ADD FOREIGN KEY (product_id) REFERENCES orders.products (id) ON DELETE RESTRICT,
                              ADD FOREIGN KEY (product_id, variant_id) REFERENCES orders.product_variants (product_id, id) ON DELETE RESTRICT;
ALTER TABLE bench.logs_floor ADD FOREIGN KEY (order_created_id) REFERENCES bench.orders_floor (id) ON DELETE SET NULL,
                             ADD FOREIGN KEY (webhook_id) REFERENCES orders.webhooks (id) ON DELETE SET NULL;
VACUUM ANALYZE;
