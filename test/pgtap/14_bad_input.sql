-- Bad input a careful user tries (issue 9): NaN and the infinities in every
-- amount are refused by the amount domains and change nothing, so no
-- counter (customer statistics, ledger, daily summary) can be poisoned;
-- refusals quote at most 64 bytes of what they were sent; a JWT whose sub
-- is an object, array or boolean is refused, not taken for current_user.
BEGIN;
SELECT plan(81);

INSERT INTO orders.customers (id, full_name) VALUES ('00000000-0000-0000-0000-0000000014c1', 'Careful User');
INSERT INTO orders.products (id, name, sku, price, stock_quantity) VALUES
  ('00000000-0000-0000-0000-0000000014f1', 'Bad Lamp', 'T14-LAMP', 10, 5);
INSERT INTO orders.product_variants (id, product_id, sku, name, stock_quantity) VALUES
  ('00000000-0000-0000-0000-0000000014a1', '00000000-0000-0000-0000-0000000014f1', 'T14-LAMP-S', 'Small', 5);
INSERT INTO orders.orders (id, order_number, customer_id, payment_method) VALUES
  ('00000000-0000-0000-0000-0000000014b1', 'T14-1', '00000000-0000-0000-0000-0000000014c1', 'cod');
INSERT INTO orders.order_items (id, order_id, name, quantity, unit_price) VALUES
  ('00000000-0000-0000-0000-0000000014e1', '00000000-0000-0000-0000-0000000014b1', 'Lamp', 3, 10);
-- delivered and collected: the customer has spent 30, the ledger says so
DO $$ BEGIN
    PERFORM orders.transition('00000000-0000-0000-0000-0000000014b1', s)
       FROM unnest(ARRAY['confirmed', 'being_prepared', 'ready_for_pickup', 'out_for_delivery', 'delivered']) s;
END $$;
UPDATE orders.orders SET payment_status = 'collected' WHERE order_number = 'T14-1';
CREATE TEMP VIEW t14_money AS
SELECT (SELECT total_spent::text FROM orders.customers WHERE full_name = 'Careful User')
       || ' / ' || (SELECT string_agg(type || ' ' || amount::numeric, ',' ORDER BY created_at)
                      FROM orders.financial_transactions WHERE order_id = '00000000-0000-0000-0000-0000000014b1')
       || ' / ' || (SELECT o.subtotal::numeric || ' ' || o.delivery_fee::numeric || ' ' || o.total_amount::numeric
                      FROM orders.orders o WHERE o.order_number = 'T14-1')
       || ' / ' || (SELECT string_agg(unit_price::numeric || 'x' || quantity || '=' || total, ',') FROM orders.order_items
                     WHERE order_id = '00000000-0000-0000-0000-0000000014b1') AS s;
SELECT is((SELECT s FROM t14_money), '30.00 / revenue 30.00 / 30.00 0.00 30.00 / 10.00x3=30.00', 'the money before');

-- NaN in every amount of an order, an item, a product, a variant, the ledger, an expense
SELECT throws_ok(format($$UPDATE orders.orders SET %I = 'NaN' WHERE order_number = 'T14-1'$$, c), '23514', NULL,
                 format('orders.%s = NaN is refused', c))
  FROM unnest(ARRAY['total_amount', 'subtotal', 'delivery_fee']) c;
SELECT throws_ok($$INSERT INTO orders.orders (customer_id, total_amount) VALUES ('00000000-0000-0000-0000-0000000014c1', 'NaN')$$,
                 '23514', NULL, 'a new order with total_amount NaN is refused');
SELECT throws_ok($$UPDATE orders.order_items SET unit_price = 'NaN' WHERE id = '00000000-0000-0000-0000-0000000014e1'$$,
                 '23514', NULL, 'order_items.unit_price = NaN is refused');
SELECT throws_ok(format($$UPDATE orders.products SET %I = 'NaN' WHERE sku = 'T14-LAMP'$$, c), '23514', NULL,
                 format('products.%s = NaN is refused', c))
  FROM unnest(ARRAY['price', 'cost_price']) c;
SELECT throws_ok($$UPDATE orders.product_variants SET price = 'NaN' WHERE sku = 'T14-LAMP-S'$$, '23514', NULL,
                 'product_variants.price = NaN is refused');
