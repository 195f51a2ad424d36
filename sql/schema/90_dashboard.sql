
---------------------------------------------------------------------------
-- Dashboard (seed 004's queries, doc/stock_and_money.md).
---------------------------------------------------------------------------

-- Seed 004's dashboard queries as functions (PostgREST RPC).  They run with
-- the caller's rights (row level security applies) and are plain SQL so the
-- planner inlines them: EXPLAIN SELECT * FROM orders.recent_orders() shows
-- the index each one uses (test/pgtap/12_dashboard_indexes.sql checks).

-- Their indexes are with the tables (orders_customer_created_idx,
-- customers_area_idx, customers_tags_idx, ...).

-- (0.44.0) A customer's call (customer rows, no staff row, row level
-- security applying) reads its own orders by orders_customer_*_idx: the
-- policies let it see no others, but as a per-row call they gave the
-- planner no index condition, and the call read every order and customer
-- (30 ms at 100k orders).  Each branch runs only for its kind of caller
-- (one-time filters).  Where row level security does not apply (the owner
-- acting for a customer, a BYPASSRLS role's function) the other branch
-- runs: it returned every order there, and still does (review).  Valid
-- under the extension's own policies: a DBA's wider policy for a
-- customer-like caller would be narrowed to its customer rows.
CREATE FUNCTION orders.recent_orders(statuses text[] DEFAULT ARRAY['new', 'confirmation_pending', 'confirmed'],
                                     max_rows integer DEFAULT 50)
    RETURNS TABLE (id uuid, order_number text, status text, priority integer, total_amount numeric,
                   created_at timestamptz, customer_name text, customer_phone text)
    LANGUAGE sql STABLE
AS $$
    SELECT r.* FROM (
        (SELECT o.id, o.order_number, o.status, o.priority, o.total_amount, o.created_at, c.full_name, c.phone
           FROM orders.orders o
           JOIN orders.customers c ON c.id OPERATOR(pg_catalog.=) o.customer_id
          WHERE NOT (pg_catalog.row_security_active('orders.orders'::pg_catalog.regclass)
                     AND pg_catalog.cardinality(orders.current_customer_ids()) OPERATOR(pg_catalog.>) 0
                     AND orders.current_staff_id() IS NULL)
            AND o.status OPERATOR(pg_catalog.=) ANY (statuses)
          ORDER BY o.priority DESC, o.created_at DESC
          LIMIT max_rows)
        UNION ALL
        (SELECT o.id, o.order_number, o.status, o.priority, o.total_amount, o.created_at, c.full_name, c.phone
           FROM orders.orders o
           JOIN orders.customers c ON c.id OPERATOR(pg_catalog.=) o.customer_id
          WHERE pg_catalog.row_security_active('orders.orders'::pg_catalog.regclass)
            AND pg_catalog.cardinality(orders.current_customer_ids()) OPERATOR(pg_catalog.>) 0
            AND orders.current_staff_id() IS NULL
            AND o.customer_id OPERATOR(pg_catalog.=) ANY (orders.current_customer_ids())
            AND o.status OPERATOR(pg_catalog.=) ANY (statuses)
          ORDER BY o.priority DESC, o.created_at DESC
          LIMIT max_rows)
    ) r (id, order_number, status, priority, total_amount, created_at, customer_name, customer_phone)
     ORDER BY r.priority DESC, r.created_at DESC
     LIMIT max_rows
$$;
COMMENT ON FUNCTION orders.recent_orders(text[], integer) IS
    'Dashboard: newest orders in the given statuses, most urgent first (seed 004 query 1)';

CREATE FUNCTION orders.agent_active_deliveries(agent_id uuid)
    RETURNS TABLE (id uuid, order_number text, status text, delivery_address text, delivery_area text,
                   customer_notes text, customer_phone text, total_amount numeric, priority integer,
                   created_at timestamptz)
    LANGUAGE sql STABLE
AS $$
    SELECT o.id, o.order_number, o.status, o.delivery_address, o.delivery_area, o.customer_notes,
           c.phone, o.total_amount, o.priority, o.created_at
      FROM orders.orders o
      JOIN orders.customers c ON c.id OPERATOR(pg_catalog.=) o.customer_id
     WHERE o.assigned_agent_id OPERATOR(pg_catalog.=) agent_active_deliveries.agent_id
       AND o.status OPERATOR(pg_catalog.=) ANY (ARRAY['ready_for_pickup', 'out_for_delivery'])
     ORDER BY o.priority DESC, o.created_at
$$;
COMMENT ON FUNCTION orders.agent_active_deliveries(uuid) IS
    'Dashboard: a delivery agent''s orders ready for pickup or out for delivery (seed 004 query 2)';

CREATE FUNCTION orders.unassigned_orders_in_area(area text)
    RETURNS TABLE (id uuid, order_number text, delivery_address text, delivery_area text, priority integer,
                   total_amount numeric, customer_name text, customer_phone text, created_at timestamptz)
    LANGUAGE sql STABLE
AS $$
    SELECT o.id, o.order_number, o.delivery_address, o.delivery_area, o.priority, o.total_amount,
           c.full_name, c.phone, o.created_at
      FROM orders.orders o
      JOIN orders.customers c ON c.id OPERATOR(pg_catalog.=) o.customer_id
     WHERE o.delivery_area OPERATOR(pg_catalog.=) unassigned_orders_in_area.area
       AND o.status OPERATOR(pg_catalog.=) 'ready_for_pickup'
       AND o.assigned_agent_id IS NULL
     ORDER BY o.priority DESC, o.created_at
$$;
COMMENT ON FUNCTION orders.unassigned_orders_in_area(text) IS
    'Dashboard: orders ready for pickup in an area with no agent yet (seed 004 query 3)';

CREATE FUNCTION orders.customer_order_history(customer_id uuid, max_rows integer DEFAULT 100)
    RETURNS TABLE (id uuid, order_number text, status text, total_amount numeric,
                   created_at timestamptz, delivered_at timestamptz)
    LANGUAGE sql STABLE
AS $$
    SELECT o.id, o.order_number, o.status, o.total_amount, o.created_at, o.delivered_at
      FROM orders.orders o
     WHERE o.customer_id OPERATOR(pg_catalog.=) customer_order_history.customer_id
     ORDER BY o.created_at DESC
     LIMIT max_rows
$$;
COMMENT ON FUNCTION orders.customer_order_history(uuid, integer) IS
    'Dashboard: a customer''s orders, newest first (seed 004 query 4)';

CREATE FUNCTION orders.vip_customers(customer_area text, tag text DEFAULT 'vip')
    RETURNS TABLE (id uuid, full_name text, phone text, area text, total_orders integer, total_spent numeric)
    LANGUAGE sql STABLE
AS $$
    SELECT c.id, c.full_name, c.phone, c.area, c.total_orders, c.total_spent
      FROM orders.customers c
     WHERE (c.tags OPERATOR(pg_catalog.@>) pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('id', tag))
            OR c.tags OPERATOR(pg_catalog.@>) pg_catalog.jsonb_build_array(tag))
       AND c.area OPERATOR(pg_catalog.=) customer_area
     ORDER BY c.total_spent DESC
