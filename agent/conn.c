/*
 * conn.c -- the agent's database connection and the dispatch.agent_* calls.
 *
 * One libpq connection, used synchronously from the event loop: a call is a
 * PQexecParams() that blocks for one round trip, which keeps the protocol
 * code linear.  The socket is handed to poll() between calls so that NOTIFY
 * wakes the loop; notifications that arrive during a call are remembered
 * and reported by the next conn_consume().
 *
 * The connection string from --dbname is expanded by libpq (key=value or
 * URI); connect_timeout, TCP keepalives and application_name are given as
 * defaults that the string itself may override, so a dead network is noticed
 * in bounded time.  A call classifies failures: SQLSTATE 55000 means the
 * server refused a report for a stale (job, attempt) (CALL_STALE: drop the
 * job), class 22 that the data sent is bad (CALL_REJECTED: retrying the
 * same data cannot help); anything else is CALL_ERROR (retry later).  When
 * libpq says the connection is gone, it is closed here and the loop
 * reconnects with backoff.  The artefacts of build jobs travel as bytea in
 * binary form (conn_blob, conn_store_output): no hex text of twice their size.
 */
#include "conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#define SQLSTATE_STALE "55000"	/* object_not_in_prerequisite_state: a stale (job, attempt) */
#define SQLSTATE_DATA_CLASS "22"	/* data_exception and its subclasses */

struct Conn
{
	char	   *conninfo;
	PGconn	   *pg;
	int			notified;		/* a NOTIFY arrived since the last conn_consume() */
	int			signalled;		/* a NOTIFY 'signal' arrived since conn_take_signalled() */
};

static void notice_processor(void *arg, const char *message);
static void drain_notifies(Conn *c);
static CallResult call_params(Conn *c, const char *sql, int nparams, const char *const *params, const int *lengths, const int *formats, int binary, PGresult **res, char *err, size_t errlen);
static CallResult call(Conn *c, const char *sql, int nparams, const char *const *params, PGresult **res, char *err, size_t errlen);
static CallResult call_text(Conn *c, const char *sql, int nparams, const char *const *params, StrBuf *out, char *err, size_t errlen);
static CallResult call_json(Conn *c, const char *func, const char *node, const char *json, StrBuf *out,
							char *err, size_t errlen);
static const char *col(const PGresult *r, int i, const char *name);
static int64_t col_int(const PGresult *r, int i, const char *name, int64_t dflt);

/* Returns a new, unconnected Conn for conninfo. */
Conn *
conn_new(const char *conninfo)
{
	Conn	   *c = xmalloc(sizeof(Conn));

	c->conninfo = xstrdup(conninfo);
	c->pg = NULL;
	c->notified = 0;
	c->signalled = 0;
	return c;
}

/* Closes and releases c. */
void
conn_free(Conn *c)
{
	conn_close(c);
	free(c->conninfo);
	free(c);
}

/* Logs server notices (e.g. WARNINGs raised by the API) as agent debug lines. */
static void
notice_processor(void *arg, const char *message)
{
	size_t		n = strlen(message);

	(void) arg;
	while (n > 0 && message[n - 1] == '\n')
		n--;
	log_debug("server: %.*s", (int) n, message);
}

/* Opens the connection (blocking, bounded by connect_timeout). */
int
conn_connect(Conn *c, char *err, size_t errlen)
{
	static const char *const keys[] = {
		"connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval",
		"keepalives_count", "application_name", "dbname", NULL
	};
	const char *values[] = {"10", "1", "30", "10", "3", "dispatch-agent", c->conninfo, NULL};

	conn_close(c);
	c->pg = PQconnectdbParams(keys, values, 1);
	if (c->pg == NULL || PQstatus(c->pg) != CONNECTION_OK)
	{
		const char *msg = c->pg ? PQerrorMessage(c->pg) : "out of memory";
		size_t		n = strlen(msg);

		while (n > 0 && msg[n - 1] == '\n')
			n--;
		agent_seterr(err, errlen, "could not connect to the database: %.*s", (int) n, msg);
		conn_close(c);
		return -1;
	}
	PQsetNoticeProcessor(c->pg, notice_processor, NULL);
	return 0;
}

