#!/usr/bin/env bash
# test/catalog_identity.sh — a fresh install (sql/orders--<version>.sql,
# built from sql/schema/) and 0.1.0 + ALTER EXTENSION UPDATE (the upgrade
# scripts) give identical catalogs: every object, column order, default,
# constraint, index, trigger (WHEN, name order), function label (volatility,
# strictness, security, config, parallel), view, comment, privilege, RLS
# flag, sequence, extension member and dumped table, and the built-in
# lifecycle rows (test/catalog.sql lists them).  Also: an upgrade over data
# 0.7.0 refuses (NaN amounts) stops and says so; the update to 0.25.0 keeps
# a DBA's trigger settings; the update to 0.27.0 moves stored site costs;
# the update to 0.30.0 records what orders hold (stock_held); 0.31.0 keeps a
# DBA's setting of status_audit, 0.32.0 of state_meaning_guard.  Against the running test
# cluster (PGHOST/PGPORT/PGUSER set).
set -eu
REPO_DIR=$(cd "$(dirname "$0")/.." && pwd)
source "$REPO_DIR/test/tap.sh"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

fresh() { psql -X -q -v ON_ERROR_STOP=1 -d orders_cat_fresh "$@"; }
upgraded() { psql -X -q -v ON_ERROR_STOP=1 -d orders_cat_upgraded "$@"; }
for db in orders_cat_fresh orders_cat_upgraded; do
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" 2>/dev/null
done
fresh -c "SET client_min_messages = warning" -c "CREATE EXTENSION orders"
upgraded -c "SET client_min_messages = warning" -c "CREATE EXTENSION orders VERSION '0.1.0'" \
         -c "ALTER EXTENSION orders UPDATE"
fresh -f "$REPO_DIR/test/catalog.sql" > "$out/fresh"
upgraded -f "$REPO_DIR/test/catalog.sql" > "$out/upgraded"

ext_version() { "$@" -At -c "SELECT extversion FROM pg_extension WHERE extname = 'orders'"; }
version=$(ext_version fresh)
check "both are version $version" "$version" "$(ext_version upgraded)"
check "the listing has the extension's objects ($(wc -l < "$out/fresh") facts)" yes \
      "$([ "$(grep -c "^function " "$out/fresh")" -ge 40 ] && [ "$(grep -c "^column " "$out/fresh")" -ge 200 ] && echo yes)"
if diff -u "$out/upgraded" "$out/fresh" > "$out/diff"; then same=yes; else same=no; fi
check "fresh install and 0.1.0 + ALTER EXTENSION UPDATE have identical catalogs" yes $same
[ $same = yes ] || sed 's/^/# /' "$out/diff" | head -60

# an installation whose 0.6.0 let NaN into an amount: the upgrade stops,
# names the column, and goes through once the amount is a number
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS orders_cat_nan" -c "CREATE DATABASE orders_cat_nan" 2>/dev/null
nan() { psql -X -q -d orders_cat_nan "$@"; }
nan -c "SET client_min_messages = warning" -c "CREATE EXTENSION orders VERSION '0.6.0'" \
    -c "INSERT INTO orders.customers (id, full_name) VALUES ('00000000-0000-0000-0000-0000000000c1', 'N')" \
    -c "INSERT INTO orders.orders (customer_id, total_amount) VALUES ('00000000-0000-0000-0000-0000000000c1', 'NaN')"
msg=$(nan -v VERBOSITY=verbose -c "ALTER EXTENSION orders UPDATE" 2>&1 || true)
check "an upgrade over a NaN amount stops with 23514 and names the column" yes \
      "$(echo "$msg" | grep -q "23514" && echo "$msg" | grep -q "orders.orders.total_amount: 1 rows" && echo yes)"
check "... and leaves the installation at 0.6.0" 0.6.0 "$(ext_version nan)"
nan -c "UPDATE orders.orders SET total_amount = 0" -c "ALTER EXTENSION orders UPDATE"
check "once the amount is a number the upgrade goes through" "$version" "$(ext_version nan)"

# 0.25.0 re-creates three triggers of orders.orders without their WHEN
# clauses: one a DBA set ENABLE ALWAYS (as doc/operations.md's replication
# notes suggest) and one disabled keep those settings, one dropped stays so
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS orders_cat_trig" -c "CREATE DATABASE orders_cat_trig" 2>/dev/null
trig() { psql -X -q -v ON_ERROR_STOP=1 -d orders_cat_trig "$@"; }
trig -c "SET client_min_messages = warning" -c "CREATE EXTENSION orders VERSION '0.24.0'" \
     -c "ALTER TABLE orders.orders ENABLE ALWAYS TRIGGER status_audit" \
     -c "ALTER TABLE orders.orders DISABLE TRIGGER fire_workflows_on_change" \
     -c "DROP TRIGGER release_cancelled_bookings ON orders.orders" \
     -c "ALTER EXTENSION orders UPDATE TO '0.25.0'"
