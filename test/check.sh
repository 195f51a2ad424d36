#!/usr/bin/env bash
# The whole test suite: build, start a throwaway cluster, then run
#   a check that the server has no multixact bug (PostgreSQL >= 15.20, gdb),
#   a lint of the SQL run with more rights than its caller (search_path),
#   the README's demo,
#   pg_regress (exact outputs), isolation specs (races), pgTAP as a superuser
#   and as a non-superuser PostgREST-style login, the row level security
#   matrix (every persona x table x operation, its own cluster, port 54340),
#   requests through a real PostGraphile v4 server over HTTP (its own
#   cluster, ports 54338-54339), dump/restore round trips
#   (psql, pg_restore, four jobs), pgbench soaks that compare stored counters
#   with a recount, pg_cron, operations (two databases with their jobs, DROP
#   EXTENSION, recounts cancelled by statement_timeout) and logical
#   replication to a second cluster (its own two clusters, ports 54334-54335),
#   and scale-out behind PL/Proxy (a proxy and two node clusters, ports
#   54344-54346).
# Exits non-zero when anything fails.
source "$(dirname "$0")/lib.sh"

TEST_DIR=${ORDERS_TEST_DIR:-/tmp/orders-test}
TEST_PORT=${ORDERS_TEST_PORT:-54330}
passed=0; failed=0; failures=""

# suite NAME CMD... — run one suite, record its outcome.
suite() {
    local name=$1; shift
    log "suite: $name"
    if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); failures="$failures $name"; fi
}

ensure_packages
ensure_packages gdb      # the server check of test/multixact/server_window.sh
build_install
stop_cluster "$TEST_DIR"
rm -rf "$TEST_DIR"
start_cluster "$TEST_DIR" "$TEST_PORT"
trap 'stop_cluster "$TEST_DIR"' EXIT
export PGDATABASE=postgres

regress() {
    make -s -C "$REPO_DIR" PG_CONFIG=$PG_BIN/pg_config installcheck \
        || { cat "$REPO_DIR"/test/regress/regression.diffs "$REPO_DIR"/test/regression.diffs 2>/dev/null | head -200; return 1; }
}

# pgTAP: a fresh database with roles shaped like a PostgREST deployment.
pgtap() {
    cd "$REPO_DIR"          # test files read their payloads relative to the repository
    psql -q -X -v ON_ERROR_STOP=1 -f "$REPO_DIR/test/setup.sql" >/dev/null || return 1
    pg_prove -d orders_tap --ext .sql -r "$REPO_DIR/test/pgtap" || return 1
    # the same requests as PostgREST sends them, from a non-superuser login
    pg_prove -d orders_tap -U authenticator --ext .sql -r "$REPO_DIR/test/pgtap_api"
}

# the README's demo (test/quickstart.sh runs it) goes through: no error but
# the refusals it shows on purpose, no error of psql's own (a broken \echo)
demo() {
    local out
    psql -q -X -c "DROP DATABASE IF EXISTS orders_demo" -c "CREATE DATABASE orders_demo" \
        && psql -q -X -d orders_demo -v ON_ERROR_STOP=1 -c "CREATE EXTENSION orders" || return 1
    out=$(psql -X -d orders_demo -v ON_ERROR_STOP=1 -f "$REPO_DIR/test/demo.sql" 2>&1) || { echo "$out" | tail -20; return 1; }
    if echo "$out" | grep -E ': error: '; then return 1; fi
    # it shows refusals, each naming its SQLSTATE (psql's VERBOSITY verbose;
    # the test clusters are made with --locale=C.UTF-8: English messages)
    if ! echo "$out" | grep -qE 'ERROR:  [0-9A-Z]{5}: '; then
        echo "demo: no refusal shown"; return 1
    fi
    if echo "$out" | grep -E 'ERROR: ' | grep -vE 'ERROR:  [0-9A-Z]{5}: '; then
        echo "demo: a refusal above is shown without its SQLSTATE"; return 1
    fi
    echo "demo: $(echo "$out" | grep -c ERROR) refusals shown, as written, each with its SQLSTATE"
}

# SQL that runs with more rights than its caller names nothing through the
# caller's search_path: the lint checks itself, then src/ and sql/
lint_sql() {
    perl "$REPO_DIR/test/lint/qualified_sql.pl" --self-test >/dev/null && perl "$REPO_DIR/test/lint/qualified_sql.pl"
}

suite lint-sql lint_sql
suite demo demo
suite server-multixact bash "$REPO_DIR/test/multixact/server_window.sh"
suite regress-and-isolation regress
suite catalog-identity bash "$REPO_DIR/test/catalog_identity.sh"
suite pgtap pgtap
suite rls-matrix bash "$REPO_DIR/test/rls_matrix.sh"
suite api-server bash "$REPO_DIR/test/api_server.sh"
suite dump-restore bash "$REPO_DIR/test/dump_restore.sh"
suite soak-leads bash "$REPO_DIR/test/soak/leads.sh" "${ORDERS_SOAK_SECONDS:-20}"
suite soak-slots bash "$REPO_DIR/test/soak/slots.sh" "${ORDERS_SOAK_SECONDS:-20}"
suite soak-customers bash "$REPO_DIR/test/soak/customers.sh" "${ORDERS_SOAK_SECONDS:-20}"
suite soak-stock bash "$REPO_DIR/test/soak/stock.sh" "${ORDERS_SOAK_SECONDS:-20}"
suite soak-review bash "$REPO_DIR/test/soak/review.sh" "${ORDERS_SOAK_SECONDS:-20}"
suite soak-webhooks bash "$REPO_DIR/test/soak/webhooks.sh" "${ORDERS_SOAK_SECONDS:-20}"
suite soak-outbox bash "$REPO_DIR/test/soak/outbox.sh" "${ORDERS_SOAK_SECONDS:-20}"
suite soak-announcer bash "$REPO_DIR/test/soak/announcer.sh" "${ORDERS_SOAK_SECONDS:-20}"
suite soak-workflows bash "$REPO_DIR/test/soak/workflows.sh" "${ORDERS_SOAK_SECONDS:-20}"
suite pg_cron bash "$REPO_DIR/test/cron.sh"
suite operations bash "$REPO_DIR/test/operations.sh"
suite replication bash "$REPO_DIR/test/replication.sh"
suite scale-out bash "$REPO_DIR/test/scale_out.sh"

log "summary"
[ -n "$failures" ] && echo "failed suites:$failures"
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
