/*
 * customer_stats.c — orders.customers statistics kept exact by deltas.
 *
 *   orders.customer_stats()        AFTER INSERT OR UPDATE OR DELETE FOR EACH
 *                                  ROW on orders.orders (the UPDATE trigger
 *                                  only WHEN a column that matters changed):
 *                                  adds the row's change to its customer(s).
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
 * A change moves the difference of the old and new contributions; never a
 * re-aggregation.  Writers of one customer queue on its row lock.
 */
#include "orders.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/numeric.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(orders_customer_stats);
PG_FUNCTION_INFO_V1(orders_customer_stats_guard);

/* true while this file writes customer statistics */
static bool stats_writing = false;

/* What one order row contributes to its customer. */
typedef struct Contribution
{
	bool		has_customer;
	Datum		customer;
	int32		orders;
	int32		returned;
	Datum		spent;			/* numeric */
} Contribution;

/* numeric_zero — 0.00, the scale of the money and rate columns. */
static Datum
numeric_zero(void)
{
	return DirectFunctionCall3(numeric_in, CStringGetDatum("0.00"),
							   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
}

/* contribution — what "row" of orders.orders adds to its customer. */
static void
contribution(HeapTuple row, TupleDesc desc, Contribution *c)
{
	bool		isnull;
	char	   *lname = SPI_getvalue(row, desc, SPI_fnumber(desc, "lifecycle"));
	char	   *status = SPI_getvalue(row, desc, SPI_fnumber(desc, "status"));
	char	   *payment = SPI_getvalue(row, desc, SPI_fnumber(desc, "payment_status"));
	const Lifecycle *lc = lname ? lifecycle_lookup(lname) : NULL;
	const LifecycleState *st = (lc && status) ? lifecycle_state(lc, status) : NULL;
	LifecycleCategory cat = st ? st->category : CATEGORY_OPEN;

	c->customer = SPI_getbinval(row, desc, SPI_fnumber(desc, "customer_id"), &isnull);
	c->has_customer = !isnull;
	c->orders = cat != CATEGORY_CANCELLED ? 1 : 0;
	c->returned = cat == CATEGORY_RETURNED ? 1 : 0;
	c->spent = numeric_zero();
	if (cat == CATEGORY_FULFILLED && payment && strcmp(payment, "collected") == 0)
	{
		Datum		amount = SPI_getbinval(row, desc, SPI_fnumber(desc, "total_amount"), &isnull);

		if (!isnull)
			c->spent = amount;
	}
}

/* add_to_customer — customer += sign * contribution, as the owner. */
static void
add_to_customer(Oid customers_rel, Datum customer, int32 orders, int32 returned, Datum spent)
{
	static Oid	argtypes[4] = {UUIDOID, INT4OID, INT4OID, NUMERICOID};
	SPIPlanPtr	plan;
	Datum		args[4];

	plan = orders_get_plan(PLAN_STATS_ADD, customers_rel,
						   "UPDATE orders.customers"
						   "   SET total_orders = total_orders OPERATOR(pg_catalog.+) $2,"
						   "       returned_orders = returned_orders OPERATOR(pg_catalog.+) $3,"
						   "       total_spent = total_spent OPERATOR(pg_catalog.+) $4,"
						   "       return_rate = CASE WHEN total_orders OPERATOR(pg_catalog.+) $2 OPERATOR(pg_catalog.>) 0"
						   "         THEN pg_catalog.round((returned_orders OPERATOR(pg_catalog.+) $3)::pg_catalog.numeric"
						   "              OPERATOR(pg_catalog.*) 100 OPERATOR(pg_catalog./) (total_orders OPERATOR(pg_catalog.+) $2), 2)"
						   "         ELSE 0 END"
						   " WHERE id OPERATOR(pg_catalog.=) $1",
						   4, argtypes);
	args[0] = customer;
	args[1] = Int32GetDatum(orders);
	args[2] = Int32GetDatum(returned);
	args[3] = spent;
	stats_writing = true;
	PG_TRY();
	{
		orders_execute(plan, args, NULL, false, 0, SPI_OK_UPDATE);
	}
	PG_FINALLY();
	{
		stats_writing = false;
	}
	PG_END_TRY();
}

/*
 * orders.customer_stats() — AFTER INSERT OR UPDATE OR DELETE ... FOR EACH
 * ROW on orders.orders.  Guarantees that the statistics of the customers
 * involved change by exactly the difference of the row's old and new
 * contribution (both customers when customer_id changes), in the same
 * transaction.  Cost: one UPDATE per customer involved, whatever the number
 * of their orders.
 */
Datum
orders_customer_stats(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = orders_trigger_data(fcinfo, "customer_stats",
												ORDERS_TRIG_AFTER | ORDERS_TRIG_ROW |
												ORDERS_TRIG_INSERT | ORDERS_TRIG_UPDATE |
												ORDERS_TRIG_DELETE);
	TupleDesc	desc = RelationGetDescr(trigdata->tg_relation);
	TriggerEvent ev = trigdata->tg_event;
	Contribution before = {false, 0, 0, 0, 0};
	Contribution after = {false, 0, 0, 0, 0};
	Oid			customers_rel;
	OrdersSavedUser saved;

	if (TRIGGER_FIRED_BY_UPDATE(ev) || TRIGGER_FIRED_BY_DELETE(ev))
		contribution(trigdata->tg_trigtuple, desc, &before);
	if (TRIGGER_FIRED_BY_UPDATE(ev))
		contribution(trigdata->tg_newtuple, desc, &after);
	else if (TRIGGER_FIRED_BY_INSERT(ev))
		contribution(trigdata->tg_trigtuple, desc, &after);

	customers_rel = orders_relid("customers");
	if (before.has_customer && after.has_customer &&
		DatumGetBool(DirectFunctionCall2(uuid_eq, before.customer, after.customer)))
	{
		Datum		spent = DirectFunctionCall2(numeric_sub, after.spent, before.spent);

		/* most status changes move nothing (open to open): no UPDATE at all */
		if (after.orders == before.orders && after.returned == before.returned &&
			DatumGetBool(DirectFunctionCall2(numeric_eq, spent, numeric_zero())))
			return PointerGetDatum(NULL);
		orders_spi_connect_as_owner(customers_rel, &saved);
		add_to_customer(customers_rel, after.customer, after.orders - before.orders,
						after.returned - before.returned, spent);
	}
	else
	{
		/* two customers: in id order, so that concurrent moves cannot deadlock */
		Contribution *first = &before;
		Contribution *second = &after;
		int			first_sign = -1;

		if (before.has_customer && after.has_customer &&
			DatumGetInt32(DirectFunctionCall2(uuid_cmp, before.customer, after.customer)) > 0)
		{
			first = &after;
			second = &before;
			first_sign = 1;
		}
		orders_spi_connect_as_owner(customers_rel, &saved);
		if (first->has_customer)
			add_to_customer(customers_rel, first->customer, first_sign * first->orders,
							first_sign * first->returned,
							first_sign > 0 ? first->spent
							: DirectFunctionCall1(numeric_uminus, first->spent));
		if (second->has_customer)
			add_to_customer(customers_rel, second->customer, -first_sign * second->orders,
							-first_sign * second->returned,
							first_sign > 0 ? DirectFunctionCall1(numeric_uminus, second->spent)
							: second->spent);
	}
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
			attnums[i] = SPI_fnumber(desc, cols[i]);
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
		int			att = SPI_fnumber(desc, cols[i]);
		bool		n1;
		bool		n2;
		Datum		v1 = SPI_getbinval(trigdata->tg_trigtuple, desc, att, &n1);
		Datum		v2 = SPI_getbinval(trigdata->tg_newtuple, desc, att, &n2);
		Form_pg_attribute a = TupleDescAttr(desc, att - 1);

		if (n1 != n2 || (!n1 && !datumIsEqual(v1, v2, a->attbyval, a->attlen)))
			ereport(ERROR,
					(errcode(ERRCODE_ORDERS_COUNTER_MAINTAINED),
					 errmsg("customer \"%s\": %s is maintained by the extension",
							SPI_getvalue(trigdata->tg_newtuple, desc, SPI_fnumber(desc, "full_name")),
							cols[i]),
					 errhint("orders.recount_customer_stats() repairs the statistics.")));
	}
	return orders_trigger_result(trigdata, NULL);
}
