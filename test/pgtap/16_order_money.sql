-- An order's amounts tied together: subtotal = its items, exact; total =
-- subtotal + delivery_fee + adjustment; writing the total sets adjustment;
-- what an order earns (revenue, customer statistics) follows its items.
BEGIN;
SELECT plan(54);

INSERT INTO orders.customers (id, full_name) VALUES ('00000000-0000-0000-0000-0000000016c1', 'Money Buyer');
INSERT INTO orders.orders (id, order_number, customer_id, delivery_fee, payment_method) VALUES
  ('00000000-0000-0000-0000-0000000016b1', 'T16-1', '00000000-0000-0000-0000-0000000016c1', 5, 'cod');
CREATE TEMP VIEW t16 AS
SELECT subtotal::numeric || ' + ' || delivery_fee::numeric || ' + ' || adjustment::numeric || ' = ' || total_amount::numeric AS m
  FROM orders.orders WHERE order_number = 'T16-1';

SELECT is((SELECT m FROM t16), '0.00 + 5.00 + 0.00 = 5.00', 'a new order: no items, the delivery fee');
INSERT INTO orders.order_items (id, order_id, name, quantity, unit_price) VALUES
  ('00000000-0000-0000-0000-0000000016e1', '00000000-0000-0000-0000-0000000016b1', 'Cup', 2, 3.50),
  ('00000000-0000-0000-0000-0000000016e2', '00000000-0000-0000-0000-0000000016b1', 'Pot', 1, 20);
SELECT is((SELECT m FROM t16), '27.00 + 5.00 + 0.00 = 32.00', 'items add to subtotal and total (one statement, two items)');
UPDATE orders.order_items SET quantity = 4 WHERE id = '00000000-0000-0000-0000-0000000016e1';
SELECT is((SELECT m FROM t16), '34.00 + 5.00 + 0.00 = 39.00', 'a changed quantity moves them by the difference');
DELETE FROM orders.order_items WHERE id = '00000000-0000-0000-0000-0000000016e2';
SELECT is((SELECT m FROM t16), '14.00 + 5.00 + 0.00 = 19.00', 'a removed item takes its total away');
UPDATE orders.orders SET adjustment = -4 WHERE order_number = 'T16-1';
SELECT is((SELECT m FROM t16), '14.00 + 5.00 + -4.00 = 15.00', 'an adjustment (a discount) moves the total');
UPDATE orders.orders SET total_amount = 18 WHERE order_number = 'T16-1';
SELECT is((SELECT m FROM t16), '14.00 + 5.00 + -1.00 = 18.00', 'writing the total sets the adjustment');
UPDATE orders.orders SET delivery_fee = 0 WHERE order_number = 'T16-1';
SELECT is((SELECT m FROM t16), '14.00 + 0.00 + -1.00 = 13.00', 'writing the fee moves the total');

-- refusals, each changing nothing
CREATE ROLE t16_client;
GRANT SELECT, UPDATE ON orders.orders TO t16_client;
CREATE POLICY t16 ON orders.orders TO t16_client USING (true);
SET LOCAL ROLE t16_client;
SELECT throws_ok($$UPDATE orders.orders SET subtotal = 1 WHERE order_number = 'T16-1'$$, 'OR014',
                 'order "T16-1": subtotal is maintained by the extension', 'a client cannot write the subtotal');
RESET ROLE;
SELECT throws_ok($$UPDATE orders.orders SET total_amount = 50, adjustment = 0 WHERE order_number = 'T16-1'$$, '23514',
                 'order "T16-1": total_amount must equal subtotal + delivery_fee + adjustment',
                 'a total and an adjustment that disagree are refused');
SELECT throws_ok($$UPDATE orders.orders SET adjustment = -20 WHERE order_number = 'T16-1'$$, '23514',
                 'order "T16-1": total_amount would be negative (subtotal + delivery_fee + adjustment)',
                 'a discount below 0 is refused');
SELECT throws_ok($$DELETE FROM orders.order_items WHERE order_id = '00000000-0000-0000-0000-0000000016b1'$$, '23514',
                 'order "T16-1": total_amount would be negative (subtotal + delivery_fee + adjustment)',
                 'items taken away below the discount are refused, naming the order');
