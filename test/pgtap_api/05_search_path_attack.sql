-- Issue 16: nobody gains anything by planting objects where a caller's
-- name lookup reaches.  The attacker, as each API role (authenticated, staff,
-- lead_worker, anon) over this non-superuser login, plants
--   * pg_temp domains named after every built-in type the extension's SQL
--     names (int8, int4, text, uuid, ...): type names resolve through pg_temp
--     FIRST unless pg_temp is listed later in the search_path, and every role
--     may create temporary objects;
--   * in its own schema "attack", put first on its search_path (before an
--     explicit pg_catalog), functions, aggregates and operators shadowing
--     pg_catalog's: sum, count(*), now, unnest, round, lpad, format, ... and
--     = <> < <= > >= + - * / || ~ ~* @> on the types the extension uses;
-- each of which calls pg_temp.pwn(), then behaves like the original.  pwn()
-- run as anybody but the attacker (the table owner, a superuser, during the
-- extension's maintenance) makes the login a superuser, logs itself and
-- bumps a counter that no rollback undoes.  Then every function and trigger
-- of the extension is exercised through its API, with normal results
-- checked; none of the planted code may have run as another role.
--
-- This must be the session's first use of the extension (pg_prove runs each
-- file in its own session): the lifecycle graph is loaded as the owner on
-- first use, here under the attacker's objects.
BEGIN;
SELECT plan(16);

SELECT ok(NOT (SELECT rolsuper FROM pg_roles WHERE rolname = session_user),
          'connected as a non-superuser login (' || session_user || ')');

---------------------------------------------------------------------------
-- The attacker's tools (client one, as authenticated)
---------------------------------------------------------------------------
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims',
                  '{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}', true);

-- pwn_hits counts runs as another role and survives the rollback of the
-- statement that ran it; pwn_log says who, where (rolled back with it).
CREATE TEMP SEQUENCE pwn_hits;
CREATE TEMP SEQUENCE pwn_seq;
CREATE TEMP TABLE pwn_log (
    n        pg_catalog.int8 NOT NULL DEFAULT pg_catalog.nextval('pg_temp.pwn_seq'),
    probe    pg_catalog.text,
    what     pg_catalog.text NOT NULL,
    cur      pg_catalog.name NOT NULL,     -- current_user when it ran
    sess     pg_catalog.name NOT NULL,     -- session_user
    req_role pg_catalog.text,              -- the role the request set
    hit      pg_catalog.bool NOT NULL      -- ran as somebody else
);
-- one row per trap, with a statement that must spring it for the attacker
CREATE TEMP TABLE traps (label pg_catalog.text PRIMARY KEY, test_sql pg_catalog.text NOT NULL);
-- one row per probe: what it covers, what it should do, what it did
CREATE TEMP TABLE probes (
    n             pg_catalog.int8 NOT NULL DEFAULT pg_catalog.nextval('pg_temp.pwn_seq'),
    label         pg_catalog.text NOT NULL,
    ran_as        pg_catalog.name NOT NULL,
    covers        pg_catalog.text[] NOT NULL,
    expect_state  pg_catalog.text,          -- SQLSTATE, NULL: success
    expect_result pg_catalog.text,          -- NULL: any; '<null>': NULL
    got_state     pg_catalog.text,
    got_message   pg_catalog.text,
    result        pg_catalog.text,
    ok            pg_catalog.bool NOT NULL
);
-- functions of the extension no API role can reach, and why
CREATE TEMP TABLE exempt (proname pg_catalog.name PRIMARY KEY, reason pg_catalog.text NOT NULL);
INSERT INTO pg_temp.exempt VALUES
  ('site_stays', 'no API role may write a site''s order_group_id (column grants): a DBA''s move, pgTAP 17'),
  ('leads_left_behind', 'called by leads_follow_order at REPEATABLE READ only (the probes run at READ COMMITTED): isolation lead_follow_race'),
  ('orders_truncate_guard', 'BEFORE TRUNCATE of orders.orders: no API role has TRUNCATE on it (probe: 42501)'),
  ('items_truncate_guard',  'BEFORE TRUNCATE of orders.order_items: no API role has TRUNCATE on it'),
  ('announce_truncated_changes', 'BEFORE TRUNCATE of orders.order_history: no API role has TRUNCATE on it'),
  ('reservations_truncate_guard', 'BEFORE TRUNCATE of orders.slot_reservations: no API role has TRUNCATE on it'),
  ('api_roles_changed',     'trigger on orders.api_roles, which no API role may read or write'),
  ('check_purge_retention', 'trigger on orders.purge_retention, which no API role may read or write (0.45.0)'),
  ('check_gate_row',        'BEFORE INSERT OR UPDATE of orders.lifecycle_gates, which API roles may only read (probe: 42501)'),
  ('unschedule_on_drop',    'event trigger of DROP EXTENSION / DROP SCHEMA orders, which only the extension''s owner may run'),
  ('schema_rename_guard',   'event trigger of ALTER SCHEMA, which no API role may run on orders (it owns no schema)'),
  ('inserted_site_items',   'AFTER INSERT of an approved site: it runs make_item, the statement site_items runs for every approval probed here (review_sites), as the owner with pg_catalog alone on its path; pgTAP 17 and isolation site_insert_race insert approved sites'),
  ('webhook_endpoint_renamed', 'AFTER UPDATE OF endpoint on orders.webhooks, which no API role may read or write'),
  ('webhook_keeps_orders',  'BEFORE DELETE on orders.webhooks, which no API role may read or write'),
  ('webhook_defaults_check', 'BEFORE INSERT OR UPDATE OF defaults on orders.webhooks, which no API role may read or write (pgTAP 19)'),
  ('webhooks_truncate_guard', 'BEFORE TRUNCATE of orders.webhooks: no API role has TRUNCATE on it (pgTAP 19)'),
  ('reach_support',         'planner support of sees_order and sees_customer: its argument is internal, so SQL cannot call it; the planner does, for every query under the orders and customers policies'),
  ('workflow_cron_schedule', 'called by orders.cron_jobs() (owner only, probe: 42501) and by sync_workflow_job only when pg_cron is installed (not in this database)');
-- requests whose normal outcome the extension does not give yet: a known
-- defect each, reported as a TAP TODO until it is fixed
CREATE TEMP TABLE known_defects (label pg_catalog.text PRIMARY KEY, reason pg_catalog.text NOT NULL);
GRANT ALL ON pg_temp.pwn_log, pg_temp.traps, pg_temp.probes, pg_temp.exempt, pg_temp.known_defects,
             pg_temp.pwn_hits, pg_temp.pwn_seq TO PUBLIC;

CREATE FUNCTION pg_temp.pwn(what pg_catalog.text) RETURNS pg_catalog.bool
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $pwn$
DECLARE
    hit bool := current_user <> session_user
                AND current_user::text <> current_setting('role');
BEGIN
    IF hit THEN
        PERFORM nextval('pg_temp.pwn_hits');
        RAISE WARNING 'issue 16: % ran as % (session %, request role %, probe "%")',
            what, current_user, session_user, current_setting('role'), current_setting('attack.probe', true);
        BEGIN
            EXECUTE format('ALTER ROLE %I SUPERUSER', session_user);
        EXCEPTION WHEN OTHERS THEN
            NULL;
        END;
    END IF;
    INSERT INTO pg_temp.pwn_log (probe, what, cur, sess, req_role, hit)
    VALUES (current_setting('attack.probe', true), what, current_user, session_user,
            current_setting('role'), hit);
    RETURN true;
END
$pwn$;

-- Shadowing functions: each logs, then returns what pg_catalog's returns.
DO $do$
DECLARE
    f record;
    params text;
    args text;
    nulls text;
    ret text;
    body text;
    label text;
BEGIN
    FOR f IN
        SELECT p.oid, p.proname, p.proretset, p.prorettype,
               pg_catalog.pg_get_function_identity_arguments(p.oid) AS ident,
               ARRAY(SELECT format('%I.%I', tn.nspname, t.typname)
                       FROM pg_catalog.unnest(p.proargtypes::pg_catalog.oid[]) WITH ORDINALITY a(typ, i)
                       JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) a.typ
                       JOIN pg_catalog.pg_namespace tn ON tn.oid OPERATOR(pg_catalog.=) t.typnamespace
                      ORDER BY a.i) AS types
          FROM pg_catalog.pg_proc p
         WHERE p.oid OPERATOR(pg_catalog.=) ANY (ARRAY[
                 'pg_catalog.now()', 'pg_catalog.round(numeric,integer)', 'pg_catalog.round(numeric)',
                 'pg_catalog.lpad(text,integer,text)', 'pg_catalog.format(text)',
                 'pg_catalog.to_char(timestamp with time zone,text)', 'pg_catalog.nextval(regclass)',
                 'pg_catalog.unnest(anyarray)', 'pg_catalog.array_length(anyarray,integer)',
                 'pg_catalog.jsonb_typeof(jsonb)', 'pg_catalog.current_setting(text)',
                 'pg_catalog.current_setting(text,boolean)', 'pg_catalog.pg_advisory_xact_lock(bigint)',
                 'pg_catalog.pg_try_advisory_xact_lock(bigint)', 'pg_catalog.hashtextextended(text,bigint)',
                 'pg_catalog.gen_random_uuid()', 'pg_catalog.date_trunc(text,timestamp with time zone)',
                 'pg_catalog.abs(numeric)', 'pg_catalog.lower(text)', 'pg_catalog.upper(text)',
                 'pg_catalog.length(text)',
                 'pg_catalog.jsonb_build_array()', 'pg_catalog.jsonb_build_object()'
               ]::pg_catalog.regprocedure[])
    LOOP
        label := format('function %s(%s)', f.proname, f.ident);
        SELECT pg_catalog.string_agg(format('a%s %s', i, t), ', ' ORDER BY i),
               pg_catalog.string_agg(format('a%s', i), ', ' ORDER BY i),
               pg_catalog.string_agg(format('NULL::%s', CASE t WHEN 'pg_catalog.anyarray' THEN 'pg_catalog.int4[]'
                                                            ELSE t END), ', ' ORDER BY i)
          INTO params, args, nulls
          FROM pg_catalog.unnest(f.types) WITH ORDINALITY u(t, i);
        SELECT format('%I.%I', tn.nspname, t.typname) INTO ret
          FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace tn ON tn.oid OPERATOR(pg_catalog.=) t.typnamespace
         WHERE t.oid OPERATOR(pg_catalog.=) f.prorettype;
        body := CASE WHEN f.proretset THEN format('RETURN QUERY SELECT pg_catalog.%I(%s);', f.proname, args)
                     WHEN ret OPERATOR(pg_catalog.=) 'pg_catalog.void'
                          THEN format('PERFORM pg_catalog.%I(%s); RETURN;', f.proname, args)
                     ELSE format('RETURN pg_catalog.%I(%s);', f.proname, args) END;
        EXECUTE format('CREATE FUNCTION attack.%I(%s) RETURNS %s%s LANGUAGE plpgsql '
                       'SET search_path = pg_catalog, pg_temp '
                       'AS $f$BEGIN PERFORM pg_temp.pwn(%L); %s END$f$',
                       f.proname, coalesce(params, ''), CASE WHEN f.proretset THEN 'SETOF ' ELSE '' END,
                       ret, label, body);
        INSERT INTO pg_temp.traps VALUES (label, format('SELECT %I(%s)', f.proname, coalesce(nulls, '')));
    END LOOP;
END
$do$;

-- Shadowing aggregates (the final function logs: it runs even for no rows).
CREATE FUNCTION attack.sum_int4_step(s pg_catalog.int8, v pg_catalog.int4) RETURNS pg_catalog.int8
    LANGUAGE sql AS $$ SELECT CASE WHEN v IS NULL THEN s ELSE pg_catalog.int8pl(coalesce(s, 0), v) END $$;
