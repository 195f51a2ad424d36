#!/usr/bin/env bash
# Row level security, persona × table × operation (TAP): a cluster of its
# own (port ORDERS_RLS_PORT, default 54340), a database with the extension,
# the API roles and test/rls/fixtures.sql loaded as a superuser; then every
# cell of test/rls/matrix.tsv runs as PostgREST would run it — logged in as
# authenticator (LOGIN NOINHERIT, not a superuser), one transaction per cell
# that sets role and request.jwt.claims for the transaction, runs the
# line's statement from test/rls/statements.tsv and rolls back — and the
# rows seen or affected, or the SQLSTATE, must equal the cell.  A refused
# cell must also leave its table as it was (md5 of its rows, read as a
# superuser before and after the cell).  Then the trust boundary: logins
# that are not API roles (mallory, granted nothing; reporting, granted
# SELECT on orders.orders) gain nothing by setting claims.  The model is
# doc/security.md (0.8.0); the extension must be installed in ORDERS_PG_BIN.
# ORDERS_RLS_ONLY=<regex> runs only the grid lines whose "table op" matches.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/tap.sh"

RLS_DIR=${ORDERS_RLS_DIR:-/tmp/orders-rls}
RLS_PORT=${ORDERS_RLS_PORT:-54340}
DB=orders_rls
FIXTURES=${ORDERS_RLS_FIXTURES:-$REPO_DIR/test/rls/fixtures.sql}
MATRIX=${ORDERS_RLS_MATRIX:-$REPO_DIR/test/rls/matrix.tsv}
STATEMENTS=${ORDERS_RLS_STATEMENTS:-$REPO_DIR/test/rls/statements.tsv}
ONLY=${ORDERS_RLS_ONLY:-}

# personas in the column order of the grid; the JWT sub of each (anon: none)
PERSONAS=(anon cust_a cust_b admin manager rep agent accountant)
declare -A SUB=(
    [anon]=''
    [cust_a]=00000000-0000-0000-acc0-00000000000a
    [cust_b]=00000000-0000-0000-acc0-00000000000b
    [admin]=00000000-0000-0000-acc0-000000000001
    [manager]=00000000-0000-0000-acc0-000000000002
    [rep]=00000000-0000-0000-acc0-000000000003
    [agent]=00000000-0000-0000-acc0-000000000004
    [accountant]=00000000-0000-0000-acc0-000000000005
)
INACTIVE_SUB=00000000-0000-0000-acc0-000000000006

cleanup() { stop_cluster "$RLS_DIR"; rm -rf "$RLS_DIR"; }
trap cleanup EXIT
cleanup
start_cluster "$RLS_DIR" "$RLS_PORT"
export PGDATABASE=$DB PGOPTIONS="-c client_min_messages=warning"

# super SQL... — run SQL as the superuser, quietly, tuples only.
super() { q "$DB" -U postgres "$@"; }

# setup — the PostgREST roles, two logins outside the API, the database,
# the extension and the fixtures.
setup() {
    q postgres -U postgres <<'SQL'
CREATE ROLE anon NOLOGIN;
CREATE ROLE authenticated NOLOGIN;
CREATE ROLE authenticator LOGIN NOINHERIT;
GRANT anon, authenticated TO authenticator;
CREATE ROLE mallory LOGIN;
CREATE ROLE reporting LOGIN;
CREATE DATABASE orders_rls;
SQL
    super -c "CREATE EXTENSION orders" && super -f "$FIXTURES" >/dev/null
}

# claims PERSONA — the request.jwt.claims PostgREST sets for the persona.
claims() {
    if [ "$1" = anon ]; then echo '{"role":"anon"}'
    else printf '{"sub":"%s","role":"authenticated"}' "${SUB[$1]}"; fi
}

# role_of PERSONA — the role PostgREST switches to for the persona.
role_of() { if [ "$1" = anon ]; then echo anon; else echo authenticated; fi; }

# is_state VALUE — true when a cell is an SQLSTATE (5 characters) rather
# than a count of rows.
is_state() { [ ${#1} -eq 5 ]; }

# fingerprint_sql TABLE — psql lines that print "FP <md5>" of the table's
# rows (in text order) as the superuser, or "FP -" for a function line.
fingerprint_sql() {
    cat <<EOF
\\c - postgres
SELECT CASE WHEN to_regclass('orders.$1') IS NULL THEN '-'
            ELSE (SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), ''))
                    FROM orders.$1 t) END AS fp \\gset
\\echo FP :fp
\\c - authenticator
EOF
}

