-- orders 0.24.0 -> 0.25.0
--  * The AFTER UPDATE row triggers of orders.orders that every status change
--    fires lose their WHEN clauses: PostgreSQL parses and plans a trigger's
--    WHEN clause again for every statement (about 5 % of a status change).
--    status_audit and fire_workflows_on_change make the same test in C on
--    the rows; release_cancelled_bookings becomes a statement trigger
--    (transition tables) that releases the bookings of every order the
--    statement cancelled at once, locking their reservations and slots in
--    id order (doc/decisions.md, 0.25.0).
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
        ('status_audit', 'AFTER UPDATE OF status ON orders.orders FOR EACH ROW',
         'orders.status_audit()'),
        ('release_cancelled_bookings', 'AFTER UPDATE ON orders.orders'
             ' REFERENCING OLD TABLE AS old_orders NEW TABLE AS new_orders FOR EACH STATEMENT',
         'orders.release_cancelled_bookings()'),
        ('fire_workflows_on_change', 'AFTER UPDATE OF status, payment_status ON orders.orders FOR EACH ROW',
         'orders.fire_workflows()')) v(name, event, fn)
    LOOP
        SELECT tgenabled INTO was FROM pg_catalog.pg_trigger
         WHERE tgrelid = 'orders.orders'::pg_catalog.regclass AND tgname = t.name;
        CONTINUE WHEN was IS NULL;      -- dropped by a DBA: left dropped
        EXECUTE pg_catalog.format('CREATE OR REPLACE TRIGGER %I %s EXECUTE FUNCTION %s', t.name, t.event, t.fn);
        IF was <> 'O' THEN
            EXECUTE pg_catalog.format('ALTER TABLE orders.orders %s TRIGGER %I',
                                      CASE was WHEN 'A' THEN 'ENABLE ALWAYS' WHEN 'R' THEN 'ENABLE REPLICA'
                                               ELSE 'DISABLE' END, t.name);
        END IF;
    END LOOP;
END
$upgrade$;
