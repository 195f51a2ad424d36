-- orders 0.27.0 -> 0.28.0
--  * Staff's edges of the built-in agency and campaign lifecycles: a client
--    took its own agency order "payment received" (payment_pending ->
--    in_progress, stamping paid_at) and "completed", and reopened its
--    completed campaign.  analyzing -> reviewing, payment_pending ->
--    in_progress (accountants too), in_progress -> completed / cancelled
--    and campaign completed -> active get allowed_staff, unless a DBA set
--    them.
--  * Deleting a client group of a paid or closed order took its approved
--    sites, and their items, away (the sites went by the foreign key's
--    cascade, when site_items no longer found their order): the group's
--    own trigger, orders.group_sites_stay, refuses first (OR073).
--  * (library) A customer rep who moves an unassigned order becomes its
--    rep: cancelling one was refused with a bare row level security error.
\echo Use "ALTER EXTENSION orders UPDATE TO '0.28.0'" to load this file. \quit

UPDATE orders.lifecycle_transitions t SET allowed_staff = w.who::text[]
  FROM (VALUES
    ('review',   'analyzing',       'reviewing',   '{admin,manager,customer_rep}'),
    ('review',   'payment_pending', 'in_progress', '{admin,manager,accountant}'),
    ('review',   'in_progress',     'completed',   '{admin,manager,customer_rep}'),
    ('review',   'in_progress',     'cancelled',   '{admin,manager}'),
    ('campaign', 'completed',       'active',      '{admin,manager,customer_rep}')
  ) w (lifecycle, from_status, to_status, who)
 WHERE t.lifecycle = w.lifecycle AND t.builtin AND t.from_status = w.from_status AND t.to_status = w.to_status
   AND t.allowed_staff IS NULL;

CREATE FUNCTION orders.group_sites_stay() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_group_sites_stay';
CREATE TRIGGER group_sites_stay BEFORE DELETE ON orders.order_groups
    FOR EACH ROW EXECUTE FUNCTION orders.group_sites_stay();
REVOKE ALL ON FUNCTION orders.group_sites_stay() FROM PUBLIC;
