/*
 * identity.c — who the caller is in the data: its customer rows, its staff
 * row, role and permissions.
 *
 * Every row level security policy asks these questions, once per query (as
 * InitPlans).  The answers come from one lookup per command: the caller's
 * staff row and its customer rows, read by index scans on account_id (no
 * SQL, no permission check: they answer only about the caller) and kept
 * until the command, the snapshot, the transaction or the JWT subject
 * changes — so a change made by an earlier command of the transaction, or
 * committed before a later statement's snapshot (READ COMMITTED), is seen,
 * and one statement sees one answer throughout.  The role defaults
 * (orders.staff_role_defaults, a view of constants) are read once per
 * backend.
 *
 *   orders.current_customer_ids()  uuid[]   customers whose account_id is the sub
 *   orders.current_staff_id()      uuid     the staff row of the sub (active or not)
 *   orders.current_staff_role()    text     its role, when it is active
 *   orders.has_permission(a, x)    boolean  staff.permissions -> a -> x when a JSON
 *                                           boolean, else the role's default;
 *                                           false for anyone not active staff
 */
#include "orders.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(orders_current_customer_ids);
PG_FUNCTION_INFO_V1(orders_current_staff_id);
PG_FUNCTION_INFO_V1(orders_current_staff_role);
PG_FUNCTION_INFO_V1(orders_has_permission);

/* The caller's identity, for one command of one transaction, under one snapshot. */
typedef struct CallerIdentity
{
	MemoryContext cxt;			/* what it holds, reset at each load */
	LocalTransactionId lxid;
	SubTransactionId subxid;	/* a rolled-back subtransaction's reads do not stand */
	CommandId	cid;
	OrdersSnapshotKey snapshot; /* read-only statements share a command id */
	uint64		generation;		/* bumped at each load (orders_identity_generation) */
	/* what the actor was last derived from: while unchanged, so is the actor */
	uint64		settings_changes;	/* orders_identity_settings_changes */
	uint64		api_roles_changes;	/* orders_api_roles_changes: API roles, role attributes */
	Oid			outer_user;		/* GetOuterUserId(): are the claims believed */
	Oid			user;			/* GetUserId(): the actor without claims */
	char	   *actor;
	bool		may_be_account;	/* a believed JWT subject or the acting_for label */
	bool		has_staff;		/* a staff row, active or not */
	pg_uuid_t	staff_id;
	bool		active;
	char	   *role;
	Jsonb	   *permissions;
	bool		has_account;	/* may_be_account and a uuid: "account" */
	pg_uuid_t	account;
	bool		customers_read; /* the customer rows are read when first asked */
	int			ncustomers;
	Datum	   *customers;		/* uuid datums */
} CallerIdentity;

/*
 * Two identities are kept, for the two snapshots a statement may alternate
 * between (its own, and a fresh one per query of a volatile function it
 * calls for every row at READ COMMITTED): each is looked up once, not once
 * per row.  A third snapshot replaces the one used longer ago.
 */
#define IDENTITY_SLOTS 2
static CallerIdentity identities[IDENTITY_SLOTS];
static int	last_used = 0;
static uint64 identity_loads = 0;

/* The role defaults (orders.staff_role_defaults), per backend. */
static MemoryContext defaults_cxt = NULL;
static int	ndefaults = 0;
static char **default_roles = NULL;
static char **default_rights = NULL;	/* "area.action" */
static Oid	defaults_relid = InvalidOid;
static bool defaults_valid = false;

/* defaults_inval — relcache callback: the view was replaced (or all flushed). */
static void
defaults_inval(Datum arg, Oid relid)
{
	(void) arg;
	if (relid == InvalidOid || relid == defaults_relid)
		defaults_valid = false;
}

/*
 * load_defaults — read orders.staff_role_defaults once per backend (a view
 * of constants; replacing it, as an upgrade may, invalidates the copy).
 * Run through orders_load_cache: a load that fails (a lock or statement
 * timeout, a cancel) leaves the copy invalid, not valid and empty.
 */
