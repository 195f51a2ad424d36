-- Workflows (issue 13): configs validated on write (every refusal, nothing
-- stored); order_status workflows fire from the status/payment change once
-- per change into their conditions; customer_tag workflows when the tag is
-- added; webhook workflows after ingest_webhook created the order;
-- time-based ones through run_scheduled_workflow once per scheduled
-- minute; run_workflow; the steps tag (with a condition), notify (in-app
-- and outbox) and task; a failing step fails the run without undoing the
-- change; loops stop at depth 8; the fixed grammars.
-- Run from the repository root (the webhook payload is read relative to it).
\set shop `cat test/webhooks/shopify_order.json`
BEGIN;
SELECT plan(135);

-- pg_temp.err(sql) — the SQLSTATE a statement fails with, 'ok' when it passes
CREATE FUNCTION pg_temp.err(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;
-- pg_temp.wf(name, trigger_type, config, steps) — store a workflow, its id
CREATE FUNCTION pg_temp.wf(name text, trigger_type text, config jsonb, steps jsonb) RETURNS uuid LANGUAGE sql AS $$
    INSERT INTO orders.workflows (name, trigger_type, trigger_config, workflow_steps)
    VALUES (name, trigger_type, config, steps) RETURNING id;
$$;
-- pg_temp.fingerprint() — the workflows as stored
CREATE FUNCTION pg_temp.fingerprint() RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(md5(string_agg(w::text, ',' ORDER BY w.id)), 'none') FROM orders.workflows w;
$$;

INSERT INTO orders.staff (id, full_name, role, phone, email) VALUES
  ('00000000-0000-0000-0000-0000000af001', 'Wf Rep', 'customer_rep', '+1000001', 'rep@example.com'),
  ('00000000-0000-0000-0000-0000000af002', 'Wf Manager', 'manager', NULL, NULL),
  ('00000000-0000-0000-0000-0000000af003', 'Wf Manager Two', 'manager', NULL, NULL);
INSERT INTO orders.customers (id, full_name, phone) VALUES
  ('00000000-0000-0000-0000-0000000ac001', 'Wf Vera', '+2000001'),
  ('00000000-0000-0000-0000-0000000ac002', 'Wf Otto', NULL);
INSERT INTO orders.orders (id, order_number, customer_id, total_amount, assigned_rep_id) VALUES
  ('00000000-0000-0000-0000-0000000a0001', 'WF-1', '00000000-0000-0000-0000-0000000ac001', 150, '00000000-0000-0000-0000-0000000af001'),
  ('00000000-0000-0000-0000-0000000a0002', 'WF-2', '00000000-0000-0000-0000-0000000ac001', 50, '00000000-0000-0000-0000-0000000af001'),
  ('00000000-0000-0000-0000-0000000a0003', 'WF-3', '00000000-0000-0000-0000-0000000ac002', 300, NULL);
-- all three delivered, payment pending
SELECT orders.transition(o, s)
  FROM unnest('{00000000-0000-0000-0000-0000000a0001,00000000-0000-0000-0000-0000000a0002,00000000-0000-0000-0000-0000000a0003}'::uuid[]) o,
       unnest('{confirmed,being_prepared,ready_for_pickup,out_for_delivery,delivered}'::text[]) WITH ORDINALITY s(s, n)
 ORDER BY o, n;

-- 1. validation on write
SELECT is(pg_temp.err($$SELECT pg_temp.wf('x', 'cronjob', '{}', '[{"type":"create_task","config":{"assigned_to":"manager","title":"t"}}]')$$),
          'OR110', 'an unknown trigger type: OR110');
SELECT is(pg_temp.err($$SELECT pg_temp.wf('x', 'order_status', '{"conditions":{"colour":["red"]}}', '[{"type":"create_task","config":{"assigned_to":"manager","title":"t"}}]')$$),
          'OR110', 'an unknown condition: OR110');
SELECT is(pg_temp.err($$SELECT pg_temp.wf('x', 'order_status', '{"conditions":{"status":["teleported"]}}', '[{"type":"create_task","config":{"assigned_to":"manager","title":"t"}}]')$$),
          'OR110', 'a status no lifecycle has: OR110');
SELECT is(pg_temp.err($$SELECT pg_temp.wf('x', 'order_status', '{"conditions":{"lifecycle":"rocket"}}', '[{"type":"create_task","config":{"assigned_to":"manager","title":"t"}}]')$$),
          'OR110', 'an unknown lifecycle: OR110');
SELECT is(pg_temp.err($$SELECT pg_temp.wf('x', 'order_status', '{"conditions":{"payment_status":["paid"]}}', '[{"type":"create_task","config":{"assigned_to":"manager","title":"t"}}]')$$),
          'OR110', 'a payment status that does not exist: OR110');
SELECT is(pg_temp.err($$SELECT pg_temp.wf('x', 'order_status', '{"type":"manual","conditions":{"status":["delivered"]}}', '[{"type":"create_task","config":{"assigned_to":"manager","title":"t"}}]')$$),
          'OR110', 'a config whose type is not the trigger type: OR110');
SELECT is(pg_temp.err($$SELECT pg_temp.wf('x', 'manual', '{}', '[{"type":"launch_rocket","config":{}}]')$$),
          'OR111', 'an unknown step type: OR111');
SELECT is(pg_temp.err($$SELECT pg_temp.wf('x', 'manual', '{}', '[]')$$),
          'OR111', 'no steps: OR111');
SELECT is(pg_temp.err($$SELECT pg_temp.wf('x', 'manual', '{}', '[{"type":"send_notification","config":{"template":"t"}}]')$$),
          'OR111', 'a notification without a target: OR111');
SELECT is(pg_temp.err($$SELECT pg_temp.wf('x', 'manual', '{}', '[{"type":"send_notification","config":{"target":"customer","channel":"in_app","title":"t"}}]')$$),
          'OR111', 'an in-app notification to the customer: OR111');
SELECT is(pg_temp.err($$SELECT pg_temp.wf('x', 'manual', '{}', '[{"id":"a","type":"create_task","config":{"assigned_to":"manager","title":"t"}},{"id":"a","type":"create_task","config":{"assigned_to":"manager","title":"t"}}]')$$),
          'OR111', 'two steps with one id: OR111');
SELECT is(pg_temp.err($$SELECT pg_temp.wf('x', 'manual', '{}', '[{"type":"create_task","config":{"assigned_to":"manager","title":"t","due_days":2.5}}]')$$),
          'OR111', 'due_days that is not a whole number: OR111');
SELECT is(pg_temp.err($$SELECT pg_temp.wf('x', 'time_based', '{"schedule":"61 * * * *"}', '[{"type":"create_task","config":{"assigned_to":"manager","title":"t"}}]')$$),
          'OR112', 'a minute 61: OR112');
SELECT is(pg_temp.err($$SELECT pg_temp.wf('x', 'time_based', '{"schedule":"0 9 * *"}', '[{"type":"create_task","config":{"assigned_to":"manager","title":"t"}}]')$$),
          'OR112', 'four fields: OR112');
SELECT is(pg_temp.err($$SELECT pg_temp.wf('x', 'time_based', '{"schedule":"0 9 * * *","timezone":"Mars/Olympus"}', '[{"type":"create_task","config":{"assigned_to":"manager","title":"t"}}]')$$),
          'OR112', 'an unknown time zone: OR112');
-- (0.37.0) a schedule of more than 1000 characters (a 100 kB list of
-- minutes took minutes to read); every value of every field listed one by
-- one is a schedule
SELECT is(pg_temp.err(format($$SELECT pg_temp.wf('x', 'time_based', %L, '[{"type":"create_task","config":{"assigned_to":"manager","title":"t"}}]')$$,
                             jsonb_build_object('schedule', repeat('0,', 500) || '1 * * * *')::text)),
          'OR112', 'a schedule of 1009 characters: OR112');
SELECT is(orders.schedule_matches((SELECT string_agg(g::text, ',') FROM generate_series(0, 59) g) || ' '
                                  || (SELECT string_agg(g::text, ',') FROM generate_series(0, 23) g) || ' '
                                  || (SELECT string_agg(g::text, ',') FROM generate_series(1, 31) g) || ' '
                                  || (SELECT string_agg(g::text, ',') FROM generate_series(1, 12) g) || ' '
                                  || (SELECT string_agg(g::text, ',') FROM generate_series(0, 7) g), localtimestamp), true,
          '... every value of every field listed (about 360 characters) still is one');
SELECT is(orders.schedule_matches(repeat('*/1,', 20000) || '* * * * *', localtimestamp), NULL,
          '... an 80 kB one matches nothing, at once');
SELECT is(pg_temp.err($$SELECT pg_temp.wf('x', 'manual', '{}', '[{"type":"update_customer_tag","config":{"tag_id":"vip","condition":"total_orders >= ten"}}]')$$),
          'OR113', 'a condition with a word for a number: OR113');
SELECT is(pg_temp.err($$SELECT pg_temp.wf('x', 'manual', '{}', '[{"type":"update_customer_tag","config":{"tag_id":"vip","condition":"1 = 1; DROP TABLE orders.orders"}}]')$$),
          'OR113', 'SQL in a condition: OR113 (parsed, never run)');
SELECT is(pg_temp.err($$SELECT pg_temp.wf('x', 'manual', '{}', '[{"type":"update_customer_tag","config":{"tag_id":"vip","condition":"account_id = ''x''"}}]')$$),
          'OR113', 'a column a condition may not use: OR113');
SELECT is(pg_temp.err($$SELECT pg_temp.wf('x', 'manual', '{}', '[{"type":"send_notification","config":{"channel":"webhook","url":"ftp://x","template":"t"}}]')$$),
          'OR111', 'a webhook step with a url that is not http(s): OR111');
SELECT is(pg_temp.err($$SELECT pg_temp.wf('x', 'order_status', '{"conditions":{"min_order_value":100}}', '[{"type":"create_task","config":{"assigned_to":"manager","title":"t"}}]')$$),
          'OR110', 'order_status conditions without a status or payment_status list: OR110');
SELECT is(pg_temp.err($$SELECT pg_temp.wf('x', 'order_status', '{"conditions":{"payment_status":["collected", 5]}}', '[{"type":"create_task","config":{"assigned_to":"manager","title":"t"}}]')$$),
          'OR110', 'a payment status list with a number in it: OR110');
SELECT is(pg_temp.fingerprint(), 'none', 'nothing was stored by the refused writes');
SELECT isnt(pg_temp.wf('hook', 'manual', '{}', '[{"type":"send_notification","config":{"channel":"webhook","url":"https://hooks.example.com/orders?x=1","template":"t"}}]'),
          NULL, 'a webhook step with an https url is stored');
DELETE FROM orders.workflows;

-- 2. the fixed grammars
SELECT is(orders.schedule_matches('0 9 * * 1-5', '2026-12-07 09:00'), true, 'schedule 0 9 * * 1-5 matches Monday 09:00');
SELECT throws_ok($$SELECT orders.cron_field_values('*', -2147483648, 59)$$, '22023',
                 'orders.cron_field_values: the range -2147483648-59 is no cron field''s',
                 '(0.39.0) cron_field_values of a range no cron field has: 22023 (was XX000, an allocation too large)');
SELECT is(orders.schedule_matches('0 9 * * 1-5', '2026-12-05 09:00'), false, '... not Saturday 09:00');
SELECT is(orders.schedule_matches('*/15 * * * *', '2026-12-05 13:30'), true, '*/15 matches :30');
SELECT is(orders.schedule_matches('0 0 1 * 0', '2026-12-06 00:00'), true, 'a restricted day of month and day of week match either (Sunday the 6th)');
SELECT is(orders.schedule_matches('0 0 1 * 7', '2026-12-06 00:00'), true, 'day of week 7 is Sunday');
SELECT is(orders.schedule_matches('1/2 * * * *', '2026-12-05 13:31'), NULL,
          'n/step in the minutes is no schedule (0.28.0: pg_cron, which gets them, refuses it: the workflow never got its job)');
SELECT is(orders.schedule_matches('0 9 1/2 * *', '2026-01-03 09:00'), true,
          '... in the other fields it is n to the field''s end, as before (pg_cron never sees them)');
SELECT is(orders.schedule_matches('0 0 */2 * 1', '2026-12-14 00:00'), false,
          'a day of month starting with * and a day of week: both must match, as pg_cron reads them (Monday the 14th: an even day, no)');
SELECT is(orders.schedule_matches('0 0 */2 * 1', '2026-12-21 00:00'), true,
          '... Monday the 21st: yes (*/2 from 1 = odd days)');
SELECT is(orders.workflow_cron_schedule('5 9 * * *', 'America/New_York'), '5 * * * *',
          'pg_cron runs a New York workflow at its minutes of every hour');
SELECT is(orders.workflow_cron_schedule('5 9 * * *', 'Asia/Kolkata'), '* * * * *',
          '... and a Kolkata (UTC+5:30) one every minute');
SELECT is(orders.workflow_cron_schedule(E'0\t9 * * *', 'Europe/Berlin'), '0 * * * *',
          'a schedule written with a tab: pg_cron still gets its minute field alone');
SELECT is(orders.workflow_condition('city <> ''Cairo'''), '{"field": "city", "op": "!=", "value": "Cairo"}'::jsonb,
          'a condition is parsed into field, comparison and literal');

-- 3. order_status: the seed's VIP workflow
SELECT pg_temp.wf('VIP on delivery', 'order_status',
    '{"type":"order_status","conditions":{"status":["delivered"],"payment_status":["collected"],"min_order_value":100}}',
    '[{"id":"sms","type":"send_notification","config":{"target":"customer","template":"order_delivered","channel":"sms"},"order":3},
      {"id":"tag","type":"update_customer_tag","config":{"tag_id":"vip","label":"VIP Customer","color":"#FFD700","condition":"total_orders >= 2"},"order":1},
      {"id":"rep","type":"send_notification","config":{"target":"assigned_rep","title":"{{order_number}} delivered and collected"},"order":2},
      {"id":"task","type":"create_task","config":{"assigned_to":"manager","title":"Follow up {{customer_name}}","due_days":3.0},"order":4}]') AS vip \gset
SELECT is((SELECT created_by_user_id FROM orders.workflows WHERE id = :'vip'), NULL, 'a DBA''s workflow has no creator');
SELECT is((SELECT count(*)::int FROM orders.activity_logs WHERE entity_type = 'workflows' AND entity_id = :'vip' AND action = 'created'), 1,
          'the activity log has the new workflow');
SELECT is((SELECT count(*)::int FROM orders.workflow_executions), 0, 'delivered but not collected: no run');
UPDATE orders.orders SET payment_status = 'collected' WHERE id = '00000000-0000-0000-0000-0000000a0001';
SELECT is((SELECT string_agg(status || ' ' || (trigger_event ->> 'previous_payment_status'), ',') FROM orders.workflow_executions
            WHERE workflow_id = :'vip' AND order_id = '00000000-0000-0000-0000-0000000a0001'),
          'completed pending', 'collected: one run, completed, its event names the change');
SELECT is((SELECT string_agg(substr(id::text, 15, 1), ',') FROM orders.workflow_executions WHERE workflow_id = :'vip'), '8',
          '... its id an orders.new_id() (version 8: time-ordered, its partition in it), as every id column''s');
SELECT is((SELECT string_agg(s ->> 'step_id' || ':' || (s ->> 'status'), ' ' ORDER BY n) FROM orders.workflow_executions e,
                  jsonb_array_elements(e.steps_completed) WITH ORDINALITY x(s, n) WHERE e.workflow_id = :'vip'),
          'tag:completed rep:completed sms:completed task:completed', '... the steps ran in their "order"');
SELECT is((SELECT tags FROM orders.customers WHERE id = '00000000-0000-0000-0000-0000000ac001'),
          '[{"id": "vip", "color": "#FFD700", "label": "VIP Customer"}]'::jsonb, '... the customer is tagged VIP');
SELECT is((SELECT string_agg(title, ' | ') FROM orders.notifications WHERE user_id = '00000000-0000-0000-0000-0000000af001'),
          'WF-1 delivered and collected', '... the assigned rep has the notification, its title rendered');
-- (0.36.0) a lone {{ or }} stays text: only {{key}} is a placeholder
SELECT is(orders.workflow_render('Sale: 50% }} off {{order_number}}', '{"order_number": "WF-1"}'),
          'Sale: 50% }} off WF-1', 'a lone }} before a placeholder stays text');
SELECT is(orders.workflow_render('Use code {{ SAVE or call {{customer_name}}, {{ nope }}.', '{"customer_name": "Ann"}'),
          'Use code {{ SAVE or call Ann, .', 'a lone {{ stays text; an unknown key renders as nothing');
SELECT is((SELECT string_agg(kind || ' ' || (payload ->> 'to') || ' ' || (payload ->> 'template'), ' | ') FROM orders.outbox
            WHERE idempotency_key LIKE 'workflow:%'),
          'sms +2000001 order_delivered', '... the SMS to the customer is in the outbox');
SELECT is((SELECT count(*)::int FROM orders.notifications WHERE type = 'workflow' AND data ->> 'task' = 'true'
              AND title = 'Follow up Wf Vera' AND (data ->> 'due_date')::date = current_date + 3), 2,
          '... each manager has the task, due in 3 days (0.39.0: "due_days": 3.0 failed every run, 22P02)');
UPDATE orders.orders SET notes = 'n', payment_status = 'collected' WHERE id = '00000000-0000-0000-0000-0000000a0001';
SELECT is((SELECT count(*)::int FROM orders.workflow_executions WHERE workflow_id = :'vip'), 1,
          'another change of the order (payment set again, unchanged): no second run');
UPDATE orders.orders SET payment_status = 'collected' WHERE id = '00000000-0000-0000-0000-0000000a0002';
SELECT is((SELECT count(*)::int FROM orders.workflow_executions WHERE workflow_id = :'vip'), 1,
          'an order below min_order_value: no run');
SAVEPOINT raised;
UPDATE orders.orders SET payment_status = 'pending' WHERE id = '00000000-0000-0000-0000-0000000a0002';
UPDATE orders.orders SET total_amount = 120 WHERE id = '00000000-0000-0000-0000-0000000a0002';
SELECT is((SELECT count(*)::int FROM orders.workflow_executions WHERE workflow_id = :'vip'), 1,
          'its total raised to 120: no run (not a status or payment change)');
UPDATE orders.orders SET payment_status = 'collected' WHERE id = '00000000-0000-0000-0000-0000000a0002';
SELECT is((SELECT count(*)::int FROM orders.workflow_executions WHERE workflow_id = :'vip'), 2,
          '... then collected: a run (min_order_value is judged on the order at the change)');
ROLLBACK TO raised;
UPDATE orders.orders SET payment_status = 'collected' WHERE id = '00000000-0000-0000-0000-0000000a0003';
SELECT is((SELECT e.status || ' ' || (e.steps_completed -> 0 ->> 'status') || ' ' || (e.error_log -> 0 ->> 'step_id') || ' ' || (e.error_log -> 0 ->> 'error_code')
             FROM orders.workflow_executions e WHERE e.order_id = '00000000-0000-0000-0000-0000000a0003'),
          'failed skipped rep OR117', 'a customer below the tag condition (skipped) and an order without a rep: failed at that step, OR117 logged');
SELECT is((SELECT payment_status FROM orders.orders WHERE id = '00000000-0000-0000-0000-0000000a0003'), 'collected',
          '... the change that fired it stands');
SELECT is((SELECT count(*)::int FROM orders.outbox WHERE payload ->> 'customer_id' = '00000000-0000-0000-0000-0000000ac002'), 0,
          '... and the steps after the failing one did not run');
SAVEPOINT before_return;
SELECT orders.transition('00000000-0000-0000-0000-0000000a0001', 'returned');
UPDATE orders.orders SET payment_status = 'refunded' WHERE id = '00000000-0000-0000-0000-0000000a0001';
UPDATE orders.orders SET payment_status = 'collected' WHERE id = '00000000-0000-0000-0000-0000000a0001';
SELECT is((SELECT count(*)::int FROM orders.workflow_executions WHERE workflow_id = :'vip'), 2,
          'returned, refunded, collected again: returned is not in the conditions, no run');
ROLLBACK TO before_return;
SAVEPOINT before_rollback;
UPDATE orders.orders SET payment_status = 'pending' WHERE id = '00000000-0000-0000-0000-0000000a0001';
UPDATE orders.orders SET payment_status = 'collected' WHERE id = '00000000-0000-0000-0000-0000000a0001';
SELECT is((SELECT count(*)::int FROM orders.workflow_executions WHERE workflow_id = :'vip'), 3,
          'pending and collected again: a second change into the conditions, a second run');
ROLLBACK TO before_rollback;
SELECT is((SELECT count(*)::int FROM orders.workflow_executions WHERE workflow_id = :'vip'), 2,
          'a rolled back change takes its run with it');
SELECT is((SELECT count(*)::int FROM orders.outbox WHERE idempotency_key LIKE 'workflow:%'), 1, '... and its SMS');

-- (0.29.0) a step's condition reads the customer's statistics with the
-- change counted (the workflows fire after stats_customer_*): Nina's first
-- collected order makes her total_spent 80 — before, the step read 0
INSERT INTO orders.customers (id, full_name) VALUES ('00000000-0000-0000-0000-0000000ac005', 'Wf Nina');
INSERT INTO orders.orders (id, order_number, customer_id, total_amount) VALUES
  ('00000000-0000-0000-0000-0000000a0005', 'WF-5', '00000000-0000-0000-0000-0000000ac005', 80);
SELECT orders.transition('00000000-0000-0000-0000-0000000a0005', s)
  FROM unnest('{confirmed,being_prepared,ready_for_pickup,out_for_delivery,delivered}'::text[]) WITH ORDINALITY s(s, n) ORDER BY n;
SELECT pg_temp.wf('First spend', 'order_status', '{"conditions":{"status":["delivered"],"payment_status":["collected"]}}',
    '[{"id":"spender","type":"update_customer_tag","config":{"tag_id":"spender","condition":"total_spent >= 80"}}]') AS spend \gset
UPDATE orders.orders SET payment_status = 'collected' WHERE id = '00000000-0000-0000-0000-0000000a0005';
SELECT is((SELECT (e.steps_completed -> 0 ->> 'status') || ' ' || c.tags::text FROM orders.workflow_executions e
             JOIN orders.customers c ON c.id = '00000000-0000-0000-0000-0000000ac005' WHERE e.workflow_id = :'spend'),
          'completed [{"id": "spender", "label": "spender"}]', 'a step''s condition reads the statistics the change moved (total_spent 80, not 0)');

-- (0.29.0) an order comes to meet min_order_value when its items arrive
-- (a shop's or an API client's order is inserted before its items): the
-- workflow runs then, once
SELECT pg_temp.wf('Big new order', 'order_status', '{"conditions":{"status":["new"],"min_order_value":50}}',
    '[{"id":"t","type":"create_task","config":{"assigned_to":"manager","title":"Big order {{order_number}}: {{total_amount}}"}}]') AS big \gset
INSERT INTO orders.orders (id, order_number, customer_id) VALUES
  ('00000000-0000-0000-0000-0000000a0006', 'WF-6', '00000000-0000-0000-0000-0000000ac005');
INSERT INTO orders.order_items (order_id, name, quantity, unit_price) VALUES ('00000000-0000-0000-0000-0000000a0006', 'Lamp', 2, 20);
SELECT is((SELECT count(*)::int FROM orders.workflow_executions WHERE workflow_id = :'big'), 0,
          'a new order of 0, then 40 with its first item: below 50, no run');
INSERT INTO orders.order_items (order_id, name, quantity, unit_price) VALUES ('00000000-0000-0000-0000-0000000a0006', 'Shade', 1, 15);
SELECT is((SELECT string_agg(e.trigger_event ->> 'status' || ' ' || (e.trigger_event ->> 'previous_status') || ' ' || e.status, ',')
             FROM orders.workflow_executions e WHERE e.workflow_id = :'big'),
          'new new completed', '... its second item brings it to 55: one run');
SELECT is((SELECT string_agg(DISTINCT title, ',') FROM orders.notifications WHERE title LIKE 'Big order WF-6%'),
          'Big order WF-6: 55.00', '... which quotes the total with its items');
INSERT INTO orders.order_items (order_id, name, quantity, unit_price) VALUES ('00000000-0000-0000-0000-0000000a0006', 'Bulb', 1, 5);
UPDATE orders.order_items SET quantity = 3 WHERE order_id = '00000000-0000-0000-0000-0000000a0006' AND name = 'Lamp';
SELECT is((SELECT count(*)::int FROM orders.workflow_executions WHERE workflow_id = :'big'), 1,
          '... more items (60, then 80): still one run, it met the conditions already');
SAVEPOINT dropped_below;
DELETE FROM orders.order_items WHERE order_id = '00000000-0000-0000-0000-0000000a0006' AND name <> 'Lamp';
UPDATE orders.order_items SET quantity = 1 WHERE order_id = '00000000-0000-0000-0000-0000000a0006';
INSERT INTO orders.order_items (order_id, name, quantity, unit_price) VALUES ('00000000-0000-0000-0000-0000000a0006', 'Desk', 1, 90);
SELECT is((SELECT count(*)::int FROM orders.workflow_executions WHERE workflow_id = :'big'), 1,
          '... down to 20 and up to 110 again in the same statuses: no second run (0.43.0: a customer toggling an item of its cart fired it — every manager notified, an SMS sent — as often as it liked)');
ROLLBACK TO dropped_below;

-- 4. customer_tag, and loops
SELECT pg_temp.wf('Welcome VIP', 'customer_tag', '{"tag_id":"vip"}',
    '[{"type":"create_task","config":{"assigned_to":"customer_rep","title":"Call new VIP {{customer_name}}"}}]') AS welcome \gset
UPDATE orders.customers SET tags = '[{"id":"vip"}]' WHERE id = '00000000-0000-0000-0000-0000000ac002';
SELECT is((SELECT count(*)::int FROM orders.workflow_executions WHERE workflow_id = :'welcome' AND status = 'completed'
              AND customer_id = '00000000-0000-0000-0000-0000000ac002' AND trigger_event ->> 'tag_id' = 'vip'), 1,
          'a tag added: the customer_tag workflow runs for that customer');
UPDATE orders.customers SET tags = '[{"id":"vip"}, "other"]' WHERE id = '00000000-0000-0000-0000-0000000ac002';
UPDATE orders.customers SET tags = '[]' WHERE id = '00000000-0000-0000-0000-0000000ac002';
SELECT is((SELECT count(*)::int FROM orders.workflow_executions WHERE workflow_id = :'welcome'), 1,
          'another tag added, the tag removed: no run');
UPDATE orders.customers SET tags = '["vip"]' WHERE id = '00000000-0000-0000-0000-0000000ac002';
SELECT is((SELECT count(*)::int FROM orders.workflow_executions WHERE workflow_id = :'welcome'), 2,
          'added again (as a plain string): a run');
-- (0.37.0) a customer's name reaches its workflows' messages and data at
-- most 200 characters long (a 1.9 MB name went into every one of them)
-- (0.37.0 library) a customer_tag workflow without its tag (loaded with
-- the checks off) fires for no tag: its NULL crashed every tag change
SAVEPOINT no_tag;
SET LOCAL session_replication_role = replica;
INSERT INTO orders.workflows (name, trigger_type, trigger_config) VALUES ('no tag', 'customer_tag', '{}');
SET LOCAL session_replication_role = origin;
UPDATE orders.workflows SET name = name WHERE false;   -- its statement trigger: the workflows read again
SELECT lives_ok($$UPDATE orders.customers SET tags = '["vip", "tagless"]' WHERE id = '00000000-0000-0000-0000-0000000ac002'$$,
                'a tag change beside a customer_tag workflow without a tag: no crash');
SELECT is((SELECT count(*)::int FROM orders.workflow_executions e JOIN orders.workflows w ON w.id = e.workflow_id WHERE w.name = 'no tag'), 0,
          '... and that workflow does not run');
ROLLBACK TO no_tag;
SAVEPOINT long_name;
UPDATE orders.customers SET tags = '[]', full_name = repeat('N', 300) WHERE id = '00000000-0000-0000-0000-0000000ac002';
UPDATE orders.customers SET tags = '["vip"]' WHERE id = '00000000-0000-0000-0000-0000000ac002';
SELECT is((SELECT string_agg(DISTINCT length(data ->> 'customer_name')::text || ' ' || title, ',') FROM orders.notifications
            WHERE data ->> 'workflow_id' = :'welcome' AND data ->> 'customer_name' LIKE 'NNN%'),
          '200 Call new VIP ' || repeat('N', 187), 'a 300-character customer name: 200 of it in the task''s data, its title cut at 200');
ROLLBACK TO long_name;
SELECT pg_temp.wf('ping', 'customer_tag', '{"tag_id":"ping"}',
    '[{"type":"update_customer_tag","config":{"tag_id":"pong","action":"remove"}},{"type":"update_customer_tag","config":{"tag_id":"pong"}}]') AS ping \gset
SELECT pg_temp.wf('pong', 'customer_tag', '{"tag_id":"pong"}',
    '[{"type":"update_customer_tag","config":{"tag_id":"ping","action":"remove"}},{"type":"update_customer_tag","config":{"tag_id":"ping"}}]') AS pong \gset
SELECT is(pg_temp.err($$UPDATE orders.customers SET tags = '["ping"]' WHERE id = '00000000-0000-0000-0000-0000000ac002'$$), 'ok',
          'two workflows that re-add each other''s tag: the change goes through');
SELECT is((SELECT count(*)::int || ' ' || count(*) FILTER (WHERE error_log -> 0 ->> 'error_code' = 'OR118')
             FROM orders.workflow_executions WHERE workflow_id IN (:'ping', :'pong')), '9 1',
          '... the runs nest 8 deep, the 9th is failed with OR118');
UPDATE orders.workflows SET is_active = false WHERE id IN (:'ping', :'pong');
-- (0.39.0) a workflow that removes and re-adds its own tag twice fanned
-- out exponentially (512 runs 8 deep; three re-adds ran for minutes): one
-- top-level run starts at most 64 others, the rest are failed with OR118
SELECT pg_temp.wf('fan', 'customer_tag', '{"tag_id":"fan"}',
    '[{"id":"r1","type":"update_customer_tag","config":{"tag_id":"fan","action":"remove"}},{"id":"a1","type":"update_customer_tag","config":{"tag_id":"fan"}},
      {"id":"r2","type":"update_customer_tag","config":{"tag_id":"fan","action":"remove"}},{"id":"a2","type":"update_customer_tag","config":{"tag_id":"fan"}},
      {"id":"r3","type":"update_customer_tag","config":{"tag_id":"fan","action":"remove"}},{"id":"a3","type":"update_customer_tag","config":{"tag_id":"fan"}}]') AS fan \gset
SELECT is(pg_temp.err($$UPDATE orders.customers SET tags = '["fan"]' WHERE id = '00000000-0000-0000-0000-0000000ac002'$$), 'ok',
          'a workflow that re-adds its own tag three times: the change goes through');
SELECT is((SELECT count(*)::int FROM orders.workflow_executions WHERE workflow_id = :'fan'), 66,
          '... 66 runs stored: the first, the 64 it may start, and the one refused after them (was about 3^8)');
SELECT is((SELECT count(*)::int FROM orders.workflow_executions WHERE workflow_id = :'fan'
              AND (status = 'completed' OR error_log -> 0 ->> 'error_code' = 'OR118')), 66, '... each completed or failed with OR118 (too deep, or one too many)');
UPDATE orders.workflows SET is_active = false WHERE id = :'fan';
-- (0.39.0) the message's template at most 2,000 characters; a webhook to a
-- loopback, link-local or private address, or with credentials, and a step
-- id with ":" are refused (OR111)
SELECT is(ARRAY[pg_temp.err($$SELECT pg_temp.wf('x', 'manual', '{}', jsonb_build_array(jsonb_build_object('type', 'create_task',
                     'config', jsonb_build_object('assigned_to', 'admin', 'title', 't', 'message', repeat('{{customer_name}}', 200)))))$$),
                pg_temp.err($$SELECT pg_temp.wf('x', 'manual', '{}', '[{"type":"send_notification","config":{"channel":"webhook","url":"http://127.0.0.1:2379/v2/keys","title":"x"}}]')$$),
                pg_temp.err($$SELECT pg_temp.wf('x', 'manual', '{}', '[{"type":"send_notification","config":{"channel":"webhook","url":"https://user:pw@hooks.example.com/x","title":"x"}}]')$$),
                pg_temp.err($$SELECT pg_temp.wf('x', 'manual', '{}', '[{"type":"send_notification","config":{"channel":"webhook","url":"http://[::1]:8080/admin","title":"x"}}]')$$),
                pg_temp.err($$SELECT pg_temp.wf('x', 'manual', '{}', '[{"type":"send_notification","config":{"channel":"webhook","url":"http://10.0.0.7/","title":"x"}}]')$$),
                pg_temp.err($$SELECT pg_temp.wf('x', 'manual', '{}', '[{"id":"s:customer","type":"create_task","config":{"assigned_to":"admin","title":"x"}}]')$$),
                pg_temp.err($$SELECT pg_temp.wf('x', 'manual', '{}', '[{"type":"send_notification","config":{"channel":"webhook","url":"https://hooks.example.com:8443/x","title":"x"}}]')$$)],
          '{OR111,OR111,OR111,OR111,OR111,OR111,ok}',
          'a 3,400-character message, webhooks to 127.0.0.1, with credentials, to [::1] and 10.0.0.7, a step id with ":": OR111; a public host passes');
SELECT is((SELECT string_agg(u || '=' || pg_temp.err(format($$SELECT orders.check_webhook_url(%L, 's')$$, u)), ' ' ORDER BY n)
             FROM unnest(ARRAY['http://0177.0.0.1/', 'http://[0:0:0:0:0:ffff:a9fe:a9fe]/', 'http://localhost./', 'http://%31%32%37.0.0.1/',
                               'http://１２７.０.０.１/', 'http://198.18.0.1/', 'http://0x7f000001/', 'HTTPS://Hooks.Example.COM./x',
                               'https://xn--bcher-kva.example/x']) WITH ORDINALITY x (u, n)),
          'http://0177.0.0.1/=OR111 http://[0:0:0:0:0:ffff:a9fe:a9fe]/=OR111 http://localhost./=OR111 http://%31%32%37.0.0.1/=OR111 '
          || 'http://１２７.０.０.１/=OR111 http://198.18.0.1/=OR111 http://0x7f000001/=OR111 HTTPS://Hooks.Example.COM./x=ok '
          || 'https://xn--bcher-kva.example/x=ok',
          '(0.39.0) a webhook URL names a public host name: octal, IPv4-mapped, trailing-dot, percent-encoded, full-width and reserved addresses refused');
SELECT is((SELECT string_agg(u || '=' || pg_temp.err(format($$SELECT orders.check_webhook_url(%L, 's')$$, u)), ' ' ORDER BY n)
             FROM unnest(ARRAY['http://127.0.0.0x1/', 'http://169.254.169.0xfe/latest/', 'https://hooks.example.com\@169.254.169.254/latest/',
                               'https://hooks.example.com:/x', 'https://my_hook.example.com/x@y']) WITH ORDINALITY x (u, n)),
          'http://127.0.0.0x1/=OR111 http://169.254.169.0xfe/latest/=OR111 https://hooks.example.com\@169.254.169.254/latest/=OR111 '
          || 'https://hooks.example.com:/x=ok https://my_hook.example.com/x@y=ok',
          '... a last label in hex, a backslash before "@" refused; an empty port, an underscore, "@" in the path pass');
SELECT is(pg_temp.err($$SELECT pg_temp.wf('x', 'manual', '{}', '[{"type":"send_notification","config":{"channel":"webhook","url":"HTTPS://Hooks.Example.com/x","title":"x"}}]')$$),
          'ok', '... a scheme in capitals passes');
-- (0.39.0) activating a workflow checks its steps again: one written before
-- (here with the checks off) that posts to the metadata service stays off
SAVEPOINT legacy_url;
SET LOCAL session_replication_role = replica;
INSERT INTO orders.workflows (id, name, trigger_type, workflow_steps, is_active) VALUES
  ('00000000-0000-0000-0000-00000000a9f1', 'legacy hook', 'manual',
   '[{"id":"p","type":"send_notification","config":{"channel":"webhook","url":"http://169.254.169.254/latest/","title":"x"}}]', false);
SET LOCAL session_replication_role = origin;
SELECT is(pg_temp.err($$UPDATE orders.workflows SET is_active = true WHERE id = '00000000-0000-0000-0000-00000000a9f1'$$), 'OR111',
          '... and activating a workflow written before, posting to 169.254.169.254: OR111, it stays off');
ROLLBACK TO legacy_url;
SELECT is(pg_temp.err($$SELECT pg_temp.wf('x', 'manual', '{}', jsonb_build_array(jsonb_build_object('type', 'send_notification',
                     'config', jsonb_build_object('target', 'admin', 'template', repeat('t', 101)))))$$), 'OR111',
          '... a template over 100 characters: OR111 (it goes into every outbox payload)');
SELECT is((SELECT count(*)::int FROM orders.workflows
            WHERE workflow_steps::text ~ '127\.0\.0|\[::1\]|10\.0\.0\.7|user:pw|s:customer|169\.254|0177|%31|\\\\@'), 0,
          '... none of the refused workflows was stored');
SAVEPOINT long_message;
UPDATE orders.customers SET full_name = repeat('N', 250) WHERE id = '00000000-0000-0000-0000-0000000ac002';
SELECT pg_temp.wf('long message', 'manual', '{}', jsonb_build_array(jsonb_build_object('type', 'create_task',
    'config', jsonb_build_object('assigned_to', 'manager', 'title', 'long', 'message', repeat('{{customer_name}}', 100))))) AS longmsg \gset
SELECT orders.run_workflow(:'longmsg', NULL, '00000000-0000-0000-0000-0000000ac002');
SELECT is((SELECT string_agg(DISTINCT length(message)::text, ',') FROM orders.notifications WHERE title = 'long'), '2000',
          '... a message rendered longer (100 names of 200 characters) is cut at 2,000 characters');
ROLLBACK TO long_message;

-- 5. manual runs
SELECT pg_temp.wf('Check in', 'manual', '{}',
    '[{"type":"send_notification","config":{"target":"manager","title":"Check {{order_number}}","type":"alert"}}]') AS manual \gset
SELECT is((orders.run_workflow(:'manual', '00000000-0000-0000-0000-0000000a0002')).status, 'completed', 'run_workflow: the run''s row, completed');
SELECT is((SELECT count(*)::int FROM orders.notifications WHERE title = 'Check WF-2' AND type = 'alert'), 2, '... both managers were notified');
SELECT is((SELECT trigger_event ->> 'event' FROM orders.workflow_executions WHERE workflow_id = :'manual'), 'manual', '... its event is manual');
SELECT pg_temp.wf('Unnamed steps', 'manual', '{}',
    '[{"type":"send_notification","config":{"target":"manager","title":"second"},"order":2},
      {"type":"send_notification","config":{"target":"manager","title":"first"},"order":1}]') AS unnamed \gset
SELECT is((SELECT string_agg(s ->> 'step_id', ' ' ORDER BY n) FROM orders.run_workflow(:'unnamed') e,
                  jsonb_array_elements(e.steps_completed) WITH ORDINALITY x(s, n)), 'step-2 step-1',
          'steps without ids are named by their place in the list, as validated (run in their order)');
SELECT is(pg_temp.err($$SELECT orders.run_workflow('00000000-0000-0000-0000-000000000bad')$$), 'OR114', 'an unknown workflow: OR114');
SELECT is(pg_temp.err(format('SELECT orders.run_workflow(%L)', :'ping')), 'OR115', 'an inactive workflow: OR115');
SELECT is(pg_temp.err(format('SELECT orders.run_workflow(%L, %L)', :'manual', '00000000-0000-0000-0000-000000000bad')), 'OR006', 'an unknown order: OR006');
SELECT is(pg_temp.err(format('SELECT orders.run_workflow(%L, %L, %L)', :'manual', '00000000-0000-0000-0000-0000000a0002', '00000000-0000-0000-0000-0000000ac002')),
          'OR116', 'an order of another customer: OR116');
SELECT is(pg_temp.err($$SELECT orders.run_workflow(NULL)$$), '22004', 'no workflow: 22004');
SELECT is((SELECT count(*)::int FROM orders.workflow_executions WHERE workflow_id = :'manual'), 1, 'the refused runs wrote nothing');

-- 6. time-based: once per scheduled minute, in the workflow's time zone
SELECT pg_temp.wf('Every minute here', 'time_based',
    jsonb_build_object('schedule', to_char(now() AT TIME ZONE 'Asia/Tokyo', 'FMMI FMHH24') || ' * * *', 'timezone', 'Asia/Tokyo'),
    '[{"type":"send_notification","config":{"target":"manager","title":"Daily digest"}}]') AS timed \gset
SELECT pg_temp.wf('Not now', 'time_based',
    jsonb_build_object('schedule', to_char(now() AT TIME ZONE 'UTC' + interval '2 hours', 'FMMI FMHH24') || ' * * *'),
    '[{"type":"send_notification","config":{"target":"manager","title":"Later"}}]') AS later \gset
SELECT isnt(orders.run_scheduled_workflow(:'timed'), NULL, 'run_scheduled_workflow: the schedule matches this minute in Tokyo, a run');
SELECT is(orders.run_scheduled_workflow(:'timed'), NULL, '... called again in the same minute: nothing');
SELECT is(orders.run_scheduled_workflow(:'later'), NULL, 'a schedule two hours away: nothing');
SELECT is((SELECT count(*)::int FROM orders.workflow_executions WHERE workflow_id = :'timed'), 1, 'one run in all');
-- (0.43.0) once per local time when the schedule names its hours: the run
-- above, as if made an hour ago at the same local time (the hour a
-- fall-back repeats), keeps a second one from running
UPDATE orders.workflow_executions SET trigger_event = trigger_event
       || jsonb_build_object('scheduled_for', to_char(date_trunc('minute', now()) AT TIME ZONE 'UTC' - interval '1 hour', 'YYYY-MM-DD"T"HH24:MI"Z"'))
 WHERE workflow_id = :'timed';
SELECT is(orders.run_scheduled_workflow(:'timed'), NULL,
          '... a run at the same local time in another UTC minute (a repeated hour): nothing (it ran twice)');
UPDATE orders.workflows SET trigger_config = trigger_config
       || jsonb_build_object('schedule', to_char(now() AT TIME ZONE 'Asia/Tokyo', 'FMMI') || '  * * * *') WHERE id = :'timed';
SELECT isnt(orders.run_scheduled_workflow(:'timed'), NULL, '... but an hourly schedule runs in both real hours (its fields apart by two spaces too)');
SELECT is((SELECT count(*)::int FROM orders.workflow_executions WHERE workflow_id = :'timed'), 2, '... two runs now');
-- (0.43.0) a task's due date counts from today in the workflow's zone:
-- from UTC+14 and from UTC-12 at one instant, one of the two days differs
-- from the session's whatever the hour (it was the session's date)
SELECT pg_temp.wf('Task ' || z, 'time_based',
    jsonb_build_object('schedule', to_char(now() AT TIME ZONE z, 'FMMI FMHH24') || ' * * *', 'timezone', z),
    '[{"type":"create_task","config":{"assigned_to":"manager","title":"Due today","due_days":0}}]')
  FROM unnest(ARRAY['Pacific/Kiritimati', 'Etc/GMT+12']) z;
