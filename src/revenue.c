/*
 * revenue.c — the money an order brings, posted once to
 * orders.financial_transactions by the lifecycle.
 *
 * Rule: an order has earned its total_amount while its status is of the
 * "fulfilled" category and its payment_status is "collected" (cod:
 * delivered + collected), nothing otherwise.  Every change of what an order
 * has earned is posted as one automatic ledger row in the changing
 * statement: a revenue row when it grows (delivered and collected: the
 * cash), a refund row when it shrinks (returned after delivery, payment
 * refunded, amount corrected).  So, per order, the automatic revenue minus
 * the automatic refunds always equals what the order has earned now —
 * exactly once, whatever client made the change, at any concurrency (the
 * posting happens under the order's row lock, in its transaction).
 *
 *   orders.post_revenue()  AFTER INSERT / UPDATE ... FOR EACH STATEMENT on
 *                          orders.orders with transition tables.
 *   orders.ledger_guard()  BEFORE INSERT / UPDATE / DELETE ... FOR EACH ROW
 *                          on orders.financial_transactions: automatic rows
 *                          are written only by post_revenue (as the owner).
 */
#include "orders.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/memutils.h"
#include "utils/hsearch.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(orders_post_revenue);
PG_FUNCTION_INFO_V1(orders_ledger_guard);

/*
 * orders_row_earns — has the order row in "slot", in state "st", earned its
 * total_amount (fulfilled category, payment collected)?  The one definition
 * of "earned", shared with the customer statistics (total_spent).
 */
bool
orders_row_earns(TupleTableSlot *slot, const LifecycleState *st, int payment_att)
{
	bool		isnull;
	Datum		payment;
	text	   *t;

	if (st == NULL || st->category != CATEGORY_FULFILLED)
		return false;
	payment = slot_getattr(slot, payment_att, &isnull);
	if (isnull)
		return false;
	t = DatumGetTextPP(payment);
	return VARSIZE_ANY_EXHDR(t) == 9 && memcmp(VARDATA_ANY(t), "collected", 9) == 0;
}

/* What one order earned more (or less) in one statement. */
typedef struct EarnedDelta
{
	pg_uuid_t	order_id;		/* hash key */
	Datum		amount;			/* numeric: earned now - earned before */
	Datum		method;			/* payment_method of the new row, or 0 */
	Datum		currency;		/* currency of the new row */
	char	   *notes;			/* "order N: status, payment P" */
} EarnedDelta;

typedef struct RevenueFold
{
	HTAB	   *deltas;
	Datum		zero;
	int			id;
	int			order_number;
	int			lifecycle;
	int			status;
	int			payment_status;
	int			payment_method;
	int			total_amount;
	int			currency;
} RevenueFold;

/*
 * fold_earned — fold one order row: what it earns, times sign.  Orders that
 * earned nothing before and after never enter the hash.  What it keeps is
 * the order's delta (0.41.0 library: the names, the sums it replaced and a
 * currency it overwrote stayed allocated per row until the trigger
 * returned — 0.6 kB an order, 250 MB for a 300k-order statement).
 */
static void
fold_earned(TupleTableSlot *slot, int sign, void *arg)
{
	RevenueFold *f = (RevenueFold *) arg;
	const LifecycleState *st = lifecycle_row_state(slot, f->lifecycle, f->status);
	bool		earns = orders_row_earns(slot, st, f->payment_status);
	bool		isnull;
	Datum		id = slot_getattr(slot, f->id, &isnull);
	EarnedDelta *d;
	bool		found;

	if (isnull || (!earns && sign < 0))
		return;
	/* old rows come first: a new row that earns nothing matters only after one that did */
	d = (EarnedDelta *) orders_delta_entry(&f->deltas, "orders earned deltas", sizeof(EarnedDelta),
										   DatumGetUUIDP(id), earns, &found);
	if (d == NULL)
		return;
	if (!found)
	{
		d->amount = f->zero;
		d->method = (Datum) 0;
		d->currency = (Datum) 0;	/* none: USD (post_revenue) */
		d->notes = NULL;
	}
	if (sign > 0)
	{
		bool		no_method;
		Datum		method = slot_getattr(slot, f->payment_method, &no_method);
		char	   *number = TextDatumGetCString(slot_getattr(slot, f->order_number, &isnull));
		char	   *status = TextDatumGetCString(slot_getattr(slot, f->status, &isnull));
		char	   *payment = TextDatumGetCString(slot_getattr(slot, f->payment_status, &isnull));

		d->method = no_method ? (Datum) 0 : datumCopy(method, false, -1);
		d->currency = datumCopy(slot_getattr(slot, f->currency, &isnull), false, -1);
		d->notes = psprintf("order %s: %s, payment %s", number, status, payment);
		pfree(number);
		pfree(status);
		pfree(payment);
	}
	if (earns)
	{
		Datum		amount = slot_getattr(slot, f->total_amount, &isnull);

		if (!isnull)
		{
			Datum		was = d->amount;

			d->amount = DirectFunctionCall2(sign > 0 ? numeric_add : numeric_sub, was, amount);
			if (was != f->zero)
				pfree(DatumGetPointer(was));
		}
	}
}

