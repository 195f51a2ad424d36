-- Customer statistics follow every change of orders, in every lifecycle,
-- by the category of the status; only the extension writes them.
BEGIN;
SELECT plan(26);

INSERT INTO orders.customers (id, full_name, total_orders, total_spent) VALUES
  ('00000000-0000-0000-0000-000000000ac1', 'Stats One', 42, 1000),
  ('00000000-0000-0000-0000-000000000ac2', 'Stats Two', 0, 0);
CREATE FUNCTION pg_temp.stats(uuid) RETURNS text LANGUAGE sql AS $$
  SELECT total_orders || ' orders, ' || total_spent || ' spent, ' || returned_orders || ' returned, ' || return_rate || '%'
    FROM orders.customers WHERE id = $1 $$;

SELECT is(pg_temp.stats('00000000-0000-0000-0000-000000000ac1'), '0 orders, 0.00 spent, 0 returned, 0.00%',
          'a new customer starts at zero whatever the INSERT says');

-- three cod orders, a campaign, a booking
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle, total_amount) VALUES
  ('00000000-0000-0000-0000-000000000a01', 'T7-1', '00000000-0000-0000-0000-000000000ac1', 'cod', 40),
  ('00000000-0000-0000-0000-000000000a02', 'T7-2', '00000000-0000-0000-0000-000000000ac1', 'cod', 60),
  ('00000000-0000-0000-0000-000000000a03', 'T7-3', '00000000-0000-0000-0000-000000000ac1', 'cod', 25),
  ('00000000-0000-0000-0000-000000000a04', 'T7-4', '00000000-0000-0000-0000-000000000ac1', 'campaign', 900),
  ('00000000-0000-0000-0000-000000000a05', 'T7-5', '00000000-0000-0000-0000-000000000ac1', 'booking', 70);
SELECT is(pg_temp.stats('00000000-0000-0000-0000-000000000ac1'), '5 orders, 0.00 spent, 0 returned, 0.00%', 'new orders count');

-- deliver and collect two cod orders
UPDATE orders.orders SET status = 'confirmed' WHERE order_number IN ('T7-1', 'T7-2');
UPDATE orders.orders SET status = 'being_prepared' WHERE order_number IN ('T7-1', 'T7-2');
UPDATE orders.orders SET status = 'ready_for_pickup' WHERE order_number IN ('T7-1', 'T7-2');
UPDATE orders.orders SET status = 'out_for_delivery' WHERE order_number IN ('T7-1', 'T7-2');
UPDATE orders.orders SET status = 'delivered' WHERE order_number IN ('T7-1', 'T7-2');
SELECT is(pg_temp.stats('00000000-0000-0000-0000-000000000ac1'), '5 orders, 0.00 spent, 0 returned, 0.00%',
          'delivered but not collected: not spent yet');
UPDATE orders.orders SET payment_status = 'collected' WHERE order_number IN ('T7-1', 'T7-2');
SELECT is(pg_temp.stats('00000000-0000-0000-0000-000000000ac1'), '5 orders, 100.00 spent, 0 returned, 0.00%',
          'collected: spent');
UPDATE orders.orders SET total_amount = 65 WHERE order_number = 'T7-2';
SELECT is(pg_temp.stats('00000000-0000-0000-0000-000000000ac1'), '5 orders, 105.00 spent, 0 returned, 0.00%',
          'an amount correction moves total_spent by the difference');
-- a return, a cancellation, a completed campaign and booking
SELECT orders.transition('00000000-0000-0000-0000-000000000a02', 'returned');
SELECT orders.transition('00000000-0000-0000-0000-000000000a03', 'cancelled');
SELECT is(pg_temp.stats('00000000-0000-0000-0000-000000000ac1'), '4 orders, 40.00 spent, 1 returned, 25.00%',
          'returned: out of spent, into the return rate; cancelled: out of the orders');
SELECT orders.transition('00000000-0000-0000-0000-000000000a04', 'active');
SELECT orders.transition('00000000-0000-0000-0000-000000000a04', 'completed');
UPDATE orders.orders SET payment_status = 'collected' WHERE order_number = 'T7-4';
SELECT orders.transition('00000000-0000-0000-0000-000000000a05', 'confirmed');
SELECT orders.transition('00000000-0000-0000-0000-000000000a05', 'no_show');
SELECT is(pg_temp.stats('00000000-0000-0000-0000-000000000ac1'), '3 orders, 940.00 spent, 1 returned, 33.33%',
          'other lifecycles count by category (completed campaign spent, no-show cancelled)');
