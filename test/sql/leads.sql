-- Lead campaigns (seed 002): leads_delivered follows every change of the
-- leads by deltas; capacity, customer and status rules; auto-complete.
SET client_min_messages = warning;
INSERT INTO orders.customers (id, full_name) VALUES
  ('00000000-0000-0000-0000-0000000001c1', 'Acme Hiring'),
  ('00000000-0000-0000-0000-0000000001c2', 'Other Client');
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle, name, leads_purchased, target_delivery_date)
VALUES ('00000000-0000-0000-0000-0000000001a1', 'L-1', '00000000-0000-0000-0000-0000000001c1', 'campaign', 'Q1 hiring', 3, '2030-01-31'),
       ('00000000-0000-0000-0000-0000000001a2', 'L-2', '00000000-0000-0000-0000-0000000001c1', 'campaign', 'Q2 hiring', 5, NULL),
       ('00000000-0000-0000-0000-0000000001a3', 'L-3', '00000000-0000-0000-0000-0000000001c2', 'campaign', 'Other', 5, NULL);
SELECT order_number, (orders.transition(id, 'active')).status FROM orders.orders WHERE order_number LIKE 'L-%' ORDER BY 1;

CREATE FUNCTION pg_temp.counts() RETURNS TABLE (order_number text, status text, delivered int, purchased int, remaining int)
LANGUAGE sql AS $$
  SELECT order_number, status, leads_delivered, leads_purchased, leads_remaining
    FROM orders.orders WHERE order_number LIKE 'L-%' ORDER BY 1 $$;

-- insert: only approved/lead count
INSERT INTO orders.leads (id, customer_id, order_id, status, company_name) VALUES
  ('00000000-0000-0000-0000-000000000101', '00000000-0000-0000-0000-0000000001c1', '00000000-0000-0000-0000-0000000001a1', 'approved', 'Alpha'),
  ('00000000-0000-0000-0000-000000000102', '00000000-0000-0000-0000-0000000001c1', '00000000-0000-0000-0000-0000000001a1', 'new', 'Beta'),
  ('00000000-0000-0000-0000-000000000103', '00000000-0000-0000-0000-0000000001c1', '00000000-0000-0000-0000-0000000001a2', 'lead', 'Gamma');
SELECT * FROM pg_temp.counts();

-- status change new -> approved counts; approved -> rejected uncounts
UPDATE orders.leads SET status = 'approved' WHERE company_name = 'Beta';
SELECT * FROM pg_temp.counts();
UPDATE orders.leads SET status = 'rejected' WHERE company_name = 'Alpha';
SELECT * FROM pg_temp.counts();

-- move between orders, unassign, delete
UPDATE orders.leads SET order_id = '00000000-0000-0000-0000-0000000001a2' WHERE company_name = 'Beta';
SELECT * FROM pg_temp.counts();
SELECT company_name, order_id IS NULL AS unassigned FROM orders.assign_lead('00000000-0000-0000-0000-000000000103', NULL);
SELECT * FROM pg_temp.counts();
DELETE FROM orders.leads WHERE company_name = 'Beta';
SELECT * FROM pg_temp.counts();

-- refusals (nothing changes)
INSERT INTO orders.leads (customer_id, order_id, status, company_name)
SELECT '00000000-0000-0000-0000-0000000001c1', '00000000-0000-0000-0000-0000000001a1', 'approved', 'Bulk ' || n
  FROM generate_series(1, 4) n;
INSERT INTO orders.leads (id, customer_id, order_id, status, company_name)
VALUES ('00000000-0000-0000-0000-0000000001ff', '00000000-0000-0000-0000-0000000001c2', '00000000-0000-0000-0000-0000000001a1', 'new', 'Wrong client');
SELECT (orders.transition('00000000-0000-0000-0000-0000000001a2', 'paused')).status;
INSERT INTO orders.leads (customer_id, order_id, status, company_name)
VALUES ('00000000-0000-0000-0000-0000000001c1', '00000000-0000-0000-0000-0000000001a2', 'approved', 'Too late');
SELECT (orders.transition('00000000-0000-0000-0000-0000000001a2', 'active')).status;
SELECT * FROM pg_temp.counts();

-- filling L-1 completes it, in the same statement, with history and stamp
INSERT INTO orders.leads (customer_id, order_id, status, company_name)
SELECT '00000000-0000-0000-0000-0000000001c1', '00000000-0000-0000-0000-0000000001a1', 'approved', 'Fill ' || n
  FROM generate_series(1, 3) n;
SELECT * FROM pg_temp.counts();
SELECT h.old_status, h.new_status, h.notes, o.completed_at IS NOT NULL AS stamped
  FROM orders.order_history h JOIN orders.orders o ON o.id = h.order_id
 WHERE o.order_number = 'L-1' ORDER BY h.id;
-- lowering the purchase below what was delivered is refused
UPDATE orders.orders SET leads_purchased = 2 WHERE order_number = 'L-1';
-- a lead withdrawn from a completed campaign: the count drops, it stays completed
UPDATE orders.leads SET status = 'rejected' WHERE company_name = 'Fill 1';
SELECT * FROM pg_temp.counts();
-- reopened, it takes the missing lead and completes again
SELECT status FROM orders.transition('00000000-0000-0000-0000-0000000001a1', 'active', 'one lead owed');
INSERT INTO orders.leads (customer_id, order_id, status, company_name)
VALUES ('00000000-0000-0000-0000-0000000001c1', '00000000-0000-0000-0000-0000000001a1', 'lead', 'Replacement');
SELECT * FROM pg_temp.counts();

-- TRUNCATE would bypass the counters: refused while any order counts leads
TRUNCATE orders.leads;
-- deleting an order leaves its leads unassigned
INSERT INTO orders.leads (customer_id, order_id, status, company_name)
VALUES ('00000000-0000-0000-0000-0000000001c2', '00000000-0000-0000-0000-0000000001a3', 'new', 'Parked');
DELETE FROM orders.orders WHERE order_number = 'L-3';
SELECT count(*) AS leads_without_order FROM orders.leads WHERE order_id IS NULL;

-- read side
SELECT order_number, client_name, name, status, leads_delivered, leads_purchased, completion_percentage
  FROM orders.order_summary ORDER BY order_number;
SELECT total, active, near_capacity, completed_this_month FROM orders.order_stats();

-- the stored counts agree with a recount
SELECT * FROM orders.recount_leads();
