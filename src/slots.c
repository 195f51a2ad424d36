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
 * UPDATE), and the decision to hold reads the live holds after taking it,
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

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(orders_reserve_time_slot);
PG_FUNCTION_INFO_V1(orders_confirm_booking);
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

/*
 * lock_slot — lock the slot args[0] (FOR UPDATE) and leave its
 * max_capacity, booked_count, is_available, starts_at as the SPI result (no
 * row: no such slot).  Reservations and confirmations of one slot are
 * decided one by one under this lock.
 */
static void
lock_slot(Oid slots_rel, Datum *args)
{
	static Oid	argtypes[1] = {UUIDOID};
	SPIPlanPtr	plan = orders_get_plan(PLAN_SLOT_LOCK, slots_rel,
									   "SELECT max_capacity, booked_count, is_available, starts_at"
									   "  FROM orders.service_capacity"
									   " WHERE id OPERATOR(pg_catalog.=) $1 FOR UPDATE",
									   1, argtypes);

	orders_execute(plan, args, NULL, false, 1, SPI_OK_SELECT);
}

/*
 * orders.reserve_time_slot(capacity_id, duration_minutes, quantity) — hold
 * "quantity" places of a slot for "duration_minutes" (NULL: the setting
 * orders.hold_minutes) and return the reservation id.  Refused when the slot
 * does not exist, is not available, has started, or when booked places plus
 * live holds plus this one would exceed max_capacity.
 */
Datum
orders_reserve_time_slot(PG_FUNCTION_ARGS)
{
	static Oid	live_types[2] = {UUIDOID, TIMESTAMPTZOID};
	static Oid	insert_types[4] = {UUIDOID, TEXTOID, INT4OID, TIMESTAMPTZOID};
	Datum		capacity_id;
	int32		minutes;
	int32		quantity;
	char	   *actor;
	Oid			slots_rel;
	OrdersSavedUser saved;
	SPIPlanPtr	plan;
	Datum		args[4];
	HeapTuple	row;
	TupleDesc	desc;
	bool		isnull;
	int32		max_capacity;
	int32		booked;
	bool		available;
	TimestampTz starts_at;
	int64		live;
	TimestampTz now = GetCurrentTimestamp();
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
	expires_at = now + (TimestampTz) minutes * USECS_PER_MINUTE;

	actor = orders_current_actor();
	slots_rel = orders_relid("service_capacity");
	orders_spi_connect_as_owner(slots_rel, &saved);

	/* the slot's row lock: reservations of one slot are decided one by one */
	args[0] = capacity_id;
	lock_slot(slots_rel, args);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_SLOT_NOT_FOUND),
				 errmsg("time slot %s does not exist", uuid_text(capacity_id))));
	row = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	max_capacity = DatumGetInt32(SPI_getbinval(row, desc, 1, &isnull));
	booked = DatumGetInt32(SPI_getbinval(row, desc, 2, &isnull));
	available = DatumGetBool(SPI_getbinval(row, desc, 3, &isnull));
	starts_at = DatumGetTimestampTz(SPI_getbinval(row, desc, 4, &isnull));
	if (!available)
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_SLOT_UNAVAILABLE),
				 errmsg("time slot %s is not available for booking", uuid_text(capacity_id))));
	if (starts_at <= now)
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_SLOT_IN_PAST),
				 errmsg("time slot %s started at %s and can no longer be reserved",
						uuid_text(capacity_id), ts_text(starts_at))));

	/* holds that are still live, read after the lock: committed data only */
	plan = orders_get_plan(PLAN_SLOT_LIVE_HOLDS, slots_rel,
						   "SELECT coalesce(pg_catalog.sum(quantity), 0)::pg_catalog.int8"
						   "  FROM orders.slot_reservations"
						   " WHERE capacity_id OPERATOR(pg_catalog.=) $1"
						   "   AND status OPERATOR(pg_catalog.=) 'held'"
						   "   AND expires_at OPERATOR(pg_catalog.>) $2",
						   2, live_types);
	args[1] = TimestampTzGetDatum(now);
	orders_execute(plan, args, NULL, false, 1, SPI_OK_SELECT);
	live = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if ((int64) booked + live + quantity > max_capacity)
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_SLOT_FULL),
				 errmsg("time slot %s has no room for %d more: %d of %d booked, " INT64_FORMAT " held",
						uuid_text(capacity_id), quantity, booked, max_capacity, live),
				 errhint("Choose another slot (orders.available_slots) or try again when holds expire.")));

	/* the hold and its count, in one statement */
	plan = orders_get_plan(PLAN_SLOT_HOLD_INSERT, slots_rel,
						   "WITH hold AS ("
						   "  INSERT INTO orders.slot_reservations"
						   "   (capacity_id, holder, quantity, status, expires_at)"
						   "  VALUES ($1, $2, $3, 'held', $4) RETURNING id, capacity_id, quantity)"
						   "UPDATE orders.service_capacity c"
						   "   SET held_count = c.held_count OPERATOR(pg_catalog.+) hold.quantity"
						   "  FROM hold WHERE c.id OPERATOR(pg_catalog.=) hold.capacity_id"
						   " RETURNING hold.id",
						   4, insert_types);
	args[1] = CStringGetTextDatum(actor);
	args[2] = Int32GetDatum(quantity);
	args[3] = TimestampTzGetDatum(expires_at);
	slot_execute(plan, args, NULL, SPI_OK_UPDATE_RETURNING);
	result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	result = SPI_datumTransfer(result, false, sizeof(pg_uuid_t));

	orders_spi_finish_as(&saved);
	PG_RETURN_DATUM(result);
}