$$;
COMMENT ON FUNCTION orders.vip_customers(text, text) IS
    'Dashboard: customers of an area carrying a tag (default vip) as {"id": tag} or "tag", biggest spenders first (seed 004 query 8)';

-- Today's orders by outcome (seed 004 query 5, by status category so that
-- every lifecycle counts; a created_at range instead of DATE(created_at),
-- which no index can serve).  The bounds are timestamptz: timestamptz >= date
-- is not leakproof, so under row level security it could not be an index
-- condition ahead of the policies (a sequential scan of every order).
CREATE VIEW orders.todays_order_summary WITH (security_invoker = true) AS
SELECT count(*)::integer AS orders_today,
       (count(*) FILTER (WHERE s.category = 'fulfilled'))::integer AS delivered_count,
       coalesce(sum(o.total_amount) FILTER (WHERE s.category = 'fulfilled' AND o.payment_status = 'collected'), 0.00)
           AS collected_amount,
       coalesce(sum(o.total_amount) FILTER (WHERE s.category = 'fulfilled' AND o.payment_status = 'pending'), 0.00)
           AS pending_amount,
       (count(*) FILTER (WHERE s.category = 'cancelled'))::integer AS cancelled_count,
       (count(*) FILTER (WHERE s.category = 'returned'))::integer AS returned_count
  FROM orders.orders o
  JOIN orders.lifecycle_states s ON s.lifecycle = o.lifecycle AND s.status = o.status
 WHERE o.created_at >= orders.business_date()::timestamp AT TIME ZONE orders.business_timezone()
   AND o.created_at < (orders.business_date() + 1)::timestamp AT TIME ZONE orders.business_timezone();
COMMENT ON VIEW orders.todays_order_summary IS 'Dashboard: today''s orders by outcome (seed 004 query 5); (0.43.0) today is the business day (orders.business_date())';

REVOKE ALL ON orders.todays_order_summary FROM PUBLIC;
