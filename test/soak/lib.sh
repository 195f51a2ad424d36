# test/soak/lib.sh — what every soak shares: a fresh database with the
# extension and the soak's fixtures, a 16-client pgbench run (deadlock and
# serialization retries allowed), TAP checks, and the two checks that the
# run really happened.  Source it with NAME set; it defines q, check, and
# runs the soak.  Needs PGHOST/PGPORT/PGUSER of a running cluster.
set -eu
secs=${1:-20}
dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
db=orders_soak_$NAME
log=/tmp/orders-soak-$NAME.log
n=0 failed=0

q() { psql -X -q -t -A -v ON_ERROR_STOP=1 -d "$@"; }
# check DESCRIPTION EXPECTED ACTUAL — one TAP line
check() { n=$((n + 1)); if [ "$2" = "$3" ]; then echo "ok $n - $1"; else echo "not ok $n - $1 (expected $2, got $3)"; failed=$((failed + 1)); fi; }
# soak_done — drop the database, print the plan, exit non-zero on a failure
soak_done() { q postgres -c "DROP DATABASE $db"; echo "1..$n"; [ "$failed" -eq 0 ]; }

q postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
q $db -c "CREATE EXTENSION orders" -f "$dir/${NAME}_setup.sql"
pgbench -n -c 16 -j 2 -T "$secs" --max-tries=20 -f "$dir/$NAME.pgbench" $db > "$log" 2>&1 || true
grep -E "number of transactions actually processed|number of failed|tps =" "$log" | sed 's/^/# /'
processed=$(awk '/actually processed/ {print $NF}' "$log" | cut -d/ -f1)
check "the soak ran (transactions processed > 1000)" 1 "$([ "${processed:-0}" -gt 1000 ] && echo 1 || echo 0)"
check "no client aborted" 0 "$(grep -c 'aborted in command' "$log" || true)"
