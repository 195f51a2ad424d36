-- A lead-gen worker (a customer rep, sub 5555…, under the API role
-- lead_worker) delivers leads over the API; the counters and the
-- auto-complete follow, although the worker cannot write the counter.
BEGIN;
SELECT plan(23);

SELECT set_config('role', 'lead_worker', true);
SELECT set_config('request.jwt.claims', '{"sub":"55555555-5555-5555-5555-555555555555","role":"lead_worker"}', true);
SELECT throws_ok($$UPDATE orders.orders SET leads_delivered = 2 WHERE id = '00000000-0000-0000-0000-0000000000b4'$$,
                 'OR014', NULL, 'the worker cannot write the counter');
SELECT is((orders.assign_lead(lead_id => '00000000-0000-0000-0000-0000000000d1',
                              order_id => '00000000-0000-0000-0000-0000000000b4')).order_id,
          '00000000-0000-0000-0000-0000000000b4'::uuid, 'assign_lead over RPC');
SELECT lives_ok($$INSERT INTO orders.leads (customer_id, order_id, status) VALUES
                  ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000b4', 'approved')$$,
                'a worker inserts an approved lead');
SELECT is((SELECT status || ' ' || leads_delivered || '/' || leads_purchased FROM orders.orders
            WHERE id = '00000000-0000-0000-0000-0000000000b4'), 'completed 2/2',
          'the count followed and the campaign completed');
SELECT is((SELECT changed_by || ': ' || notes FROM orders.order_history
            WHERE order_id = '00000000-0000-0000-0000-0000000000b4' AND new_status = 'completed'),
          '55555555-5555-5555-5555-555555555555: auto: all 2 leads delivered', 'history names the worker whose lead completed it');

-- request: the campaign's customer (sub 1111…) would reopen it; its rep may
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}', true);
SELECT throws_ok($$SELECT orders.transition('00000000-0000-0000-0000-0000000000b4', 'active')$$, '42501',
                 'order "API-4": the change from "completed" to "active" is reserved to admin, manager or customer_rep',
                 'a customer does not reopen its completed campaign (0.28.0: staff decide more leads are owed)');
SELECT throws_ok($$WITH c AS (INSERT INTO orders.orders (customer_id, lifecycle)
                              VALUES ('00000000-0000-0000-0000-0000000000a1', 'campaign') RETURNING id)
                   SELECT orders.transition(c.id, 'active') FROM c$$, '42501', NULL,
                 '... nor starts a campaign of its own (staff start what they priced)');
SELECT set_config('role', 'lead_worker', true);
SELECT set_config('request.jwt.claims', '{"sub":"55555555-5555-5555-5555-555555555555","role":"lead_worker"}', true);
SELECT is((orders.transition('00000000-0000-0000-0000-0000000000b4', 'active')).status, 'active',
          'its rep reopens it');

