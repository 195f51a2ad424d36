
---------------------------------------------------------------------------
-- Customers and staff.  A login is a customer when its JWT sub is a
-- customers.account_id, staff when it is a staff.account_id.
---------------------------------------------------------------------------

-- total_orders .. return_rate are maintained by orders.customer_stats
-- (50_customer_stats.sql), never written by hand.
-- (0.40.0) Every indexed text column a writer fills has a length bound
-- (here email 320, phone 64, area 255; staff's email; products' and
-- items' SKU and category, products' name, orders' delivery_area,
-- external_id and webhook_source, lifecycle and status names): too long a
-- value is this CHECK's 23514 (HTTP 400),
-- not the index's 54000 "index row size exceeds maximum" (HTTP 500).
CREATE TABLE orders.customers (
    id            uuid PRIMARY KEY DEFAULT orders.new_id(),
    account_id    uuid,
    full_name     text NOT NULL CHECK (length(full_name) <= 500),
    email         text CHECK (length(email) <= 320),
    phone         text CHECK (length(phone) <= 64),
    address       text CHECK (length(address) <= 2000),
    city          text CHECK (length(city) <= 255),
    area          text CHECK (length(area) <= 255),
    postal_code   text CHECK (length(postal_code) <= 64),
    tags          jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(tags) = 'array' AND orders.jsonb_within(tags, 65536)),
    notes         text CHECK (length(notes) <= 10000),
    total_orders  integer NOT NULL DEFAULT 0 CHECK (total_orders >= 0),
    total_spent   numeric(14,2) NOT NULL DEFAULT 0 CHECK (total_spent >= 0),
    return_rate   numeric(5,2) NOT NULL DEFAULT 0 CHECK (return_rate BETWEEN 0 AND 100),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    returned_orders integer NOT NULL DEFAULT 0 CHECK (returned_orders >= 0)
);
COMMENT ON COLUMN orders.customers.account_id IS 'The login that owns this customer (matched against the JWT sub)';
COMMENT ON COLUMN orders.customers.total_orders IS
    'Orders not in a cancelled-category status; maintained by orders.customer_stats';
COMMENT ON COLUMN orders.customers.total_spent IS
    'Sum of total_amount of orders in a fulfilled-category status with payment_status collected; maintained';
COMMENT ON COLUMN orders.customers.returned_orders IS
    'Orders in a returned-category status; maintained (the numerator of return_rate)';
COMMENT ON COLUMN orders.customers.return_rate IS
    'returned_orders / total_orders in percent, 2 decimals; maintained';
CREATE INDEX customers_account_id_idx ON orders.customers (account_id);
CREATE INDEX customers_phone_idx ON orders.customers (phone);
CREATE INDEX customers_email_idx ON orders.customers (email);
CREATE INDEX customers_total_orders_idx ON orders.customers (total_orders DESC);
CREATE INDEX customers_total_spent_idx ON orders.customers (total_spent DESC);
CREATE INDEX customers_area_idx ON orders.customers (area);
CREATE INDEX customers_tags_idx ON orders.customers USING gin (tags jsonb_path_ops);
CREATE TRIGGER set_updated_at BEFORE UPDATE ON orders.customers
    FOR EACH ROW EXECUTE FUNCTION orders.set_updated_at();
CREATE TRIGGER id_stays BEFORE UPDATE OF id ON orders.customers
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION orders.id_stays();

CREATE TABLE orders.staff (
    id                   uuid PRIMARY KEY DEFAULT orders.new_id(),
    account_id           uuid UNIQUE,
    full_name            text NOT NULL CHECK (length(full_name) <= 500),
    email                text UNIQUE CHECK (length(email) <= 320),
    phone                text CHECK (length(phone) <= 64),
    role                 text NOT NULL
                         CHECK (role IN ('admin', 'manager', 'customer_rep', 'delivery_agent', 'accountant')),
    permissions          jsonb NOT NULL DEFAULT '{}'
                         CHECK (jsonb_typeof(permissions) = 'object' AND orders.jsonb_within(permissions, 65536)),
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

-- current_staff_id — the caller's staff id (from the JWT sub), or NULL (C,
-- src/identity.c: read as the owner of orders.staff).
CREATE FUNCTION orders.current_staff_id() RETURNS uuid
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 'orders_current_staff_id';
COMMENT ON FUNCTION orders.current_staff_id() IS
    'The orders.staff id whose account_id is the caller''s JWT sub, or NULL';

-- current_customer_ids — the caller's customer rows (C, src/identity.c, as
-- current_staff_id; 0.44.0: here, before the dashboard's recent_orders
-- that asks it, from 95_security.sql).
CREATE FUNCTION orders.current_customer_ids() RETURNS uuid[]
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 'orders_current_customer_ids';
COMMENT ON FUNCTION orders.current_customer_ids() IS
    'The orders.customers ids whose account_id is the caller''s JWT sub (empty: not a customer)';

SELECT pg_catalog.pg_extension_config_dump('orders.customers', '');
SELECT pg_catalog.pg_extension_config_dump('orders.staff', '');
REVOKE ALL ON orders.customers, orders.staff FROM PUBLIC;