SELECT count(orders.run_scheduled_workflow(w.id)) FROM orders.workflows w WHERE w.name LIKE 'Task %';
SELECT is((SELECT string_agg(DISTINCT format('%s %s', w.trigger_config ->> 'timezone',
                                             ((n.data ->> 'due_date')::date = (now() AT TIME ZONE (w.trigger_config ->> 'timezone'))::date)::text), ', ')
             FROM orders.workflows w JOIN orders.notifications n ON n.data ->> 'workflow_id' = w.id::text
            WHERE w.name LIKE 'Task %'),
          'Etc/GMT+12 true, Pacific/Kiritimati true', 'create_task due_days 0: today in the workflow''s time zone, for UTC+14 and UTC-12');
DELETE FROM orders.workflows WHERE name LIKE 'Task %';
SELECT is(ARRAY[orders.schedule_due('30 2 * * *', 'Europe/Berlin', '2027-03-28 01:30Z'),
                orders.schedule_due('30 2 * * *', 'Europe/Berlin', '2027-03-28 00:30Z'),
                orders.schedule_due('30 2 * * *', 'Europe/Berlin', '2027-03-29 00:30:42Z'),
                orders.schedule_due('30 1 * * *', 'America/New_York', '2027-11-07 05:30Z'),
                orders.schedule_due('30 1 * * *', 'America/New_York', '2027-11-07 06:30Z'),
                orders.schedule_due('30 3 * * *', 'Europe/Berlin', '2027-03-28 01:30Z')],
          ARRAY['2027-03-28 02:30', NULL, '2027-03-29 02:30', '2027-11-07 01:30', '2027-11-07 01:30', '2027-03-28 03:30']::timestamp[],
          'schedule_due: a daily 02:30 on the day Berlin skips it runs at 03:30 (it did not run); a New York 01:30 matches both repeated hours (the run dedupes)');
