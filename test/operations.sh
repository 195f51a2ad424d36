#!/usr/bin/env bash
# Operations (TAP): two databases of one cluster, each with the extension
# and its pg_cron cleanup job scheduled from the pg_cron database — both jobs
# really run, each in its own database (and one job name per database: pg_cron
# keys jobs by name); DROP EXTENSION orders leaves nothing behind (catalogs as
# before CREATE EXTENSION; refused while a user object depends on it, CASCADE
# takes those), a session that used the extension keeps working after another
# drops and re-creates it, and a job scheduled by orders.schedule_jobs()
# goes with DROP EXTENSION (an event trigger of the extension), so does a
# time-based workflow's job; the extension's own statements are planned
# without JIT whatever the session's settings; a new notification is announced on
# orders_notifications with ids only; recounts interrupted by
# statement_timeout in the middle of their UPDATE leave every row as it was,
# and the next recount repairs exactly what was wrong.
# See doc/operations.md.  Needs PGHOST/PGPORT/PGUSER of a running cluster
# with pg_cron preloaded and cron.database_name = 'postgres' (test/check.sh's).
set -eu
source "$(dirname "$0")/tap.sh"
A=orders_ops_a B=orders_ops_b D=orders_ops_drop R=orders_ops_recount J=orders_ops_jit
L=orders_ops_latin1 S=orders_ops_ascii T=orders_ops_turkish U=orders_ops_utf8
export PGOPTIONS="-c client_min_messages=warning"
# sqlstate DB SQL — the SQLSTATE SQL fails with, or "none"
sqlstate() {
    q "$1" -c "DO \$\$ BEGIN EXECUTE \$q\$$2\$q\$; RAISE WARNING 'none'; EXCEPTION WHEN OTHERS THEN RAISE WARNING '%', SQLSTATE; END \$\$" 2>&1 \
        | sed -n 's/^\(WARNING\|NOTICE\): *//p'
}

cleanup() {
    q postgres -c "SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE 'orders-%'" >/dev/null 2>&1 || true
    for db in $A $B $D $R $J $L $S $T $U; do q postgres -c "DROP DATABASE IF EXISTS $db" 2>/dev/null || true; done
}
trap cleanup EXIT
cleanup

# -------------------------------------------- two databases, two cron jobs --
q postgres -c "CREATE EXTENSION IF NOT EXISTS pg_cron"
for db in $A $B; do
    q postgres -c "CREATE DATABASE $db"
    q $db -c "CREATE EXTENSION orders" \
          -c "INSERT INTO orders.service_capacity (id, service_id, starts_at, ends_at)
              VALUES ('00000000-0000-0000-0000-0000000009a1', '00000000-0000-0000-0000-0000000009b1',
                      now() + interval '1 day', now() + interval '1 day 1 hour')" \
          -c "SELECT orders.reserve_time_slot('00000000-0000-0000-0000-0000000009a1')" \
          -c "UPDATE orders.slot_reservations SET expires_at = now() - interval '1 second'" >/dev/null
done
check "schedule_jobs() where pg_cron is not installed refuses with OR030" OR030 \
    "$(sqlstate $A "SELECT orders.schedule_jobs()")"

# pg_cron keys a job by its name (and user): scheduling the same name for a
# second database rewrites the command of the first and keeps its database
job=$(q $A -F '|' -c "SELECT jobname, schedule, command FROM orders.cron_jobs()")
IFS='|' read -r jobname schedule command <<<"$job"
q postgres -c "SELECT cron.schedule_in_database('$jobname', '$schedule', '$command', '$A')" \
           -c "SELECT cron.schedule_in_database('$jobname', '$schedule', '$command', '$B')" >/dev/null
check "one job name scheduled for two databases is one job, still in the first database (use a name per database)" "1 $A" \
    "$(q postgres -c "SELECT count(*) || ' ' || min(database) FROM cron.job WHERE jobname = '$jobname'")"
q postgres -c "SELECT cron.unschedule('$jobname')" >/dev/null

for db in $A $B; do
    q postgres -c "SELECT cron.schedule_in_database('$jobname@$db', '$schedule', '$command', '$db')" >/dev/null
done
check "one cleanup job per database, each running in its database" "$jobname@$A:$A,$jobname@$B:$B" \
    "$(q postgres -c "SELECT string_agg(jobname || ':' || database, ',' ORDER BY jobname) FROM cron.job WHERE jobname LIKE 'orders-%'")"
cron_from=$(q postgres -c "SELECT now()")

# ---------------------------------------------------------- DROP EXTENSION --
# what the catalogs of a database hold, object by object
catalogs="SELECT 'class ' || c.oid::regclass FROM pg_class c
          UNION ALL SELECT 'proc ' || p.oid::regprocedure FROM pg_proc p
          UNION ALL SELECT 'type ' || t.oid::regtype FROM pg_type t
          UNION ALL SELECT 'namespace ' || nspname FROM pg_namespace
          UNION ALL SELECT 'constraint ' || conname || ' ' || conrelid::regclass || ' ' || contypid::regtype FROM pg_constraint
          UNION ALL SELECT 'trigger ' || tgname || ' ' || tgrelid::regclass FROM pg_trigger
          UNION ALL SELECT 'extension ' || extname FROM pg_extension
          UNION ALL SELECT 'event trigger ' || evtname FROM pg_event_trigger
          UNION ALL SELECT 'operator ' || o.oid::regoperator FROM pg_operator o
          UNION ALL SELECT 'cast ' || castsource::regtype || '->' || casttarget::regtype FROM pg_cast
          UNION ALL SELECT 'policy ' || polname FROM pg_policy
          UNION ALL SELECT 'rewrite ' || rulename || ' ' || ev_class::regclass FROM pg_rewrite
          UNION ALL SELECT 'depend ' || count(*) FROM pg_depend
          UNION ALL SELECT 'init_privs ' || count(*) FROM pg_init_privs
          UNION ALL SELECT 'description ' || count(*) FROM pg_description
          UNION ALL SELECT 'attrdef ' || count(*) FROM pg_attrdef
          UNION ALL SELECT 'sequence ' || count(*) FROM pg_sequence
          UNION ALL SELECT 'shdepend ' || count(*) FROM pg_shdepend WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