SELECT throws_ok($$INSERT INTO orders.financial_transactions (type, amount) VALUES ('revenue', 'NaN')$$, '23514', NULL,
                 'a manual ledger row of NaN is refused');
SELECT throws_ok($$INSERT INTO orders.expenses (category, amount) VALUES ('fuel', 'NaN')$$, '23514', NULL,
                 'an expense of NaN is refused');
SELECT throws_ok($$UPDATE orders.orders SET total_amount = 'Infinity' WHERE order_number = 'T14-1'$$, '22003', NULL,
                 'Infinity is refused');
SELECT throws_ok($$INSERT INTO orders.expenses (category, amount) VALUES ('fuel', '-Infinity')$$, '22003', NULL,
                 '-Infinity is refused');
SELECT is((SELECT s FROM t14_money), '30.00 / revenue 30.00 / 30.00 0.00 30.00 / 10.00x3=30.00',
          'nothing changed: statistics, ledger, order and item amounts');
SELECT is((SELECT count(*)::int FROM orders.expenses WHERE category = 'fuel')
          + (SELECT count(*)::int FROM orders.financial_transactions WHERE NOT automatic), 0, 'no row was added');
SELECT is((SELECT count(*)::int FROM orders.daily_financial_summary
            WHERE total_revenue = 'NaN' OR net_profit = 'NaN'), 0, 'the daily summary has no NaN');
SELECT is((SELECT count(*)::int FROM orders.customers WHERE total_spent = 'NaN'), 0, 'no customer''s total_spent is NaN');

-- refusals quote at most 64 bytes of the input
SELECT throws_ok($$SELECT orders.transition('00000000-0000-0000-0000-0000000014b1', repeat('x', 100000))$$, 'OR003',
                 'order "T14-1": "' || repeat('x', 64) || '..." is not a status of lifecycle "cod"',
                 'a 100 kB status is quoted as 64 characters');
SELECT throws_ok($$INSERT INTO orders.orders (order_number, customer_id, lifecycle)
                   VALUES ('T14-2', '00000000-0000-0000-0000-0000000014c1', repeat('é', 1000))$$,
                 'OR002', 'order "T14-2": unknown lifecycle "' || repeat('é', 32) || '..."',
                 'a long lifecycle name is cut on a character boundary');

-- the JWT sub must be a string or a number
SELECT throws_ok(format($$SELECT set_config('request.jwt.claims', %L, true), orders.current_actor()$$, c), '22023',
                 'claim "sub" of setting "request.jwt.claims" must be a string or a number',
                 format('a sub of %s is refused, not taken for current_user', c))
  FROM unnest(ARRAY['{"sub":{"id":"x"}}', '{"sub":["x"]}', '{"sub":true}']) c;
SELECT is((SELECT orders.current_actor() FROM (SELECT set_config('request.jwt.claims', '{"sub":null}', true)) s),
          current_user::text, 'a null sub counts as unset');
SELECT is((SELECT orders.current_actor() FROM (SELECT set_config('request.jwt.claims', '{"sub":42}', true)) s),
          '42', 'a numeric sub is its text');
