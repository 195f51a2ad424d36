-- A COD order through PostgREST requests: the client confirms (its stock is
-- taken although clients have no right on products), the agent delivers and
-- collects (the revenue is posted once, recorded as the agent); clients
-- cannot touch the ledger, staff cannot forge automatic postings.
BEGIN;
SELECT plan(81);

-- request: client one confirms its COD order
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}', true);
WITH u AS (UPDATE orders.products SET stock_quantity = 0 RETURNING 1)
SELECT is(count(*)::int, 0, 'the client cannot change stock (row level security: no product is its to change)') FROM u;
SELECT throws_ok($$INSERT INTO orders.order_items (order_id, name, quantity, unit_price, product_id)
                   VALUES ('00000000-0000-0000-0000-0000000000b3', 'API Lamp', 1, 0.01, '00000000-0000-0000-0000-0000000000e1')$$,
                 'OR061', 'unit_price 0.01 is not the catalog''s price of product 00000000-0000-0000-0000-0000000000e1',
                 'the client cannot price an item of its cart itself (OR061: the catalog''s price, here 0, not named)');
SELECT throws_ok($$INSERT INTO orders.order_items (order_id, name, variant_id)
                   VALUES ('00000000-0000-0000-0000-0000000000b3', 'A variant', '00000000-0000-0000-0000-00000000ffff')$$,
                 'OR061', 'an item of variant 00000000-0000-0000-0000-00000000ffff names no product',
                 '... nor name a variant without its product (OR061)');
SELECT is((SELECT count(*)::int || ' ' || sum(unit_price) FROM orders.order_items WHERE order_id = '00000000-0000-0000-0000-0000000000b3'),
          '1 20.00', '... nothing added');
SELECT set_config('role', 'staff', true);
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
UPDATE orders.products SET is_active = false WHERE id = '00000000-0000-0000-0000-0000000000e1';
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}', true);
SELECT throws_ok($$INSERT INTO orders.order_items (order_id, name, quantity, product_id)
                   VALUES ('00000000-0000-0000-0000-0000000000b3', 'API Lamp', 1, '00000000-0000-0000-0000-0000000000e1')$$,
                 'OR061', 'product 00000000-0000-0000-0000-0000000000e1 is not for sale',
                 '... nor add a product the shop deactivated (OR061)');
SELECT set_config('role', 'staff', true);
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
UPDATE orders.products SET is_active = true WHERE id = '00000000-0000-0000-0000-0000000000e1';
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}', true);
-- (0.43.0) once staff priced the order (an adjustment), its items are
-- staff's: a discount of 5 on 20 would otherwise stay as the client cut
-- its items (a tenth off became a half, or the order free)
SELECT set_config('role', 'staff', true);
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
UPDATE orders.orders SET adjustment = -5 WHERE id = '00000000-0000-0000-0000-0000000000b3';
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}', true);
WITH u AS (UPDATE orders.order_items SET quantity = 1 WHERE order_id = '00000000-0000-0000-0000-0000000000b3' RETURNING 1)
SELECT is(count(*)::int, 0, 'an order staff priced: the client changes no item of it (row level security)') FROM u;
WITH d AS (DELETE FROM orders.order_items WHERE order_id = '00000000-0000-0000-0000-0000000000b3' RETURNING 1)
SELECT is(count(*)::int, 0, '... deletes none') FROM d;
SELECT throws_ok($$INSERT INTO orders.order_items (order_id, name, quantity, product_id)
                   VALUES ('00000000-0000-0000-0000-0000000000b3', 'API Lamp', 1, '00000000-0000-0000-0000-0000000000e1')$$,
                 '42501', NULL, '... adds none (42501)');
SELECT is((SELECT count(*)::int || ' ' || sum(i.unit_price) || ' ' || sum(i.quantity) || ' ' || min(o.subtotal) || ' ' || min(o.total_amount)
             FROM orders.order_items i JOIN orders.orders o ON o.id = i.order_id
            WHERE i.order_id = '00000000-0000-0000-0000-0000000000b3'), '1 20.00 2 40.00 35.00', '... its items and totals as they were');
SELECT set_config('role', 'staff', true);
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
UPDATE orders.orders SET adjustment = 0 WHERE id = '00000000-0000-0000-0000-0000000000b3';
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}', true);
SELECT is((orders.transition(order_id => '00000000-0000-0000-0000-0000000000b3', to_status => 'confirmed')).status,
          'confirmed', 'the client confirms its COD order');
