/*
 * history.c — the rows of orders.order_history, written for status_audit
 * (transition.c) as the table's owner.
 *
 * While the table is as the extension installed it (history_shape), a row
 * goes in without SQL (orders_direct_insert, direct_write.c): its id from
 * the identity's sequence, created_at the transaction's start as its
 * default now() gives it, its indexes and AFTER row triggers as an INSERT
 * runs them — but for the check of its foreign key to the order, when the
 * change holds the order's row.  An INSERT statement per change started an
 * executor for each (13 % of a status change's CPU, a third of a bulk
 * status UPDATE's).  A table changed otherwise gets an INSERT statement (a
 * kept plan), which the executor serves as any insert.
 */
#include "orders.h"

#include "access/table.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "miscadmin.h"
#include "nodes/primnodes.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

/* The installed columns, in OrdersHistoryRow's order, and their types. */
enum
{
	H_ID, H_ORDER_ID, H_OLD_STATUS, H_NEW_STATUS, H_CHANGED_BY, H_NOTES, H_KEY, H_CREATED_AT, H_ANNOUNCE,
	H_NCOLUMNS
};
static const char *const history_columns[H_NCOLUMNS] = {
	"id", "order_id", "old_status", "new_status", "changed_by", "notes", "idempotency_key", "created_at", "announce"
};
static const Oid history_types[H_NCOLUMNS] = {
	INT8OID, UUIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID, BOOLOID
};

/*
 * What history_shape found for the history table (one per backend),
 * forgotten when its relcache entry is invalidated: a column, default,
 * trigger, constraint or privilege changed.
 */
typedef struct HistoryShape
{
	Oid			relid;			/* InvalidOid: not known */
	bool		direct;			/* rows can go in without SQL */
	int			pos[H_NCOLUMNS];	/* each column's position */
	Oid			id_sequence;	/* the id's identity sequence */
} HistoryShape;

static HistoryShape shape;		/* relid InvalidOid (0): not known */
static bool shape_callback = false;

/* shape_inval — relcache callback: forget the shape of the history table. */
static void
shape_inval(Datum arg, Oid relid)
{
	(void) arg;
	if (relid == InvalidOid || relid == shape.relid)
		shape.relid = InvalidOid;
}

/*
 * history_shape — the shape of the history table "rel" (opened): direct
 * when it is as installed — a plain table of exactly the installed columns
 * (orders_direct_as_installed), id an identity, created_at defaulting to
 * now() (the two columns the INSERT leaves to their defaults), no BEFORE
 * INSERT row trigger (it
 * might skip or change the row whose id status_audit announces), and the
 * owner allowed to INSERT.  Anything else takes the INSERT statement.
 */
static const HistoryShape *
history_shape(Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	uint64		generation = orders_direct_generation();

	if (shape.relid == RelationGetRelid(rel))
		return &shape;
	if (!shape_callback)
	{
		CacheRegisterRelcacheCallback(shape_inval, (Datum) 0);
		shape_callback = true;
	}
	shape.relid = InvalidOid;
	shape.direct = orders_direct_as_installed(rel, history_columns, history_types, H_NCOLUMNS, -1, shape.pos) &&
		!(rel->trigdesc && rel->trigdesc->trig_insert_before_row) &&
		pg_class_aclcheck(RelationGetRelid(rel), GetUserId(), ACL_INSERT) == ACLCHECK_OK &&
		TupleDescAttr(desc, shape.pos[H_ID])->attidentity == ATTRIBUTE_IDENTITY_BY_DEFAULT &&
		orders_direct_default_is(rel, shape.pos[H_CREATED_AT] + 1, F_NOW);
	if (shape.direct)
		shape.id_sequence = getIdentitySequence(RelationGetRelid(rel), shape.pos[H_ID] + 1, false);
	/* used now either way; kept unless an invalidation came meanwhile */
	if (generation == orders_direct_generation())
		shape.relid = RelationGetRelid(rel);
	return &shape;
}

/* has_announce — has the history table "history" the announce column (0.21.0 on)? */
static bool
has_announce(Oid history)
{
	return get_attnum(history, "announce") != InvalidAttrNumber;
}