-- (0.40.0) a subject over 255 bytes: 22023 (a 40 kB one met the holds' index, 54000)
SELECT throws_ok(format($$SELECT set_config('request.jwt.claims', %L, true), orders.current_actor()$$, c), '22023',
                 'the subject in setting "request.jwt.claims" is longer than 255 bytes (' || length(c) - 12 || ')',
                 format('a sub of %s bytes is refused', length(c) - 12))
  FROM unnest(ARRAY[json_build_object('sub', repeat('s', 256))::text, json_build_object('sub', repeat('s', 40000))::text]) c;
SELECT throws_ok($$SELECT set_config('request.jwt.claims', '{"sub":1e300}', true), orders.current_actor()$$, '22023',
                 'the subject in setting "request.jwt.claims" is longer than 255 bytes (301)', '... a numeric one printed longer too');
SELECT is((SELECT length(orders.current_actor()) FROM (SELECT set_config('request.jwt.claims', json_build_object('sub', repeat('s', 255))::text, true)) s),
          255, '... 255 bytes is a subject');
SELECT throws_ok($$SELECT set_config('request.jwt.claims', '', true), set_config('jwt.claims.sub', repeat('p', 300), true), orders.current_actor()$$, '22023',
                 'the subject in setting "jwt.claims.sub" is longer than 255 bytes (300)', '... so is jwt.claims.sub (PostGraphile''s)');
SELECT set_config('request.jwt.claims', '', true), set_config('jwt.claims.sub', '', true);
SELECT is((SELECT count(*)::int FROM orders.order_history WHERE order_id = '00000000-0000-0000-0000-0000000014b1'), 5,
          'no refused change wrote history');

-- notes an order had before the limit do not block its other changes
SET LOCAL session_replication_role = replica;   -- as a 0.6.0 database could hold it
INSERT INTO orders.orders (id, order_number, customer_id, status, notes) VALUES
  ('00000000-0000-0000-0000-0000000014b9', 'T14-OLD', '00000000-0000-0000-0000-0000000014c1', 'new', repeat('n', 20000));
RESET session_replication_role;
SELECT is((orders.transition('00000000-0000-0000-0000-0000000014b9', 'confirmation_pending')).status,
          'confirmation_pending', 'an order with 20000 characters of old notes still changes status');
SELECT throws_ok($$UPDATE orders.orders SET notes = repeat('m', 20000) WHERE order_number = 'T14-OLD'$$, '22001', NULL,
                 '... but its notes cannot be replaced by other over-long notes');

-- (0.35.0) a NULL id to the review, share and outbox functions: 22004, as
-- the other API functions (a "does not exist" of <NULL> before); a review
-- entry naming no site: 22023; a quoted value cut at 64 characters ends
-- with "..."; a suggestion whose metrics is no object: 22023, named
SELECT throws_ok($$SELECT orders.review_sites(NULL, '[]')$$, '22004',
                 'orders.review_sites: argument "order_group_id" must not be null', 'review_sites(NULL, …): 22004');
SELECT throws_ok($$SELECT orders.start_analysis(NULL, NULL)$$, '22004',
                 'orders.start_analysis: argument "order_group_id" must not be null', 'start_analysis(NULL, …): 22004');
SELECT throws_ok($$SELECT orders.complete_analysis(NULL, '[]')$$, '22004',
                 'orders.complete_analysis: argument "order_group_id" must not be null', 'complete_analysis(NULL, …): 22004');
SELECT throws_ok($$SELECT * FROM orders.site_internal_notes(NULL)$$, '22004',
                 'orders.site_internal_notes: argument "order_group_id" must not be null', 'site_internal_notes(NULL): 22004');
SELECT throws_ok($$SELECT * FROM orders.site_internal_metrics(NULL)$$, '22004',
                 'orders.site_internal_metrics: argument "order_group_id" must not be null', 'site_internal_metrics(NULL): 22004');
SELECT throws_ok($$SELECT orders.set_site_internal_notes(NULL, 'x')$$, '22004',
                 'orders.set_site_internal_notes: argument "selection_id" must not be null', 'set_site_internal_notes(NULL, …): 22004');
SELECT throws_ok($$SELECT orders.create_share_token(NULL)$$, '22004',
                 'orders.create_share_token: argument "order_id" must not be null', 'create_share_token(NULL): 22004');
SELECT throws_ok($$SELECT orders.revive_outbox(NULL)$$, '22004',
                 'orders.revive_outbox: argument "id" must not be null', 'revive_outbox(NULL): 22004');
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle)
SELECT '00000000-0000-0000-0000-0000000014d1', 'T14-REV', id, 'review' FROM orders.customers LIMIT 1;
INSERT INTO orders.order_groups (id, order_id, client_id, link_count)
SELECT '00000000-0000-0000-0000-0000000014d2', '00000000-0000-0000-0000-0000000014d1', customer_id, 1
  FROM orders.orders WHERE order_number = 'T14-REV';
