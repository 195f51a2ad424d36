-- The activity log (issue 13): one row per changed row of a tracked table,
-- only the changed columns, the actor and their staff id, the client
-- address when the claims are believed; secrets redacted; nothing for an
-- UPDATE that changes nothing; nothing while the owner loads with COPY
-- (pg_restore); track_activity on any table; nobody else writes the log.
BEGIN;
SELECT plan(65);

-- pg_temp.err(sql) — the SQLSTATE a statement fails with, 'ok' when it passes
CREATE FUNCTION pg_temp.err(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;
DELETE FROM orders.activity_logs;

-- an admin's request (JWT sub 4444…, believed: this is a superuser session)
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"authenticated"}', true);
-- (0.29.0) the last forwarded address: the one the proxy in front of
-- PostgREST appended (the first is whatever the client claimed)
SELECT set_config('request.headers', '{"x-forwarded-for": "6.6.6.6, 203.0.113.7"}', true);
INSERT INTO orders.customers (id, full_name, phone) VALUES ('00000000-0000-0000-0000-00000000ac01', 'Activity Ann', '+1555000');
SELECT is((SELECT concat_ws(' ', action, entity_type, entity_id, actor, user_id, ip_address)
             FROM orders.activity_logs WHERE entity_id = '00000000-0000-0000-0000-00000000ac01'),
          'created customers 00000000-0000-0000-0000-00000000ac01 44444444-4444-4444-4444-444444444444 00000000-0000-0000-0000-0000000000e8 203.0.113.7',
          'an insert: created, the table, the row id, the JWT sub, their staff id, the last forwarded address (not the client''s claim)');
SELECT is((SELECT details -> 'changes' -> 'full_name' FROM orders.activity_logs WHERE entity_id = '00000000-0000-0000-0000-00000000ac01'),
          '{"old": null, "new": "Activity Ann"}'::jsonb, '... its columns as new values');
SELECT ok((SELECT (details -> 'changes' ? 'total_orders') AND NOT (details -> 'changes' ? 'email') AND NOT (details -> 'changes' ? 'updated_at')
             FROM orders.activity_logs WHERE entity_id = '00000000-0000-0000-0000-00000000ac01'),
          '... every non-null column (total_orders 0 too), not the null email, not updated_at');

INSERT INTO orders.orders (id, order_number, customer_id) VALUES
  ('00000000-0000-0000-0000-00000000a001', 'ACT-1', '00000000-0000-0000-0000-00000000ac01');
DELETE FROM orders.activity_logs;
SELECT orders.transition('00000000-0000-0000-0000-00000000a001', 'confirmation_pending');
SELECT is((SELECT string_agg(k, ' ' ORDER BY k) FROM orders.activity_logs l, jsonb_object_keys(l.details -> 'changes') k
            WHERE l.entity_type = 'orders'), 'status',
          'a status change: one row for the order with only status (not updated_at)');
SELECT is((SELECT details -> 'changes' -> 'status' FROM orders.activity_logs WHERE entity_type = 'orders'),
          '{"old": "new", "new": "confirmation_pending"}'::jsonb, '... its old and new value');
DELETE FROM orders.activity_logs;
UPDATE orders.orders SET notes = notes WHERE order_number = 'ACT-1';
SELECT is((SELECT count(*)::int FROM orders.activity_logs), 0, 'an UPDATE that changes nothing (but updated_at) writes nothing');
UPDATE orders.orders SET priority = 2, notes = 'call first' WHERE order_number = 'ACT-1';
SELECT is((SELECT details -> 'changes' FROM orders.activity_logs),
          '{"notes": {"old": null, "new": "call first"}, "priority": {"old": 0, "new": 2}}'::jsonb,
          'two columns changed: both, numbers as JSON numbers');

-- derived writes (0.18.0): a counter, balance or sum the extension keeps
-- from other rows is not logged when the extension writes it (its cause is
-- logged, or is a row of its own); the same columns written by anybody
-- else, or another column a trigger changes on the way, are
INSERT INTO orders.products (id, name, sku, price, stock_quantity) VALUES
  ('00000000-0000-0000-0000-00000000acf1', 'Act kettle', 'ACT-KETTLE', 20, 10);
DELETE FROM orders.activity_logs;
INSERT INTO orders.order_items (order_id, name, quantity, unit_price, product_id) VALUES
  ('00000000-0000-0000-0000-00000000a001', 'Act kettle', 2, 20, '00000000-0000-0000-0000-00000000acf1');
SELECT is((SELECT subtotal FROM orders.orders WHERE order_number = 'ACT-1') || ' ' || (SELECT count(*) FROM orders.activity_logs),
          '40.00 0', 'an item moves its order''s subtotal: that derived write is not logged');
DELETE FROM orders.activity_logs;
SELECT orders.transition('00000000-0000-0000-0000-00000000a001', s)
  FROM unnest(ARRAY['confirmed', 'being_prepared', 'ready_for_pickup', 'out_for_delivery', 'delivered']) s;
UPDATE orders.orders SET payment_status = 'collected' WHERE order_number = 'ACT-1';
CREATE TEMP VIEW act_trail AS
SELECT string_agg(entity_type || ':' || (SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(l.details -> 'changes') k),
                  ' ' ORDER BY l.created_at) AS trail
  FROM orders.activity_logs l;
