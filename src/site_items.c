/*
 * site_items.c — an approved site of an agency order is an item of the
 * order (issue 11): made when the site is approved, taken away when it no
 * longer is, neither once the order is paid or closed.
 *
 *   orders.site_items()       BEFORE INSERT OR UPDATE OF status OR DELETE
 *                             ... FOR EACH ROW on orders.order_site_selections:
 *                             refuses approving or taking back a site of a
 *                             paid or closed order (OR073), makes the item of
 *                             a newly approved site and links it, unlinks a
 *                             site no longer approved.
 *   orders_end_site_statement()  called by orders.site_counts() once it
 *                             wrote the group counters: one pass over the
 *                             statement's sites; the orders of its approvals
 *                             and takings back locked (id order) and OR073
 *                             checked again under that lock (a customer's
 *                             statement: every order it touched, also judged
 *                             as the customer's, 0.34.0); one DELETE of
 *                             the items the sites no longer link (an item
 *                             cannot go while its site row still links it,
 *                             i.e. before the site's UPDATE).
 *
 * Lock order (doc/review.md, "Concurrency"): sites, then the group's row,
 * then the order's.  A review through review_sites locks its sites before
 * its UPDATE and, at its first site that makes or takes away an item, the
 * group and the order (orders_review_lock_pending, from site_order here),
 * so the items made here find the order locked by their own transaction;
 * any other statement's sites hold
 * on the order only their new items' foreign-key KEY SHARE (which blocks
 * only what locks the order FOR UPDATE: deleting it, a keyed transition, a
 * recount) until site_counts locks it after the groups.
 * The subtotal deltas of the items made here are held (orders_hold_subtotals,
 * order_money.c) and written by site_counts with those of the items it
 * deletes, one UPDATE per order — unless site_counts will not fire (a DBA
 * disabled it): then at once.
 *
 *   orders.group_sites_stay()  BEFORE DELETE OR UPDATE OF order_id FOR EACH
 *                             ROW on orders.order_groups: a group stays with
 *                             its order (OR074), and one of a paid or closed
 *                             order with approved sites stays (OR073).
 *
 * All work as the owner: the item follows whoever changes the site, also a
 * client who may not write items.
 */
#include "orders.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/sysattr.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "replication/logicalworker.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(orders_site_items);
PG_FUNCTION_INFO_V1(orders_inserted_site_items);
PG_FUNCTION_INFO_V1(orders_group_sites_stay);
PG_FUNCTION_INFO_V1(orders_site_item_guard);

/*
 * The items delete_unlinked_items is deleting (sorted, for bsearch):
 * site_item_guard lets these go, and only these — not what a DBA's trigger
 * fired by that DELETE deletes or changes (review).
 */
static pg_uuid_t *deleting_items = NULL;
static int	ndeleting_items = 0;

/*
 * The items of approved sites being inserted (0.36.0): site_items names
 * each in its row, and "Items_of_inserted_sites" makes it once the row is
 * inserted — a row an INSERT ... ON CONFLICT does not insert gets none.
 * Keyed by the item's id; this transaction's only (pending_lxid).
 */
typedef struct PendingItem
{
	pg_uuid_t	item_id;		/* the key */
	pg_uuid_t	order_id;
	bool		hold;			/* its subtotal held for site_counts */
} PendingItem;

static HTAB *pending_items = NULL;
static LocalTransactionId pending_lxid = InvalidLocalTransactionId;

/* cmp_uuid — two pg_uuid_t in memcmp order (qsort, bsearch). */
static int
cmp_uuid(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(pg_uuid_t));
}

/*
 * refuse_final — OR073: the order "number" is paid or closed ("state"): its
 * approved sites are final, none is approved or taken back any more.
 */
static void
refuse_final(const char *number, const char *state, bool approving, const char *domain)
{
	if (approving)
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_SITES_FINAL),
				 errmsg("order \"%s\" is %s: site %s cannot be approved any more", number, state, domain),
				 errhint("Once the order is paid its sites are final; start a new order for more.")));
	ereport(ERROR,
			(errcode(ERRCODE_ORDERS_SITES_FINAL),
			 errmsg("order \"%s\" is %s: approved site %s stays", number, state, domain),
			 errhint("Approved sites become items; once the order is paid they are no longer taken back.")));
}

/* final_state — what order "o", not open, is: "paid", else its status. */
static const char *
final_state(const OrdersLockedOrder *o)
{
	return o->paid ? "paid" : o->status != NULL ? o->status : "without a status";
}

/*
 * refuse_if_final — refuse_final when order "o" is paid or not open
 * (orders_locked_order_open).
 */
static void
refuse_if_final(const OrdersLockedOrder *o, bool approving, const char *domain)
{
	if (!orders_locked_order_open(o))
		refuse_final(o->number, final_state(o), approving, domain);
}

/*
 * order_of_row — the order of "row" (columns 2-5: order_number, status,
 * paid_at IS NOT NULL, lifecycle — the layout the reads of this file share).
 */
static OrdersLockedOrder
order_of_row(HeapTuple row, TupleDesc desc)
{
	bool		isnull;
	OrdersLockedOrder o = {0};

	o.number = SPI_getvalue(row, desc, 2);
	o.status = SPI_getvalue(row, desc, 3);
	o.paid = DatumGetBool(SPI_getbinval(row, desc, 4, &isnull));
	o.lifecycle = SPI_getvalue(row, desc, 5);
	return o;
}

/* refuse_if_final_row — refuse_if_final for the order of "row" (order_of_row). */
static void
refuse_if_final_row(HeapTuple row, TupleDesc desc, bool approving, const char *domain)
{
	OrdersLockedOrder o = order_of_row(row, desc);

	refuse_if_final(&o, approving, domain);
}

/*
 * site_order — the order of the site's group (false when the group is
 * gone), read as the owner (the caller may not see the order's payment);
 * refuses with OR073 when "changing" (approving or taking back) a site of an
 * order that is paid or closed: its approved sites are final.  The caller
 * is connected to SPI as the owner.  The first such site of a review under
 * way locks its group and order (orders_review_lock_pending); the order is
 * then checked as that lock found it (at READ COMMITTED: nobody else can
 * change it until the review commits).  Else two primary-key lookups with
 * the latest snapshot,
 * whatever the statistics the kept plan was made with (as a join, a
 * generic plan made while there were few groups merge-joined them with the
 * orders' whole primary key).
 */
