/*
 * stock.c — product and variant stock moved by the order lifecycle, exactly
 * once per order.
 *
 * Rule: an order's stock items (order_items with a product_id) are out of
 * stock exactly while the order is in a status with holds_stock (cod:
 * confirmed .. delivered).  Each order records what it holds in
 * orders.orders.stock_held (0.30.0, "the ledger" below), and the stock
 * moves exactly when that value changes, by the difference:
 *   status_guard (transition.c) BEFORE row trigger on orders.orders, through
 *                             orders_stock_held_row: an order entering a
 *                             holding status records its stock items, one
 *                             leaving it records nothing (NULL).
 *   orders.stock_on_items()   AFTER INSERT / UPDATE / DELETE ... FOR EACH
 *                             STATEMENT on orders.order_items: orders whose
 *                             stock items no longer match what they record
 *                             get the new value by one UPDATE.
 *   orders.stock_on_status()  AFTER UPDATE ... FOR EACH STATEMENT on
 *                             orders.orders: the stock moves by what the
 *                             old rows recorded minus what the new rows
 *                             record.
 *   orders.stock_delete_guard()  BEFORE DELETE ... FOR EACH ROW on
 *                             orders.orders: an open order that still holds
 *                             stock is not deleted (cancel it first); a
 *                             delivered order's goods are gone, deleting its
 *                             record moves no stock.
 * Every write of the ledger is what the order should hold as its writer
 * finds it, so one statement that changes an order's status and its items
 * (nested in any order) leaves it right and moves the stock once.  On a
 * schema before 0.30.0 (no column) both triggers move the stock by what
 * changed, as before.
 * Each statement sums its moves per product (or variant) and applies one
 * UPDATE per product in id order (no deadlocks between statements), as the
 * extension owner.  Stock never goes below 0: a move that would is refused
 * with OR050 and the whole statement (the transition, the item) is undone.
 *
 * Concurrency: a status change holds its order's row lock; an item change
 * locks its order (FOR NO KEY UPDATE) before it looks at the status.  The
 * status change reads the order's items with the latest snapshot, so an
 * item change either committed before it (and is read) or waits for it and
 * then sees the new status — at READ COMMITTED and REPEATABLE READ alike
 * (REPEATABLE READ item writers get a serialization failure instead).
 */
#include "orders.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/uuid.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(orders_stock_on_status);
PG_FUNCTION_INFO_V1(orders_stock_on_items);
PG_FUNCTION_INFO_V1(orders_stock_on_status_held);
PG_FUNCTION_INFO_V1(orders_stock_on_items_held);
PG_FUNCTION_INFO_V1(orders_stock_delete_guard);
PG_FUNCTION_INFO_V1(orders_recount_stock_held);

/* Per-order hold change of one statement (+1 took, -1 gave back). */
typedef struct OrderHold
{
	pg_uuid_t	order_id;		/* hash key */
	int32		hold;			/* status trigger: holding now - holding before */
	bool		holds;			/* items trigger: the locked order holds */
} OrderHold;

/* Per-product (or per-variant) stock move of one statement. */
typedef struct StockMove
{
	pg_uuid_t	id;				/* hash key: the variant, else the product */
	bool		variant;
	int64		delta;			/* added to stock_quantity */
} StockMove;

/* Column numbers a fold needs. */
typedef struct StockFold
{
	HTAB	   *orders;
	HTAB	   *moves;
	OrderHold **changed;		/* hold_item: the orders whose hold changed */
	int			id;				/* orders: id; items: order_id */
	int			lifecycle;
	int			status;
	int			product_id;
	int			variant_id;
	int			quantity;
} StockFold;

/* row_holds — is the order row in "slot" in a status that holds stock? */
static bool
row_holds(TupleTableSlot *slot, const StockFold *f)
{
	const LifecycleState *st = lifecycle_row_state(slot, f->lifecycle, f->status);

	return st != NULL && st->holds_stock;
}

/* fold_order_hold — orders.orders row: its hold, signed, into its entry. */
static void
fold_order_hold(TupleTableSlot *slot, int sign, void *arg)
{
	StockFold  *f = (StockFold *) arg;
	bool		isnull;
	Datum		id = slot_getattr(slot, f->id, &isnull);
	OrderHold  *h;
	bool		found;

	if (isnull || !row_holds(slot, f))
		return;
	h = (OrderHold *) orders_delta_entry(&f->orders, "orders stock holds", sizeof(OrderHold),
										 DatumGetUUIDP(id), true, &found);
	if (!found)
		h->hold = 0;
	h->hold += sign;
}

/* add_move — stock of "id" (a variant or a product) += delta. */
static void
add_move(HTAB *moves, Datum id, bool variant, int64 delta)
{
	bool		found;
	StockMove  *m = (StockMove *) hash_search(moves, DatumGetUUIDP(id), HASH_ENTER, &found);

	if (!found)
	{
		m->variant = variant;
		m->delta = 0;
	}
	m->delta += delta;
}

/* move_changes — keep the moves that change a stock. */
static bool
move_changes(const void *entry)
{
	return ((const StockMove *) entry)->delta != 0;
}

/* hold_changes — keep the orders whose holding changed. */
static bool
hold_changes(const void *entry)
{
	return ((const OrderHold *) entry)->hold != 0;
}

static void insufficient_stock(const StockMove *m, SPITupleTable *read, Oid stock_rel,
							   Oid products, const OrdersSavedUser *caller);

/*
 * dba_before_update_trigger — has table "relid" a BEFORE UPDATE row
 * trigger that fires in this session (session_replication_role) whose
 * function is not the extension's (only such a trigger can skip a row:
 * the extension's never do)?
 */
static bool
dba_before_update_trigger(Oid relid)
{
	Relation	rel = table_open(relid, NoLock);
	TriggerDesc *td = rel->trigdesc;
	bool		found = false;

	for (int i = 0; td != NULL && i < td->numtriggers && !found; i++)
	{
		Trigger    *t = &td->triggers[i];

		found = orders_trigger_enabled_now(t) && TRIGGER_FOR_ROW(t->tgtype) &&
			TRIGGER_FOR_BEFORE(t->tgtype) && TRIGGER_FOR_UPDATE(t->tgtype) &&
			!orders_own_function(t->tgfoid);
	}
	table_close(rel, NoLock);
	return found;
}

/*
 * refuse_move — "m" did not fit, or its row was not found: 40001 at
 * REPEATABLE READ when the row changed since the snapshot, 09000 when it
 * fits the row as it is and a DBA's trigger could skip the write, else OR050 naming
 * what is in stock (the row is locked by now); 40001 at REPEATABLE READ or
 * SERIALIZABLE when the row exists but was committed after the
 * transaction's snapshot (a product created by the transaction that added
 * the item: skipping it would leave its stock untaken); else nothing (gone:
 * the item's foreign key refuses).
 */
static void
refuse_move(const StockMove *m, Oid products, Oid variants, const OrdersSavedUser *caller)
{
	static Oid	argtypes[1] = {UUIDOID};
	Datum		args[1] = {UUIDPGetDatum(&m->id)};
	SPIPlanPtr	plan;

	if (m->variant)
		plan = orders_get_plan(PLAN_STOCK_READ_VARIANT, variants,
							   "SELECT p.name OPERATOR(pg_catalog.||) ' / ' OPERATOR(pg_catalog.||) v.name,"
							   "       v.sku, v.stock_quantity, v.product_id"
							   "  FROM orders.product_variants v JOIN orders.products p"
							   "    ON p.id OPERATOR(pg_catalog.=) v.product_id"
							   " WHERE v.id OPERATOR(pg_catalog.=) $1",
							   1, argtypes);
	else
		plan = orders_get_plan(PLAN_STOCK_READ_PRODUCT, products,
							   "SELECT name, sku, stock_quantity, id FROM orders.products"
							   " WHERE id OPERATOR(pg_catalog.=) $1",
							   1, argtypes);
	orders_execute(plan, args, NULL, false, 0, SPI_OK_SELECT);
	if (SPI_processed > 0)
	{
		SPITupleTable *seen = SPI_tuptable;

		/*
		 * (0.35.0) at REPEATABLE READ or SERIALIZABLE, a row whose stock
		 * changed since the snapshot (the UPDATE judged the snapshot's
		 * version): 40001, as the direct write's lock answers; else, on a
		 * table with a DBA's BEFORE UPDATE trigger, a row whose stock the
		 * move fits as it is now was skipped by that trigger: 09000, as for
		 * the other counted rows (it was reported short of stock)
		 */
		orders_execute_latest(plan, args, NULL, SPI_OK_SELECT);
		if (SPI_processed > 0 && getBaseType(SPI_gettypeid(SPI_tuptable->tupdesc, 3)) == INT4OID)
		{
			bool		isnull;
			bool		seen_null;
			Datum		stock = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);
			Datum		seen_stock = SPI_getbinval(seen->vals[0], seen->tupdesc, 3, &seen_null);

			if (IsolationUsesXactSnapshot() &&
				(isnull != seen_null || (!isnull && DatumGetInt32(stock) != DatumGetInt32(seen_stock))))
				ereport(ERROR,
						(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
						 errmsg("could not serialize access due to a concurrent update of the stock of %s %s",
								m->variant ? "variant" : "product",
								SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1)),
						 errhint("Retry the transaction.")));
			if (!isnull && (int64) DatumGetInt32(stock) + m->delta >= 0 &&
				dba_before_update_trigger(m->variant ? variants : products))
				ereport(ERROR,
						(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
						 errmsg("the stock of %s %s was not moved: a trigger on %s skipped it",
								m->variant ? "variant" : "product",
								SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1),
								m->variant ? "orders.product_variants" : "orders.products")));
		}
		insufficient_stock(m, seen, m->variant ? variants : products, products, caller);
	}
	if (!IsolationUsesXactSnapshot())
		return;
	orders_execute_latest(plan, args, NULL, SPI_OK_SELECT);
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access due to a concurrent insert of the %s of an item",
						m->variant ? "variant" : "product"),
				 errdetail("It was committed after this transaction's snapshot."),
				 errhint("Retry the transaction.")));
}