check "the update to 0.25.0 keeps a DBA's ENABLE ALWAYS, DISABLE and DROP of the triggers it re-creates" \
      "fire_workflows_on_change D true,status_audit A true" \
      "$(trig -At -c "SELECT string_agg(tgname || ' ' || tgenabled::text || ' ' || (tgqual IS NULL), ',' ORDER BY tgname) FROM pg_trigger
                      WHERE tgrelid = 'orders.orders'::regclass
                        AND tgname IN ('status_audit', 'release_cancelled_bookings', 'fire_workflows_on_change')")"

# 0.29.0 replaces the orders' workflow row triggers by statement triggers:
# each new one takes the setting a DBA gave the one it replaces, and one
# whose predecessor was dropped is not made
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS orders_cat_wf" -c "CREATE DATABASE orders_cat_wf" 2>/dev/null
wf() { psql -X -q -v ON_ERROR_STOP=1 -d orders_cat_wf "$@"; }
wf -c "SET client_min_messages = warning" -c "CREATE EXTENSION orders VERSION '0.28.0'" \
   -c "ALTER TABLE orders.orders DISABLE TRIGGER fire_workflows_on_change" \
   -c "DROP TRIGGER fire_workflows ON orders.orders" \
   -c "ALTER EXTENSION orders UPDATE TO '0.29.0'"
check "the update to 0.29.0 moves a DBA's DISABLE of fire_workflows_on_change to its statement trigger, and a dropped fire_workflows stays dropped" \
      "stats_then_workflows_update D" \
      "$(wf -At -c "SELECT string_agg(tgname || ' ' || tgenabled::text, ',' ORDER BY tgname) FROM pg_trigger
                    WHERE tgrelid = 'orders.orders'::regclass AND tgfoid IN ('orders.fire_workflows'::regproc, 'orders.fire_order_workflows'::regproc)")"

# 0.27.0 moves the costs a 0.26.0 database holds out of the sites' metrics
# and the snapshots of their items; grants the accessor to the API role
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS orders_cat_cost" -c "CREATE DATABASE orders_cat_cost" 2>/dev/null
cost() { psql -X -q -v ON_ERROR_STOP=1 -d orders_cat_cost "$@"; }
cost -c "SET client_min_messages = warning" -c "CREATE EXTENSION orders VERSION '0.26.0'" \
     -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'anon') THEN CREATE ROLE anon NOLOGIN; END IF;
               IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticated') THEN CREATE ROLE authenticated NOLOGIN; END IF; END \$\$" \
     -c "SELECT orders.grant_api()" \
     -c "INSERT INTO orders.customers (id, full_name) VALUES ('00000000-0000-0000-0000-0000000000c1', 'C')" \
     -c "INSERT INTO orders.orders (id, customer_id, lifecycle) VALUES ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000c1', 'review')" \
     -c "INSERT INTO orders.order_groups (id, order_id, client_id, link_count) VALUES
           ('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000c1', 2)" \
     -c "INSERT INTO orders.order_site_selections (order_group_id, domain, metrics, status) VALUES
           ('00000000-0000-0000-0000-0000000000b1', 'a.example.com', '{\"dr\": 5, \"cost\": 7, \"price\": 20}', 'approved'),
           ('00000000-0000-0000-0000-0000000000b1', 'b.example.com', '{\"cost\": 3}', 'suggested'),
           ('00000000-0000-0000-0000-0000000000b1', 'c.example.com', '{\"dr\": 1}', 'suggested')" \
     -c "INSERT INTO orders.order_items (order_id, name, snapshot) VALUES
           ('00000000-0000-0000-0000-0000000000a1', 'odd', '{\"site_selection_id\": \"x\", \"metrics\": [\"cost\"]}')"
check "a 0.26.0 site's item snapshots its cost" 7 \
      "$(cost -At -c "SELECT snapshot -> 'metrics' ->> 'cost' FROM orders.order_items WHERE name <> 'odd'")"
