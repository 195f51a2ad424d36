-- Staff notifications as PostgREST serves them (issue 13): a rep (JWT sub
-- 5555…, role authenticated) reads and marks only their own; another's
-- notification is invisible and unmarkable; only is_read may change; a
-- customer has none.
BEGIN;
SELECT plan(13);

-- pg_temp.as(sub) — the request's role and claims, as PostgREST sets them
CREATE FUNCTION pg_temp.as_sub(sub text) RETURNS void LANGUAGE sql AS $$
    SELECT set_config('role', 'authenticated', true),
           set_config('request.jwt.claims', json_build_object('sub', sub, 'role', 'authenticated')::text, true);
$$;

SELECT pg_temp.as_sub('55555555-5555-5555-5555-555555555555');
SELECT is((SELECT string_agg(title, ', ' ORDER BY title) FROM orders.notifications), 'API-2 delivered, New order API-1',
          'GET /notifications as the rep: their two, not the admin''s');
SELECT is((SELECT count(*)::int FROM orders.unread_notifications()), 2, 'POST /rpc/unread_notifications: two unread');
SELECT is(orders.mark_notifications_read(ARRAY['00000000-0000-0000-0000-0000000000f1', '00000000-0000-0000-0000-0000000000f3']::uuid[]), 1,
          'marking their own and the admin''s: one marked (the admin''s is not theirs)');
SELECT is((SELECT count(*)::int FROM orders.unread_notifications()), 1, '... one unread left');
SELECT throws_ok($$UPDATE orders.notifications SET title = 'forged'$$, '42501', NULL, 'PATCH of a title: 42501 (only is_read may change)');
SELECT is((SELECT count(*)::int FROM orders.notifications WHERE id = '00000000-0000-0000-0000-0000000000f3'), 0,
          'the admin''s notification is invisible to the rep');
SELECT lives_ok($$DELETE FROM orders.notifications WHERE id = '00000000-0000-0000-0000-0000000000f3'$$,
          'DELETE of the admin''s notification runs ...');
SELECT is(orders.mark_notifications_read(), 1, 'mark all read: the one left');
SELECT throws_ok($$INSERT INTO orders.notifications (user_id, type, title) VALUES ('00000000-0000-0000-0000-0000000000e8', 'alert', 'spoof')$$,
          '42501', NULL, 'a rep cannot write a notification for someone (42501)');

SELECT pg_temp.as_sub('44444444-4444-4444-4444-444444444444');
SELECT is((SELECT title || ' ' || is_read FROM orders.notifications), 'Low stock false',
          '... but deleted nothing and marked nothing of the admin''s: the admin sees it unread');
-- the admin deactivates the rep (it had two notifications)
UPDATE orders.staff SET is_active = false WHERE account_id = '55555555-5555-5555-5555-555555555555';
SELECT pg_temp.as_sub('55555555-5555-5555-5555-555555555555');
SELECT is((SELECT count(*)::int FROM orders.notifications) + (SELECT count(*)::int FROM orders.unread_notifications()), 0,
          'a deactivated rep reads none of its notifications (GET, POST /rpc/unread_notifications)');
SELECT throws_ok($$SELECT orders.mark_notifications_read()$$, '42501', 'only active staff members have notifications',
                 '... and marks none (42501)');

SELECT pg_temp.as_sub('11111111-1111-1111-1111-111111111111');
SELECT throws_ok($$SELECT orders.mark_notifications_read()$$, '42501', 'only active staff members have notifications',
                 'a customer marking notifications: 42501');
SELECT * FROM finish();
ROLLBACK;
