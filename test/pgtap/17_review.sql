-- Agency orders (issue 11): client groups, analysis, review of the sites
-- all or nothing, approved sites as items, the gates (data, usable on a
-- user's own lifecycle), share links.  Every refusal names its SQLSTATE and
-- is followed by a check that nothing changed.
BEGIN;
SELECT plan(286);

-- pg_temp.err(sql) — 'SQLSTATE: message | detail' of a refused statement
-- (rolled back with its subtransaction), 'ok' when it passes.
CREATE FUNCTION pg_temp.err(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text; msg text; det text;
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
    RETURN st || ': ' || msg || coalesce(' | ' || nullif(det, ''), '');
END
$$;

-- pg_temp.snap(number) — everything a review may change on an order: its
-- status and stamps, its groups' counters, every site, its items, amounts,
-- history.
CREATE FUNCTION pg_temp.snap(number text) RETURNS text LANGUAGE sql AS $$
    SELECT concat_ws(' | ',
        o.status, (o.review_completed_at IS NOT NULL)::text, o.subtotal, o.total_amount,
        (SELECT string_agg(format('%s:%s/%s/%s/%s:%s', c.full_name, g.suggested_count, g.approved_count,
                                  g.rejected_count, g.link_count, g.group_status), ',' ORDER BY c.full_name)
           FROM orders.order_groups g JOIN orders.customers c ON c.id = g.client_id WHERE g.order_id = o.id),
        (SELECT string_agg(format('%s=%s%s', x.domain, x.status, CASE WHEN x.order_item_id IS NOT NULL THEN '+item' END),
                           ',' ORDER BY x.domain)
           FROM orders.order_groups g JOIN orders.order_site_selections x ON x.order_group_id = g.id
          WHERE g.order_id = o.id),
        coalesce((SELECT string_agg(i.name || ' ' || i.unit_price, ',' ORDER BY i.name) FROM orders.order_items i
                   WHERE i.order_id = o.id), '-'),
        (SELECT count(*) FROM orders.order_history h WHERE h.order_id = o.id))
      FROM orders.orders o WHERE o.order_number = number
$$;

-- the agency (customer of its orders), its clients, another customer
INSERT INTO orders.customers (id, full_name, account_id) VALUES
  ('00000000-0000-0000-0000-0000000017c1', 'T17 Agency', NULL),
  ('00000000-0000-0000-0000-0000000017c2', 'T17 Alpha', NULL),
  ('00000000-0000-0000-0000-0000000017c3', 'T17 Beta', NULL),
  ('00000000-0000-0000-0000-0000000017c4', 'T17 Other', '17171717-0000-0000-0000-000000000004'),
  ('00000000-0000-0000-0000-0000000017c5', 'T17 Prospect', NULL);
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle, requires_client_review) VALUES
  ('00000000-0000-0000-0000-0000000017a1', 'T17-A', '00000000-0000-0000-0000-0000000017c1', 'review', true),
  ('00000000-0000-0000-0000-0000000017a2', 'T17-N', '00000000-0000-0000-0000-0000000017c1', 'review', true),
  ('00000000-0000-0000-0000-0000000017a3', 'T17-R', '00000000-0000-0000-0000-0000000017c1', 'review', false),
  ('00000000-0000-0000-0000-0000000017a4', 'T17-O', '00000000-0000-0000-0000-0000000017c4', 'review', false),
  ('00000000-0000-0000-0000-0000000017a5', 'T17-S', '00000000-0000-0000-0000-0000000017c5', 'review', true);
INSERT INTO orders.order_groups (id, order_id, client_id, link_count) VALUES
  ('00000000-0000-0000-0000-0000000017d1', '00000000-0000-0000-0000-0000000017a1', '00000000-0000-0000-0000-0000000017c2', 2),
  ('00000000-0000-0000-0000-0000000017d2', '00000000-0000-0000-0000-0000000017a1', '00000000-0000-0000-0000-0000000017c3', 1),
  ('00000000-0000-0000-0000-0000000017d3', '00000000-0000-0000-0000-0000000017a3', '00000000-0000-0000-0000-0000000017c2', 2),
  ('00000000-0000-0000-0000-0000000017d4', '00000000-0000-0000-0000-0000000017a4', '00000000-0000-0000-0000-0000000017c4', 1),
  ('00000000-0000-0000-0000-0000000017d5', '00000000-0000-0000-0000-0000000017a5', '00000000-0000-0000-0000-0000000017c5', 2);

---------------------------------------------------------------------------
-- The client_groups gate
---------------------------------------------------------------------------
SELECT pg_temp.snap('T17-N') AS before \gset
SELECT is(pg_temp.err($$SELECT orders.transition('00000000-0000-0000-0000-0000000017a2', 'analyzing')$$),
          'OR071: order "T17-N" cannot move from "configuring" to "analyzing" yet: gate "client_groups" is closed'
          || ' | The order has no client group: add one per client (orders.order_groups) first.',
          'an agency order without a client group cannot start its analysis (OR071, DETAIL says what is missing)');
SELECT is(pg_temp.err($$UPDATE orders.orders SET status = 'analyzing' WHERE order_number = 'T17-N'$$),
          'OR071: order "T17-N" cannot move from "configuring" to "analyzing" yet: gate "client_groups" is closed'
          || ' | The order has no client group: add one per client (orders.order_groups) first.',
          'nor by writing its status');
SELECT is(pg_temp.snap('T17-N'), :'before', '... nothing changed (status, history)');
SELECT is(ARRAY(SELECT orders.allowed_transitions('00000000-0000-0000-0000-0000000017a2')), '{cancelled}',
          'allowed_transitions leaves out an edge whose gate is closed now (analyzing)');
SELECT is((orders.transition('00000000-0000-0000-0000-0000000017a1', 'analyzing')).status, 'analyzing',
          'an order with its groups starts its analysis');

---------------------------------------------------------------------------
-- Analysis
---------------------------------------------------------------------------
SELECT is((SELECT group_status || ' ' || analysis_project_id || ' ' || (analysis_started_at IS NOT NULL)
             FROM orders.start_analysis('00000000-0000-0000-0000-0000000017d1', '17171717-aaaa-0000-0000-000000000001')),
          'analyzing 17171717-aaaa-0000-0000-000000000001 true', 'start_analysis stamps the group with its project');
SELECT throws_ok($$SELECT orders.start_analysis('00000000-0000-0000-0000-00000000ffff', NULL)$$, 'OR075',
                 'client group 00000000-0000-0000-0000-00000000ffff does not exist', 'start_analysis of an unknown group: OR075');
SELECT pg_temp.snap('T17-A') AS before \gset
SELECT throws_ok($$SELECT orders.complete_analysis('00000000-0000-0000-0000-0000000017d1', '{"domain": "a.com"}')$$, '22023',
                 'orders.complete_analysis: suggestions must be a JSON array of {domain, domain_id, metrics}',
                 'complete_analysis wants an array');
SELECT throws_ok($$SELECT orders.complete_analysis('00000000-0000-0000-0000-00000000ffff', '[]')$$, 'OR075',
                 'client group 00000000-0000-0000-0000-00000000ffff does not exist', 'complete_analysis of an unknown group: OR075');
SELECT throws_ok($$SELECT orders.complete_analysis('00000000-0000-0000-0000-0000000017d1',
                     '[{"domain": "good.com"}, {"domain": "not a domain"}]')$$, '22023',
                 'orders.complete_analysis: suggestion 2: domain "not a domain" is not a host name',
                 'a suggestion that is no domain refuses the whole analysis (0.39.0: 22023 naming it, was 23514)');
SELECT is(pg_temp.err($$SELECT orders.complete_analysis('00000000-0000-0000-0000-0000000017d1',
                     '[{"domain": "good.com", "domain_id": "17171717-dddd-0000-0000-000000000009"}, {"domain": "x.com", "domain_id": "d1"}]')$$),
          '22P02: orders.complete_analysis: suggestion 2: domain_id "d1" is not a uuid',
          'a domain_id that is no uuid: 22P02 naming the suggestion');
SELECT is(ARRAY[pg_temp.err($$SELECT orders.complete_analysis('00000000-0000-0000-0000-0000000017d1',
                     '[{"domain": "good.com", "metrics": {"price": 10}}, {"domain": "x.com", "metrics": {"price": "80.00"}}]')$$),
                pg_temp.err($$SELECT orders.complete_analysis('00000000-0000-0000-0000-0000000017d1',
                     '[{"domain": "x.com", "metrics": {"price": -5}}]')$$),
                pg_temp.err($$SELECT orders.complete_analysis('00000000-0000-0000-0000-0000000017d1',
                     '[{"domain": "x.com", "metrics": {"price": 1e20}}]')$$),
                pg_temp.err($$SELECT orders.complete_analysis('00000000-0000-0000-0000-0000000017d1',
                     '[{"domain": "x.com", "metrics": {"price": 12.50}}, {"domain": "y.com", "metrics": {"price": 12.345}}]')$$)],
          ARRAY['22023: orders.complete_analysis: suggestion 2: metrics.price "80.00" is not an amount',
                '22023: orders.complete_analysis: suggestion 1: metrics.price -5 is not an amount',
                '22023: orders.complete_analysis: suggestion 1: metrics.price 100000000000000000000 is not an amount',
                '22023: orders.complete_analysis: suggestion 2: metrics.price 12.345 is not an amount'],
          '(0.29.0) a price that is text, negative or too large, (0.43.0) or in fractions of a cent: 22023 naming the suggestion (text made an item of 0, 12.345 one of 12.35)');
SELECT is(pg_temp.err($$SELECT orders.complete_analysis('00000000-0000-0000-0000-0000000017d1', '[{"metrics": {"dr": 1}}]')$$),
          '22023: orders.complete_analysis: suggestion 1 has no domain',
          'a suggestion without a domain: 22023 naming it');
SELECT is(pg_temp.err($$SELECT orders.complete_analysis('00000000-0000-0000-0000-0000000017d1', '[{"domain": "a.com"}, {"domain": "http://"}]')$$),
          '22023: orders.complete_analysis: suggestion 2 has no domain',
          '... nor one whose domain normalises to nothing');
SELECT is(pg_temp.snap('T17-A'), :'before', '... nothing changed');
SELECT is((SELECT group_status || ' ' || suggested_count || ' ' || (analysis_completed_at IS NOT NULL)
             FROM orders.complete_analysis('00000000-0000-0000-0000-0000000017d1', $j$[
               {"domain": "https://WWW.Alpha-Site.COM:443/blog?x=1", "domain_id": "17171717-dddd-0000-0000-000000000001",
                "metrics": {"dr": 50, "traffic": 1200, "price": 100, "cost": 40}},
               {"domain": "alpha-site.com", "metrics": {"dr": 1}},
               {"domain": "http://user@B.Example.org/page", "metrics": {"dr": 30, "price": 50}},
               {"domain": "c.example.net", "metrics": {"price": 70}}]$j$)),
          'reviewing 3 true', 'complete_analysis: the group reviews 3 sites (a duplicate ignored) and is stamped');
SELECT is((SELECT string_agg(domain || ' ' || coalesce(domain_id::text, '-') || ' ' || metrics::text || ' ' || status, '; ' ORDER BY domain)
             FROM orders.order_site_selections WHERE order_group_id = '00000000-0000-0000-0000-0000000017d1'),
          'alpha-site.com 17171717-dddd-0000-0000-000000000001 {"dr": 50, "price": 100, "traffic": 1200} suggested; '
          || 'b.example.org - {"dr": 30, "price": 50} suggested; c.example.net - {"price": 70} suggested',
          'domains normalised (scheme, user, port, path, www., case), the first of duplicates kept');
SELECT is((SELECT string_agg(domain || ' ' || internal_metrics::text, '; ' ORDER BY domain)
             FROM orders.order_site_selections WHERE order_group_id = '00000000-0000-0000-0000-0000000017d1'),
          'alpha-site.com {"cost": 40}; b.example.org {}; c.example.net {}',
          'a suggestion''s cost is kept in internal_metrics, not in metrics');
SELECT is((SELECT status FROM orders.orders WHERE order_number = 'T17-A'), 'analyzing',
          'the order stays in analyzing while another group is not analysed');
SELECT is((SELECT suggested_count FROM orders.complete_analysis('00000000-0000-0000-0000-0000000017d1',
             '[{"domain": "ALPHA-site.com"}, {"domain": "www.c.example.net"}]')), 3,
          'an analysis completed again ignores the sites it already has');
SELECT is((SELECT count(*)::int FROM orders.order_history h JOIN orders.orders o ON o.id = h.order_id
            WHERE o.order_number = 'T17-A' AND h.new_status = 'reviewing'), 0, '... and no history of reviewing yet');
SELECT is((SELECT group_status FROM orders.complete_analysis('00000000-0000-0000-0000-0000000017d2',
             '[{"domain": "d.example.com", "metrics": {"price": 20}}, {"domain": "e.example.com"}]')),
          'reviewing', 'the last group completes');
SELECT is((SELECT analysis_started_at = analysis_completed_at FROM orders.order_groups WHERE id = '00000000-0000-0000-0000-0000000017d2'),
          true, '... its analysis, never started by start_analysis, is stamped as started when it completes');
SELECT is((SELECT o.status || ' / ' || h.old_status || ' -> ' || h.new_status || ' by ' || h.changed_by || ': ' || h.notes
             FROM orders.orders o JOIN orders.order_history h ON h.order_id = o.id
            WHERE o.order_number = 'T17-A' AND h.new_status = 'reviewing'),
          'reviewing / analyzing -> reviewing by ' || orders.current_actor() || ': analysis complete',
          'the last group moves the order to reviewing through its lifecycle, with history');

---------------------------------------------------------------------------
-- Review: all or nothing
---------------------------------------------------------------------------
SELECT pg_temp.snap('T17-A') AS before \gset
SELECT is(pg_temp.snap('T17-A'),
          'reviewing | false | 0.00 | 0.00 | T17 Alpha:3/0/0/2:reviewing,T17 Beta:2/0/0/1:reviewing | '
          || 'alpha-site.com=suggested,b.example.org=suggested,c.example.net=suggested,d.example.com=suggested,e.example.com=suggested | - | 2',
          'the order before the review');
SELECT throws_ok($$SELECT orders.review_sites('00000000-0000-0000-0000-0000000017d1',
                   '[{"domain": "alpha-site.com", "status": "approved"}, {"domain": "b.example.org", "status": "approved"},
                     {"domain": "c.example.net", "status": "approved"}]')$$, 'OR070',
                 'order "T17-A", group of client "T17 Alpha": 0 of 2 sites approved, 3 more would exceed the group''s link_count',
                 'approving beyond link_count: OR070 naming the order, the client and approved/link_count');
SELECT throws_ok($$SELECT orders.review_sites('00000000-0000-0000-0000-0000000017d1',
                   '[{"domain": "alpha-site.com", "status": "approved"}, {"domain": "nosuch.example.com", "status": "approved"}]')$$,
                 'OR076', 'site nosuch.example.com is not a site of client group 00000000-0000-0000-0000-0000000017d1',
                 'an unknown site: OR076');
SELECT throws_ok($$SELECT orders.review_sites('00000000-0000-0000-0000-0000000017d1',
                   '[{"domain": "d.example.com", "status": "approved"}]')$$,
                 'OR076', 'site d.example.com is not a site of client group 00000000-0000-0000-0000-0000000017d1',
                 'a site of another group of the same order: OR076');
SELECT throws_ok($$SELECT orders.review_sites('00000000-0000-0000-0000-0000000017d1',
                   '[{"selection_id": "00000000-0000-0000-0000-00000000ffff", "status": "approved"}]')$$,
                 'OR076', 'site 00000000-0000-0000-0000-00000000ffff is not a site of client group 00000000-0000-0000-0000-0000000017d1',
                 'an unknown selection id: OR076');
SELECT throws_ok($$SELECT orders.review_sites('00000000-0000-0000-0000-0000000017d1',
                   '[{"domain": "alpha-site.com", "status": "approved"}, {"domain": "b.example.org", "status": "maybe"}]')$$,
                 '22023', 'orders.review_sites: status "maybe" is not one of suggested, approved, rejected, alternate',
                 'a bad status: 22023');
SELECT throws_ok($$SELECT orders.review_sites('00000000-0000-0000-0000-0000000017d1',
                   '[{"domain": "alpha-site.com"}]')$$,
                 '22023', 'orders.review_sites: entry 1 has no status',
                 'no status: 22023 (0.41.0 library: said status "null")');
SELECT throws_ok($$SELECT orders.review_sites('00000000-0000-0000-0000-0000000017d1', '[null]')$$,
                 '22023', 'orders.review_sites: entry 1 is not a JSON object {selection_id | domain, status, ...}',
                 'an entry that is no object: 22023, said so (0.41.0 library)');
SELECT throws_ok($$SELECT orders.review_sites('00000000-0000-0000-0000-0000000017d1',
                   '[{"domain": "alpha-site.com", "status": "approved"}, "b.example.org"]')$$,
                 '22023', 'orders.review_sites: entry 2 is not a JSON object {selection_id | domain, status, ...}',
                 '... a string among objects too, named by its position');
SELECT throws_ok(format($$SELECT orders.review_sites('00000000-0000-0000-0000-0000000017d1',
                   '[{"domain": "alpha-site.com", "status": "rejected", "client_notes": "%s"}]')$$, repeat('n', 10001)),
                 '22001', 'orders.review_sites: client_notes of entry 1 may have at most 10000 characters, not 10001',
                 '(0.41.0 library) notes longer than the column holds: 22001 before anything is written, naming the entry');
SELECT throws_ok(format($$SELECT orders.review_sites('00000000-0000-0000-0000-0000000017d1',
                   '[{"domain": "alpha-site.com", "status": "approved"}, {"domain": "b.example.org", "status": "approved", "target_page_url": "%s"}]')$$,
                   repeat('u', 2049)),
                 '22001', 'orders.review_sites: target_page_url of entry 2 may have at most 2048 characters, not 2049',
                 '... a target page URL likewise, and an anchor text:');
SELECT throws_ok(format($$SELECT orders.review_sites('00000000-0000-0000-0000-0000000017d1',
                   '[{"domain": "alpha-site.com", "status": "approved", "anchor_text": "%s"}]')$$, repeat('a', 256)),
                 '22001', 'orders.review_sites: anchor_text of entry 1 may have at most 255 characters, not 256',
                 '... at 256 characters');
SELECT throws_ok(format($$SELECT orders.review_sites('00000000-0000-0000-0000-0000000017d1',
                   '[{"domain": "alpha-site.com", "status": "approved"}, {"selection_id": "%s", "status": "rejected"}]')$$,
                   (SELECT id FROM orders.order_site_selections WHERE domain = 'alpha-site.com'
                       AND order_group_id = '00000000-0000-0000-0000-0000000017d1')),
                 '22023', 'orders.review_sites: site "alpha-site.com" is named twice (entries 1 and 2)',
                 'a site named twice (by domain and by id): 22023');
-- (0.43.0) twins found by sorting, not by comparing every pair: the first
-- bad entry in the caller's order, and its first twin
SELECT throws_ok($$SELECT orders.review_sites('00000000-0000-0000-0000-0000000017d1',
                   '[{"domain": "b.example.org", "status": "approved"}, {"domain": "c.example.net", "status": "approved"},
                     {"domain": "alpha-site.com", "status": "approved"}, {"domain": "c.example.net", "status": "rejected"},
                     {"domain": "www.c.example.net", "status": "rejected"}]')$$,
                 '22023', 'orders.review_sites: site "c.example.net" is named twice (entries 2 and 4)',
                 '... the first entry of a site named three times: it and the second');
SELECT throws_ok($$SELECT orders.review_sites('00000000-0000-0000-0000-0000000017d1',
                   '[{"domain": "b.example.org", "status": "approved"}, {"domain": "c.example.net", "status": "approved"},
                     {"domain": "b.example.org", "status": "bogus"}]')$$,
                 '22023', 'orders.review_sites: site "b.example.org" is named twice (entries 1 and 3)',
                 '... the first bad entry in the caller''s order: the first of twins, before its twin''s own fault');
-- (0.43.0) at most 10,000 entries: each was looked up (a domain normalised
-- by SQL) before the first bad one was refused — 200,000 cost seconds
SELECT throws_ok(format($$SELECT orders.review_sites('00000000-0000-0000-0000-0000000017d1', %L)$$,
                        (SELECT jsonb_agg(jsonb_build_object('domain', 's' || i || '.example.com', 'status', 'approved'))
                           FROM generate_series(1, 10001) i)),
                 '22023', 'orders.review_sites: 10001 entries in one call; at most 10000',
                 'more than 10,000 entries: 22023 before any is looked up');
SELECT throws_ok($$SELECT orders.review_sites('00000000-0000-0000-0000-0000000017d1', '{"domain": "alpha-site.com"}')$$,
                 '22023', 'orders.review_sites: selections must be a JSON array of {selection_id | domain, status, ...}',
                 'selections not an array: 22023');
SELECT throws_ok($$SELECT orders.review_sites('00000000-0000-0000-0000-00000000ffff', '[]')$$,
                 'OR075', 'client group 00000000-0000-0000-0000-00000000ffff does not exist', 'an unknown group: OR075');
SELECT is(pg_temp.snap('T17-A'), :'before', '... nothing changed: statuses, counters, items, totals, history');

SELECT is((SELECT approved_count || '/' || link_count || ' ' || rejected_count || ' ' || suggested_count || ' ' || group_status
             FROM orders.review_sites('00000000-0000-0000-0000-0000000017d1', format($j$[
               {"domain": "WWW.Alpha-Site.com", "status": "approved", "anchor_text": "best alpha",
                "target_page_url": "https://client-alpha.com/p1", "client_notes": "love it"},
               {"selection_id": "%s", "status": "approved"},
               {"domain": "c.example.net", "status": "rejected", "client_notes": "too small"}]$j$,
               (SELECT id FROM orders.order_site_selections WHERE domain = 'b.example.org'))::jsonb)),
          '2/2 1 0 complete', 'review_sites applies a review: 2 approved of 2, 1 rejected, the group complete');
SELECT is((SELECT string_agg(format('%s %s %s %s %s %s', x.domain, x.status, x.anchor_text, x.client_notes,
                                    x.reviewed_by = orders.current_actor(), x.reviewed_at IS NOT NULL), '; ' ORDER BY x.domain)
             FROM orders.order_site_selections x WHERE x.order_group_id = '00000000-0000-0000-0000-0000000017d1'),
          'alpha-site.com approved best alpha love it t t; b.example.org approved   t t; c.example.net rejected  too small t t',
          'the verdicts, notes, anchor and reviewer are recorded');
SELECT is((SELECT string_agg(format('%s %s %s %s', i.item_type, i.name, i.quantity, i.unit_price), '; ' ORDER BY i.name)
             FROM orders.order_items i WHERE i.order_id = '00000000-0000-0000-0000-0000000017a1'),
          'service alpha-site.com 1 100.00; service b.example.org 1 50.00',
          'approved sites become items: service, named by the domain, priced by metrics.price');
SELECT is((SELECT count(*)::int FROM orders.order_site_selections x JOIN orders.order_items i ON i.id = x.order_item_id
            WHERE x.order_group_id = '00000000-0000-0000-0000-0000000017d1' AND x.status = 'approved'
              AND i.snapshot ->> 'site_selection_id' = x.id::text), 2, 'each approved site links its item');
SELECT is((SELECT i.snapshot - 'site_selection_id' - 'approved_by'
             FROM orders.order_items i WHERE i.order_id = '00000000-0000-0000-0000-0000000017a1' AND i.name = 'alpha-site.com'),
          '{"domain": "alpha-site.com", "metrics": {"dr": 50, "price": 100, "traffic": 1200}, "domain_id": "17171717-dddd-0000-0000-000000000001",
            "anchor_text": "best alpha", "order_group_id": "00000000-0000-0000-0000-0000000017d1",
            "target_page_url": "https://client-alpha.com/p1"}'::jsonb,
          'the item''s snapshot: the site''s metrics (not its cost), anchor and target at approval');