WITH u AS (UPDATE orders.order_items SET unit_price = 0 WHERE order_id = '00000000-0000-0000-0000-0000000000b3' RETURNING 1)
SELECT is(count(*)::int, 0, 'once confirmed, the client changes no item of it (row level security)') FROM u;
WITH d AS (DELETE FROM orders.order_items WHERE order_id = '00000000-0000-0000-0000-0000000000b3' RETURNING 1)
SELECT is(count(*)::int, 0, '... deletes none') FROM d;
SELECT throws_ok($$INSERT INTO orders.order_items (order_id, name, quantity, product_id)
                   VALUES ('00000000-0000-0000-0000-0000000000b3', 'API Lamp', 1, '00000000-0000-0000-0000-0000000000e1')$$,
                 '42501', NULL, '... and adds none (42501)');
SELECT is((SELECT count(*)::int || ' ' || sum(unit_price) || ' ' || sum(quantity) FROM orders.order_items
            WHERE order_id = '00000000-0000-0000-0000-0000000000b3'), '1 20.00 2', '... its items as they were');
SELECT is((SELECT count(*)::int FROM orders.financial_transactions), 0, 'the client cannot read the ledger');

-- request: the agent delivers and collects the cash
SELECT set_config('role', 'staff', true);
SELECT set_config('request.jwt.claims', '{"sub":"33333333-3333-3333-3333-333333333333","role":"staff"}', true);
SELECT is((SELECT stock_quantity::integer FROM orders.products WHERE sku = 'API-LAMP'), 3,
          'the confirmation took the two lamps out of stock');
-- (0.28.0) an agent prices no item, and adds one at the catalog's price only
SELECT throws_ok($$UPDATE orders.order_items SET unit_price = 0 WHERE order_id = '00000000-0000-0000-0000-0000000000b3'$$,
                 'OR060', 'column "unit_price" of orders.order_items is reserved to staff other than delivery agents',
                 'the agent does not price its order''s items');
SELECT throws_ok($$INSERT INTO orders.order_items (order_id, name, quantity, unit_price, product_id)
                   VALUES ('00000000-0000-0000-0000-0000000000b3', 'API Lamp', 1, 5, '00000000-0000-0000-0000-0000000000e1')$$,
                 'OR061', NULL, '... and adds an item at the catalog''s price only');
-- (0.29.0) nor changes what an item is, nor whose its order is
SELECT throws_ok($$UPDATE orders.order_items SET product_id = NULL WHERE order_id = '00000000-0000-0000-0000-0000000000b3'$$,
                 'OR060', 'column "product_id" of orders.order_items is reserved to staff other than delivery agents',
                 '... nor makes its lamps another product (it moved stock between products)');
SELECT throws_ok($$UPDATE orders.orders SET customer_id = '00000000-0000-0000-0000-0000000000a3' WHERE order_number = 'API-3'$$,
                 'OR060', 'column "customer_id" of orders.orders is reserved to staff other than delivery agents',
                 '... nor moves its order to another customer (whom it then read)');
SELECT is((SELECT count(*)::int FROM orders.customers WHERE id = '00000000-0000-0000-0000-0000000000a3'), 0,
          '... nothing changed: Client Three stays out of its reach');
SELECT orders.transition('00000000-0000-0000-0000-0000000000b3', s)
  FROM unnest(ARRAY['being_prepared', 'ready_for_pickup', 'out_for_delivery', 'delivered']) s;
SELECT throws_ok($$UPDATE orders.orders SET payment_method = 'card' WHERE order_number = 'API-3'$$, 'OR060',
                 'column "payment_method" of orders.orders is reserved to staff other than delivery agents',
                 '(0.39.0) the agent does not relabel its cash order (the ledger''s revenue row would say card)');
SELECT lives_ok($$UPDATE orders.orders SET payment_status = 'failed' WHERE order_number = 'API-3'$$,
                'the agent records a failed collection (nobody home)');
SELECT lives_ok($$UPDATE orders.orders SET payment_status = 'collected' WHERE order_number = 'API-3'$$,
                'the agent marks the cash collected on the next attempt (PATCH)');
-- (0.28.0) an agent changes no amount, and a collected payment is not its to refund
SELECT throws_ok($$UPDATE orders.orders SET payment_status = 'refunded' WHERE order_number = 'API-3'$$, 'OR060',
                 'column "payment_status" of orders.orders is reserved to staff other than delivery agents (an agent collects, fails or retries a payment not yet collected)',
                 'the agent cannot mark the collected order refunded (the refund row would follow)');