cost -c "ALTER TABLE orders.orders ENABLE ALWAYS TRIGGER order_columns_guard" -c "ALTER EXTENSION orders UPDATE"
check "... the update re-creates order_columns_guard with leads_purchased, keeping a DBA's ENABLE ALWAYS" "A true" \
      "$(cost -At -c "SELECT t.tgenabled::text || ' ' || (a.attnum = ANY (t.tgattr::int2[])) FROM pg_trigger t
                        JOIN pg_attribute a ON a.attrelid = t.tgrelid AND a.attname = 'leads_purchased'
                       WHERE t.tgrelid = 'orders.orders'::regclass AND t.tgname = 'order_columns_guard'")"
check "the update to 0.27.0 moves the sites' costs to internal_metrics" \
      'a.example.com {"dr": 5, "price": 20} {"cost": 7}; b.example.com {} {"cost": 3}; c.example.com {"dr": 1} {}' \
      "$(cost -At -c "SELECT string_agg(domain || ' ' || metrics::text || ' ' || internal_metrics::text, '; ' ORDER BY domain)
                      FROM orders.order_site_selections")"
check "... and out of the items' snapshots; amounts and counters stay" '{"dr": 5, "price": 20} 20.00 20.00 1 2' \
      "$(cost -At -c "SELECT (i.snapshot -> 'metrics')::text || ' ' || i.unit_price || ' ' || o.total_amount || ' ' || g.approved_count
                             || ' ' || g.suggested_count
                        FROM orders.order_items i JOIN orders.orders o ON o.id = i.order_id
                        JOIN orders.order_groups g ON g.order_id = o.id WHERE i.name <> 'odd'")"
check "... and leaves a snapshot whose metrics are no object (an item any writer made) as it was" '["cost"]' \
      "$(cost -At -c "SELECT snapshot -> 'metrics' FROM orders.order_items WHERE name = 'odd'")"
check "... and grants orders.site_internal_metrics to the authenticated role grant_api configured, not to anon" "true false" \
      "$(cost -At -c "SELECT has_function_privilege('authenticated', 'orders.site_internal_metrics(uuid)', 'EXECUTE') || ' '
                             || has_function_privilege('anon', 'orders.site_internal_metrics(uuid)', 'EXECUTE')")"

# 0.30.0 records what each order in a holding status holds (stock_held),
# as the stock triggers would write it; the stock already counts it — also
# with the stock triggers ENABLE ALWAYS (a fill under the replica role took
# the stock again)
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS orders_cat_held" -c "CREATE DATABASE orders_cat_held" 2>/dev/null
held() { psql -X -q -v ON_ERROR_STOP=1 -d orders_cat_held "$@"; }
held -c "SET client_min_messages = warning" -c "CREATE EXTENSION orders VERSION '0.29.0'" \
     -c "INSERT INTO orders.customers (id, full_name) VALUES ('00000000-0000-0000-0000-0000000000c1', 'C')" \
     -c "INSERT INTO orders.products (id, name, sku, stock_quantity) VALUES
           ('00000000-0000-0000-0000-0000000000f1', 'Kettle', 'K', 10), ('00000000-0000-0000-0000-0000000000f2', 'Shirt', 'S', 0)" \
     -c "INSERT INTO orders.product_variants (id, product_id, sku, name, stock_quantity) VALUES
           ('00000000-0000-0000-0000-0000000000e1', '00000000-0000-0000-0000-0000000000f2', 'S-L', 'Large', 10)" \
     -c "INSERT INTO orders.orders (id, customer_id) SELECT ('00000000-0000-0000-0000-0000000000a' || n)::uuid,
           '00000000-0000-0000-0000-0000000000c1' FROM generate_series(1, 3) n" \
     -c "INSERT INTO orders.order_items (order_id, name, quantity, product_id, variant_id)
         SELECT ('00000000-0000-0000-0000-0000000000a' || n)::uuid, x.name, x.q, x.p::uuid, x.v::uuid
           FROM generate_series(1, 3) n,
                (VALUES ('Kettle', 2, '00000000-0000-0000-0000-0000000000f1', NULL), ('Kettle', 1, '00000000-0000-0000-0000-0000000000f1', NULL),
                        ('Shirt L', 2, '00000000-0000-0000-0000-0000000000f2', '00000000-0000-0000-0000-0000000000e1'),
                        ('Wrap', 1, NULL, NULL)) x(name, q, p, v)" \
     -c "SELECT orders.transition('00000000-0000-0000-0000-0000000000a1', 'confirmed')" \
     -c "ALTER TABLE orders.orders ENABLE ALWAYS TRIGGER stock_on_status" \
     -c "ALTER TABLE orders.orders ENABLE ALWAYS TRIGGER status_guard" \
     -c "ALTER EXTENSION orders UPDATE TO '0.30.0'" \
     -c "SELECT orders.transition('00000000-0000-0000-0000-0000000000a2', 'confirmed')" >/dev/null
