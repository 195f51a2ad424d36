-- Every built-in lifecycle walked along its main path; the history and
-- stamps each change leaves; the refusals an operator meets.
\set VERBOSITY default
SET client_min_messages = warning;
INSERT INTO orders.customers (id, full_name, city)
VALUES ('00000000-0000-0000-0000-0000000000c1', 'Ada Lovelace', 'London');

CREATE TEMP TABLE walk (lifecycle text, step int, status text);
INSERT INTO walk VALUES
  ('cod', 1, 'confirmation_pending'), ('cod', 2, 'confirmed'), ('cod', 3, 'being_prepared'),
  ('cod', 4, 'ready_for_pickup'), ('cod', 5, 'out_for_delivery'), ('cod', 6, 'delivered'),
  ('cod', 7, 'returned'),
  ('campaign', 1, 'active'), ('campaign', 2, 'paused'), ('campaign', 3, 'active'),
  ('campaign', 4, 'completed'),
  ('review', 1, 'analyzing'), ('review', 2, 'reviewing'), ('review', 3, 'payment_pending'),
  ('review', 4, 'in_progress'), ('review', 5, 'completed'),
  ('booking', 1, 'confirmed'), ('booking', 2, 'in_progress'), ('booking', 3, 'completed');

INSERT INTO orders.orders (id, order_number, customer_id, lifecycle)
SELECT ('00000000-0000-0000-0000-00000000000' || n)::uuid, 'T-' || l, '00000000-0000-0000-0000-0000000000c1', l
  FROM (VALUES (1, 'cod'), (2, 'campaign'), (3, 'review'), (4, 'booking')) v(n, l);
-- an agency order needs a client group before its analysis (gate client_groups)
INSERT INTO orders.order_groups (order_id, client_id, link_count)
VALUES ('00000000-0000-0000-0000-000000000003', '00000000-0000-0000-0000-0000000000c1', 1);

SELECT order_number, lifecycle, status FROM orders.orders ORDER BY order_number;

-- walk each order through its path with orders.transition()
SELECT o.order_number, w.step, (orders.transition(o.id, w.status, 'step ' || w.step)).status
  FROM walk w JOIN orders.orders o ON o.lifecycle = w.lifecycle
 ORDER BY o.order_number, w.step;

SELECT o.order_number, h.old_status, h.new_status, h.changed_by, h.notes
  FROM orders.order_history h JOIN orders.orders o ON o.id = h.order_id
 ORDER BY o.order_number, h.id;

-- which stamps were set along the way
SELECT order_number, confirmed_at IS NOT NULL AS confirmed, started_at IS NOT NULL AS started,
       paused_at IS NOT NULL AS paused, reviewed_at IS NOT NULL AS reviewed,
       paid_at IS NOT NULL AS paid, shipped_at IS NOT NULL AS shipped,
       delivered_at IS NOT NULL AS delivered, returned_at IS NOT NULL AS returned,
       completed_at IS NOT NULL AS completed, cancelled_at IS NOT NULL AS cancelled
  FROM orders.orders ORDER BY order_number;

-- terminal statuses offer nothing further
SELECT order_number, status, array(SELECT orders.allowed_transitions(id)) AS next
  FROM orders.orders ORDER BY order_number;

-- a new COD order: where it can go
INSERT INTO orders.orders (id, order_number, customer_id)
VALUES ('00000000-0000-0000-0000-000000000005', 'T-cod-2', '00000000-0000-0000-0000-0000000000c1');
SELECT orders.allowed_transitions('00000000-0000-0000-0000-000000000005');

-- refusals: a jump, a terminal status, an unknown status, a lifecycle change
UPDATE orders.orders SET status = 'delivered' WHERE order_number = 'T-cod-2';
UPDATE orders.orders SET status = 'draft' WHERE order_number = 'T-campaign';
SELECT orders.transition('00000000-0000-0000-0000-000000000005', 'shipped');
UPDATE orders.orders SET lifecycle = 'booking' WHERE order_number = 'T-cod-2';
SELECT orders.transition('00000000-0000-0000-0000-000000000099', 'confirmed');
-- nothing of that changed anything
SELECT order_number, status FROM orders.orders WHERE order_number IN ('T-cod-2', 'T-campaign') ORDER BY 1;
SELECT count(*) AS history_rows FROM orders.order_history;

-- the graph as a table
SELECT lifecycle, from_status, to_status, stamp_column FROM orders.lifecycle_graph
 WHERE lifecycle = 'booking';
