/*
 * customer_stats.c — orders.customers statistics kept exact by deltas.
 *
 *   orders.customer_stats()        AFTER INSERT / UPDATE / DELETE ... FOR
 *                                  EACH STATEMENT on orders.orders, with
 *                                  transition tables: sums, per customer, what
 *                                  the new rows contribute minus what the old
 *                                  rows contributed, then writes the
 *                                  customers whose statistics move (their
 *                                  rows locked in id order: no deadlocks).
 *   orders.customer_stats_guard()  BEFORE INSERT OR UPDATE OF the statistics
 *                                  on orders.customers: only this file (or the
 *                                  table owner) writes them; a new customer
 *                                  starts at 0.
 *
 * What an order contributes to its customer, by the category of its status
 * (so every lifecycle counts alike):
 *   total_orders     1 unless the category is "cancelled";
 *   returned_orders  1 when the category is "returned";
 *   total_spent      total_amount when the category is "fulfilled" and
 *                    payment_status is "collected";
 *   return_rate      returned_orders / total_orders in percent, 2 decimals,
 *                    recomputed from the two stored numbers (O(1)).
 * Never a re-aggregation of a customer's orders; a statement touching many
 * orders of one customer makes one UPDATE of that customer, not one per row
 * (which would also walk an ever longer chain of row versions).  Writers of
 * one customer queue on its row lock.
 */
#include "orders.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "common/int.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/numeric.h"
#include "utils/hsearch.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(orders_customer_stats);
PG_FUNCTION_INFO_V1(orders_customer_stats_guard);

/* true while this file writes customer statistics */
static bool stats_writing = false;

/* The sums of one statement for one customer. */
typedef struct CustomerDelta
{
	pg_uuid_t	customer;		/* hash key */
	int32		orders;
	int32		returned;
	Datum		spent;			/* numeric, in the trigger's memory */
} CustomerDelta;

/* Column numbers of orders.orders, read once per statement. */
typedef struct OrderColumns
{
	int			customer_id;
	int			lifecycle;
	int			status;
	int			payment_status;
	int			total_amount;
} OrderColumns;

/* numeric_zero — 0.00, the scale of the money and rate columns. */
static Datum
numeric_zero(void)
{
	return DirectFunctionCall3(numeric_in, CStringGetDatum("0.00"),
							   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
}

/* What a row callback needs while folding a transition table. */
typedef struct OrderFold
{
	HTAB	   *deltas;
	const OrderColumns *col;
	Datum		zero;
} OrderFold;

/*
 * fold_order — fold one order row into its customer's sums: its
 * contribution times "sign" (+1 new rows, -1 old rows).
 */
static void
fold_order(TupleTableSlot *slot, int sign, void *arg)
{
	OrderFold  *fold = (OrderFold *) arg;
	const OrderColumns *col = fold->col;
	bool		isnull;
	Datum		customer = slot_getattr(slot, col->customer_id, &isnull);
	const LifecycleState *st;
	LifecycleCategory cat;
	CustomerDelta *d;
	bool		found;

	if (isnull)
		return;
	st = lifecycle_row_state(slot, col->lifecycle, col->status);
	cat = st ? st->category : CATEGORY_OPEN;

	d = (CustomerDelta *) hash_search(fold->deltas, DatumGetUUIDP(customer), HASH_ENTER, &found);
	if (!found)
	{
		d->orders = 0;
		d->returned = 0;
		d->spent = fold->zero;
	}
	if (cat != CATEGORY_CANCELLED)
		d->orders += sign;
	if (cat == CATEGORY_RETURNED)
		d->returned += sign;
	if (orders_row_earns(slot, st, col->payment_status))
	{
		Datum		amount = slot_getattr(slot, col->total_amount, &isnull);

		if (!isnull)
			d->spent = DirectFunctionCall2(sign > 0 ? numeric_add : numeric_sub,
										   d->spent, amount);
	}
}

/* customer_delta_moves — does this customer's sum change a statistic? */
static bool
customer_delta_moves(const void *entry)
{
	const CustomerDelta *d = (const CustomerDelta *) entry;

	return d->orders != 0 || d->returned != 0 ||
		!DatumGetBool(DirectFunctionCall2(numeric_eq, d->spent,
										  DirectFunctionCall1(int4_numeric, Int32GetDatum(0))));
}

/* int_plus — a + b for an integer statistic, refused as int4pl refuses an overflow. */
static Datum
int_plus(Datum a, int32 b)
{
	int32		sum;

	if (pg_add_s32_overflow(DatumGetInt32(a), b, &sum))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("integer out of range")));
	return Int32GetDatum(sum);
}

