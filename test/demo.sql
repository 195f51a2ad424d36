-- The quick-start demo: one order through each built-in lifecycle, with
-- what the extension recorded, and the refusals an operator meets.
\pset footer off
\set QUIET on
SET client_min_messages = warning;

\echo
\echo '### The four built-in lifecycles (orders.lifecycle_graph)'
SELECT lifecycle, from_status || ' -> ' || string_agg(to_status, ', ' ORDER BY to_status) AS "can move to"
  FROM orders.lifecycle_graph GROUP BY lifecycle, from_status ORDER BY lifecycle, min(from_status);

INSERT INTO orders.customers (id, full_name, phone, city, area)
VALUES ('d0000000-0000-0000-0000-000000000001', 'Amina Diallo', '+221 77 000 00 00', 'Dakar', 'Plateau');

INSERT INTO orders.orders (id, order_number, customer_id, lifecycle, delivery_fee, total_amount, payment_method)
VALUES ('d0000000-0000-0000-0000-0000000000a1', 'DEMO-COD',      'd0000000-0000-0000-0000-000000000001', 'cod',      5, 45, 'cod'),
       ('d0000000-0000-0000-0000-0000000000a2', 'DEMO-CAMPAIGN', 'd0000000-0000-0000-0000-000000000001', 'campaign', 0, 900, 'bank_transfer'),
       ('d0000000-0000-0000-0000-0000000000a3', 'DEMO-REVIEW',   'd0000000-0000-0000-0000-000000000001', 'review',   0, 1500, 'card'),
       ('d0000000-0000-0000-0000-0000000000a4', 'DEMO-BOOKING',  'd0000000-0000-0000-0000-000000000001', 'booking',  0, 60, 'card');
-- an agency order has at least one client group before its analysis
INSERT INTO orders.order_groups (order_id, client_id, link_count)
VALUES ('d0000000-0000-0000-0000-0000000000a3', 'd0000000-0000-0000-0000-000000000001', 5);

\echo
\echo '### New orders start in their lifecycle''s initial status'
SELECT order_number, lifecycle, status,
       array_to_string(array(SELECT orders.allowed_transitions(id)), ', ') AS "next possible"
  FROM orders.orders WHERE order_number LIKE 'DEMO-%' ORDER BY order_number;

\echo
\echo '### Walking each order along its lifecycle with orders.transition()'
-- a JWT subject, as PostgREST would set it per request
SELECT set_config('request.jwt.claims', '{"sub":"demo-operator"}', false) \gset
SELECT o.order_number, step, (orders.transition(o.id, s, note)).status AS "now"
  FROM (VALUES
    ('DEMO-COD', 1, 'confirmation_pending', 'calling the customer'),
    ('DEMO-COD', 2, 'confirmed', 'customer said yes'),
    ('DEMO-COD', 3, 'being_prepared', NULL), ('DEMO-COD', 4, 'ready_for_pickup', NULL),
    ('DEMO-COD', 5, 'out_for_delivery', 'agent Moussa'),
    ('DEMO-COD', 6, 'ready_for_pickup', 'nobody home, back to depot'),
    ('DEMO-COD', 7, 'out_for_delivery', 'second attempt'),
    ('DEMO-COD', 8, 'delivered', 'cash collected'),
    ('DEMO-CAMPAIGN', 1, 'active', 'launch'), ('DEMO-CAMPAIGN', 2, 'paused', 'client holiday'),
    ('DEMO-CAMPAIGN', 3, 'active', 'resume'), ('DEMO-CAMPAIGN', 4, 'completed', '100 leads delivered'),
    ('DEMO-REVIEW', 1, 'analyzing', NULL), ('DEMO-REVIEW', 2, 'reviewing', '20 sites suggested'),
    ('DEMO-REVIEW', 3, 'analyzing', 'client wants more sites'), ('DEMO-REVIEW', 4, 'reviewing', NULL),
    ('DEMO-REVIEW', 5, 'payment_pending', 'client approved 5 sites'),
    ('DEMO-REVIEW', 6, 'in_progress', 'paid'), ('DEMO-REVIEW', 7, 'completed', NULL),
    ('DEMO-BOOKING', 1, 'confirmed', 'payment succeeded'), ('DEMO-BOOKING', 2, 'in_progress', 'checked in'),
    ('DEMO-BOOKING', 3, 'completed', NULL)
  ) AS w(num, step, s, note)
  JOIN orders.orders o ON o.order_number = w.num
 ORDER BY o.order_number, step;

