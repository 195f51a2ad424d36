/*
 * slots.c — time-slot holds and bookings (seed 003), never oversold.
 *
 *   orders.reserve_time_slot()            hold capacity for a while
 *   orders.confirm_booking()              make a live hold a booking
 *   orders.release_reservation()          give a hold back
 *   orders.cleanup_expired_reservations() mark lapsed holds expired
 *   orders.release_cancelled_bookings()   AFTER UPDATE trigger on orders:
 *                                         a cancelled order gives its slots back
 *   orders.slot_counts_guard()            only these functions write the counts
 *
 * Every change of a slot's counts happens under that slot's row lock (FOR
 * UPDATE by lock_slot, FOR NO KEY UPDATE when written directly or by an
 * UPDATE statement: each excludes every other writer of the slot), and the decision to hold reads the live holds after taking it,
 * so concurrent reservations of one slot are decided one after another on
 * committed data.  A hold whose time has passed never counts, whether or not
 * cleanup has run: reserve counts only holds that expire after the clock
 * (clock_timestamp, not the transaction's start: a hold that lapses during a
 * long transaction has lapsed), and confirm refuses a lapsed hold by the
 * same clock.  Confirming never books more places than the slot has.  All maintenance runs as the owner of the
 * tables; who acts is read before the switch.
 *
 * Lock order, to stay free of deadlocks: reservation row, then slot row
 * (confirm, release, cleanup); reserve locks only the slot and reads the
 * reservations without locking them.
 */
#include "orders.h"

#include "access/genam.h"
#include "access/nbtree.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "common/int.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "parser/parse_func.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(orders_reserve_time_slot);
PG_FUNCTION_INFO_V1(orders_confirm_booking);
PG_FUNCTION_INFO_V1(orders_item_booked_places);
PG_FUNCTION_INFO_V1(orders_release_reservation);
PG_FUNCTION_INFO_V1(orders_cleanup_expired_reservations);
PG_FUNCTION_INFO_V1(orders_release_cancelled_bookings);
PG_FUNCTION_INFO_V1(orders_slot_counts_guard);

/* true while this file writes slot counts or reservations */
static bool slots_writing = false;

/* advisory lock key of the cleanup job ('orders' cleanup) */
#define CLEANUP_LOCK_KEY INT64CONST(0x6f72646572730001)

static char *
uuid_text(Datum u)
{
	return DatumGetCString(DirectFunctionCall1(uuid_out, u));
}

static char *
ts_text(TimestampTz t)
{
	return DatumGetCString(DirectFunctionCall1(timestamptz_out, TimestampTzGetDatum(t)));
}

/*
 * slot_execute — run one of this file's writing statements with the
 * write permission of slot_counts_guard.
 */
static void
slot_execute(SPIPlanPtr plan, Datum *args, const char *nulls, int expected)
{
	orders_execute_writing(plan, args, nulls, expected, &slots_writing, NULL);
}

/* The columns of orders.slot_reservations, as installed. */
enum
{
	R_ID, R_CAPACITY, R_HOLDER, R_QUANTITY, R_STATUS, R_EXPIRES, R_ITEM, R_CREATED, R_CONFIRMED,
	R_RELEASED, R_BY_SUBJECT, R_NCOLUMNS
};
static const char *const reservation_columns[R_NCOLUMNS] = {
	"id", "capacity_id", "holder", "quantity", "status", "expires_at", "order_item_id", "created_at",
	"confirmed_at", "released_at", "held_by_subject"
};
static const Oid reservation_types[R_NCOLUMNS] = {
	UUIDOID, UUIDOID, TEXTOID, INT4OID, TEXTOID, TIMESTAMPTZOID, UUIDOID, TIMESTAMPTZOID, TIMESTAMPTZOID,
	TIMESTAMPTZOID, BOOLOID
};

/* The columns of orders.service_capacity a hold reads (all NOT NULL). */
enum
{
	S_MAX, S_BOOKED, S_HELD, S_AVAILABLE, S_STARTS, S_NCOLUMNS
};
static const char *const slot_columns[S_NCOLUMNS] = {
	"max_capacity", "booked_count", "held_count", "is_available", "starts_at"
};
static const Oid slot_types[S_NCOLUMNS] = {INT4OID, INT4OID, INT4OID, BOOLOID, TIMESTAMPTZOID};

/* What a direct write sets: a slot's counts, a reservation's change. */
static const char *const slot_counts[] = {"held_count", "booked_count", NULL};
static const char *const reservation_changes[] = {"status", "confirmed_at", "released_at", "order_item_id", NULL};

/*
 * What slot_shape found (one per backend, recomputed after any
 * invalidation: orders_direct_generation): whether holds can be written
 * without SQL — both tables as installed, every trigger on them the
 * extension's (or a foreign key's), the reservation's id and created_at
 * defaulting to new_id() and now() and its other unset columns to NULL —
 * and where the columns are.
 */
typedef struct SlotShape
{
	bool		known;
	uint64		generation;
	bool		direct;
	int			res_pos[R_NCOLUMNS];	/* positions in a reservation (from 0) */
	AttrNumber	slot_att[S_NCOLUMNS];	/* attribute numbers in a slot */
	Oid			holds_index;	/* btree (capacity_id, status, expires_at), or InvalidOid */
	bool		insert_idle;	/* a hold's INSERT triggers would do nothing */
	Oid			capacity_check; /* the check of a reservation's slot after an UPDATE, or InvalidOid */
} SlotShape;

static SlotShape shape;

/*
 * The two tables as one call of this file writes them: opened (as the
 * owner), and "shape" when they are written without SQL (NULL: by the
 * kept statements).
 */
typedef struct SlotTables
{
	Relation	slots;
	Relation	reservations;
	const SlotShape *shape;
} SlotTables;

/* columns_not_null — are the columns "pos" ("n" of them, from 0) of "rel" NOT NULL? */
static bool
columns_not_null(Relation rel, const int *pos, int n)
{
	for (int i = 0; i < n; i++)
		if (!TupleDescAttr(RelationGetDescr(rel), pos[i])->attnotnull)
			return false;
	return true;
}

/* slot_shape — the shape of the two tables (above); computed once per invalidation. */
static const SlotShape *
slot_shape(Relation slots, Relation res)
{
	uint64		generation = orders_direct_generation();
	TupleDesc	desc = RelationGetDescr(slots);
	bool		direct;
	Oid			new_id;

	if (shape.known && shape.generation == generation)
		return &shape;
	new_id = LookupFuncName(list_make2(makeString(ORDERS_SCHEMA), makeString("new_id")), 0, NULL, true);
	direct = orders_direct_own_triggers(slots) && orders_direct_own_triggers(res) &&
		orders_direct_as_installed(res, reservation_columns, reservation_types, R_NCOLUMNS, -1, shape.res_pos) &&
		columns_not_null(res, shape.res_pos, R_ITEM) &&
		OidIsValid(new_id) && orders_direct_own_function(new_id, "orders_new_id") &&
		orders_direct_default_is(res, shape.res_pos[R_ID] + 1, new_id) &&
		orders_direct_default_is(res, shape.res_pos[R_CREATED] + 1, F_NOW) &&
		orders_direct_default_is(res, shape.res_pos[R_ITEM] + 1, InvalidOid) &&
		orders_direct_default_is(res, shape.res_pos[R_CONFIRMED] + 1, InvalidOid) &&
		orders_direct_default_is(res, shape.res_pos[R_RELEASED] + 1, InvalidOid);
	for (int c = 0; c < S_NCOLUMNS && direct; c++)
	{
		Form_pg_attribute att;

		shape.slot_att[c] = orders_fnumber(desc, slot_columns[c]);
		if (shape.slot_att[c] <= 0)
		{
			direct = false;
			break;
		}
		att = TupleDescAttr(desc, shape.slot_att[c] - 1);
		direct = att->atttypid == slot_types[c] && att->attnotnull && !att->attgenerated;
	}
	if (direct)
	{
		static const char *const guard[] = {"orders_slot_counts_guard", NULL};
		Bitmapset  *nulls = bms_make_singleton(shape.res_pos[R_ITEM] + 1);

		AttrNumber	keys[3] = {shape.res_pos[R_CAPACITY] + 1, shape.res_pos[R_STATUS] + 1,
							   shape.res_pos[R_EXPIRES] + 1};
		Oid			key_types[3] = {UUIDOID, TEXTOID, TIMESTAMPTZOID};

		/* as installed: slot_reservations_capacity_status_idx */
		shape.holds_index = orders_direct_index_on(res, keys, key_types, 3);
		/* the hold's slot is locked, its item NULL, and the guard lets this file through */
		shape.insert_idle = orders_direct_insert_idle(res, shape.res_pos[R_CAPACITY] + 1, RelationGetRelid(slots),
													  nulls, guard);
		shape.capacity_check = orders_direct_update_check(res, shape.res_pos[R_CAPACITY] + 1,
														  RelationGetRelid(slots));
	}
	shape.direct = direct;
	shape.generation = generation;
	/* used now either way; kept unless an invalidation came meanwhile */
	shape.known = generation == orders_direct_generation();
	return &shape;
}

/*
 * open_tables — the slots and reservations opened for writing, as the
 * owner (already switched to), "t->shape" set when this call may write
 * them directly (direct_write.c): as installed (slot_shape), a transaction
 * that may write, each table updatable by the owner as an UPDATE statement
 * would update it and the reservations insertable.
 */
static void
open_tables(SlotTables *t)
{
	const SlotShape *sh;

	t->slots = table_open(orders_relid("service_capacity"), RowExclusiveLock);
	t->reservations = table_open(orders_relid("slot_reservations"), RowExclusiveLock);
	sh = slot_shape(t->slots, t->reservations);
	/* in a read-only transaction the statements refuse (25006) */
	t->shape = sh->direct && !XactReadOnly && !IsInParallelMode() &&
		orders_direct_updatable(t->slots, NULL) && orders_direct_updatable(t->reservations, NULL) &&
		pg_class_aclcheck(RelationGetRelid(t->reservations), GetUserId(), ACL_INSERT) == ACLCHECK_OK ? sh : NULL;
}