static bool
site_order(Datum group_id, bool changing, bool approving, const char *domain, Datum *order_id)
{
	static Oid	argtypes[1] = {UUIDOID};
	const OrdersReviewLocked *locked = &orders_review_locked;
	SPIPlanPtr	plan;
	bool		isnull;

	if (locked->to_lock && memcmp(DatumGetUUIDP(group_id), &locked->group_id, sizeof(pg_uuid_t)) == 0)
		orders_review_lock_pending();
	if (locked->valid && memcmp(DatumGetUUIDP(group_id), &locked->group_id, sizeof(pg_uuid_t)) == 0)
	{
		*order_id = UUIDPGetDatum(&locked->order_id);
		if (changing)
		{
			OrdersLockedOrder o = {0};

			o.number = locked->order_number;
			o.status = locked->status;
			o.lifecycle = locked->lifecycle;
			o.paid = locked->paid;
			refuse_if_final(&o, approving, domain);
		}
		return true;
	}
	plan = orders_get_keyed_plan(PLAN_SITE_ORDER, orders_relid("order_groups"),
								 "SELECT o.id, o.order_number, o.status, o.paid_at IS NOT NULL, o.lifecycle"
								 "  FROM orders.orders o"
								 " WHERE o.id OPERATOR(pg_catalog.=)"
								 "       (SELECT g.order_id FROM orders.order_groups g"
								 "         WHERE g.id OPERATOR(pg_catalog.=) $1)",
								 1, argtypes);
	/*
	 * (0.34.0) the latest snapshot after a command counter increment: a
	 * group the same statement made (a CTE inserting a group and its
	 * approved sites) is seen — with the statement's, its site was
	 * approved without its item
	 */
	orders_execute_latest(plan, &group_id, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return false;
	*order_id = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (changing)
		refuse_if_final_row(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, approving, domain);
	return true;
}

/*
 * The columns of a site a site's item keeps in its snapshot, and under
 * which keys (make_item).
 */
#define SNAPSHOT_COLUMNS 8
static const char *const snapshot_columns[SNAPSHOT_COLUMNS] = {
	"id", "order_group_id", "domain", "domain_id", "metrics", "target_page_url", "anchor_text", "reviewed_by"
};
static const char *const snapshot_keys[SNAPSHOT_COLUMNS] = {
	"site_selection_id", "order_group_id", "domain", "domain_id", "metrics", "target_page_url",
	"anchor_text", "approved_by"
};

/* The installed columns of orders.order_items a site's item fills, and their types. */
enum
{
	I_ID, I_ORDER_ID, I_ITEM_TYPE, I_SKU, I_NAME, I_QUANTITY, I_UNIT_PRICE, I_SNAPSHOT,
	I_CREATED_AT, I_UPDATED_AT, I_PRODUCT_ID, I_VARIANT_ID, I_TOTAL, I_NCOLUMNS
};
static const char *const item_columns[I_NCOLUMNS] = {
	"id", "order_id", "item_type", "sku", "name", "quantity", "unit_price", "snapshot",
	"created_at", "updated_at", "product_id", "variant_id", "total"
};
/* unit_price: a domain over numeric (orders.amount); total: generated */
static const Oid item_types[I_NCOLUMNS] = {
	UUIDOID, UUIDOID, TEXTOID, TEXTOID, TEXTOID, INT4OID, NUMERICOID, JSONBOID,
	TIMESTAMPTZOID, TIMESTAMPTZOID, UUIDOID, UUIDOID, NUMERICOID
};

/*
 * What items_shape found for orders.order_items (one per backend),
 * forgotten with any relcache invalidation or change of a function or type
 * (orders_direct_generation).
 */
typedef struct ItemsShape
{
	Oid			relid;			/* InvalidOid: not known */
	uint64		generation;
	bool		direct;			/* a site's item can go in without SQL */
	int			pos[I_NCOLUMNS];	/* each column's position */
	Oid			price_type;		/* unit_price's type: a domain over numeric, or numeric */
	int32		price_typmod;	/* its (base type's) typmod */
} ItemsShape;

static ItemsShape items_shape_cache;

/*
 * items_statement_triggers_own — is every INSERT statement trigger of
 * "rel", and every trigger with a transition table for INSERT, the
 * extension's stock_on_items (which has nothing to do for an item without
 * a product) or subtotal_on_items (whose delta the caller holds), enabled
 * as installed and without condition, subtotal_on_items among them?  And
 * no BEFORE INSERT row trigger (which could skip or change the row)?
 */
static bool
items_statement_triggers_own(Relation rel)
{
	/* a copy: the lookups below may rebuild the relcache entry, and free its triggers */
	TriggerDesc *trig = CopyTriggerDesc(rel->trigdesc);
	bool		own = true;
	bool		subtotal = false;

	for (int i = 0; trig != NULL && i < trig->numtriggers && own; i++)
	{
		const Trigger *t = &trig->triggers[i];

		if (!TRIGGER_FOR_INSERT(t->tgtype))
			continue;
		if (TRIGGER_FOR_ROW(t->tgtype) && t->tgnewtable == NULL)
		{
			own = !TRIGGER_FOR_BEFORE(t->tgtype);
			continue;
		}
		if (t->tgqual != NULL || t->tgnattr > 0 || t->tgenabled != TRIGGER_FIRES_ON_ORIGIN ||
			TRIGGER_FOR_ROW(t->tgtype))
			own = false;
		else if (orders_direct_own_function(t->tgfoid, "orders_subtotal_on_items"))
			subtotal = true;
		else
			own = orders_direct_own_function(t->tgfoid, "orders_stock_on_items_held") ||
				orders_direct_own_function(t->tgfoid, "orders_stock_on_items");	/* a 0.29.0 schema */
	}
	if (trig != NULL)
		FreeTriggerDesc(trig);
	return own && subtotal;
}

/*
 * items_shape — the shape of orders.order_items ("rel", opened): direct
 * when it is as installed — a plain table of exactly the installed
 * columns (their types, total generated), the columns a site's item leaves
 * to their defaults defaulting as installed (created_at and updated_at to
 * now(), sku, product_id and variant_id to NULL), no rule, no forced row
 * level security, and its triggers as items_statement_triggers_own wants
 * them.
 */
static const ItemsShape *
items_shape(Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	ItemsShape *sh = &items_shape_cache;
	uint64		generation = orders_direct_generation();

	if (sh->relid == RelationGetRelid(rel) && sh->generation == generation)
		return sh;
	sh->direct = rel->rd_rel->relkind == RELKIND_RELATION && rel->rd_rules == NULL &&
		!rel->rd_rel->relforcerowsecurity && !rel->rd_rel->relhassubclass &&
		orders_direct_columns(rel, item_columns, item_types, I_NCOLUMNS, I_UNIT_PRICE, I_TOTAL, sh->pos) &&
		orders_direct_default_is(rel, sh->pos[I_CREATED_AT] + 1, F_NOW) &&
		orders_direct_default_is(rel, sh->pos[I_UPDATED_AT] + 1, F_NOW) &&
		orders_direct_default_is(rel, sh->pos[I_SKU] + 1, InvalidOid) &&
		orders_direct_default_is(rel, sh->pos[I_PRODUCT_ID] + 1, InvalidOid) &&
		orders_direct_default_is(rel, sh->pos[I_VARIANT_ID] + 1, InvalidOid) &&
		items_statement_triggers_own(rel);
	if (sh->direct)
	{
		sh->price_type = TupleDescAttr(desc, sh->pos[I_UNIT_PRICE])->atttypid;
		sh->price_typmod = -1;
		(void) getBaseTypeAndTypmod(sh->price_type, &sh->price_typmod);
	}
	sh->relid = orders_direct_generation() == generation ? RelationGetRelid(rel) : InvalidOid;
	sh->generation = generation;
	return sh;
}

/*
 * site_price — the unit price of a site's item, as the INSERT of make_item
 * computes it: metrics.price when it is a JSON number, else 0; coerced to
 * unit_price's type (its typmod; a domain's checks: 23514 for a negative
 * price; 22003 for one too large).
 */
static Datum
site_price(Datum metrics, bool metrics_null, const ItemsShape *sh)
{
	Jsonb	   *doc = metrics_null ? NULL : DatumGetJsonbP(metrics);
	JsonbValue	buf;
	JsonbValue *v = NULL;
	Datum		price;
	void	   *extra = NULL;

	if (doc != NULL && JB_ROOT_IS_OBJECT(doc))
		v = getKeyJsonValueFromContainer(&doc->root, "price", 5, &buf);
	price = (v != NULL && v->type == jbvNumeric) ? NumericGetDatum(v->val.numeric)
		: DirectFunctionCall1(int4_numeric, Int32GetDatum(0));
	if (sh->price_typmod >= 0)
		price = DirectFunctionCall2(numeric, price, Int32GetDatum(sh->price_typmod));
	if (sh->price_type != NUMERICOID)
		domain_check(price, false, sh->price_type, &extra, CurrentMemoryContext);
	return price;
}

/*
 * site_snapshot — the snapshot of a site's item: the site's
 * snapshot_columns under snapshot_keys, as make_item's jsonb_build_object
 * makes them.
 */
static Datum
site_snapshot(HeapTuple row, TupleDesc desc)
{
	JsonbParseState *state = NULL;
	JsonbValue *doc;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	for (int i = 0; i < SNAPSHOT_COLUMNS; i++)
	{
		int			att = orders_fnumber(desc, snapshot_columns[i]);
		bool		isnull;
		Datum		value = heap_getattr(row, att, desc, &isnull);

		orders_push_json_string(&state, WJB_KEY, snapshot_keys[i]);
		if (isnull)
		{
			JsonbValue	null;

			null.type = jbvNull;
			pushJsonbValue(&state, WJB_VALUE, &null);
		}
		else
			orders_push_json_value(&state, value, TupleDescAttr(desc, att - 1)->atttypid);
	}
	doc = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbPGetDatum(JsonbValueToJsonb(doc));
}

/*
 * insert_held — orders_direct_insert of the row with its row triggers, as
 * orders_execute_writing runs make_item's INSERT: no derived write
 * (orders_derived NULL) and orders_hold_subtotals set while it runs (an
 * item a DBA's trigger adds holds its subtotal too); the total it was
 * stored with into "*total".
 */
static void
insert_held(Relation rel, const ItemsShape *sh, const Datum *values, const bool *isnull,
			Datum *total, bool *total_null)
{
	const OrdersDerived *was_derived = orders_derived;
	bool		was_holding = orders_hold_subtotals;

	orders_derived = NULL;
	orders_hold_subtotals = true;
	PG_TRY();
	{
		orders_direct_insert_getting(rel, values, isnull, true, sh->pos[I_TOTAL] + 1, total, total_null);
	}
	PG_FINALLY();
	{
		orders_derived = was_derived;
		orders_hold_subtotals = was_holding;
	}
	PG_END_TRY();
}

/*
 * make_item_direct — make_item's INSERT without a statement
 * (orders_direct_insert): the same row, its row triggers (the foreign
 * keys' checks, a DBA's AFTER triggers), constraints, generated total and
 * indexes; of its statement triggers, stock_on_items has nothing to do (no
 * product) and subtotal_on_items' delta is held here.  For a table as
 * items_shape wants it, while orders_hold_subtotals would hold.
 */
static void
make_item_direct(Relation rel, const ItemsShape *sh, HeapTuple row, TupleDesc desc,
				 Datum item_id, Datum order_id)
{
	int			natts = RelationGetDescr(rel)->natts;
	Datum	   *values = palloc0(sizeof(Datum) * natts);
	bool	   *isnull = palloc(sizeof(bool) * natts);
	const int  *pos = sh->pos;
	bool		metrics_null;
	Datum		metrics = heap_getattr(row, orders_fnumber(desc, "metrics"), desc, &metrics_null);
	Datum		price = site_price(metrics, metrics_null, sh);
	bool		name_null;
	Datum		name = heap_getattr(row, orders_fnumber(desc, "domain"), desc, &name_null);
	Datum		total;
	bool		total_null;
	TimestampTz now = GetCurrentTransactionStartTimestamp();

	memset(isnull, true, sizeof(bool) * natts);
	values[pos[I_ID]] = item_id;
	values[pos[I_ORDER_ID]] = order_id;
	values[pos[I_ITEM_TYPE]] = CStringGetTextDatum("service");
	values[pos[I_NAME]] = name;
	values[pos[I_QUANTITY]] = Int32GetDatum(1);
	values[pos[I_UNIT_PRICE]] = price;
	values[pos[I_SNAPSHOT]] = site_snapshot(row, desc);
	values[pos[I_CREATED_AT]] = TimestampTzGetDatum(now);
	values[pos[I_UPDATED_AT]] = TimestampTzGetDatum(now);
	isnull[pos[I_ID]] = isnull[pos[I_ORDER_ID]] = isnull[pos[I_ITEM_TYPE]] = false;
	isnull[pos[I_NAME]] = name_null;	/* NOT NULL refuses it, as the INSERT would */
	isnull[pos[I_QUANTITY]] = isnull[pos[I_UNIT_PRICE]] = isnull[pos[I_SNAPSHOT]] = false;
	isnull[pos[I_CREATED_AT]] = isnull[pos[I_UPDATED_AT]] = false;
	insert_held(rel, sh, values, isnull, &total, &total_null);
	/* what subtotal_on_items would have held: the total as stored */
	if (!total_null)
		orders_hold_subtotal(DatumGetUUIDP(order_id), total);
}

/*
 * make_item — the item "item_id" of an approved site of order "order_id":
 * a service named by the domain, priced by metrics.price (else 0), its
 * snapshot the site as approved; its subtotal held for orders.site_counts
 * when "hold" (orders_hold_subtotals).  Connected to SPI as the owner.
 */
static void
make_item(HeapTuple row, TupleDesc desc, Datum item_id, Datum order_id, bool hold)
{
	static Oid	argtypes[10] = {UUIDOID, UUIDOID, UUIDOID, UUIDOID, TEXTOID, UUIDOID, JSONBOID,
	TEXTOID, TEXTOID, TEXTOID};
	Datum		args[10];
	char		nulls[10];
	SPIPlanPtr	plan = orders_get_plan(PLAN_SITE_ITEMS_INSERT, orders_relid("order_items"),
									   "INSERT INTO orders.order_items"
									   "       (id, order_id, item_type, name, quantity, unit_price, snapshot)"
									   "VALUES ($1, $2, 'service', $5, 1,"
									   "       CASE WHEN pg_catalog.jsonb_typeof($7 OPERATOR(pg_catalog.->) 'price')"
									   "                 OPERATOR(pg_catalog.=) 'number'"
									   "            THEN ($7 OPERATOR(pg_catalog.->>) 'price')::pg_catalog.numeric"
									   "            ELSE 0 END,"
									   "       pg_catalog.jsonb_build_object('site_selection_id', $3,"
									   "           'order_group_id', $4, 'domain', $5, 'domain_id', $6,"
									   "           'metrics', $7, 'target_page_url', $8,"
									   "           'anchor_text', $9, 'approved_by', $10))",
									   10, argtypes);

	if (hold)
	{
		Relation	items = table_open(orders_relid("order_items"), RowExclusiveLock);
		const ItemsShape *sh = items_shape(items);
		bool		direct = sh->direct &&
			pg_class_aclcheck(RelationGetRelid(items), GetUserId(), ACL_INSERT) == ACLCHECK_OK &&
			check_enable_rls(RelationGetRelid(items), InvalidOid, true) != RLS_ENABLED &&
			SessionReplicationRole != SESSION_REPLICATION_ROLE_REPLICA;

		if (direct)
			make_item_direct(items, sh, row, desc, item_id, order_id);
		table_close(items, NoLock);
		if (direct)
			return;
	}
	args[0] = item_id;
	nulls[0] = ' ';
	args[1] = order_id;
	nulls[1] = ' ';
	for (int i = 0; i < SNAPSHOT_COLUMNS; i++)
	{
		bool		isnull;

		args[i + 2] = heap_getattr(row, orders_fnumber(desc, snapshot_columns[i]), desc, &isnull);
		nulls[i + 2] = isnull ? 'n' : ' ';
	}
	if (hold)
		orders_execute_writing(plan, args, nulls, SPI_OK_INSERT, &orders_hold_subtotals, NULL);
	else
		orders_execute(plan, args, nulls, false, 0, SPI_OK_INSERT);
}

/*
 * site_counts_fires — will orders.site_counts() fire at the end of this
 * statement ("event": INSERT or UPDATE) on the sites?  Not when a DBA
 * disabled it, set it to fire on replicas only or gave it a condition or
 * column list of their own, nor in logical replication's apply worker.
 * Only then may the subtotal of the items made here wait for it.
 */
static bool
site_counts_fires(Relation rel, TriggerEvent event)
{
	/* looked up first: a lookup may rebuild the relcache entry and free its triggers */
	Oid			fn = LookupFuncName(list_make2(makeString(ORDERS_SCHEMA), makeString("site_counts")),
									0, NULL, true);
	TriggerDesc *td = rel->trigdesc;

	/* logical replication's apply worker fires no statement trigger */
	if (td == NULL || !OidIsValid(fn) || IsLogicalWorker())
		return false;
	for (int i = 0; i < td->numtriggers; i++)
	{
		Trigger    *t = &td->triggers[i];

		if (t->tgfoid != fn || TRIGGER_FOR_ROW(t->tgtype) || !TRIGGER_FOR_AFTER(t->tgtype) ||
			t->tgenabled == TRIGGER_DISABLED)
			continue;
		/* a DBA's own condition or column list: cannot tell, do not hold */
		if (t->tgqual != NULL || t->tgnattr > 0)
			return false;
		if (!orders_trigger_enabled_now(t))
			continue;
		if ((TRIGGER_FIRED_BY_INSERT(event) && TRIGGER_FOR_INSERT(t->tgtype)) ||
			(TRIGGER_FIRED_BY_UPDATE(event) && TRIGGER_FOR_UPDATE(t->tgtype)))
			return true;
	}
	return false;
}

/*
 * orders_site_items_checks_rows — does orders.site_items() check every
 * site row an UPDATE of the status of "sites_rel" writes, as the last
 * BEFORE trigger to change it?  Yes when it is enabled for this session
 * without a condition of a DBA's, and every trigger of the table is the
 * extension's own (orders_direct_own_triggers: no trigger of a DBA's
 * approves a site after it).  Only then may the order a review locked go
 * unchecked at the statement's end (site_counts).
 */
bool
orders_site_items_checks_rows(Oid sites_rel)
{
	/* looked up first: a lookup may rebuild the relcache entry and free its triggers */
	Oid			fn = LookupFuncName(list_make2(makeString(ORDERS_SCHEMA), makeString("site_items")),
									0, NULL, true);
	Relation	rel = relation_open(sites_rel, AccessShareLock);
	TriggerDesc *td = rel->trigdesc;
	bool		checks = false;

	for (int i = 0; td != NULL && OidIsValid(fn) && i < td->numtriggers; i++)
	{
		Trigger    *t = &td->triggers[i];

		if (t->tgfoid != fn || !TRIGGER_FOR_ROW(t->tgtype) || !TRIGGER_FOR_BEFORE(t->tgtype) ||
			!TRIGGER_FOR_UPDATE(t->tgtype) || t->tgqual != NULL)
			continue;
		checks = orders_trigger_enabled_now(t);
		if (checks)
			break;
	}
	checks = checks && orders_direct_own_triggers(rel);
	relation_close(rel, NoLock);
	return checks;
}

/* is_approved — is the row's status "approved"? */
static bool
is_approved(HeapTuple row, TupleDesc desc, int status_att)
{
	bool		isnull;
	Datum		d = heap_getattr(row, status_att, desc, &isnull);
	text	   *t;

	if (isnull)
		return false;
	t = DatumGetTextPP(d);
	return VARSIZE_ANY_EXHDR(t) == 8 && memcmp(VARDATA_ANY(t), "approved", 8) == 0;
}

/*
 * inserted_site_exists — is there a site already with the id, or the group
 * and domain, of "row" (being inserted), in the latest snapshot?  Then the
 * INSERT will not insert it: an INSERT … ON CONFLICT goes on to its
 * conflict action (the UPDATE's own triggers make the item of the row it
 * updates), a plain one fails with 23505.  (0.35.0: a PostgREST upsert of
 * an approved site made an item for the proposed row that was never
 * inserted, its price in the order's subtotal.)  (0.36.0) Nor is an item
 * named for "Items_of_inserted_sites", nor the order judged (a paid
 * order's approved site re-sent by an upsert was refused with OR073, an
 * upsert copying EXCLUDED.order_item_id failed on its foreign key); a
 * concurrent insert of the same site committed after this look goes to
 * the conflict action without its item being made.  The site found is locked
 * FOR KEY SHARE: one another transaction is deleting (or re-keying) is
 * waited for — gone, it is not counted and the item is made (review: a
 * site deleted meanwhile left the inserted approved site without its
 * item); at REPEATABLE READ that wait ends in 40001.  Two upserts of one
 * site whose conflict action rewrites a key column (SET domain = ..., a
 * sync job's) both hold it so and deadlock on their key updates
 * (documented: a stronger lock here deadlocked two batches of DO NOTHING
 * inserts naming existing sites in opposite orders — PostgREST's
 * ignore-duplicates — which is the API's path; 0.37.0 tried and kept
 * this).  A concurrent insert of the same key committed after this look
 * is not seen: documented.
 */
static bool
inserted_site_exists(Relation rel, HeapTuple row, TupleDesc desc)
{
	static Oid	argtypes[3] = {UUIDOID, UUIDOID, TEXTOID};
	Datum		args[3];
	char		nulls[3] = {' ', ' ', ' '};
	bool		isnull;

	args[0] = heap_getattr(row, orders_typed_column(rel, "id", UUIDOID), desc, &isnull);
	nulls[0] = isnull ? 'n' : ' ';
	args[1] = heap_getattr(row, orders_typed_column(rel, "order_group_id", UUIDOID), desc, &isnull);
	nulls[1] = isnull ? 'n' : ' ';
	args[2] = heap_getattr(row, orders_typed_column(rel, "domain", TEXTOID), desc, &isnull);
	nulls[2] = isnull ? 'n' : ' ';
	orders_execute_latest(orders_get_keyed_plan(PLAN_SITE_EXISTS, RelationGetRelid(rel),
												"SELECT FROM orders.order_site_selections x"
												" WHERE x.id OPERATOR(pg_catalog.=) $1"
												"    OR (x.order_group_id OPERATOR(pg_catalog.=) $2"
												"        AND x.domain OPERATOR(pg_catalog.=) $3)"
												" LIMIT 1 FOR KEY SHARE",
												3, argtypes),
						  args, nulls, SPI_OK_SELECT);
	return SPI_processed > 0;
}

/*
 * inserted_items_fire — will "Items_of_inserted_sites"
 * (orders.inserted_site_items) fire after this INSERT's rows?  Not in a
 * database updated from before 0.36.0 by its library alone, nor when a DBA
 * disabled it (or set it to fire on replicas only): then site_items makes
 * the item itself, as 0.35.0 did.
 */
static bool
inserted_items_fire(Relation rel)
{
	/* looked up first: a lookup may rebuild the relcache entry and free its triggers */
	Oid			fn = LookupFuncName(list_make2(makeString(ORDERS_SCHEMA), makeString("inserted_site_items")),
									0, NULL, true);
	TriggerDesc *td = rel->trigdesc;

	for (int i = 0; td != NULL && OidIsValid(fn) && i < td->numtriggers; i++)
	{
		Trigger    *t = &td->triggers[i];

		if (t->tgfoid == fn && TRIGGER_FOR_ROW(t->tgtype) && TRIGGER_FOR_AFTER(t->tgtype) &&
			TRIGGER_FOR_INSERT(t->tgtype) && orders_trigger_enabled_now(t))
			return true;
	}
	return false;
}

/*
 * note_pending_item — item "item" of order "order_id" is to be made once
 * the approved site naming it is inserted (orders_inserted_site_items).
 */
static void
note_pending_item(Datum item, Datum order_id, bool hold)
{
	PendingItem *p;
	bool		found;

	if (pending_lxid != MyProc->lxid)
	{
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

		pending_items = orders_delta_hash("orders pending site items", sizeof(PendingItem));
		pending_lxid = MyProc->lxid;
		MemoryContextSwitchTo(old);
	}
	p = hash_search(pending_items, DatumGetUUIDP(item), HASH_ENTER, &found);
	p->order_id = *DatumGetUUIDP(order_id);
	p->hold = hold;
}

/*
 * orders.inserted_site_items() — AFTER INSERT FOR EACH ROW on
 * orders.order_site_selections, as trigger "Items_of_inserted_sites" (its
 * capital letter sorts it before the foreign keys' "RI_ConstraintTrigger_…",
 * whose check of order_item_id then finds the item).  Makes the item
 * site_items named in an approved site's row, now that the row is
 * inserted: an INSERT … ON CONFLICT that goes to its conflict action
 * inserts no row and fires no AFTER INSERT trigger, so it makes no item
 * (0.35.0 made it in the BEFORE trigger and looked for a conflicting site
 * first; a concurrent insert of the same site committed after that look
 * left an item behind, never linked, in the order's subtotal).  The item's
 * snapshot is the row as stored.
 */
Datum
orders_inserted_site_items(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = orders_trigger_data(fcinfo, "inserted_site_items",
												ORDERS_TRIG_AFTER | ORDERS_TRIG_ROW | ORDERS_TRIG_INSERT);
	Relation	rel = trigdata->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	HeapTuple	row = trigdata->tg_trigtuple;
	Datum		item;
	PendingItem *p;
	PendingItem pending;
	OrdersSavedUser saved;
	bool		isnull;

	if (pending_items == NULL || pending_lxid != MyProc->lxid)
		return PointerGetDatum(NULL);
	item = heap_getattr(row, orders_typed_column(rel, "order_item_id", UUIDOID), desc, &isnull);
	if (isnull || (p = hash_search(pending_items, DatumGetUUIDP(item), HASH_FIND, NULL)) == NULL)
		return PointerGetDatum(NULL);
	pending = *p;
	hash_search(pending_items, DatumGetUUIDP(item), HASH_REMOVE, NULL);
	orders_spi_connect_as_owner(rel->rd_id, &saved);
	make_item(row, desc, item, UUIDPGetDatum(&pending.order_id), pending.hold);
	orders_spi_finish_as(&saved);
	return PointerGetDatum(NULL);
}

/*
 * orders.site_items() — BEFORE INSERT OR UPDATE OF status OR DELETE ... FOR
 * EACH ROW on orders.order_site_selections.  Guarantees that a site is
 * approved or taken back only while its order is unpaid and open (OR073),
 * that an approved site links its item (made here when it has none; for a
 * row being inserted, named here and made once the row is inserted:
 * orders_inserted_site_items) and
 * that a site no longer approved links none (orders.site_counts deletes the
 * item at the end of the statement).  Rows pg_restore loads pass as dumped.
 */
Datum
orders_site_items(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = orders_trigger_data(fcinfo, "site_items",
												ORDERS_TRIG_BEFORE | ORDERS_TRIG_ROW |
												ORDERS_TRIG_INSERT | ORDERS_TRIG_UPDATE |
												ORDERS_TRIG_DELETE);
	Relation	rel = trigdata->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	int			status_att = orders_typed_column(rel, "status", TEXTOID);
	int			item_att = orders_typed_column(rel, "order_item_id", UUIDOID);
	HeapTuple	oldrow = NULL;
	HeapTuple	newrow = NULL;
	HeapTuple	row;
	bool		approving,
				unapproving,
				making,
				deferred,
				isnull;
	Datum		item = (Datum) 0;
	Datum		order_id;
	Datum		group_id;
	OrdersSavedUser saved;
	MemoryContext trigger_cxt = CurrentMemoryContext;

	/* rows pg_restore loads are as they were dumped, their items with them */
	if (orders_owner_restoring(rel))
		return orders_trigger_result(trigdata, NULL);
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		oldrow = trigdata->tg_trigtuple;
		newrow = trigdata->tg_newtuple;
	}
	else if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		newrow = trigdata->tg_trigtuple;
	else
		oldrow = trigdata->tg_trigtuple;

	approving = newrow != NULL && is_approved(newrow, desc, status_att) &&
		(oldrow == NULL || !is_approved(oldrow, desc, status_att));
	unapproving = oldrow != NULL && is_approved(oldrow, desc, status_att) &&
		(newrow == NULL || !is_approved(newrow, desc, status_att));
	making = newrow != NULL && is_approved(newrow, desc, status_att) &&
		(heap_getattr(newrow, item_att, desc, &isnull), isnull);
	if (!approving && !unapproving && !making)
		return orders_trigger_result(trigdata, NULL);

	row = newrow != NULL ? newrow : oldrow;
	/*
	 * a row without a group is refused by its NOT NULL after the BEFORE
	 * triggers (0.37.0 library: its NULL was looked up as a uuid — a
	 * customer's INSERT of an approved site without a group crashed the
	 * server)
	 */
	group_id = heap_getattr(row, orders_typed_column(rel, "order_group_id", UUIDOID), desc, &isnull);
	if (isnull)
		return orders_trigger_result(trigdata, NULL);
	/* the relcache's triggers read before SPI (a lookup may rebuild them) */
	deferred = oldrow == NULL && making && inserted_items_fire(rel);
	orders_spi_connect_as_owner(rel->rd_id, &saved);
	if (oldrow == NULL && inserted_site_exists(rel, newrow, desc))
	{
		orders_spi_finish_as(&saved);
		return orders_trigger_result(trigdata, NULL);
	}
	if (site_order(group_id, approving || unapproving, approving,
				   SPI_getvalue(row, desc, orders_fnumber(desc, "domain")), &order_id) && making)
	{
		bool		hold = site_counts_fires(rel, trigdata->tg_event);

		/* the id outside SPI's memory: the row below takes it after SPI_finish */
		MemoryContext spi = MemoryContextSwitchTo(trigger_cxt);

		item = orders_make_id(GetCurrentTimestamp());
		MemoryContextSwitchTo(spi);
		if (deferred)
			note_pending_item(item, order_id, hold);
		else
			make_item(newrow, desc, item, order_id, hold);
	}
	orders_spi_finish_as(&saved);

	if (newrow == NULL || (!unapproving && item == (Datum) 0))
		return orders_trigger_result(trigdata, NULL);
	isnull = (item == (Datum) 0);
	return orders_trigger_result(trigdata,
								 heap_modify_tuple_by_cols(newrow, desc, 1, &item_att, &item, &isnull));
}

