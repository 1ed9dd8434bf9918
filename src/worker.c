/*
 * worker.c: what every pg_dispatch background worker does the same way.
 *
 * Defining a worker (library, entry point, database connection, started once
 * recovery has finished), the start-up (SIGTERM asks to stop, SIGHUP to reload,
 * then the signals are unblocked), the configuration reload, the latch sleep
 * and the transaction around each unit of work are written once here, so the
 * worker files hold only what their worker does.  The design is
 * contrib/pg_prewarm/autoprewarm.c's: flags set by the handlers, a loop on
 * ShutdownRequestPending, WaitLatch with WL_EXIT_ON_PM_DEATH.
 *
 * worker_begin() / worker_end() bracket one transaction with SPI connected and
 * a snapshot pushed; between them CurrentMemoryContext is SPI's, freed by
 * worker_end(), which returns to the caller's context.  A result SPI cannot
 * return by design is a can't-happen and raises elog(ERROR).  Every worker
 * transaction that touches dispatch tables first calls worker_extension_lock().
 */
#include "worker.h"

#include "access/xact.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/lmgr.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/wait_event.h"

/* The caller's memory context while a worker_begin() transaction is open. */
static MemoryContext caller_cxt = NULL;

/* Fills w for one of our workers: a database connection, started after recovery. */
void
worker_define(BackgroundWorker *w, const char *function, const char *type)
{
	memset(w, 0, sizeof(*w));
	w->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w->bgw_start_time = BgWorkerStart_RecoveryFinished;
	strlcpy(w->bgw_library_name, "pg_dispatch", BGW_MAXLEN);
	strlcpy(w->bgw_function_name, function, BGW_MAXLEN);
	strlcpy(w->bgw_name, type, BGW_MAXLEN);
	strlcpy(w->bgw_type, type, BGW_MAXLEN);
}

/* Installs the handlers (SIGTERM: stop at the next loop, SIGHUP: reload) and unblocks signals. */
void
worker_start(void)
{
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
}

/* Connects to database as user (NULL: the bootstrap superuser) and sets the application name. */
void
worker_connect(const char *database, const char *user, const char *appname)
{
	BackgroundWorkerInitializeConnection(database, user, 0);
	pgstat_report_appname(appname);
}

/* Rereads the configuration files when SIGHUP asked for it. */
void
worker_reload_if_requested(void)
{
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
}

/* Sleeps up to ms or until the latch is set; exits with the postmaster. */
void
worker_wait(long ms)
{
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, ms,
					 PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

/* Starts a transaction with SPI connected and a snapshot; activity (or NULL) goes to pg_stat_activity. */
void
worker_begin(const char *activity)
{
	Assert(caller_cxt == NULL);
	caller_cxt = CurrentMemoryContext;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	if (activity != NULL)
		pgstat_report_activity(STATE_RUNNING, activity);
}

/* Commits the worker_begin() transaction, reports idle and returns to the caller's context. */
void
worker_end(void)
{
	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(caller_cxt);
	caller_cxt = NULL;
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * After an ERROR caught by a worker's own sigsetjmp: logs it, aborts the
 * worker_begin() transaction (SPI, snapshot, locks go with it) and returns to the
 * caller's context, so the worker can go on.
 */
void
worker_abort(void)
{
	HOLD_INTERRUPTS();
	EmitErrorReport();
	AbortCurrentTransaction();
	MemoryContextSwitchTo(caller_cxt != NULL ? caller_cxt : TopMemoryContext);
	caller_cxt = NULL;
	FlushErrorState();
	pgstat_report_activity(STATE_IDLE, NULL);
	RESUME_INTERRUPTS();
}

/*
 * Returns pg_dispatch's oid after taking its extension lock in share mode (held to
 * the end of the transaction), or InvalidOid when it is not installed; inside
 * worker_begin(), before any dispatch table is touched.  DROP EXTENSION takes
 * the same lock exclusively before it drops anything, so it waits for a worker
 * transaction in flight, and a worker transaction that begins meanwhile waits
 * for the drop and then finds the extension gone: no deadlock, no half-dropped
 * schema.
 */
Oid
worker_extension_lock(void)
{
	Oid			extension = get_extension_oid("pg_dispatch", true);

	if (!OidIsValid(extension))
		return InvalidOid;
	LockDatabaseObject(ExtensionRelationId, extension, 0, AccessShareLock);
	InvalidateCatalogSnapshot();	/* look again: the drop may have committed as we waited */
	if (get_extension_oid("pg_dispatch", true) != extension)
		return InvalidOid;
	return extension;
}

/*
 * Runs the SELECT sql in a transaction of its own; returns false (running
 * nothing) when pg_dispatch is not installed.  Its rows are gone when it returns.
 */
bool
worker_run(const char *sql, int nargs, Oid *types, Datum *values)
{
	bool		ready;

	worker_begin(sql);
	ready = OidIsValid(worker_extension_lock());
	if (ready)
		(void) worker_select(sql, nargs, types, values);
	worker_end();
	return ready;
}

/* Runs a SELECT with nargs arguments through SPI and returns its rows. */
SPITupleTable *
worker_select(const char *sql, int nargs, Oid *types, Datum *values)
{
	if (SPI_execute_with_args(sql, nargs, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "pg_dispatch query failed: %s", sql);
	return SPI_tuptable;
}

/* Returns column col (from 1) of row as a C string, or NULL. */
char *
worker_text_at(SPITupleTable *t, uint64 row, int col)
{
	return SPI_getvalue(t->vals[row], t->tupdesc, col);
}

/* Returns column col (from 1) of row as an int8, 0 for NULL. */
int64
worker_int8_at(SPITupleTable *t, uint64 row, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(t->vals[row], t->tupdesc, col, &isnull);

	return isnull ? 0 : DatumGetInt64(d);
}
