/*
 * launcher.c: the static background worker that keeps the scheduler running.
 *
 * The launcher starts only once recovery has finished (BgWorkerStart_RecoveryFinished),
 * so on a standby nothing schedules until it is promoted.  It starts the scheduler and
 * the monitor (alerts, notifications) as dynamic workers connected to
 * dispatch.database, sleeps until the postmaster reports that one stopped
 * (bgw_notify_pid sets our latch), and starts it again after a pause.  An error inside
 * a worker therefore costs one restart, not the service.  When the launcher itself
 * stops, the postmaster starts it again after bgw_restart_time.
 */
#include "pg_dispatch.h"
#include "worker.h"

#include "miscadmin.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "utils/timestamp.h"

#define RESTART_DELAY_MS 5000
#define IDLE_SLEEP_MS 60000L
#define LAUNCHER_RESTART_S 5

static BackgroundWorkerHandle *start_worker(const char *function, const char *name);

/* Registers the launcher; called from _PG_init in the postmaster. */
void
launcher_register(void)
{
	BackgroundWorker w;

	worker_define(&w, "launcher_main", "pg_dispatch launcher");
	w.bgw_restart_time = LAUNCHER_RESTART_S;
	RegisterBackgroundWorker(&w);
}

/* Starts function as the dynamic worker name, watched by us; returns its handle, or NULL. */
static BackgroundWorkerHandle *
start_worker(const char *function, const char *name)
{
	BackgroundWorker w;
	BackgroundWorkerHandle *handle;
	pid_t		pid;

	worker_define(&w, function, name);
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
launcher_main(Datum arg)
{
	static const char *const functions[] = {"scheduler_main", "monitor_main"};
	static const char *const names[] = {"pg_dispatch scheduler", "pg_dispatch monitor"};
	BackgroundWorkerHandle *handles[lengthof(functions)] = {NULL};
	TimestampTz stopped_at[lengthof(functions)] = {0};

	worker_start();
	while (!ShutdownRequestPending)
	{
		long		sleep_ms = IDLE_SLEEP_MS;

		worker_reload_if_requested();
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
		worker_wait(sleep_ms);
	}
	for (size_t i = 0; i < lengthof(functions); i++)
		if (handles[i] != NULL)
			TerminateBackgroundWorker(handles[i]);
	proc_exit(0);
}