-- (0.39.0) a domain that is no host name: 22023 naming the suggestion (was
-- the INSERT's 23514, naming none)
SELECT throws_ok($$SELECT orders.complete_analysis('00000000-0000-0000-0000-0000000014d2', '[{"domain": "ok.example"}, {"domain": 7}]')$$,
                 '22023', 'orders.complete_analysis: suggestion 2: domain "7" is not a host name',
                 'complete_analysis: a domain that is a number: 22023 naming the suggestion');
SELECT throws_ok($$SELECT orders.complete_analysis('00000000-0000-0000-0000-0000000014d2', '[{"domain": "a_b.com"}]')$$,
                 '22023', 'orders.complete_analysis: suggestion 1: domain "a_b.com" is not a host name', '... one with an underscore');
SELECT throws_ok($$SELECT orders.complete_analysis('00000000-0000-0000-0000-0000000014d2', '[{"domain": "localhost"}]')$$,
                 '22023', 'orders.complete_analysis: suggestion 1: domain "localhost" is not a host name', '... one without a dot');
-- (0.39.0) the NULL ids these answered with OR075 / OR100 naming <NULL>
SELECT orders.create_share_token('00000000-0000-0000-0000-0000000014d1', interval '1 day', '{view,approve}') AS t14tok \gset
SELECT throws_ok(format($$SELECT orders.share_review_sites(%L, NULL, '[]')$$, :'t14tok'), '22004',
                 'orders.share_review_sites: argument "order_group_id" must not be null', 'share_review_sites(token, NULL, …): 22004');
SELECT throws_ok($$SELECT orders.apply_review(NULL, '[]', NULL)$$, '22004',
                 'orders.apply_review: argument "order_group_id" must not be null', 'apply_review(NULL, …): 22004');
SELECT throws_ok($$SELECT orders.complete_outbox(NULL, NULL, 'w')$$, '22004',
                 'orders.complete_outbox: argument "id" must not be null', 'complete_outbox(NULL, …): 22004');
SELECT throws_ok($$SELECT orders.review_sites('00000000-0000-0000-0000-0000000014d2', '[{"status": "approved"}]')$$, '22023',
                 'orders.review_sites: entry 1 names no site', 'a review entry without selection_id or domain: 22023 (was OR076 "site null")');
SELECT throws_ok(format($$SELECT orders.review_sites('00000000-0000-0000-0000-0000000014d2', '[{"domain": "%s", "status": "approved"}]')$$,
                        repeat('q', 100)), 'OR076',
                 'site ' || repeat('q', 64) || '... is not a site of client group 00000000-0000-0000-0000-0000000014d2',
                 'a site named by 100 characters is quoted by 64 and "..."');
SELECT throws_ok($$SELECT orders.complete_analysis('00000000-0000-0000-0000-0000000014d2', '[{"domain": "a.example", "metrics": [1]}]')$$,
                 '22023', 'orders.complete_analysis: suggestion 1: metrics [1] is not a JSON object',
                 'a suggestion whose metrics is an array: 22023 naming it (was the INSERT''s 23514)');
SELECT is((SELECT suggested_count FROM orders.order_groups WHERE id = '00000000-0000-0000-0000-0000000014d2'), 0,
          '... nothing was suggested');

SELECT throws_ok($$SELECT orders.review_sites('00000000-0000-0000-0000-0000000014d2', '[{"domain": "", "status": "approved"}]')$$, '22023',
                 'orders.review_sites: entry 1 names no site', '... an empty domain names none either (22023)');
SELECT is((orders.complete_analysis('00000000-0000-0000-0000-0000000014d2', '[{"domain": "n.example", "metrics": null}]')).suggested_count, 1,
          'a suggestion whose metrics is JSON null: stored as {} (was 23514)');
SELECT is((SELECT metrics::text FROM orders.order_site_selections WHERE domain = 'n.example'), '{}', '... its metrics {}');

-- (0.40.0) a value too long for a column's index: the column's CHECK
-- (23514, HTTP 400), not the index's 54000 (HTTP 500); nothing written
SELECT throws_ok(format($$UPDATE orders.customers SET %I = repeat('x', 40000) WHERE id = '00000000-0000-0000-0000-0000000014c1'$$, c),
                 '23514', format('new row for relation "customers" violates check constraint "customers_%s_check"', c),
                 format('a 40 kB customer %s: 23514 naming customers_%s_check (was 54000)', c, c))
  FROM unnest(ARRAY['email', 'phone', 'area']) c;
SELECT is((SELECT coalesce(email, '') || coalesce(phone, '') || coalesce(area, '') FROM orders.customers
            WHERE id = '00000000-0000-0000-0000-0000000014c1'), '', '... the customer unchanged');
SELECT lives_ok($$UPDATE orders.customers SET email = repeat('e', 310) || '@x.example', phone = repeat('1', 64), area = repeat('a', 255)
                   WHERE id = '00000000-0000-0000-0000-0000000014c1'$$, '... at the bounds (320, 64, 255): written');
SELECT throws_ok($$INSERT INTO orders.staff (full_name, role, email) VALUES ('Long', 'customer_rep', repeat('s', 321))$$,
                 '23514', 'new row for relation "staff" violates check constraint "staff_email_check"', 'a staff email over 320: 23514');
SELECT throws_ok($$UPDATE orders.products SET sku = repeat('k', 256) WHERE id = '00000000-0000-0000-0000-0000000014f1'$$,
                 '23514', 'new row for relation "products" violates check constraint "products_sku_check"', 'a product SKU over 255: 23514');
SELECT throws_ok($$UPDATE orders.products SET category = repeat('k', 201) WHERE id = '00000000-0000-0000-0000-0000000014f1'$$,
                 '23514', 'new row for relation "products" violates check constraint "products_category_check"', 'a product category over 200: 23514');
SELECT throws_ok($$UPDATE orders.product_variants SET sku = repeat('k', 40000) WHERE id = '00000000-0000-0000-0000-0000000014a1'$$,
                 '23514', 'new row for relation "product_variants" violates check constraint "product_variants_sku_check"', 'a variant SKU of 40 kB: 23514');
SELECT is((SELECT p.sku || ' ' || coalesce(p.category, '-') || ' ' || v.sku FROM orders.products p JOIN orders.product_variants v ON v.product_id = p.id
            WHERE p.id = '00000000-0000-0000-0000-0000000014f1'), 'T14-LAMP - T14-LAMP-S', '... products and variants unchanged');
SELECT throws_ok($$INSERT INTO orders.order_items (order_id, name, sku) VALUES ('00000000-0000-0000-0000-0000000014b1', 'Long', repeat('k', 40000))$$,
                 '23514', 'new row for relation "order_items" violates check constraint "order_items_sku_check"', 'an item SKU of 40 kB: 23514');
SELECT throws_ok(format($$UPDATE orders.orders SET %I = repeat('o', 40000) WHERE id = '00000000-0000-0000-0000-0000000014b1'$$, c),
                 '23514', format('new row for relation "orders" violates check constraint "orders_%s_check"', c),
                 format('an order''s %s of 40 kB: 23514', c))
  FROM unnest(ARRAY['delivery_area', 'external_id', 'webhook_source']) c;
SELECT is((SELECT count(*)::int FROM orders.order_items WHERE order_id = '00000000-0000-0000-0000-0000000014b1')
          || ' ' || (SELECT coalesce(delivery_area, '') || coalesce(external_id, '') || coalesce(webhook_source, '')
                       FROM orders.orders WHERE id = '00000000-0000-0000-0000-0000000014b1'), '1 ', '... the order and its items unchanged');
SELECT throws_ok($$INSERT INTO orders.expenses (category, amount) VALUES (repeat('c', 201), 1)$$,
                 '23514', 'new row for relation "expenses" violates check constraint "expenses_category_check"', 'an expense category over 200: 23514');
SELECT throws_ok($$INSERT INTO orders.expenses (category, amount) VALUES ('', 1)$$,
                 '23514', 'new row for relation "expenses" violates check constraint "expenses_category_check"', '... an empty one still 23514');
SELECT throws_ok($$UPDATE orders.products SET name = repeat('n ', 251) WHERE id = '00000000-0000-0000-0000-0000000014f1'$$,
                 '23514', 'new row for relation "products" violates check constraint "products_name_check"',
                 'a product name over 500 (its full-text index took 1 MB of words as 54000): 23514');
SELECT throws_ok($$INSERT INTO orders.lifecycles (name, initial_status) VALUES ('l' || repeat('x', 63), 'new')$$,
                 '23514', 'new row for relation "lifecycles" violates check constraint "lifecycles_name_check"', 'a lifecycle name over 63: 23514');
SELECT throws_ok(format($$INSERT INTO orders.lifecycle_states (lifecycle, status, category) VALUES (%L, %L, 'open')$$, l, s),
                 '23514', format('new row for relation "lifecycle_states" violates check constraint "lifecycle_states_%s_check"', c),
                 format('a state''s %s over 63: 23514', c))
  FROM (VALUES ('cod', 's' || repeat('x', 63), 'status'), ('c' || repeat('x', 40000), 'new', 'lifecycle')) v (l, s, c);
SELECT throws_ok(format($$INSERT INTO orders.lifecycle_transitions (lifecycle, from_status, to_status) VALUES (%L, %L, %L)$$, l, f, t),
                 '23514', format('new row for relation "lifecycle_transitions" violates check constraint "lifecycle_transitions_%s_check"', c),
                 format('a transition''s %s of 40 kB: 23514 (was 54000 before its foreign key)', c))
  FROM (VALUES (repeat('x', 40000), 'new', 'cancelled', 'lifecycle'), ('cod', repeat('x', 40000), 'new', 'from_status'),
               ('cod', 'new', repeat('x', 40000), 'to_status')) v (l, f, t, c);
SELECT is((SELECT count(*)::int FROM orders.lifecycles WHERE length(name) > 63)
          + (SELECT count(*)::int FROM orders.lifecycle_transitions WHERE length(lifecycle || from_status || to_status) > 189),
          0, '... no lifecycle, state or transition written');

-- (0.41.0) a row others are counted against keeps its id (OR122): one
-- statement re-keying a parent and pointing its children at the new id
-- counted them twice — a customer's orders, a product's stock for good
INSERT INTO orders.customers (id, full_name) VALUES ('00000000-0000-0000-0000-000000001471', 'T14 re-key');
INSERT INTO orders.products (id, name, sku, price, stock_quantity)
VALUES ('00000000-0000-0000-0000-000000001472', 'T14 re-key', 'T14-RK', 10, 100);
INSERT INTO orders.orders (id, customer_id) VALUES ('00000000-0000-0000-0000-000000001473', '00000000-0000-0000-0000-000000001471');
INSERT INTO orders.order_items (order_id, name, quantity, unit_price, product_id)
VALUES ('00000000-0000-0000-0000-000000001473', 'T14 re-key', 2, 10, '00000000-0000-0000-0000-000000001472');
SELECT orders.transition('00000000-0000-0000-0000-000000001473', 'confirmed') \g /dev/null
SELECT throws_ok($$WITH c AS (UPDATE orders.customers SET id = '00000000-0000-0000-0000-000000001479' WHERE id = '00000000-0000-0000-0000-000000001471'),
                        o AS (UPDATE orders.orders SET customer_id = '00000000-0000-0000-0000-000000001479'
                               WHERE customer_id = '00000000-0000-0000-0000-000000001471')
                   SELECT 1$$,
                 'OR122', 'row 00000000-0000-0000-0000-000000001471 of orders.customers keeps its id',
                 '(0.41.0) a customer re-keyed with its orders in one statement: OR122 (its statistics counted them twice)');
SELECT throws_ok($$WITH p AS (UPDATE orders.products SET id = '00000000-0000-0000-0000-000000001478' WHERE id = '00000000-0000-0000-0000-000000001472'),
                        i AS (UPDATE orders.order_items SET product_id = '00000000-0000-0000-0000-000000001478'
                               WHERE product_id = '00000000-0000-0000-0000-000000001472')
                   SELECT 1$$,
                 'OR122', 'row 00000000-0000-0000-0000-000000001472 of orders.products keeps its id',
                 '... a product re-keyed with the items holding it (its stock was taken twice, for good)');
SELECT is((SELECT stock_quantity || ' ' || (SELECT total_orders FROM orders.customers WHERE id = '00000000-0000-0000-0000-000000001471')
             FROM orders.products WHERE id = '00000000-0000-0000-0000-000000001472'), '98 1',
          '... the stock and the statistics as the confirmation left them');

SELECT * FROM finish();
ROLLBACK;
