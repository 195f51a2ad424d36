/*
 * order_money.c — an order's amounts tied together, exactly.
 *
 *   subtotal      = the sum of its items' totals (quantity × unit_price),
 *                   kept by orders.subtotal_on_items() like the other
 *                   counters: per-statement deltas written as the owner,
 *                   the rows locked in id order; nobody else writes it
 *                   (OR014).
 *                   Items an approved site's row trigger makes hold their
 *                   deltas until the sites' statement ends (0.17.0: the
 *                   order row is then locked after the group's; below).

 *   total_amount  = subtotal + delivery_fee + adjustment, kept by
 *                   status_guard (orders_tie_money): a statement that writes
 *                   total_amount sets adjustment to the difference (a
 *                   discount, a tax, a shop's own total); one that writes
 *                   the parts, or items that move the subtotal, move the
 *                   total.
 *
 * So the total an order earns (revenue, customer statistics) always follows
 * its items.  A new order starts with subtotal 0 (its items come after it);
 * COPY by the owner (pg_restore) keeps both as dumped and its items move
 * nothing, as for stock.
 */
#include "orders.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(orders_subtotal_on_items);

/* true while this file writes orders.subtotal */
static bool subtotal_writing = false;

/* typmod of numeric(12,2), the base of the amount domains */
#define AMOUNT_TYPMOD (((12 << 16) | 2) + VARHDRSZ)

/* Per-order sum of one statement's item changes. */
typedef struct SubtotalDelta
{
	pg_uuid_t	order_id;		/* hash key */
	Datum		delta;			/* numeric */
} SubtotalDelta;

typedef struct SubtotalFold
{
	HTAB	   *deltas;
	int			order_id;
	int			total;
} SubtotalFold;

static Datum
numeric_zero(void)
{
	return DirectFunctionCall1(int4_numeric, Int32GetDatum(0));
}

static bool
numeric_equal(Datum a, Datum b)
{
	return DatumGetBool(DirectFunctionCall2(numeric_eq, a, b));
}

/* fold_item_total — an item row's total, signed, into its order's delta. */
static void
fold_item_total(TupleTableSlot *slot, int sign, void *arg)
{
	SubtotalFold *f = (SubtotalFold *) arg;
	bool		isnull;
	Datum		order_id = slot_getattr(slot, f->order_id, &isnull);
	Datum		total;
	SubtotalDelta *d;
	bool		found;

	if (isnull)
		return;
	total = slot_getattr(slot, f->total, &isnull);
	if (isnull)
		return;
	d = (SubtotalDelta *) orders_delta_entry(&f->deltas, "orders subtotal deltas", sizeof(SubtotalDelta),
											 DatumGetUUIDP(order_id), true, &found);
	if (!found)
		d->delta = numeric_zero();
	d->delta = DirectFunctionCall2(sign > 0 ? numeric_add : numeric_sub, d->delta, total);
}

/*
 * Subtotal deltas held for a statement on orders.order_site_selections
 * whose row trigger made items (site_items.c): orders.site_counts applies
 * them at the end of that statement, after the group's counters, so that a
 * review locks the order row last (doc/review.md, "Concurrency").  Held per
 * (order, subtransaction) in TopTransactionContext: a subtransaction that
 * commits hands its deltas to its parent, one that aborts drops them, and
 * a transaction cannot commit while any is still held (they would be lost).
 */
bool		orders_hold_subtotals = false;

static bool subtotal_moves(const void *entry);

typedef struct HeldKey
{
	pg_uuid_t	order_id;
	SubTransactionId subxid;
} HeldKey;

typedef struct HeldDelta
{
	HeldKey		key;
	Datum		delta;			/* numeric, in TopTransactionContext */
} HeldDelta;

static HTAB *held = NULL;		/* NULL outside a transaction that holds */
static bool held_callbacks = false;

/* hold_one — add "delta" to what is held for (order, subxid). */
static void
hold_one(const pg_uuid_t *order_id, SubTransactionId subxid, Datum delta)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	HeldKey		key;
	HeldDelta  *h;
	bool		found;

	memset(&key, 0, sizeof(key));
	key.order_id = *order_id;
	key.subxid = subxid;
	h = (HeldDelta *) hash_search(held, &key, HASH_ENTER, &found);
	h->delta = found ? DirectFunctionCall2(numeric_add, h->delta, delta) : datumCopy(delta, false, -1);
	MemoryContextSwitchTo(old);
}