check "the update to 0.30.0 records what a confirmed order holds as the triggers write it (and nothing for a new one), its stock taken once" \
      "true 1 K=4 S=0 S-L=6" \
      "$(held -At -c "SELECT (SELECT (a.stock_held = b.stock_held AND a.stock_held::text = b.stock_held::text)
                                FROM orders.orders a, orders.orders b
                               WHERE a.id = '00000000-0000-0000-0000-0000000000a1' AND b.id = '00000000-0000-0000-0000-0000000000a2')
                             || ' ' || (SELECT count(*) FROM orders.orders WHERE stock_held IS NULL AND status = 'new')
                             || ' ' || (SELECT string_agg(sku || '=' || stock_quantity, ' ' ORDER BY sku)
                                          FROM (SELECT sku, stock_quantity FROM orders.products
                                                UNION ALL SELECT sku, stock_quantity FROM orders.product_variants) s)")"
held -c "SELECT orders.transition('00000000-0000-0000-0000-0000000000a1', 'cancelled')" >/dev/null
check "... and the order confirmed before the update gives it all back when cancelled" "K=7 S=0 S-L=8" \
      "$(held -At -c "SELECT string_agg(sku || '=' || stock_quantity, ' ' ORDER BY sku)
                        FROM (SELECT sku, stock_quantity FROM orders.products UNION ALL SELECT sku, stock_quantity FROM orders.product_variants) s")"

# 0.31.0 re-creates status_audit on every UPDATE (not UPDATE OF status),
# keeping a DBA's ENABLE ALWAYS; a dropped one stays dropped
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS orders_cat_audit" -c "CREATE DATABASE orders_cat_audit" 2>/dev/null
audit() { psql -X -q -v ON_ERROR_STOP=1 -d orders_cat_audit "$@"; }
audit -c "SET client_min_messages = warning" -c "CREATE EXTENSION orders VERSION '0.30.0'" \
      -c "ALTER TABLE orders.orders ENABLE ALWAYS TRIGGER status_audit" -c "ALTER EXTENSION orders UPDATE TO '0.31.0'"
check "the update to 0.31.0 fires status_audit on every UPDATE and keeps a DBA's ENABLE ALWAYS" "A 0" \
      "$(audit -At -c "SELECT tgenabled::text || ' ' || cardinality(tgattr::int2[]) FROM pg_trigger WHERE tgrelid = 'orders.orders'::regclass AND tgname = 'status_audit'")"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS orders_cat_audit" -c "CREATE DATABASE orders_cat_audit" 2>/dev/null
audit -c "SET client_min_messages = warning" -c "CREATE EXTENSION orders VERSION '0.30.0'" \
      -c "DROP TRIGGER status_audit ON orders.orders" -c "ALTER EXTENSION orders UPDATE TO '0.31.0'"
check "... and leaves a dropped status_audit dropped" "0" \
      "$(audit -At -c "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'orders.orders'::regclass AND tgname = 'status_audit'")"

# 0.32.0 re-creates state_meaning_guard for renames and deletes too,
# keeping a DBA's DISABLE; a dropped one stays dropped
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS orders_cat_state" -c "CREATE DATABASE orders_cat_state" 2>/dev/null
state() { psql -X -q -v ON_ERROR_STOP=1 -d orders_cat_state "$@"; }
state -c "SET client_min_messages = warning" -c "CREATE EXTENSION orders VERSION '0.31.0'" \
      -c "ALTER TABLE orders.lifecycle_states DISABLE TRIGGER state_meaning_guard" -c "ALTER EXTENSION orders UPDATE TO '0.32.0'"
check "the update to 0.32.0 guards renames and deletes of states and keeps a DBA's DISABLE" "D 4 27" \
      "$(state -At -c "SELECT tgenabled::text || ' ' || cardinality(tgattr::int2[]) || ' ' || tgtype FROM pg_trigger WHERE tgrelid = 'orders.lifecycle_states'::regclass AND tgname = 'state_meaning_guard'")"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS orders_cat_state" -c "CREATE DATABASE orders_cat_state" 2>/dev/null
state -c "SET client_min_messages = warning" -c "CREATE EXTENSION orders VERSION '0.31.0'" \
      -c "DROP TRIGGER state_meaning_guard ON orders.lifecycle_states" -c "ALTER EXTENSION orders UPDATE TO '0.32.0'"
