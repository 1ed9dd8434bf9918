/*
 * model_check.c: checks the scheduler's model against the tables.
 *
 * The scheduler keeps its model (model.c) by applying changes; a change it never
 * heard of would leave it wrong for good.  A check loads a fresh session from the
 * tables and compares it with the kept one (alloc_session_diff()).  Both must see
 * the same moment: the check runs in a REPEATABLE READ transaction of its own that
 * applies the change queue's rows to the kept session without taking them (the next
 * cycle takes them and applies them again, which is harmless) and then loads the
 * fresh session, all from one snapshot.  A difference is logged at WARNING and the
 * fresh session replaces the kept one.
 *
 * Checks run in the scheduler after a cycle, every dispatch.model_check_interval
 * (0: never) and whenever a backend asks through check_scheduler_model(): it takes
 * a ticket in shared memory, sets the scheduler's latch and sleeps on a condition
 * variable until a check that began after its ticket has answered.
 */
#include "pg_dispatch.h"
#include "worker.h"
#include "model.h"

#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "commands/dbcommands.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

/* How long check_scheduler_model() waits for the scheduler's answer. */
#define CHECK_WAIT_MS 120000L

PG_FUNCTION_INFO_V1(check_scheduler_model);

static void answer(uint64 ticket, const char *result);

/* When the last periodic check ran (0: none yet); the scheduler's own. */
static TimestampTz last_check = 0;

/*
 * Returns whether a check is due at now (asked for, or the interval has passed);
 * lowers *sleep_ms to the time until the next periodic one.
 */
bool
model_check_due(TimestampTz now, long *sleep_ms)
{
	bool		asked;
	long		secs;
	int			usecs;
	TimestampTz next;

	SpinLockAcquire(&scheduler_shared->mutex);
	asked = scheduler_shared->checks_asked > scheduler_shared->checks_done;
	SpinLockRelease(&scheduler_shared->mutex);
	if (last_check == 0)
		last_check = now;
	if (asked)
		return true;
	if (dispatch_model_check_interval == 0)
		return false;
	next = TimestampTzPlusMilliseconds(last_check, dispatch_model_check_interval * 1000L);
	if (now >= next)
		return true;
	TimestampDifference(now, next, &secs, &usecs);
	*sleep_ms = Min(*sleep_ms, secs * 1000L + usecs / 1000 + 1);
	return false;
}

/* Publishes result as the answer to every ticket up to ticket, and wakes the askers. */
static void
answer(uint64 ticket, const char *result)
{
	SpinLockAcquire(&scheduler_shared->mutex);
	strlcpy(scheduler_shared->check_result, result, sizeof(scheduler_shared->check_result));
	scheduler_shared->checks_done = Max(scheduler_shared->checks_done, ticket);
	SpinLockRelease(&scheduler_shared->mutex);
	ConditionVariableBroadcast(&scheduler_shared->check_done_cv);
}

/*
 * Compares *s with a fresh load of the tables; on a difference logs it and replaces
 * *s with the fresh session.  Answers the tickets taken before it began.
 */
void
model_check_run(AllocSession **s)
{
	int			saved_level = DefaultXactIsoLevel;
	AllocSession *volatile fresh = NULL;
	char		why[sizeof(scheduler_shared->check_result)];
	uint64		ticket;
	volatile int differs = 0;

	SpinLockAcquire(&scheduler_shared->mutex);
	ticket = scheduler_shared->checks_asked;
	SpinLockRelease(&scheduler_shared->mutex);
	last_check = GetCurrentTimestamp();
	if (*s == NULL)
	{
		answer(ticket, "the scheduler has no model: pg_dispatch is not installed or its last cycle failed");
		return;
	}

	DefaultXactIsoLevel = XACT_REPEATABLE_READ;	/* one snapshot for both sides */
	PG_TRY();
	{
		worker_begin("pg_dispatch model check");
		DefaultXactIsoLevel = saved_level;
		if (OidIsValid(worker_extension_lock()))
		{
			ModelChanges c = {0};

			model_changes_read(&c, false, false);
			model_apply(*s, &c);
			fresh = model_load();
			differs = alloc_session_diff(*s, fresh, why, sizeof(why));
		}
		worker_end();
	}
	PG_CATCH();
	{
		DefaultXactIsoLevel = saved_level;
		if (fresh != NULL)
			alloc_session_free(fresh);
		answer(ticket, "the check failed; the scheduler rebuilds its model");
		PG_RE_THROW();
	}
	PG_END_TRY();

	if (fresh == NULL)
	{
		answer(ticket, "pg_dispatch is not installed");
		return;
	}
	if (differs)
	{
		ereport(WARNING,
				(errmsg("pg_dispatch scheduler's model differs from the tables: %s", why),
				 errdetail("The scheduler rebuilt its model from the tables.")));
		alloc_session_free(*s);
		*s = fresh;
		answer(ticket, why);
		return;
	}
	alloc_session_free(fresh);
	answer(ticket, "ok");
}

/* Asks this server's scheduler to check its model; returns "ok" or the difference. */
Datum
check_scheduler_model(PG_FUNCTION_ARGS)
{
	uint64		ticket;
	pid_t		pid;
	char		result[sizeof(scheduler_shared->check_result)];
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), CHECK_WAIT_MS);

	if (strcmp(get_database_name(MyDatabaseId), dispatch_database) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the scheduler's model is that of database \"%s\"", dispatch_database),
				 errhint("Connect to database \"%s\" (dispatch.database) to check it.",
						 dispatch_database)));
	SpinLockAcquire(&scheduler_shared->mutex);
	pid = scheduler_shared->scheduler_pid;
	ticket = ++scheduler_shared->checks_asked;
	SpinLockRelease(&scheduler_shared->mutex);
	if (pid == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no scheduler runs on this server"),
				 errhint("The scheduler runs on the primary, in the database dispatch.database names.")));
	wake_scheduler_now();

	ConditionVariablePrepareToSleep(&scheduler_shared->check_done_cv);
	for (;;)
	{
		bool		done;

		SpinLockAcquire(&scheduler_shared->mutex);
		done = scheduler_shared->checks_done >= ticket;
		if (done)
			strlcpy(result, scheduler_shared->check_result, sizeof(result));
		pid = scheduler_shared->scheduler_pid;
		SpinLockRelease(&scheduler_shared->mutex);
		if (done)
			break;
		if (pid == 0 || GetCurrentTimestamp() >= deadline)
		{
			ConditionVariableCancelSleep();
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("could not check the scheduler's model"),
					 errdetail("The scheduler stopped, or did not answer within %ld s.",
							   CHECK_WAIT_MS / 1000)));
		}
		(void) ConditionVariableTimedSleep(&scheduler_shared->check_done_cv, 1000,
										   PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
	PG_RETURN_TEXT_P(cstring_to_text(result));
}
