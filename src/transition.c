/*
 * transition.c — order status changes, validated against the lifecycle graph.
 *
 *   orders.status_guard()   BEFORE INSERT OR UPDATE row trigger on orders.orders:
 *                           new orders start in the initial status, every change
 *                           must be an edge of the graph the caller may take;
 *                           stamps the edge's column.
 *   orders.status_audit()   AFTER UPDATE row trigger, for a status changed:
 *                           history row as the table owner (history.c) +
 *                           pg_notify, both in the changing transaction.
 *   orders.transition()     the API for a status change, with idempotency key.
 *   orders.allowed_transitions()  next statuses the caller may choose.
 */
#include "orders.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "access/detoast.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/json.h"
#include "catalog/pg_proc.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(orders_status_guard);
PG_FUNCTION_INFO_V1(orders_status_guard_held);
PG_FUNCTION_INFO_V1(orders_status_audit);
PG_FUNCTION_INFO_V1(orders_transition);
PG_FUNCTION_INFO_V1(orders_allowed_transitions);

/*
 * What orders.transition() hands to the triggers of the UPDATE it runs: the
 * order it changes (status_guard refuses leaving the status as it is), and
 * the notes and idempotency key status_audit records.
 */
typedef struct PendingChange
{
	bool		active;
	pg_uuid_t	order_id;
	char	   *notes;
	char	   *key;
	char	   *actor;			/* NULL: orders_current_actor() */
} PendingChange;

static PendingChange pending;

/*
 * orders_run_status_change — execute "plan", the UPDATE of order
 * "order_id"'s status made on behalf of the extension (orders.transition(),
 * a campaign completing itself), expecting SPI result "expected": its
 * triggers record it with these notes, key and actor, and refuse it if it
 * changes nothing.  A change run by one of those triggers (a DBA's trigger
 * calling orders.transition()) has its own and leaves the outer one's as it
 * was, recorded or not yet.
 */
void
orders_run_status_change(SPIPlanPtr plan, Datum *args, const pg_uuid_t *order_id,
						 char *notes, char *key, char *actor, int expected)
{
	PendingChange outer = pending;

	pending.active = true;
	memcpy(&pending.order_id, order_id, sizeof(pg_uuid_t));
	pending.notes = notes;
	pending.key = key;
	pending.actor = actor;
	PG_TRY();
	{
		orders_execute(plan, args, NULL, false, 0, expected);
	}
	PG_FINALLY();
	{
		pending = outer;
	}
	PG_END_TRY();
}

/*
 * orders_pending_change_on — is a status change of "order_id" pending
 * (orders_set_pending_change, not yet recorded)?  Then status_guard refuses
 * an UPDATE of that order which leaves its status as it is.
 */
bool
orders_pending_change_on(const pg_uuid_t *order_id)
{
	return pending.active && memcmp(&pending.order_id, order_id, sizeof(pg_uuid_t)) == 0;
}

/*
 * orders_pending_change_actor — the actor orders_set_pending_change gave
 * the pending status change of "order_id", or NULL (none pending, or made
 * as the caller).
 */
const char *
orders_pending_change_actor(const pg_uuid_t *order_id)
{
	return orders_pending_change_on(order_id) ? pending.actor : NULL;
}

/* column_value — text of column "name" in "tuple", or NULL. */
static char *
column_value(HeapTuple tuple, TupleDesc desc, const char *name)
{
	int			attnum = orders_fnumber(desc, name);
	bool		isnull;
	Datum		value;

	if (attnum <= 0)
		elog(ERROR, "orders: table has no column \"%s\"", name);
	if (TupleDescAttr(desc, attnum - 1)->atttypid != TEXTOID)
		return SPI_getvalue(tuple, desc, attnum);
	/* a text column, as installed: no output function to look up */
	value = heap_getattr(tuple, attnum, desc, &isnull);
	return isnull ? NULL : TextDatumGetCString(value);
}

/* require_lifecycle — the named lifecycle, or refuse with OR002. */
static const Lifecycle *
require_lifecycle(const char *name, const char *order_number)
{
	const Lifecycle *lc = lifecycle_lookup(name);

	if (lc == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_UNKNOWN_LIFECYCLE),
				 errmsg("order \"%s\": unknown lifecycle \"%s\"",
						order_number ? order_number : "(new)", orders_clip(name)),
				 errhint("Lifecycles are listed in orders.lifecycles.")));
	return lc;
}

/* require_state — state "status" of "lc", or refuse with OR003. */
static const LifecycleState *
require_state(const Lifecycle *lc, const char *status, const char *order_number)
{
	const LifecycleState *st = lifecycle_state(lc, status);

	if (st == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_UNKNOWN_STATUS),
				 errmsg("order \"%s\": \"%s\" is not a status of lifecycle \"%s\"",
						order_number ? order_number : "(new)", orders_clip(status), lc->name),
				 errhint("The statuses of a lifecycle are listed in orders.lifecycle_states.")));
	return st;
}

