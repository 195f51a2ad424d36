-- Service slots: holds, bookings, expiry before and after cleanup, release,
-- cancellation, staff overlap, and every refusal with its SQLSTATE.
BEGIN;
SELECT plan(66);

INSERT INTO orders.service_capacity (id, service_id, staff_id, starts_at, ends_at, max_capacity) VALUES
  ('00000000-0000-0000-0000-0000000006a1', '00000000-0000-0000-0000-0000000006b1', '00000000-0000-0000-0000-0000000006c1',
   now() + interval '1 day', now() + interval '1 day 1 hour', 2),
  ('00000000-0000-0000-0000-0000000006a2', '00000000-0000-0000-0000-0000000006b1', NULL,
   now() + interval '2 days', now() + interval '2 days 1 hour', 1),
  ('00000000-0000-0000-0000-0000000006a3', '00000000-0000-0000-0000-0000000006b1', NULL,
   now() - interval '1 hour', now() + interval '1 hour', 5);
INSERT INTO orders.service_capacity (id, service_id, starts_at, ends_at, is_available) VALUES
  ('00000000-0000-0000-0000-0000000006a4', '00000000-0000-0000-0000-0000000006b1', now() + interval '3 days', now() + interval '3 days 1 hour', false);

CREATE FUNCTION pg_temp.slot(uuid) RETURNS text LANGUAGE sql AS
  $$ SELECT booked_count || ' booked, ' || held_count || ' held of ' || max_capacity FROM orders.service_capacity WHERE id = $1 $$;

-- alice holds both places of slot a1
SELECT set_config('request.jwt.claims', '{"sub":"alice"}', true);
SELECT isnt(orders.reserve_time_slot('00000000-0000-0000-0000-0000000006a1', quantity => 2), NULL, 'alice holds 2 places');
SELECT is(pg_temp.slot('00000000-0000-0000-0000-0000000006a1'), '0 booked, 2 held of 2', 'held_count counts them');
SELECT is((SELECT holder || ' ' || status || ' ' || round(extract(epoch FROM expires_at - now()) / 60)
             FROM orders.slot_reservations WHERE capacity_id = '00000000-0000-0000-0000-0000000006a1'),
          'alice held 10', 'the hold belongs to alice and lasts orders.hold_minutes (10)');
SELECT is((SELECT count(*)::int FROM orders.available_slots('00000000-0000-0000-0000-0000000006b1', now(), now() + interval '7 days')
            WHERE capacity_id = '00000000-0000-0000-0000-0000000006a1'), 0, 'a full slot is not offered');

-- bob finds it full
SELECT set_config('request.jwt.claims', '{"sub":"bob"}', true);
SELECT throws_ok($$SELECT orders.reserve_time_slot('00000000-0000-0000-0000-0000000006a1')$$, 'OR023', NULL, 'no room left for bob');

-- alice's hold lapses (time passes): it stops counting before any cleanup
UPDATE orders.slot_reservations SET expires_at = now() - interval '1 second' WHERE holder = 'alice';
SELECT is((SELECT remaining FROM orders.available_slots('00000000-0000-0000-0000-0000000006b1', now(), now() + interval '7 days')
            WHERE capacity_id = '00000000-0000-0000-0000-0000000006a1'), 2, 'lapsed holds are free again before cleanup');
SELECT isnt(orders.reserve_time_slot('00000000-0000-0000-0000-0000000006a1'), NULL, 'bob holds a place freed by the lapse');
SELECT set_config('request.jwt.claims', '{"sub":"alice"}', true);
SELECT throws_like($$SELECT orders.confirm_booking(id) FROM orders.slot_reservations WHERE holder = 'alice'$$,
                   'the hold % expired at %', 'alice''s lapsed hold cannot be confirmed (message)');
SELECT throws_ok($$SELECT orders.confirm_booking(id) FROM orders.slot_reservations WHERE holder = 'alice'$$,
                 'OR026', NULL, 'alice''s lapsed hold cannot be confirmed (OR026)');
SELECT is(orders.cleanup_expired_reservations(), 1, 'cleanup marks the lapsed hold expired');
SELECT is(orders.cleanup_expired_reservations(), 0, 'and finds nothing the second time');
SELECT is(pg_temp.slot('00000000-0000-0000-0000-0000000006a1'), '0 booked, 1 held of 2', 'held_count lost the lapsed places');
SELECT throws_ok($$SELECT orders.confirm_booking(id) FROM orders.slot_reservations WHERE holder = 'alice'$$,
                 'OR026', NULL, 'an expired hold stays unconfirmable after cleanup');