\echo
\echo '### What was recorded: orders.order_history (one row per change, same transaction)'
SELECT o.order_number, h.old_status || ' -> ' || h.new_status AS change, h.changed_by, coalesce(h.notes, '') AS notes
  FROM orders.order_history h JOIN orders.orders o ON o.id = h.order_id
 WHERE o.order_number LIKE 'DEMO-%' ORDER BY o.order_number, h.id;

\echo
\echo '### Stamps set by the edges'
SELECT order_number, status,
       concat_ws(', ', CASE WHEN confirmed_at IS NOT NULL THEN 'confirmed_at' END,
                 CASE WHEN started_at IS NOT NULL THEN 'started_at' END,
                 CASE WHEN paused_at IS NOT NULL THEN 'paused_at' END,
                 CASE WHEN reviewed_at IS NOT NULL THEN 'reviewed_at' END,
                 CASE WHEN paid_at IS NOT NULL THEN 'paid_at' END,
                 CASE WHEN shipped_at IS NOT NULL THEN 'shipped_at' END,
                 CASE WHEN delivered_at IS NOT NULL THEN 'delivered_at' END,
                 CASE WHEN completed_at IS NOT NULL THEN 'completed_at' END) AS "stamps set"
  FROM orders.orders WHERE order_number LIKE 'DEMO-%' ORDER BY order_number;

\echo
\echo '### Refusals (each with its own SQLSTATE; nothing changes)'
\set ON_ERROR_STOP off
-- every refusal below with its SQLSTATE (verbose), without the PL/pgSQL
-- call stack (context)
\set VERBOSITY verbose
\set SHOW_CONTEXT never
\echo '-- a delivered COD order cannot be cancelled:'
UPDATE orders.orders SET status = 'cancelled' WHERE order_number = 'DEMO-COD';
\echo '-- a retried call with the same idempotency key is a no-op, not an error:'
SELECT status FROM orders.transition('d0000000-0000-0000-0000-0000000000a1', 'returned', 'customer returned it', 'ret-1');
SELECT status FROM orders.transition('d0000000-0000-0000-0000-0000000000a1', 'returned', 'customer returned it', 'ret-1');
\echo '-- an unknown order:'
SELECT orders.transition('d0000000-0000-0000-0000-0000000000ff', 'confirmed');
\set ON_ERROR_STOP on
SELECT set_config('request.jwt.claims', '', false) \gset

\echo
\echo '### A lead campaign (seed 002): leads_delivered follows the leads, exactly'
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle, name, leads_purchased, target_delivery_date)
VALUES ('d0000000-0000-0000-0000-0000000000a5', 'DEMO-LEADS', 'd0000000-0000-0000-0000-000000000001',
        'campaign', 'Q1 hiring leads', 3, current_date + 30);
SELECT (orders.transition('d0000000-0000-0000-0000-0000000000a5', 'active', 'launch')).status AS "campaign is";
INSERT INTO orders.leads (id, customer_id, status, company_name)
VALUES ('d0000000-0000-0000-0000-0000000000e1', 'd0000000-0000-0000-0000-000000000001', 'approved', 'Teranga Foods'),
       ('d0000000-0000-0000-0000-0000000000e2', 'd0000000-0000-0000-0000-000000000001', 'new',      'Baobab Logistics'),
       ('d0000000-0000-0000-0000-0000000000e3', 'd0000000-0000-0000-0000-000000000001', 'lead',     'Sahel Solar'),
       ('d0000000-0000-0000-0000-0000000000e4', 'd0000000-0000-0000-0000-000000000001', 'approved', 'Goree Tours');
\echo '-- assign three leads (one not yet approved: it does not count)'
SELECT a.company_name, a.status FROM orders.leads l,
       LATERAL orders.assign_lead(l.id, 'd0000000-0000-0000-0000-0000000000a5') a
 WHERE l.company_name IN ('Teranga Foods', 'Baobab Logistics', 'Sahel Solar') ORDER BY 1;
