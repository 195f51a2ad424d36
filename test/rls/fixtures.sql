-- test/rls/fixtures.sql — the rows of the row level security matrix
-- (test/rls_matrix.sh, test/rls/matrix.tsv).  Run as a superuser in a fresh
-- database with CREATE EXTENSION orders and the roles anon, authenticated and
-- authenticator (LOGIN NOINHERIT, member of both).  Every id is fixed; the
-- comments say which cells of the grid each row is there for.
--
-- id scheme: 00000000-0000-0000-<kind>-<number>, kind:
--   acc0 JWT subs (accounts)   c057 customers   57af staff     0d0d orders
--   1710 order items           2073 notes       1ead leads     ca9a slots
--   9d00 products              9d01 variants    de11 deliveries
--   f1a0 ledger                e495 expenses
--   6a00 client groups         5e1e site selections  7e90 requirements
--   70c0 share tokens        3f00 workflows       3e00 workflow executions
--   4000 notifications
--
-- personas (JWT sub):
--   cust_a     00000000-0000-0000-acc0-00000000000a  owns customers CA and CA2
--   cust_b     00000000-0000-0000-acc0-00000000000b  owns customer CB
--   admin      00000000-0000-0000-acc0-000000000001  staff S1
--   manager    00000000-0000-0000-acc0-000000000002  staff S2 (override: customers.delete false)
--   rep        00000000-0000-0000-acc0-000000000003  staff S3 (override: orders.delete true)
--   agent      00000000-0000-0000-acc0-000000000004  staff S4
--   accountant 00000000-0000-0000-acc0-000000000005  staff S5
--   (inactive) 00000000-0000-0000-acc0-000000000006  staff S6, an inactive admin: not staff at all
\set ON_ERROR_STOP 1
SET client_min_messages = warning;

-- a DBA's whole set-up (the spec): grants, policies' roles, orders.api_roles
SELECT orders.grant_api('anon', 'authenticated');

-- A user lifecycle nobody uses: the lifecycle tables' write cells
-- (workflows.edit: admin only) insert next to it and delete it.
INSERT INTO orders.lifecycles (name, initial_status, description) VALUES
  ('rls_spare', 'a', 'unused: deleted by the matrix');
INSERT INTO orders.lifecycle_states (lifecycle, status, category, position) VALUES
  ('rls_spare', 'a', 'open', 10), ('rls_spare', 'b', 'fulfilled', 20);
INSERT INTO orders.lifecycle_transitions (lifecycle, from_status, to_status) VALUES
  ('rls_spare', 'a', 'b');

-- Staff: one active member per role, and one inactive admin (S6) whose sub
-- must count for nothing (the trust-boundary checks) and who is the staff
-- row the admin may delete (no order or delivery refers to it).
-- Overrides in the seed 004 shape: the rep may delete orders of its scope
-- (widens: orders.delete as rep), the manager may not delete customers
-- (narrows: customers.delete as manager).
INSERT INTO orders.staff (id, account_id, full_name, email, role, permissions, is_active) VALUES
  ('00000000-0000-0000-57af-000000000001', '00000000-0000-0000-acc0-000000000001', 'Ada Admin',     'admin@example.test',      'admin',          '{}', true),
  ('00000000-0000-0000-57af-000000000002', '00000000-0000-0000-acc0-000000000002', 'Max Manager',   'manager@example.test',    'manager',        '{"customers": {"delete": false}}', true),
  ('00000000-0000-0000-57af-000000000003', '00000000-0000-0000-acc0-000000000003', 'Rita Rep',      'rep@example.test',        'customer_rep',   '{"orders": {"delete": true}}', true),
  ('00000000-0000-0000-57af-000000000004', '00000000-0000-0000-acc0-000000000004', 'Andy Agent',    'agent@example.test',      'delivery_agent', '{}', true),
  ('00000000-0000-0000-57af-000000000005', '00000000-0000-0000-acc0-000000000005', 'Alma Accounts', 'accountant@example.test', 'accountant',     '{}', true),
  ('00000000-0000-0000-57af-000000000006', '00000000-0000-0000-acc0-000000000006', 'Ivan Inactive', 'inactive@example.test',   'admin',          '{}', false);