/* close_tables — open_tables undone (the locks kept to the end of the transaction). */
static void
close_tables(SlotTables *t)
{
	table_close(t->reservations, NoLock);
	table_close(t->slots, NoLock);
}

/* A slot, locked. */
typedef struct SlotRow
{
	int32		max_capacity;
	int32		booked;
	int32		held;
	bool		available;
	TimestampTz starts_at;
} SlotRow;

/*
 * lock_slot — lock the slot "capacity_id" FOR UPDATE by a kept statement
 * and read it into "s"; false when there is no such slot.  Reservations and
 * confirmations of one slot are decided one by one under this lock.
 */
static bool
lock_slot(Oid slots_rel, Datum capacity_id, SlotRow *s)
{
	static Oid	argtypes[1] = {UUIDOID};
	SPIPlanPtr	plan = orders_get_plan(PLAN_SLOT_LOCK, slots_rel,
									   "SELECT max_capacity, booked_count, held_count, is_available, starts_at"
									   "  FROM orders.service_capacity"
									   " WHERE id OPERATOR(pg_catalog.=) $1 FOR UPDATE",
									   1, argtypes);
	Datum		args[1] = {capacity_id};
	HeapTuple	row;
	TupleDesc	desc;
	bool		isnull;

	orders_execute(plan, args, NULL, false, 1, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return false;
	row = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	s->max_capacity = DatumGetInt32(SPI_getbinval(row, desc, 1, &isnull));
	s->booked = DatumGetInt32(SPI_getbinval(row, desc, 2, &isnull));
	s->held = DatumGetInt32(SPI_getbinval(row, desc, 3, &isnull));
	s->available = DatumGetBool(SPI_getbinval(row, desc, 4, &isnull));
	s->starts_at = DatumGetTimestampTz(SPI_getbinval(row, desc, 5, &isnull));
	return true;
}

/*
 * lock_slot_direct — the same lock (FOR NO KEY UPDATE: it conflicts with
 * every writer of the slot, not with the key-share locks of the foreign
 * keys to it) taken in "d" (begun on the slots for slot_counts), the row
 * read into "s".
 */
static bool
lock_slot_direct(OrdersDirect *d, const SlotShape *sh, Datum capacity_id, SlotRow *s)
{
	bool		isnull;

	if (!orders_direct_lock_by_id(d, capacity_id))
		return false;
	s->max_capacity = DatumGetInt32(slot_getattr(d->row, sh->slot_att[S_MAX], &isnull));
	s->booked = DatumGetInt32(slot_getattr(d->row, sh->slot_att[S_BOOKED], &isnull));
	s->held = DatumGetInt32(slot_getattr(d->row, sh->slot_att[S_HELD], &isnull));
	s->available = DatumGetBool(slot_getattr(d->row, sh->slot_att[S_AVAILABLE], &isnull));
	s->starts_at = DatumGetTimestampTz(slot_getattr(d->row, sh->slot_att[S_STARTS], &isnull));
	return true;
}

/*
 * count_direct — the locked slot of "d" with "held" and "booked" places
 * added to its counts (an integer overflow fails with 22003, as the
 * UPDATE's addition would).
 */
static void
count_direct(OrdersDirect *d, const SlotRow *s, int32 held, int32 booked)
{
	Datum		values[2];
	bool		nulls[2] = {false, false};
	int32		h;
	int32		b;

	if (pg_add_s32_overflow(s->held, held, &h) || pg_add_s32_overflow(s->booked, booked, &b))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("integer out of range")));
	values[0] = Int32GetDatum(h);
	values[1] = Int32GetDatum(b);
	/* the slot's triggers are the extension's (slot_shape): they never skip it */
	if (!orders_direct_update(d, values, nulls))
		elog(ERROR, "orders: the count of a time slot was skipped by a trigger");
}

/* live_holds_sql — live_holds by a kept statement. */
static int64
live_holds_sql(Oid slots_rel, Datum capacity_id, TimestampTz now)
{
	static Oid	argtypes[2] = {UUIDOID, TIMESTAMPTZOID};
	SPIPlanPtr	plan = orders_get_plan(PLAN_SLOT_LIVE_HOLDS, slots_rel,
									   "SELECT coalesce(pg_catalog.sum(quantity), 0)::pg_catalog.int8"
									   "  FROM orders.slot_reservations"
									   " WHERE capacity_id OPERATOR(pg_catalog.=) $1"
									   "   AND status OPERATOR(pg_catalog.=) 'held'"
									   "   AND expires_at OPERATOR(pg_catalog.>) $2",
									   2, argtypes);
	Datum		args[2] = {capacity_id, TimestampTzGetDatum(now)};
	bool		isnull;

	orders_execute(plan, args, NULL, false, 1, SPI_OK_SELECT);
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * live_holds_direct — live_holds read from the index of holds
 * (SlotShape.holds_index), with the snapshot a statement here would take:
 * the same rows the statement sums, without an executor.
 */
static int64
live_holds_direct(SlotTables *t, Datum capacity_id, TimestampTz now)
{
	Relation	idx = index_open(t->shape->holds_index, AccessShareLock);
	Snapshot	snapshot = RegisterSnapshot(GetTransactionSnapshot());
	TupleTableSlot *row = table_slot_create(t->reservations, NULL);
	ScanKeyData keys[3];
	IndexScanDesc scan;
	int64		live = 0;
	bool		isnull;

	orders_direct_scan_key(&keys[0], idx, 0, BTEqualStrategyNumber, capacity_id);
	orders_direct_scan_key(&keys[1], idx, 1, BTEqualStrategyNumber, CStringGetTextDatum("held"));
	orders_direct_scan_key(&keys[2], idx, 2, BTGreaterStrategyNumber, TimestampTzGetDatum(now));
	scan = index_beginscan(t->reservations, idx, snapshot, 3, 0);
	index_rescan(scan, keys, 3, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, row))
		live += DatumGetInt32(slot_getattr(row, t->shape->res_pos[R_QUANTITY] + 1, &isnull));
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(row);
	UnregisterSnapshot(snapshot);
	index_close(idx, NoLock);
	return live;
}

/*
 * live_holds — the places held by live holds of slot "capacity_id" at
 * "now", read after the slot's lock: committed data only (a statement at
 * READ COMMITTED takes a snapshot of now).  From the index of holds when
 * the tables are written directly and it is there, else by the statement.
 */
static int64
live_holds(SlotTables *t, Datum capacity_id, TimestampTz now)
{
	if (t->shape != NULL && OidIsValid(t->shape->holds_index))
		return live_holds_direct(t, capacity_id, now);
	return live_holds_sql(RelationGetRelid(t->slots), capacity_id, now);
}

/*
 * check_slot — refuse a hold of slot "s" (OR020 when there is no such
 * slot, OR021 not available, OR022 started).
 */
static void
check_slot(Datum capacity_id, bool found, const SlotRow *s, TimestampTz now)
{
	if (!found)
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_SLOT_NOT_FOUND),
				 errmsg("time slot %s does not exist", uuid_text(capacity_id))));
	if (!s->available)
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_SLOT_UNAVAILABLE),
				 errmsg("time slot %s is not available for booking", uuid_text(capacity_id))));
	if (s->starts_at <= now)
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_SLOT_IN_PAST),
				 errmsg("time slot %s started at %s and can no longer be reserved",
						uuid_text(capacity_id), ts_text(s->starts_at))));
}

/* check_room — refuse (OR023) "quantity" places of slot "s" beside "live" held ones. */
static void
check_room(Datum capacity_id, const SlotRow *s, int32 quantity, int64 live)
{
	if ((int64) s->booked + live + quantity > s->max_capacity)
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_SLOT_FULL),
				 errmsg("time slot %s has no room for %d more: %d of %d booked, " INT64_FORMAT " held",
						uuid_text(capacity_id), quantity, s->booked, s->max_capacity, live),
				 errhint("Choose another slot (orders.available_slots) or try again when holds expire.")));
}

/*
 * hold_sql — the hold and its count by one kept statement; its id.  A hold
 * a trigger of the DBA's skipped is refused (09000), nothing counted.
 */
static Datum
hold_sql(Oid slots_rel, Datum capacity_id, const char *actor, bool by_subject, int32 quantity,
		 TimestampTz expires_at)
{
	static Oid	argtypes[5] = {UUIDOID, TEXTOID, INT4OID, TIMESTAMPTZOID, BOOLOID};
	SPIPlanPtr	plan = orders_get_plan(PLAN_SLOT_HOLD_INSERT, slots_rel,
									   "WITH hold AS ("
									   "  INSERT INTO orders.slot_reservations"
									   "   (capacity_id, holder, quantity, status, expires_at, held_by_subject)"
									   "  VALUES ($1, $2, $3, 'held', $4, $5) RETURNING id, capacity_id, quantity)"
									   "UPDATE orders.service_capacity c"
									   "   SET held_count = c.held_count OPERATOR(pg_catalog.+) hold.quantity"
									   "  FROM hold WHERE c.id OPERATOR(pg_catalog.=) hold.capacity_id"
									   " RETURNING hold.id",
									   5, argtypes);
	Datum		args[5];
	bool		isnull;

	args[0] = capacity_id;
	args[1] = CStringGetTextDatum(actor);
	args[2] = Int32GetDatum(quantity);
	args[3] = TimestampTzGetDatum(expires_at);
	args[4] = BoolGetDatum(by_subject);
	slot_execute(plan, args, NULL, SPI_OK_UPDATE_RETURNING);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
				 errmsg("the hold of time slot %s was not written: a trigger on orders.slot_reservations or orders.service_capacity skipped it",
						uuid_text(capacity_id))));
	return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
}

