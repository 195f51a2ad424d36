-- Every refusal of the foundation: its SQLSTATE, and that it changed nothing.
BEGIN;
SELECT plan(37);

INSERT INTO orders.customers (id, full_name) VALUES ('00000000-0000-0000-0000-00000000c004', 'T4');
INSERT INTO orders.orders (id, order_number, customer_id)
VALUES ('00000000-0000-0000-0000-000000000401', 'T4-1', '00000000-0000-0000-0000-00000000c004');
CREATE TEMP TABLE before AS SELECT * FROM orders.orders;
CREATE TEMP TABLE before_history AS SELECT * FROM orders.order_history;

-- lifecycle and status
SELECT throws_ok($$INSERT INTO orders.orders (customer_id, lifecycle) VALUES ('00000000-0000-0000-0000-00000000c004', 'nope')$$,
                 'OR002', NULL, 'unknown lifecycle on insert');
SELECT throws_ok($$INSERT INTO orders.orders (order_number, customer_id, status) VALUES ('T4-x', '00000000-0000-0000-0000-00000000c004', 'bogus')$$,
                 'OR003', 'order "T4-x": "bogus" is not a status of lifecycle "cod"', 'unknown status on insert');
SELECT throws_ok($$UPDATE orders.orders SET status = 'bogus' WHERE order_number = 'T4-1'$$,
                 'OR003', NULL, 'unknown status on update');
SELECT throws_ok($$SELECT orders.transition('00000000-0000-0000-0000-000000000401', 'bogus')$$,
                 'OR003', NULL, 'unknown status via transition');
SELECT throws_ok($$SELECT orders.transition('00000000-0000-0000-0000-000000000401', 'delivered')$$,
                 'OR001', 'order "T4-1": cannot change status from "new" to "delivered" in lifecycle "cod"',
                 'a jump is refused with a message naming order, from and to');
SELECT throws_ok($$UPDATE orders.orders SET lifecycle = 'campaign', status = 'draft' WHERE order_number = 'T4-1'$$,
                 'OR004', NULL, 'changing the lifecycle');
SELECT throws_ok($$UPDATE orders.orders SET status = NULL WHERE order_number = 'T4-1'$$,
                 '23502', NULL, 'a NULL status');

-- a new order in a later status: only the table owner (imports, restores)
GRANT INSERT, SELECT ON orders.orders TO staff;
SET LOCAL ROLE staff;
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444"}', true);  -- the admin
SELECT throws_ok($$INSERT INTO orders.orders (order_number, customer_id, status) VALUES ('T4-y', '00000000-0000-0000-0000-00000000c004', 'delivered')$$,
                 'OR005', NULL, 'a non-owner cannot insert an order in a later status');
RESET ROLE;
SELECT set_config('request.jwt.claims', '', true);

-- arguments
SELECT throws_ok($$SELECT orders.transition(NULL, 'confirmed')$$, '22004', NULL, 'NULL order_id');
SELECT throws_ok($$SELECT orders.transition('00000000-0000-0000-0000-000000000401', NULL)$$, '22004', NULL, 'NULL to_status');
SELECT throws_ok($$SELECT orders.allowed_transitions(NULL)$$, '22004', NULL, 'allowed_transitions(NULL)');
SELECT throws_ok($$SELECT orders.transition('00000000-0000-0000-0000-000000000401', 'confirmed', NULL, '')$$,
                 '22023', NULL, 'an empty idempotency key');
SELECT throws_ok($$SELECT orders.transition('00000000-0000-0000-0000-0000000004ff', 'confirmed')$$,
                 'OR006', 'order 00000000-0000-0000-0000-0000000004ff does not exist', 'unknown order id');
SELECT throws_ok($$SELECT orders.allowed_transitions('00000000-0000-0000-0000-0000000004ff')$$,
                 'OR006', NULL, 'unknown order id (allowed_transitions)');

-- amounts and enumerations
SELECT throws_ok($$UPDATE orders.orders SET subtotal = -1 WHERE order_number = 'T4-1'$$, '23514', NULL, 'negative subtotal');
SELECT throws_ok($$UPDATE orders.orders SET total_amount = -0.01 WHERE order_number = 'T4-1'$$, '23514', NULL, 'negative total');
SELECT throws_ok($$UPDATE orders.orders SET payment_status = 'paid' WHERE order_number = 'T4-1'$$, '23514', NULL, 'unknown payment status');
SELECT throws_ok($$INSERT INTO orders.order_items (order_id, name, quantity) VALUES ('00000000-0000-0000-0000-000000000401', 'x', 0)$$,
                 '23514', NULL, 'zero quantity');
