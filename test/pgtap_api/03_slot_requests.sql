-- Booking over the API: two clients (authenticated, different JWT subs)
-- hold and book places of one slot; neither can touch the other's hold;
-- anon may look at availability but not hold.
BEGIN;
SELECT plan(50);

-- request: client one holds the last place
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}', true);
SELECT isnt(orders.reserve_time_slot(capacity_id => '00000000-0000-0000-0000-0000000000f1'), NULL,
            'client one holds the slot (named arguments)');
SELECT is((SELECT count(*)::int FROM orders.available_slots(service_id => '00000000-0000-0000-0000-0000000000f0',
                                                             "from" => now(), "to" => now() + interval '7 days')), 0,
          'no place left on offer');

-- (0.42.0 library) a request whose JWT has no subject holds nothing: every
-- such request was the one holder "authenticated", releasing the others' holds
SELECT set_config('request.jwt.claims', '{"role":"authenticated"}', true);
SELECT throws_ok($$SELECT orders.reserve_time_slot('00000000-0000-0000-0000-0000000000f1')$$, '42501',
                 'orders.reserve_time_slot: the request names nobody to hold the place for',
                 'a request without a JWT subject gets no hold (42501)');

-- request: client two
SELECT set_config('request.jwt.claims', '{"sub":"22222222-2222-2222-2222-222222222222","role":"authenticated"}', true);
SELECT throws_ok($$SELECT orders.reserve_time_slot('00000000-0000-0000-0000-0000000000f1')$$, 'OR023', NULL,
                 'client two finds the slot full');
SELECT throws_ok($$SET LOCAL orders.hold_minutes = 1440$$, '42501', NULL,
                 'a client may not lengthen the holds it may ask for (orders.hold_minutes is the superuser''s, 0.28.0 library)');
-- only to look up the id (as the admin); a client would have it from its own call
SELECT set_config('role', 'staff', true);
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
SELECT id AS hold FROM orders.slot_reservations LIMIT 1 \gset
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"22222222-2222-2222-2222-222222222222","role":"authenticated"}', true);
SELECT throws_ok(format('SELECT orders.confirm_booking(%L)', :'hold'), '42501', NULL, 'client two cannot confirm client one''s hold');
SELECT throws_ok(format('SELECT orders.release_reservation(%L)', :'hold'), '42501', NULL, 'nor release it');

-- request: client one books it, for the item of its booking order
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}', true);
SELECT throws_ok(format('SELECT orders.confirm_booking(%L)', :'hold'), 'OR028',
                 format('reservation %s can be booked only for an item of the holder''s orders', :'hold'),
                 'a booking without an order item is refused (OR028: nobody could give it back)');
SELECT is((SELECT status || ' ' || (order_item_id IS NULL) FROM orders.slot_reservations WHERE id = :'hold'), 'held true',
          '... and the hold stays a hold');
INSERT INTO orders.orders (id, customer_id, lifecycle)
VALUES ('00000000-0000-0000-0000-0000000003b1', '00000000-0000-0000-0000-0000000000a1', 'booking');
INSERT INTO orders.order_items (id, order_id, name, item_type)
VALUES ('00000000-0000-0000-0000-0000000003c1', '00000000-0000-0000-0000-0000000003b1', 'Massage', 'service');
SELECT is((orders.confirm_booking(reservation_id => :'hold', order_item_id => '00000000-0000-0000-0000-0000000003c1')).status,
          'confirmed', 'client one books its hold for its item');
SELECT is((orders.confirm_booking(reservation_id => :'hold')).status, 'confirmed', 'a retried request changes nothing');
SELECT throws_ok($$DELETE FROM orders.order_items WHERE id = '00000000-0000-0000-0000-0000000003c1'$$, 'OR031',
                 'order item 00000000-0000-0000-0000-0000000003c1 is booked: a slot reservation holds its place',
                 'the client cannot delete the booked item from its (still pending) order: its place could not be given back (OR031)');
