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
--  * order_columns_guard: payment_method is fixed for delivery agents (an
--    agent relabelled its cash order "card" before collecting it, and the
--    ledger's revenue row said card), and a customer's only while the
--    order is open, not shipped and its payment neither collected nor
--    refunded.  The trigger is re-created with the column, keeping a DBA's
--    DISABLE or ENABLE ALWAYS, left dropped when dropped.
--  * check_assignment judges an API request's assignment only for callers
--    with orders.assign (the others' is order_columns_guard's OR060): it
--    fired first and told a customer a staff member's name, role and
--    whether it is active (OR040, OR041).
--  * agent_performance_view: average_rating averages each order's ratings
--    first (a rep recorded ten one-star deliveries of one order), and
--    completed_deliveries counts only orders that were delivered
--    (delivered_at; an agent recorded deliveries of an order still new).

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

CREATE OR REPLACE FUNCTION orders.order_columns_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    staff_only constant jsonb := '{"priority": 0, "delivery_fee": 0, "total_amount": 0, "adjustment": 0,
        "payment_status": "pending", "assigned_rep_id": null, "assigned_agent_id": null,
        "webhook_source": null, "delivery_proof": null, "leads_purchased": 0, "external_id": null}';
    stamps constant text[] := '{confirmed_at,started_at,paused_at,reviewed_at,paid_at,shipped_at,delivered_at,
        returned_at,completed_at,cancelled_at,review_completed_at,reviewed_by}';
    -- (0.29.0) customer_id: an agent moved its order to another customer, whom it then read
    agent_fixed constant text[] := '{total_amount,adjustment,delivery_fee,currency,leads_purchased,source,customer_id,payment_method}';
    new_row jsonb;
    old_row jsonb;
    col text;
    role text;
