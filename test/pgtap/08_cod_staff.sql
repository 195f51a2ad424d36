-- COD operations (first part): staff, assignment refusals, deliveries and
-- the seed's views.
BEGIN;
SELECT plan(12);

INSERT INTO orders.staff (id, full_name, role, is_active, availability_status) VALUES
  ('00000000-0000-0000-0000-000000000d01', 'Moussa Agent', 'delivery_agent', true, 'available'),
  ('00000000-0000-0000-0000-000000000d02', 'Awa Rep', 'customer_rep', true, 'available'),
  ('00000000-0000-0000-0000-000000000d03', 'Old Agent', 'delivery_agent', false, 'offline'),
  ('00000000-0000-0000-0000-000000000d04', 'Ali Accountant', 'accountant', true, 'offline');
INSERT INTO orders.customers (id, full_name, phone) VALUES ('00000000-0000-0000-0000-000000000dc1', 'Cod Customer', '+221 1');
INSERT INTO orders.orders (id, order_number, customer_id, total_amount, delivery_area) VALUES
  ('00000000-0000-0000-0000-000000000d11', 'T8-1', '00000000-0000-0000-0000-000000000dc1', 30, 'Plateau');
CREATE TEMP TABLE before AS SELECT * FROM orders.orders;

SELECT throws_ok($$UPDATE orders.orders SET assigned_agent_id = '00000000-0000-0000-0000-000000000d04' WHERE order_number = 'T8-1'$$,
                 'OR040', 'order "T8-1": Ali Accountant (role accountant) is not a delivery agent', 'an accountant cannot deliver');
SELECT throws_ok($$UPDATE orders.orders SET assigned_agent_id = '00000000-0000-0000-0000-000000000d03' WHERE order_number = 'T8-1'$$,
                 'OR041', NULL, 'an inactive agent cannot be assigned');
SELECT throws_ok($$UPDATE orders.orders SET assigned_rep_id = '00000000-0000-0000-0000-000000000d01' WHERE order_number = 'T8-1'$$,
                 'OR040', NULL, 'a delivery agent is not a customer rep');
SELECT throws_ok($$UPDATE orders.orders SET assigned_agent_id = '00000000-0000-0000-0000-000000000dff' WHERE order_number = 'T8-1'$$,
                 '23503', NULL, 'an unknown staff member');
SELECT set_eq('SELECT * FROM orders.orders', 'SELECT * FROM before', 'the refusals changed nothing');

SELECT lives_ok($$UPDATE orders.orders SET assigned_agent_id = '00000000-0000-0000-0000-000000000d01',
                                          assigned_rep_id = '00000000-0000-0000-0000-000000000d02' WHERE order_number = 'T8-1'$$,
                'an active agent and rep are assigned');
SELECT is((SELECT customer_name || ' / ' || rep_name || ' / ' || agent_name || ' (' || agent_availability || ')'
             FROM orders.order_details_view WHERE order_number = 'T8-1'),
          'Cod Customer / Awa Rep / Moussa Agent (available)', 'order_details_view joins customer, rep and agent');

-- a delivery with a rating, and the agent's performance
INSERT INTO orders.deliveries (order_id, agent_id, pickup_time, delivery_time, rating)
VALUES ('00000000-0000-0000-0000-000000000d11', '00000000-0000-0000-0000-000000000d01', now(), now() + interval '30 minutes', 4);
SELECT throws_ok($$INSERT INTO orders.deliveries (order_id, agent_id, rating) VALUES
                   ('00000000-0000-0000-0000-000000000d11', '00000000-0000-0000-0000-000000000d01', 6)$$,
                 '23514', NULL, 'a rating outside 1..5');
SELECT orders.transition('00000000-0000-0000-0000-000000000d11', s)
  FROM unnest(ARRAY['confirmed', 'being_prepared', 'ready_for_pickup', 'out_for_delivery', 'delivered']) s;
SELECT is((SELECT total_deliveries || ' deliveries, rating ' || average_rating || ', ' || successful_orders || ' delivered'
             FROM orders.agent_performance_view WHERE agent_name = 'Moussa Agent'),
          '1 deliveries, rating 4.00, 1 delivered', 'agent_performance_view');
SELECT is((SELECT count(*)::int FROM orders.agent_performance_view WHERE agent_name IN ('Moussa Agent', 'Old Agent')), 2, 'every delivery agent is listed, active or not');
INSERT INTO orders.deliveries (order_id, agent_id, pickup_time, delivery_time)
SELECT '00000000-0000-0000-0000-000000000d11', '00000000-0000-0000-0000-000000000d01', now(), now() + interval '40 minutes'
  FROM generate_series(1, 9);
SELECT is((SELECT total_deliveries || ' attempts, ' || completed_deliveries || ' completed'
             FROM orders.agent_performance_view WHERE agent_name = 'Moussa Agent'),
          '10 attempts, 1 completed', '(0.29.0) ten completed deliveries of one order count as one (orders, not rows)');
-- (0.39.0) ratings count per order (ten one-star rows of one order are one
-- order's one star), and a completed delivery of an order not delivered is none
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle, assigned_agent_id)
SELECT '00000000-0000-0000-0000-000000000d12', 'T8-2', o.customer_id, 'cod', '00000000-0000-0000-0000-000000000d01'
  FROM orders.orders o WHERE o.order_number = 'T8-1';
INSERT INTO orders.deliveries (order_id, agent_id, delivery_time, rating)
SELECT '00000000-0000-0000-0000-000000000d12', '00000000-0000-0000-0000-000000000d01', now(), 2
  FROM generate_series(1, 10);
SELECT is((SELECT total_deliveries || ' attempts, ' || completed_deliveries || ' completed, rating ' || average_rating
             FROM orders.agent_performance_view WHERE agent_name = 'Moussa Agent'),
          '20 attempts, 1 completed, rating 3.00',
          '(0.39.0) ten two-star rows of a new order: its one rating beside the other order''s four, and no completion');

SELECT * FROM finish();
ROLLBACK;
