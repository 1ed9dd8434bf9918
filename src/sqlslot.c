/*
 * sqlslot.c: the scheduler's side of SQL job runs: the slots in shared memory,
 * claiming runs, starting their workers and recording their outcomes.
 *
 * A cycle (scheduler.c) first syncs: every slot whose worker finished, or died
 * without a word, becomes an outcome, and dispatch._sql_runs_sync() records them
 * in job_run_details together with the pids of the runs still going; a run
 * left 'running' that no slot holds lost its worker (a server restart or a
 * failover) and fails.  Later in the cycle dispatch._sql_runs_to_launch() claims
 * the runs the goal evaluator created ('starting' -> 'running').  Only after the
 * cycle has committed are the recorded slots freed and the claimed runs put into
 * free slots and given their workers, so a cycle that rolls back (an error ends
 * the scheduler) records nothing twice and starts nothing unrecorded.
 *
 * The workers are started with bgw_notify_pid = the scheduler, so the latch is
 * set when one stops; a worker also sets it when it has taken its slot and when
 * it is done.  Workers started by a previous scheduler are watched through the
 * pid they wrote into their slot.  A run without a free slot or worker fails at
 * once with a message saying so.
 */
#include "pg_dispatch.h"
#include "sqlrun.h"
#include "worker.h"

#include <signal.h>

#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/shmem.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

/* A run assigned by a scheduler that is gone, and never taken, fails after this long. */
#define ASSIGN_TIMEOUT_MS 60000

static int	slot_count(void);
static Size slot_size(void);
static SqlRunState slot_state(SqlRunSlot *s, pid_t *pid);
static bool worker_gone(int i, const SqlRunSlot *s, pid_t pid);
static char *valid_text(const char *s);
static void free_slot(int i);
static void fail_unstarted(int64 run, const char *message);
static bool start(int i, const SqlRunClaim *claim, Oid extension);

/* The slot array, in shared memory; one per possible background worker. */
static char *slots = NULL;

/* This scheduler's handles of the workers it started, by slot (TopMemoryContext). */
static BackgroundWorkerHandle **handles = NULL;

/* Where the next search for a free slot begins. */
static int	next_free = 0;

/* Returns the number of slots: one per background worker the server can run. */
static int
slot_count(void)
{
	return max_worker_processes;
}

/* Returns the size of one slot, whose command holds dispatch.max_sql_command_size bytes. */
static Size
slot_size(void)
{
	return MAXALIGN(add_size(offsetof(SqlRunSlot, command), dispatch_max_sql_command_size + 1));
}

/* Returns the shared memory the slots need. */
Size
sqlslot_shmem_size(void)
{
	return mul_size(slot_count(), slot_size());
}

/* Attaches to (and on first use initialises) the slots; called from shmem_startup_hook. */
void
sqlslot_shmem_startup(void)
{
	bool		found;

	slots = ShmemInitStruct("pg_dispatch SQL runs", sqlslot_shmem_size(), &found);
	if (found)
		return;
	for (int i = 0; i < slot_count(); i++)
	{
		SqlRunSlot *s = sqlslot_get(i);

		memset(s, 0, offsetof(SqlRunSlot, command));
		SpinLockInit(&s->mutex);
		s->state = SQLRUN_FREE;
	}
}

/* Returns slot i. */
SqlRunSlot *
sqlslot_get(int i)
{
	Assert(i >= 0 && i < slot_count());
	return (SqlRunSlot *) (slots + (Size) i * slot_size());
}

/* Returns the state of slot s and sets *pid to its worker's (0: none yet). */
static SqlRunState
slot_state(SqlRunSlot *s, pid_t *pid)
{
	SqlRunState state;

	SpinLockAcquire(&s->mutex);
	state = s->state;
	*pid = s->pid;
	SpinLockRelease(&s->mutex);
	return state;
}

/*
 * Returns true when the worker of busy slot i (s, its pid as just read) is gone:
 * ours has stopped; a predecessor's is no longer a process, or never took the
 * slot within ASSIGN_TIMEOUT_MS.
 */
static bool
worker_gone(int i, const SqlRunSlot *s, pid_t pid)
{
	if (handles != NULL && handles[i] != NULL)
	{
		pid_t		unused;
		BgwHandleStatus status = GetBackgroundWorkerPid(handles[i], &unused);

		return status == BGWH_STOPPED || status == BGWH_POSTMASTER_DIED;
	}
	if (pid != 0)
		return kill(pid, 0) != 0 && errno == ESRCH;
	return TimestampDifferenceExceeds(s->assigned_at, GetCurrentTimestamp(), ASSIGN_TIMEOUT_MS);
}