SELECT is((SELECT status || ' ' || (order_item_id IS NOT NULL) FROM orders.slot_reservations WHERE id = :'hold'), 'confirmed true',
          '... the booking keeps its item');
-- each place is one unit of the booked item: two places for one massage are
-- refused until the item says two (and then it costs two)
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
SELECT set_config('role', 'staff', true);
UPDATE orders.service_capacity SET max_capacity = max_capacity + 2 WHERE id = '00000000-0000-0000-0000-0000000000f1';
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}', true);
INSERT INTO orders.orders (id, customer_id, lifecycle)
VALUES ('00000000-0000-0000-0000-0000000003b4', '00000000-0000-0000-0000-0000000000a1', 'booking');
INSERT INTO orders.order_items (id, order_id, name, item_type)
VALUES ('00000000-0000-0000-0000-0000000003c4', '00000000-0000-0000-0000-0000000003b4', 'Massage', 'service');
SELECT orders.reserve_time_slot('00000000-0000-0000-0000-0000000000f1', quantity => 2) AS hold4 \gset
SELECT throws_ok(format('SELECT orders.confirm_booking(%L, %L)', :'hold4', '00000000-0000-0000-0000-0000000003c4'), 'OR032',
                 format('reservation %s holds 2 places; order item 00000000-0000-0000-0000-0000000003c4 has 1 units, 0 of them booked already', :'hold4'),
                 'two places for an item of one unit: OR032 (a customer held 20 places for one service)');
UPDATE orders.order_items SET quantity = 2 WHERE id = '00000000-0000-0000-0000-0000000003c4';
SELECT is((orders.confirm_booking(:'hold4', '00000000-0000-0000-0000-0000000003c4')).status, 'confirmed',
          '... booked once the item has two units');
SELECT throws_ok($$UPDATE orders.order_items SET quantity = 1 WHERE id = '00000000-0000-0000-0000-0000000003c4'$$, 'OR032', NULL,
                 '... whose quantity then stays at two (OR032)');
SELECT is((SELECT quantity FROM orders.order_items WHERE id = '00000000-0000-0000-0000-0000000003c4'), 2, '... unchanged');
-- a booking the client completed itself could never be given back: the
-- check-in, completion and no-show are staff's (the built-in lifecycle)
INSERT INTO orders.orders (id, customer_id, lifecycle)
VALUES ('00000000-0000-0000-0000-0000000003b2', '00000000-0000-0000-0000-0000000000a1', 'booking');
INSERT INTO orders.order_items (id, order_id, name, item_type)
VALUES ('00000000-0000-0000-0000-0000000003c2', '00000000-0000-0000-0000-0000000003b2', 'Massage', 'service');
SELECT throws_ok($$SELECT orders.transition('00000000-0000-0000-0000-0000000003b2', 'confirmed')$$, '42501', NULL,
                 'the client does not confirm a second booking order itself (0.32.0: staff''s edge, "payment succeeded")');
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
SELECT set_config('role', 'staff', true);
SELECT is((orders.transition('00000000-0000-0000-0000-0000000003b2', 'confirmed')).status, 'confirmed', 'staff confirm it');
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}', true);
SELECT throws_ok($$SELECT orders.transition('00000000-0000-0000-0000-0000000003b2', 'completed')$$, '42501', NULL,
                 '... the client may not complete it (staff''s edge)');
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
SELECT set_config('role', 'staff', true);
SELECT is((orders.transition('00000000-0000-0000-0000-0000000003b2', 'completed')).status, 'completed', 'staff complete it');
-- staff behind a JWT (orders.edit) book for a customer's item (0.27.0 library)
INSERT INTO orders.orders (id, customer_id, lifecycle)
VALUES ('00000000-0000-0000-0000-0000000003b3', '00000000-0000-0000-0000-0000000000a1', 'booking');
INSERT INTO orders.order_items (id, order_id, name, item_type)
VALUES ('00000000-0000-0000-0000-0000000003c3', '00000000-0000-0000-0000-0000000003b3', 'Massage', 'service');
UPDATE orders.service_capacity SET max_capacity = max_capacity + 1 WHERE id = '00000000-0000-0000-0000-0000000000f1';
SELECT is((orders.confirm_booking(orders.reserve_time_slot('00000000-0000-0000-0000-0000000000f1'),
                                  '00000000-0000-0000-0000-0000000003c3')).status, 'confirmed',
          'an admin (JWT, orders.edit) books a place for the item of a customer''s order');