/*
 * held_subxact_end — a subtransaction ends: on commit its held deltas become
 * its parent's, on abort they go.
 */
static void
held_subxact_end(SubXactEvent event, SubTransactionId mySubid,
				 SubTransactionId parentSubid, void *arg)
{
	HASH_SEQ_STATUS seq;
	HeldDelta  *h;
	List	   *moved = NIL;
	ListCell   *lc;

	(void) arg;
	if (held == NULL || (event != SUBXACT_EVENT_COMMIT_SUB && event != SUBXACT_EVENT_ABORT_SUB))
		return;
	hash_seq_init(&seq, held);
	while ((h = (HeldDelta *) hash_seq_search(&seq)) != NULL)
	{
		if (h->key.subxid != mySubid)
			continue;
		if (event == SUBXACT_EVENT_COMMIT_SUB)
		{
			HeldDelta  *copy = palloc(sizeof(HeldDelta));

			*copy = *h;
			moved = lappend(moved, copy);
		}
		(void) hash_search(held, &h->key, HASH_REMOVE, NULL);
	}
	foreach(lc, moved)
	{
		HeldDelta  *m = (HeldDelta *) lfirst(lc);

		hold_one(&m->key.order_id, parentSubid, m->delta);
	}
}

/*
 * held_xact_end — before commit, nothing may still be held (a delta held and
 * never written would leave a subtotal wrong): refuse to commit; at the end
 * the hash goes with TopTransactionContext.
 */
static void
held_xact_end(XactEvent event, void *arg)
{
	(void) arg;
	if (held == NULL)
		return;
	if ((event == XACT_EVENT_PRE_COMMIT || event == XACT_EVENT_PRE_PREPARE) &&
		hash_get_num_entries(held) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("orders: order subtotals were held for orders.site_counts, which did not write them"),
				 errhint("Items were made by orders.site_items in a statement whose orders.site_counts did not run; "
						 "orders.recount_subtotals() repairs subtotals.")));
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT || event == XACT_EVENT_PREPARE ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
		held = NULL;
}