/*
 * move_direct — "m" applied to its row locked in d (orders_direct): false
 * when it does not fit (below 0).  As the UPDATE of move_sql would, an
 * integer overflow fails with 22003.
 */
static bool
move_direct(OrdersDirect *d, const StockMove *m)
{
	bool		isnull;
	Datum		stock = slot_getattr(d->row, d->attnums[0], &isnull);
	int32		now;
	Datum		value;

	if (isnull)
		return false;
	if (pg_add_s32_overflow(DatumGetInt32(stock), (int32) m->delta, &now))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("integer out of range")));
	if (now < 0)
		return false;
	value = Int32GetDatum(now);
	/* a row a trigger skipped took nothing: refused as the UPDATE's no row */
	isnull = false;
	return orders_direct_update(d, &value, &isnull);
}

/* move_sql — "m" by an UPDATE statement: false when it does not fit. */
static bool
move_sql(const StockMove *m, Oid rel, const OrdersDerived *derived)
{
	static Oid	argtypes[2] = {UUIDOID, INT4OID};
	Datum		args[2] = {UUIDPGetDatum(&m->id), Int32GetDatum((int32) m->delta)};
	SPIPlanPtr	plan;

	if (m->variant)
		plan = orders_get_plan(PLAN_STOCK_TAKE_VARIANT, rel,
							   "UPDATE orders.product_variants"
							   "   SET stock_quantity = stock_quantity OPERATOR(pg_catalog.+) $2"
							   " WHERE id OPERATOR(pg_catalog.=) $1"
							   "   AND stock_quantity OPERATOR(pg_catalog.+) $2 OPERATOR(pg_catalog.>=) 0",
							   2, argtypes);
	else
		plan = orders_get_plan(PLAN_STOCK_TAKE_PRODUCT, rel,
							   "UPDATE orders.products"
							   "   SET stock_quantity = stock_quantity OPERATOR(pg_catalog.+) $2"
							   " WHERE id OPERATOR(pg_catalog.=) $1"
							   "   AND stock_quantity OPERATOR(pg_catalog.+) $2 OPERATOR(pg_catalog.>=) 0",
							   2, argtypes);
	orders_execute_writing(plan, args, NULL, SPI_OK_UPDATE, NULL, derived);
	return SPI_processed > 0;
}

/*
 * move_table — the moves of one table (products, or variants), in id order,
 * as the owner (already switched by the caller, who is "caller").  Written
 * directly (direct_write.c) when the table is as installed: the rows many
 * status changes queue on are held for less time before the commit; else
 * by one UPDATE statement each.  A move below 0 is refused with OR050.
 */
static void
move_table(StockMove **sorted, long n, bool variants_table, const OrdersSavedUser *caller)
{
	static const char *const stock_columns[] = {"stock_quantity", NULL};
	static const char *const no_guards[] = {NULL};
	Oid			products = orders_relid("products");
	Oid			variants = orders_relid("product_variants");
	Oid			relid = variants_table ? variants : products;
	OrdersDerived derived = {relid, stock_columns};
	const OrdersDerived *was_derived = orders_derived;
	Relation	rel;
	OrdersDirect d;
	int			stock_att;
	bool		direct;
	bool		any = false;

	for (long i = 0; i < n && !any; i++)
		any = sorted[i]->variant == variants_table;
	if (!any)
		return;
	rel = table_open(relid, RowExclusiveLock);
	/* move_direct adds as int4: a column a DBA retyped (or renamed) takes the UPDATE */
	stock_att = orders_fnumber(RelationGetDescr(rel), "stock_quantity");
	direct = stock_att > 0 && orders_direct_updatable(rel, NULL) &&
		getBaseType(TupleDescAttr(RelationGetDescr(rel), stock_att - 1)->atttypid) == INT4OID;
	PG_TRY();
	{
		if (direct)
		{
			/* the log leaves the moves out while their row triggers fire */
			orders_derived = &derived;
			orders_direct_begin(&d, rel, stock_columns);
			/* its BEFORE row trigger is set_updated_at alone, as installed: the stamp set directly */
			(void) orders_direct_idle_before(&d, no_guards);
		}
		for (long i = 0; i < n; i++)
		{
			StockMove  *m = sorted[i];
			bool		fits;

			if (m->variant != variants_table)
				continue;
			/* taking more than any stock can hold: short of stock, as any take that does not fit */
			if (m->delta < PG_INT32_MIN)
				refuse_move(m, products, variants, caller);
			if (m->delta < PG_INT32_MIN || m->delta > PG_INT32_MAX)
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("stock move of %lld units is out of range", (long long) m->delta)));
			if (direct)
			{
				fits = orders_direct_lock_by_id(&d, UUIDPGetDatum(&m->id)) && move_direct(&d, m);
			}
			else
				fits = move_sql(m, relid, &derived);
			if (!fits)
				refuse_move(m, products, variants, caller);
		}
		if (direct)
			orders_direct_end(&d);
	}
	PG_FINALLY();
	{
		orders_derived = was_derived;
	}
	PG_END_TRY();
	table_close(rel, NoLock);
}

/*
 * apply_moves — every stock move of a statement: the products' in id
 * order, then the variants' in id order (the order every stock move keeps,
 * so two never wait for each other's rows).
 */
static void
apply_moves(HTAB *moves, const OrdersSavedUser *caller)
{
	long		n;
	StockMove **sorted = (StockMove **) orders_sorted_deltas(moves, move_changes, &n);

	move_table(sorted, n, false, caller);
	move_table(sorted, n, true, caller);
}

/*
 * insufficient_stock — refuse move "m" with OR050; "read" holds the stock
 * row's name, SKU, stock and product id.  Numbers and names only for a
 * caller who may see the stock row and its product.
 */
static void
insufficient_stock(const StockMove *m, SPITupleTable *read, Oid stock_rel, Oid products,
				   const OrdersSavedUser *caller)
{
	HeapTuple	row = read->vals[0];
	TupleDesc	desc = read->tupdesc;
	bool		isnull;
	Datum		product = SPI_getbinval(row, desc, 4, &isnull);
	char	   *name = SPI_getvalue(row, desc, 1);
	char	   *sku = SPI_getvalue(row, desc, 2);
	char	   *stock = SPI_getvalue(row, desc, 3);
	bool		visible = orders_caller_sees(stock_rel, UUIDPGetDatum(&m->id), caller) &&
		(!m->variant || orders_caller_sees(products, product, caller));

	if (!visible)
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_INSUFFICIENT_STOCK),
				 errmsg("insufficient stock for %s %s of this order",
						m->variant ? "variant" : "product",
						DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&m->id)))),
				 errdetail("An order takes its items out of stock when it enters a status with holds_stock (cod: confirmed)."),
				 errhint("Change the order's items, or try again later.")));
	ereport(ERROR,
			(errcode(ERRCODE_ORDERS_INSUFFICIENT_STOCK),
			 errmsg("insufficient stock for product \"%s\" (SKU %s): %lld needed, %s in stock",
					orders_clip(name), orders_clip(sku), (long long) -m->delta, stock),
			 errdetail("An order takes its items out of stock when it enters a status with holds_stock (cod: confirmed)."),
			 errhint("Restock the product, or change the order's items.")));
}