-- bob confirms (twice: one booking), linked to an order item
SELECT set_config('request.jwt.claims', '{"sub":"bob"}', true);
INSERT INTO orders.customers (id, full_name) VALUES ('00000000-0000-0000-0000-0000000006d1', 'Bob');
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle)
VALUES ('00000000-0000-0000-0000-0000000006e1', 'T6-1', '00000000-0000-0000-0000-0000000006d1', 'booking');
INSERT INTO orders.order_items (id, order_id, item_type, name, unit_price)
VALUES ('00000000-0000-0000-0000-0000000006f1', '00000000-0000-0000-0000-0000000006e1', 'service', 'Haircut', 30);
SELECT is((SELECT (orders.confirm_booking(id, '00000000-0000-0000-0000-0000000006f1')).status
             FROM orders.slot_reservations WHERE holder = 'bob'), 'confirmed', 'bob confirms his hold');
SELECT is((SELECT (orders.confirm_booking(id)).status FROM orders.slot_reservations WHERE holder = 'bob'),
          'confirmed', 'confirming again is a no-op');
SELECT is(pg_temp.slot('00000000-0000-0000-0000-0000000006a1'), '1 booked, 0 held of 2', 'one booking, counted once');
SELECT is((SELECT orders.release_reservation(id) FROM orders.slot_reservations WHERE holder = 'bob'), false,
          'a confirmed booking is not released by release_reservation');

-- cancelling the booked order gives the place back
SELECT orders.transition('00000000-0000-0000-0000-0000000006e1', 'cancelled');
SELECT is(pg_temp.slot('00000000-0000-0000-0000-0000000006a1'), '0 booked, 0 held of 2', 'a cancelled order gives its place back');
SELECT is((SELECT status FROM orders.slot_reservations WHERE holder = 'bob'), 'released', 'and its reservation is released');
-- a hold cannot be booked for an item of the cancelled order (OR029), and nothing changes
SELECT orders.reserve_time_slot('00000000-0000-0000-0000-0000000006a1') AS rc \gset
SELECT throws_ok(format('SELECT orders.confirm_booking(%L, %L)', :'rc', '00000000-0000-0000-0000-0000000006f1'),
                 'OR029', NULL, 'no booking for an item of a cancelled order');
SELECT is(pg_temp.slot('00000000-0000-0000-0000-0000000006a1'), '0 booked, 1 held of 2', 'the refused booking counted nothing');
SELECT is((SELECT status || coalesce(' ' || order_item_id, '') FROM orders.slot_reservations WHERE id = :'rc'), 'held',
          'and its hold is still an unlinked hold');
SELECT orders.release_reservation(:'rc');
-- the cancelled order "cancelled" again (its status unchanged) releases
-- nothing: bob's booking put back behind the triggers' back stays
SET LOCAL session_replication_role = replica;
UPDATE orders.slot_reservations SET status = 'confirmed', released_at = NULL WHERE holder = 'bob' AND order_item_id IS NOT NULL;
UPDATE orders.service_capacity SET booked_count = 1 WHERE id = '00000000-0000-0000-0000-0000000006a1';
SET LOCAL session_replication_role = origin;
UPDATE orders.orders SET status = 'cancelled' WHERE id = '00000000-0000-0000-0000-0000000006e1';
SELECT is(pg_temp.slot('00000000-0000-0000-0000-0000000006a1') || ', ' || (SELECT status FROM orders.slot_reservations WHERE holder = 'bob' AND order_item_id IS NOT NULL),
          '1 booked, 0 held of 2, confirmed', 'a status set to what it was (cancelled) releases no booking');
SET LOCAL session_replication_role = replica;
UPDATE orders.slot_reservations SET status = 'released', released_at = now() WHERE holder = 'bob' AND order_item_id IS NOT NULL;
UPDATE orders.service_capacity SET booked_count = 0 WHERE id = '00000000-0000-0000-0000-0000000006a1';
SET LOCAL session_replication_role = origin;

