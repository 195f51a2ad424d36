-- What API roles write is bounded, so that no caller can store a value that
-- breaks others' reads, pg_dump or writes: JSON (0.41.0 agency data and
-- orders' metadata; 0.42.0 every other column) by orders.jsonb_within —
-- its binary size and numbers that print in a few characters ({"n":
-- 1e131071} is 16 bytes sent and prints as 131 kB; a few kB of such numbers
-- printed as 1 GB and every reader of the row, and pg_dump, ran out of
-- memory) — and text by its length (0.40.0 the indexed columns; 0.42.0
-- every other: a customer's 180 MB name failed every staff page listing
-- it, and pg_dump).
BEGIN;
SELECT plan(116);

-- rows of the tables that have none in the fixtures
INSERT INTO orders.product_variants (id, product_id, sku, name, stock_quantity)
SELECT '00000000-0000-0000-0000-0000000028a1', id, 'JB-1', 'JB', 1 FROM orders.products LIMIT 1;
INSERT INTO orders.deliveries (order_id, agent_id)
SELECT o.id, s.id FROM orders.orders o, orders.staff s WHERE s.role = 'delivery_agent' ORDER BY o.id LIMIT 1;
INSERT INTO orders.orders (id, customer_id, lifecycle)
SELECT '00000000-0000-0000-0000-0000000028b1', id, 'review' FROM orders.customers ORDER BY id LIMIT 1;
INSERT INTO orders.order_groups (id, order_id, client_id, link_count)
SELECT '00000000-0000-0000-0000-0000000028c1', '00000000-0000-0000-0000-0000000028b1', id, 1
  FROM orders.customers ORDER BY id LIMIT 1;
INSERT INTO orders.order_site_selections (order_group_id, domain)
VALUES ('00000000-0000-0000-0000-0000000028c1', 'jb.example.com');
CREATE TEMP TABLE token AS SELECT orders.create_share_token('00000000-0000-0000-0000-0000000028b1');
INSERT INTO orders.workflows (name, trigger_type, trigger_config, workflow_steps)
VALUES ('jb', 'order_status', '{"conditions": {"status": ["confirmed"]}}', '[{"id": "t", "type": "create_task", "config": {"assigned_to": "manager", "title": "t"}}]');
INSERT INTO orders.order_requirements (order_id, requirement_type, requirement_value)
VALUES ('00000000-0000-0000-0000-0000000028b1', 'niche', '"garden"');
INSERT INTO orders.expenses (category, amount) VALUES ('fuel', 1);
INSERT INTO orders.financial_transactions (type, amount) VALUES ('refund', 1);
INSERT INTO orders.order_notes (order_id, body) SELECT id, 'n' FROM orders.orders ORDER BY id LIMIT 1;
INSERT INTO orders.lifecycles (name, initial_status) VALUES ('bounds', 'a');
INSERT INTO orders.lifecycle_states (lifecycle, status, category, position) VALUES
  ('bounds', 'a', 'open', 1), ('bounds', 'b', 'fulfilled', 2);
INSERT INTO orders.lifecycle_transitions (lifecycle, from_status, to_status) VALUES ('bounds', 'a', 'b');