/* start_holding — the table of held deltas, made for the transaction. */
static void
start_holding(void)
{
	if (!held_callbacks)
	{
		RegisterXactCallback(held_xact_end, NULL);
		RegisterSubXactCallback(held_subxact_end, NULL);
		held_callbacks = true;
	}
	if (held == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(HeldKey);
		ctl.entrysize = sizeof(HeldDelta);
		ctl.hcxt = TopTransactionContext;
		held = hash_create("orders held subtotal deltas", 16, &ctl,
						   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
}

/* hold_deltas — keep the statement's deltas for orders_apply_held_subtotals. */
static void
hold_deltas(SubtotalDelta **moved, long n)
{
	start_holding();
	for (long i = 0; i < n; i++)
		hold_one(&moved[i]->order_id, GetCurrentSubTransactionId(), moved[i]->delta);
}

/*
 * orders_hold_subtotal — hold "delta" (numeric) for order "order_id" as
 * subtotal_on_items holds the total of an item an INSERT made while
 * orders_hold_subtotals: for an item written without a statement
 * (site_items.c), whose statement triggers do not fire.
 */
void
orders_hold_subtotal(const pg_uuid_t *order_id, Datum delta)
{
	if (numeric_equal(delta, numeric_zero()))
		return;					/* subtotal_moves: nothing to hold */
	start_holding();
	hold_one(order_id, GetCurrentSubTransactionId(), delta);
}

/*
 * add_direct — the orders' subtotal deltas ("moved", sorted by order id)
 * written without an SQL statement (direct_write.c): every order's row
 * locked by primary key, in id order, then each updated with what the
 * UPDATE's row triggers (status_guard ties the total), constraints and
 * indexes do, as a derived write — but not the orders' statement
 * triggers, which orders that have earned nothing (orders_row_earns) leave
 * with nothing to do — and the AFTER row triggers fired once all are
 * written, as at the end of a statement.  Returns false, having written
 * nothing, when the kept UPDATE must write them all: one of them has
 * earned its total (revenue and customer statistics follow it; the orders
 * locked before it stay locked), the table is not as installed
 * (orders_direct_updatable), or a workflow waits for totals.  Each
 * order's work in memory of its own, reset before the next (a bulk load
 * moves 200k orders).  Runs as the owner, connected to SPI.
 */
static bool
add_direct(Oid orders_rel, SubtotalDelta **moved, long n, const OrdersDerived *derived)
{
	static const char *const subtotal_column[] = {"subtotal", NULL};
	Relation	rel = table_open(orders_rel, RowExclusiveLock);
	TupleDesc	desc = RelationGetDescr(rel);
	int			lifecycle = orders_fnumber(desc, "lifecycle");
	int			status = orders_fnumber(desc, "status");
	int			payment = orders_fnumber(desc, "payment_status");
	const OrdersDerived *was_derived = orders_derived;
	bool		was_writing = subtotal_writing;
	MemoryContext per_order;
	MemoryContext oldcxt;
	ItemPointerData *tids;
	OrdersDirect dw;
	bool		by_update = false;

	/* a total a workflow waits for goes through the UPDATE and its triggers */
	if (orders_workflows_watch_totals() || lifecycle <= 0 || status <= 0 || payment <= 0 ||
		TupleDescAttr(desc, lifecycle - 1)->atttypid != TEXTOID ||
		TupleDescAttr(desc, status - 1)->atttypid != TEXTOID ||
		TupleDescAttr(desc, payment - 1)->atttypid != TEXTOID ||
		orders_fnumber(desc, "subtotal") <= 0 ||
		!orders_direct_updatable(rel, orders_derived_unaffected))
	{
		table_close(rel, NoLock);
		return false;
	}
	tids = palloc(sizeof(ItemPointerData) * n);
	per_order = AllocSetContextCreate(CurrentMemoryContext, "orders subtotal per order", ALLOCSET_DEFAULT_SIZES);
	orders_direct_begin(&dw, rel, subtotal_column);
	orders_direct_keys_as_caller(&dw);	/* add_to_subtotals switched to the owner */
	/* a derived write until its AFTER row triggers (the log) have fired */
	orders_derived = derived;
	subtotal_writing = true;
	PG_TRY();
	{
		/* first every order locked: one that has earned its total (or a NULL) sends them all to the UPDATE */
		for (long i = 0; i < n && !by_update; i++)
		{
			bool		n1,
						n2,
						n3;
			Datum		l,
						st;

			MemoryContextReset(per_order);
			oldcxt = MemoryContextSwitchTo(per_order);
			ItemPointerSetInvalid(&tids[i]);	/* no such order: the UPDATE would change nothing */
			if (orders_direct_lock_by_id(&dw, UUIDPGetDatum(&moved[i]->order_id)))
			{
				tids[i] = dw.row->tts_tid;
				l = slot_getattr(dw.row, lifecycle, &n1);
				st = slot_getattr(dw.row, status, &n2);
				(void) slot_getattr(dw.row, dw.attnums[0], &n3);
				/* a NULL the UPDATE reports */
				by_update = n1 || n2 || n3 ||
					orders_row_earns(dw.row, lifecycle_find_state(TextDatumGetCString(l),
																  TextDatumGetCString(st)), payment);
			}
			MemoryContextSwitchTo(oldcxt);
		}
		/* then each written, read again where it was locked (nobody else changes it now) */
		for (long i = 0; i < n && !by_update; i++)
		{
			Datum		value;
			bool		value_null = false;
			bool		isnull;

			if (!ItemPointerIsValid(&tids[i]))
				continue;
			MemoryContextReset(per_order);
			oldcxt = MemoryContextSwitchTo(per_order);
			if (!orders_direct_refetch(&dw, &tids[i]))
				elog(ERROR, "orders: the locked row of order %s is gone",
					 DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&moved[i]->order_id))));
			value = DirectFunctionCall2(numeric_add, slot_getattr(dw.row, dw.attnums[0], &isnull),
										moved[i]->delta);
			if (!orders_direct_update(&dw, &value, &value_null))
				ereport(ERROR,
						(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
						 errmsg("the subtotal of order %s was not written: a trigger on orders.orders skipped it",
								DatumGetCString(DirectFunctionCall1(uuid_out,
																	UUIDPGetDatum(&moved[i]->order_id))))));
			MemoryContextSwitchTo(oldcxt);
		}
		orders_direct_end(&dw);
	}
	PG_FINALLY();
	{
		orders_derived = was_derived;
		subtotal_writing = was_writing;
	}
	PG_END_TRY();
	MemoryContextDelete(per_order);
	pfree(tids);
	table_close(rel, NoLock);
	return !by_update;
}