/* staff_list — "a, b or c": who allowed_staff admits to an edge. */
static char *
staff_list(const LifecycleEdge *edge)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < edge->nstaff; i++)
	{
		if (i > 0)
			appendStringInfoString(&buf, i == edge->nstaff - 1 ? " or " : ", ");
		appendStringInfoString(&buf, edge->staff[i]);
	}
	return buf.data;
}

/*
 * validate_change — the edge "from" -> "to" of lifecycle "lifecycle" for
 * order "number", after checking that both statuses exist, that the edge
 * exists (OR001, DETAIL listing the allowed next statuses) and that the
 * caller may take it on an order assigned to "assigned" (42501: its staff
 * rules, then its database roles).  The one check every status change
 * passes, from orders.transition() and from the trigger alike.
 */
static const LifecycleEdge *
validate_change(const char *lifecycle, const char *number,
				const char *from_status, const char *to_status,
				const OrdersAssignment *assigned)
{
	const Lifecycle *lc = require_lifecycle(lifecycle, number);
	const LifecycleState *from = require_state(lc, from_status, number);
	const LifecycleEdge *edge;

	require_state(lc, to_status, number);
	edge = lifecycle_edge(from, to_status);
	if (edge == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_INVALID_TRANSITION),
				 errmsg("order \"%s\": cannot change status from \"%s\" to \"%s\" in lifecycle \"%s\"",
						number, from_status, to_status, lc->name),
				 errdetail("Allowed next statuses from \"%s\": %s.",
						   from_status, lifecycle_next_list(from, assigned)),
				 errhint("orders.allowed_transitions(order_id) lists them.")));
	if (!orders_staff_may_take(edge, assigned))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("order \"%s\": the change from \"%s\" to \"%s\" is reserved to %s",
						number, from_status, to_status, staff_list(edge)),
				 errdetail("Lifecycle \"%s\" lists who may take it in orders.lifecycle_transitions.allowed_staff.",
						   lc->name),
				 errhint("Staff are matched by the JWT sub against orders.staff.account_id; assigned_agent and assigned_rep mean the order's own.")));
	if (!lifecycle_edge_permitted(edge, assigned))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("order \"%s\": role \"%s\" may not change status from \"%s\" to \"%s\"",
						number, GetUserNameFromId(GetUserId(), false),
						from_status, to_status),
				 errdetail("Lifecycle \"%s\" allows this change only to members of the roles listed in orders.lifecycle_transitions.allowed_roles.",
						   lc->name)));
	return edge;
}

/*
 * check_notes — refuse (22001) notes over ORDERS_NOTES_MAX characters in a
 * new order ("oldrow" NULL) or a change of them; notes an order already had
 * (from before the limit) never block its other changes.
 */
static void
check_notes(HeapTuple oldrow, HeapTuple row, TupleDesc desc)
{
	int			att = orders_fnumber(desc, "notes");
	bool		isnull;
	bool		oldnull;
	Datum		notes = SPI_getbinval(row, desc, att, &isnull);

	/* a detoasted size within the limit in bytes is within it in characters */
	if (isnull || toast_raw_datum_size(notes) - VARHDRSZ <= ORDERS_NOTES_MAX)
		return;
	if (oldrow != NULL)
	{
		Datum		old = SPI_getbinval(oldrow, desc, att, &oldnull);

		if (!oldnull && datumIsEqual(old, notes, false, -1))
			return;
	}
	orders_require_max_length(TextDatumGetCString(notes), ORDERS_NOTES_MAX, "an order's notes");
}

/*
 * guard_insert — a new order: known lifecycle; status defaults to the
 * initial one; another known status only for the table owner (imports);
 * COPY by the owner (pg_restore) is taken as it is.  Returns the row to
 * store.
 */
static HeapTuple
guard_insert(Relation rel, HeapTuple row)
{
	TupleDesc	desc = RelationGetDescr(rel);
	char	   *number = column_value(row, desc, "order_number");
	char	   *lname = column_value(row, desc, "lifecycle");
	char	   *status = column_value(row, desc, "status");
	const Lifecycle *lc;
	int			attnum;
	Datum		val;
	bool		isnull = false;

	if (lname == NULL)
		return row;				/* NOT NULL constraint reports it */

	/*
	 * pg_restore: COPY by the owner loads orders as they were, possibly
	 * before the states of user-defined lifecycles (no foreign key orders
	 * those tables).
	 */
	if (orders_owner_restoring(rel))
		return row;
	orders_check_order_number(rel, NULL, row);
	check_notes(NULL, row, desc);
	lc = require_lifecycle(lname, number);
	if (lifecycle_state(lc, lc->initial_status) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_BAD_CONFIGURATION),
				 errmsg("lifecycle \"%s\": initial status \"%s\" is not one of its states",
						lc->name, lc->initial_status),
				 errhint("Add the state to orders.lifecycle_states or correct orders.lifecycles.initial_status.")));

	if (status == NULL)
	{
		attnum = orders_fnumber(desc, "status");
		val = CStringGetTextDatum(lc->initial_status);
		return heap_modify_tuple_by_cols(row, desc, 1, &attnum, &val, &isnull);
	}

	require_state(lc, status, number);
	if (strcmp(status, lc->initial_status) != 0 &&
		!has_privs_of_role(GetUserId(), rel->rd_rel->relowner))
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_NOT_INITIAL_STATUS),
				 errmsg("order \"%s\": a new order of lifecycle \"%s\" starts in status \"%s\", not \"%s\"",
						number ? number : "(new)", lc->name, lc->initial_status, status),
				 errhint("Omit the status, then use orders.transition().  Only the table owner may insert orders in a later status (imports, restores).")));
	return row;
}

