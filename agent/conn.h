/*
 * conn.h -- the connection to the database (conn.c): connecting with libpq,
 * LISTEN/NOTIFY, and one C function per dispatch.agent_* call.  The agent
 * reaches the server through these calls only.  Used by the agent's loop and
 * jobs and by the delivery of the metrics queue.
 */
#ifndef AGENT_CONN_H
#define AGENT_CONN_H

#include "spool.h"

/*
 * What a dispatch.agent_* call came to.  Negative values are failures; only
 * CALL_ERROR may work when retried on a new connection.
 */
typedef enum CallResult
{
	CALL_OK = 0,
	CALL_ERROR = -1,			/* no connection, or the call failed: try again later */
	CALL_STALE = -2,			/* SQLSTATE 55000: drop the job */
	CALL_REJECTED = -3			/* SQLSTATE class 22: the data itself is bad */
} CallResult;

/* The job as the server hands it out (an agent_poll 'run' row); strings live as long as the row. */
typedef struct JobSpec
{
	int64_t		job_id;
	int			attempt;
	int64_t		joblist_id;
	const char *command;
	const char *env_json;		/* may be NULL */
	const char *resources_json; /* may be NULL */
	int64_t		timeout_ms;		/* <= 0: none */
	const char *files_json;		/* rendered files to write first; may be NULL */
	const char *flow_json;		/* inputs, group, artefacts (inputs.c); may be NULL */
} JobSpec;

typedef struct PollRow
{
	int			cancel;			/* 1: 'cancel' row, 0: 'run' row */
	const char *scratch_key;	/* set: a 'scratch_remove' row for this group key */
	JobSpec		spec;
} PollRow;

/* One answer of dispatch.agent_signals; payload is jsonb text; strings live as long as the call. */
typedef struct SignalAnswer
{
	const char *id;
	const char *status;			/* delivered, waiting, sent, stale, refused */
	const char *message;		/* may be NULL */
	const char *payload;		/* may be NULL */
} SignalAnswer;

typedef struct Conn Conn;

Conn	   *conn_new(const char *conninfo);
void		conn_free(Conn *c);
int			conn_connect(Conn *c, char *err, size_t errlen);
void		conn_close(Conn *c);
int			conn_ok(const Conn *c);
int			conn_socket(const Conn *c);
void		conn_server(const Conn *c, char *buf, size_t len);
int			conn_consume(Conn *c, int *notified, char *err, size_t errlen);
int			conn_take_signalled(Conn *c);
int			conn_listen(Conn *c, const char *channel, char *err, size_t errlen);
CallResult	conn_register(Conn *c, const char *node, const char *info, StrBuf *reply,
						  char *err, size_t errlen);
CallResult	conn_heartbeat(Conn *c, const char *node, StrBuf *state, char *err, size_t errlen);
CallResult	conn_poll(Conn *c, const char *node, void (*cb) (const PollRow *, void *), void *arg,
					  char *err, size_t errlen);
CallResult	conn_report(Conn *c, const char *node, const char *reports, StrBuf *answers,
						char *err, size_t errlen);
CallResult	conn_signals(Conn *c, const char *node, const char *requests,
						 void (*cb) (const SignalAnswer *, int, void *), void *arg,
						 char *err, size_t errlen);
CallResult	conn_online_nodes(Conn *c, const char *node, StrBuf *json, char *err, size_t errlen);
CallResult	conn_metrics(Conn *c, const char *node, const char *samples, char *err, size_t errlen);
CallResult	conn_scratch_removed(Conn *c, const char *node, const char *key, int64_t bytes,
								 char *err, size_t errlen);
CallResult	conn_file_events(Conn *c, const char *node, const char *events, StrBuf *reply,
							 char *err, size_t errlen);
CallResult	conn_put_blob(Conn *c, const char *node, const char *workspace, const char *path,
						  const char *sha256, const char *data, size_t len, char *err, size_t errlen);
CallResult	conn_blob(Conn *c, const char *node, int64_t job_id, int attempt, const char *sha256,
					  void (*cb) (const char *data, size_t len, void *arg), void *arg,
					  char *err, size_t errlen);
CallResult	conn_store_output(Conn *c, const char *node, int64_t job_id, int attempt,
							  const char *path, const char *sha256, const char *data, size_t len,
							  char *err, size_t errlen);
CallResult	conn_node_call(Conn *c, const char *func, const char *node, char *err, size_t errlen);

#endif							/* AGENT_CONN_H */
