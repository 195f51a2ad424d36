-- Policies do not defeat the indexes (issue: policies must stay fast).  On a
-- modest data set made here by the admin (300 customers, 6,000 orders, ten
-- agents), EXPLAIN (ANALYZE, VERBOSE) of the delivery agent's "my active
-- deliveries" and of a customer's order list, as PostgREST runs them: the
-- plan reaches the orders through the intended index with an index
-- condition; the policies are one call per row of orders.sees_order /
-- orders.sees_customer (no InitPlan, no subplan, no identity helper per
-- row); and the caller's identity is looked up once per query, however
-- many rows the policies judge (the index scans of staff_account_id_key
-- counted by pg_stat_get_xact_numscans).  The data is analyzed in this
-- transaction (by a fixture of test/setup.sql: authenticator may not
-- ANALYZE), so the plans are those of this data, whatever earlier tests or
-- autovacuum left in the statistics (before, the plans followed those, and
-- a check failed one run in a few); enable_seqscan is off, and the agent's index is
-- checked on its orders alone (with the customers joined, few-row
-- statistics let the planner start from the customers, a legitimate plan
-- that says nothing about the policies).  That does not help a policy that
-- defeats the index: a condition the planner cannot use as an index
-- condition stays a filter, and the checks below look for the index
-- condition itself.
BEGIN;
SELECT plan(21);

-- the data, made by the admin (sub 4444…)
SELECT set_config('role', 'staff', true);
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
INSERT INTO orders.staff (id, full_name, role)
SELECT ('00000000-0000-0000-7e57-0000000000' || lpad(g::text, 2, '0'))::uuid, 'Plan Agent ' || g, 'delivery_agent'
  FROM generate_series(1, 9) g;
INSERT INTO orders.customers (id, full_name, area)
SELECT ('00000000-0000-0000-7e57-' || lpad(g::text, 12, '0'))::uuid, 'Plan Customer ' || g, 'area-' || (g % 20)
  FROM generate_series(100, 399) g;
-- 6,000 orders: every 10th for the agent of the API tests (sub 3333…,
-- staff …e9), the others spread over nine agents; client one (sub 1111…)
-- gets every 300th, 20 orders
INSERT INTO orders.orders (order_number, customer_id, created_at, delivery_area, assigned_agent_id)
SELECT 'PLAN-' || g,
       CASE WHEN g % 300 = 0 THEN '00000000-0000-0000-0000-0000000000a1'::uuid
            ELSE ('00000000-0000-0000-7e57-' || lpad((100 + g % 300)::text, 12, '0'))::uuid END,
       now() - g * interval '7 minutes', 'area-' || (g % 20),
       CASE WHEN g % 10 = 0 THEN '00000000-0000-0000-0000-0000000000e9'::uuid
            ELSE ('00000000-0000-0000-7e57-0000000000' || lpad((1 + g % 9)::text, 2, '0'))::uuid END
  FROM generate_series(1, 6000) g;
-- 60 of the agent's orders are ready for pickup
UPDATE orders.orders SET status = 'confirmation_pending' WHERE order_number LIKE 'PLAN-%' AND substr(order_number, 6)::int % 100 = 0;
UPDATE orders.orders SET status = 'confirmed' WHERE order_number LIKE 'PLAN-%' AND substr(order_number, 6)::int % 100 = 0;
UPDATE orders.orders SET status = 'being_prepared' WHERE order_number LIKE 'PLAN-%' AND substr(order_number, 6)::int % 100 = 0;
UPDATE orders.orders SET status = 'ready_for_pickup' WHERE order_number LIKE 'PLAN-%' AND substr(order_number, 6)::int % 100 = 0;
SET LOCAL enable_seqscan = off;
-- statistics of this data (test/setup.sql: ANALYZE as the tables' owner,
-- in this transaction), so the plans below do not depend on what ran before
SELECT tap_fixtures.analyze_orders();

-- plan_of(query) — EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON) of query, as the caller
CREATE FUNCTION pg_temp.plan_of(query text) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE plan jsonb;
BEGIN
    EXECUTE 'EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, FORMAT JSON) ' || query INTO plan;
    RETURN plan;