/*
 * set_column — "row" with column "column" set to "value" (NULL when
 * "isnull"); refuses (OR008) a column orders.orders does not have, naming
 * the lifecycle's edge.
 */
static HeapTuple
set_column(HeapTuple row, TupleDesc desc, const char *lifecycle, const char *column,
		   const char *from_status, const char *to_status, Datum value, bool isnull)
{
	int			attnum = orders_fnumber(desc, column);

	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_BAD_CONFIGURATION),
				 errmsg("lifecycle \"%s\": column \"%s\" stamped by transition \"%s\" -> \"%s\" does not exist in orders.orders",
						lifecycle, column, from_status, to_status)));
	return heap_modify_tuple_by_cols(row, desc, 1, &attnum, &value, &isnull);
}

/*
 * gate_callable — may the caller have the check of "edge"'s gate run: its
 * EXECUTE, or (0.29.0) a check of the extension's own, which nobody may
 * call directly (they named the clients of any order to whoever asked).
 */
static bool
gate_callable(const LifecycleEdge *edge)
{
	return orders_own_function(edge->gate_fn) ||
		pg_proc_aclcheck(edge->gate_fn, GetUserId(), ACL_EXECUTE) == ACLCHECK_OK;
}

/*
 * gate_missing — what the gate of "edge" (its registered check function of
 * the order's id, run with the rights of whoever asks) says is missing for
 * the order, or NULL when the gate lets it through.  An edge whose gate is
 * not registered (a bad configuration) or whose check the caller may not
 * run (42501, gate_callable) is refused here.
 */
static char *
gate_missing(const LifecycleEdge *edge, Datum order_id, const char *lifecycle,
			 const char *from_status, const char *to_status)
{
	LOCAL_FCINFO(fcinfo, 1);
	FmgrInfo	flinfo;
	Datum		missing;

	if (!OidIsValid(edge->gate_fn))
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_BAD_CONFIGURATION),
				 errmsg("lifecycle \"%s\": gate \"%s\" of transition \"%s\" -> \"%s\" is not registered",
						lifecycle, edge->gate, from_status, to_status)));
	if (!gate_callable(edge))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for the check of gate \"%s\" (function %s)",
						edge->gate, format_procedure(edge->gate_fn))));
	fmgr_info(edge->gate_fn, &flinfo);
	InitFunctionCallInfoData(*fcinfo, &flinfo, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = order_id;
	fcinfo->args[0].isnull = false;
	missing = FunctionCallInvoke(fcinfo);
	return fcinfo->isnull ? NULL : TextDatumGetCString(missing);
}

/*
 * check_gate — the gate of "edge" must let the order through (gate_missing,
 * run with the latest snapshot); else OR071 with what is missing as its
 * DETAIL.
 */
static void
check_gate(const LifecycleEdge *edge, Datum order_id, const char *lifecycle,
		   const char *number, const char *from_status, const char *to_status)
{
	char	   *missing;

	/*
	 * With the latest snapshot (as ri_triggers.c checks): the order's row is
	 * locked now, and what committed while the change waited for it is
	 * seen — a customer's group change holds that lock to its commit
	 * (customer_edit_recheck); the statement's snapshot was older and let
	 * a payment through a gate the change had closed.
	 */
	PushActiveSnapshot(GetLatestSnapshot());
	missing = gate_missing(edge, order_id, lifecycle, from_status, to_status);
	PopActiveSnapshot();

	if (missing == NULL)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_ORDERS_GATE_CLOSED),
			 errmsg("order \"%s\" cannot move from \"%s\" to \"%s\" yet: gate \"%s\" is closed",
					number, from_status, to_status, edge->gate),
			 errdetail("%s", missing),
			 errhint("The gates of a lifecycle's edges are listed in orders.lifecycle_transitions.gate and orders.lifecycle_gates.")));
}

/*
 * stamped_by — does taking "edge" set column "column" (its stamp, its
 * gate's stamp or actor)?
 */
static bool
stamped_by(const LifecycleEdge *edge, const char *column)
{
	return (edge->stamp_column != NULL && strcmp(edge->stamp_column, column) == 0) ||
		(edge->gate_stamp != NULL && strcmp(edge->gate_stamp, column) == 0) ||
		(edge->gate_actor != NULL && strcmp(edge->gate_actor, column) == 0);
}

