-- Benchmark fixtures for test/bench/stock.sh: two copies of a two-state
-- lifecycle (a <-> b) that differ only in whether b holds stock, and 8,000
-- orders in each, every one with two stock items (of 2 hot products, or of
-- 1,000 products).  Order ids: k<case digit>…<n>.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
INSERT INTO orders.lifecycles (name, initial_status) VALUES ('stock_bench', 'a'), ('free_bench', 'a');
INSERT INTO orders.lifecycle_states (lifecycle, status, category, position, holds_stock)
VALUES ('stock_bench', 'a', 'open', 1, false), ('stock_bench', 'b', 'open', 2, true),
       ('free_bench', 'a', 'open', 1, false), ('free_bench', 'b', 'open', 2, false);
INSERT INTO orders.lifecycle_transitions (lifecycle, from_status, to_status)
VALUES ('stock_bench', 'a', 'b'), ('stock_bench', 'b', 'a'), ('free_bench', 'a', 'b'), ('free_bench', 'b', 'a');
INSERT INTO orders.customers (id, full_name) VALUES ('b0000000-0000-0000-0000-000000000002', 'Stock bench');
INSERT INTO orders.products (id, name, sku, stock_quantity)
SELECT ('c0000000-0000-0000-0000-' || lpad(n::text, 12, '0'))::uuid, 'P' || n, 'SB-' || n, 1000000000
  FROM generate_series(1, 1000) n;
-- k=1: stock, hot products; k=2: stock, spread; k=3: no stock (free_bench), spread
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle)
SELECT ('d' || k || '000000-0000-0000-0000-' || lpad(n::text, 12, '0'))::uuid, 'SB-' || k || '-' || n,
       'b0000000-0000-0000-0000-000000000002', CASE WHEN k = 3 THEN 'free_bench' ELSE 'stock_bench' END
  FROM generate_series(1, 3) k, generate_series(1, 8000) n;
INSERT INTO orders.order_items (order_id, name, quantity, product_id)
SELECT o.id, 'item', 1, ('c0000000-0000-0000-0000-' || lpad(p::text, 12, '0'))::uuid
  FROM orders.orders o, LATERAL (SELECT CASE WHEN o.order_number LIKE 'SB-1-%' THEN j
                                             ELSE 1 + (hashtext(o.order_number || j) & 1023) % 1000 END AS p
                                   FROM generate_series(1, 2) j) x
 WHERE o.lifecycle IN ('stock_bench', 'free_bench');
VACUUM ANALYZE;
