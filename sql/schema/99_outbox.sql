
---------------------------------------------------------------------------
-- The outbox (issue 13, first part; doc/outbox.md): what must leave the
-- database — an SMS, an e-mail, an HTTP call — is written as a row in the
-- same transaction as the change that causes it, and workers outside claim
-- it (FOR UPDATE SKIP LOCKED, with a lease), do it and complete it.
-- Delivery is at least once: a worker that crashes after sending but before
-- completing leaves the message to come back after its lease; receivers
-- deduplicate on idempotency_key, which stays the same across retries.
---------------------------------------------------------------------------

CREATE TABLE orders.outbox (
    id               uuid PRIMARY KEY DEFAULT orders.new_id(),
    kind             text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_.-]{0,62}$'),
    payload          orders.json_object NOT NULL DEFAULT '{}',
    idempotency_key  text NOT NULL UNIQUE DEFAULT gen_random_uuid()::text
                     CHECK (idempotency_key <> '' AND length(idempotency_key) <= 255),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts     integer NOT NULL DEFAULT 10 CHECK (max_attempts BETWEEN 1 AND 1000),
    run_after        timestamptz NOT NULL DEFAULT now(),
    locked_by        text,
    locked_until     timestamptz,
    last_error       text,
    done_at          timestamptz,
    dead_at          timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT outbox_done_or_dead CHECK (done_at IS NULL OR dead_at IS NULL)
);
COMMENT ON TABLE orders.outbox IS
    'Messages for the outside world (SMS, e-mail, HTTP), claimed by workers with orders.claim_outbox, at least once';
COMMENT ON COLUMN orders.outbox.idempotency_key IS
    'Stable across retries: the receiver deduplicates on it; enqueueing the same key twice keeps one message';
COMMENT ON COLUMN orders.outbox.attempts IS 'Claims so far (a claim counts as an attempt, also when the worker crashes)';
COMMENT ON COLUMN orders.outbox.locked_until IS 'End of the current claim''s lease; afterwards the message may be claimed again';
-- the claim's scan: pending messages in the order they become due
CREATE INDEX outbox_pending_idx ON orders.outbox (run_after, id) WHERE done_at IS NULL AND dead_at IS NULL;
-- the claim's first pass: held messages whose lease ran out
CREATE INDEX outbox_held_idx ON orders.outbox (locked_until)
    WHERE done_at IS NULL AND dead_at IS NULL AND locked_until IS NOT NULL;

-- enqueue_outbox — one message; the same idempotency key again returns the
-- first message's id and changes nothing.
CREATE FUNCTION orders.enqueue_outbox(kind text, payload jsonb DEFAULT '{}', idempotency_key text DEFAULT NULL,
                                      run_after timestamptz DEFAULT NULL, max_attempts integer DEFAULT 10)
    RETURNS uuid
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_id uuid;
BEGIN
    INSERT INTO orders.outbox (kind, payload, idempotency_key, run_after, max_attempts)
    VALUES (kind, coalesce(payload, '{}'), coalesce(idempotency_key, gen_random_uuid()::text),
            coalesce(run_after, now()), max_attempts)
    ON CONFLICT ON CONSTRAINT outbox_idempotency_key_key DO NOTHING
    RETURNING id INTO new_id;
    IF new_id IS NULL THEN
        SELECT o.id INTO new_id FROM orders.outbox o WHERE o.idempotency_key = enqueue_outbox.idempotency_key;
    END IF;
    RETURN new_id;
END
$$;