/*
 * hold_direct — the hold inserted and counted on the slot locked in "d";
 * its id.  Each row as its INSERT or UPDATE statement would write it — but
 * for the hold's row triggers while they would do nothing
 * (SlotShape.insert_idle: the check of its foreign key would find the slot
 * locked by this transaction, the item is NULL, the guard lets this file
 * write).
 */
static Datum
hold_direct(SlotTables *t, OrdersDirect *d, const SlotRow *s, Datum capacity_id, const char *actor,
			bool by_subject, int32 quantity, TimestampTz expires_at)
{
	const int  *pos = t->shape->res_pos;
	Datum		values[R_NCOLUMNS];
	bool		nulls[R_NCOLUMNS];
	Datum	   *row = palloc0(sizeof(Datum) * RelationGetDescr(t->reservations)->natts);
	bool	   *rownulls = palloc(sizeof(bool) * RelationGetDescr(t->reservations)->natts);

	values[R_ID] = orders_make_id(GetCurrentTimestamp());
	values[R_CAPACITY] = capacity_id;
	values[R_HOLDER] = CStringGetTextDatum(actor);
	values[R_QUANTITY] = Int32GetDatum(quantity);
	values[R_STATUS] = CStringGetTextDatum("held");
	values[R_EXPIRES] = TimestampTzGetDatum(expires_at);
	values[R_CREATED] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	values[R_BY_SUBJECT] = BoolGetDatum(by_subject);
	for (int c = 0; c < R_NCOLUMNS; c++)
		nulls[c] = c == R_ITEM || c == R_CONFIRMED || c == R_RELEASED;
	memset(rownulls, true, sizeof(bool) * RelationGetDescr(t->reservations)->natts);
	for (int c = 0; c < R_NCOLUMNS; c++)
	{
		row[pos[c]] = nulls[c] ? (Datum) 0 : values[c];
		rownulls[pos[c]] = nulls[c];
	}
	orders_direct_insert(t->reservations, row, rownulls, !t->shape->insert_idle);
	count_direct(d, s, quantity, 0);
	return values[R_ID];
}

/* caller_is_agent — is the caller (behind a JWT) a delivery agent? */
static bool
caller_is_agent(void)
{
	const char *role = orders_caller_staff_role();

	return role != NULL && strcmp(role, "delivery_agent") == 0;
}

/*
 * slot_staff — is the caller (role "caller") staff for holds: a member of
 * orders.staff_role, the owner of "rel", or (0.27.0 library) active staff
 * with orders.edit behind a JWT?  In an API request only the last
 * (0.37.0 library): the role an API request runs as is every staff
 * member's — a deactivated one, or one without orders.edit, booked places
 * without an order when orders.staff_role named it.  (0.39.0 library) A
 * delivery agent is not, whatever its permissions: agents have orders.edit
 * by default, and one held a slot's every place for a day and booked it.
 */
static bool
slot_staff(Oid rel, Oid caller)
{
	Oid			staff;

	if (orders_api_request_now())
		return orders_caller_may("orders", "edit") && !caller_is_agent();
	staff = orders_staff_role ? get_role_oid(orders_staff_role, true) : InvalidOid;
	return (OidIsValid(staff) && has_privs_of_role(caller, staff)) ||
		has_privs_of_role(caller, orders_rel_owner(rel)) ||
		orders_caller_may("orders", "edit");
}

/*
 * slot_caller — the caller as a holder: the actor (a copy), and in
 * "*by_subject" whether it is a JWT subject (or the acting_for label)
 * rather than a role name.  (0.42.0 library) Refuses (42501) "func" to an
 * API request without a JWT subject: its actor is the API role, which
 * every such request shares — one request's hold would be every other's
 * to read, confirm and release.
 */
static char *
slot_caller(const char *func, bool *by_subject)
{
	char	   *actor = pstrdup(orders_current_actor_from(by_subject));

	if (!*by_subject && orders_api_request_now())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s: the request names nobody to hold the place for", func),
				 errdetail("An API request without a JWT subject (sub) is the API role \"%s\", which every such request shares.",
						   actor),
				 errhint("Sign the request's JWT with the user's sub.")));
	return actor;
}

/*
 * lock_holder — (0.43.0) the transaction lock of holder "actor" (a JWT
 * subject when "by_subject"), taken by an API request's hold after the
 * slot's lock: one holder's holds are counted one by one.  After, not
 * before: taken first, a confirmation then a hold in one transaction
 * deadlocked with another hold of the same holder, and taken by
 * confirmations too, staff's hold then confirmation with a customer's hold
 * (review rounds).  Left: two transactions of one holder each holding two
 * slots in opposite orders can deadlock (40P01, retried).
 */
static void
lock_holder(const char *actor, bool by_subject)
{
	char	   *key = psprintf("orders.slot_holder %c %s", by_subject ? 's' : 'r', actor);

	orders_keyed_lock((int64) hash_bytes_extended((const unsigned char *) key, strlen(key), 0));
	pfree(key);
}

/*
 * holder_room — (0.43.0) may "actor" (a JWT subject when "by_subject"),
 * who is not staff for holds, hold "quantity" more places?  (Called for
 * API requests.)  Nobody holds and has booked more than
 * orders.hold_places places ahead at once across all slots — live holds,
 * and bookings of slots not yet begun whose order the shop has not taken
 * on (still in its lifecycle's first status: a customer does not move it
 * on, built-in "payment succeeded" is staff's) (OR034): one subject held
 * every place of every slot, renewing the holds as they lapsed, and
 * booking them on an unpriced order of its own kept them; counting every
 * booking ahead blocked a customer with paid bookings.  The holder's holds
 * are serialised by its keyed lock (lock_holder, after the slot's), so two
 * holds at once cannot both pass.  Runs
 * as the owner ("res_rel": the reservations), judged at "now" (the hold's
 * clock).  (A holder need not be a
 * customer here: on a cluster of nodes its customer row is on its own
 * node, and it holds a slot of another.)
 */
static void
holder_room(Oid res_rel, const char *actor, bool by_subject, int32 quantity, TimestampTz now)
{
	static Oid	argtypes[3] = {TEXTOID, BOOLOID, TIMESTAMPTZOID};
	SPIPlanPtr	plan;
	Datum		args[3];
	bool		isnull;
	int64		held;

	lock_holder(actor, by_subject);
	plan = orders_get_plan(PLAN_SLOT_HOLDER_PLACES, res_rel,
						   "SELECT pg_catalog.sum(r.quantity) FROM orders.slot_reservations r"
						   "  JOIN orders.service_capacity c ON c.id OPERATOR(pg_catalog.=) r.capacity_id"
						   "  LEFT JOIN orders.order_items i ON i.id OPERATOR(pg_catalog.=) r.order_item_id"
						   "  LEFT JOIN orders.orders o ON o.id OPERATOR(pg_catalog.=) i.order_id"
						   "  LEFT JOIN orders.lifecycles l ON l.name OPERATOR(pg_catalog.=) o.lifecycle"
						   " WHERE r.holder OPERATOR(pg_catalog.=) $1 AND r.held_by_subject OPERATOR(pg_catalog.=) $2"
						   "   AND ((r.status OPERATOR(pg_catalog.=) 'held' AND r.expires_at OPERATOR(pg_catalog.>) $3)"
						   "        OR (r.status OPERATOR(pg_catalog.=) 'confirmed' AND c.starts_at OPERATOR(pg_catalog.>) $3"
						   "            AND o.status OPERATOR(pg_catalog.=) l.initial_status))",
						   3, argtypes);
	args[0] = CStringGetTextDatum(actor);
	args[1] = BoolGetDatum(by_subject);
	args[2] = TimestampTzGetDatum(now);
	orders_execute_latest(plan, args, NULL, SPI_OK_SELECT);
	held = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (isnull)
		held = 0;
	if (held + quantity > orders_hold_places)
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_HOLDER_FULL),
				 errmsg("orders.reserve_time_slot: %s holds or has booked %lld places ahead already; %d more would pass orders.hold_places (%d)",
						orders_clip(actor), (long long) held, quantity, orders_hold_places),
				 errdetail("Counted: live holds, and bookings of slots not yet begun whose order the shop has not taken on (still in its lifecycle's first status)."),
				 errhint("Release places held, or wait until the shop takes on the orders they are booked for.")));
}

/*
 * judge_hold — may "quantity" places of slot "capacity_id" (its row "s",
 * locked; "found" false: no such slot) be held for "minutes" — and, when
 * "holder" is given (an API request's holder who is not staff), within
 * its bound (holder_room)?  Refuses (check_slot, holder_room, check_room)
 * or gives when the hold lapses.  (0.43.0) The
 * clock is read here, once the slot is locked: read before the wait, a
 * hold that lapsed meanwhile still took a place and a slot that started
 * meanwhile was still held.
 */
static TimestampTz
judge_hold(SlotTables *t, Datum capacity_id, bool found, const SlotRow *s, int32 quantity, int32 minutes,
		   const char *holder, bool by_subject)
{
	TimestampTz now = GetCurrentTimestamp();

	check_slot(capacity_id, found, s, now);
	if (holder != NULL)
		holder_room(RelationGetRelid(t->reservations), holder, by_subject, quantity, now);
	check_room(capacity_id, s, quantity, live_holds(t, capacity_id, now));
	return now + (TimestampTz) minutes * USECS_PER_MINUTE;
}

/*
 * orders.reserve_time_slot(capacity_id, duration_minutes, quantity) — hold
 * "quantity" places of a slot for "duration_minutes" (NULL: the setting
 * orders.hold_minutes) and return the reservation id; a longer hold is
 * staff's (slot_staff; 42501, 0.28.0 library).  Refused when the slot
 * does not exist, is not available, has started, or when booked places plus
 * live holds plus this one would exceed max_capacity (check_slot,
 * check_room).  Written
 * without SQL while the tables are as installed (open_tables), else by
 * kept statements; the same decisions either way.
 */