/* insert_statement — the row by a kept INSERT (a table changed by a DBA). */
static int64
insert_statement(Oid history, const OrdersHistoryRow *h)
{
	static Oid	argtypes[7] = {UUIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, BOOLOID};
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	SPIPlanPtr	plan;
	bool		isnull;
	int64		id;

	values[0] = h->order_id;
	values[1] = CStringGetTextDatum(h->old_status);
	values[2] = CStringGetTextDatum(h->new_status);
	values[3] = CStringGetTextDatum(h->changed_by);
	values[4] = h->notes ? CStringGetTextDatum(h->notes) : (Datum) 0;
	values[5] = h->key ? CStringGetTextDatum(h->key) : (Datum) 0;
	values[6] = BoolGetDatum(h->announce);
	if (!h->notes)
		nulls[4] = 'n';
	if (!h->key)
		nulls[5] = 'n';
	orders_spi_connect();
	if (has_announce(history))
		plan = orders_get_plan(PLAN_HISTORY_INSERT, history,
							   "INSERT INTO orders.order_history"
							   " (order_id, old_status, new_status, changed_by, notes, idempotency_key, announce)"
							   " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
							   7, argtypes);
	else						/* the 0.20.0 schema (library installed, extension not yet updated) */
		plan = orders_get_plan(PLAN_HISTORY_INSERT_V1, history,
							   "INSERT INTO orders.order_history"
							   " (order_id, old_status, new_status, changed_by, notes, idempotency_key)"
							   " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
							   6, argtypes);
	orders_execute(plan, values, nulls, false, 0, SPI_OK_INSERT_RETURNING);
	/* a DBA's BEFORE trigger may have skipped the row: no id */
	id = SPI_processed == 1 ? DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) : 0;
	SPI_finish();
	return id;
}

/*
 * orders_history_has_announce — has the installed history the announce
 * column?  Until the extension is updated, changes cannot be left to the
 * announcer.
 */
bool
orders_history_has_announce(void)
{
	return has_announce(orders_relid("order_history"));
}

/*
 * orders_insert_history — one history row "h", as the owner of the table,
 * in the caller's transaction.  "held_in": the table (orders.orders) of
 * the order's row when this transaction updated that row and has not
 * deleted it (status_audit checks it), else InvalidOid; then the check of
 * the history's foreign key to it would only lock it again — against a
 * delete that cannot come before we commit — and is skipped while it is
 * the table's only row INSERT trigger.  Returns the row's id (0 when
 * a DBA's BEFORE trigger skipped it).
 */
int64
orders_insert_history(const OrdersHistoryRow *h, Oid held_in)
{
	Oid			history = orders_relid("order_history");
	OrdersSavedUser saved;
	Relation	rel;
	const HistoryShape *sh;
	int64		id;

	orders_switch_to_owner(history, &saved);
	rel = table_open(history, RowExclusiveLock);
	sh = history_shape(rel);
	if (sh->direct)
	{
		const int  *pos = sh->pos;
		int			natts = RelationGetDescr(rel)->natts;
		Datum	   *values = palloc0(sizeof(Datum) * natts);
		bool	   *isnull = palloc(sizeof(bool) * natts);
		bool		fk_check = !(OidIsValid(held_in) && orders_direct_fk_only(rel, pos[H_ORDER_ID] + 1, held_in));

		memset(isnull, true, sizeof(bool) * natts);
		id = nextval_internal(sh->id_sequence, false);
		values[pos[H_ID]] = Int64GetDatum(id);
		values[pos[H_ORDER_ID]] = h->order_id;
		values[pos[H_OLD_STATUS]] = CStringGetTextDatum(h->old_status);
		values[pos[H_NEW_STATUS]] = CStringGetTextDatum(h->new_status);
		values[pos[H_CHANGED_BY]] = CStringGetTextDatum(h->changed_by);
		values[pos[H_CREATED_AT]] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
		values[pos[H_ANNOUNCE]] = BoolGetDatum(h->announce);
		isnull[pos[H_ID]] = isnull[pos[H_ORDER_ID]] = isnull[pos[H_OLD_STATUS]] = false;
		isnull[pos[H_NEW_STATUS]] = isnull[pos[H_CHANGED_BY]] = false;
		isnull[pos[H_CREATED_AT]] = isnull[pos[H_ANNOUNCE]] = false;
		if (h->notes)
		{
			values[pos[H_NOTES]] = CStringGetTextDatum(h->notes);
			isnull[pos[H_NOTES]] = false;
		}
		if (h->key)
		{
			values[pos[H_KEY]] = CStringGetTextDatum(h->key);
			isnull[pos[H_KEY]] = false;
		}
		orders_direct_insert(rel, values, isnull, fk_check);
	}
	else
		id = insert_statement(history, h);
	table_close(rel, NoLock);
	orders_restore_user(&saved);
	return id;
}