check "... and leaves a dropped state_meaning_guard dropped" "0" \
      "$(state -At -c "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'orders.lifecycle_states'::regclass AND tgname = 'state_meaning_guard'")"

# 0.38.0 re-creates order_columns_guard with delivery_address and
# delivery_area, keeping a DBA's DISABLE, and gives the share links made
# before it their order's customer
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS orders_cat_38" -c "CREATE DATABASE orders_cat_38" 2>/dev/null
c38() { psql -X -q -v ON_ERROR_STOP=1 -d orders_cat_38 "$@"; }
c38 -c "SET client_min_messages = warning" -c "CREATE EXTENSION orders VERSION '0.37.0'" \
    -c "INSERT INTO orders.customers (id, full_name) VALUES ('00000000-0000-0000-0000-0000000000c1', 'C')" \
    -c "INSERT INTO orders.orders (id, order_number, customer_id, lifecycle)
          VALUES ('00000000-0000-0000-0000-0000000000a1', 'U-1', '00000000-0000-0000-0000-0000000000c1', 'review')" \
    -c "SELECT orders.create_share_token('00000000-0000-0000-0000-0000000000a1')" \
    -c "ALTER TABLE orders.orders DISABLE TRIGGER order_columns_guard" -c "ALTER EXTENSION orders UPDATE TO '0.38.0'" >/dev/null
check "the update to 0.38.0 re-creates order_columns_guard with the delivery columns, keeping a DBA's DISABLE, and fills the links' customer" \
      "D true 00000000-0000-0000-0000-0000000000c1" \
      "$(c38 -At -c "SELECT t.tgenabled::text || ' ' || (a.attnum = ANY (t.tgattr::int2[])) || ' '
                            || (SELECT string_agg(customer_id::text, ',') FROM orders.order_share_tokens)
                       FROM pg_trigger t JOIN pg_attribute a ON a.attrelid = t.tgrelid AND a.attname = 'delivery_address'
                      WHERE t.tgrelid = 'orders.orders'::regclass AND t.tgname = 'order_columns_guard'")"

# 0.39.0 renames check_assignment (a DBA's DISABLE kept), stops the
# workflows whose webhook steps post to an address its checks refuse, and
# warns of stored site prices that are no amounts
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS orders_cat_39" -c "CREATE DATABASE orders_cat_39" 2>/dev/null
c39() { psql -X -q -v ON_ERROR_STOP=1 -d orders_cat_39 "$@"; }
c39 -c "SET client_min_messages = warning" -c "CREATE EXTENSION orders VERSION '0.38.0'" \
    -c "INSERT INTO orders.workflows (name, trigger_type, workflow_steps) VALUES
          ('notify', 'manual', '[{\"id\": \"p\", \"type\": \"send_notification\", \"config\": {\"channel\": \"webhook\", \"url\": \"http://169.254.169.254/latest/\", \"title\": \"x\"}}]'),
          ('notify', 'manual', '[{\"id\": \"p\", \"type\": \"send_notification\", \"config\": {\"channel\": \"webhook\", \"url\": \"https://hooks.example.com/x\", \"title\": \"x\"}}]'),
          ('public', 'manual', '[{\"id\": \"p\", \"type\": \"send_notification\", \"config\": {\"channel\": \"webhook\", \"url\": \"https://hooks.example.com/y\", \"title\": \"y\"}}]')" \
    -c "INSERT INTO orders.customers (id, full_name) VALUES ('00000000-0000-0000-0000-0000000000c1', 'C')" \
    -c "INSERT INTO orders.orders (id, order_number, customer_id, lifecycle)
          VALUES ('00000000-0000-0000-0000-0000000000a1', 'U-1', '00000000-0000-0000-0000-0000000000c1', 'review')" \
    -c "INSERT INTO orders.order_groups (id, order_id, client_id, link_count)
          VALUES ('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000c1', 1)" \
    -c "INSERT INTO orders.order_site_selections (order_group_id, domain, metrics)
          VALUES ('00000000-0000-0000-0000-0000000000b1', 'p.example.com', '{\"price\": \"12.50\"}')" \
    -c "ALTER TABLE orders.orders DISABLE TRIGGER check_assignment" >/dev/null
