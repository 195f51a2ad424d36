-- Slot holds written without SQL while the two tables are as installed
-- (0.23.0 library), by the kept statements otherwise: the same rows, counts and
-- refusals either way, and whatever a DBA changed (a default, a trigger, an
-- index) is honoured by falling back to the statements.
BEGIN;
SELECT plan(40);

INSERT INTO orders.service_capacity (id, service_id, starts_at, ends_at, max_capacity) VALUES
  ('00000000-0000-0000-0000-0000000027a1', '00000000-0000-0000-0000-0000000027b1',
   now() + interval '1 day', now() + interval '1 day 1 hour', 2);

CREATE FUNCTION pg_temp.slot() RETURNS text LANGUAGE sql AS
  $$ SELECT booked_count || ' booked, ' || held_count || ' held of ' || max_capacity
       FROM orders.service_capacity WHERE id = '00000000-0000-0000-0000-0000000027a1' $$;
CREATE FUNCTION pg_temp.hold() RETURNS uuid LANGUAGE sql AS
  $$ SELECT orders.reserve_time_slot('00000000-0000-0000-0000-0000000027a1') $$;
SELECT set_config('request.jwt.claims', '{"sub":"ann"}', true);

-- as installed: written directly
CREATE TEMP TABLE h AS SELECT pg_temp.hold() AS id;
SELECT is((SELECT format('%s %s %s %s %s %s', holder, quantity, status, created_at = now(),
                         order_item_id IS NULL AND confirmed_at IS NULL AND released_at IS NULL,
                         orders.partition_of(id) = current_setting('orders.partition')::int)
             FROM orders.slot_reservations WHERE id = (SELECT id FROM h)),
          'ann 1 held t t t', 'a hold written directly: its columns as the INSERT''s defaults would make them');
SELECT is(pg_temp.slot(), '0 booked, 1 held of 2', 'and counted');
-- a slot looked up: by its key's index, or a scan of the table (its plan's choice)
CREATE FUNCTION pg_temp.slot_reads() RETURNS bigint LANGUAGE sql AS
  $$ SELECT pg_stat_get_xact_numscans('orders.service_capacity_pkey'::regclass)
          + pg_stat_get_xact_numscans('orders.service_capacity'::regclass) $$;
CREATE TEMP TABLE key_reads AS SELECT pg_temp.slot_reads() AS n;
SELECT is((SELECT (r).status || ' ' || ((r).confirmed_at = now()) || ' ' || ((r).id = (SELECT id FROM h))
             FROM (SELECT orders.confirm_booking((SELECT id FROM h)) AS r) c),
          'confirmed true true', 'confirmed directly: the changed reservation returned');
-- (0.45.0 library) the foreign key's check after the update of a hold made in
-- this transaction would look the slot up once more: the slot is locked, it is left out
SELECT is(pg_temp.slot_reads() - (SELECT n FROM key_reads), 1::bigint, 'the confirmation looked its slot up once (its lock; the key''s check left out)');
SELECT is(pg_temp.slot(), '1 booked, 0 held of 2', 'its place moved from held to booked');
-- (review) a table without that foreign key names no check: still booked directly
SAVEPOINT no_key;
ALTER TABLE orders.slot_reservations DROP CONSTRAINT slot_reservations_capacity_id_fkey;
CREATE TEMP TABLE h_no_key AS SELECT pg_temp.hold() AS id;
SELECT is(format('%s %s', (orders.confirm_booking((SELECT id FROM h_no_key))).status, pg_temp.slot()),
          'confirmed 2 booked, 0 held of 2', 'without the slot''s foreign key a hold is confirmed and counted as before');
ROLLBACK TO SAVEPOINT no_key;
SELECT is((SELECT orders.confirm_booking((SELECT id FROM h)) = r FROM orders.slot_reservations r WHERE id = (SELECT id FROM h)),
          true, 'confirming again returns the stored row unchanged');
