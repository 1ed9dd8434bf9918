/*
 * sqlrun.h: the shared-memory slots through which the scheduler hands a SQL job
 * run to its background worker and the worker hands back the outcome.
 *
 * A worker may run in any database of the cluster, where the dispatch schema
 * does not exist, so it never reads or writes job_run_details: the scheduler
 * claims the run in its cycle, fills a slot (sqlslot.c) and starts the worker,
 * which runs the command and leaves its outcome in the slot (sqlrun.c); the
 * scheduler records it in its next cycle.  The slots live in the postmaster's
 * shared memory, so a scheduler that restarts after an error finds the outcomes
 * of the runs its predecessor started; a server restart empties them, and the
 * runs they held are then recorded as lost.
 *
 * Ownership: state and pid are read and written under mutex.  The other fields
 * are written only by the slot's holder: the scheduler while the slot is FREE
 * (it then publishes ASSIGNED), the worker while it is RUNNING (it then publishes
 * DONE); the other side reads them only after seeing that state change.
 */
#ifndef PG_DISPATCH_SQLRUN_H
#define PG_DISPATCH_SQLRUN_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "storage/spin.h"

/* return_message is cut to this many bytes (the terminating NUL included). */
#define SQLRUN_MESSAGE_SIZE 4096

typedef enum SqlRunState
{
	SQLRUN_FREE,				/* holds nothing */
	SQLRUN_ASSIGNED,			/* filled by the scheduler; no worker has taken it yet */
	SQLRUN_RUNNING,				/* taken by the worker whose pid is set */
	SQLRUN_DONE					/* the worker left its outcome */
} SqlRunState;

/* One run handed from the scheduler to a worker, and its outcome. */
typedef struct SqlRunSlot
{
	slock_t		mutex;
	SqlRunState state;
	pid_t		pid;			/* the worker, once it has taken the slot */
	Oid			extension;		/* pg_dispatch's oid when the run was claimed */
	int64		run;			/* job_run_details.runid */
	TimestampTz assigned_at;
	int			encoding;		/* of command: the scheduler's database encoding */
	bool		ok;
	char		database[NAMEDATALEN];
	char		user[NAMEDATALEN];
	char		message[SQLRUN_MESSAGE_SIZE];
	char		command[FLEXIBLE_ARRAY_MEMBER]; /* dispatch.max_sql_command_size + 1 */
} SqlRunSlot;

extern SqlRunSlot *sqlslot_get(int i);

#endif							/* PG_DISPATCH_SQLRUN_H */