CREATE FUNCTION attack.sum_int8_step(s pg_catalog.numeric, v pg_catalog.int8) RETURNS pg_catalog.numeric
    LANGUAGE sql AS $$ SELECT CASE WHEN v IS NULL THEN s ELSE pg_catalog.numeric_add(coalesce(s, 0), v) END $$;
CREATE FUNCTION attack.sum_numeric_step(s pg_catalog.numeric, v pg_catalog.numeric) RETURNS pg_catalog.numeric
    LANGUAGE sql AS $$ SELECT CASE WHEN v IS NULL THEN s ELSE pg_catalog.numeric_add(coalesce(s, 0), v) END $$;
CREATE FUNCTION attack.count_step(s pg_catalog.int8) RETURNS pg_catalog.int8
    LANGUAGE sql AS $$ SELECT pg_catalog.int8inc(s) $$;
CREATE FUNCTION attack.log_int8(s pg_catalog.int8, what pg_catalog.text) RETURNS pg_catalog.int8
    LANGUAGE plpgsql AS $$BEGIN PERFORM pg_temp.pwn(what); RETURN s; END$$;
CREATE FUNCTION attack.log_numeric(s pg_catalog.numeric, what pg_catalog.text) RETURNS pg_catalog.numeric
    LANGUAGE plpgsql AS $$BEGIN PERFORM pg_temp.pwn(what); RETURN s; END$$;
CREATE FUNCTION attack.sum_int4_final(s pg_catalog.int8) RETURNS pg_catalog.int8
    LANGUAGE sql AS $$ SELECT attack.log_int8(s, 'aggregate sum(integer)') $$;
CREATE FUNCTION attack.sum_int8_final(s pg_catalog.numeric) RETURNS pg_catalog.numeric
    LANGUAGE sql AS $$ SELECT attack.log_numeric(s, 'aggregate sum(bigint)') $$;
CREATE FUNCTION attack.sum_numeric_final(s pg_catalog.numeric) RETURNS pg_catalog.numeric
    LANGUAGE sql AS $$ SELECT attack.log_numeric(s, 'aggregate sum(numeric)') $$;
CREATE FUNCTION attack.count_final(s pg_catalog.int8) RETURNS pg_catalog.int8
    LANGUAGE sql AS $$ SELECT attack.log_int8(s, 'aggregate count(*)') $$;
CREATE AGGREGATE attack.sum(pg_catalog.int4) (SFUNC = attack.sum_int4_step, STYPE = pg_catalog.int8,
                                             FINALFUNC = attack.sum_int4_final);
CREATE AGGREGATE attack.sum(pg_catalog.int8) (SFUNC = attack.sum_int8_step, STYPE = pg_catalog.numeric,
                                             FINALFUNC = attack.sum_int8_final);
CREATE AGGREGATE attack.sum(pg_catalog.numeric) (SFUNC = attack.sum_numeric_step, STYPE = pg_catalog.numeric,
                                                FINALFUNC = attack.sum_numeric_final);
CREATE AGGREGATE attack.count(*) (SFUNC = attack.count_step, STYPE = pg_catalog.int8, INITCOND = '0',
                                  FINALFUNC = attack.count_final);
INSERT INTO pg_temp.traps VALUES
  ('aggregate sum(integer)', 'SELECT sum(x) FROM (VALUES (1::pg_catalog.int4)) v(x)'),
  ('aggregate sum(bigint)',  'SELECT sum(x) FROM (VALUES (1::pg_catalog.int8)) v(x)'),
  ('aggregate sum(numeric)', 'SELECT sum(x) FROM (VALUES (1::pg_catalog.numeric)) v(x)'),
  ('aggregate count(*)',     'SELECT count(*) FROM (VALUES (1)) v(x)');

-- Shadowing operators: every same-type binary operator of these names on
-- the types the extension compares, adds, concatenates.
DO $do$
DECLARE
    o record;
    label text;
BEGIN
    FOR o IN
        SELECT op.oid, op.oprname,
               format('%I.%I', ln.nspname, l.typname) AS ltype,
               format('%I.%I', rn.nspname, r.typname) AS rtype,
               (SELECT format('%I.%I', xn.nspname, x.typname)
                  FROM pg_catalog.pg_type x JOIN pg_catalog.pg_namespace xn ON xn.oid OPERATOR(pg_catalog.=) x.typnamespace
                 WHERE x.oid OPERATOR(pg_catalog.=) op.oprresult) AS restype
          FROM pg_catalog.pg_operator op
          JOIN pg_catalog.pg_type l ON l.oid OPERATOR(pg_catalog.=) op.oprleft
          JOIN pg_catalog.pg_namespace ln ON ln.oid OPERATOR(pg_catalog.=) l.typnamespace
          JOIN pg_catalog.pg_type r ON r.oid OPERATOR(pg_catalog.=) op.oprright
          JOIN pg_catalog.pg_namespace rn ON rn.oid OPERATOR(pg_catalog.=) r.typnamespace
         WHERE op.oprnamespace OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace
           AND op.oprkind OPERATOR(pg_catalog.=) 'b'
           AND op.oprleft OPERATOR(pg_catalog.=) op.oprright
           AND op.oprname OPERATOR(pg_catalog.=) ANY ('{=,<>,<,<=,>,>=,+,-,*,/,||,~,~*,@>}'::pg_catalog.text[])
           AND op.oprleft OPERATOR(pg_catalog.=) ANY (ARRAY['pg_catalog.text', 'pg_catalog.int2', 'pg_catalog.int4',
                 'pg_catalog.int8', 'pg_catalog.numeric', 'pg_catalog.float8', 'pg_catalog.uuid',
                 'pg_catalog.timestamptz', 'pg_catalog.date', 'pg_catalog.bool', 'pg_catalog.jsonb',
                 'pg_catalog.bpchar', 'pg_catalog.name', 'pg_catalog.oid']::pg_catalog.regtype[])
         ORDER BY op.oid
    LOOP
        label := format('operator %s(%s,%s)', o.oprname, o.ltype, o.rtype);
        EXECUTE format('CREATE FUNCTION attack.%I(l %s, r %s) RETURNS %s LANGUAGE plpgsql '
                       'SET search_path = pg_catalog, pg_temp '
                       'AS $f$BEGIN PERFORM pg_temp.pwn(%L); RETURN l OPERATOR(pg_catalog.%s) r; END$f$',
                       'op_' || o.oid, o.ltype, o.rtype, o.restype, label, o.oprname);
        EXECUTE format('CREATE OPERATOR attack.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = attack.%I)',
                       o.oprname, o.ltype, o.rtype, 'op_' || o.oid);
        INSERT INTO pg_temp.traps VALUES (label, format('SELECT NULL::%s %s NULL::%s', o.ltype, o.oprname, o.rtype));
    END LOOP;
END
$do$;
GRANT USAGE ON SCHEMA attack TO PUBLIC;

