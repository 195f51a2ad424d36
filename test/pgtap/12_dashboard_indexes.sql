-- Seed 004's dashboard queries on a realistic data set (20k customers in 50
-- areas, 100k orders over a year, 5k products, 200 agents, 10k expenses): EXPLAIN shows
-- each one served by the index the seed meant for it.
BEGIN;
SELECT plan(19);

INSERT INTO orders.staff (id, full_name, role, is_active, availability_status)
SELECT ('00000000-0000-0000-0000-' || lpad(to_hex(g), 12, '0'))::uuid, 'Agent ' || g, 'delivery_agent', true, 'available'
  FROM generate_series(1, 200) g;
INSERT INTO orders.customers (id, full_name, phone, area, tags)
SELECT ('00000000-0000-0000-0001-' || lpad(to_hex(g), 12, '0'))::uuid, 'Customer ' || g, '+221 ' || g, 'area-' || (g % 50),
       CASE WHEN g % 50 = 7 THEN '[{"id": "vip", "label": "VIP Customer"}]'::jsonb
            WHEN g % 10 = 3 THEN '[{"id": "frequent_returner"}]'::jsonb ELSE '[]'::jsonb END
  FROM generate_series(1, 20000) g;
-- 100k orders over the last year; old ones are settled, recent ones open
INSERT INTO orders.orders (order_number, customer_id, status, payment_status, priority, total_amount, created_at,
                           delivery_area, assigned_agent_id)
SELECT 'D-' || g, ('00000000-0000-0000-0001-' || lpad(to_hex(1 + g % 20000), 12, '0'))::uuid,
       st, CASE WHEN st = 'delivered' AND g % 4 <> 0 THEN 'collected' ELSE 'pending' END,
       g % 3, 10 + g % 90, now() - (g * interval '5 minutes'), 'area-' || (g % 50),
       CASE WHEN st IN ('out_for_delivery', 'delivered') OR (st = 'ready_for_pickup' AND g % 2 = 0)
            THEN ('00000000-0000-0000-0000-' || lpad(to_hex(1 + g % 200), 12, '0'))::uuid END
  FROM generate_series(1, 100000) g,
       LATERAL (SELECT CASE WHEN g < 300 THEN (ARRAY['new', 'confirmation_pending', 'confirmed', 'being_prepared',
                                                      'ready_for_pickup', 'out_for_delivery'])[1 + g % 6]
                            WHEN g % 20 = 0 THEN 'cancelled' WHEN g % 25 = 0 THEN 'returned'
                            ELSE 'delivered' END AS st) s;
-- revenue is dated the day it was earned
UPDATE orders.financial_transactions t SET date = o.created_at::date
  FROM orders.orders o WHERE o.id = t.order_id;
INSERT INTO orders.products (name, sku, category, price, stock_quantity, low_stock_threshold)
SELECT 'Product ' || g, 'SKU-' || g, 'cat-' || (g % 40), 5 + g % 50, CASE WHEN g % 100 = 0 THEN g % 7 ELSE 20 + g % 500 END, 10
  FROM generate_series(1, 5000) g;
INSERT INTO orders.expenses (category, amount, date)
SELECT 'cat-' || (g % 12), 1 + g % 200, current_date - (g % 365) FROM generate_series(1, 10000) g;
INSERT INTO orders.deliveries (order_id, agent_id, rating)
SELECT o.id, o.assigned_agent_id, 1 + (hashtext(o.order_number) & 3)
  FROM orders.orders o WHERE o.assigned_agent_id IS NOT NULL AND o.order_number LIKE 'D-1%';
ANALYZE orders.staff, orders.customers, orders.orders, orders.products, orders.expenses,
        orders.financial_transactions, orders.deliveries;

