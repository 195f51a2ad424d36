-- Benchmark fixtures for test/bench/leads.sh.
--   hot order  : one active campaign per variant, pre-loaded with :preload leads
--   spread     : 1,000 active campaigns (ours and a bare copy without counter)
-- Variants: (a) orders.* with the C counter; (b) bench.*_floor, no triggers
-- (the one-statement floor (b1) of the hot order on tables of its own,
-- bench.*_floor1: (b)'s key-share-then-update MultiXacts on a shared hot
-- row slowed (b1) down, by up to 4x in one run);
-- (c) bench.*_seed with seed 002's recount trigger; bench.leads_bare for
-- the spread case (no counter at all).  Same columns, indexes and foreign keys.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS bench CASCADE;
CREATE SCHEMA bench;

INSERT INTO orders.customers (id, full_name) VALUES ('c0000000-0000-0000-0000-000000000000', 'Bench client');
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle, leads_purchased)
SELECT ('c0000000-0000-0000-0000-' || lpad(n::text, 12, '0'))::uuid, 'LB-' || n,
       'c0000000-0000-0000-0000-000000000000', 'campaign', 1000000000
  FROM generate_series(0, 1000) n;           -- 0 is the hot order, 1..1000 the spread ones
UPDATE orders.orders SET status = 'active' WHERE order_number LIKE 'LB-%';

CREATE TABLE bench.orders_floor (LIKE orders.orders INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING CONSTRAINTS INCLUDING GENERATED);
CREATE TABLE bench.orders_floor1 (LIKE orders.orders INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING CONSTRAINTS INCLUDING GENERATED);
CREATE TABLE bench.orders_seed  (LIKE orders.orders INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING CONSTRAINTS INCLUDING GENERATED);
-- the orders' columns but the generated leads_remaining, which the floor's
-- copy computes itself (INCLUDING GENERATED: the same table, the same work)
SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) AS ocols FROM pg_attribute
 WHERE attrelid = 'orders.orders'::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = '' \gset
INSERT INTO bench.orders_floor (:ocols) SELECT :ocols FROM orders.orders WHERE order_number LIKE 'LB-%';
INSERT INTO bench.orders_floor1 (:ocols) SELECT :ocols FROM orders.orders WHERE order_number = 'LB-0';
INSERT INTO bench.orders_seed (:ocols) SELECT :ocols FROM orders.orders WHERE order_number LIKE 'LB-%';

CREATE TABLE bench.leads_floor (LIKE orders.leads INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING CONSTRAINTS,
    FOREIGN KEY (customer_id) REFERENCES orders.customers (id),
    FOREIGN KEY (order_id) REFERENCES bench.orders_floor (id) ON DELETE SET NULL);
CREATE TABLE bench.leads_floor1 (LIKE orders.leads INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING CONSTRAINTS,
    FOREIGN KEY (customer_id) REFERENCES orders.customers (id),
    FOREIGN KEY (order_id) REFERENCES bench.orders_floor1 (id) ON DELETE SET NULL);
CREATE TABLE bench.leads_seed (LIKE orders.leads INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING CONSTRAINTS,
    FOREIGN KEY (customer_id) REFERENCES orders.customers (id),
    FOREIGN KEY (order_id) REFERENCES bench.orders_seed (id) ON DELETE SET NULL);
CREATE TABLE bench.leads_bare (LIKE orders.leads INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING CONSTRAINTS,
    FOREIGN KEY (customer_id) REFERENCES orders.customers (id),
    FOREIGN KEY (order_id) REFERENCES orders.orders (id) ON DELETE SET NULL);

-- (c) seed 002's trigger, as written there (statuses in lower case)
CREATE FUNCTION bench.update_order_leads_delivered() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
  IF NEW.order_id IS NOT NULL AND (OLD.order_id IS NULL OR OLD.order_id != NEW.order_id) THEN
    IF NEW.status IN ('approved', 'lead') THEN
      UPDATE bench.orders_seed
      SET leads_delivered = (SELECT COUNT(*) FROM bench.leads_seed
                              WHERE order_id = NEW.order_id AND status IN ('approved', 'lead'))
      WHERE id = NEW.order_id;
    END IF;
  END IF;
  IF OLD.order_id IS NOT NULL AND NEW.order_id IS NULL THEN
    UPDATE bench.orders_seed
    SET leads_delivered = (SELECT COUNT(*) FROM bench.leads_seed
                            WHERE order_id = OLD.order_id AND status IN ('approved', 'lead'))
    WHERE id = OLD.order_id;
  END IF;
  IF OLD.status != NEW.status AND NEW.order_id IS NOT NULL THEN
    UPDATE bench.orders_seed
    SET leads_delivered = (SELECT COUNT(*) FROM bench.leads_seed
                            WHERE order_id = NEW.order_id AND status IN ('approved', 'lead'))
    WHERE id = NEW.order_id;
  END IF;
  RETURN NEW;
END;
$$;
CREATE TRIGGER update_order_delivery_count
  AFTER INSERT OR UPDATE OF order_id, status ON bench.leads_seed
  FOR EACH ROW EXECUTE FUNCTION bench.update_order_leads_delivered();

-- pre-load the hot orders
INSERT INTO orders.leads (customer_id, order_id, status)
SELECT 'c0000000-0000-0000-0000-000000000000', 'c0000000-0000-0000-0000-000000000000', 'approved'
  FROM generate_series(1, :preload);
INSERT INTO bench.leads_floor (customer_id, order_id, status)
SELECT 'c0000000-0000-0000-0000-000000000000', 'c0000000-0000-0000-0000-000000000000', 'approved'
  FROM generate_series(1, :preload);
UPDATE bench.orders_floor SET leads_delivered = :preload WHERE order_number = 'LB-0';
INSERT INTO bench.leads_floor1 (customer_id, order_id, status)
SELECT 'c0000000-0000-0000-0000-000000000000', 'c0000000-0000-0000-0000-000000000000', 'approved'
  FROM generate_series(1, :preload);
UPDATE bench.orders_floor1 SET leads_delivered = :preload WHERE order_number = 'LB-0';
ALTER TABLE bench.leads_seed DISABLE TRIGGER update_order_delivery_count;
INSERT INTO bench.leads_seed (customer_id, order_id, status)
SELECT 'c0000000-0000-0000-0000-000000000000', 'c0000000-0000-0000-0000-000000000000', 'approved'
  FROM generate_series(1, :preload);
ALTER TABLE bench.leads_seed ENABLE TRIGGER update_order_delivery_count;
UPDATE bench.orders_seed SET leads_delivered = :preload WHERE order_number = 'LB-0';
VACUUM ANALYZE;