/*
 * Returns a palloc'd copy of s that is valid text in this database's encoding:
 * a byte that does not begin a valid character (a message from a database with
 * another encoding, a character cut by the size limit) becomes '?'.
 */
static char *
valid_text(const char *s)
{
	char	   *copy = pstrdup(s);
	int			len = strlen(copy);
	int			encoding = GetDatabaseEncoding();

	for (int i = 0; i < len;)
	{
		int			n = pg_encoding_verifymbchar(encoding, copy + i, len - i);

		if (n <= 0)
		{
			copy[i] = '?';
			n = 1;
		}
		i += n;
	}
	return copy;
}

/*
 * Inside the cycle's transaction: collects every slot whose run ended (its outcome,
 * or a failure when its worker died without one) into c->ended, and, when pg_dispatch
 * is installed (extension is its oid), records them and the pids of the live runs.
 * Slots of a dropped extension's runs are freed without recording.
 */
void
sqlslot_sync(SqlRunCycle *c, Oid extension)
{
	int			n = slot_count();
	Datum	   *live = palloc(sizeof(Datum) * n),
			   *live_pids = palloc(sizeof(Datum) * n),
			   *ended = palloc(sizeof(Datum) * n),
			   *oks = palloc(sizeof(Datum) * n),
			   *pids = palloc(sizeof(Datum) * n),
			   *messages = palloc(sizeof(Datum) * n);
	int			nlive = 0,
				nended = 0;

	c->ended = MemoryContextAlloc(c->cxt, sizeof(int) * n);
	c->nended = 0;
	for (int i = 0; i < n; i++)
	{
		SqlRunSlot *s = sqlslot_get(i);
		SqlRunState state;
		pid_t		pid;
		const char *message = s->message;
		bool		ok = false;

		state = slot_state(s, &pid);
		if (state == SQLRUN_FREE)
			continue;
		if (state != SQLRUN_DONE)
		{
			if (!worker_gone(i, s, pid))
			{
				if (s->extension == extension)
				{
					live[nlive] = Int64GetDatum(s->run);
					live_pids[nlive++] = Int32GetDatum(pid);
				}
				continue;
			}
			state = slot_state(s, &pid);	/* it may have finished as we looked */
			if (state != SQLRUN_DONE)
				message = pid == 0 ? "no worker took the run (see the server log)"
					: "the run's worker ended without a result (see the server log)";
		}
		if (state == SQLRUN_DONE)
			ok = s->ok;
		c->ended[c->nended++] = i;
		if (s->extension != extension)
			continue;
		ended[nended] = Int64GetDatum(s->run);
		oks[nended] = BoolGetDatum(ok);
		pids[nended] = Int32GetDatum(pid);
		messages[nended++] = CStringGetTextDatum(valid_text(message));
	}
	if (OidIsValid(extension))
	{
		Oid			types[6] = {INT8ARRAYOID, INT4ARRAYOID, INT8ARRAYOID, BOOLARRAYOID,
		INT4ARRAYOID, TEXTARRAYOID};
		Datum		values[6] = {
			PointerGetDatum(construct_array(live, nlive, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE)),
			PointerGetDatum(construct_array(live_pids, nlive, INT4OID, 4, true, TYPALIGN_INT)),
			PointerGetDatum(construct_array(ended, nended, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE)),
			PointerGetDatum(construct_array(oks, nended, BOOLOID, 1, true, TYPALIGN_CHAR)),
			PointerGetDatum(construct_array(pids, nended, INT4OID, 4, true, TYPALIGN_INT)),
			PointerGetDatum(construct_array(messages, nended, TEXTOID, -1, false, TYPALIGN_INT))};

		(void) worker_select("SELECT dispatch._sql_runs_sync($1, $2, $3, $4, $5, $6)",
							 6, types, values);
	}
}

