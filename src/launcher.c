/*
 * launcher.c: the static background worker that keeps the scheduler running.
 *
 * The launcher starts only once recovery has finished (BgWorkerStart_RecoveryFinished),
 * so on a standby nothing schedules until it is promoted.  It starts the scheduler as
 * a dynamic worker connected to dispatch.database, sleeps until the postmaster reports
 * that the scheduler stopped (bgw_notify_pid sets our latch), and starts it again
 * after a pause.  An error inside the scheduler therefore costs one restart, not the
 * service.
 */
#include "pg_dispatch.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/wait_event.h"

#define RESTART_DELAY_MS 5000

static void fill_worker(BackgroundWorker *w, const char *function, const char *name);
static void wait_ms(long ms);

/* Fills the common fields of our background workers. */
static void
fill_worker(BackgroundWorker *w, const char *function, const char *name)
{
	memset(w, 0, sizeof(*w));
	w->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w->bgw_start_time = BgWorkerStart_RecoveryFinished;
	snprintf(w->bgw_library_name, BGW_MAXLEN, "pg_dispatch");
	snprintf(w->bgw_function_name, BGW_MAXLEN, "%s", function);
	snprintf(w->bgw_name, BGW_MAXLEN, "%s", name);
	snprintf(w->bgw_type, BGW_MAXLEN, "%s", name);
}

/* Registers the launcher; called from _PG_init in the postmaster. */
void
dispatch_launcher_register(void)
{
	BackgroundWorker w;

	fill_worker(&w, "dispatch_launcher_main", "pg_dispatch launcher");
	w.bgw_restart_time = 5;
	RegisterBackgroundWorker(&w);
}

/* Sleeps up to ms or until the latch is set, reloading the configuration if asked. */
static void
wait_ms(long ms)
{
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, ms,
					 PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
}

/* Main loop of the launcher: start the scheduler, wait for it to stop, repeat. */
void
dispatch_launcher_main(Datum arg)
{
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();

	while (!ShutdownRequestPending)
	{
		BackgroundWorker w;
		BackgroundWorkerHandle *handle;
		pid_t		pid;

		fill_worker(&w, "dispatch_scheduler_main", "pg_dispatch scheduler");
		w.bgw_restart_time = BGW_NEVER_RESTART;
		w.bgw_notify_pid = MyProcPid;
		if (!RegisterDynamicBackgroundWorker(&w, &handle))
			ereport(WARNING,
					(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
					 errmsg("could not start the pg_dispatch scheduler"),
					 errhint("Raise max_worker_processes.")));
		else if (WaitForBackgroundWorkerStartup(handle, &pid) == BGWH_STARTED)
		{
			while (!ShutdownRequestPending &&
				   GetBackgroundWorkerPid(handle, &pid) == BGWH_STARTED)
				wait_ms(60000);
			if (ShutdownRequestPending)
				TerminateBackgroundWorker(handle);
		}
		if (!ShutdownRequestPending)
			wait_ms(RESTART_DELAY_MS);
	}
	proc_exit(0);
}
