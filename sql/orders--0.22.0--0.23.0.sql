-- orders 0.22.0 -> 0.23.0
--  * orders.leads_lock_orders(), an AFTER INSERT row trigger on orders.leads
--    named to fire before the foreign keys' checks: the orders a statement
--    delivers leads to are locked (FOR NO KEY UPDATE, in id order) before
--    the foreign keys take their KEY SHARE locks, so writers of a hot order
--    queue on its row instead of making MultiXacts (doc/leads.md).
\echo Use "ALTER EXTENSION orders UPDATE TO '0.23.0'" to load this file. \quit

CREATE FUNCTION orders.leads_lock_orders() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_leads_lock_orders';
REVOKE ALL ON FUNCTION orders.leads_lock_orders() FROM PUBLIC;

CREATE TRIGGER "Leads_lock_orders" AFTER INSERT ON orders.leads
    REFERENCING NEW TABLE AS new_leads
    FOR EACH ROW WHEN (NEW.order_id IS NOT NULL)
    EXECUTE FUNCTION orders.leads_lock_orders();