/*
 * add_to_subtotals — the orders' subtotals moved by their deltas (sorted by
 * order id), a derived write of the subtotal and the total status_guard
 * moves with it, as the owner.  Written directly (add_direct), one order
 * or a bulk load's 200k alike — the UPDATE kept for many orders captured
 * every order it moved in transition tables for the orders' statement
 * triggers and joined the orders again.  Else one UPDATE: for several
 * orders, their rows locked in id order by one statement first (an UPDATE
 * per order re-ran the executor's start-up and the orders' statement
 * triggers per order, 35 % of a COPY of items).  Either way the rows are
 * locked in id order, so concurrent statements cannot deadlock on them.
 */
static void
add_to_subtotals(SubtotalDelta **moved, long n)
{
	static Oid	one_types[2] = {UUIDOID, NUMERICOID};
	static Oid	many_types[2] = {UUIDARRAYOID, NUMERICARRAYOID};
	static const char *const money_columns[] = {"subtotal", "total_amount", NULL};
	Oid			orders_rel = orders_relid("orders");
	OrdersDerived derived = {orders_rel, money_columns};
	OrdersSavedUser saved;
	SPIPlanPtr	plan;
	Datum		args[2];

	orders_spi_connect_as_owner(orders_rel, &saved);
	if (add_direct(orders_rel, moved, n, &derived))
	{
		orders_spi_finish_as(&saved);
		return;
	}
	if (n == 1)
	{
		plan = orders_get_plan(PLAN_SUBTOTAL_ADD, orders_rel,
							   "UPDATE orders.orders SET subtotal = subtotal OPERATOR(pg_catalog.+) $2"
							   " WHERE id OPERATOR(pg_catalog.=) $1",
							   2, one_types);
		args[0] = UUIDPGetDatum(&moved[0]->order_id);
		args[1] = moved[0]->delta;
	}
	else
	{
		Datum	   *ids = palloc(sizeof(Datum) * n);
		Datum	   *deltas = palloc(sizeof(Datum) * n);

		for (long i = 0; i < n; i++)
		{
			ids[i] = UUIDPGetDatum(&moved[i]->order_id);
			deltas[i] = moved[i]->delta;
		}
		args[0] = PointerGetDatum(construct_array(ids, n, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
		args[1] = PointerGetDatum(construct_array(deltas, n, NUMERICOID, -1, false, TYPALIGN_INT));
		plan = orders_get_keyed_plan(PLAN_SUBTOTAL_LOCK_MANY, orders_rel,
							         "SELECT FROM orders.orders WHERE id OPERATOR(pg_catalog.=) ANY ($1)"
							         " ORDER BY id FOR NO KEY UPDATE",
							         1, many_types);
		orders_execute(plan, args, NULL, false, 0, SPI_OK_SELECT);
		plan = orders_get_keyed_plan(PLAN_SUBTOTAL_ADD_MANY, orders_rel,
							         "UPDATE orders.orders o SET subtotal = o.subtotal OPERATOR(pg_catalog.+) d.delta"
							         "  FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) AS d (id, delta)"
							         " WHERE o.id OPERATOR(pg_catalog.=) d.id",
							         2, many_types);
	}
	orders_execute_writing(plan, args, NULL, SPI_OK_UPDATE, &subtotal_writing, &derived);
	orders_spi_finish_as(&saved);
}

/* agent_final — refuse_agent_on_final's judge: open and not collected. */
static void
agent_final(const OrdersLockedOrder *o, void *arg)
{
	const LifecycleState *st = o->lifecycle != NULL && o->status != NULL ?
		lifecycle_find_state(o->lifecycle, o->status) : NULL;

	(void) arg;

	if ((o->payment != NULL && strcmp(o->payment, "collected") == 0) || (st != NULL && st->category != CATEGORY_OPEN))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("the items of order \"%s\" are final for its delivery agent (status %s, payment %s)",
						o->number, o->status, o->payment ? o->payment : "none"),
				 errhint("Staff other than delivery agents correct the items of a delivered or collected order.")));
}

