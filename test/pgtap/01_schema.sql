-- Schema shape: the public API names the issues promise.
BEGIN;
SELECT plan(27);

SELECT has_schema('orders');
SELECT has_table('orders', t, 'table orders.' || t) FROM unnest(ARRAY[
  'customers', 'orders', 'order_items', 'order_history',
  'lifecycles', 'lifecycle_states', 'lifecycle_transitions',
  'products', 'product_variants', 'financial_transactions', 'expenses']) t;
SELECT columns_are('orders', 'customers', ARRAY['id', 'account_id', 'full_name', 'email', 'phone',
  'address', 'city', 'area', 'postal_code', 'tags', 'notes', 'total_orders', 'total_spent',
  'return_rate', 'created_at', 'updated_at', 'returned_orders']);
SELECT columns_are('orders', 'order_history', ARRAY['id', 'order_id', 'old_status', 'new_status',
  'changed_by', 'notes', 'idempotency_key', 'created_at', 'announce']);
SELECT columns_are('orders', 'order_items', ARRAY['id', 'order_id', 'item_type', 'sku', 'name',
  'quantity', 'unit_price', 'total', 'snapshot', 'created_at', 'updated_at', 'product_id', 'variant_id']);
SELECT has_column('orders', 'orders', c, 'orders.orders.' || c) FROM unnest(ARRAY[
  'order_number', 'customer_id', 'lifecycle', 'status', 'priority', 'subtotal', 'delivery_fee',
  'total_amount', 'currency', 'payment_status', 'payment_method', 'metadata']) c
 WHERE c IN ('order_number', 'lifecycle', 'status', 'payment_status');
SELECT function_returns('orders', 'transition', ARRAY['uuid', 'text', 'text', 'text'], 'orders.orders');
SELECT function_returns('orders', 'allowed_transitions', ARRAY['uuid'], 'setof text');
SELECT volatility_is('orders', 'allowed_transitions', ARRAY['uuid'], 'stable');
SELECT volatility_is('orders', 'transition', ARRAY['uuid', 'text', 'text', 'text'], 'volatile');
SELECT is((SELECT count(*)::int FROM orders.lifecycles WHERE builtin), 4, 'four built-in lifecycles');
-- (0.36.0) the schema keeps its name (renamed, every write failed with 3F000)
SELECT throws_ok('ALTER SCHEMA orders RENAME TO shop', '0A000', 'schema "orders" of extension orders cannot be renamed',
                 'the extension''s schema cannot be renamed');
SELECT has_schema('orders', '... it is still orders');
SELECT lives_ok('CREATE SCHEMA t01_x; ALTER SCHEMA t01_x RENAME TO t01_y; ALTER SCHEMA orders OWNER TO CURRENT_USER',
                '... other schemas are renamed, and its owner may change');

SELECT * FROM finish();
ROLLBACK;
