# PGXS build for the orders extension.
EXTENSION    = orders
MODULE_big   = orders
OBJS         = $(patsubst %.c,%.o,$(wildcard src/*.c))
DATA         = $(wildcard sql/orders--*.sql)
PGFILEDESC   = "orders - order lifecycles enforced in C"

# pg_regress: inputs sql/<name>.sql, outputs expected/<name>.out
REGRESS      = install lifecycles leads upgrade
REGRESS_OPTS = --inputdir=.

# isolation tester: specs in test/specs, outputs in test/expected
ISOLATION      = concurrent_transition graph_cache lead_counter slot_holds customer_stats stock_reservation revenue_posting state_meaning
ISOLATION_OPTS = --inputdir=test --outputdir=test --load-extension=orders

PG_CONFIG ?= pg_config
# PostgreSQL headers are not -Wextra clean: include them as system headers so
# the strict warnings apply to our code only.
PG_CPPFLAGS = -isystem $(shell $(PG_CONFIG) --includedir-server) -Wall -Wextra -Werror -Isrc
EXTRA_CLEAN = results regression.diffs regression.out test/results test/regression.diffs test/regression.out

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)
