/*
 * leads.c — orders.orders.leads_delivered kept exact by deltas.
 *
 *   orders.leads_count()     AFTER INSERT / UPDATE / DELETE ... FOR EACH
 *                            STATEMENT on orders.leads, with transition
 *                            tables: adds up, per order, +1 for each counted
 *                            new row and -1 for each counted old row, then
 *                            writes each order's sum (in order id order, so
 *                            concurrent statements cannot deadlock), as the
 *                            owner of orders.orders: directly while the
 *                            table has only the extension's triggers, else
 *                            by an UPDATE.  Never recounts: the cost is the
 *                            statement's rows, not the order's leads.
 *   orders.leads_lock_orders()  AFTER INSERT ... FOR EACH ROW on
 *                            orders.leads, named to fire before the foreign
 *                            keys' checks: at the statement's first counted
 *                            row, locks every order it delivers to (FOR NO
 *                            KEY UPDATE, in id order) before the foreign key
 *                            takes its KEY SHARE lock on them.
 *   orders.leads_truncate()  BEFORE TRUNCATE on orders.leads: refused while
 *                            any order counts delivered leads.
 *   orders.lead_capacity_guard()  BEFORE INSERT OR UPDATE OF leads_purchased,
 *                            leads_delivered ON orders.orders: delivered never
 *                            exceeds purchased, and only this file (or the
 *                            table owner) writes leads_delivered.
 *
 * A lead counts when it has an order and its status is "approved" or "lead"
 * (seed 002).  Exactness under concurrency comes from the order's row lock,
 * taken before the counter is read and written: writers of one order queue
 * on it, and each adds its own delta to the committed value.
 */
#include "orders.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "common/int.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(orders_leads_count);
PG_FUNCTION_INFO_V1(orders_leads_truncate);
PG_FUNCTION_INFO_V1(orders_lead_capacity_guard);
PG_FUNCTION_INFO_V1(orders_leads_lock_orders);
PG_FUNCTION_INFO_V1(orders_leads_left_behind);

/* true while this file itself writes leads_delivered */
static bool counter_writing = false;

/* Per-order sums of one statement. */
typedef struct LeadDelta
{
	pg_uuid_t	order_id;		/* hash key */
	int64		delta;			/* counted new rows - counted old rows */
	bool		checked;		/* a new row references the order */
	bool		mixed;			/* new rows disagree with each other */
	bool		customer_null;	/* the first new row has no customer */
	pg_uuid_t	customer;		/* customer of the first new row */
	pg_uuid_t	lead;			/* the first new row */
} LeadDelta;

/* Column numbers of orders.leads, read once per statement. */
typedef struct LeadColumns
{
	int			id;
	int			order_id;
	int			customer_id;
	int			status;
} LeadColumns;

/* The column of orders.orders the counter writes (a derived write: activity.c). */
static const char *const counter_columns[] = {"leads_delivered", NULL};

/* lead_columns — the numbers of the columns of orders.leads ("rel") read here. */
static void
lead_columns(Relation rel, LeadColumns *col)
{
	TupleDesc	desc = RelationGetDescr(rel);

	col->id = orders_typed_column(rel, "id", UUIDOID);
	col->order_id = orders_typed_column(rel, "order_id", UUIDOID);
	col->customer_id = orders_typed_column(rel, "customer_id", UUIDOID);
	col->status = orders_fnumber(desc, "status");
}

/* lead_counts — does a lead with this status count as delivered? */
static bool
lead_counts(Datum status)
{
	text	   *t = DatumGetTextPP(status);
	const char *s = VARDATA_ANY(t);
	int			len = VARSIZE_ANY_EXHDR(t);

	return (len == 8 && memcmp(s, "approved", 8) == 0) ||
		(len == 4 && memcmp(s, "lead", 4) == 0);
}

/* What a row callback needs while folding a transition table. */
typedef struct LeadFold
{
	HTAB	   *deltas;
	const LeadColumns *col;
} LeadFold;

/*
 * fold_lead — fold one lead row into the deltas: "sign" is +1 for new rows,
 * -1 for old rows.  New rows also record which customer they carry, for
 * the customer check.
 */
