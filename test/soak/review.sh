#!/usr/bin/env bash
# Agency-order review soak (TAP): 16 pgbench clients approve, reject and set
# back sites of 36 client groups (12 agency orders x 3 groups) at once —
# through orders.review_sites (one site, or batches of 2-4 by domain), by
# writing order_site_selections.status directly (one site, or sites of
# several groups in one statement), while link_count moves, the analysis
# suggests more sites, sites are deleted and orders go to payment and back.
# Approvals beyond a group's link_count are refused (OR070) and recorded.
# Afterwards: every group's counters equal a recount, approved_count <=
# link_count, the service items are exactly the approved sites, every
# order's subtotal is the sum of its items, and the server logged no
# internal error (XX000).
# Usage: test/soak/review.sh [seconds, default 20]
# The server log (test/soak/lib.sh) is read for internal errors; the
# clients ask for verbose errors so that it names each error's SQLSTATE.
export PGOPTIONS="${PGOPTIONS:-} -c log_error_verbosity=verbose"
NAME=review source "$(dirname "$0")/lib.sh"
refused() { q $db -c "SELECT count(*) FROM soak.refusals WHERE code = '$1'"; }
check "some approvals were refused: the group was full (OR070)" 1 "$([ "$(refused OR070)" -gt 0 ] && echo 1 || echo 0)"
check "sites were approved, rejected and set back in every order during the run" 12 "$(q $db -c "
    SELECT count(*) FROM (SELECT g.order_id FROM orders.order_groups g JOIN soak.seen s ON s.order_group_id = g.id
                           GROUP BY g.order_id HAVING count(*) FILTER (WHERE s.status = 'approved') > 0
                              AND count(*) FILTER (WHERE s.status = 'rejected') > 0
                              AND count(*) FILTER (WHERE s.status = 'suggested') > 0) o")"
check "every group's counters equal a recount (orders.recount_site_counts())" "" \
    "$(q $db -c "SELECT string_agg(id || ' ' || stored::text || ' counted ' || counted::text, '; ') FROM orders.recount_site_counts()")"
check "approved_count <= link_count in every group" 0 \
    "$(q $db -c "SELECT count(*) FROM orders.order_groups WHERE approved_count > link_count")"
check "every approved site links a service item of its order that snapshots it" 0 "$(q $db -c "
    SELECT count(*) FROM orders.order_site_selections x JOIN orders.order_groups g ON g.id = x.order_group_id
      LEFT JOIN orders.order_items i ON i.id = x.order_item_id
     WHERE x.status = 'approved'
       AND (i.id IS NULL OR i.order_id <> g.order_id OR i.item_type <> 'service' OR i.name <> x.domain
            OR i.snapshot ->> 'site_selection_id' <> x.id::text OR i.snapshot ->> 'order_group_id' <> g.id::text)")"
check "no site that is not approved links an item" 0 \
    "$(q $db -c "SELECT count(*) FROM orders.order_site_selections WHERE status <> 'approved' AND order_item_id IS NOT NULL")"
check "no orphan service item (each one with a site_selection_id is the item of an approved site)" 0 "$(q $db -c "
    SELECT count(*) FROM orders.order_items i
     WHERE i.snapshot ? 'site_selection_id'
       AND NOT EXISTS (SELECT FROM orders.order_site_selections x
                        WHERE x.order_item_id = i.id AND x.status = 'approved' AND x.id::text = i.snapshot ->> 'site_selection_id')")"
check "each order's items are its approved sites (one each)" 0 "$(q $db -c "
    SELECT count(*) FROM orders.orders o
     WHERE o.order_number LIKE 'RV-%'
       AND (SELECT count(*) FROM orders.order_items i WHERE i.order_id = o.id)
        <> (SELECT count(*) FROM orders.order_site_selections x JOIN orders.order_groups g ON g.id = x.order_group_id
             WHERE g.order_id = o.id AND x.status = 'approved')")"
check "every order's subtotal equals its items, and its total the sum of its parts" 0 \
    "$(q $db -c "SELECT count(*) FROM orders.orders o
                 WHERE o.subtotal <> coalesce((SELECT sum(i.total) FROM orders.order_items i WHERE i.order_id = o.id), 0)
                    OR o.total_amount <> o.subtotal + o.delivery_fee + o.adjustment")"
# a group is "complete" exactly when its approvals reach link_count, also
# after link_count moved
check "group_status is complete exactly when approved_count >= link_count" 0 \
    "$(q $db -c "SELECT count(*) FROM orders.order_groups
                 WHERE (group_status = 'complete') <> (approved_count >= link_count) AND group_status IN ('reviewing', 'complete')")"
check_server_log
q $db -c "SELECT '# refusals ' || code || ': ' || count(*) FROM soak.refusals GROUP BY code ORDER BY code"
q $db -c "SELECT '# sites ' || string_agg(status || ': ' || n, ', ' ORDER BY status)
          FROM (SELECT status, count(*) AS n FROM orders.order_site_selections GROUP BY status) s"
q $db -c "SELECT '# groups complete: ' || count(*) FILTER (WHERE approved_count = link_count) || ' of ' || count(*)
                 || '; orders in payment_pending: ' || (SELECT count(*) FROM orders.orders WHERE status = 'payment_pending')
          FROM orders.order_groups"
soak_done
