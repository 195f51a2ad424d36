/*
 * orders.c — module entry point of the orders extension: its settings.
 *
 * The capabilities live one per file: transition.c (status changes),
 * lifecycle.c (graph cache), updated_at.c, security.c (identity, owner
 * switch), spi_plans.c (kept plans), trigger_util.c (trigger boilerplate).
 */
#include "orders.h"

#include "utils/guc.h"

PG_MODULE_MAGIC;

/* orders.notify: announce status changes on channel orders_status. */
bool		orders_notify_enabled = true;

/* orders.hold_minutes: default length of a slot hold. */
int			orders_hold_minutes = 10;

/* orders.staff_role: members may confirm or release anybody's holds. */
char	   *orders_staff_role = NULL;

/* orders.partition: the partition written into the ids this database makes. */
int			orders_partition = 0;

void		_PG_init(void);

/*
 * _PG_init — define the extension's settings.  orders.notify and
 * orders.staff_role are SUSET: a client must neither silence the
 * announcements others rely on nor name itself staff; a DBA sets them per
 * database, role or session (or GRANT SET ON PARAMETER).  orders.hold_minutes
 * is a default any session may change.  orders.partition is SUSET too: a
 * client must not make ids that route to another database.
 */
void
_PG_init(void)
{
	DefineCustomBoolVariable("orders.notify",
							 "Announce each order status change with NOTIFY on channel orders_status.",
							 "PostgreSQL serializes the commits of notifying transactions; "
							 "turn this off where nobody listens and status changes are very frequent.",
							 &orders_notify_enabled,
							 true,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("orders.hold_minutes",
							"Default length, in minutes, of a slot hold made by orders.reserve_time_slot().",
							NULL,
							&orders_hold_minutes,
							10, 1, 24 * 60,
							PGC_USERSET,
							GUC_UNIT_MIN,
							NULL, NULL, NULL);
	DefineCustomStringVariable("orders.staff_role",
							   "Role whose members may confirm or release any holder's slot reservation.",
							   NULL,
							   &orders_staff_role,
							   "orders_staff",
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("orders.partition",
							"Partition number this database writes into the ids it makes (orders.new_id()).",
							"Set per database when several databases serve one order system "
							"behind a proxy (doc/scale-out.md); 0 for a single database.",
							&orders_partition,
							0, 0, ORDERS_MAX_PARTITION,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);
	MarkGUCPrefixReserved("orders");

	/*
	 * The identity's settings, which the API server sets per request
	 * (security.c): defined here only so that their changes are seen; any
	 * role may set them as before (whether they are believed is
	 * orders_claims_trusted()), and they stay out of SHOW ALL and the
	 * sample file like the placeholders they replace.
	 */
	DefineCustomStringVariable("request.jwt.claims",
							   "The verified JWT claims of the API request, as PostgREST sets them.",
							   NULL,
							   &orders_claims_setting,
							   NULL,
							   PGC_USERSET,
							   GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   NULL, orders_identity_setting_assigned, NULL);
	DefineCustomStringVariable("jwt.claims.sub",
							   "The verified subject of the API request's JWT, as PostGraphile sets it.",
							   NULL,
							   &orders_sub_setting,
							   NULL,
							   PGC_USERSET,
							   GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   NULL, orders_identity_setting_assigned, NULL);
}