static void
fold_lead(TupleTableSlot *slot, int sign, void *arg)
{
	LeadFold   *fold = (LeadFold *) arg;
	const LeadColumns *col = fold->col;
	bool		isnull;
	Datum		order_id = slot_getattr(slot, col->order_id, &isnull);
	Datum		status;
	LeadDelta  *d;
	bool		found;

	if (isnull)
		return;
	status = slot_getattr(slot, col->status, &isnull);
	if (sign < 0 && (isnull || !lead_counts(status)))
		return;					/* an old row matters only if it counted */

	d = (LeadDelta *) hash_search(fold->deltas, DatumGetUUIDP(order_id), HASH_ENTER, &found);
	if (!found)
	{
		d->delta = 0;
		d->checked = false;
		d->mixed = false;
	}
	if (!isnull && lead_counts(status))
		d->delta += sign;
	if (sign > 0)
	{
		bool		no_customer;
		Datum		customer = slot_getattr(slot, col->customer_id, &no_customer);

		if (!d->checked)
		{
			bool		no_id;
			Datum		lead = slot_getattr(slot, col->id, &no_id);

			d->checked = true;
			d->customer_null = no_customer;
			if (!no_customer)
				memcpy(&d->customer, DatumGetUUIDP(customer), sizeof(pg_uuid_t));
			if (!no_id)
				memcpy(&d->lead, DatumGetUUIDP(lead), sizeof(pg_uuid_t));
		}
		else if (no_customer != d->customer_null ||
				 (!no_customer &&
				  memcmp(&d->customer, DatumGetUUIDP(customer), sizeof(pg_uuid_t)) != 0))
			d->mixed = true;
	}
}

/* lead_delta_matters — an order whose count moves or whose leads need checking. */
static bool
lead_delta_matters(const void *entry)
{
	const LeadDelta *d = (const LeadDelta *) entry;

	return d->delta != 0 || d->checked;
}

static char *
uuid_text(const pg_uuid_t *u)
{
	return DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(u)));
}

/*
 * auto_complete — the order just reached its purchased count while in a
 * status that accepts leads: move it along the lifecycle's edge to a
 * fulfilled-category status (campaign: active -> completed), through the
 * ordinary status UPDATE, so status_guard stamps it and status_audit writes
 * history, in this transaction.
 */
static void
auto_complete(Oid orders_rel, const pg_uuid_t *order_id, const LifecycleState *st,
			  int purchased, char *actor)
{
	static Oid	argtypes[2] = {UUIDOID, TEXTOID};
	const LifecycleEdge *edge = NULL;
	SPIPlanPtr	plan;
	Datum		args[2];
	char	   *note = palloc(64);

	for (int i = 0; i < st->nedges && edge == NULL; i++)
		if (st->edges[i].to_category == CATEGORY_FULFILLED)
			edge = &st->edges[i];
	if (edge == NULL)
		return;

	snprintf(note, 64, "auto: all %d leads delivered", purchased);
	plan = orders_get_plan(PLAN_LEADS_COMPLETE, orders_rel,
						   "UPDATE orders.orders SET status = $2"
						   " WHERE id OPERATOR(pg_catalog.=) $1",
						   2, argtypes);
	args[0] = UUIDPGetDatum(order_id);
	args[1] = CStringGetTextDatum(edge->to_status);
	orders_run_status_change(plan, args, order_id, note, NULL, actor, SPI_OK_UPDATE);
}

/* The order of a statement's sum, as read under its row lock. */
typedef struct LeadOrder
{
	char	   *number;
	char	   *lifecycle;
	char	   *status;
	pg_uuid_t	customer;
	bool		customer_null;
	int32		delivered;		/* after this statement's sum (full: before it) */
	int32		purchased;
} LeadOrder;

/*
 * accepting_state — the state of order "o", which leads of sum "d" are
 * delivered to; OR012 when its status does not accept leads (naming the
 * order's number and status only to a caller who may see it).
 */
static const LifecycleState *
accepting_state(Oid orders_rel, const LeadDelta *d, const LeadOrder *o, const OrdersSavedUser *caller)
{
	const LifecycleState *st = lifecycle_find_state(o->lifecycle, o->status);

	if (st == NULL || !st->accepts_leads)
	{
		Datum		id = UUIDPGetDatum(&d->order_id);
		bool		visible = orders_caller_sees(orders_rel, id, caller);

		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_NOT_ACCEPTING_LEADS),
				 visible ?
				 errmsg("order \"%s\" is %s and not accepting leads", o->number, o->status) :
				 errmsg("order %s is not accepting leads", uuid_text(&d->order_id)),
				 errdetail("Leads count toward an order only in a status with accepts_leads (campaign: active)."),
				 errhint("Activate the campaign first, or leave the lead unapproved.")));
	}
	return st;
}

/*
 * check_order — the refusals that need the order "o" of sum "d" ("full":
 * the sum did not fit, nothing written): delivered never exceeds purchased
 * (OR010), the lead's customer must be the order's (OR011), leads may only
 * be delivered to an order whose status accepts them (OR012, also before
 * OR010 for an order that bought none: it is not "full").  The
 * refusals name the order's number, status and counts only to a caller who
 * may see the order.  Returns the order's state when the sum filled it up
 * (the order is to complete itself: auto_complete), else NULL.
 */
