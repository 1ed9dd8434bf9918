/*
 * metrics.h -- the metrics sampler as the agent's loop sees it (metrics.c).
 *
 * The sampler is a process of its own, forked by metrics_check() and restarted
 * by it when it dies; it queues samples on disk, and the loop delivers the
 * queue with metrics_send().  --print-metrics takes one sample in the
 * foreground (collect_print).  The sampler's insides are in collect.h.
 */
#ifndef AGENT_METRICS_H
#define AGENT_METRICS_H

#include "../conn.h"

typedef struct Metrics
{
	char		dir[4096];		/* <workdir>/metrics: the queue */
	int64_t		interval_ms;
	int64_t		spool_max;		/* bytes the queue may take */
	const char *plugin_dir;		/* NULL: no plugins */
	pid_t		pid;			/* the sampler; 0: none */
} Metrics;

int			metrics_init(Metrics *m, const char *workdir, int64_t interval_ms, int64_t spool_max,
						 const char *plugin_dir, char *err, size_t errlen);
void		metrics_check(Metrics *m);
void		metrics_reap(Metrics *m);
void		metrics_stop(Metrics *m);
void		metrics_send(Metrics *m, Conn *c, const char *node);
int			metrics_trim(const char *dir, int64_t max_bytes, char *err, size_t errlen);
int			metrics_batch(const char *dir, int max_files, StrBuf *json, StrList *files,
						  char *err, size_t errlen);

int			collect_print(const char *plugin_dir);

#endif							/* AGENT_METRICS_H */
