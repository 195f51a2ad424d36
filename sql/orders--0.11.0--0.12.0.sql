-- orders 0.11.0 -> 0.12.0
--  * Ids that say where they live (doc/scale-out.md): orders.new_id() (C) is
--    the default of every id column — a uuid of version 8, time-ordered,
--    carrying the partition of the database that made it (setting
--    orders.partition, SUSET, 0 by default); orders.partition_of(id) reads
--    it back (0 for older ids).  Existing rows keep their ids.
--  * Share tokens start with such an id, so a proxy routes a token too.
--  * order_stats() computes "near capacity" in bigint: a campaign of more
--    than 238,609,294 leads made it fail with 22003 (found by the scale-out
--    soak, whose campaigns have room for 10^9 leads).
\echo Use "ALTER EXTENSION orders UPDATE TO '0.12.0'" to load this file. \quit
-- ---------------------------------------------------------------- ids --
-- Every id column defaults to orders.new_id() (C, src/ids.c): a uuid of
-- version 8 with Unix milliseconds first (time-ordered: each primary key
-- grows at its right edge), then the partition this database serves
-- (setting orders.partition, 0 by default), then 62 random bits.  A proxy in
-- front of several databases finds the database of an order, group, lead or
-- share token from the id alone (doc/scale-out.md).
CREATE FUNCTION orders.new_id() RETURNS uuid
    LANGUAGE c VOLATILE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'orders_new_id';
COMMENT ON FUNCTION orders.new_id() IS
    'A fresh time-ordered id (uuid version 8) carrying this database''s partition (setting orders.partition)';

-- partition_of — the partition an id was made in: 0 for any id that
-- orders.new_id() did not make (ids older than 0.12.0, ids a client chose).
CREATE FUNCTION orders.partition_of(id uuid) RETURNS integer
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'orders_partition_of';
COMMENT ON FUNCTION orders.partition_of(uuid) IS
    'The partition (setting orders.partition) of the database that made this id; 0 for ids orders.new_id() did not make';
GRANT EXECUTE ON FUNCTION orders.new_id(), orders.partition_of(uuid) TO PUBLIC;

ALTER TABLE orders.customers ALTER COLUMN id SET DEFAULT orders.new_id();
ALTER TABLE orders.staff ALTER COLUMN id SET DEFAULT orders.new_id();
ALTER TABLE orders.products ALTER COLUMN id SET DEFAULT orders.new_id();
ALTER TABLE orders.product_variants ALTER COLUMN id SET DEFAULT orders.new_id();
ALTER TABLE orders.orders ALTER COLUMN id SET DEFAULT orders.new_id();
ALTER TABLE orders.order_items ALTER COLUMN id SET DEFAULT orders.new_id();
ALTER TABLE orders.leads ALTER COLUMN id SET DEFAULT orders.new_id();
ALTER TABLE orders.service_capacity ALTER COLUMN id SET DEFAULT orders.new_id();
ALTER TABLE orders.slot_reservations ALTER COLUMN id SET DEFAULT orders.new_id();
ALTER TABLE orders.deliveries ALTER COLUMN id SET DEFAULT orders.new_id();
ALTER TABLE orders.financial_transactions ALTER COLUMN id SET DEFAULT orders.new_id();
ALTER TABLE orders.expenses ALTER COLUMN id SET DEFAULT orders.new_id();
ALTER TABLE orders.order_notes ALTER COLUMN id SET DEFAULT orders.new_id();
ALTER TABLE orders.order_groups ALTER COLUMN id SET DEFAULT orders.new_id();
ALTER TABLE orders.order_site_selections ALTER COLUMN id SET DEFAULT orders.new_id();
ALTER TABLE orders.order_requirements ALTER COLUMN id SET DEFAULT orders.new_id();
ALTER TABLE orders.order_share_tokens ALTER COLUMN id SET DEFAULT orders.new_id();
ALTER TABLE orders.webhooks ALTER COLUMN id SET DEFAULT orders.new_id();
ALTER TABLE orders.webhook_logs ALTER COLUMN id SET DEFAULT orders.new_id();
ALTER TABLE orders.activity_logs ALTER COLUMN id SET DEFAULT orders.new_id();
ALTER TABLE orders.notifications ALTER COLUMN id SET DEFAULT orders.new_id();
ALTER TABLE orders.outbox ALTER COLUMN id SET DEFAULT orders.new_id();
ALTER TABLE orders.workflows ALTER COLUMN id SET DEFAULT orders.new_id();
ALTER TABLE orders.workflow_executions ALTER COLUMN id SET DEFAULT orders.new_id();

-- create_share_token: the token starts with an id of this database's partition
CREATE OR REPLACE FUNCTION orders.create_share_token(order_id uuid, expires_in interval DEFAULT '7 days',
                                          allowed_actions text[] DEFAULT '{view}', metadata jsonb DEFAULT '{}')
    RETURNS text
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    token text;
BEGIN
    IF NOT orders.may_share(create_share_token.order_id) THEN
        RAISE EXCEPTION 'order % does not exist', create_share_token.order_id
            USING ERRCODE = 'OR006',
                  HINT = 'Either no order has this id, row level security hides it, or you may not share it.';
    END IF;
    IF expires_in IS NULL OR expires_in <= interval '0' OR expires_in > interval '90 days' THEN
        RAISE EXCEPTION 'orders.create_share_token: expires_in must be between 0 and 90 days'
            USING ERRCODE = '22023';
    END IF;
    -- an id of this database's partition (a proxy routes the token by it),
    -- then a random uuid: 184 random bits in all
    token := translate(encode(uuid_send(orders.new_id()) || uuid_send(gen_random_uuid()), 'base64'), '+/=', '-_');
    INSERT INTO orders.order_share_tokens (order_id, token_hash, expires_at, allowed_actions, created_by, metadata)
    VALUES (create_share_token.order_id, sha256(convert_to(token, 'UTF8')), now() + expires_in,
            coalesce(create_share_token.allowed_actions, '{view}'), orders.current_actor(),
            coalesce(create_share_token.metadata, '{}'));
    RETURN token;
END
$$;

-- Admin dashboard figures over campaign orders.  "near capacity": an open
-- campaign with 90% or more of its leads delivered.
CREATE OR REPLACE FUNCTION orders.order_stats()
    RETURNS TABLE (total bigint, active bigint, overdue bigint,
                   near_capacity bigint, completed_this_month bigint)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT count(*),
           count(*) FILTER (WHERE o.status = 'active'),
           count(*) FILTER (WHERE s.category = 'open' AND o.target_delivery_date < CURRENT_DATE),
           count(*) FILTER (WHERE s.category = 'open' AND o.leads_purchased > 0
                              AND o.leads_delivered::bigint * 10 >= o.leads_purchased::bigint * 9),
           count(*) FILTER (WHERE s.category = 'fulfilled'
                              AND o.completed_at >= date_trunc('month', now()))
      FROM orders.orders o
      JOIN orders.lifecycle_states s ON s.lifecycle = o.lifecycle AND s.status = o.status
     WHERE o.lifecycle = 'campaign' OR o.leads_purchased > 0;
END;