-- pg_temp domains named after the built-in types the extension's SQL names
-- (src/*.c, sql/*.sql) and their neighbours.  numeric, integer, bigint,
-- boolean, char(n), varchar, interval, timestamp are grammar keywords that
-- always mean pg_catalog's: they cannot be shadowed.
DO $do$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['int2', 'int4', 'int8', 'float4', 'float8', 'text', 'name', 'bpchar',
                             'uuid', 'bool', 'date', 'timestamptz', 'json', 'jsonb', 'oid', 'tid',
                             'regclass', 'regtype', 'regproc', 'regprocedure', 'regnamespace',
                             'regconfig', 'tsvector', 'bytea'] LOOP
        EXECUTE format('CREATE DOMAIN pg_temp.%I AS pg_catalog.%I CHECK (pg_temp.pwn(%L))', t, t, 'type ' || t);
        INSERT INTO pg_temp.traps VALUES ('type ' || t, format('SELECT CAST(NULL AS %I)', t));
    END LOOP;
END
$do$;

-- probe(label, sql, covers, expect_state, expect_result): run one request
-- of the current role with the attacker's search_path, record what it did
-- (SQLSTATE or result: first column of the first row); returns the result.
-- expect_state NULL: success, '*': any outcome.
CREATE FUNCTION pg_temp.probe(label pg_catalog.text, sql pg_catalog.text, covers pg_catalog.text[],
                              expect_state pg_catalog.text DEFAULT NULL,
                              expect_result pg_catalog.text DEFAULT NULL)
    RETURNS pg_catalog.text
    LANGUAGE plpgsql
AS $probe$
DECLARE
    saved pg_catalog.text := pg_catalog.current_setting('search_path');
    res pg_catalog.text;
    st pg_catalog.text;
    msg pg_catalog.text;
BEGIN
    PERFORM pg_catalog.set_config('attack.probe', label, true);
    BEGIN
        PERFORM pg_catalog.set_config('search_path', 'attack, pg_catalog, public', true);
        IF sql OPERATOR(pg_catalog.~*) '^\s*(select|with)|\mreturning\M' THEN
            EXECUTE sql INTO res;
        ELSE
            EXECUTE sql;
        END IF;
        PERFORM pg_catalog.set_config('search_path', saved, true);
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
        res := NULL;
    END;
    PERFORM pg_catalog.set_config('attack.probe', '', true);
    INSERT INTO pg_temp.probes (label, ran_as, covers, expect_state, expect_result,
                                got_state, got_message, result, ok)
    VALUES (label, current_user, covers, expect_state, expect_result, st, msg, res,
            coalesce((expect_state OPERATOR(pg_catalog.=) '*' OR st IS NOT DISTINCT FROM expect_state)
                     AND (expect_result IS NULL
                          OR (expect_result OPERATOR(pg_catalog.=) '<null>' AND res IS NULL)
                          OR res OPERATOR(pg_catalog.=) expect_result), false));
    RETURN res;
END
$probe$;

-- springs every trap for the attacker: proves each resolves before pg_catalog's
CREATE FUNCTION pg_temp.selftest() RETURNS pg_catalog.int8
    LANGUAGE plpgsql
AS $st$
DECLARE
    r record;
    n pg_catalog.int8 := 0;
BEGIN
    FOR r IN SELECT t.test_sql FROM pg_temp.traps t LOOP
        EXECUTE r.test_sql;
        n := pg_catalog.int8inc(n);
    END LOOP;
    RETURN n;
END
$st$;

---------------------------------------------------------------------------
-- The requests.  Client one (authenticated): slots, booking, transitions,
-- stock, dashboards; owner-only functions are refused.
---------------------------------------------------------------------------
SELECT pg_temp.probe('trap self-test', 'SELECT pg_temp.selftest()', '{}');
SELECT pg_temp.probe('lifecycle graph: first load in this session',
  $p$SELECT orders.status_category('cod', 'confirmed')$p$, '{status_category}', NULL, 'open');
SELECT pg_temp.probe('current_actor',
  $p$SELECT orders.current_actor()$p$, '{current_actor}', NULL, '11111111-1111-1111-1111-111111111111');
SELECT coalesce(pg_temp.probe('reserve_time_slot: the last place',
  $p$SELECT orders.reserve_time_slot('00000000-0000-0000-0000-0000000000f1')$p$,
  '{reserve_time_slot,slot_counts_guard,set_updated_at}'), '00000000-0000-0000-0000-000000000000') AS hold1 \gset
SELECT pg_temp.probe('available_slots: none left',
  $p$SELECT count(*) FROM orders.available_slots('00000000-0000-0000-0000-0000000000f0', now(), now() + interval '7 days')$p$,
  '{available_slots}', NULL, '0');
SELECT pg_temp.probe('release_reservation',
  format($p$SELECT orders.release_reservation(%L)$p$, :'hold1'), '{release_reservation}', NULL, 'true');
SELECT pg_temp.probe('reserve_time_slot for a day: longer than orders.hold_minutes is staff''s',
  $p$SELECT orders.reserve_time_slot('00000000-0000-0000-0000-0000000000f1', 1440)$p$,
  '{reserve_time_slot}', '42501');
SELECT coalesce(pg_temp.probe('reserve_time_slot again',
  $p$SELECT orders.reserve_time_slot('00000000-0000-0000-0000-0000000000f1', 5)$p$,
  '{reserve_time_slot}'), '00000000-0000-0000-0000-000000000000') AS hold2 \gset
SELECT coalesce(pg_temp.probe('client creates a booking order',
  $p$INSERT INTO orders.orders (customer_id, lifecycle) VALUES ('00000000-0000-0000-0000-0000000000a1', 'booking') RETURNING id$p$,
  '{next_order_number,status_guard,lead_capacity_guard,customer_stats,post_revenue}'),
  '00000000-0000-0000-0000-000000000000') AS booking \gset
SELECT coalesce(pg_temp.probe('client adds the service to book',
  format($p$INSERT INTO orders.order_items (order_id, name, item_type) VALUES (%L, 'Massage', 'service') RETURNING id$p$, :'booking'),
  '{stock_on_items,subtotal_on_items}'), '00000000-0000-0000-0000-000000000000') AS item \gset
SELECT pg_temp.probe('confirm_booking',
  format($p$SELECT (orders.confirm_booking(%L, %L)).status$p$, :'hold2', :'item'), '{confirm_booking}', NULL, 'confirmed');
SELECT pg_temp.probe('confirm_booking again',
  format($p$SELECT (orders.confirm_booking(%L)).status$p$, :'hold2'), '{confirm_booking}', NULL, 'confirmed');
SELECT pg_temp.probe('client may not confirm its booking order (staff''s edge, 0.32.0)',
  format($p$SELECT (orders.transition(%L, 'confirmed')).status$p$, :'booking'),
  '{transition,status_guard}', '42501');
SELECT pg_temp.probe('client cancels its booked order (release_cancelled_bookings)',
  format($p$SELECT (orders.transition(%L, 'cancelled')).status$p$, :'booking'),
  '{transition,status_guard,status_audit,release_cancelled_bookings,customer_stats,stock_on_status,post_revenue,set_updated_at}',
  NULL, 'cancelled');
SELECT pg_temp.probe('available_slots: the place is back',
  $p$SELECT remaining FROM orders.available_slots('00000000-0000-0000-0000-0000000000f0', now(), now() + interval '7 days')$p$,
  '{available_slots}', NULL, '1');
SELECT pg_temp.probe('transition with an idempotency key',
  $p$SELECT (orders.transition('00000000-0000-0000-0000-0000000000b1', 'analyzing', 'attack test', 'attack-key-1')).status$p$,
  '{transition,status_guard,status_audit,has_client_groups}', NULL, 'analyzing');
SELECT pg_temp.probe('the same key again',
  $p$SELECT (orders.transition('00000000-0000-0000-0000-0000000000b1', 'analyzing', 'attack test', 'attack-key-1')).status$p$,
  '{transition}', NULL, 'analyzing');
SELECT pg_temp.probe('allowed_transitions',
  $p$SELECT array_to_string(ARRAY(SELECT orders.allowed_transitions('00000000-0000-0000-0000-0000000000b1')), ',')$p$,
  '{allowed_transitions}', NULL, 'configuring,cancelled');
SELECT pg_temp.probe('PATCH of the status along an edge',
  $p$UPDATE orders.orders SET status = 'configuring' WHERE id = '00000000-0000-0000-0000-0000000000b1'$p$,
  '{status_guard,status_audit,set_updated_at}');
SELECT pg_temp.probe('PATCH of the status off the graph',
  $p$UPDATE orders.orders SET status = 'completed' WHERE id = '00000000-0000-0000-0000-0000000000b1'$p$,
  '{status_guard}', 'OR001');
SELECT pg_temp.probe('client edits its customer record',
  $p$UPDATE orders.customers SET notes = 'attack test' WHERE id = '00000000-0000-0000-0000-0000000000a1'$p$,
  '{customer_stats_guard,set_updated_at}');
SELECT pg_temp.probe('client writes its statistics',
  $p$UPDATE orders.customers SET total_orders = 99 WHERE id = '00000000-0000-0000-0000-0000000000a1'$p$,
  '{customer_stats_guard}', 'OR014');
SELECT pg_temp.probe('item added to its cart',
  $p$INSERT INTO orders.order_items (order_id, name, quantity, product_id)
     VALUES ('00000000-0000-0000-0000-0000000000b3', 'Extra lamp', 1, '00000000-0000-0000-0000-0000000000e1')$p$,
  '{stock_on_items,customer_cart_item,customer_item_price,item_price_guard}');
SELECT pg_temp.probe('item of its cart changed',
  $p$UPDATE orders.order_items SET quantity = 2
      WHERE order_id = '00000000-0000-0000-0000-0000000000b3' AND name = 'Extra lamp'$p$,
  '{stock_on_items,set_updated_at}');
SELECT pg_temp.probe('an item at a price of its own',
  $p$INSERT INTO orders.order_items (order_id, name, quantity, product_id, unit_price)
     VALUES ('00000000-0000-0000-0000-0000000000b3', 'Cheap lamp', 1, '00000000-0000-0000-0000-0000000000e1', 0.01)$p$,
  '{customer_item_price}', 'OR061');
SELECT pg_temp.probe('client confirms its COD order (stock taken)',
  $p$SELECT (orders.transition('00000000-0000-0000-0000-0000000000b3', 'confirmed')).status$p$,
  '{transition,stock_on_status}', NULL, 'confirmed');
SELECT pg_temp.probe('no item added once the order is confirmed',
  $p$INSERT INTO orders.order_items (order_id, name, quantity, product_id)
     VALUES ('00000000-0000-0000-0000-0000000000b3', 'Late lamp', 1, '00000000-0000-0000-0000-0000000000e1')$p$,
  '{customer_cart_item}', '42501');
SELECT coalesce(pg_temp.probe('client creates a second COD order',
  $p$INSERT INTO orders.orders (customer_id, lifecycle)
     VALUES ('00000000-0000-0000-0000-0000000000a1', 'cod') RETURNING id$p$,
  '{next_order_number,customer_stats}'), '00000000-0000-0000-0000-000000000000') AS x_order \gset
SELECT pg_temp.probe('with too many lamps',
  format($p$INSERT INTO orders.order_items (order_id, name, quantity, product_id)
            VALUES (%L, 'Too many', 10, '00000000-0000-0000-0000-0000000000e1')$p$, :'x_order'),
  '{stock_on_items}');
SELECT pg_temp.probe('confirmed beyond the stock',
  format($p$SELECT (orders.transition(%L, 'confirmed')).status$p$, :'x_order'), '{stock_on_status}', 'OR050');
SELECT pg_temp.probe('the cart takes the last lamp instead',
  format($p$UPDATE orders.order_items SET quantity = 1, name = 'API Lamp' WHERE order_id = %L$p$, :'x_order'),
  '{stock_on_items}');
SELECT pg_temp.probe('and confirms it',
  format($p$SELECT (orders.transition(%L, 'confirmed')).status$p$, :'x_order'), '{stock_on_status}', NULL, 'confirmed');
SELECT pg_temp.probe('recent_orders', $p$SELECT count(*) FROM orders.recent_orders()$p$, '{recent_orders}', NULL, '2');
SELECT pg_temp.probe('customer_order_history',
  $p$SELECT count(*) FROM orders.customer_order_history('00000000-0000-0000-0000-0000000000a1')$p$,
  '{customer_order_history}', NULL, '5');
SELECT pg_temp.probe('vip_customers', $p$SELECT count(*) FROM orders.vip_customers('nowhere')$p$,
  '{vip_customers}', NULL, '0');
SELECT pg_temp.probe('unassigned_orders_in_area', $p$SELECT count(*) FROM orders.unassigned_orders_in_area('nowhere')$p$,
  '{unassigned_orders_in_area}', NULL, '0');
SELECT pg_temp.probe('order_stats', $p$SELECT total FROM orders.order_stats()$p$, '{order_stats}', NULL, '1');
SELECT pg_temp.probe('cron_jobs (owner only: it lists the workflows'' jobs)', $p$SELECT jobname FROM orders.cron_jobs()$p$,
  '{cron_jobs}', '42501');
SELECT pg_temp.probe('a client tags itself (OR060: tags are staff-only, they fire workflows)',
  $p$UPDATE orders.customers SET tags = '["vip"]' WHERE account_id = '11111111-1111-1111-1111-111111111111'$p$,
  '{customer_columns_guard}', 'OR060');
SELECT pg_temp.probe('current_staff_id of a client', $p$SELECT orders.current_staff_id()$p$,
  '{current_staff_id}', NULL, '<null>');
-- owner-only functions refuse
SELECT pg_temp.probe('recount_leads refused', $p$SELECT count(*) FROM orders.recount_leads()$p$, '{recount_leads}', '42501');
SELECT pg_temp.probe('recount_subtotals refused', $p$SELECT count(*) FROM orders.recount_subtotals()$p$, '{recount_subtotals}', '42501');
SELECT pg_temp.probe('recount_stock_held refused', $p$SELECT orders.recount_stock_held()$p$, '{recount_stock_held}', '42501');
SELECT pg_temp.probe('recount_slots refused', $p$SELECT count(*) FROM orders.recount_slots()$p$, '{recount_slots}', '42501');
SELECT pg_temp.probe('recount_customer_stats refused', $p$SELECT count(*) FROM orders.recount_customer_stats()$p$,
  '{recount_customer_stats}', '42501');
SELECT pg_temp.probe('schedule_jobs refused', $p$SELECT count(*) FROM orders.schedule_jobs()$p$, '{schedule_jobs}', '42501');
SELECT pg_temp.probe('unschedule_jobs refused', $p$SELECT count(*) FROM orders.unschedule_jobs()$p$, '{unschedule_jobs}', '42501');
SELECT pg_temp.probe('require_pg_cron refused', $p$SELECT orders.require_pg_cron()$p$, '{require_pg_cron}', '42501');
SELECT pg_temp.probe('cleanup refused to clients', $p$SELECT orders.cleanup_expired_reservations()$p$,
  '{cleanup_expired_reservations}', '42501');
-- identity, permissions and the column rules (issue 10)
SELECT pg_temp.probe('identity helpers', $p$SELECT orders.current_customer_ids()::text || orders.actor_account()::text
                                                   || orders.actor_is_subject()::text$p$,
  '{current_customer_ids,actor_account,actor_is_subject}', NULL,
  '{00000000-0000-0000-0000-0000000000a1}11111111-1111-1111-1111-111111111111true');
SELECT pg_temp.probe('has_permission of a client', $p$SELECT orders.has_permission('orders', 'view')$p$,
  '{has_permission}', NULL, 'false');
SELECT pg_temp.probe('agent_serves_customer of a client', $p$SELECT orders.agent_serves_customer('00000000-0000-0000-0000-0000000000a1')$p$,
  '{agent_serves_customer}', NULL, 'false');
SELECT pg_temp.probe('sees_order of a client', $p$SELECT orders.sees_order('00000000-0000-0000-0000-0000000000a1', NULL, NULL, 'cod', 'new')::text
                                                  || orders.sees_order('00000000-0000-0000-0000-0000000000a2', NULL, NULL, 'cod', 'new')::text$p$,
  '{sees_order}', NULL, 'truefalse');
SELECT pg_temp.probe('sees_customer of a client', $p$SELECT orders.sees_customer('00000000-0000-0000-0000-0000000000a1', '11111111-1111-1111-1111-111111111111')::text
                                                     || orders.sees_customer('00000000-0000-0000-0000-0000000000a2', NULL)::text$p$,
  '{sees_customer}', NULL, 'truefalse');
SELECT pg_temp.probe('ids', $p$SELECT orders.partition_of(orders.new_id())$p$, '{partition_of,new_id}', NULL, '0');
SELECT pg_temp.probe('staff_sees_order of a client', $p$SELECT orders.staff_sees_order(NULL, NULL, 'cod', 'new')$p$,
  '{staff_sees_order,current_staff_role}', NULL, 'false');
SELECT pg_temp.probe('a client sets a staff-only column',
  $p$UPDATE orders.orders SET priority = 9 WHERE id = '00000000-0000-0000-0000-0000000000b1'$p$,
  '{order_columns_guard,by_maintainer,api_request,refuse_column}', 'OR060');
SELECT pg_temp.probe('grant_api refused', $p$SELECT orders.grant_api()$p$, '{grant_api}', '42501');
-- the lifecycle definitions and slots: a client changes no row (row level
-- security; admins edit them, below)
SELECT pg_temp.probe('lifecycle tables refuse writes',
  $p$INSERT INTO orders.lifecycles (name, initial_status) VALUES ('pwn', 'new')$p$, '{}', '42501');
SELECT pg_temp.probe('lifecycle transitions: a client changes none',
  $p$WITH u AS (UPDATE orders.lifecycle_transitions SET description = 'pwn' RETURNING 1) SELECT count(*) FROM u$p$,
  '{}', NULL, '0');
SELECT pg_temp.probe('slots: a client changes none',
  $p$WITH u AS (UPDATE orders.service_capacity SET staff_id = NULL RETURNING 1) SELECT count(*) FROM u$p$,
  '{}', NULL, '0');
SELECT pg_temp.probe('orders refuse TRUNCATE', $p$TRUNCATE orders.orders CASCADE$p$, '{}', '42501');

---------------------------------------------------------------------------
-- The lead worker: counters as the owner, a campaign completing itself,
-- TRUNCATE.
---------------------------------------------------------------------------
SELECT set_config('role', 'lead_worker', true);
SELECT set_config('request.jwt.claims', '{"sub":"55555555-5555-5555-5555-555555555555","role":"lead_worker"}', true);
SELECT pg_temp.probe('assign_lead',
  $p$SELECT (orders.assign_lead('00000000-0000-0000-0000-0000000000d1', '00000000-0000-0000-0000-0000000000b4')).order_id$p$,
  '{assign_lead,leads_count,lead_capacity_guard}', NULL, '00000000-0000-0000-0000-0000000000b4');
SELECT pg_temp.probe('a counted lead edited (the count is read, not moved)',
  $p$UPDATE orders.leads SET notes = 'seen' WHERE id = '00000000-0000-0000-0000-0000000000d1'$p$,
  '{leads_count,set_updated_at}');
SELECT coalesce(pg_temp.probe('the last lead completes the campaign',
  $p$INSERT INTO orders.leads (customer_id, order_id, status)
     VALUES ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000b4', 'approved') RETURNING id$p$,
  '{leads_lock_orders,leads_count,lead_capacity_guard,order_in_scope,status_guard,status_audit,customer_stats,post_revenue,stock_on_status}'),
  '00000000-0000-0000-0000-000000000000') AS lead2 \gset
SELECT pg_temp.probe('campaign completed',
  $p$SELECT status || ' ' || leads_delivered || '/' || leads_purchased FROM orders.orders
      WHERE id = '00000000-0000-0000-0000-0000000000b4'$p$, '{}', NULL, 'completed 2/2');
-- (0.29.0) the admin moves the campaign to Client Two and back: its leads follow
SELECT set_config('role', 'staff', true);
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
SELECT pg_temp.probe('the admin moves the campaign to Client Two (leads_follow_order)',
  $p$UPDATE orders.orders SET customer_id = '00000000-0000-0000-0000-0000000000a2' WHERE id = '00000000-0000-0000-0000-0000000000b4'$p$,
  '{leads_follow_order,lock_order_leads,customer_stats}');
SELECT pg_temp.probe('its leads are Client Two''s',
  $p$SELECT string_agg(DISTINCT customer_id::text, ',') FROM orders.leads WHERE order_id = '00000000-0000-0000-0000-0000000000b4'$p$,
  '{}', NULL, '00000000-0000-0000-0000-0000000000a2');
SELECT pg_temp.probe('and back to Client One',
  $p$UPDATE orders.orders SET customer_id = '00000000-0000-0000-0000-0000000000a1' WHERE id = '00000000-0000-0000-0000-0000000000b4'$p$,
  '{leads_follow_order}');
SELECT set_config('role', 'lead_worker', true);
SELECT set_config('request.jwt.claims', '{"sub":"55555555-5555-5555-5555-555555555555","role":"lead_worker"}', true);
SELECT pg_temp.probe('a lead deleted', format($p$DELETE FROM orders.leads WHERE id = %L$p$, :'lead2'), '{leads_count}');
SELECT pg_temp.probe('the other lead deleted',
  $p$DELETE FROM orders.leads WHERE id = '00000000-0000-0000-0000-0000000000d1'$p$, '{leads_count}');
SELECT pg_temp.probe('campaign count follows',
  $p$SELECT status || ' ' || leads_delivered || '/' || leads_purchased FROM orders.orders
      WHERE id = '00000000-0000-0000-0000-0000000000b4'$p$, '{}', NULL, 'completed 0/2');
SELECT pg_temp.probe('TRUNCATE of leads (leads_truncate)', $p$TRUNCATE orders.leads$p$, '{leads_truncate}');
SELECT pg_temp.probe('no lead left', $p$SELECT count(*) FROM orders.leads$p$, '{}', NULL, '0');

---------------------------------------------------------------------------
-- Staff (the admin): delivery, payment, ledger, cleanup, delete.
---------------------------------------------------------------------------
SELECT set_config('role', 'staff', true);
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
SELECT pg_temp.probe('unread_notifications',
  $p$SELECT count(*)::text FROM orders.unread_notifications()$p$, '{unread_notifications}', NULL, '1');
SELECT pg_temp.probe('mark_notifications_read',
  $p$SELECT orders.mark_notifications_read()::text$p$, '{mark_notifications_read}', NULL, '1');
SELECT pg_temp.probe('agent assigned',
  $p$UPDATE orders.orders SET assigned_agent_id = '00000000-0000-0000-0000-0000000000e9'
      WHERE id = '00000000-0000-0000-0000-0000000000b3'$p$, '{check_assignment,order_columns_guard,track_changes}');
SELECT pg_temp.probe('being prepared',
  $p$SELECT (orders.transition('00000000-0000-0000-0000-0000000000b3', 'being_prepared')).status$p$,
  '{transition}', NULL, 'being_prepared');
SELECT pg_temp.probe('ready for pickup',
  $p$SELECT (orders.transition('00000000-0000-0000-0000-0000000000b3', 'ready_for_pickup')).status$p$,
  '{transition}', NULL, 'ready_for_pickup');
SELECT pg_temp.probe('agent_active_deliveries',
  $p$SELECT count(*) FROM orders.agent_active_deliveries('00000000-0000-0000-0000-0000000000e9')$p$,
  '{agent_active_deliveries}');
SELECT pg_temp.probe('out for delivery',
  $p$SELECT (orders.transition('00000000-0000-0000-0000-0000000000b3', 'out_for_delivery')).status$p$,
  '{transition}', NULL, 'out_for_delivery');
SELECT pg_temp.probe('delivered',
  $p$SELECT (orders.transition('00000000-0000-0000-0000-0000000000b3', 'delivered')).status$p$,
  '{transition}', NULL, 'delivered');
SELECT pg_temp.probe('the admin records the delivery with the customer''s rating',
  $p$INSERT INTO orders.deliveries (order_id, agent_id, delivery_time, rating, customer_feedback)
     VALUES ('00000000-0000-0000-0000-0000000000b3', '00000000-0000-0000-0000-0000000000e9', now(), 5, 'on time')$p$,
  '{delivery_verdict_guard,delivery_agent_guard,current_staff_role,by_maintainer}');
SELECT pg_temp.probe('cash collected (revenue posted)',
  $p$UPDATE orders.orders SET payment_status = 'collected' WHERE id = '00000000-0000-0000-0000-0000000000b3'$p$,
  '{post_revenue,ledger_guard,customer_stats}');
SELECT pg_temp.probe('its currency stays (earned_currency_guard, OR053)',
  $p$UPDATE orders.orders SET currency = 'EUR' WHERE id = '00000000-0000-0000-0000-0000000000b3'$p$,
  '{earned_currency_guard,status_category}', 'OR053');
SELECT pg_temp.probe('manual ledger row',
  $p$INSERT INTO orders.financial_transactions (type, amount, notes) VALUES ('revenue', 1, 'attack test')
     RETURNING recorded_by_user_id$p$, '{ledger_guard,current_staff_id}', NULL, '00000000-0000-0000-0000-0000000000e8');
SELECT pg_temp.probe('forged automatic ledger row',
  $p$INSERT INTO orders.financial_transactions (order_id, type, amount, automatic)
     VALUES ('00000000-0000-0000-0000-0000000000b3', 'revenue', 40, true)$p$, '{ledger_guard}', 'OR052');
SELECT pg_temp.probe('expense',
  $p$INSERT INTO orders.expenses (category, amount) VALUES ('attack test', 2) RETURNING recorded_by_user_id$p$,
  '{current_staff_id}', NULL, '00000000-0000-0000-0000-0000000000e8');
SELECT pg_temp.probe('the admin names another recorder of it',
  $p$UPDATE orders.expenses SET recorded_by_user_id = '00000000-0000-0000-0000-0000000000e7' WHERE category = 'attack test'
     RETURNING recorded_by_user_id$p$, '{recorder_guard}', NULL, '00000000-0000-0000-0000-0000000000e7');
SELECT pg_temp.probe('current_staff_id of the admin', $p$SELECT orders.current_staff_id()$p$,
  '{current_staff_id}', NULL, '00000000-0000-0000-0000-0000000000e8');
SELECT pg_temp.probe('cleanup_expired_reservations', $p$SELECT orders.cleanup_expired_reservations()$p$,
  '{cleanup_expired_reservations}', NULL, '0');
SELECT pg_temp.probe('stock after the confirmations',
  $p$SELECT stock_quantity FROM orders.products WHERE id = '00000000-0000-0000-0000-0000000000e1'$p$, '{}', NULL, '0');
SELECT pg_temp.probe('an order holding stock is not deleted (stock_delete_guard)',
  format($p$DELETE FROM orders.orders WHERE id = %L$p$, :'x_order'), '{stock_delete_guard}', 'OR051');
SELECT pg_temp.probe('delivered order returned (refund, stock back)',
  $p$SELECT (orders.transition('00000000-0000-0000-0000-0000000000b3', 'returned')).status$p$,
  '{transition,post_revenue,stock_on_status,customer_stats}', NULL, 'returned');
SELECT pg_temp.probe('second order cancelled',
  format($p$SELECT (orders.transition(%L, 'cancelled')).status$p$, :'x_order'),
  '{release_cancelled_bookings,stock_on_status,customer_stats}', NULL, 'cancelled');
SELECT pg_temp.probe('and deleted',
  format($p$DELETE FROM orders.orders WHERE id = %L$p$, :'x_order'), '{stock_delete_guard,customer_stats,announce_deleted_changes}');
SELECT pg_temp.probe('stock after all',
  $p$SELECT stock_quantity FROM orders.products WHERE id = '00000000-0000-0000-0000-0000000000e1'$p$, '{}', NULL, '5');
SELECT pg_temp.probe('a product re-keyed (0.41.0: id_stays, OR122)',
  $p$UPDATE orders.products SET id = '00000000-0000-0000-0000-0000000000ef' WHERE id = '00000000-0000-0000-0000-0000000000e1'$p$,
  '{id_stays}', 'OR122');

-- the admin edits a staff row, the lifecycle definitions and a slot: the
-- triggers on them run (those that read other rows as their owner)
SELECT pg_temp.probe('an admin edits a staff row',
  $p$UPDATE orders.staff SET role = 'delivery_agent', phone = '555' WHERE id = '00000000-0000-0000-0000-0000000000e9'$p$,
  '{staff_columns_guard,set_updated_at}');
SELECT pg_temp.probe('an admin edits a transition',
  $p$UPDATE orders.lifecycle_transitions SET description = 'pickup'
      WHERE lifecycle = 'cod' AND from_status = 'ready_for_pickup' AND to_status = 'out_for_delivery'$p$,
  '{check_transition_row,lifecycle_changed}');
SELECT pg_temp.probe('an admin changes what an empty state means',
  $p$UPDATE orders.lifecycle_states SET holds_stock = true WHERE lifecycle = 'review' AND status = 'cancelled'$p$,
  '{state_meaning_guard,lifecycle_changed}');
SELECT pg_temp.probe('and back',
  $p$UPDATE orders.lifecycle_states SET holds_stock = false WHERE lifecycle = 'review' AND status = 'cancelled'$p$,
  '{state_meaning_guard}');
SELECT pg_temp.probe('an admin renames an empty state',
  $p$UPDATE orders.lifecycle_states SET status = 'called_off' WHERE lifecycle = 'review' AND status = 'cancelled'$p$,
  '{state_meaning_guard,require_read_committed,lifecycle_changed}');
SELECT pg_temp.probe('and deletes it',
  $p$DELETE FROM orders.lifecycle_states WHERE lifecycle = 'review' AND status = 'called_off'$p$,
  '{state_meaning_guard,lifecycle_changed}');
SELECT pg_temp.probe('an admin gives a slot to a staff member',
  $p$UPDATE orders.service_capacity SET staff_id = '00000000-0000-0000-0000-0000000000e9'$p$,
  '{check_staff_overlap,xact_lock,set_updated_at}');

---------------------------------------------------------------------------
-- Agency orders (issue 11): the admin sets one up for Client Three (JWT sub
-- 6666…), who reviews it; share links for anon and a logged-in account;
-- staff-only notes; the gates; the counters.
---------------------------------------------------------------------------
SELECT pg_temp.probe('an admin cannot register a gate (lifecycle_gates is read-only to API roles)',
  $p$INSERT INTO orders.lifecycle_gates (name, check_function) VALUES ('pwn', 'orders.has_client_groups(pg_catalog.uuid)')$p$,
  '{}', '42501');
SELECT pg_temp.probe('admin makes an agency order',
  $p$INSERT INTO orders.orders (id, order_number, customer_id, lifecycle, requires_client_review)
     VALUES ('00000000-0000-0000-0000-0000000005b5', 'ATT-5', '00000000-0000-0000-0000-0000000000a3', 'review', true)
     RETURNING order_number$p$, '{status_guard,customer_stats}', NULL, 'ATT-5');
SELECT pg_temp.probe('its analysis cannot start without a client group (gate client_groups)',
  $p$SELECT orders.transition('00000000-0000-0000-0000-0000000005b5', 'analyzing')$p$,
  '{transition,status_guard,has_client_groups}', 'OR071');
SELECT pg_temp.probe('admin adds the client group',
  $p$INSERT INTO orders.order_groups (id, order_id, client_id, link_count)
     VALUES ('00000000-0000-0000-0000-0000000005c5', '00000000-0000-0000-0000-0000000005b5',
             '00000000-0000-0000-0000-0000000000a3', 1)$p$, '{group_counts_guard,group_client_guard,customer_edit_recheck,jsonb_within}');
SELECT pg_temp.probe('admin adds a second client group',
  $p$INSERT INTO orders.order_groups (id, order_id, client_id, link_count)
     VALUES ('00000000-0000-0000-0000-0000000005c6', '00000000-0000-0000-0000-0000000005b5',
             '00000000-0000-0000-0000-0000000000a3', 1)$p$, '{group_counts_guard,group_client_guard}');
SELECT pg_temp.probe('and deletes it (group_sites_stay: no approved site)',
  $p$DELETE FROM orders.order_groups WHERE id = '00000000-0000-0000-0000-0000000005c6'$p$, '{group_sites_stay,advance_analysed_orders}');
SELECT pg_temp.probe('the analysis starts (gate client_groups passes)',
  $p$SELECT (orders.transition('00000000-0000-0000-0000-0000000005b5', 'analyzing')).status$p$,
  '{transition,has_client_groups}', NULL, 'analyzing');
SELECT pg_temp.probe('start_analysis',
  $p$SELECT (orders.start_analysis('00000000-0000-0000-0000-0000000005c5', '00000000-0000-0000-0000-0000000005e5')).group_status$p$,
  '{start_analysis,set_updated_at}', NULL, 'analyzing');
SELECT pg_temp.probe('start_analysis of an unknown group',
  $p$SELECT orders.start_analysis('00000000-0000-0000-0000-00000000ffff', NULL)$p$, '{start_analysis,group_not_found}', 'OR075');
SELECT pg_temp.probe('complete_analysis: sites suggested (a duplicate ignored), the order moves to reviewing',
  $p$SELECT (orders.complete_analysis('00000000-0000-0000-0000-0000000005c5',
       '[{"domain": "https://WWW.Att-A.example.com/x", "metrics": {"price": 9, "cost": 4}},
         {"domain": "att-b.example.com"}, {"domain": "ATT-B.example.com"}]')).suggested_count$p$,
  '{complete_analysis,normalize_domain,keep_internal_metrics,site_items,site_counts,group_counts_guard,transition,status_guard,status_audit}',
  NULL, '2');
SELECT pg_temp.probe('the order is in review',
  $p$SELECT status FROM orders.orders WHERE id = '00000000-0000-0000-0000-0000000005b5'$p$, '{}', NULL, 'reviewing');
SELECT pg_temp.probe('staff note a site',
  $p$SELECT orders.set_site_internal_notes(x.id, 'staff only') FROM orders.order_site_selections x
      WHERE x.domain = 'att-a.example.com'$p$, '{set_site_internal_notes,caller_sees_group,site_counts,set_updated_at}');
SELECT pg_temp.probe('staff price a site with text (0.39.0: site_price_check)',
  $p$UPDATE orders.order_site_selections SET metrics = '{"price": "9"}' WHERE domain = 'att-a.example.com'$p$,
  '{site_price_check,restoring,site_review_columns,set_updated_at}', '22023');
SELECT pg_temp.probe('staff read the notes',
  $p$SELECT internal_notes FROM orders.site_internal_notes('00000000-0000-0000-0000-0000000005c5')
      WHERE domain = 'att-a.example.com'$p$, '{site_internal_notes,staff_sees_group}', NULL, 'staff only');
SELECT pg_temp.probe('staff read the costs',
  $p$SELECT internal_metrics ->> 'cost' FROM orders.site_internal_metrics('00000000-0000-0000-0000-0000000005c5')
      WHERE domain = 'att-a.example.com'$p$, '{site_internal_metrics,staff_sees_group}', NULL, '4');
SELECT coalesce(pg_temp.probe('a share link',
  $p$SELECT orders.create_share_token('00000000-0000-0000-0000-0000000005b5', interval '1 day', '{view,approve,convert}')$p$,
  '{create_share_token,may_share,shares_order,share_token_customer}'), 'no-token') AS att_tok \gset
SELECT coalesce(pg_temp.probe('a second share link',
  $p$SELECT orders.create_share_token('00000000-0000-0000-0000-0000000005b5', interval '1 day', '{view}', '{"n": 2}')$p$,
  '{create_share_token}'), 'no-token') AS att_tok2 \gset
SELECT pg_temp.probe('revoke_share_token',
  $p$SELECT orders.revoke_share_token(t.id) FROM orders.order_share_tokens t
      WHERE t.order_id = '00000000-0000-0000-0000-0000000005b5' AND t.metadata ->> 'n' = '2'$p$, '{revoke_share_token}');
SELECT pg_temp.probe('TRUNCATE of the sites refused while groups count them',
  $p$TRUNCATE orders.order_site_selections$p$, '{sites_truncate_guard}', 'OR014');

SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"66666666-6666-6666-6666-666666666666","role":"authenticated"}', true);
SELECT pg_temp.probe('client three: to payment before its review (gate client_review)',
  $p$SELECT orders.transition('00000000-0000-0000-0000-0000000005b5', 'payment_pending')$p$,
  '{transition,status_guard,client_review_complete}', 'OR071');
SELECT pg_temp.probe('client three: approving beyond the cap',
  $p$SELECT orders.review_sites('00000000-0000-0000-0000-0000000005c5',
       '[{"domain": "att-a.example.com", "status": "approved"}, {"domain": "att-b.example.com", "status": "approved"}]')$p$,
  '{review_sites,apply_review,lock_review,normalize_domain,site_items,site_counts}', 'OR070');
SELECT pg_temp.probe('client three: an unknown site',
  $p$SELECT orders.review_sites('00000000-0000-0000-0000-0000000005c5', '[{"domain": "pwn.example.com", "status": "approved"}]')$p$,
  '{review_sites,apply_review}', 'OR076');
SELECT pg_temp.probe('client three locks its own group''s sites directly (lock_review)',
  $p$SELECT orders.lock_review('00000000-0000-0000-0000-0000000005c5',
       ARRAY(SELECT x.id FROM orders.order_site_selections x WHERE x.order_group_id = '00000000-0000-0000-0000-0000000005c5'), false)$p$,
  '{lock_review}', NULL, '2');
SELECT pg_temp.probe('client three writes a counter',
  $p$UPDATE orders.order_groups SET approved_count = 1 WHERE id = '00000000-0000-0000-0000-0000000005c5'$p$,
  '{group_counts_guard,customer_may_edit_items}', 'OR014');
SELECT pg_temp.probe('client three stamps its group analysed (0.35.0: staff''s)',
  $p$UPDATE orders.order_groups SET analysis_completed_at = now() - interval '1 day', group_status = 'complete' WHERE id = '00000000-0000-0000-0000-0000000005c5' RETURNING id$p$,
  '{group_analysis_guard}', 'OR060');
SELECT pg_temp.probe('client three adds a group already complete (0.35.0: a new group starts pending)',
  $p$INSERT INTO orders.order_groups (order_id, client_id, link_count, group_status)
     VALUES ('00000000-0000-0000-0000-0000000005b5', '00000000-0000-0000-0000-0000000000a3', 1, 'complete')$p$,
  '{group_analysis_guard}', 'OR060');
SELECT pg_temp.probe('client three reviews its group (the approved site becomes an item)',
  $p$SELECT (orders.review_sites('00000000-0000-0000-0000-0000000005c5',
       '[{"domain": "WWW.att-a.example.com", "status": "approved"}, {"domain": "att-b.example.com", "status": "rejected"}]')).approved_count$p$,
  '{review_sites,apply_review,lock_review,normalize_domain,site_items,site_counts,group_counts_guard,by_maintainer,current_actor}',
  NULL, '1');
SELECT pg_temp.probe('its item and total',
  $p$SELECT i.name || ' ' || o.subtotal FROM orders.order_items i JOIN orders.orders o ON o.id = i.order_id
      WHERE o.id = '00000000-0000-0000-0000-0000000005b5'$p$, '{}', NULL, 'att-a.example.com 9.00');
SELECT pg_temp.probe('client three: the notes are staff only',
  $p$SELECT count(*) FROM orders.site_internal_notes('00000000-0000-0000-0000-0000000005c5')$p$,
  '{site_internal_notes,group_not_found}', 'OR075');
SELECT pg_temp.probe('client three: the costs are staff only',
  $p$SELECT count(*) FROM orders.site_internal_metrics('00000000-0000-0000-0000-0000000005c5')$p$,
  '{site_internal_metrics,group_not_found}', 'OR075');
SELECT pg_temp.probe('client three: set_site_internal_notes refused',
  $p$SELECT orders.set_site_internal_notes(x.id, 'pwn') FROM orders.order_site_selections x
      WHERE x.domain = 'att-a.example.com'$p$, '{set_site_internal_notes}', 'OR076');
SELECT pg_temp.probe('recount_site_counts refused', $p$SELECT count(*) FROM orders.recount_site_counts()$p$,
  '{recount_site_counts}', '42501');
SELECT pg_temp.probe('client three takes its order to payment (gate client_review passes, stamps)',
  $p$SELECT (orders.transition('00000000-0000-0000-0000-0000000005b5', 'payment_pending')).reviewed_by$p$,
  '{transition,status_guard,status_audit,client_review_complete}', NULL, '66666666-6666-6666-6666-666666666666');
SELECT pg_temp.probe('client three takes its approval back before paying (the item goes)',
  $p$SELECT (orders.review_sites('00000000-0000-0000-0000-0000000005c5',
       '[{"domain": "att-a.example.com", "status": "alternate"}]')).approved_count$p$,
  '{review_sites,apply_review,lock_review,site_items,site_counts,group_counts_guard,site_review_columns,booked_item_guard,item_booked_places,site_item_guard}', NULL, '0');
SELECT pg_temp.probe('client three: no item left',
  $p$SELECT count(*) FROM orders.order_items WHERE order_id = '00000000-0000-0000-0000-0000000005b5'$p$, '{}', NULL, '0');
SELECT set_config('request.jwt.claims', '{"sub":"22222222-2222-2222-2222-222222222222","role":"authenticated"}', true);
SELECT pg_temp.probe('client two: client three''s group does not exist for it',
  $p$SELECT orders.review_sites('00000000-0000-0000-0000-0000000005c5', '[]')$p$,
  '{review_sites,apply_review,group_not_found}', 'OR075');
SELECT pg_temp.probe('client two: sees none of its sites, so lock_review locks none',
  $p$SELECT orders.lock_review('00000000-0000-0000-0000-0000000005c5',
       ARRAY(SELECT x.id FROM orders.order_site_selections x WHERE x.order_group_id = '00000000-0000-0000-0000-0000000005c5'), true)$p$,
  '{lock_review}', NULL, '0');
SELECT pg_temp.probe('client two: shares nothing of it',
  $p$SELECT orders.create_share_token('00000000-0000-0000-0000-0000000005b5')$p$, '{create_share_token}', 'OR006');

SELECT set_config('role', 'anon', true);
SELECT set_config('request.jwt.claims', '{"role":"anon"}', true);
SELECT pg_temp.probe('anon: a shop order through an open webhook',
  $p$SELECT orders.ingest_webhook('api-open', '{"id": 9101, "email": "att@example.com", "total_price": "20.00",
     "line_items": [{"sku": "API-LAMP", "name": "API Lamp", "quantity": 1, "price": "20.00"}]}', NULL, 'att-d1') ->> 'status'$p$,
  '{ingest_webhook,webhook_ingest,xact_lock,require_read_committed,webhook_value,webhook_amount,webhook_insert_items,hold_order_workflows,judge_order_workflows,webhook_phone_key,webhook_email_key}', NULL, 'created');
SELECT pg_temp.probe('anon: webhook_time is the owner''s (0.35.0)',
  $p$SELECT orders.webhook_time('14/03/2025 10:21:07') IS NULL AND orders.webhook_time('2025-03-14T10:21:07Z') IS NOT NULL$p$,
  '{webhook_time}', '42501');
SELECT pg_temp.probe('anon: the same shop order again',
  $p$SELECT orders.ingest_webhook('api-open', '{"id": 9101, "email": "att@example.com"}', NULL, 'att-d2') ->> 'status'$p$,
  '{ingest_webhook,webhook_ingest}', NULL, 'duplicate');
SELECT pg_temp.probe('anon: a wrongly signed delivery',
  $p$SELECT orders.ingest_webhook('api-shop', '{"id": 9102}', 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=', 'att-d3') ->> 'http_status'$p$,
  '{ingest_webhook,webhook_ingest,webhook_signature_ok}', NULL, '401');
SELECT pg_temp.probe('anon: a malformed body',
  $p$SELECT orders.ingest_webhook_body('api-open', '{"id": ', NULL, 'att-d4') ->> 'http_status'$p$,
  '{ingest_webhook_body,webhook_ingest}', NULL, '400');
SELECT pg_temp.probe('anon: where the known shop order is (a node of a cluster asked by the proxy)',
  $p$SELECT (orders.webhook_placement('api-open', '{"id": 9101, "email": "att@example.com"}') ->> 'known')
            || ' ' || (orders.webhook_placement('api-open', '{"id": 9101, "email": "att@example.com"}') ? 'route')$p$,
  '{webhook_placement,webhook_value}', NULL, 'true true');
SELECT pg_temp.probe('anon: nothing about a signed webhook without its signature',
  $p$SELECT orders.webhook_placement('api-shop', '{"id": 9102}', 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=')::text$p$,
  '{webhook_placement,webhook_signature_ok}', NULL, '{"known": false}');
SELECT pg_temp.probe('anon: webhook_mapping',
  $p$SELECT orders.webhook_mapping('woocommerce') -> 'order' ->> 'total'$p$, '{webhook_mapping}', NULL, 'total');
SELECT pg_temp.probe('anon: purge_webhook_logs refused',
  $p$SELECT orders.purge_webhook_logs()$p$, '{purge_webhook_logs}', '42501');
SELECT pg_temp.probe('anon: the signature check is nobody''s oracle',
  $p$SELECT orders.webhook_signature_ok('k', 'b', 's')$p$, '{}', '42501');
SELECT pg_temp.probe('anon: the activity log is the owner''s (track)',
  $p$SELECT orders.track_activity('orders.leads')$p$, '{track_activity}', '42501');
SELECT pg_temp.probe('anon: the activity log is the owner''s (untrack)',
  $p$SELECT orders.untrack_activity('orders.orders')$p$, '{untrack_activity}', '42501');
SELECT pg_temp.probe('anon: the activity log is the owner''s (purge)',
  $p$SELECT orders.purge_activity_logs()$p$, '{purge_activity_logs}', '42501');
SELECT pg_temp.probe('anon: the notifications'' purge is the owner''s (0.45.0)',
  $p$SELECT orders.purge_notifications()$p$, '{purge_notifications}', '42501');
SELECT pg_temp.probe('anon: the workflow runs'' purge is the owner''s (0.45.0)',
  $p$SELECT orders.purge_workflow_executions()$p$, '{purge_workflow_executions}', '42501');
SELECT pg_temp.probe('anon: erasing a customer is the owner''s (0.45.0)',
  $p$SELECT orders.erase_customer('00000000-0000-0000-0000-000000000001')$p$, '{erase_customer}', '42501');
SELECT pg_temp.probe('anon: the outbox is no API''s (enqueue)',
  $p$SELECT orders.enqueue_outbox('sms', '{}')$p$, '{enqueue_outbox}', '42501');
SELECT pg_temp.probe('anon: the outbox is no API''s (claim)',
  $p$SELECT count(*) FROM orders.claim_outbox('att')$p$, '{claim_outbox}', '42501');
SELECT pg_temp.probe('anon: the outbox is no API''s (revive)',
  $p$SELECT orders.revive_outbox('00000000-0000-0000-0000-000000000999')$p$, '{revive_outbox}', '42501');
SELECT pg_temp.probe('anon: the outbox is no API''s (purge)',
  $p$SELECT orders.purge_outbox()$p$, '{purge_outbox}', '42501');
SELECT pg_temp.probe('anon: may not silence the announcements of its changes (orders.notify)',
  $p$SET orders.notify = off$p$, '{}', '42501');
SELECT pg_temp.probe('anon: may not keep the announcer from starting (orders.announcer)',
  $p$SET orders.announcer = off$p$, '{}', '42501');
SELECT pg_temp.probe('anon: announcing status changes is the owner''s',
  $p$SELECT orders.announce_status_changes()$p$, '{announce_status_changes}', '42501');
SELECT pg_temp.probe('anon: the outbox is no API''s (complete)',
  $p$SELECT orders.complete_outbox('00000000-0000-0000-0000-000000000999')$p$, '{complete_outbox}', '42501');
SELECT pg_temp.probe('anon: shared_order',
  format($p$SELECT orders.shared_order(%L) ->> 'order_number'$p$, :'att_tok'), '{shared_order,share_token_row,share_creator_may_share,act_as,act_back,shares_order}', NULL, 'ATT-5');
SELECT pg_temp.probe('anon: share_review_sites',
  format($p$SELECT orders.share_review_sites(%L, '00000000-0000-0000-0000-0000000005c5',
            '[{"domain": "att-a.example.com", "status": "approved"}]') ->> 'approved'$p$, :'att_tok'),
  '{share_review_sites,share_token_row,apply_review,normalize_domain,site_items,site_counts,group_counts_guard}', NULL, '1');
SELECT pg_temp.probe('anon: a revoked link',
  format($p$SELECT orders.shared_order(%L)$p$, :'att_tok2'), '{shared_order,share_token_row}', 'OR080');
SELECT pg_temp.probe('anon: converting needs an account',
  format($p$SELECT orders.convert_share_token(%L)$p$, :'att_tok'), '{convert_share_token,share_token_row,actor_account}', 'OR082');
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"77777777-7777-7777-7777-777777777777","role":"authenticated"}', true);
SELECT pg_temp.probe('another account cannot convert an owned customer''s order',
  format($p$SELECT orders.convert_share_token(%L)$p$, :'att_tok'), '{convert_share_token,share_token_row}', 'OR083');
SELECT set_config('request.jwt.claims', '{"sub":"66666666-6666-6666-6666-666666666666","role":"authenticated"}', true);
SELECT pg_temp.probe('the owner converts its own link',
  format($p$SELECT orders.convert_share_token(%L)$p$, :'att_tok'), '{convert_share_token,share_token_row}', NULL,
  '00000000-0000-0000-0000-0000000000a3');
SELECT pg_temp.probe('a used link',
  format($p$SELECT orders.shared_order(%L)$p$, :'att_tok'), '{shared_order,share_token_row}', 'OR080');

---------------------------------------------------------------------------
-- anon
---------------------------------------------------------------------------
SELECT set_config('role', 'anon', true);
SELECT set_config('request.jwt.claims', '{"role":"anon"}', true);
SELECT pg_temp.probe('anon: available_slots',
  $p$SELECT count(*) FROM orders.available_slots('00000000-0000-0000-0000-0000000000f0', now(), now() + interval '7 days')$p$,
  '{available_slots}', NULL, '1');
SELECT pg_temp.probe('anon: status_category', $p$SELECT orders.status_category('booking', 'no_show')$p$,
  '{status_category}', NULL, 'cancelled');
SELECT pg_temp.probe('anon: current_actor', $p$SELECT orders.current_actor()$p$, '{current_actor}', NULL, 'anon');
SELECT pg_temp.probe('anon: product_catalog',
  $p$SELECT string_agg(name || ' ' || price, ',') FROM orders.product_catalog() WHERE sku = 'API-LAMP'$p$,
  '{product_catalog,catalog_rows}', NULL, 'API Lamp 0.00');
SELECT pg_temp.probe('anon: transition refused',
  $p$SELECT orders.transition('00000000-0000-0000-0000-0000000000b1', 'cancelled')$p$, '{transition}', '42501');
SELECT pg_temp.probe('anon: reserve_time_slot refused',
  $p$SELECT orders.reserve_time_slot('00000000-0000-0000-0000-0000000000f1')$p$, '{reserve_time_slot}', '42501');

---------------------------------------------------------------------------
-- Workflows (issue 13): the admin defines them (validated as the owner);
-- a rep's status change, a tag and a shop's webhook run them as the owner;
-- run_workflow is the admin's; the rest is the owner's.
---------------------------------------------------------------------------
SELECT set_config('role', 'staff', true);
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
SELECT pg_temp.probe('admin: Client Two gets a phone (for the SMS step)',
  $p$UPDATE orders.customers SET phone = '+20 100 000 0002' WHERE id = '00000000-0000-0000-0000-0000000000a2'$p$,
  '{set_updated_at}');
SELECT pg_temp.probe('admin creates an order_status workflow, naming another creator',
  $p$INSERT INTO orders.workflows (name, trigger_type, trigger_config, workflow_steps, created_by_user_id)
     VALUES ('att confirmed', 'order_status',
             '{"type": "order_status", "conditions": {"status": ["confirmed"], "lifecycle": ["cod"],
               "payment_status": ["pending"], "min_order_value": 0}}',
             '[{"id": "tag", "type": "update_customer_tag",
                "config": {"tag_id": "att-buyer", "label": "Buyer", "color": "green", "condition": "total_orders >= 1"}},
               {"id": "rep", "type": "send_notification", "config": {"target": "assigned_rep", "title": "{{order_number}} confirmed"}},
               {"id": "sms", "type": "send_notification",
                "config": {"target": "customer", "channel": "sms", "template": "order_confirmed", "message": "Hello {{customer_name}}"}},
               {"id": "task", "type": "create_task", "order": 9,
                "config": {"assigned_to": "admin", "title": "Ship {{order_number}}", "due_days": 1}}]',
             '00000000-0000-0000-0000-0000000000e7')
     RETURNING created_by_user_id$p$,
  '{check_workflow,check_workflow_trigger,check_workflow_steps,check_workflow_keys,check_workflow_recipient,
    workflow_condition,workflows_changed,sync_workflow_job,track_changes}',
  NULL, '00000000-0000-0000-0000-0000000000e8');
SELECT pg_temp.probe('admin adds a staff member',
  $p$INSERT INTO orders.staff (id, account_id, full_name, role)
     VALUES ('00000000-0000-0000-0000-0000000005e1', '00000000-0000-0000-0000-0000000005e1', 'Att Leaver', 'manager')
     RETURNING full_name$p$, '{staff_columns_guard,track_changes}', NULL, 'Att Leaver');
SELECT pg_temp.probe('... and deletes it (its workflows would stop: workflow_author_deleted; its holds lapse: staff_holds_lapse)',
  $p$DELETE FROM orders.staff WHERE id = '00000000-0000-0000-0000-0000000005e1' RETURNING full_name$p$,
  '{workflow_author_deleted,staff_holds_lapse,track_changes}', NULL, 'Att Leaver');
SELECT pg_temp.probe('admin creates a customer_tag workflow',
  $p$INSERT INTO orders.workflows (name, trigger_type, trigger_config, workflow_steps)
     VALUES ('att vip', 'customer_tag', '{"tag_id": "att-vip"}',
             '[{"id": "call", "type": "create_task", "config": {"assigned_to": "admin", "title": "Call {{customer_name}}"}}]')
     RETURNING trigger_type$p$, '{check_workflow,check_workflow_trigger,check_workflow_steps}', NULL, 'customer_tag');
SELECT pg_temp.probe('admin creates a webhook workflow',
  $p$INSERT INTO orders.workflows (name, trigger_type, trigger_config, workflow_steps)
     VALUES ('att shop', 'webhook', '{"event_types": ["order.created"]}',
             '[{"id": "tell", "type": "send_notification", "config": {"target": "admin", "title": "Shop order {{order_number}}"}}]')
     RETURNING trigger_type$p$, '{check_workflow,check_workflow_trigger,json_string_list}', NULL, 'webhook');
SELECT pg_temp.probe('admin creates a time-based workflow',
  $p$INSERT INTO orders.workflows (name, trigger_type, trigger_config, workflow_steps)
     VALUES ('att daily', 'time_based', '{"schedule": "*/15 9-17 * * 1-5", "timezone": "Africa/Cairo"}',
             '[{"id": "sum", "type": "create_task", "config": {"assigned_to": "admin", "title": "Daily check"}}]')
     RETURNING trigger_type$p$, '{check_workflow,check_workflow_trigger,schedule_matches,cron_field_values}', NULL, 'time_based');
