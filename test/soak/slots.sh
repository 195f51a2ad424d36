#!/usr/bin/env bash
# Slot soak (TAP): 16 pgbench clients hold, confirm, release, let lapse and
# clean up places of 5 slots of 3 places at once.  Afterwards, for every
# slot: confirmed places = booked_count <= max_capacity, held_count = the
# holds not yet released or expired, and (after a cleanup) = the live holds.
# Usage: test/soak/slots.sh [seconds, default 20]
set -eu
secs=${1:-20}
dir=$(cd "$(dirname "$0")" && pwd)
db=orders_soak_slots
q() { psql -X -q -t -A -v ON_ERROR_STOP=1 -d "$@"; }

q postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
q $db -c "CREATE EXTENSION orders" -f "$dir/slots_setup.sql"
pgbench -n -c 16 -j 2 -T "$secs" --max-tries=20 -f "$dir/slots.pgbench" $db > /tmp/orders-soak-slots.log 2>&1 || true
grep -E "number of transactions actually processed|number of failed|tps =" /tmp/orders-soak-slots.log | sed 's/^/# /'

n=0 failed=0
check() { n=$((n + 1)); if [ "$2" = "$3" ]; then echo "ok $n - $1"; else echo "not ok $n - $1 (expected $2, got $3)"; failed=$((failed + 1)); fi; }
processed=$(awk '/actually processed/ {print $NF}' /tmp/orders-soak-slots.log | cut -d/ -f1)
check "the soak ran (transactions processed > 1000)" 1 "$([ "${processed:-0}" -gt 1000 ] && echo 1 || echo 0)"
check "no client aborted" 0 "$(grep -c 'aborted in command' /tmp/orders-soak-slots.log || true)"
check "places were booked" 1 "$(q $db -c "SELECT (sum(booked_count) > 0)::int FROM orders.service_capacity")"
check "never oversold: booked_count <= max_capacity" 0 \
    "$(q $db -c "SELECT count(*) FROM orders.service_capacity WHERE booked_count > max_capacity")"
check "booked_count = confirmed places, held_count = open holds" 0 "$(q $db -c "SELECT count(*) FROM orders.recount_slots()")"
q $db -c "SELECT orders.cleanup_expired_reservations()" >/dev/null
check "after cleanup, held_count = live holds and booked + held <= max" 0 \
    "$(q $db -c "SELECT count(*) FROM orders.service_capacity c
                 WHERE c.held_count <> (SELECT coalesce(sum(quantity), 0) FROM orders.slot_reservations r
                                         WHERE r.capacity_id = c.id AND r.status = 'held' AND r.expires_at > now())
                    OR c.booked_count + c.held_count > c.max_capacity")"
q $db -c "SELECT '# reservations ' || string_agg(status || ': ' || n, ', ' ORDER BY status)
          FROM (SELECT status, count(*) AS n FROM orders.slot_reservations GROUP BY status) s"
check "bookings were given back by cancelled orders" 1 \
    "$(q $db -c "SELECT (count(*) > 0)::int FROM orders.slot_reservations r JOIN orders.order_items i ON i.id = r.order_item_id
                 JOIN orders.orders o ON o.id = i.order_id WHERE o.status = 'cancelled' AND r.status = 'released'")"
q $db -c "SELECT '# slot ' || right(id::text, 1) || ': ' || booked_count || ' booked, ' || held_count || ' held of ' || max_capacity
          FROM orders.service_capacity ORDER BY id"
q postgres -c "DROP DATABASE $db"
echo "1..$n"
[ "$failed" -eq 0 ]
