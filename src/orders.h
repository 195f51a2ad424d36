/*
 * orders.h — shared declarations of the orders extension.
 *
 * Every C file of the extension includes this header.  It declares the
 * extension's own SQLSTATEs, the shared trigger/SPI/security helpers and the
 * lifecycle graph cache.
 */
#ifndef ORDERS_H
#define ORDERS_H

#include "postgres.h"

#include "access/skey.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"

/*
 * SQLSTATEs of the extension, class "OR" (an implementation-defined class:
 * PostgreSQL never uses it).  doc/errors.md lists each with its HTTP status
 * under PostgREST.  Standard codes are used where one fits exactly
 * (22004 null argument, 42501 role not allowed, 23xxx constraints).
 */
#define ERRCODE_ORDERS_INVALID_TRANSITION   MAKE_SQLSTATE('O','R','0','0','1')
#define ERRCODE_ORDERS_UNKNOWN_LIFECYCLE    MAKE_SQLSTATE('O','R','0','0','2')
#define ERRCODE_ORDERS_UNKNOWN_STATUS       MAKE_SQLSTATE('O','R','0','0','3')
#define ERRCODE_ORDERS_LIFECYCLE_CHANGE     MAKE_SQLSTATE('O','R','0','0','4')
#define ERRCODE_ORDERS_NOT_INITIAL_STATUS   MAKE_SQLSTATE('O','R','0','0','5')
#define ERRCODE_ORDERS_ORDER_NOT_FOUND      MAKE_SQLSTATE('O','R','0','0','6')
#define ERRCODE_ORDERS_IDEMPOTENCY_REUSED   MAKE_SQLSTATE('O','R','0','0','7')
#define ERRCODE_ORDERS_BAD_CONFIGURATION    MAKE_SQLSTATE('O','R','0','0','8')
#define ERRCODE_ORDERS_ORDER_NUMBER_RESERVED MAKE_SQLSTATE('O','R','0','0','9')
#define ERRCODE_ORDERS_LEAD_CAPACITY        MAKE_SQLSTATE('O','R','0','1','0')
#define ERRCODE_ORDERS_LEAD_CUSTOMER_MISMATCH MAKE_SQLSTATE('O','R','0','1','1')
#define ERRCODE_ORDERS_NOT_ACCEPTING_LEADS  MAKE_SQLSTATE('O','R','0','1','2')
#define ERRCODE_ORDERS_PURCHASED_BELOW_DELIVERED MAKE_SQLSTATE('O','R','0','1','3')
#define ERRCODE_ORDERS_COUNTER_MAINTAINED   MAKE_SQLSTATE('O','R','0','1','4')
#define ERRCODE_ORDERS_LEAD_NOT_FOUND       MAKE_SQLSTATE('O','R','0','1','5')
#define ERRCODE_ORDERS_SLOT_NOT_FOUND       MAKE_SQLSTATE('O','R','0','2','0')
#define ERRCODE_ORDERS_SLOT_UNAVAILABLE     MAKE_SQLSTATE('O','R','0','2','1')
#define ERRCODE_ORDERS_SLOT_IN_PAST         MAKE_SQLSTATE('O','R','0','2','2')
#define ERRCODE_ORDERS_SLOT_FULL            MAKE_SQLSTATE('O','R','0','2','3')
#define ERRCODE_ORDERS_RESERVATION_NOT_FOUND MAKE_SQLSTATE('O','R','0','2','4')
#define ERRCODE_ORDERS_RESERVATION_RELEASED MAKE_SQLSTATE('O','R','0','2','5')
#define ERRCODE_ORDERS_HOLD_EXPIRED         MAKE_SQLSTATE('O','R','0','2','6')
#define ERRCODE_ORDERS_ITEM_NOT_HOLDERS     MAKE_SQLSTATE('O','R','0','2','8')
#define ERRCODE_ORDERS_ORDER_CLOSED         MAKE_SQLSTATE('O','R','0','2','9')
#define ERRCODE_ORDERS_ITEM_OVERBOOKED      MAKE_SQLSTATE('O','R','0','3','2')
#define ERRCODE_ORDERS_ITEM_OTHER_SERVICE   MAKE_SQLSTATE('O','R','0','3','3')
#define ERRCODE_ORDERS_HOLDER_FULL          MAKE_SQLSTATE('O','R','0','3','4')
#define ERRCODE_ORDERS_INSUFFICIENT_STOCK   MAKE_SQLSTATE('O','R','0','5','0')
#define ERRCODE_ORDERS_STOCK_HELD           MAKE_SQLSTATE('O','R','0','5','1')
#define ERRCODE_ORDERS_LEDGER_POSTED        MAKE_SQLSTATE('O','R','0','5','2')
#define ERRCODE_ORDERS_COLUMN_RESERVED     MAKE_SQLSTATE('O','R','0','6','0')
#define ERRCODE_ORDERS_GROUP_FULL           MAKE_SQLSTATE('O','R','0','7','0')
#define ERRCODE_ORDERS_GATE_CLOSED          MAKE_SQLSTATE('O','R','0','7','1')
#define ERRCODE_ORDERS_LINKS_BELOW_APPROVED MAKE_SQLSTATE('O','R','0','7','2')
#define ERRCODE_ORDERS_SITES_FINAL          MAKE_SQLSTATE('O','R','0','7','3')
#define ERRCODE_ORDERS_GROUP_MOVED          MAKE_SQLSTATE('O','R','0','7','4')
#define ERRCODE_ORDERS_GROUP_NOT_FOUND      MAKE_SQLSTATE('O','R','0','7','5')
#define ERRCODE_ORDERS_SITE_NOT_IN_GROUP    MAKE_SQLSTATE('O','R','0','7','6')
#define ERRCODE_ORDERS_SITE_ITEM            MAKE_SQLSTATE('O','R','0','7','8')
#define ERRCODE_ORDERS_TOO_MANY_ORDERS      MAKE_SQLSTATE('O','R','1','2','1')
/* OR122 (0.41.0): a row others are counted against keeps its id — orders.id_stays() (PL/pgSQL) */