/* A reservation row, locked. */
typedef struct Reservation
{
	Datum		capacity_id;
	char	   *holder;
	int32		quantity;
	char	   *status;
	TimestampTz expires_at;
	bool		released_null;
	TimestampTz released_at;
	HeapTuple	row;
	TupleDesc	desc;
	bool		privileged;		/* the caller is staff or the owner, not the holder */
} Reservation;

/*
 * lock_reservation — lock reservation "id" and check that the caller may
 * act on it: the holder, a member of orders.staff_role, or the table owner
 * (r->privileged for the last two).  Refuses an unknown id (OR024) and
 * anybody else (42501).
 */
static void
lock_reservation(Oid res_rel, Datum id, const char *actor, Oid caller, Reservation *r)
{
	static Oid	argtypes[1] = {UUIDOID};
	SPIPlanPtr	plan;
	Datum		args[1];
	bool		isnull;
	Oid			staff;
	HeapTuple	tup;

	plan = orders_get_plan(PLAN_RESERVATION_LOCK, res_rel,
						   "SELECT r.capacity_id, r.holder, r.quantity, r.status, r.expires_at,"
						   "       r.released_at, r"
						   "  FROM orders.slot_reservations r"
						   " WHERE r.id OPERATOR(pg_catalog.=) $1 FOR UPDATE",
						   1, argtypes);
	args[0] = id;
	orders_execute(plan, args, NULL, false, 1, SPI_OK_SELECT);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_RESERVATION_NOT_FOUND),
				 errmsg("reservation %s does not exist", uuid_text(id))));
	tup = SPI_tuptable->vals[0];
	r->desc = SPI_tuptable->tupdesc;
	r->row = tup;
	r->capacity_id = SPI_getbinval(tup, r->desc, 1, &isnull);
	r->holder = SPI_getvalue(tup, r->desc, 2);
	r->quantity = DatumGetInt32(SPI_getbinval(tup, r->desc, 3, &isnull));
	r->status = SPI_getvalue(tup, r->desc, 4);
	r->expires_at = DatumGetTimestampTz(SPI_getbinval(tup, r->desc, 5, &isnull));
	r->released_at = DatumGetTimestampTz(SPI_getbinval(tup, r->desc, 6, &r->released_null));

	staff = orders_staff_role ? get_role_oid(orders_staff_role, true) : InvalidOid;
	r->privileged = (OidIsValid(staff) && has_privs_of_role(caller, staff)) ||
		has_privs_of_role(caller, orders_rel_owner(res_rel));
	if (r->privileged || strcmp(r->holder, actor) == 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("reservation %s belongs to another holder", uuid_text(id)),
			 errhint("Only the holder or a member of the role named by orders.staff_role may confirm or release it.")));
}