/*
 * What items_shape found (one per backend, recomputed after any
 * invalidation: orders_direct_generation): the index the items of an order
 * are read by, and the columns a stock move needs — InvalidOid when the
 * items are not as installed (order_id, product_id, variant_id uuid,
 * quantity integer, a btree index on order_id): the statement reads them.
 */
typedef struct ItemsShape
{
	bool		known;
	uint64		generation;
	Oid			index;
	AttrNumber	product;
	AttrNumber	variant;
	AttrNumber	quantity;
} ItemsShape;

static ItemsShape items_shape_cache;

/* items_shape — the shape of the items "rel" (above). */
static const ItemsShape *
items_shape(Relation rel)
{
	ItemsShape *sh = &items_shape_cache;
	uint64		generation = orders_direct_generation();
	TupleDesc	desc = RelationGetDescr(rel);
	const char *names[4] = {"order_id", "product_id", "variant_id", "quantity"};
	const Oid	types[4] = {UUIDOID, UUIDOID, UUIDOID, INT4OID};
	AttrNumber	att[4];
	bool		ok = true;

	if (sh->known && sh->generation == generation)
		return sh;
	for (int c = 0; c < 4 && ok; c++)
	{
		att[c] = orders_fnumber(desc, names[c]);
		ok = att[c] > 0 && TupleDescAttr(desc, att[c] - 1)->atttypid == types[c];
	}
	sh->index = ok ? orders_direct_index_on(rel, &att[0], &types[0], 1) : InvalidOid;
	if (ok)
	{
		sh->product = att[1];
		sh->variant = att[2];
		sh->quantity = att[3];
	}
	sh->generation = generation;
	/* used now either way; kept unless an invalidation came meanwhile */
	sh->known = generation == orders_direct_generation();
	return sh;
}

/* One item row read: order "i" of the list holds "quantity" units of a product (or variant). */
typedef void (*ItemFn) (long i, Datum product, Datum variant, bool variant_null, int64 quantity, void *arg);

/*
 * items_direct — "fn" for each stock item of the "n" orders "ids", read by
 * an index scan of their items with the latest snapshot (as the statement
 * of items_of reads them), as the owner (switched to by the caller).
 * False (nothing read) when the items are not as installed (items_shape),
 * not a plain table without inheritance children, or the owner may not
 * read them.
 */
static bool
items_direct(Oid items_rel, const Datum *ids, long n, ItemFn fn, void *arg)
{
	Relation	rel = table_open(items_rel, AccessShareLock);
	const ItemsShape *sh = items_shape(rel);
	Relation	idx;
	Snapshot	snapshot;
	TupleTableSlot *slot;
	IndexScanDesc scan;

	/* the statement reads inheritance children too; a partitioned table has no heap */
	if (!OidIsValid(sh->index) || rel->rd_rel->relkind != RELKIND_RELATION || rel->rd_rel->relhassubclass ||
		pg_class_aclcheck(items_rel, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
	{
		table_close(rel, AccessShareLock);
		return false;
	}
	idx = index_open(sh->index, AccessShareLock);
	/* as SPI before the statement: what this command wrote so far is seen */
	CommandCounterIncrement();
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	slot = table_slot_create(rel, NULL);
	scan = index_beginscan(rel, idx, snapshot, 1, 0);
	for (long i = 0; i < n; i++)
	{
		ScanKeyData key;

		orders_direct_scan_key(&key, idx, 0, BTEqualStrategyNumber, ids[i]);
		index_rescan(scan, &key, 1, NULL, 0);
		while (index_getnext_slot(scan, ForwardScanDirection, slot))
		{
			bool		pnull;
			bool		vnull;
			bool		qnull;
			Datum		product = slot_getattr(slot, sh->product, &pnull);
			Datum		variant = slot_getattr(slot, sh->variant, &vnull);
			Datum		quantity = slot_getattr(slot, sh->quantity, &qnull);

			if (!pnull && !qnull)
				fn(i, product, variant, vnull, DatumGetInt32(quantity), arg);
		}
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snapshot);
	index_close(idx, NoLock);
	table_close(rel, NoLock);
	return true;
}

/* uuid_array — "ids" as a uuid[] Datum. */
static Datum
uuid_array(const Datum *ids, long n)
{
	return PointerGetDatum(construct_array((Datum *) ids, (int) n, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
}

/* order_ids — the order ids of "list". */
static Datum *
order_ids(OrderHold **list, long n)
{
	Datum	   *ids = palloc(sizeof(Datum) * n);

	for (long i = 0; i < n; i++)
		ids[i] = UUIDPGetDatum(&list[i]->order_id);
	return ids;
}

/*
 * items_of — "fn" for the stock items of the "n" orders "ids" (each
 * product or variant of an order once, its units summed), read with the
 * latest snapshot as the owner (switched to by the caller): directly
 * (items_direct), else by a kept statement — connected to SPI for it.
 */
static void
items_of(Oid items_rel, const Datum *ids, long n, ItemFn fn, void *arg)
{
	static Oid	argtypes[1] = {UUIDARRAYOID};
	Datum		args[1];

	if (n == 0 || items_direct(items_rel, ids, n, fn, arg))
		return;
	args[0] = uuid_array(ids, n);
	orders_spi_connect();
	orders_execute_latest(orders_get_keyed_plan(PLAN_STOCK_ORDER_ITEMS, items_rel,
										        "SELECT m.i, i.product_id, i.variant_id, pg_catalog.sum(i.quantity)::pg_catalog.int8"
										        "  FROM pg_catalog.unnest($1) WITH ORDINALITY AS m(order_id, i)"
										        "  JOIN orders.order_items i ON i.order_id OPERATOR(pg_catalog.=) m.order_id"
										        " WHERE i.product_id IS NOT NULL"
										        " GROUP BY m.i, i.product_id, i.variant_id",
										        1, argtypes),
						  args, NULL, SPI_OK_SELECT);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	t = SPI_tuptable->vals[r];
		TupleDesc	d = SPI_tuptable->tupdesc;
		bool		inull;
		bool		pnull;
		bool		vnull;
		bool		qnull;
		int64		i = DatumGetInt64(SPI_getbinval(t, d, 1, &inull));
		Datum		product = SPI_getbinval(t, d, 2, &pnull);
		Datum		variant = SPI_getbinval(t, d, 3, &vnull);
		Datum		quantity = SPI_getbinval(t, d, 4, &qnull);

		fn((long) i - 1, product, variant, vnull, DatumGetInt64(quantity), arg);
	}
	SPI_finish();
}

/* hold_item — (a schema before 0.30.0) an item of changed order "i": its units move by -hold. */
static void
hold_item(long i, Datum product, Datum variant, bool variant_null, int64 quantity, void *arg)
{
	StockFold  *f = (StockFold *) arg;

	add_move(f->moves, variant_null ? product : variant, !variant_null, quantity * -f->changed[i]->hold);
}

/*
 * The stock an order holds (orders.orders.stock_held, 0.30.0): its units
 * out of stock per product (items without a variant) and per variant, as
 * {"products": {"<id>": units}, "variants": {"<id>": units}} — a section
 * left out when empty, NULL when it holds nothing.  The ledger of the two
 * stock triggers: stock moves exactly when it changes, by stock_on_status
 * from each UPDATE's old and new rows, and it changes only to what the
 * order should hold (its stock items while its status holds stock) — set
 * by status_guard when the order enters or leaves a holding status, by
 * stock_on_items when its items change.  Whichever runs last in a
 * statement that changes both (a writable CTE, a transition() nested in an
 * item statement) finds it right, so the stock moves once.
 */
typedef struct HeldUnit
{
	pg_uuid_t	id;				/* the variant, else the product */
	bool		variant;
	int64		units;
} HeldUnit;

typedef struct Held
{
	int			n;
	int			size;
	HeldUnit   *units;			/* in "cxt" */
	MemoryContext cxt;
} Held;

/* What held_item fills: one Held per order of the list it reads. */
typedef struct HeldRead
{
	Held	   *held;
} HeldRead;

/* held_item — an item of order "i": its units added to what that order holds. */
static void
held_item(long i, Datum product, Datum variant, bool variant_null, int64 quantity, void *arg)
{
	Held	   *h = &((HeldRead *) arg)->held[i];
	const pg_uuid_t *id = DatumGetUUIDP(variant_null ? product : variant);

	for (int u = 0; u < h->n; u++)
		if (h->units[u].variant == !variant_null && memcmp(&h->units[u].id, id, sizeof(pg_uuid_t)) == 0)
		{
			h->units[u].units += quantity;
			return;
		}
	if (h->n == h->size)
	{
		h->size = h->size ? h->size * 2 : 4;
		h->units = h->units ? repalloc(h->units, sizeof(HeldUnit) * h->size)
			: MemoryContextAlloc(h->cxt, sizeof(HeldUnit) * h->size);
	}
	h->units[h->n].id = *id;
	h->units[h->n].variant = !variant_null;
	h->units[h->n].units = quantity;
	h->n++;
}

/* held_read — what the "n" orders "ids" hold by their items now (items_of). */
static Held *
held_read(Oid items_rel, const Datum *ids, long n)
{
	HeldRead	r;

	r.held = palloc0(sizeof(Held) * Max(n, 1));
	for (long i = 0; i < n; i++)
		r.held[i].cxt = CurrentMemoryContext;
	items_of(items_rel, ids, n, held_item, &r);
	return r.held;
}

/* held_section — the units of one section (variants or products) of "h" into the object being built. */
static void
held_section(JsonbParseState **state, const Held *h, bool variants)
{
	bool		any = false;

	for (int u = 0; u < h->n; u++)
	{
		JsonbValue	v;

		if (h->units[u].variant != variants || h->units[u].units == 0)
			continue;
		if (!any)
		{
			orders_push_json_string(state, WJB_KEY, variants ? "variants" : "products");
			pushJsonbValue(state, WJB_BEGIN_OBJECT, NULL);
			any = true;
		}
		orders_push_json_string(state, WJB_KEY,
								DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&h->units[u].id))));
		v.type = jbvNumeric;
		v.val.numeric = int64_to_numeric(h->units[u].units);
		pushJsonbValue(state, WJB_VALUE, &v);
	}
	if (any)
		pushJsonbValue(state, WJB_END_OBJECT, NULL);
}

