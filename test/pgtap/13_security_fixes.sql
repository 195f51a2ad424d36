-- Issue 16's findings besides the search_path escalation, each refused with
-- its own SQLSTATE and changing nothing: holds lapse by the clock, a slot is
-- never booked past max_capacity, COPY of a query is a live change, order
-- numbers are bounded and never cut, refusals name only what the caller may
-- see, notes and idempotency keys are bounded, availability hides staff.
BEGIN;
SELECT plan(37);

-- ------------------------------------------------------------ slots --
INSERT INTO orders.service_capacity (id, service_id, starts_at, ends_at, max_capacity) VALUES
  ('00000000-0000-0000-0000-0000000013a1', '00000000-0000-0000-0000-0000000013a0',
   now() + interval '1 day', now() + interval '1 day 1 hour', 1),
  ('00000000-0000-0000-0000-0000000013a2', '00000000-0000-0000-0000-0000000013a0',
   now() + interval '2 days', now() + interval '2 days 1 hour', 2);
CREATE TEMP VIEW t13_slot AS
SELECT id, booked_count || '/' || held_count || '/' || max_capacity AS counts FROM orders.service_capacity;

SELECT orders.reserve_time_slot('00000000-0000-0000-0000-0000000013a1') AS h1 \gset
-- the hold lapses while this transaction is still open: now() stays before it
UPDATE orders.slot_reservations SET expires_at = clock_timestamp() + interval '200 milliseconds' WHERE id = :'h1';
DO $$ BEGIN PERFORM pg_sleep(0.3); END $$;
SELECT ok(now() < (SELECT expires_at FROM orders.slot_reservations WHERE id = :'h1'),
          'the transaction started before the hold lapsed');
SELECT throws_ok(format('SELECT orders.confirm_booking(%L)', :'h1'), 'OR026', NULL,
                 'a hold that lapsed during the transaction is not confirmed (the clock decides, not now())');
SELECT is((SELECT status FROM orders.slot_reservations WHERE id = :'h1'), 'held', '... the hold is left as it was');
SELECT is((SELECT counts FROM t13_slot WHERE id = '00000000-0000-0000-0000-0000000013a1'), '0/1/1',
          '... and so are the slot''s counts');
SELECT orders.reserve_time_slot('00000000-0000-0000-0000-0000000013a1') AS h2 \gset
SELECT is((orders.confirm_booking(:'h2')).status, 'confirmed',
          'the next customer holds and books the place the lapsed hold had');

-- two live holds, then max_capacity lowered to 1: the second confirmation is refused
SELECT orders.reserve_time_slot('00000000-0000-0000-0000-0000000013a2') AS h3 \gset
SELECT orders.reserve_time_slot('00000000-0000-0000-0000-0000000013a2') AS h4 \gset
UPDATE orders.service_capacity SET max_capacity = 1 WHERE id = '00000000-0000-0000-0000-0000000013a2';
SELECT is((orders.confirm_booking(:'h3')).status, 'confirmed', 'the first hold is booked');
SELECT throws_ok(format('SELECT orders.confirm_booking(%L)', :'h4'), 'OR023',
                 format('time slot %s has no room to book 1 more: 1 of 1 booked', '00000000-0000-0000-0000-0000000013a2'),
                 'a booking beyond max_capacity is refused with OR023, not a check violation');
SELECT is((SELECT status FROM orders.slot_reservations WHERE id = :'h4'), 'held', '... the hold stays held');
SELECT is((SELECT counts FROM t13_slot WHERE id = '00000000-0000-0000-0000-0000000013a2'), '1/1/1',
          '... and the slot''s counts are unchanged');
SELECT is(pg_get_function_result('orders.available_slots(uuid,timestamptz,timestamptz)'::regprocedure) LIKE '%staff_id%',
          false, 'available_slots does not say which staff member serves a slot');

-- ------------------------------------------------------------ COPY --
-- COPY of a query is a live change: stock is taken and revenue posted.
INSERT INTO orders.customers (id, full_name, account_id) VALUES
  ('00000000-0000-0000-0000-0000000013c1', 'Copy Buyer', '00000000-0000-0000-0000-0000000013d1'),
  ('00000000-0000-0000-0000-0000000013c2', 'Other Buyer', '00000000-0000-0000-0000-0000000013d2');