SELECT throws_ok($$UPDATE orders.orders SET total_amount = 0 WHERE order_number = 'API-3'$$, 'OR060',
                 'column "total_amount" of orders.orders is reserved to staff other than delivery agents',
                 '... nor zero its total');
SELECT throws_ok($$UPDATE orders.orders SET currency = 'XOF' WHERE order_number = 'API-3'$$, 'OR053', NULL,
                 '... nor change its currency (0.29.0: nobody changes an earned order''s currency, OR053 before the agent''s OR060)');
SELECT throws_ok($$UPDATE orders.orders SET external_id = '5001', webhook_source = 'api-open' WHERE order_number = 'API-3'$$,
                 'OR060', 'column "external_id" of orders.orders is reserved to admins and managers',
                 '... nor make it a shop''s order (the shop''s next order would be taken for a duplicate)');
SELECT throws_ok($$UPDATE orders.order_items SET quantity = 1 WHERE order_id = '00000000-0000-0000-0000-0000000000b3'$$,
                 '42501', 'the items of order "API-3" are final for its delivery agent (status delivered, payment collected)',
                 '... nor change its items once it is delivered and collected (the total, and a refund, followed)');
SELECT throws_ok($$DELETE FROM orders.order_items WHERE order_id = '00000000-0000-0000-0000-0000000000b3'$$,
                 '42501', NULL, '... nor delete them');
-- (0.39.0) nor any change that keeps the subtotal: an agent moved stock
-- between a delivered order's products (a 0-priced gift up, a paid item
-- down) with the total unchanged
SELECT throws_ok($$UPDATE orders.order_items SET quantity = quantity WHERE order_id = '00000000-0000-0000-0000-0000000000b3'$$,
                 '42501', 'the items of order "API-3" are final for its delivery agent (status delivered, payment collected)',
                 '... nor changes them in a way that keeps the subtotal (0.39.0)');
SELECT throws_ok($$UPDATE orders.orders SET delivered_at = now() - interval '1 day' WHERE order_number = 'API-3'$$,
                 'OR060', 'column "delivered_at" of orders.orders is reserved to the lifecycle''s edges (orders.transition)',
                 '... nor backdate a stamp');
SELECT is((SELECT payment_status || ' ' || total_amount || ' ' || currency || ' ' || coalesce(external_id, '-')
             FROM orders.orders WHERE order_number = 'API-3'),
          'collected 40.00 USD -', '... nothing changed');
SELECT throws_ok($$INSERT INTO orders.expenses (category, amount) VALUES ('fuel', 3)$$, '42501', NULL,
                 'an agent may not record an expense (financial.create)');
SELECT lives_ok($$INSERT INTO orders.deliveries (order_id, agent_id, delivery_time)
                  VALUES ('00000000-0000-0000-0000-0000000000b3', orders.current_staff_id(), now())$$,
                'the agent records the delivery of its order');
SELECT throws_ok($$INSERT INTO orders.deliveries (order_id, agent_id, delivery_time)
                   VALUES ('00000000-0000-0000-0000-0000000000b1', orders.current_staff_id(), now())$$,
                 '42501', NULL, '... not one of an order that is not its own (42501)');
SELECT throws_ok($$INSERT INTO orders.deliveries (order_id, agent_id, delivery_time, rating)
                   VALUES ('00000000-0000-0000-0000-0000000000b3', orders.current_staff_id(), now(), 5)$$,
                 'OR060', 'column "rating" of orders.deliveries is reserved to staff other than delivery agents',
                 '... and rates none of its own deliveries (0.28.0: the customer''s verdict on it)');
SELECT throws_ok($$UPDATE orders.deliveries SET customer_feedback = 'Great agent!'
                    WHERE order_id = '00000000-0000-0000-0000-0000000000b3'$$,
                 'OR060', 'column "customer_feedback" of orders.deliveries is reserved to staff other than delivery agents',
                 '... nor writes their feedback');

-- request: the admin looks at the ledger and records an expense
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
SELECT is((SELECT string_agg(t.type || ' ' || t.amount || ' by ' || s.full_name, ', ')
             FROM orders.financial_transactions t JOIN orders.staff s ON s.id = t.recorded_by_user_id
            WHERE t.order_id = '00000000-0000-0000-0000-0000000000b3'),
          'revenue 40.00 by Api Agent', 'one revenue posting, recorded as the agent');
