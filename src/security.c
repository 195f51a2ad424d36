/*
 * security.c — who is acting, and running maintenance as the table owner.
 *
 * Identity: PostgREST puts the verified JWT in request.jwt.claims (claim
 * "sub"), PostGraphile puts the subject in jwt.claims.sub.  Pooled
 * connections keep a setting that was emptied, so '' counts as unset.
 * Without either, the actor is current_user.
 *
 * Owner switch: maintenance a trigger does on another table (history,
 * counters) runs as that table's owner, the way ri_triggers.c does, so a
 * caller who may update an order but not write history still gets history.
 * While switched, names resolve through pg_catalog only: no schema of the
 * caller's search_path and no pg_temp (whose domains and tables would
 * otherwise be found first) can lend code to the owner's statements.
 */
#include "orders.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(orders_current_actor_sql);
PG_FUNCTION_INFO_V1(orders_by_maintainer);
PG_FUNCTION_INFO_V1(orders_restoring);
PG_FUNCTION_INFO_V1(orders_actor_account);
PG_FUNCTION_INFO_V1(orders_actor_is_subject);

/*
 * ORDERS_SUB_MAX — (0.40.0) the longest subject taken, in bytes: a subject
 * is stored as a slot hold's holder and an actor in history, whose indexes
 * took a 40 kB one as the index's 54000 (HTTP 500).  Identity providers'
 * subjects are uuids or short strings ("auth0|…").
 */
#define ORDERS_SUB_MAX 255

/* require_short_sub — refuse (22023) a subject of "len" bytes from "setting" longer than ORDERS_SUB_MAX. */
static void
require_short_sub(size_t len, const char *setting)
{
	if (len > ORDERS_SUB_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the subject in setting \"%s\" is longer than %d bytes (%zu)", setting, ORDERS_SUB_MAX, len),
				 errhint("The API server must put the verified subject of the JWT there.")));
}

/*
 * claim_sub — the "sub" claim of a JSON claims document: a string or a
 * number; NULL when absent, JSON null or "".  Any other "sub" (an object,
 * an array, a boolean) is refused like a claims document that is not an
 * object, rather than silently falling back to current_user; so is one
 * longer than ORDERS_SUB_MAX bytes.
 */
static char *
claim_sub(const char *claims)
{
	Jsonb	   *jb;
	JsonbValue	v;

	jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(claims)));
	if (!JB_ROOT_IS_OBJECT(jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("setting \"request.jwt.claims\" must hold a JSON object")));
	if (getKeyJsonValueFromContainer(&jb->root, "sub", 3, &v) == NULL)
		return NULL;
	if (v.type == jbvString && v.val.string.len > 0)
	{
		require_short_sub(v.val.string.len, "request.jwt.claims");
		return pnstrdup(v.val.string.val, v.val.string.len);
	}
	if (v.type == jbvNumeric)
	{
		char	   *digits = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v.val.numeric)));

		require_short_sub(strlen(digits), "request.jwt.claims");
		return digits;
	}
	if (v.type == jbvNull || v.type == jbvString)
		return NULL;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("claim \"sub\" of setting \"request.jwt.claims\" must be a string or a number"),
			 errhint("The API server must put the verified subject of the JWT there.")));
	return NULL;				/* keep compiler quiet */
}

/*
 * cached_claim_sub — claim_sub() of the claims document, remembered until
 * the identity settings change (orders_identity_settings_changes, counted
 * by their assign hook): every policy of a query asks who is acting, and a
 * request's claims do not change between the questions.  The answer is
 * the remembered string, valid until the next call (NULL when the document
 * has no usable "sub").
 */
static const char *
cached_claim_sub(const char *claims)
{
	static bool valid = false;
	static uint64 changes = 0;	/* the settings' changes when parsed */
	static char *last_sub = NULL;	/* in TopMemoryContext */
	char	   *sub;

	if (!valid || changes != orders_identity_settings_changes)
	{
		uint64		now = orders_identity_settings_changes;

		valid = false;
		sub = claim_sub(claims);	/* may refuse: then nothing is remembered */
		if (last_sub != NULL)
			pfree(last_sub);
		last_sub = sub != NULL ? MemoryContextStrdup(TopMemoryContext, sub) : NULL;
		changes = now;
		valid = true;
	}
	return last_sub;
}

/*
 * The settings the identity is read from are defined by the library
 * (_PG_init, orders.c) rather than left as placeholders: PostgreSQL then
 * keeps their values in these variables, and calls
 * orders_identity_setting_assigned() whenever one changes — set_config(),
 * SET, RESET, the end of a transaction or subtransaction that set it —
 * the way search_path's own hook tells the namespace code its cache is
 * stale.  A policy asking "who is acting?" for every row compares one
 * counter instead of looking the settings up and comparing the documents.
 */
char	   *orders_claims_setting = NULL;	/* request.jwt.claims */
char	   *orders_sub_setting = NULL;	/* jwt.claims.sub */
char	   *orders_acting_for_setting = NULL;	/* orders.acting_for (superusers only) */
uint64		orders_identity_settings_changes = 0;