SELECT is((SELECT stock_quantity FROM orders.products WHERE sku = 'ACT-KETTLE') || ' '
          || (SELECT total_spent FROM orders.customers WHERE id = '00000000-0000-0000-0000-00000000ac01') || ' ' || (SELECT trail FROM act_trail),
          '8 40.00 orders:confirmed_at,status orders:status orders:status orders:shipped_at,status orders:delivered_at,status orders:payment_status',
          'status and payment changes that take stock and count in the customer''s statistics: the changes are logged, the stock and statistics they moved are not');
DELETE FROM orders.activity_logs;
UPDATE orders.products SET stock_quantity = 50 WHERE sku = 'ACT-KETTLE';
UPDATE orders.customers SET total_spent = total_spent WHERE id = '00000000-0000-0000-0000-00000000ac01';
SELECT is((SELECT trail FROM act_trail), 'products:stock_quantity', 'the stock set by hand is logged');
-- a DBA's trigger that changes another column during a derived write: logged, both columns
CREATE FUNCTION pg_temp.repriced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.subtotal IS DISTINCT FROM OLD.subtotal THEN
        NEW.notes := 'repriced';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER repriced BEFORE UPDATE ON orders.orders FOR EACH ROW EXECUTE FUNCTION pg_temp.repriced();
DELETE FROM orders.activity_logs;
INSERT INTO orders.order_items (order_id, name, quantity, unit_price) VALUES
  ('00000000-0000-0000-0000-00000000a001', 'Act gift wrap', 1, 2);
SELECT is((SELECT trail FROM act_trail), 'orders:notes,subtotal,total_amount',
          'a trigger that changes another column on the way: the row is logged, with the subtotal');
DROP TRIGGER repriced ON orders.orders;
-- a DBA's trigger whose own statement writes another column of the same
-- row during a derived write: that statement is logged
CREATE FUNCTION pg_temp.flag_reorder() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.stock_quantity < OLD.stock_quantity THEN
        UPDATE orders.products SET description = 'reorder' WHERE id = NEW.id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER flag_reorder AFTER UPDATE OF stock_quantity ON orders.products
    FOR EACH ROW EXECUTE FUNCTION pg_temp.flag_reorder();
DELETE FROM orders.activity_logs;
INSERT INTO orders.order_items (order_id, name, quantity, unit_price, product_id) VALUES
  ('00000000-0000-0000-0000-00000000a001', 'Act kettle', 1, 20, '00000000-0000-0000-0000-00000000acf1');
SELECT is((SELECT stock_quantity || ' ' || description FROM orders.products WHERE sku = 'ACT-KETTLE') || ' ' || (SELECT trail FROM act_trail),
          '49 reorder products:description',
          'a statement of a DBA''s trigger nested in a derived write (stock taken by an item) is logged; the stock and subtotal are not');
DROP TRIGGER flag_reorder ON orders.products;
-- delivered leads: the lead is the change, the counter follows
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle, leads_purchased) VALUES
  ('00000000-0000-0000-0000-00000000a002', 'ACT-2', '00000000-0000-0000-0000-00000000ac01', 'campaign', 5);
UPDATE orders.orders SET status = 'active' WHERE order_number = 'ACT-2';
DELETE FROM orders.activity_logs;
INSERT INTO orders.leads (customer_id, order_id, status) VALUES
  ('00000000-0000-0000-0000-00000000ac01', '00000000-0000-0000-0000-00000000a002', 'approved');
SELECT is((SELECT leads_delivered FROM orders.orders WHERE order_number = 'ACT-2') || ' ' || coalesce((SELECT trail FROM act_trail), 'nothing logged'),
          '1 nothing logged', 'a delivered lead moves its order''s counter: not logged');

-- (0.31.0) a status change by an actor who is no staff member, without a
-- client address (a DBA, a job, an application over SQL): its history row
-- holds all a log row would, so the log leaves out the status and the
-- stamps its edge sets; another column changed with it is still logged
SELECT set_config('request.jwt.claims', '', true), set_config('request.headers', '', true);
INSERT INTO orders.orders (id, order_number, customer_id) VALUES
  ('00000000-0000-0000-0000-00000000a003', 'ACT-3', '00000000-0000-0000-0000-00000000ac01');
DELETE FROM orders.activity_logs;
SELECT orders.transition('00000000-0000-0000-0000-00000000a003', 'confirmation_pending');
UPDATE orders.orders SET status = 'confirmed' WHERE order_number = 'ACT-3';
SELECT is((SELECT count(*) FROM orders.activity_logs) || ' '
          || (SELECT string_agg(old_status || '>' || new_status || ' ' || changed_by, ', ' ORDER BY id)
                FROM orders.order_history WHERE order_id = '00000000-0000-0000-0000-00000000a003') || ' '
          || (SELECT confirmed_at IS NOT NULL FROM orders.orders WHERE order_number = 'ACT-3'),
          '0 new>confirmation_pending postgres, confirmation_pending>confirmed postgres true',
          'status changes by a role that is no staff member, no address: history rows only (the stamp set), no activity row');
UPDATE orders.orders SET status = 'being_prepared', priority = 1 WHERE order_number = 'ACT-3';
SELECT is((SELECT trail FROM act_trail), 'orders:priority',
          '... a status change with another column: that column is logged, the status is history''s');
