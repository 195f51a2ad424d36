
---------------------------------------------------------------------------
-- Agency orders (seeds 000/001, doc/review.md): an order split into client
-- groups; sites suggested by an analysis, reviewed by the client (logged in
-- or through a share link); approved sites become the order's items; a
-- gate keeps a reviewed order from payment until every group is complete.
---------------------------------------------------------------------------

-- A client group: the links of one of the agency's clients within an
-- order.  Its counters are kept exact by orders.site_counts (C).  (0.41.0)
-- What clients write is bounded by its binary size, uncompressed, and its
-- numbers' width (orders.jsonb_within, 10_lifecycles.sql):
-- target pages 256 kB, anchor texts and overrides 64 kB each — 13.5 MB of
-- target pages were served to a share link's holder.
CREATE TABLE orders.order_groups (
    id                     uuid PRIMARY KEY DEFAULT orders.new_id(),
    order_id               uuid NOT NULL REFERENCES orders.orders (id) ON DELETE CASCADE,
    client_id              uuid NOT NULL REFERENCES orders.customers (id) ON DELETE RESTRICT,
    link_count             integer NOT NULL CHECK (link_count > 0),
    target_pages           jsonb NOT NULL DEFAULT '[]'
                           CHECK (jsonb_typeof(target_pages) = 'array' AND orders.jsonb_within(target_pages, 262144)),
    anchor_texts           jsonb NOT NULL DEFAULT '[]'
                           CHECK (jsonb_typeof(anchor_texts) = 'array' AND orders.jsonb_within(anchor_texts, 65536)),
    requirement_overrides  jsonb NOT NULL DEFAULT '{}'
                           CHECK (jsonb_typeof(requirement_overrides) = 'object' AND orders.jsonb_within(requirement_overrides, 65536)),
    analysis_project_id    uuid,
    analysis_started_at    timestamptz,
    analysis_completed_at  timestamptz,
    group_status           text NOT NULL DEFAULT 'pending'
                           CHECK (group_status IN ('pending', 'analyzing', 'reviewing', 'complete')),
    suggested_count        integer NOT NULL DEFAULT 0 CHECK (suggested_count >= 0),
    approved_count         integer NOT NULL DEFAULT 0 CHECK (approved_count >= 0),
    rejected_count         integer NOT NULL DEFAULT 0 CHECK (rejected_count >= 0),
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE orders.order_groups IS
    'Client groups of an agency order (seed 001): link_count sites for one client; counters maintained by orders.site_counts';
COMMENT ON COLUMN orders.order_groups.analysis_project_id IS 'The analysis (outside the extension) that suggests its sites; no foreign key';
CREATE INDEX order_groups_order_idx ON orders.order_groups (order_id);
CREATE INDEX order_groups_client_idx ON orders.order_groups (client_id);
CREATE INDEX order_groups_analysis_idx ON orders.order_groups (analysis_project_id) WHERE analysis_project_id IS NOT NULL;
CREATE TRIGGER set_updated_at BEFORE UPDATE ON orders.order_groups
    FOR EACH ROW EXECUTE FUNCTION orders.set_updated_at();
CREATE TRIGGER id_stays BEFORE UPDATE OF id ON orders.order_groups
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION orders.id_stays();
CREATE FUNCTION orders.group_counts_guard() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_group_counts_guard';
CREATE TRIGGER group_counts_guard
    BEFORE INSERT OR UPDATE OF suggested_count, approved_count, rejected_count, link_count
    ON orders.order_groups FOR EACH ROW EXECUTE FUNCTION orders.group_counts_guard();

-- A site suggested for a group, and the client's verdict on it.
CREATE TABLE orders.order_site_selections (
    id               uuid PRIMARY KEY DEFAULT orders.new_id(),
    order_group_id   uuid NOT NULL REFERENCES orders.order_groups (id) ON DELETE CASCADE,
    domain           text NOT NULL CHECK (domain ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$'
                                          AND length(domain) <= 253),
    domain_id        uuid,
    metrics          jsonb NOT NULL DEFAULT '{}'
                     CHECK (jsonb_typeof(metrics) = 'object' AND orders.jsonb_within(metrics, 65536)),
    status           text NOT NULL DEFAULT 'suggested'
                     CHECK (status IN ('suggested', 'approved', 'rejected', 'alternate')),
    target_page_url  text CHECK (length(target_page_url) <= 2048),
    anchor_text      text CHECK (length(anchor_text) <= 255),
    reviewed_at      timestamptz,
    reviewed_by      text,
    client_notes     text CHECK (length(client_notes) <= 10000),
    internal_notes   text CHECK (length(internal_notes) <= 10000),
    order_item_id    uuid REFERENCES orders.order_items (id) ON DELETE SET NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    internal_metrics jsonb NOT NULL DEFAULT '{}'
                     CHECK (jsonb_typeof(internal_metrics) = 'object' AND orders.jsonb_within(internal_metrics, 65536)),
    UNIQUE (order_group_id, domain)
);
COMMENT ON TABLE orders.order_site_selections IS
    'Sites suggested for a client group and reviewed (seed 001); an approved site is an order item';
COMMENT ON COLUMN orders.order_site_selections.domain IS 'Normalised host: lower case, no scheme, path or www.';
COMMENT ON COLUMN orders.order_site_selections.internal_notes IS
    'Staff only: no API role may read or write it (orders.site_internal_notes)';
COMMENT ON COLUMN orders.order_site_selections.metrics IS
    'What the analysis found and the client may see (dr, traffic, price...); a cost written here moves to internal_metrics';
COMMENT ON COLUMN orders.order_site_selections.internal_metrics IS
    'Staff only: the analysis'' figures no client may see (cost); no API role may read or write it (orders.site_internal_metrics)';
CREATE INDEX order_site_selections_status_idx ON orders.order_site_selections (order_group_id, status);
CREATE INDEX order_site_selections_domain_idx ON orders.order_site_selections (domain_id) WHERE domain_id IS NOT NULL;
CREATE INDEX order_site_selections_item_idx ON orders.order_site_selections (order_item_id) WHERE order_item_id IS NOT NULL;
CREATE TRIGGER set_updated_at BEFORE UPDATE ON orders.order_site_selections
    FOR EACH ROW EXECUTE FUNCTION orders.set_updated_at();

CREATE FUNCTION orders.site_counts() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_site_counts';
CREATE TRIGGER site_counts_insert AFTER INSERT ON orders.order_site_selections
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION orders.site_counts();
CREATE TRIGGER site_counts_update AFTER UPDATE ON orders.order_site_selections
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION orders.site_counts();
CREATE TRIGGER site_counts_delete AFTER DELETE ON orders.order_site_selections
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION orders.site_counts();

-- normalize_domain — the host of a URL or domain: lower case, without
-- scheme, user, port, path or a leading "www.".  (0.44.0) Lower case as in
-- "C": in a Turkish database lower('I') is a dotless 'ı' (IKEA.COM became
-- ıkea.com and was refused); a domain's letters are ASCII anyway.
CREATE FUNCTION orders.normalize_domain(domain text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT regexp_replace(
             regexp_replace(lower(btrim(domain) COLLATE "C"), '^([a-z][a-z0-9+.-]*://)?([^@/]*@)?([^/:?#]*).*$', '\3'),
             '^www\.', '')
$$;

-- An approved site is an item of the order (service, named by its domain,
-- priced by metrics.price when the analysis gives one, its snapshot what
-- was approved); a site no longer approved takes its item away — until the
-- order is paid (paid_at) or closed: then approved sites stay (OR073).
-- In C (src/site_items.c): this row trigger refuses, makes the item of a
-- newly approved site and links it; orders.site_counts deletes the items
-- of sites no longer approved at the end of the statement (an item cannot
-- go while its site still links it).  Both work as the owner: the item
-- follows whoever changes the site, also a client who may not write items.
CREATE FUNCTION orders.site_items() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_site_items';
CREATE TRIGGER site_items BEFORE INSERT OR UPDATE OF status OR DELETE ON orders.order_site_selections
    FOR EACH ROW EXECUTE FUNCTION orders.site_items();
-- (0.36.0) the item of an approved site being inserted is made once the
-- row is inserted (site_items names it in the row): a row an INSERT ... ON
-- CONFLICT does not insert gets none.  The capital letter is on purpose:
-- AFTER row triggers fire in name order, and the foreign key's check of
-- order_item_id ("RI_ConstraintTrigger_...") must find the item.
CREATE FUNCTION orders.inserted_site_items() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_inserted_site_items';
CREATE TRIGGER "Items_of_inserted_sites" AFTER INSERT ON orders.order_site_selections
    FOR EACH ROW WHEN (NEW.status = 'approved' AND NEW.order_item_id IS NOT NULL)
    EXECUTE FUNCTION orders.inserted_site_items();
-- (0.28.0) Deleting a client group deletes its sites by the foreign key's
-- cascade, when site_items no longer finds their order: the group's own
-- trigger refuses first (OR073) for a paid or closed order with approved
-- sites.  A group that goes with its order (the order deleted) passes.  A
-- group stays with its order (OR074): its approved sites' items are that
-- order's (a client moved a paid order's group to another order of its
-- own, and deleted it there).
CREATE FUNCTION orders.group_sites_stay() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_group_sites_stay';
CREATE TRIGGER group_sites_stay BEFORE DELETE OR UPDATE OF order_id ON orders.order_groups
    FOR EACH ROW EXECUTE FUNCTION orders.group_sites_stay();
-- site_item_guard — an approved site's item goes with the site's approval
-- (0.35.0, OR078; OR073 for its price and quantity once the order is paid
-- or closed), for everybody: staff deleted such an item from a paid order
-- (the site stayed approved without it) or moved it to another order.  In
-- C (src/site_items.c); its WHEN clause asks for an item made for a site,
-- whose snapshot keeps naming its site (OR078 for a change of that name:
-- review, staff emptied the snapshot, then deleted the item).
CREATE FUNCTION orders.site_item_guard() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_site_item_guard';
CREATE TRIGGER site_item_guard BEFORE DELETE OR UPDATE OF order_id, unit_price, quantity, snapshot ON orders.order_items
    FOR EACH ROW WHEN (OLD.snapshot ? 'site_selection_id') EXECUTE FUNCTION orders.site_item_guard();
-- site_stays — a site stays with its order (0.35.0, OR074, as its group
-- does): moved to a group of another order, an approved site left its item
-- in the first order and was then taken back there — from an order already
-- paid (OR073 was judged on the new group's order).  The groups are read as
-- the owner (the caller may not see the other group).  Its WHEN clause asks
-- for a move: other changes pay no call.
CREATE FUNCTION orders.site_stays() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- (0.37.0) no group: its NOT NULL refuses the row (23502; the NULL
    -- made this RAISE's DETAIL null, 22004)
    IF NEW.order_group_id IS NOT NULL
       AND (SELECT g.order_id FROM orders.order_groups g WHERE g.id = NEW.order_group_id)
       IS DISTINCT FROM (SELECT g.order_id FROM orders.order_groups g WHERE g.id = OLD.order_group_id) THEN
        RAISE EXCEPTION 'site % of client group % stays with its order', left(OLD.domain, 64), OLD.order_group_id
            USING ERRCODE = 'OR074',
                  DETAIL = 'Client group ' || NEW.order_group_id || ' belongs to another order; an approved site''s item is its order''s.',
                  HINT = 'Add the site to the other order''s group instead.';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER site_stays BEFORE UPDATE OF order_group_id ON orders.order_site_selections
    FOR EACH ROW WHEN (NEW.order_group_id IS DISTINCT FROM OLD.order_group_id) EXECUTE FUNCTION orders.site_stays();
-- group_client_guard — in an API request a client group names a client the
-- caller can see (0.29.0, OR077): the customers policy decides, asked as
-- the caller.  A client named a customer of somebody else by its id, and
-- shared_order showed that customer's name to whoever held the link.  An
-- id that does not exist gets the same answer (the foreign key's check
-- runs later: no oracle for ids).
CREATE FUNCTION orders.group_client_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF orders.by_maintainer(TG_RELID)
       OR (TG_OP = 'UPDATE' AND NEW.client_id IS NOT DISTINCT FROM OLD.client_id)
       OR EXISTS (SELECT FROM orders.customers c WHERE c.id = NEW.client_id) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'client % of client group % is not a customer you can see', NEW.client_id, NEW.id
        USING ERRCODE = 'OR077',
              HINT = 'Name one of your own customers; staff who may view customers name any.';
END
$$;
CREATE TRIGGER group_client_guard BEFORE INSERT OR UPDATE OF client_id ON orders.order_groups
    FOR EACH ROW WHEN (orders.api_request()) EXECUTE FUNCTION orders.group_client_guard();

-- group_analysis_guard — in an API request the analysis of a client group
-- (its project, its stamps, its status) is staff's (0.35.0, OR060): a
-- client stamped its group analysed and the order moved to "reviewing"
-- with the next group's analysis, its own never made.  In C
-- (src/review.c): the counters' direct write, which sets group_status as
-- the owner, leaves it out.
CREATE FUNCTION orders.group_analysis_guard() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_group_analysis_guard';
CREATE TRIGGER group_analysis_guard
    BEFORE INSERT OR UPDATE OF analysis_project_id, analysis_started_at, analysis_completed_at, group_status
    ON orders.order_groups FOR EACH ROW EXECUTE FUNCTION orders.group_analysis_guard();

-- A site's cost is the agency's, not the client's: whoever writes it into
-- metrics (complete_analysis, staff over the API, a DBA), it is kept in
-- internal_metrics, which no API role may read, so the client's view of
-- the site and the snapshot of its item never show it (0.27.0).  Named to
-- fire before site_items, whose snapshot copies metrics.
CREATE FUNCTION orders.keep_internal_metrics() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.internal_metrics := coalesce(NEW.internal_metrics, '{}') || jsonb_build_object('cost', NEW.metrics -> 'cost');
    NEW.metrics := NEW.metrics - 'cost';
    RETURN NEW;
END
$$;
CREATE TRIGGER site_internal_metrics BEFORE INSERT OR UPDATE OF metrics ON orders.order_site_selections
    FOR EACH ROW WHEN (jsonb_typeof(NEW.metrics) = 'object' AND NEW.metrics ? 'cost') EXECUTE FUNCTION orders.keep_internal_metrics();

-- (0.43.0) site_price_valid — is "price" (a site's metrics.price) none, or a
-- JSON number of cents from 0 to 9999999999.99: what an approval makes the
-- item's unit price (numeric(12,2)) — 12.345 became an item of 12.35, and
-- 0.004 a free site.  The one rule of site_price_check and complete_analysis.
CREATE FUNCTION orders.site_price_valid(price jsonb) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN jsonb_typeof(price) = 'number'
            THEN price::numeric BETWEEN 0 AND 9999999999.99 AND price::numeric = round(price::numeric, 2)
            ELSE coalesce(jsonb_typeof(price), 'null') = 'null' END;

-- site_price_check (0.39.0) — a site's metrics.price, when given, is what
-- the client pays for it: a JSON number from 0 to 9999999999.99, for every
-- writer (22023).  complete_analysis refused other prices, but a PATCH of
-- metrics did not: a price sent as text made the approved site's item
-- free, a huge or negative one failed the client's approval later (22003,
-- 23514).  Its WHEN clause asks for a bad price: a good one pays no call.
-- A restore (orders.restoring: the owner's COPY in a dump's session) takes
-- the rows as dumped — a price stored before 0.39.0 must not lose its site.
CREATE FUNCTION orders.site_price_check() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF orders.restoring(TG_RELID) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'site %: metrics.price % is not an amount', left(NEW.domain, 64), left((NEW.metrics -> 'price')::text, 64)
        USING ERRCODE = '22023',
              HINT = 'metrics.price is what the client pays for the site: a JSON number of cents from 0 to 9999999999.99 (or leave it out).';
END
$$;
CREATE TRIGGER site_price_check BEFORE INSERT OR UPDATE OF metrics ON orders.order_site_selections
    FOR EACH ROW WHEN (NOT orders.site_price_valid(NEW.metrics -> 'price'))
    EXECUTE FUNCTION orders.site_price_check();

-- Who reviewed a site and when is recorded, not written: in an API request
-- the reviewer is the caller (the extension's owner — share_review_sites —
-- names the link itself).  Customers review (status, notes, target page,
-- anchor); what the analysis found (domain, metrics) is staff's (OR060).
-- In C (src/review_sites.c, 0.24.0).
CREATE FUNCTION orders.site_review_columns() RETURNS trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'orders_site_review_columns';
-- Named to fire before site_items (BEFORE triggers fire in name order): the
-- item an approval makes snapshots the reviewer recorded here.
CREATE TRIGGER review_columns BEFORE UPDATE ON orders.order_site_selections
    FOR EACH ROW EXECUTE FUNCTION orders.site_review_columns();

-- Configuration of an order (seed 000): minimum DR, traffic range, niche...
-- (0.41.0) A type is a name of at most 63 characters, a value at most 64 kB
-- as stored (as the groups' overrides).
CREATE TABLE orders.order_requirements (
    id                 uuid PRIMARY KEY DEFAULT orders.new_id(),
    order_id           uuid NOT NULL REFERENCES orders.orders (id) ON DELETE CASCADE,
    requirement_type   text NOT NULL CHECK (requirement_type ~ '^[a-z][a-z0-9_]{0,62}$'),
    requirement_value  jsonb NOT NULL CHECK (orders.jsonb_within(requirement_value, 65536)),
    is_mandatory       boolean NOT NULL DEFAULT false,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_requirements_order_idx ON orders.order_requirements (order_id);

-- Share links (seed 000).  The token itself is never stored: its SHA-256.
CREATE TABLE orders.order_share_tokens (
    id                       uuid PRIMARY KEY DEFAULT orders.new_id(),
    order_id                 uuid NOT NULL REFERENCES orders.orders (id) ON DELETE CASCADE,
    token_hash               bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    expires_at               timestamptz NOT NULL,
    allowed_actions          text[] NOT NULL DEFAULT '{view}'
                             CHECK (allowed_actions <@ ARRAY['view', 'approve', 'convert']
                                    AND cardinality(allowed_actions) BETWEEN 1 AND 3),
    created_by               text NOT NULL DEFAULT orders.current_actor(),
    used_at                  timestamptz,
    converted_to_account_id  uuid,
    revoked_at               timestamptz,
    metadata                 jsonb NOT NULL DEFAULT '{}'
                             CHECK (jsonb_typeof(metadata) = 'object' AND orders.jsonb_within(metadata, 4096)),
    created_at               timestamptz NOT NULL DEFAULT now(),
    customer_id              uuid
);
COMMENT ON COLUMN orders.order_share_tokens.token_hash IS 'SHA-256 of the token; no API role may read it';
COMMENT ON COLUMN orders.order_share_tokens.customer_id IS
    'The order''s customer when the link was made (0.38.0): the link stands while the order is that customer''s';
-- share_token_customer — (0.38.0) a link is for its order's customer of
-- the moment it is made, whoever inserts it (create_share_token, a DBA, a
-- restore of links dumped before 0.38.0): moved to another customer, the
-- order is no longer what the link shows or converts (share_token_row).
CREATE FUNCTION orders.share_token_customer() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.customer_id := (SELECT o.customer_id FROM orders.orders o WHERE o.id = NEW.order_id);
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION orders.share_token_customer() FROM PUBLIC;
CREATE TRIGGER share_token_customer BEFORE INSERT ON orders.order_share_tokens
    FOR EACH ROW WHEN (NEW.customer_id IS NULL) EXECUTE FUNCTION orders.share_token_customer();
CREATE INDEX order_share_tokens_order_idx ON orders.order_share_tokens (order_id);
CREATE INDEX order_share_tokens_expires_idx ON orders.order_share_tokens (expires_at);

SELECT pg_catalog.pg_extension_config_dump('orders.order_groups', '');
SELECT pg_catalog.pg_extension_config_dump('orders.order_site_selections', '');
SELECT pg_catalog.pg_extension_config_dump('orders.order_requirements', '');
SELECT pg_catalog.pg_extension_config_dump('orders.order_share_tokens', '');

---------------------------------------------------------------------------
-- The flow: analysis, review, the gate.
---------------------------------------------------------------------------

-- group_not_found — OR075 for a group that does not exist or is hidden.
CREATE FUNCTION orders.group_not_found(order_group_id uuid) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'client group % does not exist', order_group_id
        USING ERRCODE = 'OR075',
              HINT = 'Either no group has this id or row level security hides it from you.';
END
$$;

-- start_analysis — the analysis of a group started (stamps it).
CREATE FUNCTION orders.start_analysis(order_group_id uuid, analysis_project_id uuid)
    RETURNS orders.order_groups
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g orders.order_groups;
BEGIN
    -- (0.35.0) 22004, as the other API functions (was: a "does not exist" of <NULL>)
    IF start_analysis.order_group_id IS NULL THEN
        RAISE EXCEPTION 'orders.start_analysis: argument "order_group_id" must not be null' USING ERRCODE = '22004';
    END IF;
    UPDATE orders.order_groups og
       SET analysis_project_id = start_analysis.analysis_project_id,
           analysis_started_at = now(), analysis_completed_at = NULL, group_status = 'analyzing'
     WHERE og.id = start_analysis.order_group_id
    RETURNING og.* INTO g;
    IF NOT FOUND THEN
        PERFORM orders.group_not_found(start_analysis.order_group_id);
    END IF;
    RETURN g;
END
$$;

-- complete_analysis — the analysis of a group suggests its sites
-- ([{domain, domain_id, metrics}], duplicates ignored) and is stamped; when
-- the last group of an order in "analyzing" completes, the order moves to
-- "reviewing" through its lifecycle, in this transaction.  Locks as a
-- review does (src/site_items.c): the group's row (its counters, at the end
-- of the INSERT — not before it: the INSERT may wait for a reviewer of one
-- of the sites, who waits for the group), then the order's.  The order row
-- serialises two groups completing at once, which then cannot both miss
-- the other (READ COMMITTED: each statement sees what committed before it).
CREATE FUNCTION orders.complete_analysis(order_group_id uuid, suggestions jsonb)
    RETURNS orders.order_groups
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g orders.order_groups;
    o orders.orders;
    bad jsonb;
    bad_n bigint;
BEGIN
    -- (0.35.0) 22004, as the other API functions (was: a "does not exist" of <NULL>)
    IF complete_analysis.order_group_id IS NULL THEN
        RAISE EXCEPTION 'orders.complete_analysis: argument "order_group_id" must not be null' USING ERRCODE = '22004';
    END IF;
    IF jsonb_typeof(suggestions) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'orders.complete_analysis: suggestions must be a JSON array of {domain, domain_id, metrics}'
            USING ERRCODE = '22023';
    END IF;
    -- a suggestion the INSERT would refuse in its own words, named here
    SELECT x.v, x.n INTO bad, bad_n FROM jsonb_array_elements(suggestions) WITH ORDINALITY x (v, n)
     WHERE coalesce(orders.normalize_domain(x.v ->> 'domain'), '') = ''
        OR NOT coalesce(x.v ->> 'domain_id', '00000000-0000-0000-0000-000000000000')
               ~* '^\{?[0-9a-f]{4}(-?[0-9a-f]{4}){7}\}?$'
     ORDER BY x.n LIMIT 1;
    IF FOUND AND coalesce(orders.normalize_domain(bad ->> 'domain'), '') = '' THEN
        RAISE EXCEPTION 'orders.complete_analysis: suggestion % has no domain', bad_n
            USING ERRCODE = '22023', HINT = 'Each suggestion is {domain, domain_id, metrics}: domain is the site''s host name.';
    ELSIF FOUND THEN
        RAISE EXCEPTION 'orders.complete_analysis: suggestion %: domain_id "%" is not a uuid', bad_n, left(bad ->> 'domain_id', 64)
            USING ERRCODE = '22P02', HINT = 'domain_id is the analysis''s id of the domain (a uuid); leave it out when there is none.';
    END IF;
    -- (0.39.0) a domain that normalises to no host name (a number, "a_b.com",
    -- "-x.org", "localhost", over 253 characters) failed the INSERT's check,
    -- 23514, without naming the suggestion
    SELECT x.v -> 'domain', x.n INTO bad, bad_n FROM jsonb_array_elements(suggestions) WITH ORDINALITY x (v, n)
     WHERE NOT (orders.normalize_domain(x.v ->> 'domain') ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$'
                AND length(orders.normalize_domain(x.v ->> 'domain')) <= 253)
     ORDER BY x.n LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'orders.complete_analysis: suggestion %: domain "%" is not a host name', bad_n, left(bad #>> '{}', 64)
            USING ERRCODE = '22023', HINT = 'A domain is a host name such as blog.example.com (letters, digits and hyphens, dot-separated).';
    END IF;
    -- (0.35.0) metrics, when given, an object (an array failed the INSERT's
    -- check, 23514, without naming the suggestion)
    SELECT x.v -> 'metrics', x.n INTO bad, bad_n FROM jsonb_array_elements(suggestions) WITH ORDINALITY x (v, n)
     WHERE coalesce(jsonb_typeof(x.v -> 'metrics'), 'null') NOT IN ('object', 'null')
     ORDER BY x.n LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'orders.complete_analysis: suggestion %: metrics % is not a JSON object', bad_n, left(bad::text, 64)
            USING ERRCODE = '22023', HINT = 'metrics is an object such as {"dr": 54, "traffic": 1200, "price": 90}.';
    END IF;
    -- (0.29.0) the price the client pays for a site: a JSON number of at
    -- least 0 (a price sent as text made an item of 0; a negative or huge
    -- one failed the client's approval later with 23514 or 22003)
    SELECT x.v -> 'metrics' -> 'price', x.n INTO bad, bad_n FROM jsonb_array_elements(suggestions) WITH ORDINALITY x (v, n)
     WHERE jsonb_typeof(x.v -> 'metrics') = 'object'
       AND NOT orders.site_price_valid(x.v -> 'metrics' -> 'price')
     ORDER BY x.n LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'orders.complete_analysis: suggestion %: metrics.price % is not an amount', bad_n, left(bad::text, 64)
            USING ERRCODE = '22023',
                  HINT = 'metrics.price is what the client pays for the site: a JSON number of cents from 0 to 9999999999.99.';
    END IF;
    IF NOT EXISTS (SELECT FROM orders.orders ord JOIN orders.order_groups og ON og.order_id = ord.id
                    WHERE og.id = complete_analysis.order_group_id) THEN
        PERFORM orders.group_not_found(complete_analysis.order_group_id);
    END IF;
    -- (0.37.0) a group deleted while the INSERT's foreign key waited for it
    -- is the group_not_found it would have been a moment earlier (was 23503)
    BEGIN
        INSERT INTO orders.order_site_selections (order_group_id, domain, domain_id, metrics)
        SELECT complete_analysis.order_group_id, orders.normalize_domain(s ->> 'domain'),
               (s ->> 'domain_id')::uuid, coalesce(nullif(s -> 'metrics', 'null'::jsonb), '{}')
          FROM jsonb_array_elements(suggestions) s
        ON CONFLICT ON CONSTRAINT order_site_selections_order_group_id_domain_key DO NOTHING;
    EXCEPTION WHEN foreign_key_violation THEN
        PERFORM orders.group_not_found(complete_analysis.order_group_id);
    END;
    UPDATE orders.order_groups og
       SET analysis_started_at = coalesce(og.analysis_started_at, now()), analysis_completed_at = now(),
           group_status = CASE WHEN og.approved_count >= og.link_count THEN 'complete' ELSE 'reviewing' END
     WHERE og.id = complete_analysis.order_group_id
    RETURNING og.* INTO g;
    IF NOT FOUND THEN
        PERFORM orders.group_not_found(complete_analysis.order_group_id);
    END IF;
    SELECT * INTO o FROM orders.orders WHERE id = g.order_id FOR NO KEY UPDATE;
    IF FOUND AND o.status = 'analyzing'
       AND NOT EXISTS (SELECT FROM orders.order_groups og
                        WHERE og.order_id = o.id AND og.analysis_completed_at IS NULL) THEN
        PERFORM orders.transition(o.id, 'reviewing', 'analysis complete');
    END IF;
    RETURN g;
END
$$;

-- advance_analysed_orders (0.39.0) — a deleted client group that was still
-- being analysed can leave its order "analyzing" with every remaining group
-- analysed: complete_analysis, which moves such an order, is not called
-- again.  At the end of the DELETE each order of such a group is locked
-- (id order; after the groups, as complete_analysis) and, still
-- "analyzing" with groups left and none unanalysed, moved to "reviewing"
-- ('analysis complete') — by the caller, when its lifecycle has that edge
-- and the caller may take it now (allowed_transitions, and UPDATE on
-- orders): a client, whose edge it is not, leaves the move to staff (a
-- client that asked for more sites took the staff's edge back by adding
-- and deleting a group), and another lifecycle's "analyzing" has no such
-- edge.  An order deleted with its groups, or left without any, stays as
-- it is.  At REPEATABLE READ two deletes of an order's last two pending
-- groups each see the other's group and neither moves it (staff do).
CREATE FUNCTION orders.advance_analysed_orders() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o orders.orders;
    candidate uuid;
BEGIN
    FOR candidate IN SELECT DISTINCT g.order_id FROM gone g WHERE g.analysis_completed_at IS NULL ORDER BY 1 LOOP
        -- locked only when the caller may move it (it then has UPDATE on
        -- orders): a writer who may delete groups but not move orders
        -- deletes them as before
        IF EXISTS (SELECT FROM orders.orders x WHERE x.id = candidate AND x.status = 'analyzing')
           AND has_table_privilege('orders.orders', 'UPDATE')
           AND 'reviewing' IN (SELECT t FROM orders.allowed_transitions(candidate) t) THEN
            SELECT * INTO o FROM orders.orders x WHERE x.id = candidate FOR NO KEY UPDATE;
            IF FOUND AND o.status = 'analyzing'
               AND EXISTS (SELECT FROM orders.order_groups og WHERE og.order_id = o.id)
               AND NOT EXISTS (SELECT FROM orders.order_groups og
                                WHERE og.order_id = o.id AND og.analysis_completed_at IS NULL) THEN
                PERFORM orders.transition(o.id, 'reviewing', 'analysis complete');
            END IF;
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;
CREATE TRIGGER advance_analysed_orders AFTER DELETE ON orders.order_groups
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION orders.advance_analysed_orders();
REVOKE ALL ON FUNCTION orders.advance_analysed_orders() FROM PUBLIC;

-- review_sites — apply a client's verdicts on sites of one group, all or
-- nothing: [{selection_id | domain, status, client_notes, target_page_url,
-- anchor_text}].  One UPDATE as the caller: the counters and the cap
-- (OR070) judge the whole review at once.  In C (src/review_sites.c, 0.24.0).
CREATE FUNCTION orders.review_sites(order_group_id uuid, selections jsonb)
    RETURNS orders.order_groups
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'orders_review_sites';

-- lock_review — a review's row locks before its UPDATE, in the order every
-- writer of sites keeps: its sites (id order; only those the caller may
-- change), their group, the order (as the owner; only when the review
-- approves a site or takes an approval back: it makes or deletes items).  The review's new items
-- then find the order locked by their own transaction: reviewers of one
-- order queue on its row instead of piling MultiXacts (their items'
-- foreign-key KEY SHARE) on its versions (src/review.c).  The sites locked.
CREATE FUNCTION orders.lock_review(order_group_id uuid, site_ids uuid[], approving boolean)
    RETURNS bigint
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'orders_lock_review';

-- apply_review — the review itself, for share_review_sites: "who" is
-- recorded as the reviewer only when the extension's owner calls
-- (share_review_sites names the link); anybody else is recorded as itself.
-- The order must be open and unpaid (OR073: a link reviews what the
-- order's customer may), as the statement sees it before the review and
-- (0.34.0) once locked after the review's sites and group.
CREATE FUNCTION orders.apply_review(order_group_id uuid, selections jsonb, who text)
    RETURNS orders.order_groups
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'orders_apply_review';

-- The gates of the review lifecycle (orders.lifecycle_gates).  SECURITY
-- DEFINER: they judge every group of the order, whatever the caller sees.
CREATE FUNCTION orders.has_client_groups(order_id uuid) RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN NOT EXISTS (SELECT FROM orders.order_groups g WHERE g.order_id = has_client_groups.order_id)
                THEN 'The order has no client group: add one per client (orders.order_groups) first.' END
$$;
CREATE FUNCTION orders.client_review_complete(order_id uuid) RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN o.requires_client_review THEN
             (SELECT 'Groups short of approved sites: '
                     || string_agg(format('%s (%s of %s approved)', c.full_name, g.approved_count, g.link_count),
                                   ', ' ORDER BY c.full_name, g.id)
                FROM orders.order_groups g JOIN orders.customers c ON c.id = g.client_id
               WHERE g.order_id = o.id AND g.approved_count < g.link_count)
           END
      FROM orders.orders o WHERE o.id = client_review_complete.order_id
$$;
INSERT INTO orders.lifecycle_gates (name, check_function, stamp_column, actor_column, description, builtin) VALUES
  ('client_groups', 'orders.has_client_groups(uuid)', NULL, NULL,
   'an agency order has at least one client group before its analysis', true),
  ('client_review', 'orders.client_review_complete(uuid)', 'review_completed_at', 'reviewed_by',
   'an order that requires client review has every group''s sites approved', true);
UPDATE orders.lifecycle_transitions SET gate = 'client_groups'
 WHERE lifecycle = 'review' AND builtin AND from_status = 'configuring' AND to_status = 'analyzing';
UPDATE orders.lifecycle_transitions SET gate = 'client_review'
 WHERE lifecycle = 'review' AND builtin AND from_status = 'reviewing' AND to_status = 'payment_pending';
-- (0.29.0) the review stays complete until the payment: a client withdrew
-- its approval after the gate (still its right until the order is paid)
-- and the order was paid with a group short; the same check, no stamps
INSERT INTO orders.lifecycle_gates (name, check_function, stamp_column, actor_column, description, builtin) VALUES
  ('client_review_kept', 'orders.client_review_complete(uuid)', NULL, NULL,
   'an order that requires client review still has every group''s sites approved when it is paid', true);
UPDATE orders.lifecycle_transitions SET gate = 'client_review_kept'
 WHERE lifecycle = 'review' AND builtin AND from_status = 'payment_pending' AND to_status = 'in_progress';

-- Staff-only notes on sites: no API role has the column; staff with
-- orders.view read and (orders.edit) write them here, for orders in their
-- scope (orders.staff_sees_order, the policies' rule, judged by the
-- caller's identity: these functions run as their owner).
CREATE FUNCTION orders.staff_sees_group(order_group_id uuid) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT orders.staff_sees_order(o.assigned_rep_id, o.assigned_agent_id, o.lifecycle, o.status)
                       FROM orders.order_groups g JOIN orders.orders o ON o.id = g.order_id
                      WHERE g.id = staff_sees_group.order_group_id), false)
$$;
CREATE FUNCTION orders.site_internal_notes(order_group_id uuid)
    RETURNS TABLE (selection_id uuid, domain text, internal_notes text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- (0.35.0) 22004, as the other API functions (was: a "does not exist" of <NULL>)
    IF site_internal_notes.order_group_id IS NULL THEN
        RAISE EXCEPTION 'orders.site_internal_notes: argument "order_group_id" must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT orders.has_permission('orders', 'view') OR NOT orders.staff_sees_group(site_internal_notes.order_group_id) THEN
        PERFORM orders.group_not_found(site_internal_notes.order_group_id);
    END IF;
    RETURN QUERY SELECT x.id, x.domain, x.internal_notes FROM orders.order_site_selections x
                  WHERE x.order_group_id = site_internal_notes.order_group_id ORDER BY x.domain;
END
$$;
CREATE FUNCTION orders.site_internal_metrics(order_group_id uuid)
    RETURNS TABLE (selection_id uuid, domain text, internal_metrics jsonb)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- (0.35.0) 22004, as the other API functions (was: a "does not exist" of <NULL>)
    IF site_internal_metrics.order_group_id IS NULL THEN
        RAISE EXCEPTION 'orders.site_internal_metrics: argument "order_group_id" must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT orders.has_permission('orders', 'view') OR NOT orders.staff_sees_group(site_internal_metrics.order_group_id) THEN
        PERFORM orders.group_not_found(site_internal_metrics.order_group_id);
    END IF;
    RETURN QUERY SELECT x.id, x.domain, x.internal_metrics FROM orders.order_site_selections x
                  WHERE x.order_group_id = site_internal_metrics.order_group_id ORDER BY x.domain;
END
$$;
CREATE FUNCTION orders.set_site_internal_notes(selection_id uuid, internal_notes text)
    RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    grp uuid := (SELECT x.order_group_id FROM orders.order_site_selections x WHERE x.id = set_site_internal_notes.selection_id);
BEGIN
    -- (0.35.0) 22004, as the other API functions (was: a "does not exist" of <NULL>)
    IF set_site_internal_notes.selection_id IS NULL THEN
        RAISE EXCEPTION 'orders.set_site_internal_notes: argument "selection_id" must not be null' USING ERRCODE = '22004';
    END IF;
    IF grp IS NULL OR NOT orders.has_permission('orders', 'edit') OR NOT orders.staff_sees_group(grp) THEN
        RAISE EXCEPTION 'site % does not exist', set_site_internal_notes.selection_id
            USING ERRCODE = 'OR076', HINT = 'Either no site has this id or you may not edit its order.';
    END IF;
    -- (0.42.0) at most 10,000 characters, as the client's notes: staff
    -- stored 50 million, which every reader of the site's notes received
    IF length(set_site_internal_notes.internal_notes) > 10000 THEN
        RAISE EXCEPTION 'orders.set_site_internal_notes: argument "internal_notes" may have at most 10000 characters, not %',
                        length(set_site_internal_notes.internal_notes)
            USING ERRCODE = '22001';
    END IF;
    UPDATE orders.order_site_selections x SET internal_notes = set_site_internal_notes.internal_notes
     WHERE x.id = set_site_internal_notes.selection_id;
END
$$;

-- shares_order — (0.38.0) whether the acting account may share the order
-- by the data: its customer, or staff with orders.edit whose scope has it
-- — whoever the session is (share_creator_may_share asks it of a link's
-- creator behind a DBA's login too).
CREATE FUNCTION orders.shares_order(order_id uuid) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT o.customer_id = ANY (orders.current_customer_ids())
                            OR (orders.has_permission('orders', 'edit')
                                AND orders.staff_sees_order(o.assigned_rep_id, o.assigned_agent_id, o.lifecycle, o.status))
                       FROM orders.orders o WHERE o.id = shares_order.order_id), false)
$$;

-- may_share — whether the caller may create or revoke links of the order:
-- shares_order in API requests; outside them (DBAs, jobs) whoever may call
-- the functions.
CREATE FUNCTION orders.may_share(order_id uuid) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT NOT orders.api_request() OR orders.shares_order(o.id)
                       FROM orders.orders o WHERE o.id = may_share.order_id), false)
$$;

---------------------------------------------------------------------------
-- Share links: a token shows (and may let approve or convert) one order to
-- whoever holds it, without a login.  Unknown, expired, revoked and used
-- tokens get one refusal (OR080, one message: no oracle) and change nothing.
---------------------------------------------------------------------------

-- create_share_token — a URL-safe token of 184 random bits, returned once;
-- only its hash is kept.  For the order's customer or staff with
-- orders.edit on it (orders.may_share); API roles cannot write the table.
CREATE FUNCTION orders.create_share_token(order_id uuid, expires_in interval DEFAULT '7 days',
                                          allowed_actions text[] DEFAULT '{view}', metadata jsonb DEFAULT '{}')
    RETURNS text
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    token text;
BEGIN
    -- (0.35.0) 22004, as the other API functions (was: a "does not exist" of <NULL>)
    IF create_share_token.order_id IS NULL THEN
        RAISE EXCEPTION 'orders.create_share_token: argument "order_id" must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT orders.may_share(create_share_token.order_id) THEN
        RAISE EXCEPTION 'order % does not exist', create_share_token.order_id
            USING ERRCODE = 'OR006',
                  HINT = 'Either no order has this id, row level security hides it, or you may not share it.';
    END IF;
    -- (0.40.0) and as a span from now: '3 mons' compares as 90 days but
    -- ran up to 92 ('1 mon -30 days' compares as 0 but may end tomorrow)
    IF expires_in IS NULL OR expires_in <= interval '0' OR expires_in > interval '90 days'
       OR now() + expires_in > now() + interval '90 days' OR now() + expires_in <= now() THEN
        RAISE EXCEPTION 'orders.create_share_token: expires_in must be more than 0 and at most 90 days'
            USING ERRCODE = '22023';
    END IF;
    -- (0.40.0) a list: '{{view},{view}}' was stored as given; (0.42.0) each
    -- action once: three million 'view' were stored, and every anonymous
    -- open of the link carried them (24 MB)
    IF cardinality(allowed_actions) = 0 OR array_ndims(allowed_actions) <> 1
       OR NOT allowed_actions <@ ARRAY['view', 'approve', 'convert']
       OR cardinality(allowed_actions) <> (SELECT count(DISTINCT a) FROM unnest(allowed_actions) a) THEN
        RAISE EXCEPTION 'orders.create_share_token: allowed_actions must be some of view, approve, convert, each once, not %',
                        left(allowed_actions::text, 100)
            USING ERRCODE = '22023';
    END IF;
    -- (0.37.0) what a link carries for the marketing (UTM and the like) is
    -- small: it was unbounded, a store of any size for whoever may share
    -- (0.41.0) an object, refused here: the table's CHECK, raised as the
    -- owner, showed the new link's row (its token hash among it) in DETAIL
    IF jsonb_typeof(create_share_token.metadata) <> 'object' THEN
        RAISE EXCEPTION 'orders.create_share_token: metadata must be a JSON object, not %',
                        jsonb_typeof(create_share_token.metadata)
            USING ERRCODE = '22023';
    END IF;
    -- (0.41.0) measured without printing it (a 74 kB array of 1e131071
    -- printed as 1 GB, and the server ran out of memory)
    IF NOT orders.jsonb_within(create_share_token.metadata, 4096) THEN
        RAISE EXCEPTION 'orders.create_share_token: metadata may have at most 4096 bytes and numbers below 1e20 with at most 40 decimals'
            USING ERRCODE = '22001';
    END IF;
    -- (0.28.0) a link that converts hands the order's customer row to
    -- whoever redeems it: staff who may edit customers make those (a
    -- delivery agent made one for a shop customer and took it over)
    -- (0.35.0) by admins only, as customers.account_id is written (0.29.0):
    -- a customer rep made one for a shop customer without a login in its
    -- scope, converted it with another account of its own and read that
    -- customer's other orders
    IF 'convert' = ANY (allowed_actions) AND orders.api_request() AND orders.current_staff_role() IS DISTINCT FROM 'admin' THEN
        RAISE EXCEPTION 'a share link that converts (allowed_actions "convert") is made by admins'
            USING ERRCODE = '42501',
                  HINT = 'Leave "convert" out: the link still shows (and may let approve) the order.';
    END IF;
    -- an id of this database's partition (a proxy routes the token by it),
    -- then a random uuid: 184 random bits in all
    token := translate(encode(uuid_send(orders.new_id()) || uuid_send(gen_random_uuid()), 'base64'), '+/=', '-_');
    INSERT INTO orders.order_share_tokens (order_id, token_hash, expires_at, allowed_actions, created_by, metadata)
    VALUES (create_share_token.order_id, sha256(convert_to(token, 'UTF8')), clock_timestamp() + expires_in,
            coalesce(create_share_token.allowed_actions, '{view}'), orders.current_actor(),
            coalesce(create_share_token.metadata, '{}'));
    RETURN token;
END
$$;

-- share_creator_may_share — may the creator of link "t" still share its
-- order (orders.shares_order, asked as the creator's account: act_as, then
-- act_back)?  (0.36.0) A link made by
-- staff who lost the order (unassigned, deactivated, orders.edit taken
-- away) or by a customer whose order it no longer is still showed and
-- approved the order for up to 90 days.  (0.38.0) A link that converts
-- and was made by staff stands while its creator is an admin, as only
-- admins make one through the API: an admin demoted to customer rep kept a
-- converting link that another account of theirs redeemed to take the
-- customer over.  (Other accounts make none through the API; a DBA's link
-- naming one stays as shares_order judges it.)  A creator that is no account
-- (a DBA's role name, no account) may: its links are the DBA's.  (0.38.0)
-- Asked through act_as, of shares_order: the claims alone were not
-- believed behind a DBA's own login (a storefront back end), and may_share
-- lets any such login share — a deactivated creator's links kept showing
-- there.
CREATE FUNCTION orders.share_creator_may_share(t orders.order_share_tokens) RETURNS boolean
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    account uuid;
    saved text[];
    may boolean;
BEGIN
    IF t.created_by IS NULL
       OR t.created_by !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
        RETURN true;
    END IF;
    account := t.created_by::uuid;
    saved := orders.act_as(account);
    may := orders.shares_order(t.order_id)
           AND (NOT 'convert' = ANY (t.allowed_actions) OR orders.current_staff_id() IS NULL
                OR orders.current_staff_role() IS NOT DISTINCT FROM 'admin');
    PERFORM orders.act_back(saved);
    RETURN may;
END
$$;

-- share_token_row — the valid token "token" (not expired, revoked or used,
-- its order still the customer's it was made for (0.38.0: a link followed
-- its order to another customer and converted that one), its creator
-- still allowed to share the order: share_creator_may_share)
-- allowing "action", as its owner sees it; OR080 otherwise (OR081 when
-- valid but not for this action).
CREATE FUNCTION orders.share_token_row(token text, action text)
    RETURNS orders.order_share_tokens
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t orders.order_share_tokens;
BEGIN
    SELECT * INTO t FROM orders.order_share_tokens s
     WHERE s.token_hash = sha256(convert_to(coalesce(share_token_row.token, ''), 'UTF8'))
       AND s.expires_at > clock_timestamp() AND s.revoked_at IS NULL AND s.used_at IS NULL;
    IF NOT FOUND
       OR NOT EXISTS (SELECT FROM orders.orders o WHERE o.id = t.order_id AND o.customer_id = t.customer_id)
       OR NOT orders.share_creator_may_share(t) THEN
        RAISE EXCEPTION 'this share link is not valid'
            USING ERRCODE = 'OR080', HINT = 'Ask for a new link.';
    END IF;
    IF NOT share_token_row.action = ANY (t.allowed_actions) THEN
        RAISE EXCEPTION 'this share link does not allow "%"', share_token_row.action
            USING ERRCODE = 'OR081', HINT = 'Ask for a link that allows it.';
    END IF;
    RETURN t;
END
$$;

-- shared_order — what a share link shows (seed 000's "order with full
-- context"): the order's state and configuration, its groups with their
-- sites and requirements; no internal notes, costs or other customers'
-- data.  Viewing never consumes the token.
CREATE FUNCTION orders.shared_order(token text) RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t orders.order_share_tokens := orders.share_token_row(shared_order.token, 'view');
BEGIN
    RETURN (
      SELECT jsonb_build_object(
               'id', o.id, 'order_number', o.order_number, 'lifecycle', o.lifecycle, 'status', o.status,
               'requires_client_review', o.requires_client_review, 'review_completed_at', o.review_completed_at,
               'currency', o.currency, 'subtotal', o.subtotal, 'total_amount', o.total_amount,
               'created_at', o.created_at, 'analysis_project_id', o.analysis_project_id,
               'allowed_actions', to_jsonb(t.allowed_actions), 'expires_at', t.expires_at,
               'requirements', coalesce((SELECT jsonb_agg(jsonb_build_object('type', r.requirement_type,
                                                  'value', r.requirement_value, 'mandatory', r.is_mandatory)
                                                  ORDER BY r.created_at, r.id)
                                           FROM orders.order_requirements r WHERE r.order_id = o.id), '[]'),
               'groups', coalesce((SELECT jsonb_agg(jsonb_build_object(
                     'id', g.id, 'client', c.full_name, 'link_count', g.link_count,
                     'target_pages', g.target_pages, 'anchor_texts', g.anchor_texts,
                     'group_status', g.group_status, 'suggested', g.suggested_count,
                     'approved', g.approved_count, 'rejected', g.rejected_count,
                     'sites', coalesce((SELECT jsonb_agg(jsonb_build_object(
                                 'id', x.id, 'domain', x.domain, 'metrics', x.metrics - 'cost',
                                 'status', x.status, 'target_page_url', x.target_page_url,
                                 'anchor_text', x.anchor_text, 'client_notes', x.client_notes,
                                 'reviewed_at', x.reviewed_at) ORDER BY x.domain)
                               FROM orders.order_site_selections x WHERE x.order_group_id = g.id), '[]'))
                     ORDER BY g.created_at, g.id)
                   FROM orders.order_groups g JOIN orders.customers c ON c.id = g.client_id
                  WHERE g.order_id = o.id), '[]'))
        FROM orders.orders o WHERE o.id = t.order_id);
END
$$;

-- share_review_sites — review_sites through a link that allows "approve";
-- the reviewer recorded is the link ("share:<token id>").
CREATE FUNCTION orders.share_review_sites(token text, order_group_id uuid, selections jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t orders.order_share_tokens := orders.share_token_row(share_review_sites.token, 'approve');
    g orders.order_groups;
    state text;
    msg text;
    hint text;
BEGIN
    -- (0.39.0) 22004, as review_sites (was OR075 naming <NULL>)
    IF share_review_sites.order_group_id IS NULL THEN
        RAISE EXCEPTION 'orders.share_review_sites: argument "order_group_id" must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT EXISTS (SELECT FROM orders.order_groups og
                    WHERE og.id = share_review_sites.order_group_id AND og.order_id = t.order_id) THEN
        PERFORM orders.group_not_found(share_review_sites.order_group_id);
    END IF;
    -- (0.28.0) a link reviews what its order's customer may: the sites of an
    -- open, unpaid order (a customer's own link rewrote a paid order's
    -- approved site and rejected the others) — judged by apply_review
    -- (0.34.0) before the review and again on the order locked after its
    -- sites and group (OR073)
    g := orders.apply_review(share_review_sites.order_group_id, share_review_sites.selections, 'share:' || t.id);
    RETURN jsonb_build_object('id', g.id, 'link_count', g.link_count, 'approved', g.approved_count,
                              'rejected', g.rejected_count, 'suggested', g.suggested_count,
                              'group_status', g.group_status);
EXCEPTION WHEN integrity_constraint_violation THEN
    -- (0.41.0) raised as the owner, a constraint's DETAIL ("Failing row
    -- contains …") shows every column of the row — a site's internal notes
    -- and costs — to the link's holder: passed on without it (the review
    -- refuses over-long texts itself, 22001, before it writes)
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
    IF hint <> '' THEN
        RAISE EXCEPTION USING ERRCODE = state, MESSAGE = msg, HINT = hint;
    END IF;
    RAISE EXCEPTION USING ERRCODE = state, MESSAGE = msg;
END
$$;

-- convert_share_token — a prospect who just logged in (JWT sub) takes the
-- shared order: its customer becomes the prospect's account.  Single use:
-- of two conversions at once exactly one wins (the token row is updated
-- only while unused); the other gets OR080.  A staff account converts
-- nothing (OR084, 0.28.0).
CREATE FUNCTION orders.convert_share_token(token text) RETURNS uuid
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    account uuid := orders.actor_account();
    t orders.order_share_tokens;
    customer uuid;
    owner_account uuid;
BEGIN
    -- (0.41.0) a retry of the account's own conversion (the answer lost on
    -- the way) gets the answer the conversion gave — the customer it took,
    -- while that customer is still the account's and the order its — not
    -- OR080 "not valid", which told the prospect its link was bad
    IF account IS NOT NULL THEN
        SELECT c.id INTO customer
          FROM orders.order_share_tokens s
          JOIN orders.orders o ON o.id = s.order_id AND o.customer_id = s.customer_id
          JOIN orders.customers c ON c.id = o.customer_id
         WHERE s.token_hash = sha256(convert_to(coalesce(convert_share_token.token, ''), 'UTF8'))
           AND s.converted_to_account_id = account AND c.account_id = account;
        IF FOUND THEN
            RETURN customer;
        END IF;
    END IF;
    t := orders.share_token_row(convert_share_token.token, 'convert');
    IF account IS NULL THEN
        RAISE EXCEPTION 'converting a share link needs a logged-in account (a JWT whose sub is its id)'
            USING ERRCODE = 'OR082',
                  DETAIL = CASE WHEN orders.current_actor() = current_user THEN 'The request carries no JWT sub.'
                                ELSE format('Its JWT sub "%s" is no account id (a uuid).', left(orders.current_actor(), 64)) END;
    END IF;
    -- (0.28.0) a staff account is nobody's customer: it acts on orders as staff
    IF EXISTS (SELECT FROM orders.staff s WHERE s.account_id = account) THEN
        RAISE EXCEPTION 'account % is staff: a share link converts a prospect, not a staff member', account
            USING ERRCODE = 'OR084', HINT = 'Redeem the link logged in as the customer it was made for.';
    END IF;
    -- (0.38.0) the order first, FOR SHARE — the extension's lock order
    -- (order, then its customer, then what hangs on the order, the link
    -- here): a move, cancellation or delete of the order under way is
    -- waited for, and the customer read as it commits.  Locked by a
    -- statement of its own, before the customer (a join locks its rows in
    -- the plan's order), and before the link (a first cut locked the link
    -- first: a cancellation that then revoked the link deadlocked with it)
    PERFORM FROM orders.orders o WHERE o.id = t.order_id FOR SHARE;
    SELECT o.customer_id, c.account_id INTO customer, owner_account
      FROM orders.orders o JOIN orders.customers c ON c.id = o.customer_id
     WHERE o.id = t.order_id FOR NO KEY UPDATE OF c;
    -- (0.38.0) the customer the link was made for, and no other (the order
    -- moved since share_token_row looked, or is gone)
    IF customer IS DISTINCT FROM t.customer_id THEN
        RAISE EXCEPTION 'this share link is not valid'
            USING ERRCODE = 'OR080', HINT = 'Ask for a new link.';
    END IF;
    UPDATE orders.order_share_tokens s SET used_at = clock_timestamp(), converted_to_account_id = account
     WHERE s.id = t.id AND s.used_at IS NULL AND s.revoked_at IS NULL AND s.expires_at > clock_timestamp();
    IF NOT FOUND THEN
        RAISE EXCEPTION 'this share link is not valid'
            USING ERRCODE = 'OR080', HINT = 'Ask for a new link.';
    END IF;
    IF owner_account IS NOT NULL AND owner_account <> account THEN
        RAISE EXCEPTION 'the shared order belongs to another account'
            USING ERRCODE = 'OR083', HINT = 'The link was for a prospect; ask the agency for an order of your own.';
    END IF;
    UPDATE orders.customers SET account_id = account WHERE id = customer AND account_id IS NULL;
    RETURN customer;
END
$$;

-- revoke_share_token — the link stops working, for good (by its id, for
-- whoever may share the order).
CREATE FUNCTION orders.revoke_share_token(token_id uuid) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE orders.order_share_tokens s SET revoked_at = clock_timestamp()
     WHERE s.id = revoke_share_token.token_id AND s.revoked_at IS NULL AND orders.may_share(s.order_id);
    -- (0.41.0) revoking a revoked link is done already (a retry, a double
    -- click): only a link that does not exist or is not the caller's to
    -- revoke is refused
    IF NOT FOUND AND NOT EXISTS (SELECT FROM orders.order_share_tokens s
                                  WHERE s.id = revoke_share_token.token_id AND orders.may_share(s.order_id)) THEN
        RAISE EXCEPTION 'this share link is not valid'
            USING ERRCODE = 'OR080', HINT = 'It does not exist, or you may not revoke it.';
    END IF;
END
$$;

-- recount_site_counts — repair: recount a group's counters from its sites
-- (owner, READ COMMITTED); returns the groups that were wrong.
CREATE FUNCTION orders.recount_site_counts(order_group_id uuid DEFAULT NULL)
    RETURNS TABLE (id uuid, stored integer[], counted integer[])
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM orders.require_read_committed('orders.recount_site_counts',
        'A transaction snapshot would not see sites committed while it waits for the groups.');
    PERFORM 1 FROM orders.order_groups g
     WHERE recount_site_counts.order_group_id IS NULL OR g.id = recount_site_counts.order_group_id
     ORDER BY g.id FOR NO KEY UPDATE;
    RETURN QUERY
    WITH counted AS (
        SELECT g.id, ARRAY[g.suggested_count, g.approved_count, g.rejected_count] AS stored,
               ARRAY[count(*) FILTER (WHERE x.status = 'suggested'), count(*) FILTER (WHERE x.status = 'approved'),
                     count(*) FILTER (WHERE x.status = 'rejected')]::integer[] AS counted
          FROM orders.order_groups g LEFT JOIN orders.order_site_selections x ON x.order_group_id = g.id
         WHERE recount_site_counts.order_group_id IS NULL OR g.id = recount_site_counts.order_group_id
         GROUP BY g.id),
    fixed AS (
        UPDATE orders.order_groups g
           SET suggested_count = c.counted[1], approved_count = c.counted[2], rejected_count = c.counted[3]
          FROM counted c WHERE g.id = c.id AND c.stored <> c.counted
        RETURNING g.id)
    SELECT c.id, c.stored, c.counted FROM counted c JOIN fixed f ON f.id = c.id;
END
$$;

-- TRUNCATE skips the row and statement triggers that keep the counters:
-- refused while a group counts a site (at READ COMMITTED only, 0.30.0).
CREATE FUNCTION orders.sites_truncate_guard() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM orders.require_read_committed('TRUNCATE orders.order_site_selections',
        'Its check that nothing counts the rows needs a snapshot taken after the table''s lock.');
    IF EXISTS (SELECT FROM orders.order_groups g
                WHERE g.suggested_count <> 0 OR g.approved_count <> 0 OR g.rejected_count <> 0) THEN
        RAISE EXCEPTION 'cannot truncate orders.order_site_selections while client groups count their sites'
            USING ERRCODE = 'OR014', HINT = 'Use DELETE; the counters and items follow it.';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER sites_truncate_guard BEFORE TRUNCATE ON orders.order_site_selections
    FOR EACH STATEMENT EXECUTE FUNCTION orders.sites_truncate_guard();

---------------------------------------------------------------------------
-- Policies (doc/security.md): everything follows the order.  A customer
-- reviews the sites of its own orders; staff by their order scope.
---------------------------------------------------------------------------
ALTER TABLE orders.lifecycle_gates ENABLE ROW LEVEL SECURITY;
CREATE POLICY readable ON orders.lifecycle_gates FOR SELECT USING (true);

ALTER TABLE orders.order_groups ENABLE ROW LEVEL SECURITY;
CREATE POLICY reach ON orders.order_groups
    USING (EXISTS (SELECT FROM orders.orders o WHERE o.id = order_id));
CREATE POLICY insert_right ON orders.order_groups AS RESTRICTIVE FOR INSERT
    WITH CHECK (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('orders', 'edit')) OR orders.customer_may_edit_items(order_id));
CREATE POLICY update_right ON orders.order_groups AS RESTRICTIVE FOR UPDATE
    USING (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('orders', 'edit')) OR orders.customer_may_edit_items(order_id));
CREATE POLICY delete_right ON orders.order_groups AS RESTRICTIVE FOR DELETE
    USING (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('orders', 'edit')) OR orders.customer_may_edit_items(order_id));

