-- Money: what an order has earned (fulfilled category + payment collected)
-- is posted once per change to orders.financial_transactions; automatic
-- rows are the extension's (OR052); expenses and the daily summary.
BEGIN;
SELECT plan(35);

INSERT INTO orders.staff (id, account_id, full_name, role) VALUES
  ('00000000-0000-0000-0000-00000000b1d1', '66666666-6666-6666-6666-666666666666', 'Fatou Accountant', 'accountant');
INSERT INTO orders.customers (id, full_name) VALUES ('00000000-0000-0000-0000-00000000b1c1', 'Money Customer');
INSERT INTO orders.orders (id, order_number, customer_id, total_amount, payment_method, status) VALUES
  ('00000000-0000-0000-0000-00000000b1b1', 'T11-1', '00000000-0000-0000-0000-00000000b1c1', 50, 'cod', 'out_for_delivery'),
  ('00000000-0000-0000-0000-00000000b1b2', 'T11-2', '00000000-0000-0000-0000-00000000b1c1', 30, 'cod', 'out_for_delivery');
CREATE TEMP VIEW ledger AS
SELECT coalesce(string_agg(type || ' ' || amount, ', ' ORDER BY created_at, type DESC), '') AS l
  FROM orders.financial_transactions WHERE automatic AND order_id = '00000000-0000-0000-0000-00000000b1b1';

SELECT orders.transition('00000000-0000-0000-0000-00000000b1b1', 'delivered');
SELECT is((SELECT l FROM ledger), '', 'delivered with the cash still pending: nothing earned yet');
UPDATE orders.orders SET payment_status = 'collected' WHERE order_number = 'T11-1';
SELECT is((SELECT l FROM ledger), 'revenue 50.00', 'delivered + collected posts the revenue');
SELECT is((SELECT method || ' ' || currency || ' ' || date || ' ' || notes FROM orders.financial_transactions
            WHERE order_id = '00000000-0000-0000-0000-00000000b1b1'),
          'cod USD ' || current_date || ' automatic: order T11-1: delivered, payment collected',
          'with the payment method, currency, day and a note');
UPDATE orders.orders SET payment_status = 'collected', notes = 'again' WHERE order_number = 'T11-1';
SELECT is((SELECT l FROM ledger), 'revenue 50.00', 'collected again (or any other update): no second posting');
-- (0.29.0) an order that has earned keeps its currency: a change posted
-- nothing, and its refund later was in the new currency
SELECT throws_ok($$UPDATE orders.orders SET currency = 'EUR' WHERE order_number = 'T11-1'$$, 'OR053',
                 'order "T11-1" has earned 50.00 USD: its currency stays', 'the currency of an earned order: OR053');
SELECT is((SELECT currency || ' ' || (SELECT l FROM ledger) FROM orders.orders WHERE order_number = 'T11-1'),
          'USD revenue 50.00', '... nothing changed');
UPDATE orders.orders SET total_amount = 45 WHERE order_number = 'T11-1';
SELECT is((SELECT l FROM ledger), 'revenue 50.00, refund 5.00', 'a lower amount after collection posts the difference as a refund');
UPDATE orders.orders SET payment_status = 'refunded' WHERE order_number = 'T11-1';
SELECT is((SELECT l FROM ledger), 'revenue 50.00, refund 5.00, refund 45.00', 'a refunded payment posts the refund');
UPDATE orders.orders SET currency = 'EUR' WHERE order_number = 'T11-1';
SELECT is((SELECT currency FROM orders.orders WHERE order_number = 'T11-1'), 'EUR', '... refunded, it may change');
SELECT is((SELECT count(*)::int FROM orders.ledger_discrepancies), 0, 'the ledger agrees with what every order earned');

-- returned after delivery and collection
UPDATE orders.orders SET status = 'delivered', payment_status = 'collected' WHERE order_number = 'T11-2';
SELECT orders.transition('00000000-0000-0000-0000-00000000b1b2', 'returned');
SELECT is((SELECT string_agg(type || ' ' || amount, ', ' ORDER BY created_at, type DESC) FROM orders.financial_transactions
            WHERE order_id = '00000000-0000-0000-0000-00000000b1b2'),
          'revenue 30.00, refund 30.00', 'a return after collection posts the refund');

-- an order imported as delivered and collected (table owner) has earned
INSERT INTO orders.orders (order_number, customer_id, total_amount, status, payment_status) VALUES
  ('T11-3', '00000000-0000-0000-0000-00000000b1c1', 12.5, 'delivered', 'collected');
SELECT is((SELECT type || ' ' || amount FROM orders.financial_transactions t JOIN orders.orders o ON o.id = t.order_id
            WHERE o.order_number = 'T11-3'), 'revenue 12.50', 'an imported delivered + collected order posts its revenue');

