-- orders 0.18.0 -> 0.19.0
--  * A review locks its rows before its UPDATE (orders.lock_review, C): its
--    sites in id order, their group, then the order — so the items it makes
--    find the order locked by their own transaction, and reviewers of one
--    order queue on its row instead of piling MultiXacts on its versions
--    (doc/decisions.md 0.19.0).  apply_review calls it.
--  * The activity log's index of a user's timeline leaves out rows without a
--    user (changes by customers, shops, jobs, DBAs): rebuilt here (a scan of
--    the log; doc/operations.md).  The library queues no foreign-key check
--    for such rows.
\echo Use "ALTER EXTENSION orders UPDATE TO '0.19.0'" to load this file. \quit
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
    -- sites, group, order: the order every writer of sites locks them in
    IF sites IS NOT NULL THEN
        PERFORM orders.lock_review(g.id, sites, EXISTS (SELECT FROM unnest(entries) e WHERE e ->> 'status' = 'approved'));
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
DROP INDEX orders.activity_logs_user_id_idx;
CREATE INDEX activity_logs_user_id_idx ON orders.activity_logs (user_id, created_at) WHERE user_id IS NOT NULL;
GRANT EXECUTE ON FUNCTION orders.lock_review(uuid, uuid[], boolean) TO PUBLIC;
