/*
 * control.h -- continuations: a job's wait and signal requests and their way
 * to the server (control.c, the agent's side) and the `dispatch-agent wait`
 * and `dispatch-agent signal` subcommands a job runs (signal_cmd.c).
 *
 * The two sides share one directory per job attempt, DISPATCH_CONTROL: the
 * job writes <id>.req (renamed into place), the agent answers <id>.ans
 * (renamed into place too).  Request:  {"wait": NAME} or
 * {"signal": NAME, "payload": JSON}.  Answer: {"status": "delivered",
 * "payload": JSON}, {"status": "sent"} or {"status": "refused"|"stale",
 * "message": TEXT}.
 */
#ifndef AGENT_CONTROL_H
#define AGENT_CONTROL_H

#include "agent.h"

#define CONTROL_ID_MAX 64			/* a request id: 1-64 of [A-Za-z0-9_.-] */
#define CONTROL_NAME_MAX 200		/* a signal name: 1-200 of [A-Za-z0-9_.:-] */
#define CONTROL_PAYLOAD_MAX (1024 * 1024)	/* dispatch.max_signal_size's own maximum */
#define CONTROL_REQUEST_MAX (CONTROL_PAYLOAD_MAX + 1024)	/* a request file: payload, name, keys */
#define CONTROL_ANSWER_MAX (2 * CONTROL_PAYLOAD_MAX)	/* an answer file: jsonb text, message */
#define CONTROL_MAX_PENDING 100		/* requests of one job the agent holds at a time */
#define CONTROL_DELIVERED_HEAD "{\"status\":\"delivered\",\"payload\":"

/* What control_read_request() made of a file. */
typedef enum ReqVerdict
{
	REQ_OK = 0,					/* *body is the server request */
	REQ_IGNORE = 1,				/* not a request (or an id no answer can be written for) */
	REQ_REFUSED = 2				/* a request that must be answered "refused": err says why */
} ReqVerdict;

/* ---- control.c ---- */

int			control_id_ok(const char *s);
int			control_name_ok(const char *s);
int			control_init(char *err, size_t errlen);
void		control_shutdown(void);
int			control_inotify_fd(void);
void		control_inotify_read(void);
int			control_attach(int64_t job_id, int attempt, const char *dir, StrList *env, char *err,
						   size_t errlen);
void		control_adopt(int64_t job_id, int attempt, const char *jobdir);
void		control_forget(int64_t job_id, int attempt);
void		control_reask(void);
void		control_pump(Conn *c, const char *node);
int			control_want_pump(int64_t *deadline);
int			control_pending(void);
/* the steps of control_pump(), for the unit tests */
ReqVerdict	control_read_request(int dirfd, const char *name, uid_t owner, int64_t job_id,
								 int attempt, StrBuf *body, char *id, char *err, size_t errlen);
int			control_write_answer(int dirfd, const char *id, const char *status,
								 const char *message, const char *payload, char *err, size_t errlen);
int			control_take_batch(StrBuf *json);
void		control_apply(const SignalAnswer *answers, int n);

/* ---- signal_cmd.c ---- */

int			signal_cmd_is(const char *arg);
int			signal_cmd_main(int argc, char **argv);
int			signal_cmd_request(int argc, char **argv, StrBuf *req, char *err, size_t errlen);
int			signal_cmd_answer(const char *text, size_t len, StrBuf *out, char *err, size_t errlen);

#endif							/* AGENT_CONTROL_H */