warned=$(c39 -c "ALTER EXTENSION orders UPDATE TO '0.39.0'" 2>&1 >/dev/null | grep -c '^WARNING:  orders 0.39.0')
check "the update to 0.39.0 renames check_assignment keeping a DBA's DISABLE, stops the workflow posting to 169.254.169.254 (not the others, one of the same name), warns of both" \
      "D notify=false notify=true public=true 2" \
      "$(c39 -At -c "SELECT (SELECT tgenabled::text FROM pg_trigger WHERE tgrelid = 'orders.orders'::regclass AND tgname = 'orders_assignment_check')
                            || ' ' || string_agg(name || '=' || is_active, ' ' ORDER BY name, is_active) FROM orders.workflows") $warned"

# 0.40.0 bounds the indexed text columns: rows already longer stop the
# update (23514, naming each column), which changes nothing; once they are
# shortened it adds the twelve bounds, valid
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS orders_cat_40" -c "CREATE DATABASE orders_cat_40" 2>/dev/null
c40() { psql -X -q -v ON_ERROR_STOP=1 -d orders_cat_40 "$@"; }
c40 -c "SET client_min_messages = warning" -c "CREATE EXTENSION orders VERSION '0.39.0'" \
    -c "INSERT INTO orders.customers (id, full_name, email) VALUES ('00000000-0000-0000-0000-0000000000c1', 'C', repeat('e', 400))" \
    -c "INSERT INTO orders.products (name, sku, price) VALUES ('P', repeat('k', 300), 1)" \
    -c "INSERT INTO orders.expenses (category, amount) VALUES ('fuel', 1)" >/dev/null
refusal=$(c40 -v VERBOSITY=verbose -c "ALTER EXTENSION orders UPDATE TO '0.40.0'" 2>&1 | grep -E '^(ERROR|DETAIL)' | tr '\n' ' ')
check "the update to 0.40.0 refuses rows longer than a bound (23514, each column named) and changes nothing" \
      "ERROR:  23514: orders 0.40.0 bounds the lengths of indexed text columns, and rows are longer DETAIL:  orders.customers.email: 1 rows longer than 320 characters; orders.products.sku: 1 rows longer than 255 characters.  0.39.0" \
      "$refusal $(c40 -At -c "SELECT extversion FROM pg_extension WHERE extname = 'orders'")"
c40 -c "UPDATE orders.customers SET email = 'c@example.com'" -c "UPDATE orders.products SET sku = 'P-1'" \
    -c "ALTER EXTENSION orders UPDATE TO '0.40.0'" >/dev/null
refused=$(c40 -c "INSERT INTO orders.customers (full_name, email) VALUES ('D', repeat('e', 400))" 2>&1 | grep -c 'customers_email_check')
check "... shortened, the update adds the twelve bounds, valid, and they refuse new rows" "12 1" \
      "$(c40 -At -c "SELECT count(*) FILTER (WHERE convalidated)
                       FROM pg_constraint WHERE connamespace = 'orders'::regnamespace AND contype = 'c'
                        AND conname = ANY (ARRAY['customers_email_check', 'customers_phone_check', 'customers_area_check', 'staff_email_check',
                                                 'products_sku_check', 'product_variants_sku_check', 'products_category_check', 'order_items_sku_check',
                                                 'orders_delivery_area_check', 'orders_external_id_check', 'orders_webhook_source_check', 'expenses_category_check'])") $refused"

# 0.41.0 bounds what clients write into agency orders: rows already larger
# stop the update (23514, naming each column), which changes nothing; once
# shrunk it adds the bounds, valid.  The target pages are 1.4 MB of JSON
# that compress to 20 kB: measured as stored (a first cut), they passed,
# and the dump did not restore.
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS orders_cat_41" -c "CREATE DATABASE orders_cat_41" 2>/dev/null
c41() { psql -X -q -v ON_ERROR_STOP=1 -d orders_cat_41 "$@"; }
c41 -c "SET client_min_messages = warning" -c "CREATE EXTENSION orders VERSION '0.40.0'" \
    -c "INSERT INTO orders.customers (id, full_name) VALUES ('00000000-0000-0000-0000-0000000000c1', 'C')" \
    -c "INSERT INTO orders.orders (id, customer_id, metadata) VALUES ('00000000-0000-0000-0000-0000000000d1', '00000000-0000-0000-0000-0000000000c1', '{\"n\": 1e131071}')" \
    -c "INSERT INTO orders.order_groups (order_id, client_id, link_count, target_pages)
        SELECT '00000000-0000-0000-0000-0000000000d1', '00000000-0000-0000-0000-0000000000c1', 1,
               (SELECT jsonb_agg(text 'https://example.com/page') FROM generate_series(1, 50000))" \
    -c "INSERT INTO orders.order_requirements (order_id, requirement_type, requirement_value)
        VALUES ('00000000-0000-0000-0000-0000000000d1', 'niche', '\"x\"'), ('00000000-0000-0000-0000-0000000000d1', repeat('n', 70), '1')" >/dev/null