-- still logged: a staff member (the row's user_id), a client address, the
-- extension's own change (a campaign completing itself), status_audit
-- disabled; a status a BEFORE trigger set has its history row (0.31.0)
DELETE FROM orders.activity_logs;
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"authenticated"}', true);
UPDATE orders.orders SET status = 'ready_for_pickup' WHERE order_number = 'ACT-3';
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}', true);
SELECT set_config('request.headers', '{"x-forwarded-for": "203.0.113.9"}', true);
UPDATE orders.orders SET status = 'out_for_delivery' WHERE order_number = 'ACT-3';
SELECT set_config('request.jwt.claims', '', true), set_config('request.headers', '', true);
SELECT is((SELECT string_agg(concat_ws(' ', actor, user_id, ip_address, details -> 'changes' -> 'status' ->> 'new'), ', ' ORDER BY created_at)
             FROM orders.activity_logs),
          '44444444-4444-4444-4444-444444444444 00000000-0000-0000-0000-0000000000e8 ready_for_pickup, 11111111-1111-1111-1111-111111111111 203.0.113.9 out_for_delivery',
          '... a staff member''s change and a change with a client address are logged (user_id, address) with the status');
DELETE FROM orders.activity_logs;
INSERT INTO orders.leads (customer_id, order_id, status)
SELECT '00000000-0000-0000-0000-00000000ac01', '00000000-0000-0000-0000-00000000a002', 'approved' FROM generate_series(1, 4);
SELECT is((SELECT status FROM orders.orders WHERE order_number = 'ACT-2') || ' ' || (SELECT trail FROM act_trail),
          'completed orders:completed_at,status', '... a campaign completing itself (the extension''s change, its own actor) is logged');
CREATE FUNCTION pg_temp.out_for_delivery() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.notes = 'handed over' THEN
        NEW.status := 'delivered';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER a_handed_over BEFORE UPDATE ON orders.orders FOR EACH ROW EXECUTE FUNCTION pg_temp.out_for_delivery();
DELETE FROM orders.activity_logs;
UPDATE orders.orders SET notes = 'handed over' WHERE order_number = 'ACT-3';
SELECT is((SELECT status FROM orders.orders WHERE order_number = 'ACT-3') || ' ' || (SELECT trail FROM act_trail) || ' '
          || (SELECT count(*) FROM orders.order_history WHERE order_id = '00000000-0000-0000-0000-00000000a003' AND new_status = 'delivered'),
          'delivered orders:notes 1', '... a status a BEFORE trigger set (0.31.0: status_audit fires on every UPDATE): its history row, the other column logged');
DROP TRIGGER a_handed_over ON orders.orders;
ALTER TABLE orders.orders DISABLE TRIGGER status_audit;
DELETE FROM orders.activity_logs;
UPDATE orders.orders SET status = 'returned' WHERE order_number = 'ACT-1';
ALTER TABLE orders.orders ENABLE TRIGGER status_audit;
SELECT is((SELECT trail FROM act_trail), 'orders:returned_at,status', '... status_audit disabled (no history row): logged');
-- ... enabled for replicas only (it does not fire here); a history that
-- may drop rows (a DBA's BEFORE INSERT trigger on it); a stamp that is not
-- status_guard's (a DBA's later BEFORE trigger backdates it)
SELECT set_config('request.jwt.claims', '', true), set_config('request.headers', '', true);
INSERT INTO orders.orders (id, order_number, customer_id) VALUES
  ('00000000-0000-0000-0000-00000000a004', 'ACT-4', '00000000-0000-0000-0000-00000000ac01');
ALTER TABLE orders.orders ENABLE REPLICA TRIGGER status_audit;
DELETE FROM orders.activity_logs;
UPDATE orders.orders SET status = 'confirmation_pending' WHERE order_number = 'ACT-4';
ALTER TABLE orders.orders ENABLE TRIGGER status_audit;
SELECT is((SELECT trail FROM act_trail), 'orders:status', '... status_audit enabled for replicas only: logged');
CREATE FUNCTION pg_temp.drop_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE TRIGGER drop_row BEFORE INSERT ON orders.order_history FOR EACH ROW EXECUTE FUNCTION pg_temp.drop_row();
DELETE FROM orders.activity_logs;
UPDATE orders.orders SET status = 'cancelled' WHERE order_number = 'ACT-4';
DROP TRIGGER drop_row ON orders.order_history;
SELECT is((SELECT trail FROM act_trail), 'orders:cancelled_at,status', '... a history with a BEFORE INSERT trigger (it may drop the row): logged');
CREATE FUNCTION pg_temp.backdate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.confirmed_at := '2026-01-01 10:00+00';
    RETURN NEW;
END $$;
INSERT INTO orders.orders (id, order_number, customer_id) VALUES
  ('00000000-0000-0000-0000-00000000a005', 'ACT-5', '00000000-0000-0000-0000-00000000ac01');
UPDATE orders.orders SET status = 'confirmation_pending' WHERE order_number = 'ACT-5';
CREATE TRIGGER zz_backdate BEFORE UPDATE ON orders.orders FOR EACH ROW EXECUTE FUNCTION pg_temp.backdate();
DELETE FROM orders.activity_logs;
UPDATE orders.orders SET status = 'confirmed' WHERE order_number = 'ACT-5';
DROP TRIGGER zz_backdate ON orders.orders;
SELECT is((SELECT trail FROM act_trail) || ' ' || (SELECT details -> 'changes' -> 'confirmed_at' ->> 'new' FROM orders.activity_logs),
          'orders:confirmed_at 2026-01-01 10:00:00+00', '... a stamp status_guard did not write (backdated): logged, the status history''s');
