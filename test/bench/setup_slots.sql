-- Benchmark fixtures for test/bench/slots.sh: 2,000 slots of a service with
-- room for every booking of the run, for (a) the C functions, (b) the floor
-- (same tables, no triggers) and (c) PL/pgSQL functions written from seed
-- 003's description.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS bench CASCADE;
CREATE SCHEMA bench;

INSERT INTO orders.service_capacity (id, service_id, starts_at, ends_at, max_capacity)
SELECT ('d0000000-0000-0000-0000-' || lpad(n::text, 12, '0'))::uuid, 'd0000000-0000-0000-0000-000000000000',
       now() + n * interval '1 hour', now() + n * interval '1 hour' + interval '50 minutes', 1000000
  FROM generate_series(1, 2000) n;

CREATE TABLE bench.capacity (LIKE orders.service_capacity INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING CONSTRAINTS);
CREATE TABLE bench.reservations (LIKE orders.slot_reservations INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING CONSTRAINTS,
    FOREIGN KEY (capacity_id) REFERENCES bench.capacity (id));
INSERT INTO bench.capacity SELECT * FROM orders.service_capacity;
CREATE TABLE bench.capacity_plpgsql (LIKE orders.service_capacity INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING CONSTRAINTS);
CREATE TABLE bench.reservations_plpgsql (LIKE orders.slot_reservations INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING CONSTRAINTS,
    FOREIGN KEY (capacity_id) REFERENCES bench.capacity_plpgsql (id));
INSERT INTO bench.capacity_plpgsql SELECT * FROM orders.service_capacity;

-- (c) seed 003's reserve_time_slot / confirm_booking, as PL/pgSQL
CREATE FUNCTION bench.reserve_time_slot(p_capacity_id uuid, p_duration_minutes int DEFAULT 10)
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    slot bench.capacity_plpgsql;
    live int;
    rid uuid;
BEGIN
    SELECT * INTO slot FROM bench.capacity_plpgsql WHERE id = p_capacity_id FOR UPDATE;
    IF NOT FOUND OR NOT slot.is_available OR slot.starts_at <= now() THEN
        RAISE EXCEPTION 'slot not available';
    END IF;
    SELECT coalesce(sum(quantity), 0) INTO live FROM bench.reservations_plpgsql
     WHERE capacity_id = p_capacity_id AND status = 'held' AND expires_at > now();
    IF slot.booked_count + live + 1 > slot.max_capacity THEN
        RAISE EXCEPTION 'slot full';
    END IF;
    INSERT INTO bench.reservations_plpgsql (capacity_id, holder, quantity, status, expires_at)
    VALUES (p_capacity_id, current_user, 1, 'held', now() + p_duration_minutes * interval '1 minute')
    RETURNING id INTO rid;
    UPDATE bench.capacity_plpgsql SET held_count = held_count + 1 WHERE id = p_capacity_id;
    RETURN rid;
END $$;
CREATE FUNCTION bench.confirm_booking(p_reservation_id uuid)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r bench.reservations_plpgsql;
BEGIN
    SELECT * INTO r FROM bench.reservations_plpgsql WHERE id = p_reservation_id FOR UPDATE;
    IF r.status = 'confirmed' THEN RETURN r.status; END IF;
    IF r.status <> 'held' OR r.expires_at <= now() THEN
        RAISE EXCEPTION 'hold expired or released';
    END IF;
    UPDATE bench.reservations_plpgsql SET status = 'confirmed', confirmed_at = now() WHERE id = p_reservation_id;
    UPDATE bench.capacity_plpgsql SET held_count = held_count - r.quantity, booked_count = booked_count + r.quantity
     WHERE id = r.capacity_id;
    RETURN 'confirmed';
END $$;
-- history: 20,000 released holds on every side, so that the kept plans are
-- made for a table with rows and statistics (plans made on an empty table
-- scan it sequentially until an ANALYZE replaces them)
SET session_replication_role = replica;
INSERT INTO orders.slot_reservations (capacity_id, holder, quantity, status, expires_at, released_at)
SELECT ('d0000000-0000-0000-0000-' || lpad((1 + n % 2000)::text, 12, '0'))::uuid, 'past', 1, 'released',
       now() - interval '1 day', now() - interval '1 day'
  FROM generate_series(1, 20000) n;
INSERT INTO bench.reservations SELECT * FROM orders.slot_reservations;
INSERT INTO bench.reservations_plpgsql SELECT * FROM orders.slot_reservations;
RESET session_replication_role;
VACUUM ANALYZE;
