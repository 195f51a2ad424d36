
---------------------------------------------------------------------------
-- Status changes announced in batches (issue 14; doc/lifecycles.md,
-- "Announcements"; src/announcer.c).  With orders.notify = batched (the
-- default) a status change does not NOTIFY from its own transaction —
-- PostgreSQL serializes the commits of notifying transactions — but marks
-- its history row; the database's announcer (a background worker the first
-- such change starts) sends every committed change on channel orders_status
-- after commit, many per transaction, each once, and keeps here how far it
-- got, in the same transaction as its NOTIFYs.
---------------------------------------------------------------------------

CREATE TABLE orders.status_announcer (
    singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    watermark     bigint NOT NULL DEFAULT 0,
    high          bigint NOT NULL DEFAULT 0,
    hole_lo       bigint[] NOT NULL DEFAULT '{}' CHECK (array_position(hole_lo, NULL) IS NULL),
    hole_hi       bigint[] NOT NULL DEFAULT '{}' CHECK (array_position(hole_hi, NULL) IS NULL),
    pending_max   bigint[] NOT NULL DEFAULT '{}' CHECK (array_position(pending_max, NULL) IS NULL),
    pending_xmax  bigint[] NOT NULL DEFAULT '{}' CHECK (array_position(pending_xmax, NULL) IS NULL),
    announced     bigint NOT NULL DEFAULT 0,
    announced_at  timestamptz
);
COMMENT ON TABLE orders.status_announcer IS
    'How far the status announcer got: history ids up to watermark are settled; above it, high and the holes below high (ids not seen yet)';
COMMENT ON COLUMN orders.status_announcer.pending_max IS
    'Sequence positions recorded by batches, each settled (moved into watermark) once every transaction running at pending_xmax has ended';
-- dumped with the data (a restored database goes on from the dumped
-- position instead of announcing the restored history once more)
SELECT pg_catalog.pg_extension_config_dump('orders.status_announcer', '');

-- announce_status_changes — one batch from SQL, in the caller's transaction:
-- what committed since the last batch (at most max_rows changes), in id
-- order.  For the owner: pg_cron, tests, a database with orders.announcer off.
CREATE FUNCTION orders.announce_status_changes(max_rows integer DEFAULT 10000)
    RETURNS integer
    LANGUAGE c VOLATILE STRICT
    AS 'MODULE_PATHNAME', 'orders_announce_status_changes';
COMMENT ON FUNCTION orders.announce_status_changes(integer) IS
    'Announce on channel orders_status the status changes committed since the last batch (orders.notify = batched); returns how many';

-- (0.36.0) A batched change whose history row is deleted (its order
-- deleted: the foreign key's cascade) before a batch read it is kept here
-- under its history id, so the batch still reads it — one row of the two
-- is visible to any snapshot (the delete and this insert commit together),
-- and the announcer's ids and holes decide, as for any change, that it is
-- announced once.  Before, it was never announced.  Rows at or below the
-- announcer's watermark are dropped by the batches.
CREATE TABLE orders.deleted_changes (
    id          bigint PRIMARY KEY,
    order_id    uuid NOT NULL,
    old_status  text,
    new_status  text NOT NULL,
    changed_by  text NOT NULL
);
COMMENT ON TABLE orders.deleted_changes IS
    'Batched status changes whose history row was deleted before the status announcer read it (it announces them; written by announce_deleted_changes)';
SELECT pg_catalog.pg_extension_config_dump('orders.deleted_changes', '');

-- announce_deleted_changes — AFTER DELETE ... FOR EACH STATEMENT on the
-- history: its rows marked for the announcer above the announcer's
-- watermark (read with the statement's snapshot: a watermark read too low
-- only keeps rows a batch then passes over and drops).  SECURITY DEFINER:
-- the table is the owner's, whoever deletes an order.
CREATE FUNCTION orders.announce_deleted_changes() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO orders.deleted_changes (id, order_id, old_status, new_status, changed_by)
    SELECT g.id, g.order_id, g.old_status, g.new_status, g.changed_by
      FROM gone g
     WHERE g.announce
       AND g.id > coalesce((SELECT s.watermark FROM orders.status_announcer s), 0)
    ON CONFLICT (id) DO UPDATE
       SET order_id = excluded.order_id, old_status = excluded.old_status,
           new_status = excluded.new_status, changed_by = excluded.changed_by;
    RETURN NULL;
END
$$;
CREATE TRIGGER announce_deleted_changes AFTER DELETE ON orders.order_history
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION orders.announce_deleted_changes();
-- announce_truncated_changes — BEFORE TRUNCATE of the history: TRUNCATE
-- skips the DELETE trigger above, so its marked rows above the watermark
-- are kept the same way first (a TRUNCATE lost them).  SECURITY DEFINER,
-- as above.  (0.37.0) At READ COMMITTED only: a transaction's snapshot
-- missed the changes committed after it, which the TRUNCATE then removed.
CREATE FUNCTION orders.announce_truncated_changes() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM orders.require_read_committed('TRUNCATE orders.order_history',
        'The unannounced changes it keeps must be read with a snapshot taken after the table''s lock.');
    INSERT INTO orders.deleted_changes (id, order_id, old_status, new_status, changed_by)
    SELECT h.id, h.order_id, h.old_status, h.new_status, h.changed_by
      FROM orders.order_history h
     WHERE h.announce
       AND h.id > coalesce((SELECT s.watermark FROM orders.status_announcer s), 0)
    ON CONFLICT (id) DO UPDATE
       SET order_id = excluded.order_id, old_status = excluded.old_status,
           new_status = excluded.new_status, changed_by = excluded.changed_by;
    RETURN NULL;
END
$$;
CREATE TRIGGER announce_truncated_changes BEFORE TRUNCATE ON orders.order_history
    FOR EACH STATEMENT EXECUTE FUNCTION orders.announce_truncated_changes();
ALTER TABLE orders.deleted_changes ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON orders.deleted_changes FROM PUBLIC;
REVOKE ALL ON FUNCTION orders.announce_deleted_changes(), orders.announce_truncated_changes() FROM PUBLIC;

-- the owner's (the announcer runs as the history's owner)
ALTER TABLE orders.status_announcer ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON orders.status_announcer FROM PUBLIC;
REVOKE ALL ON FUNCTION orders.announce_status_changes(integer) FROM PUBLIC;
