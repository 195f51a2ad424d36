-- What one API client cannot do to another (issue 16): link its slot hold
-- to another customer's order item (cancelling that order would then free
-- its place), or take order numbers the generator will give others.
BEGIN;
SELECT plan(82);

-- request: client two adds an item to its own order
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"22222222-2222-2222-2222-222222222222","role":"authenticated"}', true);
INSERT INTO orders.order_items (order_id, name, quantity)
VALUES ('00000000-0000-0000-0000-0000000000b2', 'Consultation', 1) RETURNING id AS other_item \gset

-- request: client one holds the slot and tries to book it on client two's item
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}', true);
SELECT orders.reserve_time_slot(capacity_id => '00000000-0000-0000-0000-0000000000f1') AS hold \gset
SELECT throws_ok(format('SELECT orders.confirm_booking(reservation_id => %L, order_item_id => %L)', :'hold', :'other_item'),
                 'OR028', format('order item %s is not an item of the holder''s orders', :'other_item'),
                 'a client cannot book its hold on another customer''s order item');
SELECT throws_ok(format('SELECT orders.confirm_booking(reservation_id => %L, order_item_id => %L)',
                        :'hold', '00000000-0000-0000-0000-00000000ffff'),
                 'OR028', 'order item 00000000-0000-0000-0000-00000000ffff is not an item of the holder''s orders',
                 'an unknown item gets the same answer (no existence oracle)');
SELECT set_config('role', 'staff', true);
SELECT is((SELECT status || ' ' || coalesce(order_item_id::text, '-') FROM orders.slot_reservations WHERE id = :'hold'),
          'held -', 'the hold is unchanged');
SELECT set_config('role', 'authenticated', true);
SELECT id AS own_item FROM orders.order_items WHERE order_id = '00000000-0000-0000-0000-0000000000b3' LIMIT 1 \gset
SELECT is((orders.confirm_booking(reservation_id => :'hold', order_item_id => :'own_item')).status, 'confirmed',
          'its own order''s item is fine');

-- order numbers
SELECT throws_ok($$INSERT INTO orders.orders (order_number, customer_id)
                   VALUES ('ORD-2099-999999', '00000000-0000-0000-0000-0000000000a1')$$,
                 'OR009', 'order number "ORD-2099-999999" was not generated for this order',
                 'a client cannot take a number of the generator''s');
SELECT is((SELECT count(*)::int FROM orders.orders WHERE order_number = 'ORD-2099-999999'), 0, '... no order stored');
INSERT INTO orders.orders (customer_id) VALUES ('00000000-0000-0000-0000-0000000000a1')
RETURNING order_number AS generated, id AS generated_id \gset
SELECT matches(:'generated'::text, '^ORD-[0-9]{4}-[0-9]{6,}$', 'a client inserting without a number gets the generator''s');
SELECT orders.next_order_number() AS drawn \gset
SELECT lives_ok(format($$INSERT INTO orders.orders (order_number, customer_id)
                         VALUES (%L, '00000000-0000-0000-0000-0000000000a1')$$, :'drawn'),
                'a number the generator gave this user in this transaction may be given explicitly');
SELECT throws_ok(format($$INSERT INTO orders.orders (order_number, customer_id)
                          VALUES (%L, '00000000-0000-0000-0000-0000000000a1')$$, :'drawn'),
                 '23505', NULL, 'once, then it is that order''s (the unique number refuses a second)');
-- (0.38.0) only who may place an order draws a number: anon burnt the
-- sequence's numbers and learnt how many orders were numbered
SELECT set_config('role', 'staff', true);
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
SELECT substr(orders.next_order_number(), 10)::bigint AS n_before \gset
SELECT set_config('role', 'anon', true);
SELECT set_config('request.jwt.claims', '{"role":"anon"}', true);
SELECT throws_ok($$SELECT orders.next_order_number()$$, '42501',
                 'orders.next_order_number: only customers and staff draw order numbers', 'anon draws no order number');
