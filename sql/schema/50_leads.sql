
---------------------------------------------------------------------------
-- Lead campaigns (seed 002, doc/leads.md): orders.orders.leads_delivered
-- follows every INSERT, UPDATE and DELETE of leads, exactly, in C.
---------------------------------------------------------------------------

CREATE TABLE orders.leads (
    id            uuid PRIMARY KEY DEFAULT orders.new_id(),
    customer_id   uuid REFERENCES orders.customers (id) ON DELETE RESTRICT,
    order_id      uuid REFERENCES orders.orders (id) ON DELETE SET NULL,
    status        text NOT NULL DEFAULT 'new'
                  CHECK (status IN ('new', 'contacted', 'approved', 'lead', 'rejected')),
    company_name  text CHECK (length(company_name) <= 500),
    contact_name  text CHECK (length(contact_name) <= 500),
    job_title     text CHECK (length(job_title) <= 255),
    email         text CHECK (length(email) <= 320),
    phone         text CHECK (length(phone) <= 64),
    website       text CHECK (length(website) <= 2048),
    industry      text CHECK (length(industry) <= 255),
    location      text CHECK (length(location) <= 500),
    source        text CHECK (length(source) <= 255),
    notes         text CHECK (length(notes) <= 10000),
    metadata      jsonb NOT NULL DEFAULT '{}'
                  CHECK (jsonb_typeof(metadata) = 'object' AND orders.jsonb_within(metadata, 1048576)),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE orders.leads IS
    'Leads of lead-generation campaigns (seed 002); status approved or lead counts toward the order';
COMMENT ON COLUMN orders.leads.customer_id IS 'The client the lead is for';
COMMENT ON COLUMN orders.leads.order_id IS 'The campaign order the lead is delivered under';
CREATE INDEX leads_order_id_idx ON orders.leads (order_id);
CREATE INDEX leads_customer_order_idx ON orders.leads (customer_id, order_id);
CREATE INDEX leads_status_idx ON orders.leads (status);

CREATE FUNCTION orders.leads_count() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_leads_count';
CREATE FUNCTION orders.leads_truncate() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_leads_truncate';
CREATE FUNCTION orders.lead_capacity_guard() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_lead_capacity_guard';
CREATE FUNCTION orders.leads_lock_orders() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_leads_lock_orders';

-- one statement trigger per event: transition tables allow only one event
CREATE TRIGGER leads_count_insert AFTER INSERT ON orders.leads
    REFERENCING NEW TABLE AS new_leads
    FOR EACH STATEMENT EXECUTE FUNCTION orders.leads_count();
CREATE TRIGGER leads_count_update AFTER UPDATE ON orders.leads
    REFERENCING OLD TABLE AS old_leads NEW TABLE AS new_leads
    FOR EACH STATEMENT EXECUTE FUNCTION orders.leads_count();
CREATE TRIGGER leads_count_delete AFTER DELETE ON orders.leads
    REFERENCING OLD TABLE AS old_leads
    FOR EACH STATEMENT EXECUTE FUNCTION orders.leads_count();
-- The orders a statement delivers leads to, locked (in id order) before the
-- foreign keys' KEY SHARE locks: writers of a hot order queue on its row
-- instead of piling up MultiXacts (0.23.0).  The capital letter is on
-- purpose: the AFTER row triggers of a row fire in name order, and
-- "Leads…" sorts before the foreign keys' "RI_ConstraintTrigger_…".
CREATE TRIGGER "Leads_lock_orders" AFTER INSERT ON orders.leads
    REFERENCING NEW TABLE AS new_leads
    FOR EACH ROW WHEN (NEW.order_id IS NOT NULL)
    EXECUTE FUNCTION orders.leads_lock_orders();
CREATE TRIGGER leads_truncate BEFORE TRUNCATE ON orders.leads
    FOR EACH STATEMENT EXECUTE FUNCTION orders.leads_truncate();
CREATE TRIGGER set_updated_at BEFORE UPDATE ON orders.leads
    FOR EACH ROW EXECUTE FUNCTION orders.set_updated_at();
CREATE TRIGGER lead_capacity_guard BEFORE INSERT OR UPDATE OF leads_purchased, leads_delivered
    ON orders.orders FOR EACH ROW EXECUTE FUNCTION orders.lead_capacity_guard();

-- leads_follow_order — (0.29.0) an order moved to another customer takes
-- its leads along: they counted toward it under the old customer, whom
-- OR011 then held against every later edit of a lead (and the new customer
-- saw a count of leads it could not read).  As the owner: the leads are the
-- order's, whoever moves it (a merge of duplicate customers, a correction).
-- (0.37.0) First the order's lead lock (an advisory transaction lock,
-- keys 1330791506 = ORDERS_LEADS_MOVE_LOCK in src/orders.h and the
-- order id's uuid_hash) exclusively: a lead statement judging its leads'
-- customer holds it shared, and is waited for, then its lead moved too (it
-- stayed with the old customer, and OR011 refused every later edit of it);
-- a lead written after waits for the move and is judged against the new
-- customer.  Nothing else waits (a lock of the order's row waited for
-- every note or delivery holding it FOR KEY SHARE, and deadlocked with the
-- one that then wrote the order).  At REPEATABLE READ a lead committed
-- after the move's snapshot is 40001 (leads_left_behind).  (0.40.0)
-- orders.lock_order_leads takes it (src/lead_move_lock.c): an API request
-- takes at most 200 such locks (OR121) — a customer moving 20,000 of its
-- orders ran the cluster's lock table out (53200 for every session).
CREATE FUNCTION orders.lock_order_leads(order_id uuid) RETURNS void
    LANGUAGE c VOLATILE STRICT
    AS 'MODULE_PATHNAME', 'orders_lock_order_leads_sql';
COMMENT ON FUNCTION orders.lock_order_leads(uuid) IS
    'A move''s lock of the order''s leads against lead statements, to the end of the transaction (leads_follow_order)';
CREATE FUNCTION orders.leads_left_behind(order_id uuid, customer_id uuid) RETURNS boolean
    LANGUAGE c VOLATILE STRICT
    AS 'MODULE_PATHNAME', 'orders_leads_left_behind';
COMMENT ON FUNCTION orders.leads_left_behind(uuid, uuid) IS
    'Whether an order has a lead of another customer, latest snapshot; for leads_follow_order at REPEATABLE READ';
CREATE FUNCTION orders.leads_follow_order() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM orders.lock_order_leads(NEW.id);
    UPDATE orders.leads l SET customer_id = NEW.customer_id
     WHERE l.order_id = NEW.id AND l.customer_id IS DISTINCT FROM NEW.customer_id;
    -- at REPEATABLE READ the UPDATE saw its snapshot's leads only: a lead
    -- committed after it (the lock waited for its statement) would stay
    IF pg_catalog.current_setting('transaction_isolation') IN ('repeatable read', 'serializable')
       AND orders.leads_left_behind(NEW.id, NEW.customer_id) THEN
        RAISE EXCEPTION 'could not serialize access: a lead of order % was written after this transaction''s snapshot',
                        NEW.order_number
            USING ERRCODE = '40001';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER leads_follow_order AFTER UPDATE OF customer_id ON orders.orders
    FOR EACH ROW WHEN (OLD.customer_id IS DISTINCT FROM NEW.customer_id)
    EXECUTE FUNCTION orders.leads_follow_order();

-- Assign a lead to an order (NULL: unassign).  A lead without a customer
-- takes the order's.  Runs with the caller's rights.
CREATE FUNCTION orders.assign_lead(lead_id uuid, order_id uuid)
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
    -- (0.39.0) outside the API (where the scope check answers first) an
    -- unknown order is named (was the foreign key's 23503)
    IF assign_lead.order_id IS NOT NULL AND NOT EXISTS (SELECT FROM orders.orders o WHERE o.id = assign_lead.order_id) THEN
        RAISE EXCEPTION 'order % does not exist', assign_lead.order_id USING ERRCODE = 'OR006';
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
COMMENT ON FUNCTION orders.assign_lead(uuid, uuid) IS
    'Assign a lead to a campaign order (NULL unassigns); the order''s leads_delivered follows';

-- Repair: recount leads_delivered from the leads and return the orders whose
-- stored count was wrong (normally none).  Locks the orders first, then
-- counts, so concurrent lead writers are neither missed nor counted twice.
CREATE FUNCTION orders.recount_leads(order_id uuid DEFAULT NULL)
    RETURNS TABLE (id uuid, order_number text, stored integer, counted integer)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM orders.require_read_committed('orders.recount_leads',
        'A transaction snapshot would not see leads committed while it waits for the orders.');
    PERFORM 1 FROM orders.orders o
     WHERE recount_leads.order_id IS NULL OR o.id = recount_leads.order_id
     ORDER BY o.id FOR UPDATE;
    RETURN QUERY
    WITH actual AS (
        SELECT o.id, o.order_number, o.leads_delivered AS stored,
               (SELECT count(*)::integer FROM orders.leads l
                 WHERE l.order_id = o.id AND l.status IN ('approved', 'lead')) AS counted
          FROM orders.orders o
         WHERE recount_leads.order_id IS NULL OR o.id = recount_leads.order_id),
    fixed AS (
        UPDATE orders.orders o SET leads_delivered = a.counted
          FROM actual a WHERE o.id = a.id AND a.stored <> a.counted
        RETURNING o.id)
    SELECT a.id, a.order_number, a.stored, a.counted
      FROM actual a WHERE a.stored <> a.counted ORDER BY a.order_number;
END
$$;
COMMENT ON FUNCTION orders.recount_leads(uuid) IS
    'Recount leads_delivered (all orders, or one); returns and repairs the orders whose count was wrong';

CREATE VIEW orders.order_summary WITH (security_invoker = true) AS
SELECT o.id, o.order_number, o.customer_id, c.full_name AS client_name, o.name, o.status,
       o.leads_purchased, o.leads_delivered, o.leads_remaining,
       o.target_delivery_date, o.start_date, o.completion_date,
       CASE WHEN o.leads_purchased > 0
            THEN round(o.leads_delivered::numeric / o.leads_purchased * 100, 1)
            ELSE 0.0 END AS completion_percentage,
       o.target_delivery_date - orders.business_date() AS days_remaining,
       o.priority, o.created_at, o.updated_at
  FROM orders.orders o
  JOIN orders.customers c ON c.id = o.customer_id
 WHERE o.lifecycle = 'campaign' OR o.leads_purchased > 0;
COMMENT ON VIEW orders.order_summary IS 'Campaign progress per order (seed 002)';

-- Admin dashboard figures over campaign orders.  "near capacity": an open
-- campaign with 90% or more of its leads delivered.
CREATE FUNCTION orders.order_stats()
    RETURNS TABLE (total bigint, active bigint, overdue bigint,
                   near_capacity bigint, completed_this_month bigint)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT count(*),
           count(*) FILTER (WHERE o.status = 'active'),
           count(*) FILTER (WHERE s.category = 'open' AND o.target_delivery_date < orders.business_date()),
           count(*) FILTER (WHERE s.category = 'open' AND o.leads_purchased > 0
                              AND o.leads_delivered::bigint * 10 >= o.leads_purchased::bigint * 9),
           count(*) FILTER (WHERE s.category = 'fulfilled'
                              AND o.completed_at >= date_trunc('month', orders.business_date()::timestamp)
                                                      AT TIME ZONE orders.business_timezone())
      FROM orders.orders o
      JOIN orders.lifecycle_states s ON s.lifecycle = o.lifecycle AND s.status = o.status
     WHERE o.lifecycle = 'campaign' OR o.leads_purchased > 0;
END;
COMMENT ON FUNCTION orders.order_stats() IS
    'Campaign dashboard: total, active, overdue, near capacity (>= 90% delivered), completed this month';

SELECT pg_catalog.pg_extension_config_dump('orders.leads', '');

REVOKE ALL ON orders.leads, orders.order_summary FROM PUBLIC;
REVOKE ALL ON FUNCTION orders.leads_count(), orders.leads_truncate(), orders.lead_capacity_guard(),
                       orders.leads_lock_orders(), orders.recount_leads(uuid), orders.leads_follow_order(),
                       orders.leads_left_behind(uuid, uuid), orders.lock_order_leads(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orders.assign_lead(uuid, uuid), orders.order_stats() TO PUBLIC;