-- Customers.  Account A owns two customer rows (CA with the orders, CA2
-- without: the customer row an admin may delete and cust_a may not); CC
-- has no account (a walk-in customer entered by staff) and holds the two
-- orders outside the rep's scope.
INSERT INTO orders.customers (id, account_id, full_name, phone) VALUES
  ('00000000-0000-0000-c057-00000000000a', '00000000-0000-0000-acc0-00000000000a', 'Customer A',          '+1 555 0100'),
  ('00000000-0000-0000-c057-0000000000a2', '00000000-0000-0000-acc0-00000000000a', 'Customer A (office)', '+1 555 0101'),
  ('00000000-0000-0000-c057-00000000000b', '00000000-0000-0000-acc0-00000000000b', 'Customer B',          '+1 555 0200'),
  ('00000000-0000-0000-c057-00000000000c', NULL,                                   'Walk-in C',           '+1 555 0300');

-- Products: P1 is on an item (stock item of o1), P2 has the variants, P3
-- and V2 are on nothing (the rows products/variants delete cells remove).
INSERT INTO orders.products (id, name, sku, price, stock_quantity) VALUES
  ('00000000-0000-0000-9d00-000000000001', 'Kettle',       'KET-1',   20, 10),
  ('00000000-0000-0000-9d00-000000000002', 'T-shirt',      'TSH-1',   15, 0),
  ('00000000-0000-0000-9d00-000000000003', 'Spare widget', 'SPARE-1', 1,  0);
INSERT INTO orders.product_variants (id, product_id, sku, name, stock_quantity) VALUES
  ('00000000-0000-0000-9d01-000000000001', '00000000-0000-0000-9d00-000000000002', 'TSH-1-M',   'M', 5),
  ('00000000-0000-0000-9d01-000000000002', '00000000-0000-0000-9d00-000000000002', 'SPARE-V',   'XXL', 0);

-- Orders (all cod), one item each, so items follow the orders' visibility:
--   o1 CA, assigned to the rep, new                 rep scope: assigned to self
--   o2 CA, assigned to the agent, delivered         agent scope; not open: cust_a may not
--                                                   write its items; 5 history rows
--   o3 CB, unassigned, confirmation_pending         rep scope: unassigned and open; 1 history row
--   o4 CC, assigned to the manager (as rep), new    not the rep's: assigned to another
--   o5 CC, unassigned, cancelled                    not the rep's: unassigned but not open; 1 history row
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle, assigned_rep_id, assigned_agent_id, customer_notes) VALUES
  ('00000000-0000-0000-0d0d-000000000001', 'RLS-1', '00000000-0000-0000-c057-00000000000a', 'cod',
   '00000000-0000-0000-57af-000000000003', NULL, 'ring twice'),
  ('00000000-0000-0000-0d0d-000000000002', 'RLS-2', '00000000-0000-0000-c057-00000000000a', 'cod',
   NULL, '00000000-0000-0000-57af-000000000004', NULL),
  ('00000000-0000-0000-0d0d-000000000003', 'RLS-3', '00000000-0000-0000-c057-00000000000b', 'cod', NULL, NULL, NULL),
  ('00000000-0000-0000-0d0d-000000000004', 'RLS-4', '00000000-0000-0000-c057-00000000000c', 'cod',
   '00000000-0000-0000-57af-000000000002', NULL, NULL),
  ('00000000-0000-0000-0d0d-000000000005', 'RLS-5', '00000000-0000-0000-c057-00000000000c', 'cod', NULL, NULL, NULL);
INSERT INTO orders.order_items (id, order_id, name, quantity, unit_price, product_id) VALUES
  ('00000000-0000-0000-1710-000000000001', '00000000-0000-0000-0d0d-000000000001', 'Kettle',  1, 20, '00000000-0000-0000-9d00-000000000001'),
  ('00000000-0000-0000-1710-000000000002', '00000000-0000-0000-0d0d-000000000002', 'Teapot',  1, 12, NULL),
  ('00000000-0000-0000-1710-000000000003', '00000000-0000-0000-0d0d-000000000003', 'Mug',     2, 4,  NULL),
  ('00000000-0000-0000-1710-000000000004', '00000000-0000-0000-0d0d-000000000004', 'Spoon',   3, 1,  NULL),
  ('00000000-0000-0000-1710-000000000005', '00000000-0000-0000-0d0d-000000000005', 'Saucer',  1, 3,  NULL);