# cell_sql TABLE OP PERSONA EXPECTED SQL — psql lines running one cell as
# PostgREST would (one transaction) and printing "RESULT <rows or SQLSTATE>
# <error message>".  A cell that expects a refusal ends with COMMIT, between
# fingerprints: had the statement changed anything, it would stay and show;
# the others are rolled back.
cell_sql() {
    local table=$1 op=$2 persona=$3 expected=$4 sql=$5 finish=ROLLBACK
    is_state "$expected" && finish=COMMIT
    echo "\\echo CELL $table $op $persona"
    is_state "$expected" && fingerprint_sql "$table"
    cat <<EOF
BEGIN;
SELECT set_config('role', '$(role_of "$persona")', true),
       set_config('request.jwt.claims', '$(claims "$persona")', true);
$sql;
\\if :ERROR
\\echo RESULT :SQLSTATE :LAST_ERROR_MESSAGE
\\else
\\echo RESULT :ROW_COUNT
\\endif
$finish;
EOF
    is_state "$expected" && fingerprint_sql "$table"
    return 0
}

# statement TABLE OP — the SQL of a grid line (statements.tsv).
declare -A SQL_OF
while IFS=$'\t' read -r t o s; do
    case $t in ''|'#'*) continue ;; esac
    SQL_OF["$t $o"]=$s
done < "$STATEMENTS"

