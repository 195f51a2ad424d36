-- orders 0.41.0 -> 0.42.0
--  * Bounds on every other JSON column an API role writes (23514, HTTP
--    400): its binary size, uncompressed, and numbers below 1e20 of at most
--    20 decimals (orders.jsonb_within, as 0.41.0 did for agency orders and
--    orders' metadata) — customers' tags, staff's permissions, products'
--    images, variants' attributes, sites' metrics and internal metrics
--    64 kB; trigger_config of workflows 64 kB, their steps and order items'
--    snapshots 256 kB; leads' metadata, orders' delivery_proof, deliveries'
--    route_data and proof_of_delivery 1 MB; share links' metadata 4096
--    bytes (create_share_token's own bound, now also a constraint).  Staff
--    could store {"n": 1e131071} in a lead's metadata (8 bytes sent): it
--    printed as 131 kB, and a few kB of such numbers as 1 GB — every
--    reader of the row and pg_dump ran out of memory.  Rows already larger
--    stop the update (23514, naming each column and how many rows), and so
--    do webhook logs keeping a payload with such a number (kept before
--    0.41.0 refused them at the ingest; a log has no constraint, the
--    ingest is its bound).

\echo Use "ALTER EXTENSION orders UPDATE TO '0.42.0'" to load this file. \quit

DO $upgrade$
DECLARE
    bound record;
    n bigint;
    large_rows text := '';
BEGIN
    FOR bound IN
        SELECT * FROM (VALUES
            ('customers', 'tags', 65536), ('deliveries', 'proof_of_delivery', 1048576),
            ('deliveries', 'route_data', 1048576), ('leads', 'metadata', 1048576),
            ('order_items', 'snapshot', 262144), ('order_share_tokens', 'metadata', 4096),
            ('order_site_selections', 'internal_metrics', 65536), ('order_site_selections', 'metrics', 65536),
            ('orders', 'delivery_proof', 1048576), ('product_variants', 'attributes', 65536),
            ('products', 'images', 65536), ('staff', 'permissions', 65536),
            ('webhook_logs', 'request_payload', 2147483647),
            ('workflows', 'trigger_config', 65536), ('workflows', 'workflow_steps', 262144)) b (tab, col, max_bytes)
    LOOP
        EXECUTE format('SELECT count(*) FROM orders.%I WHERE NOT orders.jsonb_within(%I, $1)', bound.tab, bound.col)
            INTO n USING bound.max_bytes;
        IF n > 0 THEN
            large_rows := large_rows || format('%sorders.%s.%s: %s rows %s',
                                               CASE WHEN large_rows = '' THEN '' ELSE '; ' END, bound.tab, bound.col, n,
                                               CASE WHEN bound.max_bytes = 2147483647
                                                    THEN 'with numbers past 1e20 or 20 decimals'
                                                    ELSE format('larger than %s or with numbers past 1e20 or 20 decimals',
                                                                CASE WHEN bound.max_bytes >= 1048576
                                                                     THEN bound.max_bytes / 1048576 || ' MB'
                                                                     WHEN bound.max_bytes >= 65536
                                                                     THEN bound.max_bytes / 1024 || ' kB'
                                                                     ELSE bound.max_bytes || ' bytes' END) END);
        END IF;
    END LOOP;
    IF large_rows <> '' THEN
        RAISE EXCEPTION 'orders 0.42.0 bounds the JSON API roles write, and rows are larger'
            USING ERRCODE = '23514', DETAIL = large_rows || '.',
                  HINT = 'Shrink them (e.g. SELECT id FROM orders.leads WHERE NOT orders.jsonb_within(metadata, 1048576)), '
                         'delete such webhook logs, then ALTER EXTENSION orders UPDATE again.';
    END IF;
END
$upgrade$;

ALTER TABLE orders.customers
    DROP CONSTRAINT customers_tags_check,
    ADD CONSTRAINT customers_tags_check CHECK (jsonb_typeof(tags) = 'array' AND orders.jsonb_within(tags, 65536));
ALTER TABLE orders.staff
    DROP CONSTRAINT staff_permissions_check,
    ADD CONSTRAINT staff_permissions_check
        CHECK (jsonb_typeof(permissions) = 'object' AND orders.jsonb_within(permissions, 65536));
ALTER TABLE orders.products
    ADD CONSTRAINT products_images_check CHECK (orders.jsonb_within(images, 65536));
ALTER TABLE orders.product_variants
    ADD CONSTRAINT product_variants_attributes_check CHECK (orders.jsonb_within(attributes, 65536));
ALTER TABLE orders.orders
    ADD CONSTRAINT orders_delivery_proof_check CHECK (orders.jsonb_within(delivery_proof, 1048576));
ALTER TABLE orders.order_items
    DROP CONSTRAINT order_items_snapshot_check,
    ADD CONSTRAINT order_items_snapshot_check
        CHECK (jsonb_typeof(snapshot) = 'object' AND orders.jsonb_within(snapshot, 262144));
ALTER TABLE orders.leads
    DROP CONSTRAINT leads_metadata_check,
    ADD CONSTRAINT leads_metadata_check
        CHECK (jsonb_typeof(metadata) = 'object' AND orders.jsonb_within(metadata, 1048576));
ALTER TABLE orders.deliveries
    ADD CONSTRAINT deliveries_route_data_check CHECK (orders.jsonb_within(route_data, 1048576)),
    ADD CONSTRAINT deliveries_proof_of_delivery_check CHECK (orders.jsonb_within(proof_of_delivery, 1048576));
ALTER TABLE orders.order_site_selections
    DROP CONSTRAINT order_site_selections_metrics_check,
    ADD CONSTRAINT order_site_selections_metrics_check
        CHECK (jsonb_typeof(metrics) = 'object' AND orders.jsonb_within(metrics, 65536)),
    DROP CONSTRAINT order_site_selections_internal_metrics_check,
    ADD CONSTRAINT order_site_selections_internal_metrics_check
        CHECK (jsonb_typeof(internal_metrics) = 'object' AND orders.jsonb_within(internal_metrics, 65536));
ALTER TABLE orders.order_share_tokens
    DROP CONSTRAINT order_share_tokens_metadata_check,
    ADD CONSTRAINT order_share_tokens_metadata_check
        CHECK (jsonb_typeof(metadata) = 'object' AND orders.jsonb_within(metadata, 4096));
ALTER TABLE orders.workflows
    ADD CONSTRAINT workflows_trigger_config_check CHECK (orders.jsonb_within(trigger_config, 65536)),
    ADD CONSTRAINT workflows_workflow_steps_check CHECK (orders.jsonb_within(workflow_steps, 262144));