/* typed — a numeric value as stored in column "att" (its typmod: rounded, or 22003 when too large). */
static Datum
typed(Datum value, Form_pg_attribute att)
{
	return att->atttypmod < 0 ? value
		: DirectFunctionCall2(numeric, value, Int32GetDatum(att->atttypmod));
}

/*
 * add_direct — one customer's delta written without an SQL statement
 * (direct_write.c), with the values the UPDATE of add_to_customers would
 * store: the counts added (22003 on overflow), total_spent added, the rate
 * recomputed, each numeric coerced to its column's type; the row's BEFORE
 * and AFTER row triggers fire, as a derived write.  False when the UPDATE
 * must write it: orders.customers is not as installed (the four columns of
 * other types or nullable, a rule, inheritance, a statement trigger: not
 * orders_direct_updatable).  Runs as the owner (add_to_customers), so the
 * row's foreign key checks run under the caller's search path.
 */
static bool
add_direct(Oid customers_rel, const CustomerDelta *delta, const OrdersDerived *derived)
{
	static const char *const columns[] = {"total_orders", "returned_orders", "total_spent", "return_rate", NULL};
	static const Oid types[] = {INT4OID, INT4OID, NUMERICOID, NUMERICOID};
	Relation	rel = table_open(customers_rel, RowExclusiveLock);
	TupleDesc	desc = RelationGetDescr(rel);
	const OrdersDerived *was_derived = orders_derived;
	bool		was_writing = stats_writing;
	OrdersDirect dw;

	for (int c = 0; c < 4; c++)
	{
		int			attnum = orders_fnumber(desc, columns[c]);

		if (attnum <= 0 || TupleDescAttr(desc, attnum - 1)->atttypid != types[c] ||
			!TupleDescAttr(desc, attnum - 1)->attnotnull)
		{
			table_close(rel, NoLock);
			return false;
		}
	}
	if (!orders_direct_updatable(rel, NULL))
	{
		table_close(rel, NoLock);
		return false;
	}
	orders_direct_begin(&dw, rel, columns);
	orders_direct_keys_as_caller(&dw);
	/* a derived write until its AFTER row triggers (the log) have fired */
	orders_derived = derived;
	stats_writing = true;
	PG_TRY();
	{
		if (orders_direct_lock_by_id(&dw, UUIDPGetDatum(&delta->customer)))
		{
			Datum		values[4];
			bool		isnull[4] = {false, false, false, false};
			bool		n;
			int32		returned = 0;

			/*
			 * In the UPDATE's order of evaluation (by column: total_orders,
			 * total_spent, return_rate, returned_orders), so that of two
			 * overflows the same one is reported.  The columns are NOT
			 * NULL (else the UPDATE writes them).
			 */
			values[0] = int_plus(slot_getattr(dw.row, dw.attnums[0], &n), delta->orders);
			values[2] = typed(DirectFunctionCall2(numeric_add, slot_getattr(dw.row, dw.attnums[2], &n), delta->spent),
							  TupleDescAttr(desc, dw.attnums[2] - 1));
			/* CASE WHEN total > 0 THEN round(returned * 100 / total, 2) ELSE 0 */
			if (DatumGetInt32(values[0]) > 0)
			{
				returned = DatumGetInt32(int_plus(slot_getattr(dw.row, dw.attnums[1], &n), delta->returned));
				values[3] = DirectFunctionCall2(numeric_round,
												DirectFunctionCall2(numeric_div,
																	DirectFunctionCall2(numeric_mul,
																						DirectFunctionCall1(int4_numeric, Int32GetDatum(returned)),
																						DirectFunctionCall1(int4_numeric, Int32GetDatum(100))),
																	DirectFunctionCall1(int4_numeric, values[0])),
												Int32GetDatum(2));
			}
			else
				values[3] = DirectFunctionCall1(int4_numeric, Int32GetDatum(0));
			values[3] = typed(values[3], TupleDescAttr(desc, dw.attnums[3] - 1));
			values[1] = DatumGetInt32(values[0]) > 0 ? Int32GetDatum(returned)
				: int_plus(slot_getattr(dw.row, dw.attnums[1], &n), delta->returned);
			if (!orders_direct_update(&dw, values, isnull))
				ereport(ERROR,
						(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
						 errmsg("the statistics of customer %s were not written: a trigger on orders.customers skipped them",
								DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&delta->customer))))));
		}
		orders_direct_end(&dw);
	}
	PG_FINALLY();
	{
		orders_derived = was_derived;
		stats_writing = was_writing;
	}
	PG_END_TRY();
	table_close(rel, NoLock);
	return true;
}

