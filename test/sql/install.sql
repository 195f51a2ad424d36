-- The extension installs into schema orders with its tables, functions,
-- triggers and the four built-in lifecycles.
CREATE EXTENSION orders;

SELECT extname, extversion, extrelocatable, n.nspname
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE extname = 'orders';

SELECT c.relname, c.relkind
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'orders' AND c.relkind IN ('r', 'v', 'S')
 ORDER BY c.relname;

SELECT p.proname, pg_get_function_identity_arguments(p.oid) AS args,
       p.provolatile, l.lanname, p.prosecdef
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
  JOIN pg_language l ON l.oid = p.prolang
 WHERE n.nspname = 'orders'
 ORDER BY p.proname;

SELECT tgrelid::regclass AS tab, tgname, tgfoid::regproc AS func
  FROM pg_trigger
 WHERE NOT tgisinternal AND tgrelid::regclass::text LIKE 'orders.%'
 ORDER BY tgrelid::regclass::text COLLATE "C", tgname;

-- tables whose data pg_dump keeps (lifecycle tables: user rows only)
SELECT c::regclass AS config_table, w AS condition
  FROM pg_extension, unnest(extconfig, extcondition) AS u(c, w)
 WHERE extname = 'orders' ORDER BY c::regclass::text COLLATE "C";

SELECT name, initial_status, builtin FROM orders.lifecycles ORDER BY name;
SELECT lifecycle, count(*) AS states FROM orders.lifecycle_states GROUP BY 1 ORDER BY 1;
SELECT lifecycle, count(*) AS edges FROM orders.lifecycle_transitions GROUP BY 1 ORDER BY 1;
