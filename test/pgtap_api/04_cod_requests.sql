-- A COD order through PostgREST requests: the client confirms (its stock is
-- taken although clients have no right on products), the agent delivers and
-- collects (the revenue is posted once, recorded as the agent); clients
-- cannot touch the ledger, staff cannot forge automatic postings.
BEGIN;
SELECT plan(13);

-- request: client one confirms its COD order
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}', true);
WITH u AS (UPDATE orders.products SET stock_quantity = 0 RETURNING 1)
SELECT is(count(*)::int, 0, 'the client cannot change stock (row level security: no product is its to change)') FROM u;
SELECT is((orders.transition(order_id => '00000000-0000-0000-0000-0000000000b3', to_status => 'confirmed')).status,
          'confirmed', 'the client confirms its COD order');
SELECT is((SELECT count(*)::int FROM orders.financial_transactions), 0, 'the client cannot read the ledger');

-- request: the agent delivers and collects the cash
SELECT set_config('role', 'staff', true);
SELECT set_config('request.jwt.claims', '{"sub":"33333333-3333-3333-3333-333333333333","role":"staff"}', true);
SELECT is((SELECT stock_quantity::integer FROM orders.products WHERE sku = 'API-LAMP'), 3,
          'the confirmation took the two lamps out of stock');
SELECT orders.transition('00000000-0000-0000-0000-0000000000b3', s)
  FROM unnest(ARRAY['being_prepared', 'ready_for_pickup', 'out_for_delivery', 'delivered']) s;
SELECT lives_ok($$UPDATE orders.orders SET payment_status = 'collected' WHERE order_number = 'API-3'$$,
                'the agent marks the cash collected (PATCH)');
SELECT throws_ok($$INSERT INTO orders.expenses (category, amount) VALUES ('fuel', 3)$$, '42501', NULL,
                 'an agent may not record an expense (financial.create)');

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

-- request: the client sees what it spent
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}', true);
SELECT is((SELECT total_spent FROM orders.customers WHERE full_name = 'Client One'), 40.00,
          'the client''s total_spent counts the collected order');

SELECT * FROM finish();
ROLLBACK;
