
---------------------------------------------------------------------------
-- Products and variants: the catalog whose stock the order lifecycle takes
-- and gives back (70_stock.sql, doc/stock_and_money.md).
---------------------------------------------------------------------------

-- Stock rows change on every confirmation, cancellation and return, so
-- they are laid out for cheap updates (+~25 % status changes per second in
-- test/bench/stock.sh):
-- * the column rules are domains: PostgreSQL checks a domain only on the
--   columns a statement assigns, with the rule cached, while every table
--   CHECK is re-read and evaluated on every UPDATE;
-- * stock_quantity is in no index, not even a partial one (is_low, a stored
--   generated column, carries the low-stock index), and half of each page is
--   kept free: a stock change is a HOT update that touches no index.
CREATE DOMAIN orders.label AS text CHECK (VALUE <> '');
-- * amounts are never NaN: numeric holds 'NaN', which passes ">= 0" (NaN
--   sorts above every number) and would poison every sum it enters
--   (numeric(12,2) refuses the infinities by itself).
CREATE DOMAIN orders.amount AS numeric(12,2) CHECK (VALUE >= 0 AND VALUE <> 'NaN');
CREATE DOMAIN orders.positive_amount AS numeric(12,2) CHECK (VALUE > 0 AND VALUE <> 'NaN');
CREATE DOMAIN orders.signed_amount AS numeric(12,2) CHECK (VALUE <> 'NaN');
CREATE DOMAIN orders.units AS integer CHECK (VALUE >= 0);
CREATE DOMAIN orders.json_array AS jsonb CHECK (pg_catalog.jsonb_typeof(VALUE) = 'array');
CREATE DOMAIN orders.json_object AS jsonb CHECK (pg_catalog.jsonb_typeof(VALUE) = 'object');

CREATE TABLE orders.products (
    id                   uuid PRIMARY KEY DEFAULT orders.new_id(),
    name                 orders.label NOT NULL CHECK (length(name) <= 500),
    sku                  orders.label NOT NULL UNIQUE CHECK (length(sku) <= 255),
    description          text CHECK (length(description) <= 20000),
    category             text CHECK (length(category) <= 200),
    price                orders.amount NOT NULL DEFAULT 0,
    cost_price           orders.amount,
    stock_quantity       orders.units NOT NULL DEFAULT 0,
    low_stock_threshold  orders.units NOT NULL DEFAULT 5,
    images               orders.json_array NOT NULL DEFAULT '[]' CHECK (orders.jsonb_within(images, 65536)),
    is_active            boolean NOT NULL DEFAULT true,
    is_low               boolean NOT NULL
                         GENERATED ALWAYS AS (is_active AND stock_quantity <= low_stock_threshold) STORED,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 50);
COMMENT ON TABLE orders.products IS 'Product catalog (seed 004); variants are rows of orders.product_variants';
COMMENT ON COLUMN orders.products.stock_quantity IS
    'Units in stock of the product ordered without a variant; orders holding stock have taken theirs already';
COMMENT ON COLUMN orders.products.is_low IS 'Active and at or below low_stock_threshold (generated; indexed)';
CREATE INDEX products_category_idx ON orders.products (category);
CREATE INDEX products_low_stock_idx ON orders.products (is_low) WHERE is_low;
CREATE INDEX products_name_search_idx ON orders.products USING gin (to_tsvector('simple', name));
-- (0.44.0) a page of product_catalog(), of the whole catalog or of a category
CREATE INDEX products_catalog_idx ON orders.products (name, id) WHERE is_active;
CREATE INDEX products_category_catalog_idx ON orders.products (category, name, id) WHERE is_active;
CREATE TRIGGER set_updated_at BEFORE UPDATE ON orders.products
    FOR EACH ROW EXECUTE FUNCTION orders.set_updated_at();
CREATE TRIGGER id_stays BEFORE UPDATE OF id ON orders.products
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION orders.id_stays();

CREATE TABLE orders.product_variants (
    id                   uuid PRIMARY KEY DEFAULT orders.new_id(),
    product_id           uuid NOT NULL REFERENCES orders.products (id) ON DELETE CASCADE,
    sku                  orders.label NOT NULL UNIQUE CHECK (length(sku) <= 255),
    name                 orders.label NOT NULL CHECK (length(name) <= 500),
    price                orders.amount,
    attributes           orders.json_object NOT NULL DEFAULT '{}' CHECK (orders.jsonb_within(attributes, 65536)),
    stock_quantity       orders.units NOT NULL DEFAULT 0,
    low_stock_threshold  orders.units NOT NULL DEFAULT 5,
    is_active            boolean NOT NULL DEFAULT true,
    is_low               boolean NOT NULL
                         GENERATED ALWAYS AS (is_active AND stock_quantity <= low_stock_threshold) STORED,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (product_id, id)
) WITH (fillfactor = 50);
COMMENT ON TABLE orders.product_variants IS
    'Variants of a product (seed 004 products.variants), each with its own SKU and stock';
COMMENT ON COLUMN orders.product_variants.price IS 'NULL: the product''s price';
CREATE INDEX product_variants_attributes_idx ON orders.product_variants USING gin (attributes jsonb_path_ops);
CREATE INDEX product_variants_low_stock_idx ON orders.product_variants (is_low) WHERE is_low;
CREATE TRIGGER set_updated_at BEFORE UPDATE ON orders.product_variants
    FOR EACH ROW EXECUTE FUNCTION orders.set_updated_at();
CREATE TRIGGER id_stays BEFORE UPDATE OF id ON orders.product_variants
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION orders.id_stays();