/* orders_identity_setting_assigned — GUC assign hook of the identity's settings (the claims, the sub, the label). */
void
orders_identity_setting_assigned(const char *newval, void *extra)
{
	(void) newval;
	(void) extra;
	orders_identity_settings_changes++;
}

/*
 * orders_current_actor — the one place identity is read: the JWT "sub" of
 * request.jwt.claims, else jwt.claims.sub, else (0.32.0) orders.acting_for,
 * a label only superusers set (the webhook ingest's "webhook:<endpoint>"),
 * else current_user.  The label never hides a person's JWT subject.  Empty
 * settings and an empty "sub" count as unset.  The claims count only while
 * orders_claims_trusted() (an API role or a superuser is acting); any other
 * login is its outer role, whatever it put in the settings.  Call it before
 * any owner switch, or it reports the owner.
 */
char *
orders_current_actor(void)
{
	return pstrdup(orders_current_actor_peek());
}

/*
 * orders_current_actor_peek — orders_current_actor() without the copy: the
 * string is valid until the settings change or the next call (for a check
 * made on every row, which only compares it).
 */
const char *
orders_current_actor_peek(void)
{
	bool		may_be_account;

	return orders_current_actor_from(&may_be_account);
}

/*
 * orders_current_actor_from — orders_current_actor_peek(), and whether the
 * actor may be a person's account ("*may_be_account"): a believed JWT subject, or
 * the orders.acting_for label, which only superusers set (the owner's
 * act_as names a share link's creator or a workflow's author by it, behind
 * any login) — never the role name.
 */
const char *
orders_current_actor_from(bool *may_be_account)
{
	const char *claims;
	const char *sub;
	bool		labelled = orders_acting_for_setting != NULL && orders_acting_for_setting[0] != '\0';

	*may_be_account = labelled;
	if (!orders_claims_trusted())
		return labelled ? orders_acting_for_setting : GetUserNameFromId(GetUserId(), false);
	claims = orders_claims_setting;
	if (claims != NULL && claims[0] != '\0')
	{
		const char *s = cached_claim_sub(claims);

		if (s != NULL)
		{
			*may_be_account = true;
			return s;
		}
	}
	sub = orders_sub_setting;
	if (sub != NULL && sub[0] != '\0')
	{
		require_short_sub(strlen(sub), "jwt.claims.sub");
		*may_be_account = true;
		return sub;
	}
	return labelled ? orders_acting_for_setting : GetUserNameFromId(GetUserId(), false);
}

/*
 * orders_current_account — the caller's account ("*account"): a believed
 * JWT subject, or the acting_for label, that is a uuid.  (0.41.0 library)
 * A role name is no account, whatever it looks like: a login named after
 * an admin's account id was served as that admin without any claims.
 */
bool
orders_current_account(pg_uuid_t *account)
{
	bool		may_be_account;
	const char *actor = orders_current_actor_from(&may_be_account);

	return may_be_account && orders_account_uuid(actor, account);
}

/* orders_account_uuid — "actor" as a uuid when it is one (8-4-4-4-12 hex digits). */
bool
orders_account_uuid(const char *actor, pg_uuid_t *uuid)
{
	if (strlen(actor) != 36)
		return false;
	for (int i = 0; i < 36; i++)
	{
		bool		dash = (i == 8 || i == 13 || i == 18 || i == 23);

		if (dash ? actor[i] != '-' : !isxdigit((unsigned char) actor[i]))
			return false;
	}
	*uuid = *DatumGetUUIDP(DirectFunctionCall1(uuid_in, CStringGetDatum(actor)));
	return true;
}

/*
 * orders.actor_is_subject() — (0.42.0) is orders.current_actor() a believed
 * JWT subject or the acting_for label, not the login's role name?
 */
Datum
orders_actor_is_subject(PG_FUNCTION_ARGS)
{
	bool		by_subject;

	(void) fcinfo;
	(void) orders_current_actor_from(&by_subject);
	PG_RETURN_BOOL(by_subject);
}

/* orders.actor_account() — the caller's account (orders_current_account), or NULL. */
Datum
orders_actor_account(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *account = palloc(sizeof(pg_uuid_t));

	(void) fcinfo;
	if (!orders_current_account(account))
		PG_RETURN_NULL();
	PG_RETURN_UUID_P(account);
}

/* orders.current_actor() — SQL face of orders_current_actor(). */
Datum
orders_current_actor_sql(PG_FUNCTION_ARGS)
{
	(void) fcinfo;
	PG_RETURN_TEXT_P(cstring_to_text(orders_current_actor()));
}

/* orders_rel_owner — the owner of relation "relid". */
Oid
orders_rel_owner(Oid relid)
{
	HeapTuple	tup;
	Oid			owner;

	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * orders.by_maintainer(rel) — does the current user have the privileges of
 * the table's owner (the extension's own maintenance runs as the owner;
 * superusers have them)?  The column rules of the policies do not apply
 * then.  NULL for a table that does not exist.
 */
Datum
orders_by_maintainer(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		PG_RETURN_NULL();
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	PG_RETURN_BOOL(has_privs_of_role(GetUserId(), owner));
}

