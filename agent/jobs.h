/*
 * jobs.h -- the job table shared by jobs.c (the table, its spool and
 * supervisors) and jobs_report.c (output, results and history lines).
 * Nothing outside those two files includes it; the rest of the agent sees
 * the jobs_* calls of agent.h.
 */
#ifndef AGENT_JOBS_H
#define AGENT_JOBS_H

#include "agent.h"

#include <limits.h>

typedef struct Job
{
	int64_t		job_id;
	int			attempt;
	char		dir[PATH_MAX];
	pid_t		pid;			/* supervisor; 0 when unknown */
	unsigned long long starttime;	/* supervisor's, to tell a reused pid */
	int			wd;				/* inotify watch, -1 if none */
	int64_t		sent[2];		/* bytes of stdout/stderr the server holds */
	int			resumed;		/* sent[] is valid for the current connection */
	int			done;			/* the status file exists */
	int			stale;			/* the server refused a report: never report again */
	int			output_stopped; /* the server truncated the output */
	int			dirty;			/* output may have grown */
	int			cancel_sent;
	int			logged;			/* its end is in the history file ("logged" marker) */
	int64_t		next_send;		/* earliest time for the next output of a running job */
	JobStatus  *no_spool;		/* its spool dir could not be made: the status, here only */
	struct Job *next;
} Job;

extern const AgentConf *jobs_conf;	/* set by jobs_init() */
extern Job *jobs_list;			/* the table, newest first */

void		jobs_drop(Job *j, int remove);
void		jobs_cancel(Job *j);
void		jobs_make_stale(Job *j, const char *why);
int			jobs_read_status(const Job *j, JobStatus *st, char *err, size_t errlen);

#endif							/* AGENT_JOBS_H */