SELECT matches(tap_fixtures.guest_order('Guest', '1 Road'), '^ORD-[0-9]{4}-[0-9]{6,}$',
               '... but a DBA''s guest checkout it calls (SECURITY DEFINER, a BYPASSRLS role) draws one');
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"99999999-9999-9999-9999-999999999999","role":"authenticated"}', true);
SELECT throws_ok($$SELECT orders.next_order_number()$$, '42501', NULL,
                 '... nor an account that is neither customer nor staff');
SELECT set_config('role', 'staff', true);
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
SELECT is(substr(orders.next_order_number(), 10)::bigint, :n_before::bigint + 2, '... and neither consumed a number (the guest order took one)');
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}', true);
-- (0.38.0) an INSERT rolled back to a savepoint gives its number back
SELECT orders.next_order_number() AS retried \gset
SAVEPOINT before_insert;
SELECT throws_ok(format($$INSERT INTO orders.orders (order_number, customer_id)
                          VALUES (%L, '00000000-0000-0000-0000-00000000dead')$$, :'retried'),
                 '42501', NULL, 'an INSERT with a drawn number that fails (another customer''s order) ...');
ROLLBACK TO SAVEPOINT before_insert;
SELECT lives_ok(format($$INSERT INTO orders.orders (order_number, customer_id)
                         VALUES (%L, '00000000-0000-0000-0000-0000000000a1')$$, :'retried'),
                '... leaves the number to its retry after ROLLBACK TO SAVEPOINT');
-- (0.38.0) an upsert sending an order back as it was read, generated number included
SELECT lives_ok(format($$INSERT INTO orders.orders (id, order_number, customer_id, notes)
                         VALUES (%L, %L, '00000000-0000-0000-0000-0000000000a1', 'upserted')
                         ON CONFLICT (id) DO UPDATE SET order_number = EXCLUDED.order_number,
                           customer_id = EXCLUDED.customer_id, notes = EXCLUDED.notes$$,
                       :'generated_id', :'generated'),
                'an upsert of an order with its generated number updates it');
SELECT is((SELECT order_number || ' ' || notes FROM orders.orders WHERE id = :'generated_id'),
          :'generated' || ' upserted', '... keeping its number');
SELECT set_config('role', 'staff', true);
SELECT orders.next_order_number() AS staffs \gset
SELECT set_config('role', 'authenticated', true);
SELECT throws_ok(format($$INSERT INTO orders.orders (order_number, customer_id)
                          VALUES (%L, '00000000-0000-0000-0000-0000000000a1')$$, :'staffs'),
                 'OR009', NULL, 'but not one the generator gave another role on this connection');
SELECT lives_ok($$INSERT INTO orders.orders (order_number, customer_id)
                  VALUES ('SHOP-77', '00000000-0000-0000-0000-0000000000a1')$$,
                'a client may choose a number outside the generator''s');
SELECT throws_ok($$UPDATE orders.orders SET order_number = 'SHOP-78' WHERE order_number = 'SHOP-77'$$,
                 'OR009', 'order "SHOP-77": the order number cannot be changed',
                 'a client cannot change an order''s number');
SELECT throws_ok($$INSERT INTO orders.orders (order_number, customer_id)
                   VALUES (repeat('x', 7900), '00000000-0000-0000-0000-0000000000a1')$$,
                 '22001', 'an order number may have at most 64 characters, not 7900',
                 'nor store a 7900-character number');
SELECT throws_ok($$SELECT orders.transition('00000000-0000-0000-0000-0000000000b1', 'quoted',
                                            idempotency_key => repeat('k', 3000))$$,
                 '22001', 'orders.transition: argument "idempotency_key" may have at most 255 characters, not 3000',
                 'a 3000-character idempotency key is refused with 22001, not 54000');