SELECT is((SELECT string_agg(jobname, ' ' ORDER BY jobname) FROM orders.cron_jobs() WHERE jobname LIKE 'orders-workflow-%'),
          concat_ws(' ', 'orders-workflow-' || least(:'timed'::text, :'later'::text), 'orders-workflow-' || greatest(:'timed'::text, :'later'::text)),
          'cron_jobs() lists a job per active time-based workflow');
UPDATE orders.workflows SET is_active = false WHERE id = :'later';
SELECT is((SELECT command FROM orders.cron_jobs() WHERE jobname LIKE 'orders-workflow-%'),
          format('SELECT orders.run_scheduled_workflow(%L)', :'timed'), '... not for an inactive one');

-- 7. webhook workflows
INSERT INTO orders.webhooks (id, name, source, endpoint, field_mapping)
VALUES ('00000000-0000-0000-0000-0000000a00b1', 'Wf shop', 'shopify', 'wf-shop', orders.webhook_mapping('shopify'));
SELECT pg_temp.wf('New shop order', 'webhook', '{"webhook_id":"00000000-0000-0000-0000-0000000a00b1","event_types":["order.created"]}',
    '[{"type":"create_task","config":{"assigned_to":"customer_rep","title":"Confirm {{order_number}} by phone","due_days":1}}]') AS hooked \gset
