-- orders 0.30.0 -> 0.31.0
--  * orders.orders leaves half of each page free (fillfactor 50): every
--    order is written again soon after it is made (its items' subtotal,
--    delivered leads, stock held), and a new version that fits on its
--    page leaves the table's 16 indexes alone (a HOT update).  A bulk load
--    of items wrote every order's index entries again.  Pages written from
--    now on keep the space; rewrite the table (VACUUM FULL, pg_repack) to
--    give it to the pages already there (doc/operations.md).
--  * (library) A status change by an actor who is no staff member and
--    without a client address — a DBA, a job, an application over SQL —
--    is recorded in orders.order_history alone: the activity log leaves
--    out the status and the stamps of its edge (another column changed
--    with it is still logged); a deleted order's activity row holds its
--    history rows.  The comments of activity_logs.details and .ip_address
--    say so (the latter named the first forwarded address since 0.29.0).
--  * status_audit fires on every UPDATE of an order, not UPDATE OF status:
--    a status a BEFORE trigger set (a DBA's, the UPDATE not naming status)
--    changed without a history row.  A DBA's ENABLE ALWAYS / REPLICA /
--    DISABLE of it is kept, a dropped one stays dropped.
\echo Use "ALTER EXTENSION orders UPDATE TO '0.31.0'" to load this file. \quit

ALTER TABLE orders.orders SET (fillfactor = 50);
COMMENT ON COLUMN orders.activity_logs.details IS
    '{"changes": {column: {"old": …, "new": …}}}, the changed columns only (updated_at left out); a deleted order''s row also "history": its order_history rows';
COMMENT ON COLUMN orders.activity_logs.ip_address IS
    'The client address PostgREST saw (last of X-Forwarded-For: the proxy''s), when the caller''s JWT claims are believed';

DO $upgrade$
DECLARE
    was "char";
BEGIN
    SELECT tgenabled INTO was FROM pg_catalog.pg_trigger
     WHERE tgrelid = 'orders.orders'::pg_catalog.regclass AND tgname = 'status_audit';
    IF was IS NOT NULL THEN         -- dropped by a DBA: left dropped
        CREATE OR REPLACE TRIGGER status_audit AFTER UPDATE ON orders.orders
            FOR EACH ROW EXECUTE FUNCTION orders.status_audit();
        IF was <> 'O' THEN
            EXECUTE pg_catalog.format('ALTER TABLE orders.orders %s TRIGGER status_audit',
                                      CASE was WHEN 'A' THEN 'ENABLE ALWAYS' WHEN 'R' THEN 'ENABLE REPLICA'
                                               ELSE 'DISABLE' END);
        END IF;
    END IF;
END
$upgrade$;
