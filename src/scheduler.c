/*
 * scheduler.c: the scheduler background worker.
 *
 * One loop, woken by its latch: wake_scheduler() sets it when a submission, a
 * finish, a cancel or a node change commits.  Each wake-up runs one cycle in one
 * transaction: dispatch._housekeeping() (liveness, stages, joblist ends), then the
 * goals are evaluated (_goal_tick(): fires, instances, windows), then the
 * allocation problem is read from the _sched_* views, solved by alloc_run()
 * (src/core/alloc.c) and written back with one _assign_many() call, which also
 * NOTIFYs the nodes, and one _set_reasons() call.  After the commit, SQL job runs
 * created by the cycle get their background workers (sqlrun.c).  The only timers
 * are the next liveness deadline and the next goal deadline.
 *
 * Errors: the worker has no error handler of its own, so an ERROR in a cycle ends
 * the process (after rolling back) and the launcher starts a fresh scheduler after
 * a pause.  That keeps the loop free of half-finished state.
 */
#include "pg_dispatch.h"

#include "access/xact.h"
#include "alloc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#define MAX_SLEEP_MS 60000L
#define MIN_SLEEP_MS 100L

/* A SQL job run to start a worker for once the cycle has committed. */
typedef struct SqlRun
{
	int64		run;
	char	   *database;
	char	   *user;
} SqlRun;

typedef struct NodeEntry
{
	char		name[NAMEDATALEN * 2];	/* hash key: node names are short */
	int			index;
} NodeEntry;

static void publish(bool running);
static void unpublish(int code, Datum arg);
static SPITupleTable *query(const char *sql);
static char *text_at(SPITupleTable *t, uint64 row, int col);
static int64 int8_at(SPITupleTable *t, uint64 row, int col);
static int	node_index(HTAB *nodes, const char *name);
static bool extension_ready(void);
static void load_problem(AllocProblem *p, char ***node_names);
static Datum int8_array(Datum *values, int n);
static Datum text_array(Datum *values, int n);
static int	write_result(const AllocProblem *p, const AllocOutput *out, char **node_names);
static int	sql_runs_to_launch(MemoryContext cxt, SqlRun **runs);
static void launch_sql_runs(const SqlRun *runs, int n);
static long run_cycle(void);

/* Publishes (or clears) this process as the scheduler in shared memory. */
static void
publish(bool running)
{
	SpinLockAcquire(&dispatch_shared->mutex);
	dispatch_shared->scheduler_pid = running ? MyProcPid : 0;
	dispatch_shared->scheduler_procno = running ? MyProc->pgprocno : 0;
	SpinLockRelease(&dispatch_shared->mutex);
}

/* before_shmem_exit callback: nobody may set our latch once we are gone. */
static void
unpublish(int code, Datum arg)
{
	publish(false);
}

