
---------------------------------------------------------------------------
-- An order's amounts tied together (C, order_money.c, doc/stock_and_money.md):
-- subtotal = the sum of its items' totals, kept exact like the other
-- counters; total_amount = subtotal + delivery_fee + adjustment, kept by
-- status_guard — writing total_amount sets adjustment, writing the parts
-- (or changing items) moves the total.
---------------------------------------------------------------------------

COMMENT ON COLUMN orders.orders.subtotal IS
    'Sum of the order''s items (quantity × unit_price); maintained by orders.subtotal_on_items, never written by hand';
COMMENT ON COLUMN orders.orders.adjustment IS
    'What the total adds to subtotal + delivery_fee (negative: a discount); set by writing it, or by writing total_amount';
COMMENT ON COLUMN orders.orders.total_amount IS
    'subtotal + delivery_fee + adjustment, always; writing it sets adjustment';

CREATE FUNCTION orders.subtotal_on_items() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_subtotal_on_items';
-- one statement trigger per event: transition tables allow only one event
CREATE TRIGGER subtotal_on_items_insert AFTER INSERT ON orders.order_items
    REFERENCING NEW TABLE AS new_items
    FOR EACH STATEMENT EXECUTE FUNCTION orders.subtotal_on_items();
CREATE TRIGGER subtotal_on_items_update AFTER UPDATE ON orders.order_items
    REFERENCING OLD TABLE AS old_items NEW TABLE AS new_items
    FOR EACH STATEMENT EXECUTE FUNCTION orders.subtotal_on_items();
CREATE TRIGGER subtotal_on_items_delete AFTER DELETE ON orders.order_items
    REFERENCING OLD TABLE AS old_items
    FOR EACH STATEMENT EXECUTE FUNCTION orders.subtotal_on_items();

-- Repair: recount subtotals from the items (all orders, or one) and return
-- the orders whose stored subtotal was wrong (their totals follow).  Locks
-- the orders first, then sums, so concurrent item writers are neither
-- missed nor counted twice.
CREATE FUNCTION orders.recount_subtotals(order_id uuid DEFAULT NULL)
    RETURNS TABLE (id uuid, order_number text, stored numeric, counted numeric)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM orders.require_read_committed('orders.recount_subtotals',
        'A transaction snapshot would not see items committed while it waits for the orders.');
    PERFORM 1 FROM orders.orders o
     WHERE recount_subtotals.order_id IS NULL OR o.id = recount_subtotals.order_id
     ORDER BY o.id FOR UPDATE;
    RETURN QUERY
    WITH actual AS (
        SELECT o.id, o.order_number, o.subtotal::numeric AS stored,
               coalesce((SELECT sum(i.total) FROM orders.order_items i WHERE i.order_id = o.id), 0)::numeric(12,2)
                   AS counted
          FROM orders.orders o
         WHERE recount_subtotals.order_id IS NULL OR o.id = recount_subtotals.order_id),
    fixed AS (
        UPDATE orders.orders o SET subtotal = a.counted
          FROM actual a WHERE o.id = a.id AND a.stored <> a.counted
        RETURNING o.id)
    SELECT a.id, a.order_number, a.stored, a.counted
      FROM actual a WHERE a.stored <> a.counted ORDER BY a.order_number;
END
$$;
COMMENT ON FUNCTION orders.recount_subtotals(uuid) IS
    'Recount subtotals from the items (all orders, or one); returns and repairs the orders whose subtotal was wrong';

REVOKE ALL ON FUNCTION orders.subtotal_on_items(), orders.recount_subtotals(uuid) FROM PUBLIC;
