#!/usr/bin/env bash
# Workflow soak (TAP): 12 pgbench clients move cod orders of 60 customers
# along the cod path and collect (or fail) their payments, one change at a
# time (300 slots, each holding an order until it is delivered and
# collected, then a new one), some in transactions rolled back (whole, or
# to a savepoint before another change commits), some two changes in one
# transaction; three workflows fire from the changes: vip (an order comes
# to be delivered and collected, worth at least 100: tag the customer vip,
# text them through the outbox; customers without a phone fail the run at
# the text, OR117), delivered (notify the manager in-app) and vip-welcome
# (customer_tag vip: notify the manager).  Meanwhile 4 clients are outbox
# workers (worker-12 .. worker-15) that claim up to 5 messages with a 2 s
# lease and handle each in its own transaction: ~80 % sent and completed,
# ~10 % completed with an error (retry, or dead on the last attempt), ~10 %
# crashed (never completed: back after the lease).  Afterwards a drain
# completes what is pending.  Checks, against a recount of the orders'
# final state and history: one vip run per order that came to meet its
# conditions and none for the others (rolled back changes left none,
# although they fired runs in their transactions), each fired by the
# change that made the order meet them; one delivered run per delivered
# order; every vip run completed, or failed at the text for a customer
# without a phone; exactly one outbox message per completed run's text (by
# idempotency key) and no other, each to the customer's phone, one per
# qualifying order of a customer with a phone, every one done or dead,
# none pending; every customer with a qualifying order tagged vip exactly
# once, no other customer; one vip-welcome run per vip customer; one
# notification per delivered and vip-welcome run; no XX000 in the server
# log.
# Usage: test/soak/workflows.sh [seconds, default 20]
# The server log (test/soak/lib.sh) is read for internal errors; the
# clients ask for verbose errors so that it names each error's SQLSTATE.
export PGOPTIONS="${PGOPTIONS:-} -c log_error_verbosity=verbose"
NAME=workflows source "$(dirname "$0")/lib.sh"
d() { q $db -c "$1"; }
# drain: the run's workers are gone; their leases run out within 2.5 s
for i in $(seq 1 200); do
    pending=$(d "SELECT soak.drain()")
    [ "$pending" = 0 ] && break
    sleep 0.2
done
check "the drain left no message pending" 0 "$pending"
# the recount: what each order came to, from its final state and its history
d "CREATE VIEW soak.recount AS
   SELECT o.id, o.order_number, o.customer_id, o.status, o.payment_status,
          o.status = 'delivered' AND o.payment_status = 'collected' AND o.total_amount >= 100 AS qualifies,
          (SELECT count(*) FROM orders.order_history h WHERE h.order_id = o.id AND h.new_status = 'delivered') AS deliveries,
          (SELECT count(*) FROM orders.workflow_executions e JOIN orders.workflows w ON w.id = e.workflow_id
            WHERE e.order_id = o.id AND w.name = 'vip') AS vip_runs,
          (SELECT count(*) FROM orders.workflow_executions e JOIN orders.workflows w ON w.id = e.workflow_id
            WHERE e.order_id = o.id AND w.name = 'delivered') AS delivered_runs
     FROM orders.orders o"
d "CREATE VIEW soak.runs AS
   SELECT e.*, w.name AS workflow FROM orders.workflow_executions e JOIN orders.workflows w ON w.id = e.workflow_id"
check "every order's history follows the cod path, each status once" 0 "$(d "
    SELECT count(*) FROM orders.orders o
     WHERE (SELECT coalesce(array_agg(h.new_status ORDER BY h.id), '{}') FROM orders.order_history h WHERE h.order_id = o.id)
           IS DISTINCT FROM (ARRAY['new', 'confirmed', 'being_prepared', 'ready_for_pickup', 'out_for_delivery',
                                   'delivered'])[2:array_position(ARRAY['new', 'confirmed', 'being_prepared',
                                   'ready_for_pickup', 'out_for_delivery', 'delivered'], o.status)]")"