/*
 * edge_stamp — is "column" the plain stamp (stamp_column) of any edge of
 * "lc"?  That stamp says when its edge was last taken, and stays.
 */
static bool
edge_stamp(const Lifecycle *lc, const char *column)
{
	for (int s = 0; s < lc->nstates; s++)
		for (int e = 0; e < lc->states[s].nedges; e++)
			if (lc->states[s].edges[e].stamp_column != NULL &&
				strcmp(lc->states[s].edges[e].stamp_column, column) == 0)
				return true;
	return false;
}

/*
 * clear_gate_stamps — (0.32.0) an order arriving in "to_status" (by
 * "taken") is before every gate on the edges leaving it: the stamp and
 * actor columns of those gates, which say it passed them, are cleared
 * until it passes again (an agency order back in "reviewing" kept
 * review_completed_at).  A column the edge taken sets itself stays, and so
 * does one that is also an edge's plain stamp.
 */
static HeapTuple
clear_gate_stamps(HeapTuple row, TupleDesc desc, const char *lifecycle, const char *from_status,
				  const char *to_status, const LifecycleEdge *taken)
{
	const Lifecycle *lc = lifecycle_lookup(lifecycle);
	const LifecycleState *st = lc != NULL ? lifecycle_state(lc, to_status) : NULL;

	for (int i = 0; st != NULL && i < st->nedges; i++)
	{
		const char *columns[2] = {st->edges[i].gate_stamp, st->edges[i].gate_actor};

		for (int k = 0; k < 2; k++)
		{
			int			attnum;

			if (columns[k] == NULL || stamped_by(taken, columns[k]) || edge_stamp(lc, columns[k]))
				continue;
			/* a column dropped since: passing the gate refuses it (set_column) */
			attnum = orders_fnumber(desc, columns[k]);
			if (attnum <= 0 || heap_attisnull(row, attnum, desc))
				continue;
			row = set_column(row, desc, lifecycle, columns[k], from_status, to_status, (Datum) 0, true);
		}
	}
	return row;
}

/*
 * guard_update — a change of an existing order: the lifecycle never changes;
 * a status change must be an edge the current user may take; the edge's
 * stamp column gets the transaction timestamp; a customer rep closing an
 * unassigned order becomes its rep (orders_claim_for_rep).  Returns the row
 * to store.
 */
static HeapTuple
guard_update(Relation rel, HeapTuple oldrow, HeapTuple newrow)
{
	TupleDesc	desc = RelationGetDescr(rel);
	char	   *old_lc = column_value(oldrow, desc, "lifecycle");
	char	   *new_lc = column_value(newrow, desc, "lifecycle");
	char	   *old_status = column_value(oldrow, desc, "status");
	char	   *new_status = column_value(newrow, desc, "status");
	char	   *number;
	const LifecycleEdge *edge;
	OrdersAssignment assigned;
	Datum		val;
	bool		isnull = false;

	if (new_lc == NULL || new_status == NULL)
		return newrow;			/* NOT NULL constraints report it */

	orders_check_order_number(rel, oldrow, newrow);
	check_notes(oldrow, newrow, desc);
	number = column_value(newrow, desc, "order_number");
	if (old_lc != NULL && strcmp(old_lc, new_lc) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_LIFECYCLE_CHANGE),
				 errmsg("order \"%s\": lifecycle cannot change from \"%s\" to \"%s\"",
						number, old_lc, orders_clip(new_lc)),
				 errhint("Cancel the order and create a new one in the other lifecycle.")));

	if (old_status != NULL && strcmp(old_status, new_status) == 0)
	{
		if (pending.active)
		{
			bool		isnull;
			Datum		id = SPI_getbinval(newrow, desc, orders_typed_column(rel, "id", UUIDOID), &isnull);

			if (!isnull && memcmp(DatumGetUUIDP(id), &pending.order_id, sizeof(pg_uuid_t)) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_ORDERS_INVALID_TRANSITION),
						 errmsg("order \"%s\" is already in status \"%s\"", number, old_status),
						 errhint("Pass an idempotency_key to make retries of a change harmless.")));
		}
		return newrow;
	}

	orders_read_assignment(oldrow, desc, &assigned);
	edge = validate_change(new_lc, number, old_status, new_status, &assigned);
	if (edge->gate != NULL)
		check_gate(edge, SPI_getbinval(newrow, desc, orders_typed_column(rel, "id", UUIDOID), &isnull),
				   new_lc, number, old_status, new_status);

	/* the edge's stamp, and the gate's stamp and actor */
	val = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	if (edge->stamp_column != NULL)
		newrow = set_column(newrow, desc, new_lc, edge->stamp_column, old_status, new_status, val, false);
	if (edge->gate_stamp != NULL)
		newrow = set_column(newrow, desc, new_lc, edge->gate_stamp, old_status, new_status, val, false);
	if (edge->gate_actor != NULL)
		newrow = set_column(newrow, desc, new_lc, edge->gate_actor, old_status, new_status,
							CStringGetTextDatum(orders_current_actor()), false);
	newrow = clear_gate_stamps(newrow, desc, new_lc, old_status, new_status, edge);
	/* a rep closing an unassigned order takes it */
	return orders_claim_for_rep(oldrow, newrow, desc, new_lc, new_status);
}

