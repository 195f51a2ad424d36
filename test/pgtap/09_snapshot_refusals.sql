-- Work that must see committed data refuses a transaction snapshot
-- (REPEATABLE READ) with 25000, changing nothing: the recounts, a staff
-- member's slot, (0.37.0) a TRUNCATE of the history.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT plan(6);

SELECT throws_ok('SELECT * FROM orders.recount_leads()', '25000', NULL, 'recount_leads at REPEATABLE READ');
SELECT throws_ok('SELECT * FROM orders.recount_customer_stats()', '25000', NULL, 'recount_customer_stats at REPEATABLE READ');
SELECT throws_ok($$INSERT INTO orders.service_capacity (service_id, staff_id, starts_at, ends_at)
                   VALUES (gen_random_uuid(), gen_random_uuid(), now() + interval '1 day', now() + interval '1 day 1 hour')$$,
                 '25000', NULL, 'a staff member''s slot at REPEATABLE READ');
SELECT is((SELECT count(*)::int FROM orders.service_capacity WHERE staff_id IS NOT NULL AND starts_at > now() + interval '23 hours'
             AND created_at = now()), 0, 'and no slot was written');
-- (0.37.0) the history's TRUNCATE keeps the unannounced changes it reads:
-- with this snapshot it missed those committed after it, and lost them
SELECT count(*) AS history_rows FROM orders.order_history \gset
SELECT throws_ok('TRUNCATE orders.order_history', '25000', NULL, 'TRUNCATE of the history at REPEATABLE READ');
SELECT is((SELECT count(*) FROM orders.order_history), :'history_rows'::bigint, '... the history as it was');

SELECT * FROM finish();
ROLLBACK;
