#!/usr/bin/env bash
# Status announcer soak (TAP): 16 clients change statuses of 2,000 orders
# for the given seconds — alone, two per transaction with a pause between
# (so later changes commit first), rolled back, in a subtransaction rolled
# back, announced by their own transaction (orders.notify = immediate) or
# not at all (off) — while the database's announcer (the background worker
# the first change starts) announces the batched ones, and a listener
# session records every notification on channel orders_status.  Checks:
# every committed change announced exactly once (batched ones by the
# announcer, immediate ones by their transaction), no change with notify
# off and no rolled back one; each payload equals its history row; one
# order's batched changes heard in the order they were made; afterwards the
# announcer's holes close (its watermark reaches the last id) and it leaves
# when idle; a batch meeting DDL's lock gives way and is tried again (the
# change announced after the DDL); ALTER SEQUENCE ... RESTART of the
# history's sequence every half second (new ids 100,000 on) while batches
# read its position; no XX000 in the server log.
# Usage: test/soak/announcer.sh [seconds, default 20]
heard=/tmp/orders-soak-announcer.heard
soak_before_run() {
    # the listener: LISTEN, then a short sleep at a time (psql prints the
    # notifications after each statement), for the run and 20 s more
    {
        echo "LISTEN orders_status;"
        for _ in $(seq 1 $(( (secs + 20) * 5 ))); do echo "SELECT pg_sleep(0.2);"; done
    } > /tmp/orders-soak-announcer.listen.sql
    psql -X -q -t -A -d "$db" -f /tmp/orders-soak-announcer.listen.sql > "$heard.raw" 2>&1 &
    listener=$!
    # RESTART gives the sequence a new file (a plain scan of it may then
    # find no row: the announcer reads it as nextval does); 100,000 ids on,
    # more than the clients take meanwhile, so no id is handed out twice
    for _ in $(seq 1 $(( secs * 2 ))); do
        echo "DO \$\$ BEGIN EXECUTE format('ALTER SEQUENCE orders.order_history_id_seq RESTART WITH %s',"
        echo "  nextval('orders.order_history_id_seq') + 100000); END \$\$;"
        echo "SELECT pg_sleep(0.5);"
    done > /tmp/orders-soak-announcer.restart.sql
    psql -X -q -d "$db" -v ON_ERROR_STOP=1 -f /tmp/orders-soak-announcer.restart.sql > /dev/null 2> "$heard.restart" &
    restarter=$!
    sleep 1
}
NAME=announcer source "$(dirname "$0")/lib.sh"
d() { q $db -c "$1"; }

restart_rc=0
wait "$restarter" || restart_rc=$?
check "the history's sequence was restarted during the run without an error" "0 ok" \
    "$restart_rc $(grep -q . "$heard.restart" && head -c 300 "$heard.restart" || echo ok)"

