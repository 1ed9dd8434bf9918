/*
 * scheduler.c: the scheduler background worker and its shared memory.
 *
 * One loop, woken by its latch: wake_scheduler() (wake.c) sets it (and counts the
 * wake-up, so that one whose latch a lock wait consumed still runs a cycle) when a
 * submission, a finish, a cancel or a node change commits.  The scheduler keeps a
 * model of the queue and the cluster in memory (model.c), loaded whole at start,
 * after a failed cycle and on SIGHUP (limits such as kill_grace change with the
 * configuration).  Each wake-up runs one cycle in one transaction: it takes the
 * change queue (dispatch._sched_changes), runs dispatch._housekeeping() for the
 * joblists the queue names (stages, joblist ends) and, when the liveness deadline
 * has come, for the nodes; then the goals are evaluated (_goal_tick(): fires,
 * instances, windows) and the workspaces' rebuilds (_rebuild_tick(): due ones
 * start); then it takes the queue again (what the cycle itself
 * changed), applies it to the model, and alloc_assign() (alloc.c) places jobs
 * and writes the answer back, NOTIFYing the nodes.  SQL job runs go through slots
 * in shared memory (sqlslot.c): the cycle first records the outcomes that workers
 * left there, and claims the runs the goals created; after the commit the slots
 * it recorded are freed and the claimed runs get their background workers
 * (sqlrun.c).  The only timers are the liveness deadline (computed by the last
 * liveness pass, brought forward when a node changes), the next goal deadline, the
 * next model check (model_check.c), and a retry after RETRY_SLEEP_MS when a cycle
 * left jobs or joblists that another transaction held: the cycle never waits for
 * another transaction's row lock (a user's open cancel must not stall it, nor
 * deadlock with it), and a rollback of that transaction wakes no one.
 *
 * The cycle's transaction first takes pg_dispatch's extension lock
 * (worker_extension_lock()), so DROP EXTENSION waits for a cycle in flight and
 * a cycle never meets a half-dropped schema.
 *
 * The shared memory is this server's scheduler: its pid and PGPROC number, so
 * any backend can set its latch, the counters scheduler_stats() shows, the
 * moment from which node silence counts (set by the server's first scheduler and
 * kept when a scheduler restarts, so a restart grants no node a fresh timeout,
 * while a promoted or restarted server starts counting afresh, as the failover
 * grace needs), the model checks asked and answered; and the SQL run slots.
 *
 * Errors: an ERROR in a cycle is caught by the loop's own sigsetjmp (as
 * PostgreSQL's auxiliary processes do), logged, and its transaction rolled back
 * (worker_abort()); the cycle is retried after a pause that doubles from
 * ERROR_SLEEP_MS up to MAX_SLEEP_MS while cycles keep failing.  Nothing of a
 * failed cycle survives it: its writes are rolled back, its memory is the cycle
 * context's, and the SQL run slots it would have freed or started are only
 * touched after a commit.  The model may have taken changes the rollback undid,
 * so it is dropped and loaded afresh by the next cycle.  The process stays.
 * FATAL still ends the process, and the launcher starts a fresh scheduler after
 * a pause.
 */
#include "pg_dispatch.h"
#include "worker.h"
#include "model.h"

#include "access/htup_details.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/array.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#define MAX_SLEEP_MS 60000L
#define MIN_SLEEP_MS 100L
#define ERROR_SLEEP_MS 1000L
#define RETRY_SLEEP_MS 1000L	/* when a cycle left rows another transaction held */

PG_FUNCTION_INFO_V1(scheduler_stats);

static void shmem_request(void);
static void shmem_startup(void);
static void publish(bool running);
static void unpublish(int code, Datum arg);
static double seconds_at(SPITupleTable *t, bool *isnull);
static TimestampTz silence_since(void);
static void drop_model(void);
static double housekeeping(bool expire, ModelChanges *c, bool *left);
static long run_cycle(void);

