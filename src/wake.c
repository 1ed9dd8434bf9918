/*
 * wake.c: dispatch.wake_scheduler(), how a committed change reaches the scheduler.
 *
 * wake_scheduler() is how every change reaches the scheduler without polling: it
 * marks the transaction, and a transaction callback sets the scheduler's latch only
 * once the transaction has committed, so the scheduler never wakes to data it cannot
 * see yet, and a rolled back change wakes nobody.  The scheduler publishes
 * where its latch is in shared memory (scheduler.c); a latch set many times
 * before the scheduler waits wakes it once.  Each wake-up is also counted in
 * shared memory, because a latch alone can be lost: a wait inside a cycle (on a
 * lock, say) resets the latch when it ends, eating a wake-up set meanwhile (seen
 * as commits whose jobs waited up to a second for the next unrelated wake-up).
 * wake_scheduler_now() sets it at once, for SQL job workers, which have no
 * transaction in the scheduler's database to commit.
 */
#include "pg_dispatch.h"

#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "storage/proc.h"

PG_FUNCTION_INFO_V1(wake_scheduler);
PG_FUNCTION_INFO_V1(wake_scheduler_again);

static void wake_at_commit(XactEvent event, void *arg);

static bool wake_pending = false;
static bool callback_registered = false;

/* Sets the scheduler's latch now (when a scheduler runs). */
void
wake_scheduler_now(void)
{
	pid_t		pid;
	int			procno;

	SpinLockAcquire(&scheduler_shared->mutex);
	pid = scheduler_shared->scheduler_pid;
	procno = scheduler_shared->scheduler_procno;
	SpinLockRelease(&scheduler_shared->mutex);
	pg_atomic_fetch_add_u64(&scheduler_shared->wakes, 1);
	if (pid != 0)
		SetLatch(&ProcGlobal->allProcs[procno].procLatch);
}

/* Sets the scheduler's latch when a marked transaction commits; forgets on abort. */
static void
wake_at_commit(XactEvent event, void *arg)
{
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
	wake_scheduler_now();
}

/* Marks the current transaction so that its commit wakes the scheduler. */
static void
wake_at_this_commit(void)
{
	if (!callback_registered)
	{
		RegisterXactCallback(wake_at_commit, NULL);
		callback_registered = true;
	}
	wake_pending = true;
}

Datum
wake_scheduler(PG_FUNCTION_ARGS)
{
	if (scheduler_shared == NULL || scheduler_shared->scheduler_pid == MyProcPid)
		PG_RETURN_VOID();		/* the scheduler never wakes itself */
	wake_at_this_commit();
	PG_RETURN_VOID();
}

/*
 * Like wake_scheduler(), but also from within the scheduler's cycle, which then runs
 * the next cycle as soon as it has committed: for what a cycle wrote that needs a
 * cycle of its own (a group's reservation placed, whose jobs housekeeping lends to).
 */
Datum
wake_scheduler_again(PG_FUNCTION_ARGS)
{
	if (scheduler_shared != NULL)
		wake_at_this_commit();
	PG_RETURN_VOID();
}
