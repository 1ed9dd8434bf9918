/*
 * jobs.h -- the job table shared by jobs.c (the table, its spool and
 * supervisors), jobs_report.c (output, results and history lines) and
 * jobs_artefacts.c (a build job's inputs and outputs).  Nothing outside those
 * files includes it; the rest of the agent sees the jobs_* calls of agent.h.
 */
#ifndef AGENT_JOBS_H
#define AGENT_JOBS_H

#include "agent.h"

#include <limits.h>

/* Where storing a job's outputs stands (jobs_artefacts.c); its end is reported once settled. */
typedef enum OutputsState
{
	OUTPUTS_UNKNOWN = 0,		/* not looked at yet */
	OUTPUTS_STORING,			/* outputs of its record are being stored */
	OUTPUTS_SETTLED				/* stored, none to store, or an outputs_error to report */
} OutputsState;

typedef struct Fetch Fetch;		/* a build job's inputs being fetched (jobs_artefacts.c) */

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
	Fetch	   *fetch;			/* set: a build job fetching its inputs, not started yet */
	OutputsState outputs;
	json_t	   *store;			/* while OUTPUTS_STORING: its outputs record */
	size_t		stored;			/* how many of them are stored */
	char	   *outputs_error;	/* why its outputs were not stored, for its finish; NULL: none */
	struct Job *next;
} Job;

extern const AgentConf *jobs_conf;	/* set by jobs_init() */
extern Job *jobs_list;			/* the table, newest first */

void		jobs_drop(Job *j, int remove);
void		jobs_cancel(Job *j);
void		jobs_make_stale(Job *j, const char *why);
int			jobs_read_status(const Job *j, JobStatus *st, char *err, size_t errlen);
void		jobs_set_status(Job *j, const char *detail);
int			jobs_spawn(Job *j, const char *workdir, const Assignment *a, const StrList *env,
					   char *err, size_t errlen);

/* jobs_artefacts.c */
int			jobs_artefacts_start(Job *j, Assignment *a, const char *workdir, StrList *env,
								 char *err, size_t errlen);
void		jobs_artefacts_free(Job *j);
void		jobs_store(Conn *c);

#endif							/* AGENT_JOBS_H */