SELECT order_number, status, leads_delivered, leads_purchased, leads_remaining, completion_percentage || ' %' AS done
  FROM orders.order_summary WHERE order_number = 'DEMO-LEADS';
\echo '-- approving the third counted lead completes the campaign in the same statement'
UPDATE orders.leads SET status = 'approved' WHERE company_name = 'Baobab Logistics';
SELECT order_number, status, leads_delivered, leads_purchased, completed_at IS NOT NULL AS completed_at_set
  FROM orders.orders WHERE order_number = 'DEMO-LEADS';
SELECT old_status || ' -> ' || new_status AS change, notes FROM orders.order_history
 WHERE order_id = 'd0000000-0000-0000-0000-0000000000a5' ORDER BY id;
\echo '-- a fourth lead does not fit:'
\set ON_ERROR_STOP off
SELECT orders.assign_lead('d0000000-0000-0000-0000-0000000000e4', 'd0000000-0000-0000-0000-0000000000a5');
\set ON_ERROR_STOP on
SELECT count(*) AS "orders whose count disagrees with a recount" FROM orders.recount_leads();

\echo
\echo '### Service slots (seed 003): hold at checkout, confirm after payment, never oversold'
INSERT INTO orders.service_capacity (id, service_id, starts_at, ends_at, max_capacity)
VALUES ('d0000000-0000-0000-0000-0000000000c1', 'd0000000-0000-0000-0000-0000000000c0',
        date_trunc('hour', now()) + interval '1 day 9 hours', date_trunc('hour', now()) + interval '1 day 10 hours', 2);
SELECT set_config('request.jwt.claims', '{"sub":"amina"}', false) \gset
SELECT orders.reserve_time_slot(capacity_id => 'd0000000-0000-0000-0000-0000000000c1') AS amina_hold \gset
\echo '-- Amina holds one of the two places:'
SELECT starts_at::time AS starts, max_capacity, booked, held, remaining
  FROM orders.available_slots('d0000000-0000-0000-0000-0000000000c0', now(), now() + interval '7 days');
SELECT set_config('request.jwt.claims', '{"sub":"moussa"}', false) \gset
SELECT orders.reserve_time_slot(capacity_id => 'd0000000-0000-0000-0000-0000000000c1') AS moussa_hold \gset
\echo '-- Moussa holds the other; a third customer finds both places held:'
SELECT set_config('request.jwt.claims', '{"sub":"fatou"}', false) \gset
\set ON_ERROR_STOP off
SELECT orders.reserve_time_slot('d0000000-0000-0000-0000-0000000000c1');
\set ON_ERROR_STOP on
\echo '-- Amina pays: her order and its service item, then the booking'
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle, payment_method)
VALUES ('d0000000-0000-0000-0000-0000000000a6', 'DEMO-BOOKING-2', 'd0000000-0000-0000-0000-000000000001', 'booking', 'card');
INSERT INTO orders.order_items (id, order_id, item_type, name, unit_price, snapshot)
VALUES ('d0000000-0000-0000-0000-0000000000b6', 'd0000000-0000-0000-0000-0000000000a6', 'service', 'Massage, 60 min', 60,
        '{"slot": "d0000000-0000-0000-0000-0000000000c1"}');
SELECT set_config('request.jwt.claims', '{"sub":"amina"}', false) \gset
SELECT status, quantity FROM orders.confirm_booking(:'amina_hold', 'd0000000-0000-0000-0000-0000000000b6');
\echo '-- the card payment went through: the payment service (outside the API roles) confirms the order'
SELECT set_config('request.jwt.claims', '', false) \gset
SELECT (orders.transition('d0000000-0000-0000-0000-0000000000a6', 'confirmed', 'paid by card')).status AS order_status;
SELECT set_config('request.jwt.claims', '{"sub":"amina"}', false) \gset
\echo '-- Moussa abandons checkout: his hold lapses (here: we move its expiry into the past) and frees itself'
UPDATE orders.slot_reservations SET expires_at = now() - interval '1 second' WHERE id = :'moussa_hold';
SELECT booked, held, remaining FROM orders.available_slots('d0000000-0000-0000-0000-0000000000c0', now(), now() + interval '7 days');
SELECT orders.cleanup_expired_reservations() AS "holds expired by the cleanup job";
\echo '-- Amina cancels: her place goes back'
SELECT (orders.transition('d0000000-0000-0000-0000-0000000000a6', 'cancelled', 'customer cancelled')).status AS order_status;
SELECT booked_count, held_count, max_capacity FROM orders.service_capacity WHERE id = 'd0000000-0000-0000-0000-0000000000c1';
SELECT holder, status FROM orders.slot_reservations ORDER BY created_at, holder;
SELECT set_config('request.jwt.claims', '', false) \gset

