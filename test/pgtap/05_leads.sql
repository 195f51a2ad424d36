-- Lead counter refusals (SQLSTATE, and nothing changes), the counter is
-- written by the extension only, a statement moving many leads is counted
-- exactly, the orders are locked before the foreign keys' checks, and a
-- DBA's statement trigger on orders still sees the counter's writes.
BEGIN;
SELECT plan(34);

INSERT INTO orders.customers (id, full_name) VALUES
  ('00000000-0000-0000-0000-0000000005c1', 'Leads One'), ('00000000-0000-0000-0000-0000000005c2', 'Leads Two');
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle, leads_purchased) VALUES
  ('00000000-0000-0000-0000-0000000005a1', 'T5-1', '00000000-0000-0000-0000-0000000005c1', 'campaign', 2),
  ('00000000-0000-0000-0000-0000000005a2', 'T5-2', '00000000-0000-0000-0000-0000000005c1', 'campaign', 1000),
  ('00000000-0000-0000-0000-0000000005a3', 'T5-3', '00000000-0000-0000-0000-0000000005c1', 'campaign', 1000);
UPDATE orders.orders SET status = 'active' WHERE order_number IN ('T5-1', 'T5-2', 'T5-3');
INSERT INTO orders.leads (id, customer_id, order_id, status) VALUES
  ('00000000-0000-0000-0000-000000000501', '00000000-0000-0000-0000-0000000005c1', '00000000-0000-0000-0000-0000000005a1', 'approved');
CREATE TEMP TABLE before_orders AS SELECT * FROM orders.orders;
CREATE TEMP TABLE before_leads AS SELECT * FROM orders.leads;

SELECT throws_ok($$INSERT INTO orders.leads (customer_id, order_id, status) SELECT '00000000-0000-0000-0000-0000000005c1', '00000000-0000-0000-0000-0000000005a1', 'approved' FROM generate_series(1, 2)$$,
                 'OR010', 'order "T5-1" is full: 1 of 2 leads delivered, 2 more would exceed the purchase',
                 'delivering past leads_purchased');
SELECT throws_ok($$INSERT INTO orders.leads (customer_id, order_id, status) VALUES ('00000000-0000-0000-0000-0000000005c2', '00000000-0000-0000-0000-0000000005a1', 'new')$$,
                 'OR011', NULL, 'a lead of another customer');
SELECT throws_ok($$INSERT INTO orders.leads (customer_id, order_id, status) VALUES (NULL, '00000000-0000-0000-0000-0000000005a1', 'new')$$,
                 'OR011', NULL, 'a lead without customer');
SELECT throws_ok($$UPDATE orders.orders SET status = 'paused' WHERE order_number = 'T5-2';
                   INSERT INTO orders.leads (customer_id, order_id, status) VALUES ('00000000-0000-0000-0000-0000000005c1', '00000000-0000-0000-0000-0000000005a2', 'lead')$$,
                 'OR012', NULL, 'delivering to a paused campaign');
SELECT throws_ok($$INSERT INTO orders.orders (id, order_number, customer_id, lifecycle) VALUES
                     ('00000000-0000-0000-0000-0000000005a4', 'T5-4', '00000000-0000-0000-0000-0000000005c1', 'cod');
                   INSERT INTO orders.leads (customer_id, order_id, status) VALUES ('00000000-0000-0000-0000-0000000005c1', '00000000-0000-0000-0000-0000000005a4', 'approved')$$,
                 'OR012', 'order "T5-4" is new and not accepting leads',
                 'delivering to a COD order: OR012 (it takes no leads), not OR010 "full: 0 of 0"');
SELECT throws_ok($$UPDATE orders.orders SET leads_purchased = 0 WHERE order_number = 'T5-1'$$,
                 'OR013', 'order "T5-1": leads_purchased cannot be lowered to 0, 1 leads are already delivered',
                 'lowering leads_purchased below leads_delivered');
SELECT throws_ok($$UPDATE orders.orders SET leads_purchased = -5 WHERE order_number = 'T5-1'$$,
                 '23514', NULL, 'a negative leads_purchased: its CHECK (23514), not OR013''s "lowered below the delivered"');