/* held_value — "h" as a stock_held value; NULL ("*isnull") when it holds nothing. */
static Datum
held_value(const Held *h, bool *isnull)
{
	JsonbParseState *state = NULL;
	JsonbValue *doc;
	bool		any = false;

	for (int u = 0; u < h->n && !any; u++)
		any = h->units[u].units != 0;
	*isnull = !any;
	if (!any)
		return (Datum) 0;
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	held_section(&state, h, false);
	held_section(&state, h, true);
	doc = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbPGetDatum(JsonbValueToJsonb(doc));
}

/* held_equal — are two stock_held values (NULL or not) the same? */
static bool
held_equal(Datum a, bool a_null, Datum b, bool b_null)
{
	if (a_null || b_null)
		return a_null == b_null;
	if (datumIsEqual(a, b, false, -1))
		return true;
	return compareJsonbContainers(&DatumGetJsonbP(a)->root, &DatumGetJsonbP(b)->root) == 0;
}

/* held_corrupt — a stock_held value the extension did not write. */
static void
held_corrupt(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("orders.orders.stock_held holds a value the extension did not write"),
			 errdetail("It is {\"products\": {id: units}, \"variants\": {id: units}}: what the order's stock items hold while its status holds stock."),
			 errhint("SELECT orders.recount_stock_held() rewrites it from the order's items.")));
}

/* held_moves — the units of stock_held value "held", times "sign", added to "moves". */
static void
held_moves(Jsonb *held, int64 sign, HTAB *moves)
{
	JsonbIterator *it = JsonbIteratorInit(&held->root);
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			depth = 0;
	bool		variants = false;
	Datum		id = (Datum) 0;

	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		switch (tok)
		{
			case WJB_BEGIN_OBJECT:
				depth++;
				break;
			case WJB_END_OBJECT:
				depth--;
				break;
			case WJB_KEY:
				if (depth == 1)
				{
					variants = v.val.string.len == 8 && memcmp(v.val.string.val, "variants", 8) == 0;
					if (!variants && !(v.val.string.len == 8 && memcmp(v.val.string.val, "products", 8) == 0))
						held_corrupt();
				}
				else
					id = DirectFunctionCall1(uuid_in, CStringGetDatum(pnstrdup(v.val.string.val,
																			  v.val.string.len)));
				break;
			case WJB_VALUE:
				if (depth != 2 || v.type != jbvNumeric)
					held_corrupt();
				add_move(moves, id, variants,
						 sign * DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(v.val.numeric))));
				break;
			default:
				held_corrupt();
		}
	}
}

/* The columns of orders.orders the ledger reads, per backend (orders_direct_generation). */
typedef struct HeldColumns
{
	Oid			relid;
	uint64		generation;
	int			held;			/* 0: a schema before 0.30.0 */
	int			id;
	int			lifecycle;
	int			status;
	bool		late;			/* a BEFORE UPDATE row trigger not the extension's fires after status_guard */
} HeldColumns;

static HeldColumns held_columns_cache;

/*
 * late_before_triggers — does a BEFORE UPDATE row trigger that is not the
 * extension's fire after status_guard on "rel" (triggers fire in name
 * order)?  Such a trigger may change the status or the items after
 * status_guard recorded what the order holds; stock_on_status then checks
 * every order that entered a holding status.  Yes too when status_guard
 * is not there or disabled.
 */
static bool
late_before_triggers(Relation rel)
{
	/* a copy: the lookups below may rebuild the relcache entry, and free its triggers */
	TriggerDesc *trig = CopyTriggerDesc(rel->trigdesc);
	bool		guard_seen = false;
	bool		late = false;

	for (int i = 0; trig != NULL && i < trig->numtriggers && !late; i++)
	{
		const Trigger *t = &trig->triggers[i];

		if (!TRIGGER_FOR_ROW(t->tgtype) || !TRIGGER_FOR_BEFORE(t->tgtype) || !TRIGGER_FOR_UPDATE(t->tgtype) ||
			t->tgenabled == TRIGGER_DISABLED)
			continue;
		if (!guard_seen)
			guard_seen = orders_direct_own_function(t->tgfoid, "orders_status_guard_held") ||
				orders_direct_own_function(t->tgfoid, "orders_status_guard");
		else
			late = !orders_own_function(t->tgfoid);
	}
	if (trig != NULL)
		FreeTriggerDesc(trig);
	return late || !guard_seen;
}

/* held_columns — where the ledger's columns are in "rel" (orders.orders). */
static const HeldColumns *
held_columns(Relation rel)
{
	HeldColumns *c = &held_columns_cache;
	uint64		generation = orders_direct_generation();
	TupleDesc	desc = RelationGetDescr(rel);

	if (c->relid == RelationGetRelid(rel) && c->generation == generation)
		return c;
	c->held = orders_fnumber(desc, "stock_held");
	if (c->held <= 0 || TupleDescAttr(desc, c->held - 1)->atttypid != JSONBOID)
		c->held = 0;
	c->id = orders_typed_column(rel, "id", UUIDOID);
	c->lifecycle = orders_fnumber(desc, "lifecycle");
	c->status = orders_fnumber(desc, "status");
	c->late = late_before_triggers(rel);
	c->generation = generation;
	/* used now either way; kept unless an invalidation came meanwhile */
	c->relid = generation == orders_direct_generation() ? RelationGetRelid(rel) : InvalidOid;
	return c;
}

/*
 * The extension's own write of stock_held running now (held_write), or
 * NULL: status_guard lets through exactly these values for these orders
 * (ids in uuid order) — not a write a DBA's trigger makes meanwhile.
 */
typedef struct HeldWriting
{
	int			n;
	const Datum *ids;
	const Datum *values;
	const bool *nulls;
} HeldWriting;

static const HeldWriting *held_writing = NULL;

/* What the running held_write says of an order's new value. */
typedef enum HeldListed
{
	HELD_NOT_LISTED,			/* not one of its orders (or none runs) */
	HELD_LISTED,				/* its order, with the value it writes */
	HELD_LISTED_OTHER			/* its order, with another value: a trigger changed it */
} HeldListed;

/* held_listed — is order "id" with "value" ("isnull") what the running held_write writes? */
static HeldListed
held_listed(Datum id, Datum value, bool isnull)
{
	int			lo = 0;
	int			hi = held_writing ? held_writing->n - 1 : -1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;
		int			c = memcmp(DatumGetUUIDP(id), DatumGetUUIDP(held_writing->ids[mid]), sizeof(pg_uuid_t));

		if (c == 0)
			return held_equal(value, isnull, held_writing->values[mid], held_writing->nulls[mid])
				? HELD_LISTED : HELD_LISTED_OTHER;
		if (c < 0)
			hi = mid - 1;
		else
			lo = mid + 1;
	}
	return HELD_NOT_LISTED;
}