\echo
\echo '### COD with a delivery agent, stock and money (seed 004); statistics, stock and ledger follow by themselves'
INSERT INTO orders.staff (id, full_name, role, availability_status) VALUES
  ('d0000000-0000-0000-0000-0000000000f1', 'Moussa Ba', 'delivery_agent', 'available'),
  ('d0000000-0000-0000-0000-0000000000f2', 'Awa Sow', 'customer_rep', 'available'),
  ('d0000000-0000-0000-0000-0000000000f3', 'Ali Ndiaye', 'accountant', 'offline');
INSERT INTO orders.orders (id, order_number, customer_id, delivery_fee, payment_method,
                           delivery_address, delivery_area, assigned_rep_id)
VALUES ('d0000000-0000-0000-0000-0000000000a7', 'DEMO-COD-3', 'd0000000-0000-0000-0000-000000000001', 3, 'cod',
        '12 Rue Carnot', 'Plateau', 'd0000000-0000-0000-0000-0000000000f2');
INSERT INTO orders.products (id, name, sku, price, stock_quantity, low_stock_threshold) VALUES
  ('d0000000-0000-0000-0000-0000000000e1', 'Electric kettle', 'KET-1', 15, 4, 3),
  ('d0000000-0000-0000-0000-0000000000e2', 'Wax print shirt', 'SHIRT-1', 10, 0, 2);
INSERT INTO orders.product_variants (id, product_id, sku, name, attributes, stock_quantity) VALUES
  ('d0000000-0000-0000-0000-0000000000e3', 'd0000000-0000-0000-0000-0000000000e2', 'SHIRT-1-L', 'Large', '{"size": "L"}', 6);
INSERT INTO orders.order_items (order_id, name, quantity, unit_price, product_id, variant_id) VALUES
  ('d0000000-0000-0000-0000-0000000000a7', 'Electric kettle', 1, 15, 'd0000000-0000-0000-0000-0000000000e1', NULL),
  ('d0000000-0000-0000-0000-0000000000a7', 'Wax print shirt (L)', 1, 10, 'd0000000-0000-0000-0000-0000000000e2',
   'd0000000-0000-0000-0000-0000000000e3');
\echo '-- its total follows its items: subtotal (kept from the items) + delivery fee + adjustment:'
SELECT subtotal, delivery_fee, adjustment, total_amount FROM orders.orders WHERE order_number = 'DEMO-COD-3';
\echo '-- stock before the order is confirmed:'
SELECT sku, stock_quantity FROM orders.products WHERE stock_quantity > 0
UNION ALL SELECT sku, stock_quantity FROM orders.product_variants ORDER BY 1;
\echo '-- an accountant cannot be sent out to deliver:'
\set ON_ERROR_STOP off
UPDATE orders.orders SET assigned_agent_id = 'd0000000-0000-0000-0000-0000000000f3' WHERE order_number = 'DEMO-COD-3';
\set ON_ERROR_STOP on
UPDATE orders.orders SET assigned_agent_id = 'd0000000-0000-0000-0000-0000000000f1' WHERE order_number = 'DEMO-COD-3';
SELECT (orders.transition('d0000000-0000-0000-0000-0000000000a7', 'confirmed')).status;
\echo '-- confirmed: the items are out of stock (kettle 4 -> 3, shirt L 6 -> 5), and the kettle is now low:'
SELECT sku, stock_quantity FROM orders.products WHERE stock_quantity > 0
UNION ALL SELECT sku, stock_quantity FROM orders.product_variants ORDER BY 1;
SELECT name, sku, stock_quantity, low_stock_threshold FROM orders.low_stock_view ORDER BY stock_quantity;
\echo '-- another order wants 5 kettles: confirming it is refused, nothing changes:'
INSERT INTO orders.orders (id, order_number, customer_id) VALUES
  ('d0000000-0000-0000-0000-0000000000a8', 'DEMO-COD-4', 'd0000000-0000-0000-0000-000000000001');
