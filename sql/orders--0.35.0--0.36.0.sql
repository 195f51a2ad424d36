-- orders 0.35.0 -> 0.36.0
--  * slot_reservations: TRUNCATE refused while a slot counts booked or held
--    places (reservations_truncate_guard, OR014), as for the other counted
--    tables: it skipped the counters and left the places taken for good.
--  * (library) Every insert of a site locks its group first (an approved
--    site's order too): two concurrent upserts of the same new approved
--    site made two items, one never linked, in the order's subtotal.
--  * items_truncate_guard: no longer PUBLIC (a trigger function, as the
--    others).

\echo Use "ALTER EXTENSION orders UPDATE TO '0.36.0'" to load this file. \quit

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
REVOKE ALL ON FUNCTION orders.reservations_truncate_guard(), orders.items_truncate_guard() FROM PUBLIC;