-- a deleted order takes its history rows with it (the foreign key
-- cascades): its deleted row holds them, status changes recorded nowhere
-- else among them
DELETE FROM orders.activity_logs;
DELETE FROM orders.orders WHERE order_number = 'ACT-5';
SELECT is((SELECT string_agg(concat_ws(' ', e ->> 'old_status', e ->> 'new_status', e ->> 'changed_by', (e ->> 'created_at') IS NOT NULL), ', ')
             FROM orders.activity_logs l, jsonb_array_elements(l.details -> 'history') e
            WHERE l.action = 'deleted' AND l.entity_id = '00000000-0000-0000-0000-00000000a005'),
          'new confirmation_pending postgres t, confirmation_pending confirmed postgres t',
          'a deleted order''s row holds its history rows (their old and new status, actor, time)');
SELECT is((SELECT count(*)::int FROM orders.order_history WHERE order_id = '00000000-0000-0000-0000-00000000a005'), 0, '... which went with it');
-- ... a history past a page (notes up to 10,000 characters each) whole
INSERT INTO orders.orders (id, order_number, customer_id) VALUES
  ('00000000-0000-0000-0000-00000000a006', 'ACT-6', '00000000-0000-0000-0000-00000000ac01');
SELECT orders.transition('00000000-0000-0000-0000-00000000a006', 'confirmation_pending', repeat('x', 9000));
SELECT orders.transition('00000000-0000-0000-0000-00000000a006', 'cancelled', repeat('y', 9000));
DELETE FROM orders.orders WHERE order_number = 'ACT-6';
SELECT is((SELECT string_agg(length(e ->> 'notes')::text, ' ')
             FROM orders.activity_logs l, jsonb_array_elements(l.details -> 'history') e
            WHERE l.action = 'deleted' AND l.entity_id = '00000000-0000-0000-0000-00000000a006'),
          '9000 9000', '... a history of 18 kB whole (its notes kept)');
-- ... (0.42.0 library) its latest 1,000 changes, after how many were left
-- out: a customer's 27,000 changes of its own review order with
-- 10,000-character notes made an order nobody could delete (54000)
INSERT INTO orders.orders (id, order_number, customer_id) VALUES
  ('00000000-0000-0000-0000-00000000a008', 'ACT-8', '00000000-0000-0000-0000-00000000ac01');
INSERT INTO orders.order_history (order_id, old_status, new_status, changed_by, notes)
SELECT '00000000-0000-0000-0000-00000000a008', 'new', 'new', 'loop', 'change ' || i FROM generate_series(1, 1003) i;
DELETE FROM orders.orders WHERE order_number = 'ACT-8';
SELECT is((SELECT format('%s %s %s %s', jsonb_array_length(l.details -> 'history'), l.details -> 'history' -> 0,
                         l.details -> 'history' -> 1 ->> 'notes', l.details -> 'history' -> -1 ->> 'notes')
             FROM orders.activity_logs l WHERE l.action = 'deleted' AND l.entity_id = '00000000-0000-0000-0000-00000000a008'),
          '1001 {"earlier_changes_omitted": 3} change 4 change 1003',
          '... a history of 1,003 changes: the latest 1,000, after how many earlier ones were left out');
-- a gate's stamp and actor, as status_guard writes them, are history's too
-- (the review lifecycle's gate client_review: reviewed_by, review_completed_at)
SET LOCAL session_replication_role = replica;
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle, status) VALUES
  ('00000000-0000-0000-0000-00000000a007', 'ACT-7', '00000000-0000-0000-0000-00000000ac01', 'review', 'reviewing');
RESET session_replication_role;
DELETE FROM orders.activity_logs;
UPDATE orders.orders SET status = 'payment_pending' WHERE order_number = 'ACT-7';
SELECT is((SELECT reviewed_by || ' ' || (review_completed_at IS NOT NULL) FROM orders.orders WHERE order_number = 'ACT-7')
          || ' ' || (SELECT count(*) FROM orders.activity_logs),
          'postgres true 0', '... a gate''s actor and stamp as status_guard sets them: no activity row');
-- the actor is looked up only for a row that is logged (0.30.0's order):
-- an UPDATE that changes nothing passes a request.headers that is no JSON
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}', true),
       set_config('request.headers', 'not json', true);
SELECT is(pg_temp.err($$UPDATE orders.customers SET full_name = full_name WHERE id = '00000000-0000-0000-0000-00000000ac01'$$) || ' '
          || pg_temp.err($$UPDATE orders.customers SET full_name = 'Ann' WHERE id = '00000000-0000-0000-0000-00000000ac01'$$),
          'ok 22P02', '... an UPDATE that changes nothing passes a request.headers that is no JSON; one that is logged is refused (22P02)');
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"authenticated"}', true),
       set_config('request.headers', '{"x-forwarded-for": "6.6.6.6, 203.0.113.7"}', true);

-- secrets never reach the log
INSERT INTO orders.webhooks (name, source, endpoint, secret) VALUES ('Act shop', 'custom', 'act-shop', 'hunter2');
UPDATE orders.webhooks SET secret = 'hunter3' WHERE endpoint = 'act-shop';
SELECT is((SELECT string_agg(details -> 'changes' ->> 'secret', ' ' ORDER BY created_at, action) FROM orders.activity_logs WHERE entity_type = 'webhooks'),
          '{"new": "(redacted)", "old": null} {"new": "(redacted)", "old": "(redacted)"}', 'a webhook''s secret: redacted');
