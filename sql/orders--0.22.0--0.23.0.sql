-- orders 0.22.0 -> 0.23.0
--  * orders.leads_lock_orders(), an AFTER INSERT row trigger on orders.leads
--    named to fire before the foreign keys' checks: the orders a statement
--    delivers leads to are locked (FOR NO KEY UPDATE, in id order) before
--    the foreign keys take their KEY SHARE locks, so writers of a hot order
--    queue on its row instead of making MultiXacts (doc/leads.md).
--  * check_assignment, order_columns_guard and customer_columns_guard
--    (PL/pgSQL) are called only when they have something to check: a row
--    with an assignment, an API request (WHEN conditions).
\echo Use "ALTER EXTENSION orders UPDATE TO '0.23.0'" to load this file. \quit

CREATE FUNCTION orders.leads_lock_orders() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_leads_lock_orders';
REVOKE ALL ON FUNCTION orders.leads_lock_orders() FROM PUBLIC;

CREATE TRIGGER "Leads_lock_orders" AFTER INSERT ON orders.leads
    REFERENCING NEW TABLE AS new_leads
    FOR EACH ROW WHEN (NEW.order_id IS NOT NULL)
    EXECUTE FUNCTION orders.leads_lock_orders();

CREATE OR REPLACE TRIGGER check_assignment BEFORE INSERT OR UPDATE OF assigned_agent_id, assigned_rep_id
    ON orders.orders FOR EACH ROW
    WHEN (NEW.assigned_agent_id IS NOT NULL OR NEW.assigned_rep_id IS NOT NULL)
    EXECUTE FUNCTION orders.check_assignment();
CREATE OR REPLACE TRIGGER order_columns_guard
    BEFORE INSERT OR UPDATE OF priority, delivery_fee, total_amount, adjustment, payment_status,
        assigned_rep_id, assigned_agent_id, source, webhook_source, delivery_proof, review_completed_at, reviewed_by
    ON orders.orders FOR EACH ROW WHEN (orders.api_request())
    EXECUTE FUNCTION orders.order_columns_guard();
CREATE OR REPLACE TRIGGER customer_columns_guard BEFORE INSERT OR UPDATE OF tags
    ON orders.customers FOR EACH ROW WHEN (orders.api_request())
    EXECUTE FUNCTION orders.customer_columns_guard();
