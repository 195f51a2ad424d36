/*
 * identity.c — who the caller is in the data: its customer rows, its staff
 * row, role and permissions.
 *
 * Every row level security policy asks these questions, once per query (as
 * InitPlans).  The answers come from one lookup per command: the caller's
 * staff row (with its role's defaults from orders.staff_role_defaults) and
 * its customer rows, read as the owner of orders.staff and kept until the
 * command, the transaction or the JWT subject changes — so a change made by
 * an earlier command of the transaction is seen, and one statement sees one
 * answer throughout.
 *
 *   orders.current_customer_ids()  uuid[]   customers whose account_id is the sub
 *   orders.current_staff_id()      uuid     the staff row of the sub (active or not)
 *   orders.current_staff_role()    text     its role, when it is active
 *   orders.has_permission(a, x)    boolean  staff.permissions -> a -> x when a JSON
 *                                           boolean, else the role's default;
 *                                           false for anyone not active staff
 */
#include "orders.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

PG_FUNCTION_INFO_V1(orders_current_customer_ids);
PG_FUNCTION_INFO_V1(orders_current_staff_id);
PG_FUNCTION_INFO_V1(orders_current_staff_role);
PG_FUNCTION_INFO_V1(orders_has_permission);

/* The caller's identity, for one command of one transaction. */
typedef struct CallerIdentity
{
	LocalTransactionId lxid;
	CommandId	cid;
	char	   *actor;
	bool		has_staff;		/* a staff row, active or not */
	pg_uuid_t	staff_id;
	bool		active;
	char	   *role;
	Jsonb	   *permissions;
	int			ndefaults;
	char	  **defaults;		/* "area.action" the role may by default */
	int			ncustomers;
	Datum	   *customers;		/* uuid datums */
} CallerIdentity;

static MemoryContext identity_cxt = NULL;
static CallerIdentity identity;

/*
 * load_identity — read the caller's staff and customer rows as the owner of
 * orders.staff, into a fresh context.  A sub that is no uuid has none.
 */
static void
load_identity(const char *actor, LocalTransactionId lxid, CommandId cid)
{
	static Oid	argtypes[1] = {UUIDOID};
	OrdersSavedUser saved;
	Oid			staff_rel;
	SPIPlanPtr	plan;
	Datum		args[1];
	pg_uuid_t	account;
	MemoryContext old;

	if (identity_cxt == NULL)
		identity_cxt = AllocSetContextCreate(TopMemoryContext, "orders caller identity",
											 ALLOCSET_SMALL_SIZES);
	MemoryContextReset(identity_cxt);
	memset(&identity, 0, sizeof(identity));
	identity.actor = MemoryContextStrdup(identity_cxt, actor);
	identity.lxid = lxid;
	identity.cid = cid;
	if (!orders_account_uuid(actor, &account))
		return;

	staff_rel = orders_relid("staff");
	orders_spi_connect_as_owner(staff_rel, &saved);
	plan = orders_get_plan(PLAN_CALLER_IDENTITY, staff_rel,
						   "SELECT s.id, s.is_active, s.role, s.permissions,"
						   "       ARRAY(SELECT d.area OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) d.action"
						   "               FROM orders.staff_role_defaults d"
						   "              WHERE d.role OPERATOR(pg_catalog.=) s.role),"
						   "       ARRAY(SELECT c.id FROM orders.customers c"
						   "              WHERE c.account_id OPERATOR(pg_catalog.=) $1 ORDER BY c.id)"
						   "  FROM (SELECT) AS one"
						   "  LEFT JOIN orders.staff s ON s.account_id OPERATOR(pg_catalog.=) $1",
						   1, argtypes);
	args[0] = UUIDPGetDatum(&account);
	orders_execute(plan, args, NULL, true, 1, SPI_OK_SELECT);
	if (SPI_processed > 0)
	{
		HeapTuple	row = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		d;

		old = MemoryContextSwitchTo(identity_cxt);
		d = SPI_getbinval(row, desc, 1, &isnull);
		if (!isnull)
		{
			Datum	   *elems;
			bool	   *nulls;

			identity.has_staff = true;
			identity.staff_id = *DatumGetUUIDP(d);
			identity.active = DatumGetBool(SPI_getbinval(row, desc, 2, &isnull));
			identity.role = SPI_getvalue(row, desc, 3);
			d = SPI_getbinval(row, desc, 4, &isnull);
			identity.permissions = isnull ? NULL : DatumGetJsonbPCopy(d);
			d = SPI_getbinval(row, desc, 5, &isnull);
			if (!isnull)
			{
				deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT,
								  &elems, &nulls, &identity.ndefaults);
				identity.defaults = palloc(sizeof(char *) * Max(identity.ndefaults, 1));
				for (int i = 0; i < identity.ndefaults; i++)
					identity.defaults[i] = nulls[i] ? "" : TextDatumGetCString(elems[i]);
			}
		}
		d = SPI_getbinval(row, desc, 6, &isnull);
		if (!isnull)
		{
			bool	   *nulls;
			Datum	   *elems;

			deconstruct_array(DatumGetArrayTypeP(d), UUIDOID, UUID_LEN, false, TYPALIGN_CHAR,
							  &elems, &nulls, &identity.ncustomers);
			identity.customers = palloc(sizeof(Datum) * Max(identity.ncustomers, 1));
			for (int i = 0; i < identity.ncustomers; i++)
			{
				pg_uuid_t  *u = palloc(sizeof(pg_uuid_t));

				*u = *DatumGetUUIDP(elems[i]);
				identity.customers[i] = UUIDPGetDatum(u);
			}
		}
		MemoryContextSwitchTo(old);
	}
	orders_spi_finish_as(&saved);
}

