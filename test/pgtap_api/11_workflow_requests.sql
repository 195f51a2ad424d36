-- Workflows as PostgREST serves them (issue 13): the admin (JWT sub 4444…)
-- defines them with POST /workflows (validated on write, the creator is
-- the caller whatever the request says) and runs one with POST
-- /rpc/run_workflow; a customer rep (5555…) reads workflows and their runs
-- but writes none and runs none; a rep's status change runs an
-- order_status workflow whose effects (the run, a tag on the customer, an
-- SMS in the outbox, notifications) the rep has no right to write: they
-- are written as the owner.  Clients and anon see nothing.  Every refusal
-- leaves everything as it was.
BEGIN;
SELECT plan(86);

SELECT ok(NOT (SELECT rolsuper FROM pg_roles WHERE rolname = session_user),
          'connected as a non-superuser login (' || session_user || ')');

-- pg_temp.as_sub(sub) — the request's role and claims, as PostgREST sets them
CREATE FUNCTION pg_temp.as_sub(sub text) RETURNS void LANGUAGE sql AS $$
    SELECT set_config('role', 'authenticated', true),
           set_config('request.jwt.claims', json_build_object('sub', sub, 'role', 'authenticated')::text, true);
$$;
-- pg_temp.affected(sql) — the rows a PATCH or DELETE affected
CREATE FUNCTION pg_temp.affected(sql text) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    EXECUTE sql;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
-- the row POST /rpc/run_workflow answered with
CREATE TEMP TABLE run (id uuid, status text, order_id uuid, steps integer);
GRANT ALL ON pg_temp.run TO PUBLIC;

---------------------------------------------------------------------------
-- request: the admin defines the workflows
---------------------------------------------------------------------------
SELECT pg_temp.as_sub('44444444-4444-4444-4444-444444444444');
-- POST /workflows (Prefer: return=representation), naming the rep as creator
WITH pgrst_source AS (
    INSERT INTO orders.workflows (id, name, trigger_type, trigger_config, workflow_steps, created_by_user_id)
    VALUES ('00000000-0000-0000-0000-000000001101', 'Confirmed COD orders', 'order_status',
            '{"conditions": {"status": ["confirmed"], "lifecycle": "cod"}}',
            '[{"id": "tag", "type": "update_customer_tag",
               "config": {"tag_id": "confirmed_buyer", "label": "Confirmed buyer", "condition": "total_orders >= 1"}},
              {"id": "rep", "type": "send_notification",
               "config": {"target": "assigned_rep", "title": "{{order_number}} confirmed for {{customer_name}}"}},
              {"id": "sms", "type": "send_notification",
               "config": {"target": "customer", "channel": "sms", "template": "order_confirmed",
                          "message": "Your order {{order_number}} is confirmed"}},
              {"id": "task", "type": "create_task",
               "config": {"assigned_to": "admin", "title": "Ship {{order_number}}", "due_days": 1}}]',
            '00000000-0000-0000-0000-0000000000e7')
    RETURNING *)
SELECT created_by_user_id AS created_by FROM pgrst_source \gset
SELECT is(:'created_by'::uuid, '00000000-0000-0000-0000-0000000000e8',
          'POST /workflows: created_by_user_id is the admin''s staff id, not the one the request named');
SELECT is((SELECT created_by_user_id FROM orders.workflows WHERE id = '00000000-0000-0000-0000-000000001101'),
          '00000000-0000-0000-0000-0000000000e8'::uuid, '... and so it is stored');
SELECT lives_ok($$INSERT INTO orders.workflows (id, name, trigger_type, workflow_steps) VALUES
                   ('00000000-0000-0000-0000-000000001102', 'Look again', 'manual',
                    '[{"id": "ping", "type": "send_notification",
                       "config": {"target": "assigned_rep", "title": "Look at {{order_number}} again"}}]')$$,
                'POST /workflows: a manual workflow that notifies the assigned rep');
SELECT is(pg_temp.affected($$UPDATE orders.workflows SET description = 'ship them',
                                    created_by_user_id = '00000000-0000-0000-0000-0000000000e7'
                              WHERE id = '00000000-0000-0000-0000-000000001101'$$), 1,
          'PATCH /workflows by the admin: one row ...');
SELECT is((SELECT description || ' ' || created_by_user_id FROM orders.workflows WHERE id = '00000000-0000-0000-0000-000000001101'),
          'ship them 00000000-0000-0000-0000-0000000000e8', '... the description changed, the creator did not');