/* True while a restore's items record what their orders hold: no stock moves. */
static bool held_filling = false;

/* row_state — the lifecycle state of order row "row". */
static const LifecycleState *
row_state(HeapTuple row, TupleDesc desc, const HeldColumns *c)
{
	bool		n1;
	bool		n2;
	Datum		lc = heap_getattr(row, c->lifecycle, desc, &n1);
	Datum		st = heap_getattr(row, c->status, desc, &n2);

	if (n1 || n2)
		return NULL;
	return lifecycle_find_state(TextDatumGetCString(lc), TextDatumGetCString(st));
}

/* row_holds_stock — is order row "row" in a status that holds stock? */
static bool
row_holds_stock(HeapTuple row, TupleDesc desc, const HeldColumns *c)
{
	const LifecycleState *st = row_state(row, desc, c);

	return st != NULL && st->holds_stock;
}

/* held_now — what order "id" holds by its stock items now, as a stock_held value. */
static Datum
held_now(Datum id, bool *isnull)
{
	Oid			items_rel = orders_relid("order_items");
	OrdersSavedUser saved;
	Held	   *h;

	orders_switch_to_owner(items_rel, &saved);
	h = held_read(items_rel, &id, 1);
	orders_restore_user(&saved);
	return held_value(h, isnull);
}

/*
 * orders_stock_held_row — for status_guard (BEFORE INSERT OR UPDATE of
 * orders.orders): "newrow" with the stock the order holds once it is
 * written, decided by its new status alone: nothing (NULL) when it does
 * not hold stock; its stock items (read with the latest snapshot, as the
 * items' owner) when it enters one that does; what it held when it moves
 * between two (also when the meaning of a state changed under it: a
 * state deleted and made again).  stock_on_status checks the orders that
 * entered a holding status against their items after the statement (a
 * later BEFORE trigger of a DBA's may have changed the status or the
 * items).  Nobody but the extension's item trigger writes it (OR014), and
 * that write changes no status.  A new order holds nothing (its items
 * come after it), whatever the INSERT says — except in the owner's COPY (a
 * restore), which keeps what was dumped for a status that holds stock.
 */
HeapTuple
orders_stock_held_row(Relation rel, HeapTuple oldrow, HeapTuple newrow)
{
	TupleDesc	desc = RelationGetDescr(rel);
	const HeldColumns *c = held_columns(rel);
	bool		new_null;
	bool		old_null;
	bool		n1;
	bool		n2;
	Datum		value;
	Datum		old_value;
	Datum		s1;
	Datum		s2;
	bool		same_status;
	int			col = c->held;

	if (c->held == 0)
		return newrow;			/* a schema before 0.30.0 */
	value = heap_getattr(newrow, c->held, desc, &new_null);
	if (oldrow == NULL)
	{
		if (new_null || (orders_owner_restoring(rel) && row_holds_stock(newrow, desc, c)))
			return newrow;
		new_null = true;
		return heap_modify_tuple_by_cols(newrow, desc, 1, &col, &value, &new_null);
	}
	old_value = heap_getattr(oldrow, c->held, desc, &old_null);
	s1 = heap_getattr(oldrow, c->status, desc, &n1);
	s2 = heap_getattr(newrow, c->status, desc, &n2);
	/* the same status (its lifecycle does not change: status_guard) */
	same_status = !n1 && !n2 && datumIsEqual(s1, s2, false, -1);
	if (same_status && held_writing != NULL &&
		held_listed(heap_getattr(newrow, c->id, desc, &n1), value, new_null) == HELD_LISTED)
		return newrow;			/* held_write's own */
	if (!held_equal(value, new_null, old_value, old_null))
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_COUNTER_MAINTAINED),
				 errmsg("order \"%s\": stock_held is maintained by the extension",
						SPI_getvalue(newrow, desc, orders_fnumber(desc, "order_number"))),
				 errdetail("It records what the order holds out of stock: its stock items while its status holds stock."),
				 errhint("Change the order's items or its status instead.")));
	if (same_status)
		return newrow;
	if (!row_holds_stock(newrow, desc, c))
	{
		if (old_null)
			return newrow;
		new_null = true;
	}
	else if (!old_null && row_holds_stock(oldrow, desc, c))
		return newrow;			/* from one holding status to another */
	else
		value = held_now(heap_getattr(newrow, c->id, desc, &n1), &new_null);
	return heap_modify_tuple_by_cols(newrow, desc, 1, &col, &value, &new_null);
}

/* An old row whose status holds stock or that held some, kept for its new row. */
typedef struct HeldPair
{
	pg_uuid_t	order_id;		/* hash key */
	Jsonb	   *old;			/* what it held; NULL: nothing, or paired */
	bool		old_holds;		/* its status held stock */
	bool		paired;
} HeldPair;

/* What the folds of stock_on_status's ledger path need. */
typedef struct HeldFold
{
	const HeldColumns *c;
	HTAB	   *pairs;
	HTAB	   *moves;
	/* orders to check against their items once folded (check_entered) */
	Datum	   *check_ids;
	Datum	   *check_held;		/* their new value; 0 for NULL */
	bool	   *check_holds;	/* their new status holds stock */
	long		nchecks;
	long		checks_size;
} HeldFold;

/* moves_of — the fold's moves, made on first use. */
static HTAB *
moves_of(HeldFold *f)
{
	if (f->moves == NULL)
		f->moves = orders_delta_hash("orders stock moves", sizeof(StockMove));
	return f->moves;
}

/* fold_held_old — an old row: kept for its new row when it held stock or its status did. */
static void
fold_held_old(TupleTableSlot *slot, int sign, void *arg)
{
	HeldFold   *f = (HeldFold *) arg;
	bool		isnull;
	bool		idnull;
	Datum		held = slot_getattr(slot, f->c->held, &isnull);
	Datum		id = slot_getattr(slot, f->c->id, &idnull);
	const LifecycleState *st = lifecycle_row_state(slot, f->c->lifecycle, f->c->status);
	HeldPair   *p;
	bool		found;

	(void) sign;
	if (idnull || (isnull && !(st != NULL && st->holds_stock)))
		return;
	p = (HeldPair *) orders_delta_entry(&f->pairs, "orders stock held", sizeof(HeldPair),
										DatumGetUUIDP(id), true, &found);
	p->old = isnull ? NULL : DatumGetJsonbPCopy(held);
	p->old_holds = st != NULL && st->holds_stock;
	p->paired = false;
}

/*
 * check_later — order "id" (its new value "held", or NULL; its new status
 * "holds" stock or not) to be checked against what it should hold.
 */
static void
check_later(HeldFold *f, Datum id, Jsonb *held, bool holds)
{
	if (f->nchecks == f->checks_size)
	{
		f->checks_size = f->checks_size ? f->checks_size * 2 : 8;
		f->check_ids = f->check_ids ? repalloc(f->check_ids, sizeof(Datum) * f->checks_size)
			: palloc(sizeof(Datum) * f->checks_size);
		f->check_held = f->check_held ? repalloc(f->check_held, sizeof(Datum) * f->checks_size)
			: palloc(sizeof(Datum) * f->checks_size);
		f->check_holds = f->check_holds ? repalloc(f->check_holds, sizeof(bool) * f->checks_size)
			: palloc(sizeof(bool) * f->checks_size);
	}
	f->check_holds[f->nchecks] = holds;
	f->check_ids[f->nchecks] = UUIDPGetDatum(palloc(sizeof(pg_uuid_t)));
	memcpy(DatumGetUUIDP(f->check_ids[f->nchecks]), DatumGetUUIDP(id), sizeof(pg_uuid_t));
	f->check_held[f->nchecks] = held ? JsonbPGetDatum(held) : (Datum) 0;
	f->nchecks++;
}

/*
 * fold_held_new — a new row: the stock moves by what its order held minus
 * what it holds now; an order that entered a holding status, or left one
 * still holding stock, is checked against its items afterwards.
 */