/*
 * orders.group_sites_stay() — BEFORE DELETE OR UPDATE OF order_id FOR EACH
 * ROW on orders.order_groups (0.28.0).  Guarantees that a client group
 * stays with its order (its approved sites' items are that order's: OR074
 * for a move) and that deleting one takes no approved site (and so no
 * item) from an order that is paid or closed (OR073), as deleting its
 * sites one by one does not: the sites go by the group's foreign-key
 * cascade, once the group row is gone and site_items no longer finds their
 * order.  A group with approved sites locks its order as the owner, FOR NO
 * KEY UPDATE as a review does (the items' cascade writes its subtotal
 * next): a payment or cancellation under way is waited for, and waits.  A
 * group going with its order (the order deleted) passes.
 */
Datum
orders_group_sites_stay(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = orders_trigger_data(fcinfo, "group_sites_stay",
												ORDERS_TRIG_BEFORE | ORDERS_TRIG_ROW |
												ORDERS_TRIG_DELETE | ORDERS_TRIG_UPDATE);
	static Oid	argtypes[2] = {UUIDOID, UUIDOID};
	Relation	rel = trigdata->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	HeapTuple	group = trigdata->tg_trigtuple;
	int			order_att = orders_typed_column(rel, "order_id", UUIDOID);
	OrdersSavedUser saved;
	SPIPlanPtr	plan;
	Datum		args[2];
	bool		order_null,
				id_null;

	args[0] = heap_getattr(group, order_att, desc, &order_null);
	args[1] = heap_getattr(group, orders_typed_column(rel, "id", UUIDOID), desc, &id_null);
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		bool		new_null;
		Datum		new_order = heap_getattr(trigdata->tg_newtuple, order_att, desc, &new_null);

		if (order_null != new_null ||
			(!order_null && memcmp(DatumGetUUIDP(args[0]), DatumGetUUIDP(new_order), sizeof(pg_uuid_t)) != 0))
			ereport(ERROR,
					(errcode(ERRCODE_ORDERS_GROUP_MOVED),
					 errmsg("client group %s stays with its order",
							id_null ? "(no id)" : DatumGetCString(DirectFunctionCall1(uuid_out, args[1]))),
					 errdetail("Its approved sites' items are that order's."),
					 errhint("Make a new group for the other order.")));
		return orders_trigger_result(trigdata, trigdata->tg_newtuple);
	}
	if (order_null || id_null)
		return orders_trigger_result(trigdata, group);
	orders_spi_connect_as_owner(orders_relid("orders"), &saved);
	plan = orders_get_keyed_plan(PLAN_GROUP_SITES_STAY, orders_relid("order_site_selections"),
								 "SELECT o.id, o.order_number, o.status, o.paid_at IS NOT NULL, o.lifecycle, x.domain"
								 "  FROM orders.orders o,"
								 "       LATERAL (SELECT x.domain FROM orders.order_site_selections x"
								 "                 WHERE x.order_group_id OPERATOR(pg_catalog.=) $2"
								 "                   AND x.status OPERATOR(pg_catalog.=) 'approved'"
								 "                 ORDER BY x.domain LIMIT 1) x"
								 " WHERE o.id OPERATOR(pg_catalog.=) $1 FOR NO KEY UPDATE OF o",
								 2, argtypes);
	orders_execute(plan, args, NULL, false, 1, SPI_OK_SELECT);
	if (SPI_processed > 0)
		refuse_if_final_row(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, false,
							SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 6));
	orders_spi_finish_as(&saved);
	return orders_trigger_result(trigdata, group);
}