END $$;
-- index_cond(plan, index, column) — a scan of index whose index condition names column
CREATE FUNCTION pg_temp.index_cond(plan jsonb, index text, col text) RETURNS boolean LANGUAGE sql AS $$
    SELECT EXISTS (SELECT FROM jsonb_path_query(plan, '$.** ? (@."Index Name" == $i)', jsonb_build_object('i', index)) n
                    WHERE n ->> 'Index Cond' ~ ('\m' || col || '\M'))
$$;
-- policy(plan, fn) — fn is called in a per-row condition, and the plan has no InitPlan
CREATE FUNCTION pg_temp.policy(plan jsonb, fn text) RETURNS boolean LANGUAGE sql AS $$
    SELECT EXISTS (SELECT FROM jsonb_path_query(plan, 'strict $.**.* ? (@ like_regex "orders\\.[a-z_]+\\(")') c
                    WHERE c #>> '{}' ~ ('orders\.' || fn || '\('))
       AND NOT EXISTS (SELECT FROM jsonb_path_query(plan, '$.** ? (@."Parent Relationship" == "InitPlan")'))
$$;
-- lookups() — index scans of staff_account_id_key so far in this transaction (one per identity lookup)
CREATE FUNCTION pg_temp.lookups() RETURNS bigint LANGUAGE sql AS $$
    SELECT pg_catalog.pg_stat_get_xact_numscans('orders.staff_account_id_key'::regclass)
$$;
-- per_row(plan) — conditions evaluated per row that call an identity helper
CREATE FUNCTION pg_temp.per_row(plan jsonb) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(c #>> '{}', '; ')
      FROM jsonb_path_query(plan, 'strict $.**.* ? (@ like_regex "(current_customer_ids|current_staff_id|current_staff_role|has_permission|actor_account|current_actor)\\(")') c
$$;

-- request: the agent (sub 3333…) lists its active deliveries
SELECT set_config('role', 'staff', true);
SELECT set_config('request.jwt.claims', '{"sub":"33333333-3333-3333-3333-333333333333","role":"staff"}', true);
SELECT pg_temp.plan_of($$SELECT * FROM orders.agent_active_deliveries('00000000-0000-0000-0000-0000000000e9')$$) AS agent_plan \gset
SELECT is((SELECT count(*)::int FROM orders.agent_active_deliveries('00000000-0000-0000-0000-0000000000e9')), 60,
          'the agent sees its 60 orders ready for pickup');
SELECT ok(pg_temp.index_cond(pg_temp.plan_of($$SELECT * FROM orders.orders WHERE assigned_agent_id = '00000000-0000-0000-0000-0000000000e9'
                                                AND status = ANY ('{ready_for_pickup,out_for_delivery}')$$),
                             'orders_assigned_agent_idx', 'assigned_agent_id'),
          'agent''s active orders: orders_assigned_agent_idx with an index condition on assigned_agent_id');
SELECT ok(pg_temp.policy(:'agent_plan', 'sees_order') AND pg_temp.policy(:'agent_plan', 'sees_customer'),
          '... the policies are one call per row of sees_order and sees_customer, and no InitPlan');
SELECT pg_temp.lookups() AS before \gset
SELECT is((SELECT count(*)::int FROM orders.agent_active_deliveries('00000000-0000-0000-0000-0000000000e9')
            CROSS JOIN generate_series(1, 3)), 180, 'the agent''s 60 orders, three times over in one query ...');
SELECT is(pg_temp.lookups() - :before, 1::bigint, '... judged with one lookup of the caller''s identity');
SELECT is(pg_temp.per_row(:'agent_plan'), NULL, '... and no helper is called in a per-row condition');
SELECT is((SELECT count(*)::int FROM jsonb_path_query(:'agent_plan', '$.** ? (@."Parent Relationship" == "SubPlan")')), 0,
          '... the customers policy reads no subplan of the agent''s orders (agent_serves_customer: one index-only scan)');
SELECT is((SELECT count(*)::int FROM orders.customers),
          (SELECT count(DISTINCT customer_id)::int FROM orders.orders WHERE assigned_agent_id = '00000000-0000-0000-0000-0000000000e9'),
          'the agent reads the customers of the orders assigned to it, no more');

-- request: client one (sub 1111…) lists its newest orders, with and without its customer id
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}', true);
SELECT pg_temp.plan_of($$SELECT * FROM orders.orders WHERE customer_id = '00000000-0000-0000-0000-0000000000a1'
                          ORDER BY created_at DESC LIMIT 20$$) AS customer_plan \gset
SELECT is((SELECT count(*)::int FROM (SELECT * FROM orders.orders WHERE customer_id = '00000000-0000-0000-0000-0000000000a1'
                                       ORDER BY created_at DESC LIMIT 20) o), 20, 'client one gets a page of 20 orders');
SELECT ok(pg_temp.index_cond(:'customer_plan', 'orders_customer_created_idx', 'customer_id')
          OR pg_temp.index_cond(:'customer_plan', 'orders_customer_status_idx', 'customer_id'),
          'customer''s orders: orders_customer_created_idx or orders_customer_status_idx with an index condition on customer_id');
SELECT ok(pg_temp.policy(:'customer_plan', 'sees_order'), '... the policy is one call per row of sees_order, and no InitPlan');
SELECT is(pg_temp.per_row(:'customer_plan'), NULL, '... and no helper is called in a per-row condition');
SELECT pg_temp.plan_of($$SELECT * FROM orders.orders ORDER BY created_at DESC LIMIT 20$$) AS all_plan \gset
SELECT ok(pg_temp.policy(:'all_plan', 'sees_order'), 'unfiltered list: sees_order per row, no InitPlan');
SELECT pg_temp.lookups() AS before \gset
SELECT is((SELECT count(*) FILTER (WHERE order_number LIKE 'PLAN-%') || ' ' || bool_and(customer_id = '00000000-0000-0000-0000-0000000000a1')
             FROM orders.orders), '20 true', 'client one reaches its 20 orders among 6,000, and only its own ...');
SELECT is(pg_temp.lookups() - :before, 1::bigint, '... judged with one lookup of the caller''s identity');
SELECT is(pg_temp.per_row(:'all_plan'), NULL, '... no helper per row');

-- (0.44.0) client one's recent_orders: its own orders by their index (the
-- dashboard function read every order under the per-row policy before)
SELECT pg_temp.plan_of($$SELECT * FROM orders.recent_orders(ARRAY['new'])$$) AS recent_plan \gset
SELECT ok(pg_temp.index_cond(:'recent_plan', 'orders_customer_created_idx', 'customer_id')
          OR pg_temp.index_cond(:'recent_plan', 'orders_customer_status_idx', 'customer_id'),
          'a customer''s recent_orders: an index condition on customer_id');
