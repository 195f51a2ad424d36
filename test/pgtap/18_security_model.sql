-- The 0.8.0 access model's refusals and bad input (issue 10), each checking
-- its SQLSTATE and that nothing changed: grant_api, edges reserved to staff
-- (allowed_staff), the column rules (OR060), the trust boundary, and what a
-- user may send (NULL, huge or far-future values, claims of the wrong
-- shape).  Requests switch to the API role "authenticated" with JWT claims,
-- as PostgREST does (test/setup.sql recorded it with grant_api).
BEGIN;
SELECT plan(50);

-- fixtures: COD orders of client one (account 1111…); the agent (3333…,
-- staff …e9) is assigned to T18-1, out for delivery; T18-3 is new
INSERT INTO orders.orders (id, order_number, customer_id, assigned_agent_id) VALUES
  ('00000000-0000-0000-0000-0000000018b1', 'T18-1', '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000e9'),
  ('00000000-0000-0000-0000-0000000018b3', 'T18-3', '00000000-0000-0000-0000-0000000000a1', NULL);
SELECT count(orders.transition('00000000-0000-0000-0000-0000000018b1', s))
  FROM unnest(ARRAY['confirmed', 'being_prepared', 'ready_for_pickup', 'out_for_delivery']) s \g /dev/null
CREATE FUNCTION pg_temp.order_state(num text) RETURNS text LANGUAGE sql AS $$
    SELECT o.status || ' ' || o.priority || ' ' || coalesce(o.assigned_agent_id::text, '-') || ' '
           || (SELECT count(*) FROM orders.order_history h WHERE h.order_id = o.id)
      FROM orders.orders o WHERE o.order_number = num $$;
CREATE FUNCTION pg_temp.as_api(sub text) RETURNS void LANGUAGE sql AS $$
    SELECT set_config('role', 'authenticated', true), set_config('request.jwt.claims', json_build_object('sub', sub)::text, true) $$;
CREATE TEMP TABLE before AS SELECT pg_temp.order_state('T18-1') AS t1, pg_temp.order_state('T18-3') AS t3;
GRANT SELECT ON before TO PUBLIC;

-- ------------------------------------------------------------ grant_api --
CREATE ROLE t18_bypass NOLOGIN BYPASSRLS;
CREATE TEMP TABLE grants AS
  SELECT (SELECT count(*) FROM orders.api_roles) AS roles,
         (SELECT string_agg(privilege_type, ',' ORDER BY privilege_type) FROM information_schema.role_table_grants
           WHERE grantee = 'authenticated' AND table_schema = 'orders') AS privileges;
SELECT throws_ok($$SELECT orders.grant_api('t18_nobody', 'authenticated')$$, '42704',
                 'orders.grant_api: role "t18_nobody" does not exist', 'grant_api refuses a role that does not exist');
SELECT throws_ok($$SELECT orders.grant_api('anon', 'postgres')$$, '22023',
                 'orders.grant_api: role "postgres" would bypass row level security', 'and a superuser');
SELECT throws_ok($$SELECT orders.grant_api('t18_bypass', 'authenticated')$$, '22023',
                 'orders.grant_api: role "t18_bypass" would bypass row level security', 'and a BYPASSRLS role');
SELECT throws_ok($$SELECT orders.grant_api(NULL, 'authenticated')$$, '22004', NULL, 'and NULL');
SELECT lives_ok($$SELECT orders.grant_api('anon', 'authenticated'), orders.grant_api('anon', 'authenticated')$$,
                'grant_api again, twice');
SELECT is((SELECT count(*) FROM orders.api_roles) || ' ' ||
          (SELECT string_agg(privilege_type, ',' ORDER BY privilege_type) FROM information_schema.role_table_grants
            WHERE grantee = 'authenticated' AND table_schema = 'orders'),
          (SELECT roles || ' ' || privileges FROM grants),
          'the refusals and the repeated calls changed no recorded role and no grant (idempotent)');

-- ----------------------------------------------- edges reserved to staff --
SELECT pg_temp.as_api('55555555-5555-5555-5555-555555555555');   -- the customer rep: sees T18-1, may edit
SELECT throws_ok($$UPDATE orders.orders SET status = 'delivered' WHERE order_number = 'T18-1'$$, '42501',
                 'order "T18-1": the change from "out_for_delivery" to "delivered" is reserved to admin, manager or assigned_agent',
                 'a rep may not deliver: the edge is the assigned agent''s (allowed_staff)');
