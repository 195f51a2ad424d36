-- orders 0.24.0 -> 0.25.0
--  * The AFTER UPDATE row triggers of orders.orders that every status change
--    fires (status_audit, release_cancelled_bookings, fire_workflows_on_change)
--    lose their WHEN clauses: PostgreSQL parses and plans a trigger's WHEN
--    clause again for every statement (about 5 % of a status change); their C
--    functions make the same test on the rows (doc/decisions.md, 0.25.0).
--    A trigger a DBA set to ENABLE ALWAYS / REPLICA or disabled keeps that
--    setting (CREATE OR REPLACE TRIGGER alone would reset it); one a DBA
--    dropped stays dropped.
\echo Use "ALTER EXTENSION orders UPDATE TO '0.25.0'" to load this file. \quit

DO $upgrade$
DECLARE
    was "char";
    t record;
BEGIN
    FOR t IN SELECT * FROM (VALUES
        ('status_audit', 'AFTER UPDATE OF status', 'orders.status_audit()'),
        ('release_cancelled_bookings', 'AFTER UPDATE OF status', 'orders.release_cancelled_bookings()'),
        ('fire_workflows_on_change', 'AFTER UPDATE OF status, payment_status', 'orders.fire_workflows()')) v(name, event, fn)
    LOOP
        SELECT tgenabled INTO was FROM pg_catalog.pg_trigger
         WHERE tgrelid = 'orders.orders'::pg_catalog.regclass AND tgname = t.name;
        CONTINUE WHEN was IS NULL;      -- dropped by a DBA: left dropped
        EXECUTE pg_catalog.format('CREATE OR REPLACE TRIGGER %I %s ON orders.orders FOR EACH ROW EXECUTE FUNCTION %s',
                                  t.name, t.event, t.fn);
        IF was IS DISTINCT FROM 'O' THEN
            EXECUTE pg_catalog.format('ALTER TABLE orders.orders %s TRIGGER %I',
                                      CASE was WHEN 'A' THEN 'ENABLE ALWAYS' WHEN 'R' THEN 'ENABLE REPLICA'
                                               ELSE 'DISABLE' END, t.name);
        END IF;
    END LOOP;
END
$upgrade$;