SELECT throws_ok($$INSERT INTO orders.financial_transactions (order_id, type, amount, automatic)
                   VALUES ('00000000-0000-0000-0000-0000000000b3', 'revenue', 40, true)$$,
                 'OR052', NULL, 'staff cannot forge an automatic posting');
SELECT lives_ok($$INSERT INTO orders.expenses (category, amount) VALUES ('fuel', 3)$$, 'the admin records an expense');
SELECT is((SELECT s.full_name FROM orders.expenses e JOIN orders.staff s ON s.id = e.recorded_by_user_id
            WHERE e.category = 'fuel'), 'Api Admin', 'recorded by the staff member the JWT names');
SELECT is((SELECT stock_quantity::integer FROM orders.products WHERE sku = 'API-LAMP'), 3, 'delivered goods stay out of stock');
SELECT is((SELECT count(*)::int FROM orders.orders), 4, 'the admin sees every order');
SELECT is((SELECT string_agg(o.order_number, ',') FROM orders.deliveries d JOIN orders.orders o ON o.id = d.order_id),
          'API-3', '... so the one delivery recorded is of the agent''s order');
-- a staff member who may record money records it in its own name
UPDATE orders.staff SET permissions = '{"financial": {"create": true, "edit": true, "view": true}}' WHERE id = '00000000-0000-0000-0000-0000000000e9';
SELECT lives_ok($$INSERT INTO orders.expenses (category, amount, recorded_by_user_id)
                  VALUES ('tolls', 2, '00000000-0000-0000-0000-0000000000e9')$$,
                'an admin may record an expense in another staff member''s name');
SELECT set_config('request.jwt.claims', '{"sub":"33333333-3333-3333-3333-333333333333","role":"staff"}', true);
SELECT throws_ok($$INSERT INTO orders.expenses (category, amount, recorded_by_user_id)
                   VALUES ('fuel', 9, '00000000-0000-0000-0000-0000000000e8')$$,
                 '42501', NULL, 'the agent (now with financial.create, edit, view) cannot record an expense as the admin');
SELECT throws_ok($$INSERT INTO orders.financial_transactions (type, amount, recorded_by_user_id)
                   VALUES ('revenue', 5, '00000000-0000-0000-0000-0000000000e8')$$,
                 '42501', NULL, '... nor a ledger row');
SELECT lives_ok($$INSERT INTO orders.expenses (category, amount) VALUES ('parking', 1)$$, '... but one of its own');
SELECT throws_ok($$UPDATE orders.expenses SET recorded_by_user_id = '00000000-0000-0000-0000-0000000000e8' WHERE category = 'parking'$$,
                 'OR060', 'column "recorded_by_user_id" of orders.expenses is reserved to admins',
                 '... which it cannot hand to the admin afterwards either (PATCH: OR060)');
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
SELECT is((SELECT string_agg(e.category || ' ' || e.amount || ' ' || s.full_name, ', ' ORDER BY e.category)
             FROM orders.expenses e JOIN orders.staff s ON s.id = e.recorded_by_user_id),
          'fuel 3.00 Api Admin, parking 1.00 Api Agent, tolls 2.00 Api Agent', '... the expenses as recorded, nothing forged');
SELECT is((SELECT count(*)::int FROM orders.financial_transactions WHERE type = 'revenue' AND amount = 5), 0,
          '... no forged ledger row');
-- a deactivated agent reads no delivery of its own any more
UPDATE orders.staff SET is_active = false WHERE id = '00000000-0000-0000-0000-0000000000e9';
SELECT set_config('request.jwt.claims', '{"sub":"33333333-3333-3333-3333-333333333333","role":"staff"}', true);
SELECT is((SELECT count(*)::int FROM orders.deliveries), 0, 'a deactivated agent reads none of its deliveries');
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);

-- a staff member who sees an order but may not edit it is told so (42501,
-- HTTP 403), not that it does not exist (OR006 stays for orders it cannot see)
UPDATE orders.staff SET permissions = '{"orders": {"edit": false}}' WHERE id = '00000000-0000-0000-0000-0000000000e7';
SELECT set_config('request.jwt.claims', '{"sub":"55555555-5555-5555-5555-555555555555","role":"staff"}', true);
SELECT is((SELECT status FROM orders.orders WHERE order_number = 'API-1'), 'configuring', 'the rep (orders.edit off) sees API-1');
SELECT throws_ok($$SELECT orders.transition('00000000-0000-0000-0000-0000000000b1', 'cancelled')$$, '42501',
                 'order "API-1" may not be changed by you', '... and may not change it: 42501 naming the order');
