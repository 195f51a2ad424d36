-- A lead-gen worker (role lead_worker, with INSERT/UPDATE on leads but no
-- right to write orders) delivers leads over the API; the counters and the
-- auto-complete follow without any right on orders.orders.
BEGIN;
SELECT plan(5);

SELECT set_config('role', 'lead_worker', true);
SELECT set_config('request.jwt.claims', '{"sub":"worker-9","role":"lead_worker"}', true);
SELECT is(has_table_privilege('orders.orders', 'UPDATE'), false, 'the worker cannot update orders');
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
          'worker-9: auto: all 2 leads delivered', 'history names the worker whose lead completed it');

SELECT * FROM finish();
ROLLBACK;