/*
 * orders.restoring(rel) — (0.39.0) is the table being loaded by a restore
 * (orders_owner_restoring: a top-level COPY ... FROM into it by its owner,
 * row_security off)?  What the C triggers ask, for the PL/pgSQL ones.
 * NULL for a table that does not exist.
 */
Datum
orders_restoring(PG_FUNCTION_ARGS)
{
	Relation	rel = try_relation_open(PG_GETARG_OID(0), AccessShareLock);
	bool		restoring;

	if (rel == NULL)
		PG_RETURN_NULL();
	restoring = orders_owner_restoring(rel);
	relation_close(rel, AccessShareLock);
	PG_RETURN_BOOL(restoring);
}

/*
 * owner_search_path — the search path of code run as the owner: pg_catalog
 * alone, without the caller's schemas and without pg_temp.
 */
static OverrideSearchPath *
owner_search_path(void)
{
	static OverrideSearchPath *path = NULL;

	if (path == NULL)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(TopMemoryContext);
		OverrideSearchPath *p = palloc0(sizeof(OverrideSearchPath));

		p->schemas = list_make1_oid(PG_CATALOG_NAMESPACE);
		p->addCatalog = false;
		p->addTemp = false;
		MemoryContextSwitchTo(oldcxt);
		path = p;
	}
	return path;
}

/*
 * orders_switch_to_owner — become the owner of relation "relid" for the
 * maintenance that follows, with row level security of that table not
 * forced and names resolved in pg_catalog only (see the file comment); the
 * previous user and security context go to "saved".
 */
void
orders_switch_to_owner(Oid relid, OrdersSavedUser *saved)
{
	Oid			owner = orders_rel_owner(relid);

	GetUserIdAndSecContext(&saved->userid, &saved->sec_context);
	PushOverrideSearchPath(owner_search_path());
	SetUserIdAndSecContext(owner, saved->sec_context |
						   SECURITY_LOCAL_USERID_CHANGE | SECURITY_NOFORCE_RLS);
}

/*
 * orders_restore_user — undo orders_switch_to_owner.  (On error, transaction
 * or subtransaction abort restores the user and pops the search path by
 * itself.)
 */
void
orders_restore_user(const OrdersSavedUser *saved)
{
	SetUserIdAndSecContext(saved->userid, saved->sec_context);
	PopOverrideSearchPath();
}

/*
 * orders_caller_path_begin / orders_caller_path_end — inside the scope of
 * orders_switch_to_owner (and nothing pushed since), the caller's search
 * path back for a moment while the owner stays the user, then the pinned
 * path again.  Only for PostgreSQL's own foreign key checks
 * (direct_write.c): their SQL names every object and operator with its
 * schema, and their cached plans are planned again each time they run
 * under another search path than the one they were planned under — so the
 * same check run under both paths in turn would be planned every time.
 * Begin pops nothing (false) when the current path is not the pinned one.
 */
bool
orders_caller_path_begin(void)
{
	if (!OverrideSearchPathMatchesCurrent(owner_search_path()))
		return false;
	PopOverrideSearchPath();
	return true;
}

void
orders_caller_path_end(bool popped)
{
	if (popped)
		PushOverrideSearchPath(owner_search_path());
}

/*
 * orders_caller_sees — may "caller" (the user saved by the owner switch)
 * see the row of relation "relid" whose id is "id": SELECT on the table,
 * and a row that its row level security lets through?  For refusal
 * messages, which say only what the caller may see.  Called while switched
 * to the owner and connected to SPI.  The read runs as the caller with the
 * caller's search path (its policies are the caller's to evaluate), in a
 * subtransaction: whatever goes wrong there (a policy that fails,
 * row_security = off) means "not visible", never another error in place of
 * the refusal.  The owner and the pinned search path come back after it.
 */
bool
orders_caller_sees(Oid relid, Datum id, const OrdersSavedUser *caller)
{
	static Oid	argtypes[1] = {UUIDOID};
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner_resources = CurrentResourceOwner;
	Oid			owner;
	int			owner_context;
	SPIPlanPtr	plan;
	Datum		args[1];
	bool		visible = false;

	if (pg_class_aclcheck(relid, caller->userid, ACL_SELECT) != ACLCHECK_OK)
		return false;
	GetUserIdAndSecContext(&owner, &owner_context);
	PopOverrideSearchPath();
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		SetUserIdAndSecContext(caller->userid, caller->sec_context);
		plan = orders_get_plan(PLAN_CALLER_SEES, relid,
							   psprintf("SELECT 1 FROM %s WHERE id OPERATOR(pg_catalog.=) $1",
										quote_qualified_identifier(ORDERS_SCHEMA, get_rel_name(relid))),
							   1, argtypes);
		args[0] = id;
		orders_execute(plan, args, NULL, true, 1, SPI_OK_SELECT);
		visible = SPI_processed > 0;
		SetUserIdAndSecContext(owner, owner_context);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();	/* restores the owner */
		visible = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner_resources;
	PushOverrideSearchPath(owner_search_path());
	return visible;
}
