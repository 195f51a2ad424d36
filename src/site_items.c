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
 *   orders_sync_site_items()  called by orders.site_counts() after it
 *                             wrote the group counters: one DELETE of the
 *                             items the statement's sites no longer link (an
 *                             item cannot go while the site row still links
 *                             it, i.e. before its UPDATE).
 *
 * Lock order (doc/review.md, "Concurrency"): the order's subtotal is written
 * last, after the group's counters.  The subtotal deltas of the items made
 * here are held (orders_hold_subtotals, order_money.c) and written by
 * site_counts with those of the items it deletes, one UPDATE per order —
 * unless site_counts will not fire (a DBA disabled it): then at once.
 *
 * Both work as the owner: the item follows whoever changes the site, also a
 * client who may not write items.  The order's subtotal follows through the
 * items' own trigger (orders.subtotal_on_items).
 */
#include "orders.h"

#include "access/htup_details.h"
#include "access/sysattr.h"
#include "catalog/pg_type.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "executor/tuptable.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(orders_site_items);

/*
 * site_order — the order of the site's group (false when the group is
 * gone), read as the owner (the caller may not see the order's payment);
 * refuses with OR073 when "changing" (approving or taking back) a site of an
 * order that is paid or closed: its approved sites are final.  The caller
 * is connected to SPI as the owner.
 */
static bool
site_order(Datum group_id, bool changing, bool approving, const char *domain, Datum *order_id)
{
	static Oid	argtypes[1] = {UUIDOID};
	SPIPlanPtr	plan = orders_get_plan(PLAN_SITE_ORDER, orders_relid("order_groups"),
									   "SELECT o.id, o.order_number, o.status, o.paid_at IS NOT NULL, o.lifecycle"
									   "  FROM orders.order_groups g"
									   "  JOIN orders.orders o ON o.id OPERATOR(pg_catalog.=) g.order_id"
									   " WHERE g.id OPERATOR(pg_catalog.=) $1",
									   1, argtypes);
	HeapTuple	row;
	TupleDesc	desc;
	bool		paid,
				isnull;
	char	   *status;
	const LifecycleState *st;

	orders_execute(plan, &group_id, NULL, true, 1, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return false;
	row = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	*order_id = SPI_getbinval(row, desc, 1, &isnull);
	status = SPI_getvalue(row, desc, 3);
	paid = DatumGetBool(SPI_getbinval(row, desc, 4, &isnull));
	st = lifecycle_find_state(SPI_getvalue(row, desc, 5), status);
	if (changing && (paid || (st != NULL && st->category != CATEGORY_OPEN)))
	{
		if (approving)
			ereport(ERROR,
					(errcode(ERRCODE_ORDERS_SITES_FINAL),
					 errmsg("order \"%s\" is %s: site %s cannot be approved any more",
							SPI_getvalue(row, desc, 2), paid ? "paid" : status, domain),
					 errhint("Once the order is paid its sites are final; start a new order for more.")));
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_SITES_FINAL),
				 errmsg("order \"%s\" is %s: approved site %s stays",
						SPI_getvalue(row, desc, 2), paid ? "paid" : status, domain),
				 errhint("Approved sites become items; once the order is paid they are no longer taken back.")));
	}
	return true;
}

/*
 * make_item — the item of an approved site of order "order_id": a service
 * named by the domain, priced by metrics.price (else 0), its snapshot the
 * site as approved.  Returns its id.  Connected to SPI as the owner.
 */
static Datum
make_item(HeapTuple row, TupleDesc desc, Datum order_id)
{
	static const char *const columns[] = {"id", "order_group_id", "domain", "domain_id", "metrics",
	"target_page_url", "anchor_text", "reviewed_by"};
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

	args[0] = orders_make_id(GetCurrentTimestamp());
	nulls[0] = ' ';
	args[1] = order_id;
	nulls[1] = ' ';
	for (int i = 0; i < (int) lengthof(columns); i++)
	{
		bool		isnull;

		args[i + 2] = heap_getattr(row, SPI_fnumber(desc, columns[i]), desc, &isnull);
		nulls[i + 2] = isnull ? 'n' : ' ';
	}
	orders_execute(plan, args, nulls, false, 0, SPI_OK_INSERT);
	return args[0];
}

