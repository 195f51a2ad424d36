-- orders.transition(): idempotency, history, notes, actor, rollback,
-- updated_at, and the graph cache seeing changes made in this session.
BEGIN;
SELECT plan(44);

INSERT INTO orders.customers (id, full_name) VALUES ('00000000-0000-0000-0000-00000000c003', 'T3');
INSERT INTO orders.orders (id, order_number, customer_id)
VALUES ('00000000-0000-0000-0000-000000000301', 'T3-1', '00000000-0000-0000-0000-00000000c003');

SELECT is((SELECT status FROM orders.orders WHERE order_number = 'T3-1'), 'new',
          'a new cod order starts in its initial status');

-- idempotency: same key twice -> one change, one history row
SELECT is((orders.transition('00000000-0000-0000-0000-000000000301', 'confirmed', 'phoned', 'key-1')).status,
          'confirmed', 'transition returns the changed order');
SELECT is((orders.transition('00000000-0000-0000-0000-000000000301', 'confirmed', 'phoned', 'key-1')).status,
          'confirmed', 'the same key again returns the order');
SELECT is((SELECT count(*)::int FROM orders.order_history
            WHERE order_id = '00000000-0000-0000-0000-000000000301'), 1,
          'the repeated key wrote no second history row');
SELECT throws_ok($$SELECT orders.transition('00000000-0000-0000-0000-000000000301', 'cancelled', NULL, 'key-1')$$,
                 'OR007', NULL, 'a key reused for another target status is refused');
SELECT throws_ok($$SELECT orders.transition('00000000-0000-0000-0000-000000000301', 'confirmed')$$,
                 'OR001', 'order "T3-1" is already in status "confirmed"',
                 'without a key, a repeated change is refused');
SELECT is(h.notes || '|' || h.idempotency_key || '|' || h.changed_by || '|' || h.old_status || '>' || h.new_status,
          'phoned|key-1|' || current_user || '|new>confirmed', 'history records notes, key, actor, edge')
  FROM orders.order_history h WHERE h.order_id = '00000000-0000-0000-0000-000000000301';
SELECT isnt((SELECT confirmed_at FROM orders.orders WHERE order_number = 'T3-1'), NULL,
            'the edge stamped confirmed_at');

-- actor from JWT claims (PostgREST), from jwt.claims.sub (PostGraphile), '' unset
SELECT set_config('request.jwt.claims', '{"sub":"user-42","role":"authenticated"}', true);
SELECT orders.transition('00000000-0000-0000-0000-000000000301', 'being_prepared');
SELECT is((SELECT changed_by FROM orders.order_history WHERE new_status = 'being_prepared'
            AND order_id = '00000000-0000-0000-0000-000000000301'), 'user-42',
          'changed_by is the JWT sub');
SELECT set_config('request.jwt.claims', '', true);
SELECT set_config('jwt.claims.sub', 'pg-graphile-7', true);
SELECT is(orders.current_actor(), 'pg-graphile-7', 'jwt.claims.sub is used when request.jwt.claims is empty');
SELECT set_config('jwt.claims.sub', '', true);
SELECT is(orders.current_actor(), current_user::text, 'empty settings fall back to current_user');
SELECT set_config('request.jwt.claims', '{"role":"anon"}', true);
SELECT is(orders.current_actor(), current_user::text, 'claims without sub fall back to current_user');
SELECT set_config('request.jwt.claims', '{"sub":""}', true);
SELECT is(orders.current_actor(), current_user::text, 'an empty sub counts as unset');
SELECT set_config('request.jwt.claims', '{"sub":12345}', true);
SELECT is(orders.current_actor(), '12345', 'a numeric sub is used as text');
SELECT set_config('request.jwt.claims', 'not json', true);
SELECT throws_ok('SELECT orders.current_actor()', '22P02', NULL, 'malformed claims are refused, not ignored');
SELECT set_config('request.jwt.claims', '', true);

-- a change that rolls back leaves no history (and, being uncommitted, no notification)
SAVEPOINT before_change;
SELECT orders.transition('00000000-0000-0000-0000-000000000301', 'ready_for_pickup', 'will roll back');
ROLLBACK TO SAVEPOINT before_change;
SELECT is((SELECT status FROM orders.orders WHERE order_number = 'T3-1'), 'being_prepared',
          'rolled back change is gone');
