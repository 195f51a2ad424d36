-- Agency orders as PostgREST sends them (issue 11): the agency's admin
-- makes two orders with their client groups and the analysis' sites; a
-- logged-in client reviews its own group; another client sees nothing of
-- it; an anonymous prospect views, approves and (once logged in) converts a
-- shared order; staff-only notes stay with staff.
BEGIN;
SELECT plan(114);

SELECT ok(NOT (SELECT rolsuper FROM pg_roles WHERE rolname = session_user),
          'connected as a non-superuser login (' || session_user || ')');

---------------------------------------------------------------------------
-- request: the admin (JWT sub 4444…) makes the agency orders
---------------------------------------------------------------------------
SELECT set_config('role', 'staff', true);
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle, requires_client_review) VALUES
  ('00000000-0000-0000-0000-0000000008b5', 'API-5', '00000000-0000-0000-0000-0000000000a3', 'review', true),
  ('00000000-0000-0000-0000-0000000008b6', 'API-6', '00000000-0000-0000-0000-0000000000a4', 'review', true);
INSERT INTO orders.order_groups (id, order_id, client_id, link_count) VALUES
  ('00000000-0000-0000-0000-0000000008c5', '00000000-0000-0000-0000-0000000008b5', '00000000-0000-0000-0000-0000000000a3', 1),
  ('00000000-0000-0000-0000-0000000008c6', '00000000-0000-0000-0000-0000000008b6', '00000000-0000-0000-0000-0000000000a4', 1);
SELECT is(ARRAY(SELECT t FROM orders.allowed_transitions('00000000-0000-0000-0000-0000000008b5') t ORDER BY 1),
          '{analyzing,cancelled}', '(0.29.0) allowed_transitions offers the gated edge (its check is no API role''s to call)');
SELECT is((SELECT string_agg((orders.transition(id, 'analyzing')).status, ',') FROM orders.orders
            WHERE order_number IN ('API-5', 'API-6')), 'analyzing,analyzing', 'the admin starts both analyses');