ALTER TABLE orders.order_site_selections ENABLE ROW LEVEL SECURITY;
CREATE POLICY reach ON orders.order_site_selections
    USING (EXISTS (SELECT FROM orders.order_groups g WHERE g.id = order_group_id));
CREATE POLICY update_right ON orders.order_site_selections AS RESTRICTIVE FOR UPDATE
    USING (NOT (SELECT orders.api_request()) OR (SELECT orders.has_permission('orders', 'edit'))
           OR orders.customer_may_edit_items((SELECT g.order_id FROM orders.order_groups g WHERE g.id = order_group_id)));
-- (0.35.0) not by a delivery agent, who prices no item (item_price_guard):
-- an approved site's item is priced from its metrics
CREATE POLICY insert_right ON orders.order_site_selections AS RESTRICTIVE FOR INSERT
    WITH CHECK (NOT (SELECT orders.api_request())
                OR ((SELECT orders.has_permission('orders', 'edit'))
                    AND (SELECT orders.current_staff_role()) IS DISTINCT FROM 'delivery_agent'));
CREATE POLICY delete_right ON orders.order_site_selections AS RESTRICTIVE FOR DELETE
    USING (NOT (SELECT orders.api_request()) OR (SELECT orders.has_permission('orders', 'edit')));

ALTER TABLE orders.order_requirements ENABLE ROW LEVEL SECURITY;
CREATE POLICY reach ON orders.order_requirements
    USING (EXISTS (SELECT FROM orders.orders o WHERE o.id = order_id));