/* caller_identity — the caller's identity, looked up at most once per command. */
static const CallerIdentity *
caller_identity(void)
{
	char	   *actor = orders_current_actor();
	CommandId	cid = GetCurrentCommandId(false);

	if (identity.actor == NULL || identity.lxid != MyProc->lxid || identity.cid != cid ||
		strcmp(identity.actor, actor) != 0)
		load_identity(actor, MyProc->lxid, cid);
	return &identity;
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

/* orders.current_customer_ids() — the caller's customer rows (empty: none). */
Datum
orders_current_customer_ids(PG_FUNCTION_ARGS)
{
	const CallerIdentity *me = caller_identity();

	(void) fcinfo;
	PG_RETURN_ARRAYTYPE_P(construct_array(me->customers, me->ncustomers, UUIDOID,
										  UUID_LEN, false, TYPALIGN_CHAR));
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
 * orders.has_permission(area, action) — whether the caller, active staff,
 * may do "action" in "area": its own permissions say so as a JSON boolean,
 * else its role's default.  False for everyone else (and for NULL input).
 */
Datum
orders_has_permission(PG_FUNCTION_ARGS)
{
	const CallerIdentity *me = caller_identity();
	char	   *area;
	char	   *action;
	char	   *wanted;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || !me->has_staff || !me->active)
		PG_RETURN_BOOL(false);
	area = text_to_cstring(PG_GETARG_TEXT_PP(0));
	action = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (me->permissions != NULL && JB_ROOT_IS_OBJECT(me->permissions))
	{
		JsonbValue	v;

		if (getKeyJsonValueFromContainer(&me->permissions->root, area, strlen(area), &v) != NULL &&
			v.type == jbvBinary && JsonContainerIsObject(v.val.binary.data))
		{
			JsonbValue	w;

			if (getKeyJsonValueFromContainer(v.val.binary.data, action, strlen(action), &w) != NULL &&
				w.type == jbvBool)
				PG_RETURN_BOOL(w.val.boolean);
		}
	}
	wanted = psprintf("%s.%s", area, action);
	for (int i = 0; i < me->ndefaults; i++)
		if (strcmp(me->defaults[i], wanted) == 0)
			PG_RETURN_BOOL(true);
	PG_RETURN_BOOL(false);
}