-- release of a live hold
SELECT orders.reserve_time_slot('00000000-0000-0000-0000-0000000006a2') AS r \gset
SELECT is(orders.release_reservation(:'r'), true, 'a live hold is released');
SELECT is(orders.release_reservation(:'r'), false, 'releasing again changes nothing');
SELECT throws_ok(format('SELECT orders.confirm_booking(%L)', :'r'), 'OR025', NULL, 'a released hold cannot be confirmed');
SELECT is(pg_temp.slot('00000000-0000-0000-0000-0000000006a2'), '0 booked, 0 held of 1', 'and holds nothing');

-- refusals of reserve
SELECT throws_ok($$SELECT orders.reserve_time_slot('00000000-0000-0000-0000-0000000006ff')$$, 'OR020', NULL, 'unknown slot');
SELECT throws_ok($$SELECT orders.reserve_time_slot('00000000-0000-0000-0000-0000000006a4')$$, 'OR021', NULL, 'unavailable slot');
SELECT throws_ok($$SELECT orders.reserve_time_slot('00000000-0000-0000-0000-0000000006a3')$$, 'OR022', NULL, 'slot already started');
SELECT throws_ok($$SELECT orders.reserve_time_slot(NULL)$$, '22004', NULL, 'NULL slot');
SELECT throws_ok($$SELECT orders.reserve_time_slot('00000000-0000-0000-0000-0000000006a2', 0)$$, '22023', NULL, 'zero minutes');
SELECT throws_ok($$SELECT orders.reserve_time_slot('00000000-0000-0000-0000-0000000006a2', 10, 0)$$, '22023', NULL, 'zero places');
SELECT throws_ok($$SELECT orders.confirm_booking('00000000-0000-0000-0000-0000000006ff')$$, 'OR024', NULL, 'unknown reservation');

-- a staff member's slots never overlap; adjacent ones are fine
SELECT throws_ok($$INSERT INTO orders.service_capacity (service_id, staff_id, starts_at, ends_at)
                   SELECT service_id, staff_id, starts_at + interval '30 minutes', ends_at + interval '30 minutes'
                     FROM orders.service_capacity WHERE id = '00000000-0000-0000-0000-0000000006a1'$$,
                 'OR027', NULL, 'an overlapping slot of the same staff member');
SELECT lives_ok($$INSERT INTO orders.service_capacity (service_id, staff_id, starts_at, ends_at)
                  SELECT service_id, staff_id, ends_at, ends_at + interval '1 hour'
                    FROM orders.service_capacity WHERE id = '00000000-0000-0000-0000-0000000006a1'$$,
                'an adjacent slot of the same staff member');

-- only the slot functions (or the owner) write counts and reservations
-- (t6_writer: a role of the DBA's with policies of its own, outside the
-- extension's persona model; not even it may write them)
CREATE ROLE t6_writer;
GRANT USAGE ON SCHEMA orders TO t6_writer;
GRANT SELECT, INSERT, UPDATE, DELETE ON orders.service_capacity, orders.slot_reservations TO t6_writer;
CREATE POLICY t6 ON orders.service_capacity TO t6_writer USING (true);
CREATE POLICY t6 ON orders.slot_reservations TO t6_writer USING (true);
SET LOCAL ROLE t6_writer;
SELECT throws_ok($$UPDATE orders.service_capacity SET booked_count = 0 WHERE id = '00000000-0000-0000-0000-0000000006a1'$$,
                 'OR014', NULL, 'a client cannot set booked_count');
SELECT throws_ok($$UPDATE orders.slot_reservations SET status = 'confirmed'$$,
                 'OR014', NULL, 'a client cannot rewrite reservations');
SELECT throws_ok($$DELETE FROM orders.slot_reservations$$, 'OR014', NULL, 'nor delete them');
INSERT INTO orders.service_capacity (id, service_id, starts_at, ends_at, booked_count, held_count, max_capacity)
VALUES ('00000000-0000-0000-0000-0000000006a9', '00000000-0000-0000-0000-0000000006b1',
        now() + interval '5 days', now() + interval '5 days 1 hour', 3, 2, 5);
RESET ROLE;
SELECT is(pg_temp.slot('00000000-0000-0000-0000-0000000006a9'), '0 booked, 0 held of 5',
          'a slot created by a client starts with nothing taken');

-- one statement cancelling two orders whose bookings share two slots (in
-- opposite orders): released together, reservations and slots locked in id
-- order across the statement (a statement trigger since 0.25.0)
INSERT INTO orders.service_capacity (id, service_id, starts_at, ends_at, max_capacity) VALUES
  ('00000000-0000-0000-0000-0000000006a5', '00000000-0000-0000-0000-0000000006b1', now() + interval '6 days', now() + interval '6 days 1 hour', 2),
  ('00000000-0000-0000-0000-0000000006a6', '00000000-0000-0000-0000-0000000006b1', now() + interval '7 days', now() + interval '7 days 1 hour', 2);
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle) VALUES
  ('00000000-0000-0000-0000-0000000006e2', 'T6-2', '00000000-0000-0000-0000-0000000006d1', 'booking'),
  ('00000000-0000-0000-0000-0000000006e3', 'T6-3', '00000000-0000-0000-0000-0000000006d1', 'booking'),
  ('00000000-0000-0000-0000-0000000006e4', 'T6-4', '00000000-0000-0000-0000-0000000006d1', 'booking');