/*
 * orders.status_guard() — BEFORE INSERT OR UPDATE FOR EACH ROW on
 * orders.orders.  Guarantees that no row is stored in a status its lifecycle
 * does not have, and no status change is stored that is not an edge; ties
 * the order's amounts (order_money.c); records the stock an order entering
 * or leaving a holding status holds (stock.c); a rep claims an unassigned
 * order it closes.
 * Concurrent changes of one order are serialized by the row lock the UPDATE
 * takes before this trigger runs, so the loser is checked against the
 * winner's status.
 */
Datum
orders_status_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = orders_trigger_data(fcinfo, "status_guard",
												ORDERS_TRIG_BEFORE | ORDERS_TRIG_ROW |
												ORDERS_TRIG_INSERT | ORDERS_TRIG_UPDATE);
	HeapTuple	result;

	Relation	rel = trigdata->tg_relation;

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		result = guard_insert(rel, trigdata->tg_trigtuple);
		if (!orders_owner_restoring(rel))
			result = orders_tie_money(rel, NULL, result);
		result = orders_stock_held_row(rel, NULL, result);
	}
	else
	{
		bool		isnull;

		/* a review that locked this order no longer knows it as it is */
		if (orders_review_locked.valid)
			orders_review_order_written(heap_getattr(trigdata->tg_trigtuple,
													 orders_fnumber(RelationGetDescr(rel), "id"),
													 RelationGetDescr(rel), &isnull));
		result = orders_tie_money(rel, trigdata->tg_trigtuple,
								  guard_update(rel, trigdata->tg_trigtuple, trigdata->tg_newtuple));
		result = orders_stock_held_row(rel, trigdata->tg_trigtuple, result);
	}
	return orders_trigger_result(trigdata, result);
}

/*
 * orders_status_guard_held — status_guard under the name the 0.30.0 schema
 * calls it by: a session still running an older library (which keeps no
 * stock_held) fails on every write of an order instead of writing it
 * past the stock's ledger.
 */
Datum
orders_status_guard_held(PG_FUNCTION_ARGS)
{
	return orders_status_guard(fcinfo);
}

/*
 * orders.status_audit() — AFTER UPDATE FOR EACH ROW (0.31.0: every UPDATE) on
 * orders.orders (no WHEN clause since 0.25.0: PostgreSQL would parse and
 * plan it for every statement).  For a row whose status changed, writes
 * one history row (as the owner of orders.order_history, so callers need
 * no right on it), marked for the database's announcer (orders.notify =
 * batched) or announced on channel orders_status by this transaction
 * (immediate).  Both
 * belong to the changing transaction: a rollback leaves neither.
 */
Datum
orders_status_audit(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = orders_trigger_data(fcinfo, "status_audit",
												ORDERS_TRIG_AFTER | ORDERS_TRIG_ROW |
												ORDERS_TRIG_UPDATE);
	TupleDesc	desc = RelationGetDescr(trigdata->tg_relation);
	HeapTuple	oldrow = trigdata->tg_trigtuple;
	HeapTuple	newrow = trigdata->tg_newtuple;
	OrdersHistoryRow h = {0};
	OrdersNotifyMode mode;
	int64		history_id;
	bool		isnull;
	int			status_att = orders_fnumber(desc, "status");
	char	   *old_status;
	char	   *new_status;
	char	   *actor = NULL;
	bool		oldnull;
	bool		newnull;
	Datum		oldval;
	Datum		newval;

	/*
	 * (0.31.0) fired by every UPDATE, not only one naming status: most change
	 * something else (a subtotal, a payment), and leave here at once
	 */
	if (status_att <= 0)
		elog(ERROR, "orders: table has no column \"status\"");
	oldval = heap_getattr(oldrow, status_att, desc, &oldnull);
	newval = heap_getattr(newrow, status_att, desc, &newnull);
	if (oldnull || newnull ||
		datum_image_eq(oldval, newval, TupleDescAttr(desc, status_att - 1)->attbyval,
					   TupleDescAttr(desc, status_att - 1)->attlen))
		return PointerGetDatum(NULL);
	old_status = TextDatumGetCString(oldval);
	new_status = TextDatumGetCString(newval);

	h.order_id = SPI_getbinval(newrow, desc, orders_typed_column(trigdata->tg_relation, "id", UUIDOID), &isnull);
	if (pending.active &&
		memcmp(DatumGetUUIDP(h.order_id), &pending.order_id, sizeof(pg_uuid_t)) == 0)
	{
		h.notes = pending.notes;
		h.key = pending.key;
		actor = pending.actor;
		pending.active = false;
	}
	if (actor == NULL)
		actor = orders_current_actor();
	h.old_status = old_status;
	h.new_status = new_status;
	h.changed_by = actor;
	if (orders_history_has_announce())
		mode = orders_announce_mode();
	else						/* the 0.20.0 schema (library installed, extension not yet updated) */
		mode = orders_notify_mode == ORDERS_NOTIFY_OFF ? ORDERS_NOTIFY_OFF : ORDERS_NOTIFY_IMMEDIATE;
	h.announce = mode == ORDERS_NOTIFY_BATCHED;
	/*
	 * the order's row is held by this change unless the transaction deleted
	 * it since (a trigger before this one, a function of the statement):
	 * AFTER row events fire for deleted rows too
	 */
	history_id = orders_insert_history(&h,
									   RelationGetRelid(trigdata->tg_relation) == orders_relid("orders") &&
									   table_tuple_satisfies_snapshot(trigdata->tg_relation, trigdata->tg_newslot,
																	  SnapshotSelf)
									   ? RelationGetRelid(trigdata->tg_relation) : InvalidOid);

	if (mode == ORDERS_NOTIFY_IMMEDIATE)
		Async_Notify(ORDERS_STATUS_CHANNEL,
					 orders_status_payload(history_id,
										   column_value(newrow, desc, "id"),
										   column_value(newrow, desc, "order_number"),
										   column_value(newrow, desc, "lifecycle"),
										   old_status, new_status, actor));
	return PointerGetDatum(NULL);
}

