-- orders extension: the current schema, in one place.
--
-- The Makefile concatenates sql/schema/*.sql, in name order, into the
-- install script of the current version (sql/orders--<version>.sql, not
-- committed).  Each file holds one capability.  Existing installations move
-- forward with the upgrade scripts sql/orders--A--B.sql instead; the test
-- command proves that both roads end in identical catalogs
-- (test/catalog_identity.sh), so a change goes into the file here AND into
-- the newest upgrade script.
--
-- Every object is schema-qualified.  Functions that run SQL pin
-- search_path = pg_catalog, pg_temp (SQL-standard bodies are bound when
-- created); the C library runs its own SQL as the table owner with
-- pg_catalog alone on the path (doc/security.md).
\echo Use "CREATE EXTENSION orders" to load this file. \quit

-- The schema is the extension's own (orders.control: schema = pg_catalog),
-- a member that DROP EXTENSION drops with everything in it.  CREATE EXTENSION
-- refuses when a schema orders exists already (left by an old DROP
-- EXTENSION: drop it first; doc/operations.md).
CREATE SCHEMA orders;

-- (0.36.0) The schema keeps its name: the library, the functions, the
-- policies and the pg_cron jobs name it (renamed, every write of an order
-- failed with 3F000).  ALTER EXTENSION ... SET SCHEMA is refused already.
CREATE FUNCTION orders.schema_rename_guard()
    RETURNS event_trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'orders_schema_rename_guard';
COMMENT ON FUNCTION orders.schema_rename_guard() IS
    'Event trigger: ALTER SCHEMA orders RENAME is refused (0A000)';
CREATE EVENT TRIGGER orders_schema_guard ON ddl_command_start
    WHEN TAG IN ('ALTER SCHEMA')
    EXECUTE FUNCTION orders.schema_rename_guard();
-- also under session_replication_role = replica (a session that turned
-- the other triggers off still keeps the name)
ALTER EVENT TRIGGER orders_schema_guard ENABLE ALWAYS;
REVOKE ALL ON FUNCTION orders.schema_rename_guard() FROM PUBLIC;

-- (0.41.0) The extension's transaction lock on a key its SQL computes (a
-- shop order, a customer's phone, a staff member's slots): an advisory lock
-- in a lock space no SQL call builds, so no session can take or hold it
-- (pg_advisory_xact_lock's keys any login could hold with
-- pg_advisory_lock).  Owner only (src/keyed_lock.c).
CREATE FUNCTION orders.xact_lock(key bigint) RETURNS void
    LANGUAGE c STRICT VOLATILE
    AS 'MODULE_PATHNAME', 'orders_xact_lock';
REVOKE ALL ON FUNCTION orders.xact_lock(bigint) FROM PUBLIC;

-- PostgreSQL 15.0-15.19 can fail an UPDATE of a row whose previous updater
-- is aborting with XX000 "new multixact has more than one updating member"
-- (fixed in 15.20; doc/multixact.md).  The extension's stock, counters and
-- savepoint-using callers meet that pattern: say so where the DBA looks.
DO $$
BEGIN
    IF pg_catalog.current_setting('server_version_num')::integer BETWEEN 150000 AND 150019 THEN
        RAISE WARNING 'PostgreSQL % can fail concurrent updates with "new multixact has more than one updating member"',
                      pg_catalog.current_setting('server_version')
            USING DETAIL = 'A bug of PostgreSQL 15.0 to 15.19, fixed in 15.20: an UPDATE does not wait for an aborting earlier updater of the row.',
                  HINT = 'Install PostgreSQL 15.20 or later (a minor release: restart only, no dump or pg_upgrade).';
    END IF;
END
$$;