SELECT throws_ok($$DELETE FROM orders.order_items WHERE id = '00000000-0000-0000-0000-0000000003c3'$$, 'OR031', NULL,
                 '... which nobody deletes while it is booked, staff included (OR031)');
UPDATE orders.service_capacity SET max_capacity = max_capacity + 1 WHERE id = '00000000-0000-0000-0000-0000000000f1';
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}', true);
SELECT orders.reserve_time_slot('00000000-0000-0000-0000-0000000000f1') AS hold2 \gset
SELECT throws_ok(format('SELECT orders.confirm_booking(%L, %L)', :'hold2', '00000000-0000-0000-0000-0000000003c2'), 'OR029',
                 format('order item 00000000-0000-0000-0000-0000000003c2 belongs to an order that is completed: reservation %s cannot be booked for it', :'hold2'),
                 '... whose item a hold cannot be booked for (OR029)');
SELECT is((SELECT status FROM orders.slot_reservations WHERE id = :'hold2'), 'held', '... the hold stays a hold');

-- (0.28.0 library) a slot whose service is a product of the catalog books
-- only an item of that product (a customer booked every place of a
-- massage slot for a one-unit sticker)
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
SELECT set_config('role', 'staff', true);
INSERT INTO orders.products (id, name, sku, price, stock_quantity) VALUES
  ('00000000-0000-0000-0000-0000000003e1', 'Premium massage', 'API-MASSAGE', 200, 10),
  ('00000000-0000-0000-0000-0000000003e2', 'Sticker', 'API-STICKER', 1, 10);
INSERT INTO orders.service_capacity (id, service_id, starts_at, ends_at) VALUES
  ('00000000-0000-0000-0000-0000000003f1', '00000000-0000-0000-0000-0000000003e1',
   now() + interval '2 days', now() + interval '2 days 1 hour');
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}', true);
INSERT INTO orders.orders (id, customer_id, lifecycle)
VALUES ('00000000-0000-0000-0000-0000000003b6', '00000000-0000-0000-0000-0000000000a1', 'booking');
INSERT INTO orders.order_items (id, order_id, name, item_type, unit_price, product_id) VALUES
  ('00000000-0000-0000-0000-0000000003c6', '00000000-0000-0000-0000-0000000003b6', 'Sticker', 'product', 1,
   '00000000-0000-0000-0000-0000000003e2'),
  ('00000000-0000-0000-0000-0000000003c7', '00000000-0000-0000-0000-0000000003b6', 'Premium massage', 'service', 200,
   '00000000-0000-0000-0000-0000000003e1');
SELECT orders.reserve_time_slot('00000000-0000-0000-0000-0000000003f1') AS hold3 \gset
SELECT throws_ok(format('SELECT orders.confirm_booking(%L, %L)', :'hold3', '00000000-0000-0000-0000-0000000003c6'), 'OR033',
                 'order item 00000000-0000-0000-0000-0000000003c6 is not of the service of slot 00000000-0000-0000-0000-0000000003f1',
                 'a massage slot is not booked for a sticker (OR033)');
SELECT is((orders.confirm_booking(:'hold3', '00000000-0000-0000-0000-0000000003c7')).status, 'confirmed',
          '... but for the massage item');