SELECT is(pg_temp.err($$SELECT pg_temp.wf('x', 'webhook', '{"webhook_id":"00000000-0000-0000-0000-000000000bad"}', '[{"type":"create_task","config":{"assigned_to":"manager","title":"t"}}]')$$),
          'OR110', 'a webhook workflow naming no webhook: OR110');
SELECT is(orders.ingest_webhook('wf-shop', :'shop', NULL, 'wf-d1') ->> 'status', 'created', 'a shop order comes in ...');
SELECT is((SELECT e.status || ' ' || (e.trigger_event ->> 'event_type') || ' ' || (o.webhook_source)
             FROM orders.workflow_executions e JOIN orders.orders o ON o.id = e.order_id WHERE e.workflow_id = :'hooked'),
          'completed order.created wf-shop', '... the webhook workflow ran for the new order');
SELECT is(orders.ingest_webhook('wf-shop', :'shop', NULL, 'wf-d2') ->> 'status', 'duplicate', 'the same order again ...');
SELECT is((SELECT count(*)::int FROM orders.workflow_executions WHERE workflow_id = :'hooked'), 1, '... no second run');
-- (0.29.0) a shop's order is judged once, at the end of its ingest: the
-- order_status workflow "Big new order" (new, at least 50) ran again on
-- every update (its items replaced: 5.90, then 80) and for an order whose
-- total ended at 30 (74.10 with its items, before its discount)
SELECT is((SELECT count(*)::int FROM orders.workflow_executions e JOIN orders.orders o ON o.id = e.order_id
            WHERE e.workflow_id = :'big' AND o.webhook_source = 'wf-shop'), 1,
          'the shop order of 80 meets "Big new order": one run');