q postgres -c "CREATE DATABASE $D"
before=$(q $D -c "$catalogs" | sort)
q $D -c "CREATE EXTENSION orders" >/dev/null
ext=$(q $D -c "SELECT oid FROM pg_extension WHERE extname = 'orders'")
q $D >/dev/null <<'SQL'
INSERT INTO orders.customers (id, full_name) VALUES ('00000000-0000-0000-0000-0000000009c1', 'Drop');
INSERT INTO orders.products (id, name, sku, stock_quantity) VALUES ('00000000-0000-0000-0000-0000000009b2', 'Kettle', 'KET', 9);
INSERT INTO orders.orders (id, customer_id, total_amount) VALUES ('00000000-0000-0000-0000-0000000009e1', '00000000-0000-0000-0000-0000000009c1', 10);
INSERT INTO orders.order_items (order_id, name, quantity, product_id)
VALUES ('00000000-0000-0000-0000-0000000009e1', 'Kettle', 2, '00000000-0000-0000-0000-0000000009b2');
SELECT orders.transition('00000000-0000-0000-0000-0000000009e1', 'confirmed');
INSERT INTO orders.lifecycles (name, initial_status) VALUES ('rental', 'reserved');
INSERT INTO orders.lifecycle_states (lifecycle, status, category) VALUES ('rental', 'reserved', 'open');
SQL
# (0.32.0) a superuser's job labels its changes with orders.acting_for, set
# as the session's first command, before the library is loaded (it was
# dropped then: the prefix was reserved before the setting was defined)
check "a label set before the library loads is kept (orders.acting_for)" "import:ops import:ops" \
    "$(q $D -c "SET orders.acting_for = 'import:ops'" \
            -c "UPDATE orders.customers SET full_name = 'Dropped' WHERE id = '00000000-0000-0000-0000-0000000009c1'" \
            -c "SELECT orders.current_actor() || ' ' || (SELECT actor FROM orders.activity_logs WHERE entity_type = 'customers' AND action = 'updated' ORDER BY created_at DESC LIMIT 1)" 2>&1)"
# (0.43.0) the business day's zone is TimeZone as the session began (here
# the login's options), read as the setting reads it: a number is hours
# east of UTC (pg_tzset took "-7" for a POSIX zone 14 hours off); a SET
# does not move it
for tz in -7 7 5.5 -10 Pacific/Kiritimati; do
    case $tz in
        *[a-zA-Z]*) day="(now() AT TIME ZONE '$tz')::date" ;;
        *)          day="((now() AT TIME ZONE 'UTC') + interval '1 hour' * $tz)::date" ;;
    esac
    check "business_date() with TimeZone '$tz' at connection, then SET to another zone: the connection's zone's day" "t t" \
        "$(PGOPTIONS="-c TimeZone=$tz" q $D -c "SELECT orders.business_date() = current_date" \
               -c "SET TimeZone = 'Etc/GMT-14'" -c "SELECT orders.business_date() = $day" | tr '\n' ' ' | sed 's/ $//')"
done
q $D -c "ALTER DATABASE $D SET TIME ZONE INTERVAL '-10:00' HOUR TO MINUTE"
check "business_date() with the database's TimeZone set as an INTERVAL (-10:00): that offset's day" "t t" \
    "$(q $D -c "SELECT orders.business_date() = current_date" -c "SET TimeZone = 'Etc/GMT-14'" \
            -c "SELECT orders.business_date() = ((now() AT TIME ZONE 'UTC') - interval '10 hours')::date" | tr '\n' ' ' | sed 's/ $//')"
q $D -c "ALTER DATABASE $D RESET timezone"
# (0.44.0) a client's startup TimeZone (PGTZ, pgjdbc's JVM zone) becomes
# TimeZone's reset value; orders.business_timezone, which only a superuser
# sets, names the shop's zone whatever the client sends
q $D -c "ALTER DATABASE $D SET orders.business_timezone = 'Africa/Cairo'"
check "orders.business_timezone set for the database: a client's startup TimeZone (PGTZ) does not move the business day" \
    "Africa/Cairo true" \
    "$(PGTZ=Pacific/Kiritimati q $D -c "SELECT orders.business_timezone() || ' ' || (orders.business_date() = (now() AT TIME ZONE 'Africa/Cairo')::date)")"
q $D -c "ALTER DATABASE $D RESET orders.business_timezone"
# (review) a value set before the library loads is checked when it loads:
# one the setting cannot read is dropped with a WARNING, and the library
# loads (an INTERVAL spelling raised inside the load, which failed every
# later load in the session); a leap-second zone is no zone here either
q $D -c "ALTER DATABASE $D SET orders.business_timezone = \$\$interval 'abc'\$\$"
check "orders.business_timezone = interval 'abc' set unchecked: the library still loads, twice in a session, the configured zone counts" \
    "t t $(q $D -c "SHOW timezone" 2>/dev/null)" \
    "$(q $D -c "SELECT orders.business_date() IS NOT NULL" -c "SELECT orders.new_id() IS NOT NULL" -c "SELECT orders.business_timezone()" 2>/dev/null | tr '\n' ' ' | sed 's/ $//')"
q $D -c "ALTER DATABASE $D RESET orders.business_timezone"
check "orders.business_timezone refuses a leap-second zone (right/UTC) and an INTERVAL spelling (22023)" "22023 22023" \
    "$(q $D -v VERBOSITY=verbose -c "SELECT orders.business_timezone()" -c "SET orders.business_timezone = 'right/UTC'" 2>&1 | sed -n 's/^.*ERROR: *\([0-9A-Z]\{5\}\):.*$/\1/p') $(q $D -v VERBOSITY=verbose -c "SELECT orders.business_timezone()" -c "SET orders.business_timezone = \$\$interval '+02:00'\$\$" 2>&1 | sed -n 's/^.*ERROR: *\([0-9A-Z]\{5\}\):.*$/\1/p')"