SELECT is((SELECT count(*)::int FROM orders.activity_logs WHERE details::text LIKE '%hunter%'), 0, '... nowhere in the log');

-- (0.37.0) a value longer than 4,096 bytes is logged as its first 4,096
-- bytes (whole characters) and its size: a customer's 9.6 MB notes wrote
-- 19 MB of log at every update, kept for a year
UPDATE orders.customers SET notes = repeat('€', 2000) WHERE id = '00000000-0000-0000-0000-00000000ac01';
UPDATE orders.customers SET notes = repeat('ab', 3000) WHERE id = '00000000-0000-0000-0000-00000000ac01';
SELECT is((SELECT regexp_replace(details -> 'changes' -> 'notes' ->> 'old', 'hash [0-9a-f]{16}\)$', 'hash H)') || ' | '
                  || regexp_replace(details -> 'changes' -> 'notes' ->> 'new', 'hash [0-9a-f]{16}\)$', 'hash H)')
             FROM orders.activity_logs
            WHERE entity_id = '00000000-0000-0000-0000-00000000ac01' AND details -> 'changes' -> 'notes' ->> 'old' IS NOT NULL),
          repeat('€', 1365) || '... (6000 bytes, hash H) | ' || repeat('ab', 2048) || '... (6000 bytes, hash H)',
          'values longer than 4,096 bytes logged cut, on a character''s end, with their size and a hash');
-- ... two values alike in their first 4,096 bytes are told apart by the hash
UPDATE orders.customers SET notes = repeat('ab', 3000) || 'z' WHERE id = '00000000-0000-0000-0000-00000000ac01';
SELECT isnt((SELECT details -> 'changes' -> 'notes' ->> 'new' FROM orders.activity_logs
              WHERE entity_id = '00000000-0000-0000-0000-00000000ac01' AND details -> 'changes' -> 'notes' ->> 'new' LIKE '%6001 bytes%'),
            (SELECT details -> 'changes' -> 'notes' ->> 'old' FROM orders.activity_logs
              WHERE entity_id = '00000000-0000-0000-0000-00000000ac01' AND details -> 'changes' -> 'notes' ->> 'new' LIKE '%6001 bytes%'),
            '... a change past the cut still shows: old and new differ in their hash');
UPDATE orders.orders SET metadata = jsonb_build_object('big', repeat('x', 5000)) WHERE order_number = 'ACT-1';
SELECT is((SELECT details -> 'changes' -> 'metadata' ->> 'new' FROM orders.activity_logs
             WHERE entity_type = 'orders' AND details -> 'changes' ? 'metadata' ORDER BY created_at DESC LIMIT 1),
          '{"big": "' || repeat('x', 4087) || '... (' || octet_length(jsonb_build_object('big', repeat('x', 5000))::text) || ' bytes, hash '
          || lpad(to_hex(hashtextextended(jsonb_build_object('big', repeat('x', 5000))::text, 0)), 16, '0') || ')',
          '... a jsonb document too, as the string of its text (the hash: hashtextextended''s)');
SELECT is((SELECT length(notes) FROM orders.customers WHERE id = '00000000-0000-0000-0000-00000000ac01'), 6001,
          '... the column''s value itself whole');

-- deletes; an actor who is no staff member
SELECT set_config('request.jwt.claims', '{"sub":"11111111-1111-1111-1111-111111111111","role":"authenticated"}', true);
DELETE FROM orders.activity_logs;
DELETE FROM orders.webhooks WHERE endpoint = 'act-shop';
SELECT is((SELECT concat_ws(' ', action, actor, coalesce(user_id::text, 'no staff'), details -> 'changes' -> 'name' ->> 'old')
             FROM orders.activity_logs),
          'deleted 11111111-1111-1111-1111-111111111111 no staff Act shop', 'a delete: the old values, an actor who is no staff member');

-- COPY by the owner (how pg_restore loads) logs nothing
SELECT set_config('request.jwt.claims', '', true);
DELETE FROM orders.activity_logs;
SET LOCAL row_security = off;   -- a restore's session (every dump sets it)
COPY orders.customers (full_name) FROM STDIN;
Restored Rita
\.
SET LOCAL row_security = on;
SELECT is((SELECT count(*)::int FROM orders.activity_logs), 0, 'rows the owner loads with COPY FROM are not logged (pg_restore brings their log rows)');
SELECT is((SELECT count(*)::int FROM orders.customers WHERE full_name = 'Restored Rita'), 1, '... but loaded');

-- any table
CREATE TABLE public.act_notes (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), body text);
SELECT lives_ok($$SELECT orders.track_activity('public.act_notes')$$, 'track_activity on a user table');
SELECT lives_ok($$SELECT orders.track_activity('public.act_notes')$$, '... again: idempotent');
INSERT INTO public.act_notes (body) VALUES ('hello');
SELECT is((SELECT entity_type || ' ' || (details -> 'changes' -> 'body' ->> 'new') FROM orders.activity_logs), 'public.act_notes hello',
          '... its rows are logged, the table named with its schema');
