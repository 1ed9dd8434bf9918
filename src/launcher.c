/*
 * launcher.c: the static background worker that keeps the scheduler running.
 *
 * The launcher starts only once recovery has finished (BgWorkerStart_RecoveryFinished),
 * so on a standby nothing schedules until it is promoted.  It starts the scheduler and
 * the monitor (alerts, notifications) as dynamic workers connected to
 * dispatch.database, sleeps until the postmaster reports that one stopped
 * (bgw_notify_pid sets our latch), and starts it again after a pause.  An error inside
 * a worker therefore costs one restart, not the service.
 */
#include "pg_dispatch.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#define RESTART_DELAY_MS 5000

static void fill_worker(BackgroundWorker *w, const char *function, const char *name);
static void wait_ms(long ms);
static BackgroundWorkerHandle *start_worker(const char *function, const char *name);

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

/* Starts worker w (function, name); returns its handle, or NULL with a warning. */
static BackgroundWorkerHandle *
start_worker(const char *function, const char *name)
{
	BackgroundWorker w;
	BackgroundWorkerHandle *handle;
	pid_t		pid;

	fill_worker(&w, function, name);
	w.bgw_restart_time = BGW_NEVER_RESTART;
	w.bgw_notify_pid = MyProcPid;
	if (!RegisterDynamicBackgroundWorker(&w, &handle))
	{
		ereport(WARNING,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("could not start the %s", name),
				 errhint("Raise max_worker_processes.")));
		return NULL;
	}
	if (WaitForBackgroundWorkerStartup(handle, &pid) != BGWH_STARTED)
		return NULL;
	return handle;
}

/*
 * Main loop of the launcher: keep the scheduler and the monitor running; a worker
 * that stopped is started again after a pause.
 */
void
dispatch_launcher_main(Datum arg)
{
	static const char *const functions[] = {"dispatch_scheduler_main", "dispatch_monitor_main"};
	static const char *const names[] = {"pg_dispatch scheduler", "pg_dispatch monitor"};
	BackgroundWorkerHandle *handles[lengthof(functions)] = {NULL};
	TimestampTz stopped_at[lengthof(functions)] = {0};

	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();

	while (!ShutdownRequestPending)
	{
		long		sleep_ms = 60000;

		for (size_t i = 0; i < lengthof(functions); i++)
		{
			pid_t		pid;
			TimestampTz now = GetCurrentTimestamp();

			if (handles[i] != NULL && GetBackgroundWorkerPid(handles[i], &pid) != BGWH_STARTED)
			{
				handles[i] = NULL;
				stopped_at[i] = now;
			}
			if (handles[i] == NULL &&
				TimestampDifferenceExceeds(stopped_at[i], now, RESTART_DELAY_MS))
			{
				handles[i] = start_worker(functions[i], names[i]);
				if (handles[i] == NULL)
					stopped_at[i] = now;
			}
			if (handles[i] == NULL)
				sleep_ms = Min(sleep_ms, RESTART_DELAY_MS);
		}
		wait_ms(sleep_ms);
	}
	for (size_t i = 0; i < lengthof(functions); i++)
		if (handles[i] != NULL)
			TerminateBackgroundWorker(handles[i]);
	proc_exit(0);
}