/* Closes the connection if open. */
void
conn_close(Conn *c)
{
	if (c->pg != NULL)
		PQfinish(c->pg);
	c->pg = NULL;
}

/* Returns 1 while the connection is usable. */
int
conn_ok(const Conn *c)
{
	return c->pg != NULL && PQstatus(c->pg) == CONNECTION_OK;
}

/* Returns the socket to poll() for input, or -1 when not connected. */
int
conn_socket(const Conn *c)
{
	return conn_ok(c) ? PQsocket(c->pg) : -1;
}

/* Writes "host:port" of the server c is connected to into buf ("" when not connected). */
void
conn_server(const Conn *c, char *buf, size_t len)
{
	if (conn_ok(c))
		snprintf(buf, len, "%s:%s", PQhost(c->pg), PQport(c->pg));
	else if (len > 0)
		buf[0] = '\0';
}

/* Moves pending notifications into c->notified, or c->signalled for payload 'signal'. */
static void
drain_notifies(Conn *c)
{
	PGnotify   *n;

	while ((n = PQnotifies(c->pg)) != NULL)
	{
		log_debug("notification \"%s\" on channel \"%s\"", n->extra, n->relname);
		if (strcmp(n->extra, "signal") == 0)
			c->signalled = 1;
		else
			c->notified = 1;
		PQfreemem(n);
	}
}

/* Reads what the server sent; sets *notified when a NOTIFY arrived; -1 when the connection is lost. */
int
conn_consume(Conn *c, int *notified, char *err, size_t errlen)
{
	*notified = 0;
	if (!conn_ok(c))
		return 0;
	if (!PQconsumeInput(c->pg))
	{
		agent_seterr(err, errlen, "lost the database connection: %s", PQerrorMessage(c->pg));
		conn_close(c);
		return -1;
	}
	drain_notifies(c);
	*notified = c->notified;
	c->notified = 0;
	return 0;
}

/* Returns 1 (once) when a NOTIFY 'signal' arrived: a signal some waiting job may take. */
int
conn_take_signalled(Conn *c)
{
	int			s = c->signalled;

	c->signalled = 0;
	return s;
}

/*
 * Runs sql with parameters (lengths and formats NULL: all text; a format of 1
 * is a binary parameter of that length), asking for a binary result when
 * binary is set; on success *res holds the result (caller clears it).
 */
static CallResult
call_params(Conn *c, const char *sql, int nparams, const char *const *params, const int *lengths,
			const int *formats, int binary, PGresult **res, char *err, size_t errlen)
{
	PGresult   *r;
	ExecStatusType st;
	const char *state;
	CallResult	rc;

	*res = NULL;
	if (!conn_ok(c))
	{
		agent_seterr(err, errlen, "not connected to the database");
		return CALL_ERROR;
	}
	r = PQexecParams(c->pg, sql, nparams, NULL, params, lengths, formats, binary);
	st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
	{
		drain_notifies(c);
		*res = r;
		return CALL_OK;
	}
	state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	if (state != NULL && strcmp(state, SQLSTATE_STALE) == 0)
		rc = CALL_STALE;
	else if (state != NULL && strncmp(state, SQLSTATE_DATA_CLASS, 2) == 0)
		rc = CALL_REJECTED;
	else
		rc = CALL_ERROR;
	{
		const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(c->pg);
		size_t		n = strlen(msg);

		while (n > 0 && msg[n - 1] == '\n')
			n--;
		agent_seterr(err, errlen, "%.*s", (int) n, msg);
	}
	PQclear(r);
	if (PQstatus(c->pg) != CONNECTION_OK)
		conn_close(c);
	return rc;
}

/* Runs sql with text parameters and a text result; on success *res holds the result (caller clears it). */
static CallResult
call(Conn *c, const char *sql, int nparams, const char *const *params, PGresult **res,
	 char *err, size_t errlen)
{
	return call_params(c, sql, nparams, params, NULL, NULL, 0, res, err, errlen);
}

