-- Ids that say where they live (0.12.0, issue 15): every id column defaults
-- to orders.new_id(), a time-ordered uuid of version 8 carrying the
-- database's partition (setting orders.partition); orders.partition_of()
-- reads it back, 0 for any other uuid; only a superuser (or a role granted
-- SET on it) chooses the partition; share tokens carry it too.
BEGIN;
SELECT plan(17);

-- pg_temp.err(sql) — the SQLSTATE a statement fails with, 'ok' when it passes
CREATE FUNCTION pg_temp.err(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;

SELECT is(orders.partition_of(orders.new_id()), 0, 'a database serves partition 0 unless told otherwise');
SELECT is(current_setting('orders.partition'), '0', '... the setting orders.partition says so once the library is loaded');
SELECT matches(orders.new_id()::text, '^[0-9a-f]{8}-[0-9a-f]{4}-8000-[89ab][0-9a-f]{3}-[0-9a-f]{12}$',
               'new_id(): version 8, the RFC variant, partition 0 in the third group');
SELECT cmp_ok(abs(('x' || lpad(left(replace(orders.new_id()::text, '-', ''), 12), 16, '0'))::bit(64)::bigint
                  - (extract(epoch FROM clock_timestamp()) * 1000)::bigint), '<', 1000::bigint,
              '... its first 48 bits are the Unix milliseconds of now');
SELECT is(orders.partition_of(gen_random_uuid()), 0, 'partition_of: any uuid new_id() did not make is in partition 0');
SELECT is(orders.partition_of('00000000-0000-8abc-8000-000000000000'), 2748, '... a version-8 id: its 12 bits (0xabc)');
SELECT is(orders.partition_of(NULL), NULL, '... NULL for NULL');

SET LOCAL orders.partition = 5;
INSERT INTO orders.customers (full_name, phone) VALUES ('Partition Pat', '+1555777') RETURNING id AS pat \gset
SELECT is(orders.partition_of(:'pat'), 5, 'a customer made while the database serves partition 5 carries 5 in its id');
SELECT pg_sleep(0.002);   -- a later millisecond than the customer's id
INSERT INTO orders.orders (customer_id, lifecycle) VALUES (:'pat', 'cod') RETURNING id AS pat_order \gset
SELECT is(orders.partition_of(:'pat_order'), 5, '... and so does its order');
SELECT is((SELECT orders.partition_of(id) FROM orders.activity_logs WHERE entity_id = :'pat_order'), 5,
          '... and the activity log''s row about it');
SELECT cmp_ok(:'pat_order'::uuid, '>', :'pat'::uuid, '... ids made later sort after earlier ones (time-ordered)');
SELECT orders.create_share_token(:'pat_order') AS token \gset
SELECT is(orders.partition_of(encode(substring(decode(translate(:'token', '-_', '+/') || '=', 'base64') FROM 1 FOR 16), 'hex')::uuid), 5,
          'a share token starts with an id of the partition that made it');
SELECT is(length(:'token'), 43, '... and is 32 bytes, base64url without padding, as before');

SELECT is(pg_temp.err('SET LOCAL orders.partition = 4096'), '22023', 'partitions are 0 to 4095');
SELECT is(pg_temp.err('SET LOCAL orders.partition = -1'), '22023', '... never negative');
SET LOCAL ROLE authenticated;
SELECT is(pg_temp.err('SET LOCAL orders.partition = 3'), '42501',
          'a client cannot choose the partition of the ids it makes (they would route elsewhere)');
SELECT is(current_setting('orders.partition'), '5', '... and the setting is unchanged');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
