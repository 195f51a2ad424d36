-- Soak fixtures: 4 active campaigns of one client, with room for any number
-- of leads, and 2,000 leads spread over them in mixed statuses.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
DELETE FROM orders.leads WHERE customer_id = '50000000-0000-0000-0000-000000000001';
DELETE FROM orders.orders WHERE customer_id = '50000000-0000-0000-0000-000000000001';
DELETE FROM orders.customers WHERE id = '50000000-0000-0000-0000-000000000001';
INSERT INTO orders.customers (id, full_name) VALUES ('50000000-0000-0000-0000-000000000001', 'Soak');
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle, leads_purchased)
SELECT ('50000000-0000-0000-0000-00000000000' || n)::uuid, 'SOAK-' || n,
       '50000000-0000-0000-0000-000000000001', 'campaign', 1000000000
  FROM generate_series(1, 4) n;
UPDATE orders.orders SET status = 'active' WHERE order_number LIKE 'SOAK-%';
INSERT INTO orders.leads (customer_id, order_id, status, company_name)
SELECT '50000000-0000-0000-0000-000000000001',
       CASE WHEN n % 10 = 0 THEN NULL ELSE ('50000000-0000-0000-0000-00000000000' || (1 + n % 4))::uuid END,
       (ARRAY['new', 'approved', 'lead', 'rejected'])[1 + n % 4], 'seed ' || n
  FROM generate_series(1, 2000) n;
