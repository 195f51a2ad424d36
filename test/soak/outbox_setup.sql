-- Outbox soak fixtures: 16 customers to place orders for, the tallies the
-- clients write in the transactions of what they tally, and the producer's,
-- the worker's and the drain's functions.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE SCHEMA soak;
INSERT INTO orders.customers (id, full_name)
SELECT ('70000000-0000-0000-0000-0000000000' || lpad(n::text, 2, '0'))::uuid, 'Outbox soak ' || n
  FROM generate_series(1, 16) n;
-- one row per enqueue_outbox call: the key asked for and the id answered
CREATE TABLE soak.enqueued (
    message_id       uuid NOT NULL,
    idempotency_key  text NOT NULL,
    order_id         uuid NOT NULL,
    max_attempts     integer NOT NULL,
    at               timestamptz NOT NULL DEFAULT now()
);
-- one row per message claim_outbox handed out: the lease as it returned it
-- (claimed_at is when the lease began: its end minus its length, by the clock
-- the lease is measured with)
CREATE TABLE soak.claims (
    message_id    uuid NOT NULL,
    worker        text NOT NULL,
    attempt       integer NOT NULL,
    claimed_at    timestamptz NOT NULL,
    locked_until  timestamptz NOT NULL
);
-- a worker's claimed messages it has not handled yet (only it touches them)
CREATE TABLE soak.held (
    worker      text NOT NULL,
    n           bigserial,
    message_id  uuid NOT NULL,
    attempt     integer NOT NULL
);
-- one row per message a worker handled: sent (then completed), failed
-- (completed with an error) or sent and crashed (never completed)
CREATE TABLE soak.sent (
    message_id  uuid NOT NULL,
    worker      text NOT NULL,
    attempt     integer NOT NULL,
    intent      text NOT NULL CHECK (intent IN ('send', 'fail', 'crash')),
    at          timestamptz NOT NULL DEFAULT clock_timestamp()
);
-- one row per complete_outbox call: its answer, or OR101 and the reason;
-- "done again" is a done that changed nothing: the message was done before
CREATE TABLE soak.completions (
    message_id  uuid NOT NULL,
    worker      text NOT NULL,
    attempt     integer NOT NULL,
    error       boolean NOT NULL,
    outcome     text NOT NULL CHECK (outcome IN ('done', 'retry', 'dead', 'OR101', 'done again')),
    at          timestamptz NOT NULL,          -- the clock: before an accepted completion, after a refused one
    detail      text
);