-- pg_temp.rows_of(tab) — how many rows orders.<tab> has; pg_temp.fingerprint(tab, col) — its column's values, hashed
CREATE FUNCTION pg_temp.rows_of(tab text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM orders.%I', tab) INTO n;
    RETURN n;
END
$$;
CREATE FUNCTION pg_temp.fingerprint(tab text, col text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE v text;
BEGIN
    EXECUTE format('SELECT count(*) || '':'' || coalesce(md5(string_agg(t.%I::text, '','' ORDER BY t::text)), ''-'') FROM orders.%I t', col, tab) INTO v;
    RETURN v;
END
$$;
-- pg_temp.refusal(statement) — the SQLSTATE the statement fails with
-- (its changes undone), or 'ok' (its changes kept)
CREATE FUNCTION pg_temp.refusal(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;
-- the columns an API role may write (insert or update), by kind
CREATE TEMP VIEW writable AS
SELECT c.relname AS tab, a.attname AS col, t.typcategory AS kind, t.typelem AS elem,
       coalesce(nullif(t.typbasetype, 0), a.atttypid) AS base
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_type t ON t.oid = a.atttypid
 WHERE c.relnamespace = 'orders'::regnamespace AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
   AND (has_column_privilege('authenticated', c.oid, a.attnum, 'INSERT')
        OR has_column_privilege('authenticated', c.oid, a.attnum, 'UPDATE'));
-- columns bounded otherwise than by their own CHECK, each with its reason
CREATE TEMP TABLE bounded_elsewhere (tab text, col text, why text);
INSERT INTO bounded_elsewhere VALUES
  ('orders', 'lifecycle', 'a foreign key to lifecycles.name (63 characters)'),
  ('orders', 'status', 'status_guard: a status of its lifecycle (63 characters)'),
  ('orders', 'notes', 'the library: 10,000 characters (22001)'),
  ('orders', 'order_number', 'order_columns_guard: 64 characters'),
  ('orders', 'reviewed_by', 'written by status_guard only (refuse_column)'),
  ('orders', 'stock_held', 'written by the extension only (status_guard)'),
  ('lifecycle_transitions', 'gate', 'a foreign key to lifecycle_gates.name, which API roles do not write'),
  ('lifecycle_transitions', 'stamp_column', 'check_stamp_column: a column of orders.orders (63 bytes)'),
  ('workflows', 'trigger_config', 'check_workflow validates it first; its bound is tried by name below'),
  ('workflows', 'trigger_type', 'a list of values (check_workflow validates it first, OR110)'),
  ('workflows', 'workflow_steps', 'check_workflow validates it first; its bound is tried by name below');
SELECT is((SELECT count(*)::int FROM (SELECT DISTINCT tab FROM writable) w
            WHERE pg_temp.rows_of(w.tab) = 0),
          0, 'every table an API role writes has a row to try the bounds on');

-- every JSON column an API role writes, bounded: tried, not read from the
-- catalog (a CHECK that names jsonb_within may not bound: "OR true", a
-- bound of 2 GB)
SELECT is((SELECT string_agg(format('%s.%s=%s', tab, col, r), ', ' ORDER BY tab, col)
             FROM (SELECT w.tab, w.col,
                          pg_temp.refusal(format('UPDATE orders.%I SET %I = CASE jsonb_typeof(%I) WHEN ''array'' THEN ''[1e131071]''::jsonb
                                                                              ELSE ''{"n": 1e131071}''::jsonb END
                                                   WHERE ctid = (SELECT max(ctid) FROM orders.%I)', w.tab, w.col, w.col, w.tab)) AS r
                     FROM writable w WHERE w.base = 'jsonb'::regtype
                      AND NOT EXISTS (SELECT FROM bounded_elsewhere e WHERE (e.tab, e.col) = (w.tab, w.col))) x
            WHERE r <> '23514'),
          NULL, 'every jsonb column an API role may write refuses a number that prints as 131 kB (23514)');
SELECT is((SELECT string_agg(format('%s.%s=%s', tab, col, r), ', ' ORDER BY tab, col)
             FROM (SELECT w.tab, w.col,
                          pg_temp.refusal(format('UPDATE orders.%I SET %I = CASE jsonb_typeof(%I) WHEN ''array'' THEN jsonb_build_array(repeat(''j'', 1100000))
                                                                              ELSE jsonb_build_object(''j'', repeat(''j'', 1100000)) END
                                                   WHERE ctid = (SELECT max(ctid) FROM orders.%I)', w.tab, w.col, w.col, w.tab)) AS r
                     FROM writable w WHERE w.base = 'jsonb'::regtype
                      AND NOT EXISTS (SELECT FROM bounded_elsewhere e WHERE (e.tab, e.col) = (w.tab, w.col))) x
            WHERE r <> '23514'),
          NULL, '... and a document of 1.1 MB, past every bound (23514)');

-- the numbers it takes: below 1e20, at most 40 decimals (0.42.0 library;
-- 20 refused a JavaScript or Python double as small as 1/70000)
SELECT is((SELECT string_agg(format('%s=%s', v, orders.jsonb_within(jsonb_build_array(v::jsonb), 1000)), ' ' ORDER BY n)
             FROM unnest(ARRAY['1.4285714285714285e-05', '0.000014285714285714286', '99999999999999999999.5', '1e-40',
                               '-1e-40', '1e-41', '1e20', '-1e20', '1.7976931348623157e308']) WITH ORDINALITY u (v, n)),
          '1.4285714285714285e-05=t 0.000014285714285714286=t 99999999999999999999.5=t 1e-40=t -1e-40=t '
          '1e-41=f 1e20=f -1e20=f 1.7976931348623157e308=f',
          'jsonb_within takes numbers below 1e20 with at most 40 decimals: doubles down to 1e-23 whole');

-- each bound: a wide number, one byte too many, and within
CREATE TEMP TABLE bound (tab text, col text, con text, max_bytes int, shape text);
INSERT INTO bound VALUES
  ('customers', 'tags', 'customers_tags_check', 65536, 'array'),
  ('staff', 'permissions', 'staff_permissions_check', 65536, 'object'),
  ('products', 'images', 'products_images_check', 65536, 'array'),
  ('product_variants', 'attributes', 'product_variants_attributes_check', 65536, 'object'),
  ('orders', 'delivery_proof', 'orders_delivery_proof_check', 1048576, 'object'),
  ('order_items', 'snapshot', 'order_items_snapshot_check', 262144, 'object'),
  ('leads', 'metadata', 'leads_metadata_check', 1048576, 'object'),
  ('deliveries', 'route_data', 'deliveries_route_data_check', 1048576, 'array'),
  ('deliveries', 'proof_of_delivery', 'deliveries_proof_of_delivery_check', 1048576, 'object'),
  ('order_site_selections', 'metrics', 'order_site_selections_metrics_check', 65536, 'object'),
  ('order_site_selections', 'internal_metrics', 'order_site_selections_internal_metrics_check', 65536, 'object'),
  ('order_share_tokens', 'metadata', 'order_share_tokens_metadata_check', 4096, 'object');

-- pg_temp.sized(shape, bytes) — a document of that shape whose binary size
-- (as jsonb_within measures it: with its 4-byte header, uncompressed) is "bytes"
CREATE FUNCTION pg_temp.sized(shape text, bytes int) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    d jsonb;
    pad int := 0;
BEGIN
    LOOP
        d := CASE shape WHEN 'array' THEN jsonb_build_array(repeat('x', pad)) ELSE jsonb_build_object('x', repeat('x', pad)) END;
        EXIT WHEN pg_column_size(d) >= bytes;
        pad := pad + bytes - pg_column_size(d);
    END LOOP;
    RETURN d;
END
$$;
SELECT is((SELECT count(*)::int FROM bound WHERE pg_column_size(pg_temp.sized(shape, max_bytes)) = max_bytes
                                              AND NOT orders.jsonb_within(pg_temp.sized(shape, max_bytes + 1), max_bytes)
                                              AND orders.jsonb_within(pg_temp.sized(shape, max_bytes), max_bytes)),
          12, 'the documents measure as meant: a byte past each bound over it, the bound itself within');

CREATE TEMP TABLE before AS
SELECT b.tab, b.col, pg_temp.fingerprint(b.tab, b.col) AS fingerprint FROM bound b;

SELECT throws_ok(format('UPDATE orders.%I SET %I = %L', tab, col,
                        CASE shape WHEN 'array' THEN '[1e131071]' ELSE '{"n": 1e131071}' END),
                 '23514', format('new row for relation "%s" violates check constraint "%s"', tab, con),
                 format('%s.%s: no number past 1e20 (1e131071 prints as 131 kB)', tab, col))
  FROM bound ORDER BY tab, col;
SELECT throws_ok(format('UPDATE orders.%I SET %I = %L', tab, col, pg_temp.sized(shape, max_bytes + 1)),
                 '23514', format('new row for relation "%s" violates check constraint "%s"', tab, con),
                 format('%s.%s: at most %s bytes', tab, col, max_bytes))
  FROM bound ORDER BY tab, col;
SELECT is((SELECT count(*)::int FROM bound b JOIN before f USING (tab, col)
            WHERE f.fingerprint = pg_temp.fingerprint(b.tab, b.col) AND f.fingerprint NOT LIKE '0:%'),
          12, 'the refusals changed nothing');
SELECT lives_ok(format('UPDATE orders.%I SET %I = %L', tab, col,
                       CASE WHEN max_bytes <= 4096 THEN pg_temp.sized(shape, max_bytes)
                            ELSE CASE shape WHEN 'array' THEN '[1.5, "a"]' ELSE '{"n": 99999999999999999999.12345678901234567890}' END::jsonb END),
                format('%s.%s: a document within its bound is stored', tab, col))
  FROM bound WHERE tab IN ('leads', 'order_share_tokens', 'deliveries', 'customers') ORDER BY tab, col;
-- workflows: their checks let no stray key through; a wide number in a known one
SELECT throws_ok($$UPDATE orders.workflows SET trigger_config = '{"conditions": {"status": ["confirmed"], "min_order_value": 1e131071}}'$$,
                 '23514', 'new row for relation "workflows" violates check constraint "workflows_trigger_config_check"',
                 'workflows.trigger_config: no number past 1e20');
SELECT throws_ok($$UPDATE orders.workflows
                      SET workflow_steps = '[{"id": "t", "type": "create_task", "order": 1e131071, "config": {"assigned_to": "manager", "title": "t"}}]'$$,
                 '23514', 'new row for relation "workflows" violates check constraint "workflows_workflow_steps_check"',
                 'workflows.workflow_steps: no number past 1e20 (a step''s "order")');
SELECT is((SELECT trigger_config::text || ' ' || (workflow_steps -> 0 ? 'order') FROM orders.workflows WHERE name = 'jb'),
          '{"conditions": {"status": ["confirmed"]}} false', '... and the workflow is as it was');

-- every text column an API role may write, bounded: tried with a million
-- characters (a CHECK that names length may not bound), refused by its
-- CHECK (23514) or the library (22001); and every array, with 100,001
-- elements of a value it takes
SELECT is((SELECT string_agg(format('%s.%s=%s', tab, col, r), ', ' ORDER BY tab, col)
             FROM (SELECT w.tab, w.col, pg_temp.refusal(format('UPDATE orders.%I SET %I = repeat(''a'', 1000001) WHERE ctid = (SELECT max(ctid) FROM orders.%I)',
                                                                       w.tab, w.col, w.tab)) AS r
                     FROM writable w WHERE w.base = 'text'::regtype
                      AND NOT EXISTS (SELECT FROM bounded_elsewhere e WHERE (e.tab, e.col) = (w.tab, w.col))) x
            WHERE r NOT IN ('23514', '22001')),
          NULL, 'every text column an API role may write refuses a million characters (23514 or 22001)');
SELECT is((SELECT string_agg(format('%s.%s=%s', tab, col, r), ', ' ORDER BY tab, col)
             FROM (SELECT w.tab, w.col,
                          pg_temp.refusal(format('UPDATE orders.%I SET %I = array_fill(%L::%s, ARRAY[100001])
                                                  WHERE ctid = (SELECT max(ctid) FROM orders.%I)', w.tab, w.col,
                                                 CASE w.elem WHEN 'name'::regtype THEN current_user::text ELSE 'admin' END,
                                                 format_type(w.elem, NULL), w.tab)) AS r
                     FROM writable w WHERE w.kind = 'A'
                      AND NOT EXISTS (SELECT FROM bounded_elsewhere e WHERE (e.tab, e.col) = (w.tab, w.col))) x
            WHERE r <> '23514'),
          NULL, 'every array column an API role may write refuses 100,001 elements (23514)');

-- every text, JSON or array column of the schema without a CHECK of its own
-- is one of these, each for its reason: what API roles write reaches a
-- column only through a bound (the sweeps above find the columns they may
-- write; these are written by the extension or its owner — a function
-- granted to API roles that writes a column, as set_site_internal_notes
-- did, needs the column's own bound)
CREATE TEMP TABLE unchecked (tab text, col text, why text);
INSERT INTO unchecked VALUES
  ('activity_logs', 'actor', 'the extension: a subject (255 bytes) or role name'),
  ('activity_logs', 'details', 'the extension: each value cut to 4,096 bytes, a deleted order''s history to 1,000 rows'),
  ('activity_logs', 'entity_id', 'the extension: a row''s id'),
  ('activity_logs', 'entity_type', 'the extension: a table''s name'),
  ('activity_logs', 'ip_address', 'the extension: cut to 64 characters'),
  ('deleted_changes', 'changed_by', 'the extension: an actor (255 bytes)'),
  ('deleted_changes', 'new_status', 'the extension: a status (63 characters)'),
  ('deleted_changes', 'old_status', 'the extension: a status (63 characters)'),
  ('lifecycle_gates', 'actor_column', 'the owner (API roles read gates only); a column of orders.orders'),
  ('lifecycle_gates', 'description', 'the owner (API roles read gates only)'),
  ('lifecycle_gates', 'stamp_column', 'the owner (API roles read gates only); a column of orders.orders'),
  ('lifecycle_transitions', 'gate', 'a foreign key to lifecycle_gates.name'),
  ('lifecycle_transitions', 'stamp_column', 'check_stamp_column: a column of orders.orders'),
  ('notifications', 'data', 'the extension (workflow steps: bounded fields)'),
  ('notifications', 'message', 'the extension: a workflow step''s message (2,000 characters)'),
  ('notifications', 'title', 'the extension: a workflow step''s title (200 characters)'),
  ('order_history', 'changed_by', 'the extension: an actor (255 bytes)'),
  ('order_history', 'idempotency_key', 'the library: 255 characters (22001)'),
  ('order_history', 'new_status', 'the extension: a status (63 characters)'),
  ('order_history', 'notes', 'the library: 10,000 characters (22001)'),
  ('order_history', 'old_status', 'the extension: a status (63 characters)'),
  ('order_share_tokens', 'created_by', 'create_share_token: the actor (255 bytes)'),
  ('order_site_selections', 'reviewed_by', 'the review functions: the actor (255 bytes)'),
  ('orders', 'lifecycle', 'a foreign key to lifecycles.name (63 characters)'),
  ('orders', 'notes', 'the library: 10,000 characters (22001)'),
  ('orders', 'reviewed_by', 'status_guard: the gate''s actor (255 bytes)'),
  ('orders', 'status', 'status_guard: a status of its lifecycle (63 characters)'),
  ('orders', 'stock_held', 'the extension: the order''s stock items'),
  ('outbox', 'last_error', 'the outbox functions (owner only)'),
  ('outbox', 'locked_by', 'the outbox functions (owner only)'),
  ('outbox', 'payload', 'enqueue_outbox (owner only) and the extension'),
  ('slot_reservations', 'holder', 'the slot functions: the actor (255 bytes)'),
  ('stock_movements', 'moved_by', 'move_stock: the actor (255 bytes)'),
  ('webhook_logs', 'delivery_id', 'the ingest: cut to 255 characters'),
  ('webhook_logs', 'error_message', 'the ingest: cut to 500 characters'),
  ('webhook_logs', 'request_payload', 'the ingest: the webhook''s max_payload_bytes, numbers refused past 1e20 (OR094)'),
  ('webhooks', 'field_mapping', 'the owner (API roles read webhooks only)'),
  ('webhooks', 'name', 'the owner (API roles read webhooks only)'),
  ('workflow_executions', 'error_log', 'the extension: each error cut to 1,000 characters'),
  ('workflow_executions', 'steps_completed', 'the extension: a run''s steps (at most 50)'),
  ('workflow_executions', 'trigger_event', 'the extension: the order or event that started the run');
SELECT is((SELECT string_agg(format('%s.%s', c.relname, a.attname), ', ' ORDER BY c.relname, a.attname)
             FROM pg_attribute a
             JOIN pg_class c ON c.oid = a.attrelid
             JOIN pg_type t ON t.oid = a.atttypid
            WHERE c.relnamespace = 'orders'::regnamespace AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
              AND ('text'::regtype IN (t.oid, t.typbasetype) OR 'jsonb'::regtype IN (t.oid, t.typbasetype) OR t.typcategory = 'A')
              AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'c' AND a.attnum = ANY (k.conkey))
              AND NOT EXISTS (SELECT FROM unchecked u WHERE (u.tab, u.col) = (c.relname, a.attname))),
          NULL, 'every text, JSON and array column without a bound of its own is written only by the extension or its owner (each listed with its reason)');

-- each text bound: one character too many refused, the bound itself stored
CREATE TEMP TABLE text_bound (tab text, col text, max_chars int);
INSERT INTO text_bound VALUES
  ('customers', 'address', 2000),
  ('customers', 'city', 255),
  ('customers', 'full_name', 500),
  ('customers', 'notes', 10000),
  ('customers', 'postal_code', 64),
  ('deliveries', 'customer_feedback', 10000),
  ('deliveries', 'photo_url', 2048),
  ('deliveries', 'signature_url', 2048),
  ('expenses', 'description', 10000),
  ('expenses', 'receipt_url', 2048),
  ('financial_transactions', 'notes', 10000),
  ('leads', 'company_name', 500),
  ('leads', 'contact_name', 500),
  ('leads', 'email', 320),
  ('leads', 'industry', 255),
  ('leads', 'job_title', 255),
  ('leads', 'location', 500),
  ('leads', 'notes', 10000),
  ('leads', 'phone', 64),
  ('leads', 'source', 255),
  ('leads', 'website', 2048),
  ('lifecycle_states', 'description', 10000),
  ('lifecycle_transitions', 'description', 10000),
  ('lifecycles', 'description', 10000),
  ('order_items', 'name', 500),
  ('order_notes', 'body', 10000),
  ('orders', 'customer_notes', 10000),
  ('orders', 'delivery_address', 2000),
  ('orders', 'name', 500),
  ('orders', 'return_reason', 10000),
  ('product_variants', 'name', 500),
  ('products', 'description', 20000),
  ('staff', 'full_name', 500),
  ('staff', 'phone', 64),
  ('workflows', 'description', 10000),
  ('workflows', 'name', 200);
SELECT is((SELECT count(*)::int FROM text_bound b
            WHERE pg_temp.rows_of(b.tab) = 0),
          0, 'every bounded table has a row to try');
CREATE TEMP TABLE text_before AS SELECT b.tab, b.col, pg_temp.fingerprint(b.tab, b.col) AS fingerprint FROM text_bound b;
SELECT throws_ok(format('UPDATE orders.%I SET %I = repeat(''x'', %s)', tab, col, max_chars + 1),
                 '23514', format('new row for relation "%s" violates check constraint "%s_%s_check"', tab, tab, col),
                 format('%s.%s: at most %s characters', tab, col, max_chars))
  FROM text_bound ORDER BY tab, col;
SELECT is((SELECT count(*)::int FROM text_bound b JOIN text_before f USING (tab, col)
            WHERE f.fingerprint = pg_temp.fingerprint(b.tab, b.col) AND f.fingerprint NOT LIKE '0:%'),
          (SELECT count(*)::int FROM text_bound), '... the refusals changed nothing');
SELECT lives_ok(format('UPDATE orders.%I SET %I = repeat(''x'', %s)', tab, col, max_chars),
                format('%s.%s: %s characters are stored', tab, col, max_chars))
  FROM text_bound ORDER BY tab, col;
SELECT throws_ok($$INSERT INTO orders.lifecycles (name, initial_status) VALUES ('bounds_two', repeat('s', 64))$$,
                 '23514', 'new row for relation "lifecycles" violates check constraint "lifecycles_initial_status_check"',
                 'lifecycles.initial_status: a status name, at most 63 characters');

SELECT * FROM finish();
ROLLBACK;