SELECT throws_ok($$UPDATE orders.orders SET adjustment = 'NaN' WHERE order_number = 'T16-1'$$, '23514', NULL,
                 'an adjustment of NaN is refused');
SELECT is((SELECT m FROM t16), '14.00 + 0.00 + -1.00 = 13.00', '... nothing changed');

-- a new order given its total: the rest of the total is the adjustment
INSERT INTO orders.orders (id, order_number, customer_id, delivery_fee, total_amount) VALUES
  ('00000000-0000-0000-0000-0000000016b2', 'T16-2', '00000000-0000-0000-0000-0000000016c1', 2, 40);
SELECT is((SELECT subtotal::numeric || ' + ' || delivery_fee::numeric || ' + ' || adjustment::numeric || ' = ' || total_amount::numeric
             FROM orders.orders WHERE order_number = 'T16-2'), '0.00 + 2.00 + 38.00 = 40.00',
          'a new order with a total and no items keeps it (adjustment 38)');

-- what an order earns follows its items: revenue and the customer's total
DO $$ BEGIN
    PERFORM orders.transition('00000000-0000-0000-0000-0000000016b1', s)
       FROM unnest(ARRAY['confirmed', 'being_prepared', 'ready_for_pickup', 'out_for_delivery', 'delivered']) s;
END $$;
UPDATE orders.orders SET payment_status = 'collected' WHERE order_number = 'T16-1';
INSERT INTO orders.order_items (order_id, name, quantity, unit_price) VALUES
  ('00000000-0000-0000-0000-0000000016b1', 'Lid', 1, 7);
SELECT is((SELECT string_agg(type || ' ' || amount::numeric, ',' ORDER BY created_at, type DESC)
             FROM orders.financial_transactions WHERE order_id = '00000000-0000-0000-0000-0000000016b1'),
          'revenue 13.00,revenue 7.00', 'an item added to a delivered, collected order posts the difference');
SELECT is((SELECT total_spent::numeric FROM orders.customers WHERE full_name = 'Money Buyer'), 20.00::numeric,
          'and the customer''s total_spent follows');
SELECT is((SELECT count(*)::int FROM orders.ledger_discrepancies), 0, 'the ledger agrees with every order');

-- one statement over several orders (a bulk load): their subtotals moved by
-- one UPDATE after their rows are locked in id order — each exact
INSERT INTO orders.orders (id, order_number, customer_id) VALUES
  ('00000000-0000-0000-0000-0000000016b5', 'T16-5', '00000000-0000-0000-0000-0000000016c1'),
  ('00000000-0000-0000-0000-0000000016b4', 'T16-4', '00000000-0000-0000-0000-0000000016c1'),
  ('00000000-0000-0000-0000-0000000016b3', 'T16-3', '00000000-0000-0000-0000-0000000016c1');
INSERT INTO orders.order_items (order_id, name, quantity, unit_price)
SELECT ('00000000-0000-0000-0000-0000000016b' || k)::uuid, 'Bulk ' || k || '.' || n, n, k
  FROM generate_series(3, 5) k, generate_series(1, 3) n;
SELECT is((SELECT string_agg(order_number || ' ' || subtotal::numeric || '/' || total_amount::numeric, ', ' ORDER BY order_number)
             FROM orders.orders WHERE order_number IN ('T16-3', 'T16-4', 'T16-5')),
          'T16-3 18.00/18.00, T16-4 24.00/24.00, T16-5 30.00/30.00',
          'items of three orders in one statement: each order''s subtotal and total exact');
UPDATE orders.order_items SET quantity = quantity + 1 WHERE name LIKE 'Bulk %.1';
SELECT is((SELECT string_agg(order_number || ' ' || subtotal::numeric, ', ' ORDER BY order_number)
             FROM orders.orders WHERE order_number IN ('T16-3', 'T16-4', 'T16-5')),
          'T16-3 21.00, T16-4 28.00, T16-5 35.00', 'one UPDATE of items of three orders moves each by its own delta');
