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
 */
#include "orders.h"

#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(orders_current_actor_sql);

/* claim_sub — the "sub" claim of a JSON claims document, or NULL. */
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
		return pnstrdup(v.val.string.val, v.val.string.len);
	if (v.type == jbvNumeric)
		return DatumGetCString(DirectFunctionCall1(numeric_out,
												   NumericGetDatum(v.val.numeric)));
	return NULL;
}

/*
 * orders_current_actor — the one place identity is read: the JWT "sub" of
 * request.jwt.claims, else jwt.claims.sub, else current_user.  Empty
 * settings and an empty "sub" count as unset.  Call it before any owner
 * switch, or it reports the owner.
 */
char *
orders_current_actor(void)
{
	const char *claims = GetConfigOption("request.jwt.claims", true, false);
	const char *sub;

	if (claims != NULL && claims[0] != '\0')
	{
		char	   *s = claim_sub(claims);

		if (s != NULL)
			return s;
	}
	sub = GetConfigOption("jwt.claims.sub", true, false);
	if (sub != NULL && sub[0] != '\0')
		return pstrdup(sub);
	return GetUserNameFromId(GetUserId(), false);
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
 * orders_switch_to_owner — become the owner of relation "relid" for the
 * maintenance that follows, with row level security of that table not
 * forced; the previous user and security context go to "saved".
 */
void
orders_switch_to_owner(Oid relid, OrdersSavedUser *saved)
{
	Oid			owner = orders_rel_owner(relid);

	GetUserIdAndSecContext(&saved->userid, &saved->sec_context);
	SetUserIdAndSecContext(owner, saved->sec_context |
						   SECURITY_LOCAL_USERID_CHANGE | SECURITY_NOFORCE_RLS);
}

/*
 * orders_restore_user — undo orders_switch_to_owner.  (On error, transaction
 * abort restores the user by itself.)
 */
void
orders_restore_user(const OrdersSavedUser *saved)
{
	SetUserIdAndSecContext(saved->userid, saved->sec_context);
}