/*
 * change_reservation — set the status of a locked reservation (stamping
 * confirmed_at or released_at, linking the order item) and move its places
 * on the slot (held_count += held, booked_count += booked), in one
 * statement: the reservation first, then the slot, as the lock order wants.
 * Leaves the changed reservation, typed orders.slot_reservations, as the
 * SPI result, beside whether the slot took the places: a slot never gets
 * more bookings than max_capacity (false then, and the caller refuses).
 */
static void
change_reservation(Oid res_rel, Datum id, const char *status, Datum order_item, bool item_null,
				   int held, int booked)
{
	static Oid	argtypes[5] = {UUIDOID, TEXTOID, UUIDOID, INT4OID, INT4OID};
	SPIPlanPtr	plan;
	Datum		args[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};

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
}

/*
 * begin_reservation_call — the common start of confirm_booking and
 * release_reservation: argument check, identity (read before the owner
 * switch), SPI as the owner, and the reservation locked and checked for the
 * caller's right to act on it.
 */
static void
begin_reservation_call(FunctionCallInfo fcinfo, const char *func, Oid *res_rel,
					   OrdersSavedUser *saved, Reservation *r)
{
	char	   *actor;
	Oid			caller = GetUserId();

	orders_require_arg(fcinfo, 0, func, "reservation_id");
	actor = orders_current_actor();
	*res_rel = orders_relid("slot_reservations");
	orders_spi_connect_as_owner(*res_rel, saved);
	lock_reservation(*res_rel, PG_GETARG_DATUM(0), actor, caller, r);
}

/*
 * require_own_item — refuse (OR028) to link order item "item" to a hold
 * unless the item belongs to an order of the holder's customer (account_id
 * = the holder's JWT sub).  The message names only the item id the caller
 * gave, whether the item does not exist or is somebody else's.
 */
static void
require_own_item(Datum item, const char *holder)
{
	static Oid	argtypes[2] = {UUIDOID, TEXTOID};
	Oid			items_rel = orders_relid("order_items");
	SPIPlanPtr	plan;
	Datum		args[2];

	plan = orders_get_plan(PLAN_SLOT_ITEM_OWNER, items_rel,
						   "SELECT 1 FROM orders.order_items i"
						   "  JOIN orders.orders o ON o.id OPERATOR(pg_catalog.=) i.order_id"
						   "  JOIN orders.customers c ON c.id OPERATOR(pg_catalog.=) o.customer_id"
						   " WHERE i.id OPERATOR(pg_catalog.=) $1"
						   "   AND c.account_id::pg_catalog.text OPERATOR(pg_catalog.=) $2",
						   2, argtypes);
	args[0] = item;
	args[1] = CStringGetTextDatum(holder);
	orders_execute(plan, args, NULL, true, 1, SPI_OK_SELECT);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_ITEM_NOT_HOLDERS),
				 errmsg("order item %s is not an item of the holder's orders", uuid_text(item)),
				 errhint("Link a hold to an item of your own order; staff may link any item.")));
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
 * max_capacity was lowered below the places booked and held).
 */
static void
slot_full(Oid slots_rel, Datum capacity_id, int32 quantity)
{
	Datum		args[1];
	bool		isnull;

	args[0] = capacity_id;
	lock_slot(slots_rel, args);
	ereport(ERROR,
			(errcode(ERRCODE_ORDERS_SLOT_FULL),
			 errmsg("time slot %s has no room to book %d more: %d of %d booked",
					uuid_text(capacity_id), quantity,
					DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull)),
					DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull))),
			 errhint("Raise max_capacity, or release the hold.")));
}

