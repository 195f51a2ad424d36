-- orders 0.38.0 -> 0.39.0
--  * advance_analysed_orders (new, AFTER DELETE statement trigger on
--    order_groups): a deleted client group that was still being analysed
--    left its order "analyzing" with every remaining group analysed —
--    nothing moved it on (complete_analysis, which does, was not called
--    again).  Such an order now moves to "reviewing" ('analysis
--    complete') at the end of the DELETE, as the owner.

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