/* earned_moves — keep the orders whose earned amount changed. */
static bool
earned_moves(const void *entry)
{
	const EarnedDelta *d = (const EarnedDelta *) entry;

	return !DatumGetBool(DirectFunctionCall2(numeric_eq, d->amount,
											 DirectFunctionCall1(int4_numeric, Int32GetDatum(0))));
}

/*
 * orders.post_revenue() — AFTER INSERT or UPDATE ... REFERENCING NEW TABLE
 * (and OLD TABLE) FOR EACH STATEMENT on orders.orders.  Guarantees one
 * automatic ledger row per order whose earned amount changed, in order-id
 * order, recorded by the staff member the caller's identity names (if any).
 * COPY by the table owner (pg_restore) posts nothing: the ledger is restored
 * from its own dump.
 */
Datum
orders_post_revenue(PG_FUNCTION_ARGS)
{
	static Oid	argtypes[7] = {UUIDOID, TEXTOID, NUMERICOID, TEXTOID, UUIDOID, TEXTOID, BPCHAROID};
	TriggerData *trigdata = orders_trigger_data(fcinfo, "post_revenue",
												ORDERS_TRIG_AFTER | ORDERS_TRIG_INSERT |
												ORDERS_TRIG_UPDATE);
	Relation	rel = trigdata->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	RevenueFold f;
	EarnedDelta **moved;
	long		n;
	Oid			ledger_rel;
	OrdersSavedUser saved;
	SPIPlanPtr	plan;
	MemoryContext post_cxt;
	pg_uuid_t	account;
	pg_uuid_t	staff_id;
	bool		has_staff;

	orders_require_transition_tables(trigdata, "post_revenue");
	if (orders_owner_restoring(rel))
		return PointerGetDatum(NULL);
	f.deltas = NULL;
	f.zero = DirectFunctionCall1(int4_numeric, Int32GetDatum(0));
	f.id = orders_typed_column(rel, "id", UUIDOID);
	f.order_number = orders_fnumber(desc, "order_number");
	f.lifecycle = orders_fnumber(desc, "lifecycle");
	f.status = orders_fnumber(desc, "status");
	f.payment_status = orders_fnumber(desc, "payment_status");
	f.payment_method = orders_fnumber(desc, "payment_method");
	f.total_amount = orders_fnumber(desc, "total_amount");
	f.currency = orders_fnumber(desc, "currency");
	if (trigdata->tg_oldtable)
		orders_for_each_row(trigdata->tg_oldtable, desc, -1, fold_earned, &f);
	orders_for_each_row(trigdata->tg_newtable, desc, +1, fold_earned, &f);
	moved = (EarnedDelta **) orders_sorted_deltas(f.deltas, earned_moves, &n);
	if (n == 0)
		return PointerGetDatum(NULL);

	/* who records it: the staff row of the caller's account, as now */
	has_staff = orders_current_account(&account) &&
		orders_staff_of_account(&account, &staff_id);
	ledger_rel = orders_relid("financial_transactions");
	orders_spi_connect_as_owner(ledger_rel, &saved);
	plan = orders_get_plan(PLAN_REVENUE_POST, ledger_rel,
						   "INSERT INTO orders.financial_transactions"
						   " (order_id, type, amount, method, recorded_by_user_id, notes, currency, automatic)"
						   " VALUES ($1, $2, $3, $4, $5,"
						   "         'automatic: ' OPERATOR(pg_catalog.||) $6, $7, true)",
						   7, argtypes);
	/* each order's arguments in a context of their own, emptied after its row */
	post_cxt = AllocSetContextCreate(CurrentMemoryContext, "orders revenue posting", ALLOCSET_SMALL_SIZES);
	for (long i = 0; i < n; i++)
	{
		EarnedDelta *d = moved[i];
		MemoryContext was = MemoryContextSwitchTo(post_cxt);
		bool		grew = DatumGetBool(DirectFunctionCall2(numeric_gt, d->amount, f.zero));
		Datum		args[7];
		char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};

		args[0] = UUIDPGetDatum(&d->order_id);
		args[1] = CStringGetTextDatum(grew ? "revenue" : "refund");
		args[2] = DirectFunctionCall1(numeric_abs, d->amount);
		args[3] = d->method;
		if (d->method == (Datum) 0)
			nulls[3] = 'n';
		args[4] = UUIDPGetDatum(&staff_id);
		if (!has_staff)
			nulls[4] = 'n';
		args[5] = CStringGetTextDatum(d->notes ? d->notes : "");
		args[6] = d->currency != (Datum) 0 ? d->currency : CStringGetTextDatum("USD");
		orders_execute(plan, args, nulls, false, 0, SPI_OK_INSERT);
		MemoryContextSwitchTo(was);
		MemoryContextReset(post_cxt);
	}
	MemoryContextDelete(post_cxt);
	orders_spi_finish_as(&saved);
	return PointerGetDatum(NULL);
}

