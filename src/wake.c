/*
 * wake.c: SQL-callable helpers that need C.
 *
 * wake_scheduler() is how every change reaches the scheduler without polling: it
 * marks the transaction, and a transaction callback sets the scheduler's latch only
 * once the transaction has committed, so the scheduler never wakes to data it cannot
 * see yet, and a rolled back change wakes nobody.  current_caller() tells SECURITY
 * DEFINER functions who called them; scheduler_stats() shows the worker's counters.
 */
#include "pg_dispatch.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(wake_scheduler);
PG_FUNCTION_INFO_V1(current_caller);
PG_FUNCTION_INFO_V1(scheduler_stats);

static void wake_at_commit(XactEvent event, void *arg);

static bool wake_pending = false;
static bool callback_registered = false;

/* Sets the scheduler's latch when a marked transaction commits; forgets on abort. */
static void
wake_at_commit(XactEvent event, void *arg)
{
	pid_t		pid;
	int			procno;

	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_PARALLEL_COMMIT)
	{
		if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
			event == XACT_EVENT_PREPARE)
			wake_pending = false;
		return;
	}
	if (!wake_pending)
		return;
	wake_pending = false;
	SpinLockAcquire(&dispatch_shared->mutex);
	pid = dispatch_shared->scheduler_pid;
	procno = dispatch_shared->scheduler_procno;
	SpinLockRelease(&dispatch_shared->mutex);
	if (pid != 0)
		SetLatch(&ProcGlobal->allProcs[procno].procLatch);
}

/* Marks the current transaction so that its commit wakes the scheduler. */
Datum
wake_scheduler(PG_FUNCTION_ARGS)
{
	if (dispatch_shared == NULL || dispatch_shared->scheduler_pid == MyProcPid)
		PG_RETURN_VOID();		/* the scheduler never wakes itself */
	if (!callback_registered)
	{
		RegisterXactCallback(wake_at_commit, NULL);
		callback_registered = true;
	}
	wake_pending = true;
	PG_RETURN_VOID();
}

/* Returns the role outside any SECURITY DEFINER function (SET ROLE honoured). */
Datum
current_caller(PG_FUNCTION_ARGS)
{
	char	   *role = GetUserNameFromId(GetOuterUserId(), false);

	PG_RETURN_DATUM(DirectFunctionCall1(namein, CStringGetDatum(role)));
}

/* Returns the scheduler's pid (NULL when none runs) and counters. */
Datum
scheduler_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};
	DispatchShared snap;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	SpinLockAcquire(&dispatch_shared->mutex);
	snap = *dispatch_shared;
	SpinLockRelease(&dispatch_shared->mutex);

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
