-- (0.45.0) orders.erase_customer: a customer who asked to be forgotten —
-- nothing of theirs that names or locates them is left in any table of the
-- extension, their orders and money stay, another customer is untouched;
-- refused while an order of theirs is open, and then nothing changes.
BEGIN;
SELECT plan(28);

-- pg_temp.err(sql) — the SQLSTATE a statement fails with, 'ok' when it passes
CREATE FUNCTION pg_temp.err(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;
-- pg_temp.mentions(pattern) — the tables of schema orders with a row whose
-- text matches "pattern" (case-insensitive), and how many rows
CREATE FUNCTION pg_temp.mentions(pattern text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    t regclass;
    n bigint;
    found text[] := '{}';
BEGIN
    FOR t IN SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
              WHERE s.nspname = 'orders' AND c.relkind = 'r' ORDER BY c.relname LOOP
        EXECUTE format('SELECT count(*) FROM %s x WHERE x::text ILIKE $1', t) INTO n USING '%' || pattern || '%';
        IF n > 0 THEN
            found := found || format('%s:%s', t, n);
        END IF;
    END LOOP;
    RETURN array_to_string(found, ' ');
END
$$;
-- pg_temp.detail(sql) — the DETAIL of the error a statement fails with
CREATE FUNCTION pg_temp.detail(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    d text;
BEGIN
    EXECUTE sql;
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
    RETURN d;
END
$$;
-- pg_temp.fingerprint() — everything erase_customer may change, as text
CREATE FUNCTION pg_temp.fingerprint() RETURNS text LANGUAGE sql AS $$
    SELECT md5(concat_ws('|',
        (SELECT string_agg(c::text, ',' ORDER BY c.id) FROM orders.customers c),
        (SELECT string_agg(o::text, ',' ORDER BY o.id) FROM orders.orders o),
        (SELECT string_agg(h::text, ',' ORDER BY h.id) FROM orders.order_history h),
        (SELECT count(*) FROM orders.order_notes), (SELECT count(*) FROM orders.activity_logs),
        (SELECT count(*) FROM orders.notifications), (SELECT count(*) FROM orders.outbox),
        (SELECT count(*) FROM orders.workflow_executions),
        (SELECT string_agg(d::text, ',' ORDER BY d.id) FROM orders.deliveries d),
        (SELECT string_agg(l::text, ',' ORDER BY l.id) FROM orders.webhook_logs l)))
$$;

INSERT INTO orders.staff (id, full_name, role) VALUES
  ('00000000-0000-0000-0000-0000000029f1', 'Agent Zed', 'delivery_agent'),
  ('00000000-0000-0000-0000-0000000029f2', 'Manager Moe', 'manager');
INSERT INTO orders.customers (id, account_id, full_name, email, phone, address, city, area, postal_code, notes, tags) VALUES
  ('00000000-0000-0000-0000-0000000029c1', '00000000-0000-0000-0000-0000000029a1', 'Erin Example', 'erin@example.com',
   '+1 555 000 1111', '12 Rue Erin', 'Erinville', 'Erin Heights', 'ER1 1IN', 'Erin prefers mornings', '["erin-vip"]'),
  ('00000000-0000-0000-0000-0000000029c2', NULL, 'Kim Kept', 'kim@example.com', '+1 555 000 2222', '3 Main St', 'Springfield',
   'North', '12345', 'Kim''s note', '["vip"]');
INSERT INTO orders.orders (id, order_number, customer_id, delivery_fee, delivery_address, delivery_area, customer_notes, notes) VALUES
  ('00000000-0000-0000-0000-0000000029d1', 'ER-1', '00000000-0000-0000-0000-0000000029c1', 5,
   '12 Rue Erin', 'Erin Heights', 'Ring twice, ask for Erin', 'Erin was rude on the phone'),
  ('00000000-0000-0000-0000-0000000029d2', 'ER-2', '00000000-0000-0000-0000-0000000029c1', 7,
   '12 Rue Erin', 'Erin Heights', NULL, NULL),
  ('00000000-0000-0000-0000-0000000029d3', 'KK-1', '00000000-0000-0000-0000-0000000029c2', 4,
   '3 Main St', 'North', 'Leave it with Kim', NULL);
INSERT INTO orders.order_items (order_id, name, quantity, unit_price) VALUES
  ('00000000-0000-0000-0000-0000000029d1', 'Kettle', 1, 30), ('00000000-0000-0000-0000-0000000029d2', 'Mug', 2, 10);
-- ER-1 delivered, with its delivery; ER-2 still new (open)
SELECT orders.transition('00000000-0000-0000-0000-0000000029d1', s, CASE s WHEN 'confirmed' THEN 'Erin confirmed by phone' END)
  FROM unnest(ARRAY['confirmed', 'being_prepared', 'ready_for_pickup', 'out_for_delivery', 'delivered']) s \g /dev/null
INSERT INTO orders.deliveries (order_id, agent_id, customer_feedback, rating, photo_url, signature_url, route_data, proof_of_delivery) VALUES
  ('00000000-0000-0000-0000-0000000029d1', '00000000-0000-0000-0000-0000000029f1', 'Erin says: great', 5,
   'https://img.example.com/erin-door.jpg', 'https://img.example.com/erin-sig.png', '{"to": "12 Rue Erin"}', '{"signed_by": "Erin"}');
INSERT INTO orders.order_notes (order_id, author_id, body) VALUES
  ('00000000-0000-0000-0000-0000000029d1', '00000000-0000-0000-0000-0000000029f2', 'Erin asked for a refund of the delivery fee');
INSERT INTO orders.financial_transactions (order_id, type, amount, method, notes) VALUES
  ('00000000-0000-0000-0000-0000000029d1', 'refund', 5, 'cash', 'Fee refunded to Erin in cash');
INSERT INTO orders.webhook_logs (delivery_id, request_payload, response_status, order_created_id) VALUES
  ('dlv-29', '{"email": "erin@example.com", "shipping_address": {"address1": "12 Rue Erin"}}', 201, '00000000-0000-0000-0000-0000000029d1');
INSERT INTO orders.workflows (id, name, trigger_type, trigger_config, workflow_steps) VALUES
  ('00000000-0000-0000-0000-0000000029e1', 'Manual follow-up', 'manual', '{}',
   '[{"type": "create_task", "config": {"assigned_to": "manager", "title": "call back"}}]');
INSERT INTO orders.workflow_executions (id, workflow_id, order_id, customer_id, status, trigger_event) VALUES
  ('00000000-0000-0000-0000-0000000029b1', '00000000-0000-0000-0000-0000000029e1', '00000000-0000-0000-0000-0000000029d1',
   '00000000-0000-0000-0000-0000000029c1', 'completed', '{"event": "manual", "by": "Erin''s rep"}');
INSERT INTO orders.notifications (user_id, type, title, message, data) VALUES
  ('00000000-0000-0000-0000-0000000029f2', 'workflow', 'Call back', 'Call Erin Example',
   '{"customer_id": "00000000-0000-0000-0000-0000000029c1", "customer_name": "Erin Example", "execution_id": "00000000-0000-0000-0000-0000000029b1"}'),
  ('00000000-0000-0000-0000-0000000029f2', 'system', 'Backup done', NULL, '{}');
SELECT orders.enqueue_outbox('email', '{"to": "erin@example.com", "customer_id": "00000000-0000-0000-0000-0000000029c1", "message": "Hi Erin"}'),
       orders.enqueue_outbox('sms', '{"to": "+1 555 000 9999", "staff_id": "00000000-0000-0000-0000-0000000029f2", "data": {"order_id": "00000000-0000-0000-0000-0000000029d1", "customer_name": "Erin Example"}}'),
       orders.enqueue_outbox('sms', '{"to": "+1 555 000 2222", "message": "Hi Kim"}') \g /dev/null
CREATE TEMP TABLE link AS SELECT orders.create_share_token('00000000-0000-0000-0000-0000000029d1', metadata => '{"sent_to": "erin@example.com"}') AS token;
-- Kim's agency order, one group reviewed by Erin as the client
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle) VALUES
  ('00000000-0000-0000-0000-0000000029d4', 'KK-2', '00000000-0000-0000-0000-0000000029c2', 'review');
INSERT INTO orders.order_groups (id, order_id, client_id, link_count) VALUES
  ('00000000-0000-0000-0000-0000000029a4', '00000000-0000-0000-0000-0000000029d4', '00000000-0000-0000-0000-0000000029c1', 1);
INSERT INTO orders.order_site_selections (order_group_id, domain, client_notes, internal_notes) VALUES
  ('00000000-0000-0000-0000-0000000029a4', 'news.example.org', 'Erin: our brand fits here', 'Erin haggles'),
  ('00000000-0000-0000-0000-0000000029a4', 'blog.example.org', NULL, NULL);
-- the agency's link for that order, sent to Erin, through which she reviewed the second site
CREATE TEMP TABLE agency_link AS
SELECT orders.create_share_token('00000000-0000-0000-0000-0000000029d4', metadata => '{"sent_to": "erin@example.com"}') AS token;
UPDATE orders.order_site_selections
   SET reviewed_by = 'share:' || (SELECT id FROM orders.order_share_tokens WHERE order_id = '00000000-0000-0000-0000-0000000029d4')
 WHERE domain = 'blog.example.org';
-- her login's id recorded as the actor: a site she reviewed, the order's review stamp, an item's approval
UPDATE orders.order_site_selections SET reviewed_by = '00000000-0000-0000-0000-0000000029a1'
 WHERE domain = 'news.example.org';
-- (review) her own link to her order, made under her login (a JWT sub may carry capitals)
UPDATE orders.order_share_tokens SET created_by = '00000000-0000-0000-0000-0000000029A1'
 WHERE order_id = '00000000-0000-0000-0000-0000000029d1';
UPDATE orders.orders SET reviewed_by = '00000000-0000-0000-0000-0000000029a1' WHERE id = '00000000-0000-0000-0000-0000000029d4';
INSERT INTO orders.order_items (order_id, item_type, name, quantity, unit_price, snapshot) VALUES
  ('00000000-0000-0000-0000-0000000029d4', 'service', 'news.example.org', 1, 0,
   '{"domain": "news.example.org", "approved_by": "00000000-0000-0000-0000-0000000029a1"}');

SELECT ok(pg_temp.mentions('erin') <> '', '(Erin is in the tables: ' || pg_temp.mentions('erin') || ')');

-- refused while an order is open; nothing changes
CREATE TEMP TABLE before AS SELECT pg_temp.fingerprint() AS f;
SELECT throws_ok($$SELECT orders.erase_customer('00000000-0000-0000-0000-0000000029c1')$$, 'OR123',
                 'customer 00000000-0000-0000-0000-0000000029c1 has 1 open orders: it can be erased once they are closed',
                 'an open order: refused (OR123), naming the customer');
SELECT is(pg_temp.detail($$SELECT orders.erase_customer('00000000-0000-0000-0000-0000000029c1')$$), 'Open: ER-2.',
          '... its DETAIL names the open orders');
SELECT is(pg_temp.fingerprint(), (SELECT f FROM before), '... and nothing changed');
SELECT is(pg_temp.err($$SELECT orders.erase_customer(NULL)$$) || ' '
          || pg_temp.err($$SELECT orders.erase_customer('00000000-0000-0000-0000-0000000029ff')$$) || ' '
          || (pg_temp.fingerprint() = (SELECT f FROM before)),
          '22004 OR116 true', 'NULL: 22004; an unknown customer: OR116; nothing changed');

-- row level security would hide rows from the caller: refused, nothing changed
CREATE ROLE t29_backoffice NOLOGIN;
GRANT USAGE ON SCHEMA orders TO t29_backoffice;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA orders TO t29_backoffice;
GRANT EXECUTE ON FUNCTION orders.erase_customer(uuid) TO t29_backoffice;
SET LOCAL ROLE t29_backoffice;
SELECT is(pg_temp.err($$SELECT orders.erase_customer('00000000-0000-0000-0000-0000000029c1')$$), '42501',
          'a caller whom row level security holds: refused (42501) — never a partial erasure');
RESET ROLE;
SELECT is(pg_temp.fingerprint(), (SELECT f FROM before), '... and nothing changed');
-- (review) in an API request, a function of a BYPASSRLS role: refused up front (the orders' column rules would halfway)
CREATE ROLE t29_bypass NOLOGIN BYPASSRLS;
GRANT USAGE ON SCHEMA orders TO t29_bypass;
GRANT CREATE ON SCHEMA public TO t29_bypass;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA orders TO t29_bypass;
GRANT EXECUTE ON FUNCTION orders.erase_customer(uuid) TO t29_bypass;
CREATE FUNCTION public.t29_erase(c uuid) RETURNS jsonb LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog
    AS $$ SELECT orders.erase_customer(c) $$;
ALTER FUNCTION public.t29_erase(uuid) OWNER TO t29_bypass;
SET LOCAL ROLE authenticated;
SELECT is(pg_temp.err($$SELECT public.t29_erase('00000000-0000-0000-0000-0000000029c1')$$), '42501',
          'in an API request, a BYPASSRLS role''s function: refused (42501) before anything is written');
RESET ROLE;
SELECT is(pg_temp.fingerprint(), (SELECT f FROM before), '... and nothing changed');

-- the open order cancelled by Erin herself (her login is the history's actor): erased
SELECT set_config('request.jwt.claims', '{"sub": "00000000-0000-0000-0000-0000000029A1"}', true) \g /dev/null
SELECT orders.transition('00000000-0000-0000-0000-0000000029d2', 'cancelled', 'Erin moved away') \g /dev/null
SELECT set_config('request.jwt.claims', '', true) \g /dev/null
SELECT ok(pg_temp.mentions('0000000029a1') <> '', '(her login''s id is in the tables: ' || pg_temp.mentions('0000000029a1') || ')');
CREATE TEMP TABLE kept AS
SELECT (SELECT c FROM orders.customers c WHERE c.id = '00000000-0000-0000-0000-0000000029c2') AS kim,
       (SELECT o FROM orders.orders o WHERE o.id = '00000000-0000-0000-0000-0000000029d3') AS kim_order,
       (SELECT count(*) FROM orders.activity_logs WHERE entity_id IN ('00000000-0000-0000-0000-0000000029c2',
                                                                   '00000000-0000-0000-0000-0000000029d3')) AS kim_log,
       (SELECT format('%s %s %s %s', total_orders, total_spent, returned_orders, return_rate) FROM orders.customers
         WHERE id = '00000000-0000-0000-0000-0000000029c1') AS erin_counts,
       (SELECT string_agg(format('%s %s %s %s %s', order_number, status, subtotal, total_amount, payment_status), ', ' ORDER BY order_number)
          FROM orders.orders WHERE customer_id = '00000000-0000-0000-0000-0000000029c1') AS erin_orders,
       (SELECT count(*) FROM orders.order_history WHERE order_id IN ('00000000-0000-0000-0000-0000000029d1',
                                                                    '00000000-0000-0000-0000-0000000029d2')) AS erin_history,
       (SELECT string_agg(format('%s %s %s', type, amount, automatic), ', ' ORDER BY type, amount) FROM orders.financial_transactions
         WHERE order_id = '00000000-0000-0000-0000-0000000029d1') AS erin_money;
CREATE TEMP TABLE erased AS SELECT orders.erase_customer('00000000-0000-0000-0000-0000000029c1') AS r;
SELECT is(pg_temp.mentions('erin'), '', 'no row of any table of the extension mentions Erin any more');
SELECT is(pg_temp.mentions('555 000 1111') || pg_temp.mentions('ER1 1IN'), '', '... nor her phone or postal code');
SELECT is(pg_temp.mentions('0000000029a1'), '', '... nor her login''s id, in any capitals (history, review stamps, approvals, share links)');
SELECT is((SELECT metadata::text || ' ' || (revoked_at IS NULL) FROM orders.order_share_tokens WHERE order_id = '00000000-0000-0000-0000-0000000029d4'),
          '{} true', 'the agency''s link she reviewed through: whom it was sent to is gone, the link stays the agency''s');
SELECT is((SELECT format('%s %s %s', full_name, tags, account_id IS NULL) FROM orders.customers
            WHERE id = '00000000-0000-0000-0000-0000000029c1'), 'Erased customer [] t',
          'the customer row: a placeholder name, no tags, no login');
SELECT is((SELECT format('%s %s %s %s', total_orders, total_spent, returned_orders, return_rate) FROM orders.customers
            WHERE id = '00000000-0000-0000-0000-0000000029c1'), (SELECT erin_counts FROM kept), '... its counts as they were');
SELECT is((SELECT string_agg(format('%s %s %s %s %s', order_number, status, subtotal, total_amount, payment_status), ', ' ORDER BY order_number)
             FROM orders.orders WHERE customer_id = '00000000-0000-0000-0000-0000000029c1'), (SELECT erin_orders FROM kept),
          'the orders stay, their status and money too');
SELECT is((SELECT count(*) FROM orders.order_history WHERE order_id IN ('00000000-0000-0000-0000-0000000029d1',
                                                                       '00000000-0000-0000-0000-0000000029d2')),
          (SELECT erin_history FROM kept), '... and their history rows (without notes)');
SELECT is((SELECT string_agg(format('%s %s %s', type, amount, automatic), ', ' ORDER BY type, amount) FROM orders.financial_transactions
            WHERE order_id = '00000000-0000-0000-0000-0000000029d1'), (SELECT erin_money FROM kept), '... and the money of the ledger');
SELECT is((SELECT format('%s %s', rating, customer_feedback IS NULL AND photo_url IS NULL) FROM orders.deliveries
            WHERE order_id = '00000000-0000-0000-0000-0000000029d1'), '5 t', 'the delivery keeps its rating, not her words or photos');
SELECT is((SELECT count(*)::int FROM orders.webhook_logs WHERE delivery_id = 'dlv-29' AND request_payload IS NULL), 1,
          'the shop''s log row stays without its payload');
SELECT is((SELECT (revoked_at IS NOT NULL)::text FROM orders.order_share_tokens WHERE order_id = '00000000-0000-0000-0000-0000000029d1'),
          'true', 'its order''s share link is revoked');
SELECT is(format('%s %s %s', (SELECT count(*) FROM orders.workflow_executions), (SELECT string_agg(title, ',') FROM orders.notifications WHERE title IN ('Call back', 'Backup done')),
                 (SELECT string_agg(coalesce(payload ->> 'message', payload ->> 'to'), ',') FROM orders.outbox WHERE payload ->> 'to' IN ('erin@example.com', '+1 555 000 9999', '+1 555 000 2222'))),
          '0 Backup done Hi Kim', 'her workflow run, the notifications and messages about her or her order are gone; the others stay');
SELECT is((SELECT count(*)::int FROM orders.activity_logs
            WHERE entity_id IN ('00000000-0000-0000-0000-0000000029c1', '00000000-0000-0000-0000-0000000029d1',
                                '00000000-0000-0000-0000-0000000029d2')), 0,
          'the activity log of her and her orders is gone, the erasure''s own rows too');
SELECT is(format('%s %s %s', (SELECT c::text FROM orders.customers c WHERE c.id = '00000000-0000-0000-0000-0000000029c2') = (SELECT kim::text FROM kept),
                 (SELECT o::text FROM orders.orders o WHERE o.id = '00000000-0000-0000-0000-0000000029d3') = (SELECT kim_order::text FROM kept),
                 (SELECT count(*) FROM orders.activity_logs WHERE entity_id IN ('00000000-0000-0000-0000-0000000029c2',
                                                                             '00000000-0000-0000-0000-0000000029d3')) = (SELECT kim_log FROM kept)),
          't t t', 'Kim, her order and their activity log are untouched');
SELECT is((SELECT r - 'customer' FROM erased),
          ('{"orders": 2, "outbox": 2, "deliveries": 1, "order_notes": 1, "actor_stamps": 3, "webhook_logs": 1, "activity_logs": '
           || ((SELECT r ->> 'activity_logs' FROM erased)) || ', "notifications": 1, "order_history": 2, "orders_overwritten": 2, '
           || '"order_share_tokens": 2, "workflow_executions": 1, "order_site_selections": 1, "financial_transactions": 1}')::jsonb,
          'it says what it did, table by table');
SELECT is(pg_temp.err($$SELECT orders.erase_customer('00000000-0000-0000-0000-0000000029c1')$$), 'ok', 'erasing again does no harm');

-- the owner's: no API role may call it
SELECT ok(NOT has_function_privilege('anon', 'orders.erase_customer(uuid)', 'EXECUTE')
          AND NOT has_function_privilege('authenticated', 'orders.erase_customer(uuid)', 'EXECUTE'),
          'API roles cannot execute erase_customer');

SELECT * FROM finish();
ROLLBACK;