INSERT INTO orders.order_items (order_id, name, quantity, unit_price, product_id) VALUES
  ('d0000000-0000-0000-0000-0000000000a8', 'Electric kettle', 5, 15, 'd0000000-0000-0000-0000-0000000000e1');
\set ON_ERROR_STOP off
SELECT orders.transition('d0000000-0000-0000-0000-0000000000a8', 'confirmed');
\set ON_ERROR_STOP on
SELECT (orders.transition('d0000000-0000-0000-0000-0000000000a7', s)).status AS walked
  FROM unnest(ARRAY['being_prepared', 'ready_for_pickup', 'out_for_delivery', 'delivered']) s;
INSERT INTO orders.deliveries (order_id, agent_id, pickup_time, delivery_time, rating, customer_feedback)
VALUES ('d0000000-0000-0000-0000-0000000000a7', 'd0000000-0000-0000-0000-0000000000f1',
        now() - interval '40 minutes', now(), 5, 'Fast and friendly');
UPDATE orders.orders SET payment_status = 'collected' WHERE order_number = 'DEMO-COD-3';
SELECT order_number, status, payment_status, customer_name, rep_name, agent_name, delivery_area
  FROM orders.order_details_view WHERE order_number = 'DEMO-COD-3';
SELECT agent_name, total_deliveries, average_rating, successful_orders FROM orders.agent_performance_view;
\echo '-- delivered + collected: the revenue is posted once, by the lifecycle; an expense of the day:'
SELECT type, amount, method, notes FROM orders.financial_transactions ORDER BY created_at;
INSERT INTO orders.expenses (category, amount, description) VALUES ('fuel', 8, 'Moussa''s motorbike');
SELECT date, total_revenue, total_refunds, total_expenses, net_profit, paid_orders
  FROM orders.daily_financial_summary ORDER BY date DESC;
SELECT full_name, total_orders, total_spent, returned_orders, return_rate || ' %' AS return_rate
  FROM orders.customers WHERE id = 'd0000000-0000-0000-0000-000000000001';

\echo
\echo '### Listening: status changes are announced on channel orders_status, shortly after commit'
\echo '### (by the database''s status announcer, many changes per transaction: doc/lifecycles.md)'
-- the demo's earlier changes announced first (a batch now, as the owner),
-- so the listener below hears only the one made after its LISTEN
SELECT orders.announce_status_changes() >= 0 AS earlier_changes_announced \gset
LISTEN orders_status;
INSERT INTO orders.orders (order_number, customer_id) VALUES ('DEMO-COD-2', 'd0000000-0000-0000-0000-000000000001');
SELECT status FROM orders.transition((SELECT id FROM orders.orders WHERE order_number = 'DEMO-COD-2'), 'cancelled', 'changed mind');
SELECT pg_sleep(0.5);
UNLISTEN orders_status;

\echo
\echo '### An agency order: two client groups, sites suggested, reviewed through a share link (doc/review.md)'
INSERT INTO orders.customers (id, full_name) VALUES
  ('d0000000-0000-0000-0000-0000000000b1', 'Blue Bakery'), ('d0000000-0000-0000-0000-0000000000b2', 'Green Garage');
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle, requires_client_review)
VALUES ('d0000000-0000-0000-0000-0000000000c1', 'DEMO-AGENCY', 'd0000000-0000-0000-0000-000000000001', 'review', true);
\echo '-- without a client group the analysis may not start (a gate, OR071):'
\set ON_ERROR_STOP off
SELECT orders.transition('d0000000-0000-0000-0000-0000000000c1', 'analyzing');
\set ON_ERROR_STOP on
INSERT INTO orders.order_groups (id, order_id, client_id, link_count) VALUES
  ('d0000000-0000-0000-0000-0000000000e1', 'd0000000-0000-0000-0000-0000000000c1', 'd0000000-0000-0000-0000-0000000000b1', 2),
  ('d0000000-0000-0000-0000-0000000000e2', 'd0000000-0000-0000-0000-0000000000c1', 'd0000000-0000-0000-0000-0000000000b2', 1);
