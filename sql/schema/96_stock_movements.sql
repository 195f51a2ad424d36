
---------------------------------------------------------------------------
-- Stock moved by hand, exactly once per movement id (0.22.0;
-- doc/stock_and_money.md "Moving stock"): goods received, a count
-- corrected, units transferred between the partitions of a scaled-out
-- cluster (doc/scale-out.md "Stock").  A client that retries a call —
-- PostgREST after a timeout, a warehouse webhook — moves the units once.
---------------------------------------------------------------------------

CREATE TABLE orders.stock_movements (
    id                  uuid PRIMARY KEY,
    product_id          uuid NOT NULL REFERENCES orders.products (id) ON DELETE CASCADE,
    variant_id          uuid,
    quantity            integer NOT NULL CHECK (quantity <> 0),
    stock_after         integer,
    reason              text CHECK (length(reason) <= 500),
    transfer_partition  integer CHECK (transfer_partition BETWEEN 0 AND 4095),
    moved_by            text NOT NULL DEFAULT orders.current_actor(),
    created_at          timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (product_id, variant_id) REFERENCES orders.product_variants (product_id, id) ON DELETE CASCADE
);
COMMENT ON TABLE orders.stock_movements IS
    'Stock moved by orders.move_stock, one row per movement id (written by the extension only)';
COMMENT ON COLUMN orders.stock_movements.stock_after IS
    'Units of the product (or variant) in stock right after the movement';
COMMENT ON COLUMN orders.stock_movements.transfer_partition IS
    'For a transfer between partitions (doc/scale-out.md): the partition the units went to (quantity < 0) or came from (> 0)';
CREATE INDEX stock_movements_product_idx ON orders.stock_movements (product_id, created_at);
CREATE INDEX stock_movements_transfer_idx ON orders.stock_movements (transfer_partition, created_at)
    WHERE transfer_partition IS NOT NULL;

-- staff who may see products see how their stock moved
ALTER TABLE orders.stock_movements ENABLE ROW LEVEL SECURITY;
CREATE POLICY reach ON orders.stock_movements USING ((SELECT orders.has_permission('products', 'view')));
REVOKE ALL ON orders.stock_movements FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('orders.stock_movements', '');

-- move_stock — add "quantity" units (negative: take them) to the stock of a
-- product, or of one of its variants, once per movement_id: the same id
-- again returns the first movement's row and moves nothing (also when two
-- calls race: the second waits for the first; at REPEATABLE READ it then
-- fails with 40001 — retry); the same id with other values is refused
-- (OR119).  Never below 0: taking more than is in stock is refused (OR050,
-- naming the product, its SKU and both numbers to a caller who may read
-- products) under the product's row lock, so two movements (or a movement
-- and an order's confirmation) racing for the last units never both
-- succeed.  An unknown product or variant: OR120.  transfer_partition (the
-- other side of a transfer between partitions) must name another
-- partition than this database's (22023).  In an API request the caller
-- needs products.edit (42501); the owner, DBAs and jobs may always.
-- Returns the movement, with the stock right after it.
CREATE FUNCTION orders.move_stock(movement_id uuid, product_id uuid, quantity integer, variant_id uuid DEFAULT NULL,
                                  reason text DEFAULT NULL, transfer_partition integer DEFAULT NULL)
    RETURNS orders.stock_movements
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m orders.stock_movements;
    after integer;
    what text;
    units integer;