UPDATE orders.orders SET adjustment = -30 WHERE order_number = 'T16-5';
SELECT throws_ok($$DELETE FROM orders.order_items WHERE name LIKE 'Bulk %.3'$$, '23514',
                 'order "T16-5": total_amount would be negative (subtotal + delivery_fee + adjustment)',
                 'a statement over several orders that would take one below 0 is refused, naming it');
SELECT is((SELECT string_agg(order_number || ' ' || subtotal::numeric, ', ' ORDER BY order_number)
             FROM orders.orders WHERE order_number IN ('T16-3', 'T16-4', 'T16-5')),
          'T16-3 21.00, T16-4 28.00, T16-5 35.00', '... and none of the three orders changed');
SELECT is((SELECT count(*)::int FROM orders.recount_subtotals()), 0, 'every subtotal equals a recount');

-- one order's subtotal is written without an UPDATE statement while
-- orders.orders has only the extension's triggers (0.24.0): what it leaves
-- out (the orders' statement triggers) has nothing to do unless the order
-- has earned its total — a delivered order not yet collected
INSERT INTO orders.orders (id, order_number, customer_id, payment_method) VALUES
  ('00000000-0000-0000-0000-0000000016b6', 'T16-6', '00000000-0000-0000-0000-0000000016c1', 'cod');
DO $$ BEGIN
    PERFORM orders.transition('00000000-0000-0000-0000-0000000016b6', s)
       FROM unnest(ARRAY['confirmed', 'being_prepared', 'ready_for_pickup', 'out_for_delivery', 'delivered']) s;
END $$;
SET LOCAL track_functions = 'all';
CREATE FUNCTION pg_temp.revenue_calls() RETURNS bigint LANGUAGE sql AS
  $$ SELECT coalesce((SELECT calls FROM pg_stat_xact_user_functions
                       WHERE schemaname = 'orders' AND funcname = 'post_revenue'), 0) $$;
SELECT pg_temp.revenue_calls() AS revenue_calls \gset
INSERT INTO orders.order_items (order_id, name, quantity, unit_price) VALUES
  ('00000000-0000-0000-0000-0000000016b6', 'Bowl', 3, 4);
SELECT is(pg_temp.revenue_calls(), :revenue_calls::bigint + 0,
          'the subtotal of an order that earns nothing is written without an UPDATE (no statement trigger fired)');
SELECT is((SELECT subtotal::numeric || '/' || total_amount::numeric || ' ' || (updated_at = now())
             FROM orders.orders WHERE order_number = 'T16-6'), '12.00/12.00 true',
          'an item of a delivered, uncollected order: subtotal, total and updated_at follow');
SELECT is((SELECT count(*)::int FROM orders.financial_transactions WHERE order_id = '00000000-0000-0000-0000-0000000016b6'), 0,
          '... and nothing is posted before the payment');
UPDATE orders.orders SET payment_status = 'collected' WHERE order_number = 'T16-6';
SELECT is((SELECT string_agg(type || ' ' || amount::numeric, ',')
             FROM orders.financial_transactions WHERE order_id = '00000000-0000-0000-0000-0000000016b6'),
          'revenue 12.00', 'collecting posts the whole total, its item included');
-- a statement trigger of the DBA's on orders.orders sees the subtotal's
-- UPDATE (the statement is kept for tables that are not as installed)
CREATE TEMP TABLE t16_seen (n int);
CREATE FUNCTION pg_temp.t16_seen() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN INSERT INTO pg_temp.t16_seen SELECT count(*) FROM new_rows; RETURN NULL; END $$;
CREATE TRIGGER t16_seen AFTER UPDATE ON orders.orders REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.t16_seen();
SELECT pg_temp.revenue_calls() AS revenue_calls \gset
INSERT INTO orders.order_items (order_id, name, quantity, unit_price) VALUES
  ('00000000-0000-0000-0000-0000000016b3', 'Seen', 1, 2);
SELECT is(pg_temp.revenue_calls(), :revenue_calls::bigint + 1, '... by the UPDATE statement, with the orders'' statement triggers');
SELECT is((SELECT string_agg(n::text, ',') FROM t16_seen), '1', 'a DBA''s statement trigger sees the subtotal''s UPDATE');
DROP TRIGGER t16_seen ON orders.orders;
SELECT is((SELECT subtotal::numeric FROM orders.orders WHERE order_number = 'T16-3'), 23.00::numeric,
          '... and the subtotal is exact either way');

-- a direct write opens the table's indexes only when its new version needs
-- entries in them (0.24.0): a HOT update needs none; once the row's page
-- is full (60 writes in one transaction: no old version can be pruned) the
-- new versions go to other pages and need an entry in every index
INSERT INTO orders.orders (id, order_number, customer_id) VALUES
  ('00000000-0000-0000-0000-0000000016b9', 'T16-9', '00000000-0000-0000-0000-0000000016c1');
SELECT pg_stat_clear_snapshot();
SELECT n_tup_upd AS upd0, n_tup_hot_upd AS hot0 FROM pg_stat_xact_user_tables
 WHERE relid = 'orders.orders'::regclass \gset
DO $$ BEGIN
    FOR n IN 1..60 LOOP
        INSERT INTO orders.order_items (order_id, name, quantity, unit_price)
        VALUES ('00000000-0000-0000-0000-0000000016b9', 'Piece ' || n, 1, 1);
    END LOOP;
END $$;
SELECT ok((SELECT n_tup_hot_upd - :hot0 > 0 AND n_tup_upd - n_tup_hot_upd > :upd0 - :hot0
             FROM pg_stat_xact_user_tables WHERE relid = 'orders.orders'::regclass),
          'sixty subtotal writes: some HOT, some not');
SELECT is((SELECT subtotal::numeric FROM orders.orders WHERE order_number = 'T16-9'), 60.00::numeric,
          '... the subtotal exact');
-- (the indexes listed first, materialized: in one WHERE clause the planner
-- may call bt_index_check on rows the other conditions would drop)
SELECT is((WITH b AS MATERIALIZED (
               SELECT i.indexrelid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
                WHERE i.indrelid = 'orders.orders'::regclass AND a.amname = 'btree')
           SELECT count(*)::int FROM b WHERE public.bt_index_check(b.indexrelid, true) IS NOT NULL),
          (SELECT count(*)::int FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
            WHERE i.indrelid = 'orders.orders'::regclass AND a.amname = 'btree'),
          '... and every index of orders.orders has an entry for every row version that needs one (amcheck)');

-- the foreign keys of an order whose subtotal is written in the transaction
-- that inserted it: PostgreSQL checks them again at that write (the
-- order's own check may not have run yet); the extension runs that check
-- itself, under the caller's search path (direct_write.c).  Here the items
-- (the main statement) are written before the order of the WITH query, so
-- the order's own check comes after its subtotal's write, and finds that
-- version gone: only the write's check can refuse the unknown customer.
SELECT throws_ok($$WITH o AS (INSERT INTO orders.orders (id, customer_id, lifecycle)
                              VALUES ('00000000-0000-0000-0000-0000000016a1', '00000000-0000-0000-0000-0000000016ff', 'cod') RETURNING id)
                   INSERT INTO orders.order_items (order_id, name, quantity, unit_price)
                   VALUES ('00000000-0000-0000-0000-0000000016a1', 'Lid', 1, 2)$$,
                 '23503', 'insert or update on table "orders" violates foreign key constraint "orders_customer_id_fkey"',
                 'an order with an unknown customer is refused also when its subtotal is written before its own check');
SELECT is((SELECT count(*)::int FROM orders.orders WHERE id = '00000000-0000-0000-0000-0000000016a1'), 0,
          '... and neither it nor its item is there');
WITH o AS (INSERT INTO orders.orders (id, customer_id, lifecycle)
           VALUES ('00000000-0000-0000-0000-0000000016a2', '00000000-0000-0000-0000-0000000016c1', 'cod') RETURNING id)
INSERT INTO orders.order_items (order_id, name, quantity, unit_price)
VALUES ('00000000-0000-0000-0000-0000000016a2', 'Lid', 3, 2);
SELECT is((SELECT subtotal::numeric FROM orders.orders WHERE id = '00000000-0000-0000-0000-0000000016a2'), 6.00::numeric,
          '... with a known customer the same statement writes the order and its subtotal');
-- ... in PostgreSQL's order: before the AFTER row triggers named after it
-- (a DBA's that raises), after one named before it, whose error wins
CREATE FUNCTION pg_temp.t16_raise() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION '% fired', TG_NAME USING ERRCODE = 'P0002'; END $$;
CREATE TRIGGER zz_t16 AFTER UPDATE ON orders.orders FOR EACH ROW EXECUTE FUNCTION pg_temp.t16_raise();
SELECT throws_ok($$WITH o AS (INSERT INTO orders.orders (id, customer_id, lifecycle)
                              VALUES ('00000000-0000-0000-0000-0000000016a4', '00000000-0000-0000-0000-0000000016ff', 'cod') RETURNING id)
                   INSERT INTO orders.order_items (order_id, name, quantity, unit_price)
                   VALUES ('00000000-0000-0000-0000-0000000016a4', 'Lid', 1, 2)$$,
                 '23503', NULL, '... the key''s check fires before a trigger named after it');
DROP TRIGGER zz_t16 ON orders.orders;
CREATE TRIGGER "A_t16" AFTER UPDATE ON orders.orders FOR EACH ROW EXECUTE FUNCTION pg_temp.t16_raise();
SELECT throws_ok($$WITH o AS (INSERT INTO orders.orders (id, customer_id, lifecycle)
                              VALUES ('00000000-0000-0000-0000-0000000016a4', '00000000-0000-0000-0000-0000000016ff', 'cod') RETURNING id)
                   INSERT INTO orders.order_items (order_id, name, quantity, unit_price)
                   VALUES ('00000000-0000-0000-0000-0000000016a4', 'Lid', 1, 2)$$,
                 'P0002', 'A_t16 fired', '... and after a trigger named before it');
DROP TRIGGER "A_t16" ON orders.orders;
-- the AFTER row triggers that follow the check run under the owner's pinned search path, as before it
CREATE TEMP TABLE t16_paths (path text);
CREATE FUNCTION pg_temp.t16_path() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO pg_temp.t16_paths VALUES (current_schemas(false)::text); RETURN NULL; END $$;
CREATE TRIGGER zz_t16_path AFTER UPDATE ON orders.orders FOR EACH ROW EXECUTE FUNCTION pg_temp.t16_path();
WITH o AS (INSERT INTO orders.orders (id, customer_id, lifecycle)
           VALUES ('00000000-0000-0000-0000-0000000016a5', '00000000-0000-0000-0000-0000000016c1', 'cod') RETURNING id)
INSERT INTO orders.order_items (order_id, name, quantity, unit_price)
VALUES ('00000000-0000-0000-0000-0000000016a5', 'Lid', 1, 2);
SELECT is((SELECT string_agg(path, ';') FROM pg_temp.t16_paths), '{pg_catalog}',
          '... and a trigger after it still runs under the owner''s pinned search path');
DROP TRIGGER zz_t16_path ON orders.orders;
-- a deferrable key stays PostgreSQL's to check (when the constraint says)
ALTER TABLE orders.orders ALTER CONSTRAINT orders_customer_id_fkey DEFERRABLE INITIALLY DEFERRED;
SELECT lives_ok($$WITH o AS (INSERT INTO orders.orders (id, customer_id, lifecycle)
                             VALUES ('00000000-0000-0000-0000-0000000016a3', '00000000-0000-0000-0000-0000000016ff', 'cod') RETURNING id)
                  INSERT INTO orders.order_items (order_id, name, quantity, unit_price)
                  VALUES ('00000000-0000-0000-0000-0000000016a3', 'Lid', 1, 2)$$,
                'a deferred key: the statement passes ...');
SELECT throws_ok($$SET CONSTRAINTS orders.orders_customer_id_fkey IMMEDIATE$$, '23503',
                 'insert or update on table "orders" violates foreign key constraint "orders_customer_id_fkey"',
                 '... and the unknown customer is refused when the check comes due');
DELETE FROM orders.orders WHERE id = '00000000-0000-0000-0000-0000000016a3';
SET CONSTRAINTS orders.orders_customer_id_fkey IMMEDIATE;
ALTER TABLE orders.orders ALTER CONSTRAINT orders_customer_id_fkey NOT DEFERRABLE;

-- one statement over orders of which one has earned its total (0.33.0):
-- the others' subtotals written directly, in id order, the earned one's by
-- the UPDATE whose statement triggers post its revenue and statistics
CREATE TEMP TABLE t16_before AS
SELECT order_number, subtotal, total_amount FROM orders.orders WHERE order_number IN ('T16-1', 'T16-3', 'T16-4');
CREATE TEMP TABLE t16_spent AS SELECT total_spent FROM orders.customers WHERE full_name = 'Money Buyer';
INSERT INTO orders.order_items (order_id, name, quantity, unit_price)
SELECT ('00000000-0000-0000-0000-0000000016b' || k)::uuid, 'Mixed ' || k, 1, 2
  FROM unnest(ARRAY[4, 1, 3]) k;
SELECT is((SELECT count(*)::int FROM orders.orders o JOIN t16_before b USING (order_number)
            WHERE o.subtotal = b.subtotal + 2 AND o.total_amount = b.total_amount + 2), 3,
          'items of an earned and two open orders in one statement: each subtotal and total moved by its item');
SELECT is((SELECT amount::numeric FROM orders.financial_transactions
            WHERE order_id = '00000000-0000-0000-0000-0000000016b1' ORDER BY created_at DESC, id DESC LIMIT 1),
          2.00, '... the earned order posts its difference');
SELECT is((SELECT c.total_spent - s.total_spent FROM orders.customers c, t16_spent s WHERE c.full_name = 'Money Buyer'),
          2.00::numeric, '... and its customer''s total_spent follows');
SELECT is((SELECT count(*)::int FROM orders.ledger_discrepancies), 0, '... the ledger agrees with every order');
-- a DBA's AFTER row trigger on orders sees the statement whole: an item
-- moved from the earned order to an open one moves both subtotals before
-- either trigger fires (review: written directly, the open order's fired
-- before the earned one's UPDATE ran)
CREATE TEMP TABLE t16_sums_seen (subtotals numeric);
CREATE FUNCTION pg_temp.t16_sums_seen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pg_temp.t16_sums_seen SELECT sum(subtotal) FROM orders.orders
     WHERE order_number IN ('T16-1', 'T16-3', 'T16-4');
    RETURN NULL;
END $$;
CREATE TABLE pg_temp.t16_sum AS SELECT sum(subtotal) AS s FROM orders.orders WHERE order_number IN ('T16-1', 'T16-3', 'T16-4');
CREATE TRIGGER zz_t16_sums_seen AFTER UPDATE ON orders.orders FOR EACH ROW EXECUTE FUNCTION pg_temp.t16_sums_seen();
UPDATE orders.order_items SET order_id = '00000000-0000-0000-0000-0000000016b3' WHERE name = 'Mixed 1';
DROP TRIGGER zz_t16_sums_seen ON orders.orders;
SELECT is((SELECT array_agg(DISTINCT subtotals) FROM t16_sums_seen), (SELECT ARRAY[s] FROM pg_temp.t16_sum),
          '... a DBA''s row trigger sees both orders moved at each of its calls');
SELECT is((SELECT count(*)::int FROM t16_sums_seen), 2, '... once for each of the two orders');
UPDATE orders.order_items SET order_id = '00000000-0000-0000-0000-0000000016b1' WHERE name = 'Mixed 1';
DELETE FROM orders.order_items WHERE name LIKE 'Mixed %';
SELECT is((SELECT count(*)::int FROM orders.orders o JOIN t16_before b USING (order_number)
            WHERE o.subtotal = b.subtotal AND o.total_amount = b.total_amount), 3,
          '... and deleting them in one statement moves the three back');

-- repair
SET LOCAL session_replication_role = replica;
UPDATE orders.orders SET subtotal = 99 WHERE order_number = 'T16-1';
RESET session_replication_role;
SELECT is((SELECT stored::text || ' -> ' || counted::text FROM orders.recount_subtotals()), '99.00 -> 21.00',
          'recount_subtotals finds and repairs a wrong subtotal');
SELECT is((SELECT m FROM t16), '21.00 + 0.00 + -1.00 = 20.00', '... and the total follows');
SELECT is((SELECT count(*)::int FROM orders.recount_subtotals()), 0, 'a second recount finds nothing');

-- a DBA's check whose function changes a later order of the same direct
-- write (review): refused as the UPDATE refuses it (27000), also with no
-- BEFORE row trigger left on orders.orders to notice; the same change
-- rolled back inside the function leaves the write to go on
CREATE FUNCTION pg_temp.t16_touch(o uuid, undo boolean) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF o = '00000000-0000-0000-0000-0000000016b3' THEN
        BEGIN
            UPDATE orders.orders SET notes = coalesce(notes, '') || 't' WHERE id = '00000000-0000-0000-0000-0000000016b4';
            IF undo THEN RAISE EXCEPTION 'undo'; END IF;
        EXCEPTION WHEN raise_exception THEN NULL;
        END;
    END IF;
    RETURN true;
END $$;
ALTER TABLE orders.orders ADD CONSTRAINT t16_touch CHECK (pg_temp.t16_touch(id, true)) NOT VALID;
CREATE TEMP TABLE t16_was AS SELECT order_number, subtotal FROM orders.orders WHERE order_number IN ('T16-3', 'T16-4');
INSERT INTO orders.order_items (order_id, name, quantity, unit_price)
SELECT ('00000000-0000-0000-0000-0000000016b' || k)::uuid, 'Touched ' || k, 1, 1 FROM generate_series(3, 4) k;
SELECT is((SELECT count(*)::int FROM orders.orders o JOIN t16_was w USING (order_number)
            WHERE o.subtotal = w.subtotal + 1 AND o.notes IS NOT DISTINCT FROM NULL), 2,
          'a check''s change of a later order rolled back inside it: both subtotals written, the notes unchanged');
ALTER TABLE orders.orders DROP CONSTRAINT t16_touch,
      ADD CONSTRAINT t16_touch CHECK (pg_temp.t16_touch(id, false)) NOT VALID;
SELECT throws_ok($$INSERT INTO orders.order_items (order_id, name, quantity, unit_price)
                   SELECT ('00000000-0000-0000-0000-0000000016b' || k)::uuid, 'Touched ' || k, 1, 1 FROM generate_series(3, 4) k$$,
                 '27000', NULL, 'a check that changes a later order of the same write is refused');
DO $$
DECLARE t record;
BEGIN
    FOR t IN SELECT tgname FROM pg_trigger WHERE tgrelid = 'orders.orders'::regclass AND NOT tgisinternal
                AND (tgtype & 2) <> 0 AND (tgtype & 16) <> 0 LOOP   -- BEFORE, UPDATE
        EXECUTE format('DROP TRIGGER %I ON orders.orders', t.tgname);
    END LOOP;
END $$;
SELECT throws_ok($$INSERT INTO orders.order_items (order_id, name, quantity, unit_price)
                   SELECT ('00000000-0000-0000-0000-0000000016b' || k)::uuid, 'Touched ' || k, 1, 1 FROM generate_series(3, 4) k$$,
                 '27000', NULL, '... also with no BEFORE row trigger left on orders.orders');
SELECT is((SELECT count(*)::int FROM orders.orders o JOIN t16_was w USING (order_number)
            WHERE o.subtotal = w.subtotal + 1 AND o.notes IS NOT DISTINCT FROM NULL)
          + (SELECT count(*)::int FROM orders.order_items WHERE name LIKE 'Touched %'), 4,
          '... and the refused statements changed nothing: subtotals, notes and items as the first left them');

SELECT * FROM finish();
ROLLBACK;