SELECT throws_ok($$SELECT orders.transition('00000000-0000-0000-0000-0000000018b1', 'delivered')$$, '42501', NULL,
                 'not through transition() either');
SELECT ok(NOT EXISTS (SELECT FROM orders.allowed_transitions('00000000-0000-0000-0000-0000000018b1') s WHERE s = 'delivered'),
          'and is not offered it');
SELECT pg_temp.as_api('11111111-1111-1111-1111-111111111111');   -- the client
SELECT throws_ok($$SELECT orders.transition('00000000-0000-0000-0000-0000000018b3', 'confirmation_pending')$$, '42501', NULL,
                 'the client may not put its order in the confirmation queue (staff''s edge)');
SELECT pg_temp.as_api('33333333-3333-3333-3333-333333333333');   -- the assigned agent
SELECT is((SELECT status FROM orders.transition('00000000-0000-0000-0000-0000000018b1', 'delivered')), 'delivered',
          'the assigned agent delivers');
RESET ROLE;
SELECT is(pg_temp.order_state('T18-3'), (SELECT t3 FROM before), 'the refused edges changed nothing');

-- ----------------------------------------------------- column rules (OR060) --
SELECT pg_temp.as_api('11111111-1111-1111-1111-111111111111');
SELECT throws_ok($$UPDATE orders.orders SET priority = 9 WHERE order_number = 'T18-3'$$, 'OR060',
                 'column "priority" of orders.orders is reserved to staff', 'a client may not set a staff-only column');
SELECT throws_ok($$INSERT INTO orders.orders (customer_id, delivery_fee) VALUES ('00000000-0000-0000-0000-0000000000a1', 0.01)$$,
                 'OR060', 'column "delivery_fee" of orders.orders is reserved to staff', 'nor give it on a new order');
SELECT throws_ok($$UPDATE orders.orders SET leads_purchased = 1000 WHERE order_number = 'T18-3'$$, 'OR060',
                 'column "leads_purchased" of orders.orders is reserved to staff',
                 'nor raise the leads an order bought (0.27.0: staff price them, as the total)');
SELECT throws_ok($$INSERT INTO orders.orders (customer_id, lifecycle, leads_purchased) VALUES ('00000000-0000-0000-0000-0000000000a1', 'campaign', 5)$$,
                 'OR060', 'column "leads_purchased" of orders.orders is reserved to staff', '... nor give them on a new campaign');
SELECT lives_ok($$UPDATE orders.orders SET customer_notes = 'ring twice' WHERE order_number = 'T18-3'$$,
                'its own columns it may set');
SELECT pg_temp.as_api('33333333-3333-3333-3333-333333333333');
SELECT throws_ok($$UPDATE orders.orders SET assigned_agent_id = NULL WHERE order_number = 'T18-1'$$, 'OR060',
                 'column "assigned_agent_id" of orders.orders is reserved to staff with permission orders.assign',
                 'an agent (no orders.assign) may not unassign itself');
SELECT throws_ok($$UPDATE orders.staff SET role = 'admin' WHERE id = '00000000-0000-0000-0000-0000000000e9'$$, 'OR060',
                 'column "role" of orders.staff is reserved to admins', 'nor promote itself');
SELECT lives_ok($$UPDATE orders.staff SET availability_status = 'busy' WHERE id = '00000000-0000-0000-0000-0000000000e9'$$,
                'its availability it may set');
RESET ROLE;
SELECT is(pg_temp.order_state('T18-3') || ' / ' || pg_temp.order_state('T18-1') || ' / '
          || (SELECT role FROM orders.staff WHERE id = '00000000-0000-0000-0000-0000000000e9'),
          (SELECT t3 FROM before) || ' / delivered 0 00000000-0000-0000-0000-0000000000e9 5 / delivery_agent',
          'the refused column writes changed nothing');

-- -------------------------------------------- trust boundary, bad input --
CREATE ROLE t18_plain NOLOGIN;
SET LOCAL ROLE t18_plain;
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-1111-1111-111111111111"}', true);
SELECT is(orders.current_actor() || ' ' || orders.current_customer_ids()::text, 't18_plain {}',
          'a role that is no API role stays itself, whatever claims it sets');