/* Name of the schema every object of the extension lives in. */
#define ORDERS_SCHEMA "orders"

/*
 * First key of the transaction-level advisory lock of an order's leads
 * (0.37.0; "ORDR"): a lead statement holds (ORDERS_LEADS_MOVE_LOCK,
 * uuid_hash(order id)) shared while it judges its leads' customer against
 * the order's, and orders.leads_follow_order takes it exclusively before
 * it takes the leads of an order moved to another customer along
 * (orders.lock_order_leads; lead_move_lock.c).
 */
#define ORDERS_LEADS_MOVE_LOCK 1330791506

/*
 * Lock spaces — the fourth field of an advisory lock's tag — of the
 * extension's own locks.  SQL's pg_advisory_* build 1 (one bigint key) or
 * 2 (two int4 keys), so no session can take or hold one of these.  (0.41.0
 * library: any login could hold an order's lead lock with
 * pg_advisory_lock(int4, int4), and every lead write and move of that order
 * waited for it; the keyed locks the SQL took with pg_advisory_xact_lock
 * likewise — a shop's orders by customer phone, a staff member's slots.)
 */
#define ORDERS_LOCK_SPACE_ANNOUNCER 0x4f52	/* announcer.c */
#define ORDERS_LOCK_SPACE_LEADS 0x4f53	/* lead_move_lock.c */
#define ORDERS_LOCK_SPACE_KEYED 0x4f54	/* keyed_lock.c: orders.xact_lock(bigint) */
extern void orders_keyed_lock(int64 key);

/* ---- lead_move_lock.c (0.40.0): that lock, at most orders.lead_locks_per_request per API request ---- */
extern void orders_lock_order_leads(Datum order_id, bool move);

/* Channel on which status changes are announced with pg_notify. */
#define ORDERS_STATUS_CHANNEL "orders_status"

/* ---- orders.c: settings ---- */

/* orders.notify: how status changes are announced (announcer.c) */
typedef enum OrdersNotifyMode
{
	ORDERS_NOTIFY_OFF,
	ORDERS_NOTIFY_BATCHED,		/* by the database's announcer, after commit */
	ORDERS_NOTIFY_IMMEDIATE		/* by the changing transaction, at its commit */
} OrdersNotifyMode;

extern int	orders_notify_mode;
extern bool orders_announcer_autostart;
extern int	orders_announce_interval;
extern int	orders_hold_minutes;
extern int	orders_hold_places;
extern char *orders_business_timezone_setting;
extern bool orders_business_timezone_check(char **newval, void **extra, GucSource source);
extern char *orders_staff_role;
extern int	orders_partition;
extern int	orders_lead_locks_per_request;