CREATE TEMP TABLE h2 AS SELECT pg_temp.hold() AS id;
SELECT throws_ok('SELECT pg_temp.hold()', 'OR023', NULL, 'no room beside a booking and a live hold');
SELECT is(pg_temp.slot(), '1 booked, 1 held of 2', 'the refusal changed nothing');
SELECT is(orders.release_reservation((SELECT id FROM h2)), true, 'a hold released directly');
SELECT is((SELECT status || ' ' || (released_at = now()) FROM orders.slot_reservations WHERE id = (SELECT id FROM h2)),
          'released true', 'stamped released');
SELECT is(pg_temp.slot(), '1 booked, 0 held of 2', 'and its place given back');

-- a default a DBA changed is the INSERT's: the statements write the hold
ALTER TABLE orders.slot_reservations ALTER COLUMN created_at SET DEFAULT '2000-01-01 00:00+00';
CREATE TEMP TABLE h3 AS SELECT pg_temp.hold() AS id;
SELECT is((SELECT created_at FROM orders.slot_reservations WHERE id = (SELECT id FROM h3)),
          '2000-01-01 00:00+00'::timestamptz, 'a changed default: the hold gets it (written by the INSERT)');
SELECT is(pg_temp.slot(), '1 booked, 1 held of 2', 'counted the same');
SELECT is(orders.release_reservation((SELECT id FROM h3)), true, 'released by the statements');
ALTER TABLE orders.slot_reservations ALTER COLUMN created_at SET DEFAULT now();
CREATE TEMP TABLE h4 AS SELECT pg_temp.hold() AS id;
SELECT is((SELECT created_at = now() FROM orders.slot_reservations WHERE id = (SELECT id FROM h4)),
          true, 'the default restored: direct again');

-- a DBA's statement trigger on the slots sees every change of the counts
CREATE TEMP TABLE count_changes (n int);
CREATE FUNCTION pg_temp.count_changes() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN INSERT INTO pg_temp.count_changes SELECT count(*) FROM new_rows; RETURN NULL; END $$;
CREATE TRIGGER dba_counts AFTER UPDATE ON orders.service_capacity
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.count_changes();
SELECT is((orders.confirm_booking((SELECT id FROM h4))).status, 'confirmed', 'confirmed with the DBA''s trigger');
SELECT is((SELECT array_agg(n) FROM count_changes), '{1}', 'the DBA''s statement trigger saw the count change');
SELECT is(pg_temp.slot(), '2 booked, 0 held of 2', 'the slot is full');
SELECT throws_ok('SELECT pg_temp.hold()', 'OR023', NULL, 'full, by the statements too');
DROP TRIGGER dba_counts ON orders.service_capacity;

-- a DBA's row trigger that skips the hold: refused, nothing counted
UPDATE orders.service_capacity SET max_capacity = 5 WHERE id = '00000000-0000-0000-0000-0000000027a1';
CREATE FUNCTION pg_temp.skip() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE TRIGGER dba_skip BEFORE INSERT ON orders.slot_reservations FOR EACH ROW EXECUTE FUNCTION pg_temp.skip();
SELECT throws_ok('SELECT pg_temp.hold()', '09000', NULL, 'a hold a trigger skipped is refused');
SELECT is(pg_temp.slot(), '2 booked, 0 held of 5', 'and not counted');
DROP TRIGGER dba_skip ON orders.slot_reservations;

-- a DBA's foreign key on another column of the holds is checked
CREATE TABLE public.t27_holders (name text PRIMARY KEY);
INSERT INTO public.t27_holders VALUES ('ann');
ALTER TABLE orders.slot_reservations ADD CONSTRAINT dba_holder FOREIGN KEY (holder) REFERENCES public.t27_holders NOT VALID;
SELECT set_config('request.jwt.claims', '{"sub":"zed"}', true);
SELECT throws_ok('SELECT pg_temp.hold()', '23503', NULL, 'the DBA''s foreign key refuses a holder it does not know');
SELECT is(pg_temp.slot(), '2 booked, 0 held of 5', 'nothing counted');
SELECT set_config('request.jwt.claims', '{"sub":"ann"}', true);
ALTER TABLE orders.slot_reservations DROP CONSTRAINT dba_holder;

