-- The lifecycle graph is read with the latest snapshot, which a parallel
-- query may not take: orders.status_category (PARALLEL SAFE) must still
-- work when this session's first use of the graph is in a parallel worker
-- (pg_prove runs each file in a fresh session, so nothing is cached yet).
BEGIN;
SET LOCAL force_parallel_mode = on;
SELECT plan(3);
SELECT is((SELECT orders.status_category(l, s) FROM (VALUES ('cod', 'delivered')) v(l, s)), 'fulfilled',
          'status_category in a parallel worker loads the graph');
SELECT is((SELECT count(*)::int FROM orders.lifecycle_states WHERE orders.status_category(lifecycle, status) = category),
          (SELECT count(*)::int FROM orders.lifecycle_states), 'every state''s category, in parallel mode');
RESET force_parallel_mode;
SELECT is(orders.status_category('booking', 'no_show'), 'cancelled', 'and afterwards outside it');
SELECT * FROM finish();
ROLLBACK;
