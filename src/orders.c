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

/* orders.notify: how status changes are announced on channel orders_status. */
int			orders_notify_mode = ORDERS_NOTIFY_BATCHED;

/* orders.announcer: a batched change starts the database's announcer if none runs. */
bool		orders_announcer_autostart = true;

/* orders.announce_interval: the announcer's pause between batches (ms). */
int			orders_announce_interval = 100;

/* "on"/"off" and the other boolean spellings of the setting up to 0.20.0 */
static const struct config_enum_entry notify_options[] = {
	{"batched", ORDERS_NOTIFY_BATCHED, false},
	{"immediate", ORDERS_NOTIFY_IMMEDIATE, false},
	{"off", ORDERS_NOTIFY_OFF, false},
	{"on", ORDERS_NOTIFY_IMMEDIATE, true},
	{"true", ORDERS_NOTIFY_IMMEDIATE, true},
	{"yes", ORDERS_NOTIFY_IMMEDIATE, true},
	{"1", ORDERS_NOTIFY_IMMEDIATE, true},
	{"false", ORDERS_NOTIFY_OFF, true},
	{"no", ORDERS_NOTIFY_OFF, true},
	{"0", ORDERS_NOTIFY_OFF, true},
	{NULL, 0, false}
};

/* orders.hold_minutes: default length of a slot hold. */
int			orders_hold_minutes = 10;

/* orders.staff_role: members may confirm or release anybody's holds. */
char	   *orders_staff_role = NULL;

/* orders.partition: the partition written into the ids this database makes. */
int			orders_partition = 0;

/* orders.lead_locks_per_request: orders whose lead lock one API request may take. */
int			orders_lead_locks_per_request = 200;
int			orders_hold_places = 20;

/* orders.business_timezone (0.44.0): the shop's zone, when a superuser names it. */
char	   *orders_business_timezone_setting = NULL;

void		_PG_init(void);

/*
 * _PG_init — define the extension's settings.  orders.notify, the
 * announcer's settings and orders.staff_role are SUSET: a client must neither silence the
 * announcements others rely on nor name itself staff; a DBA sets them per
 * database, role or session (or GRANT SET ON PARAMETER).  orders.hold_minutes
 * is SUSET since the 0.28.0 library: it is also the longest hold a holder
 * who is not staff may ask for.  orders.partition is SUSET too: a
 * client must not make ids that route to another database.
 * orders.lead_locks_per_request (0.41.0 library) is SUSET: it bounds what
 * one API request takes of the shared lock table.  orders.business_timezone
 * (0.44.0) is SUSET: a client must not move the shop's day.  Then the
 * executor start hook that plans the extension's tables' CHECK constraints
 * once per backend (statement_checks.c).
 */
void
_PG_init(void)
{
	DefineCustomEnumVariable("orders.notify",
							 "How order status changes are announced on channel orders_status: batched, immediate or off.",
							 "batched: the database's announcer sends them after commit, many per transaction; "
							 "immediate: the changing transaction sends its own at commit (PostgreSQL "
							 "serializes the commits of notifying transactions); off: not at all.",
							 &orders_notify_mode,
							 ORDERS_NOTIFY_BATCHED,
							 notify_options,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("orders.announcer",
							 "Start the database's status announcer when a batched change finds none running.",
							 "Off: batched changes wait until orders.announce_status_changes() is called.",
							 &orders_announcer_autostart,
							 true,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("orders.announce_interval",
							"Pause of the status announcer between two batches.",
							NULL,
							&orders_announce_interval,
							100, 10, 60000,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("orders.hold_minutes",
							"Default length, in minutes, of a slot hold made by orders.reserve_time_slot().",
							NULL,
							&orders_hold_minutes,
							10, 1, 24 * 60,
							PGC_SUSET,
							GUC_UNIT_MIN,
							NULL, NULL, NULL);
	DefineCustomIntVariable("orders.hold_places",
							"Most places one holder who is not staff may hold at once, across all slots (0.43.0).",
							"One JWT subject held every place of every slot, renewing its holds as they lapsed.",
							&orders_hold_places,
							20, 1, 1000000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);
	DefineCustomStringVariable("orders.business_timezone",
							   "The shop's time zone: business dates and years count in it (0.44.0).",
							   "Empty: TimeZone as the session began (the server's, database's or role's, "
							   "or a client's startup packet); a session's SET TIME ZONE never counts.",
							   &orders_business_timezone_setting,
							   "",
							   PGC_SUSET,
							   0,
							   orders_business_timezone_check, NULL, NULL);
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
	DefineCustomIntVariable("orders.lead_locks_per_request",
							"Orders whose leads one API request may move or judge (OR121 beyond).",
							"Each takes an entry of the cluster's shared lock table until the request ends: "
							"keep the API's connection pool times this well under max_locks_per_transaction "
							"times max_connections.  Transactions outside the API are not limited.",
							&orders_lead_locks_per_request,
							200, 1, 1000000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);
	/* (0.32.0) defined before the prefix is reserved: a value set before the library loaded is kept */
	DefineCustomStringVariable("orders.acting_for",
							   "Who the changes of this session are made for when no JWT subject names a person: "
							   "the extension's webhook ingest sets it to webhook:<endpoint>.",
							   "Superusers only (a label in history and the activity log, which "
							   "nobody else may forge); after the JWT subject, before the role.",
							   &orders_acting_for_setting,
							   NULL,
							   PGC_SUSET,
							   GUC_NOT_IN_SAMPLE,
							   NULL, orders_identity_setting_assigned, NULL);
	MarkGUCPrefixReserved("orders");
	orders_statement_checks_install();

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
