-- orders 0.38.0 -> 0.39.0
--  * advance_analysed_orders (new, AFTER DELETE statement trigger on
--    order_groups): a deleted client group that was still being analysed
--    left its order "analyzing" with every remaining group analysed —
--    nothing moved it on (complete_analysis, which does, was not called
--    again).  Such an order now moves to "reviewing" ('analysis
--    complete') at the end of the DELETE, as the owner.
--  * staff_holds_lapse (new, AFTER UPDATE OF is_active, account_id and
--    AFTER DELETE row triggers on staff): a staff member deactivated,
--    deleted or given another login — its account's live slot holds lapse
--    now (expires_at = now()): a staff hold of up to 24 hours kept its
--    places after the member left (confirm_booking refused it, OR028).

\echo Use "ALTER EXTENSION orders UPDATE TO '0.39.0'" to load this file. \quit

CREATE FUNCTION orders.advance_analysed_orders() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o orders.orders;
BEGIN
    FOR o IN SELECT * FROM orders.orders
              WHERE id IN (SELECT g.order_id FROM gone g WHERE g.analysis_completed_at IS NULL)
                AND status = 'analyzing'
              ORDER BY id FOR NO KEY UPDATE
    LOOP
        IF o.status = 'analyzing'
           AND EXISTS (SELECT FROM orders.order_groups og WHERE og.order_id = o.id)
           AND NOT EXISTS (SELECT FROM orders.order_groups og
                            WHERE og.order_id = o.id AND og.analysis_completed_at IS NULL) THEN
            PERFORM orders.transition(o.id, 'reviewing', 'analysis complete');
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;
CREATE TRIGGER advance_analysed_orders AFTER DELETE ON orders.order_groups
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION orders.advance_analysed_orders();
REVOKE ALL ON FUNCTION orders.advance_analysed_orders() FROM PUBLIC;

CREATE FUNCTION orders.staff_holds_lapse() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE orders.slot_reservations r SET expires_at = now()
     WHERE r.id IN (SELECT h.id FROM orders.slot_reservations h
                     WHERE h.holder = OLD.account_id::text AND h.status = 'held' AND h.expires_at > now()
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