refusal=$(c41 -v VERBOSITY=verbose -c "ALTER EXTENSION orders UPDATE TO '0.41.0'" 2>&1 | grep -E '^(ERROR|DETAIL)' | tr '\n' ' ')
check "the update to 0.41.0 refuses agency rows larger than a bound (23514, each column named) and changes nothing" \
      "ERROR:  23514: orders 0.41.0 bounds what clients write into agency orders and orders' metadata, and rows are larger DETAIL:  orders.order_groups.target_pages: 1 rows larger than 256 kB or with numbers past 1e20 or 20 decimals; orders.order_requirements.requirement_type: 1 rows longer than 63 characters; orders.orders.metadata: 1 rows larger than 1 MB or with numbers past 1e20 or 20 decimals.  0.40.0" \
      "$refusal $(c41 -At -c "SELECT extversion FROM pg_extension WHERE extname = 'orders'")"
c41 -c "UPDATE orders.order_groups SET target_pages = '[]'" -c "DELETE FROM orders.order_requirements WHERE requirement_type <> 'niche'" \
    -c "UPDATE orders.orders SET metadata = '{}'" \
    -c "ALTER EXTENSION orders UPDATE TO '0.41.0'" >/dev/null
refused=$(c41 -c "UPDATE orders.order_requirements SET requirement_value = to_jsonb(repeat(md5('x'), 3000))" 2>&1 | grep -c 'order_requirements_requirement_value_check')
check "... shrunk, the update adds the six bounds, valid, and they refuse new values" "6 1" \
      "$(c41 -At -c "SELECT count(*) FILTER (WHERE convalidated AND pg_get_constraintdef(oid) ~ '(jsonb_within|\{0,62\})')
                       FROM pg_constraint WHERE connamespace = 'orders'::regnamespace AND contype = 'c'
                        AND conname = ANY (ARRAY['order_groups_target_pages_check', 'order_groups_anchor_texts_check',
                                                 'order_groups_requirement_overrides_check', 'order_requirements_requirement_type_check',
                                                 'order_requirements_requirement_value_check', 'orders_metadata_check'])") $refused"

# 0.42.0 bounds every other JSON column API roles write: rows already
# larger stop the update (23514, naming each column), and so do webhook
# logs keeping a number past 1e20; once shrunk it adds the bounds, valid
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS orders_cat_42" -c "CREATE DATABASE orders_cat_42" 2>/dev/null
c42() { psql -X -q -v ON_ERROR_STOP=1 -d orders_cat_42 "$@"; }
c42 -c "SET client_min_messages = warning" -c "CREATE EXTENSION orders VERSION '0.41.0'" \
    -c "INSERT INTO orders.customers (id, full_name, tags) VALUES ('00000000-0000-0000-0000-0000000000c1', 'C', '[1e131071]')" \
    -c "INSERT INTO orders.leads (metadata) VALUES ('{\"n\": 1e131071}')" \
    -c "INSERT INTO orders.staff (full_name, role, permissions)
        VALUES ('S', 'admin', jsonb_build_object('pad', repeat('p', 70000)))" \
    -c "INSERT INTO orders.webhook_logs (request_payload, response_status) VALUES ('{\"total\": 1e131071}', 400)" \
    -c "INSERT INTO orders.customers (full_name, address) VALUES ('Long', repeat('a', 2001))" >/dev/null
refusal=$(c42 -v VERBOSITY=verbose -c "ALTER EXTENSION orders UPDATE TO '0.42.0'" 2>&1 | grep -E '^(ERROR|DETAIL)' | tr '\n' ' ')
check "the update to 0.42.0 refuses JSON larger than a bound or with wide numbers (23514, each column named, webhook logs too) and changes nothing" \
      "ERROR:  23514: orders 0.42.0 bounds the JSON API roles write, and rows are larger DETAIL:  orders.customers.tags: 1 rows larger than 64 kB or with numbers past 1e20 or 40 decimals; orders.leads.metadata: 1 rows larger than 1 MB or with numbers past 1e20 or 40 decimals; orders.staff.permissions: 1 rows larger than 64 kB or with numbers past 1e20 or 40 decimals; orders.webhook_logs.request_payload: 1 rows with numbers past 1e20 or 40 decimals.  0.41.0" \
      "$refusal $(c42 -At -c "SELECT extversion FROM pg_extension WHERE extname = 'orders'")"