static void
fold_held_new(TupleTableSlot *slot, int sign, void *arg)
{
	HeldFold   *f = (HeldFold *) arg;
	bool		isnull;
	bool		idnull;
	Datum		held = slot_getattr(slot, f->c->held, &isnull);
	Datum		id = slot_getattr(slot, f->c->id, &idnull);
	HeldPair   *p = idnull ? NULL : (HeldPair *) orders_delta_entry(&f->pairs, "orders stock held", sizeof(HeldPair),
																	DatumGetUUIDP(id), false, NULL);
	const LifecycleState *st = lifecycle_row_state(slot, f->c->lifecycle, f->c->status);
	bool		holds = st != NULL && st->holds_stock;
	Jsonb	   *old = p != NULL ? p->old : NULL;
	Jsonb	   *now = isnull ? NULL : DatumGetJsonbP(held);
	bool		same = (now == NULL && old == NULL) ||
		(now != NULL && old != NULL && VARSIZE(old) == VARSIZE(now) && memcmp(old, now, VARSIZE(now)) == 0);
	HeldListed	listed = idnull ? HELD_NOT_LISTED : held_listed(id, held, isnull);

	(void) sign;
	if (p != NULL)
		p->paired = true;
	/* held_write's row, its value changed by a later BEFORE trigger: as if skipped */
	if (listed == HELD_LISTED_OTHER && (p != NULL && p->old_holds) == holds)
		ereport(ERROR,
				(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
				 errmsg("the stock_held of order %s was changed by a trigger on orders.orders while the extension wrote it",
						DatumGetCString(DirectFunctionCall1(uuid_out, id))),
				 errdetail("Its stock would no longer follow its items.")));

	/*
	 * What the order should hold is checked after the statement when its
	 * status holds nothing but it records something, or — while a DBA's
	 * BEFORE trigger fires after status_guard (late_before_triggers), which
	 * may have moved the status on, or back, or added an item — when it
	 * entered a holding status or its record changed in one, unless this
	 * is held_write's own value for a status of the kind it saw (a later
	 * trigger may have confirmed the order inside that write).
	 */
	if (!idnull && ((!holds && now != NULL) ||
					(holds && f->c->late && (!(p != NULL && p->old_holds) || !same) &&
					 !(listed == HELD_LISTED && (p != NULL && p->old_holds) == holds))))
		check_later(f, id, now != NULL ? DatumGetJsonbPCopy(held) : NULL, holds);
	if (same)
		return;					/* held the same: no move */
	if (now != NULL)
		held_moves(now, -1, moves_of(f));	/* taking stock lowers it */
	if (old != NULL)
		held_moves(old, +1, moves_of(f));
}

/* unpaired_old — an old row without a new one (its id changed): what it held goes back. */
static void
unpaired_old(HeldFold *f)
{
	HASH_SEQ_STATUS seq;
	HeldPair   *p;

	if (f->pairs == NULL)
		return;
	hash_seq_init(&seq, f->pairs);
	while ((p = (HeldPair *) hash_seq_search(&seq)) != NULL)
		if (!p->paired && p->old != NULL)
			held_moves(p->old, +1, moves_of(f));
}

/* What held_reconcile does with a value that is not what the order should hold. */
typedef enum HeldMode
{
	HELD_MOVE,					/* write it, the stock moving by the difference */
	HELD_FILL_EMPTY,			/* a restore: an order recording nothing is filled, no move */
	HELD_FILL_ALL				/* orders.recount_stock_held: every order rewritten, no move */
} HeldMode;

static long held_reconcile(Oid items_rel, Oid orders_rel, const Datum *ids, long n, HeldMode mode);

/*
 * check_entered — the orders fold_held_new noted: those whose value is not
 * what their stock items call for now (a DBA's BEFORE trigger after
 * status_guard changed their status, or added an item) are reconciled —
 * the UPDATE of held_reconcile, whose own stock_on_status moves the
 * difference.  Connected to SPI as the owner.
 */
static void
check_entered(HeldFold *f)
{
	Oid			items_rel = orders_relid("order_items");
	Datum	   *holding = palloc(sizeof(Datum) * f->nchecks);
	long		nholding = 0;
	Held	   *held;
	long		wrong = 0;

	for (long i = 0; i < f->nchecks; i++)
		if (f->check_holds[i])
			holding[nholding++] = f->check_ids[i];
	held = held_read(items_rel, holding, nholding);
	for (long i = 0, h = 0; i < f->nchecks; i++)
	{
		bool		should_null = true;
		Datum		should = f->check_holds[i] ? held_value(&held[h++], &should_null) : (Datum) 0;

		if (!held_equal(should, should_null, f->check_held[i], f->check_held[i] == (Datum) 0))
			f->check_ids[wrong++] = f->check_ids[i];
	}
	if (wrong > 0)
		(void) held_reconcile(items_rel, orders_relid("orders"), f->check_ids, wrong, HELD_MOVE);
}

/*
 * orders.stock_on_status() — AFTER UPDATE ... REFERENCING OLD TABLE NEW TABLE
 * FOR EACH STATEMENT on orders.orders.  Guarantees that the stock moved by
 * what the changed orders held before the statement minus what they hold
 * after it (stock_held), in the same transaction, or that the statement
 * failed; on a schema before 0.30.0, that each order whose status moved
 * into (out of) a holding status took its stock items out of (put them
 * back into) stock.
 */
Datum
orders_stock_on_status(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = orders_trigger_data(fcinfo, "stock_on_status",
												ORDERS_TRIG_AFTER | ORDERS_TRIG_UPDATE);
	TupleDesc	desc = RelationGetDescr(trigdata->tg_relation);
	StockFold	f;
	OrderHold **changed;
	long		n;
	Oid			items_rel;
	OrdersSavedUser saved;
	const HeldColumns *held;

	orders_require_transition_tables(trigdata, "stock_on_status");
	held = held_columns(trigdata->tg_relation);
	if (held->held != 0)
	{
		HeldFold	hf;

		if (held_filling)
			return PointerGetDatum(NULL);	/* a restore's ledger: the stock counts it */
		memset(&hf, 0, sizeof(hf));
		hf.c = held;
		orders_for_each_row(trigdata->tg_oldtable, desc, -1, fold_held_old, &hf);
		orders_for_each_row(trigdata->tg_newtable, desc, +1, fold_held_new, &hf);
		unpaired_old(&hf);
		if (hf.moves == NULL && hf.nchecks == 0)
			return PointerGetDatum(NULL);
		orders_spi_connect_as_owner(orders_relid("order_items"), &saved);
		if (hf.moves != NULL)
			apply_moves(hf.moves, &saved);
		if (hf.nchecks > 0)
			check_entered(&hf);
		orders_spi_finish_as(&saved);
		return PointerGetDatum(NULL);
	}

	/* a schema before 0.30.0 (no ledger): moves by what changed */
	memset(&f, 0, sizeof(f));
	f.id = orders_typed_column(trigdata->tg_relation, "id", UUIDOID);
	f.lifecycle = orders_fnumber(desc, "lifecycle");
	f.status = orders_fnumber(desc, "status");
	orders_for_each_row(trigdata->tg_oldtable, desc, -1, fold_order_hold, &f);
	orders_for_each_row(trigdata->tg_newtable, desc, +1, fold_order_hold, &f);
	changed = (OrderHold **) orders_sorted_deltas(f.orders, hold_changes, &n);
	if (n == 0)
		return PointerGetDatum(NULL);

	items_rel = orders_relid("order_items");
	orders_spi_connect_as_owner(items_rel, &saved);
	f.moves = orders_delta_hash("orders stock moves", sizeof(StockMove));
	f.changed = changed;
	items_of(items_rel, order_ids(changed, n), n, hold_item, &f);
	apply_moves(f.moves, &saved);
	orders_spi_finish_as(&saved);
	return PointerGetDatum(NULL);
}

/* fold_item_order — order_items row with a product: note its order. */
static void
fold_item_order(TupleTableSlot *slot, int sign, void *arg)
{
	StockFold  *f = (StockFold *) arg;
	bool		isnull;
	Datum		order_id;
	bool		found;
	OrderHold  *h;

	(void) sign;
	(void) slot_getattr(slot, f->product_id, &isnull);
	if (isnull)
		return;
	order_id = slot_getattr(slot, f->id, &isnull);
	if (isnull)
		return;
	h = (OrderHold *) orders_delta_entry(&f->orders, "orders stock item orders", sizeof(OrderHold),
										 DatumGetUUIDP(order_id), true, &found);
	if (!found)
		h->holds = false;		/* set once the order is locked */
}

