/*
 * updated_at.c — keeps an "updated_at" column current, moddatetime-style.
 *
 *   CREATE TRIGGER t BEFORE UPDATE ON tab FOR EACH ROW
 *     EXECUTE FUNCTION orders.set_updated_at(['column']);
 */
#include "orders.h"

#include "catalog/pg_type.h"
#include "utils/datetime.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(orders_set_updated_at);

/*
 * orders_set_updated_at — BEFORE UPDATE row trigger: the new row gets the
 * transaction timestamp (now()) in the named timestamptz column (default
 * "updated_at").  A missing or mistyped column is refused at first use.
 */
Datum
orders_set_updated_at(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = orders_trigger_data(fcinfo, "set_updated_at",
												ORDERS_TRIG_BEFORE | ORDERS_TRIG_ROW |
												ORDERS_TRIG_UPDATE);
	Relation	rel = trigdata->tg_relation;
	TupleDesc	tupdesc = RelationGetDescr(rel);
	const char *colname = "updated_at";
	int			attnum;
	Datum		newval;
	bool		newnull = false;

	if (trigdata->tg_trigger->tgnargs > 0)
		colname = trigdata->tg_trigger->tgargs[0];

	attnum = orders_fnumber(tupdesc, colname);
	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("table \"%s\" has no column \"%s\" for trigger \"%s\"",
						RelationGetRelationName(rel), colname,
						trigdata->tg_trigger->tgname)));
	if (TupleDescAttr(tupdesc, attnum - 1)->atttypid != TIMESTAMPTZOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" of table \"%s\" must be of type timestamptz",
						colname, RelationGetRelationName(rel))));

	newval = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	return PointerGetDatum(heap_modify_tuple_by_cols(trigdata->tg_newtuple, tupdesc,
													 1, &attnum, &newval, &newnull));
}