/* ---- ids.c: ids that carry their partition ---- */

#define ORDERS_MAX_PARTITION 4095

extern Datum orders_make_id(TimestampTz now);

/* ---- trigger_util.c: shared trigger boilerplate ---- */

/* Which firing a trigger function accepts (bit flags). */
#define ORDERS_TRIG_BEFORE  0x01
#define ORDERS_TRIG_AFTER   0x02
#define ORDERS_TRIG_ROW     0x04
#define ORDERS_TRIG_INSERT  0x10
#define ORDERS_TRIG_UPDATE  0x20
#define ORDERS_TRIG_DELETE  0x40
#define ORDERS_TRIG_TRUNCATE 0x80

extern TriggerData *orders_trigger_data(FunctionCallInfo fcinfo,
										const char *funcname, int accepted);
extern Datum orders_trigger_result(TriggerData *trigdata, HeapTuple tuple);
extern bool orders_column_changed(HeapTuple oldrow, HeapTuple newrow, TupleDesc desc, int att);
extern bool orders_trigger_enabled_now(const Trigger *t);
extern int	orders_fnumber(TupleDesc desc, const char *name);

typedef void (*OrdersRowFn) (TupleTableSlot *slot, int sign, void *arg);
extern void orders_require_transition_tables(TriggerData *trigdata, const char *funcname);
extern struct HTAB *orders_delta_hash(const char *name, Size entrysize);
extern void *orders_delta_entry(struct HTAB **hash, const char *name, Size entrysize,
								const pg_uuid_t *key, bool enter, bool *found);
extern void orders_for_each_row(Tuplestorestate *rows, TupleDesc desc, int sign,
								OrdersRowFn fn, void *arg);
extern void **orders_sorted_deltas(struct HTAB *hash, bool (*keep) (const void *entry), long *n);
extern bool orders_owner_restoring(Relation rel);
extern bool orders_owner_loading(Relation rel);
extern Datum orders_cache_changed(FunctionCallInfo fcinfo, const char *funcname);
extern void orders_load_cache(void (*load) (void), bool *valid);
extern void orders_follow_subxact(SubTransactionId *owner, SubXactEvent event,
								  SubTransactionId mySubid, SubTransactionId parentSubid);

/*
 * What a snapshot lets one read, for what is cached per snapshot
 * (orders_snapshot_key): equal keys see the same rows.
 */
typedef struct OrdersSnapshotKey
{
	CommandId	curcid;
	TransactionId xmin;
	TransactionId xmax;
	uint32		xcnt;
	int32		subxcnt;
	bool		suboverflowed;
	bool		in_recovery;
} OrdersSnapshotKey;

extern OrdersSnapshotKey orders_snapshot_key(Snapshot snapshot);
extern bool orders_same_snapshot(const OrdersSnapshotKey *a, const OrdersSnapshotKey *b);

/* ---- read_committed.c: checks that see what committed before their locks ---- */
extern void orders_require_read_committed(const char *what, const char *why);

/* ---- direct_write.c: rows written without SQL (execReplication.c's way) ---- */
#define ORDERS_DIRECT_COLUMNS 4	/* at most this many columns set per update */
typedef struct OrdersDirect
{
	EState	   *estate;
	ResultRelInfo *info;
	EPQState	epq;
	TupleTableSlot *row;		/* the locked row (orders_direct_lock_by_id) */
	TupleTableSlot *next;	/* its new version */
	bool		indexes_open;	/* opened by the first update that is not HOT */
	bool		before_idle;	/* BEFORE row triggers left out (orders_direct_idle_before) */
	AttrNumber	stamp_attnum;	/* then the updated_at column set instead, or 0 */
	int			ncolumns;		/* the columns updated: */
	AttrNumber	attnums[ORDERS_DIRECT_COLUMNS];	/* each one's number */
	bool		domain[ORDERS_DIRECT_COLUMNS];	/* its type is a domain */
	void	   *domain_extra[ORDERS_DIRECT_COLUMNS];	/* domain_check's state */
	Oid			key_index;		/* the primary key (one column) */
	AttrNumber	key_attnum;		/* its column */
	FmgrInfo	key_eq;			/* its equality */
	Oid			key_collation;
	bool		keys_as_caller; /* foreign key checks under the caller's search path (orders_direct_keys_as_caller) */
	List	   *held_keys;		/* those checks, held until orders_direct_end */
	Oid			lock_check;		/* a check the caller's lock may make idle (orders_direct_check_by_lock) */
	AttrNumber	lock_attnum;	/* its column */
	bool		lock_taken;		/* the caller locked the row it refers to: */
	Datum		lock_key;		/* the key of that row (orders_direct_check_locked) */
	int			updates;		/* rows updated so far */
} OrdersDirect;

