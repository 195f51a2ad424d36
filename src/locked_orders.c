/*
 * locked_orders.c — an API caller's statement judged on the orders it
 * touched as they are once locked, not as its snapshot saw them.  Row
 * level security judges a row with the statement's snapshot: an order paid
 * or taken on by a transaction that committed while the statement ran
 * still looks open to it.  At the statement's end the orders are locked
 * (in id order, the order every counter of theirs is locked in) and judged
 * again.
 *
 *   orders_judge_orders()          the orders locked FOR NO KEY UPDATE in
 *                                  id order as the owner (or read without
 *                                  a lock), each handed to a judge that
 *                                  refuses what it must
 *   orders_callers_customers()     the caller's customer ids, kept for a
 *                                  judge (they are looked up again under
 *                                  the owner)
 *   orders_customer_owns()         is a locked order one of the caller's?
 *   orders_customer_open()         the judge of a customer's write: still
 *                                  the caller's, open and unpaid (the
 *                                  groups' and requirements' below, the
 *                                  sites' in site_items.c)
 *   orders_typed_column()          a column a trigger reads, refused unless
 *                                  it has the type installed
 *   orders.customer_edit_recheck() AFTER INSERT, UPDATE or DELETE ... FOR
 *                                  EACH STATEMENT on orders.order_groups
 *                                  and orders.order_requirements (0.33.0):
 *                                  a customer writes the groups and
 *                                  requirements of its orders only while
 *                                  they are open and unpaid, judged on the
 *                                  orders as locked
 */
#include "orders.h"

#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/uuid.h"

PG_FUNCTION_INFO_V1(orders_customer_edit_recheck);

/*
 * orders_judge_orders — when "lock", lock the orders of "orders" ("n"
 * entries of a delta hash keyed by order id, as orders_sorted_deltas sorts
 * them) FOR NO KEY UPDATE in id order as the owner, with the latest
 * snapshot (orders_execute_latest), and hand each, as locked (a change
 * committed while the statement ran is seen, one under way waited for), to
 * "judge" (with "arg"), which refuses what it must.  At REPEATABLE READ a
 * change committed after the transaction's snapshot is judged like any
 * other (only one that commits while the lock waits fails with 40001).
 * Without "lock", the orders as the statement's snapshot sees them, for a
 * first judgement before anything is written.  An id without an order is
 * passed over.
 */