-- invalid configs: refused with their code, nothing stored
SELECT throws_ok($$INSERT INTO orders.workflows (name, trigger_type, trigger_config, workflow_steps)
                   VALUES ('Bad', 'order_status', '{"conditions": {"status": ["confirmed"], "colour": "red"}}',
                           '[{"type": "create_task", "config": {"assigned_to": "admin", "title": "x"}}]')$$,
                 'OR110', 'workflow trigger config (order_status) conditions: unknown key "colour"',
                 'an unknown condition key: OR110');
SELECT throws_ok($$INSERT INTO orders.workflows (name, trigger_type, workflow_steps)
                   VALUES ('Bad', 'manual', '[{"id": "p", "type": "send_pigeon", "config": {}}]')$$,
                 'OR111', 'workflow step "p": unknown step type send_pigeon', 'an unknown step type: OR111');
SELECT throws_ok($$INSERT INTO orders.workflows (name, trigger_type, trigger_config, workflow_steps)
                   VALUES ('Bad', 'time_based', '{"schedule": "0 25 * * *"}',
                           '[{"type": "create_task", "config": {"assigned_to": "admin", "title": "x"}}]')$$,
                 'OR112', NULL, 'a schedule with hour 25: OR112');
SELECT throws_ok($$INSERT INTO orders.workflows (name, trigger_type, workflow_steps)
                   VALUES ('Bad', 'manual', '[{"type": "update_customer_tag",
                                               "config": {"tag_id": "x", "condition": "total_orders >= ten"}}]')$$,
                 'OR113', NULL, 'a condition that is not "field comparison literal": OR113');
SELECT throws_ok($$UPDATE orders.workflows SET workflow_steps = '[{"type": "update_customer_tag",
                                               "config": {"tag_id": "x", "condition": "city > ''Cairo''"}}]'
                    WHERE id = '00000000-0000-0000-0000-000000001102'$$,
                 'OR113', NULL, 'PATCH to a text field compared with >: OR113');
SELECT is((SELECT string_agg(name || ' ' || jsonb_array_length(workflow_steps), ', ' ORDER BY name) FROM orders.workflows),
          'Confirmed COD orders 4, Look again 1', '... nothing was stored or changed by the refused requests');

-- the fixtures of the run: Client Two gets a phone and an order worked by
-- the rep; the rep loses customers.edit (so it may not tag customers itself)
UPDATE orders.customers SET phone = '+20 100 000 0002' WHERE id = '00000000-0000-0000-0000-0000000000a2';
UPDATE orders.staff SET permissions = '{"orders": {"delete": true}, "customers": {"edit": false}}'
 WHERE id = '00000000-0000-0000-0000-0000000000e7';
INSERT INTO orders.orders (id, customer_id, lifecycle, assigned_rep_id) VALUES
  ('00000000-0000-0000-0000-0000000011b1', '00000000-0000-0000-0000-0000000000a2', 'cod', '00000000-0000-0000-0000-0000000000e7');
SELECT order_number AS ord FROM orders.orders WHERE id = '00000000-0000-0000-0000-0000000011b1' \gset
SELECT is((SELECT count(*)::int FROM orders.workflow_executions), 0, 'a new order that meets no conditions runs nothing');

---------------------------------------------------------------------------
-- request: the customer rep reads, but writes and runs nothing
---------------------------------------------------------------------------
SELECT pg_temp.as_sub('55555555-5555-5555-5555-555555555555');
SELECT is((SELECT string_agg(name, ', ' ORDER BY name) FROM orders.workflows), 'Confirmed COD orders, Look again',
          'GET /workflows as the rep: both');
SELECT throws_ok($$INSERT INTO orders.workflows (name, trigger_type, workflow_steps)
                   VALUES ('Mine', 'manual', '[{"type": "create_task", "config": {"assigned_to": "admin", "title": "x"}}]')$$,
                 '42501', NULL, 'POST /workflows as the rep: 42501 (row level security)');
SELECT is(pg_temp.affected($$UPDATE orders.workflows SET is_active = false, name = 'Off'$$), 0,
          'PATCH /workflows as the rep: 0 rows');
SELECT is(pg_temp.affected($$DELETE FROM orders.workflows$$), 0, 'DELETE /workflows as the rep: 0 rows');
SELECT is((SELECT string_agg(name || ' ' || is_active, ', ' ORDER BY name) FROM orders.workflows),
          'Confirmed COD orders true, Look again true', '... both workflows are there, unchanged');