/*
 * site_counts_fires — will orders.site_counts() fire at the end of this
 * statement ("event": INSERT or UPDATE) on the sites?  Not when a DBA
 * disabled it, or set it to fire on replicas only.  Only then may the
 * subtotal of the items made here wait for it.
 */
static bool
site_counts_fires(Relation rel, TriggerEvent event)
{
	TriggerDesc *td = rel->trigdesc;
	Oid			fn = LookupFuncName(list_make2(makeString(ORDERS_SCHEMA), makeString("site_counts")),
									0, NULL, true);

	if (td == NULL || !OidIsValid(fn))
		return false;
	for (int i = 0; i < td->numtriggers; i++)
	{
		Trigger    *t = &td->triggers[i];

		if (t->tgfoid != fn || TRIGGER_FOR_ROW(t->tgtype) || !TRIGGER_FOR_AFTER(t->tgtype) ||
			t->tgenabled == TRIGGER_DISABLED)
			continue;
		if (SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA
			? t->tgenabled == TRIGGER_FIRES_ON_ORIGIN
			: t->tgenabled == TRIGGER_FIRES_ON_REPLICA)
			continue;
		if ((TRIGGER_FIRED_BY_INSERT(event) && TRIGGER_FOR_INSERT(t->tgtype)) ||
			(TRIGGER_FIRED_BY_UPDATE(event) && TRIGGER_FOR_UPDATE(t->tgtype)))
			return true;
	}
	return false;
}

/*
 * make_item_holding — make_item with the order's subtotal held for
 * orders.site_counts when "hold", else moved at once; the flag is reset
 * also on error.
 */
static Datum
make_item_holding(bool hold, HeapTuple row, TupleDesc desc, Datum order_id)
{
	Datum		item;

	orders_hold_subtotals = hold;
	PG_TRY();
	{
		item = make_item(row, desc, order_id);
	}
	PG_FINALLY();
	{
		orders_hold_subtotals = false;
	}
	PG_END_TRY();
	return item;
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
 * orders.site_items() — BEFORE INSERT OR UPDATE OF status OR DELETE ... FOR
 * EACH ROW on orders.order_site_selections.  Guarantees that a site is
 * approved or taken back only while its order is unpaid and open (OR073),
 * that an approved site links its item (made here when it has none) and
 * that a site no longer approved links none (orders.site_counts deletes the
 * item at the end of the statement).
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
	int			status_att = SPI_fnumber(desc, "status");
	int			item_att = SPI_fnumber(desc, "order_item_id");
	HeapTuple	oldrow = NULL;
	HeapTuple	newrow = NULL;
	HeapTuple	row;
	bool		approving,
				unapproving,
				making,
				isnull;
	Datum		item = (Datum) 0;
	Datum		order_id;
	OrdersSavedUser saved;

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
	orders_spi_connect_as_owner(rel->rd_id, &saved);
	if (site_order(heap_getattr(row, SPI_fnumber(desc, "order_group_id"), desc, &isnull),
				   approving || unapproving, approving,
				   SPI_getvalue(row, desc, SPI_fnumber(desc, "domain")), &order_id) && making)
		item = make_item_holding(site_counts_fires(rel, trigdata->tg_event), newrow, desc, order_id);
	orders_spi_finish_as(&saved);

	if (newrow == NULL || (!unapproving && item == (Datum) 0))
		return orders_trigger_result(trigdata, NULL);
	isnull = (item == (Datum) 0);
	return orders_trigger_result(trigdata,
								 heap_modify_tuple_by_cols(newrow, desc, 1, &item_att, &item, &isnull));
}

/* What the fold of the statement's rows collects. */
typedef struct ItemFold
{
	HTAB	   *old_links;		/* site id -> the item its old row linked */
	int			id_att;
	int			item_att;
} ItemFold;

typedef struct OldLink
{
	pg_uuid_t	site;			/* hash key */
	pg_uuid_t	item;
	bool		kept;			/* the new row links the same item */
} OldLink;