SELECT is((SELECT count(*)::int FROM orders.orders WHERE customer_id = '00000000-0000-0000-0000-0000000000a1'
            AND order_number NOT LIKE 'API-%'), 4, 'exactly the four accepted orders were added');

-- (0.38.0) the catalog a storefront shows: active products and variants
-- with the price a customer's item must carry, no cost, no stock
SELECT set_config('role', 'staff', true);
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
INSERT INTO orders.products (id, name, sku, price, cost_price, category, is_active) VALUES
  ('00000000-0000-0000-0000-0000000006e1', 'Cat Mug', 'CAT-MUG', 12.50, 3.00, 'catalog-test', true),
  ('00000000-0000-0000-0000-0000000006e2', 'Cat Shirt', 'CAT-SHIRT', 20.00, 8.00, 'catalog-test', true),
  ('00000000-0000-0000-0000-0000000006e3', 'Cat Retired', 'CAT-OLD', 5.00, 1.00, 'catalog-test', false);
INSERT INTO orders.product_variants (id, product_id, sku, name, price, is_active) VALUES
  ('00000000-0000-0000-0000-0000000006f1', '00000000-0000-0000-0000-0000000006e2', 'CAT-SHIRT-L', 'L', 22.00, true),
  ('00000000-0000-0000-0000-0000000006f2', '00000000-0000-0000-0000-0000000006e2', 'CAT-SHIRT-M', 'M', NULL, true),
  ('00000000-0000-0000-0000-0000000006f3', '00000000-0000-0000-0000-0000000006e2', 'CAT-SHIRT-S', 'S', 18.00, false);
SELECT set_config('role', 'anon', true);
SELECT set_config('request.jwt.claims', '{"role":"anon"}', true);
SELECT is((SELECT string_agg(concat_ws(' ', name, variant_name, sku, price), ', ')
             FROM orders.product_catalog(category => 'catalog-test')),
          'Cat Mug CAT-MUG 12.50, Cat Shirt CAT-SHIRT 20.00, Cat Shirt L CAT-SHIRT-L 22.00, Cat Shirt M CAT-SHIRT-M 20.00',
          'anon reads the catalog: active products and their active variants, each with the price an item of it carries');
SELECT is((SELECT count(*)::int FROM information_schema.parameters
            WHERE specific_name LIKE 'product\_catalog\_%' AND parameter_name IN ('cost_price', 'stock_quantity')),
          0, '... and no cost or stock column');
SELECT throws_ok($$SELECT count(*) FROM orders.products$$, '42501', NULL, '... while the products table stays closed to anon');
-- (0.44.0) a page at a time: at most max_products products, after the last one read
SELECT is((SELECT string_agg(concat_ws(' ', name, variant_name), ', ')
             FROM orders.product_catalog(category => 'catalog-test', max_products => 1,
                                         after_name => 'Cat Mug', after_id => '00000000-0000-0000-0000-0000000006e1')),
          'Cat Shirt, Cat Shirt L, Cat Shirt M', 'anon reads the page after the product it read last: one product, with its variants');
SELECT throws_ok($$SELECT count(*) FROM orders.product_catalog(max_products => 1001)$$, '22023',
                 'orders.product_catalog: max_products must be between 1 and 1000, not 1001',
                 '... at most 1000 products a page (22023)');
SELECT throws_ok($$SELECT count(*) FROM orders.product_catalog(max_products => NULL)$$, '22023',
                 'orders.product_catalog: max_products must be between 1 and 1000, not NULL', '... nor NULL: every product');
