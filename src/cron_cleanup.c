/*
 * cron_cleanup.c — DROP EXTENSION orders takes the extension's pg_cron jobs
 * with it.
 *
 * A job orders.schedule_jobs() registered is a row of cron.job, not an
 * object of the extension, so PostgreSQL's dependency tracking cannot drop
 * it; left behind, it would fail every minute ("schema orders does not
 * exist").  An event trigger of the extension runs at ddl_command_start of
 * DROP EXTENSION / DROP SCHEMA, while everything still exists:
 *
 *   CREATE EVENT TRIGGER orders_unschedule_jobs ON ddl_command_start
 *     WHEN TAG IN ('DROP EXTENSION', 'DROP SCHEMA')
 *     EXECUTE FUNCTION orders.unschedule_on_drop();
 */
#include "orders.h"

#include "catalog/namespace.h"
#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/acl.h"

PG_FUNCTION_INFO_V1(orders_unschedule_on_drop);

/*
 * drops_orders — "stmt" drops the extension orders or its schema, and the
 * caller owns what it drops (else the DROP itself refuses, with its own
 * error, and nothing here must run first).
 */
static bool
drops_orders(const DropStmt *stmt)
{
	ListCell   *lc;

	if (stmt->removeType != OBJECT_EXTENSION && stmt->removeType != OBJECT_SCHEMA)
		return false;
	foreach(lc, stmt->objects)
	{
		Node	   *name = (Node *) lfirst(lc);

		if (!IsA(name, String) || strcmp(strVal(name), ORDERS_SCHEMA) != 0)
			continue;
		if (stmt->removeType == OBJECT_EXTENSION)
		{
			Oid			ext = get_extension_oid(ORDERS_SCHEMA, true);

			return OidIsValid(ext) && pg_extension_ownercheck(ext, GetUserId());
		}
		else
		{
			Oid			nsp = get_namespace_oid(ORDERS_SCHEMA, true);

			return OidIsValid(nsp) && pg_namespace_ownercheck(nsp, GetUserId());
		}
	}
	return false;
}

/*
 * orders_unschedule_on_drop — event trigger: when the statement drops the
 * extension (or its schema) and pg_cron is installed in this database,
 * unschedule this database's jobs named by orders.cron_jobs() that the
 * caller may see (pg_cron's row level security: a superuser all, anyone else
 * their own).  It runs in the dropping transaction: a DROP that fails keeps
 * the jobs.  Jobs scheduled from another database (cron.schedule_in_database)
 * are out of reach; doc/operations.md says how to remove them.
 */
Datum
orders_unschedule_on_drop(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"unschedule_on_drop\" was not called by the event trigger manager")));
	trigdata = (EventTriggerData *) fcinfo->context;
	if (!IsA(trigdata->parsetree, DropStmt) ||
		!drops_orders((DropStmt *) trigdata->parsetree) ||
		!OidIsValid(get_extension_oid("pg_cron", true)))
		PG_RETURN_VOID();

	/*
	 * A constant statement, run once per DROP: nothing worth keeping a plan
	 * for.  Its errors propagate with their own SQLSTATE.
	 */
	orders_spi_connect();
	(void) SPI_execute("SELECT cron.unschedule(j.jobid)"
					   "  FROM cron.job j"
					   " WHERE j.jobname OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT c.jobname FROM orders.cron_jobs() c))"
					   "   AND j.database OPERATOR(pg_catalog.=) pg_catalog.current_database()",
					   false, 0);
	SPI_finish();
	PG_RETURN_VOID();
}
