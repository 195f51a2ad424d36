-- Benchmark fixtures for test/bench/bulk.sh: 20,000 customers and 100
-- products; the load itself (200,000 orders, 400,000 items) is staged in
-- bench.stage_orders / bench.stage_items, and the floor's tables are the
-- extension's (columns, defaults, indexes, checks, the items' foreign keys to
-- their order, customer and product) without any trigger.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS bench CASCADE;
CREATE SCHEMA bench;

INSERT INTO orders.customers (id, full_name, phone)
SELECT ('c0000000-0000-0000-0000-' || lpad(n::text, 12, '0'))::uuid, 'Bulk ' || n, '+1' || (5550000000 + n)
  FROM generate_series(1, 20000) n;
INSERT INTO orders.products (id, name, sku, price, stock_quantity)
SELECT ('d0000000-0000-0000-0000-' || lpad(n::text, 12, '0'))::uuid, 'Product ' || n, 'BULK-' || n, 5 + n % 20, 1000000
  FROM generate_series(1, 100) n;

-- the seed's csv source: one row per order, two items each
CREATE TABLE bench.stage_orders AS
SELECT ('e0000000-0000-0000-0000-' || lpad(n::text, 12, '0'))::uuid AS id, 'BULK-' || n AS order_number,
       ('c0000000-0000-0000-0000-' || lpad((1 + n % 20000)::text, 12, '0'))::uuid AS customer_id,
       'area-' || (n % 50) AS delivery_area, 'csv' AS source
  FROM generate_series(1, 200000) n;
CREATE TABLE bench.stage_items AS
SELECT o.id AS order_id, 'BULK-' || (1 + (k + n) % 100) AS sku, 'Product ' || (1 + (k + n) % 100) AS name,
       1 + k AS quantity, (5 + (1 + (k + n) % 100) % 20)::numeric(12,2) AS unit_price,
       ('d0000000-0000-0000-0000-' || lpad((1 + (k + n) % 100)::text, 12, '0'))::uuid AS product_id
  FROM bench.stage_orders o, LATERAL (SELECT substr(o.order_number, 6)::int AS n) x, generate_series(0, 1) k;

CREATE TABLE bench.orders_floor (LIKE orders.orders INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING CONSTRAINTS INCLUDING GENERATED);
ALTER TABLE bench.orders_floor ALTER status SET DEFAULT 'new';   -- ours: the lifecycle's initial status
ALTER TABLE bench.orders_floor ADD FOREIGN KEY (customer_id) REFERENCES orders.customers (id);
CREATE TABLE bench.items_floor (LIKE orders.order_items INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING CONSTRAINTS
                                INCLUDING GENERATED);
ALTER TABLE bench.items_floor ADD FOREIGN KEY (order_id) REFERENCES bench.orders_floor (id) ON DELETE CASCADE,
                              ADD FOREIGN KEY (product_id) REFERENCES orders.products (id);
-- the importer: an application's role (not the owner: an owner's COPY is
-- a restore, rows taken as dumped), BYPASSRLS as a batch job would be
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bulk_importer') THEN
        CREATE ROLE bulk_importer LOGIN BYPASSRLS;
    END IF;
END $$;
GRANT USAGE ON SCHEMA orders, bench TO bulk_importer;
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA orders, bench TO bulk_importer;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA orders TO bulk_importer;
ANALYZE;
