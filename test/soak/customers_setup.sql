-- Customer-statistics soak fixtures: 3 customers with 300 cod orders each,
-- and a helper that turns refused transitions into results.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE SCHEMA soak;
INSERT INTO orders.customers (id, full_name)
SELECT ('60000000-0000-0000-0000-00000000000' || n)::uuid, 'Soak ' || n FROM generate_series(1, 3) n;
INSERT INTO orders.orders (order_number, customer_id, total_amount)
SELECT 'SC-' || n, ('60000000-0000-0000-0000-00000000000' || (1 + n % 3))::uuid, (n % 97) + 0.5
  FROM generate_series(1, 900) n;
CREATE FUNCTION soak.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN SQLSTATE 'OR001' THEN
    RETURN SQLSTATE;
END $$;