CREATE POLICY insert_right ON orders.order_requirements AS RESTRICTIVE FOR INSERT
    WITH CHECK (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('orders', 'edit')) OR orders.customer_may_edit_items(order_id));
CREATE POLICY update_right ON orders.order_requirements AS RESTRICTIVE FOR UPDATE
    USING (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('orders', 'edit')) OR orders.customer_may_edit_items(order_id));
CREATE POLICY delete_right ON orders.order_requirements AS RESTRICTIVE FOR DELETE
    USING (NOT (SELECT orders.api_request())
           OR (SELECT orders.has_permission('orders', 'edit')) OR orders.customer_may_edit_items(order_id));

-- customer_edit_recheck (0.33.0, C: src/locked_orders.c) — the policies
-- above judge a customer's groups and requirements with the statement's
-- snapshot: one written while its order was paid landed in the paid order.
-- At the statement's end the orders it touched are locked (id order) and
-- judged again: still the caller's, open and unpaid (42501, nothing
-- written).  Callers the policies let in otherwise (no API request, the
-- owner, staff with orders.edit) pass at once.  (0.34.0) A customer's
-- verdicts on sites are judged the same way by site_counts, in the one
-- pass that locks the orders of a statement's approvals (src/site_items.c).
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

-- share links: seen (without their hash) by whoever may edit the order
ALTER TABLE orders.order_share_tokens ENABLE ROW LEVEL SECURITY;
CREATE POLICY reach ON orders.order_share_tokens
    USING (EXISTS (SELECT FROM orders.orders o WHERE o.id = order_id
                      AND (o.customer_id = ANY ((SELECT orders.current_customer_ids())::uuid[])
                           OR (SELECT orders.has_permission('orders', 'edit')))));