SELECT is((orders.complete_analysis('00000000-0000-0000-0000-0000000008c5',
             '[{"domain": "three-a.example.com", "metrics": {"dr": 40, "price": 80, "cost": 30}},
               {"domain": "three-b.example.com"}]')).suggested_count, 2, 'the analysis suggests two sites for API-5');
SELECT is((orders.complete_analysis('00000000-0000-0000-0000-0000000008c6',
             '[{"domain": "prospect-a.example.com", "metrics": {"dr": 55, "price": 60, "cost": 25}},
               {"domain": "prospect-b.example.com"}]')).suggested_count, 2, 'and two for API-6');
SELECT is((SELECT string_agg(status, ',' ORDER BY order_number) FROM orders.orders WHERE order_number IN ('API-5', 'API-6')),
          'reviewing,reviewing', 'both orders are in review');
SELECT lives_ok($$SELECT orders.set_site_internal_notes(x.id, 'staff only: paid placement')
                    FROM orders.order_site_selections x WHERE x.domain IN ('three-a.example.com', 'prospect-a.example.com')$$,
                'the admin notes what the client must not see');
SELECT throws_ok($$SELECT orders.set_site_internal_notes(x.id, repeat('n', 10001))
                     FROM orders.order_site_selections x WHERE x.domain = 'three-a.example.com'$$, '22001',
                 'orders.set_site_internal_notes: argument "internal_notes" may have at most 10000 characters, not 10001',
                 '(0.42.0) internal notes over 10,000 characters: 22001 (staff stored 50 million, which every reader received)');
SELECT is((SELECT internal_notes FROM orders.site_internal_notes('00000000-0000-0000-0000-0000000008c5') WHERE domain = 'three-a.example.com'),
          'staff only: paid placement', '... the notes as they were');
SELECT orders.create_share_token('00000000-0000-0000-0000-0000000008b6', interval '3 days', '{view,approve,convert}',
                                 '{"utm_source": "mail"}') AS tok \gset
SELECT is((SELECT allowed_actions::text || ' ' || created_by FROM orders.order_share_tokens
            WHERE order_id = '00000000-0000-0000-0000-0000000008b6'),
          '{view,approve,convert} 44444444-4444-4444-4444-444444444444', 'the admin makes a share link for the prospect');
SELECT throws_ok($$SELECT token_hash FROM orders.order_share_tokens$$, '42501', NULL,
                 'nobody reads a link''s hash through the API, not even the admin');
-- (0.38.0) a link is for the order's customer when it was made: a rep
-- moved the order to another customer, and converting the link handed
-- that customer (its address, its other orders) to whoever redeemed it
SAVEPOINT moved;
INSERT INTO orders.customers (id, full_name, address) VALUES ('00000000-0000-0000-0000-0000000008a9', 'Shop Victim', '1 Secret St');
SELECT set_config('request.jwt.claims', '{"sub":"55555555-5555-5555-5555-555555555555","role":"staff"}', true);
SELECT is((SELECT count(*)::int FROM orders.orders o WHERE o.id = '00000000-0000-0000-0000-0000000008b6'), 1,
          'the rep reaches the prospect''s open, unassigned order');
UPDATE orders.orders SET customer_id = '00000000-0000-0000-0000-0000000008a9' WHERE id = '00000000-0000-0000-0000-0000000008b6';
SELECT set_config('role', 'anon', true);
SELECT set_config('request.jwt.claims', '{"role":"anon"}', true);
SELECT throws_ok(format('SELECT orders.shared_order(%L)', :'tok'), 'OR080', 'this share link is not valid',
                 'the order moved to another customer: its link shows nothing (OR080)');
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"77777777-7777-7777-7777-777777777777","role":"authenticated"}', true);
SELECT throws_ok(format('SELECT orders.convert_share_token(%L)', :'tok'), 'OR080', 'this share link is not valid',
                 '... and converts nobody (OR080)');
SELECT is((SELECT count(*)::int FROM orders.customers), 0, '... the redeeming account reads no customer (not the victim''s address)');
ROLLBACK TO SAVEPOINT moved;
SELECT set_config('role', 'staff', true);
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
SELECT is((SELECT string_agg(domain || ' ' || internal_metrics::text, '; ' ORDER BY domain)
             FROM orders.site_internal_metrics('00000000-0000-0000-0000-0000000008c5')),
          'three-a.example.com {"cost": 30}; three-b.example.com {}',
          'the admin reads the sites'' costs (POST /rpc/site_internal_metrics)');

---------------------------------------------------------------------------
-- request: Client Three (JWT sub 6666…) reviews its own group
---------------------------------------------------------------------------
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"66666666-6666-6666-6666-666666666666","role":"authenticated"}', true);
SELECT is((SELECT count(*)::int FROM orders.order_site_selections WHERE order_group_id = '00000000-0000-0000-0000-0000000008c5'), 2,
          'the client sees the sites of its order''s group');
SELECT is((SELECT count(*)::int FROM orders.order_groups), 1, '... and no other group');
SELECT throws_ok($$SELECT internal_notes FROM orders.order_site_selections$$, '42501', NULL,
                 'the staff-only notes: the client has no right on the column (42501)');
SELECT throws_ok($$SELECT * FROM orders.site_internal_notes('00000000-0000-0000-0000-0000000008c5')$$, 'OR075',
                 'client group 00000000-0000-0000-0000-0000000008c5 does not exist',
                 '... nor through orders.site_internal_notes (OR075)');
SELECT throws_ok($$SELECT orders.set_site_internal_notes(x.id, 'mine') FROM orders.order_site_selections x
                    WHERE x.domain = 'three-a.example.com'$$, 'OR076', NULL, '... and writes none (OR076)');
SELECT is((SELECT metrics FROM orders.order_site_selections WHERE domain = 'three-a.example.com'),
          '{"dr": 40, "price": 80}'::jsonb, 'the client reads a site''s metrics without its cost');
SELECT throws_ok($$SELECT internal_metrics FROM orders.order_site_selections$$, '42501', NULL,
                 '... and has no right on internal_metrics (42501)');
SELECT throws_ok($$SELECT * FROM orders.site_internal_metrics('00000000-0000-0000-0000-0000000008c5')$$, 'OR075',
                 'client group 00000000-0000-0000-0000-0000000008c5 does not exist',
                 '... nor through orders.site_internal_metrics (OR075)');
SELECT throws_ok($$UPDATE orders.order_groups SET approved_count = 1 WHERE id = '00000000-0000-0000-0000-0000000008c5'$$,
                 'OR014', NULL, 'the client cannot write its group''s counter');
SELECT throws_ok($$SELECT orders.review_sites('00000000-0000-0000-0000-0000000008c5',
                   '[{"domain": "three-a.example.com", "status": "approved"}, {"domain": "three-b.example.com", "status": "approved"}]')$$,
                 'OR070', 'order "API-5", group of client "Client Three": 0 of 1 sites approved, 2 more would exceed the group''s link_count',
                 'approving more sites than the group has links: OR070');
SELECT is((SELECT approved_count || '/' || link_count || ' ' || rejected_count || ' ' || group_status
             FROM orders.review_sites('00000000-0000-0000-0000-0000000008c5',
               '[{"domain": "three-a.example.com", "status": "approved", "anchor_text": "three", "client_notes": "yes"},
                 {"domain": "three-b.example.com", "status": "rejected"}]')),
          '1/1 1 complete', 'the logged-in client reviews its group (POST /rpc/review_sites)');
SELECT is((SELECT reviewed_by || ' ' || (order_item_id IS NOT NULL) FROM orders.order_site_selections
            WHERE domain = 'three-a.example.com'), '66666666-6666-6666-6666-666666666666 true',
          'the reviewer is the JWT sub; the approved site has its item');
SELECT is((SELECT i.name || ' ' || i.unit_price || ' ' || o.subtotal FROM orders.order_items i JOIN orders.orders o ON o.id = i.order_id
            WHERE o.order_number = 'API-5'), 'three-a.example.com 80.00 80.00', 'the client sees its new item and total');
SELECT is((SELECT i.snapshot ->> 'approved_by' FROM orders.order_items i JOIN orders.orders o ON o.id = i.order_id
            WHERE o.order_number = 'API-5'), '66666666-6666-6666-6666-666666666666',
          '... whose snapshot names the client as the approver (the reviewer is recorded before the item is made)');
SELECT is((SELECT i.snapshot -> 'metrics' FROM orders.order_items i JOIN orders.orders o ON o.id = i.order_id
            WHERE o.order_number = 'API-5'), '{"dr": 40, "price": 80}'::jsonb, '... and keeps the metrics without the cost');
-- the sites' own UPDATE (PATCH /order_site_selections): what the analysis
-- found is staff's, the review is the client's and records the client
SELECT throws_ok($$UPDATE orders.order_site_selections SET metrics = '{"dr": 99}' WHERE domain = 'three-b.example.com'$$,
                 'OR060', 'column "metrics" of orders.order_site_selections is reserved to staff other than delivery agents',
                 'the client cannot rewrite a site''s metrics (OR060)');
-- (a long note: stored compressed, which must not make it look changed later)
UPDATE orders.order_site_selections SET client_notes = 'not this one ' || repeat('because ', 800)
 WHERE domain = 'three-b.example.com';
SELECT is((SELECT left(client_notes, 12) || ' by ' || reviewed_by || ' ' || (reviewed_at = now()) || ' ' || (metrics ->> 'dr' IS DISTINCT FROM '99')
             FROM orders.order_site_selections WHERE domain = 'three-b.example.com'),
          'not this one by 66666666-6666-6666-6666-666666666666 true true',
          'a note of the client''s own (PATCH) records the client as reviewer, now');
SELECT is((SELECT pg_column_compression(client_notes) IS NOT NULL FROM orders.order_site_selections
            WHERE domain = 'three-b.example.com'), true, '... and the long note is stored compressed');
SELECT lives_ok($$UPDATE orders.order_site_selections SET metrics = '{}' WHERE domain = 'three-b.example.com'$$,
                'metrics written as they are are no change (IS DISTINCT FROM, jsonb equality)');
SELECT is((orders.transition('00000000-0000-0000-0000-0000000008b5', 'payment_pending')).status, 'payment_pending',
          'every group complete: the client takes its order to payment (gate client_review)');
SELECT throws_ok($$SELECT orders.transition('00000000-0000-0000-0000-0000000008b5', 'in_progress')$$, '42501',
                 'order "API-5": the change from "payment_pending" to "in_progress" is reserved to admin or manager',
                 'but does not mark it paid itself (0.28.0: the built-in lifecycle''s staff edge)');
SELECT is((SELECT status || ' ' || (paid_at IS NULL) FROM orders.orders WHERE id = '00000000-0000-0000-0000-0000000008b5'),
          'payment_pending true', '... nothing changed');

---------------------------------------------------------------------------
-- request: Client Two (JWT sub 2222…) sees nothing of it
---------------------------------------------------------------------------
SELECT set_config('request.jwt.claims', '{"sub":"22222222-2222-2222-2222-222222222222","role":"authenticated"}', true);
SELECT is((SELECT count(*)::int FROM orders.order_groups WHERE order_id IN ('00000000-0000-0000-0000-0000000008b5',
                                                                            '00000000-0000-0000-0000-0000000008b6')), 0,
          'another client sees none of the groups');
SELECT is((SELECT count(*)::int FROM orders.order_site_selections
            WHERE order_group_id IN ('00000000-0000-0000-0000-0000000008c5', '00000000-0000-0000-0000-0000000008c6')
               OR domain LIKE 'three-%' OR domain LIKE 'prospect-%'), 0, '... none of the sites');
SELECT is((SELECT count(*)::int FROM orders.order_share_tokens), 0, '... none of the links');
SELECT throws_ok($$SELECT orders.review_sites('00000000-0000-0000-0000-0000000008c5',
                   '[{"domain": "three-a.example.com", "status": "rejected"}]')$$, 'OR075',
                 'client group 00000000-0000-0000-0000-0000000008c5 does not exist', '... and cannot review them (OR075)');
SELECT throws_ok($$SELECT orders.review_sites('00000000-0000-0000-0000-0000000008c6', '[]')$$, 'OR075',
                 'client group 00000000-0000-0000-0000-0000000008c6 does not exist',
                 '... an empty review of another client''s group is no existence oracle either');
SELECT throws_ok($$SELECT orders.create_share_token('00000000-0000-0000-0000-0000000008b5')$$, 'OR006', NULL,
                 '... and cannot share another client''s order');

---------------------------------------------------------------------------
-- request: an anonymous prospect with the link
---------------------------------------------------------------------------
SELECT set_config('role', 'anon', true);
SELECT set_config('request.jwt.claims', '{"role":"anon"}', true);
SELECT orders.shared_order(:'tok') AS shared \gset
SELECT is((:'shared'::jsonb) ->> 'order_number' || ' ' || ((:'shared'::jsonb) -> 'groups' -> 0 ->> 'client') || ' '
          || jsonb_array_length((:'shared'::jsonb) -> 'groups' -> 0 -> 'sites'),
          'API-6 Prospect Four 2', 'anon views the shared order (POST /rpc/shared_order)');
SELECT ok(strpos(:'shared', 'staff only') = 0 AND strpos(:'shared', '"cost"') = 0 AND strpos(:'shared', 'three-') = 0
          AND strpos(:'shared', 'Client Three') = 0, '... without staff notes, costs or other customers'' data');
SELECT throws_ok($$SELECT count(*) FROM orders.order_groups$$, '42501', NULL, 'anon reads no table');
SELECT throws_ok($$SELECT orders.client_review_complete('00000000-0000-0000-0000-0000000008b6')$$, '42501', NULL,
                 '(0.29.0) nor calls a gate''s check, which named the order''s clients to whoever knew its id');
SELECT is(orders.share_review_sites(:'tok', '00000000-0000-0000-0000-0000000008c6',
            '[{"domain": "prospect-a.example.com", "status": "approved", "client_notes": "looks good"}]') ->> 'approved',
          '1', 'anon approves a site through the link (POST /rpc/share_review_sites)');
SELECT throws_ok(format($$SELECT orders.share_review_sites(%L, '00000000-0000-0000-0000-0000000008c5',
                          '[{"domain": "three-b.example.com", "status": "approved"}]')$$, :'tok'), 'OR075',
                 'client group 00000000-0000-0000-0000-0000000008c5 does not exist', '... only in the shared order');
-- (0.41.0 library) a note longer than the column holds: the column's CHECK,
-- raised as the owner, showed anon the whole row — the staff notes too
SELECT throws_ok(format($$SELECT orders.share_review_sites(%L, '00000000-0000-0000-0000-0000000008c6',
                          '[{"domain": "prospect-a.example.com", "status": "approved", "client_notes": "%s"}]')$$, :'tok', repeat('n', 10001)),
                 '22001', 'orders.share_review_sites: client_notes of entry 1 may have at most 10000 characters, not 10001',
                 '(0.41.0) a link''s over-long note: 22001 naming the entry, no row in DETAIL');
SELECT throws_ok(format($$SELECT orders.share_review_sites(%L, '00000000-0000-0000-0000-0000000008c6', NULL)$$, :'tok'),
                 '22023', 'orders.share_review_sites: selections must be a JSON array of {selection_id | domain, status, ...}',
                 '... and its refusals name share_review_sites (was review_sites)');
SELECT throws_ok(format('SELECT orders.convert_share_token(%L)', :'tok'), 'OR082',
                 'converting a share link needs a logged-in account (a JWT whose sub is its id)',
                 'anon cannot convert the link (OR082)');
SELECT throws_ok($$SELECT orders.shared_order('not-a-token')$$, 'OR080', 'this share link is not valid',
                 'a made-up token: OR080');

---------------------------------------------------------------------------
-- request: the prospect, now logged in (JWT sub 7777…), converts
---------------------------------------------------------------------------
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"77777777-7777-7777-7777-777777777777","role":"authenticated"}', true);
SELECT is((SELECT count(*)::int FROM orders.orders), 0, 'before converting, the new account sees no order');
SELECT is(orders.convert_share_token(:'tok'), '00000000-0000-0000-0000-0000000000a4'::uuid,
          'the logged-in prospect converts the link (POST /rpc/convert_share_token)');
SELECT is((SELECT string_agg(order_number || ' ' || status, ',') FROM orders.orders), 'API-6 reviewing',
          'now the order is its own');
SELECT is((SELECT string_agg(domain || '=' || status, ',' ORDER BY domain) FROM orders.order_site_selections),
          'prospect-a.example.com=approved,prospect-b.example.com=suggested', '... with its group''s sites');
SELECT is(orders.convert_share_token(:'tok'), '00000000-0000-0000-0000-0000000000a4'::uuid,
          '(0.41.0) a retry by the same account answers as its conversion did (was OR080: "the link is bad")');
SELECT set_config('request.jwt.claims', '{"sub":"22222222-2222-2222-2222-222222222222","role":"authenticated"}', true);
SELECT throws_ok(format('SELECT orders.convert_share_token(%L)', :'tok'), 'OR080', 'this share link is not valid',
                 'the link converts once: another account gets OR080');
SELECT set_config('request.jwt.claims', '{"sub":"77777777-7777-7777-7777-777777777777","role":"authenticated"}', true);

---------------------------------------------------------------------------
-- request: staff read the notes and see what the clients did
---------------------------------------------------------------------------
SELECT set_config('role', 'staff', true);
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
UPDATE orders.order_site_selections SET client_notes = 'not this one ' || repeat('because ', 800)
 WHERE domain = 'three-b.example.com';
SELECT is((SELECT reviewed_by FROM orders.order_site_selections WHERE domain = 'three-b.example.com'),
          '66666666-6666-6666-6666-666666666666',
          'staff resending the client''s long note as it is (stored compressed) does not become its reviewer');
SELECT is((SELECT string_agg(domain || ': ' || coalesce(internal_notes, '-'), '; ')
             FROM orders.site_internal_notes('00000000-0000-0000-0000-0000000008c5')),
          'three-a.example.com: staff only: paid placement; three-b.example.com: -', 'staff read the internal notes');
SELECT throws_ok($$SELECT internal_notes FROM orders.order_site_selections$$, '42501', NULL,
                 '... through the function only (no API role has the column)');
SELECT is((SELECT string_agg(x.domain || ' ' || x.status || ' by ' || coalesce(x.reviewed_by, '-'), '; ' ORDER BY x.domain)
             FROM orders.order_site_selections x WHERE x.order_group_id = '00000000-0000-0000-0000-0000000008c6'),
          'prospect-a.example.com approved by share:' || (SELECT id FROM orders.order_share_tokens
                                                           WHERE order_id = '00000000-0000-0000-0000-0000000008b6')
          || '; prospect-b.example.com suggested by -', 'the prospect''s approval is recorded as the link''s');
SELECT is((SELECT c.account_id::text || ' ' || (t.used_at IS NOT NULL) || ' ' || t.converted_to_account_id
             FROM orders.order_share_tokens t JOIN orders.orders o ON o.id = t.order_id JOIN orders.customers c ON c.id = o.customer_id
            WHERE o.order_number = 'API-6'),
          '77777777-7777-7777-7777-777777777777 true 77777777-7777-7777-7777-777777777777',
          'the customer belongs to the new account; the link is used, by it');
-- (0.28.0) a staff account converts nothing, and only staff who may edit
-- customers make a link that converts (a delivery agent made one for a
-- shop customer's order and took the customer over)
SELECT orders.create_share_token('00000000-0000-0000-0000-0000000008b6', interval '1 day', '{view,convert}') AS tok2 \gset
SELECT throws_ok(format('SELECT orders.convert_share_token(%L)', :'tok2'), 'OR084',
                 'account 44444444-4444-4444-4444-444444444444 is staff: a share link converts a prospect, not a staff member',
                 'a staff account converts no share link (OR084)');
SELECT is((SELECT count(*) FILTER (WHERE t.used_at IS NULL AND t.converted_to_account_id IS NULL) || ' ' || min(c.account_id::text)
             FROM orders.order_share_tokens t JOIN orders.orders o ON o.id = t.order_id JOIN orders.customers c ON c.id = o.customer_id
            WHERE o.id = '00000000-0000-0000-0000-0000000008b6'),
          '1 77777777-7777-7777-7777-777777777777', '... nothing changed: the link unused, the customer the prospect''s');
SELECT set_config('request.jwt.claims', '{"sub":"33333333-3333-3333-3333-333333333333","role":"staff"}', true);
SELECT throws_ok($$SELECT orders.create_share_token('00000000-0000-0000-0000-0000000000b3', interval '1 day', '{view,convert}')$$,
                 '42501', 'a share link that converts (allowed_actions "convert") is made by admins',
                 'a delivery agent makes no link that converts its order''s customer');
SELECT orders.create_share_token('00000000-0000-0000-0000-0000000000b3', interval '1 day', '{view}') AS agtok \gset
SELECT isnt(:'agtok'::text, NULL, '... one that shows the order it may');
-- (0.35.0) the agent adds no site to its order and changes none's metrics:
-- an approved site's item is priced from them (an agent raised a COD
-- order's total by 500 through a group and an approved site)
INSERT INTO orders.order_groups (id, order_id, client_id, link_count)
VALUES ('00000000-0000-0000-0000-0000000008ee', '00000000-0000-0000-0000-0000000000b3', '00000000-0000-0000-0000-0000000000a1', 1);
SELECT throws_ok($$INSERT INTO orders.order_site_selections (order_group_id, domain, status, metrics)
                   VALUES ('00000000-0000-0000-0000-0000000008ee', 'fee.example', 'approved', '{"price": 500}')$$,
                 '42501', NULL, 'a delivery agent inserts no site (its item would be priced by it)');
SELECT is((SELECT subtotal::text || ' ' || (SELECT count(*) FROM orders.order_items i WHERE i.order_id = o.id)
             FROM orders.orders o WHERE o.order_number = 'API-3'), '40.00 1', '... nothing changed: API-3 as it was');
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
INSERT INTO orders.order_site_selections (id, order_group_id, domain, metrics)
VALUES ('00000000-0000-0000-0000-0000000008ef', '00000000-0000-0000-0000-0000000008ee', 'cheap.example', '{"price": 50}');
SELECT set_config('request.jwt.claims', '{"sub":"33333333-3333-3333-3333-333333333333","role":"staff"}', true);
SELECT throws_ok($$UPDATE orders.order_site_selections SET metrics = '{"price": 0.01}', status = 'approved'
                    WHERE id = '00000000-0000-0000-0000-0000000008ef'$$,
                 'OR060', 'column "metrics" of orders.order_site_selections is reserved to staff other than delivery agents',
                 '... nor changes a site''s metrics (OR060)');
SELECT is((SELECT status || ' ' || (metrics ->> 'price') FROM orders.order_site_selections WHERE id = '00000000-0000-0000-0000-0000000008ef'),
          'suggested 50', '... nothing changed');
-- (0.35.0) a customer rep makes no link that converts either: redeemed by
-- another account of its own, it took over a customer without a login
SELECT set_config('request.jwt.claims', '{"sub":"55555555-5555-5555-5555-555555555555","role":"staff"}', true);
SELECT throws_ok($$SELECT orders.create_share_token('00000000-0000-0000-0000-0000000008b6', interval '1 day', '{view,convert}')$$,
                 '42501', 'a share link that converts (allowed_actions "convert") is made by admins',
                 'a customer rep makes no link that converts (admins only, as customers.account_id)');
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
-- (0.36.0) a link stands while its creator may share the order: the
-- agent's link of API-3 stopped showing it when API-3 was no longer the
-- agent's, and shows it again once it is
UPDATE orders.orders SET assigned_agent_id = NULL WHERE id = '00000000-0000-0000-0000-0000000000b3';
SELECT set_config('role', 'anon', true);
SELECT set_config('request.jwt.claims', '{"role":"anon"}', true);
SELECT throws_ok(format('SELECT orders.shared_order(%L)', :'agtok'), 'OR080', 'this share link is not valid',
                 'a delivery agent''s link shows nothing once the order is not the agent''s (OR080, as any invalid link)');
SELECT is(current_setting('request.jwt.claims'), '{"role":"anon"}', '... the request''s claims as they were');
-- (0.38.0) also behind a storefront's own login, whose claims are not believed
SELECT set_config('role', 'tap_storefront', true);
SELECT throws_ok(format('SELECT orders.shared_order(%L)', :'agtok'), 'OR080', 'this share link is not valid',
                 '... nor behind a storefront back end''s own login (the creator asked through act_as)');
SELECT set_config('role', 'anon', true);
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
UPDATE orders.orders SET assigned_agent_id = '00000000-0000-0000-0000-0000000000e9'
 WHERE id = '00000000-0000-0000-0000-0000000000b3';
SELECT set_config('role', 'anon', true);
SELECT set_config('request.jwt.claims', '{"role":"anon"}', true);
SELECT is(orders.shared_order(:'agtok') ->> 'order_number', 'API-3', '... and shows it again once it is');
SELECT set_config('role', 'tap_storefront', true);
SELECT is(orders.shared_order(:'agtok') ->> 'order_number', 'API-3',
          '... also behind a storefront''s own login (act_as names the creator by the label: an account, 0.41.0 library)');
SELECT set_config('role', 'anon', true);
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
-- (0.38.0) a link that converts stands while its creator is an admin (only
-- admins make one): demoted to manager, the admin's converting link is no
-- longer valid — another account of theirs took the customer over with it;
-- a link that only shows stands
SAVEPOINT demoted;
SELECT orders.create_share_token('00000000-0000-0000-0000-0000000008b6', interval '1 day', '{view,convert}') AS demtok \gset
SELECT orders.create_share_token('00000000-0000-0000-0000-0000000008b6', interval '1 day', '{view}') AS viewtok \gset
UPDATE orders.staff SET role = 'manager' WHERE account_id = '44444444-4444-4444-4444-444444444444';
SELECT set_config('role', 'anon', true);
SELECT set_config('request.jwt.claims', '{"role":"anon"}', true);
SELECT throws_ok(format('SELECT orders.shared_order(%L)', :'demtok'), 'OR080', 'this share link is not valid',
                 'an admin demoted to manager: its link that converts is not valid (OR080)');
SELECT is(orders.shared_order(:'viewtok') ->> 'order_number', 'API-6', '... its link that only shows stands');
ROLLBACK TO SAVEPOINT demoted;
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);


-- request: staff complete API-5; then its client's review of the closed
-- order must be refused, not silently ignored (row level security filters
-- the UPDATE of a closed order's sites: review_sites would report success
-- and change nothing).  The SQLSTATE is the extension's to choose (any here).
SELECT is((orders.transition('00000000-0000-0000-0000-0000000008b5', 'in_progress')).status, 'in_progress',
          'staff take payment for API-5');
-- (0.28.0) the client edits no group of its paid order (it raised a paid
-- order's link_count and approved more sites once it could clear paid_at)
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"66666666-6666-6666-6666-666666666666","role":"authenticated"}', true);
WITH u AS (UPDATE orders.order_groups SET link_count = 3 WHERE id = '00000000-0000-0000-0000-0000000008c5' RETURNING 1)
SELECT is(count(*)::int, 0, 'the client changes no group of its paid order (PATCH: nothing)') FROM u;
SELECT orders.create_share_token('00000000-0000-0000-0000-0000000008b5', interval '1 day', '{view,approve}') AS paidtok \gset
SELECT set_config('role', 'anon', true);
SELECT set_config('request.jwt.claims', '{"role":"anon"}', true);
SELECT throws_ok(format($$SELECT orders.share_review_sites(%L, '00000000-0000-0000-0000-0000000008c5',
                          '[{"domain": "three-a.example.com", "status": "approved", "anchor_text": "via link"}]')$$, :'paidtok'),
                 'OR073', 'order "API-5" is paid: its sites are final',
                 '... nor through a share link of its own (it ran as the owner: RLS did not apply)');
SELECT set_config('role', 'staff', true);
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
SELECT throws_ok($$UPDATE orders.orders SET paid_at = NULL WHERE id = '00000000-0000-0000-0000-0000000008b5'$$, 'OR060',
                 'column "paid_at" of orders.orders is reserved to the lifecycle''s edges (orders.transition)',
                 'staff do not clear (or set) the payment''s stamp either: only its edge writes it');
SELECT is((orders.transition('00000000-0000-0000-0000-0000000008b5', 'completed')).status, 'completed',
          'staff complete API-5');
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"66666666-6666-6666-6666-666666666666","role":"authenticated"}', true);
SELECT throws_ok($$SELECT orders.review_sites('00000000-0000-0000-0000-0000000008c5',
                   '[{"domain": "three-b.example.com", "status": "suggested"}]')$$, NULL, NULL,
                 'a client''s review of a completed order is refused, not a silent no-op');
SELECT is((SELECT status FROM orders.order_site_selections WHERE domain = 'three-b.example.com'), 'rejected',
          '... nothing changed');

-- request: the admin makes a second order for Client Three, whose review
-- approves a site; the client takes it back to its first status
-- (configuring, along the lifecycle's back edges) — its cart again, but an
-- approved site's item changes only by the review (0.27.0)
SELECT set_config('role', 'staff', true);
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle, requires_client_review) VALUES
  ('00000000-0000-0000-0000-0000000008b7', 'API-7', '00000000-0000-0000-0000-0000000000a3', 'review', true);
INSERT INTO orders.order_groups (id, order_id, client_id, link_count) VALUES
  ('00000000-0000-0000-0000-0000000008c7', '00000000-0000-0000-0000-0000000008b7', '00000000-0000-0000-0000-0000000000a3', 1);
SELECT orders.transition('00000000-0000-0000-0000-0000000008b7', 'analyzing');
SELECT orders.complete_analysis('00000000-0000-0000-0000-0000000008c7', '[{"domain": "seven-a.example.com", "metrics": {"price": 70}}]');
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"66666666-6666-6666-6666-666666666666","role":"authenticated"}', true);
SELECT is((orders.review_sites('00000000-0000-0000-0000-0000000008c7',
             '[{"domain": "seven-a.example.com", "status": "approved"}]')).approved_count, 1, 'Client Three approves the site of API-7');
