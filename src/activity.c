/*
 * activity.c — the activity log (issue 13): who changed what, one row of
 * orders.activity_logs per inserted, updated or deleted row of a tracked
 * table, with only the columns that changed.
 *
 *   CREATE TRIGGER orders_activity AFTER INSERT OR UPDATE OR DELETE ON tab
 *     FOR EACH ROW EXECUTE FUNCTION orders.track_changes();
 *
 * (orders.track_activity(regclass) creates it.)  The row is written as the
 * log's owner, with the actor taken from the caller's identity before the
 * switch, so no caller can write or forge a row.  Nothing is logged while
 * the owner loads data with COPY FROM (pg_restore: the log rows are restored
 * with the data).
 */
#include "orders.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/uuid.h"

PG_FUNCTION_INFO_V1(orders_track_changes);

/* append_json_value — "value" of type "typid" as a JSON value. */
static void
append_json_value(StringInfo buf, Datum value, Oid typid)
{
	Oid			outfn;
	bool		varlena;
	char	   *text;

	getTypeOutputInfo(typid, &outfn, &varlena);
	text = OidOutputFunctionCall(outfn, value);
	switch (getBaseType(typid))
	{
		case BOOLOID:
			appendStringInfoString(buf, text[0] == 't' ? "true" : "false");
			return;
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case NUMERICOID:
		case FLOAT4OID:
		case FLOAT8OID:
			/* NaN and the infinities are no JSON numbers */
			if (strpbrk(text, "NIni") == NULL)
			{
				appendStringInfoString(buf, text);
				return;
			}
			break;
		case JSONOID:
		case JSONBOID:
			appendStringInfoString(buf, text);
			return;
		default:
			break;
	}
	escape_json(buf, text);
}

/* secret_column — a column whose values the log must not hold (webhook
 * secrets, token hashes, passwords): its changes are logged as redacted. */
static bool
secret_column(const char *name)
{
	size_t		len = strlen(name);

	return strcmp(name, "secret") == 0 || strstr(name, "password") != NULL ||
		(len > 5 && strcmp(name + len - 5, "_hash") == 0);
}

/*
 * append_changes — {"col": {"old": …, "new": …}, …} for the columns whose
 * values differ between "oldrow" and "newrow" (either may be NULL: an
 * insert or a delete, then every non-null column), leaving out updated_at,
 * secrets' values replaced by "(redacted)".  Returns the number of columns
 * written.
 */
static int
append_changes(StringInfo buf, TupleDesc desc, HeapTuple oldrow, HeapTuple newrow)
{
	int			n = 0;
	Datum	   *oldvals = palloc(sizeof(Datum) * desc->natts);
	Datum	   *newvals = palloc(sizeof(Datum) * desc->natts);
	bool	   *oldnulls = palloc(sizeof(bool) * desc->natts);
	bool	   *newnulls = palloc(sizeof(bool) * desc->natts);

	/* each row taken apart once (heap_getattr per column is quadratic) */
	if (oldrow)
		heap_deform_tuple(oldrow, desc, oldvals, oldnulls);
	else
		memset(oldnulls, true, sizeof(bool) * desc->natts);
	if (newrow)
		heap_deform_tuple(newrow, desc, newvals, newnulls);
	else
		memset(newnulls, true, sizeof(bool) * desc->natts);

	appendStringInfoChar(buf, '{');
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		bool		oldnull = oldnulls[i];
		bool		newnull = newnulls[i];
		Datum		oldval = oldnull ? (Datum) 0 : oldvals[i];
		Datum		newval = newnull ? (Datum) 0 : newvals[i];

		if (att->attisdropped || strcmp(NameStr(att->attname), "updated_at") == 0)
			continue;
		if (oldnull && newnull)
			continue;
		if (oldrow && newrow && oldnull == newnull &&
			datumIsEqual(oldval, newval, att->attbyval, att->attlen))
			continue;
		if (n++ > 0)
			appendStringInfoChar(buf, ',');
		escape_json(buf, NameStr(att->attname));
		appendStringInfoString(buf, ":{\"old\":");
		if (oldnull)
			appendStringInfoString(buf, "null");
		else if (secret_column(NameStr(att->attname)))
			appendStringInfoString(buf, "\"(redacted)\"");
		else
			append_json_value(buf, oldval, att->atttypid);
		appendStringInfoString(buf, ",\"new\":");
		if (newnull)
			appendStringInfoString(buf, "null");
		else if (secret_column(NameStr(att->attname)))
			appendStringInfoString(buf, "\"(redacted)\"");
		else
			append_json_value(buf, newval, att->atttypid);
		appendStringInfoChar(buf, '}');
	}
	appendStringInfoChar(buf, '}');
	return n;
}