SELECT pg_catalog.pg_extension_config_dump('orders.products', '');
SELECT pg_catalog.pg_extension_config_dump('orders.product_variants', '');
REVOKE ALL ON orders.products, orders.product_variants FROM PUBLIC;

-- product_catalog — what a storefront shows a shopper (0.38.0): each active
-- product, and each active variant of it, with the unit price a customer's
-- item of it must carry (customer_item_price: OR061 otherwise) — the
-- product alone (variant_id NULL) at the product's price, a variant at its
-- own or else the product's — and no cost or stock figures.  Customers and
-- anon read no product table (staff with products.view read it all), so
-- before this a shopper could not learn the price its own item had to
-- name.  SECURITY DEFINER with a body bound at creation.  A shop whose catalog is
-- not public revokes EXECUTE from its anon role (grant_api grants it).
-- (0.44.0) One page at a time: at most max_products products (1..1000,
-- 22023 otherwise), in (name, product_id) order after the (after_name,
-- after_id) the caller last read, each with its variants — an anonymous
-- call sorted the whole catalog (100k products: 55 MB of temporary file
-- per request), and PostgREST's limit cannot reach inside a function.  A
-- page is read through products_catalog_idx or products_category_catalog_idx
-- and costs what it returns.  after_name alone starts at that name.
--
-- catalog_rows — product_catalog's page (its arguments renamed: PL/pgSQL
-- keeps no input named as an output column), with its plans kept for the
-- session: max_products 1..1000 and after_id only with after_name (22023
-- otherwise); each kind of call, of a category or not, has its own
-- statement and so its own index.
CREATE FUNCTION orders.catalog_rows(in_category text, in_max integer, in_after_name text, in_after_id uuid)
    RETURNS TABLE (product_id uuid, variant_id uuid, name text, variant_name text, sku text,
                   description text, category text, price numeric, attributes jsonb, images jsonb)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    after_n text := coalesce(in_after_name, '');
    after_i uuid := coalesce(in_after_id, '00000000-0000-0000-0000-000000000000');
BEGIN
    IF in_max IS NULL OR in_max NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'orders.product_catalog: max_products must be between 1 and 1000, not %',
                        coalesce(in_max::text, 'NULL')
            USING ERRCODE = '22023',
                  HINT = 'Read the catalog a page at a time: pass the last product''s name and product_id as after_name and after_id.';
    END IF;
    IF in_after_id IS NOT NULL AND in_after_name IS NULL THEN
        RAISE EXCEPTION 'orders.product_catalog: after_id needs after_name'
            USING ERRCODE = '22023', HINT = 'Pass the name and the product_id of the last product read.';
    END IF;
    IF in_category IS NULL THEN
        RETURN QUERY
        SELECT p.id, r.variant_id, p.name::text, r.variant_name, r.sku, p.description, p.category,
               r.price, r.attributes, p.images::jsonb
          FROM (SELECT q.id, q.name, q.sku, q.description, q.category, q.price, q.images
                  FROM orders.products q
                 WHERE q.is_active AND (q.name::text, q.id) > (after_n, after_i)
                 ORDER BY q.name, q.id
                 LIMIT in_max) p
      CROSS JOIN LATERAL (
            SELECT NULL::uuid AS variant_id, NULL::text AS variant_name, p.sku::text AS sku,
                   p.price::numeric AS price, '{}'::jsonb AS attributes
            UNION ALL
            SELECT v.id, v.name::text, v.sku::text, coalesce(v.price, p.price)::numeric, v.attributes::jsonb
              FROM orders.product_variants v
             WHERE v.product_id = p.id AND v.is_active) r
     ORDER BY p.name, p.id, r.variant_id IS NOT NULL, r.variant_name, r.variant_id;
    ELSE
        RETURN QUERY
        SELECT p.id, r.variant_id, p.name::text, r.variant_name, r.sku, p.description, p.category,
               r.price, r.attributes, p.images::jsonb
          FROM (SELECT q.id, q.name, q.sku, q.description, q.category, q.price, q.images
                  FROM orders.products q
                 WHERE q.is_active AND q.category = in_category AND (q.name::text, q.id) > (after_n, after_i)
                 ORDER BY q.name, q.id
                 LIMIT in_max) p
      CROSS JOIN LATERAL (
            SELECT NULL::uuid AS variant_id, NULL::text AS variant_name, p.sku::text AS sku,
                   p.price::numeric AS price, '{}'::jsonb AS attributes
            UNION ALL
            SELECT v.id, v.name::text, v.sku::text, coalesce(v.price, p.price)::numeric, v.attributes::jsonb
              FROM orders.product_variants v
             WHERE v.product_id = p.id AND v.is_active) r
     ORDER BY p.name, p.id, r.variant_id IS NOT NULL, r.variant_name, r.variant_id;
    END IF;
END
$$;
REVOKE ALL ON FUNCTION orders.catalog_rows(text, integer, text, uuid) FROM PUBLIC;

CREATE FUNCTION orders.product_catalog(category text DEFAULT NULL, max_products integer DEFAULT 100,
                                       after_name text DEFAULT NULL, after_id uuid DEFAULT NULL)
    RETURNS TABLE (product_id uuid, variant_id uuid, name text, variant_name text, sku text,
                   description text, category text, price numeric, attributes jsonb, images jsonb)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT * FROM orders.catalog_rows(product_catalog.category, product_catalog.max_products,
                                      product_catalog.after_name, product_catalog.after_id);
END;
COMMENT ON FUNCTION orders.product_catalog(text, integer, text, uuid) IS
    'The active products and variants with the price a customer''s item must carry (no cost, no stock); optionally of one category; a page of at most max_products products after (after_name, after_id)';
REVOKE ALL ON FUNCTION orders.product_catalog(text, integer, text, uuid) FROM PUBLIC;