SELECT is((SELECT string_agg((orders.transition('00000000-0000-0000-0000-0000000008b7', s)).status, ',' ORDER BY n)
             FROM unnest(ARRAY['analyzing', 'configuring']) WITH ORDINALITY u(s, n)),
          'analyzing,configuring', '... and takes the order back to configuring, its first status');
WITH u AS (UPDATE orders.order_items SET unit_price = 0 WHERE order_id = '00000000-0000-0000-0000-0000000008b7' RETURNING 1)
SELECT is(count(*)::int, 0, '... where it changes no approved site''s item (PATCH: nothing)') FROM u;
WITH d AS (DELETE FROM orders.order_items WHERE order_id = '00000000-0000-0000-0000-0000000008b7' RETURNING 1)
SELECT is(count(*)::int, 0, '... deletes none (DELETE: nothing)') FROM d;
SELECT is((SELECT i.unit_price || ' ' || o.subtotal FROM orders.order_items i JOIN orders.orders o ON o.id = i.order_id
            WHERE o.id = '00000000-0000-0000-0000-0000000008b7'), '70.00 70.00', '... the item and total as the review made them');

-- (0.29.0) its groups name clients it can see: a client named another
-- account's customer (Prospect, a4) by id, and a share link of the order
-- showed that customer's name (OR077; an unknown id gets the same answer)
SELECT throws_ok($$INSERT INTO orders.order_groups (id, order_id, client_id, link_count) VALUES
                   ('00000000-0000-0000-0000-0000000008c8', '00000000-0000-0000-0000-0000000008b7', '00000000-0000-0000-0000-0000000000a4', 1)$$,
                 'OR077', 'client 00000000-0000-0000-0000-0000000000a4 of client group 00000000-0000-0000-0000-0000000008c8 is not a customer you can see',
                 'a client group naming another account''s customer: OR077');