-- a DBA's row trigger that skips a reservation's change: refused, nothing counted
CREATE TEMP TABLE h5 AS SELECT pg_temp.hold() AS id;
CREATE TRIGGER dba_skip BEFORE UPDATE ON orders.slot_reservations FOR EACH ROW EXECUTE FUNCTION pg_temp.skip();
SELECT throws_ok('SELECT orders.confirm_booking((SELECT id FROM h5))', '09000', NULL,
                 'a confirmation a trigger skipped is refused');
SELECT is(pg_temp.slot() || ' ' || (SELECT status FROM orders.slot_reservations WHERE id = (SELECT id FROM h5)),
          '2 booked, 1 held of 5 held', 'and nothing moved');
DROP TRIGGER dba_skip ON orders.slot_reservations;
CREATE TRIGGER dba_skip BEFORE UPDATE ON orders.service_capacity FOR EACH ROW EXECUTE FUNCTION pg_temp.skip();
SELECT throws_ok('SELECT orders.release_reservation((SELECT id FROM h5))', '09000', NULL,
                 'a release whose count a trigger on the slots skipped is refused');
SELECT is(pg_temp.slot() || ' ' || (SELECT status FROM orders.slot_reservations WHERE id = (SELECT id FROM h5)),
          '2 booked, 1 held of 5 held', 'and nothing moved');
DROP TRIGGER dba_skip ON orders.service_capacity;
SELECT is(orders.release_reservation((SELECT id FROM h5)), true, 'released once the triggers are gone');

-- without the index of holds the live holds are still counted
DROP INDEX orders.slot_reservations_capacity_status_idx;
SELECT isnt(orders.reserve_time_slot('00000000-0000-0000-0000-0000000027a1', quantity => 3), NULL, 'three places held');
SELECT throws_ok('SELECT pg_temp.hold()', 'OR023', NULL, 'the holds counted without their index');
SELECT is((SELECT count(*)::int FROM orders.recount_slots()), 0, 'every slot''s counts agree with its reservations');

-- a read-only transaction writes nothing (PostgREST runs GET requests so)
SAVEPOINT read_only;
SET LOCAL transaction_read_only = on;
SELECT throws_ok('SELECT pg_temp.hold()', '25006', NULL, 'no hold in a read-only transaction');
ROLLBACK TO SAVEPOINT read_only;
SAVEPOINT read_only;
SET LOCAL transaction_read_only = on;
SELECT throws_ok('SELECT orders.release_reservation((SELECT id FROM h5))', '25006', NULL,
                 'no release either, not even of a hold already released');
ROLLBACK TO SAVEPOINT read_only;
SELECT is(pg_temp.slot(), '2 booked, 3 held of 5', 'nothing changed');

-- orders.new_id() replaced by the owner: the INSERT's default is the new body's
UPDATE orders.service_capacity SET max_capacity = 6 WHERE id = '00000000-0000-0000-0000-0000000027a1';
CREATE OR REPLACE FUNCTION orders.new_id() RETURNS uuid LANGUAGE sql VOLATILE
    AS $$ SELECT '27272727-2727-4727-8727-272727272727'::uuid $$;
SELECT is(pg_temp.hold(), '27272727-2727-4727-8727-272727272727'::uuid,
          'a replaced new_id(): the hold gets its id (written by the INSERT)');

-- (0.36.0) TRUNCATE skips the counters: refused while a slot counts places
CREATE TEMP TABLE before_truncate AS SELECT count(*) AS n FROM orders.slot_reservations;
SELECT throws_ok('TRUNCATE orders.slot_reservations', 'OR014',
                 'cannot truncate orders.slot_reservations: 1 slots count booked or held places',
                 'TRUNCATE of the reservations refused while a slot counts places (OR014)');
SELECT is(format('%s; %s', pg_temp.slot(), (SELECT count(*) FROM orders.slot_reservations) = (SELECT n FROM before_truncate)),
          '2 booked, 4 held of 6; t', 'the refusal changed nothing');
DELETE FROM orders.slot_reservations;
SELECT is((SELECT count(*)::int FROM orders.recount_slots()), 1, 'the owner''s DELETE left the counts for recount_slots()');
TRUNCATE orders.slot_reservations;
SELECT is(pg_temp.slot(), '0 booked, 0 held of 6', 'with nothing counted, TRUNCATE runs');

SELECT * FROM finish();
ROLLBACK;