/* Runs a read query through SPI and returns its rows. */
static SPITupleTable *
query(const char *sql)
{
	if (SPI_execute(sql, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "pg_dispatch scheduler query failed: %s", sql);
	return SPI_tuptable;
}

/* Returns column col of row as a C string, or NULL. */
static char *
text_at(SPITupleTable *t, uint64 row, int col)
{
	return SPI_getvalue(t->vals[row], t->tupdesc, col);
}

/* Returns column col of row as an int8 (0 for NULL). */
static int64
int8_at(SPITupleTable *t, uint64 row, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(t->vals[row], t->tupdesc, col, &isnull);

	return isnull ? 0 : DatumGetInt64(d);
}

/* Returns the index of a node by name, or -1 when it is not online. */
static int
node_index(HTAB *nodes, const char *name)
{
	NodeEntry  *e;
	char		key[NAMEDATALEN * 2] = {0};

	if (name == NULL)
		return -1;
	strlcpy(key, name, sizeof(key));
	e = hash_search(nodes, key, HASH_FIND, NULL);
	return e ? e->index : -1;
}

/* Returns true when the extension is installed in this database. */
static bool
extension_ready(void)
{
	return query("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_dispatch'")->numvals > 0;
}

/*
 * Reads the allocation problem from the _sched_* views into p (palloc'd in the
 * current memory context; strings stay valid until SPI_finish).
 */
static void
load_problem(AllocProblem *p, char ***node_names)
{
	SPITupleTable *t;
	HTAB	   *nodes;
	HASHCTL		ctl = {0};
	AllocLabel *labels;
	AllocUnit  *units;
	AllocJob   *jobs;
	uint64		i;

	memset(p, 0, sizeof(*p));
	t = query("SELECT node FROM dispatch._sched_nodes");
	ctl.keysize = NAMEDATALEN * 2;
	ctl.entrysize = sizeof(NodeEntry);
	ctl.hcxt = CurrentMemoryContext;
	nodes = hash_create("pg_dispatch nodes", Max(t->numvals, 16), &ctl,
						HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	*node_names = palloc(sizeof(char *) * (t->numvals + 1));
	for (i = 0; i < t->numvals; i++)
	{
		NodeEntry  *e;
		char		key[NAMEDATALEN * 2] = {0};

		(*node_names)[i] = text_at(t, i, 1);
		strlcpy(key, (*node_names)[i], sizeof(key));
		e = hash_search(nodes, key, HASH_ENTER, NULL);
		e->index = (int) i;
	}
	p->nodes = (const char *const *) *node_names;
	p->nnodes = (int) t->numvals;

	t = query("SELECT node, key, value FROM dispatch._sched_node_labels");
	labels = palloc(sizeof(AllocLabel) * (t->numvals + 1));
	for (i = 0; i < t->numvals; i++)
	{
		int			n = node_index(nodes, text_at(t, i, 1));

		if (n < 0)
			continue;			/* went online after we read the nodes */
		labels[p->nlabels].node = n;
		labels[p->nlabels].key = text_at(t, i, 2);
		labels[p->nlabels].value = text_at(t, i, 3);
		p->nlabels++;
	}
	p->labels = labels;

	t = query("SELECT resource_id, type, node, free, capacity FROM dispatch._sched_free");
	units = palloc(sizeof(AllocUnit) * (t->numvals + 1));
	for (i = 0; i < t->numvals; i++)
	{
		char	   *node = text_at(t, i, 3);
		AllocUnit  *u = &units[p->nunits];

		u->node = node_index(nodes, node);
		if (node != NULL && u->node < 0)
			continue;
		u->resource_id = int8_at(t, i, 1);
		u->type = text_at(t, i, 2);
		u->free = int8_at(t, i, 4);
		u->capacity = int8_at(t, i, 5);
		p->nunits++;
	}
	p->units = units;

	t = query("SELECT j.job_id, j.joblist_id, n.needs, c.constraints"
			  "  FROM dispatch._sched_jobs j"
			  "  LEFT JOIN (SELECT job_id, array_agg(type || '=' || count ORDER BY type) AS needs"
			  "               FROM dispatch._sched_job_needs GROUP BY job_id) n USING (job_id)"
			  "  LEFT JOIN (SELECT job_id, array_agg(key || '=' || value ORDER BY key) AS constraints"
			  "               FROM dispatch._sched_job_constraints GROUP BY job_id) c USING (job_id)"
			  " ORDER BY j.joblist_id, j.job_id");
	jobs = palloc0(sizeof(AllocJob) * (t->numvals + 1));
	for (i = 0; i < t->numvals; i++)
	{
		AllocJob   *j = &jobs[i];
		bool		isnull;
		Datum		arr;

		j->job_id = int8_at(t, i, 1);
		j->joblist_id = int8_at(t, i, 2);
		for (int col = 3; col <= 4; col++)
		{
			Datum	   *elems;
			int			nelems;

			arr = SPI_getbinval(t->vals[i], t->tupdesc, col, &isnull);
			if (isnull)
				continue;
			deconstruct_array(DatumGetArrayTypeP(arr), TEXTOID, -1, false, TYPALIGN_INT,
							  &elems, NULL, &nelems);
			if (col == 3)
			{
				AllocNeed  *needs = palloc(sizeof(AllocNeed) * nelems);

				for (int k = 0; k < nelems; k++)
				{
					char	   *s = TextDatumGetCString(elems[k]);
					char	   *eq = strrchr(s, '=');

					*eq = '\0';
					needs[k].type = s;
					needs[k].count = pg_strtoint64(eq + 1);
				}
				j->needs = needs;
				j->nneeds = nelems;
			}
			else
			{
				AllocConstraint *cons = palloc(sizeof(AllocConstraint) * nelems);

				for (int k = 0; k < nelems; k++)
				{
					char	   *s = TextDatumGetCString(elems[k]);
					char	   *eq = strchr(s, '=');

					*eq = '\0';
					cons[k].key = s;
					cons[k].value = eq + 1;
				}
				j->constraints = cons;
				j->nconstraints = nelems;
			}
		}
	}
	p->jobs = jobs;
	p->njobs = (int) t->numvals;
}

/* Returns an int8[] of n values. */
static Datum
int8_array(Datum *values, int n)
{
	return PointerGetDatum(construct_array(values, n, INT8OID, 8, true, TYPALIGN_DOUBLE));
}

/* Returns a text[] of n values. */
static Datum
text_array(Datum *values, int n)
{
	return PointerGetDatum(construct_array(values, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * Writes the cycle's result with one dispatch._assign_many() call for the placed jobs
 * and one dispatch._set_reasons() call for the others; returns the number assigned.
 */
static int
write_result(const AllocProblem *p, const AllocOutput *out, char **node_names)
{
	Oid			assign_types[5] = {INT8ARRAYOID, TEXTARRAYOID, INT8ARRAYOID, INT8ARRAYOID,
	INT8ARRAYOID};
	Oid			reason_types[2] = {INT8ARRAYOID, TEXTARRAYOID};
	Datum	   *placed = palloc(sizeof(Datum) * (p->njobs + 1));
	Datum	   *nodes = palloc(sizeof(Datum) * (p->njobs + 1));
	Datum	   *waiting = palloc(sizeof(Datum) * (p->njobs + 1));
	Datum	   *reasons = palloc(sizeof(Datum) * (p->njobs + 1));
	Datum	   *take_jobs = palloc(sizeof(Datum) * (out->ntakes + 1));
	Datum	   *take_units = palloc(sizeof(Datum) * (out->ntakes + 1));
	Datum	   *take_amounts = palloc(sizeof(Datum) * (out->ntakes + 1));
	int			nplaced = 0, nwaiting = 0, ntakes = 0;
	int			assigned = 0;

	for (int j = 0; j < p->njobs; j++)
	{
		const AllocResult *r = &out->results[j];
		Datum		job = Int64GetDatum(p->jobs[j].job_id);

		if (r->node < 0)
		{
			waiting[nwaiting] = job;
			reasons[nwaiting++] = CStringGetTextDatum(r->reason);
			continue;
		}
		placed[nplaced] = job;
		nodes[nplaced++] = CStringGetTextDatum(node_names[r->node]);
		for (int k = 0; k < r->ntakes; k++)
		{
			const AllocTake *tk = &out->takes[r->first_take + k];

			take_jobs[ntakes] = job;
			take_units[ntakes] = Int64GetDatum(p->units[tk->unit].resource_id);
			take_amounts[ntakes++] = Int64GetDatum(tk->amount);
		}
	}
	if (nplaced > 0)
	{
		Datum		args[5];
		bool		isnull;

		args[0] = int8_array(placed, nplaced);
		args[1] = text_array(nodes, nplaced);
		args[2] = int8_array(take_jobs, ntakes);
		args[3] = int8_array(take_units, ntakes);
		args[4] = int8_array(take_amounts, ntakes);
		if (SPI_execute_with_args("SELECT dispatch._assign_many($1, $2, $3, $4, $5)", 5,
								  assign_types, args, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "dispatch._assign_many failed");
		assigned = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
											   1, &isnull));
	}
	if (nwaiting > 0)
	{
		Datum		args[2];

		args[0] = int8_array(waiting, nwaiting);
		args[1] = text_array(reasons, nwaiting);
		if (SPI_execute_with_args("SELECT dispatch._set_reasons($1, $2)", 2, reason_types,
								  args, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "dispatch._set_reasons failed");
	}
	return assigned;
}

/* Reads the SQL job runs that need a worker into *runs (allocated in cxt); returns how many. */
static int
sql_runs_to_launch(MemoryContext cxt, SqlRun **runs)
{
	SPITupleTable *t = query("SELECT runid, database, username FROM dispatch._sql_runs_to_launch()");

	*runs = MemoryContextAlloc(cxt, sizeof(SqlRun) * (SPI_processed + 1));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		(*runs)[i].run = int8_at(t, i, 1);
		(*runs)[i].database = MemoryContextStrdup(cxt, text_at(t, i, 2));
		(*runs)[i].user = MemoryContextStrdup(cxt, text_at(t, i, 3));
	}
	return (int) SPI_processed;
}

/*
 * Starts a worker for each run (after the commit that made them visible); a run
 * without a free worker slot fails with a message saying so.
 */
static void
launch_sql_runs(const SqlRun *runs, int n)
{
	for (int i = 0; i < n; i++)
	{
		Oid			types[1] = {INT8OID};
		Datum		values[1];

		if (dispatch_launch_sql_run(runs[i].run, runs[i].database, runs[i].user))
			continue;
		values[0] = Int64GetDatum(runs[i].run);
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		PushActiveSnapshot(GetTransactionSnapshot());
		SPI_execute_with_args("SELECT dispatch._sql_run_unstarted($1)", 1, types, values, NULL,
							  false, 0);
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
}

/* Runs one scheduling cycle in its own transaction; returns how long to sleep (ms). */
static long
run_cycle(void)
{
	TimestampTz start = GetCurrentTimestamp();
	MemoryContext cycle_cxt = CurrentMemoryContext;
	long		sleep_ms = MAX_SLEEP_MS;
	int			assigned = 0;
	SqlRun	   *runs = NULL;
	int			nruns = 0;
	long		secs;
	int			usecs;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "pg_dispatch scheduling cycle");

	if (extension_ready())
	{
		SPITupleTable *t = query("SELECT dispatch._housekeeping()");
		bool		isnull;
		Datum		d = SPI_getbinval(t->vals[0], t->tupdesc, 1, &isnull);
		AllocProblem p;
		AllocOutput out;
		char	  **node_names;

		if (!isnull)
			sleep_ms = Min(MAX_SLEEP_MS, (long) (DatumGetFloat8(d) * 1000.0) + 1);
		t = query("SELECT dispatch._goal_tick()");
		d = SPI_getbinval(t->vals[0], t->tupdesc, 1, &isnull);
		if (!isnull)
			sleep_ms = Min(sleep_ms, (long) (DatumGetFloat8(d) * 1000.0) + 1);
		nruns = sql_runs_to_launch(cycle_cxt, &runs);
		load_problem(&p, &node_names);
		if (p.njobs > 0)
		{
			if (alloc_run(&p, &out) < 0)
				ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
			/* An ERROR here ends the process, which frees out with everything else. */
			assigned = write_result(&p, &out, node_names);
			alloc_output_free(&out);
		}
	}

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(cycle_cxt);	/* commit left us in TopMemoryContext */
	launch_sql_runs(runs, nruns);
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);

	TimestampDifference(start, GetCurrentTimestamp(), &secs, &usecs);
	SpinLockAcquire(&dispatch_shared->mutex);
	dispatch_shared->cycles++;
	dispatch_shared->jobs_assigned += assigned;
	dispatch_shared->last_cycle_at = start;
	dispatch_shared->last_cycle_us = secs * 1000000L + usecs;
	SpinLockRelease(&dispatch_shared->mutex);
	return Max(sleep_ms, MIN_SLEEP_MS);
}

/* Main loop of the scheduler worker. */
void
dispatch_scheduler_main(Datum arg)
{
	MemoryContext cycle_cxt;

	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(dispatch_database, NULL, 0);
	pgstat_report_appname("pg_dispatch scheduler");

	publish(true);
	before_shmem_exit(unpublish, 0);
	cycle_cxt = AllocSetContextCreate(TopMemoryContext, "pg_dispatch cycle",
									  ALLOCSET_DEFAULT_SIZES);
	ereport(LOG, (errmsg("pg_dispatch scheduler started in database \"%s\"",
						 dispatch_database)));

	while (!ShutdownRequestPending)
	{
		long		sleep_ms = MAX_SLEEP_MS;
		MemoryContext old;

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (!RecoveryInProgress())
		{
			old = MemoryContextSwitchTo(cycle_cxt);
			sleep_ms = run_cycle();
			MemoryContextSwitchTo(old);
			MemoryContextReset(cycle_cxt);
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, sleep_ms,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	proc_exit(0);
}
