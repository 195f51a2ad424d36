
---------------------------------------------------------------------------
-- Service slots (seed 003, doc/slots.md): time slots with a capacity, holds
-- during checkout, bookings, expiry; never oversold.  pg_cron jobs.
---------------------------------------------------------------------------

CREATE TABLE orders.service_capacity (
    id            uuid PRIMARY KEY DEFAULT orders.new_id(),
    service_id    uuid NOT NULL,
    staff_id      uuid,
    starts_at     timestamptz NOT NULL,
    ends_at       timestamptz NOT NULL,
    max_capacity  integer NOT NULL DEFAULT 1 CHECK (max_capacity >= 1),
    booked_count  integer NOT NULL DEFAULT 0 CHECK (booked_count >= 0),
    held_count    integer NOT NULL DEFAULT 0 CHECK (held_count >= 0),
    is_available  boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at),
    CONSTRAINT service_capacity_not_overbooked CHECK (booked_count <= max_capacity)
);
COMMENT ON TABLE orders.service_capacity IS
    'Bookable time slots (seed 003); booked_count and held_count are maintained by the slot functions';
COMMENT ON COLUMN orders.service_capacity.staff_id IS 'NULL: a generic slot; else a staff member, whose slots never overlap';
COMMENT ON COLUMN orders.service_capacity.held_count IS
    'Places in holds not yet confirmed, released or marked expired (holds past expires_at count as free already)';
CREATE INDEX service_capacity_service_starts_idx ON orders.service_capacity (service_id, starts_at);
CREATE INDEX service_capacity_staff_starts_idx ON orders.service_capacity (staff_id, starts_at)
    WHERE staff_id IS NOT NULL;

