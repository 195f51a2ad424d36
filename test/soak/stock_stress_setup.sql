-- Stress-mode fixtures (ORDERS_SOAK_STRESS=1), after stock_setup.sql: most soak
-- orders confirmed (holding stock), so that item changes move stock; products
-- 1-2 kept low so that OR050 refusals roll back partly applied moves.
UPDATE orders.products SET stock_quantity = 100000 WHERE sku LIKE 'SK-%';
UPDATE orders.product_variants SET stock_quantity = 100000;
DO $$ DECLARE o record; BEGIN
  FOR o IN SELECT id FROM orders.orders WHERE order_number LIKE 'SS-%' AND random() < 0.8 LOOP
    PERFORM orders.transition(o.id, 'confirmed');
  END LOOP; END $$;
UPDATE orders.products SET stock_quantity = 60 WHERE sku IN ('SK-1', 'SK-2');
UPDATE orders.products SET stock_quantity = 300 WHERE sku IN ('SK-3', 'SK-4');
TRUNCATE soak.initial; -- recount base: current stock plus what the holding orders hold
INSERT INTO soak.initial
WITH held AS (
    SELECT coalesce(i.variant_id, i.product_id) AS id, sum(i.quantity) AS units
      FROM orders.order_items i JOIN orders.orders o ON o.id = i.order_id
      JOIN orders.lifecycle_states s ON s.lifecycle = o.lifecycle AND s.status = o.status
     WHERE s.holds_stock AND i.product_id IS NOT NULL GROUP BY 1),
stock AS (SELECT id, stock_quantity FROM orders.products UNION ALL SELECT id, stock_quantity FROM orders.product_variants)
SELECT k.id, k.stock_quantity + coalesce(h.units, 0) FROM stock k LEFT JOIN held h USING (id);
