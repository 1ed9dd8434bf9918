/*
 * dispatchctl.h -- the modules of dispatchctl and what they share.
 *
 *   main.c     the command line: global options, the command table, --help, exit codes
 *   conn.c     libpq: connecting for reading or for changes, queries, server errors,
 *              LISTEN and waiting for notifications
 *   output.c   printing results: aligned tables with coloured states, --json
 *   submit.c   submit: YAML or JSON from a file, server errors mapped to line:column
 *   list.c     the listings (status, jobs, nodes, resources, goals, alerts, artefacts,
 *              top), cancel
 *   follow.c   logs [-f] and wait: following a job or joblist through LISTEN/NOTIFY
 *   build.c    build: asking for a file of a workspace, waiting for its rebuild
 *
 * Every command is a function taking the parsed global options and its own argv;
 * it returns the process's exit code (the EXIT_* values, or the job's own for logs -f).
 */
#ifndef DISPATCHCTL_H
#define DISPATCHCTL_H

#include <stdio.h>
#include <time.h>
#include <libpq-fe.h>
#include <jansson.h>

/* Exit codes (docs/cli.md, "Exit status"). */
#define EXIT_OK			0
#define EXIT_ERROR		1		/* the server refused, or the connection failed */
#define EXIT_USAGE		2		/* a bad command line */
#define EXIT_FAILED		3		/* wait: the joblist failed; logs -f: failed, no exit code */
#define EXIT_CANCELLED	4		/* wait / logs -f: cancelled */
#define EXIT_SKIPPED	5		/* logs -f: the job was skipped */
#define EXIT_TIMEOUT	6		/* wait --timeout: still not finished */

/* The options every command takes, and the connection once opened. */
typedef struct Ctl
{
	const char *dbname;			/* -d/--dbname, or NULL for libpq's defaults */
	int			json;			/* --json */
	int			color;			/* states in colour (--color, NO_COLOR, a terminal) */
	PGconn	   *conn;
} Ctl;

/* One command: its name, what it does, its synopsis and its function. */
typedef struct Command
{
	const char *name;
	const char *summary;
	const char *usage;			/* the synopsis and options, for --help */
	int			(*run) (Ctl *ctl, int argc, char **argv);
} Command;

/* main.c */
void		ctl_error(const char *fmt,...) __attribute__((format(printf, 1, 2)));
int			ctl_usage_error(const char *command, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));
int			ctl_parse_count(const char *command, const char *what, const char *s, long lo,
							long hi, long *out);
int			ctl_wants_help(int argc, char **argv);
int			ctl_is_id(const char *s);
struct option;
int			ctl_getopt(const char *command, int argc, char **argv, const char *shortopts,
					   const struct option *opts);
int			ctl_help(const char *command);

/* conn.c */
int			conn_open(Ctl *ctl, int for_changes);
void		conn_close(Ctl *ctl);
PGresult   *conn_exec(Ctl *ctl, const char *sql, int nparams, const char *const *params);
PGresult   *conn_try(Ctl *ctl, const char *sql, int nparams, const char *const *params);
void		conn_print_error(const PGresult *res, const char *where);
int			conn_listen(Ctl *ctl, const char *channel);
int			conn_wait(Ctl *ctl, int timeout_ms,
					  int (*relevant) (const PGnotify *n, const void *arg), const void *arg);

/* output.c */
typedef struct Column
{
	const char *name;			/* the result column */
	const char *header;			/* its table heading */
} Column;
json_t	   *output_rows_json(const PGresult *res);
json_t	   *output_row_json(const PGresult *res, int row);
int			output_json(json_t *value);
void		output_table(const Ctl *ctl, const PGresult *res, const Column *columns);
void		output_record(const Ctl *ctl, const PGresult *res, int row, const Column *columns);
int			output_result(const Ctl *ctl, const PGresult *res, const Column *columns);
void		output_safe(FILE *out, const char *s, size_t len, int keep_newlines);
const char *output_state_color(const char *state);

/* list.c */
int			list_joblist_id(Ctl *ctl, const char *arg, char *buf, size_t size);

/* follow.c: what a wait for notifications watches (ids as text, or NULL) */
typedef struct Watch
{
	const char *job;
	const char *joblist;
	int			any_joblist;	/* every joblist event: a new joblist, a state change */
} Watch;
int			follow_relevant(const PGnotify *n, const void *arg);
long		follow_left_ms(long timeout, const struct timespec *start);
int			follow_joblist(Ctl *ctl, const char *id, long timeout, const struct timespec *start);

/* the commands */
int			cmd_submit(Ctl *ctl, int argc, char **argv);
int			cmd_status(Ctl *ctl, int argc, char **argv);
int			cmd_jobs(Ctl *ctl, int argc, char **argv);
int			cmd_nodes(Ctl *ctl, int argc, char **argv);
int			cmd_resources(Ctl *ctl, int argc, char **argv);
int			cmd_goals(Ctl *ctl, int argc, char **argv);
int			cmd_alerts(Ctl *ctl, int argc, char **argv);
int			cmd_top(Ctl *ctl, int argc, char **argv);
int			cmd_cancel(Ctl *ctl, int argc, char **argv);
int			cmd_logs(Ctl *ctl, int argc, char **argv);
int			cmd_wait(Ctl *ctl, int argc, char **argv);
int			cmd_build(Ctl *ctl, int argc, char **argv);
int			cmd_artefacts(Ctl *ctl, int argc, char **argv);

#endif