INSERT INTO orders.order_items (id, order_id, item_type, name, unit_price) VALUES
  ('00000000-0000-0000-0000-0000000006f2', '00000000-0000-0000-0000-0000000006e2', 'service', 'Cut', 30),
  ('00000000-0000-0000-0000-0000000006f3', '00000000-0000-0000-0000-0000000006e2', 'service', 'Dye', 30),
  ('00000000-0000-0000-0000-0000000006f4', '00000000-0000-0000-0000-0000000006e3', 'service', 'Cut', 30),
  ('00000000-0000-0000-0000-0000000006f5', '00000000-0000-0000-0000-0000000006e3', 'service', 'Dye', 30),
  ('00000000-0000-0000-0000-0000000006f6', '00000000-0000-0000-0000-0000000006e4', 'service', 'Cut', 30);
SELECT set_config('request.jwt.claims', '{"sub":"carol"}', true);
SELECT orders.confirm_booking(orders.reserve_time_slot(slot), item)
  FROM (VALUES ('00000000-0000-0000-0000-0000000006a5'::uuid, '00000000-0000-0000-0000-0000000006f2'::uuid),
               ('00000000-0000-0000-0000-0000000006a6', '00000000-0000-0000-0000-0000000006f3'),
               ('00000000-0000-0000-0000-0000000006a6', '00000000-0000-0000-0000-0000000006f4'),
               ('00000000-0000-0000-0000-0000000006a5', '00000000-0000-0000-0000-0000000006f5')) b(slot, item);
SELECT set_config('request.jwt.claims', '', true);
UPDATE orders.orders SET status = 'cancelled'
 WHERE id IN ('00000000-0000-0000-0000-0000000006e2', '00000000-0000-0000-0000-0000000006e3');
SELECT is(pg_temp.slot('00000000-0000-0000-0000-0000000006a5') || '; ' || pg_temp.slot('00000000-0000-0000-0000-0000000006a6')
          || '; ' || (SELECT string_agg(status, ',') FROM orders.slot_reservations WHERE holder = 'carol'),
          '0 booked, 0 held of 2; 0 booked, 0 held of 2; released,released,released,released',
          'one UPDATE cancelling two orders gives back all four places on both slots');
-- a move from one cancelled-category status to another still releases (a
-- booking left on a cancelled order, e.g. while a DBA had the trigger
-- disabled, goes back at the next change), as the row trigger did
INSERT INTO orders.lifecycles (name, initial_status) VALUES ('t6', 'open');
INSERT INTO orders.lifecycle_states (lifecycle, status, category, position) VALUES
  ('t6', 'open', 'open', 1), ('t6', 'void', 'cancelled', 2), ('t6', 'void_final', 'cancelled', 3);
INSERT INTO orders.lifecycle_transitions (lifecycle, from_status, to_status) VALUES
  ('t6', 'open', 'void'), ('t6', 'void', 'void_final');
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle)
VALUES ('00000000-0000-0000-0000-0000000006e5', 'T6-5', '00000000-0000-0000-0000-0000000006d1', 't6');
INSERT INTO orders.order_items (id, order_id, item_type, name, unit_price)
VALUES ('00000000-0000-0000-0000-0000000006f7', '00000000-0000-0000-0000-0000000006e5', 'service', 'Cut', 30);
SELECT orders.transition('00000000-0000-0000-0000-0000000006e5', 'void');
SET LOCAL session_replication_role = replica;
INSERT INTO orders.slot_reservations (capacity_id, holder, status, quantity, order_item_id, expires_at, confirmed_at)
VALUES ('00000000-0000-0000-0000-0000000006a6', 'carol', 'confirmed', 1, '00000000-0000-0000-0000-0000000006f7', now(), now());
UPDATE orders.service_capacity SET booked_count = 1 WHERE id = '00000000-0000-0000-0000-0000000006a6';
SET LOCAL session_replication_role = origin;
SELECT orders.transition('00000000-0000-0000-0000-0000000006e5', 'void_final');
SELECT is(pg_temp.slot('00000000-0000-0000-0000-0000000006a6'), '0 booked, 0 held of 2',
          'void -> void_final (both cancelled) gives back a booking left on the order');