/* order_not_found — refuse with OR006 for an order id the caller cannot see. */
static void
order_not_found(Datum order_id)
{
	ereport(ERROR,
			(errcode(ERRCODE_ORDERS_ORDER_NOT_FOUND),
			 errmsg("order %s does not exist",
					DatumGetCString(DirectFunctionCall1(uuid_out, order_id))),
			 errhint("Either no order has this id or row level security hides it from you.")));
}

/*
 * same_order_row — is "now", the order's row as the latest snapshot reads
 * it, a later version of the row the calling statement's snapshot reads
 * (its update chain leads there), rather than a row made after that one
 * was deleted?  False too when the statement's snapshot reads no row of the
 * order.  Decided by the versions' chain, not by transaction ids: a row
 * written earlier in this transaction, or frozen, or updated by another
 * transaction meanwhile, is the same row.
 */
static bool
same_order_row(Datum order_id, const ItemPointerData *now)
{
	ItemPointerData then;
	Relation	rel;
	Snapshot	latest;
	TableScanDesc scan;

	if (orders_visible_order_number(order_id, false, &then) == NULL)
		return false;
	rel = table_open(orders_relid("orders"), AccessShareLock);
	latest = RegisterSnapshot(GetLatestSnapshot());
	scan = table_beginscan_tid(rel, latest);
	table_tuple_get_latest_tid(scan, &then);
	table_endscan(scan);
	UnregisterSnapshot(latest);
	table_close(rel, AccessShareLock);
	return ItemPointerEquals(&then, (ItemPointer) now);
}

/*
 * order_not_changed — refuse a change that found no order to change: 42501
 * naming the order when the caller sees it (its read policy lets it
 * through, the update policy not: staff without orders.edit, say), else
 * OR006 as for an order it cannot see (or that is gone).  (0.41.0 library)
 * A caller whom no policy limits and who may update orders hears why it
 * really was: at READ COMMITTED the order was deleted and made again under
 * its id while the change waited (40001, retry; a superuser heard that it
 * may not change the order), else a DBA's trigger or rule kept the change
 * (09000).  Runs only on that refusal.
 */
static void
order_not_changed(Datum order_id)
{
	/*
	 * at READ COMMITTED the latest snapshot: an order deleted while the
	 * change waited for it is gone (0.36.0: the statement's snapshot still
	 * read it, and a superuser heard that it may not change it); at
	 * REPEATABLE READ the transaction's, which the UPDATE used (an order
	 * made after it is none the caller could change)
	 */
	bool		read_committed = !IsolationUsesXactSnapshot();
	ItemPointerData now;
	char	   *number = orders_visible_order_number(order_id, read_committed, &now);
	Oid			orders_rel = orders_relid("orders");

	if (number == NULL)
		order_not_found(order_id);
	if (check_enable_rls(orders_rel, InvalidOid, true) == RLS_ENABLED ||
		pg_class_aclcheck(orders_rel, GetUserId(), ACL_UPDATE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("order \"%s\" may not be changed by you", number),
				 errhint("Changing an order takes permission orders.edit in your scope, or being its customer.")));
	if (read_committed && !same_order_row(order_id, &now))
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("order \"%s\" was deleted and made again while the change waited for it", number),
				 errhint("Retry the change.")));
	ereport(ERROR,
			(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
			 errmsg("order \"%s\" was not changed: a trigger or rule on orders.orders skipped the change", number)));
}

/*
 * recorded_status — the status an earlier change of this order with
 * idempotency key "key" reached, or NULL.  Reads history as its owner.
 */