extern ResultRelInfo *orders_direct_target(Relation rel, Bitmapset *updated, EState **estate);
extern bool orders_direct_updatable(Relation rel, const char *const *unaffected);
extern void orders_direct_begin(OrdersDirect *d, Relation rel, const char *const *columns);
extern bool orders_direct_lock_by_id(OrdersDirect *d, Datum id);
extern bool orders_direct_refetch(OrdersDirect *d, ItemPointer tid);
extern void orders_direct_lock_rows(Relation rel, const Datum *ids, int n);
extern bool orders_direct_lock_row(Relation rel, Datum id, TupleTableSlot *slot);
extern bool orders_direct_lockable(Relation rel);
extern bool orders_direct_update(OrdersDirect *d, const Datum *values, const bool *isnull);
extern bool orders_direct_idle_before(OrdersDirect *d, const char *const *idle);
extern const char *const orders_derived_unaffected[];
extern void orders_direct_keys_as_caller(OrdersDirect *d);
extern Oid	orders_direct_update_check(Relation rel, int attnum, Oid confrelid);
extern void orders_direct_check_by_lock(OrdersDirect *d, Oid check, AttrNumber attnum);
extern void orders_direct_check_locked(OrdersDirect *d, Datum key);
extern void orders_direct_end(OrdersDirect *d);
extern bool orders_direct_columns(Relation rel, const char *const *names, const Oid *types, int n,
								  int domain_column, int generated_column, int *pos);
extern bool orders_direct_as_installed(Relation rel, const char *const *names, const Oid *types, int n,
									   int domain_column, int *pos);
extern bool orders_direct_fk_only(Relation rel, int attnum, Oid confrelid);
extern bool orders_direct_insert_idle(Relation rel, int attnum, Oid confrelid, const Bitmapset *null_columns,
									  const char *const *own);
extern bool orders_direct_own_triggers(Relation rel);
extern bool orders_direct_own_function(Oid fn, const char *symbol);
extern bool orders_own_function(Oid fn);
extern bool orders_direct_default_is(Relation rel, int attnum, Oid funcid);
extern void orders_direct_insert(Relation rel, const Datum *values, const bool *isnull, bool triggers);
extern void orders_direct_insert_getting(Relation rel, const Datum *values, const bool *isnull, bool triggers,
										 int attnum, Datum *got, bool *got_null);
extern ExprState **orders_direct_checks(Relation rel);
extern Oid	orders_direct_index_on(Relation rel, const AttrNumber *attnums, const Oid *types, int n);
extern void orders_direct_scan_key(ScanKey key, Relation idx, int n, StrategyNumber strategy, Datum value);
extern uint64 orders_direct_generation(void);

/* ---- statement_checks.c: CHECK constraints planned once per backend ---- */
extern void orders_statement_checks_install(void);

/* ---- history.c: the rows of orders.order_history ---- */
typedef struct OrdersHistoryRow
{
	Datum		order_id;		/* uuid */
	const char *old_status;
	const char *new_status;
	const char *changed_by;
	const char *notes;			/* or NULL */
	const char *key;			/* idempotency key, or NULL */
	bool		announce;		/* for the announcer (orders.notify = batched) */
} OrdersHistoryRow;

extern bool orders_history_has_announce(void);
extern int64 orders_insert_history(const OrdersHistoryRow *h, Oid held_in);

/* ---- spi_plans.c: kept SPI plans, one per (query, relation OID) ---- */

