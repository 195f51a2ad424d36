/*
 * stock.c — product and variant stock moved by the order lifecycle, exactly
 * once per order.
 *
 * Rule: an order's stock items (order_items with a product_id) are out of
 * stock exactly while the order is in a status with holds_stock (cod:
 * confirmed .. delivered).  So
 *   orders.stock_on_status()  AFTER UPDATE ... FOR EACH STATEMENT on
 *                             orders.orders: orders that entered a holding
 *                             status take their items out of stock, orders
 *                             that left one (cancelled, returned) put them
 *                             back; moves between two holding statuses (or
 *                             two others) do nothing.
 *   orders.stock_on_items()   AFTER INSERT / UPDATE / DELETE ... FOR EACH
 *                             STATEMENT on orders.order_items: items added to,
 *                             changed in or removed from an order that holds
 *                             stock move the stock by the difference.
 *   orders.stock_delete_guard()  BEFORE DELETE ... FOR EACH ROW on
 *                             orders.orders: an open order that still holds
 *                             stock is not deleted (cancel it first); a
 *                             delivered order's goods are gone, deleting its
 *                             record moves no stock.
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
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(orders_stock_on_status);
PG_FUNCTION_INFO_V1(orders_stock_on_items);
PG_FUNCTION_INFO_V1(orders_stock_delete_guard);

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
 * refuse_move — "m" did not fit, or its row was not found: OR050 naming
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
		insufficient_stock(m, SPI_tuptable, m->variant ? variants : products, products, caller);
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
	stock_att = SPI_fnumber(RelationGetDescr(rel), "stock_quantity");
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
		att[c] = SPI_fnumber(desc, names[c]);
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

/*
 * read_items_direct — the stock moves of the "n" orders "changed" (each
 * its items' quantities times -hold) added to "moves", read by an index
 * scan of their items with the latest snapshot (as the statement of
 * read_items reads them), as the owner (switched to by the caller).  False
 * (nothing read) when the items are not as installed (items_shape), not a
 * plain table without inheritance children, or the owner may not read
 * them.
 */
static bool
read_items_direct(Oid items_rel, OrderHold **changed, long n, HTAB *moves)
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

		orders_direct_scan_key(&key, idx, 0, BTEqualStrategyNumber, UUIDPGetDatum(&changed[i]->order_id));
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
				add_move(moves, vnull ? product : variant, !vnull,
						 (int64) DatumGetInt32(quantity) * -changed[i]->hold);
		}
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snapshot);
	index_close(idx, NoLock);
	table_close(rel, NoLock);
	return true;
}