SELECT orders.untrack_activity('public.act_notes');
INSERT INTO public.act_notes (body) VALUES ('quiet');
SELECT is((SELECT count(*)::int FROM orders.activity_logs), 1, 'untrack_activity stops it');
-- every kind of value as its JSON: what parsing the value's JSON text gives
-- (0.20.0 builds the document without the text)
SET LOCAL TimeZone = 'UTC';
CREATE TABLE public.act_kinds (id int PRIMARY KEY, b boolean, n numeric(8,2), f float8, g float8, j json,
                               jb jsonb, js jsonb, t text, ts timestamptz, a int[], token_hash text, e text);
SELECT orders.track_activity('public.act_kinds');
INSERT INTO public.act_kinds VALUES (1, true, 1.5, 0.1::float8 + 0.2, 'NaN', '{"x": [1, "y"]}', '"scalar"',
                                     '[1, {"k": null}]', E'say "hi"\t\u00e9', '2026-01-02 03:04:05+00', '{1,2}', 'abc', NULL);
SELECT is((SELECT details -> 'changes' FROM orders.activity_logs WHERE entity_type = 'public.act_kinds'),
          '{"id": {"old": null, "new": 1}, "b": {"old": null, "new": true}, "n": {"old": null, "new": 1.50},
            "f": {"old": null, "new": 0.30000000000000004}, "g": {"old": null, "new": "NaN"},
            "j": {"old": null, "new": {"x": [1, "y"]}}, "jb": {"old": null, "new": "scalar"},
            "js": {"old": null, "new": [1, {"k": null}]}, "t": {"old": null, "new": "say \"hi\"\t\u00e9"},
            "ts": {"old": null, "new": "2026-01-02 03:04:05+00"}, "a": {"old": null, "new": "{1,2}"},
            "token_hash": {"old": null, "new": "(redacted)"}}'::jsonb,
          'values as JSON: booleans, numbers (NaN as text), json and jsonb documents and scalars, text escaped, the rest as text, secrets redacted, NULLs left out');
SELECT is((SELECT details -> 'changes' -> 'n' ->> 'new' FROM orders.activity_logs WHERE entity_type = 'public.act_kinds'),
          '1.50', '... a numeric keeps its scale');
UPDATE public.act_kinds SET f = 'Infinity', jb = '{"a": 1}', e = '' WHERE id = 1;
SELECT is((SELECT details -> 'changes' FROM orders.activity_logs WHERE entity_type = 'public.act_kinds' AND action = 'updated'),
          '{"f": {"old": 0.30000000000000004, "new": "Infinity"}, "jb": {"old": "scalar", "new": {"a": 1}},
            "e": {"old": null, "new": ""}}'::jsonb,
          '... an update: the changed columns, old and new');
SELECT orders.untrack_activity('public.act_kinds');
DELETE FROM orders.activity_logs WHERE entity_type = 'public.act_kinds';
-- integers of each width, a domain, NaN and the infinities of numeric (0.25.0
-- library: numbers made without their text, each column's type looked up once
-- per session), then what is kept follows the table: a renamed column, an
-- added one, a renamed schema
CREATE DOMAIN public.act_count AS int CHECK (VALUE >= 0);
CREATE SCHEMA act_s;
CREATE TABLE act_s.more (id bigint PRIMARY KEY, s smallint, i int, l bigint, c public.act_count,
                         nn numeric, ni numeric, nm numeric);
SELECT orders.track_activity('act_s.more');
INSERT INTO act_s.more VALUES (-9223372036854775808, -32768, 2147483647, 9223372036854775807, 0, 'NaN', 'Infinity', '-Infinity');
SELECT is((SELECT entity_id || ' ' || (details -> 'changes')::text FROM orders.activity_logs WHERE entity_type = 'act_s.more'),
          '-9223372036854775808 {"c": {"new": 0, "old": null}, "i": {"new": 2147483647, "old": null}, "l": {"new": 9223372036854775807, "old": null}, "s": {"new": -32768, "old": null}, "id": {"new": -9223372036854775808, "old": null}, "ni": {"new": "Infinity", "old": null}, "nm": {"new": "-Infinity", "old": null}, "nn": {"new": "NaN", "old": null}}',
          'integers of every width and a domain over one as JSON numbers, NaN and the infinities as text; the row''s id as text');
ALTER TABLE act_s.more RENAME COLUMN s TO small;
UPDATE act_s.more SET small = 1;
ALTER TABLE act_s.more ADD COLUMN added text;
UPDATE act_s.more SET added = 'yes';
ALTER SCHEMA act_s RENAME TO act_s2;
UPDATE act_s2.more SET nn = 0.10;
SELECT is((SELECT string_agg(entity_type || ' ' || (details -> 'changes')::text, ', ' ORDER BY created_at) FROM orders.activity_logs
            WHERE entity_type LIKE 'act_s%' AND action = 'updated'),
          'act_s.more {"small": {"new": 1, "old": -32768}}, act_s.more {"added": {"new": "yes", "old": null}}, act_s2.more {"nn": {"new": 0.10, "old": "NaN"}}',
          '... a renamed column, an added column and a renamed schema are logged under their new names in the same session');
SET LOCAL quote_all_identifiers = on;
UPDATE act_s2.more SET small = 2;
RESET quote_all_identifiers;
SELECT is((SELECT entity_type FROM orders.activity_logs WHERE entity_type LIKE '%act_s%' AND details -> 'changes' -> 'small' ->> 'new' = '2'),
          '"act_s2"."more"', '... the table named as the session quotes names (quote_all_identifiers)');
