
---------------------------------------------------------------------------
-- Staff notifications (issue 13, seed 004; doc/notifications.md): rows for
-- one staff member each, written by the extension's owner (workflows, the
-- DBA's jobs); a staff member reads, marks read and deletes only their own
-- (row level security on user_id = orders.current_staff_id()).
---------------------------------------------------------------------------

CREATE TABLE orders.notifications (
    id          uuid PRIMARY KEY DEFAULT orders.new_id(),
    user_id     uuid NOT NULL REFERENCES orders.staff (id) ON DELETE CASCADE,
    type        text NOT NULL CHECK (type IN ('order', 'delivery', 'system', 'workflow', 'alert')),
    title       orders.label NOT NULL,
    message     text,
    data        orders.json_object NOT NULL DEFAULT '{}',
    is_read     boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE orders.notifications IS
    'Notifications of staff members (seed 004): each reads and marks only their own';
-- a staff member's list, newest first; the unread count and list
CREATE INDEX notifications_user_idx ON orders.notifications (user_id, created_at DESC);
CREATE INDEX notifications_unread_idx ON orders.notifications (user_id, created_at DESC) WHERE NOT is_read;

ALTER TABLE orders.notifications ENABLE ROW LEVEL SECURITY;
-- (0.27.0) an active staff member's: a deactivated one reads and marks none
CREATE POLICY own ON orders.notifications
    USING (user_id = (SELECT orders.current_staff_id()) AND (SELECT orders.current_staff_role()) IS NOT NULL);

-- unread_notifications — the caller's unread notifications, newest first.
CREATE FUNCTION orders.unread_notifications()
    RETURNS SETOF orders.notifications
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT n.* FROM orders.notifications n
     WHERE n.user_id = orders.current_staff_id() AND NOT n.is_read
     ORDER BY n.created_at DESC, n.id;
END;

-- mark_notifications_read — mark the caller's notifications read: those of
-- "ids", or all (NULL); the number marked.  Ids of others' (or unknown)
-- notifications mark nothing.  42501 for a caller who is no active staff
-- member (0.27.0: a deactivated one too).
CREATE FUNCTION orders.mark_notifications_read(ids uuid[] DEFAULT NULL)
    RETURNS integer
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    me uuid := CASE WHEN orders.current_staff_role() IS NOT NULL THEN orders.current_staff_id() END;
    n integer;
BEGIN
    IF me IS NULL THEN
        RAISE EXCEPTION 'only active staff members have notifications'
            USING ERRCODE = '42501', HINT = 'Log in with an account that orders.staff.account_id names.';
    END IF;
    UPDATE orders.notifications x SET is_read = true
     WHERE x.user_id = me AND NOT x.is_read AND (ids IS NULL OR x.id = ANY (ids));
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- announce_notification — AFTER INSERT: NOTIFY orders_notifications with
-- {"id", "user_id", "type"} (never the title or message: any session may
-- LISTEN; the listener reads the row through its own policies).
CREATE FUNCTION orders.announce_notification() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_notify('orders_notifications',
                      json_build_object('id', NEW.id, 'user_id', NEW.user_id, 'type', NEW.type)::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER announce_notification AFTER INSERT ON orders.notifications
    FOR EACH ROW EXECUTE FUNCTION orders.announce_notification();

-- (0.45.0) purge_notifications — delete notifications created before
-- "older_than" ago, read or not (a deactivated member's unread ones would
-- stay for good); the number deleted.  A daily pg_cron job (cron_jobs).
CREATE FUNCTION orders.purge_notifications(older_than interval DEFAULT '180 days')
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
    cutoff timestamptz := orders.purge_cutoff('orders.purge_notifications', older_than);
BEGIN
    DELETE FROM orders.notifications x WHERE x.created_at < cutoff;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

SELECT pg_catalog.pg_extension_config_dump('orders.notifications', '');
REVOKE ALL ON orders.notifications FROM PUBLIC;
REVOKE ALL ON FUNCTION orders.announce_notification(), orders.purge_notifications(interval) FROM PUBLIC;