SELECT throws_ok($$UPDATE orders.order_items SET product_id = '00000000-0000-0000-0000-0000000003e2', unit_price = 1
                    WHERE id = '00000000-0000-0000-0000-0000000003c7'$$, 'OR033',
                 'order item 00000000-0000-0000-0000-0000000003c7 is booked: its product stays',
                 '... which does not turn into a sticker once booked');
SELECT throws_ok($$UPDATE orders.order_items SET order_id = '00000000-0000-0000-0000-0000000003b2'
                    WHERE id = '00000000-0000-0000-0000-0000000003c7'$$, 'OR031',
                 'order item 00000000-0000-0000-0000-0000000003c7 is booked: it stays with its order',
                 '... nor moves to another order');
-- (0.32.0) "payment succeeded" is staff's (the payment service's): the
-- client does not confirm its booking of 201.00, paid or not
SELECT throws_ok($$SELECT orders.transition('00000000-0000-0000-0000-0000000003b6', 'confirmed')$$, '42501', NULL,
                 'the client does not confirm its own booking (staff''s edge)');
SELECT set_config('role', 'staff', true);
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
UPDATE orders.orders SET payment_status = 'collected' WHERE id = '00000000-0000-0000-0000-0000000003b6';
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}', true);
SELECT throws_ok($$SELECT orders.transition('00000000-0000-0000-0000-0000000003b6', 'confirmed')$$, '42501', NULL,
                 '... not even once its payment is collected (its status follows the payment service, not the client)');
SELECT is((SELECT status FROM orders.orders WHERE id = '00000000-0000-0000-0000-0000000003b6'), 'pending', '... which stays pending');

-- (0.39.0) a staff member's long hold lapses when it is deactivated: it
-- kept its places for up to 24 hours (confirm_booking refused it, OR028)
SELECT set_config('role', 'staff', true);
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
INSERT INTO orders.staff (id, account_id, full_name, role) VALUES
  ('00000000-0000-0000-0000-0000000003d1', '33333333-0000-0000-0000-0000000003d1', 'API Front Desk', 'manager');
INSERT INTO orders.service_capacity (id, service_id, starts_at, ends_at, max_capacity) VALUES
  ('00000000-0000-0000-0000-0000000003f2', '00000000-0000-0000-0000-0000000000f0',
   now() + interval '3 days', now() + interval '3 days 1 hour', 2);
SELECT set_config('request.jwt.claims', '{"sub":"33333333-0000-0000-0000-0000000003d1","role":"staff"}', true);
SELECT orders.reserve_time_slot('00000000-0000-0000-0000-0000000003f2', duration_minutes => 1440, quantity => 2) AS desk_hold \gset
SELECT is((SELECT count(*)::int FROM orders.available_slots('00000000-0000-0000-0000-0000000000f0', now(), now() + interval '7 days')
            WHERE capacity_id = '00000000-0000-0000-0000-0000000003f2'), 0, 'the front desk holds both places for a day (the slot is off offer)');
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
UPDATE orders.staff SET is_active = false WHERE id = '00000000-0000-0000-0000-0000000003d1';
SELECT is((SELECT remaining FROM orders.available_slots('00000000-0000-0000-0000-0000000000f0', now(), now() + interval '7 days')
            WHERE capacity_id = '00000000-0000-0000-0000-0000000003f2'), 2,
          'the admin deactivates the front desk: its hold lapses, both places are free again (PATCH /staff)');
SELECT set_config('request.jwt.claims', '{"sub":"33333333-0000-0000-0000-0000000003d1","role":"staff"}', true);
SELECT throws_ok(format('SELECT orders.confirm_booking(%L)', :'desk_hold'), 'OR026', NULL,
                 '... and the deactivated member cannot book it any more (OR026: it lapsed)');
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}', true);
SELECT isnt(orders.reserve_time_slot('00000000-0000-0000-0000-0000000003f2', quantity => 2), NULL,
            '... a client holds the two places');