-- soak.produce(customer, messages) — a new order of fixture customer
-- "customer" and, in the same transaction, "messages" messages about it:
-- ~30 % with a key shared by all producers (one of 100), the others with a
-- key of the order; ~35 % with max_attempts 1 to 4 (so that some die), the
-- others 10.  Keys in order, so that two producers waiting for each other's
-- keys cannot deadlock.
CREATE FUNCTION soak.produce(customer integer, messages integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    o uuid;
    k text;
    m integer;
BEGIN
    INSERT INTO orders.orders (customer_id, total_amount)
    VALUES (('70000000-0000-0000-0000-0000000000' || lpad(customer::text, 2, '0'))::uuid, 9.90)
    RETURNING id INTO o;
    FOR k, m IN
        SELECT CASE WHEN random() < 0.3 THEN 'soak:shared:' || (1 + floor(random() * 100))::int
                    ELSE 'sms:order:' || o || ':' || i END,
               CASE WHEN random() < 0.35 THEN 1 + floor(random() * 4)::int ELSE 10 END
          FROM generate_series(1, messages) i
         ORDER BY 1
    LOOP
        INSERT INTO soak.enqueued (message_id, idempotency_key, order_id, max_attempts)
        VALUES (orders.enqueue_outbox('sms', jsonb_build_object('order_id', o, 'key', k), k, NULL, m), k, o, m);
    END LOOP;
    RETURN messages;
END
$$;

-- soak.claim(worker, batch, lease) — a worker's claim (its own transaction),
-- tallied in soak.claims and kept in soak.held for soak.finish.
CREATE FUNCTION soak.claim(worker text, batch integer, lease interval) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    claimed integer;
BEGIN
    DELETE FROM soak.held h WHERE h.worker = claim.worker;    -- left by a run that stopped in between
    WITH c AS (SELECT * FROM orders.claim_outbox(worker, batch, lease)),
         t AS (INSERT INTO soak.claims SELECT c.id, worker, c.attempts, c.locked_until - lease, c.locked_until FROM c
               RETURNING message_id, attempt)
    INSERT INTO soak.held (worker, message_id, attempt) SELECT worker, t.message_id, t.attempt FROM t ORDER BY 1;
    GET DIAGNOSTICS claimed = ROW_COUNT;
    RETURN claimed;
END
$$;

-- soak.stall_ms(worker, claimed) — how long the worker stalls after its
-- claim (its leases run out, its completions meet OR101): 0 after an empty
-- claim; else 2,100-2,500 ms in 3 % of its turns and, whatever the dice,
-- at its first claim of any message — a random stall alone left a run
-- without any OR101 about one run in twenty (a slow run's workers mostly
-- claimed nothing when they stalled), failing the check that the run had
-- them.
CREATE TABLE soak.stalled (worker text PRIMARY KEY);
CREATE FUNCTION soak.stall_ms(worker text, claimed integer) RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    IF claimed = 0 THEN
        RETURN 0;
    END IF;
    INSERT INTO soak.stalled VALUES (worker) ON CONFLICT DO NOTHING;
    IF FOUND OR random() < 0.03 THEN
        RETURN 2100 + floor(random() * 401)::integer;
    END IF;
    RETURN 0;
END
$$;

-- soak.finish(worker) — the worker handles the next message it claimed (its
-- own transaction), at random: ~80 % sends it and completes it, ~10 % fails
-- to send it and completes it with an error, ~10 % sends it and crashes
-- (never completes it).  A completion refused with OR101 (the lease ran
-- out) is tallied, not raised; a done answered for a message done before
-- (by another worker, after this one's lease ran out) is tallied as "done
-- again".  Returns what happened, or none.
CREATE FUNCTION soak.finish(worker text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    h soak.held;
    r float8 := random();
    outcome text;
    why text;
    at timestamptz;
BEGIN
    DELETE FROM soak.held x
     WHERE x.n = (SELECT y.n FROM soak.held y WHERE y.worker = finish.worker ORDER BY y.n LIMIT 1)
    RETURNING * INTO h;
    IF h.message_id IS NULL THEN
        RETURN 'none';
    END IF;
    INSERT INTO soak.sent (message_id, worker, attempt, intent)
    VALUES (h.message_id, worker, h.attempt, CASE WHEN r < 0.1 THEN 'crash' WHEN r < 0.2 THEN 'fail' ELSE 'send' END);
    IF r < 0.1 THEN
        RETURN 'crash';
    END IF;
    at := clock_timestamp();        -- an accepted completion checked its lease after this
    BEGIN
        outcome := orders.complete_outbox(h.message_id, CASE WHEN r < 0.2 THEN 'soak: the receiver said 503' END, worker);
        IF outcome = 'done' AND (SELECT o.done_at FROM orders.outbox o WHERE o.id = h.message_id) <> now() THEN
            outcome := 'done again';        -- done_at is the now() of the completion that set it
        END IF;
    EXCEPTION WHEN SQLSTATE 'OR101' THEN
        GET STACKED DIAGNOSTICS why = PG_EXCEPTION_DETAIL;
        outcome := 'OR101';
        at := clock_timestamp();    -- a refused one checked its lease before this
    END;
    INSERT INTO soak.completions VALUES (h.message_id, worker, h.attempt, r < 0.2, outcome, at, why);
    RETURN outcome;
END
$$;

-- soak.drain() — after the run: the clock jumps past every backoff
-- (run_after), then one worker "drain" claims what is due and sends and
-- completes it, tallied like the others.  Messages still leased to a run's
-- worker wait for their lease.  Returns how many are still pending.
CREATE FUNCTION soak.drain() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    m orders.outbox;
    at timestamptz;
BEGIN
    UPDATE orders.outbox o SET run_after = now()
     WHERE o.done_at IS NULL AND o.dead_at IS NULL AND o.run_after > now();
    FOR m IN SELECT * FROM orders.claim_outbox('drain', 1000, '1 minute') LOOP
        INSERT INTO soak.claims VALUES (m.id, 'drain', m.attempts, m.locked_until - interval '1 minute', m.locked_until);
        INSERT INTO soak.sent (message_id, worker, attempt, intent) VALUES (m.id, 'drain', m.attempts, 'send');
        at := clock_timestamp();
        INSERT INTO soak.completions VALUES (m.id, 'drain', m.attempts, false, orders.complete_outbox(m.id, NULL, 'drain'), at);
    END LOOP;
    RETURN (SELECT count(*) FROM orders.outbox o WHERE o.done_at IS NULL AND o.dead_at IS NULL);
END
$$;
ANALYZE;