Datum
orders_reserve_time_slot(PG_FUNCTION_ARGS)
{
	Datum		capacity_id;
	int32		minutes;
	int32		quantity;
	char	   *actor;
	bool		by_subject;
	OrdersSavedUser saved;
	SlotTables	t;
	SlotRow		s;
	bool		found;
	bool		limited;
	TimestampTz expires_at;
	Datum		result;

	orders_require_arg(fcinfo, 0, "orders.reserve_time_slot", "capacity_id");
	capacity_id = PG_GETARG_DATUM(0);
	minutes = PG_ARGISNULL(1) ? orders_hold_minutes : PG_GETARG_INT32(1);
	quantity = PG_ARGISNULL(2) ? 1 : PG_GETARG_INT32(2);
	if (minutes < 1 || minutes > 24 * 60)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("orders.reserve_time_slot: duration_minutes must be between 1 and 1440, not %d", minutes)));
	if (quantity < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("orders.reserve_time_slot: quantity must be at least 1, not %d", quantity)));
	/* (0.28.0) a hold longer than the shop's is staff's: anybody held every place for a day */
	if (minutes > orders_hold_minutes && !slot_staff(orders_relid("slot_reservations"), GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("orders.reserve_time_slot: a hold of %d minutes is longer than orders.hold_minutes (%d)",
						minutes, orders_hold_minutes),
				 errhint("Leave duration_minutes out (or ask for less); staff hold places for longer.")));

	actor = slot_caller("orders.reserve_time_slot", &by_subject);
	limited = orders_api_request_now() && !slot_staff(orders_relid("slot_reservations"), GetUserId());
	orders_spi_connect_as_owner(orders_relid("service_capacity"), &saved);
	open_tables(&t);
	if (t.shape != NULL)
	{
		OrdersDirect d;
		bool		was = slots_writing;

		/* the slot's row lock: reservations of one slot are decided one by one */
		orders_direct_begin(&d, t.slots, slot_counts);
		found = lock_slot_direct(&d, t.shape, capacity_id, &s);
		expires_at = judge_hold(&t, capacity_id, found, &s, quantity, minutes, limited ? actor : NULL, by_subject);
		slots_writing = true;
		PG_TRY();
		{
			result = hold_direct(&t, &d, &s, capacity_id, actor, by_subject, quantity, expires_at);
		}
		PG_FINALLY();
		{
			slots_writing = was;
		}
		PG_END_TRY();
		orders_direct_end(&d);
	}
	else
	{
		Oid			slots_rel = RelationGetRelid(t.slots);

		found = lock_slot(slots_rel, capacity_id, &s);
		expires_at = judge_hold(&t, capacity_id, found, &s, quantity, minutes, limited ? actor : NULL, by_subject);
		result = hold_sql(slots_rel, capacity_id, actor, by_subject, quantity, expires_at);
	}
	result = SPI_datumTransfer(result, false, sizeof(pg_uuid_t));
	close_tables(&t);
	orders_spi_finish_as(&saved);
	PG_RETURN_DATUM(result);
}

/* A reservation row, locked. */
typedef struct Reservation
{
	Datum		capacity_id;
	char	   *holder;
	bool		by_subject;		/* held by a JWT subject (or acting_for), not a role name */
	int32		quantity;
	char	   *status;
	TimestampTz expires_at;
	bool		released_null;
	TimestampTz released_at;
	bool		item_null;
	Datum		item;
	bool		confirmed_null;
	TimestampTz confirmed_at;
	Datum		whole;			/* the row, typed orders.slot_reservations (SQL only) */
	bool		privileged;		/* the caller is staff or the owner, not the holder */
} Reservation;

/*
 * lock_reservation_sql — lock reservation "id" FOR UPDATE by a kept
 * statement and read it into "r"; false when there is none.
 */
static bool
lock_reservation_sql(Oid res_rel, Datum id, Reservation *r)
{
	static Oid	argtypes[1] = {UUIDOID};
	SPIPlanPtr	plan = orders_get_plan(PLAN_RESERVATION_LOCK, res_rel,
									   "SELECT r.capacity_id, r.holder, r.quantity, r.status, r.expires_at,"
									   "       r.released_at, r, r.held_by_subject"
									   "  FROM orders.slot_reservations r"
									   " WHERE r.id OPERATOR(pg_catalog.=) $1 FOR UPDATE",
									   1, argtypes);
	Datum		args[1] = {id};
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;

	orders_execute(plan, args, NULL, false, 1, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return false;
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	r->capacity_id = SPI_getbinval(tup, desc, 1, &isnull);
	r->holder = SPI_getvalue(tup, desc, 2);
	r->quantity = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
	r->status = SPI_getvalue(tup, desc, 4);
	r->expires_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 5, &isnull));
	r->released_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 6, &r->released_null));
	r->whole = SPI_getbinval(tup, desc, 7, &isnull);
	r->by_subject = DatumGetBool(SPI_getbinval(tup, desc, 8, &isnull));
	return true;
}

/*
 * lock_reservation_direct — the same lock (FOR NO KEY UPDATE: nothing
 * refers to a reservation's key) taken in "d" (begun on the reservations
 * for reservation_changes), the row read into "r".
 */
static bool
lock_reservation_direct(OrdersDirect *d, const SlotShape *sh, Datum id, Reservation *r)
{
	TupleTableSlot *row = d->row;
	const int  *pos = sh->res_pos;
	bool		isnull;

	if (!orders_direct_lock_by_id(d, id))
		return false;
	r->capacity_id = slot_getattr(row, pos[R_CAPACITY] + 1, &isnull);
	r->holder = TextDatumGetCString(slot_getattr(row, pos[R_HOLDER] + 1, &isnull));
	r->by_subject = DatumGetBool(slot_getattr(row, pos[R_BY_SUBJECT] + 1, &isnull));
	r->quantity = DatumGetInt32(slot_getattr(row, pos[R_QUANTITY] + 1, &isnull));
	r->status = TextDatumGetCString(slot_getattr(row, pos[R_STATUS] + 1, &isnull));
	r->expires_at = DatumGetTimestampTz(slot_getattr(row, pos[R_EXPIRES] + 1, &isnull));
	r->released_at = DatumGetTimestampTz(slot_getattr(row, pos[R_RELEASED] + 1, &r->released_null));
	r->confirmed_at = DatumGetTimestampTz(slot_getattr(row, pos[R_CONFIRMED] + 1, &r->confirmed_null));
	r->item = slot_getattr(row, pos[R_ITEM] + 1, &r->item_null);
	return true;
}

/*
 * check_caller — may the caller ("actor", a JWT subject when "by_subject",
 * else a role name; role "caller") act on reservation "r" (id "id")?  The
 * holder — the same text and the same kind (0.42.0 library: a login named
 * after a customer's subject was that customer's holder, and a subject
 * named like a login that login's) — or staff (slot_staff: r->privileged
 * for all but the holder); anybody else is refused (42501).
 */
static void
check_caller(Oid res_rel, Datum id, const char *actor, bool by_subject, Oid caller, Reservation *r)
{
	r->privileged = slot_staff(res_rel, caller);
	if (r->privileged || (r->by_subject == by_subject && strcmp(r->holder, actor) == 0))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("reservation %s belongs to another holder", uuid_text(id)),
			 errhint("Only the holder, staff with permission orders.edit, or a member of the role named by orders.staff_role may confirm or release it.")));
}

/*
 * skipped — refuse (09000) a change of reservation "id" that a trigger of
 * the DBA's skipped (a BEFORE row trigger returned NULL): nothing may be
 * counted for a change that was not written.
 */
static void
skipped(Datum id)
{
	ereport(ERROR,
			(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
			 errmsg("the change of reservation %s was not written: a trigger on orders.slot_reservations skipped it",
					uuid_text(id))));
}

/*
 * change_sql — set the status of a locked reservation (stamping
 * confirmed_at or released_at, linking the order item) and move its places
 * on the slot (held_count += held, booked_count += booked), in one
 * statement: the reservation first, then the slot, as the lock order wants.
 * "*changed": the changed reservation, typed orders.slot_reservations.
 * False when the slot could not take the places: a slot never gets more
 * bookings than max_capacity (the caller refuses).
 */
