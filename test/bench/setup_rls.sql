-- Benchmark fixtures for test/bench/rls.sh: pgTAP 12's dashboard data set
-- (20k customers in 50 areas, 100k orders over a year, 5k products, 200
-- agents) with logins: every customer has an account (JWT sub
-- 00000000-0000-0000-acc1-<customer number in hex>), and three staff
-- accounts — an admin (sub …-ac50-000000000001), agent 7 of the 200
-- (sub …-ac50-000000000007, ~50 orders ready for pickup or out for
-- delivery, ~450 delivered) and a customer rep (sub …-ac50-000000000003,
-- 2,000 orders assigned, and the unassigned open ones of the data set).
-- The API roles as PostgREST uses them: authenticator (LOGIN NOINHERIT)
-- switches to anon or authenticated; orders.grant_api() does the rest.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['anon', 'authenticated'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticator') THEN
        CREATE ROLE authenticator LOGIN NOINHERIT;
    END IF;
END $$;
GRANT anon, authenticated TO authenticator;
SELECT orders.grant_api('anon', 'authenticated');

INSERT INTO orders.staff (id, account_id, full_name, role, is_active, availability_status)
SELECT ('00000000-0000-0000-0000-' || lpad(to_hex(g), 12, '0'))::uuid,
       CASE WHEN g = 7 THEN '00000000-0000-0000-ac50-000000000007'::uuid END,
       'Agent ' || g, 'delivery_agent', true, 'available'
  FROM generate_series(1, 200) g;
INSERT INTO orders.staff (id, account_id, full_name, role) VALUES
  ('00000000-0000-0000-57af-000000000001', '00000000-0000-0000-ac50-000000000001', 'Bench Admin', 'admin'),
  ('00000000-0000-0000-57af-000000000003', '00000000-0000-0000-ac50-000000000003', 'Bench Rep', 'customer_rep');
INSERT INTO orders.customers (id, account_id, full_name, phone, area, tags)
SELECT ('00000000-0000-0000-0001-' || lpad(to_hex(g), 12, '0'))::uuid,
       ('00000000-0000-0000-acc1-' || lpad(to_hex(g), 12, '0'))::uuid,
       'Customer ' || g, '+221 ' || g, 'area-' || (g % 50),
       CASE WHEN g % 50 = 7 THEN '[{"id": "vip", "label": "VIP Customer"}]'::jsonb
            WHEN g % 10 = 3 THEN '[{"id": "frequent_returner"}]'::jsonb ELSE '[]'::jsonb END
  FROM generate_series(1, 20000) g;
-- 100k orders over the last year (pgTAP 12's); every 50th assigned to the rep
INSERT INTO orders.orders (order_number, customer_id, status, payment_status, priority, total_amount, created_at,
                           delivery_area, assigned_agent_id, assigned_rep_id)
SELECT 'D-' || g, ('00000000-0000-0000-0001-' || lpad(to_hex(1 + g % 20000), 12, '0'))::uuid,
       st, CASE WHEN st = 'delivered' AND g % 4 <> 0 THEN 'collected' ELSE 'pending' END,
       g % 3, 10 + g % 90, now() - (g * interval '5 minutes'), 'area-' || (g % 50),
       CASE WHEN st IN ('out_for_delivery', 'delivered') OR (st = 'ready_for_pickup' AND g % 12 = 4)
            THEN ('00000000-0000-0000-0000-' || lpad(to_hex(1 + g % 200), 12, '0'))::uuid END,
       CASE WHEN g % 50 = 1 THEN '00000000-0000-0000-57af-000000000003'::uuid END
  FROM generate_series(1, 100000) g,
       LATERAL (SELECT CASE WHEN g < 300 THEN (ARRAY['new', 'confirmation_pending', 'confirmed', 'being_prepared',
                                                      'ready_for_pickup', 'out_for_delivery'])[1 + g % 6]
                            WHEN g % 20 = 0 THEN 'cancelled' WHEN g % 25 = 0 THEN 'returned'
                            ELSE 'delivered' END AS st) s;
-- agent 7's round: 50 active orders of 50 customers, created today
INSERT INTO orders.orders (order_number, customer_id, status, priority, total_amount, created_at,
                           delivery_area, delivery_address, assigned_agent_id)
SELECT 'A7-' || g, ('00000000-0000-0000-0001-' || lpad(to_hex(1 + (g * 397) % 20000), 12, '0'))::uuid,
       CASE WHEN g % 2 = 0 THEN 'ready_for_pickup' ELSE 'out_for_delivery' END,
       g % 3, 20 + g, now() - (g * interval '3 minutes'), 'area-7', g || ' Rue Sept',
       '00000000-0000-0000-0000-000000000007'
  FROM generate_series(1, 50) g;
UPDATE orders.financial_transactions t SET date = o.created_at::date
  FROM orders.orders o WHERE o.id = t.order_id;
INSERT INTO orders.products (name, sku, category, price, stock_quantity, low_stock_threshold)
SELECT 'Product ' || g, 'SKU-' || g, 'cat-' || (g % 40), 5 + g % 50, CASE WHEN g % 100 = 0 THEN g % 7 ELSE 20 + g % 500 END, 10
  FROM generate_series(1, 5000) g;
INSERT INTO orders.deliveries (order_id, agent_id, rating)
SELECT o.id, o.assigned_agent_id, 1 + (hashtext(o.order_number) & 3)
  FROM orders.orders o WHERE o.assigned_agent_id IS NOT NULL AND o.order_number LIKE 'D-1%';
VACUUM ANALYZE;