SELECT throws_ok($$SELECT count(*) FROM orders.product_catalog(max_products => 0)$$, '22023', NULL, '... nor 0');
SELECT throws_ok($$SELECT count(*) FROM orders.product_catalog(after_id => '00000000-0000-0000-0000-0000000006e1')$$,
                 '22023', 'orders.product_catalog: after_id needs after_name', '... after_id needs after_name (22023)');
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}', true);
INSERT INTO orders.orders (customer_id) VALUES ('00000000-0000-0000-0000-0000000000a1') RETURNING id AS cat_order \gset
SELECT lives_ok(format($$INSERT INTO orders.order_items (order_id, name, quantity, unit_price, product_id, variant_id)
                         SELECT %L, name, 1, price, product_id, variant_id FROM orders.product_catalog()
                          WHERE sku = 'CAT-SHIRT-M'$$, :'cat_order'),
                'a customer orders at the catalog''s price (the variant without a price of its own: the product''s)');
SELECT is((SELECT subtotal::text FROM orders.orders WHERE id = :'cat_order'), '20.00', '... its order''s subtotal');

-- (0.38.0) where an order goes is its customer's until it ships or closes
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}', true);
INSERT INTO orders.orders (customer_id, delivery_address) VALUES ('00000000-0000-0000-0000-0000000000a1', '1 Old Road')
RETURNING id AS ship_order \gset
INSERT INTO orders.orders (customer_id, delivery_address) VALUES ('00000000-0000-0000-0000-0000000000a1', '1 Old Road')
RETURNING id AS closed_order \gset
SELECT lives_ok(format($$UPDATE orders.orders SET delivery_address = '2 New Road', delivery_area = 'North' WHERE id = %L$$, :'ship_order'),
                'a customer changes its open order''s delivery address');
SELECT orders.transition(:'closed_order', 'cancelled');
SELECT set_config('role', 'staff', true);
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
SELECT count(*) FROM unnest(ARRAY['confirmed', 'being_prepared', 'ready_for_pickup', 'out_for_delivery']) s,
       LATERAL orders.transition(:'ship_order', s) \g /dev/null
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}', true);
SELECT throws_ok(format($$UPDATE orders.orders SET delivery_address = '3 Other Road' WHERE id = %L$$, :'ship_order'),
                 'OR060', 'column "delivery_address" of orders.orders is reserved to staff once the order has shipped or is closed',
                 '... not once it is out for delivery');
SELECT throws_ok(format($$UPDATE orders.orders SET delivery_area = 'South' WHERE id = %L$$, :'closed_order'),
                 'OR060', 'column "delivery_area" of orders.orders is reserved to staff once the order has shipped or is closed',
                 '... nor once it is cancelled');
SELECT throws_ok(format($$UPDATE orders.orders SET payment_method = 'card' WHERE id = %L$$, :'ship_order'),
                 'OR060', 'column "payment_method" of orders.orders is reserved to staff once the order has shipped or is closed',
                 '... nor, once it is out for delivery, how it is paid (0.39.0)');
SELECT lives_ok(format($$UPDATE orders.orders SET customer_notes = 'ring twice' WHERE id = %L$$, :'ship_order'),
                '... its note to the order it still writes');
-- (0.39.0) an assignment it may not write is OR060, not a staff member's
-- name and role (the assignment check, then named check_assignment, fired
-- before order_columns_guard and answered "Api Agent (role
-- delivery_agent) is not a customer rep")
SELECT throws_ok($$UPDATE orders.orders SET assigned_rep_id = '00000000-0000-0000-0000-0000000000e9' WHERE order_number = 'API-3'$$,
                 'OR060', 'column "assigned_rep_id" of orders.orders is reserved to staff',
                 'a customer naming its order''s agent as its rep hears OR060, no staff member''s name or role');
SELECT throws_ok($$INSERT INTO orders.orders (customer_id, assigned_agent_id)
                   VALUES ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000e8')$$,
                 'OR060', 'column "assigned_agent_id" of orders.orders is reserved to staff',
                 '... nor naming the admin as an agent of a new order');
SELECT is((SELECT coalesce(assigned_rep_id::text, '-') || ' ' || assigned_agent_id FROM orders.orders WHERE order_number = 'API-3'),
          '- 00000000-0000-0000-0000-0000000000e9', '... nothing changed: API-3 has no rep, its agent stays');