/* column_differs — orders_column_changed for column "name" of "rel" (false when it has none). */
static bool
column_differs(Relation rel, HeapTuple oldrow, HeapTuple newrow, const char *name)
{
	int			att = orders_fnumber(RelationGetDescr(rel), name);

	return att > 0 && orders_column_changed(oldrow, newrow, RelationGetDescr(rel), att);
}

/*
 * snapshot_site — the value of key site_selection_id of the jsonb document
 * "doc" (into "buf"), NULL when it has none or is no object: BEFORE
 * triggers see a row before its CHECK constraints, and the key of an array
 * would be looked for among its elements as if they were pairs, past its
 * end (0.37.0 library: a customer's array of 100,000 elements crashed the
 * server).
 */
static JsonbValue *
snapshot_site(Datum doc, JsonbValue *buf)
{
	Jsonb	   *jb = DatumGetJsonbP(doc);

	if (!JB_ROOT_IS_OBJECT(jb))
		return NULL;
	return getKeyJsonValueFromContainer(&jb->root, "site_selection_id", 17, buf);
}

/*
 * site_named_differently — does the new row's snapshot name another site
 * (site_selection_id) than the old row's, or none?
 */
static bool
site_named_differently(Relation rel, HeapTuple oldrow, HeapTuple newrow)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			att = orders_fnumber(desc, "snapshot");
	bool		old_null;
	bool		new_null;
	Datum		o,
				n;
	JsonbValue	obuf;
	JsonbValue	nbuf;
	JsonbValue *ov;
	JsonbValue *nv;

	if (att <= 0 || getBaseType(TupleDescAttr(desc, att - 1)->atttypid) != JSONBOID)
		return false;
	o = heap_getattr(oldrow, att, desc, &old_null);
	n = heap_getattr(newrow, att, desc, &new_null);
	if (old_null)
		return false;
	if (new_null)
		return true;
	ov = snapshot_site(o, &obuf);
	nv = snapshot_site(n, &nbuf);
	if (ov == NULL || nv == NULL)
		return ov != nv;
	return ov->type != jbvString || nv->type != jbvString ||
		ov->val.string.len != nv->val.string.len ||
		memcmp(ov->val.string.val, nv->val.string.val, ov->val.string.len) != 0;
}

