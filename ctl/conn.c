/*
 * conn.c -- dispatchctl's libpq side: connecting, queries, server errors, LISTEN.
 *
 * The connection comes from -d/--dbname (a connection string, a URI or a database
 * name) or from libpq's own defaults (PGHOST, PGDATABASE, PGSERVICE, ...).  With
 * several hosts, commands that change something or LISTEN (submit, cancel, logs -f,
 * wait) ask for target_session_attrs=read-write, since a standby neither accepts
 * changes nor delivers notifications; the others, given several hosts, ask for
 * prefer-standby, to keep reading off the primary.  A target_session_attrs in the
 * connection string or in PGTARGETSESSIONATTRS wins.  Every query is parameterised: no value is ever
 * spliced into SQL text.
 */
#include "dispatchctl.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Prints a server notice ("joblist 5 has already finished") as dispatchctl's own line. */
static void
on_notice(void *arg, const PGresult *res)
{
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	(void) arg;
	if (msg)
		ctl_error("%s", msg);
}

/* Returns the value the connection string gives keyword (a new string), or NULL. */
static char *
conninfo_value(const char *dbname, const char *keyword)
{
	PQconninfoOption *opts;
	char	   *value = NULL;

	if (dbname == NULL || (strchr(dbname, '=') == NULL && strncmp(dbname, "postgres", 8) != 0))
		return NULL;
	opts = PQconninfoParse(dbname, NULL);
	for (PQconninfoOption *o = opts; o && o->keyword; o++)
		if (strcmp(o->keyword, keyword) == 0 && o->val && o->val[0])
			value = strdup(o->val);
	PQconninfoFree(opts);
	return value;
}

/* The target_session_attrs to ask for, or NULL to leave libpq's choice: read-write for
   changes, prefer-standby for reading when there are several hosts to choose from. */
static const char *
session_attrs(const char *dbname, int for_changes)
{
	char	   *named = conninfo_value(dbname, "target_session_attrs");
	char	   *hosts = conninfo_value(dbname, "host");
	const char *env = getenv("PGTARGETSESSIONATTRS");
	const char *host_env = getenv("PGHOST");
	int			several = hosts ? strchr(hosts, ',') != NULL : host_env && strchr(host_env, ',');

	free(hosts);
	if (named || (env && env[0]))
	{
		free(named);
		return NULL;
	}
	if (for_changes)
		return "read-write";
	return several ? "prefer-standby" : NULL;
}

/* Connects ctl for changes (read-write) or for reading; EXIT_OK or EXIT_ERROR. */
int
conn_open(Ctl *ctl, int for_changes)
{
	const char *keywords[4];
	const char *values[4];
	int			n = 0;
	const char *attrs = session_attrs(ctl->dbname, for_changes);

	/* keywords before dbname are overridden by what the connection string says */
	if (attrs)
	{
		keywords[n] = "target_session_attrs";
		values[n++] = attrs;
	}
	keywords[n] = "fallback_application_name";
	values[n++] = "dispatchctl";
	keywords[n] = "dbname";
	values[n++] = ctl->dbname;
	keywords[n] = NULL;
	values[n] = NULL;
	ctl->conn = PQconnectdbParams(keywords, values, 1);
	if (ctl->conn == NULL || PQstatus(ctl->conn) != CONNECTION_OK)
	{
		const char *msg = ctl->conn ? PQerrorMessage(ctl->conn) : "out of memory\n";

		fprintf(stderr, "dispatchctl: could not connect: %s", msg);
		conn_close(ctl);
		return EXIT_ERROR;
	}
	PQsetNoticeReceiver(ctl->conn, on_notice, NULL);
	return EXIT_OK;
}

/* Closes ctl's connection, if any. */
void
conn_close(Ctl *ctl)
{
	if (ctl->conn)
		PQfinish(ctl->conn);
	ctl->conn = NULL;
}

/* Prints a failed result the way psql does, after "where: " when where is given. */
void
conn_print_error(const PGresult *res, const char *where)
{
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	if (msg == NULL)
	{
		fprintf(stderr, "dispatchctl: %s", PQresultErrorMessage(res));
		return;
	}
	fprintf(stderr, "dispatchctl: %s%s%s", where ? where : "", where ? ": " : "", msg);
	if (state)
		fprintf(stderr, " (SQLSTATE %s)", state);
	fputc('\n', stderr);
	if (detail)
		fprintf(stderr, "DETAIL:  %s\n", detail);
	if (hint)
		fprintf(stderr, "HINT:  %s\n", hint);
}

/* Runs sql with text parameters; returns the result whatever its status (NULL only when
   out of memory).  The caller checks PQresultStatus and clears it. */
PGresult *
conn_try(Ctl *ctl, const char *sql, int nparams, const char *const *params)
{
	return PQexecParams(ctl->conn, sql, nparams, NULL, params, NULL, NULL, 0);
}

/* Runs sql with text parameters; returns the result, or NULL after printing the error. */
PGresult *
conn_exec(Ctl *ctl, const char *sql, int nparams, const char *const *params)
{
	PGresult   *res = conn_try(ctl, sql, nparams, params);
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
		return res;
	if (res)
		conn_print_error(res, NULL);
	else
		ctl_error("%s", PQerrorMessage(ctl->conn));
	PQclear(res);
	return NULL;
}

/* LISTENs on channel (dispatch_events, or dispatch_job_<id> with an id of digits
   only); EXIT_OK or EXIT_ERROR. */
int
conn_listen(Ctl *ctl, const char *channel)
{
	char		sql[128];
	PGresult   *res;

	snprintf(sql, sizeof(sql), "LISTEN %s", channel);
	res = conn_exec(ctl, sql, 0, NULL);
	if (res == NULL)
		return EXIT_ERROR;
	PQclear(res);
	return EXIT_OK;
}

/* Consumes every notification that arrived; returns 1 when relevant(n, arg) accepted
   one of them. */
static int
drain(Ctl *ctl, int (*relevant) (const PGnotify *n, const void *arg), const void *arg)
{
	PGnotify   *n;
	int			got = 0;

	while ((n = PQnotifies(ctl->conn)) != NULL)
	{
		got |= relevant(n, arg);
		PQfreemem(n);
	}
	return got;
}

/* Waits up to timeout_ms for a notification relevant(n, arg) accepts, consuming the
   others (dispatch_events tells of every change in the cluster); returns 1 when one
   arrived, 0 on timeout, -1 when the connection failed (message printed). */
int
conn_wait(Ctl *ctl, int timeout_ms,
		  int (*relevant) (const PGnotify *n, const void *arg), const void *arg)
{
	struct pollfd pfd = {.fd = PQsocket(ctl->conn), .events = POLLIN};
	struct timespec start,
				now;
	int			left = timeout_ms;
	int			rc;

	clock_gettime(CLOCK_MONOTONIC, &start);
	while (!drain(ctl, relevant, arg))
	{
		rc = poll(&pfd, 1, left);
		if (rc < 0 && errno != EINTR)
		{
			ctl_error("could not wait for the server: %s", strerror(errno));
			return -1;
		}
		if (rc > 0 && !PQconsumeInput(ctl->conn))
		{
			ctl_error("lost the connection: %s", PQerrorMessage(ctl->conn));
			return -1;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		left = timeout_ms - (int) ((now.tv_sec - start.tv_sec) * 1000 +
								   (now.tv_nsec - start.tv_nsec) / 1000000);
		if (left <= 0)
			return drain(ctl, relevant, arg);
	}
	return 1;
}