SELECT is((SELECT count(*)::int FROM orders.recent_orders(ARRAY['new'], 100)),
          (SELECT count(*)::int FROM orders.orders WHERE status = 'new'),
          '... and all its new orders, no others');

-- request: the admin (sub 4444…) lists low stock, then orders; a rep (sub
-- 5555…) lists orders.  The caller's staff row is read once per query, its
-- customer rows only when a policy needs them: not for products, not for
-- someone who reaches every order; for a rep, whose own orders as a
-- customer count too
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"authenticated"}', true);
CREATE FUNCTION pg_temp.customer_lookups() RETURNS bigint LANGUAGE sql AS $$
    SELECT pg_catalog.pg_stat_get_xact_numscans('orders.customers_account_id_idx'::regclass)
$$;
SELECT pg_temp.lookups() AS before, pg_temp.customer_lookups() AS customer_before \gset
SELECT count(*) FROM orders.low_stock_view \g /dev/null
SELECT is((pg_temp.lookups() - :before) || ' ' || (pg_temp.customer_lookups() - :customer_before), '1 0',
          'a query about products looks up the caller''s staff row once and none of its customer rows');
SELECT count(*) FROM orders.orders \g /dev/null
SELECT is((pg_temp.lookups() - :before) || ' ' || (pg_temp.customer_lookups() - :customer_before), '2 0',
          '... nor does the admin''s query about orders (it reaches every order)');
SELECT set_config('request.jwt.claims', '{"sub":"55555555-5555-5555-5555-555555555555","role":"authenticated"}', true);
SELECT count(*) FROM orders.orders \g /dev/null
SELECT is((pg_temp.lookups() - :before) || ' ' || (pg_temp.customer_lookups() - :customer_before), '3 1',
          '... a rep''s query about orders reads both, once');

SELECT * FROM finish();
ROLLBACK;