SELECT throws_ok($$INSERT INTO orders.orders (customer_id) VALUES ('00000000-0000-0000-0000-0000000000ff')$$,
                 '23503', NULL, 'unknown customer');
SELECT throws_ok($$DELETE FROM orders.customers WHERE id = '00000000-0000-0000-0000-00000000c004'$$,
                 '23503', NULL, 'a customer with orders cannot be deleted (ON DELETE RESTRICT)');
SELECT throws_ok($$DELETE FROM orders.lifecycles WHERE name = 'cod'$$,
                 '23503', NULL, 'a lifecycle in use cannot be deleted');

-- lifecycle configuration
SELECT throws_ok($$INSERT INTO orders.lifecycle_transitions (lifecycle, from_status, to_status, stamp_column) VALUES ('cod', 'new', 'delivered', 'no_such_column')$$,
                 'OR008', NULL, 'a stamp column that does not exist');
SELECT throws_ok($$INSERT INTO orders.lifecycle_transitions (lifecycle, from_status, to_status, allowed_roles) VALUES ('cod', 'new', 'delivered', '{no_such_role}')$$,
                 'OR008', NULL, 'a role that does not exist');
SELECT throws_ok($$INSERT INTO orders.lifecycle_states (lifecycle, status, category) VALUES ('cod', 'lost', 'gone')$$,
                 '23514', NULL, 'an unknown category');

INSERT INTO orders.lifecycles (name, initial_status) VALUES ('broken', 'start');
SELECT throws_ok($$INSERT INTO orders.orders (customer_id, lifecycle) VALUES ('00000000-0000-0000-0000-00000000c004', 'broken')$$,
                 'OR008', NULL, 'a lifecycle whose initial status is not a state takes no orders');

-- nothing above changed anything

SELECT set_eq('SELECT * FROM orders.orders', 'SELECT * FROM before', 'orders unchanged by the refusals');
SELECT set_eq('SELECT * FROM orders.order_history', 'SELECT * FROM before_history', 'no history from the refusals');

-- the CHECK constraints of the extension's tables are planned once per
-- backend for every statement (statement_checks.c): each statement
-- below runs after one before planned them, and is checked against the
-- table's constraints of the moment
SELECT is((SELECT count(*) FROM pg_backend_memory_contexts
            WHERE name = 'orders planned checks and generated columns' AND ident = 'expenses'), 0::bigint,
          'no statement of this session wrote expenses yet: its checks are not planned');
UPDATE orders.expenses SET amount = amount WHERE false;
SELECT is((SELECT count(*) FROM pg_backend_memory_contexts
            WHERE name = 'orders planned checks and generated columns' AND ident = 'expenses'), 1::bigint,
          'an UPDATE statement of expenses planned its checks once for the session (the executor hook is in place)');
INSERT INTO orders.orders (id, order_number, customer_id)
VALUES ('00000000-0000-0000-0000-000000000402', 'T4-2', '00000000-0000-0000-0000-00000000c004');
SELECT orders.transition('00000000-0000-0000-0000-000000000402', 'confirmation_pending');
CREATE TEMP TABLE before_checks AS SELECT * FROM orders.orders WHERE order_number = 'T4-2';
SELECT throws_ok($$UPDATE orders.orders SET currency = 'usd' WHERE order_number = 'T4-2'$$, '23514',
                 'new row for relation "orders" violates check constraint "orders_currency_check"',
                 'the planned checks name the constraint that failed');
ALTER TABLE orders.orders ADD CONSTRAINT t4_priority CHECK (priority < 100) NOT VALID;
SELECT throws_ok($$UPDATE orders.orders SET priority = 150 WHERE order_number = 'T4-2'$$, '23514',
                 'new row for relation "orders" violates check constraint "t4_priority"',
                 'a CHECK added to orders holds at the next statement');