-- (0.42.0) a hold is its holder's by the holder's text and its kind (a JWT
-- subject, or a login's role name): a login named after a customer's
-- subject read, released and booked that customer's holds and items, and a
-- subject named like a login those of the login
INSERT INTO orders.service_capacity (id, service_id, starts_at, ends_at, max_capacity) VALUES
  ('00000000-0000-0000-0000-0000000069a1', '00000000-0000-0000-0000-0000000006b1', now() + interval '4 days',
   now() + interval '4 days 1 hour', 5);
INSERT INTO orders.customers (id, full_name, account_id)
VALUES ('00000000-0000-0000-0000-0000000069f2', 'Holder', '00000000-0000-0000-0000-0000000069f1');
INSERT INTO orders.orders (id, customer_id, lifecycle)
VALUES ('00000000-0000-0000-0000-0000000069f3', '00000000-0000-0000-0000-0000000069f2', 'booking');
INSERT INTO orders.order_items (id, order_id, name, item_type)
VALUES ('00000000-0000-0000-0000-0000000069f4', '00000000-0000-0000-0000-0000000069f3', 'Session', 'service');
SELECT set_config('request.jwt.claims', '{"sub":"00000000-0000-0000-0000-0000000069f1"}', true);
SELECT orders.reserve_time_slot('00000000-0000-0000-0000-0000000069a1') AS subject_hold \gset
CREATE ROLE "00000000-0000-0000-0000-0000000069f1";
CREATE ROLE t6_worker;
GRANT USAGE ON SCHEMA orders TO "00000000-0000-0000-0000-0000000069f1", t6_worker;
GRANT SELECT ON orders.slot_reservations TO "00000000-0000-0000-0000-0000000069f1", t6_worker;
GRANT EXECUTE ON FUNCTION orders.reserve_time_slot(uuid, integer, integer), orders.confirm_booking(uuid, uuid),
      orders.release_reservation(uuid) TO "00000000-0000-0000-0000-0000000069f1", t6_worker;
SET LOCAL ROLE "00000000-0000-0000-0000-0000000069f1";   -- its claims are not believed: it is no API role
SELECT is(orders.current_actor() || ' ' || orders.actor_is_subject(), '00000000-0000-0000-0000-0000000069f1 false',
          'a login named after a customer''s subject acts as its role name, no subject');
SELECT is((SELECT count(*)::int FROM orders.slot_reservations), 0, '... it reads none of the customer''s holds');
SELECT throws_ok(format('SELECT orders.release_reservation(%L)', :'subject_hold'), '42501',
                 format('reservation %s belongs to another holder', :'subject_hold'), '... nor releases one');
SELECT orders.reserve_time_slot('00000000-0000-0000-0000-0000000069a1') AS role_hold \gset
SELECT throws_ok(format('SELECT orders.confirm_booking(%L, %L)', :'role_hold', '00000000-0000-0000-0000-0000000069f4'), 'OR028',
                 'order item 00000000-0000-0000-0000-0000000069f4 is not an item of the holder''s orders',
                 '... and its own hold books none of the customer''s items');
SELECT is((SELECT count(*)::int FROM orders.slot_reservations), 1, '... it reads its own hold');
RESET ROLE;
SELECT is((SELECT string_agg(format('%s %s %s', holder, held_by_subject, status), ', ' ORDER BY held_by_subject)
             FROM orders.slot_reservations WHERE capacity_id = '00000000-0000-0000-0000-0000000069a1'),
          '00000000-0000-0000-0000-0000000069f1 f held, 00000000-0000-0000-0000-0000000069f1 t held',
          'two holders of one text, told apart by their kind; the customer''s hold untouched');
SET LOCAL ROLE t6_worker;
SELECT orders.reserve_time_slot('00000000-0000-0000-0000-0000000069a1') AS worker_hold \gset
RESET ROLE;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub":"t6_worker"}', true);
SELECT is((SELECT count(*)::int FROM orders.slot_reservations WHERE id = :'worker_hold'), 0,
          'a JWT subject named like a login does not read the login''s hold');
SELECT throws_ok(format('SELECT orders.release_reservation(%L)', :'worker_hold'), '42501', NULL, '... nor releases it');
SELECT set_config('request.jwt.claims', '{"role":"authenticated"}', true);
SELECT throws_ok($$SELECT orders.reserve_time_slot('00000000-0000-0000-0000-0000000069a1')$$, '42501',
                 'orders.reserve_time_slot: the request names nobody to hold the place for',
                 'an API request without a subject holds nothing (every such request would be one holder)');
RESET ROLE;
-- ... nor reads, confirms or releases the holds its API role's name made
-- (the update classes such holds as the role's; an old library's sessions
-- made them until their connection was recycled)
SELECT set_config('request.jwt.claims', '', true);
SELECT orders.reserve_time_slot('00000000-0000-0000-0000-0000000069a1') AS shared_hold \gset
UPDATE orders.slot_reservations SET holder = 'authenticated' WHERE id = :'shared_hold';   -- as an old library wrote it
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"role":"authenticated"}', true);
SELECT is((SELECT count(*)::int FROM orders.slot_reservations WHERE id = :'shared_hold'), 0,
          'an API request without a subject reads no hold of its API role''s name');
