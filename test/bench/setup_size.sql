-- Benchmark fixtures for test/bench/size.sh: bench.fill(orders, customers,
-- campaigns) fills a fresh database with that many orders and customers
-- (about 10 orders per customer at either size), one history row per order,
-- and 50 approved leads per campaign.  The orders the clients work on are
-- the same ids at every size:
--   1 .. 8,000        lifecycle bench (a <-> b): status changes
--   8,001 .. 16,000   cod, delivered, collected: payment changes
--   16,001 .. 17,000  campaigns (active): lead inserts
-- then more campaigns, then cod orders of every kind up to the total.
-- Order n belongs to customer ((n - 1) % customers) + 1.  Loaded without
-- the extension's triggers (session_replication_role = replica: a restore),
-- the counters set as the extension's repair functions count them (size.sh
-- checks that with them, for every customer and campaign the clients touch).
-- Ids: customers 5c000000-0000-0000-0000-<n>, orders 5f000000-…-<n>.
\ir bench_lifecycle.sql

CREATE FUNCTION bench.customer_id(n bigint) RETURNS uuid LANGUAGE sql IMMUTABLE
    RETURN ('5c000000-0000-0000-0000-' || lpad(n::text, 12, '0'))::uuid;
CREATE FUNCTION bench.order_id(n bigint) RETURNS uuid LANGUAGE sql IMMUTABLE
    RETURN ('5f000000-0000-0000-0000-' || lpad(n::text, 12, '0'))::uuid;

CREATE PROCEDURE bench.fill(n_orders int, n_customers int, n_campaigns int)
LANGUAGE plpgsql AS $$
BEGIN
    SET LOCAL session_replication_role = replica;
    INSERT INTO orders.customers (id, full_name, phone, city, area)
    SELECT bench.customer_id(c), 'Customer ' || c, '+2126' || lpad(c::text, 8, '0'), 'City ' || c % 50, 'Area ' || c % 400
      FROM generate_series(1, n_customers) c;
    INSERT INTO orders.orders (id, order_number, customer_id, lifecycle, status, payment_status, total_amount,
                               leads_purchased, leads_delivered, delivery_area, created_at, delivered_at)
    SELECT bench.order_id(n), 'SZ-' || n, bench.customer_id((n - 1) % n_customers + 1),
           CASE WHEN n <= 8000 THEN 'bench'
                WHEN n <= 16000 THEN 'cod'
                WHEN n <= 16000 + n_campaigns THEN 'campaign'
                ELSE 'cod' END,
           CASE WHEN n <= 8000 THEN 'a'
                WHEN n <= 16000 THEN 'delivered'
                WHEN n <= 16000 + n_campaigns THEN 'active'
                ELSE (ARRAY['delivered', 'delivered', 'delivered', 'delivered', 'delivered', 'delivered',
                            'new', 'confirmed', 'out_for_delivery', 'cancelled', 'returned'])[n % 11 + 1] END,
           CASE WHEN n > 8000 AND n <= 16000 THEN 'collected'
                WHEN n > 16000 + n_campaigns AND n % 11 < 6 THEN 'collected'
                ELSE 'pending' END,
           10 + n % 90,
           CASE WHEN n > 16000 AND n <= 16000 + n_campaigns THEN 1000000000 ELSE 0 END,
           CASE WHEN n > 16000 AND n <= 16000 + n_campaigns THEN 50 ELSE 0 END,
           'Area ' || n % 400,
           now() - make_interval(secs => n_orders - n),
           CASE WHEN (n > 8000 AND n <= 16000) OR (n > 16000 + n_campaigns AND n % 11 < 6)
                THEN now() - make_interval(secs => n_orders - n) END
      FROM generate_series(1, n_orders) n;
    INSERT INTO orders.order_history (order_id, old_status, new_status, changed_by, created_at)
    SELECT o.id, NULL, o.status, 'bench', o.created_at FROM orders.orders o WHERE o.order_number LIKE 'SZ-%';
    INSERT INTO orders.leads (customer_id, order_id, status)
    SELECT bench.customer_id((n - 1) % n_customers + 1), bench.order_id(n), 'approved'
      FROM generate_series(16001, 16000 + n_campaigns) n, generate_series(1, 50) k;
    -- the statistics as orders.recount_customer_stats() counts them
    UPDATE orders.customers c
       SET total_orders = a.n_orders, total_spent = a.spent, returned_orders = a.n_returned,
           return_rate = CASE WHEN a.n_orders > 0 THEN round(a.n_returned * 100.0 / a.n_orders, 2) ELSE 0 END
      FROM (SELECT o.customer_id,
                   count(*) FILTER (WHERE s.category <> 'cancelled') AS n_orders,
                   coalesce(sum(o.total_amount) FILTER (WHERE s.category = 'fulfilled' AND o.payment_status = 'collected'), 0) AS spent,
                   count(*) FILTER (WHERE s.category = 'returned') AS n_returned
              FROM orders.orders o
              JOIN orders.lifecycle_states s ON s.lifecycle = o.lifecycle AND s.status = o.status
             GROUP BY o.customer_id) a
     WHERE c.id = a.customer_id;
END
$$;
