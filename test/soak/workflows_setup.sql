-- Workflow soak fixtures: a manager, 60 customers (every tenth without a
-- phone), 300 order slots (each the current cod order of a customer; half
-- of the orders are worth at least 100), three workflows, the tallies, and
-- the changers', the workers' and the drain's functions.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE SCHEMA soak;
INSERT INTO orders.staff (id, full_name, role) VALUES ('71000000-0000-0000-0000-000000000001', 'Workflow soak manager', 'manager');
INSERT INTO orders.customers (id, full_name, phone)
SELECT ('72000000-0000-0000-0000-0000000000' || lpad(n::text, 2, '0'))::uuid, 'Workflow soak ' || n,
       CASE WHEN n % 10 <> 0 THEN '+1555000' || lpad(n::text, 4, '0') END
  FROM generate_series(1, 60) n;
-- slot n: the order the changers move now, of customer 1 + n % 60; once it
-- is delivered and collected, a new order of that customer takes its place
CREATE TABLE soak.slots (
    n         integer PRIMARY KEY,
    order_id  uuid NOT NULL
);
-- soak.new_order(slot) — a new order (status new, payment pending) of the
-- slot's customer, worth 40, 99.99, 100 or 260
CREATE FUNCTION soak.new_order(slot integer) RETURNS uuid LANGUAGE sql AS $$
    INSERT INTO orders.orders (customer_id, total_amount)
    VALUES (('72000000-0000-0000-0000-0000000000' || lpad((1 + slot % 60)::text, 2, '0'))::uuid,
            (ARRAY[40, 99.99, 100, 260])[1 + floor(random() * 4)::int])
    RETURNING id
$$;
INSERT INTO soak.slots SELECT n, soak.new_order(n) FROM generate_series(1, 300) n;

-- vip: an order comes to be delivered and collected, worth at least 100:
-- tag its customer vip, then text them (the outbox; a customer without a
-- phone fails the run at this step, OR117, and keeps the tag)
INSERT INTO orders.workflows (name, trigger_type, trigger_config, workflow_steps, created_at) VALUES
    ('vip', 'order_status',
     '{"conditions": {"status": ["delivered"], "payment_status": ["collected"], "lifecycle": "cod", "min_order_value": 100}}',
     '[{"id": "tag", "type": "update_customer_tag", "config": {"tag_id": "vip", "label": "VIP"}},
       {"id": "sms", "type": "send_notification",
        "config": {"target": "customer", "channel": "sms", "template": "vip_thanks",
                   "message": "Thank you {{customer_name}} for order {{order_number}}"}}]',
     now() - interval '3 minutes'),
-- delivered: any order delivered: the managers are notified in-app
    ('delivered', 'order_status', '{"conditions": {"status": ["delivered"]}}',
     '[{"id": "note", "type": "send_notification",
        "config": {"target": "manager", "title": "Order {{order_number}} delivered"}}]',
     now() - interval '2 minutes'),
-- vip-welcome: a customer tagged vip (by a vip run): the managers are notified
    ('vip-welcome', 'customer_tag', '{"tag_id": "vip"}',
     '[{"id": "note", "type": "send_notification", "config": {"target": "manager", "title": "New VIP {{customer_name}}"}}]',
     now() - interval '1 minute');

-- changes rolled back (whole, or to a savepoint) and the runs they fired in
-- their transactions: sequences, so that the rollback keeps the count
CREATE SEQUENCE soak.rolled_back_changes;
CREATE SEQUENCE soak.rolled_back_runs;
CREATE SEQUENCE soak.savepoint_changes;
CREATE SEQUENCE soak.savepoint_runs;

