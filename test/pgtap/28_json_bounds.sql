-- JSON the API writes is bounded (0.41.0 agency data and orders' metadata;
-- 0.42.0 every other column): each jsonb column an API role may insert or
-- update has a CHECK by orders.jsonb_within — its binary size and numbers
-- that print in a few characters.  {"n": 1e131071} is 16 bytes sent and
-- prints as 131 kB; a few kB of such numbers printed as 1 GB and every
-- reader of the row, and pg_dump, ran out of memory.
BEGIN;
SELECT plan(35);

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

-- every JSON column an API role writes, bounded
SELECT is((SELECT string_agg(format('%s.%s', c.relname, a.attname), ', ' ORDER BY c.relname, a.attname)
             FROM pg_attribute a
             JOIN pg_class c ON c.oid = a.attrelid
             JOIN pg_type t ON t.oid = a.atttypid
            WHERE c.relnamespace = 'orders'::regnamespace AND c.relkind IN ('r', 'p') AND a.attnum > 0
              AND NOT a.attisdropped AND 'jsonb'::regtype IN (t.oid, t.typbasetype)
              AND (has_column_privilege('authenticated', c.oid, a.attnum, 'INSERT')
                   OR has_column_privilege('authenticated', c.oid, a.attnum, 'UPDATE'))
              AND (c.relname, a.attname) <> ('orders', 'stock_held')   -- the extension's (status_guard refuses others)
              AND NOT EXISTS (SELECT 1 FROM pg_constraint k
                               WHERE k.conrelid = c.oid AND k.contype = 'c' AND a.attnum = ANY (k.conkey)
                                 AND pg_get_constraintdef(k.oid) ~ ('orders\.jsonb_within\(\(?' || a.attname || '\)?(::jsonb)?, '))),
          NULL, 'every jsonb column an API role may write has a CHECK by orders.jsonb_within');

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
SELECT b.tab, b.col, (xpath('/row/v/text()', query_to_xml(format('SELECT md5(string_agg(%I::text, '','' ORDER BY id)) AS v FROM orders.%I',
                                                                b.col, b.tab), false, false, '')))[1]::text AS fingerprint
  FROM bound b;

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
            WHERE f.fingerprint IS NOT DISTINCT FROM
                  (xpath('/row/v/text()', query_to_xml(format('SELECT md5(string_agg(%I::text, '','' ORDER BY id)) AS v FROM orders.%I',
                                                              b.col, b.tab), false, false, '')))[1]::text),
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

SELECT * FROM finish();
ROLLBACK;