# grid — the cells to run, one "table op persona expected" per line.
grid() {
    local t o cells i
    declare -A seen
    while IFS=$' \t' read -r t o cells; do
        case $t in ''|'#'*) continue ;; esac
        [ -z "${seen["$t $o"]:-}" ] || { echo "grid line twice: $t $o" >&2; return 1; }
        seen["$t $o"]=1
        [ -n "$ONLY" ] && ! [[ "$t $o" =~ $ONLY ]] && continue
        read -r -a c <<< "$cells"
        [ ${#c[@]} -eq ${#PERSONAS[@]} ] || { echo "bad grid line: $t $o" >&2; return 1; }
        for i in "${!PERSONAS[@]}"; do echo "$t $o ${PERSONAS[$i]} ${c[$i]}"; done
    done < "$MATRIX"
}

# run_grid — every cell through one psql session as authenticator (the
# fingerprints reconnect as postgres), then one TAP line per cell.
run_grid() {
    local script=$RLS_DIR/cells.sql out=$RLS_DIR/cells.out
    local cells t o p e
    cells=$(grid) || return 1
    {
        echo '\o /dev/null'
        # the fixtures' secrets (the share token's text), read as the
        # superuser into psql variables (:share_token) that statements use
        printf '%s\n' '\c - postgres' 'SELECT * FROM rls_fixture.vars \gset' '\c - authenticator'
        while read -r t o p e; do
            [ -n "${SQL_OF["$t $o"]+x}" ] || { echo "no statement for $t $o" >&2; return 1; }
            cell_sql "$t" "$o" "$p" "$e" "${SQL_OF["$t $o"]}"
        done <<< "$cells"
    } > "$script" || return 1
    psql -X -q -U authenticator -d "$DB" -f "$script" > "$out" 2> "$RLS_DIR/cells.err"

    # read back: CELL t o p, [FP before], RESULT x msg, [FP after]
    local line key got msg fps
    declare -A RESULT MESSAGE FPS
    while IFS= read -r line; do
        case $line in
            'CELL '*) key=${line#CELL } ;;
            'RESULT '*) line=${line#RESULT }; RESULT[$key]=${line%% *}
                        [ "$line" = "${line#* }" ] || MESSAGE[$key]=${line#* } ;;
            'FP '*) FPS[$key]="${FPS[$key]:-}${line#FP } " ;;
        esac
    done < "$out"
    while read -r t o p e; do
        key="$t $o $p" got=${RESULT[$key]:-none}
        if is_state "$e"; then
            fps=(${FPS[$key]:-})
            if [ ${#fps[@]} -eq 2 ] && [ "${fps[0]}" = "${fps[1]}" ]; then got="$got, unchanged"
            else got="$got, changed (${FPS[$key]:-no fingerprint})"; fi
            check "$t.$o as $p: $e" "$e, unchanged" "$got"
        else
            check "$t.$o as $p: $e" "$e" "$got"
        fi
        [ "$got" = "$e" ] || [ "$got" = "$e, unchanged" ] || [ -z "${MESSAGE[$key]:-}" ] \
            || echo "#   message:  ${MESSAGE[$key]}"
    done <<< "$cells"
}

# as_login LOGIN SQL — run SQL as another login (-1: one transaction).
as_login() { local who=$1; shift; q "$DB" -U "$who" -1 "$@" 2>&1; }

# trust_boundary — claims count only for the API roles: a login outside
# them that sets claims stays itself and sees nothing of the customer.
trust_boundary() {
    local a=${SUB[cust_a]}
    local set_a="SELECT set_config('request.jwt.claims', '{\"sub\":\"$a\",\"role\":\"authenticated\"}', true)"
    check "mallory with customer A's claims: current_actor() is mallory" mallory \
          "$(as_login mallory -c "$set_a" -c "SELECT orders.current_actor()" | tail -1)"
    check "mallory with customer A's claims: current_customer_ids() is empty" 0 \
          "$(as_login mallory -c "$set_a" -c "SELECT coalesce(cardinality(orders.current_customer_ids()), 0)" | tail -1)"
    check "mallory with jwt.claims.sub of customer A: current_actor() is mallory" mallory \
          "$(as_login mallory -c "SELECT set_config('jwt.claims.sub', '$a', true)" -c "SELECT orders.current_actor()" | tail -1)"
    check "mallory with customer A's claims cannot read orders (42501)" 1 \
          "$(as_login mallory -c "$set_a" -c "SELECT count(*) FROM orders.orders" | grep -c 'permission denied')"
    super -c "GRANT SELECT ON orders.orders TO reporting"
    check "reporting (SELECT on orders.orders) with customer A's claims sees 0 orders" 0 \
          "$(as_login reporting -c "$set_a" -c "SELECT count(*) FROM orders.orders" | tail -1)"
    check "reporting with an admin's claims sees 0 orders" 0 \
          "$(as_login reporting -c "SELECT set_config('request.jwt.claims', '{\"sub\":\"${SUB[admin]}\"}', true)" \
                          -c "SELECT count(*) FROM orders.orders" | tail -1)"
    check "reporting with an admin's claims: has_permission('orders', 'view') is false" f \
          "$(as_login reporting -c "SELECT set_config('request.jwt.claims', '{\"sub\":\"${SUB[admin]}\"}', true)" \
                          -c "SELECT orders.has_permission('orders', 'view')" | tail -1)"
    super -c "REVOKE SELECT ON orders.orders FROM reporting"
    check "authenticator itself (no role switched) with claims stays authenticator" authenticator \
          "$(as_login authenticator -c "$set_a" -c "SELECT orders.current_actor()" | tail -1)"
    check "the API role with claims is the customer: current_customer_ids() has A's two rows" 2 \
          "$(as_login authenticator -c "SELECT set_config('role', 'authenticated', true)" -c "$set_a" \
                              -c "SELECT cardinality(orders.current_customer_ids())" | tail -1)"
    local inactive="SELECT set_config('role', 'authenticated', true), set_config('request.jwt.claims', '{\"sub\":\"$INACTIVE_SUB\",\"role\":\"authenticated\"}', true)"
    check "an inactive admin's sub: has_permission('orders', 'view') is false" f \
          "$(as_login authenticator -c "$inactive" -c "SELECT orders.has_permission('orders', 'view')" | tail -1)"
    check "an inactive admin's sub sees 0 orders, 0 customers, 0 staff" "0 0 0" \
          "$(as_login authenticator -c "$inactive" -c "SELECT (SELECT count(*) FROM orders.orders) || ' ' ||
                (SELECT count(*) FROM orders.customers) || ' ' || (SELECT count(*) FROM orders.staff)" | tail -1)"
    check "the inactive admin's sub is refused a product (42501)" 1 \
          "$(as_login authenticator -c "$inactive" \
                -c "INSERT INTO orders.products (name, sku) VALUES ('x', 'X-1')" | grep -c 'row-level security')"
}

if ! setup; then echo "not ok 1 - set up the database and the fixtures"; echo "1..1"; exit 1; fi
run_grid || check "the grid and its statements are read" read broken
[ -n "$ONLY" ] || trust_boundary
tap_done