SELECT pg_temp.probe('admin creates a manual workflow, inactive',
  $p$INSERT INTO orders.workflows (name, trigger_type, workflow_steps, is_active)
     VALUES ('att manual off', 'manual', '[{"type": "create_task", "config": {"assigned_to": "assigned_rep", "title": "Look"}}]', false)
     RETURNING is_active$p$, '{check_workflow}', NULL, 'false');
SELECT pg_temp.probe('admin creates a manual workflow',
  $p$INSERT INTO orders.workflows (name, trigger_type, workflow_steps)
     VALUES ('att manual', 'manual', '[{"id": "ping", "type": "send_notification", "config": {"target": "assigned_rep", "title": "Look at {{order_number}}"}}]')
     RETURNING trigger_type$p$, '{check_workflow}', NULL, 'manual');
SELECT pg_temp.probe('a workflow with an unknown condition key (OR110)',
  $p$INSERT INTO orders.workflows (name, trigger_type, trigger_config, workflow_steps)
     VALUES ('att bad', 'order_status', '{"conditions": {"colour": "red"}}',
             '[{"type": "create_task", "config": {"assigned_to": "admin", "title": "x"}}]')$p$,
  '{check_workflow,check_workflow_trigger,check_workflow_keys}', 'OR110');
SELECT pg_temp.probe('a workflow with an unknown step type (OR111)',
  $p$INSERT INTO orders.workflows (name, trigger_type, workflow_steps)
     VALUES ('att bad', 'manual', '[{"id": "p", "type": "send_pigeon", "config": {}}]')$p$,
  '{check_workflow,check_workflow_steps}', 'OR111');