check "one vip run per order that came to be delivered, collected and worth >= 100; none for the others" 0 \
    "$(d "SELECT count(*) FROM soak.recount WHERE vip_runs <> qualifies::int")"
check "one delivered run per order delivered (per delivered row of its history); none for the others" 0 \
    "$(d "SELECT count(*) FROM soak.recount WHERE delivered_runs <> (status = 'delivered')::int OR deliveries <> delivered_runs")"
check "every vip run was fired by the change that made its order meet the conditions" 0 "$(d "
    SELECT count(*) FROM soak.runs
     WHERE workflow = 'vip'
       AND NOT (trigger_event ->> 'event' = 'order_status' AND trigger_event ->> 'status' = 'delivered'
                AND trigger_event ->> 'payment_status' = 'collected'
                AND ((trigger_event ->> 'previous_status' = 'out_for_delivery'
                      AND trigger_event ->> 'previous_payment_status' = 'collected')
                  OR (trigger_event ->> 'previous_status' = 'delivered'
                      AND trigger_event ->> 'previous_payment_status' IN ('pending', 'failed'))))")"
check "every vip run completed, or failed at the text (OR117) for a customer without a phone" 0 "$(d "
    SELECT count(*) FROM soak.runs r JOIN orders.customers c ON c.id = r.customer_id
     WHERE r.workflow = 'vip'
       AND CASE WHEN c.phone IS NULL
                THEN r.status <> 'failed' OR r.error_log -> 0 ->> 'step_id' IS DISTINCT FROM 'sms'
                     OR r.error_log -> 0 ->> 'error_code' IS DISTINCT FROM 'OR117'
                     OR r.steps_completed -> 0 ->> 'step_id' IS DISTINCT FROM 'tag'
                ELSE r.status <> 'completed' OR r.error_log <> '[]' END")"
messages=$(d "SELECT count(*) FROM orders.outbox")
check "outbox messages = completed vip runs (texts), none other" \
    "$(d "SELECT count(*) FROM soak.runs WHERE workflow = 'vip' AND status = 'completed'")" "$messages"