\set shop_upd1 `cat test/webhooks/shopify_order.json | sed -e 's/2025-03-14T10:21:07-04:00/2025-03-15T08:00:00-04:00/' -e 's/Please leave the parcel with the concierge./Ring twice./'`
\set shop_upd2 `cat test/webhooks/shopify_order.json | sed -e 's/2025-03-14T10:21:07-04:00/2025-03-15T09:00:00-04:00/' -e 's/Please leave the parcel with the concierge./Ring thrice./' -e 's/"quantity": 3/"quantity": 4/'`
SELECT is(orders.ingest_webhook('wf-shop', :'shop_upd1', NULL, 'wf-d3', 'orders/updated') ->> 'status', 'updated', 'two updates of it ...');
SELECT is(orders.ingest_webhook('wf-shop', :'shop_upd2', NULL, 'wf-d4', 'orders/updated') ->> 'status', 'updated', '... (its items changed in the second)');
SELECT is((SELECT count(*)::int FROM orders.workflow_executions e JOIN orders.orders o ON o.id = e.order_id
            WHERE e.workflow_id = :'big' AND o.webhook_source = 'wf-shop'), 1,
          '... still one run (its items replaced passed 5.90 on the way)');
\set shop_low `cat test/webhooks/shopify_order.json | sed -e 's/5678901234567/5678901234522/' -e 's/"total_price": "80.00"/"total_price": "30.00"/'`
SELECT is(orders.ingest_webhook('wf-shop', :'shop_low', NULL, 'wf-d5') ->> 'status', 'created', 'a discounted shop order ...');
SELECT is((SELECT o.total_amount::text || ' ' || count(e.id)
             FROM orders.orders o LEFT JOIN orders.workflow_executions e ON e.order_id = o.id AND e.workflow_id = :'big'
            WHERE o.external_id = '5678901234522' GROUP BY o.total_amount), '30.00 0',
          '... whose total ends at 30: no run (its items alone made 74.10)');

