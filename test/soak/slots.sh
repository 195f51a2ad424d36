#!/usr/bin/env bash
# Slot soak (TAP): 16 pgbench clients hold, confirm, release, let lapse and
# clean up places of 5 slots of 3 places at once.  Afterwards, for every
# slot: confirmed places = booked_count <= max_capacity, held_count = the
# holds not yet released or expired, and (after a cleanup) = the live holds;
# no cancelled order keeps a booking.
# Usage: test/soak/slots.sh [seconds, default 20]
NAME=slots source "$(dirname "$0")/lib.sh"
# places were booked during the run: bookings that cancellations gave back
# keep their confirmed_at; the slots' booked_count at the end may well be 0
# (cancellations run half as often as confirmations, which many holds miss:
# the end state hovers around one or two booked places — ci161 ended at 0)
check "places were booked" 1 "$(q $db -c "SELECT (count(*) > 0)::int FROM orders.slot_reservations WHERE confirmed_at IS NOT NULL")"
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
check "no booking kept for a cancelled order (OR029 refuses it)" 0 \
    "$(q $db -c "SELECT count(*) FROM orders.slot_reservations r JOIN orders.order_items i ON i.id = r.order_item_id
                 JOIN orders.orders o ON o.id = i.order_id WHERE o.status = 'cancelled' AND r.status = 'confirmed'")"
q $db -c "SELECT '# slot ' || right(id::text, 1) || ': ' || booked_count || ' booked, ' || held_count || ' held of ' || max_capacity
          FROM orders.service_capacity ORDER BY id"
check_server_log
soak_done
