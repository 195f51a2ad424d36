/*
 * leads.c — orders.orders.leads_delivered kept exact by deltas.
 *
 *   orders.leads_count()     AFTER INSERT / UPDATE / DELETE ... FOR EACH
 *                            STATEMENT on orders.leads, with transition
 *                            tables: adds up, per order, +1 for each counted
 *                            new row and -1 for each counted old row, then
 *                            applies one UPDATE per order (in order id order,
 *                            so concurrent statements cannot deadlock), as the
 *                            owner of orders.orders.  Never recounts: the cost
 *                            is the statement's rows, not the order's leads.
 *   orders.leads_truncate()  BEFORE TRUNCATE on orders.leads: refused while
 *                            any order counts delivered leads.
 *   orders.lead_capacity_guard()  BEFORE INSERT OR UPDATE OF leads_purchased,
 *                            leads_delivered ON orders.orders: delivered never
 *                            exceeds purchased, and only this file (or the
 *                            table owner) writes leads_delivered.
 *
 * A lead counts when it has an order and its status is "approved" or "lead"
 * (seed 002).  Exactness under concurrency comes from the row lock of the
 * counter UPDATE: writers of one order queue on it, and each adds its own
 * delta to the committed value.
 */
#include "orders.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(orders_leads_count);
PG_FUNCTION_INFO_V1(orders_leads_truncate);
PG_FUNCTION_INFO_V1(orders_lead_capacity_guard);

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
	orders_set_pending_change(order_id, note, NULL, actor);
	PG_TRY();
	{
		orders_execute(plan, args, NULL, false, 0, SPI_OK_UPDATE);
	}
	PG_FINALLY();
	{
		orders_clear_pending_change();
	}
	PG_END_TRY();
}

/*
 * apply_delta — apply one order's sum: the counter UPDATE (or, for a sum of
 * zero or one the order has no room for, a read), then the refusals that
 * need the order: delivered never exceeds purchased (OR010), the lead's
 * customer must be the order's (OR011), leads may only be delivered to an
 * order whose status accepts them (OR012).  The refusals name the order's
 * number, status and counts only to a caller who may see the order.
 * Reaching the purchased count completes the order.
 */