-- claim_outbox — up to "batch" due messages for "worker", each leased for
-- "lease" and its attempts counted; messages another transaction is
-- claiming are skipped, never waited for or handed out twice.  A message
-- whose lease ran out (its worker crashed) is due again; one that ran out
-- of attempts that way is dead instead.
CREATE FUNCTION orders.claim_outbox(worker text, batch integer DEFAULT 10, lease interval DEFAULT '1 min')
    RETURNS SETOF orders.outbox
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF worker IS NULL OR worker = '' OR length(worker) > 200 THEN
        RAISE EXCEPTION 'orders.claim_outbox: worker must name the worker (1 to 200 characters)' USING ERRCODE = '22023';
    ELSIF batch IS NULL OR batch NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'orders.claim_outbox: batch must be between 1 and 1000, not %', batch USING ERRCODE = '22023';
    ELSIF lease IS NULL OR lease < interval '1 second' OR lease > interval '1 day' THEN
        RAISE EXCEPTION 'orders.claim_outbox: lease must be between 1 second and 1 day, not %', lease USING ERRCODE = '22023';
    END IF;
    -- a crashed worker's last attempt: dead, not claimed again
    UPDATE orders.outbox o
       SET dead_at = now(), locked_until = NULL,
           last_error = coalesce(o.last_error || '; ', '') || 'lease of ' || o.locked_by || ' ran out on the last attempt'
     WHERE o.id IN (SELECT d.id FROM orders.outbox d
                     WHERE d.done_at IS NULL AND d.dead_at IS NULL AND d.locked_until < clock_timestamp()
                       AND d.attempts >= d.max_attempts
                     FOR UPDATE SKIP LOCKED);
    RETURN QUERY
    UPDATE orders.outbox o
       SET locked_by = worker, locked_until = clock_timestamp() + lease, attempts = o.attempts + 1
      FROM (SELECT c.id FROM orders.outbox c
             WHERE c.done_at IS NULL AND c.dead_at IS NULL AND c.run_after <= clock_timestamp()
               AND (c.locked_until IS NULL OR c.locked_until < clock_timestamp())
               AND c.attempts < c.max_attempts
             ORDER BY c.run_after, c.id
             LIMIT batch
             FOR UPDATE SKIP LOCKED) claimed
     WHERE o.id = claimed.id
    RETURNING o.*;
END
$$;

-- complete_outbox — the worker holding message "id" reports: done (error
-- NULL), or failed: tried again after 2^attempts seconds (at most an hour),
-- dead after max_attempts.  Returns done, retry or dead.  Refused: an
-- unknown message (OR100); one that is not held within a lease — done,
-- dead, never claimed since its last attempt, its lease ran out — or, when
-- held by another worker (OR101); a call without "worker" (22023).  The
-- completing worker's retried "done" answers done again.  Leases are
-- measured by the clock, not the transaction's start.
CREATE FUNCTION orders.complete_outbox(id uuid, error text DEFAULT NULL, worker text DEFAULT NULL)
    RETURNS text
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m orders.outbox%ROWTYPE;
BEGIN
    -- (0.39.0) 22004 (was OR100 naming <NULL>)
    IF complete_outbox.id IS NULL THEN
        RAISE EXCEPTION 'orders.complete_outbox: argument "id" must not be null' USING ERRCODE = '22004';
    END IF;
    IF worker IS NULL OR worker = '' THEN
        RAISE EXCEPTION 'orders.complete_outbox: worker must name the worker that claimed the message'
            USING ERRCODE = '22023',
                  HINT = 'Pass the name given to orders.claim_outbox: without it a late worker could complete another''s claim.';
    END IF;
    SELECT * INTO m FROM orders.outbox o WHERE o.id = complete_outbox.id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'outbox message % does not exist', complete_outbox.id
            USING ERRCODE = 'OR100';
    ELSIF m.done_at IS NOT NULL AND error IS NULL AND worker = m.locked_by THEN
        RETURN 'done';			-- the completing worker's retried call
    ELSIF m.done_at IS NOT NULL OR m.dead_at IS NOT NULL OR m.locked_until IS NULL
          OR m.locked_until < clock_timestamp() OR m.locked_by IS DISTINCT FROM worker THEN
        RAISE EXCEPTION 'outbox message % is not held by %', complete_outbox.id,
                        'worker ' || quote_literal(left(worker, 64))
            USING ERRCODE = 'OR101',
                  DETAIL = CASE WHEN m.done_at IS NOT NULL THEN 'It is done.'
                                WHEN m.dead_at IS NOT NULL THEN 'It is dead.'
                                WHEN m.locked_until IS NULL THEN 'Nobody has claimed it since its last attempt.'
                                -- (0.41.0) which of the two (one text for both before)
                                WHEN m.locked_by IS DISTINCT FROM worker AND m.locked_until >= clock_timestamp()
                                    THEN 'Another worker holds it; its lease runs until ' || m.locked_until || '.'
                                WHEN m.locked_by IS DISTINCT FROM worker
                                    THEN 'Another worker held it; that lease ran out, and it will be (or was) tried again.'
                                ELSE 'Your lease ran out; it will be (or was) tried again.' END,
                  HINT = 'Claim messages with orders.claim_outbox and complete them within the lease.';
    END IF;
    IF error IS NULL THEN
        -- locked_by stays: the completing worker (its retried call answers done)
        UPDATE orders.outbox o SET done_at = now(), locked_until = NULL WHERE o.id = m.id;
        RETURN 'done';
    ELSIF m.attempts >= m.max_attempts THEN
        UPDATE orders.outbox o SET dead_at = now(), locked_until = NULL, last_error = left(error, 1000)
         WHERE o.id = m.id;
        RETURN 'dead';
    END IF;
    UPDATE orders.outbox o
       SET run_after = clock_timestamp() + least(interval '1 second' * power(2, least(m.attempts, 12)), interval '1 hour'),
           locked_by = NULL, locked_until = NULL, last_error = left(error, 1000)
     WHERE o.id = m.id;
    RETURN 'retry';