static void
load_defaults(void)
{
	static bool callback_registered = false;
	OrdersSavedUser saved;
	MemoryContext old;

	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(defaults_inval, (Datum) 0);
		callback_registered = true;
	}
	if (defaults_cxt == NULL)
		defaults_cxt = AllocSetContextCreate(TopMemoryContext, "orders role defaults",
											 ALLOCSET_SMALL_SIZES);
	MemoryContextReset(defaults_cxt);
	ndefaults = 0;
	defaults_relid = orders_relid("staff_role_defaults");
	defaults_valid = true;
	orders_spi_connect_as_owner(defaults_relid, &saved);
	orders_run_load(PLAN_ROLE_DEFAULTS, defaults_relid,
					"SELECT d.role, d.area OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) d.action"
					"  FROM orders.staff_role_defaults d");
	old = MemoryContextSwitchTo(defaults_cxt);
	default_roles = palloc(sizeof(char *) * Max(SPI_processed, 1));
	default_rights = palloc(sizeof(char *) * Max(SPI_processed, 1));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		default_roles[ndefaults] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		default_rights[ndefaults++] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
	}
	MemoryContextSwitchTo(old);
	orders_spi_finish_as(&saved);
}

/* role_default — may "role" do "right" ("area.action") by default? */
static bool
role_default(const char *role, const char *right)
{
	if (!defaults_valid)
		orders_load_cache(load_defaults, &defaults_valid);
	for (int i = 0; i < ndefaults; i++)
		if (strcmp(default_roles[i], role) == 0 && strcmp(default_rights[i], right) == 0)
			return true;
	return false;
}

/* attnum — the number of column "name" of a table of the extension. */
static AttrNumber
attnum(TupleDesc desc, const char *name)
{
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return att->attnum;
	}
	elog(ERROR, "orders: column \"%s\" is missing", name);
	return InvalidAttrNumber;	/* keep compiler quiet */
}

/* statement_snapshot — the snapshot the caller's rows are read with: the statement's. */
static Snapshot
statement_snapshot(void)
{
	return ActiveSnapshotSet() ? GetActiveSnapshot() : GetTransactionSnapshot();
}

/*
 * scan_by_account — open an index scan of "relname" through its index
 * "indexname" on account_id = "account", with the active snapshot (the
 * statement's).  A plain index scan, no SQL: it runs once per API request.
 */
static SysScanDesc
scan_by_account(const char *relname, const char *indexname, pg_uuid_t *account, Relation *rel)
{
	Oid			index = orders_index_relid(indexname);
	ScanKeyData key;

	*rel = table_open(orders_relid(relname), AccessShareLock);
	/* systable_beginscan takes the table's column number and maps it */
	ScanKeyInit(&key, attnum(RelationGetDescr(*rel), "account_id"), BTEqualStrategyNumber, F_UUID_EQ,
				UUIDPGetDatum(account));
	return systable_beginscan(*rel, index, true, statement_snapshot(), 1, &key);
}

/*
 * load_identity — read the caller's staff row (an index scan on
 * account_id) into "me", its context reset; its customer rows are read
 * when first asked (read_customers: a query about products needs none).  A
 * sub that is no uuid has neither, nor (0.41.0 library) a role name
 * ("may_be_account" false: no believed JWT subject, no acting_for label).
 */
