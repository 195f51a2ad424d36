
---------------------------------------------------------------------------
-- The activity log (issue 13, seed 004; doc/activity.md): who changed what.
-- A C row trigger (src/activity.c) writes one row per inserted, updated or
-- deleted row of a tracked table, with only the changed columns, the actor
-- (JWT sub or role) and their staff id; as the owner, so nobody forges a
-- row.  Not logged (0.18.0): what the extension derives from other rows —
-- customer statistics, delivered leads, stock moved by status changes, an
-- order's subtotal from its items — when the extension writes it.
-- Tracked: orders, customers, products, staff, webhooks; any table with
-- orders.track_activity(regclass).
---------------------------------------------------------------------------

CREATE TABLE orders.activity_logs (
    id           uuid PRIMARY KEY DEFAULT orders.new_id(),
    user_id      uuid REFERENCES orders.staff (id) ON DELETE SET NULL,
    actor        text NOT NULL,
    action       text NOT NULL CHECK (action IN ('created', 'updated', 'deleted')),
    entity_type  text NOT NULL,
    entity_id    text,
    details      orders.json_object NOT NULL DEFAULT '{}',
    ip_address   text,
    -- the clock, not the transaction's start: a transaction's changes in order
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
COMMENT ON TABLE orders.activity_logs IS
    'Who changed what (seed 004): one row per changed row of a tracked table, written by orders.track_changes as the owner; not the counters, stock and subtotals the extension derives from other rows';
COMMENT ON COLUMN orders.activity_logs.details IS
    '{"changes": {column: {"old": …, "new": …}}}, the changed columns only (updated_at left out); a deleted order''s row also "history": its order_history rows';
COMMENT ON COLUMN orders.activity_logs.ip_address IS
    'The client address PostgREST saw (last of X-Forwarded-For: the proxy''s), when the caller''s JWT claims are believed';
-- Most changes write here (a status change by no staff member and without
-- a client address is order_history's alone), so few and cheap indexes: a user's and
-- an entity's timelines (btree), time ranges by BRIN (rows arrive in time
-- order); the seed's index on action alone is left out (three values: filter
-- it within a time range or an entity).  A user's timeline indexes only rows
-- with a user (0.19.0): changes by customers, shops, jobs and DBAs have none,
-- and "user_id = $1" implies the predicate.
CREATE INDEX activity_logs_user_id_idx ON orders.activity_logs (user_id, created_at) WHERE user_id IS NOT NULL;
CREATE INDEX activity_logs_entity_idx ON orders.activity_logs (entity_type, entity_id);
CREATE INDEX activity_logs_created_at_idx ON orders.activity_logs USING brin (created_at);
-- No statistics of the details (0.20.0): no query plans by their values,
-- and ANALYZE sorting a sample of documents was ~2 % of a busy server's CPU
-- while the log grew (test/bench/activity.sh).
ALTER TABLE orders.activity_logs ALTER COLUMN details SET STATISTICS 0;

CREATE FUNCTION orders.track_changes() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_track_changes';
COMMENT ON FUNCTION orders.track_changes() IS
    'AFTER INSERT OR UPDATE OR DELETE row trigger: one orders.activity_logs row per changed row';

-- track_activity — log the changes of "tbl" (idempotent); untrack_activity
-- stops it.  Owner only.
CREATE FUNCTION orders.track_activity(tbl regclass)
    RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'orders.track_activity: tbl must not be NULL' USING ERRCODE = '22004';
    ELSIF (SELECT c.relkind FROM pg_class c WHERE c.oid = tbl) NOT IN ('r', 'p') THEN
        RAISE EXCEPTION 'orders.track_activity: % is not a table', tbl USING ERRCODE = '42809';
    ELSIF NOT EXISTS (SELECT FROM pg_trigger t WHERE t.tgrelid = tbl AND t.tgname = 'orders_activity') THEN
        EXECUTE format('CREATE TRIGGER orders_activity AFTER INSERT OR UPDATE OR DELETE ON %s
                        FOR EACH ROW EXECUTE FUNCTION orders.track_changes()', tbl);
    END IF;
END
$$;
CREATE FUNCTION orders.untrack_activity(tbl regclass)
    RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'orders.untrack_activity: tbl must not be NULL' USING ERRCODE = '22004';
    END IF;
    EXECUTE format('DROP TRIGGER IF EXISTS orders_activity ON %s', tbl);
END
$$;

-- purge_activity_logs — delete rows older than "older_than"; the number deleted.
CREATE FUNCTION orders.purge_activity_logs(older_than interval DEFAULT '365 days')
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
    cutoff timestamptz := orders.purge_cutoff('orders.purge_activity_logs', older_than);
BEGIN
    DELETE FROM orders.activity_logs l WHERE l.created_at < cutoff;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

CREATE TRIGGER orders_activity AFTER INSERT OR UPDATE OR DELETE ON orders.orders
    FOR EACH ROW EXECUTE FUNCTION orders.track_changes();
CREATE TRIGGER orders_activity AFTER INSERT OR UPDATE OR DELETE ON orders.customers
    FOR EACH ROW EXECUTE FUNCTION orders.track_changes();
CREATE TRIGGER orders_activity AFTER INSERT OR UPDATE OR DELETE ON orders.products
    FOR EACH ROW EXECUTE FUNCTION orders.track_changes();
CREATE TRIGGER orders_activity AFTER INSERT OR UPDATE OR DELETE ON orders.staff
    FOR EACH ROW EXECUTE FUNCTION orders.track_changes();
CREATE TRIGGER orders_activity AFTER INSERT OR UPDATE OR DELETE ON orders.webhooks
    FOR EACH ROW EXECUTE FUNCTION orders.track_changes();

SELECT pg_catalog.pg_extension_config_dump('orders.activity_logs', '');
-- nobody but the trigger writes; (0.41.0) staff with activity.view (admins
-- and managers by default) read it through the API (grant_api grants
-- SELECT), every row: the log of changes is the organisation's
ALTER TABLE orders.activity_logs ENABLE ROW LEVEL SECURITY;
CREATE POLICY staff_read ON orders.activity_logs FOR SELECT USING ((SELECT orders.has_permission('activity', 'view')));
REVOKE ALL ON orders.activity_logs FROM PUBLIC;
REVOKE ALL ON FUNCTION orders.track_changes(), orders.track_activity(regclass), orders.untrack_activity(regclass),
                       orders.purge_activity_logs(interval) FROM PUBLIC;