SchedulerShared *scheduler_shared = NULL;

/* The model, kept between cycles (NULL: load it), and the extension it was loaded for. */
static AllocSession *model = NULL;
static Oid	model_extension = InvalidOid;

/* When the next node may have been silent for too long (0: now). */
static TimestampTz next_expiry = 0;

/*
 * The joblists the last housekeeping left because another transaction held them, for
 * the next one to look at again (in TopMemoryContext; a model load looks at all).
 */
static Datum *left_joblists = NULL;
static int	nleft_joblists = 0;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* Hooks the scheduler's shared memory into the postmaster; called from _PG_init. */
void
scheduler_shmem_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = shmem_startup;
}

/* Asks the postmaster for our shared memory. */
static void
shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(SchedulerShared)));
	RequestAddinShmemSpace(sqlslot_shmem_size());
}

/* Attaches to (and on first use initialises) our shared memory. */
static void
shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	scheduler_shared = ShmemInitStruct("pg_dispatch", sizeof(SchedulerShared), &found);
	if (!found)
	{
		memset(scheduler_shared, 0, sizeof(SchedulerShared));
		SpinLockInit(&scheduler_shared->mutex);
		ConditionVariableInit(&scheduler_shared->check_done_cv);
		pg_atomic_init_u64(&scheduler_shared->wakes, 0);
	}
	sqlslot_shmem_startup();
	LWLockRelease(AddinShmemInitLock);
}

/* Publishes (or clears) this process as the scheduler in shared memory. */
static void
publish(bool running)
{
	SpinLockAcquire(&scheduler_shared->mutex);
	scheduler_shared->scheduler_pid = running ? MyProcPid : 0;
	scheduler_shared->scheduler_procno = running ? MyProc->pgprocno : 0;
	SpinLockRelease(&scheduler_shared->mutex);
}

/* before_shmem_exit callback: nobody may set our latch once we are gone. */
static void
unpublish(int code, Datum arg)
{
	publish(false);
}

/* Returns the one float8 of t (seconds), setting *isnull. */
static double
seconds_at(SPITupleTable *t, bool *isnull)
{
	Datum		d = SPI_getbinval(t->vals[0], t->tupdesc, 1, isnull);

	return *isnull ? 0 : DatumGetFloat8(d);
}

/* Returns the moment node silence counts from: this server's first scheduler start. */
static TimestampTz
silence_since(void)
{
	TimestampTz since;

	SpinLockAcquire(&scheduler_shared->mutex);
	if (scheduler_shared->silence_since == 0)
		scheduler_shared->silence_since = GetCurrentTimestamp();
	since = scheduler_shared->silence_since;
	SpinLockRelease(&scheduler_shared->mutex);
	return since;
}

/* Forgets the model: the next cycle loads it afresh (and checks every node's liveness). */
static void
drop_model(void)
{
	if (model != NULL)
		alloc_session_free(model);
	model = NULL;
	next_expiry = 0;
}

/*
 * Runs dispatch._housekeeping() for the joblists c names (every active one when the
 * model is to be loaded) and those the last one left, and for liveness when expire;
 * sets *left when it left joblists again; returns the seconds to the next deadline
 * it computed (liveness's when expire, and always a joblist's timeout), or -1 when
 * it computed none.
 */