check "every completed vip run's text is one message (its idempotency key, the id its step output names), to the customer's phone, about the order" 0 "$(d "
    SELECT count(*) FROM soak.runs r JOIN orders.customers c ON c.id = r.customer_id
     WHERE r.workflow = 'vip' AND r.status = 'completed'
       AND (SELECT count(*) FROM orders.outbox m
             WHERE m.idempotency_key = 'workflow:' || r.id || ':sms:customer' AND m.kind = 'sms'
               AND m.payload ->> 'to' = c.phone AND (m.payload #>> '{data,order_id}')::uuid = r.order_id
               AND m.id::text = r.steps_completed -> 1 -> 'output' -> 'outbox_ids' ->> 0) <> 1")"
check "one text per qualifying order of a customer with a phone; none for the others" 0 "$(d "
    SELECT count(*) FROM soak.recount r JOIN orders.customers c ON c.id = r.customer_id
     WHERE (SELECT count(*) FROM orders.outbox m WHERE (m.payload #>> '{data,order_id}')::uuid = r.id)
           <> (r.qualifies AND c.phone IS NOT NULL)::int")"
check "every message is done or dead" "$messages" \
    "$(d "SELECT count(*) FROM orders.outbox WHERE (done_at IS NULL) <> (dead_at IS NULL)")"
check "every done message was completed done once; every crashed message ended done or dead" "0 0" "$(d "
    SELECT (SELECT count(*) FROM orders.outbox m
             WHERE (SELECT count(*) FROM soak.handled h WHERE h.message_id = m.id AND h.outcome = 'done')
                   <> (m.done_at IS NOT NULL)::int) || ' ' ||
           (SELECT count(*) FROM soak.handled h JOIN orders.outbox m ON m.id = h.message_id
             WHERE h.intent = 'crash' AND m.done_at IS NULL AND m.dead_at IS NULL)")"
check "every customer with a qualifying order is tagged vip exactly once; no other customer" 0 "$(d "
    SELECT count(*) FROM orders.customers c
     WHERE (SELECT count(*) FROM jsonb_array_elements(c.tags) t WHERE t ->> 'id' = 'vip' OR t = '\"vip\"')
           <> (EXISTS (SELECT FROM soak.recount r WHERE r.customer_id = c.id AND r.qualifies))::int")"
check "one vip-welcome run per vip customer (customer_tag), none for the others" 0 "$(d "
    SELECT count(*) FROM orders.customers c
     WHERE (SELECT count(*) FROM soak.runs r WHERE r.workflow = 'vip-welcome' AND r.customer_id = c.id
               AND r.status = 'completed')
           <> (c.tags @> '[{\"id\": \"vip\"}]')::int")"
check "one notification of the manager per delivered and vip-welcome run, none other" "0 0" "$(d "
    SELECT (SELECT count(*) FROM soak.runs r WHERE r.workflow IN ('delivered', 'vip-welcome')
             AND (SELECT count(*) FROM orders.notifications n WHERE n.data ->> 'execution_id' = r.id::text) <> 1) || ' ' ||
           ((SELECT count(*) FROM orders.notifications) - (SELECT count(*) FROM soak.runs WHERE workflow IN ('delivered', 'vip-welcome')))")"
seqval() { d "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM soak.$1"; }
check "the run had rolled back changes and savepoint rollbacks that fired runs in their transactions" "1 1" \
    "$([ "$(seqval rolled_back_runs)" -gt 0 ] && echo 1 || echo 0) $([ "$(seqval savepoint_runs)" -gt 0 ] && echo 1 || echo 0)"
check "the run had qualifying orders, orders left open, runs failed at the text, crashes and retries" "1 1 1 1 1" "$(d "
    SELECT (count(*) FILTER (WHERE qualifies) > 0)::int || ' ' || (count(*) FILTER (WHERE status <> 'delivered') > 0)::int || ' ' ||
           ((SELECT count(*) FROM soak.runs WHERE workflow = 'vip' AND status = 'failed') > 0)::int || ' ' ||
           ((SELECT count(*) FROM soak.handled WHERE intent = 'crash') > 0)::int || ' ' ||
           ((SELECT count(*) FROM soak.handled WHERE outcome = 'retry') > 0)::int
      FROM soak.recount")"
check_server_log
d "SELECT '# orders ' || count(*) || ': delivered ' || count(*) FILTER (WHERE status = 'delivered') || ', collected '
          || count(*) FILTER (WHERE payment_status = 'collected') || ', qualifying ' || count(*) FILTER (WHERE qualifies)
          || '; runs: ' || (SELECT string_agg(workflow || ' ' || c, ', ' ORDER BY workflow)
                              FROM (SELECT workflow || CASE WHEN status = 'failed' THEN ' (failed)' ELSE '' END AS workflow,
                                           count(*) AS c FROM soak.runs GROUP BY 1) x)
     FROM soak.recount"
echo "# rolled back: $(seqval rolled_back_changes) changes firing $(seqval rolled_back_runs) runs; to a savepoint: $(seqval savepoint_changes) changes firing $(seqval savepoint_runs) runs"
d "SELECT '# messages ' || count(*) || ': done ' || count(*) FILTER (WHERE done_at IS NOT NULL) || ', dead '
          || count(*) FILTER (WHERE dead_at IS NOT NULL) || '; attempts ' || coalesce(sum(attempts), 0) || ', at most '
          || coalesce(max(attempts), 0) || '; handled: '
          || (SELECT coalesce(string_agg(x, ', ' ORDER BY x), '')
                FROM (SELECT intent || '/' || coalesce(outcome, '-') || ' ' || count(*) AS x FROM soak.handled GROUP BY intent, outcome) y)
     FROM orders.outbox"
soak_done