SELECT throws_ok($$INSERT INTO orders.order_groups (id, order_id, client_id, link_count) VALUES
                   ('00000000-0000-0000-0000-0000000008c8', '00000000-0000-0000-0000-0000000008b7', '00000000-0000-0000-0000-00000000ffff', 1)$$,
                 'OR077', 'client 00000000-0000-0000-0000-00000000ffff of client group 00000000-0000-0000-0000-0000000008c8 is not a customer you can see',
                 '... and one naming no customer at all: the same answer (no oracle)');
SELECT throws_ok($$UPDATE orders.order_groups SET client_id = '00000000-0000-0000-0000-0000000000a4'
                    WHERE id = '00000000-0000-0000-0000-0000000008c7'$$,
                 'OR077', NULL, '... nor may it re-point its group to that customer');
SELECT is((SELECT string_agg(id::text || ' ' || client_id::text, ',') FROM orders.order_groups
            WHERE order_id = '00000000-0000-0000-0000-0000000008b7'),
          '00000000-0000-0000-0000-0000000008c7 00000000-0000-0000-0000-0000000000a3', '... nothing changed');
SELECT lives_ok($$INSERT INTO orders.order_groups (id, order_id, client_id, link_count) VALUES
                   ('00000000-0000-0000-0000-0000000008c8', '00000000-0000-0000-0000-0000000008b7', '00000000-0000-0000-0000-0000000000a3', 2)$$,
                'a group for its own customer is the client''s to add');