static const LifecycleState *
check_order(Oid orders_rel, const LeadDelta *d, const LeadOrder *o, bool full, bool restoring,
			const OrdersSavedUser *caller)
{
	Datum		id = UUIDPGetDatum(&d->order_id);
	const LifecycleState *st;

	/*
	 * an order that bought no leads and takes none (any COD order) says
	 * so, not that it is "full: 0 of 0"; a campaign that filled up and
	 * completed itself stays "full"
	 */
	if (full && d->delta > 0 && !restoring && o->purchased == 0)
		(void) accepting_state(orders_rel, d, o, caller);
	if (full)
	{
		if (!orders_caller_sees(orders_rel, id, caller))
			ereport(ERROR,
					(errcode(ERRCODE_ORDERS_LEAD_CAPACITY),
					 errmsg("order %s has no room for " INT64_FORMAT " more leads",
							uuid_text(&d->order_id), d->delta),
					 errhint("Assign the leads to another order.")));
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_LEAD_CAPACITY),
				 errmsg("order \"%s\" is full: %d of %d leads delivered, " INT64_FORMAT " more would exceed the purchase",
						o->number, o->delivered, o->purchased, d->delta),
				 errhint("Raise leads_purchased or assign the leads to another order.")));
	}

	if (d->checked &&
		(d->mixed || d->customer_null || o->customer_null ||
		 memcmp(&d->customer, &o->customer, sizeof(pg_uuid_t)) != 0))
	{
		bool		visible = orders_caller_sees(orders_rel, id, caller);

		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_LEAD_CUSTOMER_MISMATCH),
				 visible ?
				 errmsg("order \"%s\" belongs to customer %s; lead %s %s",
						o->number, o->customer_null ? "(none)" : uuid_text(&o->customer), uuid_text(&d->lead),
						d->mixed ? "and others in this statement belong to other customers" :
						d->customer_null ? "has no customer" :
						psprintf("belongs to customer %s", uuid_text(&d->customer))) :
				 errmsg("order %s belongs to another customer than lead %s",
						uuid_text(&d->order_id), uuid_text(&d->lead)),
				 errhint("A lead can only be delivered to an order of its own customer.")));
	}

	if (d->delta <= 0 || restoring)
		return NULL;
	st = accepting_state(orders_rel, d, o, caller);
	return o->delivered == o->purchased && o->purchased > 0 ? st : NULL;
}

/*
 * require_same_customer — at REPEATABLE READ, refuse (40001) to judge a
 * lead by the customer its snapshot gives order "args[0]" when a move of
 * the order to another customer has committed since: the move took the
 * leads it saw along, not this one.  Reads the order ("plan") with the
 * latest snapshot, then with the transaction's, which it leaves in
 * SPI_tuptable for the caller.
 */
static void
require_same_customer(SPIPlanPtr plan, Datum *args)
{
	Datum		latest = (Datum) 0;
	bool		latest_null = true;
	bool		seen_null;
	Datum		seen;

	orders_execute_latest(plan, args, NULL, SPI_OK_SELECT);
	if (SPI_processed > 0)
		latest = SPI_datumTransfer(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &latest_null),
								   false, UUID_LEN);
	orders_execute(plan, args, NULL, false, 1, SPI_OK_SELECT);
	if (SPI_processed == 0 || latest_null)
		return;
	seen = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &seen_null);
	if (seen_null || memcmp(DatumGetUUIDP(seen), DatumGetUUIDP(latest), UUID_LEN) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access: order %s moved to another customer after this transaction's snapshot",
						uuid_text(DatumGetUUIDP(args[0])))));
}

/*
 * add_sql — one order's sum by the counter UPDATE (or, for a sum of zero
 * or one the order has no room for, a read, under a shared advisory lock
 * of the order that its move to another customer takes exclusively before
 * taking its leads along (leads_follow_order, 0.37.0 library: a new lead
 * written while its order moved stayed with the old customer; the move
 * now waits for it, or it for the move and then reads the customer the
 * move made — at REPEATABLE READ a move committed after the snapshot is
 * 40001; 0.40.0: an API request takes at most orders.lead_locks_per_request
 * such locks, lead_move_lock.c): false when the order is gone
 * (its leads lost it by ON DELETE SET NULL), else "*o" and "*full" (the
 * sum did not fit: nothing written).
 */
