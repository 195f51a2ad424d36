/*
 * announcer.c — order status changes announced in batches.
 *
 * PostgreSQL serializes the commits of all transactions that NOTIFY (one
 * lock, held from the queue write to the end of the commit), so a status
 * change that notifies from its own transaction queues behind every other.
 * With orders.notify = batched (the default) the changing transaction only
 * marks its history row (announce = true); one process per database, the
 * status announcer, sends the NOTIFYs after commit, every committed change
 * once, many per transaction, and records how far it got in the same
 * transaction (orders.status_announcer), so a batch is announced exactly
 * once: its NOTIFYs and its position commit together.
 *
 * Which history rows are new.  History ids come from a sequence when the
 * row is written, before commit, so commit order is not id order: a change
 * with a smaller id may become visible after a larger one was announced.
 * The announcer keeps, besides "high" (the largest id it has seen), the
 * holes below it (ranges of ids it has not seen; a transaction under way,
 * one rolled back, or a number never used) and reads, per batch, the ids
 * above "high" and those in holes.  A hole is closed when no transaction
 * that could still fill it is running: at each batch it reads the
 * sequence's position M and then the next transaction id X; once the
 * oldest transaction running (a later snapshot's xmin) is past X, every
 * change with an id up to M has committed or never will (status_audit
 * writes its row after the order's UPDATE gave the transaction its id, so
 * such a row's transaction id is below X), and holes up to M are dropped
 * ("watermark").  Within a batch, changes are announced in id order; one
 * order's changes are announced in the order they were made (the later
 * change waited for the earlier one's row lock, so it has the larger id
 * and is not visible before it).
 *
 * The process is a dynamic background worker: the first batched change of
 * a transaction checks, with a lock try, that the database has one
 * (orders.announcer on) and registers it otherwise; it runs as the owner of
 * the history table, leaves when idle for ANNOUNCER_IDLE_MS (so DROP
 * DATABASE, which waits 5 s for other sessions, is not blocked for long)
 * and is started again by the next change.  orders.announce_status_changes()
 * runs one batch from SQL (pg_cron, tests, orders.announcer off).
 */
#include "orders.h"

#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "commands/dbcommands.h"
#include "catalog/namespace.h"
#include "commands/extension.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

PGDLLEXPORT void orders_status_announcer_main(Datum main_arg);

/* The announcer leaves after this long without a change to announce. */
#define ANNOUNCER_IDLE_MS 1000

/* The most changes one batch of the announcer reads. */
#define ANNOUNCER_BATCH_ROWS 10000

/* The announcer leaves after this many failed batches in a row. */
#define ANNOUNCER_MAX_ERRORS 20

/* Positions (M, X) kept until they can close holes; more are not recorded. */
#define ANNOUNCER_MAX_PENDING 64

/*
 * The lock the database's announcer holds for its life, and the one a
 * batch holds for its transaction: advisory lock tags whose fourth field is
 * neither 1 nor 2, so that no SQL advisory lock function can take them (a
 * client holding them could otherwise silence the announcements).
 */
#define ANNOUNCER_LOCK_KEY1 0x6f726473
#define ANNOUNCER_LOCK_KEY2 0x616e6e63

typedef struct IdRange
{
	int64		lo;
	int64		hi;
} IdRange;

/* orders.status_announcer's row, as read and as written back. */
typedef struct AnnouncerState
{
	int64		watermark;
	int64		high;
	int			nholes;
	IdRange    *holes;
	int			npending;
	int64	   *pending_max;	/* M: the sequence's position */
	int64	   *pending_xmax;	/* X: the next transaction id after reading M */
} AnnouncerState;

/*
 * announcer_lock_tag — the announcer's locks: 0 held by the running
 * announcer, 1 by a batch.
 */
static void
announcer_lock_tag(LOCKTAG *tag, int which)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, ANNOUNCER_LOCK_KEY1, ANNOUNCER_LOCK_KEY2 + which,
						 ORDERS_LOCK_SPACE_ANNOUNCER);
}