SELECT pg_temp.probe('a workflow posting to the metadata service (0.39.0: OR111)',
  $p$INSERT INTO orders.workflows (name, trigger_type, workflow_steps)
     VALUES ('att bad', 'manual', '[{"id": "p", "type": "send_notification",
              "config": {"channel": "webhook", "url": "http://169.254.169.254/latest/meta-data/", "title": "x"}}]')$p$,
  '{check_workflow,check_workflow_steps,check_workflow_keys,check_webhook_url}', 'OR111');
SELECT pg_temp.probe('a workflow with a bad schedule (OR112)',
  $p$INSERT INTO orders.workflows (name, trigger_type, trigger_config, workflow_steps)
     VALUES ('att bad', 'time_based', '{"schedule": "61 * * * *"}',
             '[{"type": "create_task", "config": {"assigned_to": "admin", "title": "x"}}]')$p$,
  '{check_workflow,check_workflow_trigger,schedule_matches,cron_field_values}', 'OR112');
SELECT pg_temp.probe('a workflow with a bad condition (OR113)',
  $p$INSERT INTO orders.workflows (name, trigger_type, workflow_steps)
     VALUES ('att bad', 'manual', '[{"type": "update_customer_tag", "config": {"tag_id": "x", "condition": "city > ''Cairo''"}}]')$p$,
  '{check_workflow,check_workflow_steps,workflow_condition}', 'OR113');