INSERT INTO orders.products (id, name, sku, stock_quantity) VALUES
  ('00000000-0000-0000-0000-0000000013f1', 'Copy Lamp', 'T13-LAMP', 5),
  ('00000000-0000-0000-0000-0000000013f2', 'Rare Lamp', 'T13-RARE', 1);
INSERT INTO orders.orders (id, order_number, customer_id, total_amount, payment_method) VALUES
  ('00000000-0000-0000-0000-0000000013b1', 'T13-1', '00000000-0000-0000-0000-0000000013c1', 40, 'cod'),
  ('00000000-0000-0000-0000-0000000013b2', 'T13-2', '00000000-0000-0000-0000-0000000013c1', 10, 'cod');
INSERT INTO orders.order_items (order_id, name, quantity, product_id) VALUES
  ('00000000-0000-0000-0000-0000000013b1', 'Copy Lamp', 2, '00000000-0000-0000-0000-0000000013f1'),
  ('00000000-0000-0000-0000-0000000013b2', 'Rare Lamp', 3, '00000000-0000-0000-0000-0000000013f2');
\o /dev/null
COPY (SELECT (orders.transition('00000000-0000-0000-0000-0000000013b1', s)).status
        FROM unnest(ARRAY['confirmed', 'being_prepared', 'ready_for_pickup', 'out_for_delivery', 'delivered']) s)
  TO STDOUT;
COPY (UPDATE orders.orders SET payment_status = 'collected' WHERE order_number = 'T13-1' RETURNING id) TO STDOUT;
\o
SELECT is((SELECT stock_quantity::int FROM orders.products WHERE sku = 'T13-LAMP'), 3,
          'COPY (SELECT orders.transition(...)) TO STDOUT takes the stock');
SELECT is((SELECT string_agg(type || ' ' || amount::numeric, ',') FROM orders.financial_transactions
            WHERE order_id = '00000000-0000-0000-0000-0000000013b1'), 'revenue 40.00',
          'COPY (UPDATE ... RETURNING) TO STDOUT posts the revenue');

-- ------------------------------------------------------ order numbers --
DO $$ BEGIN PERFORM setval('orders.order_number_seq', 999998); END $$;
INSERT INTO orders.orders (customer_id) VALUES ('00000000-0000-0000-0000-0000000013c1') RETURNING order_number AS n1 \gset
INSERT INTO orders.orders (customer_id) VALUES ('00000000-0000-0000-0000-0000000013c1') RETURNING order_number AS n2 \gset
SELECT matches(:'n1'::text, '^ORD-[0-9]{4}-999999$', 'the generator gives ORD-<year>-<sequence>');
SELECT matches(:'n2'::text, '^ORD-[0-9]{4}-1000000$', 'past 999999 the sequence part grows instead of being cut');
SELECT throws_ok($$INSERT INTO orders.orders (order_number, customer_id)
                   VALUES (repeat('N', 65), '00000000-0000-0000-0000-0000000013c1')$$,
                 '22001', 'an order number may have at most 64 characters, not 65',
                 'an order number is at most 64 characters, for the owner too');
SELECT is((SELECT count(*)::int FROM orders.orders WHERE length(order_number) > 64), 0, '... nothing stored');

-- ------------------------------------------------------------- bounds --
SELECT throws_ok($$SELECT orders.transition('00000000-0000-0000-0000-0000000013b2', 'cancelled',
                                            idempotency_key => repeat('k', 256))$$,
                 '22001', 'orders.transition: argument "idempotency_key" may have at most 255 characters, not 256',
                 'an idempotency key is at most 255 characters (not an index-row 54000)');
SELECT throws_ok($$SELECT orders.transition('00000000-0000-0000-0000-0000000013b2', 'cancelled',
                                            notes => repeat('n', 10001))$$,
                 '22001', 'orders.transition: argument "notes" may have at most 10000 characters, not 10001',
                 'a transition note is at most 10000 characters');