ALTER TABLE orders.orders DROP CONSTRAINT t4_priority, ADD CONSTRAINT t4_priority CHECK (priority < 10) NOT VALID;
SELECT throws_ok($$UPDATE orders.orders SET priority = 50 WHERE order_number = 'T4-2'$$, '23514', NULL,
                 'a CHECK replaced by another (as many as before) is the new one at the next statement');
-- a domain given its first constraint: planning had reduced the cast to a
-- relabelling, the next statement applies the constraint
CREATE DOMAIN public.t4_small AS integer;
ALTER TABLE orders.orders DROP CONSTRAINT t4_priority, ADD CONSTRAINT t4_priority CHECK ((priority::public.t4_small) IS NOT NULL) NOT VALID;
UPDATE orders.orders SET priority = 50 WHERE order_number = 'T4-2';
ALTER DOMAIN public.t4_small ADD CONSTRAINT t4_below_ten CHECK (VALUE < 10) NOT VALID;
SELECT throws_ok($$UPDATE orders.orders SET priority = 60 WHERE order_number = 'T4-2'$$, '23514',
                 'value for domain t4_small violates check constraint "t4_below_ten"',
                 'a constraint added to a domain a CHECK casts to holds at the next statement');
UPDATE orders.orders SET priority = 0 WHERE order_number = 'T4-2' AND false;
-- a DBA's SQL function in a CHECK: planned per statement, as PostgreSQL
-- does (its inlining depends on the user and the search_path)
CREATE FUNCTION public.t4_low(p integer) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$SELECT p < 100$$;
ALTER TABLE orders.orders DROP CONSTRAINT t4_priority, ADD CONSTRAINT t4_priority CHECK (public.t4_low(priority)) NOT VALID;
UPDATE orders.orders SET priority = 1 WHERE order_number = 'T4-2';
CREATE OR REPLACE FUNCTION public.t4_low(p integer) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$SELECT p < 3$$;
SELECT throws_ok($$UPDATE orders.orders SET priority = 6 WHERE order_number = 'T4-2'$$, '23514', NULL,
                 'the CHECK''s inlined SQL function replaced: its new body holds at the next statement');
REVOKE EXECUTE ON FUNCTION public.t4_low(integer) FROM PUBLIC;
CREATE ROLE t4_writer BYPASSRLS;
GRANT USAGE ON SCHEMA orders TO t4_writer;
GRANT SELECT, UPDATE ON orders.orders TO t4_writer;
UPDATE orders.orders SET priority = 1 WHERE order_number = 'T4-2';   -- the owner's statement, after the REVOKE
SET LOCAL ROLE t4_writer;
SELECT throws_ok($$UPDATE orders.orders SET priority = 2 WHERE order_number = 'T4-2'$$, '42501',
                 'permission denied for function t4_low',
                 'a writer who may not run the CHECK''s function is refused, though the owner''s statements ran it inlined');
RESET ROLE;
ALTER TABLE orders.orders DROP CONSTRAINT t4_priority;
-- transition()'s kept UPDATE ran above; a CHECK swapped for another since
-- (as many as before) holds for it
ALTER TABLE orders.orders ADD CONSTRAINT t4_not_confirmed CHECK (status <> 'being_prepared') NOT VALID;
UPDATE orders.orders SET priority = priority WHERE order_number = 'T4-2';
ALTER TABLE orders.orders DROP CONSTRAINT t4_not_confirmed, ADD CONSTRAINT t4_not_confirmed CHECK (status <> 'confirmed') NOT VALID;
SELECT throws_ok($$SELECT orders.transition('00000000-0000-0000-0000-000000000402', 'confirmed')$$, '23514',
                 'new row for relation "orders" violates check constraint "t4_not_confirmed"',
                 'transition()''s kept UPDATE is checked against a CHECK swapped after its first run');
ALTER TABLE orders.orders DROP CONSTRAINT t4_not_confirmed;
SELECT is((SELECT status || ' ' || priority || ' ' || currency || ' ' || (SELECT count(*) FROM orders.order_history h WHERE h.order_id = o.id)
             FROM orders.orders o WHERE order_number = 'T4-2'),
          (SELECT status || ' ' || 1 || ' ' || currency || ' ' || (SELECT count(*) FROM orders.order_history h WHERE h.order_id = b.id)
             FROM before_checks b),
          'the refused statements changed nothing: status, currency, history as before, priority as the last accepted UPDATE set it (1)');

SELECT * FROM finish();
ROLLBACK;