SELECT throws_ok($$SELECT orders.assign_lead('00000000-0000-0000-0000-0000000005ff', '00000000-0000-0000-0000-0000000005a1')$$,
                 'OR015', NULL, 'assigning an unknown lead');
SELECT throws_ok($$SELECT orders.assign_lead(NULL, '00000000-0000-0000-0000-0000000005a1')$$,
                 '22004', NULL, 'assign_lead(NULL, ...)');
SELECT throws_ok($$SELECT orders.assign_lead(id, '00000000-0000-0000-0000-0000000005fe') FROM orders.leads LIMIT 1$$,
                 'OR006', 'order 00000000-0000-0000-0000-0000000005fe does not exist',
                 '(0.39.0) assigning a lead to an unknown order: OR006 (was the foreign key''s 23503)');
SELECT throws_ok($$INSERT INTO orders.leads (customer_id, status) VALUES ('00000000-0000-0000-0000-0000000005c1', 'hot')$$,
                 '23514', NULL, 'an unknown lead status');

-- only the extension writes leads_delivered
GRANT SELECT, UPDATE ON orders.orders TO staff;
SET LOCAL ROLE staff;
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444"}', true);  -- the admin
SELECT throws_ok($$UPDATE orders.orders SET leads_delivered = 2 WHERE order_number = 'T5-1'$$,
                 'OR014', NULL, 'a client cannot set leads_delivered');
RESET ROLE;
SELECT set_config('request.jwt.claims', '', true);
SELECT throws_ok('TRUNCATE orders.leads', 'OR014', NULL, 'TRUNCATE while orders count leads');

SELECT set_eq('SELECT * FROM orders.orders', 'SELECT * FROM before_orders', 'refusals changed no order');
SELECT set_eq('SELECT * FROM orders.leads', 'SELECT * FROM before_leads', 'refusals changed no lead');

-- a new order starts at 0 delivered whatever the INSERT says
INSERT INTO orders.orders (order_number, customer_id, lifecycle, leads_purchased, leads_delivered)
VALUES ('T5-4', '00000000-0000-0000-0000-0000000005c1', 'campaign', 5, 5);
SELECT is((SELECT leads_delivered FROM orders.orders WHERE order_number = 'T5-4'), 0,
          'a new order has no delivered leads');

-- 600 leads moved between two orders in one statement, mixed statuses
INSERT INTO orders.leads (customer_id, order_id, status)
SELECT '00000000-0000-0000-0000-0000000005c1', '00000000-0000-0000-0000-0000000005a3',
       (ARRAY['new', 'approved', 'lead', 'rejected'])[1 + n % 4]
  FROM generate_series(1, 600) n;
UPDATE orders.leads SET order_id = '00000000-0000-0000-0000-0000000005a2', status = CASE status WHEN 'new' THEN 'lead' ELSE status END
 WHERE order_id = '00000000-0000-0000-0000-0000000005a3' AND random() < 0.5;
SELECT is((SELECT count(*)::int FROM orders.recount_leads()), 0, 'bulk moves leave every count exact');
SELECT is((SELECT sum(leads_delivered)::int FROM orders.orders WHERE order_number IN ('T5-2', 'T5-3')),
          (SELECT count(*)::int FROM orders.leads WHERE order_id IN ('00000000-0000-0000-0000-0000000005a2', '00000000-0000-0000-0000-0000000005a3')
              AND status IN ('approved', 'lead')),
          'and the counts add up to the counted leads');

-- a campaign with room for 10^9 leads (0.12.0: "near capacity" overflowed
-- integer arithmetic above 238,609,294 leads purchased, 22003)
UPDATE orders.orders SET leads_purchased = 1000000000 WHERE order_number = 'T5-2';
SELECT lives_ok('SELECT * FROM orders.order_stats()', 'order_stats() works for a campaign of 10^9 leads');

-- 0.23.0: the orders of a statement's leads are locked by a row trigger
-- that fires before the foreign keys' checks (triggers fire in name order)
SELECT is((SELECT count(*)::int FROM pg_trigger
            WHERE tgrelid = 'orders.leads'::regclass AND tgisinternal
              AND tgname COLLATE "C" < 'Leads_lock_orders' COLLATE "C"), 0,
          'Leads_lock_orders sorts before every foreign-key trigger of orders.leads');