SELECT throws_ok($$UPDATE orders.orders SET notes = repeat('é', 10001) WHERE order_number = 'T13-2'$$,
                 '22001', 'an order''s notes may have at most 10000 characters, not 10001',
                 'an order''s notes are at most 10000 characters (counted in characters)');
SELECT is((SELECT status || ' ' || coalesce(notes, '-') FROM orders.orders WHERE order_number = 'T13-2'), 'new -',
          '... the order is unchanged');
SELECT is((SELECT count(*)::int FROM orders.order_history WHERE order_id = '00000000-0000-0000-0000-0000000013b2'), 0,
          '... and has no history');
SELECT lives_ok($$UPDATE orders.orders SET notes = repeat('é', 10000) WHERE order_number = 'T13-2'$$,
                '10000 characters of notes are fine');
-- (0.40.0) a subject over 255 bytes is refused (it met the holds' index:
-- 54000); before, a 9000-character one was taken and cut in the payload
DO $$ BEGIN PERFORM set_config('request.jwt.claims', json_build_object('sub', repeat('s', 9000))::text, true); END $$;
SELECT throws_ok($$SELECT orders.transition('00000000-0000-0000-0000-0000000013b2', 'confirmation_pending')$$, '22023',
                 'the subject in setting "request.jwt.claims" is longer than 255 bytes (9000)',
                 'a 9000-character JWT subject is refused (22023)');
DO $$ BEGIN PERFORM set_config('request.jwt.claims', json_build_object('sub', repeat('s', 255))::text, true); END $$;
SELECT is((orders.transition('00000000-0000-0000-0000-0000000013b2', 'confirmation_pending')).status, 'confirmation_pending',
          'a 255-character JWT subject changes the status (the notification''s payload fields are cut)');
SELECT is((SELECT string_agg(length(changed_by)::text, ',') FROM orders.order_history WHERE order_id = '00000000-0000-0000-0000-0000000013b2'), '255',
          '... history keeps the whole actor, once');
DO $$ BEGIN PERFORM set_config('request.jwt.claims', '', true); END $$;

-- --------------------------------------- what a refusal may tell whom --
-- t13_blind writes leads and confirms orders, but may not read products
-- and sees no order (no SELECT on orders.orders for leads; RLS for orders)
CREATE ROLE t13_blind;
GRANT INSERT ON orders.leads TO t13_blind;
CREATE POLICY t13_writes ON orders.leads FOR INSERT TO t13_blind WITH CHECK (true);
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle, leads_purchased) VALUES
  ('00000000-0000-0000-0000-0000000013e1', 'T13-CAMPAIGN', '00000000-0000-0000-0000-0000000013c1', 'campaign', 1),
  ('00000000-0000-0000-0000-0000000013e2', 'T13-DRAFT', '00000000-0000-0000-0000-0000000013c1', 'campaign', 5);
UPDATE orders.orders SET status = 'active' WHERE order_number = 'T13-CAMPAIGN';
INSERT INTO orders.leads (customer_id, order_id, status) VALUES
  ('00000000-0000-0000-0000-0000000013c1', '00000000-0000-0000-0000-0000000013e1', 'lead');
UPDATE orders.orders SET status = 'active' WHERE order_number = 'T13-CAMPAIGN';  -- completed itself; back to active
SELECT is((SELECT status FROM orders.orders WHERE order_number = 'T13-CAMPAIGN'), 'active', 'the full campaign is active again');

SET LOCAL ROLE t13_blind;
SELECT throws_ok($$INSERT INTO orders.leads (customer_id, order_id, status)
                   VALUES ('00000000-0000-0000-0000-0000000013c1', '00000000-0000-0000-0000-0000000013e1', 'lead')$$,
                 'OR010', 'order 00000000-0000-0000-0000-0000000013e1 has no room for 1 more leads',
                 'OR010 to a writer who cannot see the order: neither its number nor its counts');
