-- orders 0.20.0 -> 0.21.0
--  * Status changes are announced in batches by default (orders.notify =
--    batched): the changing transaction marks its history row
--    (order_history.announce) and the database's status announcer, a
--    background worker, sends the NOTIFYs after commit.  Its position is
--    orders.status_announcer, which starts at the history already written
--    (nothing written before the update is announced again).  The payload
--    gains "history_id".
\echo Use "ALTER EXTENSION orders UPDATE TO '0.21.0'" to load this file. \quit
ALTER TABLE orders.order_history ADD COLUMN announce boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN orders.order_history.announce IS
    'The database''s status announcer sends this change on channel orders_status (orders.notify = batched; set by status_audit)';
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

-- the owner's (the announcer runs as the history's owner)
ALTER TABLE orders.status_announcer ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON orders.status_announcer FROM PUBLIC;
REVOKE ALL ON FUNCTION orders.announce_status_changes(integer) FROM PUBLIC;
-- the history written so far was announced (or not) by 0.20.0
INSERT INTO orders.status_announcer (watermark, high)
SELECT coalesce(max(id), 0), coalesce(max(id), 0) FROM orders.order_history;
