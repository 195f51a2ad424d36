-- orders 0.28.0 -> 0.29.0
--  * A client group names a client the caller can see (OR077): a client
--    named another account's customer by its id, and shared_order showed
--    that customer's name to whoever held the link.
\echo Use "ALTER EXTENSION orders UPDATE TO '0.29.0'" to load this file. \quit

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
REVOKE ALL ON FUNCTION orders.group_client_guard() FROM PUBLIC;