SELECT is((SELECT count(*)::int FROM orders.order_history WHERE notes = 'will roll back'), 0,
          'rolled back change left no history');

-- a failing statement after the change rolls the history back with it
SELECT throws_ok($$WITH t AS (SELECT orders.transition('00000000-0000-0000-0000-000000000301', 'ready_for_pickup', 'then fail'))
                   SELECT 1/0 FROM t$$, '22012', NULL, 'statement fails after the change');
SELECT is((SELECT count(*)::int FROM orders.order_history WHERE notes = 'then fail'), 0,
          'no history from the failed statement');

-- the AFTER row triggers every status change fires carry no WHEN clause
-- (PostgreSQL would parse and plan it for every statement): their functions
-- pass over a status set to what it was, as the clause did
SELECT is((SELECT string_agg(tgname, ',' ORDER BY tgname) FROM pg_trigger
            WHERE tgrelid = 'orders.orders'::regclass AND tgname IN ('status_audit', 'release_cancelled_bookings', 'stats_then_workflows_update')
              AND tgqual IS NULL),
          'release_cancelled_bookings,stats_then_workflows_update,status_audit',
          'status_audit, release_cancelled_bookings and stats_then_workflows_update have no WHEN clause');
CREATE TEMP TABLE t3_history AS SELECT count(*) AS n FROM orders.order_history;
UPDATE orders.orders SET status = status, payment_status = payment_status WHERE order_number = 'T3-1';
SELECT is((SELECT count(*) FROM orders.order_history), (SELECT n FROM t3_history),
          'a status set to what it was writes no history row');

-- updated_at (C trigger) moves on UPDATE; it is the transaction time
UPDATE orders.orders SET updated_at = '2000-01-01', notes = 'x' WHERE order_number = 'T3-1';
SELECT is((SELECT updated_at FROM orders.orders WHERE order_number = 'T3-1'), now(),
          'updated_at is set by the trigger, whatever the UPDATE says');
UPDATE orders.customers SET notes = 'vip' WHERE id = '00000000-0000-0000-0000-00000000c003';
SELECT is((SELECT updated_at FROM orders.customers WHERE id = '00000000-0000-0000-0000-00000000c003'), now(),
          'customers.updated_at too');

-- the graph cache sees a lifecycle added in this very session
INSERT INTO orders.lifecycles (name, initial_status) VALUES ('rental', 'reserved');
INSERT INTO orders.lifecycle_states (lifecycle, status, category, position) VALUES
  ('rental', 'reserved', 'open', 1), ('rental', 'out', 'open', 2),
  ('rental', 'back', 'fulfilled', 3), ('rental', 'lost', 'returned', 4);
INSERT INTO orders.lifecycle_transitions (lifecycle, from_status, to_status, stamp_column) VALUES
  ('rental', 'reserved', 'out', 'shipped_at'), ('rental', 'out', 'back', 'completed_at');
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle)
VALUES ('00000000-0000-0000-0000-000000000302', 'T3-2', '00000000-0000-0000-0000-00000000c003', 'rental');
SELECT is((SELECT status FROM orders.orders WHERE order_number = 'T3-2'), 'reserved',
          'a user-defined lifecycle starts in its initial status');
SELECT is((orders.transition('00000000-0000-0000-0000-000000000302', 'out')).status, 'out',
          'a user-defined edge is usable at once');
SELECT throws_ok($$SELECT orders.transition('00000000-0000-0000-0000-000000000302', 'lost')$$,
                 'OR001', NULL, 'no edge out -> lost yet');
INSERT INTO orders.lifecycle_transitions (lifecycle, from_status, to_status, stamp_column)
VALUES ('rental', 'out', 'lost', 'returned_at');
SELECT is((orders.transition('00000000-0000-0000-0000-000000000302', 'lost')).status, 'lost',
          'the edge added afterwards is seen by the same session');
DELETE FROM orders.lifecycle_transitions WHERE lifecycle = 'rental' AND from_status = 'reserved';
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle)
VALUES ('00000000-0000-0000-0000-000000000303', 'T3-3', '00000000-0000-0000-0000-00000000c003', 'rental');
SELECT throws_ok($$SELECT orders.transition('00000000-0000-0000-0000-000000000303', 'out')$$,
                 'OR001', NULL, 'a deleted edge is refused at once');
SELECT results_eq($$SELECT orders.allowed_transitions('00000000-0000-0000-0000-000000000303')$$,
                  $$SELECT NULL::text WHERE false$$, 'and no longer offered');