static bool
change_sql(Oid res_rel, Datum id, const char *status, Datum order_item, bool item_null,
		   int held, int booked, Datum *changed)
{
	static Oid	argtypes[5] = {UUIDOID, TEXTOID, UUIDOID, INT4OID, INT4OID};
	SPIPlanPtr	plan;
	Datum		args[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	bool		isnull;

	plan = orders_get_plan(PLAN_RESERVATION_SET, res_rel,
						   "WITH r AS ("
						   "  UPDATE orders.slot_reservations"
						   "     SET status = $2,"
						   "         confirmed_at = CASE WHEN $2 OPERATOR(pg_catalog.=) 'confirmed'"
						   "                        THEN pg_catalog.now() ELSE confirmed_at END,"
						   "         released_at = CASE WHEN $2 OPERATOR(pg_catalog.=) 'confirmed'"
						   "                       THEN released_at ELSE pg_catalog.now() END,"
						   "         order_item_id = coalesce($3, order_item_id)"
						   "   WHERE id OPERATOR(pg_catalog.=) $1 RETURNING *),"
						   " c AS ("
						   "  UPDATE orders.service_capacity s"
						   "     SET held_count = s.held_count OPERATOR(pg_catalog.+) $4,"
						   "         booked_count = s.booked_count OPERATOR(pg_catalog.+) $5"
						   "    FROM r WHERE s.id OPERATOR(pg_catalog.=) r.capacity_id"
						   "     AND ($5 OPERATOR(pg_catalog.<=) 0 OR s.booked_count OPERATOR(pg_catalog.+) $5"
						   "          OPERATOR(pg_catalog.<=) s.max_capacity)"
						   "  RETURNING s.id)"
						   "SELECT r::orders.slot_reservations, EXISTS (SELECT FROM c) FROM r",
						   5, argtypes);
	args[0] = id;
	args[1] = CStringGetTextDatum(status);
	args[2] = order_item;
	args[3] = Int32GetDatum(held);
	args[4] = Int32GetDatum(booked);
	if (item_null)
		nulls[2] = 'n';
	slot_execute(plan, args, nulls, SPI_OK_SELECT);
	if (SPI_processed == 0)
		skipped(id);
	*changed = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
}

/*
 * change_direct — change_sql's writes without SQL: the reservation locked
 * in "d" changed, then its slot locked (read into "s") and counted —
 * unless a booking would exceed max_capacity (false, nothing counted; the
 * caller refuses).  The check of the reservation's foreign key to its slot,
 * which PostgreSQL runs after an update of a reservation held in the same
 * transaction, is left out once the slot is locked here
 * (orders_direct_check_by_lock).
 */
static bool
change_direct(SlotTables *t, OrdersDirect *d, const Reservation *r, Datum id, const char *status,
			  Datum order_item, bool item_null, int held, int booked, Datum *changed, SlotRow *s)
{
	Datum		values[4];
	bool		nulls[4];
	TimestampTz stamp = GetCurrentTransactionStartTimestamp();	/* now() */
	bool		confirming = strcmp(status, "confirmed") == 0;
	OrdersDirect ds;
	bool		locked;
	bool		fits;

	values[0] = CStringGetTextDatum(status);
	nulls[0] = false;
	values[1] = TimestampTzGetDatum(confirming ? stamp : r->confirmed_at);
	nulls[1] = confirming ? false : r->confirmed_null;
	values[2] = TimestampTzGetDatum(confirming ? r->released_at : stamp);
	nulls[2] = confirming ? r->released_null : false;
	values[3] = item_null ? r->item : order_item;
	nulls[3] = item_null && r->item_null;
	/* a reservation held in this transaction: its slot's check is idle once the slot is locked below */
	orders_direct_check_by_lock(d, t->shape->capacity_check, t->shape->res_pos[R_CAPACITY] + 1);
	if (!orders_direct_update(d, values, nulls))
		skipped(id);
	*changed = ExecFetchSlotHeapTupleDatum(d->next);

	orders_direct_begin(&ds, t->slots, slot_counts);
	locked = lock_slot_direct(&ds, t->shape, r->capacity_id, s);
	if (locked)
		orders_direct_check_locked(d, r->capacity_id);
	fits = locked && (booked <= 0 || (int64) s->booked + booked <= s->max_capacity);
	if (fits)
		count_direct(&ds, s, held, booked);
	orders_direct_end(&ds);
	return fits;
}

/*
 * change_reservation — change reservation "id" (locked: in "d" when the
 * tables are written directly) to "status" with its places moved on the
 * slot (change_sql, change_direct); the changed row in "*changed".  False
 * when the slot could not take the places ("s": the slot as read); a count
 * a DBA's trigger skipped is refused (09000).
 */
static bool
change_reservation(SlotTables *t, OrdersDirect *d, const Reservation *r, Datum id, const char *status,
				   Datum order_item, bool item_null, int held, int booked, Datum *changed, SlotRow *s)
{
	bool		was = slots_writing;
	bool		fits;

	memset(s, 0, sizeof(SlotRow));
	s->max_capacity = -1;
	if (t->shape == NULL)
	{
		/* the slot first (after the reservation): the count is judged under its lock */
		(void) lock_slot(RelationGetRelid(t->slots), r->capacity_id, s);
		if (change_sql(RelationGetRelid(t->reservations), id, status, order_item, item_null,
					   held, booked, changed))
			return true;
		/* no count written: no room, or a trigger of the DBA's skipped it */
		if (booked <= 0 || (int64) s->booked + booked <= s->max_capacity)
			ereport(ERROR,
					(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
					 errmsg("the count of time slot %s was not written: a trigger on orders.service_capacity skipped it",
							uuid_text(r->capacity_id))));
		return false;
	}
	slots_writing = true;
	PG_TRY();
	{
		fits = change_direct(t, d, r, id, status, order_item, item_null, held, booked, changed, s);
	}
	PG_FINALLY();
	{
		slots_writing = was;
	}
	PG_END_TRY();
	return fits;
}

/*
 * lock_item_order — lock order item "item" FOR SHARE (0.37.0 library; FOR
 * KEY SHARE before: an UPDATE of its quantity, product or order did not
 * wait for it, nor it for such an UPDATE, and each judged the other's
 * row as it was — two places booked for a one-unit item; a DELETE or an
 * UPDATE of the item locks it before its order's subtotal, so the item
 * comes first here too, and what is read here is its latest version), then its order
 * FOR NO KEY UPDATE (a status change waits for it, and it for a status
 * change; two confirmations for one order queue rather than each holding a
 * share lock the other's write of the order would wait for), and return
 * that order's status when it is no longer open (cancelled, fulfilled,
 * returned), else NULL: a booking linked to an item of a cancelled order
 * would keep its place, since the cancellation released the order's
 * bookings before it, and one of a completed order could never be given
 * back (0.27.0 library: only cancelled orders were refused).  Taken after
 * the reservation (a held reservation has no item, so no cancellation
 * waits for it) and before the slot.  NULL for an unknown item
 * (require_own_item refuses it to the holder; for staff the foreign key
 * does).  "*quantity": the item's quantity (-1 for an unknown item).
 */
static const char *
lock_item_order(Datum item, int32 *quantity)
{
	static Oid	argtypes[1] = {UUIDOID};
	SPIPlanPtr	plan = orders_get_plan(PLAN_SLOT_ITEM_KEY, orders_relid("order_items"),
									   "SELECT i.order_id, i.quantity FROM orders.order_items i"
									   " WHERE i.id OPERATOR(pg_catalog.=) $1 FOR SHARE",
									   1, argtypes);
	Datum		args[1] = {item};
	bool		isnull;
	const LifecycleState *st;
	char	   *status;

	orders_execute(plan, args, NULL, false, 1, SPI_OK_SELECT);
	*quantity = -1;
	if (SPI_processed == 0)
		return NULL;
	*quantity = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	args[0] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	plan = orders_get_plan(PLAN_SLOT_ITEM_ORDER, orders_relid("orders"),
						   "SELECT o.lifecycle, o.status FROM orders.orders o"
						   " WHERE o.id OPERATOR(pg_catalog.=) $1 FOR NO KEY UPDATE",
						   1, argtypes);
	orders_execute(plan, args, NULL, false, 1, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return NULL;
	status = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	st = lifecycle_find_state(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), status);
	return st != NULL && st->category != CATEGORY_OPEN ? status : NULL;
}

/*
 * begin_reservation_call — the common start of confirm_booking and
 * release_reservation: argument check, identity (read before the owner
 * switch), SPI as the owner, the tables opened, and the reservation locked
 * (in "d", begun, when the tables are written directly: the caller ends
 * it) and checked for the caller's right to act on it.  Refuses an unknown
 * id (OR024).
 */
static void
begin_reservation_call(FunctionCallInfo fcinfo, const char *func, SlotTables *t, OrdersDirect *d,
					   OrdersSavedUser *saved, Reservation *r)
{
	char	   *actor;
	bool		by_subject;
	Oid			caller = GetUserId();
	Datum		id;
	bool		found;

	orders_require_arg(fcinfo, 0, func, "reservation_id");
	id = PG_GETARG_DATUM(0);
	actor = slot_caller(func, &by_subject);
	orders_spi_connect_as_owner(orders_relid("slot_reservations"), saved);
	open_tables(t);
	if (t->shape != NULL)
	{
		orders_direct_begin(d, t->reservations, reservation_changes);
		found = lock_reservation_direct(d, t->shape, id, r);
	}
	else
		found = lock_reservation_sql(RelationGetRelid(t->reservations), id, r);
	if (!found)
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_RESERVATION_NOT_FOUND),
				 errmsg("reservation %s does not exist", uuid_text(id))));
	check_caller(RelationGetRelid(t->reservations), id, actor, by_subject, caller, r);
}

/*
 * end_reservation_call — begin_reservation_call undone: the direct
 * writes' AFTER row triggers fired, the tables closed, SPI finished and the
 * caller's identity back; "result" (by reference, length "len") copied out
 * of SPI's memory first.
 */
static Datum
end_reservation_call(SlotTables *t, OrdersDirect *d, OrdersSavedUser *saved, Datum result, int len)
{
	if (len != 0)
		result = SPI_datumTransfer(result, false, len);
	if (t->shape != NULL)
		orders_direct_end(d);
	close_tables(t);
	orders_spi_finish_as(saved);
	return result;
}

/*
 * require_reachable_item — (0.39.0 library) in a staff member's API
 * request, refuse (OR028) to link order item "item" unless the caller
 * reads it (customers: require_own_item) (the items'
 * read policy, asked as the caller before the owner switch): staff linked
 * an item of an order outside their scope by its id, which could then
 * never be deleted or lowered (OR031, OR032).  One answer for an item that
 * does not exist.
 */
static void
require_reachable_item(Datum item)
{
	static Oid	argtypes[1] = {UUIDOID};
	SPIPlanPtr	plan;
	Datum		args[1] = {item};

	orders_spi_connect();
	plan = orders_get_plan(PLAN_SLOT_ITEM_REACHED, orders_relid("order_items"),
						   "SELECT FROM orders.order_items i WHERE i.id OPERATOR(pg_catalog.=) $1",
						   1, argtypes);
	orders_execute(plan, args, NULL, true, 1, SPI_OK_SELECT);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_ITEM_NOT_HOLDERS),
				 errmsg("order item %s is not an item of an order you reach", uuid_text(item)),
				 errhint("Link a hold to an item of an order you can read.")));
	SPI_finish();
}