typedef enum OrdersPlanKind
{
	PLAN_HISTORY_INSERT,
	PLAN_HISTORY_INSERT_V1,
	PLAN_LOCK_ORDER,
	PLAN_FIND_IDEMPOTENT,
	PLAN_UPDATE_STATUS,
	PLAN_UPDATE_LOCKED,
	PLAN_READ_ORDER_STATUS,
	PLAN_READ_ORDER_STATUS_V1,
	PLAN_READ_ORDER_ROW,
	PLAN_ORDER_VISIBLE,
	PLAN_LOAD_LIFECYCLES,
	PLAN_LOAD_STATES,
	PLAN_LOAD_STATES_V1,
	PLAN_LOAD_STATES_V2,
	PLAN_LOAD_TRANSITIONS,
	PLAN_LOAD_TRANSITIONS_V1,
	PLAN_LEADS_ADD,
	PLAN_LEADS_READ,
	PLAN_LEADS_LEFT_BEHIND,
	PLAN_LEADS_COMPLETE,
	PLAN_LEADS_ANY_COUNTED,
	PLAN_SLOT_LOCK,
	PLAN_SLOT_LIVE_HOLDS,
	PLAN_SLOT_HOLDER_PLACES,
	PLAN_SLOT_HOLD_INSERT,
	PLAN_RESERVATION_LOCK,
	PLAN_RESERVATION_SET,
	PLAN_SLOT_ITEM_OWNER,
	PLAN_SLOT_ITEM_ORDER,
	PLAN_CALLER_SEES,
	PLAN_SUBTOTAL_ADD,
	PLAN_SUBTOTAL_LOCK_MANY,
	PLAN_SUBTOTAL_ADD_MANY,
	PLAN_LOCK_JUDGE_ORDERS,
	PLAN_JUDGE_ORDERS,
	PLAN_SLOT_CLEANUP,
	PLAN_SLOT_RELEASE_ORDER,
	PLAN_SLOT_LOCK_MANY,
	PLAN_SLOT_GIVE_BACK,
	PLAN_SLOT_ORDER_BOOKINGS,
	PLAN_SLOT_ITEM_KEY,
	PLAN_SLOT_ITEM_BOOKED,
	PLAN_SLOT_ITEM_PLACES,
	PLAN_SLOT_ITEM_REACHED,
	PLAN_STATS_ADD,
	PLAN_STATS_LOCK_MANY,
	PLAN_STATS_ADD_MANY,
	PLAN_STOCK_ORDER_ITEMS,
	PLAN_STOCK_LOCK_ORDERS,
	PLAN_STOCK_LOCK_HELD,
	PLAN_STOCK_WRITE_HELD,
	PLAN_STOCK_RECOUNT_FIRST,
	PLAN_STOCK_RECOUNT_PAGE,
	PLAN_STOCK_TAKE_PRODUCT,
	PLAN_STOCK_TAKE_VARIANT,
	PLAN_STOCK_READ_PRODUCT,
	PLAN_STOCK_READ_VARIANT,
	PLAN_STOCK_ORDER_RESERVES,
	PLAN_REVENUE_POST,
	PLAN_API_ROLES,
	PLAN_ROLE_DEFAULTS,
	PLAN_SITES_ADD,
	PLAN_SITES_READ_GROUP,
	PLAN_SITE_ORDER,
	PLAN_SITE_ITEMS_DELETE,
	PLAN_SITE_ITEMS_INSERT,
	PLAN_SITE_GROUP_ORDERS,
	PLAN_GROUP_SITES_STAY,
	PLAN_SITE_EXISTS,
	PLAN_SITE_ITEM_GUARD,
	PLAN_REVIEW_LOCK_SITES,
	PLAN_REVIEW_LOCK_GROUP,
	PLAN_REVIEW_LOCK_ORDER,
	PLAN_REVIEW_GROUP,
	PLAN_REVIEW_GROUP_ROW,
	PLAN_REVIEW_FIND_IDS,
	PLAN_REVIEW_FIND_DOMAINS,
	PLAN_REVIEW_UPDATE,
	PLAN_REVIEW_UPDATE_BY,
	PLAN_REVIEW_COUNT_SITES,
	PLAN_REVIEW_ORDER_NUMBER,
	PLAN_ORDER_NUMBER_TAKEN,
	PLAN_WORKFLOWS_LOAD,
	PLAN_WORKFLOW_RUN,
	PLAN_WORKFLOW_RAN_BEFORE,
	PLAN_WORKFLOW_ORDER_FACTS,
	PLAN_ACTIVITY_INSERT,
	PLAN_ACTIVITY_HISTORY,
	PLAN_ANNOUNCER_LOCK,
	PLAN_ANNOUNCER_CREATE,
	PLAN_ANNOUNCER_POSITION,
	PLAN_ANNOUNCER_READ,
	PLAN_ANNOUNCER_READ_DELETED,
	PLAN_ANNOUNCER_DROP_DELETED,
	PLAN_ANNOUNCER_DROP_RENUMBERED,
	PLAN_ANNOUNCER_SAVE,
	PLAN_KIND_COUNT
} OrdersPlanKind;