-- (0.39.0 library) a delivery agent is no slot staff (agents have
-- orders.edit by default: one held every place of a slot for a day and
-- booked it without an order); staff behind a JWT book only for an item
-- they read, and always for one (an orderless booking could never be
-- given back through the API)
SELECT set_config('role', 'staff', true);
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
INSERT INTO orders.service_capacity (id, service_id, starts_at, ends_at, max_capacity) VALUES
  ('00000000-0000-0000-0000-0000000003f3', '00000000-0000-0000-0000-0000000000f0',
   now() + interval '4 days', now() + interval '4 days 1 hour', 3);
INSERT INTO orders.staff (id, account_id, full_name, role) VALUES
  ('00000000-0000-0000-0000-0000000003d2', '33333333-0000-0000-0000-0000000003d2', 'API Other Rep', 'customer_rep');
INSERT INTO orders.orders (id, customer_id, lifecycle, assigned_rep_id)
VALUES ('00000000-0000-0000-0000-0000000003b9', '00000000-0000-0000-0000-0000000000a1', 'booking', '00000000-0000-0000-0000-0000000003d2');
INSERT INTO orders.order_items (id, order_id, name, item_type)
VALUES ('00000000-0000-0000-0000-0000000003c9', '00000000-0000-0000-0000-0000000003b9', 'Massage', 'service');
SELECT set_config('request.jwt.claims', '{"sub":"33333333-3333-3333-3333-333333333333","role":"staff"}', true);
SELECT throws_ok($$SELECT orders.reserve_time_slot('00000000-0000-0000-0000-0000000003f3', duration_minutes => 1440)$$,
                 '42501', NULL, 'a delivery agent does not hold places for a day');
SELECT orders.reserve_time_slot('00000000-0000-0000-0000-0000000003f3') AS agent_hold \gset
SELECT throws_ok(format('SELECT orders.confirm_booking(%L)', :'agent_hold'), 'OR028', NULL,
                 '... nor books its hold without an order');
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
SELECT throws_ok(format('SELECT orders.confirm_booking(%L)', :'agent_hold'), 'OR028', NULL,
                 'an admin behind a JWT books no hold without an order either');
SELECT set_config('request.jwt.claims', '{"sub":"55555555-5555-5555-5555-555555555555","role":"staff"}', true);
SELECT throws_ok(format('SELECT orders.confirm_booking(%L, %L)', :'agent_hold', '00000000-0000-0000-0000-0000000003c9'), 'OR028',
                 'order item 00000000-0000-0000-0000-0000000003c9 is not an item of an order you reach',
                 'a rep books no hold for the item of another rep''s order (outside its scope)');
SELECT is((SELECT status FROM orders.slot_reservations WHERE id = :'agent_hold'), 'held', '... the hold stays a hold');

-- (0.39.0 library) a customer whose JWT sub comes in upper case books its
-- hold for its own item (its account's uuid prints in lower case: the
-- holder was nobody's, OR028)
SELECT set_config('role', 'staff', true);
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
INSERT INTO orders.customers (id, account_id, full_name) VALUES
  ('00000000-0000-0000-0000-0000000003a9', 'abcdef00-0000-0000-0000-0000000003aa', 'Upper Case Client');
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"ABCDEF00-0000-0000-0000-0000000003AA","role":"authenticated"}', true);
INSERT INTO orders.orders (id, customer_id, lifecycle)
VALUES ('00000000-0000-0000-0000-0000000003ba', '00000000-0000-0000-0000-0000000003a9', 'booking');
INSERT INTO orders.order_items (id, order_id, name, item_type)
VALUES ('00000000-0000-0000-0000-0000000003ca', '00000000-0000-0000-0000-0000000003ba', 'Massage', 'service');
SELECT is((orders.confirm_booking(orders.reserve_time_slot('00000000-0000-0000-0000-0000000003f3'),
                                  '00000000-0000-0000-0000-0000000003ca')).status, 'confirmed',
          'a customer whose JWT sub is in upper case books its hold for its own item');