-- (0.29.0) a rep writes leads only for orders in its scope: a second rep
-- (sub 9999…, made by the admin) delivered leads to API-4 (rep 5555's),
-- which it cannot read, and so completed it in its own name
SELECT set_config('role', 'staff', true);
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
INSERT INTO orders.staff (id, account_id, full_name, role, permissions) VALUES
  ('00000000-0000-0000-0000-000000000e11', '99999999-9999-9999-9999-999999999999', 'Plain Rep', 'customer_rep',
   '{"orders": {"delete": true}}');
INSERT INTO orders.leads (id, customer_id, order_id, status) VALUES
  ('00000000-0000-0000-0000-0000000000d9', '00000000-0000-0000-0000-0000000000a1', NULL, 'new');
SELECT set_config('role', 'lead_worker', true);
SELECT set_config('request.jwt.claims', '{"sub":"99999999-9999-9999-9999-999999999999","role":"lead_worker"}', true);
SELECT is((SELECT count(*)::int FROM orders.orders WHERE id = '00000000-0000-0000-0000-0000000000b4'), 0,
          'the other rep does not read API-4');
SELECT throws_ok($$INSERT INTO orders.leads (customer_id, order_id, status) VALUES
                  ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000b4', 'approved')$$,
                 '42501', NULL, '... and delivers no lead to it (42501)');
SELECT throws_ok($$SELECT orders.assign_lead('00000000-0000-0000-0000-0000000000d9', '00000000-0000-0000-0000-0000000000b4')$$,
                 '42501', 'lead 00000000-0000-0000-0000-0000000000d9 may not be assigned to order 00000000-0000-0000-0000-0000000000b4',
                 '... nor assigns one to it: 42501 naming lead and order (0.39.0; not OR015 "does not exist")');
SELECT is((SELECT coalesce(order_id::text, '-') FROM orders.leads WHERE id = '00000000-0000-0000-0000-0000000000d9'), '-',
          '... the lead stays without a campaign');
SELECT throws_ok($$SELECT orders.assign_lead('00000000-0000-0000-0000-0000000000d1', NULL)$$,
                 'OR015', 'lead 00000000-0000-0000-0000-0000000000d1 does not exist',
                 '... nor takes one of API-4''s leads out of it: a lead of a campaign it cannot read is none it knows (OR015)');
-- (0.39.0) nor reads API-4's leads (their contacts), nor deletes them with
-- its orders.delete
SELECT is((SELECT count(*)::int FROM orders.leads WHERE order_id = '00000000-0000-0000-0000-0000000000b4'), 0,
          '... nor reads its leads');
WITH d AS (DELETE FROM orders.leads WHERE order_id = '00000000-0000-0000-0000-0000000000b4' RETURNING 1)
SELECT is(count(*)::int, 0, '... nor deletes them (DELETE /leads with orders.delete: nothing)') FROM d;
SELECT is((SELECT count(*)::int FROM orders.leads WHERE order_id IS NULL), 1,
          '... a lead without a campaign it still reads');
SELECT set_config('role', 'lead_worker', true);
SELECT set_config('request.jwt.claims', '{"sub":"55555555-5555-5555-5555-555555555555","role":"lead_worker"}', true);
SELECT is((SELECT status || ' ' || leads_delivered || '/' || leads_purchased FROM orders.orders
            WHERE id = '00000000-0000-0000-0000-0000000000b4'), 'active 2/2', '... nothing changed');

-- (0.29.0) an order moved to another customer takes its leads along: they
-- counted for the old one, and every later edit of a lead was OR011
SELECT lives_ok($$UPDATE orders.orders SET customer_id = '00000000-0000-0000-0000-0000000000a2'
                   WHERE id = '00000000-0000-0000-0000-0000000000b4'$$, 'its rep moves API-4 to Client Two');
SELECT is((SELECT string_agg(DISTINCT customer_id::text, ',') || ' ' || count(*) FROM orders.leads
            WHERE order_id = '00000000-0000-0000-0000-0000000000b4'),
          '00000000-0000-0000-0000-0000000000a2 2', '... its two leads are Client Two''s now');
SELECT lives_ok($$UPDATE orders.leads SET notes = 'called back' WHERE order_id = '00000000-0000-0000-0000-0000000000b4'$$,
                '... and a lead is edited as before (it was OR011)');
SELECT is((SELECT leads_delivered FROM orders.orders WHERE id = '00000000-0000-0000-0000-0000000000b4'), 2,
          '... the count unchanged');
-- (0.42.0) a lead's metadata holds no number that prints as 131 kB
SELECT throws_ok($$UPDATE orders.leads SET metadata = '{"score": 1e131071}' WHERE order_id = '00000000-0000-0000-0000-0000000000b4'$$,
                 '23514', 'new row for relation "leads" violates check constraint "leads_metadata_check"',
                 '(0.42.0) a rep''s lead metadata with a number past 1e20 is refused');
SELECT is((SELECT count(*)::int FROM orders.leads WHERE metadata ? 'score'), 0, '... nothing stored');

SELECT * FROM finish();
ROLLBACK;
