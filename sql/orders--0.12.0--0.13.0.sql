-- orders 0.12.0 -> 0.13.0
--  * apply_review (behind review_sites and share_review_sites) runs its
--    statements with generic plans: they all find rows by key, and the
--    custom plans the planner kept choosing were made again on every call.
--  * The revenue posting trigger finds the recording staff member in C
--    (the new library), no longer through orders.staff_id_of(text) (a SQL
--    function with SET search_path is planned again on every call: ~10 % of
--    a payment change's CPU).  staff_id_of stays for now: a backend that
--    started before the new library was installed still runs the old one,
--    whose kept plan calls it until the session ends.
--  * ingest_webhook and ingest_webhook_body are PL/pgSQL: as SQL functions
--    with SET search_path they were never inlined and their body was
--    parsed, analysed and planned at every delivery (a few per cent).
\echo Use "ALTER EXTENSION orders UPDATE TO '0.13.0'" to load this file. \quit
ALTER FUNCTION orders.apply_review(uuid, jsonb, text) SET plan_cache_mode = force_generic_plan;
-- CREATE OR REPLACE keeps the grants and comments; only the language and
-- body change
CREATE OR REPLACE FUNCTION orders.ingest_webhook(endpoint text, payload json, signature text DEFAULT NULL,
                                      delivery_id text DEFAULT NULL, topic text DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN orders.webhook_ingest(endpoint, payload::text, payload::jsonb, signature, delivery_id, topic);
END
$$;
CREATE OR REPLACE FUNCTION orders.ingest_webhook_body(endpoint text, body text, signature text DEFAULT NULL,
                                           delivery_id text DEFAULT NULL, topic text DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN orders.webhook_ingest(endpoint, body, NULL, signature, delivery_id, topic);
END
$$;
