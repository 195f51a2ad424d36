/*
 * trigger_util.c — the boilerplate every trigger function of the extension
 * shares: checking how it was fired and handing back the right tuple.
 */
#include "orders.h"

/*
 * orders_trigger_data — return the TriggerData of a call, after checking that
 * the function was called by the trigger manager at a timing and for an
 * event listed in "accepted" (and for each row when ORDERS_TRIG_ROW is set).  Any other use is refused with
 * ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED naming the function.
 */
TriggerData *
orders_trigger_data(FunctionCallInfo fcinfo, const char *funcname, int accepted)
{
	TriggerData *trigdata;
	TriggerEvent ev;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"%s\" was not called by the trigger manager",
						funcname)));

	trigdata = (TriggerData *) fcinfo->context;
	ev = trigdata->tg_event;

	if (((accepted & ORDERS_TRIG_ROW) && !TRIGGER_FIRED_FOR_ROW(ev)) ||
		(!(accepted & ORDERS_TRIG_BEFORE) && TRIGGER_FIRED_BEFORE(ev)) ||
		(!(accepted & ORDERS_TRIG_AFTER) && TRIGGER_FIRED_AFTER(ev)) ||
		(!(accepted & ORDERS_TRIG_INSERT) && TRIGGER_FIRED_BY_INSERT(ev)) ||
		(!(accepted & ORDERS_TRIG_UPDATE) && TRIGGER_FIRED_BY_UPDATE(ev)) ||
		(!(accepted & ORDERS_TRIG_DELETE) && TRIGGER_FIRED_BY_DELETE(ev)) ||
		(!(accepted & ORDERS_TRIG_TRUNCATE) && TRIGGER_FIRED_BY_TRUNCATE(ev)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"%s\" was fired in an unsupported way on table \"%s\"",
						funcname, RelationGetRelationName(trigdata->tg_relation)),
				 errhint("See doc/reference.md for the CREATE TRIGGER form it expects.")));

	return trigdata;
}

/*
 * orders_trigger_result — the Datum a row trigger returns: "tuple" when the
 * caller built a replacement, else the row the event carries (NEW for
 * UPDATE, the inserted or deleted row otherwise).
 */
Datum
orders_trigger_result(TriggerData *trigdata, HeapTuple tuple)
{
	if (tuple != NULL)
		return PointerGetDatum(tuple);
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		return PointerGetDatum(trigdata->tg_newtuple);
	return PointerGetDatum(trigdata->tg_trigtuple);
}
