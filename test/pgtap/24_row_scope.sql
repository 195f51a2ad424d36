-- The orders and customers policies as one C call per row (0.14.0:
-- orders.sees_order, orders.sees_customer, orders.staff_sees_order;
-- src/row_scope.c).  (1) For every persona and every row they answer as the
-- 0.13.0 policies written out in SQL did (the expressions below, with the
-- same identity helpers; NULL counts as false, as in a policy).  (2) An
-- answer kept by one expression is never given to another caller: a
-- PL/pgSQL function keeps its expressions for the transaction, and the
-- claims change between its calls; a rolled-back subtransaction's change
-- does not stand.  Run as the superuser, whose JWT claims are believed (the
-- functions answer for the claims' sub) and whom no policy filters.
BEGIN;
SELECT plan(15);

-- personas beyond test/setup.sql's: permissions that narrow or widen the
-- role's defaults, the other roles, an inactive admin who is also a
-- customer, a customer with two customer rows
INSERT INTO orders.staff (id, account_id, full_name, role, permissions, is_active) VALUES
  ('00000000-0000-0000-0000-0000000024e1', '24000000-0000-0000-0000-000000000001', 'Blind Admin', 'admin', '{"orders": {"view": false}}', true),
  ('00000000-0000-0000-0000-0000000024e2', '24000000-0000-0000-0000-000000000002', 'Agent No Customers', 'delivery_agent', '{"customers": {"view": false}}', true),
  ('00000000-0000-0000-0000-0000000024e3', '24000000-0000-0000-0000-000000000003', 'Manager', 'manager', '{}', true),
  ('00000000-0000-0000-0000-0000000024e4', '24000000-0000-0000-0000-000000000004', 'Accountant', 'accountant', '{}', true),
  ('00000000-0000-0000-0000-0000000024e5', '24000000-0000-0000-0000-000000000005', 'Blind Rep', 'customer_rep', '{"orders": {"view": false}}', true),
  ('00000000-0000-0000-0000-0000000024e6', '24000000-0000-0000-0000-000000000006', 'Gone Admin', 'admin', '{}', false),
  ('00000000-0000-0000-0000-0000000024e7', '24000000-0000-0000-0000-000000000007', 'Rep', 'customer_rep', '{}', true),
  ('00000000-0000-0000-0000-0000000024e8', '24000000-0000-0000-0000-000000000008', 'Agent', 'delivery_agent', '{}', true);
INSERT INTO orders.customers (id, account_id, full_name) VALUES
  ('00000000-0000-0000-0000-0000000024a1', '24000000-0000-0000-0000-000000000006', 'Gone Admin as a customer'),
  ('00000000-0000-0000-0000-0000000024a2', '24000000-0000-0000-0000-0000000000c2', 'Two Rows, first'),
  ('00000000-0000-0000-0000-0000000024a3', '24000000-0000-0000-0000-0000000000c2', 'Two Rows, second'),
  ('00000000-0000-0000-0000-0000000024a4', NULL, 'No Account');
-- orders of every kind of assignment: the rep's, another rep's, the agents',
-- unassigned open and unassigned closed, of each customer
INSERT INTO orders.orders (id, order_number, customer_id, assigned_rep_id, assigned_agent_id)
SELECT ('00000000-0000-0000-0024-' || lpad(n::text, 12, '0'))::uuid, 'T24-' || n,
       (ARRAY['00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000a2',
              '00000000-0000-0000-0000-0000000024a1', '00000000-0000-0000-0000-0000000024a2',
              '00000000-0000-0000-0000-0000000024a3', '00000000-0000-0000-0000-0000000024a4'])[1 + n % 6]::uuid,
       (ARRAY[NULL, '00000000-0000-0000-0000-0000000024e7', '00000000-0000-0000-0000-0000000000e7',
              '00000000-0000-0000-0000-0000000024e5'])[1 + n % 4]::uuid,
       (ARRAY[NULL, '00000000-0000-0000-0000-0000000024e8', '00000000-0000-0000-0000-0000000000e9',
              '00000000-0000-0000-0000-0000000024e2', NULL])[1 + n % 5]::uuid
  FROM generate_series(1, 60) n;
UPDATE orders.orders SET status = 'cancelled' WHERE order_number LIKE 'T24-%' AND substr(order_number, 5)::int % 3 = 0;

CREATE TEMP TABLE personas (sub text);
INSERT INTO personas VALUES
  ('11111111-1111-1111-1111-111111111111'), ('22222222-2222-2222-2222-222222222222'),
  ('33333333-3333-3333-3333-333333333333'), ('44444444-4444-4444-4444-444444444444'),
  ('55555555-5555-5555-5555-555555555555'), ('66666666-6666-6666-6666-666666666666'),
  ('24000000-0000-0000-0000-000000000001'), ('24000000-0000-0000-0000-000000000002'),
  ('24000000-0000-0000-0000-000000000003'), ('24000000-0000-0000-0000-000000000004'),
  ('24000000-0000-0000-0000-000000000005'), ('24000000-0000-0000-0000-000000000006'),
  ('24000000-0000-0000-0000-000000000007'), ('24000000-0000-0000-0000-000000000008'),
  ('24000000-0000-0000-0000-0000000000c2'), ('99999999-9999-9999-9999-999999999999'),
  ('not-a-uuid'), ('');

-- (1) every persona, every row: the C rule and the 0.13.0 expression agree
CREATE FUNCTION pg_temp.disagreements() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    p record;
    bad text := '';
    n bigint;
    m bigint;
BEGIN
    FOR p IN SELECT sub FROM pg_temp.personas LOOP
        PERFORM set_config('request.jwt.claims', json_build_object('sub', p.sub)::text, true);
        SELECT count(*) FILTER (WHERE orders.sees_order(o.customer_id, o.assigned_agent_id, o.assigned_rep_id, o.lifecycle, o.status)
                                      IS DISTINCT FROM coalesce(
               o.customer_id = ANY (orders.current_customer_ids())
               OR (orders.has_permission('orders', 'view')
                   AND (orders.current_staff_role() IN ('admin', 'manager', 'accountant')
                        OR (o.assigned_agent_id = orders.current_staff_id()
                            AND orders.current_staff_role() = 'delivery_agent')
                        OR (orders.current_staff_role() = 'customer_rep'
                            AND (o.assigned_rep_id = orders.current_staff_id()
                                 OR (o.assigned_rep_id IS NULL
                                     AND orders.status_category(o.lifecycle, o.status) = 'open'))))), false)),
               count(*) FILTER (WHERE orders.staff_sees_order(o.assigned_rep_id, o.assigned_agent_id, o.lifecycle, o.status)
                                      IS DISTINCT FROM coalesce(CASE orders.current_staff_role()
                 WHEN 'admin' THEN true WHEN 'manager' THEN true WHEN 'accountant' THEN true
                 WHEN 'delivery_agent' THEN o.assigned_agent_id IS NOT DISTINCT FROM orders.current_staff_id()
                 WHEN 'customer_rep' THEN o.assigned_rep_id IS NOT DISTINCT FROM orders.current_staff_id()
                      OR (o.assigned_rep_id IS NULL AND orders.status_category(o.lifecycle, o.status) = 'open')
                 ELSE false END, false))
          INTO n, m FROM orders.orders o;
        IF n > 0 OR m > 0 THEN
            bad := bad || format('%s: %s orders, %s staff scope; ', p.sub, n, m);
        END IF;
        SELECT count(*) FILTER (WHERE orders.sees_customer(c.id, c.account_id) IS DISTINCT FROM coalesce(
               c.account_id = orders.actor_account()
               OR (orders.has_permission('customers', 'view')
                   AND (orders.current_staff_role() <> 'delivery_agent' OR orders.agent_serves_customer(c.id))), false))
          INTO n FROM orders.customers c;
        IF n > 0 THEN
            bad := bad || format('%s: %s customers; ', p.sub, n);
        END IF;
    END LOOP;
    RETURN bad;
END $$;
SELECT is(pg_temp.disagreements(), '',
          'for 18 personas and every order and customer, sees_order, staff_sees_order and sees_customer answer as the 0.13.0 policies');
CREATE FUNCTION pg_temp.reaches() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    p record;
    seen text[] := '{}';
    o bigint;
    c bigint;
BEGIN
    FOR p IN SELECT sub FROM pg_temp.personas LOOP
        PERFORM set_config('request.jwt.claims', json_build_object('sub', p.sub)::text, true);
        SELECT count(*) INTO o FROM orders.orders x
         WHERE orders.sees_order(x.customer_id, x.assigned_agent_id, x.assigned_rep_id, x.lifecycle, x.status);
        SELECT count(*) INTO c FROM orders.customers x WHERE orders.sees_customer(x.id, x.account_id);
        seen := array_append(seen, o || '/' || c);
    END LOOP;
    RETURN (SELECT count(DISTINCT v) FROM unnest(seen) v);
END $$;
SELECT cmp_ok(pg_temp.reaches(), '>', 6::bigint,
              '... and the personas reach different sets of rows (the comparison is not of empty answers)');

-- (2) one expression, asked for one caller after another in a PL/pgSQL
-- loop (its state lives for the transaction; set_config starts no command)
CREATE FUNCTION pg_temp.answers(subs text[]) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    answers text := '';
BEGIN
    FOR i IN 1..array_length(subs, 1) LOOP
        PERFORM set_config('request.jwt.claims', json_build_object('sub', subs[i])::text, true);
        answers := answers || orders.staff_sees_order(NULL, NULL, 'cod', 'new')::text::char(1)
                           || orders.sees_order('00000000-0000-0000-0000-0000000000a3', NULL, NULL, 'cod', 'new')::text::char(1)
                           || orders.sees_customer('00000000-0000-0000-0000-0000000000a3', '66666666-6666-6666-6666-666666666666')::text::char(1)
                           || ' ';
    END LOOP;
    RETURN answers;
END $$;
-- admin: all; the agent: nothing of client three's (it serves no order of
-- hers); client three: her own; the admin again
SELECT is(pg_temp.answers('{44444444-4444-4444-4444-444444444444,33333333-3333-3333-3333-333333333333,66666666-6666-6666-6666-666666666666,44444444-4444-4444-4444-444444444444}'),
          'ttt fff ftt ttt ', 'one expression asked for the admin, the agent, client three, the admin: each gets its own answer');