RESET ROLE;
SELECT pg_temp.as_api(repeat('x', 255));
SELECT is(length(orders.current_actor()) || ' ' || orders.current_customer_ids()::text || ' '
          || coalesce(orders.current_staff_role(), '-') || ' ' || orders.has_permission('orders', 'view'),
          '255 {} - false', 'a 255-character sub is nobody: no customer, no staff, no permission');
SELECT pg_temp.as_api(repeat('x', 20000));
SELECT throws_ok($$SELECT orders.has_permission('orders', 'view')$$, '22023',
                 'the subject in setting "request.jwt.claims" is longer than 255 bytes (20000)',
                 '(0.40.0) a 20,000-character sub is refused (22023)');
SELECT pg_temp.as_api('11111111-1111-1111-1111-111111111111');
SELECT is(orders.has_permission(NULL, NULL), false, 'has_permission(NULL, NULL) is false');
SELECT throws_ok($$SELECT orders.create_share_token('00000000-0000-0000-0000-0000000018b3', interval '100 years')$$,
                 '22023', NULL, 'a share link for 100 years is refused');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM orders.order_share_tokens WHERE order_id = '00000000-0000-0000-0000-0000000018b3'), 0,
          'and no link was made');
SELECT throws_ok($$SELECT orders.shared_order(NULL)$$, 'OR080', 'this share link is not valid', 'shared_order(NULL): no link');

-- ---------------------------------- the agent's customers (0.11.0) --
-- agent_serves_customer answers only about the caller: the agent (3333…)
-- serves client one (T18-1 and API-3 are assigned to it); nobody else is an agent
SELECT pg_temp.as_api('33333333-3333-3333-3333-333333333333');
SELECT is(orders.agent_serves_customer('00000000-0000-0000-0000-0000000000a1') || ' '
          || orders.agent_serves_customer('00000000-0000-0000-0000-0000000000a2') || ' '
          || coalesce(orders.agent_serves_customer(NULL)::text, 'null'),
          'true false false', 'the agent serves client one (an assigned order), not client two; NULL: false');
SELECT is((SELECT string_agg(id::text, ',') FROM orders.customers), '00000000-0000-0000-0000-0000000000a1',
          'the agent reads the customers it serves, and only those');
SELECT pg_temp.as_api('44444444-4444-4444-4444-444444444444');
SELECT is(orders.agent_serves_customer('00000000-0000-0000-0000-0000000000a1'), false, 'an admin is no agent: false');
SELECT pg_temp.as_api('11111111-1111-1111-1111-111111111111');
SELECT is(orders.agent_serves_customer('00000000-0000-0000-0000-0000000000a1'), false, 'nor is the customer itself');
-- ... and the caller: one expression asked for the agent, then for the admin
RESET ROLE;
CREATE FUNCTION pg_temp.serves_as(subs text[]) RETURNS text LANGUAGE plpgsql AS $$
DECLARE answers text := '';
BEGIN
    FOR i IN 1..array_length(subs, 1) LOOP
        PERFORM pg_temp.as_api(subs[i]);
        answers := answers || orders.agent_serves_customer('00000000-0000-0000-0000-0000000000a1') || ' ';
    END LOOP;
    PERFORM set_config('role', 'postgres', true);
    RETURN answers;
END $$;
SELECT is(pg_temp.serves_as('{33333333-3333-3333-3333-333333333333,44444444-4444-4444-4444-444444444444}'), 'true false ',
          'one expression asked for the agent, then for the admin: each gets its own answer');
-- ... and what a rolled-back subtransaction did does not stand: client two's
-- order assigned to the agent in a block that fails, asked inside and after
CREATE FUNCTION pg_temp.serves_after_rollback() RETURNS text LANGUAGE plpgsql AS $$
DECLARE answers text := '';
BEGIN
    PERFORM pg_temp.as_api('33333333-3333-3333-3333-333333333333');
    FOR round IN 1..2 LOOP
        BEGIN
            IF round = 1 THEN
                PERFORM set_config('role', 'postgres', true);
                UPDATE orders.orders SET assigned_agent_id = '00000000-0000-0000-0000-0000000000e9'
                 WHERE id = '00000000-0000-0000-0000-0000000000b2';
                PERFORM pg_temp.as_api('33333333-3333-3333-3333-333333333333');
            END IF;
            answers := answers || orders.agent_serves_customer('00000000-0000-0000-0000-0000000000a2') || ' ';
            IF round = 1 THEN
                RAISE EXCEPTION 'undo';
            END IF;
        EXCEPTION WHEN raise_exception THEN
            NULL;
        END;
    END LOOP;
    PERFORM set_config('role', 'postgres', true);
    RETURN answers;