SELECT throws_ok($$SELECT * FROM orders.run_workflow('00000000-0000-0000-0000-000000001102', '00000000-0000-0000-0000-0000000011b1')$$,
                 '42501', 'running workflows needs the workflows.edit permission',
                 'POST /rpc/run_workflow as the rep: 42501');
SELECT throws_ok($$INSERT INTO orders.workflow_executions (workflow_id, order_id, status)
                   VALUES ('00000000-0000-0000-0000-000000001102', '00000000-0000-0000-0000-0000000011b1', 'completed')$$,
                 '42501', NULL, 'POST /workflow_executions as the rep: 42501');
SELECT is((SELECT count(*)::int FROM orders.workflow_executions) || ' ' || (SELECT count(*) FROM orders.notifications),
          '0 2', '... no run, and the rep''s two notifications of the fixtures only');
SELECT is(pg_temp.affected($$UPDATE orders.customers SET tags = '["confirmed_buyer"]'
                              WHERE id = '00000000-0000-0000-0000-0000000000a2'$$), 0,
          'the rep may not tag Client Two itself (customers.edit off): 0 rows');

-- the rep confirms the order: the workflow runs as the owner
SELECT is((orders.transition('00000000-0000-0000-0000-0000000011b1', 'confirmed')).status, 'confirmed',
          'POST /rpc/transition as the rep: confirmed');
SELECT is((SELECT status || ' ' || (trigger_event ->> 'event') || ' ' || (trigger_event ->> 'previous_status') || ' ' ||
                  customer_id || ' ' || jsonb_array_length(error_log)
             FROM orders.workflow_executions
            WHERE workflow_id = '00000000-0000-0000-0000-000000001101' AND order_id = '00000000-0000-0000-0000-0000000011b1'),
          'completed order_status new 00000000-0000-0000-0000-0000000000a2 0',
          'GET /workflow_executions as the rep: the run, completed, for the order and its customer');
SELECT is((SELECT string_agg((s ->> 'step_id') || ':' || (s ->> 'status'), ' ' ORDER BY i)
             FROM orders.workflow_executions e, jsonb_array_elements(e.steps_completed) WITH ORDINALITY x(s, i)),
          'tag:completed rep:completed sms:completed task:completed', '... its four steps, each completed');
SELECT is((SELECT jsonb_path_query_first(tags, '$[*] ? (@.id == "confirmed_buyer")') ->> 'label'
             FROM orders.customers WHERE id = '00000000-0000-0000-0000-0000000000a2'),
          'Confirmed buyer', 'Client Two is tagged (written as the owner: the rep may not)');
SELECT is((SELECT title::text FROM orders.unread_notifications() WHERE data ->> 'order_id' = '00000000-0000-0000-0000-0000000011b1'),
          :'ord' || ' confirmed for Client Two', 'POST /rpc/unread_notifications: the rep''s notification of the run');