static bool
add_sql(Oid orders_rel, const LeadDelta *d, LeadOrder *o, bool *full)
{
	static Oid	argtypes[2] = {UUIDOID, INT4OID};
	OrdersDerived derived = {orders_rel, counter_columns};
	SPIPlanPtr	plan;
	Datum		args[2];
	HeapTuple	row;
	TupleDesc	desc;
	bool		isnull;
	Datum		customer;

	args[0] = UUIDPGetDatum(&d->order_id);
	args[1] = Int32GetDatum((int32) d->delta);
	*full = false;
	if (d->delta != 0)
	{
		plan = orders_get_plan(PLAN_LEADS_ADD, orders_rel,
							   "UPDATE orders.orders"
							   "   SET leads_delivered = leads_delivered OPERATOR(pg_catalog.+) $2"
							   " WHERE id OPERATOR(pg_catalog.=) $1"
							   "   AND ($2 OPERATOR(pg_catalog.<) 0 OR leads_delivered OPERATOR(pg_catalog.+) $2"
							   "        OPERATOR(pg_catalog.<=) leads_purchased)"
							   " RETURNING order_number, lifecycle, status, customer_id,"
							   "           leads_delivered, leads_purchased",
							   2, argtypes);
		orders_execute_writing(plan, args, NULL, SPI_OK_UPDATE_RETURNING, &counter_writing, &derived);
		*full = SPI_processed == 0; /* or deleted: the read tells */
	}
	if (d->delta == 0 || *full)
	{
		plan = orders_get_plan(PLAN_LEADS_READ, orders_rel,
							   "SELECT order_number, lifecycle, status, customer_id,"
							   "       leads_delivered, leads_purchased"
							   "  FROM orders.orders WHERE id OPERATOR(pg_catalog.=) $1",
							   1, argtypes);
		/* what an order's move waits for before it takes its leads along */
		orders_lock_order_leads(args[0], false);
		if (IsolationUsesXactSnapshot())
			require_same_customer(plan, args);	/* its last read is the one below */
		else
			orders_execute(plan, args, NULL, false, 1, SPI_OK_SELECT);
	}
	if (SPI_processed == 0)
		return false;

	row = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	o->number = SPI_getvalue(row, desc, 1);
	o->lifecycle = SPI_getvalue(row, desc, 2);
	o->status = SPI_getvalue(row, desc, 3);
	customer = SPI_getbinval(row, desc, 4, &o->customer_null);
	if (!o->customer_null)
		memcpy(&o->customer, DatumGetUUIDP(customer), sizeof(pg_uuid_t));
	o->delivered = DatumGetInt32(SPI_getbinval(row, desc, 5, &isnull));
	o->purchased = DatumGetInt32(SPI_getbinval(row, desc, 6, &isnull));
	return true;
}

/* Columns of orders.orders the direct counter reads, by number. */
typedef struct OrderColumns
{
	int			number;
	int			lifecycle;
	int			status;
	int			customer;
	int			purchased;
} OrderColumns;

/*
 * The BEFORE UPDATE row triggers of orders.orders that let a counter write
 * through unchanged: status_guard (status, lifecycle, number, notes and
 * amounts are as they were) and lead_capacity_guard (the counter is
 * writing, and the new count is checked against the purchase first).
 */
static const char *const counter_guards[] = {
	"orders_status_guard", "orders_status_guard_held", "orders_lead_capacity_guard", NULL
};

/*
 * order_columns — can the counter of "rel" be written directly
 * (orders_direct_updatable, the columns it reads of the types it reads
 * them as, NOT NULL but the customer)?  Then "*c" gets their numbers.
 */
static bool
order_columns(Relation rel, OrderColumns *c)
{
	TupleDesc	desc = RelationGetDescr(rel);
	static const char *const names[] = {"order_number", "lifecycle", "status", "customer_id",
	"leads_purchased", "leads_delivered"};
	static const Oid types[] = {TEXTOID, TEXTOID, TEXTOID, UUIDOID, INT4OID, INT4OID};
	int			att[6];

	for (int i = 0; i < 6; i++)
	{
		att[i] = orders_fnumber(desc, names[i]);
		/* all but customer_id NOT NULL, as installed */
		if (att[i] <= 0 || TupleDescAttr(desc, att[i] - 1)->atttypid != types[i] ||
			(i != 3 && !TupleDescAttr(desc, att[i] - 1)->attnotnull))
			return false;
	}
	c->number = att[0];
	c->lifecycle = att[1];
	c->status = att[2];
	c->customer = att[3];
	c->purchased = att[4];
	return orders_direct_updatable(rel, orders_derived_unaffected);
}

/*
 * add_direct — one order's sum (not zero) written without an SQL statement
 * (direct_write.c) into its row locked in "dw": as add_sql, with what the
 * UPDATE's row triggers, constraints and indexes do, but not the
 * statement triggers of orders_derived_unaffected (a change of
 * leads_delivered alone gives them nothing to do) nor, when "guards_idle"
 * (orders_direct_idle_before found only them), the BEFORE row triggers of
 * counter_guards (the same).  An overflow fails with 22003, as the
 * UPDATE's addition would.
 */