/* Runs sql expecting one row of one column; copies the value (NULL -> "") into out. */
static CallResult
call_text(Conn *c, const char *sql, int nparams, const char *const *params, StrBuf *out,
		  char *err, size_t errlen)
{
	PGresult   *r;
	CallResult	rc = call(c, sql, nparams, params, &r, err, errlen);

	if (rc != CALL_OK)
		return rc;
	if (PQntuples(r) != 1 || PQnfields(r) < 1)
	{
		agent_seterr(err, errlen, "unexpected reply: %d rows", PQntuples(r));
		PQclear(r);
		return CALL_ERROR;
	}
	if (out != NULL)
		sb_puts(out, PQgetvalue(r, 0, 0));
	PQclear(r);
	return CALL_OK;
}

/* LISTENs on channel (quoted as an identifier). */
int
conn_listen(Conn *c, const char *channel, char *err, size_t errlen)
{
	char	   *ident;
	StrBuf		sql;
	PGresult   *r;
	int			rc;

	if (!conn_ok(c))
	{
		agent_seterr(err, errlen, "not connected to the database");
		return -1;
	}
	if ((ident = PQescapeIdentifier(c->pg, channel, strlen(channel))) == NULL)
	{
		agent_seterr(err, errlen, "could not quote channel name: %s", PQerrorMessage(c->pg));
		return -1;
	}
	sb_init(&sql);
	sb_printf(&sql, "LISTEN %s", ident);
	PQfreemem(ident);
	rc = call(c, sql.data, 0, NULL, &r, err, errlen) == CALL_OK ? 0 : -1;
	PQclear(r);
	sb_free(&sql);
	return rc;
}

/* dispatch.agent_register(node, info): the reply JSON goes to reply. */
CallResult
conn_register(Conn *c, const char *node, const char *info, StrBuf *reply, char *err, size_t errlen)
{
	const char *p[] = {node, info};

	return call_text(c, "SELECT dispatch.agent_register($1, $2::jsonb)::text", 2, p, reply, err, errlen);
}

/* dispatch.agent_heartbeat(node): the node's state goes to state. */
CallResult
conn_heartbeat(Conn *c, const char *node, StrBuf *state, char *err, size_t errlen)
{
	const char *p[] = {node};

	return call_text(c, "SELECT dispatch.agent_heartbeat($1)", 1, p, state, err, errlen);
}

/* Returns column name of r's row i, or NULL when it is SQL NULL or absent. */
static const char *
col(const PGresult *r, int i, const char *name)
{
	int			f = PQfnumber(r, name);

	return (f < 0 || PQgetisnull(r, i, f)) ? NULL : PQgetvalue(r, i, f);
}

/* Parses an optional decimal column (NULL -> dflt). */
static int64_t
col_int(const PGresult *r, int i, const char *name, int64_t dflt)
{
	const char *v = col(r, i, name);

	return v ? strtoll(v, NULL, 10) : dflt;
}

/* dispatch.agent_metrics(node, samples): stores a JSON array of samples. */
CallResult
conn_metrics(Conn *c, const char *node, const char *samples, char *err, size_t errlen)
{
	const char *p[] = {node, samples};
	StrBuf		stored;
	CallResult	rc;

	sb_init(&stored);
	rc = call_text(c, "SELECT dispatch.agent_metrics($1, $2::jsonb)", 2, p, &stored, err, errlen);
	sb_free(&stored);
	return rc;
}

/* dispatch.agent_online_nodes(node): the names of the nodes online, as a JSON array, into json (initialised). */
CallResult
conn_online_nodes(Conn *c, const char *node, StrBuf *json, char *err, size_t errlen)
{
	const char *p[] = {node};

	return call_text(c, "SELECT dispatch.agent_online_nodes($1)::text", 1, p, json, err, errlen);
}