-- uses_index(query, index) — does the plan of "query" scan "index"?
CREATE FUNCTION pg_temp.uses_index(query text, index text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE plan jsonb;
BEGIN
    EXECUTE 'EXPLAIN (FORMAT JSON) ' || query INTO plan;
    RETURN jsonb_path_exists(plan, '$.** ? (@."Index Name" == $i)', jsonb_build_object('i', index));
END $$;

SELECT ok(pg_temp.uses_index($$SELECT * FROM orders.recent_orders()$$, 'orders_status_created_idx'),
          '1 recent orders: orders_status_created_idx');
SELECT ok(pg_temp.uses_index($$SELECT * FROM orders.agent_active_deliveries('00000000-0000-0000-0000-000000000007')$$,
                             'orders_assigned_agent_idx'), '2 an agent''s active deliveries: orders_assigned_agent_idx');
SELECT ok(pg_temp.uses_index($$SELECT * FROM orders.unassigned_orders_in_area('area-7')$$, 'orders_area_status_idx'),
          '3 unassigned orders of an area: orders_area_status_idx');
SELECT ok(pg_temp.uses_index($$SELECT * FROM orders.customer_order_history('00000000-0000-0000-0001-000000000010')$$,
                             'orders_customer_created_idx')
          OR pg_temp.uses_index($$SELECT * FROM orders.customer_order_history('00000000-0000-0000-0001-000000000010')$$,
                                'orders_customer_status_idx'),
          '4 a customer''s history: an index on customer_id');
SELECT ok(pg_temp.uses_index($$SELECT * FROM orders.todays_order_summary$$, 'orders_created_at_idx'),
          '5 today''s summary: orders_created_at_idx');
SELECT ok(pg_temp.uses_index($$SELECT id, name, sku, category, stock_quantity, low_stock_threshold FROM orders.products
                               WHERE is_low ORDER BY stock_quantity$$,
                             'products_low_stock_idx'), '6 low stock products (the seed''s query on is_low): products_low_stock_idx');
SELECT ok(pg_temp.uses_index($$SELECT * FROM orders.low_stock_view$$, 'products_low_stock_idx'),
          '6 low_stock_view: products_low_stock_idx');
SELECT ok(pg_temp.uses_index($$SELECT * FROM orders.vip_customers('area-7')$$, 'customers_tags_idx')
          OR pg_temp.uses_index($$SELECT * FROM orders.vip_customers('area-7')$$, 'customers_area_idx'),
          '8 VIP customers of an area: customers_tags_idx / customers_area_idx');
UPDATE orders.customers SET tags = '["vip", {"id": "other"}]'
 WHERE id = (SELECT id FROM orders.customers WHERE area = 'area-8' AND tags = '[]' ORDER BY id LIMIT 1);
SELECT is((SELECT count(*)::int FROM orders.vip_customers('area-8')), 1,
          '8 ... a tag written as the string "vip" (as customer_tag workflows accept it) counts too');
SELECT is((SELECT count(*)::int FROM orders.vip_customers('area-8') v JOIN orders.customers c USING (id) WHERE c.tags @> '["vip"]'), 1,
          '8 ... (that customer: of area-8, none is tagged {"id": "vip"})');
SELECT ok(pg_temp.uses_index($$SELECT * FROM orders.daily_financial_summary WHERE date >= CURRENT_DATE - 30$$,
                             'financial_transactions_date_type_idx'),
          'daily_financial_summary for 30 days: financial_transactions_date_type_idx');
SELECT ok(pg_temp.uses_index($$SELECT * FROM orders.order_details_view WHERE status = 'out_for_delivery'
                               ORDER BY created_at DESC$$, 'orders_status_created_idx'),
          'order_details_view by status: orders_status_created_idx');
SELECT ok(pg_temp.uses_index($$SELECT * FROM orders.agent_performance_view WHERE agent_id = '00000000-0000-0000-0000-000000000007'$$,
                             'deliveries_agent_delivery_time_idx'),
          '7 one agent''s performance: deliveries_agent_delivery_time_idx');

-- (0.44.0) recent_orders' customer branch is a customer's whom row level
-- security holds: the owner acting for a customer (orders.acting_for: the
-- customer's account) still reads every order, as before
UPDATE orders.customers SET account_id = 'acc00000-0000-0000-0000-00000000000c'
 WHERE id = '00000000-0000-0000-0001-000000000010';
SELECT set_config('orders.acting_for', 'acc00000-0000-0000-0000-00000000000c', true) IS NOT NULL AS acting;
SELECT is((SELECT count(*)::int FROM orders.recent_orders(max_rows => 250)),
          (SELECT count(*)::int FROM orders.orders WHERE status IN ('new', 'confirmation_pending', 'confirmed')),
          'recent_orders as the owner acting for a customer: every order (the customer branch is for callers row level security holds)');
SELECT set_config('orders.acting_for', '', true) IS NOT NULL AS reset;

-- (0.44.0) product_catalog reads one page through an index: no scan of the
-- whole catalog, about as many index entries as the page has products
-- (the function's plan is inside it: the statistics of this transaction
-- say what it read) — at most 500 of the 5,000: the index also returns
-- the entries of products earlier files inserted and rolled back, until
-- a vacuum removes them (a bound of 51 failed one run in a few)
CREATE FUNCTION pg_temp.catalog_reads(call text, index text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    seq0 bigint; idx0 bigint; tup0 bigint; n int;
BEGIN
    seq0 := pg_stat_get_xact_numscans('orders.products'::regclass);
    idx0 := pg_stat_get_xact_numscans(index::regclass);
    tup0 := pg_stat_get_xact_tuples_returned(index::regclass);
    EXECUTE 'SELECT count(*) FROM ' || call INTO n;
    RETURN format('%s rows, %s scans of products, %s: %s, %s entries', n,
                  pg_stat_get_xact_numscans('orders.products'::regclass) - seq0,
                  CASE WHEN pg_stat_get_xact_numscans(index::regclass) > idx0 THEN 'read' ELSE 'not read' END, index,
                  CASE WHEN pg_stat_get_xact_tuples_returned(index::regclass) - tup0 <= 500 THEN 'a page''s' ELSE 'more than 500' END);
END $$;
SELECT is(pg_temp.catalog_reads($$orders.product_catalog(max_products => 50)$$, 'orders.products_catalog_idx'),
          '50 rows, 0 scans of products, read: orders.products_catalog_idx, a page''s entries',
          'the catalog''s first page of 50 of 5,000 products: products_catalog_idx, 50 entries, no scan of the table');
SELECT is(pg_temp.catalog_reads($$orders.product_catalog(max_products => 50, after_name => 'Product 4000', after_id => NULL)$$,
                                'orders.products_catalog_idx'),
          '50 rows, 0 scans of products, read: orders.products_catalog_idx, a page''s entries',
          '... a later page the same');
SELECT is(pg_temp.catalog_reads($$orders.product_catalog(category => 'cat-7', max_products => 50)$$,
                                'orders.products_category_catalog_idx'),
          '50 rows, 0 scans of products, read: orders.products_category_catalog_idx, a page''s entries',
          '... a category''s page: products_category_catalog_idx');
SELECT is((SELECT string_agg(name, ',') FROM orders.product_catalog(max_products => 3, after_name => 'Product 9985')),
          'Product 999', '... the last page (names sort as text): what is left');
SELECT is((SELECT array_agg(product_id) FROM (SELECT product_id FROM orders.product_catalog(max_products => 2)) a)
          || (SELECT array_agg(product_id)
                FROM orders.product_catalog(max_products => 2,
                        after_name => (SELECT max(name) FROM orders.product_catalog(max_products => 2)),
                        after_id => (SELECT product_id FROM orders.product_catalog(max_products => 2) ORDER BY name DESC LIMIT 1))),
          (SELECT array_agg(product_id) FROM orders.product_catalog(max_products => 4)),
          '... two pages of 2, each after the last product read, are the page of 4');

SELECT * FROM finish();
ROLLBACK;
-- ANALYZE's row counts (pg_class) outlive the rollback, and the rolled-back
-- rows bloat the indexes: clean and count the tables again, so that later
-- files (pgtap_api 07's plans) are not planned for 100,000 orders and
-- 20,000 customers that are gone
VACUUM ANALYZE orders.staff, orders.customers, orders.orders, orders.products, orders.expenses,
        orders.financial_transactions, orders.deliveries;
