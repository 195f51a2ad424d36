-- test/setup.sql — the pgTAP database, shaped like a PostgREST deployment:
-- authenticator (LOGIN NOINHERIT) switches to anon or authenticated per
-- request; staff is a role some transitions are reserved for.
\set ON_ERROR_STOP 1
DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['anon', 'authenticated', 'staff', 'lead_worker'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticator') THEN
        CREATE ROLE authenticator LOGIN NOINHERIT;
    END IF;
END $$;
GRANT anon, authenticated, staff, lead_worker TO authenticator;

DROP DATABASE IF EXISTS orders_tap;
CREATE DATABASE orders_tap;
\connect orders_tap
CREATE EXTENSION pgtap;
CREATE EXTENSION orders;
-- For test/pgtap_api/07's plan checks: ANALYZE of the tables its requests
-- read, inside the test's transaction (its own uncommitted rows count),
-- which its login may not run itself.  Without it the plans followed
-- whatever statistics earlier tests or autovacuum left (a check failed one
-- run in a few).  A test fixture only: nothing of the extension.
CREATE SCHEMA tap_fixtures;
CREATE FUNCTION tap_fixtures.analyze_orders() RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'ANALYZE orders.orders, orders.customers, orders.staff';
REVOKE ALL ON FUNCTION tap_fixtures.analyze_orders() FROM PUBLIC;
GRANT USAGE ON SCHEMA tap_fixtures TO staff;
GRANT EXECUTE ON FUNCTION tap_fixtures.analyze_orders() TO staff;
-- For test/pgtap_api/06 (0.38.0): a DBA's guest checkout — a SECURITY
-- DEFINER function of a BYPASSRLS role that is not the extension's owner,
-- called by anon — draws its order's number (row level security does not
-- hold its writer, so neither does the number's draw).
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tap_shop_writer') THEN
        CREATE ROLE tap_shop_writer NOLOGIN BYPASSRLS;
    END IF;
END $$;
GRANT USAGE ON SCHEMA orders TO tap_shop_writer;
GRANT SELECT, INSERT, UPDATE ON orders.orders, orders.customers TO tap_shop_writer;
GRANT USAGE ON SEQUENCE orders.order_number_seq TO tap_shop_writer;
GRANT USAGE, CREATE ON SCHEMA tap_fixtures TO tap_shop_writer;
CREATE FUNCTION tap_fixtures.guest_order(name text, address text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c uuid;
    n text;
BEGIN
    INSERT INTO orders.customers (full_name) VALUES (name) RETURNING id INTO c;
    INSERT INTO orders.orders (customer_id, delivery_address) VALUES (c, address) RETURNING order_number INTO n;
    RETURN n;
END $$;
ALTER FUNCTION tap_fixtures.guest_order(text, text) OWNER TO tap_shop_writer;
REVOKE ALL ON FUNCTION tap_fixtures.guest_order(text, text) FROM PUBLIC;
GRANT USAGE ON SCHEMA tap_fixtures TO anon;
GRANT EXECUTE ON FUNCTION tap_fixtures.guest_order(text, text) TO anon;
-- For test/pgtap_api/08 (0.38.0): a storefront back end's own login, no
-- API role (its JWT claims are not believed), that shows share links.
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tap_storefront') THEN
        CREATE ROLE tap_storefront NOLOGIN;
    END IF;
END $$;
GRANT tap_storefront TO authenticator;
GRANT USAGE ON SCHEMA orders TO tap_storefront;
GRANT EXECUTE ON FUNCTION orders.shared_order(text) TO tap_storefront;

-- The extension's own policies and grants (issue 10): one statement per
-- API role.  staff and lead_worker are API roles here too (they stand for
-- PostgREST deployments whose JWTs name another role); who may do what
-- comes from the data: customers.account_id, staff.account_id + role.
SELECT orders.grant_api('anon', 'authenticated');
SELECT orders.grant_api('anon', 'staff');
SELECT orders.grant_api('anon', 'lead_worker');
-- an admin (JWT sub 4444…) for the requests made as staff, a customer rep
-- (5555…) who works the leads and may also delete them (permissions widen
-- the role's defaults)
INSERT INTO orders.staff (id, account_id, full_name, role, permissions) VALUES
  ('00000000-0000-0000-0000-0000000000e8', '44444444-4444-4444-4444-444444444444', 'Api Admin', 'admin', '{}'),
  ('00000000-0000-0000-0000-0000000000e7', '55555555-5555-5555-5555-555555555555', 'Lead Worker', 'customer_rep',
   '{"orders": {"delete": true}}');

-- fixtures: two clients with one order each
INSERT INTO orders.customers (id, account_id, full_name) VALUES
  ('00000000-0000-0000-0000-0000000000a1', '11111111-1111-1111-1111-111111111111', 'Client One'),
  ('00000000-0000-0000-0000-0000000000a2', '22222222-2222-2222-2222-222222222222', 'Client Two');
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle) VALUES
  ('00000000-0000-0000-0000-0000000000b1', 'API-1', '00000000-0000-0000-0000-0000000000a1', 'review'),
  ('00000000-0000-0000-0000-0000000000b2', 'API-2', '00000000-0000-0000-0000-0000000000a2', 'review'),
  ('00000000-0000-0000-0000-0000000000b3', 'API-3', '00000000-0000-0000-0000-0000000000a1', 'cod');
-- the agency orders' client groups (gate client_groups)
INSERT INTO orders.order_groups (order_id, client_id, link_count) VALUES
  ('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-0000000000a1', 1),
  ('00000000-0000-0000-0000-0000000000b2', '00000000-0000-0000-0000-0000000000a2', 1);
-- a campaign with one approved lead of two, and a lead waiting for it;
-- lead_worker may write leads but not orders
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle, leads_purchased) VALUES
  ('00000000-0000-0000-0000-0000000000b4', 'API-4', '00000000-0000-0000-0000-0000000000a1', 'campaign', 2);
UPDATE orders.orders SET status = 'active' WHERE id = '00000000-0000-0000-0000-0000000000b4';
-- worked by the lead worker (a customer rep, sub 5555…)
UPDATE orders.orders SET assigned_rep_id = '00000000-0000-0000-0000-0000000000e7' WHERE id = '00000000-0000-0000-0000-0000000000b4';
INSERT INTO orders.leads (id, customer_id, order_id, status) VALUES
  ('00000000-0000-0000-0000-0000000000d1', '00000000-0000-0000-0000-0000000000a1', NULL, 'approved');

-- one bookable slot with one place; authenticated clients may book,
-- staff may read reservations (orders.staff_role names 'staff' here)
INSERT INTO orders.service_capacity (id, service_id, starts_at, ends_at) VALUES
  ('00000000-0000-0000-0000-0000000000f1', '00000000-0000-0000-0000-0000000000f0',
   now() + interval '1 day', now() + interval '1 day 1 hour');
ALTER DATABASE orders_tap SET orders.staff_role = 'staff';

-- (the built-in review lifecycle lets only staff take payment and
-- complete the work: allowed_staff, 0.28.0; this file set allowed_roles
-- for it before)

-- COD stock and money: API-3 holds two lamps of five; a delivery agent who
-- logs in as staff (JWT sub 3333…); staff read the ledger and record expenses.
-- Clients get no right on products or the ledger.
INSERT INTO orders.products (id, name, sku, stock_quantity) VALUES
  ('00000000-0000-0000-0000-0000000000e1', 'API Lamp', 'API-LAMP', 5);
INSERT INTO orders.order_items (order_id, name, quantity, unit_price, product_id) VALUES
  ('00000000-0000-0000-0000-0000000000b3', 'API Lamp', 2, 20, '00000000-0000-0000-0000-0000000000e1');
UPDATE orders.orders SET total_amount = 40, payment_method = 'cod' WHERE order_number = 'API-3';
INSERT INTO orders.staff (id, account_id, full_name, role) VALUES
  ('00000000-0000-0000-0000-0000000000e9', '33333333-3333-3333-3333-333333333333', 'Api Agent', 'delivery_agent');
UPDATE orders.orders SET assigned_agent_id = '00000000-0000-0000-0000-0000000000e9' WHERE order_number = 'API-3';

-- test/pgtap_api/08_review_requests.sql (issue 11): two more customers, and
-- no order (the admin makes the agency orders in the test, so no other
-- file's counts change).  Client Three (JWT sub 6666…) reviews the sites of
-- its own order; Prospect Four has no account until it converts a share
-- link (then JWT sub 7777…).
INSERT INTO orders.customers (id, account_id, full_name) VALUES
  ('00000000-0000-0000-0000-0000000000a3', '66666666-6666-6666-6666-666666666666', 'Client Three'),
  ('00000000-0000-0000-0000-0000000000a4', NULL, 'Prospect Four');

-- test/pgtap_api/05_search_path_attack.sql (issue 16): the attacker is an
-- API role with ordinary rights of its own.  It owns one schema, where it
-- puts the functions, aggregates and operators that shadow pg_catalog's on
-- its search_path (pg_temp is never searched for those; its pg_temp domains
-- need only the TEMP right every role has).  The grants below make the last
-- owner-switching paths reachable by a non-owner: TRUNCATE and DELETE of
-- leads (leads_truncate; leads_count on DELETE), DELETE of orders
-- (stock_delete_guard) and the cleanup job; a fourth, TRUNCATE of the sites
-- of agency orders (sites_truncate_guard, issue 11).  The other files use
-- none of it.
CREATE SCHEMA attack AUTHORIZATION authenticated;
GRANT DELETE, TRUNCATE ON orders.leads TO lead_worker;
GRANT DELETE ON orders.orders TO staff;
GRANT EXECUTE ON FUNCTION orders.cleanup_expired_reservations() TO staff;
GRANT TRUNCATE ON orders.order_site_selections TO staff;

-- Shop webhooks (issue 12): one with a secret, one open (its orders get
-- the SKU API-LAMP matched to the product above).
INSERT INTO orders.webhooks (name, source, endpoint, secret, field_mapping) VALUES
  ('API shop, signed', 'shopify', 'api-shop', 'api-secret', orders.webhook_mapping('shopify')),
  ('API shop, open', 'custom', 'api-open', NULL, orders.webhook_mapping('shopify'));
-- The wrapper doc/webhooks.md has a DBA write for PostgREST: one unnamed
-- json parameter, so the body arrives as the shop sent it.  pgcrypto (this
-- test database only) signs payloads independently of the extension.
CREATE FUNCTION public.api_shop_webhook(json) RETURNS jsonb
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
    RETURN orders.ingest_webhook('api-shop', $1);
CREATE EXTENSION pgcrypto;
-- pgrowlocks (this test database only): pgTAP 17 reads which row locks a
-- review holds.
CREATE EXTENSION pgrowlocks;
-- amcheck (this test database only): pgTAP 16 checks that rows written
-- without an UPDATE statement have every index entry they need.
CREATE EXTENSION amcheck;
-- Notifications (issue 13): two for the rep (5555…), one for the admin (4444…).
INSERT INTO orders.notifications (id, user_id, type, title) VALUES
  ('00000000-0000-0000-0000-0000000000f1', '00000000-0000-0000-0000-0000000000e7', 'order', 'New order API-1'),
  ('00000000-0000-0000-0000-0000000000f2', '00000000-0000-0000-0000-0000000000e7', 'delivery', 'API-2 delivered'),
  ('00000000-0000-0000-0000-0000000000f3', '00000000-0000-0000-0000-0000000000e8', 'alert', 'Low stock');