-- 8. rights
SELECT is(has_function_privilege('public', 'orders.cron_jobs()', 'EXECUTE'), false,
          'cron_jobs() (it reads the workflows) is not PUBLIC');
SELECT is((SELECT string_agg(privilege_type, ',' ORDER BY privilege_type) FROM information_schema.role_table_grants
            WHERE table_schema = 'orders' AND table_name = 'workflow_executions' AND grantee = 'PUBLIC'), NULL,
          'nobody but the owner and grant_api''s roles has rights on the runs');

-- 9. (0.38.0) a workflow is judged when written: a webhook deleted since
-- no longer refuses the workflow's other changes — deleting its author
-- (which deactivates it) failed with OR110
INSERT INTO orders.webhooks (id, name, source, endpoint) VALUES
  ('00000000-0000-0000-0000-0000000022f9', 'Gone', 'custom', 'gone-hook');
INSERT INTO orders.staff (id, full_name, role) VALUES ('00000000-0000-0000-0000-0000000022e9', 'Author of a hook', 'manager');
INSERT INTO orders.workflows (id, name, trigger_type, trigger_config, workflow_steps, created_by_user_id) VALUES
  ('00000000-0000-0000-0000-0000000022a9', 'On the gone hook', 'webhook', '{"webhook_id": "00000000-0000-0000-0000-0000000022f9"}',
   '[{"type": "create_task", "config": {"assigned_to": "admin", "title": "x"}}]', '00000000-0000-0000-0000-0000000022e9');
