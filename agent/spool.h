/*
 * spool.h -- the on-disk spool (spool.c): crash-safe files, the job's meta and
 * status files.  The metrics sampler's queue uses the same crash-safe writes.
 */
#ifndef AGENT_SPOOL_H
#define AGENT_SPOOL_H

#include "util.h"

#define SPOOL_DETAIL_LEN 256

typedef struct JobStatus
{
	int			has_exit;		/* exit_code is meaningful */
	int			exit_code;
	int			signal;			/* 0: not killed by a signal */
	int			timed_out;
	int			cancelled;
	char		detail[SPOOL_DETAIL_LEN];	/* one line, may be empty */
} JobStatus;

typedef struct JobMeta
{
	int64_t		job_id;
	int			attempt;
	pid_t		pid;			/* the supervisor */
	unsigned long long starttime;	/* its start time in clock ticks since boot */
	int64_t		started_at;		/* unix time */
} JobMeta;

#ifdef SPOOL_FAULTS
enum
{
	SPOOL_FAULT_OPEN, SPOOL_FAULT_WRITE, SPOOL_FAULT_FSYNC, SPOOL_FAULT_CLOSE,
	SPOOL_FAULT_RENAME, SPOOL_FAULT_NOPS
};
void		spool_fault_inject(int op, int nth);
#endif

int			spool_write_file(const char *dir, const char *name, const char *data, size_t len,
							 char *err, size_t errlen);
int			spool_append_file(const char *path, const char *data, size_t len, char *err, size_t errlen);
int			spool_read_file(const char *path, StrBuf *out, char *err, size_t errlen);
int			spool_read_text(const char *path, StrBuf *out, char *err, size_t errlen);
int			spool_write_status(const char *jobdir, const JobStatus *st, char *err, size_t errlen);
int			spool_read_status(const char *jobdir, JobStatus *st, char *err, size_t errlen);
int			spool_write_meta(const char *jobdir, const JobMeta *m, char *err, size_t errlen);
int			spool_read_meta(const char *jobdir, JobMeta *m, char *err, size_t errlen);
int			spool_exists(const char *jobdir, const char *name);
int			spool_remove_tree(const char *path, char *err, size_t errlen);

#endif							/* AGENT_SPOOL_H */