-- a change rolled back with its subtransaction does not stand: the admin
-- deactivated inside a block that fails, asked inside and after it
CREATE FUNCTION pg_temp.after_rollback() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    answers text := '';
BEGIN
    PERFORM set_config('request.jwt.claims', '{"sub": "44444444-4444-4444-4444-444444444444"}', true);
    FOR round IN 1..2 LOOP
        BEGIN
            IF round = 1 THEN
                UPDATE orders.staff SET is_active = false WHERE account_id = '44444444-4444-4444-4444-444444444444';
            END IF;
            answers := answers || orders.staff_sees_order(NULL, NULL, 'cod', 'new')::text::char(1)
                               || orders.sees_order('00000000-0000-0000-0000-0000000000a2', NULL, NULL, 'cod', 'new')::text::char(1) || ' ';
            IF round = 1 THEN
                RAISE EXCEPTION 'undo';
            END IF;
        EXCEPTION WHEN raise_exception THEN
            NULL;
        END;
    END LOOP;
    RETURN answers;
END $$;
SELECT is(pg_temp.after_rollback(), 'ff tt ',
          'an admin deactivated in a subtransaction reaches nothing there, and everything again once it rolled back');
SELECT is((SELECT is_active FROM orders.staff WHERE account_id = '44444444-4444-4444-4444-444444444444'), true,
          '... and stays active');