/*
 * orders.site_item_guard() — BEFORE DELETE OR UPDATE OF order_id,
 * unit_price, quantity, snapshot ON orders.order_items FOR EACH ROW, WHEN
 * the item was made for a site (its snapshot names one) (0.35.0).
 * Guarantees, for everybody, that an approved site's item goes only with
 * the site's approval: it is not deleted but by taking the site back,
 * deleting the site or its group (site_counts deletes it then) or with its
 * order, it stays with its order, and its snapshot keeps naming its site
 * (OR078); and that once its order is paid or closed its price and
 * quantity stay (OR073), judged on the order locked FOR NO KEY UPDATE.  Before, staff (and the
 * owner) deleted such an item from a paid order — the site stayed
 * approved without it, the total fell — or moved it to another order.
 * The site is read as the owner with the latest snapshot: a byte-equal
 * value written again passes.
 */
Datum
orders_site_item_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = orders_trigger_data(fcinfo, "site_item_guard",
												ORDERS_TRIG_BEFORE | ORDERS_TRIG_ROW |
												ORDERS_TRIG_DELETE | ORDERS_TRIG_UPDATE);
	static Oid	argtypes[1] = {UUIDOID};
	Relation	rel = trigdata->tg_relation;
	HeapTuple	oldrow = trigdata->tg_trigtuple;
	bool		updating = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event);
	HeapTuple	result = updating ? trigdata->tg_newtuple : oldrow;
	bool		moved;
	bool		isnull;
	Datum		args[1];
	OrdersSavedUser saved;
	OrdersLockedOrder o;
	SPITupleTable *t;
	const char *domain;

	args[0] = heap_getattr(oldrow, orders_typed_column(rel, "id", UUIDOID), RelationGetDescr(rel), &isnull);
	if (isnull ||
		(ndeleting_items > 0 &&
		 bsearch(DatumGetUUIDP(args[0]), deleting_items, ndeleting_items, sizeof(pg_uuid_t), cmp_uuid) != NULL))
		return orders_trigger_result(trigdata, result);
	moved = !updating || column_differs(rel, oldrow, result, "order_id") ||
		site_named_differently(rel, oldrow, result);
	if (!moved && !column_differs(rel, oldrow, result, "unit_price") &&
		!column_differs(rel, oldrow, result, "quantity"))
		return orders_trigger_result(trigdata, result);
	orders_spi_connect_as_owner(orders_relid("order_site_selections"), &saved);

	/*
	 * The order locked as its subtotal's write will lock it: a payment
	 * under way is waited for, and its order judged as paid (review: a
	 * price changed while the payment committed stood on the paid order)
	 */
	orders_execute_latest(orders_get_keyed_plan(PLAN_SITE_ITEM_GUARD, orders_relid("order_site_selections"),
												"SELECT x.domain, o.order_number, o.status, o.paid_at IS NOT NULL, o.lifecycle"
												"  FROM orders.order_site_selections x"
												"  JOIN orders.order_groups g ON g.id OPERATOR(pg_catalog.=) x.order_group_id"
												"  JOIN orders.orders o ON o.id OPERATOR(pg_catalog.=) g.order_id"
												" WHERE x.order_item_id OPERATOR(pg_catalog.=) $1"
												"   AND x.status OPERATOR(pg_catalog.=) 'approved'"
												" FOR NO KEY UPDATE OF o",
												1, argtypes),
						  args, NULL, SPI_OK_SELECT);
	/* no approved site links it, or its order is gone (the order's cascade) */
	if (SPI_processed == 0)
	{
		orders_spi_finish_as(&saved);
		return orders_trigger_result(trigdata, result);
	}
	t = SPI_tuptable;
	domain = SPI_getvalue(t->vals[0], t->tupdesc, 1);
	if (moved)
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_SITE_ITEM),
				 errmsg("order item %s is the item of approved site %s of order \"%s\": it goes with the site's approval",
						DatumGetCString(DirectFunctionCall1(uuid_out, args[0])), domain,
						SPI_getvalue(t->vals[0], t->tupdesc, 2)),
				 errdetail(updating ? "It stays with its order, and its snapshot keeps naming its site."
						   : "Deleted, the site would stay approved without its item."),
				 errhint("Take the site back (orders.review_sites) to remove its item.")));
	o = order_of_row(t->vals[0], t->tupdesc);
	if (!orders_locked_order_open(&o))
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_SITES_FINAL),
				 errmsg("order \"%s\" is %s: the item of approved site %s keeps its price and quantity",
						o.number, final_state(&o), domain),
				 errhint("Once the order is paid its sites are final.")));
	orders_spi_finish_as(&saved);
	return orders_trigger_result(trigdata, result);
}

