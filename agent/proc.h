/*
 * proc.h -- process helpers (proc.c): titles, signals, liveness, clocks, a
 * credential-free environment, dropping privileges.  Shared by the agent, its
 * job supervisors and the metrics sampler.
 */
#ifndef AGENT_PROC_H
#define AGENT_PROC_H

#include "util.h"

#define PROC_EXIT_EXEC_FAILED 127	/* a child that could not exec, as the shell says it */

void		proc_title_init(int argc, char **argv);
void		proc_set_title(const char *comm, const char *fmt,...) __attribute__((format(printf, 2, 3)));
void		proc_default_signals(void);
void		proc_reset_signals(void);
int			proc_starttime(pid_t pid, unsigned long long *out);
int			proc_alive(pid_t pid, unsigned long long starttime);
int64_t		proc_now_ms(void);
int64_t		proc_unix_ms(void);
void		proc_env_without_pg(char *const *base, StrList *out);
int			proc_drop_capabilities(char *err, size_t errlen);
int			proc_set_undumpable(char *err, size_t errlen);

#endif							/* AGENT_PROC_H */
