-- Slot soak fixtures: 5 slots of 3 places each, 30,000 booking orders (enough that
-- cancellations do not use them all up: a hold for an item of a cancelled order
-- is refused, OR029), and helpers that turn the
-- expected refusals (full, lapsed, released, cancelled) into results so that pgbench
-- clients keep going.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE SCHEMA soak;
INSERT INTO orders.service_capacity (id, service_id, starts_at, ends_at, max_capacity)
SELECT ('70000000-0000-0000-0000-00000000000' || n)::uuid, '70000000-0000-0000-0000-000000000000',
       now() + n * interval '1 hour', now() + n * interval '1 hour' + interval '50 minutes', 3
  FROM generate_series(1, 5) n;

-- booking orders with one service item each, to link bookings to and cancel
INSERT INTO orders.customers (id, full_name) VALUES ('70000000-0000-0000-0000-0000000000c1', 'Soak');
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle)
SELECT ('70000000-0000-0000-0001-' || lpad(n::text, 12, '0'))::uuid, 'SS-' || n,
       '70000000-0000-0000-0000-0000000000c1', 'booking'
  FROM generate_series(1, 30000) n;
INSERT INTO orders.order_items (id, order_id, item_type, name, unit_price)
SELECT ('70000000-0000-0000-0002-' || lpad(n::text, 12, '0'))::uuid,
       ('70000000-0000-0000-0001-' || lpad(n::text, 12, '0'))::uuid, 'service', 'Session', 50
  FROM generate_series(1, 30000) n;

CREATE FUNCTION soak.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN SQLSTATE 'OR023' OR SQLSTATE 'OR025' OR SQLSTATE 'OR026' OR SQLSTATE 'OR029' OR SQLSTATE 'OR001' THEN
    RETURN SQLSTATE;
END $$;
