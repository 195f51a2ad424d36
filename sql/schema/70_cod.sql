
---------------------------------------------------------------------------
-- COD operations (seed 004, doc/customers.md): assignment of reps and
-- delivery agents, deliveries, and the seed's views.
---------------------------------------------------------------------------

-- Only an active delivery agent can be assigned to deliver, only an active
-- customer rep (or manager/admin) to follow an order up.  The staff row is
-- locked FOR SHARE, so a concurrent deactivation waits for the assignment
-- (or the assignment for it) instead of slipping past the check.
-- SECURITY DEFINER: the check must see and lock the staff row whatever the
-- caller's row level security lets it read.  (0.39.0) Its trigger is
-- named orders_assignment_check, to fire after order_columns_guard
-- (BEFORE triggers fire in name order): an API caller who may not assign
-- hears that guard's OR060 first — as check_assignment this trigger
-- answered a customer with a staff member's name, role and whether it is
-- active.  Every other writer (a DBA, the owner's functions) is judged,
-- (0.40.0) but a restore (orders.restoring): an order assigned to an agent
-- deactivated since was refused (OR041) and the dump did not load.
CREATE FUNCTION orders.check_assignment() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s orders.staff;
BEGIN
    IF orders.restoring(TG_RELID) THEN
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
-- (0.23.0) WHEN: a row without assignments has nothing to check, and most
-- orders are written without them (a bulk load skips a PL/pgSQL call per row)
CREATE TRIGGER orders_assignment_check BEFORE INSERT OR UPDATE OF assigned_agent_id, assigned_rep_id
    ON orders.orders FOR EACH ROW
    WHEN (NEW.assigned_agent_id IS NOT NULL OR NEW.assigned_rep_id IS NOT NULL)
    EXECUTE FUNCTION orders.check_assignment();

CREATE TABLE orders.deliveries (
    id                 uuid PRIMARY KEY DEFAULT orders.new_id(),
    order_id           uuid NOT NULL REFERENCES orders.orders (id) ON DELETE CASCADE,
    agent_id           uuid NOT NULL REFERENCES orders.staff (id) ON DELETE RESTRICT,
    pickup_time        timestamptz,
    delivery_time      timestamptz,
    route_data         jsonb CHECK (orders.jsonb_within(route_data, 1048576)),
    proof_of_delivery  jsonb CHECK (orders.jsonb_within(proof_of_delivery, 1048576)),
    signature_url      text CHECK (length(signature_url) <= 2048),
    photo_url          text CHECK (length(photo_url) <= 2048),
    customer_feedback  text CHECK (length(customer_feedback) <= 10000),
    rating             integer CHECK (rating BETWEEN 1 AND 5),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (delivery_time IS NULL OR pickup_time IS NULL OR delivery_time >= pickup_time)
);
CREATE INDEX deliveries_order_id_idx ON orders.deliveries (order_id);
CREATE INDEX deliveries_agent_delivery_time_idx ON orders.deliveries (agent_id, delivery_time DESC);
CREATE INDEX deliveries_pickup_time_idx ON orders.deliveries (pickup_time);
CREATE INDEX deliveries_rating_idx ON orders.deliveries (rating) WHERE rating IS NOT NULL;
CREATE TRIGGER set_updated_at BEFORE UPDATE ON orders.deliveries
    FOR EACH ROW EXECUTE FUNCTION orders.set_updated_at();

CREATE VIEW orders.order_details_view WITH (security_invoker = true) AS
SELECT o.id, o.order_number, o.lifecycle, o.status, o.priority, o.total_amount, o.currency,
       o.payment_status, o.payment_method, o.source, o.delivery_address, o.delivery_area,
       o.customer_notes, o.created_at, o.confirmed_at, o.delivered_at,
       c.id AS customer_id, c.full_name AS customer_name, c.phone AS customer_phone, c.email AS customer_email,
       r.id AS rep_id, r.full_name AS rep_name,
       a.id AS agent_id, a.full_name AS agent_name, a.phone AS agent_phone,
       a.availability_status AS agent_availability
  FROM orders.orders o
  JOIN orders.customers c ON c.id = o.customer_id
  LEFT JOIN orders.staff r ON r.id = o.assigned_rep_id
  LEFT JOIN orders.staff a ON a.id = o.assigned_agent_id;
COMMENT ON VIEW orders.order_details_view IS 'Orders with customer, rep and agent details (seed 004)';

CREATE VIEW orders.agent_performance_view WITH (security_invoker = true) AS
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
COMMENT ON VIEW orders.agent_performance_view IS 'Delivery agents: deliveries, average rating, fulfilled orders (seed 004)';

SELECT pg_catalog.pg_extension_config_dump('orders.deliveries', '');
REVOKE ALL ON orders.deliveries, orders.order_details_view, orders.agent_performance_view FROM PUBLIC;
REVOKE ALL ON FUNCTION orders.check_assignment() FROM PUBLIC;