SELECT orders.untrack_activity('act_s2.more');
DELETE FROM orders.activity_logs WHERE entity_type LIKE '%act_s%';
SELECT is(pg_temp.err($$SELECT orders.track_activity('orders.order_summary')$$) || ' ' || pg_temp.err($$SELECT orders.track_activity(NULL)$$),
          '42809 22004', 'track_activity of a view: 42809; of NULL: 22004');

-- nobody else writes it; (0.41.0) staff with activity.view read it through
-- the authenticated role (a policy admits the rows), anon never
SELECT ok(NOT has_table_privilege('authenticated', 'orders.activity_logs', 'INSERT, UPDATE, DELETE')
          AND NOT has_table_privilege('anon', 'orders.activity_logs', 'SELECT'),
          'API roles cannot write (forge) activity rows; anon cannot read them');
SELECT is(pg_temp.err($$SELECT orders.purge_activity_logs(NULL)$$) || ' ' || pg_temp.err($$SELECT orders.purge_activity_logs('-1 day')$$)
          || ' ' || (SELECT count(*) FROM orders.activity_logs),
          '22004 22023 1', 'purge_activity_logs of NULL: 22004, of a negative interval: 22023; nothing deleted');
SELECT is(pg_temp.err($$SELECT orders.purge_activity_logs('-1 mon +30 days 1 hour')$$) || ' '
          || pg_temp.err($$SELECT orders.purge_activity_logs('300000 years')$$) || ' ' || (SELECT count(*) FROM orders.activity_logs),
          '22023 22023 1', 'purge_activity_logs of a span whose cutoff is after now, or before the earliest time (it was 22008): 22023; nothing deleted (0.43.0)');
UPDATE orders.activity_logs SET created_at = now() - interval '400 days';
SELECT is(orders.purge_activity_logs(), 1::bigint, 'purge_activity_logs() deletes rows older than a year');