check "without it, the startup TimeZone counts (documented)" "Pacific/Kiritimati" \
    "$(PGTZ=Pacific/Kiritimati q $D -c "SELECT orders.business_timezone()")"
# (the library loaded first: before, a SET makes a placeholder that the load checks)
check "orders.business_timezone refuses what is no zone (22023) and a non-superuser's SET (42501)" "22023 42501" \
    "$(q $D -v VERBOSITY=verbose -c "SELECT orders.business_timezone()" -c "SET orders.business_timezone = 'Mars/Olympus'" 2>&1 | sed -n 's/^.*ERROR: *\([0-9A-Z]\{5\}\):.*$/\1/p') $(q $D -v VERBOSITY=verbose -c "SELECT orders.business_timezone()" -c "SET ROLE pg_monitor" -c "SET orders.business_timezone = 'UTC'" 2>&1 | sed -n 's/^.*ERROR: *\([0-9A-Z]\{5\}\):.*$/\1/p')"
check "the extension made objects (schema orders, its tables, functions, types)" 1 \
    "$(q $D -c "SELECT (count(*) > 50)::int FROM pg_depend WHERE refclassid = 'pg_extension'::regclass AND refobjid = $ext")"
check "the schema orders is a member of the extension, which is recorded in pg_catalog" "e pg_catalog" \
    "$(q $D -c "SELECT (SELECT deptype FROM pg_depend WHERE classid = 'pg_namespace'::regclass AND objid = 'orders'::regnamespace
                                                         AND refobjid = $ext)::text || ' ' || extnamespace::regnamespace
                  FROM pg_extension WHERE oid = $ext")"
q $D -c "DROP EXTENSION orders"
after=$(q $D -c "$catalogs" | sort)
check "DROP EXTENSION orders (its tables full) leaves the catalogs as before CREATE EXTENSION" "" \
    "$(diff <(echo "$before") <(echo "$after") | grep '^[<>]' | tr '\n' ';' || true)"
check "no schema, relation, function, type or dependency of orders is left" "0 0 0 0 0" \
    "$(q $D -c "SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = 'orders') || ' ' ||
                       (SELECT count(*) FROM pg_class WHERE relname LIKE 'orders%' OR relname IN ('customers', 'leads', 'lifecycles')) || ' ' ||
                       (SELECT count(*) FROM pg_proc WHERE probin = '\$libdir/orders' OR pronamespace::regnamespace::text = 'orders') || ' ' ||
                       (SELECT count(*) FROM pg_type WHERE typnamespace::regnamespace::text = 'orders') || ' ' ||
                       (SELECT count(*) FROM pg_depend WHERE refobjid = $ext OR objid = $ext)")"

# a user object depending on the extension: plain DROP refuses and changes
# nothing; CASCADE drops the dependent view and foreign key, not the table
q $D -c "CREATE EXTENSION orders" \
     -c "CREATE VIEW public.big_orders AS SELECT id, total_amount FROM orders.orders WHERE total_amount > 100" \
     -c "CREATE TABLE public.order_notes (order_id uuid REFERENCES orders.orders (id), note text)"
check "DROP EXTENSION orders refuses while a user view and foreign key depend on it (2BP01)" 2BP01 \
    "$(sqlstate $D "DROP EXTENSION orders")"
check "and the extension is still there" 1 "$(q $D -c "SELECT count(*) FROM pg_extension WHERE extname = 'orders'")"
q $D -c "DROP EXTENSION orders CASCADE"
check "DROP EXTENSION orders CASCADE drops the view and the foreign key, keeps the user's table" "0 0 1" \
    "$(q $D -c "SELECT (SELECT count(*) FROM pg_class WHERE relname = 'big_orders') || ' ' ||
                       (SELECT count(*) FROM pg_constraint WHERE conrelid = 'public.order_notes'::regclass AND contype = 'f') || ' ' ||
                       (SELECT count(*) FROM pg_class WHERE relname = 'order_notes')")"
q $D -c "DROP TABLE public.order_notes"
after=$(q $D -c "$catalogs" | sort)
check "after CASCADE and the user's table dropped, the catalogs are as before CREATE EXTENSION" "" \
    "$(diff <(echo "$before") <(echo "$after") | grep '^[<>]' | tr '\n' ';' || true)"

# an installation of an old version (0.1.0: recorded in the schema orders
# that CREATE EXTENSION made, no member) brought up to date by ALTER
# EXTENSION UPDATE is moved to the layout of a fresh one
q $D -c "CREATE EXTENSION orders VERSION '0.1.0'" -c "ALTER EXTENSION orders UPDATE" >/dev/null
check "0.1.0 + ALTER EXTENSION UPDATE: the schema orders is a member, the extension recorded in pg_catalog" "e pg_catalog" \
    "$(q $D -c "SELECT (SELECT deptype FROM pg_depend WHERE classid = 'pg_namespace'::regclass AND objid = 'orders'::regnamespace
                                                         AND refclassid = 'pg_extension'::regclass)::text || ' ' || extnamespace::regnamespace
                  FROM pg_extension WHERE extname = 'orders'")"
q $D -c "INSERT INTO orders.customers (id, full_name) VALUES ('00000000-0000-0000-0000-0000000009c1', 'Upgraded')" \
     -c "DROP EXTENSION orders"
# (0.6.0--0.7.0 uses a temporary table: the session's pg_temp_N schema
# stays, as every such schema does, and is no object of the extension)
after=$(q $D -c "$catalogs" | sort)
check "  ... and DROP EXTENSION orders leaves the catalogs as before CREATE EXTENSION" "" \
    "$(diff <(echo "$before") <(echo "$after") | grep '^[<>]' | grep -v '^> namespace pg_\(toast_\)\?temp_[0-9]*$' | tr '\n' ';' || true)"

