-- Every edge of every built-in lifecycle is accepted, and every other pair
-- of statuses is refused with OR001, changing nothing.
BEGIN;
SELECT no_plan();

INSERT INTO orders.customers (id, full_name) VALUES ('00000000-0000-0000-0000-00000000c0c0', 'Graph');

-- one order per (lifecycle, from, to) pair, inserted directly in "from" (the
-- table owner may insert in any status: imports, restores)
CREATE TEMP TABLE pairs AS
SELECT f.lifecycle, f.status AS from_status, t.status AS to_status,
       EXISTS (SELECT 1 FROM orders.lifecycle_transitions e
                WHERE e.lifecycle = f.lifecycle AND e.from_status = f.status
                  AND e.to_status = t.status) AS is_edge,
       gen_random_uuid() AS order_id
  FROM orders.lifecycle_states f
  JOIN orders.lifecycle_states t ON t.lifecycle = f.lifecycle AND t.status <> f.status
 WHERE f.builtin;

INSERT INTO orders.orders (id, order_number, customer_id, lifecycle, status)
SELECT order_id, 'G-' || lifecycle || '-' || from_status || '-' || to_status,
       '00000000-0000-0000-0000-00000000c0c0', lifecycle, from_status
  FROM pairs;
-- an agency order leaves configuring only with a client group (gate client_groups)
INSERT INTO orders.order_groups (order_id, client_id, link_count)
SELECT order_id, '00000000-0000-0000-0000-00000000c0c0', 1 FROM pairs WHERE lifecycle = 'review';

SELECT cmp_ok((SELECT count(*)::int FROM pairs WHERE is_edge), '=',
              (SELECT count(*)::int FROM orders.lifecycle_transitions WHERE builtin),
              'every built-in edge is under test');

-- refused pairs: OR001, by UPDATE and by orders.transition()
SELECT throws_ok(format('UPDATE orders.orders SET status = %L WHERE id = %L', to_status, order_id),
                 'OR001', NULL,
                 format('%s: %s -> %s refused (UPDATE)', lifecycle, from_status, to_status))
  FROM pairs WHERE NOT is_edge ORDER BY lifecycle, from_status, to_status;
SELECT throws_ok(format('SELECT orders.transition(%L, %L)', order_id, to_status),
                 'OR001', NULL,
                 format('%s: %s -> %s refused (transition)', lifecycle, from_status, to_status))
  FROM pairs WHERE NOT is_edge ORDER BY lifecycle, from_status, to_status;
SELECT is((SELECT count(*)::int FROM pairs p JOIN orders.orders o ON o.id = p.order_id
            WHERE NOT p.is_edge AND o.status <> p.from_status), 0,
          'refused changes left every status as it was');

-- accepted pairs: half by UPDATE, half by orders.transition()
SELECT lives_ok(format(CASE WHEN row_number() OVER () % 2 = 0
                            THEN 'UPDATE orders.orders SET status = %2$L WHERE id = %1$L'
                            ELSE 'SELECT orders.transition(%1$L, %2$L)' END, order_id, to_status),
                format('%s: %s -> %s accepted', lifecycle, from_status, to_status))
  FROM pairs WHERE is_edge ORDER BY lifecycle, from_status, to_status;
SELECT is((SELECT count(*)::int FROM pairs p JOIN orders.orders o ON o.id = p.order_id
            WHERE p.is_edge AND o.status = p.to_status), 
          (SELECT count(*)::int FROM pairs WHERE is_edge),
          'every accepted change is stored');

-- history: exactly one row per accepted change, none for refusals, and
-- never an edge that is not in the graph
SELECT is((SELECT count(*)::int FROM orders.order_history h JOIN pairs p ON p.order_id = h.order_id),
          (SELECT count(*)::int FROM pairs WHERE is_edge),
          'one history row per accepted change');
SELECT is((SELECT count(*)::int FROM orders.order_history h
             JOIN orders.orders o ON o.id = h.order_id
            WHERE NOT EXISTS (SELECT 1 FROM orders.lifecycle_transitions e
                               WHERE e.lifecycle = o.lifecycle AND e.from_status = h.old_status
                                 AND e.to_status = h.new_status)), 0,
          'history holds no edge outside the graph');

-- stamps: each edge with a stamp column set it to now()
SELECT ok((SELECT bool_and((to_jsonb(o) ->> e.stamp_column)::timestamptz = now())
             FROM pairs p JOIN orders.orders o ON o.id = p.order_id
             JOIN orders.lifecycle_transitions e
               ON e.lifecycle = p.lifecycle AND e.from_status = p.from_status AND e.to_status = p.to_status
            WHERE p.is_edge AND e.stamp_column IS NOT NULL),
          'every stamping edge set its column to the transaction time');

-- (0.38.0) the graph view shows who takes an edge in an API request and its gate
SELECT is((SELECT allowed_staff::text || ' ' || gate FROM orders.lifecycle_graph
            WHERE lifecycle = 'review' AND from_status = 'payment_pending' AND to_status = 'in_progress'),
          '{admin,manager} client_review_kept', 'lifecycle_graph shows allowed_staff and gate');
SELECT is((SELECT count(*)::int FROM orders.lifecycle_graph g
             JOIN orders.lifecycle_transitions t USING (lifecycle, from_status, to_status)
            WHERE g.allowed_staff IS NOT DISTINCT FROM t.allowed_staff AND g.gate IS NOT DISTINCT FROM t.gate),
          (SELECT count(*)::int FROM orders.lifecycle_transitions), '... for every edge');

SELECT * FROM finish();
ROLLBACK;
