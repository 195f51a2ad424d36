-- orders 0.16.0 -> 0.17.0
--  * An approved site's item is made by orders.site_items in C (was
--    PL/pgSQL); the items of sites no longer approved are deleted at the end
--    of the statement by orders.site_counts (C, one DELETE), replacing the
--    row trigger orders.site_items_gone.
--  * A review locks its group's row before its order's (the subtotal of
--    the items it made or deleted moves at the end of the statement), so
--    the order row is held for the least time; orders.complete_analysis
--    takes the two in the same order; orders.apply_review updates the
--    sites of a review in their id order (reviews of the same sites queue
--    rather than deadlock).
--  * The trigger site_review_columns is renamed review_columns, so that it
--    fires before site_items (BEFORE triggers fire in name order): the
--    item an API reviewer's approval makes now snapshots that reviewer as
--    approved_by (it took the previous reviewer, or NULL).
\echo Use "ALTER EXTENSION orders UPDATE TO '0.17.0'" to load this file. \quit
ALTER TRIGGER site_review_columns ON orders.order_site_selections RENAME TO review_columns;
DROP TRIGGER site_items_gone ON orders.order_site_selections;
DROP FUNCTION orders.site_items_gone();
CREATE OR REPLACE FUNCTION orders.site_items() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_site_items';

CREATE OR REPLACE FUNCTION orders.complete_analysis(order_group_id uuid, suggestions jsonb)
    RETURNS orders.order_groups
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g orders.order_groups;
    o orders.orders;
BEGIN
    IF jsonb_typeof(suggestions) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'orders.complete_analysis: suggestions must be a JSON array of {domain, domain_id, metrics}'
            USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT FROM orders.orders ord JOIN orders.order_groups og ON og.order_id = ord.id
                    WHERE og.id = complete_analysis.order_group_id) THEN
        PERFORM orders.group_not_found(complete_analysis.order_group_id);
    END IF;
    INSERT INTO orders.order_site_selections (order_group_id, domain, domain_id, metrics)
    SELECT complete_analysis.order_group_id, orders.normalize_domain(s ->> 'domain'),
           (s ->> 'domain_id')::uuid, coalesce(s -> 'metrics', '{}')
      FROM jsonb_array_elements(suggestions) s
    ON CONFLICT ON CONSTRAINT order_site_selections_order_group_id_domain_key DO NOTHING;
    UPDATE orders.order_groups og
       SET analysis_completed_at = now(),
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

CREATE OR REPLACE FUNCTION orders.apply_review(order_group_id uuid, selections jsonb, who text)
    RETURNS orders.order_groups
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
    SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    g orders.order_groups;
    -- the owner (share_review_sites) names the reviewer; anybody else is
    -- recorded as itself, by the trigger site_review_columns
    reviewer text := CASE WHEN orders.by_maintainer('orders.order_groups'::regclass)
                          THEN coalesce(who, orders.current_actor()) END;
    problem text;
    sites uuid[];
    entries jsonb[];
    updated bigint;
