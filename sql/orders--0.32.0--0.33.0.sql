-- orders 0.32.0 -> 0.33.0
--  * A customer's statement on orders.order_groups or
--    orders.order_requirements is judged again at its end on the orders it
--    touched, as locked (customer_edit_recheck, C, six statement
--    triggers): still the caller's, open and unpaid, else 42501 and
--    nothing written.  The policies judged with the statement's snapshot,
--    so a group or requirement written while its order was paid landed in
--    the paid order.
--  * (library) A gate is checked with the latest snapshot once the order's
--    row is locked: a payment that waited for a customer's group change
--    went through the gate the change had closed.  The orders a customer's
--    statement touched are judged as they are now, at REPEATABLE READ too.
--  * (library) A statement over many orders writes their subtotals without
--    an UPDATE statement when none has earned its total; the row triggers
--    keep column numbers; a direct write frees each row's memory.
\echo Use "ALTER EXTENSION orders UPDATE TO '0.33.0'" to load this file. \quit

-- customer_edit_recheck (C: src/locked_orders.c) — the policies judge a
-- customer's groups and requirements with the statement's snapshot: one
-- written while its order was paid landed in the paid order.  At the
-- statement's end the orders it touched are locked (id order) and judged
-- again: still the caller's, open and unpaid (42501, nothing written).
-- Callers the policies let in otherwise (no API request, the owner, staff
-- with orders.edit) pass at once.
CREATE FUNCTION orders.customer_edit_recheck() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_customer_edit_recheck';
CREATE TRIGGER customer_edit_recheck_insert AFTER INSERT ON orders.order_groups
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION orders.customer_edit_recheck();
CREATE TRIGGER customer_edit_recheck_update AFTER UPDATE ON orders.order_groups
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION orders.customer_edit_recheck();
CREATE TRIGGER customer_edit_recheck_delete AFTER DELETE ON orders.order_groups
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION orders.customer_edit_recheck();
CREATE TRIGGER customer_edit_recheck_insert AFTER INSERT ON orders.order_requirements
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION orders.customer_edit_recheck();
CREATE TRIGGER customer_edit_recheck_update AFTER UPDATE ON orders.order_requirements
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION orders.customer_edit_recheck();
CREATE TRIGGER customer_edit_recheck_delete AFTER DELETE ON orders.order_requirements
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION orders.customer_edit_recheck();