# a schema orders of someone else's (or one an old DROP EXTENSION left
# behind): CREATE EXTENSION refuses to take it over
q $D -c "CREATE SCHEMA orders"
check "CREATE EXTENSION orders refuses while a schema orders exists (42P06), and creates nothing" "42P06 0" \
    "$(sqlstate $D "CREATE EXTENSION orders") $(q $D -c "SELECT count(*) FROM pg_extension WHERE extname = 'orders'")"
q $D -c "DROP SCHEMA orders"

# a session that used the extension keeps working when another session drops
# and re-creates it (its cached plans, graph and relation ids are renewed)
q $D -c "CREATE EXTENSION orders"
check "a session keeps working across DROP EXTENSION + CREATE EXTENSION in another session" "confirmed 1 confirmed 1" \
    "$(q $D <<SQL 2>&1 | tr '\n' ' ' | sed 's/ $//'
INSERT INTO orders.customers (id, full_name) VALUES ('00000000-0000-0000-0000-0000000009c2', 'Before');
INSERT INTO orders.products (id, name, sku, stock_quantity) VALUES ('00000000-0000-0000-0000-0000000009b3', 'Cup', 'CUP', 5);
INSERT INTO orders.orders (id, customer_id) VALUES ('00000000-0000-0000-0000-0000000009e2', '00000000-0000-0000-0000-0000000009c2');
INSERT INTO orders.order_items (order_id, name, product_id) VALUES ('00000000-0000-0000-0000-0000000009e2', 'Cup', '00000000-0000-0000-0000-0000000009b3');
SELECT status FROM orders.transition('00000000-0000-0000-0000-0000000009e2', 'confirmed');
SELECT total_orders FROM orders.customers;
\! psql -X -q -d $D -c "DROP EXTENSION orders" -c "CREATE EXTENSION orders"
INSERT INTO orders.customers (id, full_name) VALUES ('00000000-0000-0000-0000-0000000009c3', 'After');
INSERT INTO orders.products (id, name, sku, stock_quantity) VALUES ('00000000-0000-0000-0000-0000000009b4', 'Cup', 'CUP', 5);
INSERT INTO orders.orders (id, customer_id) VALUES ('00000000-0000-0000-0000-0000000009e3', '00000000-0000-0000-0000-0000000009c3');
INSERT INTO orders.order_items (order_id, name, product_id) VALUES ('00000000-0000-0000-0000-0000000009e3', 'Cup', '00000000-0000-0000-0000-0000000009b4');
SELECT status FROM orders.transition('00000000-0000-0000-0000-0000000009e3', 'confirmed');
SELECT total_orders FROM orders.customers;
SQL
)"
check "and its stock, history and ledger are those of the new installation" "4 1 0" \
    "$(q $D -c "SELECT (SELECT stock_quantity FROM orders.products) || ' ' || (SELECT count(*) FROM orders.order_history)
                       || ' ' || (SELECT count(*) FROM orders.ledger_discrepancies)")"

# pg_cron's jobs are rows of cron.job, not objects of the extension: the
# extension's event trigger unschedules them when the extension is dropped
jobs() { q postgres -c "SELECT count(*) FROM cron.job WHERE jobname = 'orders-cleanup-expired-holds'"; }
q postgres -c "DROP EXTENSION IF EXISTS orders CASCADE" -c "CREATE EXTENSION orders" -c "SELECT orders.schedule_jobs()" >/dev/null
q postgres -c "CREATE VIEW public.ops_view AS SELECT id FROM orders.orders"
check "DROP EXTENSION orders refused (2BP01: a user view depends on it) keeps the job orders.schedule_jobs() registered" "2BP01 1" \
    "$(sqlstate postgres "DROP EXTENSION orders") $(jobs)"
q postgres -c "DROP VIEW public.ops_view" -c "DROP EXTENSION orders" >/dev/null
check "DROP EXTENSION orders removes the job orders.schedule_jobs() registered" 0 "$(jobs)"
q postgres -c "CREATE EXTENSION orders" -c "SELECT orders.schedule_jobs()" \
           -c "SELECT cron.schedule('not-orders', '0 3 * * *', 'SELECT 1')" >/dev/null
check "DROP SCHEMA orders CASCADE is refused (2BP01: the schema is the extension's) and keeps the job" "2BP01 1" \
    "$(sqlstate postgres "DROP SCHEMA orders CASCADE") $(jobs)"
q postgres -c "DROP EXTENSION orders" >/dev/null
check "DROP EXTENSION orders removes the job, and a job of someone else stays" "0 1" \
    "$(jobs) $(q postgres -c "SELECT count(*) FROM cron.job WHERE jobname = 'not-orders'")"
q postgres -c "SELECT cron.unschedule('not-orders')" >/dev/null
q postgres -c "CREATE EXTENSION orders" -c "SELECT orders.schedule_jobs()" -c "SELECT orders.unschedule_jobs()" \
           -c "DROP EXTENSION orders" >/dev/null
check "orders.unschedule_jobs() then DROP EXTENSION leaves no job behind" 0 "$(jobs)"
q postgres -c "CREATE EXTENSION orders" \
           -c "INSERT INTO orders.workflows (name, trigger_type, trigger_config, workflow_steps)
               VALUES ('Nightly', 'time_based', '{\"schedule\": \"0 2 * * *\"}',
                       '[{\"type\": \"create_task\", \"config\": {\"assigned_to\": \"admin\", \"title\": \"t\"}}]')" >/dev/null
wfjobs() { q postgres -c "SELECT count(*) FROM cron.job WHERE jobname LIKE 'orders-workflow-%'"; }
check "a time-based workflow's pg_cron job goes with DROP EXTENSION" "1 0" \
    "$(wfjobs) $(q postgres -c "DROP EXTENSION orders" >/dev/null; wfjobs)"

