/*
 * api_roles.c — which sessions' JWT claims are believed.
 *
 * PostgREST and PostGraphile put the verified JWT in settings
 * (request.jwt.claims, jwt.claims.sub) and switch to an API role for the
 * request.  Any login that can run SQL can set those settings too, so the
 * claims are honoured only while the outer role (the one SET ROLE chose;
 * SECURITY DEFINER functions and the owner switch do not change it) is an
 * API role recorded by orders.grant_api() in orders.api_roles, or a
 * superuser (who could become anybody anyway).  Any other login is itself.
 *
 * The recorded roles are cached per backend; a statement trigger on the
 * table (orders.api_roles_changed) sends a relcache invalidation, so every
 * backend reloads once a change commits.
 */
#include "orders.h"

#include "catalog/namespace.h"
#include "miscadmin.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(orders_api_roles_changed);
PG_FUNCTION_INFO_V1(orders_api_request);

static Oid *api_roles = NULL;	/* in CacheMemoryContext */
static int	api_role_count = 0;
static bool api_roles_valid = false;
static bool api_roles_exist = false;	/* false before 0.8.0's upgrade */
static Oid	api_roles_relid = InvalidOid;
static bool callback_registered = false;
uint64		orders_api_roles_changes = 0;	/* invalidations of orders.api_roles or of a role: who is trusted may differ */

/* api_roles_inval — relcache callback: drop the cache when the table changed. */
static void
api_roles_inval(Datum arg, Oid relid)
{
	(void) arg;
	if (relid == InvalidOid || relid == api_roles_relid)
	{
		api_roles_valid = false;
		orders_api_roles_changes++;
	}
}

/* role_attributes_inval — syscache callback: a role changed (its superuser flag decides trust). */
static void
role_attributes_inval(Datum arg, int cacheid, uint32 hashvalue)
{
	(void) arg;
	(void) cacheid;
	(void) hashvalue;
	orders_api_roles_changes++;
}

/* register_callbacks — once per backend: what invalidates the trust decision. */
static void
register_callbacks(void)
{
	if (callback_registered)
		return;
	CacheRegisterRelcacheCallback(api_roles_inval, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHOID, role_attributes_inval, (Datum) 0);
	callback_registered = true;
}

/*
 * load_api_roles — read orders.api_roles as its owner.  When the table does
 * not exist (the library runs before ALTER EXTENSION UPDATE to 0.8.0), the
 * installation has not drawn the boundary yet: remember that.
 */
static void
load_api_roles(void)
{
	Oid			nsp = get_namespace_oid(ORDERS_SCHEMA, true);
	OrdersSavedUser saved;
	Oid		   *roles;
	int			n;

	register_callbacks();
	api_roles_relid = OidIsValid(nsp) ? get_relname_relid("api_roles", nsp) : InvalidOid;
	api_roles_exist = OidIsValid(api_roles_relid);
	api_role_count = 0;
	/* an invalidation arriving while we read must force another load */
	api_roles_valid = true;
	if (!api_roles_exist)
		return;

	orders_spi_connect_as_owner(api_roles_relid, &saved);
	orders_run_load(PLAN_API_ROLES, api_roles_relid,
					"SELECT role_oid::pg_catalog.oid FROM orders.api_roles");
	n = (int) SPI_processed;
	roles = MemoryContextAlloc(CacheMemoryContext, sizeof(Oid) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);

		roles[i] = isnull ? InvalidOid : DatumGetObjectId(d);
	}
	orders_spi_finish_as(&saved);
	if (api_roles != NULL)
		pfree(api_roles);
	api_roles = roles;
	api_role_count = n;
}

/* is_api_role — is "role" recorded in orders.api_roles? */
static bool
is_api_role(Oid role)
{
	if (!api_roles_valid)
		orders_load_cache(load_api_roles, &api_roles_valid);
	for (int i = 0; i < api_role_count; i++)
		if (api_roles[i] == role)
			return true;
	return false;
}

/*
 * orders_claims_trusted — may the JWT settings of this session be believed
 * now?  True for a superuser outer role, for an outer role recorded in
 * orders.api_roles, and (transition only) on an installation whose schema
 * predates the table.
 */
bool
orders_claims_trusted(void)
{
	Oid			outer = GetOuterUserId();

	register_callbacks();		/* (a superuser's trust is counted too) */
	if (superuser_arg(outer))
		return true;
	return is_api_role(outer) || !api_roles_exist;
}

/*
 * orders_security_installed — does the schema have 0.8.0's security objects
 * (orders.api_roles, orders.api_request(), the identity helpers)?
 */
bool
orders_security_installed(void)
{
	if (!api_roles_valid)
		orders_load_cache(load_api_roles, &api_roles_valid);
	return api_roles_exist;
}

/* orders_api_request_now — is the outer role one of orders.api_roles? */
bool
orders_api_request_now(void)
{
	return is_api_role(GetOuterUserId());
}

/*
 * orders.api_request() — is this an API request: is the outer role one of
 * orders.api_roles?  The extension's policies and column rules hold API
 * requests to the persona model; roles a DBA creates and gives policies of
 * their own are judged by those.
 */
Datum
orders_api_request(PG_FUNCTION_ARGS)
{
	(void) fcinfo;
	PG_RETURN_BOOL(orders_api_request_now());
}

/*
 * orders.api_roles_changed() — AFTER ... FOR EACH STATEMENT trigger on
 * orders.api_roles: every backend drops its cached roles once the change
 * commits.
 */
Datum
orders_api_roles_changed(PG_FUNCTION_ARGS)
{
	return orders_cache_changed(fcinfo, "api_roles_changed");
}