-- (0.43.0 library) nobody holds (and has booked ahead) more than
-- orders.hold_places (20) places at once: one subject held every place of
-- every slot, renewing the holds as they lapsed
SELECT set_config('role', 'staff', true);
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
INSERT INTO orders.service_capacity (id, service_id, starts_at, ends_at, max_capacity) VALUES
  ('00000000-0000-0000-0000-0000000003f4', '00000000-0000-0000-0000-0000000000f0',
   now() + interval '5 days', now() + interval '5 days 1 hour', 100);
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}', true);
-- its live holds and its bookings (all of this file's slots are ahead)
SELECT coalesce(sum(quantity), 0) AS held_before FROM orders.slot_reservations
 WHERE holder = '11111111-1111-1111-1111-111111111111'
   AND (status = 'held' AND expires_at > clock_timestamp() OR status = 'confirmed') \gset
SELECT isnt(orders.reserve_time_slot('00000000-0000-0000-0000-0000000003f4', quantity => 20 - :held_before), NULL,
            'a customer holds (and has booked) up to orders.hold_places (20) places at once, across slots');
SELECT throws_ok($$SELECT orders.reserve_time_slot('00000000-0000-0000-0000-0000000003f4')$$, 'OR034', NULL,
                 '... one more is refused (OR034)');
SELECT is((SELECT sum(quantity)::int FROM orders.slot_reservations
             WHERE holder = '11111111-1111-1111-1111-111111111111'
               AND (status = 'held' AND expires_at > clock_timestamp() OR status = 'confirmed')), 20,
          '... and holds nothing more: 20 places held or booked');
-- ... nor by booking its holds on an order of its own: booked places of
-- slots not yet begun count too (a customer booked its holds on an unpriced
-- order and held 20 more, again and again)
INSERT INTO orders.orders (id, customer_id, lifecycle)
VALUES ('00000000-0000-0000-0000-0000000003bb', '00000000-0000-0000-0000-0000000000a1', 'booking');
INSERT INTO orders.order_items (id, order_id, name, item_type, quantity)
VALUES ('00000000-0000-0000-0000-0000000003cb', '00000000-0000-0000-0000-0000000003bb', 'Course', 'service', 20);
SELECT is(count(orders.confirm_booking(r.id, '00000000-0000-0000-0000-0000000003cb'))::int, 1, 'the customer books its 20 places of the new slot on its own order')
  FROM orders.slot_reservations r
 WHERE r.capacity_id = '00000000-0000-0000-0000-0000000003f4' AND r.holder = '11111111-1111-1111-1111-111111111111' AND r.status = 'held';
SELECT throws_ok($$SELECT orders.reserve_time_slot('00000000-0000-0000-0000-0000000003f4')$$, 'OR034', NULL,
                 '... and still holds no more (OR034): booked places ahead count while the shop has not taken the order on');
SELECT set_config('role', 'staff', true);
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
SELECT (orders.transition('00000000-0000-0000-0000-0000000003bb', 'confirmed')).status;
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}', true);
SELECT isnt(orders.reserve_time_slot('00000000-0000-0000-0000-0000000003f4'), NULL,
            '... once staff took it on (payment succeeded), its bookings count no more: the customer holds again');

-- request: anon
SELECT set_config('role', 'anon', true);
SELECT set_config('request.jwt.claims', '{"role":"anon"}', true);
SELECT lives_ok($$SELECT * FROM orders.available_slots('00000000-0000-0000-0000-0000000000f0', now(), now() + interval '7 days')$$,
                'anon may look at availability');
SELECT throws_ok($$SELECT orders.reserve_time_slot('00000000-0000-0000-0000-0000000000f1')$$, '42501', NULL,
                 'anon may not hold places');

SELECT * FROM finish();
ROLLBACK;