/* fold_item_move — order_items row of a holding order: its stock move. */
static void
fold_item_move(TupleTableSlot *slot, int sign, void *arg)
{
	StockFold  *f = (StockFold *) arg;
	bool		isnull;
	Datum		product = slot_getattr(slot, f->product_id, &isnull);
	Datum		order_id;
	Datum		variant;
	bool		vnull;
	OrderHold  *h;

	if (isnull)
		return;
	order_id = slot_getattr(slot, f->id, &isnull);
	if (isnull)
		return;
	h = (OrderHold *) hash_search(f->orders, DatumGetUUIDP(order_id), HASH_FIND, NULL);
	if (h == NULL || !h->holds)
		return;
	variant = slot_getattr(slot, f->variant_id, &vnull);
	/* a new item takes stock, an old one gives it back */
	add_move(f->moves, vnull ? product : variant, !vnull,
			 -(int64) sign * DatumGetInt32(slot_getattr(slot, f->quantity, &isnull)));
}

/*
 * held_write — stock_held of the "n" orders "ids" (in uuid order) set to
 * "values" (NULL where "nulls") by one UPDATE — the extension's own write,
 * which status_guard lets through for exactly these orders and values
 * (held_writing), left out of the activity log; its stock_on_status moves
 * the stock by the difference.  "filling" (a value the stock already
 * counts: a restore's, orders.recount_stock_held's) runs it with the
 * replica role, as a restore with --disable-triggers would load it: no
 * trigger of the orders fires but one a DBA made ENABLE ALWAYS or REPLICA
 * — no stock moves (stock_on_status skips while held_filling), no new
 * updated_at, no DBA trigger acting on what is no change of the order.  A
 * row a trigger skipped fails it: its stock would not follow its items.
 * Connected to SPI as the owner.
 */
static void
held_write(Oid orders_rel, Datum *ids, Datum *values, bool *nulls, int n, bool filling)
{
	static Oid	write_types[2] = {UUIDARRAYOID, JSONBARRAYOID};
	static const char *const held_column[] = {"stock_held", NULL};
	OrdersDerived derived = {orders_rel, held_column};
	HeldWriting writing = {n, ids, values, nulls};
	const HeldWriting *was_writing = held_writing;
	bool		was_filling = held_filling;
	Datum		args[2];
	int			lower = 1;
	const int	guc_level = n > 0 && filling ? NewGUCNestLevel() : -1;

	if (n == 0)
		return;
	args[0] = uuid_array(ids, n);
	args[1] = PointerGetDatum(construct_md_array(values, nulls, 1, &n, &lower, JSONBOID, -1, false, TYPALIGN_INT));
	if (filling)
	{
		(void) set_config_option("session_replication_role", "replica", PGC_SUSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	}
	held_writing = &writing;
	held_filling = filling;
	PG_TRY();
	{
		orders_execute_writing(orders_get_keyed_plan(PLAN_STOCK_WRITE_HELD, orders_rel,
											         "UPDATE orders.orders o SET stock_held = v.held"
											         "  FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) AS v(id, held)"
											         " WHERE o.id OPERATOR(pg_catalog.=) v.id",
											         2, write_types),
							   args, NULL, SPI_OK_UPDATE, NULL, &derived);
	}
	PG_FINALLY();
	{
		held_writing = was_writing;
		held_filling = was_filling;
	}
	PG_END_TRY();
	if (filling)
		AtEOXact_GUC(true, guc_level);
	if (SPI_processed != (uint64) n)
		ereport(ERROR,
				(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
				 errmsg("the stock_held of %d orders was not written: a trigger on orders.orders skipped %d",
						n, n - (int) SPI_processed),
				 errdetail("Their stock would no longer follow their items.")));
}

/*
 * held_reconcile — (0.30.0) the "n" orders "ids" locked in id order, and
 * the stock_held of each that no longer records what it should hold (its
 * stock items while its status holds stock, both read after the lock)
 * written (held_write), the stock moving by the difference — except in a
 * restore (HELD_FILL_EMPTY: the owner's COPY of items), which records
 * without moving stock what orders that record nothing hold (a dump from
 * before 0.30.0 has no stock_held; the dumped stock counts them), and in
 * orders.recount_stock_held (HELD_FILL_ALL).  Returns the orders written.
 * Connected to SPI as the owner.
 */
static long
held_reconcile(Oid items_rel, Oid orders_rel, const Datum *ids, long n, HeldMode mode)
{
	static Oid	lock_types[1] = {UUIDARRAYOID};
	Datum		args[1];
	Datum	   *locked;
	Datum	   *current;
	bool	   *current_null;
	bool	   *holds;
	Datum	   *holding;
	long		rows;
	long		nholding = 0;
	Held	   *held;
	/* the writes: [0] move the stock, [1] fill (no move) */
	Datum	   *wids[2];
	Datum	   *wvalues[2];
	bool	   *wnulls[2];
	int			nw[2] = {0, 0};

	args[0] = uuid_array(ids, n);
	orders_execute(orders_get_keyed_plan(PLAN_STOCK_LOCK_HELD, orders_rel,
								         "SELECT id, lifecycle, status, stock_held FROM orders.orders"
								         " WHERE id OPERATOR(pg_catalog.=) ANY ($1)"
								         " ORDER BY id FOR NO KEY UPDATE",
								         1, lock_types),
				   args, NULL, false, 0, SPI_OK_SELECT);
	rows = (long) SPI_processed;
	locked = palloc(sizeof(Datum) * Max(rows, 1));
	current = palloc(sizeof(Datum) * Max(rows, 1));
	current_null = palloc(sizeof(bool) * Max(rows, 1));
	holds = palloc(sizeof(bool) * Max(rows, 1));
	holding = palloc(sizeof(Datum) * Max(rows, 1));
	for (int w = 0; w < 2; w++)
	{
		wids[w] = palloc(sizeof(Datum) * Max(rows, 1));
		wvalues[w] = palloc(sizeof(Datum) * Max(rows, 1));
		wnulls[w] = palloc(sizeof(bool) * Max(rows, 1));
	}
	for (long r = 0; r < rows; r++)
	{
		HeapTuple	t = SPI_tuptable->vals[r];
		TupleDesc	d = SPI_tuptable->tupdesc;
		bool		isnull;
		const LifecycleState *st = lifecycle_find_state(SPI_getvalue(t, d, 2), SPI_getvalue(t, d, 3));

		locked[r] = SPI_getbinval(t, d, 1, &isnull);
		current[r] = SPI_getbinval(t, d, 4, &current_null[r]);
		holds[r] = st != NULL && st->holds_stock;
		if (holds[r])
			holding[nholding++] = locked[r];
	}
	held = held_read(items_rel, holding, nholding);
	for (long r = 0, h = 0; r < rows; r++)
	{
		bool		should_null = true;
		Datum		should = holds[r] ? held_value(&held[h++], &should_null) : (Datum) 0;
		int			w = mode == HELD_FILL_ALL || (mode == HELD_FILL_EMPTY && current_null[r]) ? 1 : 0;

		if (held_equal(should, should_null, current[r], current_null[r]))
			continue;
		wids[w][nw[w]] = locked[r];
		wvalues[w][nw[w]] = should;
		wnulls[w][nw[w]] = should_null;
		nw[w]++;
	}
	held_write(orders_rel, wids[0], wvalues[0], wnulls[0], nw[0], false);
	held_write(orders_rel, wids[1], wvalues[1], wnulls[1], nw[1], true);
	return nw[0] + nw[1];
}

/*
 * orders.stock_on_items() — AFTER INSERT, UPDATE or DELETE ... REFERENCING
 * ... FOR EACH STATEMENT on orders.order_items.  Guarantees that each order
 * of the changed items (locked first, in id order) records what it holds
 * now, and the stock moved by the difference (held_reconcile); on a schema
 * before 0.30.0, that the stock of the products named by the changed items
 * moved by what the items now take minus what they took, for orders that
 * hold stock.  COPY by the table owner (pg_restore) moves nothing: the
 * restored stock already counts the restored orders.
 */
Datum
orders_stock_on_items(PG_FUNCTION_ARGS)
{
	static Oid	argtypes[1] = {UUIDARRAYOID};
	TriggerData *trigdata = orders_trigger_data(fcinfo, "stock_on_items",
												ORDERS_TRIG_AFTER | ORDERS_TRIG_INSERT |
												ORDERS_TRIG_UPDATE | ORDERS_TRIG_DELETE);
	Relation	rel = trigdata->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	StockFold	f;
	OrderHold **listed;
	long		n;
	Datum		args[1];
	Oid			orders_rel;
	OrdersSavedUser saved;
	bool		ledger;			/* a 0.30.0 schema: orders.orders.stock_held */
	bool		restoring;

	orders_require_transition_tables(trigdata, "stock_on_items");
	orders_rel = orders_relid("orders");
	{
		Relation	orders = table_open(orders_rel, AccessShareLock);

		ledger = held_columns(orders)->held != 0;
		table_close(orders, AccessShareLock);
	}
	restoring = orders_owner_restoring(rel);
	if (restoring && !ledger)
		return PointerGetDatum(NULL);	/* the restored stock counts the restored orders */
	memset(&f, 0, sizeof(f));
	f.id = orders_typed_column(rel, "order_id", UUIDOID);
	f.product_id = orders_typed_column(rel, "product_id", UUIDOID);
	f.variant_id = orders_typed_column(rel, "variant_id", UUIDOID);
	f.quantity = orders_fnumber(desc, "quantity");
	if (trigdata->tg_oldtable)
		orders_for_each_row(trigdata->tg_oldtable, desc, -1, fold_item_order, &f);
	if (trigdata->tg_newtable)
		orders_for_each_row(trigdata->tg_newtable, desc, +1, fold_item_order, &f);
	listed = (OrderHold **) orders_sorted_deltas(f.orders, NULL, &n);
	if (n == 0)
		return PointerGetDatum(NULL);

	orders_spi_connect_as_owner(orders_rel, &saved);
	if (ledger)
	{
		(void) held_reconcile(RelationGetRelid(rel), orders_rel, order_ids(listed, n), n,
							  restoring ? HELD_FILL_EMPTY : HELD_MOVE);
		orders_spi_finish_as(&saved);
		return PointerGetDatum(NULL);
	}
	/* a schema before 0.30.0 (no ledger): moves by what changed */
	args[0] = uuid_array(order_ids(listed, n), n);
	/* lock the orders (id order) and read their status after the lock */
	orders_execute(orders_get_keyed_plan(PLAN_STOCK_LOCK_ORDERS, orders_rel,
								         "SELECT id, lifecycle, status FROM orders.orders"
								         " WHERE id OPERATOR(pg_catalog.=) ANY ($1)"
								         " ORDER BY id FOR NO KEY UPDATE",
								         1, argtypes),
				   args, NULL, false, 0, SPI_OK_SELECT);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		id = SPI_getbinval(t, d, 1, &isnull);
		const LifecycleState *st = lifecycle_find_state(SPI_getvalue(t, d, 2), SPI_getvalue(t, d, 3));
		OrderHold  *h = (OrderHold *) hash_search(f.orders, DatumGetUUIDP(id), HASH_FIND, NULL);

		if (h != NULL)
			h->holds = st != NULL && st->holds_stock;
	}
	f.moves = orders_delta_hash("orders stock moves", sizeof(StockMove));
	if (trigdata->tg_oldtable)
		orders_for_each_row(trigdata->tg_oldtable, desc, -1, fold_item_move, &f);
	if (trigdata->tg_newtable)
		orders_for_each_row(trigdata->tg_newtable, desc, +1, fold_item_move, &f);
	apply_moves(f.moves, &saved);
	orders_spi_finish_as(&saved);
	return PointerGetDatum(NULL);
}