static void
apply_delta(Oid orders_rel, LeadDelta *d, char *actor, bool restoring,
			const OrdersSavedUser *caller)
{
	static Oid	argtypes[2] = {UUIDOID, INT4OID};
	static const char *const counter_columns[] = {"leads_delivered", NULL};
	OrdersDerived derived = {orders_rel, counter_columns};
	SPIPlanPtr	plan;
	Datum		args[2];
	HeapTuple	row;
	TupleDesc	desc;
	bool		isnull;
	char	   *number;
	char	   *lifecycle;
	char	   *status;
	Datum		customer;
	int			delivered;
	int			purchased;
	const LifecycleState *st;
	bool		full = false;

	if (d->delta > PG_INT32_MAX || d->delta < PG_INT32_MIN)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("too many leads in one statement for order %s", uuid_text(&d->order_id))));

	args[0] = UUIDPGetDatum(&d->order_id);
	args[1] = Int32GetDatum((int32) d->delta);
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
		full = SPI_processed == 0;	/* or deleted: the read tells */
	}
	if (d->delta == 0 || full)
	{
		plan = orders_get_plan(PLAN_LEADS_READ, orders_rel,
							   "SELECT order_number, lifecycle, status, customer_id,"
							   "       leads_delivered, leads_purchased"
							   "  FROM orders.orders WHERE id OPERATOR(pg_catalog.=) $1",
							   1, argtypes);
		orders_execute(plan, args, NULL, false, 1, SPI_OK_SELECT);
	}
	if (SPI_processed == 0)
		return;					/* the order was deleted (its leads lost it by ON DELETE SET NULL) */

	row = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	number = SPI_getvalue(row, desc, 1);
	lifecycle = SPI_getvalue(row, desc, 2);
	status = SPI_getvalue(row, desc, 3);
	customer = SPI_getbinval(row, desc, 4, &isnull);
	delivered = DatumGetInt32(SPI_getbinval(row, desc, 5, &isnull));
	purchased = DatumGetInt32(SPI_getbinval(row, desc, 6, &isnull));
	if (full)
	{
		if (!orders_caller_sees(orders_rel, args[0], caller))
			ereport(ERROR,
					(errcode(ERRCODE_ORDERS_LEAD_CAPACITY),
					 errmsg("order %s has no room for " INT64_FORMAT " more leads",
							uuid_text(&d->order_id), d->delta),
					 errhint("Assign the leads to another order.")));
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_LEAD_CAPACITY),
				 errmsg("order \"%s\" is full: %d of %d leads delivered, " INT64_FORMAT " more would exceed the purchase",
						number, delivered, purchased, d->delta),
				 errhint("Raise leads_purchased or assign the leads to another order.")));
	}

	if (d->checked &&
		(d->mixed || d->customer_null ||
		 memcmp(&d->customer, DatumGetUUIDP(customer), sizeof(pg_uuid_t)) != 0))
	{
		bool		visible = orders_caller_sees(orders_rel, args[0], caller);

		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_LEAD_CUSTOMER_MISMATCH),
				 visible ?
				 errmsg("order \"%s\" belongs to customer %s; lead %s %s",
						number, uuid_text(DatumGetUUIDP(customer)), uuid_text(&d->lead),
						d->mixed ? "and others in this statement belong to other customers" :
						d->customer_null ? "has no customer" :
						psprintf("belongs to customer %s", uuid_text(&d->customer))) :
				 errmsg("order %s belongs to another customer than lead %s",
						uuid_text(&d->order_id), uuid_text(&d->lead)),
				 errhint("A lead can only be delivered to an order of its own customer.")));
	}

	if (d->delta <= 0 || restoring)
		return;
	st = lifecycle_find_state(lifecycle, status);
	if (st == NULL || !st->accepts_leads)
	{
		bool		visible = orders_caller_sees(orders_rel, args[0], caller);

		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_NOT_ACCEPTING_LEADS),
				 visible ?
				 errmsg("order \"%s\" is %s and not accepting leads", number, status) :
				 errmsg("order %s is not accepting leads", uuid_text(&d->order_id)),
				 errdetail("Leads count toward an order only in a status with accepts_leads (campaign: active)."),
				 errhint("Activate the campaign first, or leave the lead unapproved.")));
	}
	if (delivered == purchased && purchased > 0)
		auto_complete(orders_rel, &d->order_id, st, purchased, actor);
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
	col.id = SPI_fnumber(desc, "id");
	col.order_id = SPI_fnumber(desc, "order_id");
	col.customer_id = SPI_fnumber(desc, "customer_id");
	col.status = SPI_fnumber(desc, "status");

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
	for (long i = 0; i < n; i++)
		apply_delta(orders_rel, sorted[i], actor, restoring, &saved);
	orders_spi_finish_as(&saved);
	return PointerGetDatum(NULL);
}

/*
 * orders.leads_truncate() — BEFORE TRUNCATE on orders.leads.  TRUNCATE
 * fires no row or statement DELETE triggers, so it would leave counters
 * behind: refused while any order counts delivered leads.
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
	orders_execute(plan, NULL, NULL, true, 1, SPI_OK_SELECT);
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
	int			att_del = SPI_fnumber(desc, "leads_delivered");
	int			att_pur = SPI_fnumber(desc, "leads_purchased");
	bool		null_del;
	bool		null_pur;
	int32		delivered = DatumGetInt32(SPI_getbinval(newrow, desc, att_del, &null_del));
	int32		purchased = DatumGetInt32(SPI_getbinval(newrow, desc, att_pur, &null_pur));
	int32		old_delivered = 0;
	int32		old_purchased = purchased;

	if (null_del || null_pur)
		return orders_trigger_result(trigdata, NULL);	/* NOT NULL reports it */
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
						SPI_getvalue(newrow, desc, SPI_fnumber(desc, "order_number"))),
				 errhint("Assign leads to the order (orders.assign_lead) instead; orders.recount_leads() repairs a count.")));

	if (delivered > purchased)
	{
		char	   *number = SPI_getvalue(newrow, desc, SPI_fnumber(desc, "order_number"));

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