/* ---------------------------------------------------------------------
 * The payload
 * --------------------------------------------------------------------- */

/*
 * payload_field — append ,"name":"value" to a notification, the value cut
 * to PAYLOAD_FIELD_MAX bytes (on a character boundary; a 64-character order
 * number always fits).  Lifecycle and status names are plain ASCII and the
 * order id a uuid; only the order number and the actor can hold characters
 * JSON escapes (\u00XX, 6 bytes for 1), so the payload stays under 4 kB,
 * below NOTIFY's 8000-byte limit, whatever a JWT subject or a restored
 * order number holds.
 */
#define PAYLOAD_FIELD_MAX 256

static void
payload_field(StringInfo buf, const char *name, const char *value)
{
	appendStringInfo(buf, ",\"%s\":", name);
	if (value == NULL)
		appendStringInfoString(buf, "null");
	else
		escape_json(buf, pnstrdup(value, pg_mbcliplen(value, strlen(value), PAYLOAD_FIELD_MAX)));
}

/*
 * orders_status_payload — the JSON document sent on channel orders_status
 * for one change, the same whichever process sends it.  The history id
 * tells changes apart (NOTIFY drops a payload already sent by the same
 * transaction) and lets a listener read the row.
 */
char *
orders_status_payload(int64 history_id, const char *order_id, const char *number,
					  const char *lifecycle, const char *old_status,
					  const char *new_status, const char *actor)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"history_id\":" INT64_FORMAT, history_id);
	payload_field(&buf, "order_id", order_id);
	payload_field(&buf, "order_number", number);
	payload_field(&buf, "lifecycle", lifecycle);
	payload_field(&buf, "old_status", old_status);
	payload_field(&buf, "new_status", new_status);
	payload_field(&buf, "changed_by", actor);
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/* ---------------------------------------------------------------------
 * One batch
 * --------------------------------------------------------------------- */

