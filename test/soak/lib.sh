# test/soak/lib.sh — what every soak shares: a fresh database with the
# extension and the soak's fixtures, a 16-client pgbench run (deadlock and
# serialization retries allowed), TAP checks, and the two checks that the
# run really happened.  Source it with NAME set; it
# runs the soak (TAP helpers from test/tap.sh).  Needs PGHOST/PGPORT/PGUSER of a running cluster.
#
# Stress mode (never run by test/check.sh): ORDERS_SOAK_STRESS=1 runs
# ${NAME}_stress.pgbench (after ${NAME}_stress_setup.sql, when present) with
# ORDERS_SOAK_CLIENTS clients (default 48 in stress mode, else 16) and
# reports how many internal errors (SQLSTATE class XX, e.g. "new multixact
# has more than one updating member") the server logged, per minute; the run
# fails on any.
set -eu
secs=${1:-20}
dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$dir/../tap.sh"
db=orders_soak_$NAME
log=/tmp/orders-soak-$NAME.log

# soak_done — drop the database, print the plan, exit non-zero on a failure
soak_done() { q postgres -c "DROP DATABASE $db"; tap_done; }

# server_log_since_start — what the server logged since this soak began
server_log_since_start() { tail -c +"$((logstart + 1))" "$srvlog"; }

# check_server_log — a check that the server logged no internal error
# (SQLSTATE class XX) and did not crash while the soak ran (skipped when
# the log is not readable)
check_server_log() {
    if [ -r "$srvlog" ]; then
        server_log_since_start | grep -E 'ERROR: +XX[0-9A-Z]{3}:|PANIC|was terminated' | head -5 | sed 's/^/# /'
        check "no internal error (XX000) or crash in the server log" 0 \
            "$(server_log_since_start | grep -cE 'ERROR: +XX[0-9A-Z]{3}:|PANIC|server process .* was terminated' || true)"
    else
        n=$((n + 1)); echo "ok $n - no internal error in the server log # SKIP no readable server log at $srvlog"
    fi
}

# the server log (the clusters of test/lib.sh: $PGHOST/server.log, or
# ORDERS_SERVER_LOG) and where this soak's part of it starts
srvlog=${ORDERS_SERVER_LOG:-${PGHOST:-}/server.log}
logstart=$( [ -r "$srvlog" ] && stat -c %s "$srvlog" || echo 0)

q postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
q $db -c "CREATE EXTENSION orders" -f "$dir/${NAME}_setup.sql"
stress=${ORDERS_SOAK_STRESS:-0}
script=$dir/$NAME.pgbench clients=${ORDERS_SOAK_CLIENTS:-16}
if [ "$stress" = 1 ]; then
    script=$dir/${NAME}_stress.pgbench clients=${ORDERS_SOAK_CLIENTS:-48}
    [ -f "$dir/${NAME}_stress_setup.sql" ] && q $db -f "$dir/${NAME}_stress_setup.sql"
    echo "# stress mode: $clients clients, $secs s, $(basename "$script")"
fi
# a soak may start something to run beside its clients (a listener)
if declare -F soak_before_run >/dev/null; then soak_before_run; fi
pgbench -n -c "$clients" -j 2 -T "$secs" --max-tries=20 -f "$script" $db > "$log" 2>&1 || true
grep -E "number of transactions actually processed|number of failed|number of transactions retried|tps =" "$log" | sed 's/^/# /'
# what the retries were, from the server's log (a lock-order problem shows
# as deadlocks: each one costs a client deadlock_timeout, 1 s by default)
if [ -r "$srvlog" ]; then
    echo "# the server logged $(server_log_since_start | grep -c 'deadlock detected' || true) deadlocks," \
         "$(server_log_since_start | grep -c 'could not serialize' || true) serialization failures"
fi
processed=$(awk '/actually processed/ {print $NF}' "$log" | cut -d/ -f1)
check "the soak ran (transactions processed > 1000)" 1 "$([ "${processed:-0}" -gt 1000 ] && echo 1 || echo 0)"
# internal errors (XX000: "new multixact has more than one updating member",
# "could not ...") — pgbench prints the server's message for every client
# error, whether it was retried or aborted the client
# (serialization failures and deadlocks are retried by pgbench and are not internal)
internal=$(grep -cE 'ERROR: +(new multixact|cache lookup failed|tuple concurrently|unexpected|invalid memory alloc|could not (access status|read block|open file))' "$log" || true)
[ "$stress" = 1 ] && echo "# internal errors: $internal in $secs s ($(awk -v n="$internal" -v s="$secs" 'BEGIN { printf "%.2f", n * 60 / s }') per minute)"
grep -E 'ERROR: +new multixact' "$log" | sed 's/^/# /' | head -5
check "no internal error (XX000)" 0 "$internal"
check "no client aborted" 0 "$(grep -c 'aborted in command' "$log" || true)"
