-- orders 0.39.0 -> 0.40.0
--  * Length bounds on the indexed text columns writers fill: customers'
--    email (320), phone (64) and area (255), staff's email (320),
--    products' and variants' SKU (255) and products' category (200),
--    items' SKU (255), orders' delivery_area (255), external_id (255) and
--    webhook_source (100), expenses' category (200): a 40 kB value was the
--    index's 54000 "index row size … exceeds maximum" (HTTP 500 under
--    PostgREST), now the column's CHECK, 23514 (HTTP 400).  Rows already
--    longer stay (the constraint is then left NOT VALID, with a WARNING
--    naming it); new writes are checked either way.

\echo Use "ALTER EXTENSION orders UPDATE TO '0.40.0'" to load this file. \quit

ALTER TABLE orders.expenses DROP CONSTRAINT expenses_category_check;

DO $upgrade$
DECLARE
    bound record;
BEGIN
    FOR bound IN
        SELECT * FROM (VALUES
            ('customers', 'email', 320), ('customers', 'phone', 64), ('customers', 'area', 255),
            ('staff', 'email', 320),
            ('products', 'sku', 255), ('product_variants', 'sku', 255), ('products', 'category', 200),
            ('order_items', 'sku', 255),
            ('orders', 'delivery_area', 255), ('orders', 'external_id', 255), ('orders', 'webhook_source', 100),
            ('expenses', 'category', 200)) b (tab, col, len)
    LOOP
        EXECUTE format('ALTER TABLE orders.%I ADD CONSTRAINT %I CHECK (%s) NOT VALID',
                       bound.tab, bound.tab || '_' || bound.col || '_check',
                       CASE WHEN bound.tab = 'expenses'
                            THEN format('%I <> %L AND length(%I) <= %s', bound.col, '', bound.col, bound.len)
                            ELSE format('length(%I) <= %s', bound.col, bound.len) END);
        BEGIN
            EXECUTE format('ALTER TABLE orders.%I VALIDATE CONSTRAINT %I',
                           bound.tab, bound.tab || '_' || bound.col || '_check');
        EXCEPTION WHEN check_violation THEN
            RAISE WARNING 'orders 0.40.0: orders.%.% has values longer than % characters; constraint "%" is left NOT VALID',
                          bound.tab, bound.col, bound.len, bound.tab || '_' || bound.col || '_check'
                USING HINT = format('Shorten them (SELECT … FROM orders.%I WHERE length(%I) > %s), then ALTER TABLE orders.%I VALIDATE CONSTRAINT %I.',
                                    bound.tab, bound.col, bound.len, bound.tab, bound.tab || '_' || bound.col || '_check');
        END;
    END LOOP;
END
$upgrade$;