# a new notification is announced on orders_notifications at commit, with
# its id, staff member and type only: any session may LISTEN
q $D -c "INSERT INTO orders.staff (id, full_name, role) VALUES ('00000000-0000-0000-0000-0000000009f1', 'Listener', 'manager')" >/dev/null
heard=$(psql -X -q -d $D -c "LISTEN orders_notifications" \
             -c "INSERT INTO orders.notifications (user_id, type, title, message)
                 VALUES ('00000000-0000-0000-0000-0000000009f1', 'alert', 'secret title', 'secret body')" -c "SELECT 1" 2>&1 \
        | sed -n 's/^Asynchronous notification "orders_notifications" with payload "\(.*\)" received.*/\1/p')
check "NOTIFY orders_notifications: one payload with the id, user_id and type, never the title or message" \
    "id,type,user_id 00000000-0000-0000-0000-0000000009f1 alert" \
    "$(q $D -c "SELECT string_agg(k, ',' ORDER BY k) || ' ' || ('$heard'::json ->> 'user_id') || ' ' || ('$heard'::json ->> 'type')
                 FROM json_object_keys('$heard'::json) k")"

# ------------------------------------------ recounts and statement_timeout --
# 300 campaigns with 3000 leads, 300 customers with 1500 orders, 300 slots
# with holds and bookings; then 100 of each counter made wrong behind the
# triggers' back.  A user trigger on the counted table lets the recount's
# UPDATE through 5 rows and then sleeps, so statement_timeout (2 s) cancels
# it in the middle of its UPDATE.
q postgres -c "CREATE DATABASE $R"
q $R -c "CREATE EXTENSION orders" >/dev/null
q $R >/dev/null <<'SQL'
INSERT INTO orders.customers (id, full_name)
SELECT ('10000000-0000-0000-0000-' || lpad(g::text, 12, '0'))::uuid, 'Recount ' || g FROM generate_series(1, 300) g;
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle, leads_purchased)
SELECT ('20000000-0000-0000-0000-' || lpad(g::text, 12, '0'))::uuid, 'RC-' || g,
       ('10000000-0000-0000-0000-' || lpad(g::text, 12, '0'))::uuid, 'campaign', 100
  FROM generate_series(1, 300) g;
UPDATE orders.orders SET status = 'active' WHERE order_number LIKE 'RC-%';
INSERT INTO orders.leads (customer_id, order_id, status)
SELECT ('10000000-0000-0000-0000-' || lpad((1 + g % 300)::text, 12, '0'))::uuid,
       ('20000000-0000-0000-0000-' || lpad((1 + g % 300)::text, 12, '0'))::uuid,
       (ARRAY['new', 'approved', 'lead', 'rejected'])[1 + g % 4]
  FROM generate_series(1, 3000) g;
INSERT INTO orders.orders (order_number, customer_id, total_amount, payment_method)
SELECT 'RK-' || g, ('10000000-0000-0000-0000-' || lpad((1 + g % 300)::text, 12, '0'))::uuid, 10, 'cod'
  FROM generate_series(1, 1200) g;
DO $$
DECLARE s text;
BEGIN
    FOREACH s IN ARRAY ARRAY['confirmed', 'being_prepared', 'ready_for_pickup', 'out_for_delivery', 'delivered'] LOOP
        UPDATE orders.orders SET status = s WHERE order_number LIKE 'RK-%' AND substring(order_number, 4)::int % 3 = 0;
    END LOOP;
END $$;
UPDATE orders.orders SET payment_status = 'collected' WHERE order_number LIKE 'RK-%' AND status = 'delivered';
UPDATE orders.orders SET status = 'cancelled' WHERE order_number LIKE 'RK-%' AND substring(order_number, 4)::int % 3 = 1;
INSERT INTO orders.service_capacity (id, service_id, starts_at, ends_at, max_capacity)
SELECT ('30000000-0000-0000-0000-' || lpad(g::text, 12, '0'))::uuid, '30000000-0000-0000-0000-000000000000',
       now() + g * interval '1 hour', now() + g * interval '1 hour' + interval '30 minutes', 5
  FROM generate_series(1, 300) g;
SELECT orders.reserve_time_slot(id) FROM orders.service_capacity;
SELECT orders.confirm_booking(orders.reserve_time_slot(id)) FROM orders.service_capacity;
-- 100 of each counter wrong, behind the triggers' back
SET session_replication_role = replica;
UPDATE orders.orders SET leads_delivered = leads_delivered + 1
 WHERE order_number LIKE 'RC-%' AND substring(order_number, 4)::int <= 100;
UPDATE orders.customers SET total_orders = total_orders + 1
 WHERE full_name LIKE 'Recount %' AND substring(full_name, 9)::int <= 100;
UPDATE orders.service_capacity SET held_count = held_count + 1
 WHERE id <= '30000000-0000-0000-0000-000000000100';
RESET session_replication_role;
-- rows a recount updated before it was cancelled (a sequence does not roll back)
CREATE SEQUENCE public.rows_updated;
CREATE FUNCTION public.slow_after_five() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF nextval('public.rows_updated') >= 5 THEN PERFORM pg_sleep(30); END IF;
    RETURN NEW;
END $$;
SQL

