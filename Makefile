# PGXS build of the pg_dispatch extension.  `make -C agent` builds dispatch-agent.
EXTENSION  = pg_dispatch
MODULE_big = pg_dispatch
OBJS = \
	src/pg_dispatch.o \
	src/wake.o \
	src/caller.o \
	src/worker.o \
	src/launcher.o \
	src/scheduler.o \
	src/alloc.o \
	src/model.o \
	src/model_check.o \
	src/template.o \
	src/cron.o \
	src/sqlslot.o \
	src/sqlrun.o \
	src/monitor.o \
	src/notify.o \
	src/target.o \
	src/metric_pack.o \
	src/metric_sample.o \
	src/flowgraph.o \
	src/core/alloc.o \
	src/core/alloc_backfill.o \
	src/core/alloc_index.o \
	src/core/alloc_labels.o \
	src/core/alloc_types.o \
	src/core/alloc_wait.o \
	src/core/alloc_session.o \
	src/core/alloc_map.o \
	src/core/alloc_seq.o \
	src/core/template.o \
	src/core/cron.o \
	src/core/cron_next.o \
	src/core/mailhdr.o \
	src/core/mpack.o \
	src/core/graph.o

# The install script is built from sql/src/*.sql, one concern per file, in name order.
DATA_built = sql/pg_dispatch--0.1.sql

PG_CONFIG ?= pg_config
PG_CPPFLAGS = -I$(srcdir)/src -I$(srcdir)/src/core
SHLIB_LINK = -lcurl -lm
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers

# pg_regress reads sql/ and expected/ below --inputdir; our inputs live in sql-tests/
# because sql/ holds the install scripts, so a scratch directory links both.
REGRESS = $(patsubst sql-tests/%.sql,%,$(sort $(wildcard sql-tests/*.sql)))
REGRESS_OPTS = --inputdir=regress --temp-instance=tmp_check \
	--temp-config=$(srcdir)/sql-tests/regress.conf

# Isolation specs (specs/*.spec): concurrent claims, cancels and reports.  They run
# in the database the scheduler works in (specs/isolation.conf), so a spec can race it.
ISOLATION = $(patsubst specs/%.spec,%,$(sort $(wildcard specs/*.spec)))
ISOLATION_OPTS = --inputdir=regress --temp-instance=tmp_check_iso \
	--temp-config=$(srcdir)/sql-tests/regress.conf --temp-config=$(srcdir)/specs/isolation.conf

# TAP tests (t/*.pl) run after pg_regress in `make installcheck`: real servers, real agents.
TAP_TESTS = 1
PROVE_FLAGS = --timer

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

installcheck: regress/sql regress/expected regress/specs
regress/sql regress/expected regress/specs:
	mkdir -p regress
	ln -sfn ../sql-tests regress/sql
	ln -sfn ../expected regress/expected
	ln -sfn ../specs regress/specs

.PHONY: unit
unit:
	$(MAKE) -C src/core check
	$(MAKE) -C agent check
	$(MAKE) -C lib check
	$(MAKE) -C web check
	python3 -m unittest discover -s deploy/patroni/tests

EXTRA_CLEAN = regress tmp_check tmp_check_iso results output_iso regression.diffs regression.out

# PGXS knows no header dependencies: the allocator's objects share its State.
src/alloc.o src/pg_dispatch.o: src/core/alloc.h
src/alloc.o src/model.o src/model_check.o src/scheduler.o: src/model.h src/core/alloc_session.h
src/core/alloc.o src/core/alloc_backfill.o src/core/alloc_index.o src/core/alloc_wait.o \
	src/core/alloc_session.o src/core/alloc_map.o src/core/alloc_seq.o: src/core/alloc.h src/core/alloc_int.h
src/core/alloc_session.o src/core/alloc_map.o src/core/alloc_seq.o: src/core/alloc_session.h \
	src/core/alloc_map.h src/core/alloc_seq.h
src/flowgraph.o src/core/graph.o: src/core/graph.h

sql/pg_dispatch--0.1.sql: $(sort $(wildcard $(srcdir)/sql/src/*.sql))
	awk 'FNR == 1 && NR != 1 { print "" } { print }' $^ > $@