-- who recorded it: the staff member named by the JWT sub
SELECT set_config('request.jwt.claims', '{"sub":"66666666-6666-6666-6666-666666666666"}', true);
INSERT INTO orders.orders (order_number, customer_id, total_amount, status, payment_status) VALUES
  ('T11-4', '00000000-0000-0000-0000-00000000b1c1', 7, 'delivered', 'collected');
SELECT is((SELECT s.full_name FROM orders.financial_transactions t JOIN orders.orders o ON o.id = t.order_id
             JOIN orders.staff s ON s.id = t.recorded_by_user_id WHERE o.order_number = 'T11-4'),
          'Fatou Accountant', 'the posting names the staff member whose account made the change');
INSERT INTO orders.expenses (category, amount, description) VALUES ('fuel', 20, 'agent motorbikes');
SELECT is((SELECT recorded_by_user_id FROM orders.expenses WHERE category = 'fuel'),
          '00000000-0000-0000-0000-00000000b1d1'::uuid, 'an expense defaults to the caller''s staff id');
SELECT set_config('request.jwt.claims', '', true);

-- automatic rows belong to the extension
CREATE ROLE t11_accountant;
GRANT USAGE ON SCHEMA orders TO t11_accountant;
GRANT SELECT, INSERT, UPDATE, DELETE ON orders.financial_transactions TO t11_accountant;
CREATE POLICY t11 ON orders.financial_transactions TO t11_accountant USING (true);
CREATE TEMP TABLE ledger_before AS SELECT * FROM orders.financial_transactions;
GRANT SELECT ON ledger_before TO t11_accountant;
SET LOCAL ROLE t11_accountant;
SELECT throws_ok($$INSERT INTO orders.financial_transactions (type, amount, automatic) VALUES ('revenue', 1, true)$$,
                 'OR052', NULL, 'a client cannot forge an automatic posting');
SELECT throws_ok($$UPDATE orders.financial_transactions SET amount = 1 WHERE automatic$$,
                 'OR052', NULL, 'nor change one');
SELECT throws_ok($$DELETE FROM orders.financial_transactions WHERE automatic$$,
                 'OR052', NULL, 'nor delete one');
SELECT set_eq('SELECT * FROM orders.financial_transactions', 'SELECT * FROM ledger_before',
              'the refused writes changed nothing in the ledger');
SELECT lives_ok($$INSERT INTO orders.financial_transactions (type, amount, notes) VALUES ('refund', 5, 'goodwill')$$,
                'a manual row is the accountant''s to write');
SELECT throws_ok($$UPDATE orders.financial_transactions SET automatic = true WHERE notes = 'goodwill'$$,
                 'OR052', 'automatic rows of orders.financial_transactions are posted by the order lifecycle only',
                 '(0.30.0) ... but not to make automatic: OR052 (its message said the manual row was posted by the lifecycle)');
SELECT throws_ok($$INSERT INTO orders.financial_transactions (type, amount) VALUES ('expense', 5)$$,
                 '23514', NULL, 'expenses are not ledger rows (orders.expenses is their one place)');
SELECT throws_ok($$INSERT INTO orders.financial_transactions (type, amount) VALUES ('revenue', 0)$$,
                 '23514', NULL, 'an amount must be positive');
SELECT is((SELECT count(*)::int FROM orders.financial_transactions t
            WHERE NOT EXISTS (SELECT 1 FROM ledger_before b WHERE b.id = t.id)),
          1, 'of the three inserts only the valid manual row was written');
RESET ROLE;

-- the summary of the day
SELECT is((SELECT total_revenue || ' ' || total_refunds || ' ' || total_expenses || ' ' || net_revenue || ' ' || net_profit
             || ' ' || paid_orders FROM orders.daily_financial_summary WHERE date = current_date),
          '99.50 85.00 20.00 14.50 -5.50 2',
          'daily_financial_summary: revenue, refunds, expenses, net revenue, net profit, paid orders (T11-3 and T11-4: T11-1 and T11-2 were refunded the same day)');
SELECT is((SELECT orders_today - (SELECT count(*)::int FROM orders.orders WHERE order_number NOT LIKE 'T11-%'
                                                     AND created_at >= current_date)
                  || ' ' || delivered_count || ' ' || collected_amount || ' ' || returned_count
             FROM orders.todays_order_summary),
          '4 3 19.50 1', 'todays_order_summary counts today''s orders by outcome');