/* dispatch.agent_poll(node): calls cb for each run, cancel and scratch_remove row. */
CallResult
conn_poll(Conn *c, const char *node, void (*cb) (const PollRow *, void *), void *arg,
		  char *err, size_t errlen)
{
	const char *p[] = {node};
	PGresult   *r;
	CallResult	rc = call(c, "SELECT * FROM dispatch.agent_poll($1)", 1, p, &r, err, errlen);

	if (rc != CALL_OK)
		return rc;
	for (int i = 0; i < PQntuples(r); i++)
	{
		PollRow		row;
		const char *action = col(r, i, "action");

		memset(&row, 0, sizeof(row));
		if (action != NULL && strcmp(action, "scratch_remove") == 0)
		{
			row.scratch_key = col(r, i, "name");
			if (row.scratch_key != NULL)
				cb(&row, arg);
			continue;
		}
		if (action == NULL || (strcmp(action, "run") != 0 && strcmp(action, "cancel") != 0))
		{
			log_warning("ignoring agent_poll row with action \"%s\"", action ? action : "(null)");
			continue;
		}
		row.cancel = strcmp(action, "cancel") == 0;
		row.spec.job_id = col_int(r, i, "job_id", 0);
		row.spec.attempt = (int) col_int(r, i, "attempt", 0);
		row.spec.joblist_id = col_int(r, i, "joblist_id", 0);
		row.spec.command = col(r, i, "command");
		row.spec.env_json = col(r, i, "env");
		row.spec.resources_json = col(r, i, "resources");
		row.spec.files_json = col(r, i, "files");
		row.spec.flow_json = col(r, i, "flow");
		row.spec.timeout_ms = col_int(r, i, "timeout_ms", 0);
		cb(&row, arg);
	}
	PQclear(r);
	return CALL_OK;
}

/* Calls dispatch.<func>(node, json::jsonb); its jsonb answer goes to out (initialised) as text. */
static CallResult
call_json(Conn *c, const char *func, const char *node, const char *json, StrBuf *out, char *err,
		  size_t errlen)
{
	const char *p[] = {node, json};
	char		sql[128];

	snprintf(sql, sizeof(sql), "SELECT dispatch.%s($1, $2::jsonb)::text", func);
	return call_text(c, sql, 2, p, out, err, errlen);
}

/* dispatch.agent_report(node, reports): the answers, a JSON array, go to answers (initialised). */
CallResult
conn_report(Conn *c, const char *node, const char *reports, StrBuf *answers, char *err,
			size_t errlen)
{
	return call_json(c, "agent_report", node, reports, answers, err, errlen);
}

/* dispatch.agent_scratch_removed(node, key, bytes): the scratch dir of group key is gone. */
CallResult
conn_scratch_removed(Conn *c, const char *node, const char *key, int64_t bytes, char *err,
					 size_t errlen)
{
	char		num[32];
	const char *p[] = {node, key, num};

	snprintf(num, sizeof(num), "%lld", (long long) bytes);
	return call_text(c, "SELECT dispatch.agent_scratch_removed($1, $2, $3)", 3, p, NULL, err,
					 errlen);
}

/* dispatch.agent_file_events(node, events): the reply, jsonb text, goes to reply (initialised). */
CallResult
conn_file_events(Conn *c, const char *node, const char *events, StrBuf *reply, char *err,
				 size_t errlen)
{
	return call_json(c, "agent_file_events", node, events, reply, err, errlen);
}

/* dispatch.agent_put_blob(node, workspace, path, sha256, content): content goes as binary bytea. */
CallResult
conn_put_blob(Conn *c, const char *node, const char *workspace, const char *path,
			  const char *sha256, const char *data, size_t len, char *err, size_t errlen)
{
	const char *p[] = {node, workspace, path, sha256, data};
	const int	lengths[] = {0, 0, 0, 0, (int) len};
	const int	formats[] = {0, 0, 0, 0, 1};
	PGresult   *r;
	CallResult	rc = call_params(c, "SELECT dispatch.agent_put_blob($1, $2, $3, $4, $5::bytea)", 5, p,
								 lengths, formats, 0, &r, err, errlen);

	PQclear(r);
	return rc;
}

/*
 * dispatch.agent_signals(node, requests): calls cb for each answer, in order,
 * with its index; the payload comes as jsonb text, never parsed here.
 */
