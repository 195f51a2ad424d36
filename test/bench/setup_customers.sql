-- Benchmark fixtures for test/bench/customers.sh: three customers with 1k,
-- 10k and 100k delivered cod orders, for (a) the C statistics trigger, (b)
-- the floor (order UPDATE + customers UPDATE by the delta, no triggers) and
-- (c) seed 004's recompute trigger.  Order ids: e<size digit>…<n>.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS bench CASCADE;
CREATE SCHEMA bench;
CREATE TEMP TABLE sizes (k int, n int);
INSERT INTO sizes VALUES (3, 1000), (4, 10000), (5, 100000);

INSERT INTO orders.customers (id, full_name)
SELECT ('e' || k || '000000-0000-0000-0000-000000000000')::uuid, 'Customer with ' || n || ' orders' FROM sizes;
INSERT INTO orders.orders (id, order_number, customer_id, status, payment_status, total_amount)
SELECT ('e' || k || '000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid, 'CB-' || k || '-' || i,
       ('e' || k || '000000-0000-0000-0000-000000000000')::uuid, 'delivered', 'collected', 10
  FROM sizes, generate_series(1, n) i;

CREATE TABLE bench.customers_floor (LIKE orders.customers INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING CONSTRAINTS);
CREATE TABLE bench.orders_floor (LIKE orders.orders INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING CONSTRAINTS INCLUDING GENERATED);
CREATE TABLE bench.customers_seed (LIKE orders.customers INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING CONSTRAINTS);
CREATE TABLE bench.orders_seed (LIKE orders.orders INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING CONSTRAINTS INCLUDING GENERATED);
INSERT INTO bench.customers_floor SELECT * FROM orders.customers WHERE full_name LIKE 'Customer with %';
INSERT INTO bench.customers_seed SELECT * FROM orders.customers WHERE full_name LIKE 'Customer with %';
-- the orders' columns but the generated leads_remaining, which the floor's
-- copy computes itself (INCLUDING GENERATED: the same table, the same work)
SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) AS ocols FROM pg_attribute
 WHERE attrelid = 'orders.orders'::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = '' \gset
INSERT INTO bench.orders_floor (:ocols) SELECT :ocols FROM orders.orders WHERE order_number LIKE 'CB-%';
INSERT INTO bench.orders_seed (:ocols) SELECT :ocols FROM orders.orders WHERE order_number LIKE 'CB-%';
ALTER TABLE bench.orders_floor ADD FOREIGN KEY (customer_id) REFERENCES bench.customers_floor (id);
ALTER TABLE bench.orders_seed ADD FOREIGN KEY (customer_id) REFERENCES bench.customers_seed (id);

-- (b2) the floor with the ledger posting 0.6.0 adds: what ours does since
-- then, hand-written (same ledger columns, indexes and foreign keys)
CREATE TABLE bench.ledger_floor (LIKE orders.financial_transactions INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING CONSTRAINTS);
ALTER TABLE bench.ledger_floor ADD FOREIGN KEY (order_id) REFERENCES bench.orders_floor (id),
                               ADD FOREIGN KEY (recorded_by_user_id) REFERENCES orders.staff (id);

-- (c) seed 004's update_customer_stats(): recompute on every change
CREATE FUNCTION bench.update_customer_stats() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE bench.customers_seed SET
        total_orders = (SELECT COUNT(*) FROM bench.orders_seed
                         WHERE customer_id = NEW.customer_id AND status != 'cancelled'),
        total_spent = (SELECT COALESCE(SUM(total_amount), 0) FROM bench.orders_seed
                        WHERE customer_id = NEW.customer_id AND status = 'delivered' AND payment_status = 'collected'),
        return_rate = (SELECT CASE WHEN COUNT(*) = 0 THEN 0
                                   ELSE ROUND(COUNT(*) FILTER (WHERE status = 'returned') * 100.0 / COUNT(*), 2) END
                         FROM bench.orders_seed WHERE customer_id = NEW.customer_id AND status != 'cancelled')
    WHERE id = NEW.customer_id;
    RETURN NEW;
END $$;
CREATE TRIGGER update_customer_stats AFTER INSERT OR UPDATE ON bench.orders_seed
    FOR EACH ROW EXECUTE FUNCTION bench.update_customer_stats();
VACUUM ANALYZE;