SELECT status FROM orders.transition('d0000000-0000-0000-0000-0000000000c1', 'analyzing');
\echo '-- the analysis suggests sites for each group; the last one moves the order to reviewing:'
SELECT group_status, suggested_count FROM orders.complete_analysis('d0000000-0000-0000-0000-0000000000e1',
  '[{"domain": "https://www.FoodBlog.com/", "metrics": {"dr": 52, "price": 120}},
    {"domain": "citynews.net", "metrics": {"dr": 61, "price": 150}},
    {"domain": "recipes.io", "metrics": {"dr": 33, "price": 60}}]');
SELECT group_status, suggested_count FROM orders.complete_analysis('d0000000-0000-0000-0000-0000000000e2',
  '[{"domain": "autoworld.com", "metrics": {"dr": 48, "price": 90}},
    {"domain": "carfix.org", "metrics": {"dr": 40, "price": 70}}]');
SELECT order_number, status FROM orders.orders WHERE order_number = 'DEMO-AGENCY';
\echo '-- a share link for the bakery (view and approve, no login); only its hash is stored:'
SELECT orders.create_share_token('d0000000-0000-0000-0000-0000000000c1', interval '3 days', '{view,approve}') AS token \gset
SELECT g ->> 'client' AS client, g ->> 'link_count' AS links, jsonb_path_query_array(g, '$.sites[*].domain') AS sites
  FROM jsonb_array_elements(orders.shared_order(:'token') -> 'groups') g;
SELECT r ->> 'approved' AS approved, r ->> 'link_count' AS links, r ->> 'group_status' AS group_status
  FROM orders.share_review_sites(:'token', 'd0000000-0000-0000-0000-0000000000e1',
    '[{"domain": "foodblog.com", "status": "approved", "anchor_text": "fresh bread"},
      {"domain": "citynews.net", "status": "approved"}, {"domain": "recipes.io", "status": "rejected"}]') r;
\echo '-- one site too many is refused, nothing applied (OR070); payment waits for every group (OR071):'
\set ON_ERROR_STOP off
SELECT orders.review_sites('d0000000-0000-0000-0000-0000000000e1', '[{"domain": "recipes.io", "status": "approved"}]');
SELECT orders.transition('d0000000-0000-0000-0000-0000000000c1', 'payment_pending');
\set ON_ERROR_STOP on
SELECT approved_count, link_count FROM orders.review_sites('d0000000-0000-0000-0000-0000000000e2',
  '[{"domain": "autoworld.com", "status": "approved", "anchor_text": "car repair"}, {"domain": "carfix.org", "status": "rejected"}]');
SELECT status, reviewed_by, review_completed_at IS NOT NULL AS review_completed, subtotal, total_amount
  FROM orders.transition('d0000000-0000-0000-0000-0000000000c1', 'payment_pending', 'client approved 3 sites');
\echo '-- the approved sites are the order''s items:'
SELECT name, unit_price, snapshot ->> 'anchor_text' AS anchor FROM orders.order_items
 WHERE order_id = 'd0000000-0000-0000-0000-0000000000c1' ORDER BY name;
SELECT (orders.transition('d0000000-0000-0000-0000-0000000000c1', 'in_progress', 'paid')).status AS paid,
       (orders.transition('d0000000-0000-0000-0000-0000000000c1', 'completed')).status AS done;

\echo
\echo '### Behind PostgREST: one statement, then each request sees what its JWT may'
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'anon') THEN CREATE ROLE anon NOLOGIN; END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticated') THEN CREATE ROLE authenticated NOLOGIN; END IF;
END $$;
SELECT orders.grant_api('anon', 'authenticated') AS granted \gset
-- Amina logs in with account a…01, the agent Moussa with a…f1
UPDATE orders.customers SET account_id = 'a0000000-0000-0000-0000-000000000001' WHERE id = 'd0000000-0000-0000-0000-000000000001';
UPDATE orders.staff SET account_id = 'a0000000-0000-0000-0000-0000000000f1' WHERE id = 'd0000000-0000-0000-0000-0000000000f1';
INSERT INTO orders.customers (full_name, account_id) VALUES ('Another Client', 'a0000000-0000-0000-0000-000000000002');
INSERT INTO orders.orders (order_number, customer_id)
SELECT 'DEMO-OTHER', id FROM orders.customers WHERE full_name = 'Another Client';
\echo '-- a request as Amina (role authenticated, her JWT sub): her orders, no staff, no ledger'
BEGIN;
SELECT set_config('role', 'authenticated', true) AS role,
       set_config('request.jwt.claims', '{"sub":"a0000000-0000-0000-0000-000000000001"}', true) AS claims \gset