REVOKE ALL ON orders.order_groups, orders.order_site_selections, orders.order_requirements,
              orders.order_share_tokens FROM PUBLIC;
REVOKE ALL ON FUNCTION orders.group_counts_guard(), orders.site_counts(), orders.site_items(),
    orders.group_sites_stay(), orders.sites_truncate_guard(), orders.recount_site_counts(uuid),
    orders.site_review_columns(), orders.keep_internal_metrics(), orders.site_price_check(), orders.group_client_guard(),
    orders.group_analysis_guard(), orders.site_stays(), orders.site_item_guard(), orders.inserted_site_items(),
    -- (0.36.0) the share functions' own: PUBLIC, it gave a link's holder
    -- the whole row (its creator's account, metadata, hash)
    orders.share_token_row(text, text), orders.share_creator_may_share(orders.order_share_tokens) FROM PUBLIC;
-- (0.41.0) whether the caller may share an order is asked by the share
-- functions alone, as their owner: PUBLIC, may_share told any login
-- outside the API whether an order id exists; shares_order was PUBLIC by
-- default.  The sites' recheck trigger is the triggers' only.
REVOKE ALL ON FUNCTION orders.may_share(uuid), orders.shares_order(uuid), orders.customer_edit_recheck() FROM PUBLIC;
-- the staff and customer functions: not anon's (they would refuse it anyway)
REVOKE ALL ON FUNCTION orders.site_internal_notes(uuid), orders.set_site_internal_notes(uuid, text),
    orders.site_internal_metrics(uuid),
    orders.start_analysis(uuid, uuid), orders.complete_analysis(uuid, jsonb), orders.review_sites(uuid, jsonb),
    orders.create_share_token(uuid, interval, text[], jsonb), orders.revoke_share_token(uuid) FROM PUBLIC;
-- (0.29.0) the built-in gates' checks are the transitions' alone (they need
-- no EXECUTE there): called directly they named the clients of any order
REVOKE ALL ON FUNCTION orders.has_client_groups(uuid), orders.client_review_complete(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    orders.normalize_domain(text), orders.group_not_found(uuid), orders.staff_sees_group(uuid),
    orders.lock_review(uuid, uuid[], boolean), orders.apply_review(uuid, jsonb, text) TO PUBLIC;
