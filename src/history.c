/*
 * history.c — the rows of orders.order_history, written for status_audit
 * (transition.c) as the table's owner.
 *
 * While the table is as the extension installed it (a plain table, its
 * columns and their types, no rules, INSERT statement triggers or forced
 * row level security), a row goes in without SQL (orders_direct_insert,
 * direct_write.c): its id from the identity's sequence
 * orders.order_history_id_seq (the one the announcer reads), created_at the
 * transaction's start as now() gives it, its indexes and any row triggers
 * as an INSERT runs them — but for the check of its foreign key to the
 * order, which the change holds locked.  An INSERT statement per change
 * started an executor for each (13 % of a status change's CPU, a third of
 * a bulk status UPDATE's).  A table changed otherwise gets an INSERT
 * statement (a kept plan), which the executor serves as any insert.
 */
#include "orders.h"

#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "utils/builtins.h"
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
 * history_as_installed — is "rel" the table as installed (its id an
 * identity)?  Then "pos" holds each column's position in the row.
 */
static bool
history_as_installed(Relation rel, int *pos)
{
	return orders_direct_as_installed(rel, history_columns, history_types, H_NCOLUMNS, -1, pos) &&
		TupleDescAttr(RelationGetDescr(rel), pos[H_ID])->attidentity == ATTRIBUTE_IDENTITY_BY_DEFAULT;
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
	if (get_attnum(history, "announce") != InvalidAttrNumber)
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
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return id;
}

/*
 * orders_history_has_announce — has the installed history the announce
 * column (0.21.0 on)?  Until the extension is updated, changes cannot be
 * left to the announcer.
 */
bool
orders_history_has_announce(void)
{
	return get_attnum(orders_relid("order_history"), "announce") != InvalidAttrNumber;
}

/*
 * orders_insert_history — one history row "h", as the owner of the table,
 * in the caller's transaction, for an order whose row the transaction has
 * updated (status_audit).  Returns its id.
 */
int64
orders_insert_history(const OrdersHistoryRow *h)
{
	Oid			history = orders_relid("order_history");
	OrdersSavedUser saved;
	Relation	rel;
	int			pos[H_NCOLUMNS];
	int64		id;

	orders_switch_to_owner(history, &saved);
	rel = table_open(history, RowExclusiveLock);
	if (history_as_installed(rel, pos))
	{
		int			natts = RelationGetDescr(rel)->natts;
		Datum	   *values = palloc0(sizeof(Datum) * natts);
		bool	   *isnull = palloc(sizeof(bool) * natts);

		memset(isnull, true, sizeof(bool) * natts);
		id = nextval_internal(orders_relid("order_history_id_seq"), false);
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
		/*
		 * the order's row is one this transaction just updated (status_audit
		 * runs after its UPDATE): while its foreign key's check is the
		 * table's only row INSERT trigger, that check would only lock the
		 * row again (against a delete that cannot happen before we commit)
		 */
		orders_direct_insert(rel, values, isnull, NULL, !orders_direct_fk_only(rel, pos[H_ORDER_ID] + 1));
	}
	else
		id = insert_statement(history, h);
	table_close(rel, NoLock);
	orders_restore_user(&saved);
	return id;
}