-- (0.33.0) judged again on the order as locked at the statement's end
-- (customer_edit_recheck): still the client's, open and unpaid — the race
-- with a payment is test/specs/customer_edit_race.spec
SELECT lives_ok($$INSERT INTO orders.order_requirements (order_id, requirement_type, requirement_value)
                   VALUES ('00000000-0000-0000-0000-0000000008b7', 'min_dr', '30')$$,
                '... and a requirement of its open, unpaid order');
SELECT is((SELECT count(*)::int FROM orders.order_requirements WHERE order_id = '00000000-0000-0000-0000-0000000008b7'
              AND requirement_type = 'min_dr'), 1, '... written');
-- (0.41.0) what a client writes is bounded: 13.5 MB of target pages were
-- stored and served to a share link's holder
SELECT throws_ok($$UPDATE orders.order_groups
                      SET target_pages = (SELECT jsonb_agg(jsonb_build_object('url', 'https://client.example.com/' || md5(g::text), 'pageId', g))
                                            FROM generate_series(1, 5000) g)
                    WHERE id = '00000000-0000-0000-0000-0000000008c8'$$,
                 '23514', 'new row for relation "order_groups" violates check constraint "order_groups_target_pages_check"',
                 '(0.41.0) target pages over 256 kB: 23514');