SELECT is((SELECT jsonb_array_length(s #> '{output,outbox_ids}') || ' ' || (s #>> '{output,channel}')
             FROM orders.workflow_executions e, jsonb_array_elements(e.steps_completed) s WHERE s ->> 'step_id' = 'sms'),
          '1 sms', 'the SMS went to the outbox (one row, written as the owner)');
SELECT throws_ok($$SELECT count(*) FROM orders.outbox$$, '42501', NULL, '... which the rep cannot read (42501)');
SELECT throws_ok($$INSERT INTO orders.workflow_executions (workflow_id, status)
                   VALUES ('00000000-0000-0000-0000-000000001101', 'completed')$$,
                 '42501', NULL, 'the rep still cannot forge a run (42501)');
SELECT throws_ok($$UPDATE orders.workflow_executions SET status = 'failed'$$, '42501', NULL,
                 '... nor change one (42501)');
SELECT throws_ok($$DELETE FROM orders.workflow_executions$$, '42501', NULL, '... nor delete one (42501)');
SELECT is((SELECT count(*)::int FROM orders.workflow_executions WHERE status = 'completed'), 1, '... the one run is as it was');
SELECT throws_ok($$INSERT INTO orders.notifications (user_id, type, title)
                   VALUES ('00000000-0000-0000-0000-0000000000e8', 'workflow', 'Ship nothing')$$,
                 '42501', NULL, 'the rep cannot write the admin''s task either (42501)');

---------------------------------------------------------------------------
-- request: the admin reads what the run left, and runs a workflow itself
---------------------------------------------------------------------------
SELECT pg_temp.as_sub('44444444-4444-4444-4444-444444444444');
SELECT is((SELECT title::text || ' due ' || (data ->> 'due_date') FROM orders.unread_notifications() WHERE data ? 'task'),
          'Ship ' || :'ord' || ' due ' || (current_date + 1), 'the admin''s task of the run');
SELECT is((SELECT count(*)::int FROM orders.notifications WHERE data ->> 'order_id' = '00000000-0000-0000-0000-0000000011b1'
             AND user_id <> '00000000-0000-0000-0000-0000000000e8'), 0, '... and none of the rep''s notifications');
SELECT throws_ok($$SELECT count(*) FROM orders.outbox$$, '42501', NULL, 'the outbox is no API role''s, not even the admin''s');
SELECT throws_ok($$SELECT * FROM orders.run_workflow('00000000-0000-0000-0000-00000000ffff')$$, 'OR114', NULL,
                 'POST /rpc/run_workflow of an unknown workflow: OR114');
SELECT throws_ok($$SELECT * FROM orders.run_workflow('00000000-0000-0000-0000-000000001102', '00000000-0000-0000-0000-0000000011b1',
                                                      '00000000-0000-0000-0000-0000000000a1')$$, 'OR116', NULL,
                 '... for an order of another customer than the one named: OR116');
SELECT lives_ok($$INSERT INTO pg_temp.run
                  SELECT id, status, order_id, jsonb_array_length(steps_completed)
                    FROM orders.run_workflow('00000000-0000-0000-0000-000000001102', '00000000-0000-0000-0000-0000000011b1')$$,
                'POST /rpc/run_workflow as the admin');
SELECT is((SELECT status || ' ' || order_id || ' ' || steps FROM pg_temp.run),
          'completed 00000000-0000-0000-0000-0000000011b1 1', '... answers the run: completed, for the order, one step');
SELECT is((SELECT count(*)::int FROM orders.workflow_executions
            WHERE workflow_id = '00000000-0000-0000-0000-000000001102' AND id = (SELECT id FROM pg_temp.run)), 1,
          '... the run it answered is stored, and only once');
SELECT is((SELECT count(*)::int FROM orders.notifications WHERE title LIKE 'Look at %'), 0,
          'the admin reads none of the notifications the run wrote for the rep');

SELECT pg_temp.as_sub('55555555-5555-5555-5555-555555555555');
SELECT is((SELECT count(*)::int FROM orders.unread_notifications() WHERE title = 'Look at ' || :'ord' || ' again'), 1,
          'the rep reads the notification of the admin''s run (POST /rpc/unread_notifications)');
SELECT pg_temp.as_sub('33333333-3333-3333-3333-333333333333');
SELECT is((SELECT count(*)::int FROM orders.notifications) || ' ' || (SELECT count(*) FROM orders.unread_notifications()), '0 0',
          'another staff member (the delivery agent) reads none of them');
SELECT is((SELECT count(*)::int FROM orders.workflows), 0, '... and no workflow (no workflows.view)');
-- given workflows.edit, the agent still runs workflows only for orders in
-- its scope (those assigned to it): the rep's order is unknown to it
SELECT pg_temp.as_sub('44444444-4444-4444-4444-444444444444');
UPDATE orders.staff SET permissions = '{"workflows": {"edit": true}}' WHERE account_id = '33333333-3333-3333-3333-333333333333';
SELECT pg_temp.as_sub('33333333-3333-3333-3333-333333333333');
SELECT throws_ok($$SELECT * FROM orders.run_workflow('00000000-0000-0000-0000-000000001102', '00000000-0000-0000-0000-0000000011b1')$$,
                 'OR006', NULL, 'the agent given workflows.edit runs no workflow for an order outside its scope (OR006, as if unknown)');
SELECT pg_temp.as_sub('44444444-4444-4444-4444-444444444444');
SELECT is((SELECT count(*)::int FROM orders.workflow_executions WHERE workflow_id = '00000000-0000-0000-0000-000000001102'), 1,
          '... and no run was written');

---------------------------------------------------------------------------
-- requests: a client, anon
---------------------------------------------------------------------------
SELECT pg_temp.as_sub('22222222-2222-2222-2222-222222222222');
SELECT is((SELECT count(*)::int FROM orders.workflows) || ' ' || (SELECT count(*) FROM orders.workflow_executions), '0 0',
          'Client Two sees no workflow and no run, not even its own order''s');
SELECT throws_ok($$INSERT INTO orders.workflows (name, trigger_type, workflow_steps)
                   VALUES ('Mine', 'manual', '[{"type": "create_task", "config": {"assigned_to": "admin", "title": "x"}}]')$$,
                 '42501', NULL, 'a client cannot define one (42501)');
SELECT throws_ok($$SELECT * FROM orders.run_workflow('00000000-0000-0000-0000-000000001102')$$, '42501', NULL,
                 '... nor run one (42501)');
SELECT throws_ok($$UPDATE orders.customers SET tags = '[{"id": "vip"}]' WHERE id = '00000000-0000-0000-0000-0000000000a2'$$,
                 'OR060', NULL, 'Client Two may not tag itself VIP (OR060: tags are for staff, they fire workflows as the owner)');
SELECT is((SELECT count(*)::int FROM orders.customers WHERE id = '00000000-0000-0000-0000-0000000000a2' AND tags @> '[{"id": "vip"}]'), 0,
          '... its tags are unchanged');
SELECT lives_ok($$UPDATE orders.customers SET city = 'Lyon' WHERE id = '00000000-0000-0000-0000-0000000000a2'$$,
                '... while it still edits the rest of its row');

SELECT set_config('role', 'anon', true);
SELECT set_config('request.jwt.claims', '{"role":"anon"}', true);
SELECT is((SELECT count(*)::int FROM information_schema.table_privileges
            WHERE grantee IN ('anon', 'PUBLIC') AND table_schema = 'orders'
              AND table_name IN ('workflows', 'workflow_executions', 'notifications', 'outbox')), 0,
          'anon holds no right on workflows, runs, notifications or the outbox');
SELECT throws_ok($$SELECT count(*) FROM orders.workflows$$, '42501', NULL, 'anon cannot read workflows');
SELECT throws_ok($$SELECT count(*) FROM orders.workflow_executions$$, '42501', NULL, '... nor runs');
SELECT throws_ok($$SELECT * FROM orders.run_workflow('00000000-0000-0000-0000-000000001102')$$, '42501', NULL,
                 '... nor run one (no EXECUTE)');

-- and, as the admin, everything the refusals left
SELECT pg_temp.as_sub('44444444-4444-4444-4444-444444444444');
SELECT is((SELECT string_agg(name || ' ' || is_active || ' ' || created_by_user_id, ', ' ORDER BY name) FROM orders.workflows),
          'Confirmed COD orders true 00000000-0000-0000-0000-0000000000e8, Look again true 00000000-0000-0000-0000-0000000000e8',
          'the two workflows, as the admin made them');
SELECT lives_ok($$INSERT INTO orders.workflows (name, trigger_type, workflow_steps)
                  VALUES ('Hook', 'manual', '[{"id": "hook", "type": "send_notification",
                          "config": {"channel": "webhook", "url": "https://hooks.example.com/orders", "title": "t"}}]')$$,
                'POST /workflows with a send_notification step on channel webhook');