/*
 * orders.confirm_booking(reservation_id, order_item_id) — make a live hold a
 * booking (held_count down, booked_count up, by its quantity) and link it to
 * the order item; return the reservation.  Confirming a confirmed
 * reservation again changes nothing.  A released hold (OR025) or a lapsed
 * one (OR026, by the clock, whether or not cleanup has marked it) is
 * refused; so is an item of another customer's order (OR028, unless the
 * caller is staff) and a booking beyond max_capacity (OR023).
 */
Datum
orders_confirm_booking(PG_FUNCTION_ARGS)
{
	Datum		id;
	Oid			res_rel;
	OrdersSavedUser saved;
	Reservation r;
	bool		isnull;
	Datum		result;

	begin_reservation_call(fcinfo, "orders.confirm_booking", &res_rel, &saved, &r);
	id = PG_GETARG_DATUM(0);
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
		if (!PG_ARGISNULL(1) && !r.privileged)
			require_own_item(PG_GETARG_DATUM(1), r.holder);
		change_reservation(res_rel, id, "confirmed", PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1),
						   PG_ARGISNULL(1), -r.quantity, r.quantity);
		if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull)))
			slot_full(orders_relid("service_capacity"), r.capacity_id, r.quantity);
		/*
		 * Judged again now that the slot is locked: a reservation decided
		 * under that lock after the hold lapsed (and so not counting it)
		 * committed before we got it; the booking must not take its place.
		 */
		if (r.expires_at <= GetCurrentTimestamp())
			hold_expired(id, r.expires_at);
		result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	}
	else						/* confirmed already: unchanged */
		result = SPI_getbinval(r.row, r.desc, 7, &isnull);
	result = SPI_datumTransfer(result, false, -1);
	orders_spi_finish_as(&saved);
	PG_RETURN_DATUM(result);
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
	Oid			res_rel;
	OrdersSavedUser saved;
	Reservation r;
	bool		released = false;

	begin_reservation_call(fcinfo, "orders.release_reservation", &res_rel, &saved, &r);
	if (strcmp(r.status, "held") == 0)
	{
		change_reservation(res_rel, PG_GETARG_DATUM(0), "released", (Datum) 0, true, -r.quantity, 0);
		released = true;
	}
	orders_spi_finish_as(&saved);
	PG_RETURN_BOOL(released);
}

/*
 * orders.cleanup_expired_reservations() — mark every lapsed hold expired and
 * take it off its slot's held_count; returns how many.  Runs of it never
 * overlap: a run that finds another holding the job lock returns 0 at once.
 * Safe beside reservations and confirmations (it locks reservations, then
 * slots, like they do).
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
						   "WITH lapsed AS ("
						   "  UPDATE orders.slot_reservations"
						   "     SET status = 'expired', released_at = $1"
						   "   WHERE status OPERATOR(pg_catalog.=) 'held'"
						   "     AND expires_at OPERATOR(pg_catalog.<=) $1"
						   "  RETURNING capacity_id, quantity),"
						   " per_slot AS ("
						   "  SELECT capacity_id, pg_catalog.sum(quantity)::pg_catalog.int4 AS q,"
						   "         pg_catalog.count(*) AS n"
						   "    FROM lapsed GROUP BY capacity_id),"
						   " counted AS ("
						   "  UPDATE orders.service_capacity c"
						   "     SET held_count = c.held_count OPERATOR(pg_catalog.-) p.q"
						   "    FROM per_slot p WHERE c.id OPERATOR(pg_catalog.=) p.capacity_id"
						   "  RETURNING p.n)"
						   "SELECT coalesce(pg_catalog.sum(n), 0)::pg_catalog.int8 FROM counted",
						   1, argtypes);
	args[0] = TimestampTzGetDatum(GetCurrentTimestamp());
	slot_execute(plan, args, NULL, SPI_OK_SELECT);
	expired = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	orders_spi_finish_as(&saved);
	PG_RETURN_INT32((int32) expired);
}

/*
 * orders.release_cancelled_bookings() — AFTER UPDATE OF status ON
 * orders.orders FOR EACH ROW, WHEN the status changed.  When the new status
 * is in the cancelled category, every held or confirmed reservation linked
 * to the order's items is released and its places go back to the slot.
 */
