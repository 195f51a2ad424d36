-- Benchmark fixtures for test/bench/review.sh: (a) one agency order
-- (lifecycle review, in "reviewing") with one client group of 1,000
-- suggested sites and link_count 1,000 (never full), and eight more such
-- groups of the same order; (b) the same shapes
-- in schema bench without the extension's triggers: groups, selections,
-- items and orders copied with LIKE ... INCLUDING DEFAULTS INDEXES
-- CONSTRAINTS, the same foreign keys between them.
-- Site ids: f1000000-0000-0000-0000-<n> (ours), f2000000-... (floor).
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS bench CASCADE;
CREATE SCHEMA bench;
INSERT INTO orders.customers (id, full_name) VALUES
  ('f0000000-0000-0000-0000-000000000001', 'Review bench agency'),
  ('f0000000-0000-0000-0000-000000000002', 'Review bench client');
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle, requires_client_review)
VALUES ('f0000000-0000-0000-0000-0000000000a1', 'RB-1', 'f0000000-0000-0000-0000-000000000001', 'review', true);
INSERT INTO orders.order_groups (id, order_id, client_id, link_count)
VALUES ('f0000000-0000-0000-0000-0000000000b1', 'f0000000-0000-0000-0000-0000000000a1',
        'f0000000-0000-0000-0000-000000000002', 1000);
SELECT count(*) FROM orders.transition('f0000000-0000-0000-0000-0000000000a1', 'analyzing');
INSERT INTO orders.order_site_selections (id, order_group_id, domain, domain_id, metrics)
SELECT ('f1000000-0000-0000-0000-' || lpad(n::text, 12, '0'))::uuid, 'f0000000-0000-0000-0000-0000000000b1',
       'site' || n || '.example.com', gen_random_uuid(),
       jsonb_build_object('dr', n % 90, 'traffic', 100 * n, 'price', 20 + n % 7)
  FROM generate_series(1, 1000) n;
SELECT count(*) FROM orders.transition('f0000000-0000-0000-0000-0000000000a1', 'reviewing');
-- eight more groups of the same order (one per client of a multi-client
-- agency order), 1,000 sites each: f0000000-...-0000000000b<k>, sites
-- f1000000-0000-0000-000<k>-<n>, k = 2..9 (the groups case of review.sh)
INSERT INTO orders.order_groups (id, order_id, client_id, link_count)
SELECT ('f0000000-0000-0000-0000-0000000000b' || k)::uuid, 'f0000000-0000-0000-0000-0000000000a1',
       'f0000000-0000-0000-0000-000000000002', 1000
  FROM generate_series(2, 9) k;
INSERT INTO orders.order_site_selections (id, order_group_id, domain, domain_id, metrics)
SELECT ('f1000000-0000-0000-000' || k || '-' || lpad(n::text, 12, '0'))::uuid, ('f0000000-0000-0000-0000-0000000000b' || k)::uuid,
       'site' || n || '.g' || k || '.example.com', gen_random_uuid(),
       jsonb_build_object('dr', n % 90, 'traffic', 100 * n, 'price', 20 + n % 7)
  FROM generate_series(2, 9) k, generate_series(1, 1000) n;

-- (b) the floor: same-shaped tables, no triggers
CREATE TABLE bench.orders_floor (LIKE orders.orders INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING CONSTRAINTS INCLUDING GENERATED);
CREATE TABLE bench.groups_floor (LIKE orders.order_groups INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING CONSTRAINTS);
CREATE TABLE bench.items_floor (LIKE orders.order_items INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING CONSTRAINTS INCLUDING GENERATED);
CREATE TABLE bench.sites_floor (LIKE orders.order_site_selections INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING CONSTRAINTS);
-- the orders' columns but the generated leads_remaining, which the floor's
-- copy computes itself (INCLUDING GENERATED: the same table, the same work)
SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) AS ocols FROM pg_attribute
 WHERE attrelid = 'orders.orders'::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = '' \gset
INSERT INTO bench.orders_floor (:ocols) SELECT :ocols FROM orders.orders WHERE order_number = 'RB-1';
INSERT INTO bench.groups_floor SELECT * FROM orders.order_groups;
INSERT INTO bench.sites_floor
SELECT ('f2' || substring(id::text, 3))::uuid, order_group_id, domain, domain_id, metrics, status, target_page_url,
       anchor_text, reviewed_at, reviewed_by, client_notes, internal_notes, order_item_id, created_at, updated_at
  FROM orders.order_site_selections;
ALTER TABLE bench.groups_floor ADD FOREIGN KEY (order_id) REFERENCES bench.orders_floor (id) ON DELETE CASCADE,
                               ADD FOREIGN KEY (client_id) REFERENCES orders.customers (id);
ALTER TABLE bench.items_floor ADD FOREIGN KEY (order_id) REFERENCES bench.orders_floor (id) ON DELETE CASCADE;
ALTER TABLE bench.sites_floor ADD FOREIGN KEY (order_group_id) REFERENCES bench.groups_floor (id) ON DELETE CASCADE,
                              ADD FOREIGN KEY (order_item_id) REFERENCES bench.items_floor (id) ON DELETE SET NULL;
-- history: 5,000 other orders with 4 items each on both sides, so that the
-- plans kept by the functions and triggers are made for tables with rows
-- and statistics (made on an empty order_items they scan it sequentially,
-- dead rows and all, for the whole run)
INSERT INTO orders.orders (id, order_number, customer_id)
SELECT ('f3000000-0000-0000-0000-' || lpad(n::text, 12, '0'))::uuid, 'RH-' || n, 'f0000000-0000-0000-0000-000000000001'
  FROM generate_series(1, 5000) n;
INSERT INTO orders.order_items (order_id, name, quantity, unit_price)
SELECT ('f3000000-0000-0000-0000-' || lpad(n::text, 12, '0'))::uuid, 'Past item ' || k, 1, 10
  FROM generate_series(1, 5000) n, generate_series(1, 4) k;
INSERT INTO bench.orders_floor (:ocols) SELECT :ocols FROM orders.orders WHERE order_number LIKE 'RH-%';
SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) AS icols FROM pg_attribute
 WHERE attrelid = 'orders.order_items'::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = '' \gset
INSERT INTO bench.items_floor (:icols) SELECT :icols FROM orders.order_items WHERE order_id IN (SELECT id FROM bench.orders_floor);
VACUUM ANALYZE;
