-- Status changes announced in batches (0.21.0, doc/lifecycles.md
-- "Announcements"): which history rows the announcer sends (status_audit
-- marks them by orders.notify), and announce_status_changes()'s refusals,
-- each leaving the announcer's position as it was.  (Races and the batch
-- itself: isolation spec status_announcements, soak announcer.)
BEGIN;
SELECT plan(16);
SET LOCAL orders.announcer = off;

CREATE FUNCTION pg_temp.err(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END $$;

INSERT INTO orders.customers (id, full_name) VALUES ('a5000000-0000-0000-0000-0000000000c1', 'Ann');
INSERT INTO orders.orders (id, order_number, customer_id) VALUES
  ('a5000000-0000-0000-0000-000000000001', 'AN-T1', 'a5000000-0000-0000-0000-0000000000c1'),
  ('a5000000-0000-0000-0000-000000000002', 'AN-T2', 'a5000000-0000-0000-0000-0000000000c1'),
  ('a5000000-0000-0000-0000-000000000003', 'AN-T3', 'a5000000-0000-0000-0000-0000000000c1');

SELECT is(current_setting('orders.notify'), 'batched', 'orders.notify is batched by default');
SELECT orders.transition('a5000000-0000-0000-0000-000000000001', 'confirmed');
SELECT ok((SELECT announce FROM orders.order_history WHERE order_id = 'a5000000-0000-0000-0000-000000000001'),
          'a batched change is marked for the announcer');
SET LOCAL orders.notify = immediate;
SELECT orders.transition('a5000000-0000-0000-0000-000000000002', 'confirmed');
SELECT ok(NOT (SELECT announce FROM orders.order_history WHERE order_id = 'a5000000-0000-0000-0000-000000000002'),
          'an immediate change is not (its transaction sends it)');
SET LOCAL orders.notify = off;
SELECT orders.transition('a5000000-0000-0000-0000-000000000003', 'confirmed');
SELECT ok(NOT (SELECT announce FROM orders.order_history WHERE order_id = 'a5000000-0000-0000-0000-000000000003'),
          'a change with notify off is not');
SET LOCAL orders.notify = on;
SELECT is(current_setting('orders.notify'), 'immediate', 'the boolean spellings of 0.20.0 still work (on = immediate)');
RESET orders.notify;
INSERT INTO orders.order_history (order_id, old_status, new_status, changed_by)
VALUES ('a5000000-0000-0000-0000-000000000003', 'confirmed', 'confirmed', 'by hand');
SELECT ok(NOT (SELECT announce FROM orders.order_history WHERE changed_by = 'by hand'),
          'a history row written by hand is not announced');

-- refusals: nothing moves.  The position's row is locked first: an
-- announcer started by another test file's changes (registering one is not
-- undone by their rollback) would otherwise move its watermark between the
-- two reads below (seen once in 12 runs of the suite); this transaction's
-- own calls are the ones under test.
SELECT 1 FROM orders.status_announcer FOR UPDATE;
CREATE TEMP TABLE before AS SELECT * FROM orders.status_announcer;
SELECT is(pg_temp.err($$SELECT orders.announce_status_changes(max_rows => 0)$$), '22023',
          'max_rows below 1: 22023');
SELECT is(pg_temp.err($$SELECT orders.announce_status_changes(NULL)$$), 'ok',
          'a NULL max_rows (STRICT) announces nothing and fails nothing');
ALTER SEQUENCE orders.order_history_id_seq CACHE 20;
SELECT is(pg_temp.err($$SELECT orders.announce_status_changes()$$), '55000',
          'a history sequence with CACHE above 1: 55000');
ALTER SEQUENCE orders.order_history_id_seq CACHE 1;
SELECT results_eq($$SELECT * FROM orders.status_announcer$$, $$SELECT * FROM pg_temp.before$$,
                  'the refusals left the announcer''s position as it was');
SELECT is((SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'orders status announcer'
            AND datname = current_database() AND backend_start > now()), 0::bigint,
          'with orders.announcer off no change started an announcer');
SELECT cmp_ok(orders.announce_status_changes(), '>=', 1,
              'a batch announces the batched change (and any other not yet sent)');
SELECT ok((SELECT high FROM orders.status_announcer)
          >= (SELECT id FROM orders.order_history WHERE order_id = 'a5000000-0000-0000-0000-000000000001'),
          '... and records that it read it');
-- (0.36.0) a batched change whose history goes before a batch read it
-- (its order deleted, or the history truncated) is kept for the next batch
SELECT orders.transition('a5000000-0000-0000-0000-000000000003', 'being_prepared');
SELECT id AS kept_id FROM orders.order_history WHERE order_id = 'a5000000-0000-0000-0000-000000000003'
   AND new_status = 'being_prepared' \gset
TRUNCATE orders.order_history;
SELECT is((SELECT count(*)::int FROM orders.deleted_changes WHERE id = :kept_id), 1,
          'TRUNCATE of the history keeps its unannounced change in orders.deleted_changes');
SELECT is(orders.announce_status_changes(), 1, '... the next batch announces it');
SELECT is(orders.announce_status_changes(), 0, '... once');

SELECT * FROM finish();
ROLLBACK;