/* int8_array_values — the elements of a bigint[] (no NULLs: the columns' CHECK). */
static int64 *
int8_array_values(Datum array, int *n)
{
	Datum	   *elems;
	int64	   *values;

	deconstruct_array(DatumGetArrayTypeP(array), INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &elems, NULL, n);
	values = palloc(sizeof(int64) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
		values[i] = DatumGetInt64(elems[i]);
	return values;
}

static Datum
int8_array(const int64 *values, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		elems[i] = Int64GetDatum(values[i]);
	return PointerGetDatum(construct_array(elems, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*
 * lock_state — orders.status_announcer's row for this batch, read after
 * taking the batch lock (a transaction-level advisory lock: one batch at a
 * time, whoever runs it, and no transaction id for a batch that changes
 * nothing); made when missing (a new installation starts at id 0).
 */
static void
lock_state(Oid staterel, AnnouncerState *st)
{
	SPIPlanPtr	plan;
	HeapTuple	row;
	TupleDesc	desc;
	bool		isnull;
	int64	   *lo,
			   *hi;
	int			nlo,
				nhi,
				nx;

	LOCKTAG		tag;

	announcer_lock_tag(&tag, 1);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
	plan = orders_get_plan(PLAN_ANNOUNCER_LOCK, staterel,
						   "SELECT watermark, high, hole_lo, hole_hi, pending_max, pending_xmax"
						   " FROM orders.status_announcer", 0, NULL);
	orders_execute(plan, NULL, NULL, false, 0, SPI_OK_SELECT);
	if (SPI_processed == 0)
	{
		orders_execute(orders_get_plan(PLAN_ANNOUNCER_CREATE, staterel,
									   "INSERT INTO orders.status_announcer DEFAULT VALUES"
									   " ON CONFLICT DO NOTHING", 0, NULL),
					   NULL, NULL, false, 0, SPI_OK_INSERT);
		orders_execute(plan, NULL, NULL, false, 0, SPI_OK_SELECT);
	}
	if (SPI_processed != 1)
		elog(ERROR, "orders: orders.status_announcer must hold one row");
	row = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	st->watermark = DatumGetInt64(SPI_getbinval(row, desc, 1, &isnull));
	st->high = DatumGetInt64(SPI_getbinval(row, desc, 2, &isnull));
	lo = int8_array_values(SPI_getbinval(row, desc, 3, &isnull), &nlo);
	hi = int8_array_values(SPI_getbinval(row, desc, 4, &isnull), &nhi);
	st->nholes = Min(nlo, nhi);
	st->holes = palloc(sizeof(IdRange) * Max(st->nholes, 1));
	for (int i = 0; i < st->nholes; i++)
	{
		st->holes[i].lo = lo[i];
		st->holes[i].hi = hi[i];
	}
	st->pending_max = int8_array_values(SPI_getbinval(row, desc, 5, &isnull), &st->npending);
	st->pending_xmax = int8_array_values(SPI_getbinval(row, desc, 6, &isnull), &nx);
	st->npending = Min(st->npending, nx);
}

/*
 * sequence_position — the largest history id handed out so far (0 when
 * none) into *position: read before the batch's snapshot is taken.  False
 * when it cannot be read now, which only keeps holes open one batch longer.
 * The value is read as nextval leaves it, under the sequence's buffer lock
 * (pg_sequence_last_value): a plain scan of the sequence can find it empty
 * while ALTER SEQUENCE ... RESTART gives it a new file.  Only a sequence
 * not used since it was created or restarted has no such value; then its
 * next value less one is the position, read by a scan, and a scan that
 * finds no row (that race) gives no position.  The watermark rule needs
 * every id to be handed out when it is taken: a sequence with CACHE above 1
 * is refused (55000).
 */
static bool
sequence_position(Oid history, int64 *position)
{
	bool		isnull;
	Datum		value;
	int64		cache;

	orders_execute(orders_get_plan(PLAN_ANNOUNCER_POSITION, history,
								   "SELECT q.seqcache,"
								   "       COALESCE(pg_catalog.pg_sequence_last_value(q.seqrelid),"
								   "                (SELECT s.last_value - 1 FROM orders.order_history_id_seq s"
								   "                  WHERE NOT s.is_called))"
								   "  FROM pg_catalog.pg_sequence q"
								   " WHERE q.seqrelid = 'orders.order_history_id_seq'::pg_catalog.regclass",
								   0, NULL),
				   NULL, NULL, true, 0, SPI_OK_SELECT);
	if (SPI_processed != 1)
		return false;
	cache = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (cache > 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the status announcer needs orders.order_history_id_seq with CACHE 1, not " INT64_FORMAT,
						cache),
				 errdetail("A cached history id may be taken long after the announcer counted it as handed out."),
				 errhint("ALTER SEQUENCE orders.order_history_id_seq CACHE 1")));
	value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	if (isnull)
		return false;
	*position = DatumGetInt64(value);
	return true;
}

/* widen — a 32-bit transaction id of a current snapshot as a 64-bit one. */
static int64
widen(TransactionId xid, FullTransactionId next)
{
	uint32		epoch = EpochFromFullTransactionId(next);

	if (xid > XidFromFullTransactionId(next))
		epoch--;
	return (int64) U64FromFullTransactionId(FullTransactionIdFromEpochAndXid(epoch, xid));
}

/*
 * next_holes — the holes after a batch that saw the sorted ids "seen"
 * (n of them): the old holes and the new range (high, new_high], less the
 * ids seen, less everything up to the watermark.
 */
static void
next_holes(AnnouncerState *st, const int64 *seen, int n, int64 new_high)
{
	IdRange    *out = palloc(sizeof(IdRange) * (st->nholes + n + 2));
	int			nout = 0;
	int			k = 0;

	for (int i = 0; i <= st->nholes; i++)
	{
		IdRange		r;

		if (i < st->nholes)
			r = st->holes[i];
		else if (new_high > st->high)
		{
			r.lo = st->high + 1;
			r.hi = new_high;
		}
		else
			break;
		while (k < n && seen[k] < r.lo)
			k++;
		for (; k < n && seen[k] <= r.hi; k++)
		{
			if (seen[k] > r.lo)
				out[nout++] = (IdRange) {r.lo, seen[k] - 1};
			r.lo = seen[k] + 1;
		}
		if (r.lo <= r.hi)
			out[nout++] = r;
	}
	st->nholes = 0;
	for (int i = 0; i < nout; i++)
	{
		if (out[i].hi <= st->watermark)
			continue;
		out[i].lo = Max(out[i].lo, st->watermark + 1);
		out[st->nholes++] = out[i];
	}
	st->holes = out;
	st->high = Max(st->high, new_high);
}

/*
 * next_watermark — record this batch's position (m, x) when it is new
 * (not when "known" is false: the batch could not read the sequence's
 * position),
 * and raise the watermark to the largest recorded position whose
 * transactions have all ended (x at or below "xmin", the batch snapshot's
 * oldest transaction).  A position from elsewhere (x beyond the next
 * transaction id: a restored row of another cluster) is dropped, which only
 * keeps holes longer.  True when the recorded positions changed.
 */
static bool
next_watermark(AnnouncerState *st, bool known, int64 m, int64 x, int64 xmin, int64 next)
{
	int			keep = 0;
	bool		changed = false;

	if (known && m > st->watermark && st->npending < ANNOUNCER_MAX_PENDING &&
		(st->npending == 0 || m > st->pending_max[st->npending - 1]))
	{
		st->pending_max = repalloc(st->pending_max, sizeof(int64) * (st->npending + 1));
		st->pending_xmax = repalloc(st->pending_xmax, sizeof(int64) * (st->npending + 1));
		st->pending_max[st->npending] = m;
		st->pending_xmax[st->npending] = x;
		st->npending++;
		changed = true;
	}
	for (int i = 0; i < st->npending; i++)
	{
		if (st->pending_xmax[i] > next)
			continue;
		if (st->pending_xmax[i] <= xmin)
		{
			st->watermark = Max(st->watermark, st->pending_max[i]);
			continue;
		}
		st->pending_max[keep] = st->pending_max[i];
		st->pending_xmax[keep] = st->pending_xmax[i];
		keep++;
	}
	changed |= keep != st->npending;
	st->npending = keep;
	return changed;
}

/* holes_arrays — the holes as two bigint[] of their first and last ids. */
static void
holes_arrays(const AnnouncerState *st, Datum *lo_array, Datum *hi_array)
{
	int64	   *lo = palloc(sizeof(int64) * Max(st->nholes, 1));
	int64	   *hi = palloc(sizeof(int64) * Max(st->nholes, 1));

	for (int i = 0; i < st->nholes; i++)
	{
		lo[i] = st->holes[i].lo;
		hi[i] = st->holes[i].hi;
	}
	*lo_array = int8_array(lo, st->nholes);
	*hi_array = int8_array(hi, st->nholes);
}

/* save_state — write the position back (only when a batch changed it). */
static void
save_state(Oid staterel, AnnouncerState *st, int announced)
{
	static Oid	argtypes[7] = {INT8OID, INT8OID, INT8ARRAYOID, INT8ARRAYOID,
	INT8ARRAYOID, INT8ARRAYOID, INT4OID};
	Datum		values[7];

	values[0] = Int64GetDatum(st->watermark);
	values[1] = Int64GetDatum(st->high);
	holes_arrays(st, &values[2], &values[3]);
	values[4] = int8_array(st->pending_max, st->npending);
	values[5] = int8_array(st->pending_xmax, st->npending);
	values[6] = Int32GetDatum(announced);
	orders_execute(orders_get_plan(PLAN_ANNOUNCER_SAVE, staterel,
								   "UPDATE orders.status_announcer SET watermark = $1, high = $2,"
								   " hole_lo = $3, hole_hi = $4, pending_max = $5, pending_xmax = $6,"
								   " announced = announced + $7,"
								   " announced_at = CASE WHEN $7 > 0 THEN pg_catalog.now() ELSE announced_at END",
								   7, argtypes),
				   values, NULL, false, 0, SPI_OK_UPDATE);
}

/*
 * The batch's read: the changes above "high" ($1) and in the holes ($2,
 * $3), at most $4, in id order, from the history and (0.36.0) from
 * orders.deleted_changes (changes whose history row was deleted before a
 * batch read it; one of the two rows is visible to a snapshot, never
 * both); the order's number and lifecycle when it still exists.
 */
#define ANNOUNCER_READ_HEAD \
	"SELECT h.id, h.order_id::pg_catalog.text, o.order_number, o.lifecycle," \
	" h.old_status, h.new_status, h.changed_by, h.announce" \
	" FROM ("
#define ANNOUNCER_READ_HISTORY \
	"(SELECT h.id, h.order_id, h.old_status, h.new_status, h.changed_by, h.announce" \
	"   FROM orders.order_history h" \
	"  WHERE h.id > $1 ORDER BY h.id LIMIT $4)" \
	" UNION ALL" \
	" (SELECT h.id, h.order_id, h.old_status, h.new_status, h.changed_by, h.announce" \
	"    FROM ROWS FROM (pg_catalog.unnest($2::pg_catalog.int8[]), pg_catalog.unnest($3::pg_catalog.int8[])) AS r (lo, hi)" \
	"    JOIN orders.order_history h ON h.id BETWEEN r.lo AND r.hi)"
#define ANNOUNCER_READ_DELETED \
	" UNION ALL" \
	" (SELECT d.id, d.order_id, d.old_status, d.new_status, d.changed_by, true" \
	"    FROM orders.deleted_changes d" \
	"   WHERE d.id > $1 ORDER BY d.id LIMIT $4)" \
	" UNION ALL" \
	" (SELECT d.id, d.order_id, d.old_status, d.new_status, d.changed_by, true" \
	"    FROM ROWS FROM (pg_catalog.unnest($2::pg_catalog.int8[]), pg_catalog.unnest($3::pg_catalog.int8[])) AS r (lo, hi)" \
	"    JOIN orders.deleted_changes d ON d.id BETWEEN r.lo AND r.hi)"
#define ANNOUNCER_READ_TAIL \
	") h" \
	" LEFT JOIN orders.orders o ON o.id = h.order_id" \
	" ORDER BY h.id LIMIT $4"

/*
 * drop_deleted — the deleted changes at or below "id" (settled: read by a
 * batch, or never to be read, announced before their delete), or, when
 * "above", above it (numbered before the history's sequence was set back:
 * their ids are handed out again, and kept they would be read again at
 * every batch).
 */
static void
drop_deleted(Oid deleted, int64 id, bool above)
{
	static Oid	argtypes[1] = {INT8OID};
	Datum		value = Int64GetDatum(id);

	orders_execute(above ?
				   orders_get_keyed_plan(PLAN_ANNOUNCER_DROP_RENUMBERED, deleted,
									     "DELETE FROM orders.deleted_changes d WHERE d.id > $1",
									     1, argtypes) :
				   orders_get_keyed_plan(PLAN_ANNOUNCER_DROP_DELETED, deleted,
									     "DELETE FROM orders.deleted_changes d WHERE d.id <= $1",
									     1, argtypes),
				   &value, NULL, false, 0, SPI_OK_DELETE);
}

/*
 * announce_batch — announce the changes that became visible since the last
 * batch (at most max_rows, in id order) and record how far it got; the
 * caller commits both together.  Returns the number of changes announced.
 * Connects to SPI as the history's owner.
 */
static int
announce_batch(int max_rows)
{
	Oid			history = orders_relid("order_history");
	Oid			staterel = orders_relid("status_announcer");
	/* (0.36.0) a database updated to 0.36.0 has it */
	Oid			deleted = get_relname_relid("deleted_changes", get_rel_namespace(history));
	static Oid	argtypes[4] = {INT8OID, INT8ARRAYOID, INT8ARRAYOID, INT4OID};
	int64		watermark_before;
	Datum		values[4];
	OrdersSavedUser saved;
	AnnouncerState st;
	Snapshot	snap;
	FullTransactionId next;
	FullTransactionId after;
	int64		m = 0;
	int64	   *seen;
	int64		new_high;
	int			announced = 0;
	bool		changed;
	bool		reset = false;
	bool		known;

	orders_require_read_committed("orders.announce_status_changes", "Each batch reads what committed since the last one.");

	orders_spi_connect_as_owner(history, &saved);
	lock_state(staterel, &st);
	watermark_before = st.watermark;
	known = sequence_position(history, &m);
	if (known && m < st.high)
	{
		/* the sequence was set back (RESTART after emptying the history) */
		ereport(LOG,
				(errmsg("orders: the history's sequence is at " INT64_FORMAT ", below the " INT64_FORMAT
						" the status announcer read: it goes on from " INT64_FORMAT, m, st.high, m)));
		st.high = m;
		st.watermark = Min(st.watermark, m);
		if (deleted != InvalidOid)
			drop_deleted(deleted, m, true);
		st.nholes = 0;
		st.npending = 0;
		reset = true;
	}
	next = ReadNextFullTransactionId();
	snap = RegisterSnapshot(GetLatestSnapshot());

	values[0] = Int64GetDatum(st.high);
	holes_arrays(&st, &values[1], &values[2]);
	values[3] = Int32GetDatum(max_rows);
	orders_execute_snapshot(deleted != InvalidOid ?
							orders_get_keyed_plan(PLAN_ANNOUNCER_READ_DELETED, history,
												  ANNOUNCER_READ_HEAD ANNOUNCER_READ_HISTORY
												  ANNOUNCER_READ_DELETED ANNOUNCER_READ_TAIL, 4, argtypes) :
							orders_get_keyed_plan(PLAN_ANNOUNCER_READ, history,
												  ANNOUNCER_READ_HEAD ANNOUNCER_READ_HISTORY
												  ANNOUNCER_READ_TAIL, 4, argtypes),
							values, NULL, SPI_OK_SELECT, snap);

	seen = palloc(sizeof(int64) * Max(SPI_processed, 1));
	new_high = st.high;
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	row = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		bool		announce;

		seen[i] = DatumGetInt64(SPI_getbinval(row, desc, 1, &isnull));
		new_high = Max(new_high, seen[i]);
		announce = DatumGetBool(SPI_getbinval(row, desc, 8, &isnull));
		if (isnull || !announce)
			continue;
		Async_Notify(ORDERS_STATUS_CHANNEL,
					 orders_status_payload(seen[i],
										   SPI_getvalue(row, desc, 2),
										   SPI_getvalue(row, desc, 3),
										   SPI_getvalue(row, desc, 4),
										   SPI_getvalue(row, desc, 5),
										   SPI_getvalue(row, desc, 6),
										   SPI_getvalue(row, desc, 7)));
		announced++;
	}

	/*
	 * A batch cut by max_rows has not read every hole row its snapshot
	 * shows: it must not close holes (the watermark) this time.
	 */
	after = ReadNextFullTransactionId();
	changed = SPI_processed < (uint64) max_rows &&
		next_watermark(&st, known, m, (int64) U64FromFullTransactionId(next),
					   widen(snap->xmin, after), (int64) U64FromFullTransactionId(after));
	changed |= SPI_processed > 0 || reset;
	next_holes(&st, seen, (int) SPI_processed, new_high);
	UnregisterSnapshot(snap);
	/* an idle batch writes nothing (and takes no transaction id) */
	if (changed)
		save_state(staterel, &st, announced);
	if (deleted != InvalidOid && st.watermark > watermark_before)
		drop_deleted(deleted, st.watermark, false);
	orders_spi_finish_as(&saved);
	return announced;
}

/*
 * orders.announce_status_changes(max_rows integer DEFAULT 10000) — one
 * batch from SQL: announces what committed since the last batch, in the
 * caller's transaction.  For the extension's owner (pg_cron, tests, a
 * database with orders.announcer off).
 */
PG_FUNCTION_INFO_V1(orders_announce_status_changes);
Datum
orders_announce_status_changes(PG_FUNCTION_ARGS)
{
	int32		max_rows = PG_GETARG_INT32(0);

	if (max_rows < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_rows of orders.announce_status_changes must be at least 1")));
	PG_RETURN_INT32(announce_batch(max_rows));
}

/* ---------------------------------------------------------------------
 * The process
 * --------------------------------------------------------------------- */

/*
 * start_announcer — register the database's announcer.  It connects as
 * the bootstrap superuser (the history's owner may be a role that cannot
 * log in) and runs each batch as the history's owner, as every statement
 * of the extension on another table.  False when no worker slot is free.
 */
static bool
start_announcer(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "orders");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "orders_status_announcer_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "orders status announcer for database %u", MyDatabaseId);
	snprintf(worker.bgw_type, BGW_MAXLEN, "orders status announcer");
	worker.bgw_main_arg = ObjectIdGetDatum(MyDatabaseId);
	worker.bgw_notify_pid = 0;
	return RegisterDynamicBackgroundWorker(&worker, NULL);
}

/*
 * orders_announce_mode — how the status change being recorded now is
 * announced.  For batched changes, the first of each transaction makes
 * sure the database's announcer runs (a try of the lock it holds) and
 * registers one when not; several transactions may register one at once,
 * and all but the first to take the lock leave at once.  When no worker
 * slot is free the change is announced by its own transaction instead
 * (logged once per session).  Called after the order's UPDATE gave the
 * transaction its id.
 */
OrdersNotifyMode
orders_announce_mode(void)
{
	static LocalTransactionId checked = InvalidLocalTransactionId;
	static OrdersNotifyMode decided = ORDERS_NOTIFY_BATCHED;
	static bool warned = false;
	LOCKTAG		tag;

	if (orders_notify_mode != ORDERS_NOTIFY_BATCHED || !orders_announcer_autostart)
		return (OrdersNotifyMode) orders_notify_mode;
	if (checked == MyProc->lxid)
		return decided;
	checked = MyProc->lxid;
	decided = ORDERS_NOTIFY_BATCHED;
	announcer_lock_tag(&tag, 0);
	if (LockAcquire(&tag, ExclusiveLock, true, true) == LOCKACQUIRE_NOT_AVAIL)
		return decided;			/* it runs */
	LockRelease(&tag, ExclusiveLock, true);
	if (start_announcer())
		return decided;
	if (!warned)
		ereport(LOG,
				(errmsg("orders: could not start the status announcer of database \"%s\"; "
						"status changes are announced by their own transactions",
						get_database_name(MyDatabaseId)),
				 errhint("Raise max_worker_processes.")));
	warned = true;
	decided = ORDERS_NOTIFY_IMMEDIATE;
	return decided;
}

/*
 * announcer_cycle — one batch in its own transaction.  -1 when the
 * extension is not (or no longer, or not at a version with the announcer)
 * installed in the database.
 */
static int
announcer_cycle(void)
{
	int			n = -1;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "orders status announcer: batch");
	if (OidIsValid(get_extension_oid("orders", true)) &&
		OidIsValid(get_relname_relid("status_announcer", get_namespace_oid(ORDERS_SCHEMA, true))))
		n = announce_batch(ANNOUNCER_BATCH_ROWS);
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	return n;
}