/* row_id — the text of the row's "id" column, or NULL. */
static char *
row_id(TupleDesc desc, HeapTuple row)
{
	int			attnum = SPI_fnumber(desc, "id");
	char	   *v;

	if (attnum <= 0)
		return NULL;
	v = SPI_getvalue(row, desc, attnum);
	return v;
}

/*
 * orders_track_changes — AFTER INSERT OR UPDATE OR DELETE row trigger:
 * one activity row (action created / updated / deleted, the table, the
 * row's id, the changed columns, the actor and their staff id, the client
 * address PostgREST saw when the caller's claims are believed).  An UPDATE
 * that changes nothing but updated_at writes nothing.
 */
Datum
orders_track_changes(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = orders_trigger_data(fcinfo, "track_changes",
												ORDERS_TRIG_AFTER | ORDERS_TRIG_ROW | ORDERS_TRIG_INSERT |
												ORDERS_TRIG_UPDATE | ORDERS_TRIG_DELETE);
	static Oid	argtypes[7] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, UUIDOID};
	Relation	rel = trigdata->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	HeapTuple	oldrow = NULL;
	HeapTuple	newrow = NULL;
	const char *action;
	StringInfoData changes;
	char	   *id;
	char	   *actor;
	const char *headers = NULL;
	Datum		args[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	pg_uuid_t	account;
	OrdersSavedUser saved;
	Oid			log_rel;
	SPIPlanPtr	plan;

	if (orders_owner_loading(rel))
		return PointerGetDatum(NULL);
	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		newrow = trigdata->tg_trigtuple;
		action = "created";
	}
	else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		oldrow = trigdata->tg_trigtuple;
		newrow = trigdata->tg_newtuple;
		action = "updated";
	}
	else
	{
		oldrow = trigdata->tg_trigtuple;
		action = "deleted";
	}
	initStringInfo(&changes);
	appendStringInfoString(&changes, "{\"changes\":");
	if (append_changes(&changes, desc, oldrow, newrow) == 0 && oldrow && newrow)
		return PointerGetDatum(NULL);
	appendStringInfoChar(&changes, '}');
	id = row_id(desc, newrow ? newrow : oldrow);

	/* who, before the switch to the owner */
	actor = orders_current_actor();
	if (orders_claims_trusted())
		headers = GetConfigOption("request.headers", true, false);

	args[0] = CStringGetTextDatum(actor);
	args[1] = CStringGetTextDatum(action);
	args[2] = CStringGetTextDatum(RelationGetNamespace(rel) == (Oid) get_namespace_oid(ORDERS_SCHEMA, false)
								  ? RelationGetRelationName(rel)
								  : quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
															   RelationGetRelationName(rel)));
	args[3] = id ? CStringGetTextDatum(id) : (Datum) 0;
	nulls[3] = id ? ' ' : 'n';
	args[4] = CStringGetTextDatum(changes.data);
	args[5] = headers && headers[0] ? CStringGetTextDatum(headers) : (Datum) 0;
	nulls[5] = headers && headers[0] ? ' ' : 'n';
	/* the actor's staff row, by the account a JWT sub names */
	if (orders_account_uuid(actor, &account))
		args[6] = UUIDPGetDatum(&account);
	else
		nulls[6] = 'n';

	log_rel = orders_relid("activity_logs");
	orders_spi_connect_as_owner(log_rel, &saved);
	plan = orders_get_plan(PLAN_ACTIVITY_INSERT, log_rel,
						   "INSERT INTO orders.activity_logs"
						   " (user_id, actor, action, entity_type, entity_id, details, ip_address)"
						   " VALUES ((SELECT s.id FROM orders.staff s WHERE s.account_id OPERATOR(pg_catalog.=) $7),"
						   "         $1, $2, $3, $4, $5::pg_catalog.jsonb,"
						   "         pg_catalog.left(pg_catalog.btrim(pg_catalog.split_part("
						   "             $6::pg_catalog.jsonb OPERATOR(pg_catalog.->>) 'x-forwarded-for', ',', 1)), 64))",
						   7, argtypes);
	orders_execute(plan, args, nulls, false, 0, SPI_OK_INSERT);
	orders_spi_finish_as(&saved);
	return PointerGetDatum(NULL);
}