-- a run of an order outside the rep's scope (cancelled, nobody's) is not
-- the rep's to read, though the rep has workflows.view
INSERT INTO orders.orders (id, customer_id, lifecycle) VALUES
  ('00000000-0000-0000-0000-0000000011b2', '00000000-0000-0000-0000-0000000000a2', 'cod');
SELECT is((orders.transition('00000000-0000-0000-0000-0000000011b2', 'cancelled')).status, 'cancelled', 'the admin cancels a new order');
SELECT lives_ok($$SELECT * FROM orders.run_workflow('00000000-0000-0000-0000-000000001102', '00000000-0000-0000-0000-0000000011b2')$$,
                '... and runs a workflow for it');
SELECT pg_temp.as_sub('55555555-5555-5555-5555-555555555555');
SELECT is((SELECT count(*)::int FROM orders.workflow_executions WHERE order_id = '00000000-0000-0000-0000-0000000011b2'), 0,
          'GET /workflow_executions as the rep: not the run of an order outside its scope');
SELECT pg_temp.as_sub('44444444-4444-4444-4444-444444444444');
SELECT is((SELECT count(*)::int FROM orders.workflow_executions WHERE order_id = '00000000-0000-0000-0000-0000000011b2'), 1,
          '... which the admin reads');

-- (0.29.0) run_workflow for a customer alone asks whether the caller reaches
-- it: an agent given workflows.edit tagged a customer it cannot see
INSERT INTO orders.staff (id, account_id, full_name, role, permissions) VALUES
  ('00000000-0000-0000-0000-000000000e12', 'aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', 'Agent Two', 'delivery_agent',
   '{"workflows": {"view": true, "edit": true}}');