SELECT is((SELECT subtotal || ' ' || total_amount FROM orders.orders WHERE order_number = 'T17-A'), '150.00 150.00',
          'the order''s subtotal and total follow the items');
SELECT throws_ok($$SELECT orders.review_sites('00000000-0000-0000-0000-0000000017d1',
                   '[{"domain": "c.example.net", "status": "approved"}]')$$, 'OR070',
                 'order "T17-A", group of client "T17 Alpha": 2 of 2 sites approved, 1 more would exceed the group''s link_count',
                 'a full group takes no further approval');
CREATE TABLE pg_temp.order_updates (old_subtotal numeric, new_subtotal numeric);
CREATE FUNCTION pg_temp.order_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pg_temp.order_updates VALUES (OLD.subtotal, NEW.subtotal);
    RETURN NULL;
END $$;
CREATE TRIGGER order_updated AFTER UPDATE ON orders.orders
    FOR EACH ROW WHEN (OLD.id = '00000000-0000-0000-0000-0000000017a1') EXECUTE FUNCTION pg_temp.order_updated();
SELECT is((SELECT approved_count FROM orders.review_sites('00000000-0000-0000-0000-0000000017d1',
             '[{"domain": "b.example.org", "status": "rejected"}, {"domain": "c.example.net", "status": "approved"}]')), 2,
          'but swapping one approved site for another in one review is fine (the cap judges the whole review)');
-- the item taken away and the one made move the subtotal once, at the end
-- of the review statement: one UPDATE of the order
SELECT is((SELECT count(*)::int FROM pg_temp.order_updates), 1,
          '... its two items moved the order''s subtotal in one UPDATE');
SELECT is((SELECT old_subtotal || ' -> ' || new_subtotal FROM pg_temp.order_updates), '150.00 -> 170.00', '... from 150 to 170');
DROP TRIGGER order_updated ON orders.orders;
SELECT is((SELECT string_agg(i.name || ' ' || i.unit_price, '; ' ORDER BY i.name) || ' = ' || o.subtotal
             FROM orders.order_items i JOIN orders.orders o ON o.id = i.order_id
            WHERE i.order_id = '00000000-0000-0000-0000-0000000017a1' GROUP BY o.subtotal),
          'alpha-site.com 100.00; c.example.net 70.00 = 170.00', '... the items follow the swap');
SELECT is((SELECT approved_count || ' ' || group_status FROM orders.review_sites('00000000-0000-0000-0000-0000000017d1',
             '[{"domain": "c.example.net", "status": "alternate"}]')), '1 reviewing',
          'un-approving (alternate) a site: the group reviews again');
SELECT is((SELECT string_agg(i.name, '; ') || ' = ' || min(o.subtotal) || ' ' || min(o.total_amount)
             FROM orders.order_items i JOIN orders.orders o ON o.id = i.order_id
            WHERE i.order_id = '00000000-0000-0000-0000-0000000017a1'),
          'alpha-site.com = 100.00 100.00', 'un-approving removes the item; totals follow');
SELECT is((SELECT order_item_id FROM orders.order_site_selections WHERE domain = 'c.example.net'
              AND order_group_id = '00000000-0000-0000-0000-0000000017d1'), NULL, '... and the site no longer links one');

-- The subtotal of an approved site's item waits for site_counts at the end
-- of the statement only when site_counts will fire: a DBA who disabled it
-- still gets the subtotal at once.
SAVEPOINT counts_off;
ALTER TABLE orders.order_site_selections DISABLE TRIGGER site_counts_update;
UPDATE orders.order_site_selections SET status = 'approved'
 WHERE domain = 'c.example.net' AND order_group_id = '00000000-0000-0000-0000-0000000017d1';
SELECT is((SELECT subtotal || ' ' || total_amount FROM orders.orders WHERE order_number = 'T17-A'), '170.00 170.00',
          'site_counts disabled by a DBA: the approved site''s item still moves the subtotal (not held for it)');
