#!/usr/bin/env bash
# Outbox soak (TAP): 12 pgbench clients insert an order of a fixture
# customer and enqueue 1-3 messages about it in the same transaction (~30 %
# with an idempotency key shared by all producers, one of 100, so that
# enqueue_outbox deduplicates, often racing; ~35 % with max_attempts 1-4);
# 4 clients are workers (worker-12 .. worker-15) that claim up to 5 messages
# with a 2 s lease and handle each in its own transaction: ~80 % sent and
# completed, ~10 % completed with an error (retry, or dead on the last
# attempt), ~10 % sent and crashed (never completed: back after the lease);
# now and then a worker stalls past its leases and its completions meet
# OR101, which it tallies.  Afterwards a drain claims and completes until
# nothing is pending (the clock jumps past backoffs; leases run out for
# real).  Checks: every message done or dead, none pending; one message
# per idempotency key, every enqueue answered with its key's message, each
# message's order committed with it; attempts <= max_attempts (dead ones at
# max_attempts); every attempt claimed once; no two claims of a message
# overlap (from the claim until the lease ran out or the holder completed);
# every accepted completion from the holder within its lease, every OR101
# late; one successful completion per done message; every crashed message
# came back after its lease (or died on its last attempt) and ended done or
# dead; no XX000 in the server log; a late worker completing a message
# another worker has done meanwhile is refused (OR101), never told "done".
# Usage: test/soak/outbox.sh [seconds, default 20]
# The server log (test/soak/lib.sh) is read for internal errors; the
# clients ask for verbose errors so that it names each error's SQLSTATE.
export PGOPTIONS="${PGOPTIONS:-} -c log_error_verbosity=verbose"
NAME=outbox source "$(dirname "$0")/lib.sh"
d() { q $db -c "$1"; }
# drain: the run's workers are gone; their leases run out within 2.5 s
for i in $(seq 1 200); do
    pending=$(d "SELECT soak.drain()")
    [ "$pending" = 0 ] && break
    sleep 0.2
done
check "the drain left no message pending" 0 "$pending"
messages=$(d "SELECT count(*) FROM orders.outbox")
check "every message is done or dead" "$messages" \
    "$(d "SELECT count(*) FROM orders.outbox WHERE (done_at IS NULL) <> (dead_at IS NULL)")"
check "messages = distinct idempotency keys enqueued" "$messages" "$(d "SELECT count(DISTINCT idempotency_key) FROM soak.enqueued")"
check "keys were enqueued again (enqueue_outbox deduplicated)" 1 \
    "$(d "SELECT (count(*) > count(DISTINCT idempotency_key))::int FROM soak.enqueued")"
check "every enqueue was answered with the message of its key, one message per key" 0 "$(d "
    SELECT count(*) FROM soak.enqueued e LEFT JOIN orders.outbox o ON o.id = e.message_id
     WHERE o.idempotency_key IS DISTINCT FROM e.idempotency_key")"
check "every message's payload names an order committed with it, every order has 1-3 enqueues" "0 0" "$(d "
    SELECT (SELECT count(*) FROM orders.outbox o LEFT JOIN orders.orders x ON x.id = (o.payload ->> 'order_id')::uuid
             WHERE x.id IS NULL OR o.payload ->> 'key' IS DISTINCT FROM o.idempotency_key) || ' ' ||
           (SELECT count(*) FROM orders.orders x
             WHERE (SELECT count(*) FROM soak.enqueued e WHERE e.order_id = x.id) NOT BETWEEN 1 AND 3)")"
check "every message's attempts <= max_attempts, a dead one's = max_attempts, a done one's >= 1" 0 "$(d "
    SELECT count(*) FROM orders.outbox
     WHERE attempts > max_attempts OR (dead_at IS NOT NULL AND attempts <> max_attempts)
        OR (done_at IS NOT NULL AND attempts < 1)")"
check "every attempt was claimed once (each message's claims are attempts 1 .. attempts)" 0 "$(d "
    SELECT count(*) FROM orders.outbox o,
           LATERAL (SELECT count(*) AS n, count(DISTINCT attempt) AS a, min(attempt) AS lo, max(attempt) AS hi
                      FROM soak.claims c WHERE c.message_id = o.id) k
     WHERE k.n <> o.attempts OR k.a <> o.attempts OR (o.attempts > 0 AND (k.lo <> 1 OR k.hi <> o.attempts))")"
# a claim holds its message from the claim's now() until its lease runs out
# or its worker's completion (done, retry, dead) is accepted, if earlier
d "CREATE VIEW soak.holds AS
   SELECT c.*, tstzrange(c.claimed_at, least(c.locked_until,
                  (SELECT min(x.at) FROM soak.completions x WHERE x.message_id = c.message_id AND x.attempt = c.attempt
                      AND x.outcome IN ('done', 'retry', 'dead'))), '[)') AS held
     FROM soak.claims c"
check "no two claims of one message overlap (two workers never held it at once)" 0 "$(d "
    SELECT count(*) FROM soak.holds a JOIN soak.holds b ON b.message_id = a.message_id AND b.attempt > a.attempt
     WHERE a.held && b.held")"
check "no two sends of one message by different workers within overlapping claims" 0 "$(d "
    SELECT count(*) FROM soak.sent s JOIN soak.holds a ON a.message_id = s.message_id AND a.attempt = s.attempt
      JOIN soak.sent t ON t.message_id = s.message_id AND t.worker <> s.worker
      JOIN soak.holds b ON b.message_id = t.message_id AND b.attempt = t.attempt
     WHERE a.held && b.held")"