extern SPIPlanPtr orders_get_plan(OrdersPlanKind kind, Oid relid,
								  const char *sql, int nargs, Oid *argtypes);
extern SPIPlanPtr orders_get_keyed_plan(OrdersPlanKind kind, Oid relid, const char *sql,
									 int nargs, Oid *argtypes);
extern void orders_execute(SPIPlanPtr plan, Datum *args, const char *nulls,
						   bool read_only, long count, int expected);
extern void orders_execute_as_of(SPIPlanPtr plan, Datum *args, const char *nulls, int expected,
								 Snapshot snapshot);
extern void orders_execute_snapshot(SPIPlanPtr plan, Datum *args, const char *nulls,
									int expected, Snapshot snapshot);
/*
 * A derived write of the extension: a value it keeps from other rows (a
 * counter, a balance, a sum) in "columns" (NULL-terminated) of table "rel".
 * The activity log leaves such writes out (activity.c, derived_write).
 */
typedef struct OrdersDerived
{
	Oid			rel;
	const char *const *columns;
} OrdersDerived;

extern void orders_execute_writing(SPIPlanPtr plan, Datum *args, const char *nulls,
								   int expected, bool *writing, const OrdersDerived *derived);
extern const OrdersDerived *orders_derived;
extern void orders_execute_latest(SPIPlanPtr plan, Datum *args, const char *nulls,
								  int expected);
extern void orders_run_load(OrdersPlanKind kind, Oid relid, const char *sql);
extern Oid	orders_relid(const char *relname);
extern Oid	orders_relid_if_exists(const char *relname);
extern Oid	orders_index_relid(const char *indexname);
extern char **orders_text_list(Datum array, int *n);
extern void orders_require_arg(FunctionCallInfo fcinfo, int argno,
							   const char *func, const char *arg);
extern void orders_require_max_length(const char *value, int max_chars, const char *what);

#define ORDERS_QUOTE_MAX 64		/* bytes of a quoted input in a message */
extern const char *orders_clip(const char *s);

/* ---- security.c: identity and owner switch ---- */

typedef struct OrdersSavedUser
{
	Oid			userid;
	int			sec_context;
} OrdersSavedUser;

extern char *orders_current_actor(void);
extern const char *orders_current_actor_peek(void);
extern const char *orders_current_actor_from(bool *may_be_account);
extern bool orders_current_account(pg_uuid_t *account);
extern char *orders_claims_setting;
extern char *orders_sub_setting;
extern char *orders_acting_for_setting;
extern uint64 orders_identity_settings_changes;
extern void orders_identity_setting_assigned(const char *newval, void *extra);
extern bool orders_account_uuid(const char *actor, pg_uuid_t *uuid);

/* ---- api_roles.c: whose JWT claims are believed ---- */

extern bool orders_claims_trusted(void);
extern uint64 orders_api_roles_changes;
extern bool orders_api_request_now(void);
extern bool orders_security_installed(void);

extern Oid	orders_rel_owner(Oid relid);
extern void orders_switch_to_owner(Oid relid, OrdersSavedUser *saved);
extern void orders_restore_user(const OrdersSavedUser *saved);
extern bool orders_caller_path_begin(void);
extern void orders_caller_path_end(bool popped);
extern void orders_spi_connect(void);
extern void orders_spi_connect_as_owner(Oid relid, OrdersSavedUser *saved);
extern void orders_spi_finish_as(const OrdersSavedUser *saved);
extern bool orders_caller_sees(Oid relid, Datum id, const OrdersSavedUser *caller);

/* ---- transition.c: changes made on behalf of the extension ---- */

extern void orders_run_status_change(SPIPlanPtr plan, Datum *args, const pg_uuid_t *order_id,
									 char *notes, char *key, char *actor, int expected);
extern bool orders_pending_change_on(const pg_uuid_t *order_id);
extern const char *orders_pending_change_actor(const pg_uuid_t *order_id);

/* ---- announcer.c: status changes announced in batches ---- */

extern char *orders_status_payload(int64 history_id, const char *order_id,
								   const char *number, const char *lifecycle,
								   const char *old_status, const char *new_status,
								   const char *actor);