static char *
recorded_status(Datum order_id, const char *key)
{
	static Oid	argtypes[2] = {UUIDOID, TEXTOID};
	Oid			history = orders_relid("order_history");
	OrdersSavedUser saved;
	SPIPlanPtr	plan;
	Datum		args[2];

	args[0] = order_id;
	args[1] = CStringGetTextDatum(key);
	orders_switch_to_owner(history, &saved);
	plan = orders_get_plan(PLAN_FIND_IDEMPOTENT, history,
						   "SELECT new_status FROM orders.order_history"
						   " WHERE order_id OPERATOR(pg_catalog.=) $1"
						   "   AND idempotency_key OPERATOR(pg_catalog.=) $2",
						   2, argtypes);
	orders_execute(plan, args, NULL, false, 1, SPI_OK_SELECT);
	orders_restore_user(&saved);
	if (SPI_processed == 0)
		return NULL;
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

/*
 * orders.transition(order_id, to_status, notes, idempotency_key) — change the
 * status of one order and return the changed row.  Runs with the caller's
 * rights (row level security applies).  Concurrent calls queue on the
 * order's row lock; each is validated by status_guard against the status it
 * finds once it has the lock.  With a key the row is locked before the key
 * is looked up, so two calls with one key cannot both change the order.  A key already recorded for this order with
 * the same target makes the call a no-op returning the order; with another
 * target it is refused (OR007).
 */
Datum
orders_transition(PG_FUNCTION_ARGS)
{
	static Oid	update_types[3] = {UUIDOID, TEXTOID, TIDOID};
	Datum		order_id;
	char	   *to_status;
	char	   *key = NULL;
	char	   *current;
	char	   *number;
	char	   *lifecycle;
	char	   *notes;
	char	   *done;
	ItemPointerData tid;
	Datum		args[3];
	Datum		result;
	bool		isnull;
	Oid			orders_rel;
	SPIPlanPtr	plan;

	orders_require_arg(fcinfo, 0, "orders.transition", "order_id");
	orders_require_arg(fcinfo, 1, "orders.transition", "to_status");
	order_id = PG_GETARG_DATUM(0);
	to_status = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (!PG_ARGISNULL(3))
	{
		key = text_to_cstring(PG_GETARG_TEXT_PP(3));
		if (key[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("orders.transition: argument \"idempotency_key\" must not be empty"),
					 errhint("Pass NULL for a call without a key.")));
		orders_require_max_length(key, ORDERS_KEY_MAX, "orders.transition: argument \"idempotency_key\"");
	}

	orders_rel = orders_relid("orders");
	notes = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	orders_require_max_length(notes, ORDERS_NOTES_MAX, "orders.transition: argument \"notes\"");
	args[0] = order_id;
	args[1] = CStringGetTextDatum(to_status);
	orders_spi_connect();

	if (key == NULL)
	{
		/* one UPDATE: its row lock queues concurrent changes, the guard validates */
		plan = orders_get_plan(PLAN_UPDATE_STATUS, orders_rel,
							   "UPDATE orders.orders o SET status = $2"
							   " WHERE o.id OPERATOR(pg_catalog.=) $1 RETURNING o",
							   2, update_types);
		orders_run_status_change(plan, args, DatumGetUUIDP(order_id), notes, NULL, NULL,
								 SPI_OK_UPDATE_RETURNING);
	}
	else
	{
		/* lock first, so that the key check and the change see one state */
		plan = orders_get_plan(PLAN_LOCK_ORDER, orders_rel,
							   "SELECT o.ctid, o.status, o.order_number, o.lifecycle FROM orders.orders o"
							   " WHERE o.id OPERATOR(pg_catalog.=) $1 FOR UPDATE",
							   1, update_types);
		orders_execute(plan, args, NULL, false, 1, SPI_OK_SELECT);
		if (SPI_processed == 0)
			order_not_changed(order_id);
		current = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
		number = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
		lifecycle = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4);
		/* the row is locked by us: its ctid cannot change under us */
		tid = *(ItemPointer) DatumGetPointer(SPI_getbinval(SPI_tuptable->vals[0],
														   SPI_tuptable->tupdesc, 1, &isnull));

		done = recorded_status(order_id, key);
		if (done != NULL)
		{
			if (strcmp(done, to_status) != 0)
				ereport(ERROR,
						(errcode(ERRCODE_ORDERS_IDEMPOTENCY_REUSED),
						 errmsg("idempotency key \"%s\" was already used for order \"%s\" to reach status \"%s\", not \"%s\"",
								orders_clip(key), number, done, orders_clip(to_status)),
						 errhint("Use a new key for a new change.")));
			/* the change was made before: return the order as it is */
			plan = orders_get_plan(PLAN_READ_ORDER_ROW, orders_rel,
								   "SELECT o FROM orders.orders o"
								   " WHERE o.id OPERATOR(pg_catalog.=) $1",
								   1, update_types);
			orders_execute(plan, args, NULL, false, 1, SPI_OK_SELECT);
		}
		else
		{
			if (strcmp(current, to_status) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_ORDERS_INVALID_TRANSITION),
						 errmsg("order \"%s\" is already in status \"%s\"", number, current)));
			validate_change(lifecycle, number, current, to_status, NULL);
			plan = orders_get_plan(PLAN_UPDATE_LOCKED, orders_rel,
								   "UPDATE orders.orders o SET status = $2"
								   " WHERE o.id OPERATOR(pg_catalog.=) $1"
								   "   AND o.ctid OPERATOR(pg_catalog.=) $3 RETURNING o",
								   3, update_types);
			args[2] = PointerGetDatum(&tid);
			orders_run_status_change(plan, args, DatumGetUUIDP(order_id), notes, key, NULL,
									 SPI_OK_UPDATE_RETURNING);
		}
	}
	if (SPI_processed == 0)
		order_not_changed(order_id);

	result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	result = SPI_datumTransfer(result, false, -1);
	SPI_finish();
	PG_RETURN_DATUM(result);
}