CREATE TABLE orders.slot_reservations (
    id             uuid PRIMARY KEY DEFAULT orders.new_id(),
    capacity_id    uuid NOT NULL REFERENCES orders.service_capacity (id) ON DELETE RESTRICT,
    holder         text NOT NULL,
    quantity       integer NOT NULL DEFAULT 1 CHECK (quantity >= 1),
    status         text NOT NULL DEFAULT 'held'
                   CHECK (status IN ('held', 'confirmed', 'released', 'expired')),
    expires_at     timestamptz NOT NULL,
    order_item_id  uuid REFERENCES orders.order_items (id) ON DELETE SET NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    confirmed_at   timestamptz,
    released_at    timestamptz,
    -- (0.42.0) whether the holder is a person (a JWT subject, or the owner's
    -- acting_for label) or a login's role name: the same text of the two
    -- kinds is two holders
    held_by_subject boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE orders.slot_reservations IS
    'Holds and bookings of time slots; written only by the slot functions';
COMMENT ON COLUMN orders.slot_reservations.holder IS 'JWT sub of the caller when set, else current_user';
COMMENT ON COLUMN orders.slot_reservations.held_by_subject IS
    'The holder is a JWT subject (or the acting_for label), not a role name (0.42.0)';
CREATE INDEX slot_reservations_capacity_status_idx ON orders.slot_reservations (capacity_id, status, expires_at);
CREATE INDEX slot_reservations_held_expiry_idx ON orders.slot_reservations (expires_at) WHERE status = 'held';
CREATE INDEX slot_reservations_order_item_idx ON orders.slot_reservations (order_item_id)
    WHERE order_item_id IS NOT NULL;
CREATE INDEX slot_reservations_holder_idx ON orders.slot_reservations (holder);

-- An item a live reservation books goes only with its booking: a booking
-- is given back by cancelling its order (release_cancelled_bookings), and
-- an item deleted first — by anybody, or by a customer racing the
-- confirmation — would leave the place taken for good (the reservation's
-- link is ON DELETE SET NULL) (0.27.0).  Its query runs after the row's
-- lock, with a new snapshot: a confirmation the delete waited for counts.
-- Nor is its quantity lowered below the places its bookings hold (each
-- place is one unit of the item: confirm_booking's OR032), nor (0.28.0)
-- its product changed while it is booked (confirm_booking's OR033 checked
-- the product once: a massage item booked, then turned into a sticker; a
-- variant of the same product may change, a longer session say), nor the
-- item moved to another order (cancelling that order, or keeping this one
-- open, would keep the place for good: OR031).
-- SECURITY DEFINER: the reservations of an item are not all the caller's.
-- (0.37.0) The reservations read with the latest snapshot
-- (item_booked_places): at REPEATABLE READ the transaction's snapshot
-- missed a booking committed after it (the row's lock waited for it), and
-- the quantity went below the places.
CREATE FUNCTION orders.item_booked_places(item_id uuid) RETURNS bigint
    LANGUAGE c VOLATILE STRICT
    AS 'MODULE_PATHNAME', 'orders_item_booked_places';
COMMENT ON FUNCTION orders.item_booked_places(uuid) IS
    'Places the confirmed reservations of an order item hold (0 when only held, NULL when none is live), latest snapshot; for booked_item_guard';
CREATE FUNCTION orders.booked_item_guard() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    places bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF orders.item_booked_places(OLD.id) IS NOT NULL THEN
            RAISE EXCEPTION 'order item % is booked: a slot reservation holds its place', OLD.id
                USING ERRCODE = 'OR031',
                      HINT = 'Cancel its order to give the place back (release_cancelled_bookings), or confirm the booking for another item first; an order in a final status keeps its booking: its owner releases the reservation, then runs orders.recount_slots() (doc/operations.md).';
        END IF;
        RETURN OLD;
    END IF;
    IF (NEW.product_id IS DISTINCT FROM OLD.product_id OR NEW.order_id IS DISTINCT FROM OLD.order_id)
       AND orders.item_booked_places(OLD.id) IS NOT NULL THEN
        IF NEW.order_id IS DISTINCT FROM OLD.order_id THEN
            RAISE EXCEPTION 'order item % is booked: it stays with its order', OLD.id
                USING ERRCODE = 'OR031', HINT = 'Cancel its order to give the place back, then book for an item of the other order.';
        END IF;
        RAISE EXCEPTION 'order item % is booked: its product stays', OLD.id
            USING ERRCODE = 'OR033', HINT = 'Cancel its order to give the place back, then book for another item.';
    END IF;
    IF NEW.quantity < OLD.quantity THEN
        places := orders.item_booked_places(OLD.id);
        IF places > NEW.quantity THEN
            RAISE EXCEPTION 'order item % books % places: its quantity cannot go below that', OLD.id, places
                USING ERRCODE = 'OR032', HINT = 'Cancel its order to give the places back.';
        END IF;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER booked_item_guard BEFORE DELETE OR UPDATE OF quantity, product_id, order_id ON orders.order_items
    FOR EACH ROW EXECUTE FUNCTION orders.booked_item_guard();

-- A staff member's slots never overlap.  An exclusion constraint would need
-- btree_gist (CREATE EXTENSION orders would then need CASCADE); this trigger
-- serializes the slots of one staff member with a transaction-level
-- advisory lock and checks after taking it.
-- SECURITY DEFINER: the overlap check must see every slot of the staff
-- member, not the ones the caller's row level security shows.
CREATE FUNCTION orders.check_staff_overlap() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    other uuid;
BEGIN
    IF NEW.staff_id IS NULL THEN
        RETURN NEW;
    END IF;
    IF current_setting('transaction_isolation') = 'repeatable read' THEN
        RAISE EXCEPTION 'slots of a staff member must be written at READ COMMITTED or SERIALIZABLE isolation'
            USING ERRCODE = '25000',
                  DETAIL = 'A REPEATABLE READ snapshot cannot see a concurrent slot of the same staff member.';
    END IF;
    PERFORM orders.xact_lock(hashtextextended('orders.staff:' || NEW.staff_id::text, 0));
    SELECT c.id INTO other FROM orders.service_capacity c
     WHERE c.staff_id = NEW.staff_id AND c.id <> NEW.id
       AND c.starts_at < NEW.ends_at AND NEW.starts_at < c.ends_at
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'staff member % already has slot % overlapping % .. %',
            NEW.staff_id, other, NEW.starts_at, NEW.ends_at
            USING ERRCODE = 'OR027',
                  HINT = 'A staff member''s slots must not overlap; adjacent slots (one ends when the next starts) are fine.';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER check_staff_overlap BEFORE INSERT OR UPDATE OF staff_id, starts_at, ends_at
    ON orders.service_capacity FOR EACH ROW EXECUTE FUNCTION orders.check_staff_overlap();

CREATE FUNCTION orders.slot_counts_guard() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_slot_counts_guard';
CREATE TRIGGER slot_counts_guard BEFORE INSERT OR UPDATE OF booked_count, held_count
    ON orders.service_capacity FOR EACH ROW EXECUTE FUNCTION orders.slot_counts_guard();
CREATE TRIGGER slot_counts_guard BEFORE INSERT OR UPDATE OR DELETE
    ON orders.slot_reservations FOR EACH ROW EXECUTE FUNCTION orders.slot_counts_guard();
CREATE TRIGGER set_updated_at BEFORE UPDATE ON orders.service_capacity
    FOR EACH ROW EXECUTE FUNCTION orders.set_updated_at();
CREATE TRIGGER id_stays BEFORE UPDATE OF id ON orders.service_capacity
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION orders.id_stays();

-- (0.36.0) TRUNCATE skips the reservations' row triggers and the slot
-- functions: slots would keep counting places nobody holds, for good.
-- Refused while any slot counts a place (at READ COMMITTED only, as for
-- the other counted tables).  SECURITY DEFINER: it counts every slot, not
-- the ones the caller's row level security shows.
CREATE FUNCTION orders.reservations_truncate_guard() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    counting bigint;
BEGIN
    PERFORM orders.require_read_committed('TRUNCATE orders.slot_reservations',
        'Its check that nothing counts the rows needs a snapshot taken after the table''s lock.');
    counting := (SELECT count(*) FROM orders.service_capacity c WHERE c.booked_count <> 0 OR c.held_count <> 0);
    IF counting > 0 THEN
        RAISE EXCEPTION 'cannot truncate orders.slot_reservations: % slots count booked or held places', counting
            USING ERRCODE = 'OR014',
                  HINT = 'Release the holds and cancel the bookings'' orders, or as the table owner DELETE the reservations, then SELECT * FROM orders.recount_slots().';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER reservations_truncate_guard BEFORE TRUNCATE ON orders.slot_reservations
    FOR EACH STATEMENT EXECUTE FUNCTION orders.reservations_truncate_guard();

-- staff_holds_lapse (0.39.0) — a staff member deactivated, deleted or
-- given another login: the live holds of its account lapse now (their
-- expires_at set to now(); free at once for reserve_time_slot and
-- available_slots, OR026 for confirm_booking, counted off by the next
-- cleanup_expired_reservations).  A staff hold lasts up to 24 hours, and a
-- deactivated member's kept its places that long (confirm_booking refused
-- it, OR028).  Locks the holds in id order — reservation rows only, before
-- any slot row, as the slot functions do.  As the owner: whoever may
-- deactivate staff need not write reservations.  A customer's holds under
-- the same account lapse with it.  The holder is the JWT sub as sent:
-- compared in lower case, as the account's uuid prints (a sub in upper
-- case is the same staff member); a login's role name is no account
-- (0.42.0: held_by_subject).  Only live holds are read (the partial
-- index of held reservations by expiry).
CREATE FUNCTION orders.staff_holds_lapse() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE orders.slot_reservations r SET expires_at = now()
     WHERE r.id IN (SELECT h.id FROM orders.slot_reservations h
                     WHERE lower(h.holder) = OLD.account_id::text AND h.held_by_subject
                       AND h.status = 'held' AND h.expires_at > now()
                     ORDER BY h.id FOR UPDATE)
       AND r.status = 'held' AND r.expires_at > now();
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION orders.staff_holds_lapse() FROM PUBLIC;
CREATE TRIGGER staff_holds_lapse AFTER UPDATE OF is_active, account_id ON orders.staff
    FOR EACH ROW WHEN (OLD.account_id IS NOT NULL
                       AND ((OLD.is_active AND NOT NEW.is_active) OR NEW.account_id IS DISTINCT FROM OLD.account_id))
    EXECUTE FUNCTION orders.staff_holds_lapse();
CREATE TRIGGER staff_holds_lapse_delete AFTER DELETE ON orders.staff
    FOR EACH ROW WHEN (OLD.account_id IS NOT NULL) EXECUTE FUNCTION orders.staff_holds_lapse();

CREATE FUNCTION orders.release_cancelled_bookings() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_release_cancelled_bookings';
-- once per statement, for all the orders it moved into a cancelled-category
-- status: their reservations and slots locked in id order across the
-- statement (transition tables: the orders' other statement triggers have
-- them captured anyway)
CREATE TRIGGER release_cancelled_bookings AFTER UPDATE ON orders.orders
    REFERENCING OLD TABLE AS old_orders NEW TABLE AS new_orders
    FOR EACH STATEMENT EXECUTE FUNCTION orders.release_cancelled_bookings();

-- The API (C, doc/slots.md).
CREATE FUNCTION orders.reserve_time_slot(capacity_id uuid, duration_minutes integer DEFAULT NULL,
                                         quantity integer DEFAULT 1)
    RETURNS uuid
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'orders_reserve_time_slot';
COMMENT ON FUNCTION orders.reserve_time_slot(uuid, integer, integer) IS
    'Hold places of a time slot (duration NULL: orders.hold_minutes, 10); returns the reservation id';

CREATE FUNCTION orders.confirm_booking(reservation_id uuid, order_item_id uuid DEFAULT NULL)
    RETURNS orders.slot_reservations
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'orders_confirm_booking';
COMMENT ON FUNCTION orders.confirm_booking(uuid, uuid) IS
    'Make a live hold a booking, linked to an order item; confirming twice is a no-op';

CREATE FUNCTION orders.release_reservation(reservation_id uuid)
    RETURNS boolean
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'orders_release_reservation';
COMMENT ON FUNCTION orders.release_reservation(uuid) IS
    'Give a hold back now; false when there was no live hold to release';

CREATE FUNCTION orders.cleanup_expired_reservations()
    RETURNS integer
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'orders_cleanup_expired_reservations';
COMMENT ON FUNCTION orders.cleanup_expired_reservations() IS
    'Mark lapsed holds expired and free their places; returns how many (0 when another run is busy)';

-- Slots of a service with room left in [from, to), correct before any
-- cleanup: lapsed holds are not counted.  SECURITY DEFINER (search_path
-- pinned): it shows anybody free places only — neither who holds them nor
-- which staff member serves.
CREATE FUNCTION orders.available_slots(service_id uuid, "from" timestamptz, "to" timestamptz)
    RETURNS TABLE (capacity_id uuid, starts_at timestamptz, ends_at timestamptz,
                   max_capacity integer, booked integer, held integer, remaining integer)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT c.id, c.starts_at, c.ends_at, c.max_capacity, c.booked_count,
           h.live::integer, (c.max_capacity - c.booked_count - h.live)::integer
      FROM orders.service_capacity c
      CROSS JOIN LATERAL (
          SELECT coalesce(pg_catalog.sum(r.quantity), 0) AS live
            FROM orders.slot_reservations r
           WHERE r.capacity_id = c.id AND r.status = 'held' AND r.expires_at > pg_catalog.now()) h
     WHERE c.service_id = available_slots.service_id
       AND c.starts_at >= available_slots."from" AND c.starts_at < available_slots."to"
       AND c.starts_at > pg_catalog.now()
       AND c.is_available
       AND c.max_capacity - c.booked_count - h.live > 0
     ORDER BY c.starts_at, c.id;
END;
COMMENT ON FUNCTION orders.available_slots(uuid, timestamptz, timestamptz) IS
    'Bookable slots of a service starting in [from, to), with the places left';

-- Repair: recount booked_count/held_count from the reservations (owner only).
CREATE FUNCTION orders.recount_slots(capacity_id uuid DEFAULT NULL)
    RETURNS TABLE (id uuid, stored_booked integer, counted_booked integer,
                   stored_held integer, counted_held integer)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM 1 FROM orders.service_capacity c
     WHERE recount_slots.capacity_id IS NULL OR c.id = recount_slots.capacity_id
     ORDER BY c.id FOR UPDATE;
    RETURN QUERY
    WITH actual AS (
        SELECT c.id, c.booked_count AS sb, c.held_count AS sh,
               coalesce((SELECT sum(r.quantity) FROM orders.slot_reservations r
                          WHERE r.capacity_id = c.id AND r.status = 'confirmed'), 0)::integer AS cb,
               coalesce((SELECT sum(r.quantity) FROM orders.slot_reservations r
                          WHERE r.capacity_id = c.id AND r.status = 'held'), 0)::integer AS ch
          FROM orders.service_capacity c
         WHERE recount_slots.capacity_id IS NULL OR c.id = recount_slots.capacity_id),
    fixed AS (
        UPDATE orders.service_capacity c SET booked_count = a.cb, held_count = a.ch
          FROM actual a WHERE c.id = a.id AND (a.sb, a.sh) IS DISTINCT FROM (a.cb, a.ch)
        RETURNING c.id)
    SELECT a.id, a.sb, a.cb, a.sh, a.ch FROM actual a
     WHERE (a.sb, a.sh) IS DISTINCT FROM (a.cb, a.ch) ORDER BY a.id;
END
$$;

-- pg_cron jobs (pg_cron itself is optional): orders.cron_jobs() lists
-- them (defined last, sql/schema/99_workflows.sql: time-based workflows
-- have a job each).

-- Refuse (OR030) when pg_cron is not installed in this database, saying what to do.
CREATE FUNCTION orders.require_pg_cron()
    RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'pg_cron is not installed in database %', current_database()
            USING ERRCODE = 'OR030',
                  DETAIL = 'orders.schedule_jobs() and orders.unschedule_jobs() work through pg_cron in this database.',
                  HINT = 'Add pg_cron to shared_preload_libraries and run CREATE EXTENSION pg_cron in the database named by cron.database_name; '
                         'if that is another database, schedule the jobs of orders.cron_jobs() there with cron.schedule_in_database (see README).';
    END IF;
END
$$;

CREATE FUNCTION orders.schedule_jobs()
    RETURNS TABLE (jobname text, jobid bigint)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j record;
BEGIN
    PERFORM orders.require_pg_cron();
    FOR j IN SELECT * FROM orders.cron_jobs() LOOP
        jobname := j.jobname;
        EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO jobid USING j.jobname, j.schedule, j.command;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION orders.schedule_jobs() IS
    'Register the extension''s pg_cron jobs (idempotent: re-running updates them)';

CREATE FUNCTION orders.unschedule_jobs()
    RETURNS TABLE (jobname text, removed boolean)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j record;
BEGIN
    PERFORM orders.require_pg_cron();
    FOR j IN SELECT * FROM orders.cron_jobs() LOOP
        jobname := j.jobname;
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM cron.job WHERE jobname = $1 AND username = current_user)'
           INTO removed USING j.jobname;
        IF removed THEN
            EXECUTE 'SELECT cron.unschedule($1)' USING j.jobname;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION orders.unschedule_jobs() IS
    'Remove the extension''s pg_cron jobs (idempotent)';

