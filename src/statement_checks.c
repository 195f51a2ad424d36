/*
 * statement_checks.c — the CHECK constraints of the extension's tables,
 * planned once per backend for every statement that writes them.
 *
 * PostgreSQL rebuilds a result relation's CHECK constraints in every
 * statement that writes a row of it: it parses the stored expression
 * (pg_constraint.conbin), plans it and compiles it, per statement (a kept
 * plan too).  orders.orders has nine, so a one-row status change spent
 * ~9 % of its CPU parsing and planning them.  The direct writes
 * (direct_write.c) plan them once per backend and table; this executor
 * start hook hands the same planned expressions to every statement that
 * writes a table of the extension's schema, compiled into the statement's
 * own memory as PostgreSQL would compile them — the constraints checked are
 * exactly the table's, re-planned after any change of the table, of a
 * function or of a type (orders_direct_checks' invalidation).  Checks that
 * call a function not built in — other than the extension's own C check
 * functions (direct_write.c: check_functions) — are left to PostgreSQL
 * (their plan depends on the user and the search_path), and so is a
 * DELETE.  Unlike
 * PostgreSQL, the statement compiles them before its first row, also when
 * it writes none.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "executor/executor.h"
#include "utils/rel.h"

#include "orders.h"

static ExecutorStart_hook_type prev_executor_start = NULL;

/*
 * plan_checks — give each result relation of "estate" in the extension's
 * schema whose CHECK constraints the statement has not built yet the kept
 * plans of them.  Other tables are left to PostgreSQL.
 */
static void
plan_checks(EState *estate)
{
	Oid			schema = InvalidOid;
	ListCell   *lc;

	foreach(lc, estate->es_opened_result_relations)
	{
		ResultRelInfo *info = (ResultRelInfo *) lfirst(lc);
		Relation	rel = info->ri_RelationDesc;
		TupleConstr *constr = RelationGetDescr(rel)->constr;
		MemoryContext oldcxt;

		if (constr == NULL || constr->num_check == 0 || info->ri_ConstraintExprs != NULL ||
			rel->rd_rel->relkind != RELKIND_RELATION)
			continue;
		if (!OidIsValid(schema))
			schema = get_namespace_oid(ORDERS_SCHEMA, true);
		if (RelationGetNamespace(rel) != schema)
			continue;
		oldcxt = MemoryContextSwitchTo(estate->es_query_cxt);
		info->ri_ConstraintExprs = orders_direct_checks(rel);
		MemoryContextSwitchTo(oldcxt);
	}
}

/* checks_executor_start — ExecutorStart hook: start the statement, then plan_checks. */
static void
checks_executor_start(QueryDesc *queryDesc, int eflags)
{
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
	/* a DELETE checks no row: its relation is left to build them if it ever does */
	if ((eflags & EXEC_FLAG_EXPLAIN_ONLY) == 0 && queryDesc->estate != NULL &&
		(queryDesc->operation != CMD_DELETE || queryDesc->plannedstmt->hasModifyingCTE))
		plan_checks(queryDesc->estate);
}

/* orders_statement_checks_install — _PG_init: put the hook in place, once. */
void
orders_statement_checks_install(void)
{
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = checks_executor_start;
}
