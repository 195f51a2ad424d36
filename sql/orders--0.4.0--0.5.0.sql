-- orders 0.4.0 -> 0.5.0: the first part of seed 004's COD operations —
-- staff directory, order assignment (refused for anyone but an active
-- delivery agent / customer rep), delivery fields, deliveries, and the
-- order_details / agent_performance views with the seed's indexes.
\echo Use "ALTER EXTENSION orders UPDATE TO '0.5.0'" to load this file. \quit

CREATE TABLE orders.staff (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id           uuid UNIQUE,
    full_name            text NOT NULL,
    email                text UNIQUE,
    phone                text,
    role                 text NOT NULL
                         CHECK (role IN ('admin', 'manager', 'customer_rep', 'delivery_agent', 'accountant')),
    permissions          jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(permissions) = 'object'),
    is_active            boolean NOT NULL DEFAULT true,
    availability_status  text NOT NULL DEFAULT 'offline'
                         CHECK (availability_status IN ('available', 'busy', 'offline')),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE orders.staff IS
    'Staff directory (seed 004 users, without passwords: authentication belongs to the API layer)';
COMMENT ON COLUMN orders.staff.account_id IS 'The login of the staff member (matched against the JWT sub)';
CREATE INDEX staff_role_idx ON orders.staff (role);
CREATE INDEX staff_active_availability_idx ON orders.staff (is_active, availability_status);
CREATE TRIGGER set_updated_at BEFORE UPDATE ON orders.staff
    FOR EACH ROW EXECUTE FUNCTION orders.set_updated_at();

ALTER TABLE orders.orders
    ADD COLUMN assigned_rep_id    uuid REFERENCES orders.staff (id) ON DELETE SET NULL,
    ADD COLUMN assigned_agent_id  uuid REFERENCES orders.staff (id) ON DELETE SET NULL,
    ADD COLUMN delivery_address   text,
    ADD COLUMN delivery_area      text,
    ADD COLUMN source             text NOT NULL DEFAULT 'manual'
                                  CHECK (source IN ('manual', 'webhook', 'csv', 'api')),
    ADD COLUMN webhook_source     text,
    ADD COLUMN customer_notes     text,
    ADD COLUMN internal_notes     text,
    ADD COLUMN delivery_proof     jsonb,
    ADD COLUMN return_reason      text;
CREATE INDEX orders_assigned_rep_idx ON orders.orders (assigned_rep_id, status);
CREATE INDEX orders_assigned_agent_idx ON orders.orders (assigned_agent_id, status);
CREATE INDEX orders_area_status_idx ON orders.orders (delivery_area, status);
CREATE INDEX orders_delivered_at_idx ON orders.orders (delivered_at DESC) WHERE delivered_at IS NOT NULL;
CREATE INDEX orders_source_idx ON orders.orders (source);
CREATE INDEX orders_priority_created_idx ON orders.orders (priority DESC, created_at DESC);

-- Only an active delivery agent can be assigned to deliver, only an active
-- customer rep (or manager/admin) to follow an order up.  The staff row is
-- locked FOR SHARE, so a concurrent deactivation waits for the assignment
-- (or the assignment for it) instead of slipping past the check.
CREATE FUNCTION orders.check_assignment() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s orders.staff;
BEGIN
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
CREATE TRIGGER check_assignment BEFORE INSERT OR UPDATE OF assigned_agent_id, assigned_rep_id
    ON orders.orders FOR EACH ROW EXECUTE FUNCTION orders.check_assignment();

CREATE TABLE orders.deliveries (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id           uuid NOT NULL REFERENCES orders.orders (id) ON DELETE CASCADE,
    agent_id           uuid NOT NULL REFERENCES orders.staff (id) ON DELETE RESTRICT,
    pickup_time        timestamptz,
    delivery_time      timestamptz,
    route_data         jsonb,
    proof_of_delivery  jsonb,
    signature_url      text,
    photo_url          text,
    customer_feedback  text,
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

CREATE VIEW orders.order_details_view AS
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

CREATE VIEW orders.agent_performance_view AS
SELECT s.id AS agent_id, s.full_name AS agent_name, s.is_active, s.availability_status,
       count(d.id) AS total_deliveries,
       round(avg(d.rating), 2) AS average_rating,
       count(d.id) FILTER (WHERE d.delivery_time IS NOT NULL) AS completed_deliveries,
       (SELECT count(*) FROM orders.orders o
         JOIN orders.lifecycle_states st ON st.lifecycle = o.lifecycle AND st.status = o.status
        WHERE o.assigned_agent_id = s.id AND st.category = 'fulfilled') AS successful_orders
  FROM orders.staff s
  LEFT JOIN orders.deliveries d ON d.agent_id = s.id
 WHERE s.role = 'delivery_agent'
 GROUP BY s.id;
COMMENT ON VIEW orders.agent_performance_view IS 'Delivery agents: deliveries, average rating, fulfilled orders (seed 004)';

SELECT pg_catalog.pg_extension_config_dump('orders.staff', '');
SELECT pg_catalog.pg_extension_config_dump('orders.deliveries', '');
REVOKE ALL ON orders.staff, orders.deliveries, orders.order_details_view, orders.agent_performance_view FROM PUBLIC;
REVOKE ALL ON FUNCTION orders.check_assignment() FROM PUBLIC;