SELECT pg_temp.probe('none of the refused workflows was stored',
  $p$SELECT count(*) FROM orders.workflows WHERE name = 'att bad'$p$, '{}', NULL, '0');
SELECT pg_temp.probe('cron_jobs is the owner''s, also for the admin',
  $p$SELECT count(*) FROM orders.cron_jobs() WHERE jobname LIKE 'orders-workflow-%'$p$,
  '{cron_jobs}', '42501');
SELECT pg_temp.probe('admin switches the time-based workflow off (the creator stays)',
  $p$UPDATE orders.workflows SET is_active = false, created_by_user_id = NULL WHERE name = 'att daily'
     RETURNING created_by_user_id$p$, '{check_workflow,sync_workflow_job,workflows_changed}',
  NULL, '00000000-0000-0000-0000-0000000000e8');
SELECT pg_temp.probe('and deletes it',
  $p$DELETE FROM orders.workflows WHERE name = 'att daily'$p$, '{sync_workflow_job,workflows_changed}');
SELECT coalesce(pg_temp.probe('admin makes a COD order for Client Two, worked by the rep',
  $p$INSERT INTO orders.orders (customer_id, lifecycle, assigned_rep_id)
     VALUES ('00000000-0000-0000-0000-0000000000a2', 'cod', '00000000-0000-0000-0000-0000000000e7') RETURNING id$p$,
  '{fire_order_workflows,active_trigger_workflows,next_order_number,customer_stats}'),
  '00000000-0000-0000-0000-000000000000') AS wf_order \gset