extern OrdersNotifyMode orders_announce_mode(void);

/* ---- business_day.c: the shop's day, in the database's configured zone ---- */
struct pg_tm;
struct pg_tz;
extern struct pg_tz *orders_business_zone(void);
extern void orders_business_tm(TimestampTz t, struct pg_tm *tm);

/* ---- order_number.c: generated, bounded, not forgeable ---- */

#define ORDER_NUMBER_MAX 64		/* characters */
#define ORDERS_NOTES_MAX 10000	/* characters of a note */
#define ORDERS_KEY_MAX 255		/* characters of an idempotency key */

extern void orders_check_order_number(Relation rel, HeapTuple oldrow, HeapTuple newrow);

/* ---- order_money.c: subtotal from the items, total from the parts ---- */

extern HeapTuple orders_tie_money(Relation rel, HeapTuple oldrow, HeapTuple newrow);

/* ---- stock.c: what an order holds out of stock (status_guard keeps it) ---- */
extern HeapTuple orders_stock_held_row(Relation rel, HeapTuple oldrow, HeapTuple newrow);
extern bool orders_hold_subtotals;
extern void orders_apply_held_subtotals(void);
extern void orders_hold_subtotal(const pg_uuid_t *order_id, Datum delta);

/* ---- revenue.c: what an order has earned ---- */

struct LifecycleState;
extern bool orders_row_earns(TupleTableSlot *slot, const struct LifecycleState *st,
							 int payment_att);

/* ---- lifecycle.c: the transition graph, cached per backend ---- */

typedef enum LifecycleCategory
{
	CATEGORY_OPEN,
	CATEGORY_FULFILLED,
	CATEGORY_CANCELLED,
	CATEGORY_RETURNED
} LifecycleCategory;

typedef struct LifecycleEdge
{
	char	   *to_status;
	LifecycleCategory to_category;
	char	   *stamp_column;	/* NULL when the edge sets no stamp */
	int			nroles;			/* 0: any role may take the edge */
	char	  **roles;
	int			nstaff;			/* 0: no staff rule (allowed_staff NULL) */
	char	  **staff;			/* staff roles, assigned_agent, assigned_rep */
	char	   *gate;			/* NULL, or the orders.lifecycle_gates row: */
	Oid			gate_fn;		/* its check function (order_id uuid) -> text */
	char	   *gate_stamp;		/* column stamped when the gate is passed */
	char	   *gate_actor;		/* column given the actor then */
} LifecycleEdge;

/* Who an order is assigned to, for the staff rules of its edges. */
typedef struct OrdersAssignment
{
	bool		agent_null;
	pg_uuid_t	agent;
	bool		rep_null;
	pg_uuid_t	rep;
} OrdersAssignment;

typedef struct LifecycleState
{
	char	   *status;
	LifecycleCategory category;
	bool		accepts_leads;	/* leads may be delivered in this status */
	bool		holds_stock;	/* the order's items are out of stock */
	int			nedges;
	LifecycleEdge *edges;
} LifecycleState;

typedef struct Lifecycle
{
	char	   *name;
	char	   *initial_status;
	int			nstates;
	LifecycleState *states;
} Lifecycle;

extern const Lifecycle *lifecycle_lookup(const char *name);
extern const LifecycleState *lifecycle_state(const Lifecycle *lc,
											 const char *status);
extern const LifecycleState *lifecycle_find_state(const char *lifecycle,
												  const char *status);
extern const LifecycleState *lifecycle_row_state(TupleTableSlot *slot,
												 int lifecycle_att, int status_att);
extern const LifecycleEdge *lifecycle_edge(const LifecycleState *from,
										   const char *to_status);
extern bool lifecycle_edge_permitted(const LifecycleEdge *edge, const OrdersAssignment *assigned);
extern char *lifecycle_next_list(const LifecycleState *from, const OrdersAssignment *assigned);
extern Datum *lifecycle_status_names(int *n, bool **open);
extern uint64 lifecycle_graph_generation(void);

/* ---- row_scope.c: what the caller reaches ---- */
extern char *orders_visible_order_number(Datum order_id, bool latest, ItemPointer tid);

/* ---- identity.c: the caller in the data ---- */

