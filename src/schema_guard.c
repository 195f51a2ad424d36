/*
 * schema_guard.c — the extension's schema keeps its name.
 *
 *   CREATE EVENT TRIGGER orders_schema_guard ON ddl_command_start
 *     WHEN TAG IN ('ALTER SCHEMA')
 *     EXECUTE FUNCTION orders.schema_rename_guard();
 *
 * The library, the install and upgrade scripts, the pg_cron jobs' commands
 * and the policies name the schema "orders": renamed, every write of an
 * order failed with 3F000 (schema "orders" does not exist) — and
 * ALTER EXTENSION ... SET SCHEMA is refused already (the extension is not
 * relocatable).
 */
#include "orders.h"

#include "catalog/namespace.h"
#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/acl.h"

PG_FUNCTION_INFO_V1(orders_schema_rename_guard);

/*
 * orders_schema_rename_guard — event trigger: refuse (0A000) an
 * ALTER SCHEMA orders RENAME TO ... by a caller who owns the schema (anyone
 * else meets the statement's own 42501).  Other ALTER SCHEMA statements
 * (OWNER TO) and other schemas pass.
 */
Datum
orders_schema_rename_guard(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata;
	RenameStmt *stmt;
	Oid			nsp;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"schema_rename_guard\" was not called by the event trigger manager")));
	trigdata = (EventTriggerData *) fcinfo->context;
	if (!IsA(trigdata->parsetree, RenameStmt))
		PG_RETURN_VOID();
	stmt = (RenameStmt *) trigdata->parsetree;
	if (stmt->renameType != OBJECT_SCHEMA || stmt->subname == NULL ||
		strcmp(stmt->subname, ORDERS_SCHEMA) != 0)
		PG_RETURN_VOID();
	nsp = get_namespace_oid(ORDERS_SCHEMA, true);
	if (!OidIsValid(nsp) || !pg_namespace_ownercheck(nsp, GetUserId()))
		PG_RETURN_VOID();
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("schema \"%s\" of extension orders cannot be renamed", ORDERS_SCHEMA),
			 errdetail("The extension's library, functions, policies and pg_cron jobs name it \"%s\".",
					   ORDERS_SCHEMA),
			 errhint("Keep the name; put views or functions of your own in a schema of another name.")));
	PG_RETURN_VOID();
}