ROLLBACK TO SAVEPOINT counts_off;
-- ... and a held delta made inside a subtransaction that commits (a DBA's
-- trigger adding a fee item in an exception block while the approved
-- site's item is made) passes to the statement and is written with it
SAVEPOINT fee;
CREATE FUNCTION pg_temp.add_fee() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    IF NEW.name <> 'review fee' THEN
        BEGIN
            INSERT INTO orders.order_items (order_id, item_type, name, quantity, unit_price)
            VALUES (NEW.order_id, 'service', 'review fee', 1, 5);
        EXCEPTION WHEN unique_violation THEN NULL;
        END;
    END IF;
    RETURN NULL;
END
$f$;
CREATE TRIGGER add_fee AFTER INSERT ON orders.order_items FOR EACH ROW EXECUTE FUNCTION pg_temp.add_fee();
UPDATE orders.order_site_selections SET status = 'approved'
 WHERE domain = 'c.example.net' AND order_group_id = '00000000-0000-0000-0000-0000000017d1';
SELECT is((SELECT o.subtotal || ' = ' || sum(i.total) || ', ' || string_agg(i.name, ' ' ORDER BY i.name)
             FROM orders.orders o JOIN orders.order_items i ON i.order_id = o.id
            WHERE o.order_number = 'T17-A' GROUP BY o.subtotal),
          '175.00 = 175.00, alpha-site.com c.example.net review fee',
          'an item made in a subtransaction while the site''s item is made: its subtotal is written with the statement''s');
ROLLBACK TO SAVEPOINT fee;

---------------------------------------------------------------------------
-- The client_review gate
---------------------------------------------------------------------------
SELECT pg_temp.snap('T17-A') AS before \gset
SELECT is(pg_temp.err($$SELECT orders.transition('00000000-0000-0000-0000-0000000017a1', 'payment_pending')$$),
          'OR071: order "T17-A" cannot move from "reviewing" to "payment_pending" yet: gate "client_review" is closed'
          || ' | Groups short of approved sites: T17 Alpha (1 of 2 approved), T17 Beta (0 of 1 approved)',
          'a reviewed order goes to payment only with every group complete: OR071, DETAIL lists the short groups');
SELECT is(pg_temp.snap('T17-A'), :'before', '... nothing changed (not stamped)');
SELECT ok(NOT 'payment_pending' = ANY (ARRAY(SELECT orders.allowed_transitions('00000000-0000-0000-0000-0000000017a1'))),
          '... and allowed_transitions does not offer it');
SELECT is((SELECT reviewed_by FROM orders.orders WHERE order_number = 'T17-A'), NULL, '... no reviewer recorded');
SELECT is((SELECT approved_count FROM orders.review_sites('00000000-0000-0000-0000-0000000017d1',
             '[{"domain": "b.example.org", "status": "approved"}]')), 2, 'Alpha approves its second site');
SELECT is(pg_temp.err($$SELECT orders.transition('00000000-0000-0000-0000-0000000017a1', 'payment_pending')$$),
          'OR071: order "T17-A" cannot move from "reviewing" to "payment_pending" yet: gate "client_review" is closed'
          || ' | Groups short of approved sites: T17 Beta (0 of 1 approved)',
          'the DETAIL lists only the groups still short');
SELECT is((SELECT approved_count FROM orders.review_sites('00000000-0000-0000-0000-0000000017d2',
             '[{"domain": "d.example.com", "status": "approved"}, {"domain": "e.example.com", "status": "rejected"}]')), 1,
          'Beta approves its site');
SELECT ok('payment_pending' = ANY (ARRAY(SELECT orders.allowed_transitions('00000000-0000-0000-0000-0000000017a1'))),
          '... now allowed_transitions offers the gated edge');
SELECT is((SELECT status || ' ' || (review_completed_at = now()) || ' ' || (reviewed_by = orders.current_actor())
                  || ' ' || (reviewed_at = now())
             FROM orders.transition('00000000-0000-0000-0000-0000000017a1', 'payment_pending')),
          'payment_pending true true true', 'passing the gate stamps review_completed_at and reviewed_by');
SELECT is((SELECT approved_count FROM orders.review_sites('00000000-0000-0000-0000-0000000017d2',
             '[{"domain": "d.example.com", "status": "rejected"}]')), 0,
          'until the order is paid (payment_pending), an approved site may still be taken back');
SELECT is((SELECT count(*)::int FROM orders.order_items WHERE order_id = '00000000-0000-0000-0000-0000000017a1'), 2,
          '... its item goes');
-- (0.29.0) the order is paid only while its review is still complete (gate
-- client_review_kept): it was paid with a group short, its total without
-- the withdrawn site
SELECT is(pg_temp.err($$SELECT orders.transition('00000000-0000-0000-0000-0000000017a1', 'in_progress')$$),
          'OR071: order "T17-A" cannot move from "payment_pending" to "in_progress" yet: gate "client_review_kept" is closed'
          || ' | Groups short of approved sites: T17 Beta (0 of 1 approved)',
          '... and while it is, the order is not paid (gate client_review_kept)');
SELECT is((SELECT status || ' ' || (paid_at IS NULL) FROM orders.orders WHERE id = '00000000-0000-0000-0000-0000000017a1'),
          'payment_pending true', '... nothing changed');
SELECT is((SELECT approved_count FROM orders.review_sites('00000000-0000-0000-0000-0000000017d2',
             '[{"domain": "d.example.com", "status": "approved"}]')), 1, '... and approved again');
SELECT is((orders.transition('00000000-0000-0000-0000-0000000017a1', 'in_progress')).status, 'in_progress', 'the order is paid');

SELECT pg_temp.snap('T17-A') AS before \gset
SELECT throws_ok($$SELECT orders.review_sites('00000000-0000-0000-0000-0000000017d1',
                   '[{"domain": "alpha-site.com", "status": "rejected"}]')$$, 'OR073',
                 'order "T17-A" is paid: approved site alpha-site.com stays',
                 'once paid, an approved site is not taken back (OR073)');
SELECT throws_ok($$DELETE FROM orders.order_site_selections WHERE domain = 'd.example.com'
                    AND order_group_id = '00000000-0000-0000-0000-0000000017d2'$$, 'OR073',
                 'order "T17-A" is paid: approved site d.example.com stays', 'nor deleted');
SELECT throws_ok($$DELETE FROM orders.order_groups WHERE id = '00000000-0000-0000-0000-0000000017d2'$$, 'OR073',
                 'order "T17-A" is paid: approved site d.example.com stays',
                 'nor is its group deleted (0.28.0: the sites went by the cascade, with their items)');
SELECT throws_ok($$UPDATE orders.order_groups SET order_id = '00000000-0000-0000-0000-0000000017a3'
                    WHERE id = '00000000-0000-0000-0000-0000000017d2'$$, 'OR074',
                 'client group 00000000-0000-0000-0000-0000000017d2 stays with its order',
                 'nor moved to another order (OR074: its sites'' items are this order''s), by anybody');
SELECT is(pg_temp.snap('T17-A'), :'before', '... nothing changed');

---------------------------------------------------------------------------
-- Counters: exact, written only by the extension
---------------------------------------------------------------------------
DELETE FROM orders.order_site_selections WHERE domain = 'e.example.com';
INSERT INTO orders.order_site_selections (order_group_id, domain, status) VALUES
  ('00000000-0000-0000-0000-0000000017d2', 'f.example.com', 'rejected'),
  ('00000000-0000-0000-0000-0000000017d2', 'g.example.com', 'alternate');
UPDATE orders.order_site_selections SET status = 'suggested' WHERE domain = 'f.example.com';
SELECT is((SELECT suggested_count || '/' || approved_count || '/' || rejected_count FROM orders.order_groups
            WHERE id = '00000000-0000-0000-0000-0000000017d2'), '1/1/0',
          'inserts, updates and deletes of sites move the counters (alternate counts in none)');
SELECT is_empty($$SELECT * FROM orders.recount_site_counts()$$,
                'every group''s counters equal a recount of its sites (recount_site_counts finds none wrong)');

CREATE ROLE t17_writer;
GRANT SELECT, UPDATE ON orders.order_groups TO t17_writer;
CREATE POLICY t17 ON orders.order_groups TO t17_writer USING (true);
SELECT pg_temp.snap('T17-A') AS before \gset
SET LOCAL ROLE t17_writer;
SELECT throws_ok($$UPDATE orders.order_groups SET approved_count = 0 WHERE id = '00000000-0000-0000-0000-0000000017d1'$$,
                 'OR014', 'client group 00000000-0000-0000-0000-0000000017d1: approved_count is maintained by the extension',
                 'a non-owner role cannot write a counter (OR014)');
SELECT throws_ok($$UPDATE orders.order_groups SET suggested_count = 7 WHERE id = '00000000-0000-0000-0000-0000000017d2'$$,
                 'OR014', 'client group 00000000-0000-0000-0000-0000000017d2: suggested_count is maintained by the extension',
                 '... nor suggested_count');
SELECT throws_ok($$UPDATE orders.order_groups SET link_count = 1 WHERE id = '00000000-0000-0000-0000-0000000017d1'$$,
                 'OR072', 'client group 00000000-0000-0000-0000-0000000017d1: link_count cannot be lowered to 1, 2 sites are already approved',
                 'link_count below approved_count: OR072');
RESET ROLE;
SELECT throws_ok($$UPDATE orders.order_groups SET link_count = 1 WHERE id = '00000000-0000-0000-0000-0000000017d1'$$,
                 'OR072', NULL, '... also for the owner');
SELECT throws_ok($$INSERT INTO orders.order_groups (order_id, client_id, link_count) VALUES
                   ('00000000-0000-0000-0000-0000000017a1', '00000000-0000-0000-0000-0000000017c2', 0)$$,
                 '23514', NULL, 'a group needs link_count > 0');
SELECT throws_ok($$TRUNCATE orders.order_site_selections$$, 'OR014',
                 'cannot truncate orders.order_site_selections while client groups count their sites',
                 'TRUNCATE of the sites is refused while groups count them (OR014)');
SELECT is(pg_temp.snap('T17-A'), :'before', '... nothing changed');
SELECT is((SELECT link_count FROM orders.order_groups WHERE id = '00000000-0000-0000-0000-0000000017d1'), 2,
          '... link_count kept');
UPDATE orders.order_groups SET link_count = 2 WHERE id = '00000000-0000-0000-0000-0000000017d2';
SELECT is((SELECT link_count || ' ' || approved_count || ' ' || group_status FROM orders.order_groups g
            WHERE id = '00000000-0000-0000-0000-0000000017d2'),
          '2 1 reviewing', 'raising link_count is fine; the group (complete at 1 of 1) has room again and reviews');
INSERT INTO orders.order_groups (id, order_id, client_id, link_count, approved_count, suggested_count) VALUES
  ('00000000-0000-0000-0000-0000000017d6', '00000000-0000-0000-0000-0000000017a1', '00000000-0000-0000-0000-0000000017c3', 3, 5, 9);
SELECT is((SELECT suggested_count || '/' || approved_count || '/' || rejected_count FROM orders.order_groups
            WHERE id = '00000000-0000-0000-0000-0000000017d6'), '0/0/0', 'a new group starts with no counted site');
SELECT lives_ok($$DELETE FROM orders.order_groups WHERE id = '00000000-0000-0000-0000-0000000017d6'$$,
                'a group of a paid order without approved sites may go');
-- an unpaid order's group goes with its approved sites and their items
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle) VALUES
  ('00000000-0000-0000-0000-0000000017b7', 'T17-DG', '00000000-0000-0000-0000-0000000017c1', 'review');
INSERT INTO orders.order_groups (id, order_id, client_id, link_count) VALUES
  ('00000000-0000-0000-0000-0000000017b8', '00000000-0000-0000-0000-0000000017b7', '00000000-0000-0000-0000-0000000017c2', 1);
SELECT FROM orders.transition('00000000-0000-0000-0000-0000000017b7', 'analyzing');
SELECT FROM orders.complete_analysis('00000000-0000-0000-0000-0000000017b8', '[{"domain": "gone.example.com", "metrics": {"price": 7}}]');
SELECT FROM orders.review_sites('00000000-0000-0000-0000-0000000017b8', '[{"domain": "gone.example.com", "status": "approved"}]');
SELECT lives_ok($$DELETE FROM orders.order_groups WHERE id = '00000000-0000-0000-0000-0000000017b8'$$,
                'a group of an unpaid open order goes with its approved sites');
SELECT is(pg_temp.snap('T17-DG'), 'reviewing | false | 0.00 | 0.00 | - | 2',
          '... their items too, the subtotal back to 0');

---------------------------------------------------------------------------
-- An order that does not require client review passes the gate
---------------------------------------------------------------------------
SELECT orders.transition('00000000-0000-0000-0000-0000000017a3', 'analyzing');
SELECT orders.complete_analysis('00000000-0000-0000-0000-0000000017d3', '[{"domain": "r.example.com"}]');
SELECT is((orders.transition('00000000-0000-0000-0000-0000000017a3', 'payment_pending')).status, 'payment_pending',
          'an order without requires_client_review goes to payment with its groups short');

---------------------------------------------------------------------------
-- Gates are data: validated, and usable on a user's own lifecycle
---------------------------------------------------------------------------
SELECT throws_ok($$INSERT INTO orders.lifecycle_gates (name, check_function) VALUES ('t17_bad', 'orders.normalize_domain(text)')$$,
                 'OR008', 'gate "t17_bad": orders.normalize_domain(text) must take one uuid (the order id) and return text',
                 'a gate whose function has the wrong signature: OR008');
SELECT throws_ok($$INSERT INTO orders.lifecycle_gates (name, check_function) VALUES ('t17_bad', 'orders.staff_sees_group(uuid)')$$,
                 'OR008', 'gate "t17_bad": orders.staff_sees_group(uuid) must take one uuid (the order id) and return text',
                 '... or the wrong return type');
SELECT throws_ok($$INSERT INTO orders.lifecycle_gates (name, check_function, stamp_column)
                   VALUES ('t17_bad', 'orders.has_client_groups(uuid)', 'notes')$$,
                 'OR008', 'gate "t17_bad": stamp column "notes" is not a timestamptz column of orders.orders',
                 'a stamp column that is no timestamptz: OR008');
SELECT throws_ok($$INSERT INTO orders.lifecycle_gates (name, check_function, actor_column)
                   VALUES ('t17_bad', 'orders.has_client_groups(uuid)', 'nosuch')$$,
                 'OR008', 'gate "t17_bad": actor column "nosuch" is not a text column of orders.orders',
                 'an actor column orders.orders lacks: OR008');
SELECT throws_ok($$UPDATE orders.lifecycle_gates SET check_function = 'orders.normalize_domain(text)' WHERE name = 'client_review'$$,
                 'OR008', NULL, 'a gate cannot be changed to a bad function either');
SELECT is((SELECT count(*)::int FROM orders.lifecycle_gates), 3, '... no gate added');
SELECT is((SELECT check_function::text FROM orders.lifecycle_gates WHERE name = 'client_review'),
          'orders.client_review_complete(uuid)', '... none changed');

CREATE FUNCTION public.t17_has_po(order_id uuid) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN o.notes IS NULL OR o.notes NOT LIKE 'PO %' THEN 'No purchase order number in the notes.' END
      FROM orders.orders o WHERE o.id = t17_has_po.order_id
$$;
INSERT INTO orders.lifecycle_gates (name, check_function, stamp_column) VALUES
  ('t17_po', 'public.t17_has_po(uuid)', 'confirmed_at');
INSERT INTO orders.lifecycles (name, initial_status) VALUES ('t17flow', 'draft');
INSERT INTO orders.lifecycle_states (lifecycle, status, category, position) VALUES
  ('t17flow', 'draft', 'open', 1), ('t17flow', 'sent', 'open', 2), ('t17flow', 'done', 'fulfilled', 3);
INSERT INTO orders.lifecycle_transitions (lifecycle, from_status, to_status, gate) VALUES
  ('t17flow', 'draft', 'sent', 'client_review'), ('t17flow', 'sent', 'done', 't17_po');
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle, requires_client_review) VALUES
  ('00000000-0000-0000-0000-0000000017a6', 'T17-U', '00000000-0000-0000-0000-0000000017c1', 't17flow', true);
INSERT INTO orders.order_groups (id, order_id, client_id, link_count) VALUES
  ('00000000-0000-0000-0000-0000000017d7', '00000000-0000-0000-0000-0000000017a6', '00000000-0000-0000-0000-0000000017c2', 1);
INSERT INTO orders.order_site_selections (order_group_id, domain) VALUES ('00000000-0000-0000-0000-0000000017d7', 'u.example.com');
SELECT is(pg_temp.err($$SELECT orders.transition('00000000-0000-0000-0000-0000000017a6', 'sent')$$),
          'OR071: order "T17-U" cannot move from "draft" to "sent" yet: gate "client_review" is closed'
          || ' | Groups short of approved sites: T17 Alpha (0 of 1 approved)',
          'a user''s lifecycle with the built-in client_review gate: closed the same way');
SELECT orders.review_sites('00000000-0000-0000-0000-0000000017d7', '[{"domain": "u.example.com", "status": "approved"}]');
SELECT is((SELECT status || ' ' || (review_completed_at IS NOT NULL) || ' ' || (reviewed_by IS NOT NULL)
             FROM orders.transition('00000000-0000-0000-0000-0000000017a6', 'sent')),
          'sent true true', '... and open once the sites are approved, with its stamps');
-- (0.32.0) back before the gate, the order has not passed it: its stamps
-- are cleared until it passes again
INSERT INTO orders.lifecycle_transitions (lifecycle, from_status, to_status) VALUES ('t17flow', 'sent', 'draft');
SELECT is((SELECT status || ' ' || (review_completed_at IS NULL) || ' ' || (reviewed_by IS NULL)
             FROM orders.transition('00000000-0000-0000-0000-0000000017a6', 'draft')),
          'draft true true', 'back before the gate, its stamps are cleared');
SELECT is((SELECT status || ' ' || (review_completed_at = now()) || ' ' || (reviewed_by = orders.current_actor())
             FROM orders.transition('00000000-0000-0000-0000-0000000017a6', 'sent')),
          'sent true true', '... and set again when it passes again');
DELETE FROM orders.lifecycle_transitions WHERE lifecycle = 't17flow' AND from_status = 'sent' AND to_status = 'draft';
-- ... but not a column that is also an edge's own stamp (it says when that
-- edge was taken): a gate stamping started_at on c -> b leaves the stamp
-- of a -> b in place when the order arrives in c
CREATE FUNCTION public.t17_ok(order_id uuid) RETURNS text LANGUAGE sql STABLE AS 'SELECT NULL::text';
INSERT INTO orders.lifecycle_gates (name, check_function, stamp_column) VALUES ('t17_again', 'public.t17_ok(uuid)', 'started_at');
INSERT INTO orders.lifecycles (name, initial_status) VALUES ('t17loop', 'a');
INSERT INTO orders.lifecycle_states (lifecycle, status, category, position) VALUES
  ('t17loop', 'a', 'open', 1), ('t17loop', 'b', 'open', 2), ('t17loop', 'c', 'open', 3);
INSERT INTO orders.lifecycle_transitions (lifecycle, from_status, to_status, stamp_column, gate) VALUES
  ('t17loop', 'a', 'b', 'started_at', NULL), ('t17loop', 'b', 'c', NULL, NULL), ('t17loop', 'c', 'b', NULL, 't17_again');
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle) VALUES
  ('00000000-0000-0000-0000-00000000a17a', 'T17-LOOP', '00000000-0000-0000-0000-0000000017c1', 't17loop');
SELECT orders.transition('00000000-0000-0000-0000-00000000a17a', 'b');
SELECT is((SELECT status || ' ' || (started_at = now()) FROM orders.transition('00000000-0000-0000-0000-00000000a17a', 'c')),
          'c true', 'a gate''s column that is also an edge''s stamp stays');
SELECT is(pg_temp.err($$SELECT orders.transition('00000000-0000-0000-0000-0000000017a6', 'done')$$),
          'OR071: order "T17-U" cannot move from "sent" to "done" yet: gate "t17_po" is closed'
          || ' | No purchase order number in the notes.',
          'a user-defined gate closes its edge with its own DETAIL');
SELECT is((SELECT status || ' ' || (confirmed_at IS NULL) FROM orders.orders WHERE order_number = 'T17-U'), 'sent true',
          '... nothing changed');
SELECT is(ARRAY(SELECT orders.allowed_transitions('00000000-0000-0000-0000-0000000017a6')), '{}'::text[],
          '... and allowed_transitions does not offer the edge of a closed user gate');
ALTER FUNCTION public.t17_has_po(uuid) VOLATILE;
SELECT is(ARRAY(SELECT orders.allowed_transitions('00000000-0000-0000-0000-0000000017a6')), '{done}',
          '... a VOLATILE check is not run by allowed_transitions: its edge is offered, the transition decides');
ALTER FUNCTION public.t17_has_po(uuid) STABLE;
UPDATE orders.orders SET notes = 'PO 4711' WHERE order_number = 'T17-U';
SELECT is((SELECT status || ' ' || (confirmed_at = now()) FROM orders.transition('00000000-0000-0000-0000-0000000017a6', 'done')),
          'done true', 'a user-defined gate lets the order through and stamps its column');

---------------------------------------------------------------------------
-- Share links
---------------------------------------------------------------------------
SELECT orders.transition('00000000-0000-0000-0000-0000000017a5', 'analyzing');
SELECT orders.complete_analysis('00000000-0000-0000-0000-0000000017d5',
  '[{"domain": "s1.example.com", "metrics": {"dr": 60, "cost": 33, "price": 90}}, {"domain": "s2.example.com", "metrics": {"dr": 20}},
    {"domain": "s3.example.com"}]');
UPDATE orders.order_site_selections SET internal_notes = 'T17-SECRET-NOTE' WHERE domain = 's1.example.com';
INSERT INTO orders.order_requirements (order_id, requirement_type, requirement_value, is_mandatory) VALUES
  ('00000000-0000-0000-0000-0000000017a5', 'min_dr', '30', true);
SELECT orders.transition('00000000-0000-0000-0000-0000000017a4', 'analyzing');
SELECT orders.complete_analysis('00000000-0000-0000-0000-0000000017d4', '[{"domain": "other-secret.example.com"}]');

