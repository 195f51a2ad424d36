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
--  * leads policy "reach": a campaign's leads are staff's to read (and so
--    to change or delete) only when they read the campaign's order — a rep
--    read another rep's campaign's contacts and deleted its leads with
--    orders.delete, its leads_delivered falling.  assign_lead names a
--    target order outside the caller's scope (42501, "lead … may not be
--    assigned to order …"; the policy's own words before).

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

CREATE OR REPLACE FUNCTION orders.assign_lead(lead_id uuid, order_id uuid)
    RETURNS orders.leads
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result orders.leads;
BEGIN
    IF assign_lead.lead_id IS NULL THEN
        RAISE EXCEPTION 'orders.assign_lead: argument "lead_id" must not be null'
            USING ERRCODE = '22004';
    END IF;
    -- (0.39.0) named here: the leads policy's check of the new row said
    -- only "new row violates row-level security policy"
    IF NOT orders.order_in_scope(assign_lead.order_id) THEN
        RAISE EXCEPTION 'lead % may not be assigned to order %', assign_lead.lead_id, assign_lead.order_id
            USING ERRCODE = '42501',
                  HINT = 'A lead counts toward an order in your scope; either no order has this id or row level security hides it from you.';
    END IF;
    UPDATE orders.leads l
       SET order_id = assign_lead.order_id,
           customer_id = coalesce(l.customer_id,
                                  (SELECT o.customer_id FROM orders.orders o WHERE o.id = assign_lead.order_id))
     WHERE l.id = assign_lead.lead_id
    RETURNING l.* INTO result;
    IF NOT FOUND THEN
        -- (0.29.0) a lead the caller reads but may not change is no "unknown lead"
        IF EXISTS (SELECT FROM orders.leads l WHERE l.id = assign_lead.lead_id) THEN
            RAISE EXCEPTION 'lead % may not be changed by you', assign_lead.lead_id
                USING ERRCODE = '42501',
                      HINT = 'Changing a lead takes permission orders.edit, for a lead of an order in your scope.';
        END IF;
        RAISE EXCEPTION 'lead % does not exist', assign_lead.lead_id
            USING ERRCODE = 'OR015',
                  HINT = 'Either no lead has this id or row level security hides it from you.';
    END IF;
    RETURN result;
END
$$;

-- a campaign's leads are read (and so changed, deleted) only by staff who
-- read the campaign's order
DROP POLICY reach ON orders.leads;
CREATE POLICY reach ON orders.leads
    USING (customer_id = ANY ((SELECT orders.current_customer_ids())::uuid[])
           OR ((SELECT orders.has_permission('orders', 'view'))
               AND (SELECT orders.current_staff_role()) <> 'delivery_agent'
               AND (order_id IS NULL OR EXISTS (SELECT FROM orders.orders o WHERE o.id = order_id))));