c42 -c "UPDATE orders.customers SET tags = '[]'" -c "UPDATE orders.leads SET metadata = '{}'" -c "UPDATE orders.staff SET permissions = '{}'" \
    -c "DELETE FROM orders.webhook_logs" >/dev/null
refusal=$(c42 -v VERBOSITY=verbose -c "ALTER EXTENSION orders UPDATE TO '0.42.0'" 2>&1 | grep -E '^(ERROR|DETAIL)' | tr '\n' ' ')
check "... then it refuses text longer than a bound (23514, each column named) and changes nothing" \
      "ERROR:  23514: orders 0.42.0 bounds the lengths of the text API roles write, and rows are longer DETAIL:  orders.customers.address: 1 rows longer than 2000 characters.  0.41.0" \
      "$refusal $(c42 -At -c "SELECT extversion FROM pg_extension WHERE extname = 'orders'")"
c42 -c "UPDATE orders.customers SET address = left(address, 2000)" -c "ALTER EXTENSION orders UPDATE TO '0.42.0'" >/dev/null
refused=$(c42 -c "UPDATE orders.leads SET metadata = '{\"n\": 1e131071}'" 2>&1 | grep -c 'leads_metadata_check')
check "... shrunk, the update adds the fourteen bounds, valid, and they refuse new values" "14 1" \
      "$(c42 -At -c "SELECT count(*) FILTER (WHERE convalidated AND pg_get_constraintdef(oid) ~ 'jsonb_within')
                       FROM pg_constraint WHERE connamespace = 'orders'::regnamespace AND contype = 'c'
                        AND conname = ANY (ARRAY['customers_tags_check', 'staff_permissions_check', 'products_images_check',
                                                 'product_variants_attributes_check', 'orders_delivery_proof_check',
                                                 'order_items_snapshot_check', 'leads_metadata_check', 'deliveries_route_data_check',
                                                 'deliveries_proof_of_delivery_check', 'order_site_selections_metrics_check',
                                                 'order_site_selections_internal_metrics_check', 'order_share_tokens_metadata_check',
                                                 'workflows_trigger_config_check', 'workflows_workflow_steps_check'])") $refused"

# 0.43.0 re-creates site_price_check (prices in cents), keeping a DBA's
# DISABLE; a dropped one stays dropped (the update failed on it)
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS orders_cat_43" -c "CREATE DATABASE orders_cat_43" 2>/dev/null
c43() { psql -X -q -v ON_ERROR_STOP=1 -d orders_cat_43 "$@"; }
c43 -c "SET client_min_messages = warning" -c "CREATE EXTENSION orders VERSION '0.42.0'" \
    -c "ALTER TABLE orders.order_site_selections DISABLE TRIGGER site_price_check" -c "ALTER EXTENSION orders UPDATE TO '0.43.0'" >/dev/null
check "the update to 0.43.0 gives site_price_check its new rule and keeps a DBA's DISABLE" "D true" \
      "$(c43 -At -c "SELECT tgenabled::text || ' ' || (pg_get_triggerdef(oid) ~ 'site_price_valid') FROM pg_trigger
                       WHERE tgrelid = 'orders.order_site_selections'::regclass AND tgname = 'site_price_check'")"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS orders_cat_43" -c "CREATE DATABASE orders_cat_43" 2>/dev/null
c43 -c "SET client_min_messages = warning" -c "CREATE EXTENSION orders VERSION '0.42.0'" \
    -c "DROP TRIGGER site_price_check ON orders.order_site_selections" -c "ALTER EXTENSION orders UPDATE TO '0.43.0'" >/dev/null
check "... and leaves a dropped site_price_check dropped (the update succeeds)" "0 0.43.0" \
      "$(c43 -At -c "SELECT count(*) || ' ' || (SELECT extversion FROM pg_extension WHERE extname = 'orders') FROM pg_trigger
                       WHERE tgrelid = 'orders.order_site_selections'::regclass AND tgname = 'site_price_check'")"

for db in orders_cat_fresh orders_cat_upgraded orders_cat_nan orders_cat_trig orders_cat_cost orders_cat_wf orders_cat_held orders_cat_audit orders_cat_state orders_cat_38 orders_cat_39 orders_cat_40 orders_cat_41 orders_cat_42 orders_cat_43; do
    psql -X -q -d postgres -c "DROP DATABASE $db"
done
tap_done
