# PGXS build for the orders extension.
EXTENSION    = orders
EXTVERSION   = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" orders.control)
MODULE_big   = orders
OBJS         = $(patsubst %.c,%.o,$(wildcard src/*.c))

# The install script of the current version is built from the readable
# schema, one file per capability (sql/schema/*.sql, in name order); the
# install script of 0.1.0 and the upgrade scripts stay for existing
# installations.  test/catalog_identity.sh proves both give one catalog.
DATA_built   = sql/$(EXTENSION)--$(EXTVERSION).sql
DATA         = $(filter-out $(DATA_built), $(wildcard sql/$(EXTENSION)--*.sql)) $(wildcard sql/$(EXTENSION)--*.control)
PGFILEDESC   = "orders - order lifecycles enforced in C"

# pg_regress: inputs test/sql/<name>.sql, outputs expected/<name>.out.
# PostgreSQL 15's pg_regress reads both from one --inputdir, so make lays
# out test/regress with the two as links (not committed).
REGRESS      = install lifecycles leads upgrade
REGRESS_OPTS = --inputdir=test/regress --outputdir=test/regress

# isolation tester: specs in test/specs, outputs in test/expected
ISOLATION      = status_announcements concurrent_transition graph_cache lead_counter slot_holds customer_stats stock_reservation revenue_posting state_meaning slot_confirm_expiry slot_cancel_race order_subtotal review_last_place share_convert webhook_duplicates outbox_claims workflow_runs workflow_cache agent_scope review_lock_order review_payment_race review_sites_first review_plans stock_movements bulk_counters booked_item_delete group_delete_race webhook_cancel_lock deleted_history state_delete cart_confirm_race customer_edit_race gate_after_wait customer_sites_race webhook_in_flight stock_refusal_race site_insert_race site_item_price_race slot_item_race lead_follow_race order_columns_race api_roles_parallel identity_snapshot role_defaults_load order_number_race share_move_race workflow_author_race staff_hold_lapse webhook_items_lock workflow_author_edit_race lead_lock_cap advisory_keys slot_hold_clock slot_holder_cap api_roles_replica erase_new_order
ISOLATION_OPTS = --inputdir=test --outputdir=test --load-extension=orders

PG_CONFIG ?= pg_config
# PostgreSQL headers are not -Wextra clean: include them as system headers so
# the strict warnings apply to our code only.
PG_CPPFLAGS = -isystem $(shell $(PG_CONFIG) --includedir-server) -Wall -Wextra -Werror -Isrc
EXTRA_CLEAN = test/regress test/results test/regression.diffs test/regression.out

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(DATA_built): $(sort $(wildcard sql/schema/*.sql)) orders.control
	cat $(sort $(wildcard sql/schema/*.sql)) > $@

installcheck: test/regress/sql test/regress/expected
test/regress/sql test/regress/expected:
	mkdir -p test/regress
	ln -sfn $(if $(filter %/sql,$@),../sql,../../expected) $@

# every C file includes the shared header: rebuild them all when it changes
$(OBJS): src/orders.h