# interrupted TABLE RECOUNT DESCRIPTION — the recount on TABLE (slowed), cancelled
interrupted() {
    local table=$1 recount=$2 what=$3 rows state
    rows="SELECT md5(string_agg(x::text, '|' ORDER BY x::text)) FROM orders.$table x"
    local before_rows; before_rows=$(q $R -c "$rows")
    q $R -c "SELECT setval('public.rows_updated', 1, false)" \
         -c "CREATE TRIGGER slow_after_five BEFORE UPDATE ON orders.$table FOR EACH ROW EXECUTE FUNCTION public.slow_after_five()" >/dev/null
    state=$(q $R -c "SET statement_timeout = '2s'" -c "SELECT count(*) FROM $recount" 2>&1 | grep -o 'canceling statement due to statement timeout' || true)
    q $R -c "DROP TRIGGER slow_after_five ON orders.$table"
    check "$recount cancelled by statement_timeout in the middle of its UPDATE ($what)" \
        "canceling statement due to statement timeout, 5 rows updated" \
        "$state, $(q $R -c "SELECT last_value FROM public.rows_updated") rows updated"
    # locks on the table in this database, but an autovacuum worker's (it
    # may vacuum or analyze the table at any moment: a CI run met one)
    locks="FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND l.relation = 'orders.$table'::regclass AND a.backend_type IS DISTINCT FROM 'autovacuum worker'"
    check "  ... left orders.$table exactly as it was, no lock held" "$before_rows 0" \
        "$(q $R -c "$rows") $(q $R -c "SELECT count(*) $locks")"
    q $R -c "SELECT '# lock held: ' || l.mode || ' by ' || coalesce(a.backend_type, '?') || ' ' || coalesce(a.application_name, '')
                    || ': ' || coalesce(left(a.query, 80), '') $locks"
    check "  ... and the next $recount repairs the 100 wrong rows, then finds nothing" "100 0" \
        "$(q $R -c "SELECT count(*) FROM $recount") $(q $R -c "SELECT count(*) FROM $recount")"
}
interrupted orders "orders.recount_leads()" "leads_delivered"
interrupted customers "orders.recount_customer_stats()" "customer statistics"
interrupted service_capacity "orders.recount_slots()" "slot counts"
check "afterwards every counter agrees with its rows and the ledger with the orders" "0 0 0 0" \
    "$(q $R -c "SELECT (SELECT count(*) FROM orders.recount_leads()) || ' ' || (SELECT count(*) FROM orders.recount_customer_stats())
                || ' ' || (SELECT count(*) FROM orders.recount_slots()) || ' ' || (SELECT count(*) FROM orders.ledger_discrepancies)")"

# a backend whose first read of the workflows is cut short by
# statement_timeout (another session holds the table) does not keep an
# empty cache: its next change into a workflow's conditions runs it
q $R >/dev/null <<'SQL'
INSERT INTO orders.customers (id, full_name) VALUES ('00000000-0000-0000-0000-0000000009c9', 'Timeout');
INSERT INTO orders.orders (id, customer_id) VALUES
  ('00000000-0000-0000-0000-0000000009a1', '00000000-0000-0000-0000-0000000009c9'),
  ('00000000-0000-0000-0000-0000000009a2', '00000000-0000-0000-0000-0000000009c9');
INSERT INTO orders.workflows (name, trigger_type, trigger_config, workflow_steps)
VALUES ('Paid', 'order_status', '{"conditions": {"payment_status": ["collected"]}}',
        '[{"type": "update_customer_tag", "config": {"tag_id": "paid"}}]');
SQL
psql -X -q -d $R -c "BEGIN" -c "LOCK orders.workflows IN ACCESS EXCLUSIVE MODE" -c "SELECT pg_sleep(2)" -c "COMMIT" >/dev/null &
locker=$!
sleep 0.5
timed_out=$(psql -X -q -t -A -v VERBOSITY=terse -d $R -c "SET statement_timeout = '200ms'" \
    -c "UPDATE orders.orders SET payment_status = 'collected' WHERE id = '00000000-0000-0000-0000-0000000009a1'" \
    -c "RESET statement_timeout" -c "SELECT pg_sleep(2.5)" \
    -c "UPDATE orders.orders SET payment_status = 'collected' WHERE id = '00000000-0000-0000-0000-0000000009a2'" \
    -c "SELECT count(*) FROM orders.workflow_executions" 2>&1 | tr '\n' ' ')
wait $locker
check "a workflow cache load cut short by statement_timeout is loaded again: the backend's next change runs the workflow" \
    "ERROR:  canceling statement due to statement timeout  1 " "$timed_out"

# ------------------------------------- held subtotals cannot be lost --
# A review's items move the order's subtotal at the end of the statement
# (orders.site_counts writes what orders.site_items held: doc/review.md).
# A DBA who replaced site_counts with a no-op (same function, so the
# extension still expects it to run): the commit is refused (39P01) rather
# than leaving the subtotal short of the items; nothing is stored.
held=$(q $R 2>&1 <<'SQL'
\set VERBOSITY sqlstate
INSERT INTO orders.customers (id, full_name) VALUES
  ('00000000-0000-0000-0000-00000000e1c1', 'Agency'), ('00000000-0000-0000-0000-00000000e1c2', 'Client');
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle)
VALUES ('00000000-0000-0000-0000-00000000e1a1', 'HELD-1', '00000000-0000-0000-0000-00000000e1c1', 'review');
INSERT INTO orders.order_groups (id, order_id, client_id, link_count)
VALUES ('00000000-0000-0000-0000-00000000e1d1', '00000000-0000-0000-0000-00000000e1a1', '00000000-0000-0000-0000-00000000e1c2', 1);
SELECT count(*) FROM orders.transition('00000000-0000-0000-0000-00000000e1a1', 'analyzing');
SELECT count(*) FROM orders.complete_analysis('00000000-0000-0000-0000-00000000e1d1', '[{"domain": "a.example.com", "metrics": {"price": 10}}]');
BEGIN;
CREATE OR REPLACE FUNCTION orders.site_counts() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
UPDATE orders.order_site_selections SET status = 'approved' WHERE domain = 'a.example.com';
COMMIT;
SQL
) || true
check "site_counts replaced by a no-op: the commit of an approval is refused (39P01)" 1 \
    "$(printf '%s' "$held" | grep -c '^ERROR:  39P01')"
check "... and nothing was stored: no item, the site suggested, the subtotal 0, site_counts still C" "0 suggested 0.00 c" \
    "$(q $R -c "SELECT (SELECT count(*) FROM orders.order_items i JOIN orders.orders o ON o.id = i.order_id WHERE o.order_number = 'HELD-1')
                 || ' ' || (SELECT status FROM orders.order_site_selections WHERE domain = 'a.example.com')
                 || ' ' || (SELECT subtotal FROM orders.orders WHERE order_number = 'HELD-1')
                 || ' ' || (SELECT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang WHERE p.oid = 'orders.site_counts()'::regprocedure)")"