SELECT string_agg(order_number, ', ' ORDER BY order_number) AS her_orders,
       (SELECT count(*) FROM orders.staff) AS staff_rows,
       (SELECT count(*) FROM orders.financial_transactions) AS ledger_rows
  FROM orders.orders;
\echo '-- she may not waive her delivery fee (a staff-only column):'
\set ON_ERROR_STOP off
UPDATE orders.orders SET delivery_fee = 0 WHERE order_number = 'DEMO-COD-3';
\set ON_ERROR_STOP on
ROLLBACK;
\echo '-- a request as Moussa, the delivery agent: the orders assigned to him'
BEGIN;
SELECT set_config('role', 'authenticated', true) AS role,
       set_config('request.jwt.claims', '{"sub":"a0000000-0000-0000-0000-0000000000f1"}', true) AS claims \gset
SELECT order_number, status, orders.has_permission('orders', 'assign') AS may_assign FROM orders.orders;
ROLLBACK;

\echo '-- shop webhooks (doc/webhooks.md): one Shopify order delivered twice (Shopify retries on a slow answer)'
INSERT INTO orders.webhooks (name, source, endpoint, field_mapping)
VALUES ('Demo shop on Shopify', 'shopify', 'demo-shopify', orders.webhook_mapping('shopify'));
\set payload '{"id": 820982911946154508, "name": "#1001", "email": "lea@example.com", "currency": "USD", "total_price": "47.00", "total_shipping_price_set": {"shop_money": {"amount": "5.00"}}, "customer": {"first_name": "Léa", "last_name": "Martin", "phone": "+33612345678"}, "shipping_address": {"address1": "5 rue de la Paix", "city": "Paris", "zip": "75002"}, "line_items": [{"sku": "DEMO-KETTLE", "name": "Electric kettle", "quantity": 1, "price": "42.00"}]}'
SELECT orders.ingest_webhook('demo-shopify', :'payload', delivery_id => 'demo-delivery-1') ->> 'status' AS first_delivery;
SELECT orders.ingest_webhook('demo-shopify', :'payload', delivery_id => 'demo-delivery-1') ->> 'status' AS shopify_retry;
SELECT o.order_number, o.status, o.source, o.external_id, o.total_amount, c.full_name, c.city,
       (SELECT count(*) FROM orders.webhook_logs) AS logged_requests
  FROM orders.orders o JOIN orders.customers c ON c.id = o.customer_id
 WHERE o.webhook_source = 'demo-shopify';

\echo '-- who changed DEMO-COD (doc/activity.md): its status changes from order_history, its other columns from the activity log'
SELECT t.actor, t.change FROM (
    SELECT h.created_at AS at, h.id AS n, h.changed_by AS actor, 'status: ' || coalesce(h.old_status, '∅') || ' → ' || h.new_status AS change
      FROM orders.order_history h
     WHERE h.order_id = (SELECT id FROM orders.orders WHERE order_number = 'DEMO-COD')
    UNION ALL
    SELECT l.created_at, NULL::bigint, l.actor, string_agg(k || ': ' || coalesce(l.details -> 'changes' -> k ->> 'old', '∅') || ' → '
                                                 || coalesce(l.details -> 'changes' -> k ->> 'new', '∅'), ', ' ORDER BY k)
      FROM orders.activity_logs l CROSS JOIN LATERAL jsonb_object_keys(l.details -> 'changes') k
     WHERE l.entity_type = 'orders' AND l.action = 'updated'
       AND l.entity_id = (SELECT id::text FROM orders.orders WHERE order_number = 'DEMO-COD')
       AND k IN ('payment_status', 'assigned_agent_id')
     GROUP BY l.id, l.created_at, l.actor) t
 ORDER BY t.at, t.n NULLS LAST LIMIT 12;