SELECT throws_ok(format('SELECT orders.release_reservation(%L)', :'shared_hold'), '42501',
                 'orders.release_reservation: the request names nobody to hold the place for', '... nor releases one');
SELECT throws_ok(format('SELECT orders.confirm_booking(%L)', :'shared_hold'), '42501',
                 'orders.confirm_booking: the request names nobody to hold the place for', '... nor confirms one');
RESET ROLE;
SELECT is(pg_temp.slot('00000000-0000-0000-0000-0000000069a1'), '0 booked, 4 held of 5', 'four holds counted, no more');
-- staff_holds_lapse: an account's holds lapse with its staff row, a login's of the same name do not
INSERT INTO orders.staff (id, full_name, role, account_id)
VALUES ('00000000-0000-0000-0000-0000000069f5', 'Lapsing', 'manager', '00000000-0000-0000-0000-0000000069f1');
DELETE FROM orders.staff WHERE id = '00000000-0000-0000-0000-0000000069f5';
SELECT is((SELECT string_agg(format('%s %s', held_by_subject, expires_at <= now()), ', ' ORDER BY held_by_subject)
             FROM orders.slot_reservations WHERE holder = '00000000-0000-0000-0000-0000000069f1'),
          'f f, t t', 'a staff row deleted: its account''s hold lapses, the login''s of its name stays');

-- the 0.24.0 form of the trigger (each row, WHEN the status changed into
-- the cancelled category) is still served by the same function
DROP TRIGGER release_cancelled_bookings ON orders.orders;
CREATE TRIGGER release_cancelled_bookings AFTER UPDATE OF status ON orders.orders
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status
                       AND orders.status_category(NEW.lifecycle, NEW.status) = 'cancelled')
    EXECUTE FUNCTION orders.release_cancelled_bookings();
SELECT set_config('request.jwt.claims', '{"sub":"carol"}', true);
SELECT orders.confirm_booking(orders.reserve_time_slot('00000000-0000-0000-0000-0000000006a5'), '00000000-0000-0000-0000-0000000006f6');
SELECT set_config('request.jwt.claims', '', true);
SELECT orders.transition('00000000-0000-0000-0000-0000000006e4', 'cancelled');
SELECT is(pg_temp.slot('00000000-0000-0000-0000-0000000006a5'), '0 booked, 0 held of 2',
          'the row trigger of 0.24.0 on the 0.25.0 library gives the place back too');
-- (0.39.0) a staff member's holds lapse when it leaves: given another
-- login, deleted; a member deactivated again, or without a login, changes
-- nothing.  The lapsed places are free at once; cleanup counts them off.
INSERT INTO orders.service_capacity (id, service_id, starts_at, ends_at, max_capacity) VALUES
  ('00000000-0000-0000-0000-0000000006a8', '00000000-0000-0000-0000-0000000006b1', now() + interval '4 days', now() + interval '4 days 1 hour', 3);
