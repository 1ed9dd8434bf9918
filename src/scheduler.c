/*
 * scheduler.c: the scheduler background worker and its shared memory.
 *
 * One loop, woken by its latch: wake_scheduler() (wake.c) sets it when a
 * submission, a finish, a cancel or a node change commits.  Each wake-up runs one
 * cycle in one transaction: dispatch._housekeeping() (liveness, stages, joblist
 * ends), then the goals are evaluated (_goal_tick(): fires, instances, windows),
 * then the pending jobs are placed by alloc_assign() (alloc.c), which reads the
 * problem from the _sched_* views, solves it with core/alloc.c and writes the
 * answer back, NOTIFYing the nodes.  SQL job runs go through slots in shared
 * memory (sqlslot.c): the cycle first records the outcomes that workers left
 * there, and claims the runs the goals created; after the commit the slots it
 * recorded are freed and the claimed runs get their background workers
 * (sqlrun.c).  The only timers are the next liveness deadline and the next goal
 * deadline.
 *
 * The cycle's transaction first takes pg_dispatch's extension lock
 * (worker_extension_lock()), so DROP EXTENSION waits for a cycle in flight and
 * a cycle never meets a half-dropped schema.
 *
 * The shared memory is this server's scheduler: its pid and PGPROC number, so
 * any backend can set its latch, and the counters scheduler_stats() shows; and
 * the SQL run slots.
 *
 * Errors: an ERROR in a cycle is caught by the loop's own sigsetjmp (as
 * PostgreSQL's auxiliary processes do), logged, and its transaction rolled back
 * (worker_abort()); the cycle is retried after a pause that doubles from
 * ERROR_SLEEP_MS up to MAX_SLEEP_MS while cycles keep failing.  Nothing of a
 * failed cycle survives it: its writes are rolled back, its memory is the cycle
 * context's, and the SQL run slots it would have freed or started are only
 * touched after a commit.  The process, and with it the liveness grace counted
 * from its start (_housekeeping()), stays.  FATAL still ends the process, and
 * the launcher starts a fresh scheduler after a pause.
 */
#include "pg_dispatch.h"
#include "worker.h"

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
#include "utils/memutils.h"
#include "utils/timestamp.h"

#define MAX_SLEEP_MS 60000L
#define MIN_SLEEP_MS 100L
#define ERROR_SLEEP_MS 1000L

PG_FUNCTION_INFO_V1(scheduler_stats);

static void shmem_request(void);
static void shmem_startup(void);
static void publish(bool running);
static void unpublish(int code, Datum arg);
static long seconds_to_ms(SPITupleTable *t);
static long run_cycle(void);

SchedulerShared *scheduler_shared = NULL;

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

/* Returns the one float8 of seconds in t as milliseconds (rounded up), or MAX_SLEEP_MS for NULL. */
static long
seconds_to_ms(SPITupleTable *t)
{
	bool		isnull;
	Datum		d = SPI_getbinval(t->vals[0], t->tupdesc, 1, &isnull);

	return isnull ? MAX_SLEEP_MS : Min(MAX_SLEEP_MS, (long) (DatumGetFloat8(d) * 1000.0) + 1);
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
	if (OidIsValid(extension))
	{
		sleep_ms = seconds_to_ms(worker_select("SELECT dispatch._housekeeping()", 0, NULL, NULL));
		sleep_ms = Min(sleep_ms,
					   seconds_to_ms(worker_select("SELECT dispatch._goal_tick()", 0, NULL, NULL)));
		sqlslot_claim(&sql);
		assigned = alloc_assign();
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

		worker_reload_if_requested();
		if (!RecoveryInProgress())
		{
			MemoryContext old = MemoryContextSwitchTo(cycle_cxt);

			sleep_ms = run_cycle();
			error_sleep_ms = 0;
			MemoryContextSwitchTo(old);
			MemoryContextReset(cycle_cxt);
		}
		worker_wait(sleep_ms);
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