/* Inside the cycle's transaction: claims the runs to start into c->claimed. */
void
sqlslot_claim(SqlRunCycle *c)
{
	SPITupleTable *t = worker_select("SELECT runid, database, username, command"
									 "  FROM dispatch._sql_runs_to_launch()", 0, NULL, NULL);

	c->claimed = MemoryContextAlloc(c->cxt, sizeof(SqlRunClaim) * (t->numvals + 1));
	c->nclaimed = (int) t->numvals;
	for (uint64 i = 0; i < t->numvals; i++)
	{
		c->claimed[i].run = worker_int8_at(t, i, 1);
		c->claimed[i].database = MemoryContextStrdup(c->cxt, worker_text_at(t, i, 2));
		c->claimed[i].user = MemoryContextStrdup(c->cxt, worker_text_at(t, i, 3));
		c->claimed[i].command = MemoryContextStrdup(c->cxt, worker_text_at(t, i, 4));
	}
}

/* Frees slot i and forgets its worker's handle. */
static void
free_slot(int i)
{
	SqlRunSlot *s = sqlslot_get(i);

	if (handles[i] != NULL)
		pfree(handles[i]);
	handles[i] = NULL;
	SpinLockAcquire(&s->mutex);
	s->state = SQLRUN_FREE;
	s->pid = 0;
	SpinLockRelease(&s->mutex);
}

/* Records in its own transaction that run could not be started, and why. */
static void
fail_unstarted(int64 run, const char *message)
{
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		values[2] = {Int64GetDatum(run), CStringGetTextDatum(message)};

	worker_begin(NULL);
	if (OidIsValid(worker_extension_lock()))
		(void) worker_select("SELECT dispatch._sql_run_unstarted($1, $2)", 2, types, values);
	worker_end();
}

/* Fills free slot i with claim (of extension) and starts its worker; false when none could start. */
static bool
start(int i, const SqlRunClaim *claim, Oid extension)
{
	SqlRunSlot *s = sqlslot_get(i);
	BackgroundWorker w;
	MemoryContext old;
	bool		started;

	s->extension = extension;
	s->run = claim->run;
	s->assigned_at = GetCurrentTimestamp();
	s->encoding = GetDatabaseEncoding();
	s->ok = false;
	s->message[0] = '\0';
	strlcpy(s->database, claim->database, NAMEDATALEN);
	strlcpy(s->user, claim->user, NAMEDATALEN);
	strlcpy(s->command, claim->command, dispatch_max_sql_command_size + 1);
	SpinLockAcquire(&s->mutex);
	s->state = SQLRUN_ASSIGNED;
	s->pid = 0;
	SpinLockRelease(&s->mutex);

	worker_define(&w, "sqlrun_main", "pg_dispatch SQL job");
	w.bgw_restart_time = BGW_NEVER_RESTART;
	w.bgw_notify_pid = MyProcPid;
	snprintf(w.bgw_name, BGW_MAXLEN, "pg_dispatch SQL job run " INT64_FORMAT, claim->run);
	w.bgw_main_arg = Int32GetDatum(i);
	memcpy(w.bgw_extra, &claim->run, sizeof(claim->run));
	old = MemoryContextSwitchTo(TopMemoryContext);
	started = RegisterDynamicBackgroundWorker(&w, &handles[i]);
	MemoryContextSwitchTo(old);
	if (!started)
		free_slot(i);
	return started;
}

/*
 * After the cycle has committed: frees the slots whose outcome it recorded and
 * starts a worker for each run it claimed; a run that gets no slot or no worker,
 * or whose command no longer fits a slot, fails at once.
 */
void
sqlslot_after_commit(SqlRunCycle *c, Oid extension)
{
	int			n = slot_count();

	if (handles == NULL)
		handles = MemoryContextAllocZero(TopMemoryContext, sizeof(*handles) * n);
	for (int i = 0; i < c->nended; i++)
		free_slot(c->ended[i]);
	for (int r = 0; r < c->nclaimed; r++)
	{
		const SqlRunClaim *claim = &c->claimed[r];
		int			i = -1;

		if (strlen(claim->command) > (size_t) dispatch_max_sql_command_size)
		{
			fail_unstarted(claim->run, psprintf("the command is longer than dispatch.max_sql_command_size (%d bytes)",
												dispatch_max_sql_command_size));
			continue;
		}
		for (int k = 0; k < n && i < 0; k++)
		{
			int			j = (next_free + k) % n;
			pid_t		pid;

			if (slot_state(sqlslot_get(j), &pid) == SQLRUN_FREE)
				i = j;
		}
		if (i >= 0 && start(i, claim, extension))
		{
			next_free = (i + 1) % n;
			continue;
		}
		fail_unstarted(claim->run, "could not start a background worker (raise max_worker_processes)");
	}
}