SELECT orders.create_share_token('00000000-0000-0000-0000-0000000017a5', interval '7 days', '{view,approve,convert}',
                                 '{"utm_source": "mail"}') AS tok \gset
SELECT orders.create_share_token('00000000-0000-0000-0000-0000000017a5') AS tok_view \gset
SELECT matches(:'tok'::text, '^[A-Za-z0-9_-]{43}$', 'a token is 43 URL-safe characters (32 bytes: at least 128 random bits)');
SELECT isnt(:'tok'::text, :'tok_view'::text, 'two tokens differ');
SELECT is((SELECT count(*)::int FROM orders.order_share_tokens WHERE token_hash = sha256(convert_to(:'tok', 'UTF8'))), 1,
          'its SHA-256 is stored');
SELECT is((SELECT count(*)::int FROM orders.order_share_tokens t
            WHERE strpos(t::text, :'tok') > 0 OR strpos(t::text, encode(convert_to(:'tok', 'UTF8'), 'hex')) > 0
               OR strpos(t::text, :'tok_view') > 0), 0, 'the token text appears nowhere in the table');
SELECT is((SELECT allowed_actions::text || ' ' || metadata::text || ' ' || (expires_at BETWEEN now() + interval '7 days' AND clock_timestamp() + interval '7 days')
                  || ' ' || created_by || ' ' || (used_at IS NULL)
             FROM orders.order_share_tokens WHERE token_hash = sha256(convert_to(:'tok', 'UTF8'))),
          '{view,approve,convert} {"utm_source": "mail"} true ' || orders.current_actor() || ' true',
          'the token''s row: actions, metadata, expiry, creator');
SELECT is((SELECT allowed_actions::text || ' ' || (expires_at BETWEEN now() + interval '7 days' AND clock_timestamp() + interval '7 days')
             FROM orders.order_share_tokens WHERE token_hash = sha256(convert_to(:'tok_view', 'UTF8'))),
          '{view} true', 'by default: view only, 7 days');