/* order_ids — the order ids of "list" as a uuid[] Datum. */
static Datum
order_ids(OrderHold **list, long n)
{
	Datum	   *ids = palloc(sizeof(Datum) * n);

	for (long i = 0; i < n; i++)
		ids[i] = UUIDPGetDatum(&list[i]->order_id);
	return PointerGetDatum(construct_array(ids, (int) n, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
}

/*
 * read_items — read_items_direct's moves by a kept statement (connected to
 * SPI as the owner): the items of the orders, with the latest snapshot.
 */
static void
read_items(Oid items_rel, OrderHold **changed, long n, HTAB *moves)
{
	static Oid	argtypes[2] = {UUIDARRAYOID, INT4ARRAYOID};
	Datum	   *signs = palloc(sizeof(Datum) * n);
	Datum		args[2];

	for (long i = 0; i < n; i++)
		signs[i] = Int32GetDatum(-changed[i]->hold);	/* taking stock lowers it */
	args[0] = order_ids(changed, n);
	args[1] = PointerGetDatum(construct_array(signs, (int) n, INT4OID, 4, true, TYPALIGN_INT));
	orders_execute_latest(orders_get_plan(PLAN_STOCK_ORDER_ITEMS, items_rel,
										  "SELECT i.product_id, i.variant_id,"
										  "       pg_catalog.sum(i.quantity OPERATOR(pg_catalog.*) m.sign)::pg_catalog.int8"
										  "  FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) AS m(order_id, sign)"
										  "  JOIN orders.order_items i ON i.order_id OPERATOR(pg_catalog.=) m.order_id"
										  " WHERE i.product_id IS NOT NULL"
										  " GROUP BY i.product_id, i.variant_id",
										  2, argtypes),
						  args, NULL, SPI_OK_SELECT);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;
		bool		pnull;
		bool		vnull;
		bool		snull;
		Datum		product = SPI_getbinval(t, d, 1, &pnull);
		Datum		variant = SPI_getbinval(t, d, 2, &vnull);
		Datum		delta = SPI_getbinval(t, d, 3, &snull);

		add_move(moves, vnull ? product : variant, !vnull, DatumGetInt64(delta));
	}
}

/*
 * orders.stock_on_status() — AFTER UPDATE ... REFERENCING OLD TABLE NEW TABLE
 * FOR EACH STATEMENT on orders.orders.  Guarantees that each order whose
 * status moved into (out of) a holding status took its stock items out of
 * (put them back into) stock exactly once, in the same transaction, or that
 * the statement failed.
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

	orders_require_transition_tables(trigdata, "stock_on_status");
	memset(&f, 0, sizeof(f));
	f.id = SPI_fnumber(desc, "id");
	f.lifecycle = SPI_fnumber(desc, "lifecycle");
	f.status = SPI_fnumber(desc, "status");
	orders_for_each_row(trigdata->tg_oldtable, desc, -1, fold_order_hold, &f);
	orders_for_each_row(trigdata->tg_newtable, desc, +1, fold_order_hold, &f);
	changed = (OrderHold **) orders_sorted_deltas(f.orders, hold_changes, &n);
	if (n == 0)
		return PointerGetDatum(NULL);

	items_rel = orders_relid("order_items");
	orders_spi_connect_as_owner(items_rel, &saved);
	f.moves = orders_delta_hash("orders stock moves", sizeof(StockMove));
	if (!read_items_direct(items_rel, changed, n, f.moves))
		read_items(items_rel, changed, n, f.moves);
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

/* any_order — keep every noted order. */
static bool
any_order(const void *entry)
{
	(void) entry;
	return true;
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
 * orders.stock_on_items() — AFTER INSERT, UPDATE or DELETE ... REFERENCING
 * ... FOR EACH STATEMENT on orders.order_items.  Guarantees that the stock
 * of the products named by the changed items moved by what the items now
 * take minus what they took, for orders that hold stock (locked first, in
 * id order), exactly once.  COPY by the table owner (pg_restore) moves
 * nothing: the restored stock already counts the restored orders.
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

	orders_require_transition_tables(trigdata, "stock_on_items");
	if (orders_owner_restoring(rel))
		return PointerGetDatum(NULL);
	memset(&f, 0, sizeof(f));
	f.id = SPI_fnumber(desc, "order_id");
	f.product_id = SPI_fnumber(desc, "product_id");
	f.variant_id = SPI_fnumber(desc, "variant_id");
	f.quantity = SPI_fnumber(desc, "quantity");
	if (trigdata->tg_oldtable)
		orders_for_each_row(trigdata->tg_oldtable, desc, -1, fold_item_order, &f);
	if (trigdata->tg_newtable)
		orders_for_each_row(trigdata->tg_newtable, desc, +1, fold_item_order, &f);
	listed = (OrderHold **) orders_sorted_deltas(f.orders, any_order, &n);
	if (n == 0)
		return PointerGetDatum(NULL);

	args[0] = order_ids(listed, n);

	orders_rel = orders_relid("orders");
	orders_spi_connect_as_owner(orders_rel, &saved);
	/* lock the orders (id order) and read their status after the lock */
	orders_execute(orders_get_plan(PLAN_STOCK_LOCK_ORDERS, orders_rel,
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
 * orders.orders.  Guarantees that an order still reserving stock (a holding
 * status of the "open" category) is not deleted with its reservation: the
 * delete is refused with OR051.  Delivered (fulfilled) orders hold stock
 * that has left for good; deleting them moves nothing.
 */
Datum
orders_stock_delete_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = orders_trigger_data(fcinfo, "stock_delete_guard",
												ORDERS_TRIG_BEFORE | ORDERS_TRIG_ROW |
												ORDERS_TRIG_DELETE);
	TupleDesc	desc = RelationGetDescr(trigdata->tg_relation);
	HeapTuple	row = trigdata->tg_trigtuple;
	char	   *lname = SPI_getvalue(row, desc, SPI_fnumber(desc, "lifecycle"));
	char	   *status = SPI_getvalue(row, desc, SPI_fnumber(desc, "status"));
	const LifecycleState *st = lifecycle_find_state(lname, status);

	if (st != NULL && st->holds_stock && st->category == CATEGORY_OPEN)
	{
		static Oid	argtypes[1] = {UUIDOID};
		Oid			items_rel = orders_relid("order_items");
		OrdersSavedUser saved;
		bool		isnull;
		Datum		args[1];
		bool		reserves;

		args[0] = SPI_getbinval(row, desc, SPI_fnumber(desc, "id"), &isnull);
		orders_spi_connect_as_owner(items_rel, &saved);
		orders_execute(orders_get_plan(PLAN_STOCK_ORDER_RESERVES, items_rel,
									   "SELECT 1 FROM orders.order_items"
									   " WHERE order_id OPERATOR(pg_catalog.=) $1"
									   "   AND product_id IS NOT NULL LIMIT 1",
									   1, argtypes),
					   args, NULL, true, 0, SPI_OK_SELECT);
		reserves = SPI_processed > 0;
		orders_spi_finish_as(&saved);
		if (reserves)
			ereport(ERROR,
					(errcode(ERRCODE_ORDERS_STOCK_HELD),
					 errmsg("order \"%s\" still reserves stock (status %s)",
							SPI_getvalue(row, desc, SPI_fnumber(desc, "order_number")), status),
					 errhint("Cancel the order first: that puts its items back into stock.")));
	}
	return orders_trigger_result(trigdata, NULL);
}