static bool
add_direct(OrdersDirect *dw, const OrderColumns *c, const LeadDelta *d, bool guards_idle, LeadOrder *o, bool *full)
{
	TupleTableSlot *row = dw->row;
	bool		isnull;
	bool		was = counter_writing;
	Datum		customer;

	*full = false;
	if (!orders_direct_lock_by_id(dw, UUIDPGetDatum(&d->order_id)))
		return false;
	o->number = TextDatumGetCString(slot_getattr(row, c->number, &isnull));
	o->lifecycle = TextDatumGetCString(slot_getattr(row, c->lifecycle, &isnull));
	o->status = TextDatumGetCString(slot_getattr(row, c->status, &isnull));
	customer = slot_getattr(row, c->customer, &o->customer_null);
	if (!o->customer_null)
		memcpy(&o->customer, DatumGetUUIDP(customer), sizeof(pg_uuid_t));
	o->delivered = DatumGetInt32(slot_getattr(row, dw->attnums[0], &isnull));
	o->purchased = DatumGetInt32(slot_getattr(row, c->purchased, &isnull));
	if (d->delta > 0 && o->delivered + d->delta > o->purchased)
	{
		*full = true;
		return true;
	}
	if (pg_add_s32_overflow(o->delivered, (int32) d->delta, &o->delivered))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("integer out of range")));
	counter_writing = true;
	/*
	 * the guards refuse an order already over its purchase
	 * (lead_capacity_guard) and a write of an order whose status change
	 * is under way (status_guard): they fire for those
	 */
	dw->before_idle = guards_idle && o->delivered <= o->purchased && !orders_pending_change_on(&d->order_id);
	PG_TRY();
	{
		Datum		value = Int32GetDatum(o->delivered);
		bool		value_null = false;

		if (!orders_direct_update(dw, &value, &value_null))
			ereport(ERROR,
					(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
					 errmsg("the lead count of order %s was not written: a trigger on orders.orders skipped it",
							o->number)));
	}
	PG_FINALLY();
	{
		counter_writing = was;
	}
	PG_END_TRY();
	return true;
}

/*
 * apply_deltas — the statement's sums ("sorted" by order id, so that
 * concurrent statements cannot deadlock), each added to its order and
 * checked (check_order); then the orders they filled up complete
 * themselves.  Written directly when orders.orders is as installed (the
 * less done between taking a hot order's row lock and the commit, the
 * sooner the next writer has it), else by one UPDATE per order.  Runs as
 * the owner of orders.orders, connected to SPI.
 */
static void
apply_deltas(Oid orders_rel, LeadDelta **sorted, long n, char *actor, bool restoring,
			 const OrdersSavedUser *caller)
{
	OrdersDerived derived = {orders_rel, counter_columns};
	const OrdersDerived *was_derived = orders_derived;
	const LifecycleState **complete = palloc0(sizeof(LifecycleState *) * n);
	int32	   *purchased = palloc0(sizeof(int32) * n);
	Relation	rel = table_open(orders_rel, RowExclusiveLock);
	OrderColumns cols;
	OrdersDirect dw;
	bool		direct = order_columns(rel, &cols);
	bool		guards_idle = false;

	PG_TRY();
	{
		if (direct)
		{
			/* the log leaves the counter out while the row triggers fire */
			orders_derived = &derived;
			orders_direct_begin(&dw, rel, counter_columns);
			guards_idle = orders_direct_idle_before(&dw, counter_guards);
		}
		for (long i = 0; i < n; i++)
		{
			LeadOrder	o;
			bool		full;
			bool		found;

			if (sorted[i]->delta > PG_INT32_MAX || sorted[i]->delta < PG_INT32_MIN)
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("too many leads in one statement for order %s", uuid_text(&sorted[i]->order_id))));
			if (direct && sorted[i]->delta != 0)
				found = add_direct(&dw, &cols, sorted[i], guards_idle, &o, &full);
			else
				found = add_sql(orders_rel, sorted[i], &o, &full);
			if (found)
			{
				complete[i] = check_order(orders_rel, sorted[i], &o, full, restoring, caller);
				purchased[i] = o.purchased;
			}
		}
		if (direct)
			orders_direct_end(&dw);
	}
	PG_FINALLY();
	{
		orders_derived = was_derived;
	}
	PG_END_TRY();
	table_close(rel, NoLock);

	for (long i = 0; i < n; i++)
		if (complete[i] != NULL)
			auto_complete(orders_rel, &sorted[i]->order_id, complete[i], purchased[i], actor);
}