void
orders_judge_orders(void *const *orders, long n, OrdersOrderJudge judge, void *arg, bool lock)
{
	static Oid	argtypes[1] = {UUIDARRAYOID};
	Oid			orders_rel = orders_relid("orders");
	OrdersSavedUser saved;
	SPIPlanPtr	plan;
	Datum	   *ids;
	Datum		ids_arg;

	if (n == 0)
		return;
	ids = palloc(sizeof(Datum) * n);
	for (long i = 0; i < n; i++)
		ids[i] = UUIDPGetDatum((pg_uuid_t *) orders[i]);	/* each entry begins with its key */
	ids_arg = PointerGetDatum(construct_array(ids, n, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
	orders_spi_connect_as_owner(orders_rel, &saved);
#define JUDGE_ORDERS \
	"SELECT o.order_number, o.lifecycle, o.status, o.payment_status, o.customer_id," \
	"       o.paid_at IS NOT NULL, o.id, o.adjustment OPERATOR(pg_catalog.<>) 0 FROM orders.orders o" \
	" WHERE o.id OPERATOR(pg_catalog.=) ANY ($1) ORDER BY o.id"
	if (lock)
	{
		plan = orders_get_keyed_plan(PLAN_LOCK_JUDGE_ORDERS, orders_rel, JUDGE_ORDERS " FOR NO KEY UPDATE",
							         1, argtypes);
		/* the orders as they are (at REPEATABLE READ too): what another change of theirs did is judged, not refused */
		orders_execute_latest(plan, &ids_arg, NULL, SPI_OK_SELECT);
	}
	else
	{
		plan = orders_get_keyed_plan(PLAN_JUDGE_ORDERS, orders_rel, JUDGE_ORDERS, 1, argtypes);
		orders_execute(plan, &ids_arg, NULL, true, 0, SPI_OK_SELECT);
	}
#undef JUDGE_ORDERS
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	row = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		OrdersLockedOrder order = {
			.number = SPI_getvalue(row, desc, 1),
			.lifecycle = SPI_getvalue(row, desc, 2),
			.status = SPI_getvalue(row, desc, 3),
			.payment = SPI_getvalue(row, desc, 4),
			.customer_id = SPI_getbinval(row, desc, 5, &isnull)
		};

		if (isnull)
			order.customer_id = (Datum) 0;
		order.paid = DatumGetBool(SPI_getbinval(row, desc, 6, &isnull));
		order.id = SPI_getbinval(row, desc, 7, &isnull);
		order.adjusted = DatumGetBool(SPI_getbinval(row, desc, 8, &isnull));
		judge(&order, arg);
	}
	orders_spi_finish_as(&saved);
}

/*
 * orders_callers_customers — the caller's customer ids, copied (the
 * identity is looked up again once the owner is switched to).
 */
void
orders_callers_customers(OrdersCallerCustomers *mine)
{
	const Datum *ids = orders_caller_customers(&mine->n);

	mine->ids = palloc(sizeof(Datum) * Max(mine->n, 1));
	for (int i = 0; i < mine->n; i++)
		mine->ids[i] = datumCopy(ids[i], false, UUID_LEN);
}

/* orders_customer_owns — is the locked order "o" one of "mine"? */
bool
orders_customer_owns(const OrdersLockedOrder *o, const OrdersCallerCustomers *mine)
{
	for (int i = 0; i < mine->n && o->customer_id != (Datum) 0; i++)
		if (memcmp(DatumGetUUIDP(mine->ids[i]), DatumGetUUIDP(o->customer_id), sizeof(pg_uuid_t)) == 0)
			return true;
	return false;
}

/*
 * orders_customer_statement — is the statement writing "rel" one the
 * policies let in only as a customer's: an API request (cached per
 * command), under the table's row level security (not its owner, a
 * superuser or a role that bypasses it — a SECURITY DEFINER function of
 * such a role writes as itself), by a caller without the staff permission
 * orders.edit?  Only those are judged again on the orders as locked.
 */
bool
orders_customer_statement(Relation rel)
{
	return orders_api_request_now() && !has_privs_of_role(GetUserId(), rel->rd_rel->relowner) &&
		check_enable_rls(RelationGetRelid(rel), InvalidOid, true) == RLS_ENABLED &&
		!orders_caller_may("orders", "edit");
}

/*
 * orders_typed_column — the number of column "name" of "rel", which a
 * trigger reads as a value of type "type" (a key's uuid, a status's
 * text); refused (55000) when the column is gone or of another type (a
 * DBA's change of the extension's table: reading it as that type would
 * read garbage).
 */
int
orders_typed_column(Relation rel, const char *name, Oid type)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			att = orders_fnumber(desc, name);

	if (att <= 0 || TupleDescAttr(desc, att - 1)->atttypid != type)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("column \"%s\" of %s is %s", name, RelationGetRelationName(rel),
						att <= 0 ? "missing" : psprintf("not of type %s", format_type_be(type))),
				 errhint("The extension's triggers read it as installed; give the table its column back.")));
	return att;
}

/* One order a statement touched (hash key). */
typedef struct TouchedOrder
{
	pg_uuid_t	order_id;
} TouchedOrder;

typedef struct TouchedFold
{
	HTAB	   *orders;
	int			order_id;
} TouchedFold;