-- an order moved to another customer, one deleted
UPDATE orders.orders SET customer_id = '00000000-0000-0000-0000-000000000ac2' WHERE order_number = 'T7-4';
SELECT is(pg_temp.stats('00000000-0000-0000-0000-000000000ac2'), '1 orders, 900.00 spent, 0 returned, 0.00%',
          'the new customer gains the order');
SELECT is(pg_temp.stats('00000000-0000-0000-0000-000000000ac1'), '2 orders, 40.00 spent, 1 returned, 50.00%',
          'the old customer loses it');
DELETE FROM orders.orders WHERE order_number = 'T7-2';
SELECT is(pg_temp.stats('00000000-0000-0000-0000-000000000ac1'), '1 orders, 40.00 spent, 0 returned, 0.00%',
          'a deleted order leaves the statistics');
SELECT is((SELECT count(*)::int FROM orders.recount_customer_stats()), 0, 'every statistic equals a recount');

-- one statement over several customers (a bulk load): their rows locked in
-- id order, one UPDATE for all — each customer exact
INSERT INTO orders.customers (id, full_name) VALUES
  ('00000000-0000-0000-0000-000000000ac5', 'Stats Five'), ('00000000-0000-0000-0000-000000000ac4', 'Stats Four'),
  ('00000000-0000-0000-0000-000000000ac3', 'Stats Three');
INSERT INTO orders.orders (order_number, customer_id, total_amount)
SELECT 'T7-B' || k || '-' || n, ('00000000-0000-0000-0000-000000000ac' || k)::uuid, 10 * k
  FROM generate_series(3, 5) k, generate_series(1, k) n;
UPDATE orders.orders SET status = 'cancelled' WHERE order_number LIKE 'T7-B%-1';
SELECT is((SELECT string_agg(full_name || ': ' || pg_temp.stats(id), '; ' ORDER BY full_name)
             FROM orders.customers WHERE full_name IN ('Stats Three', 'Stats Four', 'Stats Five')),
          'Stats Five: 4 orders, 0.00 spent, 0 returned, 0.00%; Stats Four: 3 orders, 0.00 spent, 0 returned, 0.00%; Stats Three: 2 orders, 0.00 spent, 0 returned, 0.00%',
          'orders of three customers made, and one of each cancelled, in one statement each: every customer exact');
SELECT is((SELECT count(*)::int FROM orders.recount_customer_stats()), 0, '... and equal to a recount');

-- one customer's statistics are written without an UPDATE statement
-- (customer_stats.c add_direct) while orders.customers is as installed;
-- the same values, refusals and triggers as the UPDATE
CREATE TEMP TABLE t7_seen (what text);
CREATE FUNCTION pg_temp.t7_after() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pg_temp.t7_seen VALUES (TG_LEVEL || ' ' || coalesce(NEW.total_orders::text, ''));
    RETURN NULL;
END $$;
CREATE TRIGGER t7_after AFTER UPDATE ON orders.customers FOR EACH ROW EXECUTE FUNCTION pg_temp.t7_after();
INSERT INTO orders.orders (order_number, customer_id, total_amount)
VALUES ('T7-D1', '00000000-0000-0000-0000-000000000ac2', 5);
SELECT is(pg_temp.stats('00000000-0000-0000-0000-000000000ac2'), '2 orders, 900.00 spent, 0 returned, 0.00%',
          'a new order of one customer: counted (written directly)');
SELECT is((SELECT string_agg(what, ',') FROM t7_seen), 'ROW 2', '... a DBA''s AFTER row trigger on customers sees the write');
DROP TRIGGER t7_after ON orders.customers;
-- overflows refused as the UPDATE refuses them, nothing changed
SET LOCAL session_replication_role = replica;
UPDATE orders.customers SET total_orders = 2147483647 WHERE id = '00000000-0000-0000-0000-000000000ac2';
UPDATE orders.customers SET total_spent = 999999999999.99 WHERE id = '00000000-0000-0000-0000-000000000ac1';
RESET session_replication_role;
SELECT throws_ok($$INSERT INTO orders.orders (order_number, customer_id) VALUES ('T7-D2', '00000000-0000-0000-0000-000000000ac2')$$,
                 '22003', 'integer out of range', 'an order count at the top of its type: refused');