/*
 * orders.leads_count() — AFTER INSERT, UPDATE or DELETE ... REFERENCING
 * ... FOR EACH STATEMENT on orders.leads.  Guarantees that, when the
 * statement ends, every order's leads_delivered changed by exactly the
 * number of counted leads the statement added to it minus those it took
 * away, or that the statement failed.
 */
Datum
orders_leads_count(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = orders_trigger_data(fcinfo, "leads_count",
												ORDERS_TRIG_AFTER | ORDERS_TRIG_INSERT |
												ORDERS_TRIG_UPDATE | ORDERS_TRIG_DELETE);
	TupleDesc	desc = RelationGetDescr(trigdata->tg_relation);
	LeadColumns col;
	LeadFold	fold;
	LeadDelta **sorted;
	long		n;
	Oid			orders_rel;
	OrdersSavedUser saved;
	char	   *actor;
	bool		restoring;

	orders_require_transition_tables(trigdata, "leads_count");
	lead_columns(trigdata->tg_relation, &col);

	fold.deltas = orders_delta_hash("orders lead deltas", sizeof(LeadDelta));
	fold.col = &col;
	if (trigdata->tg_oldtable)
		orders_for_each_row(trigdata->tg_oldtable, desc, -1, fold_lead, &fold);
	if (trigdata->tg_newtable)
		orders_for_each_row(trigdata->tg_newtable, desc, +1, fold_lead, &fold);
	sorted = (LeadDelta **) orders_sorted_deltas(fold.deltas, lead_delta_matters, &n);
	if (n == 0)
		return PointerGetDatum(NULL);

	actor = orders_current_actor();
	/* pg_restore (COPY by the owner) counts, but must not apply live rules */
	restoring = orders_owner_restoring(trigdata->tg_relation);
	orders_rel = orders_relid("orders");
	orders_spi_connect_as_owner(orders_rel, &saved);
	apply_deltas(orders_rel, sorted, n, actor, restoring, &saved);
	orders_spi_finish_as(&saved);
	return PointerGetDatum(NULL);
}

/*
 * The orders this transaction locked ahead of its leads' foreign keys
 * (orders.leads_lock_orders), in TopTransactionContext; forgotten when a
 * subtransaction rolls back (which may release some of those locks).
 */
static HTAB *locked_orders = NULL;
static LocalTransactionId locked_lxid = InvalidLocalTransactionId;
static bool locked_callback = false;

/* locked_subxact_end — a subtransaction rolled back: forget the locked orders. */
static void
locked_subxact_end(SubXactEvent event, SubTransactionId mySubid, SubTransactionId parentSubid, void *arg)
{
	(void) mySubid;
	(void) parentSubid;
	(void) arg;
	if (event == SUBXACT_EVENT_ABORT_SUB)
		locked_orders = NULL;	/* its memory goes with the transaction's */
}

/* lead_delta_adds — an order the statement delivers leads to. */
static bool
lead_delta_adds(const void *entry)
{
	return ((const LeadDelta *) entry)->delta > 0;
}

/*
 * orders.leads_lock_orders() — AFTER INSERT ... REFERENCING NEW TABLE ...
 * FOR EACH ROW on orders.leads, WHEN the lead has an order.  Its name sorts
 * before the foreign keys' RI_ConstraintTrigger_* (the triggers of a row
 * fire in name order), so at the first counted lead of a statement it
 * locks, FOR NO KEY UPDATE and in id order, every order the statement
 * delivers leads to — before the foreign-key checks of that lead and of
 * every later one take their KEY SHARE locks (an uncounted lead before it
 * in the statement has had its check already).  The counter's write of
 * each order then finds the row held by its own transaction: writers of a
 * hot order queue on the row lock instead of piling KEY SHARE locks next to
 * the updater into MultiXacts, which every later version of the row
 * carried (the one-statement floor's UPDATE locks before its foreign key
 * for the same reason).  Guarantees nothing else — the counter
 * (orders.leads_count) is exact without it — and refuses nothing but what
 * waiting for a lock refuses (deadlock, lock timeout, 40001 at REPEATABLE
 * READ for an order changed since the snapshot, as the counter would).
 * pg_restore's load takes no lock ahead.
 */