SELECT throws_ok($$UPDATE orders.order_groups
                      SET target_pages = (SELECT jsonb_agg(text 'https://client.example.com/page') FROM generate_series(1, 10000))
                    WHERE id = '00000000-0000-0000-0000-0000000008c8'$$,
                 '23514', 'new row for relation "order_groups" violates check constraint "order_groups_target_pages_check"',
                 '... measured uncompressed: 330 kB of repeated pages (a few kB compressed) too');
SELECT lives_ok($$UPDATE orders.order_groups
                     SET target_pages = (SELECT jsonb_agg(text 'https://client.example.com/page') FROM generate_series(1, 3000))
                   WHERE id = '00000000-0000-0000-0000-0000000008c8'$$, '... 100 kB of them are the group''s');
SELECT throws_ok($$UPDATE orders.order_groups SET anchor_texts = target_pages WHERE id = '00000000-0000-0000-0000-0000000008c8'$$,
                 '23514', 'new row for relation "order_groups" violates check constraint "order_groups_anchor_texts_check"',
                 '... but not its anchor texts (64 kB), also when copied from the stored, compressed value');
SELECT throws_ok($$UPDATE orders.order_groups
                      SET target_pages = (SELECT ('[' || string_agg('1e131071', ',') || ']')::jsonb FROM generate_series(1, 8200))
                    WHERE id = '00000000-0000-0000-0000-0000000008c8'$$,
                 '23514', 'new row for relation "order_groups" violates check constraint "order_groups_target_pages_check"',
                 '... and numbers past 1e20: 8,200 of 1e131071 (74 kB sent) print as 1 GB — measured, served or dumped as text they ran the server out of memory');