static double
housekeeping(bool expire, ModelChanges *c, bool *left)
{
	Oid			types[3] = {TIMESTAMPTZOID, BOOLOID, INT8ARRAYOID};
	Datum		args[3];
	char		nulls[3] = {' ', ' ', model == NULL ? 'n' : ' '};
	bool		isnull;
	double		secs;
	Datum		skipped;
	Datum	   *ids;

	for (int i = 0; i < nleft_joblists; i++)
		model_add(&c->stage_joblists, left_joblists[i]);
	args[0] = TimestampTzGetDatum(silence_since());
	args[1] = BoolGetDatum(expire);
	args[2] = model_int8_array(c->stage_joblists.v, c->stage_joblists.n);
	if (SPI_execute_with_args("SELECT next_deadline, skipped FROM dispatch._housekeeping($1, $2, $3)",
							  3, types, args, nulls, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "pg_dispatch housekeeping failed");
	secs = seconds_at(SPI_tuptable, &isnull);
	if (isnull)
		secs = -1;
	skipped = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	if (left_joblists != NULL)
		pfree(left_joblists);
	left_joblists = NULL;
	nleft_joblists = 0;
	*left = !isnull;			/* NULL: none left */
	if (*left)
	{
		deconstruct_array(DatumGetArrayTypeP(skipped), INT8OID, 8, true, TYPALIGN_DOUBLE,
						  &ids, NULL, &nleft_joblists);
		left_joblists = MemoryContextAlloc(TopMemoryContext, sizeof(Datum) * nleft_joblists);
		memcpy(left_joblists, ids, sizeof(Datum) * nleft_joblists);
	}
	return secs;
}

/* Runs one scheduling cycle in its own transaction; returns how long to sleep (ms). */
static long
run_cycle(void)
{
	TimestampTz start = GetCurrentTimestamp();
	MemoryContext cycle_cxt = CurrentMemoryContext;
	long		sleep_ms = MAX_SLEEP_MS;
	int			assigned = 0;
	SqlRunCycle sql = {.cxt = cycle_cxt};
	Oid			extension;
	long		secs;
	int			usecs;

	worker_begin("pg_dispatch scheduling cycle");
	extension = worker_extension_lock();
	sqlslot_sync(&sql, extension);
	if (extension != model_extension)
		drop_model();			/* installed, dropped or installed again */
	if (OidIsValid(extension))
	{
		ModelChanges c = {0};
		bool		expire = model == NULL || start >= next_expiry;
		double		deadline;
		double		goal;
		bool		isnull;
		bool		left;
		int			skipped;

		model_changes_read(&c, true, false);
		deadline = housekeeping(expire, &c, &left);
		if (expire)
			next_expiry = deadline < 0 ? DT_NOEND :
				TimestampTzPlusMilliseconds(start, (int64) (deadline * 1000.0));
		else if (deadline >= 0)	/* a joblist's timeout, sooner than liveness */
			next_expiry = Min(next_expiry,
							  TimestampTzPlusMilliseconds(start, (int64) (deadline * 1000.0)));
		goal = seconds_at(worker_select("SELECT least(dispatch._goal_tick(), dispatch._rebuild_tick())",
										0, NULL, NULL), &isnull);
		if (!isnull)
			sleep_ms = Min(sleep_ms, (long) (goal * 1000.0) + 1);
		sqlslot_claim(&sql);

		model_changes_read(&c, true, true);	/* and what this cycle changed */
		if (c.nodes.n > 0)		/* a node that came back is silent from now at most */
			next_expiry = Min(next_expiry,
							  TimestampTzPlusMilliseconds(start, dispatch_node_timeout * 1000L));
		if (model == NULL)
		{
			model = model_load();
			model_extension = extension;
		}
		else
			model_apply(model, &c);
		assigned = alloc_assign(model, &skipped);
		if (left || skipped > 0)	/* a rollback of what held them wakes no one */
			sleep_ms = Min(sleep_ms, RETRY_SLEEP_MS);
		if (next_expiry != DT_NOEND)
		{
			TimestampDifference(GetCurrentTimestamp(), next_expiry, &secs, &usecs);
			sleep_ms = Min(sleep_ms, secs * 1000L + usecs / 1000 + 1);
		}
	}
	worker_end();
	sqlslot_after_commit(&sql, extension);

	TimestampDifference(start, GetCurrentTimestamp(), &secs, &usecs);
	SpinLockAcquire(&scheduler_shared->mutex);
	scheduler_shared->cycles++;
	scheduler_shared->jobs_assigned += assigned;
	scheduler_shared->last_cycle_at = start;
	scheduler_shared->last_cycle_us = secs * 1000000L + usecs;
	SpinLockRelease(&scheduler_shared->mutex);
	return Max(sleep_ms, MIN_SLEEP_MS);
}

/* Main loop of the scheduler worker. */
void
scheduler_main(Datum arg)
{
	static MemoryContext cycle_cxt;
	static long error_sleep_ms = 0;	/* statics: they survive the longjmp */
	sigjmp_buf	recover;

	worker_start();
	worker_connect(dispatch_database, NULL, "pg_dispatch scheduler");

	/*
	 * No JIT for the cycle's statements: short ones over few rows, whose estimates
	 * (a big queue's table statistics, the arrays' real sizes) can pass the JIT
	 * threshold; a 20,000-job joblist's reload of its changed jobs spent 18 ms of
	 * its 18 ms a cycle compiling (docs/scale.md).
	 */
	SetConfigOption("jit", "off", PGC_USERSET, PGC_S_SESSION);
	publish(true);
	before_shmem_exit(unpublish, 0);
	cycle_cxt = AllocSetContextCreate(TopMemoryContext, "pg_dispatch cycle",
									  ALLOCSET_DEFAULT_SIZES);
	ereport(LOG, (errmsg("pg_dispatch scheduler started in database \"%s\"",
						 dispatch_database)));

	if (sigsetjmp(recover, 1) != 0)
	{
		/* A cycle failed: PG_exception_stack brought us here. */
		error_context_stack = NULL;
		worker_abort();
		MemoryContextReset(cycle_cxt);
		drop_model();
		error_sleep_ms = error_sleep_ms == 0 ? ERROR_SLEEP_MS :
			Min(error_sleep_ms * 2, MAX_SLEEP_MS);
		ereport(LOG, (errmsg("pg_dispatch scheduling cycle failed, retrying in %ld ms",
							 error_sleep_ms)));
		worker_wait(error_sleep_ms);
	}
	PG_exception_stack = &recover;

	while (!ShutdownRequestPending)
	{
		long		sleep_ms = MAX_SLEEP_MS;
		uint64		wakes = pg_atomic_read_u64(&scheduler_shared->wakes);

		if (ConfigReloadPending)
			drop_model();		/* limits (kill_grace, node_timeout...) may have changed */
		worker_reload_if_requested();
		if (!RecoveryInProgress())
		{
			MemoryContext old = MemoryContextSwitchTo(cycle_cxt);

			sleep_ms = run_cycle();
			error_sleep_ms = 0;
			if (model_check_due(GetCurrentTimestamp(), &sleep_ms))
				model_check_run(&model);
			MemoryContextSwitchTo(old);
			MemoryContextReset(cycle_cxt);
		}
		/* a wake-up during the cycle may have lost its latch (wake.c): no sleep then */
		if (pg_atomic_read_u64(&scheduler_shared->wakes) == wakes)
			worker_wait(sleep_ms);
		else
			CHECK_FOR_INTERRUPTS();
	}
	proc_exit(0);
}

/* Returns the scheduler's pid (NULL when none runs) and counters. */
Datum
scheduler_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};
	SchedulerShared snap;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	SpinLockAcquire(&scheduler_shared->mutex);
	snap = *scheduler_shared;
	SpinLockRelease(&scheduler_shared->mutex);

	values[0] = Int32GetDatum(snap.scheduler_pid);
	nulls[0] = snap.scheduler_pid == 0;
	values[1] = Int64GetDatum((int64) snap.cycles);
	values[2] = Int64GetDatum((int64) snap.jobs_assigned);
	values[3] = TimestampTzGetDatum(snap.last_cycle_at);
	nulls[3] = snap.last_cycle_at == 0;
	values[4] = Float8GetDatum(snap.last_cycle_us / 1000.0);
	nulls[4] = snap.cycles == 0;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