-- history: 5 rows for o2, 1 for o3, 1 for o5 (7 in all)
UPDATE orders.orders SET status = 'confirmed'        WHERE id = '00000000-0000-0000-0d0d-000000000002';
UPDATE orders.orders SET status = 'being_prepared'   WHERE id = '00000000-0000-0000-0d0d-000000000002';
UPDATE orders.orders SET status = 'ready_for_pickup' WHERE id = '00000000-0000-0000-0d0d-000000000002';
UPDATE orders.orders SET status = 'out_for_delivery' WHERE id = '00000000-0000-0000-0d0d-000000000002';
UPDATE orders.orders SET status = 'delivered'        WHERE id = '00000000-0000-0000-0d0d-000000000002';
UPDATE orders.orders SET status = 'confirmation_pending' WHERE id = '00000000-0000-0000-0d0d-000000000003';
UPDATE orders.orders SET status = 'cancelled'        WHERE id = '00000000-0000-0000-0d0d-000000000005';

-- The agent's delivery of o2 (deliveries: agent own, others by order).
INSERT INTO orders.deliveries (id, order_id, agent_id, pickup_time) VALUES
  ('00000000-0000-0000-de11-000000000001', '00000000-0000-0000-0d0d-000000000002',
   '00000000-0000-0000-57af-000000000004', now() - interval '1 hour');