SELECT lives_ok($$UPDATE orders.order_groups SET target_pages = '[{"url": "https://client.example.com/", "pageId": 12345678901234567890, "weight": 0.12345678901234567890}]'
                   WHERE id = '00000000-0000-0000-0000-0000000008c8'$$, '... a number of 20 digits, or 20 decimals, is one');
UPDATE orders.order_groups SET target_pages = '[]' WHERE id = '00000000-0000-0000-0000-0000000008c8';
SELECT throws_ok($$INSERT INTO orders.order_requirements (order_id, requirement_type, requirement_value)
                   VALUES ('00000000-0000-0000-0000-0000000008b7', 'niche', to_jsonb(repeat(md5('v'), 2100)))$$,
                 '23514', 'new row for relation "order_requirements" violates check constraint "order_requirements_requirement_value_check"',
                 '... a requirement''s value over 64 kB');
SELECT throws_ok($$INSERT INTO orders.order_requirements (order_id, requirement_type, requirement_value)
                   VALUES ('00000000-0000-0000-0000-0000000008b7', repeat('n', 64), '1')$$,
                 '23514', 'new row for relation "order_requirements" violates check constraint "order_requirements_requirement_type_check"',
                 '... a type longer than 63 characters');
SELECT is((SELECT jsonb_array_length(target_pages) || ' ' || (SELECT count(*) FROM orders.order_requirements r
                                                                WHERE r.order_id = '00000000-0000-0000-0000-0000000008b7')
             FROM orders.order_groups WHERE id = '00000000-0000-0000-0000-0000000008c8'), '0 1', '... nothing written');

