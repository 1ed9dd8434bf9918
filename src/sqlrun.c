/*
 * sqlrun.c: the background worker that runs one SQL job run (pg_cron's jobs).
 *
 * The scheduler claims the run, puts it into a slot in shared memory (sqlrun.h,
 * sqlslot.c) and starts this worker with the slot number as its argument and
 * the run id in bgw_extra.  The worker takes the slot (so a worker started for a
 * slot that was given to another run does nothing), logs in to the job's
 * database as the job's user, runs the command the way the simple query
 * protocol would (each statement a top-level statement, several statements in
 * one implicit transaction, so VACUUM and procedures that COMMIT work) and
 * leaves the outcome in the slot: the last statement's command tag, or the
 * error as psql shows it ("ERROR:  division by zero", then DETAIL, HINT and
 * CONTEXT lines).  It never touches a dispatch table, so it works in a
 * database without pg_dispatch.  A FATAL error (the user may not log in, the
 * database is gone, the run was terminated) is caught by emit_log_hook and
 * left in the slot the same way; the scheduler's latch is set when the slot is
 * taken and when the outcome is in.
 */
#include "pg_dispatch.h"
#include "sqlrun.h"
#include "worker.h"

#include "access/xact.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
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

static void take(int i, int64 run);
static void completion_tag(const QueryCompletion *qc, char *tag);
static void execute(const char *text, int encoding, char *tag);
static void append_field(StringInfo buf, const char *label, const char *value);
static void publish(bool ok, const ErrorData *edata, const char *tag);
static void publish_fatal(ErrorData *edata);

/* This worker's slot, once taken, until its outcome is published. */
static SqlRunSlot *my_slot = NULL;

static emit_log_hook_type prev_emit_log_hook = NULL;

/* Takes slot i for run (ASSIGNED -> RUNNING, our pid), or exits when it holds another run. */
static void
take(int i, int64 run)
{
	SqlRunSlot *s = sqlslot_get(i);
	bool		ours;

	SpinLockAcquire(&s->mutex);
	ours = s->state == SQLRUN_ASSIGNED && s->run == run;
	if (ours)
	{
		s->state = SQLRUN_RUNNING;
		s->pid = MyProcPid;
	}
	SpinLockRelease(&s->mutex);
	if (!ours)
		proc_exit(0);
	my_slot = s;
	wake_scheduler_now();		/* so that job_pid is recorded while the run goes on */
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
 * Runs text (in encoding) like a simple query: one statement in its own
 * transaction, several in one implicit transaction.  Leaves the last statement's
 * command tag in tag (COMPLETION_TAG_BUFSIZE bytes).  Errors propagate.
 */
static void
execute(const char *text, int encoding, char *tag)
{
	MemoryContext cxt = AllocSetContextCreate(TopMemoryContext, "pg_dispatch SQL job",
											  ALLOCSET_DEFAULT_SIZES);
	char	   *command;
	List	   *statements;
	ListCell   *lc;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	MemoryContextSwitchTo(cxt);
	/* converted in a transaction: a conversion between two encodings looks up its function */
	command = pg_any_to_server(text, strlen(text), encoding);
	debug_query_string = command;
	pgstat_report_activity(STATE_RUNNING, command);
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
	debug_query_string = NULL;
	MemoryContextSwitchTo(TopMemoryContext);
	MemoryContextDelete(cxt);
}

/* Appends "\nLABEL:  value" to buf when there is a value. */
static void
append_field(StringInfo buf, const char *label, const char *value)
{
	if (value != NULL)
		appendStringInfo(buf, "\n%s:  %s", label, value);
}

/*
 * Leaves the outcome in our slot: ok with the command tag, or the error edata
 * formatted as psql shows it, cut to SQLRUN_MESSAGE_SIZE; then wakes the scheduler.
 */
static void
publish(bool ok, const ErrorData *edata, const char *tag)
{
	SqlRunSlot *s = my_slot;

	if (s == NULL)
		return;
	my_slot = NULL;				/* once: a FATAL while publishing must not come back here */
	s->ok = ok;
	if (ok)
		strlcpy(s->message, tag, SQLRUN_MESSAGE_SIZE);
	else
	{
		StringInfoData buf;

		initStringInfo(&buf);
		appendStringInfo(&buf, "%s:  %s", edata->elevel >= FATAL ? "FATAL" : "ERROR",
						 edata->message ? edata->message : "(no message)");
		append_field(&buf, "DETAIL", edata->detail);
		append_field(&buf, "HINT", edata->hint);
		append_field(&buf, "CONTEXT", edata->context);
		strlcpy(s->message, buf.data, SQLRUN_MESSAGE_SIZE);
	}
	SpinLockAcquire(&s->mutex);
	s->state = SQLRUN_DONE;
	SpinLockRelease(&s->mutex);
	wake_scheduler_now();
}

/* emit_log_hook: a FATAL error ends the run; leave it in the slot before the process exits. */
static void
publish_fatal(ErrorData *edata)
{
	if (edata->elevel >= FATAL)
		publish(false, edata, NULL);
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

/* Main of the SQL job worker: the slot number is the argument, the run id in bgw_extra. */
void
sqlrun_main(Datum arg)
{
	int64		run;
	char		tag[COMPLETION_TAG_BUFSIZE];

	memcpy(&run, MyBgworkerEntry->bgw_extra, sizeof(run));
	/* not worker_start(): one command, so SIGTERM cancels it at once, as in a backend */
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	take(DatumGetInt32(arg), run);
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = publish_fatal;
	worker_connect(my_slot->database, my_slot->user, "pg_dispatch SQL job");

	PG_TRY();
	{
		execute(my_slot->command, my_slot->encoding, tag);
		publish(true, NULL, tag);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(TopMemoryContext);
		edata = CopyErrorData();
		FlushErrorState();
		debug_query_string = NULL;
		AbortOutOfAnyTransaction();
		ereport(LOG,
				(errmsg("pg_dispatch SQL job run " INT64_FORMAT " failed: %s", run, edata->message)));
		publish(false, edata, NULL);
	}
	PG_END_TRY();
	pgstat_report_activity(STATE_IDLE, NULL);
	proc_exit(0);
}
