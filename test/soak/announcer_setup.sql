-- Fixtures of test/soak/announcer.sh: 2,000 orders in a two-state
-- lifecycle (a <-> b), and where the soak's clients note the history rows
-- they asked to be announced by their own transaction (immediate) or not
-- at all (off).
\ir ../bench/bench_lifecycle.sql
CREATE SCHEMA soak;
CREATE TABLE soak.modes (history_id bigint PRIMARY KEY, mode text NOT NULL);
-- the notifications the listener received, in the order it received them
CREATE TABLE soak.heard (n bigserial PRIMARY KEY, doc jsonb NOT NULL);
INSERT INTO orders.customers (id, full_name) VALUES ('a0000000-0000-0000-0000-000000000001', 'Soak');
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle)
SELECT ('a0000000-0000-0000-0000-' || lpad(n::text, 12, '0'))::uuid, 'AN-' || n,
       'a0000000-0000-0000-0000-000000000001', 'bench'
  FROM generate_series(1, 2000) n;