SELECT pg_temp.as_sub('aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa');
SELECT is((SELECT count(*)::int FROM orders.customers WHERE id = '00000000-0000-0000-0000-0000000000a2'), 0,
          'the second agent does not read Client Two');
SELECT throws_ok($$SELECT * FROM orders.run_workflow('00000000-0000-0000-0000-000000001102', NULL, '00000000-0000-0000-0000-0000000000a2')$$,
                 'OR116', 'customer 00000000-0000-0000-0000-0000000000a2 does not exist',
                 '... nor runs a workflow for it (OR116, as for an unknown customer)');
SELECT pg_temp.as_sub('44444444-4444-4444-4444-444444444444');
SELECT is((SELECT count(*)::int FROM orders.workflow_executions WHERE customer_id = '00000000-0000-0000-0000-0000000000a2'
              AND trigger_event ->> 'actor' = 'aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa'), 0, '... no run');
-- (0.29.0) a caller who may not create workflows hears 42501, not what is
-- wrong with its config (nor whether a webhook id exists)
SELECT pg_temp.as_sub('11111111-1111-1111-1111-111111111111');
SELECT throws_ok($$INSERT INTO orders.workflows (name, trigger_type, trigger_config, workflow_steps)
                   VALUES ('x', 'webhook', '{"webhook_id": "00000000-0000-0000-0000-000000000001"}',
                           '[{"type": "create_task", "config": {"assigned_to": "admin", "title": "x"}}]')$$,
                 '42501', 'creating workflows needs the workflows.create permission',
                 'POST /workflows by a client with a config naming a webhook: 42501, not OR110');
-- (0.38.0) a workflow runs while its author may: active staff with
-- workflows.create or .edit who reaches the order.  Before, a deactivated
-- admin's workflow kept sending order data, and a rep's reached orders
-- outside the rep's scope.  An admin who changes a workflow becomes its
-- author; a deleted author's workflows stop.
SELECT pg_temp.as_sub('44444444-4444-4444-4444-444444444444');
INSERT INTO orders.staff (id, account_id, full_name, role, permissions) VALUES
  ('00000000-0000-0000-0000-000000000e21', 'abababab-abab-abab-abab-abababababab', 'Manager Author', 'manager',
   '{"workflows": {"view": true, "create": true, "edit": true}}'),
  ('00000000-0000-0000-0000-000000000e22', 'cdcdcdcd-cdcd-cdcd-cdcd-cdcdcdcdcdcd', 'Other Rep', 'customer_rep', '{}');
UPDATE orders.staff SET permissions = permissions || '{"workflows": {"view": true, "create": true}}'
 WHERE id = '00000000-0000-0000-0000-0000000000e7';
INSERT INTO orders.orders (id, customer_id, lifecycle, assigned_rep_id) VALUES
  ('00000000-0000-0000-0000-0000000011c1', '00000000-0000-0000-0000-0000000000a2', 'cod', NULL),
  ('00000000-0000-0000-0000-0000000011c2', '00000000-0000-0000-0000-0000000000a2', 'cod', '00000000-0000-0000-0000-000000000e22');
SELECT pg_temp.as_sub('abababab-abab-abab-abab-abababababab');
INSERT INTO orders.workflows (id, name, trigger_type, trigger_config, workflow_steps) VALUES
  ('00000000-0000-0000-0000-000000001121', 'Prepared', 'order_status', '{"conditions": {"status": ["being_prepared"]}}',
   '[{"id": "t", "type": "create_task", "config": {"assigned_to": "admin", "title": "Prepared {{order_number}}"}}]'),
  ('00000000-0000-0000-0000-000000001123', 'Manual of the manager', 'manual', '{}',
   '[{"id": "t", "type": "create_task", "config": {"assigned_to": "admin", "title": "manual"}}]');
SELECT pg_temp.as_sub('55555555-5555-5555-5555-555555555555');
INSERT INTO orders.workflows (id, name, trigger_type, trigger_config, workflow_steps) VALUES
  ('00000000-0000-0000-0000-000000001122', 'Ready', 'order_status', '{"conditions": {"status": ["ready_for_pickup"]}}',
   '[{"id": "t", "type": "create_task", "config": {"assigned_to": "admin", "title": "Ready {{order_number}}"}}]');