/*
 * announcer_try_cycle — announcer_cycle, an error (a lock timeout behind
 * DDL, a serialization failure) reported and the batch rolled back; the
 * next batch tries again.  Counts consecutive errors in *errors.
 */
static int
announcer_try_cycle(int *errors)
{
	int			n = 0;

	PG_TRY();
	{
		n = announcer_cycle();
		*errors = 0;
	}
	PG_CATCH();
	{
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		pgstat_report_activity(STATE_IDLE, NULL);
		(*errors)++;
	}
	PG_END_TRY();
	return n;
}

/*
 * wait_for_running — wait until every transaction of this database that
 * runs now has ended (as CREATE INDEX CONCURRENTLY waits for older
 * snapshots).  A change that found the announcer running — before it let
 * go of its lock — is among them; the last batch after this wait announces
 * it.  Transactions of other databases are not waited for.
 */
static void
wait_for_running(void)
{
	VirtualTransactionId *running;
	int			n;

	StartTransactionCommand();
	/* however long they take (this wait is not a batch behind DDL) */
	SetConfigOption("lock_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
	running = GetCurrentVirtualXIDs(InvalidTransactionId, false, false,
									PROC_IS_AUTOVACUUM | PROC_IN_VACUUM, &n);
	for (int i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		(void) VirtualXactLock(running[i], true);
	}
	CommitTransactionCommand();
	SetConfigOption("lock_timeout", "100", PGC_SUSET, PGC_S_OVERRIDE);
}

/*
 * orders_status_announcer_main — the announcer of one database: a batch
 * every orders.announce_interval while there are changes (a failed batch
 * is tried again, up to ANNOUNCER_MAX_ERRORS times in a row); leaves when idle
 * (after letting go of its lock, waiting for the transactions that may
 * have counted on it, and a last batch) or when the extension is gone.
 * Only one per database runs (the advisory lock).  It is never restarted
 * by the postmaster (a worker of a database dropped meanwhile would fail
 * forever): an error ends it, and the next batched change starts another.
 */
void
orders_status_announcer_main(Datum main_arg)
{
	LOCKTAG		tag;
	TimestampTz last_work;
	int			errors = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(DatumGetObjectId(main_arg), InvalidOid, 0);
	pgstat_report_appname("orders status announcer");
	/*
	 * A batch waits at most this long for a lock: DDL on the tables it
	 * reads (DROP EXTENSION, ALTER TABLE) goes first — it would otherwise
	 * wait for the batch, which may wait for the DDL's other locks (a
	 * deadlock, which deadlock_timeout might resolve against the DDL); the
	 * batch is tried again after orders.announce_interval.
	 */
	SetConfigOption("lock_timeout", "100", PGC_SUSET, PGC_S_OVERRIDE);
	/* a database's or role's defaults must not make every batch fail */
	SetConfigOption("default_transaction_isolation", "read committed", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("default_transaction_read_only", "off", PGC_SUSET, PGC_S_OVERRIDE);

	announcer_lock_tag(&tag, 0);
	StartTransactionCommand();
	if (LockAcquire(&tag, ExclusiveLock, true, true) == LOCKACQUIRE_NOT_AVAIL)
	{
		CommitTransactionCommand();
		proc_exit(0);			/* another one runs */
	}
	CommitTransactionCommand();

	last_work = GetCurrentTimestamp();
	for (;;)
	{
		int			n;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		n = announcer_try_cycle(&errors);
		if (n < 0 || errors > ANNOUNCER_MAX_ERRORS)
			break;
		if (n > 0 || errors > 0)
			last_work = GetCurrentTimestamp();
		else if (TimestampDifferenceExceeds(last_work, GetCurrentTimestamp(), ANNOUNCER_IDLE_MS))
		{
			LockRelease(&tag, ExclusiveLock, true);
			wait_for_running();
			while (announcer_try_cycle(&errors) == ANNOUNCER_BATCH_ROWS && errors == 0)
				;
			break;
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 orders_announce_interval, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
	proc_exit(0);
}