/* fold_old — remember the item each old row linked. */
static void
fold_old(TupleTableSlot *slot, int sign, void *arg)
{
	ItemFold   *f = (ItemFold *) arg;
	bool		isnull;
	Datum		item = slot_getattr(slot, f->item_att, &isnull);
	OldLink    *link;

	(void) sign;
	if (isnull)
		return;
	link = (OldLink *) hash_search(f->old_links, DatumGetUUIDP(slot_getattr(slot, f->id_att, &isnull)),
								   HASH_ENTER, NULL);
	link->item = *DatumGetUUIDP(item);
	link->kept = false;
}

/* fold_new — a new row that links the same item as its old row keeps it. */
static void
fold_new(TupleTableSlot *slot, int sign, void *arg)
{
	ItemFold   *f = (ItemFold *) arg;
	bool		isnull;
	Datum		item = slot_getattr(slot, f->item_att, &isnull);
	OldLink    *link;

	(void) sign;
	if (isnull)
		return;
	link = (OldLink *) hash_search(f->old_links, DatumGetUUIDP(slot_getattr(slot, f->id_att, &isnull)),
								   HASH_FIND, NULL);
	if (link != NULL && memcmp(&link->item, DatumGetUUIDP(item), sizeof(pg_uuid_t)) == 0)
		link->kept = true;
}

/*
 * orders_sync_site_items — for orders.site_counts(), connected to SPI as
 * the owner: deletes, in one statement, the items the statement's sites no
 * longer link (a site taken back or deleted, or linked to another item), as
 * the row trigger site_items_gone did per row before 0.17.0.  Like that
 * trigger, only for statements that set the status (or delete).
 */
void
orders_sync_site_items(TriggerData *trigdata)
{
	static Oid	argtypes[1] = {UUIDARRAYOID};
	TupleDesc	desc = RelationGetDescr(trigdata->tg_relation);
	ItemFold	f;
	HASHCTL		ctl;
	HASH_SEQ_STATUS seq;
	OldLink    *link;
	Datum	   *gone;
	int			n = 0;
	Datum		args[1];
	SPIPlanPtr	plan;

	if (trigdata->tg_oldtable == NULL ||
		(TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) &&
		 !bms_is_member(SPI_fnumber(desc, "status") - FirstLowInvalidHeapAttributeNumber,
						trigdata->tg_updatedcols)))
		return;

	f.id_att = SPI_fnumber(desc, "id");
	f.item_att = SPI_fnumber(desc, "order_item_id");
	ctl.keysize = sizeof(pg_uuid_t);
	ctl.entrysize = sizeof(OldLink);
	ctl.hcxt = CurrentMemoryContext;
	f.old_links = hash_create("orders site links", 16, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	orders_for_each_row(trigdata->tg_oldtable, desc, -1, fold_old, &f);
	if (hash_get_num_entries(f.old_links) == 0)
		return;
	if (trigdata->tg_newtable)
		orders_for_each_row(trigdata->tg_newtable, desc, +1, fold_new, &f);

	gone = palloc(sizeof(Datum) * hash_get_num_entries(f.old_links));
	hash_seq_init(&seq, f.old_links);
	while ((link = (OldLink *) hash_seq_search(&seq)) != NULL)
		if (!link->kept)
			gone[n++] = UUIDPGetDatum(&link->item);
	if (n == 0)
		return;
	args[0] = PointerGetDatum(construct_array(gone, n, UUIDOID, sizeof(pg_uuid_t), false, TYPALIGN_CHAR));
	plan = orders_get_plan(PLAN_SITE_ITEMS_DELETE, orders_relid("order_items"),
						   "DELETE FROM orders.order_items WHERE id OPERATOR(pg_catalog.=) ANY ($1)",
						   1, argtypes);
	/* their subtotal moves with the held ones, by site_counts right after */
	orders_hold_subtotals = true;
	PG_TRY();
	{
		orders_execute(plan, args, NULL, false, 0, SPI_OK_DELETE);
	}
	PG_FINALLY();
	{
		orders_hold_subtotals = false;
	}
	PG_END_TRY();
}
