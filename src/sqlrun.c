/*
 * sqlrun.c: the background worker that runs one SQL job run (pg_cron's jobs).
 *
 * The scheduler starts one worker per job_run_details row in state 'starting',
 * after the cycle that created the row has committed, passing the run id as the
 * argument and the database and user names in bgw_extra.  The worker logs in as
 * the job's user, claims the row (so a worker started twice runs it once), runs
 * the command the way the simple query protocol would (each statement a
 * top-level statement, several statements in one implicit transaction, so
 * VACUUM and procedures that COMMIT work) and records the outcome: the last
 * statement's command tag, or the error message.
 */
#include "pg_dispatch.h"
#include "worker.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "parser/analyze.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "tcop/cmdtag.h"
#include "tcop/pquery.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/snapmgr.h"

static char *claim(int64 run);
static void completion_tag(const QueryCompletion *qc, char *tag);
static void execute(const char *command, char *tag);
static void finish(int64 run, bool ok, const char *message);

/* Claims run in its own transaction; returns its command, or NULL when not ours to run. */
static char *
claim(int64 run)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(run)};
	char	   *command = NULL;
	SPITupleTable *t;

	worker_begin(NULL);
	t = worker_select("SELECT dispatch._sql_run_claim($1)", 1, types, values);
	if (t->numvals == 1)
	{
		char	   *value = worker_text_at(t, 0, 1);

		if (value != NULL)
			command = MemoryContextStrdup(TopMemoryContext, value);
	}
	worker_end();
	return command;
}

/* Writes the command tag psql would show for qc ("INSERT 0 3", "VACUUM") into tag. */
static void
completion_tag(const QueryCompletion *qc, char *tag)
{
	const char *name = GetCommandTagName(qc->commandTag);

	if (!command_tag_display_rowcount(qc->commandTag))
		strlcpy(tag, name, COMPLETION_TAG_BUFSIZE);
	else if (qc->commandTag == CMDTAG_INSERT)
		snprintf(tag, COMPLETION_TAG_BUFSIZE, "%s 0 " UINT64_FORMAT, name, qc->nprocessed);
	else
		snprintf(tag, COMPLETION_TAG_BUFSIZE, "%s " UINT64_FORMAT, name, qc->nprocessed);
}

/*
 * Runs command like a simple query: one statement in its own transaction, several
 * in one implicit transaction.  Leaves the last statement's command tag in tag
 * (COMPLETION_TAG_BUFSIZE bytes).  Errors propagate.
 */
static void
execute(const char *command, char *tag)
{
	MemoryContext cxt = AllocSetContextCreate(TopMemoryContext, "pg_dispatch SQL job",
											  ALLOCSET_DEFAULT_SIZES);
	List	   *statements;
	ListCell   *lc;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	MemoryContextSwitchTo(cxt);
	statements = pg_parse_query(command);
	if (list_length(statements) > 1)
		BeginImplicitTransactionBlock();
	strlcpy(tag, "(no statement)", COMPLETION_TAG_BUFSIZE);
	foreach(lc, statements)
	{
		RawStmt    *stmt = lfirst_node(RawStmt, lc);
		bool		snapshot = analyze_requires_snapshot(stmt);
		List	   *plans;
		Portal		portal;
		DestReceiver *dest;
		QueryCompletion qc;

		if (snapshot)
			PushActiveSnapshot(GetTransactionSnapshot());
		plans = pg_plan_queries(pg_analyze_and_rewrite_fixedparams(stmt, command, NULL, 0, NULL),
								command, CURSOR_OPT_PARALLEL_OK, NULL);
		if (snapshot)
			PopActiveSnapshot();
		portal = CreatePortal("", true, true);
		portal->visible = false;
		PortalDefineQuery(portal, NULL, command, CreateCommandTag(stmt->stmt), plans, NULL);
		PortalStart(portal, NULL, 0, InvalidSnapshot);
		dest = CreateDestReceiver(DestNone);
		InitializeQueryCompletion(&qc);
		(void) PortalRun(portal, FETCH_ALL, true, true, dest, dest, &qc);
		dest->rDestroy(dest);
		PortalDrop(portal, false);
		MemoryContextSwitchTo(cxt); /* a statement that commits (VACUUM) switches away */
		completion_tag(&qc, tag);
		if (lnext(statements, lc) != NULL)
			CommandCounterIncrement();
	}
	if (list_length(statements) > 1)
		EndImplicitTransactionBlock();
	CommitTransactionCommand();
	MemoryContextSwitchTo(TopMemoryContext);
	MemoryContextDelete(cxt);
}

/* Records the end of run in its own transaction. */
static void
finish(int64 run, bool ok, const char *message)
{
	Oid			types[3] = {INT8OID, BOOLOID, TEXTOID};
	Datum		values[3] = {Int64GetDatum(run), BoolGetDatum(ok), CStringGetTextDatum(message)};

	worker_begin(NULL);
	(void) worker_select("SELECT dispatch._sql_run_finish($1, $2, $3)", 3, types, values);
	worker_end();
}

/* Main of the SQL job worker: the run id is the argument; database and user in bgw_extra. */
void
sqlrun_main(Datum arg)
{
	int64		run = DatumGetInt64(arg);
	char		database[NAMEDATALEN],
				user[NAMEDATALEN],
				tag[COMPLETION_TAG_BUFSIZE];
	char	   *command;
	char	   *volatile message = tag;
	volatile bool ok = true;

	memcpy(database, MyBgworkerEntry->bgw_extra, NAMEDATALEN);
	memcpy(user, MyBgworkerEntry->bgw_extra + NAMEDATALEN, NAMEDATALEN);
	database[NAMEDATALEN - 1] = user[NAMEDATALEN - 1] = '\0';
	/* not worker_start(): one command, so SIGTERM cancels it at once, as in a backend */
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	worker_connect(database, user, "pg_dispatch SQL job");

	if ((command = claim(run)) == NULL)
		proc_exit(0);			/* another worker took it, or it is gone */

	debug_query_string = command;
	pgstat_report_activity(STATE_RUNNING, command);
	PG_TRY();
	{
		execute(command, tag);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(TopMemoryContext);
		edata = CopyErrorData();
		FlushErrorState();
		AbortOutOfAnyTransaction();
		ok = false;
		message = edata->message;
		ereport(LOG,
				(errmsg("pg_dispatch SQL job run " INT64_FORMAT " failed: %s", run, message)));
	}
	PG_END_TRY();
	debug_query_string = NULL;
	pgstat_report_activity(STATE_IDLE, NULL);
	finish(run, ok, message);
	proc_exit(0);
}

/* Starts a worker for SQL job run in database as user; false when no worker slot is free. */
bool
sqlrun_launch(int64 run, const char *database, const char *user)
{
	BackgroundWorker worker;

	worker_define(&worker, "sqlrun_main", "pg_dispatch SQL job");
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_name, BGW_MAXLEN, "pg_dispatch SQL job run " INT64_FORMAT, run);
	worker.bgw_main_arg = Int64GetDatum(run);
	strlcpy(worker.bgw_extra, database, NAMEDATALEN);
	strlcpy(worker.bgw_extra + NAMEDATALEN, user, NAMEDATALEN);
	return RegisterDynamicBackgroundWorker(&worker, NULL);
}