-- the rows are inserted without SQL (0.11.0), yet as any insert: the log's
-- own triggers fire (as its owner), a constraint a DBA adds holds, the
-- staff id is a checked foreign key; ids are time-ordered (orders.new_id()'s layout, version 8)
DELETE FROM orders.activity_logs;
CREATE TABLE pg_temp.log_seen (who text, action text);
CREATE FUNCTION pg_temp.log_seen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pg_temp.log_seen VALUES (current_user, NEW.action);
    RETURN NEW;
END $$;
CREATE TRIGGER seen BEFORE INSERT ON orders.activity_logs FOR EACH ROW EXECUTE FUNCTION pg_temp.log_seen();
UPDATE orders.customers SET phone = '+1555001' WHERE id = '00000000-0000-0000-0000-00000000ac01';
UPDATE orders.customers SET phone = '+1555002' WHERE id = '00000000-0000-0000-0000-00000000ac01';
SELECT is((SELECT string_agg(who || ' ' || action, ', ') FROM pg_temp.log_seen), 'postgres updated, postgres updated',
          'a BEFORE INSERT trigger on the log fires for each row, as the log''s owner');
SELECT is((SELECT string_agg(DISTINCT substr(id::text, 15, 1) || ' '
                   || (abs(('x' || substr(replace(id::text, '-', ''), 1, 12))::bit(48)::bigint
                           - floor(extract(epoch FROM created_at) * 1000)::bigint) <= 1), ',')
             FROM orders.activity_logs), '8 true',
          '... the rows'' ids are uuid version 8 (orders.new_id()) whose leading 48 bits are their time in milliseconds');
DROP TRIGGER seen ON orders.activity_logs;
-- a row without a staff id queues no foreign-key check (0.19.0) only while
-- that check is the log's only row trigger: an AFTER INSERT row trigger a
-- DBA adds (after rows already logged this session) fires for such rows
CREATE TRIGGER seen_after AFTER INSERT ON orders.activity_logs FOR EACH ROW EXECUTE FUNCTION pg_temp.log_seen();
UPDATE orders.customers SET phone = '+1555021' WHERE id = '00000000-0000-0000-0000-00000000ac01';
SELECT is((SELECT count(*)::int FROM pg_temp.log_seen), 3,
          'an AFTER INSERT row trigger on the log fires for a row without a staff id');
DROP TRIGGER seen_after ON orders.activity_logs;
UPDATE orders.customers SET phone = '+1555002' WHERE id = '00000000-0000-0000-0000-00000000ac01';
SELECT is((SELECT count(*)::int FROM pg_temp.log_seen), 3, '... and, dropped, no more');
CREATE FUNCTION pg_temp.plan_of(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE 'EXPLAIN (COSTS OFF) ' || q;
END $$;
SET LOCAL enable_seqscan = off;
SELECT ok((SELECT string_agg(p, ' ') FROM pg_temp.plan_of($$SELECT id FROM orders.activity_logs
            WHERE user_id = '00000000-0000-0000-0000-0000000000e7' ORDER BY created_at$$) p) LIKE '%activity_logs_user_id_idx%',
          'a user''s timeline reads the partial index of rows with a user (0.19.0)');
RESET enable_seqscan;
ALTER TABLE orders.activity_logs ADD CONSTRAINT no_phone_changes CHECK (NOT (details -> 'changes' ? 'phone')) NOT VALID;
SELECT is(pg_temp.err($$UPDATE orders.customers SET phone = '+1555003' WHERE id = '00000000-0000-0000-0000-00000000ac01'$$)
          || ' ' || (SELECT phone FROM orders.customers WHERE id = '00000000-0000-0000-0000-00000000ac01'),
          '23514 +1555002', 'a CHECK a DBA adds to the log holds: the change it refuses is undone');
ALTER TABLE orders.activity_logs DROP CONSTRAINT no_phone_changes;
-- the CHECKs are planned once per session (0.18.0): one replaced by
-- another (as many as before) is the new one at the next row
ALTER TABLE orders.activity_logs DROP CONSTRAINT activity_logs_action_check,
    ADD CONSTRAINT activity_logs_action_check CHECK (action IN ('created', 'deleted')) NOT VALID;
SELECT is(pg_temp.err($$UPDATE orders.customers SET phone = '+1555013' WHERE id = '00000000-0000-0000-0000-00000000ac01'$$)
          || ' ' || (SELECT phone FROM orders.customers WHERE id = '00000000-0000-0000-0000-00000000ac01'),
          '23514 +1555002', 'a CHECK of the log replaced by another holds at once (the planned checks follow the table)');
ALTER TABLE orders.activity_logs DROP CONSTRAINT activity_logs_action_check,
    ADD CONSTRAINT activity_logs_action_check CHECK (action IN ('created', 'updated', 'deleted'));
SELECT set_config('request.headers', '{"x-forwarded-for": "  198.51.100.' || repeat('9', 100) || '  "}', true);
UPDATE orders.customers SET phone = '+1555004' WHERE id = '00000000-0000-0000-0000-00000000ac01';
SELECT set_config('request.headers', '{"user-agent": "x"}', true);
UPDATE orders.customers SET phone = '+1555005' WHERE id = '00000000-0000-0000-0000-00000000ac01';
SELECT is((SELECT string_agg(coalesce(length(ip_address)::text || ':' || left(ip_address, 14), 'null'), ' ' ORDER BY created_at)
             FROM orders.activity_logs WHERE details -> 'changes' -> 'phone' ->> 'new' IN ('+1555004', '+1555005')),
          '64:198.51.100.999 null', 'the forwarded address trimmed and cut at 64 characters; no header: NULL');
SELECT set_config('request.headers', 'not json', true);
SELECT is(pg_temp.err($$UPDATE orders.customers SET phone = '+1555006' WHERE id = '00000000-0000-0000-0000-00000000ac01'$$)
          || ' ' || (SELECT phone FROM orders.customers WHERE id = '00000000-0000-0000-0000-00000000ac01'),
          '22P02 +1555005', 'request.headers that is no JSON: 22P02 and the change is undone');
SELECT set_config('request.headers', '', true);

-- a staff member who deletes its own staff row: the row is logged without a
-- staff id (the row is gone for the log's foreign key), not refused
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"authenticated"}', true);
DELETE FROM orders.activity_logs;
SELECT pg_temp.err($$DELETE FROM orders.staff WHERE account_id = '44444444-4444-4444-4444-444444444444'$$) AS staff_delete \gset
SELECT is(:'staff_delete' || ' ' || coalesce((SELECT string_agg(action || ' ' || entity_type || ' ' || coalesce(user_id::text, 'no staff id'), ', ')
                                                FROM orders.activity_logs WHERE entity_type = 'staff'), 'nothing logged'),
          'ok deleted staff no staff id', 'a staff member deleting its own row: logged, without a staff id');

-- a log a DBA changed goes through an INSERT statement: a statement trigger
-- fires, a new column gets its default, a partitioned log takes the row
DELETE FROM orders.activity_logs;
CREATE TABLE pg_temp.log_statements (n int);
CREATE FUNCTION pg_temp.log_statement() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pg_temp.log_statements VALUES (1);
    RETURN NULL;
END $$;
CREATE TRIGGER per_statement AFTER INSERT ON orders.activity_logs FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.log_statement();
UPDATE orders.customers SET phone = '+1555007' WHERE id = '00000000-0000-0000-0000-00000000ac01';
SELECT is((SELECT count(*)::int FROM pg_temp.log_statements) || ' ' || (SELECT count(*) FROM orders.activity_logs),
          '1 1', 'a statement trigger on the log fires for the logged row');
DROP TRIGGER per_statement ON orders.activity_logs;
ALTER TABLE orders.activity_logs ADD COLUMN tenant text NOT NULL DEFAULT 'main';
UPDATE orders.customers SET phone = '+1555008' WHERE id = '00000000-0000-0000-0000-00000000ac01';
SELECT is((SELECT tenant || ' ' || (details -> 'changes' -> 'phone' ->> 'new') FROM orders.activity_logs
            WHERE details -> 'changes' -> 'phone' ->> 'new' = '+1555008'),
          'main +1555008', 'a column a DBA adds gets its default');
ALTER TABLE orders.activity_logs DROP COLUMN tenant;
ALTER TABLE orders.activity_logs RENAME TO activity_logs_before;
CREATE TABLE orders.activity_logs (LIKE orders.activity_logs_before INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
    PARTITION BY RANGE (created_at);
CREATE TABLE orders.activity_logs_rest PARTITION OF orders.activity_logs DEFAULT;
UPDATE orders.customers SET phone = '+1555009' WHERE id = '00000000-0000-0000-0000-00000000ac01';
SELECT is((SELECT count(*)::int FROM orders.activity_logs_rest WHERE details -> 'changes' -> 'phone' ->> 'new' = '+1555009'), 1,
          'a partitioned log takes the row into its partition');

SELECT * FROM finish();
ROLLBACK;