# the announcer catches up: every batched change up to the last id seen
for _ in $(seq 1 100); do
    left=$(d "SELECT count(*) FROM orders.order_history h, orders.status_announcer s
               WHERE h.announce AND (h.id > s.high OR EXISTS (SELECT 1 FROM unnest(s.hole_lo, s.hole_hi) r (lo, hi)
                                                               WHERE h.id BETWEEN r.lo AND r.hi))")
    [ "$left" = 0 ] && break
    sleep 0.1
done
check "the announcer caught up with every batched change" 0 "$left"
# the listener's time runs out; psql has printed what it heard
wait "$listener"
sed -n 's/^Asynchronous notification "orders_status" with payload "\(.*\)" received from server process with PID [0-9]*\.$/\1/p' \
    "$heard.raw" > "$heard"
q $db -c "\\copy soak.heard (doc) FROM '$heard' WITH (FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02')"
echo "# $(d "SELECT count(*) FROM orders.order_history") changes committed" \
     "($(d "SELECT count(*) FROM soak.modes WHERE mode = 'immediate'") immediate," \
     "$(d "SELECT count(*) FROM soak.modes WHERE mode = 'off'") off), $(d "SELECT count(*) FROM soak.heard") notifications heard"
check "changes were batched (more than 1,000)" 1 "$(d "SELECT (count(*) > 1000)::int FROM orders.order_history WHERE announce")"
check "every history row noted immediate or off was written so (announce = false)" 0 \
    "$(d "SELECT count(*) FROM soak.modes m JOIN orders.order_history h ON h.id = m.history_id WHERE h.announce")"
# (a change whose transaction could not start an announcer — no worker
# slot free, as when 16 clients start at once — is announced by itself)
check "every change heard once, except those with notify off" "" \
    "$(d "SELECT string_agg(x, ', ') FROM (
            (SELECT h.id::text || ' expected' AS x FROM orders.order_history h
              WHERE h.id NOT IN (SELECT history_id FROM soak.modes WHERE mode = 'off')
             EXCEPT ALL SELECT (doc ->> 'history_id') || ' expected' FROM soak.heard)
            UNION ALL
            (SELECT (doc ->> 'history_id') || ' heard' FROM soak.heard
             EXCEPT ALL SELECT h.id::text || ' heard' FROM orders.order_history h
              WHERE h.id NOT IN (SELECT history_id FROM soak.modes WHERE mode = 'off'))) d")"
check "each payload is its history row" 0 \
    "$(d "SELECT count(*) FROM soak.heard n LEFT JOIN orders.order_history h ON h.id = (n.doc ->> 'history_id')::bigint
           LEFT JOIN orders.orders o ON o.id = h.order_id
          WHERE h.id IS NULL OR (n.doc ->> 'order_id')::uuid <> h.order_id OR n.doc ->> 'old_status' <> h.old_status
             OR n.doc ->> 'new_status' <> h.new_status OR n.doc ->> 'changed_by' <> h.changed_by
             OR n.doc ->> 'order_number' <> o.order_number OR n.doc ->> 'lifecycle' <> 'bench'")"
# (among the announcer's: an immediate change is heard at its own commit,
# before the batched changes made earlier that the announcer has not sent)
check "one order's batched changes heard in the order they were made" 0 \
    "$(d "SELECT count(*) FROM (SELECT (doc ->> 'history_id')::bigint AS id,
                                        lag((doc ->> 'history_id')::bigint) OVER (PARTITION BY doc ->> 'order_id' ORDER BY n) AS before
                                   FROM soak.heard n JOIN orders.order_history h ON h.id = (n.doc ->> 'history_id')::bigint
                                  WHERE h.announce) x
          WHERE x.id < x.before")"
check "each order's statuses chain (no change lost between two heard ones)" 0 \
    "$(d "SELECT count(*) FROM (SELECT h.old_status, lag(h.new_status) OVER (PARTITION BY h.order_id ORDER BY h.id) AS before
                                   FROM orders.order_history h) x WHERE x.old_status <> x.before")"
# the holes close: a batch once no transaction with an id runs (autovacuum
# may hold one a moment) settles the last ids
for _ in $(seq 1 50); do
    d "SELECT orders.announce_status_changes()" >/dev/null
    [ "$(d "SELECT hole_lo = '{}' AND watermark >= (SELECT max(id) FROM orders.order_history) FROM orders.status_announcer")" = t ] && break
    sleep 0.1
done
check "the announcer's holes closed and its watermark reached the last id" "t" \
    "$(d "SELECT s.hole_lo = '{}' AND s.watermark >= (SELECT max(id) FROM orders.order_history) FROM orders.status_announcer s")"
for _ in $(seq 1 50); do
    running=$(d "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'orders status announcer' AND datname = current_database()")
    [ "$running" = 0 ] && break
    sleep 0.1
done
check "the announcer left when idle" 0 "$running"
# DDL holds a table the batch reads: the batch gives way (lock_timeout) and
# is tried again; the change is announced once the DDL is done
psql -X -q -t -A -d $db -c "LISTEN orders_status" -c "SELECT pg_sleep(3)" > "$heard.ddl" 2>&1 &
ddl_listener=$!
psql -X -q -d $db -c "BEGIN" -c "LOCK orders.status_announcer" -c "SELECT pg_sleep(1)" -c "COMMIT" >/dev/null &
ddl=$!
sleep 0.3
d "UPDATE orders.orders SET status = CASE status WHEN 'a' THEN 'b' ELSE 'a' END WHERE order_number = 'AN-1'" >/dev/null
wait "$ddl" "$ddl_listener"
check "a change made while DDL held the announcer's table was announced after it" 1 \
    "$(grep -c "\"history_id\":$(d "SELECT max(id) FROM orders.order_history")," "$heard.ddl")"
if [ -r "$srvlog" ]; then
    check "... after batches that gave way to the DDL (lock timeout)" 1 \
        "$(server_log_since_start | grep -q 'canceling statement due to lock timeout' && echo 1 || echo 0)"
fi
# a client holding the advisory locks of the first version's keys silences nothing
psql -X -q -t -A -d $db -c "LISTEN orders_status" -c "SELECT pg_sleep(3)" > "$heard.adv" 2>&1 &
adv_listener=$!
psql -X -q -d $db -c "SELECT pg_advisory_lock(1869771891, k) FROM generate_series(1634627171, 1634627173) k" \
     -c "SELECT pg_sleep(2)" >/dev/null &
adv=$!
sleep 0.3
d "UPDATE orders.orders SET status = CASE status WHEN 'a' THEN 'b' ELSE 'a' END WHERE order_number = 'AN-2'" >/dev/null
wait "$adv" "$adv_listener"
check "a change made while a client held advisory locks of those keys was announced" 1 \
    "$(grep -c "\"history_id\":$(d "SELECT max(id) FROM orders.order_history")," "$heard.adv")"
# batches from SQL while the sequence is restarted without a pause: a
# batch reading the position as the old file goes away must not fail
# (0.21.0's plain scan found no row there and crashed the backend)
echo "DO \$\$ BEGIN EXECUTE format('ALTER SEQUENCE orders.order_history_id_seq RESTART WITH %s', nextval('orders.order_history_id_seq') + 1); END \$\$;" \
    > /tmp/orders-soak-announcer.restart1.pgbench
echo "SELECT orders.announce_status_changes();" > /tmp/orders-soak-announcer.batch.pgbench
pgbench -n -c 1 -T 3 -f /tmp/orders-soak-announcer.restart1.pgbench $db > "$heard.restart1" 2>&1 &
restarter=$!
batch_rc=0 restart_rc=0
pgbench -n -c 3 -j 3 -T 3 -M prepared -f /tmp/orders-soak-announcer.batch.pgbench $db > "$heard.batch" 2>&1 ||
    batch_rc=$?
wait "$restarter" || restart_rc=$?
echo "# $(sed -n 's/^number of transactions actually processed: //p' "$heard.batch") batches," \
     "$(sed -n 's/^number of transactions actually processed: //p' "$heard.restart1") restarts"
check "batches and restarts of the sequence at once: all succeeded" "0 0 0" \
    "$batch_rc $restart_rc $(grep -c 'error' "$heard.batch" "$heard.restart1" | awk -F: '{ n += $2 } END { print n }')"
check_server_log
soak_done