# ------------------------------------ the extension's statements, no JIT --
# With jit_above_cost = 0 every plan made under the session's settings is
# compiled at each execution (a kept plan costed past the threshold: 170 ms
# per status change).  auto_explain shows each statement's plan, nested
# ones too, as a NOTICE; "JIT:" follows the plans that were compiled.  The
# session's own statements (tagged /* mine */) must be, the extension's
# (a status change that takes stock and writes history, statistics and the
# activity log; a booking; a cancellation that gives the booking back)
# must not.
q postgres -c "CREATE DATABASE $J"
q $J -c "CREATE EXTENSION orders" \
     -c "INSERT INTO orders.customers (id, full_name) VALUES ('00000000-0000-0000-0000-0000000009c1', 'Jit')" \
     -c "INSERT INTO orders.products (id, name, sku, stock_quantity) VALUES ('00000000-0000-0000-0000-0000000009d1', 'Jar', 'JIT-1', 10)" \
     -c "INSERT INTO orders.service_capacity (id, service_id, starts_at, ends_at)
         VALUES ('00000000-0000-0000-0000-0000000009a1', '00000000-0000-0000-0000-0000000009b1', now() + interval '1 day', now() + interval '1 day 1 hour')" \
     -c "INSERT INTO orders.orders (id, customer_id, lifecycle) VALUES ('00000000-0000-0000-0000-0000000009e1', '00000000-0000-0000-0000-0000000009c1', 'cod')" \
     -c "INSERT INTO orders.order_items (id, order_id, name, quantity, product_id)
         VALUES ('00000000-0000-0000-0000-0000000009f1', '00000000-0000-0000-0000-0000000009e1', 'Jar', 2, '00000000-0000-0000-0000-0000000009d1')" >/dev/null
jit_log=$(PGOPTIONS="-c client_min_messages=notice" psql -X -q -v ON_ERROR_STOP=1 -d $J 2>&1 <<'SQL'
LOAD 'auto_explain';
SET auto_explain.log_min_duration = 0;
SET auto_explain.log_nested_statements = on;
SET auto_explain.log_level = notice;
SET jit = on;
SET jit_above_cost = 0;
SET jit_inline_above_cost = -1;
SET jit_optimize_above_cost = -1;
/* mine */ SELECT count(*) FROM orders.products;
/* mine */ UPDATE orders.orders SET status = 'confirmed' WHERE id = '00000000-0000-0000-0000-0000000009e1';
/* mine */ SELECT orders.confirm_booking(orders.reserve_time_slot('00000000-0000-0000-0000-0000000009a1'), '00000000-0000-0000-0000-0000000009f1');
/* mine */ UPDATE orders.orders SET status = 'cancelled' WHERE id = '00000000-0000-0000-0000-0000000009e1';
SQL
)
jit_compiled() {   # the statements whose plan says "JIT:" (their text)
    printf '%s\n' "$jit_log" | awk '/Query Text:/ {sub(/.*Query Text: */, ""); text = $0}
                                    /^[[:space:]]*JIT:/ {print text}' | sort -u
}
check "the session's own statements were compiled (JIT works here: the check below can fail)" 4 \
    "$(jit_compiled | grep -c '^/\* mine \*/')"
# not the library's: PostgreSQL's foreign-key checks ("SELECT 1 FROM ONLY"),
# planned by PostgreSQL with the session's settings, nor the body of a SQL
# function (no text: orders.active_trigger_workflows(), once per session)
check "none of the library's statements was (stock, history, statistics, log, booking, give-back)" "" \
    "$(jit_compiled | grep -v -e '^/\* mine \*/' -e '^SELECT 1 FROM ONLY ' -e '^$')"
check "... and they ran: stock back to 10, the booking released, the slot free" "10 released 0 0" \
    "$(q $J -c "SELECT (SELECT stock_quantity FROM orders.products) || ' ' || (SELECT status FROM orders.slot_reservations)
                 || ' ' || (SELECT booked_count || ' ' || held_count FROM orders.service_capacity)")"
check "... as auto_explain shows: it saw the extension's statements" yes \
    "$(printf '%s\n' "$jit_log" | grep -q 'Query Text: .*orders.slot_reservations' && echo yes)"

# ------------------------------------ other encodings and collations --
# (0.44.0) A shop signs the UTF-8 bytes of its payload: in a LATIN1 database
# the text arrives converted, and the signature is checked over it in UTF-8
# again (every order with an accent was refused, 401).  In a SQL_ASCII
# database a \u escape past ASCII is a payload that is not JSON (400,
# logged), not an error.  In a Turkish database lower('I') is a dotless ı:
# emails, currencies and domains change case as in "C".
q postgres -c "CREATE DATABASE $U TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'" \
           -c "CREATE DATABASE $L TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'" \
           -c "CREATE DATABASE $S TEMPLATE template0 ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C'" \
           -c "CREATE DATABASE $T TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'tr-TR' LOCALE 'C.UTF-8'"
for db in $L $S $T; do
    q $db -c "CREATE EXTENSION orders" \
          -c "INSERT INTO orders.webhooks (name, source, endpoint, secret, field_mapping)
              VALUES ('Signed', 'woocommerce', 'signed', 's3cret', orders.webhook_mapping('woocommerce')),
                     ('Plain', 'woocommerce', 'plain', NULL, orders.webhook_mapping('woocommerce'))"
done
body='{"id": 1, "currency": "EUR", "total": "10.00", "billing": {"first_name": "Zoë", "last_name": "Ångström", "email": "zoe@example.com", "city": "Köln"}, "line_items": []}'
# the signature as the shop computes it: over the UTF-8 bytes (pgcrypto, in a UTF-8 database of the test's own)
sig=$(q $U -c "CREATE EXTENSION pgcrypto" -c "SELECT encode(hmac(convert_to(\$b\$$body\$b\$, 'UTF8'), 's3cret', 'sha256'), 'base64')")
check "a LATIN1 database: a signed order whose customer is Zoë Ångström of Köln is created (201), her name as sent" \
    "201 Zoë Ångström" \
    "$(PGCLIENTENCODING=UTF8 q $L -c "SELECT r ->> 'http_status' FROM orders.ingest_webhook('signed', \$b\$$body\$b\$, '$sig', 'l-1', 'order.created') r" \
                                 -c "SELECT full_name FROM orders.customers" | tr '\n' ' ' | sed 's/ $//')"
