-- Benchmark fixtures for test/bench/transition.sh: 8,000 orders in a
-- two-state lifecycle (a <-> b), and copies of orders/history for the
-- hand-written floor and for seed 004's PL/pgSQL triggers.
\ir bench_lifecycle.sql

INSERT INTO orders.customers (id, full_name) VALUES ('b0000000-0000-0000-0000-000000000001', 'Bench');
-- ids derived from the number, so that a client can name an order by id
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle, total_amount)
SELECT ('b0000000-0000-0000-0000-' || lpad(n::text, 12, '0'))::uuid, 'B-' || n,
       'b0000000-0000-0000-0000-000000000001', 'bench', 10
  FROM generate_series(1, 9000) n;

-- (b) the floor: same tables (columns, indexes, checks, the history's
-- foreign key, as in seed 004), no triggers of its own
CREATE TABLE bench.orders_floor (LIKE orders.orders INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING CONSTRAINTS INCLUDING GENERATED);
CREATE TABLE bench.history_floor (LIKE orders.order_history INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING IDENTITY);
ALTER TABLE bench.history_floor ADD FOREIGN KEY (order_id) REFERENCES bench.orders_floor (id) ON DELETE CASCADE;
-- the orders' columns but the generated leads_remaining, which the floor's
-- copy computes itself (INCLUDING GENERATED: the same table, the same work)
SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) AS ocols FROM pg_attribute
 WHERE attrelid = 'orders.orders'::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = '' \gset
INSERT INTO bench.orders_floor (:ocols) SELECT :ocols FROM orders.orders;

-- (c) seed 004: PL/pgSQL update_updated_at_column + log_order_status_change
CREATE TABLE bench.orders_plpgsql (LIKE orders.orders INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING CONSTRAINTS INCLUDING GENERATED);
CREATE TABLE bench.history_plpgsql (LIKE orders.order_history INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING IDENTITY);
ALTER TABLE bench.history_plpgsql ADD FOREIGN KEY (order_id) REFERENCES bench.orders_plpgsql (id) ON DELETE CASCADE;
INSERT INTO bench.orders_plpgsql (:ocols) SELECT :ocols FROM orders.orders;

CREATE FUNCTION bench.update_updated_at_column() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at = CURRENT_TIMESTAMP;
    RETURN NEW;
END $$;
CREATE FUNCTION bench.log_order_status_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status IS DISTINCT FROM NEW.status THEN
        INSERT INTO bench.history_plpgsql (order_id, old_status, new_status, changed_by, notes)
        VALUES (NEW.id, OLD.status, NEW.status, current_user, NULL);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER update_orders_updated_at BEFORE UPDATE ON bench.orders_plpgsql
    FOR EACH ROW EXECUTE FUNCTION bench.update_updated_at_column();
CREATE TRIGGER log_order_status AFTER UPDATE ON bench.orders_plpgsql
    FOR EACH ROW EXECUTE FUNCTION bench.log_order_status_change();

VACUUM ANALYZE;