/*
 * refuse_agent_on_final — (0.28.0) guarantees that a delivery agent's
 * statement (an API request) changes no item of an order that is no
 * longer open (delivered, returned, cancelled) or whose payment is
 * collected: an agent deleted or re-added a collected order's items and
 * the automatic refund followed in its name; (0.39.0) any item, not only
 * one that moves the subtotal — an agent moved stock between the products
 * of a delivered, collected order by quantities that kept the subtotal
 * (a 0-priced gift up, a paid item down).  Judged on the orders as locked
 * (orders_judge_orders): a delivery and collection that committed while
 * the statement ran are seen, whoever the order is assigned to now.
 * Other callers pay one identity test (cached per command).
 */
static void
refuse_agent_on_final(HTAB *deltas)
{
	const char *role;
	void	  **touched;
	long		n;

	if (!orders_api_request_now() || (role = orders_caller_staff_role()) == NULL || strcmp(role, "delivery_agent") != 0)
		return;
	touched = orders_sorted_deltas(deltas, NULL, &n);
	if (n > 0)
		orders_judge_orders((void *const *) touched, n, agent_final, NULL, true);
}

/*
 * customer_cart — refuse_customer_off_cart's judge: still the caller's
 * ("arg", OrdersCallerCustomers), in its first status, (0.43.0) not
 * priced by staff (an adjustment).
 */
static void
customer_cart(const OrdersLockedOrder *o, void *arg)
{
	const Lifecycle *lc = o->lifecycle != NULL ? lifecycle_lookup(o->lifecycle) : NULL;

	if (!orders_customer_owns(o, (const OrdersCallerCustomers *) arg))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("order \"%s\" went to another customer while its items were written", o->number),
				 errhint("Read your orders again.")));
	if (lc == NULL || o->status == NULL || strcmp(o->status, lc->initial_status) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("order \"%s\" was taken on while its items were written: they are staff's now (status %s)",
						o->number, o->status ? o->status : "none"),
				 errhint("Read the order again; a customer changes the items of its order only before the shop takes it on.")));
	if (o->adjusted)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("order \"%s\" was priced by staff while its items were written: they are staff's now", o->number),
				 errhint("Read the order again; once staff set an adjustment, they change its items.")));
}

/*
 * refuse_customer_off_cart — (0.32.0) guarantees that a customer's item
 * statement (an API request under the items' row level security, the
 * caller without orders.edit) writes only items of orders that are still
 * its own and in their lifecycle's first status — its cart — judged on the
 * orders as locked
 * (orders_judge_orders), not as the statement's snapshot saw them: the
 * policies' check (customer_cart_item) passed an item sent while staff
 * took the order on, and the item landed in the taken order.  Others pay
 * one test (cached per command); statements run as the items' owner (the
 * review's items) are not the customer's.
 */
static void
refuse_customer_off_cart(Relation items, HTAB *deltas)
{
	SubtotalDelta **touched;
	long		n;
	OrdersCallerCustomers mine;

	if (!orders_customer_statement(items))
		return;
	/* every order touched, also one whose subtotal does not move (an item without a price) */
	touched = (SubtotalDelta **) orders_sorted_deltas(deltas, NULL, &n);
	if (n == 0)
		return;
	orders_callers_customers(&mine);
	orders_judge_orders((void *const *) touched, n, customer_cart, &mine, true);
}

/*
 * orders_apply_held_subtotals — for orders.site_counts: apply the deltas
 * held in this subtransaction (by order id, one UPDATE each) and forget
 * them.  Guarantees that the items the statement made move their orders'
 * subtotals before the statement ends.
 */
void
orders_apply_held_subtotals(void)
{
	HASH_SEQ_STATUS seq;
	HeldDelta  *h;
	HTAB	   *now = NULL;
	SubtotalDelta **moved;
	long		n;

	if (held == NULL)
		return;
	hash_seq_init(&seq, held);
	while ((h = (HeldDelta *) hash_seq_search(&seq)) != NULL)
	{
		SubtotalDelta *d;
		bool		found;

		if (h->key.subxid != GetCurrentSubTransactionId())
			continue;
		d = (SubtotalDelta *) orders_delta_entry(&now, "orders subtotal deltas", sizeof(SubtotalDelta),
												 &h->key.order_id, true, &found);
		d->delta = h->delta;
		(void) hash_search(held, &h->key, HASH_REMOVE, NULL);
	}
	moved = (SubtotalDelta **) orders_sorted_deltas(now, subtotal_moves, &n);
	if (n > 0)
		add_to_subtotals(moved, n);
}

/* subtotal_moves — keep the orders whose subtotal changes. */
static bool
subtotal_moves(const void *entry)
{
	return !numeric_equal(((const SubtotalDelta *) entry)->delta, numeric_zero());
}

