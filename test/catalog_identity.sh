#!/usr/bin/env bash
# test/catalog_identity.sh — a fresh install (sql/orders--<version>.sql,
# built from sql/schema/) and 0.1.0 + ALTER EXTENSION UPDATE (the upgrade
# scripts) give identical catalogs: every object, column order, default,
# constraint, index, trigger (WHEN, name order), function label (volatility,
# strictness, security, config, parallel), view, comment, privilege, RLS
# flag, sequence, extension member and dumped table, and the built-in
# lifecycle rows (test/catalog.sql lists them).  Against the running test
# cluster (PGHOST/PGPORT/PGUSER set).
set -eu
REPO_DIR=$(cd "$(dirname "$0")/.." && pwd)
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

n=0; failed=0
check() {
    n=$((n + 1))
    if eval "$1"; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi
}
version=$(fresh -At -c "SELECT extversion FROM pg_extension WHERE extname = 'orders'")
check '[ "$version" = "$(upgraded -At -c "SELECT extversion FROM pg_extension WHERE extname = '"'"'orders'"'"'")" ]' \
      "both are version $version"
check '[ "$(grep -c "^function " "$out/fresh")" -ge 40 ] && [ "$(grep -c "^column " "$out/fresh")" -ge 200 ]' \
      "the listing has the extension's objects ($(wc -l < "$out/fresh") facts)"
if diff -u "$out/upgraded" "$out/fresh" > "$out/diff"; then same=yes; else same=no; fi
check '[ $same = yes ]' "fresh install and 0.1.0 + ALTER EXTENSION UPDATE have identical catalogs"
[ $same = yes ] || sed 's/^/# /' "$out/diff" | head -60
echo "1..$n"
for db in orders_cat_fresh orders_cat_upgraded; do psql -X -q -d postgres -c "DROP DATABASE $db"; done
[ "$failed" -eq 0 ]