/*
 * add_to_customers — each customer += its delta (sorted by customer id), as
 * the owner.  One customer: written directly (add_direct), else one
 * UPDATE.  Several (a bulk load, a statement over many customers' orders):
 * their rows locked in id order by one statement, then one UPDATE for all
 * (as add_to_subtotals, order_money.c).
 * Either way the rows are locked in id order: no deadlock between
 * concurrent statements.
 */
static void
add_to_customers(Oid customers_rel, CustomerDelta **moved, long n)
{
	static Oid	one_types[4] = {UUIDOID, INT4OID, INT4OID, NUMERICOID};
	static Oid	many_types[4] = {UUIDARRAYOID, INT4ARRAYOID, INT4ARRAYOID, NUMERICARRAYOID};
	static const char *const stats_columns[] = {"total_orders", "returned_orders", "total_spent", "return_rate", NULL};
	OrdersDerived derived = {customers_rel, stats_columns};
	SPIPlanPtr	plan;
	Datum		args[4];

#define STATS_SET \
	"   SET total_orders = c.total_orders OPERATOR(pg_catalog.+) d.orders," \
	"       returned_orders = c.returned_orders OPERATOR(pg_catalog.+) d.returned," \
	"       total_spent = c.total_spent OPERATOR(pg_catalog.+) d.spent," \
	"       return_rate = CASE WHEN c.total_orders OPERATOR(pg_catalog.+) d.orders OPERATOR(pg_catalog.>) 0" \
	"         THEN pg_catalog.round((c.returned_orders OPERATOR(pg_catalog.+) d.returned)::pg_catalog.numeric" \
	"              OPERATOR(pg_catalog.*) 100 OPERATOR(pg_catalog./) (c.total_orders OPERATOR(pg_catalog.+) d.orders), 2)" \
	"         ELSE 0 END"
	if (n == 1 && add_direct(customers_rel, moved[0], &derived))
		return;
	if (n == 1)
	{
		plan = orders_get_plan(PLAN_STATS_ADD, customers_rel,
							   "UPDATE orders.customers c" STATS_SET
							   "  FROM (SELECT $1 AS id, $2 AS orders, $3 AS returned, $4 AS spent) d"
							   " WHERE c.id OPERATOR(pg_catalog.=) d.id",
							   4, one_types);
		args[0] = UUIDPGetDatum(&moved[0]->customer);
		args[1] = Int32GetDatum(moved[0]->orders);
		args[2] = Int32GetDatum(moved[0]->returned);
		args[3] = moved[0]->spent;
	}
	else
	{
		Datum	   *v[4];

		for (int k = 0; k < 4; k++)
			v[k] = palloc(sizeof(Datum) * n);
		for (long i = 0; i < n; i++)
		{
			v[0][i] = UUIDPGetDatum(&moved[i]->customer);
			v[1][i] = Int32GetDatum(moved[i]->orders);
			v[2][i] = Int32GetDatum(moved[i]->returned);
			v[3][i] = moved[i]->spent;
		}
		args[0] = PointerGetDatum(construct_array(v[0], n, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
		args[1] = PointerGetDatum(construct_array(v[1], n, INT4OID, sizeof(int32), true, TYPALIGN_INT));
		args[2] = PointerGetDatum(construct_array(v[2], n, INT4OID, sizeof(int32), true, TYPALIGN_INT));
		args[3] = PointerGetDatum(construct_array(v[3], n, NUMERICOID, -1, false, TYPALIGN_INT));
		plan = orders_get_keyed_plan(PLAN_STATS_LOCK_MANY, customers_rel,
							         "SELECT FROM orders.customers WHERE id OPERATOR(pg_catalog.=) ANY ($1)"
							         " ORDER BY id FOR NO KEY UPDATE",
							         1, many_types);
		orders_execute(plan, args, NULL, false, 0, SPI_OK_SELECT);
		plan = orders_get_keyed_plan(PLAN_STATS_ADD_MANY, customers_rel,
							         "UPDATE orders.customers c" STATS_SET
							         "  FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"
							         "                  pg_catalog.unnest($3), pg_catalog.unnest($4)) AS d (id, orders, returned, spent)"
							         " WHERE c.id OPERATOR(pg_catalog.=) d.id",
							         4, many_types);
	}
#undef STATS_SET
	orders_execute_writing(plan, args, NULL, SPI_OK_UPDATE, &stats_writing, &derived);
}

/*
 * orders.customer_stats() — AFTER INSERT, UPDATE or DELETE ... REFERENCING
 * ... FOR EACH STATEMENT on orders.orders.  Guarantees that, when the
 * statement ends, each customer's statistics changed by exactly what its
 * orders contribute now minus what they contributed before (both customers
 * when an order moved), in the same transaction.  Statements that move no
 * statistic (most status changes: open to open) do no UPDATE at all.
 */
Datum
orders_customer_stats(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = orders_trigger_data(fcinfo, "customer_stats",
												ORDERS_TRIG_AFTER | ORDERS_TRIG_INSERT |
												ORDERS_TRIG_UPDATE | ORDERS_TRIG_DELETE);
	TupleDesc	desc = RelationGetDescr(trigdata->tg_relation);
	OrderColumns col;
	OrderFold	fold;
	CustomerDelta **moved;
	long		n;
	Oid			customers_rel;
	OrdersSavedUser saved;

	orders_require_transition_tables(trigdata, "customer_stats");
	col.customer_id = orders_typed_column(trigdata->tg_relation, "customer_id", UUIDOID);
	col.lifecycle = orders_fnumber(desc, "lifecycle");
	col.status = orders_fnumber(desc, "status");
	col.payment_status = orders_fnumber(desc, "payment_status");
	col.total_amount = orders_fnumber(desc, "total_amount");

	fold.deltas = orders_delta_hash("orders customer deltas", sizeof(CustomerDelta));
	fold.col = &col;
	fold.zero = numeric_zero();
	if (trigdata->tg_oldtable)
		orders_for_each_row(trigdata->tg_oldtable, desc, -1, fold_order, &fold);
	if (trigdata->tg_newtable)
		orders_for_each_row(trigdata->tg_newtable, desc, +1, fold_order, &fold);
	moved = (CustomerDelta **) orders_sorted_deltas(fold.deltas, customer_delta_moves, &n);
	if (n == 0)
		return PointerGetDatum(NULL);

	customers_rel = orders_relid("customers");
	orders_spi_connect_as_owner(customers_rel, &saved);
	add_to_customers(customers_rel, moved, n);
	orders_spi_finish_as(&saved);
	return PointerGetDatum(NULL);
}

/*
 * orders.customer_stats_guard() — BEFORE INSERT OR UPDATE OF total_orders,
 * total_spent, return_rate, returned_orders ON orders.customers FOR EACH ROW.
 * A new customer starts at 0 (also on pg_restore: the restored orders count
 * themselves back); afterwards only customer_stats (or the table owner,
 * e.g. orders.recount_customer_stats) changes the statistics.
 */
Datum
orders_customer_stats_guard(PG_FUNCTION_ARGS)
{
	static const char *const cols[] = {"total_orders", "returned_orders", "total_spent", "return_rate"};
	TriggerData *trigdata = orders_trigger_data(fcinfo, "customer_stats_guard",
												ORDERS_TRIG_BEFORE | ORDERS_TRIG_ROW |
												ORDERS_TRIG_INSERT | ORDERS_TRIG_UPDATE);
	Relation	rel = trigdata->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		int			attnums[4];
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		for (int i = 0; i < 4; i++)
			attnums[i] = orders_fnumber(desc, cols[i]);
		values[0] = Int32GetDatum(0);
		values[1] = Int32GetDatum(0);
		values[2] = numeric_zero();
		values[3] = numeric_zero();
		return orders_trigger_result(trigdata,
									 heap_modify_tuple_by_cols(trigdata->tg_trigtuple, desc, 4,
															   attnums, values, nulls));
	}
	if (stats_writing || has_privs_of_role(GetUserId(), rel->rd_rel->relowner))
		return orders_trigger_result(trigdata, NULL);
	for (int i = 0; i < 4; i++)
	{
		int			att = orders_fnumber(desc, cols[i]);
		bool		n1;
		bool		n2;
		Datum		v1 = SPI_getbinval(trigdata->tg_trigtuple, desc, att, &n1);
		Datum		v2 = SPI_getbinval(trigdata->tg_newtuple, desc, att, &n2);
		Form_pg_attribute a = TupleDescAttr(desc, att - 1);

		if (n1 != n2 || (!n1 && !datumIsEqual(v1, v2, a->attbyval, a->attlen)))
			ereport(ERROR,
					(errcode(ERRCODE_ORDERS_COUNTER_MAINTAINED),
					 errmsg("customer \"%s\": %s is maintained by the extension",
							SPI_getvalue(trigdata->tg_newtuple, desc, orders_fnumber(desc, "full_name")),
							cols[i]),
					 errhint("orders.recount_customer_stats() repairs the statistics.")));
	}
	return orders_trigger_result(trigdata, NULL);
}
