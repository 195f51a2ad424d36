-- The scale-out demo (bash test/quickstart.sh --scale-out), run in the
-- proxy's database: the same API as one database, over two nodes.
\pset footer off
\echo
\echo '== the proxy checks that node k serves partition k'
SELECT orders_proxy.check_nodes() AS nodes;

\echo '== recent_orders: both nodes asked, merged by the proxy (node = the partition in the id)'
SELECT order_number, status, total_amount, orders_proxy.partition_of(id) AS node
  FROM orders.recent_orders();

\echo '== a transition of an order of node 1, routed there by its id'
SELECT order_number, status, orders_proxy.partition_of(id) AS node
  FROM orders.transition((SELECT r.id FROM orders.recent_orders(max_rows => 1000) r
                           WHERE orders_proxy.partition_of(r.id) = 1 AND r.status = 'new'
                           ORDER BY r.order_number LIMIT 1),
                         'confirmed', 'confirmed through the proxy');

\echo '== slots of one service on both nodes; a hold is made on the slot''s node'
SELECT capacity_id, starts_at, remaining, orders_proxy.partition_of(capacity_id) AS node
  FROM orders.available_slots('5e000000-0000-0000-0000-000000000001', now(), now() + interval '1 day');
SELECT orders_proxy.partition_of(orders.reserve_time_slot(
           (SELECT s.capacity_id FROM orders.available_slots('5e000000-0000-0000-0000-000000000001', now(), now() + interval '1 day') s
             WHERE orders_proxy.partition_of(s.capacity_id) = 0 LIMIT 1))) AS hold_made_on_node;

\echo '== stock: each node holds its own share; 6 lamps received on node 0, then 2 moved to node 1 (each once)'
SELECT stock_after AS node_0_after_receiving
  FROM orders.move_stock(orders_proxy.new_id(0), '5e000000-0000-0000-0000-0000000000c1', 6, reason => 'delivery');
SELECT * FROM orders_proxy.transfer_stock(gen_random_uuid(), '5e000000-0000-0000-0000-0000000000c1', 2, 0, 1);
SELECT partition AS node, stock_quantity FROM orders_proxy.stock_levels('5e000000-0000-0000-0000-0000000000c1');

\echo '== todays_order_summary (seed 004''s dashboard): the figures of both nodes together'
SELECT * FROM orders.todays_order_summary;