\echo '-- the outbox (doc/outbox.md): a message written with the change, claimed by a worker, done'
SELECT orders.enqueue_outbox('sms', jsonb_build_object('to', '+33612345678', 'text', 'Your order DEMO-COD was delivered'),
                             'sms:DEMO-COD:delivered') IS NOT NULL AS enqueued;
SELECT kind, attempts, locked_by FROM orders.claim_outbox('demo-worker');
SELECT orders.complete_outbox((SELECT id FROM orders.outbox WHERE idempotency_key = 'sms:DEMO-COD:delivered'), NULL, 'demo-worker') AS outcome;

\echo
\echo '### Workflows (doc/workflows.md): "delivered, collected and worth >= 100: tag the customer VIP, notify the rep, text the customer"'
INSERT INTO orders.workflows (name, trigger_type, trigger_config, workflow_steps) VALUES (
  'VIP on delivery', 'order_status',
  '{"type": "order_status", "conditions": {"status": ["delivered"], "payment_status": ["collected"], "min_order_value": 100}}',
  '[{"id": "tag", "type": "update_customer_tag", "order": 1,
     "config": {"tag_id": "vip", "label": "VIP Customer", "color": "#FFD700", "condition": "total_orders >= 2"}},
    {"id": "rep", "type": "send_notification", "order": 2,
     "config": {"target": "assigned_rep", "title": "{{order_number}}: {{customer_name}} is a VIP now"}},
    {"id": "sms", "type": "send_notification", "order": 3,
     "config": {"target": "customer", "channel": "sms", "template": "order_delivered"}}]');
INSERT INTO orders.orders (id, order_number, customer_id, total_amount, payment_method, assigned_rep_id)
VALUES ('d0000000-0000-0000-0000-0000000000a9', 'DEMO-VIP', 'd0000000-0000-0000-0000-000000000001', 120, 'cod',
        'd0000000-0000-0000-0000-0000000000f2');
SELECT (orders.transition('d0000000-0000-0000-0000-0000000000a9', s)).status AS walked
  FROM unnest(ARRAY['confirmed', 'being_prepared', 'ready_for_pickup', 'out_for_delivery', 'delivered']) s;
\echo '-- delivered, not yet collected: no run so far'
SELECT count(*) AS runs FROM orders.workflow_executions;
\echo '-- the agent hands over the cash: the same UPDATE runs the workflow, in its transaction'
UPDATE orders.orders SET payment_status = 'collected' WHERE order_number = 'DEMO-VIP';
SELECT e.status, e.trigger_event ->> 'previous_payment_status' AS "collected after",
       (SELECT string_agg(s ->> 'step_id' || ' ' || (s ->> 'status'), ', ') FROM jsonb_array_elements(e.steps_completed) s) AS steps
  FROM orders.workflow_executions e;
SELECT full_name, tags FROM orders.customers WHERE id = 'd0000000-0000-0000-0000-000000000001';
\echo '-- Awa, the rep, has a notification (and NOTIFY orders_notifications was sent):'
SELECT s.full_name, n.title FROM orders.notifications n JOIN orders.staff s ON s.id = n.user_id;
\echo '-- the SMS waits in the outbox for a worker:'
SELECT kind, payload ->> 'to' AS "to", payload ->> 'template' AS template, payload -> 'data' ->> 'order_number' AS order_number
  FROM orders.outbox WHERE idempotency_key LIKE 'workflow:%';
\echo '-- and the activity trail: the payment change and, in the same transaction, the tag the workflow added:'
SELECT l.entity_type, l.action, l.actor, string_agg(k, ', ' ORDER BY k) AS columns
  FROM orders.activity_logs l CROSS JOIN LATERAL jsonb_object_keys(l.details -> 'changes') k
 WHERE l.entity_id IN ('d0000000-0000-0000-0000-0000000000a9', 'd0000000-0000-0000-0000-000000000001')
   AND l.created_at >= (SELECT min(started_at) FROM orders.workflow_executions) AND k IN ('payment_status', 'tags')
 GROUP BY l.id, l.entity_type, l.action, l.actor ORDER BY l.entity_type DESC;