-- the history row as written without SQL (table as installed): id from the
-- identity's sequence, created_at the transaction's now(); and as a DBA may
-- change the table: its own columns, checks and row triggers apply
INSERT INTO orders.orders (id, order_number, customer_id)
VALUES ('00000000-0000-0000-0000-000000000304', 'T3-4', '00000000-0000-0000-0000-00000000c003');
SELECT orders.transition('00000000-0000-0000-0000-000000000304', 'confirmed', 'direct');
SELECT is((SELECT h.id = currval('orders.order_history_id_seq') AND h.created_at = now() AND h.announce
             FROM orders.order_history h WHERE h.order_id = '00000000-0000-0000-0000-000000000304'), true,
          'a history row: its id the identity sequence''s, created_at now(), for the announcer (batched)');
ALTER TABLE orders.order_history ADD COLUMN source text NOT NULL DEFAULT 'pos';
SELECT orders.transition('00000000-0000-0000-0000-000000000304', 'being_prepared');
SELECT is((SELECT source || ' ' || (id = currval('orders.order_history_id_seq'))
             FROM orders.order_history WHERE order_id = '00000000-0000-0000-0000-000000000304' AND new_status = 'being_prepared'),
          'pos true', 'a column a DBA added gets its default (the row goes in by an INSERT)');
ALTER TABLE orders.order_history DROP COLUMN source;
ALTER TABLE orders.order_history ADD CONSTRAINT t3_no_lost CHECK (new_status <> 'ready_for_pickup');
SELECT throws_ok($$SELECT orders.transition('00000000-0000-0000-0000-000000000304', 'ready_for_pickup')$$,
                 '23514', NULL, 'a CHECK a DBA put on the history refuses the change');
SELECT is((SELECT status FROM orders.orders WHERE order_number = 'T3-4'), 'being_prepared', '... which did not happen');
ALTER TABLE orders.order_history DROP CONSTRAINT t3_no_lost;
CREATE FUNCTION pg_temp.t3_tag() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.notes := coalesce(NEW.notes, '') || '[tagged]'; RETURN NEW; END $$;
CREATE TRIGGER t3_tag BEFORE INSERT ON orders.order_history FOR EACH ROW EXECUTE FUNCTION pg_temp.t3_tag();
SELECT orders.transition('00000000-0000-0000-0000-000000000304', 'ready_for_pickup', 'row trigger');
SELECT is((SELECT notes FROM orders.order_history
            WHERE order_id = '00000000-0000-0000-0000-000000000304' AND new_status = 'ready_for_pickup'),
          'row trigger[tagged]', 'a row trigger a DBA put on the history runs');
DROP TRIGGER t3_tag ON orders.order_history;
SELECT orders.transition('00000000-0000-0000-0000-000000000304', 'out_for_delivery', 'untagged');
SELECT is((SELECT notes FROM orders.order_history
            WHERE order_id = '00000000-0000-0000-0000-000000000304' AND new_status = 'out_for_delivery'),
          'untagged', '... and no longer once dropped');
ALTER TABLE orders.order_history ALTER COLUMN created_at SET DEFAULT clock_timestamp();
SELECT orders.transition('00000000-0000-0000-0000-000000000304', 'delivered', NULL, 'key-4');
SELECT cmp_ok((SELECT created_at FROM orders.order_history
                WHERE order_id = '00000000-0000-0000-0000-000000000304' AND new_status = 'delivered'), '>', now(),
              'a default a DBA gave created_at applies');
ALTER TABLE orders.order_history ALTER COLUMN created_at SET DEFAULT now();
SELECT throws_ok($$SELECT orders.transition('00000000-0000-0000-0000-000000000304', 'returned', NULL, 'key-4')$$,
                 'OR007', NULL, 'an idempotency key is still one per order''s change');
SELECT is((SELECT string_agg(new_status, ',' ORDER BY id) FROM orders.order_history
            WHERE order_id = '00000000-0000-0000-0000-000000000304'),
          'confirmed,being_prepared,ready_for_pickup,out_for_delivery,delivered', 'every change recorded once, in order');