END $$;
SELECT is(pg_temp.serves_after_rollback(), 'true false ',
          'an assignment rolled back with its subtransaction no longer counts');
RESET ROLE;
-- (0.14.0) the customers of the agent's open orders are read first; a
-- customer only of a closed order makes the query read all the agent's
-- orders, once: exactly one index scan of orders_assigned_agent_idx more
-- than a query that asks only about customers of open orders (scans counted
-- in this transaction)
CREATE FUNCTION pg_temp.agent_scans() RETURNS bigint LANGUAGE sql AS $$
    SELECT pg_stat_get_xact_numscans('orders.orders_assigned_agent_idx'::regclass)
$$;
SAVEPOINT closed_order;
UPDATE orders.orders SET assigned_agent_id = '00000000-0000-0000-0000-0000000000e9'
 WHERE id = '00000000-0000-0000-0000-0000000000b2';
UPDATE orders.orders SET status = 'cancelled' WHERE id = '00000000-0000-0000-0000-0000000000b2';
SELECT pg_temp.as_api('33333333-3333-3333-3333-333333333333');
SELECT pg_temp.agent_scans() AS scans0 \gset
SELECT is((SELECT string_agg(orders.agent_serves_customer(c)::text, ' ')
             FROM unnest('{00000000-0000-0000-0000-0000000000a1,00000000-0000-0000-0000-0000000000a1}'::uuid[]) c),
          'true true', 'the agent serves client one, of an open order, in every row');
SELECT pg_temp.agent_scans() AS scans1 \gset
SELECT is((SELECT string_agg(orders.agent_serves_customer(c)::text, ' ')
             FROM unnest('{00000000-0000-0000-0000-0000000000a1,00000000-0000-0000-0000-0000000000a2,00000000-0000-0000-0000-0000000000a2}'::uuid[]) c)
          || ' / ' || ((pg_temp.agent_scans() - :scans1) - (:scans1 - :scans0))::text,
          'true true true / 1',
          'and client two, only of a cancelled order assigned to it: served, after one more scan (all its orders, once)');
SELECT is((SELECT string_agg(id::text, ',' ORDER BY id) FROM orders.customers),
          '00000000-0000-0000-0000-0000000000a1,00000000-0000-0000-0000-0000000000a2',
          'the agent reads both customers through the policy');
RESET ROLE;
ROLLBACK TO SAVEPOINT closed_order;
-- The open orders are read one run of open status names at a
-- time: the four lifecycles' names in C order are active, analyzing,
-- being_prepared | cancelled, completed | configuring, confirmation_pending,
-- confirmed | delivered | draft, in_progress, new | no_show |
-- out_for_delivery … ready_for_pickup | returned | reviewing — five runs of
-- open names between closed ones, so five ranges of the index (descents),
-- not one per open name (15).  The agent (7777…) has one order in each of
-- active, cancelled, completed, confirmed, delivered, returned, reviewing,
-- and one in "amber", a status no lifecycle has, inside the first range: not
-- taken for an open one (asking about its customer reads all the agent's
-- orders).  Every answer equals the rule written in SQL.
SAVEPOINT skip_scan;
SET LOCAL session_replication_role = replica;   -- orders in any state, as fixtures
INSERT INTO orders.staff (id, account_id, full_name, role) VALUES
  ('00000000-0000-0000-0000-0000000018e7', '77777777-7777-7777-7777-777777777777', 'Skip Agent', 'delivery_agent');
INSERT INTO orders.customers (id, full_name)
SELECT ('00000000-0000-0000-0000-0000000018c' || i)::uuid, 'Skip ' || i FROM generate_series(1, 9) i;
INSERT INTO orders.orders (id, order_number, customer_id, assigned_agent_id, lifecycle, status)
SELECT ('00000000-0000-0000-0000-0000000018d' || i)::uuid, 'T18-S' || i, ('00000000-0000-0000-0000-0000000018c' || i)::uuid,
       '00000000-0000-0000-0000-0000000018e7', lc, st
  FROM (VALUES (1, 'campaign', 'active'), (2, 'cod', 'cancelled'), (3, 'booking', 'completed'),
               (4, 'cod', 'confirmed'), (5, 'cod', 'delivered'), (6, 'cod', 'returned'),
               (7, 'review', 'reviewing'), (9, 'campaign', 'amber')) f (i, lc, st);