/*
 * require_own_item — refuse (OR028) to link order item "item" to a hold of
 * slot "capacity" unless the item belongs to an order of the holder's
 * customer (account_id = the holder's JWT sub, in lower case as the uuid
 * prints: 0.39.0 library — a sub sent in upper case was nobody's; a
 * holder that is a role name, "by_subject" false, is nobody's: 0.42.0
 * library — a login named after a customer's account booked its items).  The
 * message names only
 * the item id the caller gave, whether the item does not exist or is
 * somebody else's.  (0.28.0 library) When the slot's service_id is a
 * product of the catalog, the item must be of that product (OR033: a
 * customer booked every place of a massage slot for a one-unit sticker).
 * Asked twice (0.37.0 library): before any lock, with the statement's
 * snapshot (nobody locks rows of others' orders by naming their items),
 * and, "latest", once the item and its order are locked, with a new
 * snapshot — the item's product or order, or the order's customer, may
 * have changed while the locks were waited for.
 */
static void
require_own_item(Datum item, const char *holder, bool by_subject, Datum capacity, bool latest)
{
	static Oid	argtypes[3] = {UUIDOID, TEXTOID, UUIDOID};
	Oid			items_rel = orders_relid("order_items");
	SPIPlanPtr	plan;
	Datum		args[3];
	bool		isnull;

	plan = orders_get_plan(PLAN_SLOT_ITEM_OWNER, items_rel,
						   "SELECT NOT EXISTS (SELECT FROM orders.products p"
						   "                    WHERE p.id OPERATOR(pg_catalog.=) s.service_id)"
						   "       OR i.product_id IS NOT DISTINCT FROM s.service_id"
						   "  FROM orders.order_items i"
						   "  JOIN orders.orders o ON o.id OPERATOR(pg_catalog.=) i.order_id"
						   "  JOIN orders.customers c ON c.id OPERATOR(pg_catalog.=) o.customer_id,"
						   "       orders.service_capacity s"
						   " WHERE i.id OPERATOR(pg_catalog.=) $1"
						   "   AND c.account_id::pg_catalog.text OPERATOR(pg_catalog.=) pg_catalog.lower($2)"
						   "   AND s.id OPERATOR(pg_catalog.=) $3",
						   3, argtypes);
	args[0] = item;
	args[1] = CStringGetTextDatum(holder);
	args[2] = capacity;
	if (by_subject)
		orders_execute(plan, args, NULL, !latest, 1, SPI_OK_SELECT);
	if (!by_subject || SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_ITEM_NOT_HOLDERS),
				 errmsg("order item %s is not an item of the holder's orders", uuid_text(item)),
				 errhint("Link a hold to an item of your own order; staff may link any item.")));
	if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_ITEM_OTHER_SERVICE),
				 errmsg("order item %s is not of the service of slot %s", uuid_text(item), uuid_text(capacity)),
				 errdetail("The slot's service_id is a product of the catalog; the item is of another product or of none."),
				 errhint("Book the slot for an item of its service's product; staff may link any item.")));
}

/*
 * require_item_room — refuse (OR032) a holder's booking of "quantity"
 * places for order item "item" of "item_quantity" units when its bookings
 * would then hold more places than the item has units: each place is paid
 * as one unit of the item (0.27.0 library: a customer held 20 places for
 * one service item).  Runs under the item's order lock
 * (lock_item_order), so two confirmations for one item count each other.
 */
static void
require_item_room(Datum id, Datum item, int32 quantity, int32 item_quantity)
{
	static Oid	argtypes[1] = {UUIDOID};
	SPIPlanPtr	plan = orders_get_plan(PLAN_SLOT_ITEM_BOOKED, orders_relid("slot_reservations"),
									   "SELECT pg_catalog.sum(r.quantity) FROM orders.slot_reservations r"
									   " WHERE r.order_item_id OPERATOR(pg_catalog.=) $1"
									   "   AND r.status OPERATOR(pg_catalog.=) 'confirmed'",
									   1, argtypes);
	Datum		args[1] = {item};
	bool		isnull;
	int64		booked;

	orders_execute(plan, args, NULL, false, 1, SPI_OK_SELECT);
	booked = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (isnull)
		booked = 0;
	if (booked + quantity > item_quantity)
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_ITEM_OVERBOOKED),
				 errmsg("reservation %s holds %d places; order item %s has %d units, " INT64_FORMAT " of them booked already",
						uuid_text(id), quantity, uuid_text(item), item_quantity, booked),
				 errhint("Raise the item's quantity (each place is one unit), or hold fewer places.")));
}

/*
 * orders.item_booked_places(item_id) — for booked_item_guard (0.37.0
 * library): the places the confirmed reservations of order item "item_id"
 * hold (0 when it is only held), NULL when no live reservation links it;
 * read with the latest snapshot.  The guard runs under the item's row
 * lock, which a confirmation holds FOR SHARE until it commits, so no
 * booking of the item is in flight; at REPEATABLE READ the transaction's
 * snapshot missed a booking committed after it, and an item's quantity
 * went below its places.  Runs as its caller (the guard, SECURITY DEFINER).
 */
Datum
orders_item_booked_places(PG_FUNCTION_ARGS)
{
	static Oid	argtypes[1] = {UUIDOID};
	Datum		args[1] = {PG_GETARG_DATUM(0)};
	SPIPlanPtr	plan;
	bool		live;
	bool		isnull;
	int64		places;

	orders_spi_connect();
	plan = orders_get_plan(PLAN_SLOT_ITEM_PLACES, orders_relid("slot_reservations"),
						   "SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 0,"
						   "       pg_catalog.sum(r.quantity) FILTER (WHERE r.status OPERATOR(pg_catalog.=) 'confirmed')"
						   "  FROM orders.slot_reservations r"
						   " WHERE r.order_item_id OPERATOR(pg_catalog.=) $1"
						   "   AND r.status OPERATOR(pg_catalog.=) ANY ('{held,confirmed}'::pg_catalog.text[])",
						   1, argtypes);
	orders_execute_latest(plan, args, NULL, SPI_OK_SELECT);
	live = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	places = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	if (isnull)
		places = 0;
	SPI_finish();
	if (!live)
		PG_RETURN_NULL();
	PG_RETURN_INT64(places);
}

/* hold_expired — refuse (OR026) to confirm hold "id" that lapsed at "expires_at". */
static void
hold_expired(Datum id, TimestampTz expires_at)
{
	ereport(ERROR,
			(errcode(ERRCODE_ORDERS_HOLD_EXPIRED),
			 errmsg("the hold %s expired at %s and cannot be confirmed",
					uuid_text(id), ts_text(expires_at)),
			 errhint("Reserve the slot again; it may have been taken meanwhile.")));
}

/*
 * slot_full — refuse (OR023) a confirmation the slot has no room for (its
 * max_capacity was lowered below the places booked and held).  "s": the
 * slot as change_reservation read it, locked.
 */
static void
slot_full(Datum capacity_id, int32 quantity, const SlotRow *s)
{
	ereport(ERROR,
			(errcode(ERRCODE_ORDERS_SLOT_FULL),
			 errmsg("time slot %s has no room to book %d more: %d of %d booked",
					uuid_text(capacity_id), quantity, s->booked, s->max_capacity),
			 errhint("Raise max_capacity, or release the hold.")));
}

/*
 * orders.confirm_booking(reservation_id, order_item_id) — make a live hold a
 * booking (held_count down, booked_count up, by its quantity) and link it to
 * the order item; return the reservation.  Confirming a confirmed
 * reservation again changes nothing.  A released hold (OR025) or a lapsed
 * one (OR026, by the clock, whether or not cleanup has marked it) is
 * refused; so is an item of another customer's order, or none (OR028,
 * unless the caller is staff outside an API request: a booking without an
 * order could never be given back through the API — 0.39.0 library: staff
 * behind a JWT name an item too, one of an order they read), and a booking
 * beyond max_capacity (OR023).
 */
Datum
orders_confirm_booking(PG_FUNCTION_ARGS)
{
	Datum		id;
	SlotTables	t;
	OrdersDirect d;
	OrdersSavedUser saved;
	Reservation r;
	SlotRow		s;
	Datum		result;
	const char *closed;
	int32		item_quantity = -1;

	if (!PG_ARGISNULL(1) && orders_api_request_now() && orders_caller_staff_role() != NULL)
		require_reachable_item(PG_GETARG_DATUM(1));
	begin_reservation_call(fcinfo, "orders.confirm_booking", &t, &d, &saved, &r);
	id = PG_GETARG_DATUM(0);
	closed = NULL;
	if (strcmp(r.status, "released") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_RESERVATION_RELEASED),
				 errmsg("reservation %s was released at %s and cannot be confirmed",
						uuid_text(id), r.released_null ? "an unknown time" : ts_text(r.released_at)),
				 errhint("Reserve the slot again.")));
	if (strcmp(r.status, "expired") == 0 ||
		(strcmp(r.status, "held") == 0 && r.expires_at <= GetCurrentTimestamp()))
		hold_expired(id, r.expires_at);

	if (strcmp(r.status, "held") == 0)
	{
		if (PG_ARGISNULL(1) && (!r.privileged || orders_api_request_now()))
			ereport(ERROR,
					(errcode(ERRCODE_ORDERS_ITEM_NOT_HOLDERS),
					 errmsg("reservation %s can be booked only for an item of the holder's orders",
							uuid_text(id)),
					 errhint("Pass order_item_id, the item of your order the booking is for; "
							 "a booking without an order could not be given back.")));
		if (!PG_ARGISNULL(1) && !r.privileged)
			require_own_item(PG_GETARG_DATUM(1), r.holder, r.by_subject, r.capacity_id, false);
		if (!PG_ARGISNULL(1) && (closed = lock_item_order(PG_GETARG_DATUM(1), &item_quantity)) != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_ORDERS_ORDER_CLOSED),
					 errmsg("order item %s belongs to an order that is %s: reservation %s cannot be booked for it",
							uuid_text(PG_GETARG_DATUM(1)), closed, uuid_text(id)),
					 errhint("Release the hold, or confirm it for an item of an open order.")));
		if (!PG_ARGISNULL(1) && !r.privileged)
			require_own_item(PG_GETARG_DATUM(1), r.holder, r.by_subject, r.capacity_id, true);
		if (!PG_ARGISNULL(1) && !r.privileged && item_quantity >= 0)
			require_item_room(id, PG_GETARG_DATUM(1), r.quantity, item_quantity);
		if (!change_reservation(&t, &d, &r, id, "confirmed", PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1),
								PG_ARGISNULL(1), -r.quantity, r.quantity, &result, &s))
			slot_full(r.capacity_id, r.quantity, &s);
		/*
		 * Judged again now that the slot is locked: a reservation decided
		 * under that lock after the hold lapsed (and so not counting it)
		 * committed before we got it; the booking must not take its place.
		 */
		if (r.expires_at <= GetCurrentTimestamp())
			hold_expired(id, r.expires_at);
	}
	else						/* confirmed already: unchanged */
		result = t.shape != NULL ? ExecFetchSlotHeapTupleDatum(d.row) : r.whole;
	PG_RETURN_DATUM(end_reservation_call(&t, &d, &saved, result, -1));
}

