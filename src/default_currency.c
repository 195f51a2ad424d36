/*
 * default_currency.c — the shop's currency (0.43.0): the default of
 * orders.orders.currency, as the DBA set it (ALTER TABLE … SET DEFAULT).
 * A customer's new order is in it: the catalog's prices carry no currency,
 * and a customer that chose 'VND' for its order bought a 100.00 lamp for
 * 100 dong (order_columns_guard refuses another, OR060).
 *
 *   orders.default_currency()   that default, evaluated; NULL without one
 */
#include "orders.h"

#include "access/table.h"
#include "executor/executor.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "rewrite/rewriteHandler.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(orders_default_currency);

/* orders.default_currency() — the column default of orders.orders.currency, as text. */
Datum
orders_default_currency(PG_FUNCTION_ARGS)
{
	Relation	rel = table_open(orders_relid("orders"), AccessShareLock);
	AttrNumber	att = get_attnum(RelationGetRelid(rel), "currency");
	Node	   *def = att == InvalidAttrNumber ? NULL : build_column_default(rel, att);
	EState	   *estate;
	ExprState  *expr;
	Datum		value;
	bool		isnull = true;
	text	   *result = NULL;
	Oid			typoutput;
	bool		varlena;

	(void) fcinfo;
	if (def != NULL)
	{
		estate = CreateExecutorState();
		expr = ExecPrepareExpr(expression_planner((Expr *) def), estate);
		value = ExecEvalExprSwitchContext(expr, GetPerTupleExprContext(estate), &isnull);
		if (!isnull)
		{
			getTypeOutputInfo(exprType(def), &typoutput, &varlena);
			result = cstring_to_text(OidOutputFunctionCall(typoutput, value));
		}
		FreeExecutorState(estate);
	}
	table_close(rel, AccessShareLock);
	if (result == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(result);
}