DELETE FROM orders.webhooks WHERE id = '00000000-0000-0000-0000-0000000022f9';
SELECT lives_ok($$DELETE FROM orders.staff WHERE id = '00000000-0000-0000-0000-0000000022e9'$$,
                'the author of a workflow naming a deleted webhook can be deleted');
SELECT is((SELECT is_active::text || ' ' || coalesce(created_by_user_id::text, 'no author') FROM orders.workflows
            WHERE id = '00000000-0000-0000-0000-0000000022a9'), 'false no author', '... and its workflow stops');

-- (0.41.0 library) a workflow's author is asked as its account (act_as
-- sets the owner-only label to it) also behind a login whose claims are
-- not believed: the first cut of "a role name is no account" took the
-- label for none, and every authored run failed (42501)
INSERT INTO orders.staff (id, account_id, full_name, role) VALUES
  ('00000000-0000-0000-0000-0000000022e8', '00000000-0000-0000-0000-0000000022d8', 'Author behind a back end', 'admin');
INSERT INTO orders.orders (id, order_number, customer_id) VALUES
  ('00000000-0000-0000-0000-0000000022b8', 'WF-BACKEND', '00000000-0000-0000-0000-0000000ac002');
INSERT INTO orders.workflows (id, name, trigger_type, trigger_config, workflow_steps, created_by_user_id) VALUES
  ('00000000-0000-0000-0000-0000000022a8', 'Confirmed behind a back end', 'order_status', '{"conditions": {"status": ["confirmed"]}}',
   '[{"type": "create_task", "config": {"assigned_to": "admin", "title": "check WF-BACKEND"}}]', '00000000-0000-0000-0000-0000000022e8');
