-- Requests as PostgREST sends them: logged in as authenticator (a
-- non-superuser), each request sets role and JWT claims for its
-- transaction, then calls the RPC.  Row level security decides which orders
-- a client sees; history is written although clients cannot write it.
BEGIN;
SELECT plan(20);

SELECT ok(NOT (SELECT rolsuper FROM pg_roles WHERE rolname = session_user),
          'connected as a non-superuser login (' || session_user || ')');

-- request: client one moves its own order on
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims',
                  '{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}', true);
SELECT is(current_user::text, 'authenticated', 'the request runs as authenticated');
SELECT is((orders.transition(order_id => '00000000-0000-0000-0000-0000000000b1',
                             to_status => 'analyzing', notes => 'via api')).status,
          'analyzing', 'a client changes the status of its own order (named arguments)');
SELECT results_eq($$SELECT orders.allowed_transitions(order_id => '00000000-0000-0000-0000-0000000000b1')$$,
                  ARRAY['configuring', 'cancelled'],
                  'allowed_transitions lists the next statuses in display order (the analysis'' report is staff''s)');
SELECT throws_ok($$SELECT orders.transition('00000000-0000-0000-0000-0000000000b2', 'analyzing')$$,
                 'OR006', NULL, 'another client''s order is invisible (row level security)');
SELECT throws_ok($$UPDATE orders.orders SET status = 'completed' WHERE id = '00000000-0000-0000-0000-0000000000b1'$$,
                 'OR001', NULL, 'a PATCH that jumps ahead is refused by the trigger');
SELECT throws_ok($$UPDATE orders.orders SET status = 'reviewing' WHERE id = '00000000-0000-0000-0000-0000000000b1'$$,
                 '42501', 'order "API-1": the change from "analyzing" to "reviewing" is reserved to admin, manager or customer_rep',
                 'the analysis'' result is the agency''s edge, not the client''s (0.28.0)');
SELECT lives_ok($$UPDATE orders.orders SET status = 'configuring' WHERE id = '00000000-0000-0000-0000-0000000000b1'$$,
                'a PATCH along a client''s edge passes (back to configuring)');
SELECT is((orders.transition('00000000-0000-0000-0000-0000000000b1', 'analyzing')).status, 'analyzing',
          'and the client starts the analysis again');

-- request: the agency's admin reports the analysis
SELECT set_config('role', 'staff', true);
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
SELECT is((orders.transition('00000000-0000-0000-0000-0000000000b1', 'reviewing')).status, 'reviewing',
          'the admin takes the order to review');

-- request: the client approves
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims',
                  '{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}', true);
SELECT is((orders.transition('00000000-0000-0000-0000-0000000000b1', 'payment_pending', NULL, 'approve-1')).status,
          'payment_pending', 'client approves the sites');
SELECT is((orders.transition('00000000-0000-0000-0000-0000000000b1', 'payment_pending', NULL, 'approve-1')).status,
          'payment_pending', 'a retried request with the same key is a no-op');

-- staff-only edge: payment_pending -> in_progress
SELECT throws_ok($$SELECT orders.transition('00000000-0000-0000-0000-0000000000b1', 'in_progress')$$,
                 '42501', NULL, 'a client cannot take a staff-only edge');
SELECT ok(NOT EXISTS (SELECT 1 FROM orders.allowed_transitions('00000000-0000-0000-0000-0000000000b1') s
                       WHERE s = 'in_progress'), 'and is not offered it');

-- request: anon may do nothing with orders
SELECT set_config('role', 'anon', true);
SELECT set_config('request.jwt.claims', '{"role":"anon"}', true);
SELECT throws_ok($$SELECT orders.transition('00000000-0000-0000-0000-0000000000b1', 'cancelled')$$,
                 '42501', NULL, 'anon has no right to change orders');

-- request: staff takes payment
SELECT set_config('role', 'staff', true);
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
SELECT is((orders.transition('00000000-0000-0000-0000-0000000000b1', 'in_progress', 'paid by card')).status,
          'in_progress', 'staff takes the staff-only edge');
SELECT isnt((SELECT paid_at FROM orders.orders WHERE id = '00000000-0000-0000-0000-0000000000b1'), NULL,
            'paid_at stamped');

-- the history written for clients who cannot write history
SELECT results_eq($$SELECT old_status || '>' || new_status || ' by ' || changed_by
                      FROM orders.order_history
                     WHERE order_id = '00000000-0000-0000-0000-0000000000b1' ORDER BY id$$,
                  ARRAY['configuring>analyzing by 11111111-1111-1111-1111-111111111111',
                        'analyzing>configuring by 11111111-1111-1111-1111-111111111111',
                        'configuring>analyzing by 11111111-1111-1111-1111-111111111111',
                        'analyzing>reviewing by 44444444-4444-4444-4444-444444444444',
                        'reviewing>payment_pending by 11111111-1111-1111-1111-111111111111',
                        'payment_pending>in_progress by 44444444-4444-4444-4444-444444444444'],
                  'history has each change once, with the JWT sub of who made it');
SELECT is((SELECT has_table_privilege('authenticated', 'orders.order_history', 'INSERT')), false,
          'authenticated has no INSERT right on order_history');
SELECT is((SELECT count(*)::int FROM orders.order_history
            WHERE order_id = '00000000-0000-0000-0000-0000000000b2'), 0,
          'nothing happened to the other client''s order');

SELECT * FROM finish();
ROLLBACK;