-- (0.43.0) a link lasts expires_in from when it is made: from the
-- transaction's start, one made late in a long transaction was expired
-- when made (this file's transaction has run for seconds by now)
SELECT pg_sleep(1.2);
SELECT orders.create_share_token('00000000-0000-0000-0000-0000000017a5', interval '1 second') AS tok_short \gset
SELECT is(orders.shared_order(:'tok_short') ->> 'order_number', (SELECT order_number FROM orders.orders WHERE id = '00000000-0000-0000-0000-0000000017a5'),
          'a link made a second after the transaction began, for one second, opens at once (it was OR080: expired when made)');
SELECT pg_temp.snap('T17-S') AS before_s \gset
SELECT count(*) AS tokens_before FROM orders.order_share_tokens \gset
SELECT throws_ok($$SELECT orders.create_share_token('00000000-0000-0000-0000-0000000017a5', interval '91 days')$$, '22023',
                 'orders.create_share_token: expires_in must be more than 0 and at most 90 days', 'a link for more than 90 days: 22023');
SELECT throws_ok($$SELECT orders.create_share_token('00000000-0000-0000-0000-0000000017a5', interval '-1 day')$$, '22023',
                 NULL, 'a link already expired: 22023');
SELECT throws_ok($$SELECT orders.create_share_token('00000000-0000-0000-0000-0000000017a5', interval '1 day', '{view,delete}')$$,
                 '22023', 'orders.create_share_token: allowed_actions must be some of view, approve, convert, each once, not {view,delete}',
                 'an action other than view, approve, convert: 22023, the actions named');
SELECT throws_ok($$SELECT orders.create_share_token('00000000-0000-0000-0000-0000000017a5', interval '1 day', '{}')$$,
                 '22023', 'orders.create_share_token: allowed_actions must be some of view, approve, convert, each once, not {}',
                 'no action at all: 22023');
SELECT throws_ok($$SELECT orders.create_share_token('00000000-0000-0000-0000-0000000017a5', interval '1 day', '{{view},{view}}')$$,
                 '22023', 'orders.create_share_token: allowed_actions must be some of view, approve, convert, each once, not {{view},{view}}',
                 '(0.40.0) a two-dimensional list: 22023 (was stored as given)');
SELECT throws_ok($$SELECT orders.create_share_token('00000000-0000-0000-0000-0000000017a5', interval '1 day', array_fill('view'::text, ARRAY[100000]))$$,
                 '22023', 'orders.create_share_token: allowed_actions must be some of view, approve, convert, each once, not '
                          || left(array_fill('view'::text, ARRAY[100000])::text, 100),
                 '(0.42.0) an action named twice (or 100,000 times): 22023 — three million were stored, and every anonymous open carried them');
SELECT throws_ok($$SELECT orders.create_share_token('00000000-0000-0000-0000-0000000017a5', interval '1 day', '{view}', '[1]')$$,
                 '22023', 'orders.create_share_token: metadata must be a JSON object, not array',
                 '(0.41.0) metadata that is no object: 22023 (was the table''s 23514, its DETAIL the new link''s row)');
-- an interval that compares as at most 90 days but runs past 90 from now
-- (none exists from some dates in February: then the check is skipped)
SELECT coalesce((SELECT c FROM unnest(ARRAY['3 mons', '2 mons 30 days', '1 mon 60 days']) c
                  WHERE c::interval <= interval '90 days' AND now() + c::interval > now() + interval '90 days' LIMIT 1), '') AS long_months \gset
SELECT CASE WHEN :'long_months' = '' THEN skip('no month interval runs past 90 days from today', 1)
            ELSE throws_ok(format($$SELECT orders.create_share_token('00000000-0000-0000-0000-0000000017a5', %L::interval)$$, :'long_months'),
                           '22023', 'orders.create_share_token: expires_in must be more than 0 and at most 90 days',
                           '(0.40.0) months that compare as 90 days but run past them from now: 22023') END;
SELECT throws_ok($$SELECT orders.create_share_token('00000000-0000-0000-0000-00000000ffff')$$, 'OR006',
                 'order 00000000-0000-0000-0000-00000000ffff does not exist', 'a link to an unknown order: OR006');
-- (0.37.0) a link's metadata (UTM and the like) at most 4 kB: it was unbounded
SELECT throws_ok($$SELECT orders.create_share_token('00000000-0000-0000-0000-0000000017a5', interval '1 day', '{view}',
                                                    jsonb_build_object('utm_source', repeat('x', 5000)))$$,
                 '22001', NULL, 'a link''s metadata of 5 kB: 22001');
SELECT is((SELECT count(*) FROM orders.order_share_tokens), :'tokens_before'::bigint, '... no link made');

-- what a link shows
SELECT orders.shared_order(:'tok') AS shared \gset
SELECT is((SELECT (:'shared'::jsonb) ->> 'order_number' || ' ' || ((:'shared'::jsonb) ->> 'status') || ' '
                  || jsonb_array_length((:'shared'::jsonb) -> 'groups') || ' '
                  || jsonb_array_length((:'shared'::jsonb) -> 'groups' -> 0 -> 'sites') || ' '
                  || ((:'shared'::jsonb) -> 'groups' -> 0 ->> 'client') || ' '
                  || ((:'shared'::jsonb) -> 'requirements')::text),
          'T17-S reviewing 1 3 T17 Prospect [{"type": "min_dr", "value": 30, "mandatory": true}]',
          'shared_order: the order, its groups with their sites, its requirements');
SELECT is((:'shared'::jsonb) -> 'groups' -> 0 -> 'sites' -> 0 -> 'metrics', '{"dr": 60, "price": 90}'::jsonb,
          'a site''s metrics without its cost');
SELECT ok(strpos(:'shared', 'T17-SECRET-NOTE') = 0 AND strpos(:'shared', 'internal_notes') = 0,
          'no internal notes in what a link shows');
SELECT ok(strpos(:'shared', '"cost"') = 0, 'no cost metric anywhere');

-- a cost written later, by staff or a DBA, goes the same way; metrics
-- without one leave it be
UPDATE orders.order_site_selections SET metrics = metrics || '{"cost": 35, "dr": 61}' WHERE domain = 's1.example.com';
UPDATE orders.order_site_selections SET metrics = metrics || '{"traffic": 500}' WHERE domain = 's1.example.com';
INSERT INTO orders.order_site_selections (order_group_id, domain, metrics, internal_metrics)
VALUES ('00000000-0000-0000-0000-0000000017d5', 's4.example.com', '{"cost": null, "dr": 5}', '{"source": "manual"}');
SELECT is((SELECT string_agg(domain || ' ' || metrics::text || ' ' || internal_metrics::text, '; ' ORDER BY domain)
             FROM orders.order_site_selections WHERE domain IN ('s1.example.com', 's4.example.com')),
          's1.example.com {"dr": 61, "price": 90, "traffic": 500} {"cost": 35}; '
          || 's4.example.com {"dr": 5} {"cost": null, "source": "manual"}',
          'a cost written into metrics by an UPDATE or INSERT moves to internal_metrics (replacing the one before)');
DELETE FROM orders.order_site_selections WHERE domain = 's4.example.com';
SELECT is(orders.shared_order(:'tok') -> 'groups' -> 0 -> 'sites' -> 0 -> 'metrics', '{"dr": 61, "price": 90, "traffic": 500}'::jsonb,
          'a link still shows metrics without the cost');
SELECT throws_ok($$INSERT INTO orders.order_site_selections (order_group_id, domain, internal_metrics)
                   VALUES ('00000000-0000-0000-0000-0000000017d5', 's5.example.com', '[]')$$, '23514', NULL,
                 'internal_metrics is a JSON object (23514)');
SELECT throws_ok($$INSERT INTO orders.order_site_selections (order_group_id, domain, metrics)
                   VALUES ('00000000-0000-0000-0000-0000000017d5', 's5.example.com', '"cost"')$$, '23514', NULL,
                 'metrics that are no object (even the string "cost") are refused by their CHECK (23514), not by the move');
-- the move fires before site_items: a site approved in the statement that
-- writes its cost makes an item whose snapshot has none
INSERT INTO orders.order_site_selections (order_group_id, domain, metrics, status)
VALUES ('00000000-0000-0000-0000-0000000017d5', 's6.example.com', '{"cost": 7, "dr": 6}', 'approved');
INSERT INTO orders.order_site_selections (order_group_id, domain, metrics)
VALUES ('00000000-0000-0000-0000-0000000017d5', 's7.example.com', '{"dr": 7}');
UPDATE orders.order_site_selections SET status = 'approved', metrics = '{"cost": 8, "dr": 7}' WHERE domain = 's7.example.com';
SELECT is((SELECT string_agg(i.name || ' ' || (i.snapshot -> 'metrics')::text || ' ' || x.internal_metrics::text, '; ' ORDER BY i.name)
             FROM orders.order_items i JOIN orders.order_site_selections x ON x.order_item_id = i.id
            WHERE x.domain IN ('s6.example.com', 's7.example.com')),
          's6.example.com {"dr": 6} {"cost": 7}; s7.example.com {"dr": 7} {"cost": 8}',
          'a site approved by the INSERT or UPDATE that writes its cost: the item''s snapshot has no cost');
DELETE FROM orders.order_site_selections WHERE domain IN ('s6.example.com', 's7.example.com');
SELECT is((SELECT count(*)::int FROM orders.order_items WHERE name IN ('s6.example.com', 's7.example.com')), 0,
          '... (their items go with them)');
-- an upsert (PostgREST's merge-duplicates) keeps the site's cost as it was
-- (doc/review.md): the move writes the proposed row, which SET does not copy
INSERT INTO orders.order_site_selections (order_group_id, domain, metrics)
VALUES ('00000000-0000-0000-0000-0000000017d5', 's1.example.com', '{"cost": 99, "dr": 61, "price": 90, "traffic": 500}')
ON CONFLICT (order_group_id, domain) DO UPDATE SET metrics = EXCLUDED.metrics;
SELECT is((SELECT metrics::text || ' ' || internal_metrics::text FROM orders.order_site_selections WHERE domain = 's1.example.com'),
          '{"dr": 61, "price": 90, "traffic": 500} {"cost": 35}',
          'an upsert of metrics with a cost: no cost in metrics, the stored cost unchanged (documented)');
SELECT ok(strpos(:'shared', 'T17 Other') = 0 AND strpos(:'shared', 'other-secret') = 0 AND strpos(:'shared', 'T17-O') = 0
          AND strpos(:'shared', 'alpha-site') = 0 AND strpos(:'shared', 'T17 Agency') = 0,
          'nothing of other customers or orders');
SELECT is(orders.shared_order(:'tok_view') ->> 'order_number', 'T17-S', 'a view-only link shows the order');
SELECT is((SELECT count(*)::int FROM orders.order_share_tokens WHERE order_id = '00000000-0000-0000-0000-0000000017a5'
              AND used_at IS NULL AND converted_to_account_id IS NULL), 3, 'viewing (three times) consumes no link');

-- approving through a link
SELECT throws_ok(format($$SELECT orders.share_review_sites(%L, '00000000-0000-0000-0000-0000000017d5',
                   '[{"domain": "s1.example.com", "status": "approved"}]')$$, :'tok_view'), 'OR081',
                 'this share link does not allow "approve"', 'a view-only link cannot approve (OR081)');
SELECT throws_ok(format($$SELECT orders.share_review_sites(%L, '00000000-0000-0000-0000-0000000017d4',
                   '[{"domain": "other-secret.example.com", "status": "approved"}]')$$, :'tok'), 'OR075',
                 'client group 00000000-0000-0000-0000-0000000017d4 does not exist',
                 'a link approves only in its own order''s groups (OR075)');
SELECT throws_ok(format($$SELECT orders.share_review_sites(%L, '00000000-0000-0000-0000-0000000017d5',
                   '[{"domain": "s1.example.com", "status": "approved"}, {"domain": "s2.example.com", "status": "approved"},
                     {"domain": "s3.example.com", "status": "approved"}]')$$, :'tok'), 'OR070',
                 'order "T17-S", group of client "T17 Prospect": 0 of 2 sites approved, 3 more would exceed the group''s link_count',
                 'a link is held to the cap too');
SELECT is(pg_temp.snap('T17-S'), :'before_s', '... nothing changed');
-- (0.41.0) a constraint's refusal through a link carries no DETAIL: raised
-- as the owner, "Failing row contains (…)" showed the site's internal
-- notes and costs to the link's holder (here a DBA's own CHECK refuses)
CREATE FUNCTION pg_temp.error_of(q text) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE st text; m text; d text;
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL;
    RETURN st || ' ' || m || ' detail=' || d;
END $f$;
ALTER TABLE orders.order_site_selections ADD CONSTRAINT t17_no_forbidden CHECK (client_notes IS DISTINCT FROM 'forbidden');
SELECT is(pg_temp.error_of(format($$SELECT orders.share_review_sites(%L, '00000000-0000-0000-0000-0000000017d5',
                   '[{"domain": "s1.example.com", "status": "rejected", "client_notes": "forbidden"}]')$$, :'tok')),
          '23514 new row for relation "order_site_selections" violates check constraint "t17_no_forbidden" detail=',
          '(0.41.0) a constraint refusing a link''s review: its SQLSTATE and message, no DETAIL (it showed the internal notes)');
ALTER TABLE orders.order_site_selections DROP CONSTRAINT t17_no_forbidden;
SELECT is(orders.share_review_sites(:'tok', '00000000-0000-0000-0000-0000000017d5',
            '[{"domain": "s1.example.com", "status": "approved"}, {"domain": "s3.example.com", "status": "rejected"}]'),
          '{"id": "00000000-0000-0000-0000-0000000017d5", "link_count": 2, "approved": 1, "rejected": 1, "suggested": 1,
            "group_status": "reviewing"}'::jsonb, 'a link that allows approve reviews the sites');
SELECT is((SELECT reviewed_by FROM orders.order_site_selections WHERE domain = 's1.example.com'),
          'share:' || (SELECT id FROM orders.order_share_tokens WHERE token_hash = sha256(convert_to(:'tok', 'UTF8'))),
          'the reviewer recorded is the link');
SELECT is((SELECT name FROM orders.order_items WHERE order_id = '00000000-0000-0000-0000-0000000017a5'), 's1.example.com',
          'the approved site is an item of the order');

-- refused links: one SQLSTATE, one message
SELECT orders.create_share_token('00000000-0000-0000-0000-0000000017a5', interval '1 day', '{view,convert}') AS tok_exp \gset
UPDATE orders.order_share_tokens SET expires_at = now() - interval '1 second'
 WHERE token_hash = sha256(convert_to(:'tok_exp', 'UTF8'));
SELECT orders.create_share_token('00000000-0000-0000-0000-0000000017a5', interval '1 day', '{view,approve,convert}') AS tok_rev \gset
SELECT id AS tok_rev_id FROM orders.order_share_tokens WHERE token_hash = sha256(convert_to(:'tok_rev', 'UTF8')) \gset
SELECT lives_ok(format('SELECT orders.revoke_share_token(%L)', :'tok_rev_id'), 'revoke_share_token');
SELECT revoked_at AS tok_revoked_at FROM orders.order_share_tokens WHERE id = :'tok_rev_id' \gset
SELECT isnt(:'tok_revoked_at'::timestamptz, NULL, '... records revoked_at');
SELECT lives_ok(format('SELECT orders.revoke_share_token(%L)', :'tok_rev_id'),
                '(0.41.0) revoking twice: done already, no error (was OR080)');
SELECT is((SELECT revoked_at FROM orders.order_share_tokens WHERE id = :'tok_rev_id'), :'tok_revoked_at'::timestamptz,
          '... its revoked_at kept');
SELECT throws_ok($$SELECT orders.revoke_share_token('00000000-0000-0000-0000-00000000ffff')$$, 'OR080',
                 'this share link is not valid', 'revoking an unknown link: OR080');
SELECT pg_temp.snap('T17-S') AS before_s \gset
SELECT string_agg(t::text, ';' ORDER BY id) AS tokens_before FROM orders.order_share_tokens t \gset
CREATE TEMP TABLE t17_bad (t text);
INSERT INTO t17_bad VALUES ('no-such-token'), (''), (:'tok_exp'), (:'tok_rev'), (:'tok' || 'x'), (upper(:'tok'));
SELECT results_eq(
  $$SELECT pg_temp.err(format(f, t)) FROM unnest(ARRAY[
      'SELECT orders.shared_order(%L)',
      'SELECT orders.share_review_sites(%L, ''00000000-0000-0000-0000-0000000017d5'', ''[{"domain": "s2.example.com", "status": "approved"}]'')',
      'SELECT orders.convert_share_token(%L)']) f, t17_bad$$,
  $$SELECT 'OR080: this share link is not valid' FROM generate_series(1, 18)$$,
  'unknown, empty, expired, revoked, altered tokens: OR080 with one message, for viewing, approving and converting');
SELECT is(pg_temp.err('SELECT orders.shared_order(NULL)'), 'OR080: this share link is not valid', 'a NULL token: OR080');

-- converting
SELECT throws_ok(format('SELECT orders.convert_share_token(%L)', :'tok_view'), 'OR081',
                 'this share link does not allow "convert"', 'a link without convert cannot convert (OR081)');
SELECT is(pg_temp.err(format('SELECT orders.convert_share_token(%L)', :'tok')),
          'OR082: converting a share link needs a logged-in account (a JWT whose sub is its id) | The request carries no JWT sub.',
          'converting without a logged-in account: OR082, DETAIL says there is no sub (not the function owner''s name)');
SELECT is(pg_temp.snap('T17-S'), :'before_s', '... nothing changed (order)');
SELECT is((SELECT string_agg(t::text, ';' ORDER BY id) FROM orders.order_share_tokens t), :'tokens_before',
          '... nothing changed (links: none used, none consumed by the refusals)');
SELECT is((SELECT account_id FROM orders.customers WHERE id = '00000000-0000-0000-0000-0000000017c5'), NULL,
          '... the prospect still has no account');

SELECT set_config('request.jwt.claims', '{"sub": "17171717-0000-0000-0000-0000000000c5", "role": "authenticated"}', true);
SELECT is(orders.convert_share_token(:'tok'), '00000000-0000-0000-0000-0000000017c5'::uuid,
          'a logged-in prospect converts the link: the order''s customer is returned');
SELECT is((SELECT account_id FROM orders.customers WHERE id = '00000000-0000-0000-0000-0000000017c5'),
          '17171717-0000-0000-0000-0000000000c5'::uuid, '... the customer''s account is the prospect''s');
SELECT is((SELECT (used_at IS NOT NULL) || ' ' || converted_to_account_id FROM orders.order_share_tokens
            WHERE token_hash = sha256(convert_to(:'tok', 'UTF8'))),
          'true 17171717-0000-0000-0000-0000000000c5', '... used_at and converted_to_account_id recorded');
SELECT is(orders.convert_share_token(:'tok'), '00000000-0000-0000-0000-0000000017c5'::uuid,
          '(0.41.0) the same account again (a retry): the answer of its conversion, not OR080');
SELECT set_config('request.jwt.claims', '{"sub": "17171717-0000-0000-0000-0000000000c6", "role": "authenticated"}', true);
SELECT throws_ok(format('SELECT orders.convert_share_token(%L)', :'tok'), 'OR080', 'this share link is not valid',
                 'a link converts once: another account''s use gets OR080');
SELECT set_config('request.jwt.claims', '{"sub": "17171717-0000-0000-0000-0000000000c5", "role": "authenticated"}', true);
SELECT throws_ok(format('SELECT orders.shared_order(%L)', :'tok'), 'OR080', 'this share link is not valid',
                 'a used link shows nothing more');

-- a link to an order whose customer another account owns (made by the DBA:
-- a link's creator must still be allowed to share its order, 0.38.0 also
-- outside the API, and the prospect whose JWT this session carries is not)
SELECT set_config('request.jwt.claims', '', true);
SELECT orders.create_share_token('00000000-0000-0000-0000-0000000017a4', interval '1 day', '{view,convert}') AS tok_o \gset
SELECT set_config('request.jwt.claims', '{"sub": "17171717-0000-0000-0000-0000000000ff", "role": "authenticated"}', true);
SELECT string_agg(t::text, ';' ORDER BY id) AS tokens_before FROM orders.order_share_tokens t \gset
SELECT throws_ok(format('SELECT orders.convert_share_token(%L)', :'tok_o'), 'OR083',
                 'the shared order belongs to another account',
                 'converting an order whose customer another account owns: OR083');
SELECT is((SELECT string_agg(t::text, ';' ORDER BY id) FROM orders.order_share_tokens t), :'tokens_before',
          '... the link is not used');
SELECT is((SELECT account_id FROM orders.customers WHERE id = '00000000-0000-0000-0000-0000000017c4'),
          '17171717-0000-0000-0000-000000000004'::uuid, '... the customer keeps its account');
SELECT set_config('request.jwt.claims', '{"sub": "17171717-0000-0000-0000-000000000004", "role": "authenticated"}', true);
SELECT is(orders.convert_share_token(:'tok_o'), '00000000-0000-0000-0000-0000000017c4'::uuid,
          'the owner''s own account may convert it');
SELECT set_config('request.jwt.claims', '', true);

---------------------------------------------------------------------------
-- Paid and closed orders keep their sites (OR073) whoever reviews: a new
-- approval would add an item to an order already paid for (or fulfilled,
-- its revenue posted); a share link runs as the owner, so row level
-- security does not stop it.
---------------------------------------------------------------------------
SELECT pg_temp.snap('T17-A') AS before \gset
SELECT throws_ok($$SELECT orders.review_sites('00000000-0000-0000-0000-0000000017d2',
                   '[{"domain": "g.example.com", "status": "approved"}]')$$, 'OR073', NULL,
                 'a paid order takes no new approved site, even in a group with room (OR073)');
SELECT is(pg_temp.snap('T17-A'), :'before', '... nothing changed (no item, the total paid for stays)');
SELECT orders.transition('00000000-0000-0000-0000-0000000017a3', 'in_progress');
SELECT orders.transition('00000000-0000-0000-0000-0000000017a3', 'completed');
SELECT orders.create_share_token('00000000-0000-0000-0000-0000000017a3', interval '1 day', '{view,approve}') AS tok_r \gset
SELECT pg_temp.snap('T17-R') AS before \gset
SELECT throws_ok(format($$SELECT orders.share_review_sites(%L, '00000000-0000-0000-0000-0000000017d3',
                   '[{"domain": "r.example.com", "status": "approved"}]')$$, :'tok_r'), 'OR073', NULL,
                 'a share link approves nothing in a completed order (OR073)');
SELECT is(pg_temp.snap('T17-R'), :'before', '... nothing changed (no item, no revenue moved)');

---------------------------------------------------------------------------
-- A review's row locks (0.19.0, orders.lock_review): its sites, their group,
-- then the order, before its UPDATE — only for a caller who may change the
-- sites (pgrowlocks shows each row's lock).
---------------------------------------------------------------------------
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle, requires_client_review) VALUES
  ('00000000-0000-0000-0000-0000000017a9', 'T17-L', '00000000-0000-0000-0000-0000000017c4', 'review', true);
INSERT INTO orders.order_groups (id, order_id, client_id, link_count) VALUES
  ('00000000-0000-0000-0000-0000000017d9', '00000000-0000-0000-0000-0000000017a9', '00000000-0000-0000-0000-0000000017c4', 1);
INSERT INTO orders.order_site_selections (id, order_group_id, domain, metrics) VALUES
  ('00000000-0000-0000-0000-0000000017e1', '00000000-0000-0000-0000-0000000017d9', 'lock-a.example.com', '{"price": 5}'),
  ('00000000-0000-0000-0000-0000000017e2', '00000000-0000-0000-0000-0000000017d9', 'lock-b.example.com', '{"price": 6}');
-- pg_temp.locks() — the row locks of T17-L's sites, group and order
-- (pgrowlocks: the inserts so far left only their foreign keys' KEY SHARE)
CREATE FUNCTION pg_temp.locks() RETURNS text LANGUAGE sql AS $$
    SELECT concat_ws(' ',
        (SELECT string_agg(x.domain || '=' || coalesce((SELECT array_to_string(l.modes, '+')
                                                           FROM public.pgrowlocks('orders.order_site_selections') l
                                                          WHERE l.locked_row = x.ctid), 'none'), ',' ORDER BY x.domain)
           FROM orders.order_site_selections x WHERE x.order_group_id = '00000000-0000-0000-0000-0000000017d9'),
        (SELECT 'group=' || coalesce((SELECT array_to_string(l.modes, '+') FROM public.pgrowlocks('orders.order_groups') l
                                       WHERE l.locked_row = g.ctid), 'none')
           FROM orders.order_groups g WHERE g.id = '00000000-0000-0000-0000-0000000017d9'),
        (SELECT 'order=' || coalesce((SELECT array_to_string(l.modes, '+') FROM public.pgrowlocks('orders.orders') l
                                       WHERE l.locked_row = o.ctid), 'none')
           FROM orders.orders o WHERE o.id = '00000000-0000-0000-0000-0000000017a9'))
$$;
SELECT is(pg_temp.locks(), 'lock-a.example.com=none,lock-b.example.com=none group=For Key Share order=For Key Share',
          'T17-L before its review: only the foreign keys'' KEY SHARE of the inserts');
SELECT is((orders.review_sites('00000000-0000-0000-0000-0000000017d9', '[]')).approved_count, 0,
          'an empty review returns the group');
SELECT is(pg_temp.locks(), 'lock-a.example.com=none,lock-b.example.com=none group=For Key Share order=For Key Share',
          '... and locks nothing');
-- refusals and bad input: a NULL argument is 22004 naming it and locks nothing
SELECT throws_ok($$SELECT orders.lock_review(NULL, '{00000000-0000-0000-0000-0000000017e1}', true)$$, '22004',
                 'orders.lock_review: argument "order_group_id" must not be null', 'lock_review without a group: 22004');
SELECT throws_ok($$SELECT orders.lock_review('00000000-0000-0000-0000-0000000017d9', NULL, true)$$, '22004',
                 'orders.lock_review: argument "site_ids" must not be null', '... without sites: 22004');
SELECT throws_ok($$SELECT orders.lock_review('00000000-0000-0000-0000-0000000017d9', '{00000000-0000-0000-0000-0000000017e1}', NULL)$$,
                 '22004', 'orders.lock_review: argument "approving" must not be null', '... without approving: 22004');
SELECT is(orders.lock_review('00000000-0000-0000-0000-0000000017d9',
                             ARRAY(SELECT gen_random_uuid() FROM generate_series(1, 20000)) || '{NULL}'::uuid[], true),
          0::bigint, '20,000 unknown site ids and a NULL among them lock nothing');
SELECT is(pg_temp.locks(), 'lock-a.example.com=none,lock-b.example.com=none group=For Key Share order=For Key Share',
          '... nothing locked by the refusals or the unknown ids');
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "17171717-0000-0000-0000-0000000000ff", "role": "authenticated"}', true);
SELECT is(orders.lock_review('00000000-0000-0000-0000-0000000017d9',
                             '{00000000-0000-0000-0000-0000000017e1,00000000-0000-0000-0000-0000000017e2}', true), 0::bigint,
          'lock_review by an account that may not change the sites locks none of them');
RESET ROLE;
SELECT is(pg_temp.locks(), 'lock-a.example.com=none,lock-b.example.com=none group=For Key Share order=For Key Share',
          '... nor their group or order');
SELECT x.id AS other_site FROM orders.order_site_selections x
 WHERE x.order_group_id = '00000000-0000-0000-0000-0000000017d4' LIMIT 1 \gset
SELECT is((SELECT xmax::text FROM orders.order_site_selections WHERE id = :'other_site'), '0',
          'a site of another group of the same customer, not locked either');
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "17171717-0000-0000-0000-000000000004", "role": "authenticated"}', true);
SELECT is(orders.lock_review('00000000-0000-0000-0000-0000000017d9',
                             ARRAY['00000000-0000-0000-0000-0000000017e1', :'other_site']::uuid[], false),
          1::bigint, 'the customer whose order it is: lock_review locks the named sites of the group only');
RESET ROLE;
SELECT is((SELECT xmax::text FROM orders.order_site_selections WHERE id = :'other_site'), '0',
          '... not the site of another group it named');
SELECT is(pg_temp.locks(), 'lock-a.example.com=For No Key Update,lock-b.example.com=none group=For No Key Update order=For Key Share',
          '... then their group (as the owner); not the order: a review that neither approves nor takes back makes no item');
SET LOCAL ROLE authenticated;
SELECT is(orders.lock_review('00000000-0000-0000-0000-0000000017d9', '{00000000-0000-0000-0000-0000000017e1}', true),
          1::bigint, 'an approving review''s locks');
RESET ROLE;
SELECT is(pg_temp.locks(), 'lock-a.example.com=For No Key Update,lock-b.example.com=none group=For No Key Update order=For No Key Update',
          '... its site, the group, then the order (as the owner)');
-- review_sites takes the same locks in the same order: its sites before
-- its UPDATE, the group and order as the UPDATE writes the first site that
-- makes or takes away an item (src/review_sites.c, site_items.c; the
-- isolation specs review_lock_order and review_sites_first show the order
-- in which it waits for them)
SET LOCAL ROLE authenticated;
SELECT is((orders.review_sites('00000000-0000-0000-0000-0000000017d9',
                               '[{"domain": "lock-b.example.com", "status": "approved"}]')).approved_count, 1,
          'the customer approves lock-b.example.com');
RESET ROLE;
SELECT is(pg_temp.locks(), 'lock-a.example.com=For No Key Update,lock-b.example.com=For Key Share group=For Key Share order=For Key Share',
          '... the approval''s new row versions (site, group, order) carry only KEY SHARE');
SET LOCAL ROLE authenticated;
SELECT is(orders.lock_review('00000000-0000-0000-0000-0000000017d9', '{00000000-0000-0000-0000-0000000017e2}', false),
          1::bigint, 'taking the approval back (approving false, the site approved now)');
RESET ROLE;
SELECT is(pg_temp.locks(), 'lock-a.example.com=For No Key Update,lock-b.example.com=For No Key Update group=For No Key Update order=For No Key Update',
          '... locks the order too: its item will be deleted');
SELECT set_config('request.jwt.claims', '', true);

---------------------------------------------------------------------------
-- A group's counters written without a statement (0.25.0 library, later): the
-- group's row triggers (a DBA's too), its log and the cap as the counters'
-- UPDATE had them; a DBA's statement trigger on the groups sends the
-- counters back to that UPDATE, which still counts and caps
---------------------------------------------------------------------------
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle, requires_client_review) VALUES
  ('00000000-0000-0000-0000-0000000017ad', 'T17-D', '00000000-0000-0000-0000-0000000017c1', 'review', false);
INSERT INTO orders.order_groups (id, order_id, client_id, link_count) VALUES
  ('00000000-0000-0000-0000-0000000017dd', '00000000-0000-0000-0000-0000000017ad', '00000000-0000-0000-0000-0000000017c2', 1);