-- (0.39.0) its customer row keeps its id (a re-keyed row; 23505 told which
-- ids other customers have)
SELECT throws_ok($$UPDATE orders.customers SET id = '00000000-0000-0000-0000-0000000000a2' WHERE id = '00000000-0000-0000-0000-0000000000a1'$$,
                 'OR060', 'column "id" of orders.customers is reserved to the extension (a row keeps its id)',
                 'a customer does not change its row''s id (another customer''s id: no 23505 oracle)');
SELECT is((SELECT count(*)::int FROM orders.customers WHERE id = '00000000-0000-0000-0000-0000000000a1'), 1, '... its row keeps its id');
-- (0.39.0) nor how an open order was paid once its payment is collected
INSERT INTO orders.orders (customer_id, payment_method) VALUES ('00000000-0000-0000-0000-0000000000a1', 'cash')
RETURNING id AS paid_order \gset
SELECT lives_ok(format($$UPDATE orders.orders SET payment_method = 'cod' WHERE id = %L$$, :'paid_order'),
                'a customer chooses how its open order is paid');
SELECT set_config('role', 'staff', true);
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
UPDATE orders.orders SET payment_status = 'collected' WHERE id = :'paid_order';
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}', true);
SELECT throws_ok(format($$UPDATE orders.orders SET payment_method = 'bank_transfer' WHERE id = %L$$, :'paid_order'),
                 'OR060', 'column "payment_method" of orders.orders is reserved to staff once the payment is collected',
                 '... but not once it is collected');
SELECT is((SELECT payment_method FROM orders.orders WHERE id = :'paid_order'), 'cod', '... nothing changed');
SELECT is((SELECT delivery_address || '/' || coalesce(delivery_area, '-') FROM orders.orders WHERE id = :'ship_order')
          || ' ' || (SELECT delivery_address || '/' || coalesce(delivery_area, '-') FROM orders.orders WHERE id = :'closed_order'),
          '2 New Road/North 1 Old Road/-', '... the addresses as they were');

-- (0.36.0) staff-only notes: written by active staff on orders they see
SELECT set_config('request.jwt.claims', '{"sub":"33333333-3333-3333-3333-333333333333","role":"authenticated"}', true);
SELECT throws_ok($$INSERT INTO orders.order_notes (order_id, body)
                   VALUES ('00000000-0000-0000-0000-0000000000b2', 'agent note')$$,
                 '42501', NULL, 'a delivery agent writes no note on an order not assigned to it');
SELECT lives_ok($$INSERT INTO orders.order_notes (order_id, body)
                  SELECT id, 'agent note' FROM orders.orders WHERE order_number = 'API-3'$$,
                'but on its own delivery');
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"authenticated"}', true);
UPDATE orders.staff SET is_active = false WHERE id = '00000000-0000-0000-0000-0000000000e9';
SELECT set_config('request.jwt.claims', '{"sub":"33333333-3333-3333-3333-333333333333","role":"authenticated"}', true);
SELECT throws_ok($$INSERT INTO orders.order_notes (order_id, body)
                   VALUES ('00000000-0000-0000-0000-0000000000b3', 'agent note')$$,
                 '42501', NULL, 'deactivated, not even there');
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"authenticated"}', true);
SELECT is((SELECT count(*)::int FROM orders.order_notes WHERE body = 'agent note'), 1, 'one note written');

-- (0.37.0) what the webhook ingest keeps in metadata ("webhook": the shop's
-- last update) is nobody's to write in a request: a customer set it in the
-- year 9999 and the shop's cancellation was taken for stale
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}', true);
SELECT set_config('role', 'authenticated', true);
SELECT created_at AS placed FROM orders.orders WHERE id = '00000000-0000-0000-0000-0000000000b3' \gset
SELECT throws_ok($$UPDATE orders.orders SET metadata = metadata || '{"webhook": {"updated_at": "9999-12-31T00:00:00Z"}}'
                    WHERE id = '00000000-0000-0000-0000-0000000000b3'$$,
                 'OR060', 'column "metadata" of orders.orders is reserved to the webhook ingest (its key "webhook")',
                 'a client writes no "webhook" key into its order''s metadata');