-- (0.38.0) a caller who sees no order today reads amounts as 0.00, not 0
SELECT set_config('request.jwt.claims', '{"sub":"00000000-0000-4000-8000-00000000e011"}', true);
SET LOCAL ROLE authenticated;
SELECT is((SELECT orders_today || ' ' || collected_amount || ' ' || pending_amount FROM orders.todays_order_summary),
          '0 0.00 0.00', 'todays_order_summary: no order, amounts 0.00');
RESET ROLE;
SELECT set_config('request.jwt.claims', '', true);
-- an order paid more on a later day is not paid again that day; an order
-- paid first that day is
INSERT INTO orders.financial_transactions (type, amount, order_id, date, notes)
SELECT 'revenue', 3, id, current_date + 1, 'raised' FROM orders.orders WHERE order_number = 'T11-3';
INSERT INTO orders.financial_transactions (type, amount, order_id, date, notes)
SELECT 'revenue', 9, id, current_date + 1, 'paid late' FROM orders.orders WHERE order_number = 'T11-1';
SELECT is((SELECT total_revenue || ' ' || paid_orders FROM orders.daily_financial_summary WHERE date = current_date + 1),
          '12.00 1', '... the next day: T11-3''s raise counts as revenue, not as a paid order; T11-1 paid again does');

-- TRUNCATE would leave statistics behind
SELECT throws_ok($$TRUNCATE orders.orders CASCADE$$, 'OR014', NULL, 'TRUNCATE of orders is refused while customers count orders');
SELECT is((SELECT count(*)::int FROM orders.orders WHERE order_number LIKE 'T11-%'), 4, 'and the orders are still there');

-- deleting an order keeps its postings (money moved), detached
DELETE FROM orders.orders WHERE order_number = 'T11-1';
SELECT is((SELECT count(*)::int FROM orders.financial_transactions WHERE order_id IS NULL AND automatic), 3,
          'a deleted order''s postings stay, without the order');
SELECT is((SELECT count(*)::int FROM orders.ledger_discrepancies), 0, 'and the ledger still agrees with every order');

-- (0.43.0) the ledger's day is the business day (the database's configured
-- zone), not the writer's session's: collected at one instant from UTC+14
-- and UTC-12, one of the two days differs from the configured zone's
-- whatever the hour; both rows were dated by their session before
SELECT is(orders.business_timezone(), (SELECT reset_val FROM pg_settings WHERE name = 'TimeZone'),
          'business_timezone(): TimeZone as configured (its reset value)');
SELECT is((SELECT string_agg(proparallel::text, '' ORDER BY proname) FROM pg_proc
            WHERE pronamespace = 'orders'::regnamespace AND proname IN ('business_date', 'business_timezone')), 'rr',
          '... both PARALLEL RESTRICTED (a parallel worker''s reset value is the built-in GMT)');
INSERT INTO orders.orders (id, order_number, customer_id, total_amount, payment_method, status) VALUES
  ('00000000-0000-0000-0000-00000000b1ba', 'T11-TZ1', '00000000-0000-0000-0000-00000000b1c1', 7, 'cod', 'delivered'),
  ('00000000-0000-0000-0000-00000000b1bb', 'T11-TZ2', '00000000-0000-0000-0000-00000000b1c1', 8, 'cod', 'delivered');
SET LOCAL TimeZone = 'Pacific/Kiritimati';
SELECT is(orders.business_date(), (now() AT TIME ZONE (SELECT reset_val FROM pg_settings WHERE name = 'TimeZone'))::date,
          'business_date() in a session set to UTC+14: today in the configured zone');
UPDATE orders.orders SET payment_status = 'collected' WHERE order_number = 'T11-TZ1';
SET LOCAL TimeZone = 'Etc/GMT+12';
UPDATE orders.orders SET payment_status = 'collected' WHERE order_number = 'T11-TZ2';
INSERT INTO orders.expenses (category, amount, description) VALUES ('tz-test', 1, 'an expense entered from UTC-12');
SET LOCAL TimeZone = 'Pacific/Kiritimati';
INSERT INTO orders.expenses (category, amount, description) VALUES ('tz-test', 2, 'an expense entered from UTC+14');
RESET TimeZone;
SELECT is((SELECT string_agg(DISTINCT date::text, ' ') FROM orders.financial_transactions t JOIN orders.orders o ON o.id = t.order_id
            WHERE o.order_number IN ('T11-TZ1', 'T11-TZ2')) || ' ' ||
          (SELECT string_agg(DISTINCT date::text, ' ') FROM orders.expenses WHERE category = 'tz-test'),
          orders.business_date() || ' ' || orders.business_date(),
          'revenue collected and expenses entered from UTC+14 and UTC-12 are dated the business day, both');

SELECT * FROM finish();
ROLLBACK;