SET LOCAL session_replication_role = origin;
SELECT pg_temp.as_api('77777777-7777-7777-7777-777777777777');
SELECT pg_temp.agent_scans() AS scans0 \gset
SELECT is((SELECT string_agg(orders.agent_serves_customer(('00000000-0000-0000-0000-0000000018c' || i)::uuid)::text, ' ' ORDER BY i)
             FROM unnest('{1,4,7}'::int[]) i) || ' / ' || (pg_temp.agent_scans() - :scans0)::text,
          'true true true / 5',
          'the customers of the open orders (active, confirmed, reviewing) are served, read in 5 ranges (runs of open names)');
SELECT pg_temp.agent_scans() AS scans0 \gset
SELECT is(orders.agent_serves_customer('00000000-0000-0000-0000-0000000018c9')::text || ' / ' || (pg_temp.agent_scans() - :scans0)::text,
          'true / 6',
          'the customer of the order in "amber" (no lifecycle''s status) is served after the 5 ranges and the full read');
RESET ROLE;
CREATE TEMP TABLE skip_truth AS
  SELECT i, EXISTS (SELECT FROM orders.orders o
                     WHERE o.customer_id = ('00000000-0000-0000-0000-0000000018c' || i)::uuid
                       AND o.assigned_agent_id = '00000000-0000-0000-0000-0000000018e7') AS served
    FROM generate_series(1, 9) i;
GRANT SELECT ON skip_truth TO PUBLIC;
SELECT pg_temp.as_api('77777777-7777-7777-7777-777777777777');
SELECT is((SELECT string_agg(orders.agent_serves_customer(('00000000-0000-0000-0000-0000000018c' || i)::uuid)::text, ' ' ORDER BY i)
             FROM generate_series(1, 9) i),
          (SELECT string_agg(served::text, ' ' ORDER BY i) FROM skip_truth),
          'every answer, open, closed or unknown (after the full read) or none (customer 8), equals the rule in SQL');
RESET ROLE;
-- the runs are kept per backend and made again when the lifecycles change:
-- a lifecycle in which "amber" is open puts it into the first run, and the
-- customer of the order in "amber" is then served from the 5 ranges
-- without the full read
INSERT INTO orders.lifecycles (name, initial_status) VALUES ('pgtap_amber', 'amber');
INSERT INTO orders.lifecycle_states (lifecycle, status, category) VALUES ('pgtap_amber', 'amber', 'open');
SELECT pg_temp.as_api('77777777-7777-7777-7777-777777777777');
SELECT pg_temp.agent_scans() AS scans0 \gset
SELECT is(orders.agent_serves_customer('00000000-0000-0000-0000-0000000018c9')::text || ' / ' || (pg_temp.agent_scans() - :scans0)::text,
          'true / 5',
          'once a lifecycle has "amber" open, its order''s customer is served from the 5 ranges (the runs made again)');
RESET ROLE;
ROLLBACK TO SAVEPOINT skip_scan;
-- an installation altered by hand: the agent's index partial (55000) or
-- gone (42704), each refused with the HINT, nothing changed (it only reads)
CREATE FUNCTION pg_temp.agent_err() RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM orders.agent_serves_customer('00000000-0000-0000-0000-0000000000a1');
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END $$;
RESET ROLE;
SAVEPOINT index_by_hand;
DROP INDEX orders.orders_assigned_agent_idx;
CREATE INDEX orders_assigned_agent_idx ON orders.orders (assigned_agent_id, status) INCLUDE (customer_id)
    WHERE status <> 'delivered';
SELECT pg_temp.as_api('33333333-3333-3333-3333-333333333333');
SELECT pg_temp.agent_err() AS partial_index \gset
RESET ROLE;
DROP INDEX orders.orders_assigned_agent_idx;
CREATE INDEX orders_assigned_agent_idx ON orders.orders (assigned_agent_id) INCLUDE (customer_id, status);
SELECT pg_temp.as_api('33333333-3333-3333-3333-333333333333');
SELECT pg_temp.agent_err() AS no_status_key \gset
RESET ROLE;
DROP INDEX orders.orders_assigned_agent_idx;
SELECT pg_temp.as_api('33333333-3333-3333-3333-333333333333');
SELECT is(:'partial_index' || ' ' || :'no_status_key' || ' ' || pg_temp.agent_err(), '55000 55000 42704',
          'the agent''s index partial: 55000; without status as its second key: 55000; dropped: 42704');