SELECT cmp_ok((SELECT count(*)::int FROM pg_trigger
                WHERE tgrelid = 'orders.leads'::regclass AND tgisinternal AND tgname LIKE 'RI_ConstraintTrigger_c_%'),
              '>=', 2, 'and there are foreign-key check triggers to sort before');

-- the counter is written without an UPDATE statement while orders.orders
-- has only the extension's triggers; a DBA's UPDATE statement trigger
-- (added after the backend chose that way) makes it an UPDATE again
INSERT INTO orders.leads (customer_id, order_id, status)
VALUES ('00000000-0000-0000-0000-0000000005c1', '00000000-0000-0000-0000-0000000005a3', 'approved');
CREATE FUNCTION public.t5_dba_saw_update() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    PERFORM set_config('t5.saw', (SELECT string_agg(n.leads_delivered::text, ',') FROM new_orders n), true);
    RETURN NULL;
END $f$;
CREATE TRIGGER t5_dba_saw_update AFTER UPDATE ON orders.orders REFERENCING NEW TABLE AS new_orders
    FOR EACH STATEMENT EXECUTE FUNCTION public.t5_dba_saw_update();
SELECT set_config('t5.saw', '', true);
INSERT INTO orders.leads (customer_id, order_id, status)
VALUES ('00000000-0000-0000-0000-0000000005c1', '00000000-0000-0000-0000-0000000005a3', 'approved');
SELECT is(current_setting('t5.saw'),
          (SELECT leads_delivered::text FROM orders.orders WHERE order_number = 'T5-3'),
          'a DBA''s UPDATE statement trigger on orders sees the counter''s write, with its transition table');
DROP TRIGGER t5_dba_saw_update ON orders.orders;
SELECT set_config('t5.saw', '', true);
INSERT INTO orders.leads (customer_id, order_id, status)
VALUES ('00000000-0000-0000-0000-0000000005c1', '00000000-0000-0000-0000-0000000005a3', 'lead');
SELECT is((SELECT count(*)::int FROM orders.recount_leads()), 0, 'counts exact on both ways of writing them');
SELECT throws_ok($$INSERT INTO orders.leads (customer_id, order_id, status) SELECT '00000000-0000-0000-0000-0000000005c1', '00000000-0000-0000-0000-0000000005a1', 'approved' FROM generate_series(1, 2)$$,
                 'OR010', 'order "T5-1" is full: 1 of 2 leads delivered, 2 more would exceed the purchase',
                 'delivering past leads_purchased, written directly, is refused as before');

-- the counter's direct write leaves out the BEFORE row triggers that would
-- let it through unchanged (status_guard, lead_capacity_guard) and stamps
-- updated_at itself, as set_updated_at would; a DBA's BEFORE row trigger,
-- the stamp's trigger disabled, an order already over its purchase: each
-- honoured as by the triggers
SET LOCAL track_functions = 'all';
CREATE FUNCTION pg_temp.calls(f text) RETURNS bigint LANGUAGE sql AS
  $$ SELECT coalesce((SELECT calls FROM pg_stat_xact_user_functions
                       WHERE schemaname = 'orders' AND funcname = f), 0) $$;
CREATE FUNCTION pg_temp.guard_calls() RETURNS bigint[] LANGUAGE sql AS
  $$ SELECT ARRAY[pg_temp.calls('status_guard'), pg_temp.calls('lead_capacity_guard'), pg_temp.calls('set_updated_at')] $$;
SET LOCAL session_replication_role = replica;
UPDATE orders.orders SET updated_at = '2000-01-01' WHERE order_number = 'T5-3';
SET LOCAL session_replication_role = origin;
CREATE TEMP TABLE t5_calls AS SELECT pg_temp.guard_calls() AS calls;
INSERT INTO orders.leads (customer_id, order_id, status)
VALUES ('00000000-0000-0000-0000-0000000005c1', '00000000-0000-0000-0000-0000000005a3', 'approved');
SELECT is((SELECT updated_at FROM orders.orders WHERE order_number = 'T5-3'), now(),
          'a counted lead stamps its order''s updated_at');
SELECT is(pg_temp.guard_calls(), (SELECT calls FROM t5_calls),
          'without calling status_guard, lead_capacity_guard or set_updated_at');