/*
 * orders.allowed_transitions(order_id) — the statuses the caller could move
 * the order to now: none when the policies would not let the caller update
 * it, else the edges out of its current status whose roles and staff rules
 * admit the caller and whose gate, if any, is open (its check run as the
 * caller; a VOLATILE check is not run, its edge offered; a check that
 * raises an error raises it here, as the transition would), in display
 * order.  Reads with the caller's rights.
 */
Datum
orders_allowed_transitions(PG_FUNCTION_ARGS)
{
	static Oid	argtypes[1] = {UUIDOID};
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		order_id;
	Datum		args[1];
	SPIPlanPtr	plan;
	char	   *lname;
	char	   *status;
	char	   *number;
	const Lifecycle *lc;
	const LifecycleState *from;
	OrdersAssignment assigned;
	HeapTuple	row;
	TupleDesc	desc;
	bool		may_update;
	bool		isnull;
	MemoryContext oldcxt;

	orders_require_arg(fcinfo, 0, "orders.allowed_transitions", "order_id");
	order_id = PG_GETARG_DATUM(0);
	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		!(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("orders.allowed_transitions: set-valued function called in context that cannot accept a set")));
	oldcxt = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	rsinfo->setDesc = CreateTemplateTupleDesc(1);
	TupleDescInitEntry(rsinfo->setDesc, 1, "status", TEXTOID, -1, 0);
	rsinfo->setResult = tuplestore_begin_heap(true, false, work_mem);
	rsinfo->returnMode = SFRM_Materialize;
	MemoryContextSwitchTo(oldcxt);

	orders_spi_connect();

	/*
	 * may_update: the restrictive half of the UPDATE policies (0.8.0): in an
	 * API request the order's customer or staff with orders.edit
	 */
	if (orders_security_installed())
		plan = orders_get_plan(PLAN_READ_ORDER_STATUS, orders_relid("orders"),
							   "SELECT o.*, (NOT orders.api_request()"
							   "   OR o.customer_id OPERATOR(pg_catalog.=) ANY (orders.current_customer_ids())"
							   "   OR orders.has_permission('orders', 'edit')) AS may_update"
							   "  FROM orders.orders o"
							   " WHERE o.id OPERATOR(pg_catalog.=) $1",
							   1, argtypes);
	else
		plan = orders_get_plan(PLAN_READ_ORDER_STATUS_V1, orders_relid("orders"),
							   "SELECT o.*, true AS may_update FROM orders.orders o"
							   " WHERE o.id OPERATOR(pg_catalog.=) $1",
							   1, argtypes);
	args[0] = order_id;
	orders_execute(plan, args, NULL, true, 1, SPI_OK_SELECT);
	if (SPI_processed == 0)
		order_not_found(order_id);
	row = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	may_update = DatumGetBool(SPI_getbinval(row, desc, orders_fnumber(desc, "may_update"), &isnull));
	lname = SPI_getvalue(row, desc, orders_fnumber(desc, "lifecycle"));
	status = SPI_getvalue(row, desc, orders_fnumber(desc, "status"));
	number = SPI_getvalue(row, desc, orders_fnumber(desc, "order_number"));
	orders_read_assignment(row, desc, &assigned);

	lc = require_lifecycle(lname, number);
	from = require_state(lc, status, number);
	for (int i = 0; i < from->nedges && may_update; i++)
	{
		Datum		value;
		bool		null = false;

		if (!lifecycle_edge_permitted(&from->edges[i], &assigned))
			continue;
		/*
		 * a gate that is closed now (or that the caller could not pass); a
		 * VOLATILE check is not run from here (it might write): its edge is
		 * offered and the transition decides
		 */
		if (from->edges[i].gate != NULL &&
			(!OidIsValid(from->edges[i].gate_fn) ||
			 !gate_callable(&from->edges[i]) ||
			 (func_volatile(from->edges[i].gate_fn) != PROVOLATILE_VOLATILE &&
			  gate_missing(&from->edges[i], order_id, lname, status, from->edges[i].to_status) != NULL)))
			continue;
		value = CStringGetTextDatum(from->edges[i].to_status);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &value, &null);
	}
	SPI_finish();
	return (Datum) 0;
}