/* What a statement did to one site: its row before and after. */
typedef struct SiteState
{
	pg_uuid_t	site;			/* hash key */
	bool		had_old;
	bool		old_approved;
	bool		old_linked;
	pg_uuid_t	old_item;
	bool		had_new;
	bool		new_approved;
	bool		new_linked;
	pg_uuid_t	new_item;
	pg_uuid_t	group_id;
	char	   *domain;
} SiteState;

/*
 * A group whose sites the statement approved or took back (the first of
 * each), or, in a customer's statement, changed at all.
 */
typedef struct GroupChange
{
	pg_uuid_t	group_id;		/* hash key */
	char	   *approved;		/* domain of a site approved, or NULL */
	char	   *taken_back;		/* domain of a site taken back, or NULL */
	bool		final_judged;	/* OR073 judged already (the review's locked group) */
} GroupChange;

/* The same of an order: what its groups' changes ask its judge. */
typedef struct OrderChange
{
	pg_uuid_t	order_id;		/* hash key */
	char	   *approved;
	char	   *taken_back;
} OrderChange;

/* What judge_site_order judges with. */
typedef struct SiteOrderJudge
{
	HTAB	   *orders;			/* OrderChange by order id */
	const OrdersEditJudge *customer;	/* a customer's statement, or NULL */
} SiteOrderJudge;