-- an order its own change deletes before the history is written (an AFTER
-- trigger firing before status_audit): the history's foreign key refuses it
INSERT INTO orders.orders (id, order_number, customer_id)
VALUES ('00000000-0000-0000-0000-000000000305', 'T3-5', '00000000-0000-0000-0000-00000000c003');
CREATE FUNCTION pg_temp.t3_vanish() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN DELETE FROM orders.orders WHERE id = NEW.id; RETURN NULL; END $$;
CREATE TRIGGER a_t3_vanish AFTER UPDATE OF status ON orders.orders FOR EACH ROW
    WHEN (NEW.order_number = 'T3-5') EXECUTE FUNCTION pg_temp.t3_vanish();
SELECT throws_ok($$SELECT orders.transition('00000000-0000-0000-0000-000000000305', 'confirmed')$$, '23503', NULL,
                 'a change whose order is deleted before its history row is written is refused by the foreign key');
SELECT is((SELECT status || ' ' || (SELECT count(*) FROM orders.order_history h WHERE h.order_id = o.id)
             FROM orders.orders o WHERE order_number = 'T3-5'), 'new 0', '... and nothing changed');
DROP TRIGGER a_t3_vanish ON orders.orders;

-- a DBA's trigger that changes another order through orders.transition()
-- while the first change runs: each change keeps its own notes, key and
-- actor (the inner call cleared the outer one's before 0.38.0)
INSERT INTO orders.orders (id, order_number, customer_id)
VALUES ('00000000-0000-0000-0000-000000000306', 'T3-6', '00000000-0000-0000-0000-00000000c003'),
       ('00000000-0000-0000-0000-000000000307', 'T3-7', '00000000-0000-0000-0000-00000000c003');
CREATE FUNCTION pg_temp.t3_nest() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM orders.transition('00000000-0000-0000-0000-000000000307', 'confirmed', 'inner note', 'key-inner');
  RETURN NEW;
END $$;
CREATE TRIGGER a_t3_nest BEFORE UPDATE OF status ON orders.orders FOR EACH ROW
    WHEN (NEW.order_number = 'T3-6') EXECUTE FUNCTION pg_temp.t3_nest();
SELECT orders.transition('00000000-0000-0000-0000-000000000306', 'confirmed', 'outer note', 'key-outer');
SELECT is((SELECT string_agg(o.order_number || ':' || h.notes || '|' || h.idempotency_key || '|' || h.changed_by,
                             ',' ORDER BY o.order_number)
             FROM orders.order_history h JOIN orders.orders o ON o.id = h.order_id
            WHERE o.order_number IN ('T3-6', 'T3-7')),
          'T3-6:outer note|key-outer|' || current_user || ',T3-7:inner note|key-inner|' || current_user,
          'a change made by a trigger of another change leaves the outer one its notes, key and actor');
SELECT is((orders.transition('00000000-0000-0000-0000-000000000306', 'confirmed', 'outer note', 'key-outer')).status,
          'confirmed', '... so repeating the outer change with its key is a no-op');
SELECT is((SELECT count(*)::int FROM orders.order_history h JOIN orders.orders o ON o.id = h.order_id
            WHERE o.order_number IN ('T3-6', 'T3-7')), 2, '... which wrote nothing more');
DROP TRIGGER a_t3_nest ON orders.orders;

-- (0.41.0 library) a DBA's BEFORE trigger that keeps a change from being
-- made: the owner hears so (09000), not that it may not change the order
-- (42501) nor that the order was made again meanwhile (40001: a retry
-- would never end)
INSERT INTO orders.customers (id, full_name) VALUES ('00000000-0000-0000-0000-0000000003c9', 'T3 kept');
INSERT INTO orders.orders (id, order_number, customer_id) VALUES
  ('00000000-0000-0000-0000-0000000003d9', 'T3-KEPT', '00000000-0000-0000-0000-0000000003c9');
CREATE FUNCTION pg_temp.t3_keep() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE TRIGGER a_t3_keep BEFORE UPDATE ON orders.orders FOR EACH ROW
    WHEN (NEW.status = 'cancelled') EXECUTE FUNCTION pg_temp.t3_keep();
SELECT throws_ok($$SELECT orders.transition('00000000-0000-0000-0000-0000000003d9', 'cancelled')$$, '09000',
                 'order "T3-KEPT" was not changed: a trigger or rule on orders.orders skipped the change',
                 'a change a DBA''s trigger skipped: 09000, said so (was 42501)');
DROP TRIGGER a_t3_keep ON orders.orders;

SELECT * FROM finish();
ROLLBACK;