SELECT throws_ok($$INSERT INTO orders.orders (customer_id, metadata)
                   VALUES ('00000000-0000-0000-0000-0000000000a1', '{"webhook": {"source": "shopify"}}')$$,
                 'OR060', NULL, '... nor into a new order''s');
SELECT lives_ok($$UPDATE orders.orders SET metadata = metadata || '{"gift": true}' WHERE id = '00000000-0000-0000-0000-0000000000b3'$$,
                'its other keys are the client''s');
SELECT throws_ok($$UPDATE orders.orders SET metadata = metadata || jsonb_build_object('n', (SELECT ('[' || string_agg('1e131071', ',') || ']')::jsonb FROM generate_series(1, 100)))
                    WHERE id = '00000000-0000-0000-0000-0000000000b3'$$,
                 '23514', 'new row for relation "orders" violates check constraint "orders_metadata_check"',
                 '(0.41.0) ... but no number past 1e20: 74 kB of 1e131071 printed as 1 GB for every reader and pg_dump');
-- (0.37.0) when an order was placed: admins' and managers' (an import), not a
-- client's (its order pinned at the top of the recent orders) nor a rep's
SELECT throws_ok($$UPDATE orders.orders SET created_at = '2999-01-01' WHERE id = '00000000-0000-0000-0000-0000000000b3'$$,
                 'OR060', 'column "created_at" of orders.orders is reserved to admins and managers (an import of past orders)',
                 'a client does not move when its order was placed');
SELECT throws_ok($$INSERT INTO orders.orders (customer_id, created_at)
                   VALUES ('00000000-0000-0000-0000-0000000000a1', '2020-01-01')$$,
                 'OR060', NULL, '... nor places a new one in the past');
SELECT set_config('role', 'staff', true);
SELECT set_config('request.jwt.claims', '{"sub":"55555555-5555-5555-5555-555555555555","role":"staff"}', true);
SELECT throws_ok($$UPDATE orders.orders SET created_at = '2999-01-01' WHERE id = '00000000-0000-0000-0000-0000000000b4'$$,
                 'OR060', NULL, 'nor does a customer rep, on an order it is assigned');
SELECT lives_ok($$INSERT INTO orders.orders (id, order_number, customer_id, lifecycle, created_at, notes)
                  SELECT id, order_number, customer_id, lifecycle, created_at, 'upserted'
                    FROM orders.orders WHERE id = '00000000-0000-0000-0000-0000000000b4'
                  ON CONFLICT (id) DO UPDATE SET notes = EXCLUDED.notes, created_at = EXCLUDED.created_at$$,
                '... but its upsert sending created_at as read is no change of it');
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
SELECT throws_ok($$UPDATE orders.orders SET metadata = metadata || '{"webhook": {}}' WHERE id = '00000000-0000-0000-0000-0000000000b3'$$,
                 'OR060', NULL, 'an admin writes no "webhook" key either');
SELECT is((SELECT format('%s %s %s', created_at = :'placed', metadata ? 'webhook', metadata ->> 'gift')
             FROM orders.orders WHERE id = '00000000-0000-0000-0000-0000000000b3'),
          't f true', '... the order as it was, but for the client''s own key');
SELECT lives_ok($$UPDATE orders.orders SET created_at = created_at - interval '1 day' WHERE id = '00000000-0000-0000-0000-0000000000b3'$$,
                'an admin corrects when an order was placed');