-- soak.advance(slot) — one change of the slot's order, the slot and the
-- order locked first: its payment (pending -> failed or collected, failed
-- -> collected) in ~25 % of the calls and whenever it is delivered, else
-- its next status along the cod path; once it is delivered and collected,
-- a new order in its place instead.  Returns the runs the change fired
-- (workflow_executions of the order it added).
CREATE FUNCTION soak.advance(slot integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    o orders.orders;
    runs bigint;
    next text;
BEGIN
    SELECT x.* INTO o FROM orders.orders x
     WHERE x.id = (SELECT s.order_id FROM soak.slots s WHERE s.n = slot FOR UPDATE)
       FOR UPDATE;
    SELECT count(*) INTO runs FROM orders.workflow_executions e WHERE e.order_id = o.id;
    next := CASE o.status WHEN 'new' THEN 'confirmed' WHEN 'confirmed' THEN 'being_prepared'
                          WHEN 'being_prepared' THEN 'ready_for_pickup' WHEN 'ready_for_pickup' THEN 'out_for_delivery'
                          WHEN 'out_for_delivery' THEN 'delivered' END;
    IF o.payment_status <> 'collected' AND (next IS NULL OR random() < 0.25) THEN
        UPDATE orders.orders x
           SET payment_status = CASE WHEN o.payment_status = 'pending' AND random() < 0.3 THEN 'failed' ELSE 'collected' END
         WHERE x.id = o.id;
    ELSIF next IS NOT NULL THEN
        PERFORM orders.transition(o.id, next);
    ELSE
        UPDATE soak.slots s SET order_id = soak.new_order(slot) WHERE s.n = slot;
    END IF;
    RETURN (SELECT count(*) FROM orders.workflow_executions e WHERE e.order_id = o.id) - runs;
END
$$;

-- soak.tally(what, runs) — a change about to be rolled back ("rolled_back"
-- or "savepoint") that fired "runs" runs
CREATE FUNCTION soak.tally(what text, runs integer) RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nextval(('soak.' || what || '_changes')::regclass);
    PERFORM nextval(('soak.' || what || '_runs')::regclass) FROM generate_series(1, runs);
    RETURN runs;
END
$$;

-- the workers: one row per message claim_outbox handed out, the claimed
-- messages a worker has not handled yet, and what it did with each
CREATE TABLE soak.claims (
    message_id  uuid NOT NULL,
    worker      text NOT NULL,
    attempt     integer NOT NULL
);
CREATE TABLE soak.held (
    worker      text NOT NULL,
    n           bigserial,
    message_id  uuid NOT NULL,
    attempt     integer NOT NULL
);
CREATE TABLE soak.handled (
    message_id  uuid NOT NULL,
    worker      text NOT NULL,
    attempt     integer NOT NULL,
    intent      text NOT NULL CHECK (intent IN ('send', 'fail', 'crash')),
    outcome     text CHECK (outcome IN ('done', 'retry', 'dead', 'OR101'))
);

-- soak.claim(worker, batch, lease) — a worker's claim (its own transaction)
CREATE FUNCTION soak.claim(worker text, batch integer, lease interval) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    claimed integer;
BEGIN
    DELETE FROM soak.held h WHERE h.worker = claim.worker;    -- left by a run that stopped in between
    WITH c AS (SELECT * FROM orders.claim_outbox(worker, batch, lease)),
         t AS (INSERT INTO soak.claims SELECT c.id, worker, c.attempts FROM c RETURNING message_id, attempt)
    INSERT INTO soak.held (worker, message_id, attempt) SELECT worker, t.message_id, t.attempt FROM t ORDER BY 1;
    GET DIAGNOSTICS claimed = ROW_COUNT;
    RETURN claimed;
END
$$;

-- soak.finish(worker) — the worker handles the next message it claimed (its
-- own transaction), at random: ~80 % sends it and completes it, ~10 % fails
-- to send it and completes it with an error, ~10 % crashes (never
-- completes it: it comes back after its lease).  A completion refused with
-- OR101 (the lease ran out) is tallied, not raised.
CREATE FUNCTION soak.finish(worker text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    h soak.held;
    r float8 := random();
    outcome text;
BEGIN
    DELETE FROM soak.held x
     WHERE x.n = (SELECT y.n FROM soak.held y WHERE y.worker = finish.worker ORDER BY y.n LIMIT 1)
    RETURNING * INTO h;
    IF h.message_id IS NULL THEN
        RETURN 'none';
    ELSIF r >= 0.1 THEN
        BEGIN
            outcome := orders.complete_outbox(h.message_id, CASE WHEN r < 0.2 THEN 'soak: the SMS gateway said 503' END, worker);
        EXCEPTION WHEN SQLSTATE 'OR101' THEN
            outcome := 'OR101';
        END;
    END IF;
    INSERT INTO soak.handled VALUES (h.message_id, worker, h.attempt,
                                     CASE WHEN r < 0.1 THEN 'crash' WHEN r < 0.2 THEN 'fail' ELSE 'send' END, outcome);
    RETURN coalesce(outcome, 'crash');
END
$$;

-- soak.drain() — after the run: the clock jumps past every backoff, then
-- one worker "drain" claims what is due and sends and completes it.
-- Messages still leased to a run's worker wait for their lease.  Returns
-- how many are still pending.
CREATE FUNCTION soak.drain() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    m orders.outbox;
BEGIN
    UPDATE orders.outbox o SET run_after = now()
     WHERE o.done_at IS NULL AND o.dead_at IS NULL AND o.run_after > now();
    FOR m IN SELECT * FROM orders.claim_outbox('drain', 1000, '1 minute') LOOP
        INSERT INTO soak.claims VALUES (m.id, 'drain', m.attempts);
        INSERT INTO soak.handled VALUES (m.id, 'drain', m.attempts, 'send', orders.complete_outbox(m.id, NULL, 'drain'));
    END LOOP;
    RETURN (SELECT count(*) FROM orders.outbox o WHERE o.done_at IS NULL AND o.dead_at IS NULL);
END
$$;
ANALYZE;