BEGIN
    IF movement_id IS NULL OR product_id IS NULL OR quantity IS NULL THEN
        RAISE EXCEPTION 'orders.move_stock: movement_id, product_id and quantity must not be NULL' USING ERRCODE = '22004';
    ELSIF quantity = 0 THEN
        RAISE EXCEPTION 'orders.move_stock: quantity must not be 0' USING ERRCODE = '22023';
    ELSIF length(reason) > 500 THEN
        RAISE EXCEPTION 'orders.move_stock: reason must be at most 500 characters, not %', length(reason)
            USING ERRCODE = '22023';
    ELSIF transfer_partition NOT BETWEEN 0 AND 4095 OR transfer_partition = orders.partition_of(orders.new_id()) THEN
        RAISE EXCEPTION 'orders.move_stock: transfer_partition must be another partition (0 to 4095), not %', transfer_partition
            USING ERRCODE = '22023', DETAIL = 'This database is partition ' || orders.partition_of(orders.new_id()) || '.';
    ELSIF orders.api_request() AND NOT orders.has_permission('products', 'edit') THEN
        RAISE EXCEPTION 'moving stock needs the products.edit permission' USING ERRCODE = '42501';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM orders.products p WHERE p.id = move_stock.product_id) THEN
        RAISE EXCEPTION 'product % does not exist', product_id USING ERRCODE = 'OR120';
    ELSIF variant_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM orders.product_variants v
                                                  WHERE v.id = move_stock.variant_id AND v.product_id = move_stock.product_id) THEN
        RAISE EXCEPTION 'product % has no variant %', product_id, variant_id USING ERRCODE = 'OR120';
    END IF;
    -- the movement's id first: a second call with this id waits here for
    -- the first one's transaction, then finds its row
    INSERT INTO orders.stock_movements AS s (id, product_id, variant_id, quantity, reason, transfer_partition)
    VALUES (movement_id, move_stock.product_id, move_stock.variant_id, move_stock.quantity, move_stock.reason,
            move_stock.transfer_partition)
    ON CONFLICT (id) DO NOTHING
    RETURNING * INTO m;
    IF m.id IS NULL THEN
        SELECT * INTO m FROM orders.stock_movements s WHERE s.id = movement_id;
        IF (m.product_id, m.variant_id, m.quantity, m.transfer_partition)
           IS DISTINCT FROM (move_stock.product_id, move_stock.variant_id, move_stock.quantity, move_stock.transfer_partition) THEN
            RAISE EXCEPTION 'stock movement % was already made with other values', movement_id
                USING ERRCODE = 'OR119',
                      DETAIL = format('It moved %s units of product %s%s.', m.quantity, m.product_id,
                                      coalesce(' (variant ' || m.variant_id || ')', '')),
                      HINT = 'Use a new movement id for another movement; the same id again only repeats the answer.';
        END IF;
        RETURN m;
    END IF;
    -- the row lock decides between racing takers; the product (variant)
    -- exists: the movement's foreign key holds it
    IF variant_id IS NULL THEN
        UPDATE orders.products p SET stock_quantity = p.stock_quantity + move_stock.quantity
         WHERE p.id = move_stock.product_id AND p.stock_quantity + move_stock.quantity >= 0
        RETURNING p.stock_quantity INTO after;
    ELSE
        UPDATE orders.product_variants v SET stock_quantity = v.stock_quantity + move_stock.quantity
         WHERE v.id = move_stock.variant_id AND v.product_id = move_stock.product_id
           AND v.stock_quantity + move_stock.quantity >= 0
        RETURNING v.stock_quantity INTO after;
    END IF;
    IF after IS NULL THEN
        IF variant_id IS NULL THEN
            SELECT format('"%s" (SKU %s)', p.name, p.sku), p.stock_quantity INTO what, units
              FROM orders.products p WHERE p.id = move_stock.product_id;
        ELSE
            SELECT format('"%s / %s" (SKU %s)', p.name, v.name, v.sku), v.stock_quantity INTO what, units
              FROM orders.product_variants v JOIN orders.products p ON p.id = v.product_id
             WHERE v.id = move_stock.variant_id;
        END IF;
        IF orders.api_request() AND NOT orders.has_permission('products', 'view') THEN
            -- as the lifecycle's refusal: only the caller's own ids to one
            -- who may not read the product
            what := coalesce(variant_id::text, product_id::text);
            units := NULL;
        END IF;
        RAISE EXCEPTION 'insufficient stock for product %: % needed, % in stock', what, -(quantity::bigint),
                        coalesce(units::text, 'not enough')
            USING ERRCODE = 'OR050', DETAIL = 'Stock never goes below 0; nothing was moved.';
    END IF;
    UPDATE orders.stock_movements s SET stock_after = after WHERE s.id = m.id RETURNING * INTO m;
    RETURN m;
END
$$;
REVOKE ALL ON FUNCTION orders.move_stock(uuid, uuid, integer, uuid, text, integer) FROM PUBLIC;