SELECT pg_temp.as_sub('44444444-4444-4444-4444-444444444444');
-- (0.39.0) demoted (its workflow permissions taken away): the workflow
-- stays active and refuses to run; deactivated, it would stop (below)
UPDATE orders.staff SET permissions = '{"workflows": {"view": true}}' WHERE id = '00000000-0000-0000-0000-000000000e21';
SELECT count(*) FROM unnest(ARRAY['confirmed', 'being_prepared']) s, LATERAL orders.transition('00000000-0000-0000-0000-0000000011c1', s) \g /dev/null
SELECT is((SELECT status || ' ' || (error_log -> 0 ->> 'error_code') || ' ' || jsonb_array_length(steps_completed)
             FROM orders.workflow_executions WHERE workflow_id = '00000000-0000-0000-0000-000000001121'),
          'failed 42501 0', 'a demoted author''s workflow does not run: a failed run, 42501, no step');
SELECT is((SELECT error_log -> 0 ->> 'error' FROM orders.workflow_executions WHERE workflow_id = '00000000-0000-0000-0000-000000001121'),
          'workflow "Prepared" did not run: its author is not active staff with workflows.create or workflows.edit',
          '... saying why');
SELECT is((SELECT count(*)::int FROM orders.notifications WHERE title LIKE 'Prepared %'), 0, '... and no task');
UPDATE orders.workflows SET name = 'Prepared (admin)' WHERE id = '00000000-0000-0000-0000-000000001121';
SELECT is((SELECT created_by_user_id FROM orders.workflows WHERE id = '00000000-0000-0000-0000-000000001121'),
          '00000000-0000-0000-0000-0000000000e8'::uuid, 'the admin who changes it becomes its author');
SELECT count(*) FROM unnest(ARRAY['ready_for_pickup']) s, LATERAL orders.transition('00000000-0000-0000-0000-0000000011c1', s) \g /dev/null
SELECT count(*) FROM unnest(ARRAY['confirmed', 'being_prepared', 'ready_for_pickup']) s,
       LATERAL orders.transition('00000000-0000-0000-0000-0000000011c2', s) \g /dev/null
SELECT is((SELECT status FROM orders.workflow_executions WHERE workflow_id = '00000000-0000-0000-0000-000000001121'
              AND order_id = '00000000-0000-0000-0000-0000000011c2'), 'completed', '... and it runs again, as the admin''s');
SELECT is((SELECT string_agg(e.status || coalesce(' ' || (e.error_log -> 0 ->> 'error'), ''), '; ' ORDER BY o.order_number)
             FROM orders.workflow_executions e JOIN orders.orders o ON o.id = e.order_id
            WHERE e.workflow_id = '00000000-0000-0000-0000-000000001122'),
          'completed; failed workflow "Ready" did not run: the order is outside its author''s reach',
          'a rep''s workflow runs for an order in the rep''s reach, not for one assigned to another rep');
SELECT is((SELECT count(*)::int FROM orders.notifications WHERE title LIKE 'Ready %'), 1, '... one task, for the first');
DELETE FROM orders.staff WHERE id = '00000000-0000-0000-0000-000000000e21';
SELECT is((SELECT is_active::text || ' ' || coalesce(created_by_user_id::text, 'no author') FROM orders.workflows
            WHERE id = '00000000-0000-0000-0000-000000001123'), 'false no author',
          'a deleted author''s workflows stop (not a DBA''s workflow without an author, which would run)');
-- (0.39.0) whoever changes what a workflow does becomes its author, also
-- when stopping it: a rep's PATCH that stopped the admin's workflow and
-- rewrote its steps kept the admin as author (a DBA's reactivation would
-- then run the rep's steps with the admin's reach)
SELECT pg_temp.as_sub('44444444-4444-4444-4444-444444444444');
UPDATE orders.staff SET permissions = permissions || '{"workflows": {"view": true, "create": true, "edit": true}}'
 WHERE id = '00000000-0000-0000-0000-0000000000e7';
SELECT pg_temp.as_sub('55555555-5555-5555-5555-555555555555');
SELECT is(pg_temp.affected($$UPDATE orders.workflows SET is_active = false,
                                 workflow_steps = '[{"id": "t", "type": "create_task", "config": {"assigned_to": "admin", "title": "Rewritten"}}]'
                              WHERE id = '00000000-0000-0000-0000-000000001121'$$), 1, '(0.39.0) a rep stops the admin''s workflow and rewrites its steps');
SELECT is((SELECT is_active::text || ' ' || created_by_user_id FROM orders.workflows WHERE id = '00000000-0000-0000-0000-000000001121'),
          'false 00000000-0000-0000-0000-0000000000e7', '... and is its author now');