check "every accepted completion came from the holder of the message's latest claim, within its lease" 0 "$(d "
    SELECT count(*) FROM soak.completions x
     WHERE x.outcome IN ('done', 'retry', 'dead')
       AND (NOT EXISTS (SELECT FROM soak.claims c WHERE c.message_id = x.message_id AND c.attempt = x.attempt
                           AND c.worker = x.worker AND x.at BETWEEN c.claimed_at AND c.locked_until)
            OR EXISTS (SELECT FROM soak.claims c WHERE c.message_id = x.message_id AND c.attempt > x.attempt
                          AND c.claimed_at <= x.at))")"
check "every OR101 was late (its lease had run out, or the message was claimed again)" 0 "$(d "
    SELECT count(*) FROM soak.completions x JOIN soak.claims c ON c.message_id = x.message_id AND c.attempt = x.attempt
     WHERE x.outcome = 'OR101' AND x.at <= c.locked_until
       AND NOT EXISTS (SELECT FROM soak.claims l WHERE l.message_id = x.message_id AND l.attempt > x.attempt)")"
check "every completion's answer fits it: done for a send, retry before the last attempt, dead at it" 0 "$(d "
    SELECT count(*) FROM soak.completions x JOIN orders.outbox o ON o.id = x.message_id
     WHERE x.outcome IN ('done', 'retry', 'dead')
       AND x.outcome <> CASE WHEN NOT x.error THEN 'done' WHEN x.attempt < o.max_attempts THEN 'retry' ELSE 'dead' END")"
check "one successful completion per done message, none for the others" 0 "$(d "
    SELECT count(*) FROM orders.outbox o
     WHERE (SELECT count(*) FROM soak.completions x WHERE x.message_id = o.id AND x.outcome = 'done') <> (o.done_at IS NOT NULL)::int")"
check "every done answered for a message done before went to a worker of an earlier claim (its lease ran out)" 0 "$(d "
    SELECT count(*) FROM soak.completions x
     WHERE x.outcome = 'done again'
       AND NOT EXISTS (SELECT FROM soak.completions y WHERE y.message_id = x.message_id AND y.outcome = 'done'
                          AND y.attempt > x.attempt)")"
check "a worker whose lease ran out is refused (OR101), also when the message was done meanwhile" 0 \
    "$(d "SELECT count(*) FROM soak.completions WHERE outcome = 'done again'")"
check "every dead message died once: a failed last attempt, or its lease ran out on the last attempt" 0 "$(d "
    SELECT count(*) FROM orders.outbox o
     WHERE (SELECT count(*) FROM soak.completions x WHERE x.message_id = o.id AND x.outcome = 'dead')
           + (o.last_error ~ 'ran out on the last attempt\$')::int <> (o.dead_at IS NOT NULL)::int")"
check "every crashed message came back after its lease (or died on its last attempt), and ended done or dead" 0 "$(d "
    SELECT count(*) FROM soak.sent s JOIN soak.claims c ON c.message_id = s.message_id AND c.attempt = s.attempt
      JOIN orders.outbox o ON o.id = s.message_id
     WHERE s.intent = 'crash'
       AND (o.done_at IS NULL AND o.dead_at IS NULL
            OR NOT (EXISTS (SELECT FROM soak.claims n WHERE n.message_id = s.message_id AND n.attempt = s.attempt + 1
                               AND n.claimed_at > c.locked_until)
                    OR (o.dead_at IS NOT NULL AND o.attempts = s.attempt)))")"
check "the run had crashes, retries, dead messages, OR101 answers and crashed messages done later" "1 1 1 1 1" "$(d "
    SELECT (count(*) FILTER (WHERE s.intent = 'crash') > 0)::int || ' ' ||
           ((SELECT count(*) FROM soak.completions WHERE outcome = 'retry') > 0)::int || ' ' ||
           ((SELECT count(*) FROM orders.outbox WHERE dead_at IS NOT NULL) > 0)::int || ' ' ||
           ((SELECT count(*) FROM soak.completions WHERE outcome = 'OR101') > 0)::int || ' ' ||
           (count(*) FILTER (WHERE s.intent = 'crash' AND EXISTS (SELECT FROM orders.outbox o WHERE o.id = s.message_id
                                                                   AND o.done_at IS NOT NULL)) > 0)::int
      FROM soak.sent s")"
check "orders.outbox_dead lists the dead messages" \
    "$(d "SELECT count(*) FROM orders.outbox WHERE dead_at IS NOT NULL")" "$(d "SELECT count(*) FROM orders.outbox_dead")"
check_server_log
d "SELECT '# messages ' || count(*) || ' (enqueues ' || (SELECT count(*) FROM soak.enqueued) || ', orders '
          || (SELECT count(DISTINCT order_id) FROM soak.enqueued) || '): done ' || count(*) FILTER (WHERE done_at IS NOT NULL)
          || ', dead ' || count(*) FILTER (WHERE dead_at IS NOT NULL) || ' (lease ran out on the last attempt '
          || count(*) FILTER (WHERE last_error ~ 'ran out on the last attempt\$') || '); attempts ' || sum(attempts)
          || ', at most ' || max(attempts)
     FROM orders.outbox"
d "SELECT '# sends ' || count(*) FILTER (WHERE intent <> 'fail') || ' (crashes ' || count(*) FILTER (WHERE intent = 'crash')
          || ', failures ' || count(*) FILTER (WHERE intent = 'fail') || ', by the drain '
          || count(*) FILTER (WHERE worker = 'drain') || '); completions: '
          || (SELECT string_agg(outcome || ' ' || c, ', ' ORDER BY outcome)
                FROM (SELECT outcome, count(*) AS c FROM soak.completions GROUP BY 1) x)
     FROM soak.sent"
soak_done
