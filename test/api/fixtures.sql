-- test/api/fixtures.sql — data of test/api_server.sh, loaded as a superuser
-- after CREATE EXTENSION orders and orders.grant_api('anon', 'authenticated').
-- Accounts (JWT subs): a001, a002 customers; b001, b002 delivery agents.
-- Orders: API-1 and API-2 of customer 1, API-3 of customer 2; API-1 is COD,
-- assigned to agent 1, API-3 to agent 2, both walked to out_for_delivery.
\set ON_ERROR_STOP on

INSERT INTO orders.customers (id, account_id, full_name, phone) VALUES
  ('c0000000-0000-0000-0000-0000000000c1', 'a0000000-0000-0000-0000-00000000a001', 'Amina Diallo', '+221 77 000 00 01'),
  ('c0000000-0000-0000-0000-0000000000c2', 'a0000000-0000-0000-0000-00000000a002', 'Moussa Sow',   '+221 77 000 00 02');

INSERT INTO orders.staff (id, account_id, full_name, role, is_active) VALUES
  ('d0000000-0000-0000-0000-0000000000d1', 'b0000000-0000-0000-0000-00000000b001', 'Agent One', 'delivery_agent', true),
  ('d0000000-0000-0000-0000-0000000000d2', 'b0000000-0000-0000-0000-00000000b002', 'Agent Two', 'delivery_agent', true);

INSERT INTO orders.orders (id, order_number, customer_id, lifecycle, payment_method) VALUES
  ('e0000000-0000-0000-0000-0000000000e1', 'API-1', 'c0000000-0000-0000-0000-0000000000c1', 'cod', 'cod'),
  ('e0000000-0000-0000-0000-0000000000e2', 'API-2', 'c0000000-0000-0000-0000-0000000000c1', 'cod', 'cod'),
  ('e0000000-0000-0000-0000-0000000000e3', 'API-3', 'c0000000-0000-0000-0000-0000000000c2', 'cod', 'cod');
INSERT INTO orders.order_items (order_id, name, quantity, unit_price) VALUES
  ('e0000000-0000-0000-0000-0000000000e1', 'Kettle', 1, 25),
  ('e0000000-0000-0000-0000-0000000000e2', 'Lamp',   2, 10),
  ('e0000000-0000-0000-0000-0000000000e3', 'Radio',  1, 40);

-- the COD lifecycle step by step (45_builtin_lifecycles.sql): new →
-- confirmed → being_prepared → ready_for_pickup, an agent assigned, →
-- out_for_delivery
UPDATE orders.orders SET status = 'confirmed'
 WHERE id IN ('e0000000-0000-0000-0000-0000000000e1', 'e0000000-0000-0000-0000-0000000000e3');
UPDATE orders.orders SET status = 'being_prepared'
 WHERE id IN ('e0000000-0000-0000-0000-0000000000e1', 'e0000000-0000-0000-0000-0000000000e3');
UPDATE orders.orders SET status = 'ready_for_pickup'
 WHERE id IN ('e0000000-0000-0000-0000-0000000000e1', 'e0000000-0000-0000-0000-0000000000e3');
UPDATE orders.orders SET assigned_agent_id = 'd0000000-0000-0000-0000-0000000000d1'
 WHERE id = 'e0000000-0000-0000-0000-0000000000e1';
UPDATE orders.orders SET assigned_agent_id = 'd0000000-0000-0000-0000-0000000000d2'
 WHERE id = 'e0000000-0000-0000-0000-0000000000e3';
UPDATE orders.orders SET status = 'out_for_delivery'
 WHERE id IN ('e0000000-0000-0000-0000-0000000000e1', 'e0000000-0000-0000-0000-0000000000e3');

-- a service with two slots tomorrow, for orders.available_slots()
INSERT INTO orders.service_capacity (service_id, starts_at, ends_at, max_capacity) VALUES
  ('f0000000-0000-0000-0000-0000000000f0', date_trunc('hour', now()) + interval '1 day',
   date_trunc('hour', now()) + interval '1 day 1 hour', 3),
  ('f0000000-0000-0000-0000-0000000000f0', date_trunc('hour', now()) + interval '1 day 1 hour',
   date_trunc('hour', now()) + interval '1 day 2 hours', 2);