Datum
orders_leads_lock_orders(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = orders_trigger_data(fcinfo, "leads_lock_orders",
												ORDERS_TRIG_AFTER | ORDERS_TRIG_ROW | ORDERS_TRIG_INSERT);
	Relation	leads = trigdata->tg_relation;
	TupleDesc	desc = RelationGetDescr(leads);
	LeadColumns col;
	LeadFold	fold;
	LeadDelta **sorted;
	long		n;
	int			m = 0;
	Datum	   *ids;
	Datum		order_id;
	Datum		status;
	bool		isnull;
	Relation	orders;

	lead_columns(trigdata->tg_relation, &col);
	order_id = heap_getattr(trigdata->tg_trigtuple, col.order_id, desc, &isnull);
	if (isnull)
		return PointerGetDatum(NULL);
	status = heap_getattr(trigdata->tg_trigtuple, col.status, desc, &isnull);
	if (isnull || !lead_counts(status))
		return PointerGetDatum(NULL);
	if (!locked_callback)
	{
		RegisterSubXactCallback(locked_subxact_end, NULL);
		locked_callback = true;
	}
	if (locked_orders == NULL || locked_lxid != MyProc->lxid)
	{
		HASHCTL		ctl;

		MemSet(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(pg_uuid_t);
		ctl.entrysize = sizeof(pg_uuid_t);
		ctl.hcxt = TopTransactionContext;
		locked_orders = hash_create("orders leads' orders locked", 16, &ctl,
									HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		locked_lxid = MyProc->lxid;
	}
	if (hash_search(locked_orders, DatumGetUUIDP(order_id), HASH_FIND, NULL) != NULL)
		return PointerGetDatum(NULL);	/* locked at the statement's first lead */
	if (orders_owner_restoring(leads))
		return PointerGetDatum(NULL);
	if (trigdata->tg_newtable == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"leads_lock_orders\" must be fired with a NEW transition table")));

	fold.deltas = orders_delta_hash("orders lead deltas", sizeof(LeadDelta));
	fold.col = &col;
	orders_for_each_row(trigdata->tg_newtable, desc, +1, fold_lead, &fold);
	sorted = (LeadDelta **) orders_sorted_deltas(fold.deltas, lead_delta_adds, &n);
	ids = palloc(sizeof(Datum) * (n + 1));
	for (long i = 0; i < n; i++)
		if (hash_search(locked_orders, &sorted[i]->order_id, HASH_FIND, NULL) == NULL)
			ids[m++] = UUIDPGetDatum(&sorted[i]->order_id);
	orders = table_open(orders_relid("orders"), RowExclusiveLock);
	orders_direct_lock_rows(orders, ids, m);
	table_close(orders, NoLock);
	/*
	 * remembered once handled — locked, or passed over (gone, or changed by
	 * this command): a lock that failed in a subtransaction is not
	 */
	for (int i = 0; i < m; i++)
		(void) hash_search(locked_orders, DatumGetUUIDP(ids[i]), HASH_ENTER, NULL);
	return PointerGetDatum(NULL);
}

/*
 * orders.leads_truncate() — BEFORE TRUNCATE on orders.leads.  TRUNCATE
 * fires no row or statement DELETE triggers, so it would leave counters
 * behind: refused while any order counts delivered leads — read with the
 * latest snapshot, after TRUNCATE's lock (0.30.0: the statement's snapshot,
 * taken before TRUNCATE waited for its lock, missed a lead committed
 * meanwhile, at READ COMMITTED too).
 */
Datum
orders_leads_truncate(PG_FUNCTION_ARGS)
{
	OrdersSavedUser saved;
	Oid			orders_rel;
	SPIPlanPtr	plan;
	int64		counted;
	bool		isnull;

	(void) orders_trigger_data(fcinfo, "leads_truncate", ORDERS_TRIG_BEFORE | ORDERS_TRIG_TRUNCATE);
	orders_rel = orders_relid("orders");
	orders_spi_connect_as_owner(orders_rel, &saved);
	plan = orders_get_plan(PLAN_LEADS_ANY_COUNTED, orders_rel,
						   "SELECT pg_catalog.count(*) FROM orders.orders"
						   " WHERE leads_delivered OPERATOR(pg_catalog.<>) 0",
						   0, NULL);
	/* after TRUNCATE's lock: what committed while it waited counts */
	orders_execute_latest(plan, NULL, NULL, SPI_OK_SELECT);
	counted = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	orders_spi_finish_as(&saved);
	if (counted > 0)
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_COUNTER_MAINTAINED),
				 errmsg("cannot truncate orders.leads: " INT64_FORMAT " orders count delivered leads", counted),
				 errdetail("TRUNCATE fires no DELETE triggers, so orders.orders.leads_delivered would no longer match the leads."),
				 errhint("Use DELETE FROM orders.leads; the counters follow it.")));
	return PointerGetDatum(NULL);
}

/*
 * orders.lead_capacity_guard() — BEFORE INSERT OR UPDATE OF leads_purchased,
 * leads_delivered ON orders.orders FOR EACH ROW.  Guarantees that
 * leads_delivered never exceeds leads_purchased (naming the order and both
 * numbers), that a new order starts at 0 delivered, and that an UPDATE may
 * change leads_delivered only from the lead counter or as the table owner
 * (orders.recount_leads).
 */
