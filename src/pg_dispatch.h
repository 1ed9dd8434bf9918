/*
 * pg_dispatch.h: what the extension's PostgreSQL glue files share: the GUCs, the
 * shared-memory state that lets any backend wake the scheduler, and the entry
 * points of the background workers.
 */
#ifndef PG_DISPATCH_H
#define PG_DISPATCH_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "storage/spin.h"

/* Shared state of this server's scheduler, guarded by mutex. */
typedef struct DispatchShared
{
	slock_t		mutex;
	pid_t		scheduler_pid;	/* 0 when no scheduler runs */
	int			scheduler_procno;	/* its PGPROC number, to set its latch */
	uint64		cycles;
	uint64		jobs_assigned;
	TimestampTz last_cycle_at;
	int64		last_cycle_us;
} DispatchShared;

extern DispatchShared *dispatch_shared;

/* GUCs (pg_dispatch.c) */
extern char *dispatch_database;
extern char *dispatch_timezone;
extern char *dispatch_smtp_url;
extern char *dispatch_mail_from;
extern int	dispatch_notify_timeout;
extern int	dispatch_monitor_interval;

/* launcher.c */
extern void dispatch_launcher_register(void);
extern PGDLLEXPORT void dispatch_launcher_main(Datum arg);

/* scheduler.c */
extern PGDLLEXPORT void dispatch_scheduler_main(Datum arg);

/* monitor.c */
extern PGDLLEXPORT void dispatch_monitor_main(Datum arg);

/* sqlrun.c */
extern PGDLLEXPORT void dispatch_sqlrun_main(Datum arg);
extern bool dispatch_launch_sql_run(int64 run, const char *database, const char *user);

#endif							/* PG_DISPATCH_H */