SELECT is((SELECT count(*)::int FROM orders.orders WHERE order_number = 'T7-D2'), 0, '... and the order is not there');
SELECT throws_ok($$UPDATE orders.orders SET total_amount = 45 WHERE order_number = 'T7-1'$$,
                 '22003', 'numeric field overflow', 'a total spent beyond numeric(14,2): refused');
SELECT is((SELECT total_amount::numeric FROM orders.orders WHERE order_number = 'T7-1'), 40.00::numeric, '... and the order keeps its total');
SET LOCAL session_replication_role = replica;
UPDATE orders.customers SET total_orders = 2, total_spent = 900 WHERE id = '00000000-0000-0000-0000-000000000ac2';
UPDATE orders.customers SET total_spent = 40 WHERE id = '00000000-0000-0000-0000-000000000ac1';
RESET session_replication_role;
-- a DBA's BEFORE trigger that skips the write: the statement fails (09000) rather than the statistics going wrong
CREATE FUNCTION pg_temp.t7_skip() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE TRIGGER t7_skip BEFORE UPDATE ON orders.customers FOR EACH ROW EXECUTE FUNCTION pg_temp.t7_skip();
SELECT throws_like($$INSERT INTO orders.orders (order_number, customer_id) VALUES ('T7-D3', '00000000-0000-0000-0000-000000000ac2')$$,
                   'the statistics of customer % were not written: a trigger on orders.customers skipped them',
                   'a DBA''s BEFORE trigger skipping the statistics: refused (09000)');
SELECT is((SELECT count(*)::int FROM orders.orders WHERE order_number = 'T7-D3'), 0, '... and nothing changed');
DROP TRIGGER t7_skip ON orders.customers;
-- a DBA's statement trigger on customers: the UPDATE writes them, with the same values
CREATE FUNCTION pg_temp.t7_stmt() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO pg_temp.t7_seen VALUES (TG_LEVEL); RETURN NULL; END $$;
CREATE TRIGGER t7_stmt AFTER UPDATE ON orders.customers FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.t7_stmt();
INSERT INTO orders.orders (order_number, customer_id, total_amount)
VALUES ('T7-D4', '00000000-0000-0000-0000-000000000ac2', 5);
SELECT is(pg_temp.stats('00000000-0000-0000-0000-000000000ac2'), '3 orders, 900.00 spent, 0 returned, 0.00%',
          'with a DBA''s statement trigger on customers: counted by the UPDATE');
SELECT is((SELECT count(*)::int FROM t7_seen WHERE what = 'STATEMENT'), 1, '... which fires it');
DROP TRIGGER t7_stmt ON orders.customers;
-- a customer's only order cancelled: the rate back to 0, stored as numeric(5,2) stores it
INSERT INTO orders.customers (id, full_name) VALUES ('00000000-0000-0000-0000-000000000ac6', 'Stats Six');
INSERT INTO orders.orders (id, order_number, customer_id) VALUES
  ('00000000-0000-0000-0000-000000000a06', 'T7-D5', '00000000-0000-0000-0000-000000000ac6');
SELECT orders.transition('00000000-0000-0000-0000-000000000a06', 'cancelled');
SELECT is(pg_temp.stats('00000000-0000-0000-0000-000000000ac6'), '0 orders, 0.00 spent, 0 returned, 0.00%',
          'a customer''s only order cancelled: every statistic back to zero, as its columns store it');
SELECT is((SELECT count(*)::int FROM orders.recount_customer_stats()), 0, 'every statistic still equals a recount');

-- only the extension writes them
GRANT SELECT, UPDATE ON orders.customers TO staff;
SET LOCAL ROLE staff;
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444"}', true);  -- the admin
SELECT throws_ok($$UPDATE orders.customers SET total_spent = 1e6 WHERE id = '00000000-0000-0000-0000-000000000ac1'$$,
                 'OR014', NULL, 'a client cannot set total_spent');
RESET ROLE;
SELECT set_config('request.jwt.claims', '', true);

SELECT * FROM finish();
ROLLBACK;