Datum
orders_release_cancelled_bookings(PG_FUNCTION_ARGS)
{
	static Oid	argtypes[1] = {UUIDOID};
	TriggerData *trigdata = orders_trigger_data(fcinfo, "release_cancelled_bookings",
												ORDERS_TRIG_AFTER | ORDERS_TRIG_ROW |
												ORDERS_TRIG_UPDATE);
	TupleDesc	desc = RelationGetDescr(trigdata->tg_relation);
	HeapTuple	newrow = trigdata->tg_newtuple;
	char	   *lname = SPI_getvalue(newrow, desc, SPI_fnumber(desc, "lifecycle"));
	char	   *status = SPI_getvalue(newrow, desc, SPI_fnumber(desc, "status"));
	const LifecycleState *st = lifecycle_find_state(lname, status);
	Oid			res_rel;
	OrdersSavedUser saved;
	SPIPlanPtr	plan;
	Datum		args[1];
	bool		isnull;

	if (st == NULL || st->category != CATEGORY_CANCELLED)
		return PointerGetDatum(NULL);

	res_rel = orders_relid("slot_reservations");
	orders_spi_connect_as_owner(res_rel, &saved);
	plan = orders_get_plan(PLAN_SLOT_RELEASE_ORDER, res_rel,
						   "WITH mine AS ("
						   "  SELECT r.id, r.capacity_id, r.quantity, r.status AS was"
						   "    FROM orders.slot_reservations r"
						   "    JOIN orders.order_items i ON i.id OPERATOR(pg_catalog.=) r.order_item_id"
						   "   WHERE i.order_id OPERATOR(pg_catalog.=) $1"
						   "     AND r.status OPERATOR(pg_catalog.=) ANY ('{held,confirmed}'::pg_catalog.text[])"
						   "   ORDER BY r.id FOR UPDATE OF r),"
						   " gone AS ("
						   "  UPDATE orders.slot_reservations r"
						   "     SET status = 'released', released_at = pg_catalog.now()"
						   "    FROM mine WHERE r.id OPERATOR(pg_catalog.=) mine.id"
						   "  RETURNING mine.capacity_id, mine.quantity, mine.was),"
						   " per_slot AS ("
						   "  SELECT capacity_id,"
						   "         pg_catalog.sum(quantity) FILTER (WHERE was OPERATOR(pg_catalog.=) 'held')::pg_catalog.int4 AS held,"
						   "         pg_catalog.sum(quantity) FILTER (WHERE was OPERATOR(pg_catalog.=) 'confirmed')::pg_catalog.int4 AS booked"
						   "    FROM gone GROUP BY capacity_id)"
						   "UPDATE orders.service_capacity c"
						   "   SET held_count = c.held_count OPERATOR(pg_catalog.-) coalesce(p.held, 0),"
						   "       booked_count = c.booked_count OPERATOR(pg_catalog.-) coalesce(p.booked, 0)"
						   "  FROM per_slot p WHERE c.id OPERATOR(pg_catalog.=) p.capacity_id",
						   1, argtypes);
	args[0] = SPI_getbinval(newrow, desc, SPI_fnumber(desc, "id"), &isnull);
	slot_execute(plan, args, NULL, SPI_OK_UPDATE);
	orders_spi_finish_as(&saved);
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

		cols[0] = SPI_fnumber(desc, "booked_count");
		cols[1] = SPI_fnumber(desc, "held_count");
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
