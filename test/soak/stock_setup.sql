-- Stock-and-money soak fixtures: 6 products (two with variants), some with
-- little stock so that refusals happen; 600 cod orders of 3 customers with
-- 1-3 stock items each; the starting stock and every restock are recorded so
-- that the stock can be recounted afterwards.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE SCHEMA soak;
INSERT INTO orders.customers (id, full_name)
SELECT ('70000000-0000-0000-0000-00000000000' || n)::uuid, 'Stock soak ' || n FROM generate_series(1, 3) n;
INSERT INTO orders.products (id, name, sku, price, stock_quantity)
SELECT ('71000000-0000-0000-0000-00000000000' || n)::uuid, 'Product ' || n, 'SK-' || n, 10 * n,
       CASE WHEN n <= 2 THEN 40 ELSE 400 END
  FROM generate_series(1, 6) n;
INSERT INTO orders.product_variants (id, product_id, sku, name, stock_quantity)
SELECT ('72000000-0000-0000-0000-0000000000' || p || v)::uuid, ('71000000-0000-0000-0000-00000000000' || p)::uuid,
       'SK-' || p || '-' || v, 'Variant ' || v, CASE WHEN v = 1 THEN 30 ELSE 300 END
  FROM generate_series(5, 6) p, generate_series(1, 2) v;
CREATE TABLE soak.initial AS
SELECT id, stock_quantity FROM orders.products UNION ALL SELECT id, stock_quantity FROM orders.product_variants;
CREATE TABLE soak.restocks (id uuid NOT NULL, units integer NOT NULL);
CREATE TABLE soak.refusals (code text NOT NULL);
INSERT INTO orders.orders (order_number, customer_id, total_amount, payment_method)
SELECT 'SS-' || n, ('70000000-0000-0000-0000-00000000000' || (1 + n % 3))::uuid, 5 + n % 50, 'cod'
  FROM generate_series(1, 600) n;
-- soak.add_items(order, n) — n random stock items (products 1-4, or a variant of 5-6)
CREATE FUNCTION soak.add_items(order_id uuid, n integer) RETURNS void LANGUAGE sql AS $$
    INSERT INTO orders.order_items (order_id, name, quantity, product_id, variant_id)
    SELECT order_id, 'item', 1 + (random() * 2)::int, ('71000000-0000-0000-0000-00000000000' || p)::uuid,
           CASE WHEN p >= 5 THEN ('72000000-0000-0000-0000-0000000000' || p || (1 + (random() > 0.5)::int))::uuid END
      FROM generate_series(1, n) g, LATERAL (SELECT 1 + (random() * 5 + g * 0)::int AS p) r
$$;
DO $$ BEGIN PERFORM soak.add_items(id, 1 + (random() * 2)::int) FROM orders.orders WHERE order_number LIKE 'SS-%'; END $$;
-- soak.new_order(customer) — a new cod order with two stock items
CREATE FUNCTION soak.new_order(customer integer) RETURNS void LANGUAGE plpgsql AS $$
DECLARE o uuid;
BEGIN
    INSERT INTO orders.orders (customer_id, total_amount, payment_method)
    VALUES (('70000000-0000-0000-0000-00000000000' || customer)::uuid, 12.5, 'cod') RETURNING id INTO o;
    PERFORM soak.add_items(o, 2);
END $$;
-- soak.try(sql) — run sql; a refusal of the extension is recorded, not raised
CREATE FUNCTION soak.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN SQLSTATE 'OR001' OR SQLSTATE 'OR050' OR SQLSTATE 'OR051' THEN
    INSERT INTO soak.refusals VALUES (SQLSTATE);
    RETURN SQLSTATE;
END $$;