CallResult
conn_signals(Conn *c, const char *node, const char *requests,
			 void (*cb) (const SignalAnswer *, int, void *), void *arg, char *err, size_t errlen)
{
	const char *p[] = {node, requests};
	PGresult   *r;
	CallResult	rc = call(c, "SELECT a ->> 'id' AS id, a ->> 'status' AS status,"
						  " a ->> 'message' AS message, (a -> 'payload')::text AS payload"
						  " FROM jsonb_array_elements(dispatch.agent_signals($1, $2::jsonb))"
						  " WITH ORDINALITY AS x(a, n) ORDER BY n", 2, p, &r, err, errlen);

	if (rc != CALL_OK)
		return rc;
	for (int i = 0; i < PQntuples(r); i++)
	{
		SignalAnswer a = {col(r, i, "id"), col(r, i, "status"), col(r, i, "message"),
		col(r, i, "payload")};

		cb(&a, i, arg);
	}
	PQclear(r);
	return CALL_OK;
}

/*
 * dispatch.agent_blob(node, job, attempt, sha256): the content of an input of
 * a build job, as bytea in binary form; calls cb with it (data NULL when the
 * server answers NULL), while it is in libpq's memory: no copy is made here.
 */
CallResult
conn_blob(Conn *c, const char *node, int64_t job_id, int attempt, const char *sha256,
		  void (*cb) (const char *data, size_t len, void *arg), void *arg, char *err, size_t errlen)
{
	char		job[32], att[16];
	const char *p[] = {node, job, att, sha256};
	PGresult   *r;
	CallResult	rc;

	snprintf(job, sizeof(job), "%lld", (long long) job_id);
	snprintf(att, sizeof(att), "%d", attempt);
	rc = call_params(c, "SELECT dispatch.agent_blob($1, $2::bigint, $3::int, $4)", 4, p, NULL, NULL,
					 1, &r, err, errlen);
	if (rc != CALL_OK)
		return rc;
	if (PQntuples(r) != 1 || PQnfields(r) != 1)
	{
		agent_seterr(err, errlen, "unexpected reply: %d rows", PQntuples(r));
		PQclear(r);
		return CALL_ERROR;
	}
	if (PQgetisnull(r, 0, 0))
		cb(NULL, 0, arg);
	else
		cb(PQgetvalue(r, 0, 0), (size_t) PQgetlength(r, 0, 0), arg);
	PQclear(r);
	return CALL_OK;
}

/*
 * dispatch.agent_store_output(node, job, attempt, path, sha256, content): an
 * output of a build job, len bytes of data sent as a binary bytea parameter
 * straight from the caller's buffer.
 */
CallResult
conn_store_output(Conn *c, const char *node, int64_t job_id, int attempt, const char *path,
				  const char *sha256, const char *data, size_t len, char *err, size_t errlen)
{
	char		job[32], att[16];
	const char *p[] = {node, job, att, path, sha256, data};
	int			lengths[] = {0, 0, 0, 0, 0, (int) len};
	int			formats[] = {0, 0, 0, 0, 0, 1};
	PGresult   *r;
	CallResult	rc;

	if (len > INT32_MAX)
	{
		agent_seterr(err, errlen, "an output of %zu bytes is too large to send", len);
		return CALL_REJECTED;
	}
	snprintf(job, sizeof(job), "%lld", (long long) job_id);
	snprintf(att, sizeof(att), "%d", attempt);
	rc = call_params(c, "SELECT dispatch.agent_store_output($1, $2::bigint, $3::int, $4, $5, $6::bytea)",
					 6, p, lengths, formats, 0, &r, err, errlen);
	PQclear(r);
	return rc;
}

/* Calls a void dispatch.<func>(node) such as agent_drain or agent_offline. */
CallResult
conn_node_call(Conn *c, const char *func, const char *node, char *err, size_t errlen)
{
	const char *p[] = {node};
	char		sql[128];

	snprintf(sql, sizeof(sql), "SELECT dispatch.%s($1)", func);
	return call_text(c, sql, 1, p, NULL, err, errlen);
}