-- (0.37.0) a delivery is its order's assigned agent's: a customer rep
-- recorded one-star deliveries of agents who never had the order
SELECT count(*) AS deliveries_before FROM orders.deliveries \gset
SELECT set_config('request.jwt.claims', '{"sub":"55555555-5555-5555-5555-555555555555","role":"staff"}', true);
SELECT throws_ok($$INSERT INTO orders.deliveries (order_id, agent_id, rating, customer_feedback, delivery_time)
                   VALUES ('00000000-0000-0000-0000-0000000000b4', '00000000-0000-0000-0000-0000000000e9', 1, 'rude', now())$$,
                 'OR042', 'a delivery of order API-4 is its assigned agent''s',
                 'a customer rep records no delivery of an order with no agent');
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
SELECT throws_ok($$INSERT INTO orders.deliveries (order_id, agent_id, rating, delivery_time)
                   VALUES ('00000000-0000-0000-0000-0000000000b3', '00000000-0000-0000-0000-0000000000e8', 5, now())$$,
                 'OR042', 'a delivery of order API-3 is its assigned agent''s',
                 'an admin records no delivery in another staff member''s name than the order''s agent');
SELECT is((SELECT count(*) FROM orders.deliveries), :'deliveries_before'::bigint, '... no delivery written');
SELECT lives_ok($$INSERT INTO orders.deliveries (order_id, agent_id, rating, delivery_time)
                  VALUES ('00000000-0000-0000-0000-0000000000b3', '00000000-0000-0000-0000-0000000000e9', 5, now())$$,
                'the order''s agent''s delivery is recorded');

-- (0.37.0) slot staff in a request are active staff with orders.edit: the
-- API role named by orders.staff_role is every staff member's (the agent
-- 3333…, deactivated above, confirmed a client's hold without an order)
UPDATE orders.service_capacity SET max_capacity = max_capacity + 1 WHERE id = '00000000-0000-0000-0000-0000000000f1';
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}', true);
SELECT orders.reserve_time_slot(capacity_id => '00000000-0000-0000-0000-0000000000f1') AS hold2 \gset
SELECT set_config('role', 'staff', true);
SELECT set_config('request.jwt.claims', '{"sub":"33333333-3333-3333-3333-333333333333","role":"staff"}', true);
SELECT throws_ok(format('SELECT orders.confirm_booking(reservation_id => %L)', :'hold2'),
                 '42501', NULL, 'a deactivated staff member confirms no client''s hold');
SELECT throws_ok($$SELECT orders.reserve_time_slot(capacity_id => '00000000-0000-0000-0000-0000000000f1', duration_minutes => 600)$$,
                 '42501', NULL, '... nor holds a place longer than the shop''s hold');
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
SELECT is((SELECT status || ' ' || coalesce(order_item_id::text, '-') FROM orders.slot_reservations WHERE id = :'hold2'),
          'held -', '... the hold unchanged');
SELECT is(orders.release_reservation(reservation_id => :'hold2'), true, 'an active admin releases it');

-- (0.37.0 library) an item's snapshot that is no object is judged as naming
-- no site: site_item_guard looked the key up in an array of 100,000
-- elements as if it were an object and crashed the server (signal 11)
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}', true);
INSERT INTO orders.order_items (order_id, name, quantity, unit_price, snapshot)
VALUES ('00000000-0000-0000-0000-0000000000b3', 'mine', 1, 0, '{"site_selection_id": "x"}') RETURNING id AS snap_item \gset
SELECT throws_ok(format($$UPDATE orders.order_items
                             SET snapshot = (SELECT jsonb_agg(NULL::int) FROM generate_series(1, 100000)) || '["site_selection_id"]'
                           WHERE id = %L$$, :'snap_item'),
                 '23514', NULL, 'a snapshot turned into a long array: the CHECK refuses it (no crash)');