RESET ROLE;
ROLLBACK TO SAVEPOINT index_by_hand;
-- the answer follows the data within a transaction: a PL/pgSQL function keeps
-- the state of its expressions across statements, and an unassignment
-- between two calls is seen by the second
RESET ROLE;
CREATE FUNCTION pg_temp.serves_before_after() RETURNS text LANGUAGE plpgsql AS $$
DECLARE answers text := '';
BEGIN
    FOR round IN 1..2 LOOP      -- one expression, asked twice
        PERFORM pg_temp.as_api('33333333-3333-3333-3333-333333333333');
        answers := answers || orders.agent_serves_customer('00000000-0000-0000-0000-0000000000a1') || ' ';
        PERFORM set_config('role', 'postgres', true);
        UPDATE orders.orders SET assigned_agent_id = NULL
         WHERE assigned_agent_id = '00000000-0000-0000-0000-0000000000e9' AND customer_id = '00000000-0000-0000-0000-0000000000a1';
    END LOOP;
    RETURN answers;
END $$;
SELECT is(pg_temp.serves_before_after(), 'true false ', 'an agent unassigned in the transaction no longer serves the customer');
RESET ROLE;

-- (0.41.0 library) the lead-lock cap of an API request is a superuser's
-- setting, orders.lead_locks_per_request (default 200): at 2, a client
-- moving 3 of its orders to its other customer row is refused (OR121,
-- naming the setting's value), 2 move; the API role may not raise it
SET LOCAL orders.lead_locks_per_request = 2;
INSERT INTO orders.customers (id, account_id, full_name)
VALUES ('00000000-0000-0000-0000-0000000018c2', '11111111-1111-1111-1111-111111111111', 'Client One, T18 address');
INSERT INTO orders.orders (customer_id, notes)
SELECT '00000000-0000-0000-0000-0000000000a1', 'T18 cap ' || g FROM generate_series(1, 3) g;
SELECT pg_temp.as_api('11111111-1111-1111-1111-111111111111');
SELECT throws_ok($$UPDATE orders.orders SET customer_id = '00000000-0000-0000-0000-0000000018c2' WHERE notes LIKE 'T18 cap %'$$,
                 'OR121', 'one request moves or judges the leads of at most 2 orders',
                 'orders.lead_locks_per_request = 2: a client moving 3 orders in one request is refused');
SELECT lives_ok($$UPDATE orders.orders SET customer_id = '00000000-0000-0000-0000-0000000018c2' WHERE notes IN ('T18 cap 1', 'T18 cap 2')$$,
                '... 2 move');
SELECT is((SELECT string_agg(notes, ',' ORDER BY notes) FROM orders.orders WHERE customer_id = '00000000-0000-0000-0000-0000000018c2'),
          'T18 cap 1,T18 cap 2', '... exactly those 2');
SELECT throws_ok($$SET LOCAL orders.lead_locks_per_request = 100000$$, '42501', NULL,
                 '... and the API role may not raise the cap');
RESET ROLE;

-- (0.41.0 library) a role name is never an account: a login named after
-- the admin's account id (4444…) was served as that admin — every order,
-- has_permission true — without any claims; and may_share, PUBLIC, told
-- any login whether an order id exists
CREATE ROLE "44444444-4444-4444-4444-444444444444" NOLOGIN;
GRANT SELECT ON orders.orders, orders.customers TO "44444444-4444-4444-4444-444444444444";
SET LOCAL ROLE "44444444-4444-4444-4444-444444444444";
SELECT is(format('%s %s %s %s %s %s', orders.current_actor(), orders.actor_account() IS NULL,
                 coalesce(orders.current_staff_role(), '-'), orders.has_permission('orders', 'delete'),
                 (SELECT count(*) FROM orders.orders), (SELECT count(*) FROM orders.customers)),
          '44444444-4444-4444-4444-444444444444 t - f 0 0',
          'a login named after the admin''s account id is itself: no account, no staff role, no permission, no row');
SELECT throws_ok($$SELECT orders.may_share('00000000-0000-0000-0000-0000000018b1')$$, '42501', NULL,
                 '... and may not ask may_share whether an order exists (no longer PUBLIC)');
SELECT throws_ok($$SELECT orders.shares_order('00000000-0000-0000-0000-0000000018b1')$$, '42501', NULL, '... nor shares_order');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