SELECT throws_ok($$SELECT orders.transition('00000000-0000-0000-0000-0000000000b1', 'cancelled', NULL, 'k-1')$$, '42501',
                 'order "API-1" may not be changed by you', '... also with an idempotency key');
SELECT throws_ok($$SELECT orders.transition('00000000-0000-0000-0000-00000000ffff', 'cancelled')$$, 'OR006',
                 'order 00000000-0000-0000-0000-00000000ffff does not exist', '... an order it cannot see: OR006');
SELECT is((SELECT status FROM orders.orders WHERE order_number = 'API-1'), 'configuring', '... nothing changed');
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);

-- a customer rep who moves an unassigned order becomes its rep (0.28.0):
-- cancelling one took it out of the rep's scope (unassigned orders only
-- while open), which row level security refused with a bare 42501
UPDATE orders.staff SET permissions = '{"orders": {"delete": true}}' WHERE id = '00000000-0000-0000-0000-0000000000e7';
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle) VALUES
  ('00000000-0000-0000-0000-0000000004c1', 'API-R1', '00000000-0000-0000-0000-0000000000a1', 'cod'),
  ('00000000-0000-0000-0000-0000000004c2', 'API-R2', '00000000-0000-0000-0000-0000000000a1', 'cod'),
  ('00000000-0000-0000-0000-0000000004c3', 'API-R3', '00000000-0000-0000-0000-0000000000a1', 'cod');
SELECT is((orders.transition('00000000-0000-0000-0000-0000000004c2', 'confirmed')).assigned_rep_id, NULL,
          'an admin who moves an unassigned order does not become its rep');
SELECT set_config('request.jwt.claims', '{"sub":"55555555-5555-5555-5555-555555555555","role":"staff"}', true);
SELECT is((orders.transition('00000000-0000-0000-0000-0000000004c3', 'confirmed')).assigned_rep_id, NULL,
          'a rep who confirms an unassigned order leaves it unassigned (it stays open: every rep''s)');
SELECT ok('cancelled' = ANY (ARRAY(SELECT orders.allowed_transitions('00000000-0000-0000-0000-0000000004c1'))),
          'a rep is offered cancelling an unassigned new order');
SELECT is((SELECT status || ' ' || assigned_rep_id FROM orders.transition('00000000-0000-0000-0000-0000000004c1', 'cancelled')),
          'cancelled 00000000-0000-0000-0000-0000000000e7', '... cancels it, and becomes its rep');
SELECT is((SELECT string_agg(new_status || ' by ' || changed_by, ', ') FROM orders.order_history
            WHERE order_id = '00000000-0000-0000-0000-0000000004c1'),
          'cancelled by 55555555-5555-5555-5555-555555555555', '... once, in its name');
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);

-- request: the client sees what it spent
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}', true);
SELECT is((SELECT total_spent FROM orders.customers WHERE full_name = 'Client One'), 40.00,
          'the client''s total_spent counts the collected order');
-- (0.28.0) the lifecycle's stamps, external_id and a placed order's currency are staff's
SELECT throws_ok($$UPDATE orders.orders SET delivered_at = NULL WHERE order_number = 'API-3'$$, 'OR060',
                 'column "delivered_at" of orders.orders is reserved to the lifecycle''s edges (orders.transition)', 'the client cannot clear a stamp');
SELECT throws_ok($$UPDATE orders.orders SET paid_at = now() WHERE order_number = 'API-R3'$$, 'OR060',
                 'column "paid_at" of orders.orders is reserved to the lifecycle''s edges (orders.transition)', '... nor set one');
SELECT throws_ok($$UPDATE orders.orders SET external_id = '1003' WHERE order_number = 'API-R3'$$, 'OR060',
                 'column "external_id" of orders.orders is reserved to staff', '... nor write external_id');
SELECT throws_ok($$UPDATE orders.orders SET currency = 'EUR' WHERE order_number = 'API-R3'$$, 'OR060',
                 'column "currency" of orders.orders is reserved to staff', '... nor change a placed order''s currency');
SELECT throws_ok($$INSERT INTO orders.orders (customer_id, lifecycle, cancelled_at)
                   VALUES ('00000000-0000-0000-0000-0000000000a1', 'cod', now())$$, 'OR060',
                 'column "cancelled_at" of orders.orders is reserved to the lifecycle''s edges (orders.transition)', '... nor place an order with a stamp');
