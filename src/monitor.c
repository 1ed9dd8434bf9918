/*
 * monitor.c: the monitor background worker: alerts, notifications, metric upkeep.
 *
 * Every dispatch.monitor_interval it runs dispatch._monitor_tick() in one
 * transaction (alert rules, presence, rollups, partitions, retention), then
 * claims the notifications that are due; between ticks it moves their transfers
 * on (notify.c).  The tick keeps its clock whatever the receivers do: sending is
 * concurrent and never waits longer than the time left to the next tick, so a
 * receiver that never answers delays no evaluation and no upkeep.  While
 * transfers are in flight the worker sleeps in libcurl's poll, at most a second
 * at a time, so a stop request or the postmaster's death is seen within a
 * second; otherwise on its latch.  The scheduler never waits on any of this.
 */
#include "pg_dispatch.h"
#include "notify.h"
#include "worker.h"

#include "access/xlog.h"
#include "miscadmin.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/pmsignal.h"
#include "utils/timestamp.h"

/* Longest sleep in libcurl's poll: how late a stop request may be seen. */
#define POLL_SLICE_MS 1000

/* Main loop of the monitor worker. */
void
monitor_main(Datum arg)
{
	TimestampTz next_tick = 0;

	worker_start();
	worker_connect(dispatch_database, NULL, "pg_dispatch monitor");
	notify_start();

	while (!ShutdownRequestPending)
	{
		bool		ticked = false;
		long		secs;
		int			usecs;

		worker_reload_if_requested();
		if (GetCurrentTimestamp() >= next_tick)
		{
			next_tick = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													dispatch_monitor_interval * 1000L);
			ticked = !RecoveryInProgress() &&
				worker_run("SELECT dispatch._monitor_tick()", 0, NULL, NULL);
		}
		TimestampDifference(GetCurrentTimestamp(), next_tick, &secs, &usecs);
		if (notify_pump(ticked) > 0)
		{
			notify_wait(Min(secs * 1000L + usecs / 1000, POLL_SLICE_MS));
			if (!PostmasterIsAlive())
				proc_exit(1);
			CHECK_FOR_INTERRUPTS();
		}
		else
			worker_wait(secs * 1000L + usecs / 1000);
	}
	notify_stop();
	proc_exit(0);
}