END
$$;

-- revive_outbox — a dead message back to pending, its attempts from 0 again
-- (an operator fixed the cause).  OR100 unknown; OR102 when it is
-- not dead.
CREATE FUNCTION orders.revive_outbox(id uuid)
    RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m orders.outbox%ROWTYPE;
BEGIN
    -- (0.35.0) 22004, as the other API functions (was: a "does not exist" of <NULL>)
    IF revive_outbox.id IS NULL THEN
        RAISE EXCEPTION 'orders.revive_outbox: argument "id" must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT * INTO m FROM orders.outbox o WHERE o.id = revive_outbox.id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'outbox message % does not exist', revive_outbox.id USING ERRCODE = 'OR100';
    ELSIF m.dead_at IS NULL THEN
        RAISE EXCEPTION 'outbox message % is not dead', revive_outbox.id
            USING ERRCODE = 'OR102',
                  DETAIL = CASE WHEN m.done_at IS NOT NULL THEN 'It is done.' ELSE 'It is still pending.' END;
    END IF;
    UPDATE orders.outbox o
       SET dead_at = NULL, run_after = now(), attempts = 0, locked_by = NULL
     WHERE o.id = m.id;
END
$$;

-- purge_outbox — delete done and dead messages finished before
-- now() - older_than; the number deleted.  Pending ones stay.
CREATE FUNCTION orders.purge_outbox(older_than interval DEFAULT '30 days')
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
    cutoff timestamptz := orders.purge_cutoff('orders.purge_outbox', older_than);
BEGIN
    DELETE FROM orders.outbox o WHERE coalesce(o.done_at, o.dead_at) < cutoff;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- The messages that gave up, for an operator to look at.
CREATE VIEW orders.outbox_dead WITH (security_invoker = true) AS
SELECT o.id, o.kind, o.idempotency_key, o.attempts, o.last_error, o.dead_at, o.created_at, o.payload
  FROM orders.outbox o
 WHERE o.dead_at IS NOT NULL;

SELECT pg_catalog.pg_extension_config_dump('orders.outbox', '');

-- owner only; a DBA grants the worker role EXECUTE on claim_outbox and
-- complete_outbox, and the role that enqueues EXECUTE on enqueue_outbox
ALTER TABLE orders.outbox ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON orders.outbox, orders.outbox_dead FROM PUBLIC;
REVOKE ALL ON FUNCTION orders.enqueue_outbox(text, jsonb, text, timestamptz, integer),
                       orders.claim_outbox(text, integer, interval),
                       orders.complete_outbox(uuid, text, text), orders.revive_outbox(uuid),
                       orders.purge_outbox(interval) FROM PUBLIC;