-- (0.43.0) nor in a currency of its choice: the catalog's prices are the
-- shop's currency's (a 100.00 lamp was bought for 100 VND)
SELECT count(*) AS orders_before FROM orders.orders \gset
SELECT throws_ok($$INSERT INTO orders.orders (customer_id, lifecycle, currency)
                   VALUES ('00000000-0000-0000-0000-0000000000a1', 'cod', 'VND')$$, 'OR060',
                 'column "currency" of orders.orders is reserved to staff (a customer''s order is in the shop''s currency, the column''s default)',
                 '... nor place an order in another currency than the shop''s (the column''s default)');
SELECT is((SELECT count(*) FROM orders.orders), :orders_before::bigint, '... no order made');
SELECT lives_ok($$INSERT INTO orders.orders (customer_id, lifecycle, currency)
                  VALUES ('00000000-0000-0000-0000-0000000000a1', 'cod', 'USD')$$,
                'but places an order in the shop''s currency, named or not');
SELECT is(orders.default_currency(), 'USD', 'default_currency(): the column''s default');
SELECT is((SELECT string_agg(concat_ws(' ', currency, coalesce(external_id, '-'), paid_at IS NULL, delivered_at IS NULL), ','
                             ORDER BY order_number)
             FROM orders.orders WHERE order_number IN ('API-3', 'API-R3')), 'USD - t f,USD - t t', '... nothing changed');

-- (0.29.0) a customer row's login is its own (a sign-up) or an admin's
-- decision: a rep pointed a customer's account_id at its own account and
-- read that customer's orders outside its scope
SELECT set_config('role', 'staff', true);
SELECT set_config('request.jwt.claims', '{"sub":"55555555-5555-5555-5555-555555555555","role":"staff"}', true);
SELECT throws_ok($$UPDATE orders.customers SET account_id = '55555555-5555-5555-5555-555555555555'
                    WHERE id = '00000000-0000-0000-0000-0000000000a2'$$, 'OR060',
                 'column "account_id" of orders.customers is reserved to admins (and a customer signing up, its own)',
                 'a rep does not re-point a customer''s login to its own account');
SELECT throws_ok($$INSERT INTO orders.customers (full_name, account_id) VALUES ('Someone', '22222222-2222-2222-2222-222222222222')$$,
                 'OR060', NULL, '... nor makes a customer row for somebody else''s login');
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
SELECT is((SELECT account_id::text FROM orders.customers WHERE id = '00000000-0000-0000-0000-0000000000a2'),
          '22222222-2222-2222-2222-222222222222', '... nothing changed');
SELECT lives_ok($$UPDATE orders.customers SET account_id = NULL WHERE id = '00000000-0000-0000-0000-0000000000a2'$$,
                'an admin may (a login unlinked)');
-- (0.29.0) staff without the right to a write reach an order only as its
-- customer, and are judged as one: an accountant, customer of its own,
-- placed an order "collected" (and with its total 0)
INSERT INTO orders.staff (id, account_id, full_name, role) VALUES
  ('00000000-0000-0000-0000-0000000000ea', '88888888-8888-8888-8888-888888888888', 'Api Accountant', 'accountant');
SELECT set_config('request.jwt.claims', '{"sub":"88888888-8888-8888-8888-888888888888","role":"staff"}', true);
INSERT INTO orders.customers (id, full_name, account_id)
VALUES ('00000000-0000-0000-0000-0000000000a8', 'Accountant as customer', '88888888-8888-8888-8888-888888888888');
SELECT throws_ok($$INSERT INTO orders.orders (customer_id, lifecycle, payment_status)
                   VALUES ('00000000-0000-0000-0000-0000000000a8', 'cod', 'collected')$$, 'OR060',
                 'column "payment_status" of orders.orders is reserved to staff',
                 'an accountant ordering as its own customer places no order "collected"');
SELECT lives_ok($$INSERT INTO orders.orders (id, customer_id, lifecycle)
                  VALUES ('00000000-0000-0000-0000-0000000008a8', '00000000-0000-0000-0000-0000000000a8', 'cod')$$,
                '... but orders as a customer does');
SELECT throws_ok($$UPDATE orders.orders SET total_amount = 5 WHERE id = '00000000-0000-0000-0000-0000000008a8'$$, 'OR060',
                 'column "total_amount" of orders.orders is reserved to staff', '... and sets no total of it');

SELECT * FROM finish();
ROLLBACK;