typedef struct SiteFold
{
	HTAB	   *sites;
	int			id_att;
	int			group_att;
	int			status_att;
	int			domain_att;
	int			item_att;
} SiteFold;

/* fold_state — a row, old ("sign" < 0) or new, into its site's state. */
static void
fold_state(TupleTableSlot *slot, int sign, void *arg)
{
	SiteFold   *f = (SiteFold *) arg;
	bool		isnull;
	Datum		status = slot_getattr(slot, f->status_att, &isnull);
	bool		approved = false;
	Datum		item;
	bool		linked;
	SiteState  *st;
	bool		found;

	if (!isnull)
	{
		text	   *t = DatumGetTextPP(status);

		approved = VARSIZE_ANY_EXHDR(t) == 8 && memcmp(VARDATA_ANY(t), "approved", 8) == 0;
	}
	item = slot_getattr(slot, f->item_att, &isnull);
	linked = !isnull;
	st = (SiteState *) hash_search(f->sites, DatumGetUUIDP(slot_getattr(slot, f->id_att, &isnull)),
								   HASH_ENTER, &found);
	if (!found)
	{
		st->had_old = st->had_new = false;
		st->group_id = *DatumGetUUIDP(slot_getattr(slot, f->group_att, &isnull));
		st->domain = NULL;
	}
	if (approved && st->domain == NULL)
		st->domain = TextDatumGetCString(slot_getattr(slot, f->domain_att, &isnull));
	if (sign < 0)
	{
		st->had_old = true;
		st->old_approved = approved;
		st->old_linked = linked;
		if (linked)
			st->old_item = *DatumGetUUIDP(item);
	}
	else
	{
		st->had_new = true;
		st->new_approved = approved;
		st->new_linked = linked;
		if (linked)
			st->new_item = *DatumGetUUIDP(item);
	}
}

/*
 * judge_site_order — recheck_orders' judge of a locked order: OR073 when
 * its sites were approved or taken back and it is paid or closed; a
 * customer's statement's, orders_customer_open (42501).
 */
static void
judge_site_order(const OrdersLockedOrder *o, void *arg)
{
	const SiteOrderJudge *j = (const SiteOrderJudge *) arg;
	const OrderChange *c = hash_search(j->orders, DatumGetUUIDP(o->id), HASH_FIND, NULL);

	if (c != NULL && (c->approved != NULL || c->taken_back != NULL))
		refuse_if_final(o, c->approved != NULL, c->approved != NULL ? c->approved : c->taken_back);
	if (j->customer != NULL)
		orders_customer_open(o, (void *) j->customer);
}

/*
 * recheck_orders — lock the orders of the groups in which the statement
 * approved or took back sites (in id order) and refuse with OR073 when one
 * of them is paid or closed by now.  site_items checked it when the row was
 * written, but the order is locked only now: a payment that committed
 * meanwhile (while this review waited for its group) must still stop it.
 * A customer's statement ("customer" non-NULL: orders_customer_statement)
 * locks the orders of every group it touched, in the same one pass, and
 * each must still be the caller's, open and unpaid (orders_customer_open,
 * 42501): the policies judged the sites with the statement's snapshot, so
 * a verdict that makes no item (a suggested site rejected) landed in an
 * order paid meanwhile.  One pass, in id order, after the groups: the
 * lock order of every writer of sites (orders_judge_orders).  As the
 * owner, connected to SPI.
 */