SELECT throws_ok($$INSERT INTO orders.leads (id, customer_id, order_id, status)
                   VALUES ('00000000-0000-0000-0000-0000000013e9', '00000000-0000-0000-0000-0000000013c2',
                           '00000000-0000-0000-0000-0000000013e2', 'new')$$,
                 'OR011', 'order 00000000-0000-0000-0000-0000000013e2 belongs to another customer than lead 00000000-0000-0000-0000-0000000013e9',
                 'OR011 to that writer names no order number and no customer') ;
SELECT throws_ok($$INSERT INTO orders.leads (customer_id, order_id, status)
                   VALUES ('00000000-0000-0000-0000-0000000013c1', '00000000-0000-0000-0000-0000000013e2', 'lead')$$,
                 'OR012', 'order 00000000-0000-0000-0000-0000000013e2 is not accepting leads',
                 'OR012 to that writer does not tell the status');
RESET ROLE;
SELECT throws_ok($$INSERT INTO orders.leads (customer_id, order_id, status)
                   VALUES ('00000000-0000-0000-0000-0000000013c1', '00000000-0000-0000-0000-0000000013e1', 'lead')$$,
                 'OR010', 'order "T13-CAMPAIGN" is full: 1 of 1 leads delivered, 1 more would exceed the purchase',
                 'OR010 to a caller who sees the order names it and its counts');
SELECT is((SELECT leads_delivered FROM orders.orders WHERE order_number = 'T13-CAMPAIGN'), 1,
          'no refused lead counted');

-- the visibility check never replaces the refusal with an error of its own:
-- a policy that fails, or a caller that turned row_security off
GRANT SELECT ON orders.orders TO t13_blind;
CREATE FUNCTION pg_temp.t13_broken() RETURNS boolean LANGUAGE sql AS 'SELECT 1/0 = 1';
CREATE POLICY t13_broken ON orders.orders FOR SELECT TO t13_blind USING (pg_temp.t13_broken());
SET LOCAL ROLE t13_blind;
SELECT throws_ok($$INSERT INTO orders.leads (customer_id, order_id, status)
                   VALUES ('00000000-0000-0000-0000-0000000013c1', '00000000-0000-0000-0000-0000000013e1', 'lead')$$,
                 'OR010', 'order 00000000-0000-0000-0000-0000000013e1 has no room for 1 more leads',
                 'a policy that fails while the refusal is shaped: still OR010, the order hidden');
SET LOCAL row_security = off;
SELECT throws_ok($$INSERT INTO orders.leads (customer_id, order_id, status)
                   VALUES ('00000000-0000-0000-0000-0000000013c1', '00000000-0000-0000-0000-0000000013e1', 'lead')$$,
                 '42501', 'query would be affected by row-level security policy for table "leads"',
                 'row_security = off: refused before any check (leads have policies since 0.8.0), nothing told');
RESET row_security;
RESET ROLE;
DROP POLICY t13_broken ON orders.orders;
REVOKE SELECT ON orders.orders FROM t13_blind;

-- a client confirming its own order, with no right on products
GRANT SELECT, UPDATE ON orders.orders TO t13_blind;
CREATE POLICY t13_client ON orders.orders TO t13_blind USING (customer_id = '00000000-0000-0000-0000-0000000013c1');
SET LOCAL ROLE t13_blind;
SELECT throws_ok($$SELECT orders.transition('00000000-0000-0000-0000-0000000013b2', 'confirmed')$$,
                 'OR050', 'insufficient stock for product 00000000-0000-0000-0000-0000000013f2 of this order',
                 'OR050 to a client without rights on products: no name, SKU or stock');
RESET ROLE;
SELECT throws_ok($$SELECT orders.transition('00000000-0000-0000-0000-0000000013b2', 'confirmed')$$,
                 'OR050', 'insufficient stock for product "Rare Lamp" (SKU T13-RARE): 3 needed, 1 in stock',
                 'OR050 to a caller who may read products names the product and the numbers');
SELECT is((SELECT stock_quantity::int FROM orders.products WHERE sku = 'T13-RARE'), 1, 'no stock moved');
SELECT is((SELECT status FROM orders.orders WHERE order_number = 'T13-2'), 'confirmation_pending', 'the order did not move');

SELECT * FROM finish();
ROLLBACK;