-- run_workflow: the admin's (refusals before anything runs)
SELECT pg_temp.probe('admin runs a manual workflow for an order',
  format($p$SELECT (orders.run_workflow(w.id, %L)).status FROM orders.workflows w WHERE w.name = 'att manual'$p$, :'wf_order'),
  '{run_workflow,execute_workflow,workflow_author_refusal,workflow_notify_step}', NULL, 'completed');
-- move_stock (0.22.0): the admin's (products.edit)
SELECT pg_temp.probe('admin receives two API lamps (move_stock)',
  $p$SELECT (orders.move_stock('00000000-0000-0000-0000-00000000a7a1', '00000000-0000-0000-0000-0000000000e1', 2)).quantity$p$,
  '{move_stock}', NULL, '2');
SELECT pg_temp.probe('move_stock: the same movement again answers the same',
  $p$SELECT (orders.move_stock('00000000-0000-0000-0000-00000000a7a1', '00000000-0000-0000-0000-0000000000e1', 2)).quantity$p$,
  '{move_stock}', NULL, '2');
SELECT pg_temp.probe('... and writes them off again',
  $p$SELECT (orders.move_stock('00000000-0000-0000-0000-00000000a7a3', '00000000-0000-0000-0000-0000000000e1', -2)).quantity$p$,
  '{move_stock}', NULL, '-2');
SELECT pg_temp.probe('move_stock: taking more than is in stock (OR050)',
  $p$SELECT orders.move_stock('00000000-0000-0000-0000-00000000a7a2', '00000000-0000-0000-0000-0000000000e1', -100000)$p$,
  '{move_stock}', 'OR050');
SELECT pg_temp.probe('run_workflow: no workflow id (22004)',
  $p$SELECT orders.run_workflow(NULL)$p$, '{run_workflow}', '22004');
SELECT pg_temp.probe('run_workflow: an unknown workflow (OR114)',
  $p$SELECT orders.run_workflow('00000000-0000-0000-0000-00000000ffff')$p$, '{run_workflow}', 'OR114');
SELECT pg_temp.probe('run_workflow: an inactive workflow (OR115)',
  $p$SELECT orders.run_workflow(w.id) FROM orders.workflows w WHERE w.name = 'att manual off'$p$, '{run_workflow}', 'OR115');
SELECT pg_temp.probe('run_workflow: an unknown order (OR006)',
  $p$SELECT orders.run_workflow(w.id, '00000000-0000-0000-0000-00000000ffff') FROM orders.workflows w WHERE w.name = 'att manual'$p$,
  '{run_workflow}', 'OR006');
SELECT pg_temp.probe('run_workflow: the order of another customer (OR116)',
  format($p$SELECT orders.run_workflow(w.id, %L, '00000000-0000-0000-0000-0000000000a1') FROM orders.workflows w
             WHERE w.name = 'att manual'$p$, :'wf_order'), '{run_workflow}', 'OR116');
SELECT pg_temp.probe('run_workflow: an unknown customer (OR116)',
  $p$SELECT orders.run_workflow(w.id, NULL, '00000000-0000-0000-0000-00000000ffff') FROM orders.workflows w
      WHERE w.name = 'att manual'$p$, '{run_workflow}', 'OR116');

SELECT set_config('role', 'lead_worker', true);
SELECT set_config('request.jwt.claims', '{"sub":"55555555-5555-5555-5555-555555555555","role":"lead_worker"}', true);
SELECT pg_temp.probe('the rep confirms the order: its workflow runs as the owner',
  format($p$SELECT (orders.transition(%L, 'confirmed')).status$p$, :'wf_order'),
  '{transition,fire_order_workflows,execute_workflow,workflow_tag_step,workflow_condition,workflow_condition_holds,
    workflow_notify_step,workflow_render,workflow_recipients,workflow_task_step,enqueue_outbox,announce_notification}',
  NULL, 'confirmed');