BEGIN
    IF orders.by_maintainer(TG_RELID) OR NOT orders.api_request() THEN
        RETURN NEW;				-- before any work: every INSERT of an order comes here
    END IF;
    new_row := to_jsonb(NEW);
    old_row := CASE WHEN TG_OP = 'UPDATE' THEN to_jsonb(OLD) ELSE staff_only END;
    FOREACH col IN ARRAY stamps LOOP
        IF new_row -> col IS DISTINCT FROM (CASE WHEN TG_OP = 'UPDATE' THEN old_row -> col ELSE 'null' END) THEN
            PERFORM orders.refuse_column('orders.orders', col, 'the lifecycle''s edges (orders.transition)');
        END IF;
    END LOOP;
    role := orders.current_staff_role();
    -- (an INSERT of an order that exists — an upsert, which sends the row as
    -- it was read — is judged by its conflict action's UPDATE, if any; the
    -- row is locked FOR KEY SHARE: one being deleted is waited for, and gone,
    -- the INSERT is judged — a customer's insert racing a delete of the same
    -- id stored a forbidden value)
    IF (new_row -> 'metadata' -> 'webhook' IS DISTINCT FROM (CASE WHEN TG_OP = 'UPDATE' THEN old_row -> 'metadata' -> 'webhook' END)
        OR (NEW.created_at IS DISTINCT FROM (CASE WHEN TG_OP = 'UPDATE' THEN OLD.created_at ELSE now() END)
            AND (role IS NULL OR role NOT IN ('admin', 'manager')
                 OR NOT orders.has_permission('orders', CASE TG_OP WHEN 'INSERT' THEN 'create' ELSE 'edit' END))))
       AND (TG_OP = 'UPDATE' OR NOT EXISTS (SELECT FROM orders.orders o WHERE o.id = NEW.id OR o.order_number = NEW.order_number
                                            FOR KEY SHARE)) THEN
        IF new_row -> 'metadata' -> 'webhook' IS DISTINCT FROM (CASE WHEN TG_OP = 'UPDATE' THEN old_row -> 'metadata' -> 'webhook' END) THEN
            PERFORM orders.refuse_column('orders.orders', 'metadata', 'the webhook ingest (its key "webhook")');
        END IF;
        PERFORM orders.refuse_column('orders.orders', 'created_at', 'admins and managers (an import of past orders)');
    END IF;
    -- (0.29.0) staff without the right to this write reach the order only as
    -- its customer (a staff member may be a customer too): a customer's
    -- rules — an accountant placed its own order "collected" with total 0
    IF role IS NULL OR NOT orders.has_permission('orders', CASE TG_OP WHEN 'INSERT' THEN 'create' ELSE 'edit' END) THEN
        FOR col IN SELECT jsonb_object_keys(staff_only) LOOP
            IF new_row -> col IS DISTINCT FROM old_row -> col THEN
                PERFORM orders.refuse_column('orders.orders', col, 'staff');
            END IF;
        END LOOP;
        IF NEW.source NOT IN ('manual', 'api')
           AND NEW.source IS DISTINCT FROM (CASE WHEN TG_OP = 'UPDATE' THEN OLD.source END) THEN
            PERFORM orders.refuse_column('orders.orders', 'source', 'staff');
        END IF;
        IF TG_OP = 'UPDATE' AND NEW.currency IS DISTINCT FROM OLD.currency THEN
            PERFORM orders.refuse_column('orders.orders', 'currency', 'staff');
        END IF;
        -- (0.38.0) where it goes is the customer's until it has left or is
        -- closed: a customer changed the address of a delivered order;
        -- (0.39.0) how it is paid likewise, and not once paid
        IF TG_OP = 'UPDATE' AND (OLD.shipped_at IS NOT NULL OR orders.status_category(OLD.lifecycle, OLD.status) <> 'open') THEN
            FOREACH col IN ARRAY ARRAY['delivery_address', 'delivery_area', 'payment_method'] LOOP
                IF new_row -> col IS DISTINCT FROM old_row -> col THEN
                    PERFORM orders.refuse_column('orders.orders', col, 'staff once the order has shipped or is closed');
                END IF;
            END LOOP;
        END IF;
        IF TG_OP = 'UPDATE' AND OLD.payment_status IN ('collected', 'refunded')
           AND NEW.payment_method IS DISTINCT FROM OLD.payment_method THEN
            PERFORM orders.refuse_column('orders.orders', 'payment_method', 'staff once the payment is collected');
        END IF;
        RETURN NEW;
    END IF;
    IF role NOT IN ('admin', 'manager') THEN
        FOREACH col IN ARRAY ARRAY['external_id', 'webhook_source'] LOOP
            IF new_row -> col IS DISTINCT FROM old_row -> col THEN
                PERFORM orders.refuse_column('orders.orders', col, 'admins and managers');
            END IF;
        END LOOP;
    END IF;
    IF role = 'delivery_agent' AND TG_OP = 'UPDATE' THEN
        FOREACH col IN ARRAY agent_fixed LOOP
            IF new_row -> col IS DISTINCT FROM old_row -> col THEN
                PERFORM orders.refuse_column('orders.orders', col, 'staff other than delivery agents');
            END IF;
        END LOOP;
        IF NEW.payment_status IS DISTINCT FROM OLD.payment_status
           AND NOT (OLD.payment_status IN ('pending', 'failed') AND NEW.payment_status IN ('pending', 'failed', 'collected')) THEN
            PERFORM orders.refuse_column('orders.orders', 'payment_status',
                                         'staff other than delivery agents (an agent collects, fails or retries a payment not yet collected)');
        END IF;
    END IF;
    IF (new_row -> 'assigned_rep_id', new_row -> 'assigned_agent_id')
          IS DISTINCT FROM (old_row -> 'assigned_rep_id', old_row -> 'assigned_agent_id')
          AND NOT orders.has_permission('orders', 'assign') THEN
        PERFORM orders.refuse_column('orders.orders',
            CASE WHEN new_row -> 'assigned_rep_id' IS DISTINCT FROM old_row -> 'assigned_rep_id'
                 THEN 'assigned_rep_id' ELSE 'assigned_agent_id' END, 'staff with permission orders.assign');
    END IF;
    RETURN NEW;
END
$$;

DO $upgrade$
DECLARE
    was "char";