/* fold_touched — note the order of one transition-table row. */
static void
fold_touched(TupleTableSlot *slot, int sign, void *arg)
{
	TouchedFold *f = (TouchedFold *) arg;
	bool		isnull;
	Datum		id = slot_getattr(slot, f->order_id, &isnull);
	bool		found;

	(void) sign;
	if (!isnull)
		(void) orders_delta_entry(&f->orders, "orders touched", sizeof(TouchedOrder),
								  DatumGetUUIDP(id), true, &found);
}

/*
 * orders_locked_order_open — is order "o" open (its state's category) and
 * unpaid?  A state its lifecycle does not have (or no status or lifecycle:
 * columns a DBA made nullable) is not open.  The one test of every judge
 * of "may this still be written" (customers', share links', sites').
 */
bool
orders_locked_order_open(const OrdersLockedOrder *o)
{
	const LifecycleState *st = o->lifecycle != NULL && o->status != NULL ?
		lifecycle_find_state(o->lifecycle, o->status) : NULL;

	return !o->paid && st != NULL && st->category == CATEGORY_OPEN;
}

/*
 * orders_customer_open — the judge of a customer's write ("arg": an
 * OrdersEditJudge): the order is still the caller's, open (its state's
 * category) and unpaid, as orders.customer_may_edit_items asks with the
 * statement's snapshot; else 42501.
 */
void
orders_customer_open(const OrdersLockedOrder *o, void *arg)
{
	const OrdersEditJudge *j = (const OrdersEditJudge *) arg;

	if (!orders_customer_owns(o, &j->mine))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("order \"%s\" went to another customer while its %s were written", o->number, j->what),
				 errhint("Read your orders again.")));
	if (!orders_locked_order_open(o))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("order \"%s\" was %s while its %s were written: they are staff's now",
						o->number, o->paid ? "paid" : "closed", j->what),
				 o->paid ? errdetail("Its paid_at is set; status %s.", o->status ? o->status : "none")
				 : errdetail("Status %s.", o->status ? o->status : "none"),
				 errhint("Read the order again; a customer changes the %s of its order only while it is open and unpaid.",
						 j->what)));
}

/*
 * orders.customer_edit_recheck() — AFTER INSERT, UPDATE or DELETE ...
 * REFERENCING ... FOR EACH STATEMENT on orders.order_groups and
 * orders.order_requirements (0.33.0).  Guarantees that a customer's
 * statement (orders_customer_statement: the callers the policies let in
 * only through orders.customer_may_edit_items) writes groups or requirements only of
 * orders that are still its own, open and unpaid once locked
 * (orders_judge_orders) — the policies judged with the statement's
 * snapshot, so a group or requirement written while the order was paid
 * landed in the paid order.  Refuses with 42501; nothing is written.
 * Others pay one test (cached per command).
 */
Datum
orders_customer_edit_recheck(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = orders_trigger_data(fcinfo, "customer_edit_recheck",
												ORDERS_TRIG_AFTER | ORDERS_TRIG_INSERT |
												ORDERS_TRIG_UPDATE | ORDERS_TRIG_DELETE);
	Relation	rel = trigdata->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	TouchedFold f;
	void	  **touched;
	long		n;
	OrdersEditJudge j;

	orders_require_transition_tables(trigdata, "customer_edit_recheck");
	if (!orders_customer_statement(rel))
		return PointerGetDatum(NULL);
	f.orders = NULL;
	f.order_id = orders_typed_column(rel, "order_id", UUIDOID);
	if (trigdata->tg_oldtable)
		orders_for_each_row(trigdata->tg_oldtable, desc, -1, fold_touched, &f);
	if (trigdata->tg_newtable)
		orders_for_each_row(trigdata->tg_newtable, desc, +1, fold_touched, &f);
	touched = orders_sorted_deltas(f.orders, NULL, &n);
	if (n == 0)
		return PointerGetDatum(NULL);
	orders_callers_customers(&j.mine);
	j.what = RelationGetRelid(rel) == orders_relid("order_requirements") ? "requirements" : "client groups";
	orders_judge_orders(touched, n, orders_customer_open, &j, true);
	return PointerGetDatum(NULL);
}