/*
 * orders.subtotal_on_items() — AFTER INSERT, UPDATE or DELETE ...
 * REFERENCING ... FOR EACH STATEMENT on orders.order_items.  Guarantees that
 * each order's subtotal moved by exactly what its items total now minus
 * what they totalled before, in the same transaction, or that the
 * statement failed.  Concurrent item writers of one order queue on the
 * order's row lock that the UPDATE takes, and each adds its own delta.  A
 * delivery agent's statement changes no item of a delivered or collected
 * order (refuse_agent_on_final); a customer's writes no item of an order
 * taken on meanwhile (refuse_customer_off_cart).
 * Items made by a site's row trigger: their deltas are held and applied at
 * the end of the sites' statement (orders_apply_held_subtotals).
 */
Datum
orders_subtotal_on_items(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = orders_trigger_data(fcinfo, "subtotal_on_items",
												ORDERS_TRIG_AFTER | ORDERS_TRIG_INSERT |
												ORDERS_TRIG_UPDATE | ORDERS_TRIG_DELETE);
	Relation	rel = trigdata->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	SubtotalFold f;
	SubtotalDelta **moved;
	long		n;

	orders_require_transition_tables(trigdata, "subtotal_on_items");
	if (orders_owner_restoring(rel))
		return PointerGetDatum(NULL);
	f.deltas = NULL;
	f.order_id = orders_typed_column(rel, "order_id", UUIDOID);
	f.total = orders_fnumber(desc, "total");
	if (trigdata->tg_oldtable)
		orders_for_each_row(trigdata->tg_oldtable, desc, -1, fold_item_total, &f);
	if (trigdata->tg_newtable)
		orders_for_each_row(trigdata->tg_newtable, desc, +1, fold_item_total, &f);
	refuse_customer_off_cart(rel, f.deltas);
	refuse_agent_on_final(f.deltas);
	moved = (SubtotalDelta **) orders_sorted_deltas(f.deltas, subtotal_moves, &n);
	if (n == 0)
		return PointerGetDatum(NULL);
	if (orders_hold_subtotals)
		hold_deltas(moved, n);
	else
		add_to_subtotals(moved, n);
	return PointerGetDatum(NULL);
}

/* Amounts — an order row's subtotal, delivery_fee, adjustment and total_amount. */
typedef struct Amounts
{
	Datum		v[4];
	bool		null[4];
} Amounts;

/* read_amounts — the four amounts of "row" (its columns "atts", all > 0), the row deformed once. */
static void
read_amounts(HeapTuple row, TupleDesc desc, const int *atts, Amounts *a)
{
	Datum	   *values = palloc(sizeof(Datum) * desc->natts);
	bool	   *nulls = palloc(sizeof(bool) * desc->natts);

	heap_deform_tuple(row, desc, values, nulls);
	for (int i = 0; i < 4; i++)
	{
		a->v[i] = values[atts[i] - 1];
		a->null[i] = nulls[atts[i] - 1];
	}
	pfree(values);
	pfree(nulls);
}

/* same_amounts — do the two rows hold the same four amounts, byte for byte? */
static bool
same_amounts(const Amounts *old, const Amounts *new)
{
	for (int i = 0; i < 4; i++)
		if (old->null[i] != new->null[i] ||
			(!old->null[i] && !datumIsEqual(old->v[i], new->v[i], false, -1)))
			return false;
	return true;
}

/*
 * orders_tie_money — called by status_guard for every order row written
 * (not for rows pg_restore loads): returns "newrow" with subtotal, total
 * and adjustment tied as the file comment says.  Refuses a subtotal
 * written by anybody but the maintenance or the owner (OR014), a total and
 * an adjustment written together that disagree, and a total below 0 or
 * beyond numeric(12,2) (23514, 22003).
 */
