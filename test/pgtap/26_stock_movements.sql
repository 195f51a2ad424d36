-- Stock moved by hand (0.22.0, doc/stock_and_money.md "Moving stock"):
-- orders.move_stock moves once per movement id, never below 0, shares the
-- product's stock with the order lifecycle; every refusal leaves the stock
-- and the movements as they were.  (Races: isolation spec stock_movements;
-- API roles: pgtap_api 12.)
BEGIN;
SELECT plan(23);

CREATE FUNCTION pg_temp.err(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END $$;
-- pg_temp.state() — the stock of the test's products and variant, and the
-- number of movements
CREATE FUNCTION pg_temp.state() RETURNS text LANGUAGE sql AS $$
    SELECT (SELECT string_agg(sku || '=' || stock_quantity, ' ' ORDER BY sku) FROM orders.products WHERE sku LIKE 'MV-%')
           || ' ' || (SELECT string_agg(sku || '=' || stock_quantity, ' ' ORDER BY sku) FROM orders.product_variants WHERE sku LIKE 'MV-%')
           || ' ' || (SELECT count(*) FROM orders.stock_movements)::text || ' movements';
$$;

INSERT INTO orders.products (id, name, sku, price) VALUES
  ('a6000000-0000-0000-0000-0000000000a1', 'Lamp', 'MV-LAMP', 10),
  ('a6000000-0000-0000-0000-0000000000a2', 'Shirt', 'MV-SHIRT', 20);
INSERT INTO orders.product_variants (id, product_id, sku, name) VALUES
  ('a6000000-0000-0000-0000-0000000000b1', 'a6000000-0000-0000-0000-0000000000a2', 'MV-SHIRT-M', 'M');

-- goods received, then the same call again (a retry)
SELECT is((SELECT stock_after FROM orders.move_stock('a6000000-0000-0000-0000-000000000001', 'a6000000-0000-0000-0000-0000000000a1', 10,
                                                     reason => 'delivery 17')),
          10, 'ten lamps received: the movement says 10 in stock');
SELECT is(pg_temp.state(), 'MV-LAMP=10 MV-SHIRT=0 MV-SHIRT-M=0 1 movements', '... and so it is, one movement');
SELECT is((SELECT quantity || ' ' || stock_after || ' ' || moved_by || ' ' || reason
             FROM orders.stock_movements WHERE id = 'a6000000-0000-0000-0000-000000000001'),
          '10 10 ' || orders.current_actor() || ' delivery 17', '... recorded with who moved it and why');
SELECT is((SELECT stock_after FROM orders.move_stock('a6000000-0000-0000-0000-000000000001', 'a6000000-0000-0000-0000-0000000000a1', 10)),
          10, 'the same movement id again answers as the first time ...');
SELECT is(pg_temp.state(), 'MV-LAMP=10 MV-SHIRT=0 MV-SHIRT-M=0 1 movements', '... and moves nothing');
SELECT throws_ok($$SELECT orders.move_stock('a6000000-0000-0000-0000-000000000001', 'a6000000-0000-0000-0000-0000000000a1', 20)$$,
                 'OR119', 'stock movement a6000000-0000-0000-0000-000000000001 was already made with other values',
                 'the same id with another quantity: OR119');
SELECT is(pg_temp.state(), 'MV-LAMP=10 MV-SHIRT=0 MV-SHIRT-M=0 1 movements', '... nothing moved');

-- taking units: never below 0
SELECT is((SELECT stock_after FROM orders.move_stock('a6000000-0000-0000-0000-000000000002', 'a6000000-0000-0000-0000-0000000000a1', -4,
                                                     reason => 'broken')),
          6, 'four lamps written off: 6 left');
SELECT throws_ok($$SELECT orders.move_stock('a6000000-0000-0000-0000-000000000003', 'a6000000-0000-0000-0000-0000000000a1', -7)$$,
                 'OR050', 'insufficient stock for product "Lamp" (SKU MV-LAMP): 7 needed, 6 in stock',
                 'taking seven: OR050 naming the product and both numbers');
SELECT is(pg_temp.state(), 'MV-LAMP=6 MV-SHIRT=0 MV-SHIRT-M=0 2 movements', '... nothing moved, no movement recorded');
SELECT is((SELECT stock_after FROM orders.move_stock('a6000000-0000-0000-0000-000000000003', 'a6000000-0000-0000-0000-0000000000a1', -6)),
          0, '... so the refused id is free: taking the six left with it works');

-- a variant keeps its own stock
SELECT is((SELECT stock_after FROM orders.move_stock('a6000000-0000-0000-0000-000000000004', 'a6000000-0000-0000-0000-0000000000a2', 3,
                                                     'a6000000-0000-0000-0000-0000000000b1')),
          3, 'three shirts of size M received: the variant has 3');
SELECT is(pg_temp.state(), 'MV-LAMP=0 MV-SHIRT=0 MV-SHIRT-M=3 4 movements', '... the product''s own stock unchanged');
SELECT throws_ok($$SELECT orders.move_stock(gen_random_uuid(), 'a6000000-0000-0000-0000-0000000000a1', 1, 'a6000000-0000-0000-0000-0000000000b1')$$,
                 'OR120', 'product a6000000-0000-0000-0000-0000000000a1 has no variant a6000000-0000-0000-0000-0000000000b1',
                 'a variant of another product: OR120');
SELECT throws_ok($$SELECT orders.move_stock(gen_random_uuid(), gen_random_uuid(), 1)$$, 'OR120', NULL, 'an unknown product: OR120');

-- bad input: refused, nothing moved
SELECT is(pg_temp.err($$SELECT orders.move_stock(NULL, 'a6000000-0000-0000-0000-0000000000a1', 1)$$)
          || ' ' || pg_temp.err($$SELECT orders.move_stock(gen_random_uuid(), 'a6000000-0000-0000-0000-0000000000a1', NULL)$$)
          || ' ' || pg_temp.err($$SELECT orders.move_stock(gen_random_uuid(), 'a6000000-0000-0000-0000-0000000000a1', 0)$$)
          || ' ' || pg_temp.err($$SELECT orders.move_stock(gen_random_uuid(), 'a6000000-0000-0000-0000-0000000000a1', 1, reason => repeat('x', 501))$$)
          || ' ' || pg_temp.err($$SELECT orders.move_stock(gen_random_uuid(), 'a6000000-0000-0000-0000-0000000000a1', 1, transfer_partition => 4096)$$)
          || ' ' || pg_temp.err($$SELECT orders.move_stock(gen_random_uuid(), 'a6000000-0000-0000-0000-0000000000a1', 1,
                                                            transfer_partition => orders.partition_of(orders.new_id()))$$)
          || ' ' || pg_temp.err($$SELECT orders.move_stock(gen_random_uuid(), 'a6000000-0000-0000-0000-0000000000a1', 2147483647)$$),
          '22004 22004 22023 22023 22023 22023 ok',
          'NULL id or quantity 22004; quantity 0, a long reason, partition 4096 or this database''s own: 22023; a big quantity works');
SELECT is(pg_temp.state(), 'MV-LAMP=2147483647 MV-SHIRT=0 MV-SHIRT-M=3 5 movements', '... the refused ones moved nothing');
SELECT is(pg_temp.err($$SELECT orders.move_stock(gen_random_uuid(), 'a6000000-0000-0000-0000-0000000000a1', 1)$$),
          '22003', 'beyond the integer range: 22003 ...');
SELECT is(pg_temp.state(), 'MV-LAMP=2147483647 MV-SHIRT=0 MV-SHIRT-M=3 5 movements', '... nothing moved');
SELECT orders.move_stock(gen_random_uuid(), 'a6000000-0000-0000-0000-0000000000a1', -2147483647 + 5);

-- the order lifecycle draws from the same stock, under the same row lock
INSERT INTO orders.customers (id, full_name) VALUES ('a6000000-0000-0000-0000-0000000000c1', 'Mo');
INSERT INTO orders.orders (id, order_number, customer_id) VALUES
  ('a6000000-0000-0000-0000-0000000000d1', 'MV-1', 'a6000000-0000-0000-0000-0000000000c1');
INSERT INTO orders.order_items (order_id, product_id, name, quantity, unit_price) VALUES
  ('a6000000-0000-0000-0000-0000000000d1', 'a6000000-0000-0000-0000-0000000000a1', 'Lamp', 4, 10);
SELECT is((orders.transition('a6000000-0000-0000-0000-0000000000d1', 'confirmed')).status, 'confirmed',
          'an order of four lamps is confirmed: it takes four of the five');
SELECT throws_ok($$SELECT orders.move_stock(gen_random_uuid(), 'a6000000-0000-0000-0000-0000000000a1', -2)$$, 'OR050',
                 'insufficient stock for product "Lamp" (SKU MV-LAMP): 2 needed, 1 in stock',
                 'taking two more: OR050, one is left');
SELECT is((orders.transition('a6000000-0000-0000-0000-0000000000d1', 'cancelled')).status || ' '
          || (SELECT stock_after FROM orders.move_stock(gen_random_uuid(), 'a6000000-0000-0000-0000-0000000000a1', -2)),
          'cancelled 3', 'the order cancelled gives its four back: taking two leaves three');

-- the largest take there is: refused with the numbers, not an overflow
SELECT throws_ok($$SELECT orders.move_stock(gen_random_uuid(), 'a6000000-0000-0000-0000-0000000000a1', -2147483648)$$, 'OR050',
                 'insufficient stock for product "Lamp" (SKU MV-LAMP): 2147483648 needed, 3 in stock',
                 'taking -2147483648: OR050 with the numbers');

SELECT * FROM finish();
ROLLBACK;