SELECT is((orders.complete_analysis('00000000-0000-0000-0000-0000000017dd',
             '[{"domain": "d1.example.com", "metrics": {"price": 10}},
               {"domain": "d2.example.com", "metrics": {"price": 20}}]')).suggested_count, 2,
          'T17-D: one group of one link, two sites suggested');
CREATE TEMP TABLE group_writes (seen text);
CREATE FUNCTION pg_temp.note_group() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN
    INSERT INTO pg_temp.group_writes VALUES (format('%s %s %s/%s/%s %s', TG_WHEN, TG_LEVEL, NEW.suggested_count,
                                                    NEW.approved_count, NEW.rejected_count, NEW.group_status));
    RETURN NEW;
END$$;
CREATE TRIGGER note_before BEFORE UPDATE ON orders.order_groups FOR EACH ROW EXECUTE FUNCTION pg_temp.note_group();
CREATE TRIGGER note_after AFTER UPDATE OF approved_count ON orders.order_groups FOR EACH ROW EXECUTE FUNCTION pg_temp.note_group();
SELECT orders.track_activity('orders.order_groups');
DELETE FROM orders.activity_logs;
SELECT is((orders.review_sites('00000000-0000-0000-0000-0000000017dd',
                               '[{"domain": "d1.example.com", "status": "approved"}]')).group_status, 'complete',
          'T17-D: approving a site fills the group: complete');
SELECT is((SELECT string_agg(seen, ', ' ORDER BY seen) FROM group_writes), 'AFTER ROW 1/1/0 complete, BEFORE ROW 1/1/0 complete',
          '... a DBA''s BEFORE row trigger and AFTER UPDATE OF approved_count trigger fired on the counters'' write');
SELECT is((SELECT string_agg(k, ' ' ORDER BY k) FROM orders.activity_logs l, jsonb_object_keys(l.details -> 'changes') k
            WHERE l.entity_id = '00000000-0000-0000-0000-0000000017dd'), 'approved_count group_status suggested_count',
          '... the group''s log has the write that completed it (not a count alone: logged as the UPDATE was)');
SELECT pg_temp.snap('T17-D') AS before \gset
SELECT is(pg_temp.err($$SELECT orders.review_sites('00000000-0000-0000-0000-0000000017dd',
                                                   '[{"domain": "d2.example.com", "status": "approved"}]')$$),
          'OR070: order "T17-D", group of client "T17 Alpha": 1 of 1 sites approved, 1 more would exceed the group''s link_count',
          'approving a second site of a full group: OR070');
SELECT is(pg_temp.snap('T17-D'), :'before', '... nothing changed');
CREATE FUNCTION pg_temp.skip_group() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$;
CREATE TRIGGER skip_group BEFORE UPDATE ON orders.order_groups FOR EACH ROW EXECUTE FUNCTION pg_temp.skip_group();
SELECT is(pg_temp.err($$SELECT orders.review_sites('00000000-0000-0000-0000-0000000017dd',
                                                   '[{"domain": "d1.example.com", "status": "rejected"}]')$$),
          '09000: the site counts of client group 00000000-0000-0000-0000-0000000017dd were not written: a trigger on orders.order_groups skipped it',
          'a DBA''s trigger that skips the counters'' write: the review is refused (09000)');
SELECT is(pg_temp.snap('T17-D'), :'before', '... nothing changed');
DROP TRIGGER skip_group ON orders.order_groups;
CREATE FUNCTION pg_temp.note_statement() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN INSERT INTO pg_temp.group_writes VALUES ('statement'); RETURN NULL; END$$;
CREATE TRIGGER note_statement AFTER UPDATE ON orders.order_groups FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.note_statement();
DELETE FROM group_writes;
SELECT is((SELECT suggested_count || '/' || approved_count || '/' || rejected_count || ' ' || group_status
             FROM orders.review_sites('00000000-0000-0000-0000-0000000017dd',
                                      '[{"domain": "d1.example.com", "status": "rejected"}]')), '1/0/1 reviewing',
          'with a DBA''s statement trigger on the groups: rejecting the approved site counts it and reopens the group');
SELECT is((SELECT string_agg(seen, ', ' ORDER BY seen) FROM group_writes),
          'AFTER ROW 1/0/1 reviewing, BEFORE ROW 1/0/1 reviewing, statement',
          '... by the counters'' UPDATE statement (its statement trigger fired)');
SELECT pg_temp.snap('T17-D') AS before \gset
SELECT is(pg_temp.err($$SELECT orders.review_sites('00000000-0000-0000-0000-0000000017dd',
                                                   '[{"domain": "d1.example.com", "status": "approved"},
                                                     {"domain": "d2.example.com", "status": "approved"}]')$$),
          'OR070: order "T17-D", group of client "T17 Alpha": 0 of 1 sites approved, 2 more would exceed the group''s link_count',
          '... which refuses approvals beyond link_count: OR070');
SELECT is(pg_temp.snap('T17-D'), :'before', '... nothing changed');
-- (0.33.0) the UPDATE's write skipped by a DBA's trigger: refused (09000),
-- as the direct write refuses it — a rejection was counted nowhere before
CREATE TRIGGER skip_group BEFORE UPDATE ON orders.order_groups FOR EACH ROW EXECUTE FUNCTION pg_temp.skip_group();
SELECT is(pg_temp.err($$SELECT orders.review_sites('00000000-0000-0000-0000-0000000017dd',
                                                   '[{"domain": "d2.example.com", "status": "rejected"}]')$$),
          '09000: the site counts of client group 00000000-0000-0000-0000-0000000017dd were not written: a trigger on orders.order_groups skipped it',
          '... whose write a DBA''s trigger skips: the review is refused (09000)');
SELECT is(pg_temp.snap('T17-D'), :'before', '... nothing changed');
DROP TRIGGER skip_group ON orders.order_groups;
DROP TRIGGER note_statement ON orders.order_groups;
-- a DBA's rule on the groups: the review's locks (lock_review) and the
-- counters are taken and written by SQL again, with the same outcome
CREATE RULE t17_note AS ON UPDATE TO orders.order_groups DO ALSO NOTIFY t17_groups;
SELECT is((orders.review_sites('00000000-0000-0000-0000-0000000017dd',
                               '[{"domain": "d2.example.com", "status": "approved"}]')).group_status, 'complete',
          'with a DBA''s rule on the groups (locks and counters by SQL): approving a site fills the group');
SELECT matches(pg_temp.snap('T17-D'), 'd1.example.com=rejected,d2.example.com=approved\+item', '... its item made');
SELECT pg_temp.snap('T17-A') AS before \gset
SELECT throws_ok($$SELECT orders.review_sites('00000000-0000-0000-0000-0000000017d2',
                   '[{"domain": "g.example.com", "status": "approved"}]')$$, 'OR073', NULL,
                 '... and a paid order still takes no new approved site (OR073)');
SELECT is(pg_temp.snap('T17-A'), :'before', '... nothing changed');
DROP RULE t17_note ON orders.order_groups;
DROP TRIGGER note_before ON orders.order_groups;
DROP TRIGGER note_after ON orders.order_groups;
SELECT orders.untrack_activity('orders.order_groups');

---------------------------------------------------------------------------
-- A site's item written without a statement (0.25.0 library, later): the
-- row, snapshot, price and subtotal the INSERT made; a DBA's AFTER INSERT
-- row trigger fires; a DBA's BEFORE INSERT trigger sends the item back to
-- the INSERT, which it may change
---------------------------------------------------------------------------
INSERT INTO orders.order_groups (id, order_id, client_id, link_count) VALUES
  ('00000000-0000-0000-0000-0000000017de', '00000000-0000-0000-0000-0000000017ad', '00000000-0000-0000-0000-0000000017c3', 9);
-- (0.39.0) prices that are no amount are refused when written
-- (site_price_check, below); these stand for sites written before it
ALTER TABLE orders.order_site_selections DISABLE TRIGGER site_price_check;
INSERT INTO orders.order_site_selections (order_group_id, domain, domain_id, metrics, anchor_text) VALUES
  ('00000000-0000-0000-0000-0000000017de', 'p1.example.com', '17171717-eeee-0000-0000-000000000001',
   '{"price": 10.555, "dr": 7}', 'anchor "one"'),
  ('00000000-0000-0000-0000-0000000017de', 'p2.example.com', NULL, '{"price": "12"}', NULL),
  ('00000000-0000-0000-0000-0000000017de', 'p3.example.com', NULL, '{"price": null}', NULL),
  ('00000000-0000-0000-0000-0000000017de', 'p4.example.com', NULL, '{"price": -5}', NULL),
  ('00000000-0000-0000-0000-0000000017de', 'p5.example.com', NULL, '{"price": {"eur": 4}}', NULL),
  ('00000000-0000-0000-0000-0000000017de', 'p6.example.com', NULL, '{"price": 3}', NULL);
ALTER TABLE orders.order_site_selections ENABLE TRIGGER site_price_check;
CREATE TEMP TABLE item_writes (seen text);
CREATE FUNCTION pg_temp.note_item() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN INSERT INTO pg_temp.item_writes VALUES (TG_WHEN || ' ' || NEW.name || ' ' || NEW.total); RETURN NEW; END$$;
CREATE TRIGGER note_item AFTER INSERT ON orders.order_items FOR EACH ROW EXECUTE FUNCTION pg_temp.note_item();
SELECT subtotal AS subtotal_before FROM orders.orders WHERE order_number = 'T17-D' \gset
SELECT is((orders.review_sites('00000000-0000-0000-0000-0000000017de',
                               '[{"domain": "p1.example.com", "status": "approved"}, {"domain": "p2.example.com", "status": "approved"},
                                 {"domain": "p3.example.com", "status": "approved"}, {"domain": "p5.example.com", "status": "approved"}]')).approved_count,
          4, 'four sites of the new group approved at once');
SELECT is((SELECT string_agg(i.item_type || ' ' || i.name || ' ' || i.quantity || ' ' || i.unit_price || ' ' || i.total
                             || ' ' || (i.sku IS NULL) || ' ' || (i.product_id IS NULL) || ' ' || (i.created_at = now()), ', ' ORDER BY i.name)
             FROM orders.order_items i JOIN orders.order_site_selections x ON x.order_item_id = i.id
            WHERE x.order_group_id = '00000000-0000-0000-0000-0000000017de'),
          'service p1.example.com 1 10.56 10.56 true true true, service p2.example.com 1 0.00 0.00 true true true, '
          || 'service p3.example.com 1 0.00 0.00 true true true, service p5.example.com 1 0.00 0.00 true true true',
          '... their items: a price rounded to the cent, a price that is not a JSON number (a string, null, an object) is 0');
SELECT is((SELECT count(*)::int FROM orders.order_items i JOIN orders.order_site_selections x ON x.order_item_id = i.id
            WHERE x.order_group_id = '00000000-0000-0000-0000-0000000017de'
              AND i.snapshot = jsonb_build_object('site_selection_id', x.id, 'order_group_id', x.order_group_id,
                                                  'domain', x.domain, 'domain_id', x.domain_id, 'metrics', x.metrics,
                                                  'target_page_url', x.target_page_url, 'anchor_text', x.anchor_text,
                                                  'approved_by', x.reviewed_by)), 4,
          '... each snapshot is jsonb_build_object of the site''s columns, NULLs as JSON null');
SELECT is((SELECT subtotal - :'subtotal_before'::numeric FROM orders.orders WHERE order_number = 'T17-D'), 10.56,
          '... the order''s subtotal moved by the items'' totals');
SELECT is((SELECT string_agg(seen, ', ' ORDER BY seen) FROM item_writes),
          'AFTER p1.example.com 10.56, AFTER p2.example.com 0.00, AFTER p3.example.com 0.00, AFTER p5.example.com 0.00',
          '... a DBA''s AFTER INSERT row trigger fired for each, the total computed');
SELECT pg_temp.snap('T17-D') AS before \gset
SELECT is(pg_temp.err($$SELECT orders.review_sites('00000000-0000-0000-0000-0000000017de',
                                                   '[{"domain": "p6.example.com", "status": "approved"},
                                                     {"domain": "p4.example.com", "status": "approved"}]')$$),
          '23514: value for domain orders.amount violates check constraint "amount_check"',
          'a negative metrics.price: the item''s unit price is refused (23514)');
SELECT is(pg_temp.snap('T17-D'), :'before', '... nothing changed (neither site, no item, the subtotal)');
CREATE FUNCTION pg_temp.sku_item() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN NEW.sku := 'SITE-' || NEW.name; RETURN NEW; END$$;
CREATE TRIGGER sku_item BEFORE INSERT ON orders.order_items FOR EACH ROW EXECUTE FUNCTION pg_temp.sku_item();
SELECT is((orders.review_sites('00000000-0000-0000-0000-0000000017de',
                               '[{"domain": "p6.example.com", "status": "approved"}]')).approved_count, 5,
          'with a DBA''s BEFORE INSERT trigger on the items: a site approved');
SELECT is((SELECT i.sku || ' ' || i.total FROM orders.order_items i JOIN orders.order_site_selections x ON x.order_item_id = i.id
            WHERE x.domain = 'p6.example.com'), 'SITE-p6.example.com 3.00',
          '... its item made by the INSERT, which the trigger changed');
SELECT is((SELECT subtotal - :'subtotal_before'::numeric FROM orders.orders WHERE order_number = 'T17-D'), 13.56,
          '... and the subtotal followed');
DROP TRIGGER sku_item ON orders.order_items;
DROP TRIGGER note_item ON orders.order_items;
-- bad numbers: a price too large for orders.amount (22003; 1e19), and an approved
-- count at the top of its type (22003 before the cap, as the UPDATE's
-- addition failed); nothing changes
ALTER TABLE orders.order_site_selections DISABLE TRIGGER site_price_check;   -- (0.39.0) a site written before it
UPDATE orders.order_site_selections SET metrics = '{"price": 1e19}' WHERE domain = 'p4.example.com';   -- (0.42.0) below 1e20
ALTER TABLE orders.order_site_selections ENABLE TRIGGER site_price_check;
SELECT pg_temp.snap('T17-D') AS before \gset
SELECT is(left(pg_temp.err($$SELECT orders.review_sites('00000000-0000-0000-0000-0000000017de',
                                                        '[{"domain": "p4.example.com", "status": "approved"}]')$$), 5),
          '22003', 'a metrics.price of 1e19: the item''s unit price is out of range (22003)');
SELECT is(pg_temp.snap('T17-D'), :'before', '... nothing changed');
UPDATE orders.order_groups SET link_count = 2147483647, approved_count = 2147483647
 WHERE id = '00000000-0000-0000-0000-0000000017de';
SELECT pg_temp.snap('T17-D') AS before \gset
SELECT is(pg_temp.err($$SELECT orders.review_sites('00000000-0000-0000-0000-0000000017de',
                                                   '[{"domain": "p4.example.com", "status": "rejected"}]')$$),
          'ok', 'rejecting a site of a group at the top of the counters'' type');
SELECT is(pg_temp.err($$SELECT orders.review_sites('00000000-0000-0000-0000-0000000017de',
                                                   '[{"domain": "p4.example.com", "status": "suggested"}]')$$),
          'ok', '... and setting it back');
UPDATE orders.order_site_selections SET metrics = '{"price": 1}' WHERE domain = 'p4.example.com';
SELECT pg_temp.snap('T17-D') AS before \gset
SELECT is(pg_temp.err($$SELECT orders.review_sites('00000000-0000-0000-0000-0000000017de',
                                                   '[{"domain": "p4.example.com", "status": "approved"}]')$$),
          '22003: integer out of range', 'approving one more when approved_count is 2147483647: 22003');
SELECT is(pg_temp.snap('T17-D'), :'before', '... nothing changed');
UPDATE orders.order_groups SET approved_count = 5, link_count = 9 WHERE id = '00000000-0000-0000-0000-0000000017de';

---------------------------------------------------------------------------
-- The order a review locked is checked once (0.25.0 library, later) —
-- unless the transaction itself writes the order meanwhile, or a DBA's
-- trigger could approve a site after site_items: then site_counts checks
-- it again (OR073), as before
---------------------------------------------------------------------------
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle, requires_client_review) VALUES
  ('00000000-0000-0000-0000-0000000017ae', 'T17-E', '00000000-0000-0000-0000-0000000017c1', 'review', false);
INSERT INTO orders.order_groups (id, order_id, client_id, link_count) VALUES
  ('00000000-0000-0000-0000-0000000017df', '00000000-0000-0000-0000-0000000017ae', '00000000-0000-0000-0000-0000000017c2', 1);
INSERT INTO orders.order_site_selections (order_group_id, domain, metrics) VALUES
  ('00000000-0000-0000-0000-0000000017df', 'e1.example.com', '{"price": 5}'),
  ('00000000-0000-0000-0000-0000000017df', 'e2.example.com', '{"price": 6}');
CREATE FUNCTION pg_temp.cancel_when_complete() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN
    IF NEW.group_status = 'complete' AND OLD.group_status <> 'complete' THEN
        PERFORM orders.transition(NEW.order_id, 'cancelled');
    END IF;
    RETURN NULL;
END$$;
CREATE TRIGGER cancel_when_complete AFTER UPDATE ON orders.order_groups
    FOR EACH ROW EXECUTE FUNCTION pg_temp.cancel_when_complete();
SELECT pg_temp.snap('T17-E') AS before \gset
SELECT is(pg_temp.err($$SELECT orders.review_sites('00000000-0000-0000-0000-0000000017df',
                                                   '[{"domain": "e1.example.com", "status": "approved"}]')$$),
          'OR073: order "T17-E" is cancelled: site e1.example.com cannot be approved any more',
          'a DBA''s trigger cancels the order when the review fills its group: the check made again refuses the approval (OR073)');
SELECT is(pg_temp.snap('T17-E'), :'before', '... nothing changed (not cancelled either)');
DROP TRIGGER cancel_when_complete ON orders.order_groups;
CREATE FUNCTION pg_temp.force_approval() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN
    IF NEW.client_notes = 'force' THEN
        NEW.status := 'approved';
    END IF;
    RETURN NEW;
END$$;
CREATE TRIGGER zz_force_approval BEFORE UPDATE ON orders.order_site_selections
    FOR EACH ROW EXECUTE FUNCTION pg_temp.force_approval();
UPDATE orders.order_groups SET link_count = 2 WHERE id = '00000000-0000-0000-0000-0000000017df';
SELECT orders.review_sites('00000000-0000-0000-0000-0000000017df', '[{"domain": "e1.example.com", "status": "approved"}]');
SELECT orders.transition('00000000-0000-0000-0000-0000000017ae', 'cancelled');
SELECT pg_temp.snap('T17-E') AS before \gset
-- the review locks the order (a site of it is approved), site_items sees
-- no change to judge (e1 stays approved, e2 is set aside), the DBA's
-- trigger then approves e2
SELECT is(pg_temp.err($$SELECT orders.review_sites('00000000-0000-0000-0000-0000000017df',
                                                   '[{"domain": "e1.example.com", "status": "approved"},
                                                     {"domain": "e2.example.com", "status": "alternate", "client_notes": "force"}]')$$),
          'OR073: order "T17-E" is cancelled: site e2.example.com cannot be approved any more',
          'a DBA''s trigger that approves a site after site_items looked at it: the check at the statement''s end refuses it (OR073)');
SELECT is(pg_temp.snap('T17-E'), :'before', '... nothing changed');
DROP TRIGGER zz_force_approval ON orders.order_site_selections;
-- the review locks its order before its first item (site_items, at the
-- first site that makes one), also when a site it leaves as it was comes
-- first: the item's foreign key then finds the order locked FOR NO KEY
-- UPDATE by its own transaction, and adds no KEY SHARE lock of its own
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle, requires_client_review) VALUES
  ('00000000-0000-0000-0000-0000000017b0', 'T17-G', '00000000-0000-0000-0000-0000000017c1', 'review', false);
INSERT INTO orders.order_groups (id, order_id, client_id, link_count) VALUES
  ('00000000-0000-0000-0000-0000000017fa', '00000000-0000-0000-0000-0000000017b0', '00000000-0000-0000-0000-0000000017c2', 3);
INSERT INTO orders.order_site_selections (id, order_group_id, domain, status, metrics) VALUES
  ('00000000-0000-0000-0000-0000000017f1', '00000000-0000-0000-0000-0000000017fa', 'g1.example.com', 'rejected', '{"price": 1}'),
  ('00000000-0000-0000-0000-0000000017f2', '00000000-0000-0000-0000-0000000017fa', 'g2.example.com', 'suggested', '{"price": 2}'),
  ('00000000-0000-0000-0000-0000000017f3', '00000000-0000-0000-0000-0000000017fa', 'g3.example.com', 'suggested', '{"price": 3}');
CREATE TEMP TABLE order_lock_seen (item text, modes text);
CREATE FUNCTION pg_temp.note_order_lock() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN
    INSERT INTO pg_temp.order_lock_seen
    SELECT NEW.name, coalesce((SELECT array_to_string(l.modes, '+') FROM public.pgrowlocks('orders.orders') l
                                WHERE l.locked_row = o.ctid), 'none')
      FROM orders.orders o WHERE o.id = NEW.order_id;
    RETURN NULL;
END$$;
CREATE TRIGGER note_order_lock AFTER INSERT ON orders.order_items FOR EACH ROW EXECUTE FUNCTION pg_temp.note_order_lock();
SELECT is((orders.review_sites('00000000-0000-0000-0000-0000000017fa',
                               '[{"selection_id": "00000000-0000-0000-0000-0000000017f1", "status": "rejected"},
                                 {"selection_id": "00000000-0000-0000-0000-0000000017f2", "status": "approved"},
                                 {"selection_id": "00000000-0000-0000-0000-0000000017f3", "status": "approved"}]')).approved_count, 2,
          'a review whose first site stays rejected, then two approvals');
SELECT is((SELECT string_agg(item || '=' || modes, ', ' ORDER BY item) FROM order_lock_seen),
          'g2.example.com=For No Key Update, g3.example.com=For No Key Update',
          '... each item found its order locked FOR NO KEY UPDATE by the review');
DROP TRIGGER note_order_lock ON orders.order_items;
-- a column a DBA made nullable: the review's locks are taken by SQL; an
-- order without a number is reviewed as before (the lock's NULLs kept)
ALTER TABLE orders.orders ALTER order_number DROP NOT NULL;
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle, requires_client_review) VALUES
  ('00000000-0000-0000-0000-0000000017af', 'T17-F', '00000000-0000-0000-0000-0000000017c1', 'review', false);
UPDATE orders.orders SET order_number = NULL WHERE id = '00000000-0000-0000-0000-0000000017af';
INSERT INTO orders.order_groups (id, order_id, client_id, link_count) VALUES
  ('00000000-0000-0000-0000-0000000017f9', '00000000-0000-0000-0000-0000000017af', '00000000-0000-0000-0000-0000000017c2', 1);
INSERT INTO orders.order_site_selections (order_group_id, domain, metrics) VALUES
  ('00000000-0000-0000-0000-0000000017f9', 'f1.example.com', '{"price": 4}');
SELECT is((orders.review_sites('00000000-0000-0000-0000-0000000017f9',
                               '[{"domain": "f1.example.com", "status": "approved"}]')).approved_count, 1,
          'an order whose number a DBA set to NULL (the column made nullable): a site approved');
SELECT is((SELECT subtotal::numeric FROM orders.orders WHERE id = '00000000-0000-0000-0000-0000000017af'), 4.00,
          '... its item and subtotal');

---------------------------------------------------------------------------
-- Everything counted stayed exact
---------------------------------------------------------------------------
SELECT is_empty($$SELECT * FROM orders.recount_site_counts()$$, 'in the end no group''s counters are wrong');
SELECT is((SELECT count(*)::int FROM orders.order_site_selections x
            WHERE (x.status = 'approved') <> (x.order_item_id IS NOT NULL)), 0,
          'in the end every approved site, and only those, has an item');
SELECT is((SELECT count(*)::int FROM orders.order_items i
            WHERE i.snapshot ? 'site_selection_id'
              AND NOT EXISTS (SELECT FROM orders.order_site_selections x WHERE x.order_item_id = i.id)), 0,
          'and no site item is left without its site');

-- (0.33.0) a SECURITY DEFINER function of a role that bypasses row level
-- security writes as that role: a customer calling it in an API request is
-- not judged as the customer (review) — the policies did not judge it either
RESET ROLE;
CREATE ROLE t17_support NOLOGIN BYPASSRLS;
GRANT USAGE ON SCHEMA orders TO t17_support;
GRANT SELECT, INSERT ON orders.order_requirements TO t17_support;
GRANT SELECT ON orders.orders TO t17_support;
CREATE FUNCTION public.t17_support_note(o uuid) RETURNS text LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog
AS $$ INSERT INTO orders.order_requirements (order_id, requirement_type, requirement_value)
      VALUES (o, 'support_note', '"ok"') RETURNING 'written' $$;
ALTER FUNCTION public.t17_support_note(uuid) OWNER TO t17_support;
GRANT EXECUTE ON FUNCTION public.t17_support_note(uuid) TO authenticated;
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle, paid_at) VALUES
  ('00000000-0000-0000-0000-0000000017b9', 'T17-P', '00000000-0000-0000-0000-0000000017c4', 'review', now() - interval '3 days');
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "17171717-0000-0000-0000-000000000004", "role": "authenticated"}', true);
SELECT is(public.t17_support_note('00000000-0000-0000-0000-0000000017b9'), 'written',
          'a support function of a role that bypasses row level security writes a requirement of a paid order for the customer');
SELECT throws_ok($$INSERT INTO orders.order_requirements (order_id, requirement_type, requirement_value)
                   VALUES ('00000000-0000-0000-0000-0000000017b9', 'niche', '"x"')$$, '42501', NULL,
                 '... the customer itself may not (the policy refuses)');
RESET ROLE;

-- (0.34.0) a site approved by the statement that makes its group, of a
-- paid order: the row trigger cannot see the group yet, the statement's
-- re-check of the orders must (it read the groups with the statement's
-- snapshot in a first cut and let the approval in, without an item)
SELECT throws_ok($$WITH g AS (INSERT INTO orders.order_groups (order_id, client_id, link_count)
                             VALUES ('00000000-0000-0000-0000-0000000017b9', '00000000-0000-0000-0000-0000000017c4', 3) RETURNING id)
                   INSERT INTO orders.order_site_selections (order_group_id, domain, status)
                   SELECT id, 'cte-paid.example', 'approved' FROM g$$,
                 'OR073', 'order "T17-P" is paid: site cte-paid.example cannot be approved any more',
                 'a group and an approved site of a paid order in one statement: OR073');
SELECT is((SELECT count(*)::int FROM orders.order_groups WHERE order_id = '00000000-0000-0000-0000-0000000017b9')
          + (SELECT count(*)::int FROM orders.order_site_selections WHERE domain = 'cte-paid.example'), 0,
          '... nothing written: no group, no site');

-- ... and of an unpaid order: the site's item is made (the row trigger read
-- the group with the statement's snapshot, did not see it, and left the
-- approved site without its item)
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle) VALUES
  ('00000000-0000-0000-0000-0000000017ba', 'T17-CTE', '00000000-0000-0000-0000-0000000017c4', 'review');