-- (0.39.0) a group still being analysed deleted: when every group left is
-- analysed, the order moves on to reviewing as complete_analysis would
-- have — by the caller, when it may take that edge: staff, not the client
-- (a client that asked for more sites took the staff's edge back by
-- adding a group and deleting it)
SELECT set_config('role', 'staff', true);
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle, requires_client_review) VALUES
  ('00000000-0000-0000-0000-0000000008b8', 'API-8', '00000000-0000-0000-0000-0000000000a3', 'review', true),
  ('00000000-0000-0000-0000-0000000008b9', 'API-9', '00000000-0000-0000-0000-0000000000a3', 'review', true);
INSERT INTO orders.order_groups (id, order_id, client_id, link_count) VALUES
  ('00000000-0000-0000-0000-0000000008d1', '00000000-0000-0000-0000-0000000008b8', '00000000-0000-0000-0000-0000000000a3', 1),
  ('00000000-0000-0000-0000-0000000008d2', '00000000-0000-0000-0000-0000000008b8', '00000000-0000-0000-0000-0000000000a3', 1),
  ('00000000-0000-0000-0000-0000000008d3', '00000000-0000-0000-0000-0000000008b9', '00000000-0000-0000-0000-0000000000a3', 1),
  ('00000000-0000-0000-0000-0000000008d4', '00000000-0000-0000-0000-0000000008b9', '00000000-0000-0000-0000-0000000000a3', 1);
SELECT count(*) FROM orders.orders o, LATERAL orders.transition(o.id, 'analyzing') WHERE o.order_number IN ('API-8', 'API-9') \g /dev/null
SELECT is(ARRAY[(orders.complete_analysis('00000000-0000-0000-0000-0000000008d1', '[{"domain": "eight-a.example.com"}]')).group_status,
                (orders.complete_analysis('00000000-0000-0000-0000-0000000008d3', '[{"domain": "nine-a.example.com"}]')).group_status],
          '{reviewing,reviewing}', 'API-8 and API-9: one of their two groups analysed');
SELECT set_config('role', 'authenticated', true);
SELECT set_config('request.jwt.claims', '{"sub":"66666666-6666-6666-6666-666666666666","role":"authenticated"}', true);
WITH d AS (DELETE FROM orders.order_groups WHERE id = '00000000-0000-0000-0000-0000000008d2' RETURNING 1)
SELECT is(count(*)::int, 1, 'Client Three deletes API-8''s group still being analysed (DELETE /order_groups)') FROM d;
SELECT is((SELECT status FROM orders.orders WHERE id = '00000000-0000-0000-0000-0000000008b8'), 'analyzing',
          '... API-8 stays analyzing: the move to review is staff''s edge, not the client''s');
SELECT set_config('role', 'staff', true);
SELECT set_config('request.jwt.claims', '{"sub":"44444444-4444-4444-4444-444444444444","role":"staff"}', true);
WITH d AS (DELETE FROM orders.order_groups WHERE id = '00000000-0000-0000-0000-0000000008d4' RETURNING 1)
SELECT is(count(*)::int, 1, 'the admin deletes API-9''s group still being analysed') FROM d;
SELECT is((SELECT o.status || ' ' || h.changed_by || ': ' || h.notes
             FROM orders.orders o JOIN orders.order_history h ON h.order_id = o.id AND h.new_status = 'reviewing'
            WHERE o.id = '00000000-0000-0000-0000-0000000008b9'),
          'reviewing 44444444-4444-4444-4444-444444444444: analysis complete',
          '... and API-9 is in review, recorded as the admin''s change');

SELECT * FROM finish();
ROLLBACK;
