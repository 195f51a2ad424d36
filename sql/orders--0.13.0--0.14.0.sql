-- orders 0.13.0 -> 0.14.0
--  * The reach policies of orders and customers are one C call per row
--    (orders.sees_order, orders.sees_customer; src/row_scope.c) that reads
--    the caller's scope once per query.  Written out in SQL they asked the
--    identity helpers up to ten times per query, an InitPlan each: more
--    than a small dashboard query's own work.  Who sees what is unchanged.
--  * orders.staff_sees_order (the review and workflow functions' staff
--    scope) is the same C rule, by role alone.
\echo Use "ALTER EXTENSION orders UPDATE TO '0.14.0'" to load this file. \quit
-- reach_support — the planner's estimate for the reach functions: a
-- caller reaches a small share of a table (4 %, as the written-out policies
-- were estimated), so a query's own conditions keep choosing the index.
CREATE FUNCTION orders.reach_support(internal) RETURNS internal
    LANGUAGE c IMMUTABLE STRICT
    AS 'MODULE_PATHNAME', 'orders_reach_support';
REVOKE ALL ON FUNCTION orders.reach_support(internal) FROM PUBLIC;
CREATE FUNCTION orders.sees_order(customer_id uuid, assigned_agent_id uuid, assigned_rep_id uuid,
                                  lifecycle text, status text) RETURNS boolean
    LANGUAGE c STABLE SUPPORT orders.reach_support
    AS 'MODULE_PATHNAME', 'orders_sees_order';
COMMENT ON FUNCTION orders.sees_order(uuid, uuid, uuid, text, text) IS
    'Whether the caller reaches an order with these values (the orders policy)';
CREATE FUNCTION orders.sees_customer(id uuid, account_id uuid) RETURNS boolean
    LANGUAGE c STABLE SUPPORT orders.reach_support
    AS 'MODULE_PATHNAME', 'orders_sees_customer';
COMMENT ON FUNCTION orders.sees_customer(uuid, uuid) IS
    'Whether the caller reaches a customer row with these values (the customers policy)';
-- CREATE OR REPLACE keeps the grants; the language, body and settings change
CREATE OR REPLACE FUNCTION orders.staff_sees_order(rep uuid, agent uuid, lifecycle text, status text) RETURNS boolean
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 'orders_staff_sees_order';
GRANT EXECUTE ON FUNCTION orders.sees_order(uuid, uuid, uuid, text, text), orders.sees_customer(uuid, uuid) TO PUBLIC;

-- the reach policies as the extension made them; a DBA who dropped one
-- keeps the policies of their own
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_policy WHERE polrelid = 'orders.orders'::pg_catalog.regclass
                                                  AND polname = 'reach') THEN
        ALTER POLICY reach ON orders.orders
            USING (orders.sees_order(customer_id, assigned_agent_id, assigned_rep_id, lifecycle, status));
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_policy WHERE polrelid = 'orders.customers'::pg_catalog.regclass
                                                  AND polname = 'reach') THEN
        ALTER POLICY reach ON orders.customers
            USING (orders.sees_customer(id, account_id));
    END IF;
END
$$;
