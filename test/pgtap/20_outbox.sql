-- The outbox (issue 13, first part): enqueue once per idempotency key;
-- claims lease due messages and count attempts; a lapsed lease gives the
-- message back (and kills it on its last attempt); failures back off
-- exponentially until dead; completions only by the holder within its
-- lease.  Every refusal names its SQLSTATE and changes nothing.
BEGIN;
SELECT plan(48);

-- pg_temp.err(sql) — the SQLSTATE a statement fails with, 'ok' when it passes
CREATE FUNCTION pg_temp.err(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;
-- pg_temp.detail(sql) — the DETAIL a statement fails with
CREATE FUNCTION pg_temp.detail(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE d text;
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
    RETURN d;
END
$$;
-- pg_temp.state(key) — attempts, held by, done/dead/pending of a message
CREATE FUNCTION pg_temp.state(key text) RETURNS text LANGUAGE sql AS $$
    SELECT concat_ws(' ', attempts, coalesce(locked_by, '-'),
                     CASE WHEN done_at IS NOT NULL THEN 'done' WHEN dead_at IS NOT NULL THEN 'dead' ELSE 'pending' END)
      FROM orders.outbox WHERE idempotency_key = key
$$;

SELECT orders.enqueue_outbox('sms', '{"to": "+15550100", "text": "Your order is on its way"}', 'sms-1') AS m1 \gset
SELECT is(orders.enqueue_outbox('sms', '{"to": "+15550100", "text": "changed"}', 'sms-1'), :'m1'::uuid,
          'the same idempotency key again: the first message''s id');
SELECT is((SELECT count(*)::int || ' ' || (payload ->> 'text') FROM orders.outbox GROUP BY payload), '1 Your order is on its way',
          '... one message, unchanged');
SELECT ok(orders.enqueue_outbox('email', '{}') IS NOT NULL, 'without a key the message gets one of its own');
SELECT orders.enqueue_outbox('http', '{"url": "https://example.com/hook"}', 'later', now() + interval '1 hour') AS later \gset
SELECT is(pg_temp.err($$SELECT orders.enqueue_outbox('SMS!', '{}')$$), '23514', 'a kind that is not a lower-case name: 23514');
SELECT is(pg_temp.err($$SELECT orders.enqueue_outbox('sms', '[1]')$$), '23514', 'a payload that is not an object: 23514');
SELECT is((SELECT count(*)::int FROM orders.outbox), 3, '... neither stored');

-- claims
SELECT is(pg_temp.err($$SELECT orders.claim_outbox('')$$), '22023', 'claim_outbox without a worker name: 22023');
SELECT is(pg_temp.err($$SELECT orders.claim_outbox('w', 0)$$), '22023', 'a batch of 0: 22023');
SELECT is(pg_temp.err($$SELECT orders.claim_outbox('w', 10, '0 seconds')$$), '22023', 'a lease under a second: 22023');
SELECT is((SELECT count(*)::int FROM orders.outbox WHERE attempts > 0), 0, '... nothing claimed by the refusals');
SELECT is((SELECT string_agg(kind, ' ' ORDER BY kind) FROM orders.claim_outbox('w1', 10, '1 min')), 'email sms',
          'w1 claims the two due messages, not the one due in an hour');
SELECT is(pg_temp.state('sms-1'), '1 w1 pending', '... leased to w1, its first attempt counted');
SELECT is((SELECT count(*)::int FROM orders.claim_outbox('w2')), 0, 'w2 gets nothing while w1''s leases run');

-- completion
SELECT is(pg_temp.err(format($$SELECT orders.complete_outbox(%L, NULL, 'w2')$$, :'m1')), 'OR101',
          'w2 cannot complete w1''s message: OR101');
SELECT alike(pg_temp.detail(format($$SELECT orders.complete_outbox(%L, NULL, 'w2')$$, :'m1')), 'Another worker holds it; its lease runs until %',
             '(0.41.0) ... DETAIL: another worker holds it, till when (was "ran out or another worker holds it")');
SELECT is(pg_temp.err($$SELECT orders.complete_outbox('00000000-0000-0000-0000-000000000999', NULL, 'w1')$$), 'OR100',
          'an unknown message: OR100');
SELECT is(pg_temp.err(format($$SELECT orders.complete_outbox(%L)$$, :'m1')), '22023',
          'a completion that names no worker: 22023 (a late worker could complete another''s claim)');
SELECT is(pg_temp.state('sms-1'), '1 w1 pending', '... neither changed it');
-- the retry's time measured from just before the failure is reported and
-- just after (a slow machine may take a while between statements)
SELECT clock_timestamp() AS failed_from \gset
SELECT is(orders.complete_outbox(:'m1', 'gateway timeout', 'w1'), 'retry', 'w1 reports a failure: retry');
SELECT is((SELECT concat_ws(' ', locked_by IS NULL, last_error, run_after >= :'failed_from'::timestamptz + interval '2 seconds',
                            run_after <= clock_timestamp() + interval '2 seconds')
             FROM orders.outbox WHERE id = :'m1'),
          't gateway timeout t t', '... released, the error kept, due again after 2^1 seconds');
SELECT is((SELECT count(*)::int FROM orders.claim_outbox('w2')), 0, '... and not before');
UPDATE orders.outbox SET run_after = now() - interval '1 second' WHERE id = :'m1';
SELECT is((SELECT attempts FROM orders.claim_outbox('w2')), 2, 'once due, w2 claims it: attempt 2');
SELECT is(orders.complete_outbox(:'m1', NULL, 'w2'), 'done', 'w2 completes it: done');
SELECT is(orders.complete_outbox(:'m1', NULL, 'w2'), 'done', 'w2 completing it again (a retried call): done, nothing changes');
SELECT is(pg_temp.err(format($$SELECT orders.complete_outbox(%L, NULL, 'w1')$$, :'m1')), 'OR101',
          'w1, whose earlier lease ran out, completing it late: OR101, not done (it may have sent a duplicate)');
SELECT is(pg_temp.err(format($$SELECT orders.complete_outbox(%L, 'late failure', 'w2')$$, :'m1')), 'OR101',
          'a failure reported for a done message: OR101');

-- a crashed worker: its lease runs out, the message comes back
SELECT is(pg_temp.state((SELECT idempotency_key FROM orders.outbox WHERE kind = 'email')), '1 w1 pending', 'the e-mail is still w1''s');
UPDATE orders.outbox SET locked_until = now() - interval '1 second' WHERE kind = 'email';
SELECT is(pg_temp.err(format($$SELECT orders.complete_outbox(%L, NULL, 'w1')$$, (SELECT id FROM orders.outbox WHERE kind = 'email'))),
          'OR101', 'after its lease w1 can no longer complete it: OR101');
SELECT is(pg_temp.detail(format($$SELECT orders.complete_outbox(%L, NULL, 'w1')$$, (SELECT id FROM orders.outbox WHERE kind = 'email'))),
          'Your lease ran out; it will be (or was) tried again.', '(0.41.0) ... DETAIL: its own lease ran out');
SELECT is((SELECT locked_by || ' ' || attempts FROM orders.claim_outbox('w3')), 'w3 2', 'w3 claims it: attempt 2');

-- dead after max_attempts
SELECT orders.enqueue_outbox('sms', '{}', 'fragile', NULL, 2) AS fragile \gset
UPDATE orders.outbox SET locked_until = now() + interval '1 hour' WHERE kind = 'email';
SELECT is((SELECT count(*)::int FROM orders.claim_outbox('w4')), 1, 'a message with 2 attempts claimed');
SELECT is(orders.complete_outbox(:'fragile', 'no route', 'w4'), 'retry', '... first failure: retry');
UPDATE orders.outbox SET run_after = now() - interval '1 second' WHERE id = :'fragile';
SELECT is((SELECT attempts FROM orders.claim_outbox('w4')), 2, '... claimed again: attempt 2');
SELECT is(orders.complete_outbox(:'fragile', 'no route again', 'w4'), 'dead', '... the second, its last: dead');
SELECT is((SELECT kind || ' ' || attempts || ' ' || last_error FROM orders.outbox_dead), 'sms 2 no route again',
          'orders.outbox_dead shows it with its last error');
UPDATE orders.outbox SET dead_at = NULL, last_error = NULL, run_after = now() - interval '1 second', attempts = 1 WHERE id = :'fragile';
SELECT is((SELECT count(*)::int FROM orders.claim_outbox('w5', 1, '1 second')), 1, 'a last attempt claimed by a worker that will crash');
UPDATE orders.outbox SET locked_until = now() - interval '1 second' WHERE id = :'fragile';
SELECT is((SELECT count(*)::int FROM orders.claim_outbox('w6')) || ' ' || pg_temp.state('fragile'), '0 2 w5 dead',
          'its lease ran out on the last attempt: dead, not handed out again');

-- an operator revives a dead message; retention
SELECT is(pg_temp.err($$SELECT orders.revive_outbox('00000000-0000-0000-0000-000000000999')$$), 'OR100', 'revive_outbox of an unknown id: OR100');
SELECT is(pg_temp.err(format($$SELECT orders.revive_outbox(%L)$$, :'m1')), 'OR102', 'revive_outbox of a done message: OR102');
SELECT lives_ok(format($$SELECT orders.revive_outbox(%L)$$, :'fragile'), 'revive_outbox of the dead message');
SELECT is((SELECT attempts || ' ' || max_attempts || ' ' || coalesce(dead_at::text, 'alive') FROM orders.outbox WHERE id = :'fragile'),
          '0 2 alive', '... alive again, its attempts from 0');
SELECT is((SELECT attempts FROM orders.claim_outbox('w7') WHERE id = :'fragile'), 1, '... and claimed again: attempt 1');
SELECT is(pg_temp.err($$SELECT orders.purge_outbox(NULL)$$), '22004', 'purge_outbox(NULL): 22004');
SELECT is(pg_temp.err($$SELECT orders.purge_outbox('-1 day')$$), '22023', 'purge_outbox of a negative interval: 22023');
-- (0.43.0) a worker role the DBA granted a purge purges (purge_cutoff is PUBLIC)
CREATE ROLE orders_t20_purger NOLOGIN;
GRANT USAGE ON SCHEMA orders TO orders_t20_purger;
GRANT EXECUTE ON FUNCTION orders.purge_outbox(interval) TO orders_t20_purger;
GRANT SELECT, DELETE ON orders.outbox TO orders_t20_purger;
SET LOCAL ROLE orders_t20_purger;
SELECT is(orders.purge_outbox(interval '100 years'), 0::bigint, 'a worker role granted purge_outbox and DELETE purges (0.43.0: purge_cutoff was refused it)');
RESET ROLE;
UPDATE orders.outbox SET done_at = now() - interval '1 minute' WHERE id = :'m1';
SELECT is(pg_temp.err($$SELECT orders.purge_outbox('-1 mon +30 days 1 hour')$$) || ' '
          || pg_temp.err($$SELECT orders.purge_outbox('300000 years')$$) || ' ' || (SELECT count(*) FROM orders.outbox WHERE id = :'m1'),
          '22023 22023 1', 'purge_outbox of a span whose cutoff is after now (it deleted a message done a minute ago), or before the earliest time: 22023 (0.43.0)');
UPDATE orders.outbox SET done_at = now() - interval '40 days' WHERE id = :'m1';
SELECT is(orders.purge_outbox(), 1::bigint, 'purge_outbox() deletes the message done 40 days ago');
SELECT is((SELECT count(*)::int FROM orders.outbox WHERE done_at IS NULL AND dead_at IS NULL), 3, '... and keeps every pending one');

SELECT * FROM finish();
ROLLBACK;