-- Staff notes, each written by its author (author = the JWT sub's staff id:
-- a superuser's claims are honoured): the rep's on o1, the agent's on o2,
-- the admin's on o3.  Own-note cells: rep 1, agent 1, manager 0.
BEGIN;
SELECT set_config('request.jwt.claims', '{"sub":"00000000-0000-0000-acc0-000000000003"}', true);
INSERT INTO orders.order_notes (order_id, body) VALUES ('00000000-0000-0000-0d0d-000000000001', 'customer wants a call first');
SELECT set_config('request.jwt.claims', '{"sub":"00000000-0000-0000-acc0-000000000004"}', true);
INSERT INTO orders.order_notes (order_id, body) VALUES ('00000000-0000-0000-0d0d-000000000002', 'left with the neighbour');
SELECT set_config('request.jwt.claims', '{"sub":"00000000-0000-0000-acc0-000000000001"}', true);
INSERT INTO orders.order_notes (order_id, body) VALUES ('00000000-0000-0000-0d0d-000000000003', 'check the address');
COMMIT;

-- Leads for customer A only (cust_b sees none; agents none).
INSERT INTO orders.leads (id, customer_id, status, company_name) VALUES
  ('00000000-0000-0000-1ead-000000000001', '00000000-0000-0000-c057-00000000000a', 'new', 'Acme'),
  ('00000000-0000-0000-1ead-000000000002', '00000000-0000-0000-c057-00000000000a', 'contacted', 'Globex');

-- Slots of one service: K1 with a hold of account A (made through the API
-- function, holder = A's sub), K2 spare (the slot the admin deletes).
INSERT INTO orders.service_capacity (id, service_id, starts_at, ends_at, max_capacity) VALUES
  ('00000000-0000-0000-ca9a-000000000001', '00000000-0000-0000-ca9a-0000000000ff',
   date_trunc('hour', now()) + interval '2 days', date_trunc('hour', now()) + interval '2 days 1 hour', 2),
  ('00000000-0000-0000-ca9a-000000000002', '00000000-0000-0000-ca9a-0000000000ff',
   date_trunc('hour', now()) + interval '3 days', date_trunc('hour', now()) + interval '3 days 1 hour', 1);
BEGIN;
SELECT set_config('request.jwt.claims', '{"sub":"00000000-0000-0000-acc0-00000000000a"}', true);
SELECT orders.reserve_time_slot('00000000-0000-0000-ca9a-000000000001', 1440);  -- held one day
COMMIT;

-- Ledger and expenses: manual rows (automatic ones are the extension's,
-- OR052) recorded by the accountant.
INSERT INTO orders.financial_transactions (id, order_id, type, amount, method, recorded_by_user_id, notes) VALUES
  ('00000000-0000-0000-f1a0-000000000001', '00000000-0000-0000-0d0d-000000000002', 'revenue', 12, 'cash',
   '00000000-0000-0000-57af-000000000005', 'paid at the counter'),
  ('00000000-0000-0000-f1a0-000000000002', NULL, 'refund', 5, 'cash',
   '00000000-0000-0000-57af-000000000005', 'goodwill');
INSERT INTO orders.expenses (id, category, amount, description, recorded_by_user_id) VALUES
  ('00000000-0000-0000-e495-000000000001', 'fuel', 30, 'delivery van', '00000000-0000-0000-57af-000000000005');

-- Agency orders (0.8.0, doc/review.md): the five new tables' cells.
--   o6 CA, lifecycle review, requires_client_review, unassigned, reviewing
--      (an open status: cust_a may write its groups and requirements and
--      review its sites; rep scope: unassigned and open; agent: not in scope)
--      G1 client CC, link_count 2: alpha.com approved (an item of o6, its
--         metrics with a cost), beta.com suggested, gamma.org rejected
--      G2 client CB, link_count 1: delta.io suggested, epsilon.net alternate
--         (customer B is a client of the group, not the order's customer:
--         the spec gives B no row of it)
--      R1 min_dr; 2 history rows (configuring -> analyzing -> reviewing)
--      T1 share token of the admin (view, approve), its text in
--         rls_fixture.vars (superuser only); T2 of cust_a (view), revoked
--   o2 (CA, delivered: closed) G3 client CC, link_count 1: zeta.com
--      suggested; R2: the "while the order is open" cells
-- Every site has internal notes with the marker INTERNAL-SECRET.
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle, requires_client_review) VALUES
  ('00000000-0000-0000-0d0d-000000000006', 'RLS-6', '00000000-0000-0000-c057-00000000000a', 'review', true);
INSERT INTO orders.order_groups (id, order_id, client_id, link_count, anchor_texts) VALUES
  ('00000000-0000-0000-6a00-000000000001', '00000000-0000-0000-0d0d-000000000006',
   '00000000-0000-0000-c057-00000000000c', 2, '["best kettles"]'),
  ('00000000-0000-0000-6a00-000000000002', '00000000-0000-0000-0d0d-000000000006',
   '00000000-0000-0000-c057-00000000000b', 1, '[]'),
  ('00000000-0000-0000-6a00-000000000003', '00000000-0000-0000-0d0d-000000000002',
   '00000000-0000-0000-c057-00000000000c', 1, '[]');
INSERT INTO orders.order_requirements (id, order_id, requirement_type, requirement_value, is_mandatory) VALUES
  ('00000000-0000-0000-7e90-000000000001', '00000000-0000-0000-0d0d-000000000006', 'min_dr', '30', true),
  ('00000000-0000-0000-7e90-000000000002', '00000000-0000-0000-0d0d-000000000002', 'niche', '"tea"', false);
UPDATE orders.orders SET status = 'analyzing' WHERE id = '00000000-0000-0000-0d0d-000000000006';
INSERT INTO orders.order_site_selections (id, order_group_id, domain, metrics, internal_notes) VALUES
  ('00000000-0000-0000-5e1e-000000000001', '00000000-0000-0000-6a00-000000000001', 'alpha.com',
   '{"dr": 50, "price": 100, "cost": 60}', 'INTERNAL-SECRET alpha'),
  ('00000000-0000-0000-5e1e-000000000002', '00000000-0000-0000-6a00-000000000001', 'beta.com',
   '{"dr": 40, "price": 80, "cost": 50}', 'INTERNAL-SECRET beta'),
  ('00000000-0000-0000-5e1e-000000000003', '00000000-0000-0000-6a00-000000000001', 'gamma.org',
   '{"dr": 20}', 'INTERNAL-SECRET gamma'),
  ('00000000-0000-0000-5e1e-000000000004', '00000000-0000-0000-6a00-000000000002', 'delta.io',
   '{"dr": 60}', 'INTERNAL-SECRET delta'),
  ('00000000-0000-0000-5e1e-000000000005', '00000000-0000-0000-6a00-000000000002', 'epsilon.net',
   '{"dr": 35}', 'INTERNAL-SECRET epsilon'),
  ('00000000-0000-0000-5e1e-000000000006', '00000000-0000-0000-6a00-000000000003', 'zeta.com',
   '{"dr": 10}', 'INTERNAL-SECRET zeta');
-- the analysis of both groups completes: o6 moves to reviewing
SELECT count(*) FROM orders.complete_analysis('00000000-0000-0000-6a00-000000000001', '[]');
SELECT count(*) FROM orders.complete_analysis('00000000-0000-0000-6a00-000000000002', '[]');
-- customer A reviews (claims of A: reviewed_by is A's sub)
BEGIN;
SELECT set_config('request.jwt.claims', '{"sub":"00000000-0000-0000-acc0-00000000000a"}', true);
SELECT count(*) FROM orders.review_sites('00000000-0000-0000-6a00-000000000001',
  '[{"domain": "alpha.com", "status": "approved"}, {"domain": "gamma.org", "status": "rejected"}]');
SELECT count(*) FROM orders.review_sites('00000000-0000-0000-6a00-000000000002',
  '[{"domain": "epsilon.net", "status": "alternate"}]');
COMMIT;

-- Share tokens.  T1: the admin's, through create_share_token (its text is
-- kept where only a superuser reads it; test/rls_matrix.sh reads it into
-- the psql variable :share_token).  T2: cust_a's, revoked.
CREATE SCHEMA rls_fixture;
REVOKE ALL ON SCHEMA rls_fixture FROM PUBLIC;
CREATE TABLE rls_fixture.vars (share_token text NOT NULL);
REVOKE ALL ON rls_fixture.vars FROM PUBLIC;
BEGIN;
SELECT set_config('request.jwt.claims', '{"sub":"00000000-0000-0000-acc0-000000000001"}', true);
INSERT INTO rls_fixture.vars (share_token)
SELECT orders.create_share_token('00000000-0000-0000-0d0d-000000000006', '7 days', '{view,approve}');
UPDATE orders.order_share_tokens SET id = '00000000-0000-0000-70c0-000000000001';
SELECT set_config('request.jwt.claims', '{"sub":"00000000-0000-0000-acc0-00000000000a"}', true);
SELECT orders.create_share_token('00000000-0000-0000-0d0d-000000000006') IS NOT NULL;
UPDATE orders.order_share_tokens SET id = '00000000-0000-0000-70c0-000000000002'
 WHERE id <> '00000000-0000-0000-70c0-000000000001';
SELECT orders.revoke_share_token('00000000-0000-0000-70c0-000000000002');
COMMIT;

-- Workflows (0.10.0): W1 a manual workflow (the run_workflow cell runs it;
-- one task for the admin), W2 inactive and spare (the row the admin
-- deletes).  Workflows view: admin, manager, rep see 2; create/edit/delete:
-- the admin.  One execution: W1 run once by the admin (claims of S1), which
-- also gives the admin its one notification (the task).
INSERT INTO orders.workflows (id, name, trigger_type, trigger_config, workflow_steps, is_active, created_by_user_id) VALUES
  ('00000000-0000-0000-3f00-000000000001', 'rls_manual', 'manual', '{}',
   '[{"id": "task", "type": "create_task", "config": {"assigned_to": "admin", "title": "check RLS"}}]', true,
   '00000000-0000-0000-57af-000000000001'),
  ('00000000-0000-0000-3f00-000000000002', 'rls_spare', 'manual', '{}',
   '[{"type": "create_task", "config": {"assigned_to": "admin", "title": "t"}}]', false,
   '00000000-0000-0000-57af-000000000001');
BEGIN;
SELECT set_config('request.jwt.claims', '{"sub":"00000000-0000-0000-acc0-000000000001"}', true);
SELECT status FROM orders.run_workflow('00000000-0000-0000-3f00-000000000001');
UPDATE orders.workflow_executions SET id = '00000000-0000-0000-3e00-000000000001';
UPDATE orders.notifications SET id = '00000000-0000-0000-4000-000000000001';
COMMIT;

-- Notifications (0.9.0), each staff member's own: the admin 1 (the task
-- above), the rep 2 (one read), the agent 1; the manager and the accountant
-- none (they see and change nothing of the others').
INSERT INTO orders.notifications (id, user_id, type, title, is_read) VALUES
  ('00000000-0000-0000-4000-000000000002', '00000000-0000-0000-57af-000000000003', 'order', 'new order RLS-3', false),
  ('00000000-0000-0000-4000-000000000003', '00000000-0000-0000-57af-000000000003', 'system', 'welcome', true),
  ('00000000-0000-0000-4000-000000000004', '00000000-0000-0000-57af-000000000004', 'delivery', 'pick up RLS-2', false);