static void
load_identity(CallerIdentity *me, const char *actor, bool may_be_account, LocalTransactionId lxid,
			  SubTransactionId subxid, CommandId cid, const OrdersSnapshotKey *snapshot)
{
	MemoryContext cxt = me->cxt;
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tuple;
	MemoryContext old;

	if (cxt == NULL)
		cxt = AllocSetContextCreate(TopMemoryContext, "orders caller identity", ALLOCSET_SMALL_SIZES);
	MemoryContextReset(cxt);
	memset(me, 0, sizeof(CallerIdentity));	/* actor NULL: not valid until complete */
	me->cxt = cxt;
	me->lxid = lxid;
	me->subxid = subxid;
	me->cid = cid;
	me->snapshot = *snapshot;
	me->generation = ++identity_loads;
	me->may_be_account = may_be_account;
	me->has_account = may_be_account && orders_account_uuid(actor, &me->account);
	me->customers_read = !me->has_account;
	if (!me->has_account)
	{
		me->actor = MemoryContextStrdup(cxt, actor);
		return;
	}

	old = MemoryContextSwitchTo(cxt);
	scan = scan_by_account("staff", "staff_account_id_key", &me->account, &rel);
	if (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		isnull;
		Datum		d;

		me->has_staff = true;
		me->staff_id = *DatumGetUUIDP(heap_getattr(tuple, attnum(desc, "id"), desc, &isnull));
		d = heap_getattr(tuple, attnum(desc, "is_active"), desc, &isnull);
		me->active = !isnull && DatumGetBool(d);
		d = heap_getattr(tuple, attnum(desc, "role"), desc, &isnull);
		me->role = isnull ? pstrdup("") : TextDatumGetCString(d);
		d = heap_getattr(tuple, attnum(desc, "permissions"), desc, &isnull);
		me->permissions = isnull ? NULL : DatumGetJsonbPCopy(d);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	me->actor = pstrdup(actor);
	MemoryContextSwitchTo(old);
}

/*
 * read_customers — the caller's customer rows (an index scan on
 * account_id), into the identity's context, for the rest of its command.
 */
static void
read_customers(CallerIdentity *me)
{
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tuple;
	MemoryContext old = MemoryContextSwitchTo(me->cxt);
	int			max_customers = 4;

	me->ncustomers = 0;
	me->customers = palloc(sizeof(Datum) * max_customers);
	scan = scan_by_account("customers", "customers_account_id_idx", &me->account, &rel);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		bool		isnull;
		pg_uuid_t  *u = palloc(sizeof(pg_uuid_t));

		*u = *DatumGetUUIDP(heap_getattr(tuple, attnum(RelationGetDescr(rel), "id"),
										 RelationGetDescr(rel), &isnull));
		if (me->ncustomers == max_customers)
		{
			max_customers *= 2;
			me->customers = repalloc(me->customers, sizeof(Datum) * max_customers);
		}
		me->customers[me->ncustomers++] = UUIDPGetDatum(u);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	MemoryContextSwitchTo(old);
	me->customers_read = true;
}

/*
 * same_reads — was "me" read in this transaction, subtransaction and
 * command, under a snapshot that sees what "snapshot" sees?
 */
static bool
same_reads(const CallerIdentity *me, SubTransactionId subxid, CommandId cid, const OrdersSnapshotKey *snapshot)
{
	return me->actor != NULL && me->lxid == MyProc->lxid && me->subxid == subxid && me->cid == cid &&
		orders_same_snapshot(&me->snapshot, snapshot);
}

/*
 * caller_identity — the caller's identity, looked up at most once per
 * command and snapshot (read-only statements of a READ COMMITTED
 * transaction share a command id but not what they see), and again in
 * another subtransaction (what a rolled-back one read does not stand).  The
 * actor is derived again only when something it depends on changed since
 * the last call: the identity settings (their assign hook counts changes),
 * the roles, the list of API roles or any role's attributes (superuser:
 * whose claims are believed) — so a policy asking for every row pays a few
 * comparisons.
 */
static CallerIdentity *
caller_identity(void)
{
	CommandId	cid = GetCurrentCommandId(false);
	OrdersSnapshotKey snapshot = orders_snapshot_key(statement_snapshot());
	SubTransactionId subxid = GetCurrentSubTransactionId();
	Oid			outer_user = GetOuterUserId();
	Oid			user = GetUserId();
	uint64		settings_changes;
	uint64		api_roles_changes;
	const char *actor;
	bool		may_be_account;
	CallerIdentity *me = NULL;

	for (int i = 0; i < IDENTITY_SLOTS; i++)
	{
		CallerIdentity *slot = &identities[(last_used + i) % IDENTITY_SLOTS];

		if (same_reads(slot, subxid, cid, &snapshot) &&
			slot->settings_changes == orders_identity_settings_changes &&
			slot->api_roles_changes == orders_api_roles_changes &&
			slot->outer_user == outer_user && slot->user == user)
		{
			last_used = slot - identities;
			return slot;
		}
	}
	/*
	 * The counters as they are before the actor is derived: an invalidation
	 * processed while deriving or loading (the load opens tables) makes the
	 * next call derive again.
	 */
	settings_changes = orders_identity_settings_changes;
	api_roles_changes = orders_api_roles_changes;
	actor = orders_current_actor_from(&may_be_account);
	for (int i = 0; i < IDENTITY_SLOTS && me == NULL; i++)
	{
		CallerIdentity *slot = &identities[(last_used + i) % IDENTITY_SLOTS];

		if (same_reads(slot, subxid, cid, &snapshot) && slot->may_be_account == may_be_account && strcmp(slot->actor, actor) == 0)
			me = slot;
	}
	if (me == NULL)
	{
		/* the one used longer ago */
		me = &identities[(last_used + 1) % IDENTITY_SLOTS];
		load_identity(me, actor, may_be_account, MyProc->lxid, subxid, cid, &snapshot);
	}
	/* (after the load, which may refuse: then the next call derives again) */
	me->settings_changes = settings_changes;
	me->api_roles_changes = api_roles_changes;
	me->outer_user = outer_user;
	me->user = user;
	last_used = me - identities;
	return me;
}

/*
 * orders_identity_generation — a number that changes whenever the caller's
 * identity is looked up again (another caller, command or subtransaction):
 * what is cached from the identity is current while it is unchanged.
 */
uint64
orders_identity_generation(void)
{
	return caller_identity()->generation;
}

/*
 * orders_caller_staff — is the caller active staff; its staff id and role.
 */
bool
orders_caller_staff(pg_uuid_t *id, const char **role)
{
	const CallerIdentity *me = caller_identity();

	if (!me->has_staff || !me->active)
		return false;
	*id = me->staff_id;
	*role = me->role;
	return true;
}

/*
 * orders_caller_staff_role — the caller's staff role when it is active
 * staff, else NULL (for callers that ask only who, not which id).
 */
const char *
orders_caller_staff_role(void)
{
	const CallerIdentity *me = caller_identity();

	return me->has_staff && me->active ? me->role : NULL;
}

/*
 * orders_caller_customers — the caller's customer ids (uuid datums, valid
 * until the identity is looked up again) and their number.
 */
const Datum *
orders_caller_customers(int *n)
{
	CallerIdentity *me = caller_identity();

	if (!me->customers_read)
		read_customers(me);
	*n = me->ncustomers;
	return me->customers;
}

/*
 * orders_staff_of_account — the staff row (active or not) whose account_id
 * is "account", as a statement that starts now would see it: after a
 * command counter increment, under a fresh snapshot (READ COMMITTED) or the
 * transaction's (REPEATABLE READ) — so a staff row the current statement
 * deleted is gone, one it inserted is there (the activity log's user_id,
 * which its foreign key checks).  False when there is none.
 */
bool
orders_staff_of_account(const pg_uuid_t *account, pg_uuid_t *id)
{
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tuple;
	bool		found = false;

	CommandCounterIncrement();
	PushActiveSnapshot(GetTransactionSnapshot());
	scan = scan_by_account("staff", "staff_account_id_key", (pg_uuid_t *) account, &rel);
	if (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		bool		isnull;

		*id = *DatumGetUUIDP(heap_getattr(tuple, attnum(RelationGetDescr(rel), "id"),
										  RelationGetDescr(rel), &isnull));
		found = !isnull;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	PopActiveSnapshot();
	return found;
}

/* orders.current_customer_ids() — the caller's customer rows (empty: none). */
Datum
orders_current_customer_ids(PG_FUNCTION_ARGS)
{
	int			n;
	const Datum *ids = orders_caller_customers(&n);

	(void) fcinfo;
	PG_RETURN_ARRAYTYPE_P(construct_array((Datum *) ids, n, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
}

/* orders.current_staff_id() — the caller's staff row, active or not; NULL: none. */
Datum
orders_current_staff_id(PG_FUNCTION_ARGS)
{
	const CallerIdentity *me = caller_identity();
	pg_uuid_t  *id;

	if (!me->has_staff)
		PG_RETURN_NULL();
	id = palloc(sizeof(pg_uuid_t));
	*id = me->staff_id;
	PG_RETURN_UUID_P(id);
}

/* orders.current_staff_role() — the role of the caller's active staff row, or NULL. */
Datum
orders_current_staff_role(PG_FUNCTION_ARGS)
{
	const CallerIdentity *me = caller_identity();

	if (!me->has_staff || !me->active)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(me->role));
}

/*
 * orders_caller_may — whether the caller, active staff, may do "action" in
 * "area": its own permissions say so as a JSON boolean, else its role's
 * default.  False for everyone else.
 */
bool
orders_caller_may(const char *area, const char *action)
{
	const CallerIdentity *me = caller_identity();

	if (!me->has_staff || !me->active)
		return false;
	if (me->permissions != NULL && JB_ROOT_IS_OBJECT(me->permissions))
	{
		JsonbValue	v;

		if (getKeyJsonValueFromContainer(&me->permissions->root, area, strlen(area), &v) != NULL &&
			v.type == jbvBinary && JsonContainerIsObject(v.val.binary.data))
		{
			JsonbValue	w;

			if (getKeyJsonValueFromContainer(v.val.binary.data, action, strlen(action), &w) != NULL &&
				w.type == jbvBool)
				return w.val.boolean;
		}
	}
	return role_default(me->role, psprintf("%s.%s", area, action));
}

/* orders.has_permission(area, action) — orders_caller_may; false for NULL input. */
Datum
orders_has_permission(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(orders_caller_may(text_to_cstring(PG_GETARG_TEXT_PP(0)),
									 text_to_cstring(PG_GETARG_TEXT_PP(1))));
}