check "... and a wrong signature is still refused (401)" "401" \
    "$(PGCLIENTENCODING=UTF8 q $L -c "SELECT r ->> 'http_status' FROM orders.ingest_webhook('signed', \$b\$$body\$b\$, 'AAAA$sig', 'l-2', 'order.created') r")"
check "a SQL_ASCII database: the same signed bytes are created (201)" "201" \
    "$(PGCLIENTENCODING=UTF8 q $S -c "SELECT r ->> 'http_status' FROM orders.ingest_webhook('signed', \$b\$$body\$b\$, '$sig', 's-1', 'order.created') r")"
check "... a \\u escape past ASCII (WooCommerce's way of writing ë) is not JSON there: 400 OR094, logged, nothing made" \
    "400 OR094 1 1" \
    "$(q $S -c "SELECT (r ->> 'http_status') || ' ' || (r ->> 'code')
                  FROM orders.ingest_webhook('plain', '{\"id\": 2, \"billing\": {\"first_name\": \"Zo\\u00eb\", \"email\": \"z@example.com\"}}', NULL, 's-2', 'order.created') r" \
            -c "SELECT (SELECT count(*) FROM orders.webhook_logs WHERE delivery_id = 's-2') || ' ' || (SELECT count(*) FROM orders.orders)" | tr '\n' ' ' | sed 's/ $//')"
check "a Turkish (ICU tr-TR) database: an email in capitals and a currency in lower case keep their letters (no dotless ı, no İ)" \
    "201 alice@example.com INR" \
    "$(q $T -c "SELECT r ->> 'http_status'
                  FROM orders.ingest_webhook('plain', '{\"id\": 3, \"currency\": \"inr\", \"billing\": {\"email\": \"ALICE@EXAMPLE.COM\"}}', NULL, 't-1', 'order.created') r" \
            -c "SELECT c.email || ' ' || o.currency FROM orders.orders o JOIN orders.customers c ON c.id = o.customer_id" | tr '\n' ' ' | sed 's/ $//')"
# (review) a SQL_ASCII database holds whatever bytes came: a Latin-1 byte
# in a signed request's body is hashed as it is (401, logged), not checked as
# UTF-8 (22021, unlogged)
check "a SQL_ASCII database: a body with a Latin-1 byte and a wrong signature is refused (401) and logged" "401 1" \
    "$(q $S -c "SELECT r ->> 'http_status' FROM orders.ingest_webhook_body('signed', E'{\"id\": 9, \"note\": \"caf\\xe9\"}', 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=', 's-9', 'order.created') r" \
            -c "SELECT count(*) FROM orders.webhook_logs WHERE delivery_id = 's-9'" | tr '\n' ' ' | sed 's/ $//')"
check "... and a domain in capitals is a domain (ikea.com)" "ikea.com" \
    "$(q $T -c "SELECT orders.normalize_domain('https://WWW.IKEA.COM/x')")"

# (0.44.0) TRUNCATE of the webhooks: refused while orders keep an endpoint
# (OR096), taken with the orders in one statement (an AFTER guard)
q $U -c "CREATE EXTENSION orders" \
     -c "INSERT INTO orders.webhooks (name, source, endpoint, field_mapping) VALUES ('W', 'woocommerce', 'w', orders.webhook_mapping('woocommerce'))" \
     -c "SELECT orders.ingest_webhook('w', '{\"id\": 1, \"billing\": {\"email\": \"t@example.com\"}}', NULL, 'u-1', 'order.created')" >/dev/null
check "TRUNCATE orders.webhooks while an order keeps its endpoint: OR096, nothing truncated" "OR096 1 1" \
    "$(sqlstate $U "TRUNCATE orders.webhooks CASCADE") $(q $U -c "SELECT (SELECT count(*) FROM orders.webhooks) || ' ' || (SELECT count(*) FROM orders.orders)")"
check "TRUNCATE orders.orders, orders.webhooks in one statement (the order cancelled): both emptied" "0 0" \
    "$(q $U -c "SELECT count(orders.transition(id, 'cancelled')) FROM orders.orders" -c "TRUNCATE orders.orders, orders.webhooks CASCADE" \
            -c "SELECT (SELECT count(*) FROM orders.webhooks) || ' ' || (SELECT count(*) FROM orders.orders)" | tail -1)"

# ------------------------------------------------- the two cron jobs ran --
# The DDL above (extensions created and dropped) can overflow the pg_cron
# scheduler's invalidation queue while it sleeps; after the reset, pg_cron
# (1.6) does not reload its jobs — its relcache callback ignores the
# InvalidOid of a reset — and it would miss the jobs scheduled before (and
# run jobs unscheduled since).  Touching cron.job sends it a fresh
# invalidation: what a DBA does after such a burst (doc/operations.md).
q postgres -c "UPDATE cron.job SET active = active WHERE jobname LIKE 'orders-%'" >/dev/null
# pg_cron runs every-minute jobs at the start of each minute: wait up to 150 s
deadline=$((SECONDS + 150)) ran=""
while [ $SECONDS -lt $deadline ]; do
    ran=$(q postgres -c "SELECT string_agg(DISTINCT j.jobname || ':' || d.database, ',' ORDER BY j.jobname || ':' || d.database) FROM cron.job_run_details d JOIN cron.job j USING (jobid)
                         WHERE j.jobname LIKE 'orders-%' AND d.status = 'succeeded' AND d.start_time >= '$cron_from'")
    [ "$ran" = "$jobname@$A:$A,$jobname@$B:$B" ] && break
    sleep 3
done
check "both jobs ran under pg_cron and succeeded, each in its database" "$jobname@$A:$A,$jobname@$B:$B" "$ran"
for db in $A $B; do
    check "$db: its job expired the lapsed hold and gave the place back" "expired 0" \
        "$(q $db -c "SELECT (SELECT status FROM orders.slot_reservations) || ' ' || (SELECT held_count FROM orders.service_capacity)")"
done

tap_done