CREATE ROLE t22_backend NOLOGIN BYPASSRLS;
GRANT USAGE ON SCHEMA orders TO t22_backend;
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA orders TO t22_backend;
SET LOCAL ROLE t22_backend;
SELECT orders.transition('00000000-0000-0000-0000-0000000022b8', 'confirmed') \g /dev/null
RESET ROLE;
SELECT is((SELECT string_agg(status, ',') FROM orders.workflow_executions WHERE workflow_id = '00000000-0000-0000-0000-0000000022a8'),
          'completed', 'an admin''s workflow runs from a change made behind a back end''s own login (its author asked through act_as)');

-- (0.45.0) retention: purge_notifications and purge_workflow_executions
CREATE TEMP TABLE kept AS SELECT (SELECT count(*) FROM orders.notifications) AS notes,
                                 (SELECT count(*) FROM orders.workflow_executions) AS runs;
SELECT is(pg_temp.err($$SELECT orders.purge_notifications(NULL)$$) || ' ' || pg_temp.err($$SELECT orders.purge_notifications('-1 day')$$)
          || ' ' || pg_temp.err($$SELECT orders.purge_workflow_executions(NULL)$$) || ' '
          || pg_temp.err($$SELECT orders.purge_workflow_executions('-1 mon +30 days 1 hour')$$) || ' '
          || ((SELECT count(*) FROM orders.notifications) = (SELECT notes FROM kept)
              AND (SELECT count(*) FROM orders.workflow_executions) = (SELECT runs FROM kept)),
          '22004 22023 22004 22023 true', 'the purges of notifications and workflow runs: NULL 22004, a cutoff after now 22023; nothing deleted');
SELECT ok((SELECT notes FROM kept) > 1 AND (SELECT runs FROM kept) > 1, '(there are notifications and runs to purge)');
UPDATE orders.notifications SET created_at = now() - interval '181 days'
 WHERE id <> (SELECT max(id::text)::uuid FROM orders.notifications);
SELECT is(orders.purge_notifications(), (SELECT notes FROM kept) - 1, 'purge_notifications() deletes those older than 180 days, read or not');
SELECT is((SELECT count(*) FROM orders.notifications), 1::bigint, '... and keeps the newer one');
UPDATE orders.workflow_executions SET started_at = now() - interval '91 days';
INSERT INTO orders.workflow_executions (workflow_id, status, trigger_event, started_at, completed_at)
SELECT w, 'completed', e::jsonb, now() - t::interval, now() - t::interval
  FROM (SELECT id AS w FROM orders.workflows LIMIT 1) x,
       (VALUES ('{"event": "schedule", "scheduled_for": "recent"}', '1 hour'),
               ('{"event": "schedule", "scheduled_for": "older"}', '3 days'),
               ('{"event": "manual"}', '1 hour')) v (e, t);
SELECT is(orders.purge_workflow_executions('10 minutes'), (SELECT runs FROM kept) + 2,
          'purge_workflow_executions(''10 minutes'') deletes older runs, but not a scheduled run of the last two days');
SELECT is((SELECT string_agg(trigger_event ->> 'scheduled_for', ',') FROM orders.workflow_executions), 'recent',
          '... which stays: a fall-back hour''s repeated local time must find it');
SELECT is(orders.purge_workflow_executions(), 0::bigint, 'purge_workflow_executions() keeps 90 days');
-- (0.45.0) a shop's retention goes into the job's call
INSERT INTO orders.purge_retention (purge, older_than) VALUES ('workflow_executions', '2 years');
SELECT is((SELECT command FROM orders.cron_jobs() WHERE jobname = 'orders-purge-workflow-executions'),
          'SELECT orders.purge_workflow_executions(''2 years''::interval)', 'purge_retention: cron_jobs() calls the purge with it');
SELECT is(pg_temp.err($$INSERT INTO orders.purge_retention VALUES ('outbox', '-1 day')$$) || ' '
          || pg_temp.err($$INSERT INTO orders.purge_retention VALUES ('orders', '1 day')$$) || ' '
          || (SELECT count(*) FROM orders.purge_retention),
          '22023 23514 1', 'a negative retention (22023) or one of no purge (23514): refused, nothing stored');
SELECT ok(NOT has_table_privilege('authenticated', 'orders.purge_retention', 'SELECT')
          AND NOT has_table_privilege('anon', 'orders.purge_retention', 'SELECT'), 'purge_retention is the owner''s');

SELECT * FROM finish();
ROLLBACK;