/*
 * orders.release_reservation(reservation_id) — give a hold back at once
 * (held_count down).  True when a hold was released; false when there was
 * nothing to release (already released, expired or confirmed: a confirmed
 * booking is given back by cancelling its order).
 */
Datum
orders_release_reservation(PG_FUNCTION_ARGS)
{
	SlotTables	t;
	OrdersDirect d;
	OrdersSavedUser saved;
	Reservation r;
	Datum		changed;
	SlotRow		s;
	bool		released = false;

	begin_reservation_call(fcinfo, "orders.release_reservation", &t, &d, &saved, &r);
	if (strcmp(r.status, "held") == 0)
	{
		(void) change_reservation(&t, &d, &r, PG_GETARG_DATUM(0), "released", (Datum) 0, true,
								  -r.quantity, 0, &changed, &s);
		released = true;
	}
	(void) end_reservation_call(&t, &d, &saved, (Datum) 0, 0);
	PG_RETURN_BOOL(released);
}

/*
 * give_back — take the places of the reservations just released or expired
 * off their slots: "released", a kept statement's result of one row
 * (slot ids, held places, booked places: arrays in slot id order).  The
 * slots are locked in id order first: cleanup and cancellations each give
 * back places on several slots, and in any other order two of them could
 * wait for each other's slots (40P01).  Returns how many slots.
 */
static int
give_back(void)
{
	static Oid	lock_types[1] = {UUIDARRAYOID};
	static Oid	count_types[3] = {UUIDARRAYOID, INT4ARRAYOID, INT4ARRAYOID};
	Oid			slots_rel = orders_relid("service_capacity");
	Datum		args[3];
	bool		isnull;
	int			i;
	SPIPlanPtr	lock,
				count;

	for (i = 0; i < 3; i++)
	{
		args[i] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 1, &isnull);
		if (isnull)
			return 0;			/* nothing released */
	}
	lock = orders_get_keyed_plan(PLAN_SLOT_LOCK_MANY, slots_rel,
						         "SELECT FROM orders.service_capacity"
						         " WHERE id OPERATOR(pg_catalog.=) ANY ($1)"
						         " ORDER BY id FOR NO KEY UPDATE",
						         1, lock_types);
	orders_execute(lock, args, NULL, false, 0, SPI_OK_SELECT);
	count = orders_get_keyed_plan(PLAN_SLOT_GIVE_BACK, slots_rel,
							      "UPDATE orders.service_capacity c"
							      "   SET held_count = c.held_count OPERATOR(pg_catalog.-) p.held,"
							      "       booked_count = c.booked_count OPERATOR(pg_catalog.-) p.booked"
							      "  FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3))"
							      "       AS p (id, held, booked)"
							      " WHERE c.id OPERATOR(pg_catalog.=) p.id",
							      3, count_types);
	slot_execute(count, args, NULL, SPI_OK_UPDATE);
	return (int) SPI_processed;
}

/*
 * The per-slot arrays give_back takes, from a CTE "gone" (capacity_id,
 * quantity, was: the status before).
 */
#define PER_SLOT_ARRAYS \
	" per_slot AS (" \
	"  SELECT capacity_id," \
	"         coalesce(pg_catalog.sum(quantity) FILTER (WHERE was OPERATOR(pg_catalog.=) 'held'), 0)::pg_catalog.int4 AS held," \
	"         coalesce(pg_catalog.sum(quantity) FILTER (WHERE was OPERATOR(pg_catalog.=) 'confirmed'), 0)::pg_catalog.int4 AS booked," \
	"         pg_catalog.count(*) AS n" \
	"    FROM gone GROUP BY capacity_id)" \
	"SELECT pg_catalog.array_agg(capacity_id ORDER BY capacity_id)," \
	"       pg_catalog.array_agg(held ORDER BY capacity_id)," \
	"       pg_catalog.array_agg(booked ORDER BY capacity_id)," \
	"       coalesce(pg_catalog.sum(n), 0)::pg_catalog.int8" \
	"  FROM per_slot"

/*
 * orders.cleanup_expired_reservations() — mark every lapsed hold expired and
 * take it off its slot's held_count; returns how many.  Runs of it never
 * overlap: a run that finds another holding the job lock returns 0 at once.
 * Safe beside reservations, confirmations and cancellations (it locks
 * reservations, then slots in id order, like they do).
 */
Datum
orders_cleanup_expired_reservations(PG_FUNCTION_ARGS)
{
	static Oid	argtypes[1] = {TIMESTAMPTZOID};
	Oid			res_rel;
	OrdersSavedUser saved;
	SPIPlanPtr	plan;
	Datum		args[1];
	bool		isnull;
	int64		expired;

	(void) fcinfo;
	if (!DatumGetBool(DirectFunctionCall1(pg_try_advisory_xact_lock_int8,
										  Int64GetDatum(CLEANUP_LOCK_KEY))))
		PG_RETURN_INT32(0);

	res_rel = orders_relid("slot_reservations");
	orders_spi_connect_as_owner(res_rel, &saved);
	plan = orders_get_plan(PLAN_SLOT_CLEANUP, res_rel,
						   "WITH gone AS ("
						   "  UPDATE orders.slot_reservations"
						   "     SET status = 'expired', released_at = $1"
						   "   WHERE status OPERATOR(pg_catalog.=) 'held'"
						   "     AND expires_at OPERATOR(pg_catalog.<=) $1"
						   "  RETURNING capacity_id, quantity, 'held'::pg_catalog.text AS was),"
						   PER_SLOT_ARRAYS,
						   1, argtypes);
	args[0] = TimestampTzGetDatum(GetCurrentTimestamp());
	slot_execute(plan, args, NULL, SPI_OK_SELECT);
	expired = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull));
	(void) give_back();
	orders_spi_finish_as(&saved);
	PG_RETURN_INT32((int32) expired);
}

/*
 * The live bookings (b.id) of the items of the orders $1 (a uuid[], k.order_id):
 * each order's items by its index, then each item's bookings by theirs —
 * a join order the planner cannot change (lateral subqueries it does not
 * pull up), so that a plan made while the tables looked empty or small
 * never reads every reservation (a cancellation read all 80,000 of a
 * table whose statistics were older than its rows: 17 ms instead of 0.06).
 */
#define ORDER_BOOKINGS \
	"  FROM pg_catalog.unnest($1) k (order_id)," \
	"       LATERAL (SELECT i.id FROM orders.order_items i" \
	"                 WHERE i.order_id OPERATOR(pg_catalog.=) k.order_id OFFSET 0) i," \
	"       LATERAL (SELECT b.id FROM orders.slot_reservations b" \
	"                 WHERE b.order_item_id OPERATOR(pg_catalog.=) i.id" \
	"                   AND b.status OPERATOR(pg_catalog.=) ANY ('{held,confirmed}'::pg_catalog.text[])" \
	"                OFFSET 0) b"

/*
 * require_bookings_seen — at REPEATABLE READ or SERIALIZABLE, refuse (40001)
 * the cancellation of the orders "order_ids" (a uuid[]) when the
 * reservations linked to their items, as the transaction's snapshot shows
 * them, are not those of the latest snapshot: a booking confirmed (or
 * released) after the snapshot — the confirmation locked the order, the
 * status UPDATE waited for it — would be missed by the statement that
 * releases them, its place kept for a cancelled order.  No new booking can
 * be linked afterwards: a confirmation waits for the order row this
 * transaction holds.
 */
static void
require_bookings_seen(Oid res_rel, Datum order_ids)
{
	static Oid	argtypes[1] = {UUIDARRAYOID};
	SPIPlanPtr	plan = orders_get_keyed_plan(PLAN_SLOT_ORDER_BOOKINGS, res_rel,
											 "SELECT k.order_id::pg_catalog.text,"
											 "       pg_catalog.array_agg(b.id ORDER BY b.id)::pg_catalog.text"
											 ORDER_BOOKINGS
											 " GROUP BY k.order_id ORDER BY k.order_id",
											 1, argtypes);
	Datum		args[1] = {order_ids};
	SPITupleTable *seen;
	SPITupleTable *latest;
	uint64		nseen;
	uint64		nlatest;
	uint64		a = 0;
	uint64		b = 0;

	orders_execute(plan, args, NULL, false, 0, SPI_OK_SELECT);
	seen = SPI_tuptable;
	nseen = SPI_processed;
	orders_execute_latest(plan, args, NULL, SPI_OK_SELECT);
	latest = SPI_tuptable;
	nlatest = SPI_processed;
	/* both in order id order: the first order whose bookings differ */
	while (a < nseen || b < nlatest)
	{
		char	   *order_a = a < nseen ? SPI_getvalue(seen->vals[a], seen->tupdesc, 1) : NULL;
		char	   *order_b = b < nlatest ? SPI_getvalue(latest->vals[b], latest->tupdesc, 1) : NULL;
		int			cmp = order_a == NULL ? 1 : order_b == NULL ? -1 : strcmp(order_a, order_b);

		if (cmp == 0 &&
			strcmp(SPI_getvalue(seen->vals[a], seen->tupdesc, 2),
				   SPI_getvalue(latest->vals[b], latest->tupdesc, 2)) == 0)
		{
			a++;
			b++;
			continue;
		}
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access due to a concurrent booking of order %s",
						cmp <= 0 ? order_a : order_b),
				 errdetail("A time slot was booked or released for one of its items after this transaction's snapshot."),
				 errhint("Retry the transaction.")));
	}
	SPI_freetuptable(seen);
	SPI_freetuptable(latest);
}

