-- orders 0.31.0 -> 0.32.0
--  * state_meaning_guard also refuses (OR008), while the state has orders,
--    renaming a state (or moving it to another lifecycle) and deleting it:
--    its orders were left in a status their lifecycle does not have, or —
--    two states swapping names — given the other state's meaning without
--    a recount.  Renaming a state to a status orders are in (no state
--    has it) is refused too.  A DBA's ENABLE ALWAYS / REPLICA / DISABLE of
--    the trigger is kept, a dropped one stays dropped.
\echo Use "ALTER EXTENSION orders UPDATE TO '0.32.0'" to load this file. \quit

DO $upgrade$
DECLARE
    was "char";
BEGIN
    SELECT tgenabled INTO was FROM pg_catalog.pg_trigger
     WHERE tgrelid = 'orders.lifecycle_states'::pg_catalog.regclass AND tgname = 'state_meaning_guard';
    IF was IS NOT NULL THEN         -- dropped by a DBA: left dropped
        CREATE OR REPLACE TRIGGER state_meaning_guard BEFORE UPDATE OF lifecycle, status, category, holds_stock OR DELETE
            ON orders.lifecycle_states
            FOR EACH ROW EXECUTE FUNCTION orders.state_meaning_guard();
        IF was <> 'O' THEN
            EXECUTE pg_catalog.format('ALTER TABLE orders.lifecycle_states %s TRIGGER state_meaning_guard',
                                      CASE was WHEN 'A' THEN 'ENABLE ALWAYS' WHEN 'R' THEN 'ENABLE REPLICA'
                                               ELSE 'DISABLE' END);
        END IF;
    END IF;
END
$upgrade$;
CREATE TRIGGER state_truncate_guard BEFORE TRUNCATE ON orders.lifecycle_states
    FOR EACH STATEMENT EXECUTE FUNCTION orders.state_meaning_guard();

CREATE OR REPLACE FUNCTION orders.state_meaning_guard() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    change text;
    what text := 'TRUNCATE orders.lifecycle_states';
BEGIN
    IF TG_OP OPERATOR(pg_catalog.=) 'TRUNCATE' THEN
        NULL;
    ELSIF TG_OP OPERATOR(pg_catalog.=) 'DELETE' THEN
        change := 'it cannot be deleted';
    ELSIF (NEW.lifecycle, NEW.status) IS DISTINCT FROM (OLD.lifecycle, OLD.status) THEN
        change := 'it cannot be renamed';
    ELSIF (NEW.category, NEW.holds_stock) IS DISTINCT FROM (OLD.category, OLD.holds_stock) THEN
        change := 'its category and holds_stock cannot change';
    ELSE
        RETURN NEW;
    END IF;
    IF TG_OP OPERATOR(pg_catalog.<>) 'TRUNCATE' THEN
        IF NOT EXISTS (SELECT FROM orders.lifecycles l WHERE l.name OPERATOR(pg_catalog.=) OLD.lifecycle) THEN
            RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;      -- the lifecycle's cascade
        END IF;
        what := pg_catalog.format('lifecycle "%s": state "%s" is renamed, deleted or given another category or holds_stock',
                                  OLD.lifecycle, OLD.status);
    END IF;
    IF pg_catalog.current_setting('transaction_isolation') OPERATOR(pg_catalog.<>) 'read committed' THEN
        RAISE EXCEPTION '% only at READ COMMITTED', what
            USING ERRCODE = '25000',
                  DETAIL = 'The check that no order is in the state needs a snapshot taken after the lock on orders.orders.';
    END IF;
    LOCK TABLE orders.orders IN SHARE MODE;
    IF TG_OP OPERATOR(pg_catalog.=) 'TRUNCATE' THEN
        IF EXISTS (SELECT FROM orders.orders) THEN
            RAISE EXCEPTION 'cannot truncate orders.lifecycle_states: orders are in its states'
                USING ERRCODE = 'OR008',
                      DETAIL = 'They would be left in statuses their lifecycles do not have.',
                      HINT = 'Delete the states you no longer need (refused while they have orders) instead.';
        END IF;
        RETURN NULL;
    END IF;
    IF EXISTS (SELECT FROM orders.orders o
                WHERE o.lifecycle OPERATOR(pg_catalog.=) OLD.lifecycle
                  AND o.status OPERATOR(pg_catalog.=) OLD.status) THEN
        RAISE EXCEPTION 'lifecycle "%": state "%" has orders; %', OLD.lifecycle, OLD.status, change
            USING ERRCODE = 'OR008',
                  DETAIL = CASE WHEN change LIKE 'its%' THEN 'Customer statistics, the ledger and stock count the orders in it by these.'
                                ELSE 'Its orders would be left in a status their lifecycle does not have.' END,
                  HINT = CASE WHEN change LIKE 'its%' THEN 'Move its orders to another state first, or add a new state.'
                              ELSE 'Move its orders to another state first.' END;
    END IF;
    IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE'
       AND (NEW.lifecycle, NEW.status) IS DISTINCT FROM (OLD.lifecycle, OLD.status)
       AND NOT EXISTS (SELECT FROM orders.lifecycle_states s
                        WHERE s.lifecycle OPERATOR(pg_catalog.=) NEW.lifecycle
                          AND s.status OPERATOR(pg_catalog.=) NEW.status)
       AND EXISTS (SELECT FROM orders.orders o
                    WHERE o.lifecycle OPERATOR(pg_catalog.=) NEW.lifecycle
                      AND o.status OPERATOR(pg_catalog.=) NEW.status) THEN
        RAISE EXCEPTION 'lifecycle "%": orders are in status "%", which no state has; state "%" cannot take its name',
                        NEW.lifecycle, NEW.status, OLD.status
            USING ERRCODE = 'OR008',
                  DETAIL = 'Those orders would be counted as the renamed state counts its orders.',
                  HINT = 'Add the state with INSERT instead (its orders stay as they are counted now), or choose another name.';
    END IF;
    RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END
$$;

-- (0.32.0) a booking's "payment succeeded" edge is its payment's (gate booking_paid)
CREATE FUNCTION orders.booking_paid(order_id uuid) RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN NOT orders.api_request()
                     OR orders.current_staff_role() IN ('admin', 'manager', 'customer_rep')
                     OR o.payment_status = 'collected' OR o.total_amount = 0 THEN NULL
                ELSE format('The booking is not paid (payment "%s" of %s %s): its payment service or staff confirm it.',
                            o.payment_status, o.total_amount, o.currency) END
      FROM orders.orders o WHERE o.id = booking_paid.order_id
$$;
INSERT INTO orders.lifecycle_gates (name, check_function, stamp_column, actor_column, description, builtin) VALUES
  ('booking_paid', 'orders.booking_paid(uuid)', NULL, NULL,
   'a customer confirms a booking (payment succeeded) only once its payment is collected or when it costs nothing', true);
UPDATE orders.lifecycle_transitions SET gate = 'booking_paid'
 WHERE lifecycle = 'booking' AND builtin AND from_status = 'pending' AND to_status = 'confirmed'
   AND gate IS NULL;                -- a DBA's own gate on the edge stays
REVOKE ALL ON FUNCTION orders.booking_paid(uuid) FROM PUBLIC;