-- (0.39.0) tag steps are written by staff with customers.edit only (they
-- run as the owner): the agent, given workflows.create, tagged customers
-- it may not edit
SELECT pg_temp.as_sub('44444444-4444-4444-4444-444444444444');
UPDATE orders.staff SET permissions = permissions || '{"workflows": {"view": true, "create": true, "edit": true}}'
 WHERE id = '00000000-0000-0000-0000-0000000000e9';
SELECT pg_temp.as_sub('33333333-3333-3333-3333-333333333333');
SELECT throws_ok($$INSERT INTO orders.workflows (name, trigger_type, workflow_steps) VALUES ('unblock', 'manual',
                     '[{"id": "t", "type": "update_customer_tag", "config": {"tag_id": "blocked", "action": "remove"}}]')$$,
                 '42501', 'workflow "unblock": steps that change customers'' tags need the customers.edit permission',
                 '(0.39.0) an agent with workflows.create writes no tag step (42501)');
SELECT is((SELECT count(*)::int FROM orders.workflows WHERE name = 'unblock'), 0, '... nothing stored');
SELECT pg_temp.as_sub('44444444-4444-4444-4444-444444444444');
INSERT INTO orders.workflows (id, name, trigger_type, workflow_steps, is_active) VALUES
  ('00000000-0000-0000-0000-000000001124', 'Tagging', 'manual',
   '[{"id": "t", "type": "update_customer_tag", "config": {"tag_id": "seen"}}]', false);
SELECT pg_temp.as_sub('33333333-3333-3333-3333-333333333333');
SELECT throws_ok($$UPDATE orders.workflows SET is_active = true WHERE id = '00000000-0000-0000-0000-000000001124'$$,
                 '42501', 'workflow "Tagging": steps that change customers'' tags need the customers.edit permission',
                 '... nor takes over the admin''s tag workflow by activating it (it would be its author)');
SELECT is((SELECT is_active::text || ' ' || created_by_user_id FROM orders.workflows WHERE id = '00000000-0000-0000-0000-000000001124'),
          'false 00000000-0000-0000-0000-0000000000e8', '... the workflow stays off, the admin''s');
-- (0.39.0) a workflow changed through the API always has an author: an
-- admin deleting its own staff row in the statement that activates one
-- left it active without one (a DBA's, run unchecked)
SELECT pg_temp.as_sub('44444444-4444-4444-4444-444444444444');
INSERT INTO orders.staff (id, account_id, full_name, role) VALUES
  ('00000000-0000-0000-0000-000000000e23', 'efefefef-efef-efef-efef-efefefefefef', 'Leaving Admin', 'admin');
SELECT pg_temp.as_sub('efefefef-efef-efef-efef-efefefefefef');
SELECT throws_ok($$WITH d AS (DELETE FROM orders.staff WHERE id = '00000000-0000-0000-0000-000000000e23' RETURNING id)
                   UPDATE orders.workflows w SET is_active = true FROM d WHERE w.id = '00000000-0000-0000-0000-000000001124'$$,
                 '42501', 'workflow "Tagging": only active staff change workflows through the API',
                 '... and an admin deleting itself while activating a workflow leaves none without an author (42501)');
SELECT pg_temp.as_sub('44444444-4444-4444-4444-444444444444');
SELECT is((SELECT is_active::text || ' ' || created_by_user_id FROM orders.workflows WHERE id = '00000000-0000-0000-0000-000000001124'),
          'false 00000000-0000-0000-0000-0000000000e8', '... nothing changed');
SELECT pg_temp.as_sub('44444444-4444-4444-4444-444444444444');
-- (0.39.0) a deactivated author's workflows stop too (they failed every
-- run, a time-based one on every tick); an admin activating one again
-- becomes its author
UPDATE orders.staff SET is_active = false WHERE id = '00000000-0000-0000-0000-0000000000e7';
SELECT is((SELECT is_active::text || ' ' || created_by_user_id FROM orders.workflows WHERE id = '00000000-0000-0000-0000-000000001122'),
          'false 00000000-0000-0000-0000-0000000000e7', '(0.39.0) a deactivated author''s workflow is set inactive');
UPDATE orders.workflows SET is_active = true WHERE id = '00000000-0000-0000-0000-000000001122';
SELECT is((SELECT is_active::text || ' ' || created_by_user_id FROM orders.workflows WHERE id = '00000000-0000-0000-0000-000000001122'),
          'true 00000000-0000-0000-0000-0000000000e8', '... an admin who activates it again becomes its author');
SELECT * FROM finish();
ROLLBACK;