-- bad input: NULLs, an unknown or 100,000-character lifecycle or status,
-- answered false for a rep (no error, nothing read but the caller's scope);
-- a forged claim (an object as "sub") refused as by every identity helper
SELECT set_config('request.jwt.claims', '{"sub": "24000000-0000-0000-0000-000000000007"}', true);
SELECT is(orders.sees_order(NULL, NULL, NULL, NULL, NULL)::text || orders.sees_order(NULL, NULL, NULL, 'cod', NULL)::text
          || orders.sees_order(NULL, NULL, NULL, repeat('x', 100000), 'new')::text
          || orders.sees_order(NULL, NULL, NULL, 'cod', repeat('x', 100000))::text
          || orders.sees_order(NULL, NULL, NULL, 'cod', 'new')::text
          || orders.sees_customer(NULL, NULL)::text || orders.staff_sees_order(NULL, NULL, NULL, NULL)::text,
          'falsefalsefalsefalsetruetruefalse',
          'a rep: NULL, unknown and 100,000-character states reach nothing, an unassigned new cod order is reached, any customer row (customers.view) too');
SELECT set_config('request.jwt.claims', '{"sub": {"id": "44444444-4444-4444-4444-444444444444"}}', true);
SELECT throws_ok($$SELECT orders.sees_order(NULL, NULL, NULL, 'cod', 'new')$$, '22023', NULL,
                 'a claims document whose "sub" is an object is refused (22023), not read as anybody');

-- The identity's settings are defined by the library (since 2026-12-03, after 0.15.0): a change
-- calls its assign hook, and a policy asking "who is acting?" for every row
-- compares a counter of those changes instead of reading the settings.
-- Each answer is the sub set just before it — also when the setting comes
-- back by itself within one command: at the end of a function with its own
-- SET (the same command then goes on with the outer claims) and after a
-- rolled-back block.
CREATE FUNCTION pg_temp.staff_as_manager() RETURNS uuid LANGUAGE sql
    SET request.jwt.claims = '{"sub": "24000000-0000-0000-0000-000000000003"}'
    AS $$ SELECT orders.current_staff_id() $$;
CREATE FUNCTION pg_temp.actors_as_settings_change() RETURNS text LANGUAGE plpgsql AS $$
DECLARE answers text;
BEGIN
    PERFORM set_config('request.jwt.claims', '{"sub": "first"}', true);
    answers := orders.current_actor();
    PERFORM set_config('request.jwt.claims', '{"sub": "second"}', true);
    answers := answers || ' ' || orders.current_actor();
    PERFORM set_config('request.jwt.claims', '', true);
    answers := answers || ' ' || orders.current_actor()
               || ' ' || quote_nullable(current_setting('jwt.claims.sub', true));
    PERFORM set_config('jwt.claims.sub', 'third', true);
    answers := answers || ' ' || orders.current_actor();
    PERFORM set_config('request.jwt.claims', '{"sub": "fourth"}', true);
    RETURN answers || ' ' || orders.current_actor();
END $$;
SELECT is(pg_temp.actors_as_settings_change(), 'first second ' || current_user || ' '''' third fourth',
          'the actor follows the settings, set and emptied (defined by the library: empty, not NULL, when unset)');
SELECT set_config('request.jwt.claims', '{"sub": "24000000-0000-0000-0000-000000000007"}', true);
SELECT is(orders.current_staff_id() || ' ' || pg_temp.staff_as_manager() || ' ' || orders.current_staff_id(),
          '00000000-0000-0000-0000-0000000024e7 00000000-0000-0000-0000-0000000024e3 00000000-0000-0000-0000-0000000024e7',
          'one command: the rep, the manager inside a function with its own claims, the rep again once the function restored them');
SELECT is((SELECT string_agg(s, ' ' ORDER BY n) FROM (
             SELECT n, set_config('request.jwt.claims',
                                  format('{"sub": "24000000-0000-0000-0000-00000000000%s"}', CASE WHEN n % 2 = 1 THEN 3 ELSE 7 END),
                                  true) AS c,
                    orders.current_staff_id()::text AS s
               FROM generate_series(1, 4) n) x),
          '00000000-0000-0000-0000-0000000024e3 00000000-0000-0000-0000-0000000024e7 00000000-0000-0000-0000-0000000024e3 00000000-0000-0000-0000-0000000024e7',
          'one command whose rows set other claims before asking: each row answered for its own claims');
CREATE FUNCTION pg_temp.staff_around_rollback() RETURNS text LANGUAGE plpgsql AS $$
DECLARE answers text;
BEGIN
    answers := orders.current_staff_id()::text;
    BEGIN
        PERFORM set_config('request.jwt.claims', '{"sub": "24000000-0000-0000-0000-000000000003"}', true);
        answers := answers || ' ' || orders.current_staff_id();
        PERFORM 1 / 0;
    EXCEPTION WHEN division_by_zero THEN NULL;
    END;
    RETURN answers || ' ' || orders.current_staff_id() || ' '
           || (SELECT count(*) FROM orders.orders o WHERE order_number LIKE 'T24-%'
                  AND orders.sees_order(o.customer_id, o.assigned_agent_id, o.assigned_rep_id, o.lifecycle, o.status));
END $$;
SELECT is(pg_temp.staff_around_rollback(),
          '00000000-0000-0000-0000-0000000024e7 00000000-0000-0000-0000-0000000024e3 00000000-0000-0000-0000-0000000024e7 '
          || (SELECT count(*) FROM orders.orders o WHERE order_number LIKE 'T24-%'
                 AND (o.assigned_rep_id = '00000000-0000-0000-0000-0000000024e7'
                      OR (o.assigned_rep_id IS NULL AND o.status NOT IN ('delivered', 'cancelled', 'returned', 'completed')))),
          'a block that set other claims and was rolled back: the rep again, and the rep''s orders');

-- bad input to the settings the library now defines: a NULL value (resets
-- it: the actor is the role), a 100,000-character claims document (read as
-- any other), a document that is no JSON (22P02, as before).  (jwt.claims.sub
-- is still 'third' from the test above: it answers while the claims are unset.)
SELECT set_config('request.jwt.claims', NULL, true);
SELECT is(orders.current_actor(), 'third', 'claims set to NULL: unset, jwt.claims.sub answers');
SELECT set_config('jwt.claims.sub', NULL, true);
SELECT is(orders.current_actor() || ' ' || coalesce(orders.current_staff_id()::text, 'none'), current_user || ' none',
          'both set to NULL: unset, the actor is the role and no staff member');
SELECT set_config('request.jwt.claims',
                  '{"pad": "' || repeat('x', 100000) || '", "sub": "24000000-0000-0000-0000-000000000007"}', true);
SELECT is(orders.current_staff_id()::text, '00000000-0000-0000-0000-0000000024e7',
          'a 100,000-character claims document: its sub is read like any other');
SELECT set_config('request.jwt.claims', '{not json', true);
SELECT throws_ok($$SELECT orders.current_staff_id()$$, '22P02', NULL,
                 'a claims document that is no JSON is refused (22P02), not read as anybody');
SELECT set_config('request.jwt.claims', '', true);

SELECT * FROM finish();
ROLLBACK;