SELECT is((SELECT snapshot FROM orders.order_items WHERE id = :'snap_item'), '{"site_selection_id": "x"}'::jsonb, '... the item as it was');
-- ... and an approved site without a client group: site_items looked its
-- NULL up as a uuid (signal 11); the row is refused before any write
SELECT throws_ok($$INSERT INTO orders.order_site_selections (order_group_id, domain, status) VALUES (NULL, 'x.example', 'approved')$$,
                 '42501', NULL, 'an approved site without a group: refused (no crash)');

-- (0.40.0) a value too long for an index: the column's CHECK (23514, 400),
-- no longer the index's 54000 (500)
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}', true);
SELECT coalesce(email, '-') AS own_email FROM orders.customers WHERE id = '00000000-0000-0000-0000-0000000000a1' \gset
SELECT throws_ok($$UPDATE orders.customers SET email = repeat('m', 40000) WHERE id = '00000000-0000-0000-0000-0000000000a1'$$,
                 '23514', 'new row for relation "customers" violates check constraint "customers_email_check"',
                 'a client PATCHing its email to 40 kB: 23514 naming the constraint (was 54000, a 500)');
SELECT is((SELECT coalesce(email, '-') FROM orders.customers WHERE id = '00000000-0000-0000-0000-0000000000a1'), :'own_email', '... its email unchanged');
SELECT throws_ok($$INSERT INTO orders.order_items (order_id, name, quantity, sku) VALUES ('00000000-0000-0000-0000-0000000000b3', 'long', 1, repeat('k', 40000))$$,
                 '23514', 'new row for relation "order_items" violates check constraint "order_items_sku_check"',
                 '... an item with a 40 kB SKU on its own order: 23514');

-- (0.40.0) a client moving its orders between its own customer rows: at
-- most 200 in one request (each moved order took an entry of the shared
-- lock table: 20,000 ran it out for every session, 53200)
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}', true);
INSERT INTO orders.customers (id, account_id, full_name)
VALUES ('00000000-0000-0000-0000-00000000061c', '11111111-1111-1111-1111-111111111111', 'Client One, second address');
INSERT INTO orders.orders (customer_id, notes) SELECT '00000000-0000-0000-0000-0000000000a1', 'bulk ' || g FROM generate_series(1, 201) g;
SELECT throws_ok($$UPDATE orders.orders SET customer_id = '00000000-0000-0000-0000-00000000061c' WHERE notes LIKE 'bulk %'$$,
                 'OR121', 'one request moves or judges the leads of at most 200 orders',
                 'a client moving 201 of its orders in one PATCH: OR121 (was 53200 for the whole cluster at 20,000)');
SELECT is((SELECT count(*)::int FROM orders.orders WHERE customer_id = '00000000-0000-0000-0000-00000000061c'), 0, '... none moved');
SELECT lives_ok($$UPDATE orders.orders SET customer_id = '00000000-0000-0000-0000-00000000061c' WHERE notes LIKE 'bulk %' AND notes <> 'bulk 201'$$,
                '... 200 in one request move');
SELECT is((SELECT count(*)::int FROM orders.orders WHERE customer_id = '00000000-0000-0000-0000-00000000061c'), 200, '... all 200');
SELECT throws_ok($$UPDATE orders.orders SET customer_id = '00000000-0000-0000-0000-00000000061c' WHERE notes = 'bulk 201'$$,
                 'OR121', 'one request moves or judges the leads of at most 200 orders',
                 '... and the 201st in the same request (a transaction), by another statement, is refused (the refused one''s locks were given back and not counted)');

-- (0.36.0) the catalog's price is no oracle for anon: it judges customers' items only
SELECT set_config('role', 'anon', true);
SELECT set_config('request.jwt.claims', '{"role":"anon"}', true);
SELECT is(format('%s %s', orders.customer_item_price('00000000-0000-0000-0000-0000000000e1', NULL, 1),
                         orders.customer_item_price('00000000-0000-0000-0000-0000000000e1', NULL, 0)),
          'f f', 'anon learns nothing of a product''s price (no OR061 naming it)');

SELECT * FROM finish();
ROLLBACK;