HeapTuple
orders_tie_money(Relation rel, HeapTuple oldrow, HeapTuple newrow)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			att_sub = orders_fnumber(desc, "subtotal");
	int			att_fee = orders_fnumber(desc, "delivery_fee");
	int			att_adj = orders_fnumber(desc, "adjustment");
	int			att_total = orders_fnumber(desc, "total_amount");
	int			atts[4] = {att_sub, att_fee, att_adj, att_total};
	Amounts		now;
	Amounts		was;
	Datum		sub,
				fee,
				adj,
				total;
	Datum		given[3];
	Datum		sum;
	int			cols[3];
	Datum		vals[3];
	bool		nulls[3] = {false, false, false};

	if (att_sub <= 0 || att_fee <= 0 || att_adj <= 0 || att_total <= 0)
		return newrow;			/* before the upgrade */
	read_amounts(newrow, desc, atts, &now);
	if (now.null[0] || now.null[1] || now.null[2] || now.null[3])
		return newrow;			/* NOT NULL reports NULLs */
	if (oldrow != NULL)
	{
		read_amounts(oldrow, desc, atts, &was);
		if (same_amounts(&was, &now))
			return newrow;		/* most updates (a status change) touch no amount */
	}
	sub = now.v[0];
	fee = now.v[1];
	adj = now.v[2];
	total = now.v[3];
	given[0] = sub;
	given[1] = adj;
	given[2] = total;

	if (oldrow == NULL)
	{
		/* a new order has no items yet; a total it is given sets adjustment */
		sub = numeric_zero();
		if (!numeric_equal(total, numeric_zero()) && numeric_equal(adj, numeric_zero()))
			adj = DirectFunctionCall2(numeric_sub, total, fee);
	}
	else
	{
		bool		o1 = was.null[0],
					o2 = was.null[2],
					o3 = was.null[3];
		Datum		old_sub = was.v[0];
		Datum		old_adj = was.v[2];
		Datum		old_total = was.v[3];
		bool		total_written = o3 || !numeric_equal(total, old_total);
		bool		adj_written = o2 || !numeric_equal(adj, old_adj);

		if ((o1 || !numeric_equal(sub, old_sub)) && !subtotal_writing &&
			!has_privs_of_role(GetUserId(), rel->rd_rel->relowner))
			ereport(ERROR,
					(errcode(ERRCODE_ORDERS_COUNTER_MAINTAINED),
					 errmsg("order \"%s\": subtotal is maintained by the extension",
							SPI_getvalue(newrow, desc, orders_fnumber(desc, "order_number"))),
					 errdetail("It is the sum of the order's items (quantity × unit_price)."),
					 errhint("Change the items; set delivery_fee, adjustment or total_amount for the rest.")));
		if (total_written && !adj_written)
			adj = DirectFunctionCall2(numeric_sub, DirectFunctionCall2(numeric_sub, total, sub), fee);
		else if (total_written &&
				 !numeric_equal(total, DirectFunctionCall2(numeric_add,
														   DirectFunctionCall2(numeric_add, sub, fee), adj)))
			ereport(ERROR,
					(errcode(ERRCODE_CHECK_VIOLATION),
					 errmsg("order \"%s\": total_amount must equal subtotal + delivery_fee + adjustment",
							SPI_getvalue(newrow, desc, orders_fnumber(desc, "order_number"))),
					 errhint("Set either total_amount (adjustment follows) or the parts (the total follows).")));
	}

	sum = DirectFunctionCall2(numeric_add, DirectFunctionCall2(numeric_add, sub, fee), adj);
	if (DatumGetBool(DirectFunctionCall2(numeric_lt, sum, numeric_zero())))
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("order \"%s\": total_amount would be negative (subtotal + delivery_fee + adjustment)",
						SPI_getvalue(newrow, desc, orders_fnumber(desc, "order_number"))),
				 errhint("An adjustment may lower the total to 0, not below.")));
	/* numeric(12,2): refuses (22003) what the column could not hold */
	cols[0] = att_sub;
	vals[0] = DirectFunctionCall2(numeric, sub, Int32GetDatum(AMOUNT_TYPMOD));
	cols[1] = att_adj;
	vals[1] = DirectFunctionCall2(numeric, adj, Int32GetDatum(AMOUNT_TYPMOD));
	cols[2] = att_total;
	vals[2] = DirectFunctionCall2(numeric, sum, Int32GetDatum(AMOUNT_TYPMOD));
	/*
	 * already tied (an order inserted with its amounts as they are): the row
	 * as it came — datum_image_eq compares the bytes whether a varlena
	 * header is packed (a formed row) or not (a function's result)
	 */
	if (datum_image_eq(vals[0], given[0], false, -1) && datum_image_eq(vals[1], given[1], false, -1) &&
		datum_image_eq(vals[2], given[2], false, -1))
		return newrow;
	return heap_modify_tuple_by_cols(newrow, desc, 3, cols, vals, nulls);
}
