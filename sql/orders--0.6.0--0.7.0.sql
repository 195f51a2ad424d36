-- orders 0.6.0 -> 0.7.0: security fixes (issue 16).
--  * SQL the extension runs as the table owner resolves names in pg_catalog
--    only (the C library pins it; nothing to do here).
--  * Order numbers: generated in C, never cut, not forgeable by clients.
--  * available_slots no longer shows which staff member a slot belongs to.
--  * A state's meaning (category, holds_stock) changes only at READ COMMITTED.
\echo Use "ALTER EXTENSION orders UPDATE TO '0.7.0'" to load this file. \quit

-- Order numbers starting with ORD- are the generator's: a client may store
-- one only when the generator just handed it to its session (the column
-- default of the row it inserts), so nobody takes the numbers others will
-- get.  The sequence part grows past 6 digits instead of being cut (lpad
-- cut it, which would have repeated numbers after 999999 orders).
CREATE OR REPLACE FUNCTION orders.next_order_number() RETURNS text
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'orders_next_order_number';
COMMENT ON FUNCTION orders.next_order_number() IS
    'Default of orders.order_number: ORD-<year>-<sequence, at least 6 digits>';

-- Availability for anybody (SECURITY DEFINER, pinned search_path): free
-- places only — neither who holds them nor which staff member serves.
DROP FUNCTION orders.available_slots(uuid, timestamptz, timestamptz);
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
GRANT EXECUTE ON FUNCTION orders.available_slots(uuid, timestamptz, timestamptz) TO PUBLIC;

-- The check that no order is in a state whose meaning changes must read
-- the orders committed after the SHARE lock: only READ COMMITTED does (a
-- REPEATABLE READ snapshot predates the lock).
CREATE OR REPLACE FUNCTION orders.state_meaning_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF (NEW.category, NEW.holds_stock) IS DISTINCT FROM (OLD.category, OLD.holds_stock) THEN
        IF pg_catalog.current_setting('transaction_isolation') OPERATOR(pg_catalog.<>) 'read committed' THEN
            RAISE EXCEPTION 'lifecycle "%": the category and holds_stock of state "%" change only at READ COMMITTED',
                            OLD.lifecycle, OLD.status
                USING ERRCODE = '25000',
                      DETAIL = 'The check that no order is in the state needs a snapshot taken after the lock on orders.orders.';
        END IF;
        LOCK TABLE orders.orders IN SHARE MODE;
        IF EXISTS (SELECT FROM orders.orders o
                    WHERE o.lifecycle OPERATOR(pg_catalog.=) OLD.lifecycle
                      AND o.status OPERATOR(pg_catalog.=) OLD.status) THEN
            RAISE EXCEPTION 'lifecycle "%": state "%" has orders; its category and holds_stock cannot change',
                            OLD.lifecycle, OLD.status
                USING ERRCODE = 'OR008',
                      DETAIL = 'Customer statistics, the ledger and stock count the orders in it by these.',
                      HINT = 'Move its orders to another state first, or add a new state.';
        END IF;
    END IF;
    RETURN NEW;
END
$$;