Datum
orders_lead_capacity_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = orders_trigger_data(fcinfo, "lead_capacity_guard",
												ORDERS_TRIG_BEFORE | ORDERS_TRIG_ROW |
												ORDERS_TRIG_INSERT | ORDERS_TRIG_UPDATE);
	Relation	rel = trigdata->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	bool		is_update = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event);
	HeapTuple	newrow = is_update ? trigdata->tg_newtuple : trigdata->tg_trigtuple;
	int			att_del = orders_fnumber(desc, "leads_delivered");
	int			att_pur = orders_fnumber(desc, "leads_purchased");
	bool		null_del;
	bool		null_pur;
	int32		delivered = DatumGetInt32(SPI_getbinval(newrow, desc, att_del, &null_del));
	int32		purchased = DatumGetInt32(SPI_getbinval(newrow, desc, att_pur, &null_pur));
	int32		old_delivered = 0;
	int32		old_purchased = purchased;

	if (null_del || null_pur)
		return orders_trigger_result(trigdata, NULL);	/* NOT NULL reports it */
	if (purchased < 0 && is_update)
		return orders_trigger_result(trigdata, NULL);	/* its CHECK reports it (23514) */
	if (!is_update)
	{
		/*
		 * A new order has no leads yet (leads reference existing orders);
		 * the counter starts at 0 whatever the INSERT says — also when
		 * pg_restore loads orders, before their leads re-count them.
		 */
		Datum		zero = Int32GetDatum(0);
		bool		isnull = false;

		if (delivered == 0)
			return orders_trigger_result(trigdata, NULL);
		return orders_trigger_result(trigdata,
									 heap_modify_tuple_by_cols(newrow, desc, 1, &att_del,
															   &zero, &isnull));
	}
	if (is_update)
	{
		bool		isnull;

		old_delivered = DatumGetInt32(SPI_getbinval(trigdata->tg_trigtuple, desc, att_del, &isnull));
		old_purchased = DatumGetInt32(SPI_getbinval(trigdata->tg_trigtuple, desc, att_pur, &isnull));
	}

	if (delivered != old_delivered && !counter_writing &&
		!has_privs_of_role(GetUserId(), rel->rd_rel->relowner))
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_COUNTER_MAINTAINED),
				 errmsg("order \"%s\": leads_delivered is maintained by the extension",
						SPI_getvalue(newrow, desc, orders_fnumber(desc, "order_number"))),
				 errhint("Assign leads to the order (orders.assign_lead) instead; orders.recount_leads() repairs a count.")));

	if (delivered > purchased)
	{
		char	   *number = SPI_getvalue(newrow, desc, orders_fnumber(desc, "order_number"));

		if (purchased < old_purchased)
			ereport(ERROR,
					(errcode(ERRCODE_ORDERS_PURCHASED_BELOW_DELIVERED),
					 errmsg("order \"%s\": leads_purchased cannot be lowered to %d, %d leads are already delivered",
							number, purchased, delivered),
					 errhint("Remove leads from the order first, or keep leads_purchased at %d or more.", delivered)));
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_LEAD_CAPACITY),
				 errmsg("order \"%s\" is full: %d of %d leads delivered, %d more would exceed the purchase",
						number, old_delivered, purchased, delivered - old_delivered),
				 errhint("Raise leads_purchased or assign the leads to another order.")));
	}
	return orders_trigger_result(trigdata, NULL);
}

/*
 * orders.leads_left_behind(order_id, customer_id) — for leads_follow_order
 * at REPEATABLE READ (0.37.0 library): has order "order_id" a lead of
 * another customer than "customer_id" in the latest snapshot?  The move
 * took the order's lead lock, so every lead statement that judged a lead
 * of the order has ended; its own UPDATE of the leads saw only its
 * snapshot's, and a lead committed after it stayed with the old customer.
 * Runs as its caller (leads_follow_order, SECURITY DEFINER).
 */
Datum
orders_leads_left_behind(PG_FUNCTION_ARGS)
{
	static Oid	argtypes[2] = {UUIDOID, UUIDOID};
	Datum		args[2] = {PG_GETARG_DATUM(0), PG_GETARG_DATUM(1)};
	SPIPlanPtr	plan;
	bool		left;

	orders_spi_connect();
	plan = orders_get_plan(PLAN_LEADS_LEFT_BEHIND, orders_relid("leads"),
						   "SELECT FROM orders.leads l"
						   " WHERE l.order_id OPERATOR(pg_catalog.=) $1"
						   "   AND l.customer_id IS DISTINCT FROM $2 LIMIT 1",
						   2, argtypes);
	orders_execute_latest(plan, args, NULL, SPI_OK_SELECT);
	left = SPI_processed > 0;
	SPI_finish();
	PG_RETURN_BOOL(left);
}

