#!/usr/bin/env bash
# test/catalog_identity.sh — a fresh install (sql/orders--<version>.sql,
# built from sql/schema/) and 0.1.0 + ALTER EXTENSION UPDATE (the upgrade
# scripts) give identical catalogs: every object, column order, default,
# constraint, index, trigger (WHEN, name order), function label (volatility,
# strictness, security, config, parallel), view, comment, privilege, RLS
# flag, sequence, extension member and dumped table, and the built-in
# lifecycle rows (test/catalog.sql lists them).  Also: an upgrade over data
# 0.7.0 refuses (NaN amounts) stops and says so; the update to 0.25.0 keeps
# a DBA's trigger settings.  Against the running test
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
     -c "ALTER EXTENSION orders UPDATE"
check "the update to 0.25.0 keeps a DBA's ENABLE ALWAYS, DISABLE and DROP of the triggers it re-creates" \
      "fire_workflows_on_change D true,status_audit A true" \
      "$(trig -At -c "SELECT string_agg(tgname || ' ' || tgenabled::text || ' ' || (tgqual IS NULL), ',' ORDER BY tgname) FROM pg_trigger
                      WHERE tgrelid = 'orders.orders'::regclass
                        AND tgname IN ('status_audit', 'release_cancelled_bookings', 'fire_workflows_on_change')")"

for db in orders_cat_fresh orders_cat_upgraded orders_cat_nan orders_cat_trig; do psql -X -q -d postgres -c "DROP DATABASE $db"; done
tap_done
