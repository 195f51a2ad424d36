-- orders 0.23.0 -> 0.24.0
--  * orders.review_sites and orders.apply_review in C (src/review_sites.c):
--    the same checks, refusals, locks and UPDATE as the PL/pgSQL they
--    replace, without PL/pgSQL's own work and, for sites named by id, without
--    a statement to find the sites before locking them (doc/review.md).
--  * orders.site_review_columns() (the sites' BEFORE UPDATE trigger that
--    records the reviewer in API requests) in C: the same rules.
\echo Use "ALTER EXTENSION orders UPDATE TO '0.24.0'" to load this file. \quit

CREATE OR REPLACE FUNCTION orders.review_sites(order_group_id uuid, selections jsonb)
    RETURNS orders.order_groups
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'orders_review_sites';

CREATE OR REPLACE FUNCTION orders.apply_review(order_group_id uuid, selections jsonb, who text)
    RETURNS orders.order_groups
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'orders_apply_review';

CREATE OR REPLACE FUNCTION orders.site_review_columns() RETURNS trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'orders_site_review_columns';