/*
 * release_orders — every held or confirmed reservation linked to the items
 * of the orders "order_ids" (a uuid[]) released, locked in id order, and
 * their places given back to their slots (give_back: slots in id order).
 * Runs as the owner of orders.slot_reservations.
 */
static void
release_orders(Datum order_ids)
{
	static Oid	argtypes[1] = {UUIDARRAYOID};
	Oid			res_rel = orders_relid("slot_reservations");
	OrdersSavedUser saved;
	SPIPlanPtr	plan;
	Datum		args[1] = {order_ids};

	orders_spi_connect_as_owner(res_rel, &saved);
	plan = orders_get_keyed_plan(PLAN_SLOT_RELEASE_ORDER, res_rel,
								 "WITH mine AS ("
								 "  SELECT r.id, r.capacity_id, r.quantity, r.status AS was"
								 "    FROM orders.slot_reservations r"
								 "   WHERE r.id OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT b.id" ORDER_BOOKINGS "))"
								 "     AND r.status OPERATOR(pg_catalog.=) ANY ('{held,confirmed}'::pg_catalog.text[])"
								 "   ORDER BY r.id FOR UPDATE OF r),"
								 " gone AS ("
								 "  UPDATE orders.slot_reservations r"
								 "     SET status = 'released', released_at = pg_catalog.now()"
								 "    FROM mine WHERE r.id OPERATOR(pg_catalog.=) mine.id"
								 "  RETURNING mine.capacity_id, mine.quantity, mine.was),"
								 PER_SLOT_ARRAYS,
								 1, argtypes);
	if (IsolationUsesXactSnapshot())
		require_bookings_seen(res_rel, order_ids);
	slot_execute(plan, args, NULL, SPI_OK_SELECT);
	(void) give_back();
	orders_spi_finish_as(&saved);
}

/* What release_cancelled_bookings folds: the orders whose new row is cancelled. */
typedef struct CancelFold
{
	int			id;				/* column numbers */
	int			lifecycle;
	int			status;
	HTAB	   *orders;			/* OrderCancel by order id */
	MemoryContext scratch;		/* one row's strings */
} CancelFold;

typedef struct OrderCancel
{
	pg_uuid_t	id;				/* hash key */
	char	   *status;			/* its new status, in a cancelled category */
	bool		changed;		/* its old row's status differs (or none was seen) */
} OrderCancel;

/*
 * fold_new — orders.orders row after the change: noted when its status is
 * in a cancelled category (the only rows kept: a statement's memory grows
 * with the orders it cancels, not with the rows it updates).
 */
static void
fold_new(TupleTableSlot *slot, int sign, void *arg)
{
	CancelFold *f = (CancelFold *) arg;
	bool		isnull;
	bool		lnull;
	bool		snull;
	Datum		id = slot_getattr(slot, f->id, &isnull);
	Datum		lifecycle = slot_getattr(slot, f->lifecycle, &lnull);
	Datum		status = slot_getattr(slot, f->status, &snull);
	const LifecycleState *st;
	OrderCancel *c;
	MemoryContext oldcxt;
	bool		found;

	(void) sign;
	if (isnull || lnull || snull)
		return;
	MemoryContextReset(f->scratch);
	oldcxt = MemoryContextSwitchTo(f->scratch);
	st = lifecycle_find_state(TextDatumGetCString(lifecycle), TextDatumGetCString(status));
	MemoryContextSwitchTo(oldcxt);
	if (st == NULL || st->category != CATEGORY_CANCELLED)
		return;
	c = (OrderCancel *) orders_delta_entry(&f->orders, "orders cancelled orders", sizeof(OrderCancel),
										   DatumGetUUIDP(id), true, &found);
	c->status = TextDatumGetCString(status);
	c->changed = true;
}

/* fold_old — orders.orders row before the change: an order noted by fold_new whose status stayed is dropped. */
static void
fold_old(TupleTableSlot *slot, int sign, void *arg)
{
	CancelFold *f = (CancelFold *) arg;
	bool		isnull;
	bool		snull;
	Datum		id;
	Datum		status;
	OrderCancel *c;
	MemoryContext oldcxt;
	bool		found;

	(void) sign;
	if (f->orders == NULL)
		return;					/* nothing cancelled */
	id = slot_getattr(slot, f->id, &isnull);
	status = slot_getattr(slot, f->status, &snull);
	if (isnull)
		return;
	c = (OrderCancel *) orders_delta_entry(&f->orders, NULL, sizeof(OrderCancel),
										   DatumGetUUIDP(id), false, &found);
	if (c == NULL || snull)
		return;
	MemoryContextReset(f->scratch);
	oldcxt = MemoryContextSwitchTo(f->scratch);
	c->changed = strcmp(TextDatumGetCString(status), c->status) != 0;
	MemoryContextSwitchTo(oldcxt);
}

/* status_changed — keep the orders whose status changed into a cancelled one. */
static bool
status_changed(const void *entry)
{
	return ((const OrderCancel *) entry)->changed;
}

/*
 * orders.release_cancelled_bookings() — AFTER UPDATE ... REFERENCING OLD
 * TABLE NEW TABLE FOR EACH STATEMENT on orders.orders (0.25.0; a row
 * trigger WHEN the status changed before, still served).  Every order whose
 * status the statement changed into one of a cancelled category has its
 * held or confirmed reservations released and their places given back —
 * the rule of the row trigger — for all those orders at once:
 * reservations locked in id order, then their slots in id order
 * (give_back), so two cancelling statements sharing slots cannot deadlock
 * on them.  At REPEATABLE READ a booking confirmed after the transaction's
 * snapshot fails the cancellation with 40001 rather than keeping its place
 * (require_bookings_seen).
 */
Datum
orders_release_cancelled_bookings(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = orders_trigger_data(fcinfo, "release_cancelled_bookings",
												ORDERS_TRIG_AFTER | ORDERS_TRIG_UPDATE);
	TupleDesc	desc = RelationGetDescr(trigdata->tg_relation);
	CancelFold	f = {0};
	OrderCancel **entered;
	Datum	   *ids;
	long		n;

	f.id = orders_typed_column(trigdata->tg_relation, "id", UUIDOID);
	f.lifecycle = orders_fnumber(desc, "lifecycle");
	f.status = orders_fnumber(desc, "status");
	f.scratch = AllocSetContextCreate(CurrentMemoryContext, "orders cancelled rows", ALLOCSET_SMALL_SIZES);
	if (TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
	{
		/* the 0.24.0 form: a row trigger WHEN the status changed */
		TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsHeapTuple);

		ExecStoreHeapTuple(trigdata->tg_newtuple, slot, false);
		fold_new(slot, +1, &f);
		ExecStoreHeapTuple(trigdata->tg_trigtuple, slot, false);
		fold_old(slot, -1, &f);
		ExecDropSingleTupleTableSlot(slot);
	}
	else
	{
		orders_require_transition_tables(trigdata, "release_cancelled_bookings");
		orders_for_each_row(trigdata->tg_newtable, desc, +1, fold_new, &f);
		orders_for_each_row(trigdata->tg_oldtable, desc, -1, fold_old, &f);
	}
	MemoryContextDelete(f.scratch);
	entered = (OrderCancel **) orders_sorted_deltas(f.orders, status_changed, &n);
	if (n == 0)
		return PointerGetDatum(NULL);
	ids = palloc(sizeof(Datum) * n);
	for (long i = 0; i < n; i++)
		ids[i] = UUIDPGetDatum(&entered[i]->id);
	release_orders(PointerGetDatum(construct_array(ids, (int) n, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR)));
	return PointerGetDatum(NULL);
}

/*
 * orders.slot_counts_guard() — BEFORE INSERT OR UPDATE OR DELETE on
 * orders.slot_reservations and BEFORE INSERT OR UPDATE OF booked_count,
 * held_count on orders.service_capacity, each row.  Reservations and slot
 * counts change only through this file's functions — or as the table owner
 * (pg_restore, repairs).  A new slot starts with no places taken.
 */
Datum
orders_slot_counts_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = orders_trigger_data(fcinfo, "slot_counts_guard",
												ORDERS_TRIG_BEFORE | ORDERS_TRIG_ROW |
												ORDERS_TRIG_INSERT | ORDERS_TRIG_UPDATE |
												ORDERS_TRIG_DELETE);
	Relation	rel = trigdata->tg_relation;
	bool		is_slots = strcmp(RelationGetRelationName(rel), "service_capacity") == 0;

	if (slots_writing || has_privs_of_role(GetUserId(), rel->rd_rel->relowner))
		return orders_trigger_result(trigdata, NULL);

	if (is_slots && TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		TupleDesc	desc = RelationGetDescr(rel);
		int			cols[2];
		Datum		zeros[2] = {Int32GetDatum(0), Int32GetDatum(0)};
		bool		nulls[2] = {false, false};

		cols[0] = orders_fnumber(desc, "booked_count");
		cols[1] = orders_fnumber(desc, "held_count");
		return orders_trigger_result(trigdata,
									 heap_modify_tuple_by_cols(trigdata->tg_trigtuple, desc,
															   2, cols, zeros, nulls));
	}
	ereport(ERROR,
			(errcode(ERRCODE_ORDERS_COUNTER_MAINTAINED),
			 errmsg("%s are maintained by the extension",
					is_slots ? "booked_count and held_count of orders.service_capacity"
					: "rows of orders.slot_reservations"),
			 errhint("Use orders.reserve_time_slot, orders.confirm_booking and orders.release_reservation.")));
	return PointerGetDatum(NULL);	/* keep compiler quiet */
}