/*
 * orders.ledger_guard() — BEFORE INSERT, UPDATE or DELETE ... FOR EACH ROW
 * on orders.financial_transactions.  Guarantees that automatic rows (the
 * lifecycle's postings) are written, changed and removed only as the table
 * owner — post_revenue, a DBA, or the foreign key's ON DELETE SET NULL —
 * so that they stay a true record of what each order earned.  Manual rows
 * (automatic = false) are the accountants' and pass.
 */
Datum
orders_ledger_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = orders_trigger_data(fcinfo, "ledger_guard",
												ORDERS_TRIG_BEFORE | ORDERS_TRIG_ROW |
												ORDERS_TRIG_INSERT | ORDERS_TRIG_UPDATE |
												ORDERS_TRIG_DELETE);
	Relation	rel = trigdata->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	int			att = orders_fnumber(desc, "automatic");
	TriggerEvent ev = trigdata->tg_event;
	bool		isnull;
	bool		was_automatic = false;	/* the old row (UPDATE, DELETE) */
	bool		automatic = false;	/* the new one (INSERT, UPDATE) */

	if (!TRIGGER_FIRED_BY_INSERT(ev))
		was_automatic = DatumGetBool(SPI_getbinval(trigdata->tg_trigtuple, desc, att, &isnull)) && !isnull;
	if (!TRIGGER_FIRED_BY_DELETE(ev))
	{
		HeapTuple	newrow = TRIGGER_FIRED_BY_UPDATE(ev) ? trigdata->tg_newtuple : trigdata->tg_trigtuple;

		automatic = DatumGetBool(SPI_getbinval(newrow, desc, att, &isnull)) && !isnull;
	}

	if ((was_automatic || automatic) && !has_privs_of_role(GetUserId(), rel->rd_rel->relowner))
	{
		/* an automatic row changed or deleted; else a row written automatic (a manual one too, 0.30.0) */
		if (was_automatic)
			ereport(ERROR,
					(errcode(ERRCODE_ORDERS_LEDGER_POSTED),
					 errmsg("financial transaction %s is posted by the order lifecycle",
							SPI_getvalue(trigdata->tg_trigtuple, desc, orders_fnumber(desc, "id"))),
					 errdetail("Automatic rows record what each order earned; they are written only by the extension."),
					 errhint("Record a manual row (automatic = false) for corrections.")));
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_LEDGER_POSTED),
				 errmsg("automatic rows of orders.financial_transactions are posted by the order lifecycle only"),
				 errdetail("Automatic rows record what each order earned; they are written only by the extension."),
				 errhint("Record a manual row (automatic = false) for corrections.")));
	}
	return orders_trigger_result(trigdata, NULL);
}
