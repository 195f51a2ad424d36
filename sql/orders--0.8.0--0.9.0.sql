-- orders 0.8.0 -> 0.9.0
--  * A warning on PostgreSQL 15.0-15.19, whose multixact bug fails
--    concurrent updates with XX000 (doc/multixact.md; issue 9).
--  * DROP EXTENSION orders removes the extension's pg_cron jobs of this
--    database (event trigger orders_unschedule_jobs; issue 9).
\echo Use "ALTER EXTENSION orders UPDATE TO '0.9.0'" to load this file. \quit

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

CREATE FUNCTION orders.unschedule_on_drop()
    RETURNS event_trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'orders_unschedule_on_drop';
COMMENT ON FUNCTION orders.unschedule_on_drop() IS
    'Event trigger: DROP EXTENSION orders removes the extension''s pg_cron jobs of this database';
CREATE EVENT TRIGGER orders_unschedule_jobs ON ddl_command_start
    WHEN TAG IN ('DROP EXTENSION', 'DROP SCHEMA')
    EXECUTE FUNCTION orders.unschedule_on_drop();
REVOKE ALL ON FUNCTION orders.unschedule_on_drop() FROM PUBLIC;