static void
recheck_orders(HTAB *sites, const pg_uuid_t *locked_group, const OrdersEditJudge *customer)
{
	static Oid	argtypes[1] = {UUIDARRAYOID};
	HTAB	   *groups = orders_delta_hash("orders groups reviewed", sizeof(GroupChange));
	HASH_SEQ_STATUS seq;
	SiteState  *st;
	GroupChange *g;
	Datum	   *ids;
	int			n = 0;
	Datum		args[1];
	SPIPlanPtr	plan;
	SiteOrderJudge judge = {orders_delta_hash("orders of reviewed groups", sizeof(OrderChange)), customer};
	void	  **sorted;
	long		norders;

	hash_seq_init(&seq, sites);
	while ((st = (SiteState *) hash_seq_search(&seq)) != NULL)
	{
		bool		approving = st->had_new && st->new_approved && !(st->had_old && st->old_approved);
		bool		taking_back = st->had_old && st->old_approved && !(st->had_new && st->new_approved);
		bool		judged = locked_group != NULL && memcmp(&st->group_id, locked_group, sizeof(pg_uuid_t)) == 0;
		bool		found;

		if (customer == NULL && (judged || (!approving && !taking_back)))
			continue;
		g = (GroupChange *) hash_search(groups, &st->group_id, HASH_ENTER, &found);
		if (!found)
		{
			g->approved = g->taken_back = NULL;
			g->final_judged = judged;
		}
		if (approving && g->approved == NULL)
			g->approved = st->domain;
		if (taking_back && g->taken_back == NULL)
			g->taken_back = st->domain;
	}
	if (hash_get_num_entries(groups) == 0)
		return;

	/* the groups' orders (a group never changes its order: OR074) */
	ids = palloc(sizeof(Datum) * hash_get_num_entries(groups));
	hash_seq_init(&seq, groups);
	while ((g = (GroupChange *) hash_seq_search(&seq)) != NULL)
		ids[n++] = UUIDPGetDatum(&g->group_id);
	args[0] = PointerGetDatum(construct_array(ids, n, UUIDOID, sizeof(pg_uuid_t), false, TYPALIGN_CHAR));
	plan = orders_get_keyed_plan(PLAN_SITE_GROUP_ORDERS, orders_relid("order_groups"),
								 "SELECT g.id, g.order_id FROM orders.order_groups g"
								 " WHERE g.id OPERATOR(pg_catalog.=) ANY ($1)",
								 1, argtypes);
	/* the latest snapshot after a command counter increment: a group this statement made is seen */
	orders_execute_latest(plan, args, NULL, SPI_OK_SELECT);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		Datum		order_id = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull);
		OrderChange *c;
		bool		found;

		g = (GroupChange *) hash_search(groups,
										DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull)),
										HASH_FIND, NULL);
		if (isnull || g == NULL)
			continue;
		c = (OrderChange *) hash_search(judge.orders, DatumGetUUIDP(order_id), HASH_ENTER, &found);
		if (!found)
			c->approved = c->taken_back = NULL;
		if (g->final_judged)
			continue;			/* judged under the review's own lock of this order */
		if (c->approved == NULL)
			c->approved = g->approved;
		if (c->taken_back == NULL)
			c->taken_back = g->taken_back;
	}
	sorted = orders_sorted_deltas(judge.orders, NULL, &norders);
	orders_judge_orders(sorted, norders, judge_site_order, &judge, true);
}

/*
 * delete_unlinked_items — one DELETE of the items the statement's sites no
 * longer link (a site taken back or deleted, or linked to another item), as
 * the row trigger site_items_gone did per row before 0.17.0; their subtotal
 * deltas are held, for site_counts to write with the others right after.
 */
static void
delete_unlinked_items(HTAB *sites)
{
	static Oid	argtypes[1] = {UUIDARRAYOID};
	HASH_SEQ_STATUS seq;
	SiteState  *st;
	Datum	   *gone = palloc(sizeof(Datum) * Max(hash_get_num_entries(sites), 1));
	int			n = 0;
	Datum		args[1];
	SPIPlanPtr	plan;

	pg_uuid_t  *ids = palloc(sizeof(pg_uuid_t) * Max(hash_get_num_entries(sites), 1));
	pg_uuid_t  *was_deleting = deleting_items;
	int			was_ndeleting = ndeleting_items;

	hash_seq_init(&seq, sites);
	while ((st = (SiteState *) hash_seq_search(&seq)) != NULL)
		if (st->had_old && st->old_linked &&
			!(st->had_new && st->new_linked && memcmp(&st->new_item, &st->old_item, sizeof(pg_uuid_t)) == 0))
		{
			ids[n] = st->old_item;
			gone[n] = UUIDPGetDatum(&st->old_item);
			n++;
		}
	if (n == 0)
		return;
	qsort(ids, n, sizeof(pg_uuid_t), cmp_uuid);
	args[0] = PointerGetDatum(construct_array(gone, n, UUIDOID, sizeof(pg_uuid_t), false, TYPALIGN_CHAR));
	plan = orders_get_keyed_plan(PLAN_SITE_ITEMS_DELETE, orders_relid("order_items"),
						         "DELETE FROM orders.order_items WHERE id OPERATOR(pg_catalog.=) ANY ($1)",
						         1, argtypes);
	deleting_items = ids;
	ndeleting_items = n;
	PG_TRY();
	{
		orders_execute_writing(plan, args, NULL, SPI_OK_DELETE, &orders_hold_subtotals, NULL);
	}
	PG_FINALLY();
	{
		deleting_items = was_deleting;
		ndeleting_items = was_ndeleting;
	}
	PG_END_TRY();
}

/*
 * orders_end_site_statement — for orders.site_counts(), connected to SPI as
 * the owner, once the group counters are written: one pass over the
 * statement's sites, then the orders of its approvals and takings back
 * locked and checked again (OR073) — with a customer's statement
 * ("customer" non-NULL), the orders of every site it touched, judged as
 * the customer's too (recheck_orders) — then the items of sites no longer
 * approved deleted.  Like site_items, only for statements that set the
 * status (or insert or delete) or a customer's, and not for rows
 * pg_restore loads.
 */
void
orders_end_site_statement(TriggerData *trigdata, const pg_uuid_t *locked_group,
						  const OrdersEditJudge *customer)
{
	Relation	rel = trigdata->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	SiteFold	f;
	bool		verdicts;
	HASHCTL		ctl;

	f.status_att = orders_typed_column(rel, "status", TEXTOID);
	verdicts = !TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ||
		bms_is_member(f.status_att - FirstLowInvalidHeapAttributeNumber, trigdata->tg_updatedcols);
	if (orders_owner_restoring(rel) || (!verdicts && customer == NULL))
		return;
	f.id_att = orders_typed_column(rel, "id", UUIDOID);
	f.group_att = orders_typed_column(rel, "order_group_id", UUIDOID);
	f.domain_att = orders_typed_column(rel, "domain", TEXTOID);
	f.item_att = orders_typed_column(rel, "order_item_id", UUIDOID);
	ctl.keysize = sizeof(pg_uuid_t);
	ctl.entrysize = sizeof(SiteState);
	ctl.hcxt = CurrentMemoryContext;
	f.sites = hash_create("orders sites of a statement", 16, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	if (trigdata->tg_oldtable)
		orders_for_each_row(trigdata->tg_oldtable, desc, -1, fold_state, &f);
	if (trigdata->tg_newtable)
		orders_for_each_row(trigdata->tg_newtable, desc, +1, fold_state, &f);
	recheck_orders(f.sites, locked_group, customer);
	if (verdicts)
		delete_unlinked_items(f.sites);
}