BEGIN
    IF jsonb_typeof(selections) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'orders.review_sites: selections must be a JSON array of {selection_id | domain, status, ...}'
            USING ERRCODE = '22023';
    END IF;
    SELECT * INTO g FROM orders.order_groups og WHERE og.id = apply_review.order_group_id;
    IF NOT FOUND THEN
        PERFORM orders.group_not_found(apply_review.order_group_id);
    END IF;
    -- every entry a known status, a site of the group, named once; each
    -- entry resolved to its site through an index (the id's canonical text,
    -- or the group's normalised domain), not by scanning the group's sites
    WITH i AS (
        SELECT e.n, e.s, e.s ->> 'status' AS status,
               coalesce(e.s ->> 'selection_id', e.s ->> 'domain') AS named,
               CASE WHEN e.s ? 'selection_id'
                    THEN (SELECT x.id FROM orders.order_site_selections x
                           WHERE x.id = CASE WHEN (e.s ->> 'selection_id') ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                                             THEN (e.s ->> 'selection_id')::uuid END
                             AND x.order_group_id = g.id)
                    ELSE (SELECT x.id FROM orders.order_site_selections x
                           WHERE x.order_group_id = g.id AND x.domain = orders.normalize_domain(e.s ->> 'domain')) END AS site
          FROM jsonb_array_elements(selections) WITH ORDINALITY AS e (s, n))
    SELECT (SELECT CASE WHEN status IS NULL OR status NOT IN ('suggested', 'approved', 'rejected', 'alternate')
                        THEN format('status "%s" is not one of suggested, approved, rejected, alternate', left(coalesce(status, 'null'), 64))
                        WHEN site IS NULL THEN format('site %s is not a site of client group %s', left(coalesce(named, 'null'), 64), g.id)
                        ELSE format('site %s is named twice', site) END
              FROM i
             WHERE status IS NULL OR status NOT IN ('suggested', 'approved', 'rejected', 'alternate') OR site IS NULL
                OR site IN (SELECT i2.site FROM i i2 GROUP BY i2.site HAVING count(*) > 1)
             ORDER BY n LIMIT 1),
           -- in the sites' id order: reviews of the same sites lock them in
           -- one order, so they queue instead of deadlocking
           (SELECT array_agg(i.site ORDER BY i.site) FROM i), (SELECT array_agg(i.s ORDER BY i.site) FROM i)
      INTO problem, sites, entries;
    IF problem LIKE 'site % is not a site of%' THEN
        RAISE EXCEPTION '%', problem USING ERRCODE = 'OR076', HINT = 'Review the sites the group''s analysis suggested.';
    ELSIF problem IS NOT NULL THEN
        RAISE EXCEPTION 'orders.review_sites: %', problem USING ERRCODE = '22023';
    END IF;
    IF reviewer IS NULL THEN
        -- any caller but the owner: the trigger site_review_columns records it
        UPDATE orders.order_site_selections x
           SET status = e.s ->> 'status',
               client_notes = coalesce(e.s ->> 'client_notes', x.client_notes),
               target_page_url = coalesce(e.s ->> 'target_page_url', x.target_page_url),
               anchor_text = coalesce(e.s ->> 'anchor_text', x.anchor_text)
          FROM unnest(sites, entries) AS e (site, s)
         WHERE x.id = e.site AND x.order_group_id = g.id;
    ELSE
        UPDATE orders.order_site_selections x
           SET status = e.s ->> 'status',
               client_notes = coalesce(e.s ->> 'client_notes', x.client_notes),
               target_page_url = coalesce(e.s ->> 'target_page_url', x.target_page_url),
               anchor_text = coalesce(e.s ->> 'anchor_text', x.anchor_text),
               reviewed_at = now(), reviewed_by = reviewer
          FROM unnest(sites, entries) AS e (site, s)
         WHERE x.id = e.site AND x.order_group_id = g.id;
    END IF;
    -- every entry names a distinct site of the group: fewer rows updated
    -- means a site was deleted meanwhile (OR076) or row level security kept
    -- the caller from changing it (e.g. a client and its closed order:
    -- 42501) — refused, never a silent no-op
    GET DIAGNOSTICS updated = ROW_COUNT;
    IF updated < cardinality(sites)
       AND (SELECT count(*) FROM orders.order_site_selections x WHERE x.id = ANY (sites)) < cardinality(sites) THEN
        RAISE EXCEPTION 'a site of the review is no longer a site of client group %', g.id
            USING ERRCODE = 'OR076', HINT = 'It was deleted meanwhile; review the group''s sites again.';
    ELSIF updated < cardinality(sites) THEN
        RAISE EXCEPTION 'you may not review the sites of order "%"',
                        (SELECT o.order_number FROM orders.orders o WHERE o.id = g.order_id)
            USING ERRCODE = '42501',
                  HINT = 'A client reviews the sites of its own orders while they are open.';
    END IF;
    SELECT * INTO g FROM orders.order_groups og WHERE og.id = g.id;
    RETURN g;
END
$$;