extern bool orders_caller_staff(pg_uuid_t *id, const char **role);
extern const char *orders_caller_staff_role(void);
extern bool orders_caller_may(const char *area, const char *action);
extern bool orders_staff_of_account(const pg_uuid_t *account, pg_uuid_t *id);
extern uint64 orders_identity_generation(void);
extern const Datum *orders_caller_customers(int *n);

/* locked_orders.c: a caller's statement judged on the orders as locked */
typedef struct OrdersLockedOrder
{
	Datum		id;				/* a uuid */
	const char *number;
	const char *lifecycle;
	const char *status;
	const char *payment;
	bool		paid;			/* paid_at set */
	Datum		customer_id;	/* a uuid; (Datum) 0 when NULL */
	bool		adjusted;		/* adjustment <> 0: staff priced it (0.43.0) */
} OrdersLockedOrder;

typedef void (*OrdersOrderJudge) (const OrdersLockedOrder *order, void *arg);

/* The caller's customer ids, copied before the owner switch. */
typedef struct OrdersCallerCustomers
{
	int			n;
	Datum	   *ids;
} OrdersCallerCustomers;

/* What orders_customer_open judges for: the caller's customers, what was written. */
typedef struct OrdersEditJudge
{
	OrdersCallerCustomers mine;
	const char *what;			/* "client groups", "requirements", "sites" */
} OrdersEditJudge;

extern void orders_judge_orders(void *const *orders, long n, OrdersOrderJudge judge, void *arg, bool lock);
extern void orders_callers_customers(OrdersCallerCustomers *mine);
extern bool orders_customer_owns(const OrdersLockedOrder *o, const OrdersCallerCustomers *mine);
extern void orders_customer_open(const OrdersLockedOrder *o, void *arg);
extern bool orders_locked_order_open(const OrdersLockedOrder *o);
extern bool orders_customer_statement(Relation rel);
extern int	orders_typed_column(Relation rel, const char *name, Oid type);

/* ---- activity.c: JSON built from values ---- */

extern void orders_push_json_string(JsonbParseState **state, JsonbIteratorToken seq, const char *str);
extern void orders_push_json_value(JsonbParseState **state, Datum value, Oid typid);

/* ---- workflows.c: runs fired by the changes themselves ---- */
extern bool orders_workflows_watch_totals(void);

/* ---- webhook_mapping.c: values read from JSON ---- */

extern char *orders_json_text(const JsonbValue *v);

/* ---- review.c: site counters and a review's locks ---- */

/*
 * A review (review_sites.c) under way, while its UPDATE runs: the group
 * "group_id" whose sites it locked, and the group's order once locked.
 */
typedef struct OrdersReviewLocked
{
	bool		to_lock;		/* the group (and, when "items", its order) not locked yet */
	bool		items;
	bool		check_once;		/* the order may be checked once (READ COMMITTED, site_items checks every row) */
	bool		valid;			/* the order's columns below: as locked, and as it still is */
	MemoryContext cxt;			/* where they are kept */
	SubTransactionId subxid;	/* the review's (sub)transaction */
	pg_uuid_t	group_id;
	pg_uuid_t	order_id;
	char	   *order_number;
	char	   *status;
	char	   *lifecycle;
	bool		paid;
} OrdersReviewLocked;
extern OrdersReviewLocked orders_review_locked;
extern uint64 orders_review_lock_sites(Datum group_id, Datum site_ids, bool approving, bool *items);
extern void orders_review_lock_pending(void);
extern void orders_review_order_written(Datum order_id);

/* ---- site_items.c: an approved site is an item ---- */

extern void orders_end_site_statement(TriggerData *trigdata, const pg_uuid_t *locked_group,
									  const OrdersEditJudge *customer);
extern bool orders_site_items_checks_rows(Oid sites_rel);

/* ---- agent_scope.c: the customers of a delivery agent's orders ---- */

extern bool orders_agent_serves(void **state, MemoryContext cxt, const pg_uuid_t *customer,
								uint64 identity);

/* ---- staff_edges.c: lifecycle edges reserved to staff ---- */

extern bool orders_staff_may_take(const LifecycleEdge *edge, const OrdersAssignment *assigned);
extern void orders_read_assignment(HeapTuple row, TupleDesc desc, OrdersAssignment *assigned);
extern HeapTuple orders_claim_for_rep(HeapTuple old, HeapTuple row, TupleDesc desc,
									  const char *lifecycle, const char *new_status);

#endif							/* ORDERS_H */