CREATE FUNCTION public.t5_dba_before() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    PERFORM set_config('t5.before', NEW.leads_delivered::text, true);
    RETURN NEW;
END $f$;
CREATE TRIGGER t5_dba_before BEFORE UPDATE ON orders.orders
    FOR EACH ROW EXECUTE FUNCTION public.t5_dba_before();
INSERT INTO orders.leads (customer_id, order_id, status)
VALUES ('00000000-0000-0000-0000-0000000005c1', '00000000-0000-0000-0000-0000000005a3', 'approved');
SELECT is(current_setting('t5.before', true),
          (SELECT leads_delivered::text FROM orders.orders WHERE order_number = 'T5-3'),
          'a DBA''s BEFORE UPDATE row trigger on orders sees the counter''s write');
SELECT ok((SELECT bool_and(n > o) FROM unnest(pg_temp.guard_calls(), (SELECT calls FROM t5_calls)) AS c(n, o)),
          'and the extension''s BEFORE row triggers fire with it');
DROP TRIGGER t5_dba_before ON orders.orders;
ALTER TABLE orders.orders DISABLE TRIGGER set_updated_at;
SET LOCAL session_replication_role = replica;
UPDATE orders.orders SET updated_at = '2000-01-01' WHERE order_number = 'T5-3';
SET LOCAL session_replication_role = origin;
INSERT INTO orders.leads (customer_id, order_id, status)
VALUES ('00000000-0000-0000-0000-0000000005c1', '00000000-0000-0000-0000-0000000005a3', 'approved');
SELECT is((SELECT updated_at FROM orders.orders WHERE order_number = 'T5-3'), '2000-01-01'::timestamptz,
          'set_updated_at disabled by a DBA: the counter''s write leaves updated_at as it was');
ALTER TABLE orders.orders ENABLE TRIGGER set_updated_at;
-- T5-1 (2 purchased, 1 delivered) pushed over its purchase behind the
-- triggers' back (and without the CHECK that forbids it): removing a lead
-- still leaves it over, refused as before
ALTER TABLE orders.orders DROP CONSTRAINT orders_leads_delivered_within_purchase;
SET LOCAL session_replication_role = replica;
UPDATE orders.orders SET leads_delivered = 4 WHERE order_number = 'T5-1';
SET LOCAL session_replication_role = origin;
SELECT throws_ok($$DELETE FROM orders.leads WHERE id = '00000000-0000-0000-0000-000000000501'$$,
                 'OR010', NULL, 'an order over its purchase: lead_capacity_guard still refuses the counter''s write');
SET LOCAL session_replication_role = replica;
UPDATE orders.orders SET leads_delivered = 1 WHERE order_number = 'T5-1';
SET LOCAL session_replication_role = origin;

-- a statement that changes the order and delivers to it (a CTE): the lock
-- ahead and the counter's direct write both meet the row the statement
-- changed itself, and the counter sees it
SELECT lives_ok($$WITH u AS (UPDATE orders.orders SET leads_purchased = leads_purchased + 1
                               WHERE order_number = 'T5-3' RETURNING id)
                  INSERT INTO orders.leads (customer_id, order_id, status)
                  SELECT '00000000-0000-0000-0000-0000000005c1', u.id, 'approved' FROM u$$,
                'a CTE changing the order and delivering a lead to it');
SELECT is((SELECT count(*)::int FROM orders.recount_leads()), 0, 'and its count is exact');

-- a DBA who dropped the orders' primary key (and the foreign keys with it):
-- nothing is locked ahead, the counter is written by its UPDATE, still exact
SET LOCAL client_min_messages = warning;
ALTER TABLE orders.orders DROP CONSTRAINT orders_pkey CASCADE;
RESET client_min_messages;
SELECT lives_ok($$INSERT INTO orders.leads (customer_id, order_id, status)
                  VALUES ('00000000-0000-0000-0000-0000000005c1', '00000000-0000-0000-0000-0000000005a2', 'approved')$$,
                'a lead delivered to a table without its primary key (an order not locked ahead yet)');
SELECT is((SELECT count(*)::int FROM orders.recount_leads()), 0, 'and counted exactly');

SELECT * FROM finish();
ROLLBACK;
