-- Benchmark fixtures for test/bench/catalog.sh: a storefront's catalog of
-- 100,000 products (a tenth inactive) in 50 categories, a tenth of them
-- with three variants.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
INSERT INTO orders.products (name, sku, price, category, is_active)
SELECT 'Product ' || n, 'CB-' || n, n % 100, 'cat' || (n % 50), n % 10 <> 0
  FROM generate_series(1, 100000) n;
INSERT INTO orders.product_variants (product_id, sku, name)
SELECT p.id, p.sku || '-' || v, 'V' || v
  FROM orders.products p, generate_series(1, 3) v WHERE p.sku LIKE 'CB-%7';
VACUUM ANALYZE orders.products, orders.product_variants;