INSERT INTO orders.staff (id, account_id, full_name, role) VALUES
  ('00000000-0000-0000-0000-0000000006d1', '00000000-0000-0000-0000-0000000006d1', 'T06 Desk One', 'manager'),
  ('00000000-0000-0000-0000-0000000006d2', '00000000-0000-0000-0000-0000000006d2', 'T06 Desk Two', 'manager');
SELECT set_config('request.jwt.claims', '{"sub":"00000000-0000-0000-0000-0000000006d1"}', true);
SELECT orders.reserve_time_slot('00000000-0000-0000-0000-0000000006a8', duration_minutes => 600) AS desk1 \gset
SELECT set_config('request.jwt.claims', '{"sub":"00000000-0000-0000-0000-0000000006d2"}', true);
SELECT orders.reserve_time_slot('00000000-0000-0000-0000-0000000006a8', duration_minutes => 600, quantity => 2) AS desk2 \gset
SELECT set_config('request.jwt.claims', '', true);
UPDATE orders.staff SET full_name = 'T06 Desk One (front)', is_active = true WHERE id = '00000000-0000-0000-0000-0000000006d1';
SELECT is((SELECT string_agg((expires_at > now())::text, ' ' ORDER BY holder) FROM orders.slot_reservations
            WHERE id IN (:'desk1', :'desk2')), 'true true', 'two desks hold three places; a change of name keeps them');
UPDATE orders.staff SET account_id = '00000000-0000-0000-0000-0000000006d9' WHERE id = '00000000-0000-0000-0000-0000000006d1';
DELETE FROM orders.staff WHERE id = '00000000-0000-0000-0000-0000000006d2';
SELECT is((SELECT string_agg((expires_at > now())::text, ' ' ORDER BY holder) FROM orders.slot_reservations
            WHERE id IN (:'desk1', :'desk2')), 'false false',
          'desk one given another login, desk two deleted: their holds lapse');
SELECT is((SELECT remaining FROM orders.available_slots('00000000-0000-0000-0000-0000000006b1', now(), now() + interval '7 days')
            WHERE capacity_id = '00000000-0000-0000-0000-0000000006a8'), 3, '... their places are free at once');
-- a JWT sub in upper case is the same member (its uuid prints in lower case)
INSERT INTO orders.staff (id, account_id, full_name, role) VALUES
  ('00000000-0000-0000-0000-0000000006d3', '00000000-0000-0000-0000-0000000006dc', 'T06 Desk Three', 'manager');
SELECT set_config('request.jwt.claims', '{"sub":"00000000-0000-0000-0000-0000000006DC"}', true);
SELECT orders.reserve_time_slot('00000000-0000-0000-0000-0000000006a8', duration_minutes => 600) AS desk3 \gset
SELECT set_config('request.jwt.claims', '', true);
UPDATE orders.staff SET is_active = false WHERE id = '00000000-0000-0000-0000-0000000006d3';
SELECT is((SELECT holder || ' ' || (expires_at > now()) FROM orders.slot_reservations WHERE id = :'desk3'),
          '00000000-0000-0000-0000-0000000006DC false', '... also when its JWT sub was sent in upper case');
SELECT is(orders.cleanup_expired_reservations() >= 2 AND pg_temp.slot('00000000-0000-0000-0000-0000000006a8') = '0 booked, 0 held of 3',
          true, '... and cleanup counts them off');

-- re-defined with one transition table only, the statement form is refused
-- (39P01: it folds the old rows out and the new rows in) and the UPDATE with it
DROP TRIGGER release_cancelled_bookings ON orders.orders;
CREATE TRIGGER release_cancelled_bookings AFTER UPDATE ON orders.orders
    REFERENCING NEW TABLE AS new_orders
    FOR EACH STATEMENT EXECUTE FUNCTION orders.release_cancelled_bookings();
SELECT throws_ok($$UPDATE orders.orders SET notes = 'one table' WHERE id = '00000000-0000-0000-0000-0000000006e4'$$,
                 '39P01', NULL, 'the trigger with only a NEW TABLE is refused (39P01)');
SELECT is((SELECT count(*)::int FROM orders.orders WHERE notes = 'one table'), 0, 'and the UPDATE changed nothing');

-- pg_cron is optional: without it the job functions say what to do
SELECT throws_ok('SELECT orders.schedule_jobs()', 'OR030', NULL, 'schedule_jobs without pg_cron');
SELECT throws_ok('SELECT orders.unschedule_jobs()', 'OR030', NULL, 'unschedule_jobs without pg_cron');

SELECT * FROM finish();
ROLLBACK;