WITH g AS (INSERT INTO orders.order_groups (order_id, client_id, link_count)
           VALUES ('00000000-0000-0000-0000-0000000017ba', '00000000-0000-0000-0000-0000000017c4', 3) RETURNING id)
INSERT INTO orders.order_site_selections (order_group_id, domain, status, metrics)
SELECT id, 'cte-open.example', 'approved', '{"price": 40}' FROM g;
SELECT is((SELECT count(*)::int FROM orders.order_items i JOIN orders.order_site_selections x ON x.order_item_id = i.id
            WHERE x.domain = 'cte-open.example' AND i.order_id = '00000000-0000-0000-0000-0000000017ba'), 1,
          'a group and an approved site of an open order in one statement: the site''s item is made');
SELECT is((SELECT subtotal || ' ' || (SELECT approved_count FROM orders.order_groups WHERE order_id = o.id)
             FROM orders.orders o WHERE o.id = '00000000-0000-0000-0000-0000000017ba'), '40.00 1',
          '... the subtotal and the group''s counter follow');

-- (0.34.0) a key column of the sites that a DBA renamed: the triggers that
-- read it as a uuid refuse the statement (55000), nothing changes (an
-- internal error before; a column of that name and another type was read
-- as a uuid)
SELECT x.id AS key_site FROM orders.order_site_selections x WHERE x.status = 'suggested' LIMIT 1 \gset
SAVEPOINT renamed;
ALTER TABLE orders.order_site_selections RENAME COLUMN order_group_id TO group_ref;
SELECT throws_ok(format($$UPDATE orders.order_site_selections SET status = 'rejected' WHERE id = %L$$, :'key_site'),
                 '55000', 'column "order_group_id" of order_site_selections is missing',
                 'a renamed key column of the sites: their counters refuse the statement (55000)');
ROLLBACK TO SAVEPOINT renamed;
SAVEPOINT retyped;
ALTER TABLE orders.order_requirements ADD COLUMN order_ref integer;
ALTER TABLE orders.order_requirements RENAME COLUMN order_id TO order_uuid;
ALTER TABLE orders.order_requirements RENAME COLUMN order_ref TO order_id;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "17171717-0000-0000-0000-000000000004", "role": "authenticated"}', true);
SELECT throws_ok($$UPDATE orders.order_requirements SET is_mandatory = NOT is_mandatory$$,
                 '55000', 'column "order_id" of order_requirements is not of type uuid',
                 '... a customer''s re-check of requirements, whose order_id is an integer now: 55000, not a uuid read of an integer');
RESET ROLE;
ROLLBACK TO SAVEPOINT retyped;
SAVEPOINT item_retyped;
ALTER TABLE orders.order_site_selections ADD COLUMN item_ref bigint;
ALTER TABLE orders.order_site_selections RENAME COLUMN order_item_id TO order_item_uuid;
ALTER TABLE orders.order_site_selections RENAME COLUMN item_ref TO order_item_id;
SELECT throws_ok(format($$UPDATE orders.order_site_selections SET status = 'approved' WHERE id = %L$$, :'key_site'),
                 '55000', 'column "order_item_id" of order_site_selections is not of type uuid',
                 '... a sites'' order_item_id that is a bigint now: 55000 (a pointer was stored in it, then the backend crashed)');
ROLLBACK TO SAVEPOINT item_retyped;
SELECT is((SELECT status FROM orders.order_site_selections WHERE id = :'key_site'), 'suggested', '... nothing changed');

-- (0.35.0) an approved site inserted where its group and domain exist
-- makes no item (a PostgREST upsert made one for the proposed row, never
-- inserted: its price in the subtotal); the conflict's UPDATE makes the
-- item of the row it approves, once
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle) VALUES
  ('00000000-0000-0000-0000-0000000017d1', 'T17-UPS-1', '00000000-0000-0000-0000-0000000017c4', 'review'),
  ('00000000-0000-0000-0000-0000000017d2', 'T17-UPS-2', '00000000-0000-0000-0000-0000000017c4', 'review');
INSERT INTO orders.order_groups (id, order_id, client_id, link_count) VALUES
  ('00000000-0000-0000-0000-0000000017e1', '00000000-0000-0000-0000-0000000017d1', '00000000-0000-0000-0000-0000000017c4', 3),
  ('00000000-0000-0000-0000-0000000017e2', '00000000-0000-0000-0000-0000000017d2', '00000000-0000-0000-0000-0000000017c4', 3);
INSERT INTO orders.order_site_selections (order_group_id, domain, metrics)
VALUES ('00000000-0000-0000-0000-0000000017e1', 'ups.example', '{"price": 7}');
CREATE FUNCTION pg_temp.ups() RETURNS text LANGUAGE sql AS $$
    SELECT (SELECT count(*) FROM orders.order_items WHERE order_id = o.id) || ' ' || o.subtotal || ' '
           || (SELECT approved_count FROM orders.order_groups WHERE id = '00000000-0000-0000-0000-0000000017e1')
      FROM orders.orders o WHERE o.id = '00000000-0000-0000-0000-0000000017d1' $$;
INSERT INTO orders.order_site_selections (order_group_id, domain, status, metrics)
VALUES ('00000000-0000-0000-0000-0000000017e1', 'ups.example', 'approved', '{"price": 9}') ON CONFLICT DO NOTHING;
SELECT is(pg_temp.ups(), '0 0.00 0', 'an approved site upserted ON CONFLICT DO NOTHING over an existing one: no item, no subtotal');
INSERT INTO orders.order_site_selections (order_group_id, domain, status, metrics)
VALUES ('00000000-0000-0000-0000-0000000017e1', 'ups.example', 'approved', '{"price": 5}')
ON CONFLICT (order_group_id, domain) DO UPDATE SET status = excluded.status, metrics = excluded.metrics;
SELECT is(pg_temp.ups(), '1 5.00 1', '... ON CONFLICT DO UPDATE: one item (the updated row''s), at its price');
-- (0.36.0) an inserted approved site's item is made once the row is
-- inserted ("Items_of_inserted_sites"); disabled by a DBA, site_items makes
-- it at once, as 0.35.0 did — either way linked and counted once
SAVEPOINT deferred_item;
INSERT INTO orders.order_site_selections (order_group_id, domain, status, metrics)
VALUES ('00000000-0000-0000-0000-0000000017e1', 'ins.example', 'approved', '{"price": 2}');
SELECT is(pg_temp.ups() || ' ' || (SELECT i.snapshot ->> 'domain' FROM orders.order_site_selections x
                                     JOIN orders.order_items i ON i.id = x.order_item_id WHERE x.domain = 'ins.example'),
          '2 7.00 2 ins.example', 'an inserted approved site: its item made after the insert, linked, its snapshot the stored row');
