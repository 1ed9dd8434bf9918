/*
 * pg_dispatch.h: what the extension's PostgreSQL glue files share: the GUCs, the
 * scheduler's shared memory through which any backend wakes it, and the entry
 * points of the background workers.  The workers' common boilerplate is in
 * worker.h; the algorithms behind the glue are in src/core/.
 */
#ifndef PG_DISPATCH_H
#define PG_DISPATCH_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/spin.h"

/* This server's scheduler (scheduler.c), guarded by mutex. */
typedef struct SchedulerShared
{
	slock_t		mutex;
	pid_t		scheduler_pid;	/* 0 when no scheduler runs */
	int			scheduler_procno;	/* its PGPROC number, to set its latch */
	uint64		cycles;
	uint64		jobs_assigned;
	TimestampTz last_cycle_at;
	int64		last_cycle_us;
	/* Silence of nodes counts from here: this server's first scheduler start. */
	TimestampTz silence_since;
	/* Model checks (model_check.c): asked for, answered, the last answer. */
	uint64		checks_asked;
	uint64		checks_done;
	char		check_result[1024];
	ConditionVariable check_done_cv;	/* broadcast when a check is answered */
	/*
	 * Wake-ups asked for (wake.c), counted outside the mutex.  A latch set while
	 * the scheduler's cycle waits inside (on a lock, say) is consumed by that
	 * wait, so the scheduler compares this count before and after each cycle
	 * instead of trusting its latch alone.
	 */
	pg_atomic_uint64 wakes;
} SchedulerShared;

/* GUCs the C code reads (pg_dispatch.c) */
extern char *dispatch_database;
extern char *dispatch_timezone;
extern char *dispatch_smtp_url;
extern char *dispatch_mail_from;
extern char *dispatch_webhook_allow;
extern int	dispatch_notify_timeout;
extern int	dispatch_monitor_interval;
extern int	dispatch_max_sql_command_size;
extern int	dispatch_max_reservations;
extern int	dispatch_max_job_test;
extern int	dispatch_node_timeout;
extern int	dispatch_model_check_interval;

/* launcher.c */
extern void launcher_register(void);
extern PGDLLEXPORT void launcher_main(Datum arg);

/* scheduler.c */
extern SchedulerShared *scheduler_shared;
extern void scheduler_shmem_init(void);
extern PGDLLEXPORT void scheduler_main(Datum arg);

/* monitor.c */
extern PGDLLEXPORT void monitor_main(Datum arg);

/* A SQL job run claimed by a cycle, to be started once the cycle has committed. */
typedef struct SqlRunClaim
{
	int64		run;
	char	   *database;
	char	   *user;
	char	   *command;
} SqlRunClaim;

/* What one scheduling cycle does with the SQL run slots (sqlslot.c). */
typedef struct SqlRunCycle
{
	MemoryContext cxt;			/* where the arrays live: the cycle's context */
	int		   *ended;			/* slots whose run ended: freed after the commit */
	int			nended;
	SqlRunClaim *claimed;		/* runs claimed: started after the commit */
	int			nclaimed;
} SqlRunCycle;

/* sqlslot.c */
extern Size sqlslot_shmem_size(void);
extern void sqlslot_shmem_startup(void);
extern void sqlslot_sync(SqlRunCycle *c, Oid extension);
extern void sqlslot_claim(SqlRunCycle *c);
extern void sqlslot_after_commit(SqlRunCycle *c, Oid extension);

/* sqlrun.c */
extern PGDLLEXPORT void sqlrun_main(Datum arg);

/* template.c: the current memory context as a core module's allocator */
extern void *core_palloc(size_t size, void *arg);
extern void core_pfree(void *ptr, void *arg);

/* wake.c */
extern void wake_scheduler_now(void);

#endif							/* PG_DISPATCH_H */