BEGIN
    SELECT tgenabled INTO was FROM pg_catalog.pg_trigger
     WHERE tgrelid = 'orders.orders'::pg_catalog.regclass AND tgname = 'order_columns_guard';
    IF was IS NOT NULL THEN         -- dropped by a DBA: left dropped
        CREATE OR REPLACE TRIGGER order_columns_guard
            BEFORE INSERT OR UPDATE OF priority, delivery_fee, total_amount, adjustment, payment_status,
                assigned_rep_id, assigned_agent_id, source, webhook_source, delivery_proof, review_completed_at, reviewed_by,
                leads_purchased, external_id, currency, confirmed_at, started_at, paused_at, reviewed_at, paid_at, shipped_at,
                delivered_at, returned_at, completed_at, cancelled_at, customer_id, created_at, metadata,
                delivery_address, delivery_area, payment_method
            ON orders.orders FOR EACH ROW WHEN (orders.api_request())
            EXECUTE FUNCTION orders.order_columns_guard();
        IF was <> 'O' THEN
            EXECUTE pg_catalog.format('ALTER TABLE orders.orders %s TRIGGER order_columns_guard',
                                      CASE was WHEN 'A' THEN 'ENABLE ALWAYS' WHEN 'R' THEN 'ENABLE REPLICA'
                                               ELSE 'DISABLE' END);
        END IF;
    END IF;
END
$upgrade$;

CREATE OR REPLACE FUNCTION orders.check_assignment() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s orders.staff;
BEGIN
    IF orders.api_request() AND NOT orders.has_permission('orders', 'assign') THEN
        RETURN NEW;
    END IF;
    IF NEW.assigned_agent_id IS NOT NULL
       AND NEW.assigned_agent_id IS DISTINCT FROM (CASE WHEN TG_OP = 'UPDATE' THEN OLD.assigned_agent_id END) THEN
        SELECT * INTO s FROM orders.staff WHERE id = NEW.assigned_agent_id FOR SHARE;
        IF FOUND AND s.role <> 'delivery_agent' THEN
            RAISE EXCEPTION 'order "%": % (role %) is not a delivery agent', NEW.order_number, s.full_name, s.role
                USING ERRCODE = 'OR040', HINT = 'Assign a staff member whose role is delivery_agent.';
        ELSIF FOUND AND NOT s.is_active THEN
            RAISE EXCEPTION 'order "%": delivery agent % is inactive', NEW.order_number, s.full_name
                USING ERRCODE = 'OR041', HINT = 'Reactivate the agent or choose an active one.';
        END IF;
    END IF;
    IF NEW.assigned_rep_id IS NOT NULL
       AND NEW.assigned_rep_id IS DISTINCT FROM (CASE WHEN TG_OP = 'UPDATE' THEN OLD.assigned_rep_id END) THEN
        SELECT * INTO s FROM orders.staff WHERE id = NEW.assigned_rep_id FOR SHARE;
        IF FOUND AND s.role NOT IN ('customer_rep', 'manager', 'admin') THEN
            RAISE EXCEPTION 'order "%": % (role %) is not a customer rep', NEW.order_number, s.full_name, s.role
                USING ERRCODE = 'OR040', HINT = 'Assign a customer_rep (or a manager or admin).';
        ELSIF FOUND AND NOT s.is_active THEN
            RAISE EXCEPTION 'order "%": customer rep % is inactive', NEW.order_number, s.full_name
                USING ERRCODE = 'OR041';
        END IF;
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE VIEW orders.agent_performance_view WITH (security_invoker = true) AS
SELECT s.id AS agent_id, s.full_name AS agent_name, s.is_active, s.availability_status,
       count(d.id) AS total_deliveries,
       -- (0.39.0) over orders, each order's ratings averaged first: a rep
       -- recorded ten one-star deliveries of one order
       (SELECT round(avg(r.rating), 2)
          FROM (SELECT avg(x.rating) AS rating FROM orders.deliveries x
                 WHERE x.agent_id = s.id AND x.rating IS NOT NULL GROUP BY x.order_id) r) AS average_rating,
       -- (0.29.0) orders, not rows: an agent recorded ten completed deliveries
       -- of one order; (0.39.0) orders that were delivered (delivered_at):
       -- an agent recorded deliveries of an order still new
       count(DISTINCT d.order_id) FILTER (WHERE d.delivery_time IS NOT NULL
                                           AND EXISTS (SELECT FROM orders.orders o
                                                        WHERE o.id = d.order_id AND o.delivered_at IS NOT NULL)) AS completed_deliveries,
       (SELECT count(*) FROM orders.orders o
         JOIN orders.lifecycle_states st ON st.lifecycle = o.lifecycle AND st.status = o.status
        WHERE o.assigned_agent_id = s.id AND st.category = 'fulfilled') AS successful_orders
  FROM orders.staff s
  LEFT JOIN orders.deliveries d ON d.agent_id = s.id
 WHERE s.role = 'delivery_agent'
 GROUP BY s.id;