ROLLBACK TO SAVEPOINT deferred_item;
ALTER TABLE orders.order_site_selections DISABLE TRIGGER "Items_of_inserted_sites";
INSERT INTO orders.order_site_selections (order_group_id, domain, status, metrics)
VALUES ('00000000-0000-0000-0000-0000000017e1', 'ins.example', 'approved', '{"price": 2}');
SELECT is(pg_temp.ups() || ' ' || (SELECT (order_item_id IS NOT NULL)::text FROM orders.order_site_selections WHERE domain = 'ins.example'),
          '2 7.00 2 true', '... with the trigger disabled, made by site_items at once');
ROLLBACK TO SAVEPOINT deferred_item;
ALTER TABLE orders.order_site_selections ENABLE TRIGGER "Items_of_inserted_sites";
-- ... an upsert over an existing site names no item and judges no order:
-- a paid order's approved site re-sent, and EXCLUDED.order_item_id copied
UPDATE orders.orders SET paid_at = now() WHERE id = '00000000-0000-0000-0000-0000000017d1';
SELECT lives_ok($$INSERT INTO orders.order_site_selections (order_group_id, domain, status, metrics, anchor_text)
                  VALUES ('00000000-0000-0000-0000-0000000017e1', 'ups.example', 'approved', '{"price": 5}', 'hi')
                  ON CONFLICT (order_group_id, domain) DO UPDATE SET anchor_text = excluded.anchor_text$$,
                '... an approved site of a paid order re-sent by an upsert: no OR073');
ROLLBACK TO SAVEPOINT deferred_item;
INSERT INTO orders.order_site_selections (order_group_id, domain, metrics)
VALUES ('00000000-0000-0000-0000-0000000017e1', 'exc.example', '{"price": 3}');
INSERT INTO orders.order_site_selections (order_group_id, domain, status, metrics, order_item_id)
VALUES ('00000000-0000-0000-0000-0000000017e1', 'exc.example', 'approved', '{"price": 3}', NULL)
ON CONFLICT (order_group_id, domain) DO UPDATE
SET status = excluded.status, metrics = excluded.metrics, order_item_id = excluded.order_item_id;
SELECT is(pg_temp.ups(), '2 8.00 2', '... one copying EXCLUDED.order_item_id approves the existing site with its item');
ROLLBACK TO SAVEPOINT deferred_item;
-- (0.35.0) a site stays with its order (OR074), as its group does: moved
-- to another order's group, an approved site left its item behind
SELECT throws_ok($$UPDATE orders.order_site_selections SET order_group_id = '00000000-0000-0000-0000-0000000017e2'
                    WHERE domain = 'ups.example'$$, 'OR074', NULL,
                 'a site moved to a group of another order: OR074');
SELECT is(pg_temp.ups() || ' ' || (SELECT order_group_id FROM orders.order_site_selections WHERE domain = 'ups.example'),
          '1 5.00 1 00000000-0000-0000-0000-0000000017e1', '... nothing changed');
SELECT throws_ok($$UPDATE orders.order_site_selections SET target_page_url = repeat('x', 2049) WHERE domain = 'ups.example'$$,
                 '23514', NULL, '(0.35.0) a target page URL longer than 2,048 characters: 23514');

-- (0.35.0) an approved site's item goes with the site's approval (OR078),
-- for the owner too; once the order is paid its price and quantity stay
-- (OR073); taking the site back takes the item (site_counts passes)
SELECT id AS ups_item FROM orders.order_items WHERE order_id = '00000000-0000-0000-0000-0000000017d1' \gset
SELECT throws_ok(format($$DELETE FROM orders.order_items WHERE id = %L$$, :'ups_item'), 'OR078', NULL,
                 'deleting an approved site''s item: OR078');
SELECT throws_ok(format($$UPDATE orders.order_items SET order_id = '00000000-0000-0000-0000-0000000017d2' WHERE id = %L$$, :'ups_item'),
                 'OR078', NULL, '... moving it to another order: OR078');
SELECT lives_ok(format($$UPDATE orders.order_items SET unit_price = 6 WHERE id = %L$$, :'ups_item'),
                '... its price changed while the order is open: allowed');
UPDATE orders.orders SET paid_at = now() WHERE id = '00000000-0000-0000-0000-0000000017d1';
SELECT throws_ok(format($$UPDATE orders.order_items SET unit_price = 0 WHERE id = %L$$, :'ups_item'), 'OR073', NULL,
                 '... once the order is paid: its price stays (OR073)');
SELECT is(pg_temp.ups(), '1 6.00 1', '... nothing else changed: the item, the subtotal, the approval');
UPDATE orders.orders SET paid_at = NULL WHERE id = '00000000-0000-0000-0000-0000000017d1';
UPDATE orders.order_site_selections SET status = 'rejected' WHERE domain = 'ups.example';
SELECT is(pg_temp.ups(), '0 0.00 0', '... taking the site back takes its item (the guard lets site_counts delete it)');

-- (0.35.0, review) the guard is not emptied first: a change of the
-- snapshot's site is OR078 (staff emptied it, then deleted the item); a
-- DBA's trigger fired by site_counts' own deletion of a taken-back site's
-- item gets no pass for another item (OR078)
INSERT INTO orders.order_site_selections (order_group_id, domain, status, metrics) VALUES
  ('00000000-0000-0000-0000-0000000017e1', 'guard-a.example', 'approved', '{"price": 3}'),
  ('00000000-0000-0000-0000-0000000017e1', 'guard-b.example', 'approved', '{"price": 4}');
SELECT throws_ok($$UPDATE orders.order_items SET snapshot = '{}' WHERE name = 'guard-b.example'$$, 'OR078', NULL,
                 'emptying an approved site''s item''s snapshot: OR078');
-- (0.37.0 library) a snapshot that is no object names no site: the guard
-- read an array's elements as an object's pairs, past its end (signal 11)
SELECT throws_ok($$UPDATE orders.order_items
                     SET snapshot = (SELECT jsonb_agg(NULL::int) FROM generate_series(1, 100000)) || '["site_selection_id"]'
                   WHERE name = 'guard-b.example'$$, 'OR078', NULL,
                 '... turning it into a long array: OR078 (no crash)');
-- (0.37.0 library) a site's group set to NULL with its status: its NOT NULL
-- refuses it (site_items dereferenced the NULL: signal 11; site_stays
-- raised 22004 on a NULL detail)
SELECT throws_ok($$UPDATE orders.order_site_selections SET order_group_id = NULL, status = 'suggested' WHERE domain = 'guard-b.example'$$,
                 '23502', NULL, 'a site''s group set to NULL as it is taken back: 23502 (no crash)');
SELECT throws_ok($$UPDATE orders.order_site_selections SET order_group_id = NULL WHERE domain = 'guard-b.example'$$,
                 '23502', NULL, '... its group alone: 23502');
CREATE FUNCTION pg_temp.t17_sweep() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN DELETE FROM orders.order_items WHERE name = 'guard-b.example'; RETURN OLD; END$$;
CREATE TRIGGER t17_sweep AFTER DELETE ON orders.order_items FOR EACH ROW
    WHEN (OLD.name = 'guard-a.example') EXECUTE FUNCTION pg_temp.t17_sweep();
SELECT throws_ok($$UPDATE orders.order_site_selections SET status = 'rejected' WHERE domain = 'guard-a.example'$$, 'OR078', NULL,
                 '... a DBA''s trigger fired by the item''s deletion deleting another site''s item: OR078');
DROP TRIGGER t17_sweep ON orders.order_items;
SELECT is((SELECT string_agg(name, ' ' ORDER BY name) FROM orders.order_items WHERE order_id = '00000000-0000-0000-0000-0000000017d1'),
          'guard-a.example guard-b.example', '... nothing changed: both items there');

-- (0.38.0) a link inserted without its customer (a DBA's script, a restore
-- of links dumped before 0.38.0) is for its order's customer of the moment
INSERT INTO orders.order_share_tokens (order_id, token_hash, expires_at, allowed_actions, created_by)
SELECT o.id, sha256(convert_to('t17-dba-token', 'UTF8')), now() + interval '1 day', '{view}', current_user
  FROM orders.orders o WHERE o.order_number = 'T17-S';
SELECT is(orders.shared_order('t17-dba-token') ->> 'order_number', 'T17-S', 'a DBA''s link shows its order');

-- (0.39.0) the group still being analysed deleted: the order's other
-- groups are analysed, so it moves on to reviewing as complete_analysis
-- would have; an order left without groups, or one whose deleted group was
-- analysed, stays
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle, requires_client_review) VALUES
  ('00000000-0000-0000-0000-0000000017bb', 'T17-AG', '00000000-0000-0000-0000-0000000017c1', 'review', true),
  ('00000000-0000-0000-0000-0000000017bc', 'T17-AH', '00000000-0000-0000-0000-0000000017c1', 'review', true);
INSERT INTO orders.order_groups (id, order_id, client_id, link_count) VALUES
  ('00000000-0000-0000-0000-0000000017eb', '00000000-0000-0000-0000-0000000017bb', '00000000-0000-0000-0000-0000000017c2', 1),
  ('00000000-0000-0000-0000-0000000017ec', '00000000-0000-0000-0000-0000000017bb', '00000000-0000-0000-0000-0000000017c3', 1),
  ('00000000-0000-0000-0000-0000000017ed', '00000000-0000-0000-0000-0000000017bc', '00000000-0000-0000-0000-0000000017c2', 1);
SELECT is(ARRAY[(orders.transition('00000000-0000-0000-0000-0000000017bb', 'analyzing')).status,
                (orders.transition('00000000-0000-0000-0000-0000000017bc', 'analyzing')).status,
                (orders.complete_analysis('00000000-0000-0000-0000-0000000017eb', '[{"domain": "g.example"}]')).group_status],
          '{analyzing,analyzing,reviewing}', 'two orders analysed, one group of T17-AG complete');
SELECT is((SELECT status FROM orders.orders WHERE order_number = 'T17-AG'), 'analyzing', '... T17-AG waits for its second group');
SELECT pg_temp.snap('T17-AH') AS before \gset
DELETE FROM orders.order_groups WHERE id = '00000000-0000-0000-0000-0000000017ed';
SELECT is(pg_temp.snap('T17-AH'), regexp_replace(:'before', ' \| [^|]*/1:pending', ''),
          'the only group of an order deleted: the order stays analyzing (no group left to review)');
DELETE FROM orders.order_groups WHERE id = '00000000-0000-0000-0000-0000000017ec';
SELECT is((SELECT o.status || ' / ' || h.old_status || ' -> ' || h.new_status || ' by ' || h.changed_by || ': ' || h.notes
             FROM orders.orders o JOIN orders.order_history h ON h.order_id = o.id
            WHERE o.order_number = 'T17-AG' AND h.new_status = 'reviewing'),
          'reviewing / analyzing -> reviewing by ' || orders.current_actor() || ': analysis complete',
          'the group still being analysed deleted: the order moves to reviewing, with history');
-- ... and another lifecycle's "analyzing", which has no edge to
-- "reviewing", is left alone (the move failed every such DELETE, OR003)
INSERT INTO orders.lifecycles (name, initial_status) VALUES ('t17_audit', 'new');
INSERT INTO orders.lifecycle_states (lifecycle, status, category, position) VALUES
  ('t17_audit', 'new', 'open', 1), ('t17_audit', 'analyzing', 'open', 2), ('t17_audit', 'done', 'fulfilled', 3);
INSERT INTO orders.lifecycle_transitions (lifecycle, from_status, to_status) VALUES
  ('t17_audit', 'new', 'analyzing'), ('t17_audit', 'analyzing', 'done');
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle) VALUES
  ('00000000-0000-0000-0000-0000000017bd', 'T17-AUD', '00000000-0000-0000-0000-0000000017c1', 't17_audit');
INSERT INTO orders.order_groups (id, order_id, client_id, link_count, analysis_completed_at) VALUES
  ('00000000-0000-0000-0000-0000000017ef', '00000000-0000-0000-0000-0000000017bd', '00000000-0000-0000-0000-0000000017c2', 1, now()),
  ('00000000-0000-0000-0000-0000000017f0', '00000000-0000-0000-0000-0000000017bd', '00000000-0000-0000-0000-0000000017c3', 1, NULL);
SELECT orders.transition('00000000-0000-0000-0000-0000000017bd', 'analyzing');
SELECT is(pg_temp.err($$DELETE FROM orders.order_groups WHERE id = '00000000-0000-0000-0000-0000000017f0'$$)
          || ' ' || (SELECT status FROM orders.orders WHERE order_number = 'T17-AUD'),
          'ok analyzing', '... another lifecycle''s "analyzing" without that edge: the group goes, the order stays');
-- ... and a writer who may delete groups but not write orders deletes
-- them as before (the move needs UPDATE on orders: it is not made)
CREATE ROLE t17_cleaner NOLOGIN BYPASSRLS;
GRANT USAGE ON SCHEMA orders TO t17_cleaner;
GRANT SELECT, DELETE ON orders.order_groups TO t17_cleaner;
GRANT SELECT ON orders.orders TO t17_cleaner;
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle) VALUES
  ('00000000-0000-0000-0000-0000000017be', 'T17-CLN', '00000000-0000-0000-0000-0000000017c1', 'review');
INSERT INTO orders.order_groups (id, order_id, client_id, link_count) VALUES
  ('00000000-0000-0000-0000-0000000017f4', '00000000-0000-0000-0000-0000000017be', '00000000-0000-0000-0000-0000000017c2', 1),
  ('00000000-0000-0000-0000-0000000017f5', '00000000-0000-0000-0000-0000000017be', '00000000-0000-0000-0000-0000000017c3', 1);
SELECT orders.transition('00000000-0000-0000-0000-0000000017be', 'analyzing');
SELECT orders.complete_analysis('00000000-0000-0000-0000-0000000017f4', '[{"domain": "cln.example"}]');
SET LOCAL ROLE t17_cleaner;
SELECT is(pg_temp.err($$DELETE FROM orders.order_groups WHERE id = '00000000-0000-0000-0000-0000000017f5'$$), 'ok',
          '... a role with DELETE on groups but no UPDATE on orders deletes the last pending group');
RESET ROLE;
SELECT is((SELECT status FROM orders.orders WHERE order_number = 'T17-CLN'), 'analyzing', '... and the order stays (staff move it)');
SELECT pg_temp.snap('T17-AG') AS before \gset
INSERT INTO orders.order_groups (id, order_id, client_id, link_count) VALUES
  ('00000000-0000-0000-0000-0000000017ee', '00000000-0000-0000-0000-0000000017bb', '00000000-0000-0000-0000-0000000017c3', 1);
DELETE FROM orders.order_groups WHERE id = '00000000-0000-0000-0000-0000000017ee';
SELECT is(pg_temp.snap('T17-AG'), :'before', '... a group deleted from an order in review changes nothing else');

-- (0.39.0) a site's price is an amount for every writer: text made the
-- approved site's item free, a huge or negative one failed the approval
SELECT pg_temp.snap('T17-AG') AS before \gset
SELECT is(ARRAY[pg_temp.err($$UPDATE orders.order_site_selections SET metrics = '{"price": "12.50"}' WHERE domain = 'g.example'$$),
                pg_temp.err($$UPDATE orders.order_site_selections SET metrics = '{"price": 1e20}' WHERE domain = 'g.example'$$),
                pg_temp.err($$UPDATE orders.order_site_selections SET metrics = '{"price": -5}' WHERE domain = 'g.example'$$),
                pg_temp.err($$INSERT INTO orders.order_site_selections (order_group_id, domain, metrics)
                              VALUES ('00000000-0000-0000-0000-0000000017eb', 'h.example', '{"price": [1]}')$$),
                pg_temp.err($$UPDATE orders.order_site_selections SET metrics = '{"price": 0.004}' WHERE domain = 'g.example'$$)],
          ARRAY['22023: site g.example: metrics.price "12.50" is not an amount',
                '22023: site g.example: metrics.price 100000000000000000000 is not an amount',
                '22023: site g.example: metrics.price -5 is not an amount',
                '22023: site h.example: metrics.price [1] is not an amount',
                '22023: site g.example: metrics.price 0.004 is not an amount'],
          'a price as text, too large, negative, an array or (0.43.0) in fractions of a cent (an approval made it a free item): 22023 naming the site, for staff and DBAs too');
SELECT is(pg_temp.snap('T17-AG'), :'before', '... nothing changed');
SELECT lives_ok($$UPDATE orders.order_site_selections SET metrics = '{"price": 12.5, "dr": 3}' WHERE domain = 'g.example';
                  UPDATE orders.order_site_selections SET metrics = '{"price": 12.500}' WHERE domain = 'g.example';
                  UPDATE orders.order_site_selections SET metrics = '{"price": null}' WHERE domain = 'g.example';
                  UPDATE orders.order_site_selections SET metrics = '{}' WHERE domain = 'g.example'$$,
                '... an amount, a null price or none pass');

SELECT * FROM finish();
ROLLBACK;
