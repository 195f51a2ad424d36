-- A lead-gen worker (a customer rep, sub 5555…, under the API role
-- lead_worker) delivers leads over the API; the counters and the
-- auto-complete follow, although the worker cannot write the counter.
BEGIN;
SELECT plan(8);

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

SELECT * FROM finish();
ROLLBACK;
