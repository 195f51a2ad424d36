
---------------------------------------------------------------------------
-- Stock taken and given back by the order lifecycle, exactly once per order
-- (C, doc/stock_and_money.md): an order's stock items are out of stock
-- exactly while its status has holds_stock.
---------------------------------------------------------------------------

CREATE FUNCTION orders.stock_on_status() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_stock_on_status_held';
CREATE FUNCTION orders.stock_on_items() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_stock_on_items_held';
CREATE FUNCTION orders.stock_delete_guard() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_stock_delete_guard';

CREATE TRIGGER stock_on_status AFTER UPDATE ON orders.orders
    REFERENCING OLD TABLE AS old_orders NEW TABLE AS new_orders
    FOR EACH STATEMENT EXECUTE FUNCTION orders.stock_on_status();
CREATE TRIGGER stock_delete_guard BEFORE DELETE ON orders.orders
    FOR EACH ROW EXECUTE FUNCTION orders.stock_delete_guard();
CREATE TRIGGER stock_on_items_insert AFTER INSERT ON orders.order_items
    REFERENCING NEW TABLE AS new_items
    FOR EACH STATEMENT EXECUTE FUNCTION orders.stock_on_items();
CREATE TRIGGER stock_on_items_update AFTER UPDATE ON orders.order_items
    REFERENCING OLD TABLE AS old_items NEW TABLE AS new_items
    FOR EACH STATEMENT EXECUTE FUNCTION orders.stock_on_items();
CREATE TRIGGER stock_on_items_delete AFTER DELETE ON orders.order_items
    REFERENCING OLD TABLE AS old_items
    FOR EACH STATEMENT EXECUTE FUNCTION orders.stock_on_items();

-- (0.30.0) orders.orders.stock_held rewritten from the orders' items and
-- status without moving stock: after a restore that skipped the triggers
CREATE FUNCTION orders.recount_stock_held() RETURNS bigint
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'orders_recount_stock_held';
COMMENT ON FUNCTION orders.recount_stock_held() IS
    'Records in every order''s stock_held what it holds (its stock items while its status holds stock) without moving stock — after pg_restore --disable-triggers of a dump from before 0.30.0; returns the orders rewritten (owner only)';
REVOKE ALL ON FUNCTION orders.recount_stock_held() FROM PUBLIC;

-- Stock-keeping units at or below their low-stock threshold: products
-- without variants, and variants (a product with variants keeps its stock
-- in them).
CREATE VIEW orders.low_stock_view WITH (security_invoker = true) AS
SELECT p.id AS product_id, NULL::uuid AS variant_id, p.name, p.sku, p.category,
       p.stock_quantity, p.low_stock_threshold
  FROM orders.products p
 WHERE p.is_low
   AND NOT EXISTS (SELECT 1 FROM orders.product_variants v WHERE v.product_id = p.id)
UNION ALL
SELECT p.id, v.id, p.name || ' / ' || v.name, v.sku, p.category,
       v.stock_quantity, v.low_stock_threshold
  FROM orders.product_variants v
  JOIN orders.products p ON p.id = v.product_id
 WHERE v.is_low AND p.is_active;
COMMENT ON VIEW orders.low_stock_view IS
    'Products and variants at or below their low-stock threshold (seed 004 "low stock products")';

REVOKE ALL ON orders.low_stock_view FROM PUBLIC;
REVOKE ALL ON FUNCTION orders.stock_on_status(), orders.stock_on_items(), orders.stock_delete_guard() FROM PUBLIC;