-- DROP EXTENSION orders (or DROP SCHEMA orders CASCADE) unschedules this
-- database's jobs of orders.cron_jobs() in the same transaction: pg_cron's
-- rows do not depend on the extension (src/cron_cleanup.c).
CREATE FUNCTION orders.unschedule_on_drop()
    RETURNS event_trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'orders_unschedule_on_drop';
COMMENT ON FUNCTION orders.unschedule_on_drop() IS
    'Event trigger: DROP EXTENSION orders removes the extension''s pg_cron jobs of this database';
CREATE EVENT TRIGGER orders_unschedule_jobs ON ddl_command_start
    WHEN TAG IN ('DROP EXTENSION', 'DROP SCHEMA')
    EXECUTE FUNCTION orders.unschedule_on_drop();

SELECT pg_catalog.pg_extension_config_dump('orders.service_capacity', '');
SELECT pg_catalog.pg_extension_config_dump('orders.slot_reservations', '');

REVOKE ALL ON orders.service_capacity, orders.slot_reservations FROM PUBLIC;
REVOKE ALL ON FUNCTION orders.check_staff_overlap(), orders.booked_item_guard(), orders.item_booked_places(uuid), orders.slot_counts_guard(),
                       orders.release_cancelled_bookings(), orders.recount_slots(uuid),
                       orders.schedule_jobs(), orders.unschedule_jobs(), orders.require_pg_cron(),
                       orders.unschedule_on_drop(), orders.reservations_truncate_guard(),
                       orders.cleanup_expired_reservations() FROM PUBLIC;
-- Reading availability is public; holding and booking run as the owner, so
-- they are granted by the DBA to the roles that may book (doc/slots.md).
REVOKE ALL ON FUNCTION orders.reserve_time_slot(uuid, integer, integer),
                       orders.confirm_booking(uuid, uuid),
                       orders.release_reservation(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orders.available_slots(uuid, timestamptz, timestamptz) TO PUBLIC;