SELECT pg_temp.probe('the run, as the rep reads it',
  format($p$SELECT e.status || ' ' || pg_catalog.jsonb_array_length(e.steps_completed) || ' ' || (e.trigger_event ->> 'previous_status')
              || ' ' || (e.steps_completed -> 0 ->> 'step_id')
             FROM orders.workflow_executions e JOIN orders.workflows w ON w.id = e.workflow_id
            WHERE e.order_id = %L AND w.name = 'att confirmed'$p$, :'wf_order'), '{}', NULL, 'completed 4 new task');  -- "order": 9 runs first
SELECT pg_temp.probe('the rep''s notification',
  format($p$SELECT n.title = o.order_number || ' confirmed' FROM orders.unread_notifications() n, orders.orders o
             WHERE o.id = %L AND n.data ->> 'order_id' = %L AND n.data ->> 'workflow' = 'att confirmed'$p$,
         :'wf_order', :'wf_order'), '{unread_notifications}', NULL, 'true');
SELECT pg_temp.probe('the rep cannot write a run',
  format($p$INSERT INTO orders.workflow_executions (workflow_id, order_id, status)
            SELECT w.id, %L, 'completed' FROM orders.workflows w$p$, :'wf_order'), '{}', '42501');
SELECT pg_temp.probe('the rep cannot read the outbox', $p$SELECT count(*) FROM orders.outbox$p$, '{}', '42501');
SELECT pg_temp.probe('the rep cannot run a workflow',
  $p$SELECT orders.run_workflow(w.id) FROM orders.workflows w WHERE w.name = 'att manual'$p$, '{run_workflow}', '42501');
SELECT pg_temp.probe('the rep cannot define a workflow',
  $p$INSERT INTO orders.workflows (name, trigger_type, workflow_steps)
     VALUES ('att rep', 'manual', '[{"type": "create_task", "config": {"assigned_to": "admin", "title": "x"}}]')$p$,
  '{check_workflow}', '42501');

SELECT set_config('role', 'staff', true);
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
SELECT pg_temp.probe('the run tagged Client Two and told the admin',
  $p$SELECT (SELECT pg_catalog.jsonb_path_query_first(c.tags, '$[*] ? (@.id == "att-buyer")') ->> 'label'
               FROM orders.customers c WHERE c.id = '00000000-0000-0000-0000-0000000000a2')
            || ' ' || (SELECT count(*) FROM orders.unread_notifications() n WHERE n.title LIKE 'Ship %' AND n.data ? 'due_date')$p$,
  '{}', NULL, 'Buyer 1');
SELECT pg_temp.probe('admin tags Client Two VIP: the customer_tag workflow runs',
  $p$UPDATE orders.customers SET tags = tags || '["att-vip"]' WHERE id = '00000000-0000-0000-0000-0000000000a2'$p$,
  '{fire_workflows,execute_workflow,workflow_task_step,workflow_recipients,workflow_render}');
SELECT pg_temp.probe('its run',
  $p$SELECT e.status || ' ' || (e.trigger_event ->> 'tag_id') FROM orders.workflow_executions e
      JOIN orders.workflows w ON w.id = e.workflow_id WHERE w.name = 'att vip'$p$, '{}', NULL, 'completed att-vip');

SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}', true);
SELECT pg_temp.probe('a client sees no workflow', $p$SELECT count(*) FROM orders.workflows$p$, '{}', NULL, '0');
SELECT pg_temp.probe('a client cannot run one',
  $p$SELECT orders.run_workflow('00000000-0000-0000-0000-00000000ffff')$p$, '{run_workflow}', '42501');
SELECT pg_temp.probe('run_scheduled_workflow refused',
  $p$SELECT orders.run_scheduled_workflow('00000000-0000-0000-0000-00000000ffff')$p$, '{run_scheduled_workflow}', '42501');
SELECT pg_temp.probe('execute_workflow refused',
  $p$SELECT orders.execute_workflow('00000000-0000-0000-0000-00000000ffff', NULL, NULL, '{}')$p$, '{execute_workflow}', '42501');
SELECT pg_temp.probe('fire_webhook_workflows refused',
  $p$SELECT orders.fire_webhook_workflows('00000000-0000-0000-0000-00000000ffff', NULL, 'order.created', NULL)$p$,
  '{fire_webhook_workflows}', '42501');
SELECT pg_temp.probe('active_trigger_workflows refused',
  $p$SELECT count(*) FROM orders.active_trigger_workflows()$p$, '{active_trigger_workflows}', '42501');
-- (0.43.0)
SELECT pg_temp.probe('schedule_due refused',
  $p$SELECT orders.schedule_due('* * * * *', 'UTC', now())$p$, '{schedule_due}', '42501');
SELECT pg_temp.probe('purge_cutoff (PUBLIC: a purge runs with its caller''s rights)',
  $p$SELECT orders.purge_cutoff('x', interval '1 day') < now()$p$, '{purge_cutoff}', NULL, 'true');
SELECT pg_temp.probe('the business day and the shop''s currency',
  $p$SELECT orders.business_date() = (now() AT TIME ZONE orders.business_timezone())::date AND orders.default_currency() = 'USD'$p$,
  '{business_date,business_timezone,default_currency}', NULL, 'true');
SELECT pg_temp.probe('a site''s price in cents',
  $p$SELECT orders.site_price_valid('12.50') AND NOT orders.site_price_valid('12.345')$p$, '{site_price_valid}', NULL, 'true');

SELECT set_config('role', 'anon', true);
SELECT set_config('request.jwt.claims', '{"role":"anon"}', true);
SELECT pg_temp.probe('anon: a shop order runs the webhook workflow',
  $p$SELECT orders.ingest_webhook('api-open', '{"id": 9103, "email": "att@example.com", "total_price": "5.00"}', NULL, 'att-d5')
      ->> 'status'$p$,
  '{ingest_webhook,webhook_ingest,fire_webhook_workflows,execute_workflow,workflow_notify_step,workflow_recipients}',
  NULL, 'created');
SELECT pg_temp.probe('anon: run_workflow refused',
  $p$SELECT orders.run_workflow('00000000-0000-0000-0000-00000000ffff')$p$, '{run_workflow}', '42501');
SELECT pg_temp.probe('anon: workflows refused', $p$SELECT count(*) FROM orders.workflows$p$, '{}', '42501');

SELECT set_config('role', 'staff', true);
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
SELECT pg_temp.probe('the webhook run told the admin',
  $p$SELECT e.status || ' ' || (e.trigger_event ->> 'event_type') || ' '
            || (SELECT count(*) FROM orders.unread_notifications() n WHERE n.title LIKE 'Shop order %')
       FROM orders.workflow_executions e JOIN orders.workflows w ON w.id = e.workflow_id WHERE w.name = 'att shop'$p$,
  '{}', NULL, 'completed order.created 1');

---------------------------------------------------------------------------
-- The attacker clears its tools away; the checks read the outcome.
---------------------------------------------------------------------------
SELECT set_config('role', 'authenticated', true);
SET LOCAL client_min_messages = warning;
DROP SCHEMA attack CASCADE;
DO $$
DECLARE
    t pg_catalog.name;
BEGIN
    FOR t IN SELECT typname FROM pg_catalog.pg_type
              WHERE typnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema()
                AND typtype OPERATOR(pg_catalog.=) 'd' LOOP
        EXECUTE format('DROP DOMAIN pg_temp.%I', t);
    END LOOP;
END
$$;
SELECT set_config('role', 'staff', true);
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);

SELECT is_empty($$SELECT label FROM pg_temp.traps
                  EXCEPT SELECT what FROM pg_temp.pwn_log WHERE probe = 'trap self-test' AND NOT hit$$,
                'every planted trap (' || (SELECT count(*) FROM pg_temp.traps)
                || ' types, functions, aggregates, operators) resolves before pg_catalog''s for the attacker');
SELECT is_empty($$SELECT label, ran_as, expect_state, got_state, expect_result, result, got_message
                    FROM pg_temp.probes WHERE NOT ok AND label NOT IN (SELECT label FROM pg_temp.known_defects) ORDER BY n$$,
                'every request (' || (SELECT count(*) FROM pg_temp.probes) || ') had its normal outcome');
SELECT is_empty($$SELECT label FROM pg_temp.known_defects EXCEPT SELECT label FROM pg_temp.probes$$,
                'every known defect names a request that was made');
SELECT todo(r, 1) FROM (SELECT string_agg(reason, '; ' ORDER BY label) AS r FROM pg_temp.known_defects) d WHERE r IS NOT NULL;
SELECT is_empty($$SELECT label, ran_as, expect_state, got_state, expect_result, result, got_message
                    FROM pg_temp.probes WHERE NOT ok AND label IN (SELECT label FROM pg_temp.known_defects) ORDER BY n$$,
                'the requests of the known defects had their normal outcome too');
SELECT is_empty($$SELECT proname FROM pg_proc WHERE pronamespace = 'orders'::regnamespace
                  EXCEPT SELECT unnest(covers) FROM pg_temp.probes
                  EXCEPT SELECT proname FROM pg_temp.exempt$$,
                'every function of the extension is exercised by a request (or exempt, with its reason)');
SELECT is_empty($$SELECT proname FROM pg_temp.exempt
                  EXCEPT SELECT proname FROM pg_proc WHERE pronamespace = 'orders'::regnamespace$$,
                'every exemption names a function of the extension');

-- what the issue is about
SELECT is((SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM pg_temp.pwn_hits), 0::bigint,
          'no planted code ran as another role, not even in a statement that failed');
SELECT is_empty($$SELECT n, probe, what, cur AS ran_as, sess AS session, req_role FROM pg_temp.pwn_log
                   WHERE hit ORDER BY n$$,
                'nothing planted ran as the owner (log of the statements that succeeded)');
SELECT is_empty($$SELECT rolname FROM pg_roles
                   WHERE rolsuper AND rolname IN ('authenticator', 'authenticated', 'anon', 'staff', 'lead_worker')$$,
                'neither the login nor any role it switches to became a superuser');

-- and the maintenance done as the owner was done right
SELECT is((SELECT total_orders || '/' || returned_orders || '/' || total_spent || '/' || return_rate
             FROM orders.customers WHERE id = '00000000-0000-0000-0000-0000000000a1'),
          '3/1/0.00/33.33', 'customer statistics followed every change (orders/returned/spent/return rate)');
SELECT is((SELECT string_agg(type || ' ' || amount || ' by ' || coalesce(recorded_by_user_id::text, '-'), ', ' ORDER BY type)
             FROM orders.financial_transactions WHERE order_id = '00000000-0000-0000-0000-0000000000b3' AND automatic),
          'refund 40.00 by 00000000-0000-0000-0000-0000000000e8, revenue 40.00 by 00000000-0000-0000-0000-0000000000e8',
          'the collected order posted its revenue and, returned, its refund, recorded as the admin');
SELECT is((SELECT stock_quantity::integer FROM orders.products WHERE id = '00000000-0000-0000-0000-0000000000e1'), 5,
          'every lamp taken went back to stock');
SELECT is((SELECT changed_by || ': ' || notes FROM orders.order_history
            WHERE order_id = '00000000-0000-0000-0000-0000000000b4' AND new_status = 'completed'),
          '55555555-5555-5555-5555-555555555555: auto: all 2 leads delivered', 'the campaign completed itself, in the worker''s name');
SELECT is((SELECT string_agg(new_status || coalesce(' key ' || idempotency_key, '') || ' by ' || changed_by, ', ' ORDER BY id)
             FROM orders.order_history WHERE order_id = '00000000-0000-0000-0000-0000000000b1'),
          'analyzing key attack-key-1 by 11111111-1111-1111-1111-111111111111, configuring by 11111111-1111-1111-1111-111111111111',
          'history of the client''s order: once per change, with the key');
SELECT is((SELECT string_agg(status || coalesce(' item ' || order_item_id, ''), ', ' ORDER BY order_item_id NULLS FIRST)
             FROM orders.slot_reservations WHERE holder = '11111111-1111-1111-1111-111111111111'),
          'released, released item ' || :'item',
          'both holds were given back: one released, the booked one by the cancellation');

SELECT * FROM finish();
ROLLBACK;