/*
 * orders.stock_delete_guard() — BEFORE DELETE ... FOR EACH ROW on
 * orders.orders.  Guarantees that an order still reserving stock (an
 * "open" status, holding stock) is not deleted with its reservation: the
 * delete is refused with OR051.  From 0.30.0 "holding" is the locked row's
 * stock_held — the latest version, which counts an item a concurrent
 * transaction added and committed while the DELETE waited (the DELETE's
 * snapshot would not see it).  Delivered (fulfilled) orders hold stock
 * that has left for good; deleting them moves nothing.
 */
Datum
orders_stock_delete_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = orders_trigger_data(fcinfo, "stock_delete_guard",
												ORDERS_TRIG_BEFORE | ORDERS_TRIG_ROW |
												ORDERS_TRIG_DELETE);
	Relation	rel = trigdata->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	HeapTuple	row = trigdata->tg_trigtuple;
	const HeldColumns *c = held_columns(rel);
	char	   *lname = SPI_getvalue(row, desc, orders_fnumber(desc, "lifecycle"));
	char	   *status = SPI_getvalue(row, desc, orders_fnumber(desc, "status"));
	const LifecycleState *st = lifecycle_find_state(lname, status);
	bool		reserves = false;

	if (st == NULL || st->category != CATEGORY_OPEN)
		return orders_trigger_result(trigdata, NULL);
	if (c->held != 0)
	{
		bool		isnull;

		(void) heap_getattr(row, c->held, desc, &isnull);
		reserves = !isnull;
	}
	else if (st->holds_stock)
	{
		/* a schema before 0.30.0: does it have stock items? */
		static Oid	argtypes[1] = {UUIDOID};
		Oid			items_rel = orders_relid("order_items");
		OrdersSavedUser saved;
		bool		isnull;
		Datum		args[1];

		args[0] = SPI_getbinval(row, desc, orders_fnumber(desc, "id"), &isnull);
		orders_spi_connect_as_owner(items_rel, &saved);
		orders_execute(orders_get_plan(PLAN_STOCK_ORDER_RESERVES, items_rel,
									   "SELECT 1 FROM orders.order_items"
									   " WHERE order_id OPERATOR(pg_catalog.=) $1"
									   "   AND product_id IS NOT NULL LIMIT 1",
									   1, argtypes),
					   args, NULL, true, 0, SPI_OK_SELECT);
		reserves = SPI_processed > 0;
		orders_spi_finish_as(&saved);
	}
	if (reserves)
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_STOCK_HELD),
				 errmsg("order \"%s\" still reserves stock (status %s)",
						SPI_getvalue(row, desc, orders_fnumber(desc, "order_number")), status),
				 errhint("Cancel the order first: that puts its items back into stock.")));
	return orders_trigger_result(trigdata, NULL);
}

/*
 * orders_stock_on_status_held, orders_stock_on_items_held — the two
 * triggers under the names the 0.30.0 schema calls them by: a session
 * still running an older library (which moves stock without stock_held)
 * then fails on every write instead of moving stock past the ledger.
 */
Datum
orders_stock_on_status_held(PG_FUNCTION_ARGS)
{
	return orders_stock_on_status(fcinfo);
}

Datum
orders_stock_on_items_held(PG_FUNCTION_ARGS)
{
	return orders_stock_on_items(fcinfo);
}

/*
 * orders.recount_stock_held() — records in every order's stock_held what it
 * holds now (its stock items while its status holds stock), without moving
 * stock: for a restore that loaded orders and items with their triggers
 * disabled (pg_restore --disable-triggers of a dump from before 0.30.0),
 * after which the stock counts what the orders hold but stock_held does
 * not say it, and for the update to 0.30.0.  The orders are locked in id
 * order, 10,000 at a time; an order that records something else is
 * rewritten — its stock does not move (the ledger is what was wrong) and
 * it keeps its updated_at.  Returns the orders rewritten.  Owner only
 * (REVOKEd from PUBLIC): it changes what later stock moves give back.
 */
Datum
orders_recount_stock_held(PG_FUNCTION_ARGS)
{
	static Oid	argtypes[1] = {UUIDOID};
	Oid			orders_rel = orders_relid("orders");
	Oid			items_rel = orders_relid("order_items");
	OrdersSavedUser saved;
	Datum		after = (Datum) 0;
	bool		first = true;
	int64		written = 0;

	(void) fcinfo;
	orders_spi_connect_as_owner(orders_rel, &saved);
	for (;;)
	{
		Datum		args[1] = {after};
		long		n;
		Datum	   *ids;
		bool		isnull;

		if (first)
			orders_execute(orders_get_plan(PLAN_STOCK_RECOUNT_FIRST, orders_rel,
										   "SELECT id FROM orders.orders ORDER BY id LIMIT 10000",
										   0, NULL),
						   NULL, NULL, true, 0, SPI_OK_SELECT);
		else
			orders_execute(orders_get_plan(PLAN_STOCK_RECOUNT_PAGE, orders_rel,
										   "SELECT id FROM orders.orders"
										   " WHERE id OPERATOR(pg_catalog.>) $1 ORDER BY id LIMIT 10000",
										   1, argtypes),
						   args, NULL, true, 0, SPI_OK_SELECT);
		n = (long) SPI_processed;
		if (n == 0)
			break;
		ids = palloc(sizeof(Datum) * n);
		for (long i = 0; i < n; i++)
		{
			pg_uuid_t  *id = palloc(sizeof(pg_uuid_t));

			memcpy(id, DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull)),
				   sizeof(pg_uuid_t));
			ids[i] = UUIDPGetDatum(id);
		}
		after = ids[n - 1];
		first = false;
		written += held_reconcile(items_rel, orders_rel, ids, n, HELD_FILL_ALL);
	}
	orders_spi_finish_as(&saved);
	PG_RETURN_INT64(written);
}
