
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
