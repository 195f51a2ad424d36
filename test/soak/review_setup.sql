-- Agency-order review soak fixtures: 12 agency orders (lifecycle review) of
-- one agency, each split into 3 client groups (clients 1-6) of 3-5 links;
-- every group's analysis suggested 15 sites s1..s15.example.com (domains
-- s16-s20 may be suggested later), so approvals beyond link_count happen
-- (OR070).  Group ids: 7e000000-0000-0000-0000-000000000<order><group>,
-- order ids 7d000000-...-0000000000<order> (order numbers RV-<order>).
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE SCHEMA soak;
INSERT INTO orders.customers (id, full_name)
SELECT ('7c000000-0000-0000-0000-0000000000' || lpad(n::text, 2, '0'))::uuid,
       CASE WHEN n = 0 THEN 'Review soak agency' ELSE 'Review soak client ' || n END
  FROM generate_series(0, 6) n;
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle, requires_client_review)
SELECT ('7d000000-0000-0000-0000-0000000000' || lpad(o::text, 2, '0'))::uuid, 'RV-' || o,
       '7c000000-0000-0000-0000-000000000000', 'review', true
  FROM generate_series(10, 21) o;
INSERT INTO orders.order_groups (id, order_id, client_id, link_count)
SELECT ('7e000000-0000-0000-0000-000000000' || o || g)::uuid,
       ('7d000000-0000-0000-0000-0000000000' || o)::uuid,
       ('7c000000-0000-0000-0000-0000000000' || lpad((1 + (o + g) % 6)::text, 2, '0'))::uuid, 3 + (o + g) % 3
  FROM generate_series(10, 21) o, generate_series(1, 3) g;
-- configuring -> analyzing (gate client_groups) -> reviewing (the last group's analysis)
DO $$ BEGIN
    PERFORM orders.transition(id, 'analyzing') FROM orders.orders WHERE order_number LIKE 'RV-%' ORDER BY id;
    PERFORM orders.start_analysis(id, gen_random_uuid()) FROM orders.order_groups ORDER BY id;
    PERFORM orders.complete_analysis(g.id, (SELECT jsonb_agg(jsonb_build_object(
                'domain', 'https://www.S' || n || '.example.com/page', 'domain_id', gen_random_uuid(),
                'metrics', jsonb_build_object('dr', 10 + n, 'traffic', 1000 * n, 'price', 20 + n % 7)))
              FROM generate_series(1, 15) n))
       FROM orders.order_groups g ORDER BY g.id;
END $$;
DO $$ BEGIN
    IF (SELECT count(*) FROM orders.orders WHERE order_number LIKE 'RV-%' AND status = 'reviewing') <> 12 THEN
        RAISE EXCEPTION 'review soak fixtures: not every order reached reviewing';
    END IF;
END $$;
CREATE TABLE soak.refusals (code text NOT NULL);
-- soak.seen: which statuses the run gave the sites of each group (the
-- check that every order was exercised asks this, not the final state,
-- which a long enough run can leave without, say, any suggested site)
CREATE TABLE soak.seen (order_group_id uuid, status text, PRIMARY KEY (order_group_id, status));
CREATE FUNCTION soak.saw() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO soak.seen SELECT DISTINCT order_group_id, status FROM set_rows ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
CREATE TRIGGER soak_saw AFTER UPDATE ON orders.order_site_selections
    REFERENCING NEW TABLE AS set_rows FOR EACH STATEMENT EXECUTE FUNCTION soak.saw();
-- soak.group_id(order 10-21, group 1-3)
CREATE FUNCTION soak.group_id(o integer, g integer) RETURNS uuid LANGUAGE sql IMMUTABLE AS $$
    SELECT ('7e000000-0000-0000-0000-000000000' || o || g)::uuid
$$;
-- soak.try(sql) — run sql; a refusal expected of the extension under this
-- load (OR001 the order moved meanwhile, OR070 group full, OR071 gate closed, OR072 link_count below the
-- approved sites, OR076 a site deleted since it was picked) is recorded,
-- not raised; anything else fails the client
CREATE FUNCTION soak.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN SQLSTATE 'OR001' OR SQLSTATE 'OR070' OR SQLSTATE 'OR071' OR SQLSTATE 'OR072' OR SQLSTATE 'OR076' THEN
    INSERT INTO soak.refusals VALUES (SQLSTATE);
    RETURN SQLSTATE;
END $$;
ANALYZE;
