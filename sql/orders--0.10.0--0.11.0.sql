-- orders 0.10.0 -> 0.11.0
--  * The customers policy's delivery-agent branch asks
--    orders.agent_serves_customer(id) (C: one index-only scan of the agent's
--    orders per query) instead of a subquery on orders under the orders
--    policy; orders_assigned_agent_idx carries customer_id for it.  The index
--    is rebuilt under another name while the old one serves reads (a CREATE
--    INDEX: writes to orders wait for it, as long as it takes on a large
--    table), then swapped in; reads wait only for the swap at the end.
--  * The activity log's rows are inserted without SQL; their ids are uuid
--    version 7 (no catalog change).
\echo Use "ALTER EXTENSION orders UPDATE TO '0.11.0'" to load this file. \quit

CREATE INDEX orders_assigned_agent_idx_0_11 ON orders.orders (assigned_agent_id, status) INCLUDE (customer_id);
DROP INDEX orders.orders_assigned_agent_idx;
ALTER INDEX orders.orders_assigned_agent_idx_0_11 RENAME TO orders_assigned_agent_idx;
-- (customer_id rides along for orders.agent_serves_customer(), the customers
-- policy's agent branch: an index-only scan, no heap page per order)

-- agent_serves_customer — whether an order of this customer is assigned to
-- the caller, an active delivery agent who may view orders (C,
-- src/agent_scope.c): the customers policy's agent branch.  One index-only
-- scan of the agent's orders per query, then a hash lookup per row; it
-- answers only about the caller.
CREATE FUNCTION orders.agent_serves_customer(customer_id uuid) RETURNS boolean
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 'orders_agent_serves_customer';
COMMENT ON FUNCTION orders.agent_serves_customer(uuid) IS
    'Whether an order of this customer is assigned to the caller (an active delivery agent who may view orders)';
GRANT EXECUTE ON FUNCTION orders.agent_serves_customer(uuid) TO PUBLIC;

ALTER POLICY reach ON orders.customers
    USING (account_id = (SELECT orders.actor_account())
           OR ((SELECT orders.has_permission('customers', 'view'))
               AND ((SELECT orders.current_staff_role()) <> 'delivery_agent'
                    OR orders.agent_serves_customer(id))));
