-- Upgrade path: data written under 0.1.0 survives ALTER EXTENSION UPDATE,
-- and the 0.2.0 features work on it.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS orders CASCADE;
CREATE EXTENSION orders VERSION '0.1.0';
INSERT INTO orders.customers (id, full_name) VALUES ('00000000-0000-0000-0000-0000000002c1', 'Old Client');
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle)
VALUES ('00000000-0000-0000-0000-0000000002a1', 'U-1', '00000000-0000-0000-0000-0000000002c1', 'campaign');
SELECT (orders.transition('00000000-0000-0000-0000-0000000002a1', 'active', 'before upgrade')).status;

ALTER EXTENSION orders UPDATE TO '0.2.0';
SELECT extversion FROM pg_extension WHERE extname = 'orders';

SELECT order_number, status, leads_purchased, leads_delivered, leads_remaining FROM orders.orders;
SELECT old_status, new_status, notes FROM orders.order_history;
SELECT lifecycle, status FROM orders.lifecycle_states WHERE accepts_leads;

UPDATE orders.orders SET leads_purchased = 2 WHERE order_number = 'U-1';
INSERT INTO orders.leads (customer_id, order_id, status)
SELECT '00000000-0000-0000-0000-0000000002c1', '00000000-0000-0000-0000-0000000002a1', 'approved'
  FROM generate_series(1, 2);
SELECT order_number, status, leads_delivered, leads_remaining FROM orders.orders;
SELECT old_status, new_status, notes FROM orders.order_history ORDER BY id;

-- a campaign paid under 0.2.0: 0.6.0 posts the revenue it earned
UPDATE orders.orders SET total_amount = 99, payment_status = 'collected' WHERE order_number = 'U-1';

-- to 0.6.0, where a DBA shows a view to a role; 0.7.0 rebuilds the view
-- (its amounts become the NaN-free domain) and keeps the grant
ALTER EXTENSION orders UPDATE TO '0.6.0';
DROP ROLE IF EXISTS upgrade_reader;
CREATE ROLE upgrade_reader;
GRANT SELECT ON orders.order_details_view, orders.daily_financial_summary TO upgrade_reader;

-- to 0.7.0, where staff keep an internal note on an order (0.8.0 moves it
-- to orders.order_notes, which its customer never sees)
ALTER EXTENSION orders UPDATE TO '0.7.0';
UPDATE orders.orders SET internal_notes = 'call before noon' WHERE order_number = 'U-1';
-- and an agency order with two items, already being reviewed
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle)
VALUES ('00000000-0000-0000-0000-0000000002a7', 'U-7', '00000000-0000-0000-0000-0000000002c1', 'review');
INSERT INTO orders.order_items (order_id, name, quantity, unit_price)
SELECT '00000000-0000-0000-0000-0000000002a7', 'site ' || n, 1, 100 FROM generate_series(1, 2) n;
SELECT (orders.transition('00000000-0000-0000-0000-0000000002a7', s)).status
  FROM unnest(ARRAY['analyzing', 'reviewing']) s;

-- and on to the current version: slots work on the upgraded data.  On the
-- way, 0.14.0 replaces the reach policies that are as 0.13.0 made them and
-- leaves one a DBA changed (with a warning)
ALTER EXTENSION orders UPDATE TO '0.13.0';
ALTER POLICY reach ON orders.customers USING (account_id IS NOT NULL);
ALTER EXTENSION orders UPDATE;
SELECT polrelid::regclass AS tab, pg_get_expr(polqual, polrelid) AS reach FROM pg_policy
 WHERE polname = 'reach' AND polrelid IN ('orders.orders'::regclass, 'orders.customers'::regclass) ORDER BY 1;
SELECT o.order_number, n.body, n.author_id FROM orders.order_notes n JOIN orders.orders o ON o.id = n.order_id;
-- seed 001's rule: the review order has one group (its customer, a link per item)
SELECT o.order_number, c.full_name, g.link_count, g.approved_count
  FROM orders.order_groups g JOIN orders.orders o ON o.id = g.order_id JOIN orders.customers c ON c.id = g.client_id;
-- and goes to payment (it does not require client review)
SELECT (orders.transition('00000000-0000-0000-0000-0000000002a7', 'payment_pending')).status;
SELECT count(*) AS internal_notes_columns FROM pg_attribute
 WHERE attrelid = 'orders.orders'::regclass AND attname = 'internal_notes' AND NOT attisdropped;
-- every table has row level security, every view runs as its caller
SELECT c.relname FROM pg_class c
 WHERE c.relnamespace = 'orders'::regnamespace AND c.relkind = 'r' AND NOT c.relrowsecurity;
SELECT c.relname FROM pg_class c
 WHERE c.relnamespace = 'orders'::regnamespace AND c.relkind = 'v'
   AND NOT coalesce('security_invoker=true' = ANY (c.reloptions), false);
SELECT has_table_privilege('upgrade_reader', 'orders.order_details_view', 'SELECT') AS details,
       has_table_privilege('upgrade_reader', 'orders.daily_financial_summary', 'SELECT') AS summary,
       has_table_privilege('upgrade_reader', 'orders.ledger_discrepancies', 'SELECT') AS not_granted;
SELECT format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'orders.orders'::regclass AND attname = 'total_amount';
SELECT extversion FROM pg_extension WHERE extname = 'orders';
INSERT INTO orders.service_capacity (id, service_id, starts_at, ends_at, max_capacity)
VALUES ('00000000-0000-0000-0000-0000000002d1', '00000000-0000-0000-0000-0000000002e1',
        now() + interval '1 day', now() + interval '1 day 1 hour', 2);
SELECT orders.reserve_time_slot('00000000-0000-0000-0000-0000000002d1') IS NOT NULL AS held;
SELECT booked_count, held_count FROM orders.service_capacity;
-- (0.4.0 counted the statistics of the orders made before it)
SELECT full_name, total_orders, returned_orders, total_spent, return_rate FROM orders.customers;
-- (0.6.0 posted the revenue of orders earned before it; stock-holding states)
SELECT type, amount, automatic, notes FROM orders.financial_transactions;
SELECT count(*) AS discrepancies FROM orders.ledger_discrepancies;
SELECT lifecycle, status FROM orders.lifecycle_states WHERE holds_stock ORDER BY lifecycle, position;

DROP EXTENSION orders CASCADE;
DROP ROLE upgrade_reader;
