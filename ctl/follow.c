/*
 * follow.c -- dispatchctl logs [-f] and wait: a job's output and a joblist's end,
 * followed through LISTEN/NOTIFY.
 *
 * State changes come on dispatch_events (sql/src/47_events.sql: ids and states of the
 * jobs a statement changed, a joblist's new state); follow_relevant() keeps those that name
 * the job or joblist watched, so the client re-reads only for them.  Once
 * follow_output(id) was called, the server also NOTIFYs dispatch_job_<id> "output" for
 * every stored chunk (45_output.sql).  Payloads carry ids and states only: on each
 * wake-up the client reads through job_status and job_log(), whose permissions apply.  It LISTENs and follows
 * before its first read, so nothing that happens in between is missed.  A re-read every
 * FOLLOW_SAFETY_MS covers a notification lost with its connection; it is a safety
 * net, not the mechanism.
 *
 * logs reads the part of each stream it has not printed yet (substr by characters
 * of job_log's text), so a wake-up transfers only new output; a new attempt starts
 * its streams from the beginning, announced on stderr.
 */
#include "dispatchctl.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FOLLOW_SAFETY_MS 30000

/* The job's state and the output it has beyond what was printed. */
static const char logs_sql[] =
	"SELECT j.state, j.attempt, j.exit_code, j.signal, j.output_truncated,"
	"       substr(o.out, $2::int + 1), length(o.out), substr(o.err, $3::int + 1), length(o.err)"
	"  FROM dispatch.job_status j,"
	"       LATERAL (SELECT CASE WHEN $4 THEN dispatch.job_log(j.job_id, 'stdout', j.attempt) END AS out,"
	"                       CASE WHEN $5 THEN dispatch.job_log(j.job_id, 'stderr', j.attempt) END AS err) o"
	" WHERE j.job_id = $1::bigint";

/* What logs has printed of a job so far. */
typedef struct Follow
{
	const char *job;
	int			want_out;
	int			want_err;
	int			raw;			/* print control characters as they are */
	int			tty_out;
	int			tty_err;
	long		attempt;
	long		out_chars;
	long		err_chars;
} Follow;

/* Returns 1 when a job in state will not change any more (a failed or lost attempt
   that is retried is pending again by the time its transaction commits). */
static int
job_final(const char *state)
{
	return strcmp(state, "succeeded") == 0 || strcmp(state, "failed") == 0 ||
		strcmp(state, "cancelled") == 0 || strcmp(state, "skipped") == 0 ||
		strcmp(state, "lost") == 0;
}

/* The exit status logs -f ends with for a job that ended in row 0 of res. */
static int
job_exit_status(const PGresult *res)
{
	const char *state = PQgetvalue(res, 0, 0);

	if (strcmp(state, "succeeded") == 0)
		return EXIT_OK;
	if (!PQgetisnull(res, 0, 2))
		return atoi(PQgetvalue(res, 0, 2)) & 0xff;
	if (!PQgetisnull(res, 0, 3))
		return (128 + atoi(PQgetvalue(res, 0, 3))) & 0xff;
	if (strcmp(state, "cancelled") == 0)
		return EXIT_CANCELLED;
	if (strcmp(state, "skipped") == 0)
		return EXIT_SKIPPED;
	return EXIT_FAILED;
}

/* Writes new output to out: raw, or with control characters escaped on a terminal. */
static void
emit(FILE *out, const char *s, int tty, int raw)
{
	if (raw || !tty)
		fputs(s, out);
	else
		output_safe(out, s, strlen(s), 1);
	fflush(out);
}

/* Reads and prints what is new; returns 1 when the job has ended (*status set), 0 while
   it goes on, -1 on error. */
static int
read_new(Ctl *ctl, Follow *f, int *status)
{
	char		out_from[24];
	char		err_from[24];
	const char *params[5] = {f->job, out_from, err_from,
		f->want_out ? "true" : "false", f->want_err ? "true" : "false"};
	PGresult   *res;
	long		attempt;
	int			ended;

	snprintf(out_from, sizeof(out_from), "%ld", f->out_chars);
	snprintf(err_from, sizeof(err_from), "%ld", f->err_chars);
	res = conn_exec(ctl, logs_sql, 5, params);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 0)
	{
		ctl_error("job %s does not exist", f->job);
		PQclear(res);
		return -1;
	}
	attempt = atol(PQgetvalue(res, 0, 1));
	if (f->attempt != 0 && attempt != f->attempt && (f->out_chars || f->err_chars))
	{
		/* a retry: its output starts over; read it from the start next time */
		fprintf(stderr, "dispatchctl: job %s: attempt %ld starts\n", f->job, attempt);
		f->attempt = attempt;
		f->out_chars = f->err_chars = 0;
		PQclear(res);
		return read_new(ctl, f, status);
	}
	f->attempt = attempt;
	if (!PQgetisnull(res, 0, 5))
		emit(stdout, PQgetvalue(res, 0, 5), f->tty_out, f->raw);
	if (!PQgetisnull(res, 0, 7))
		emit(stderr, PQgetvalue(res, 0, 7), f->tty_err, f->raw);
	f->out_chars = PQgetisnull(res, 0, 6) ? 0 : atol(PQgetvalue(res, 0, 6));
	f->err_chars = PQgetisnull(res, 0, 8) ? 0 : atol(PQgetvalue(res, 0, 8));
	ended = job_final(PQgetvalue(res, 0, 0));
	if (ended)
	{
		if (PQgetvalue(res, 0, 4)[0] == 't')
			ctl_error("job %s: output truncated at dispatch.max_output_bytes", f->job);
		*status = job_exit_status(res);
	}
	PQclear(res);
	return ended;
}

/* Returns 1 when notification n may concern what arg (a Watch) watches: the followed
   job's output channel, or a dispatch_events payload naming it ("more" when a statement
   changed more jobs than it lists; any joblist event for any_joblist). */
int
follow_relevant(const PGnotify *n, const void *arg)
{
	const Watch *w = arg;
	json_t	   *ev,
			   *j;
	const char *type;
	size_t		i;
	int			hit = 0;

	if (strcmp(n->relname, "dispatch_events") != 0)
		return 1;
	ev = json_loads(n->extra, 0, NULL);
	type = json_string_value(json_object_get(ev, "type"));
	if (type != NULL && w->any_joblist && strcmp(type, "joblist") == 0)
		hit = 1;
	else if (type != NULL && w->joblist != NULL && strcmp(type, "joblist") == 0)
		hit = json_integer_value(json_object_get(ev, "joblist_id")) == atoll(w->joblist);
	else if (type != NULL && w->job != NULL && strcmp(type, "jobs") == 0)
	{
		hit = json_is_true(json_object_get(ev, "more"));
		json_array_foreach(json_object_get(ev, "jobs"), i, j)
			hit |= json_integer_value(json_array_get(j, 0)) == atoll(w->job);
	}
	json_decref(ev);
	return hit;
}

/* Asks the server to NOTIFY this session's channel for each chunk of job's output. */
static int
start_following(Ctl *ctl, const char *job)
{
	const char *params[1] = {job};
	PGresult   *res = conn_exec(ctl, "SELECT dispatch.follow_output($1::bigint)", 1, params);

	if (res == NULL)
		return EXIT_ERROR;
	PQclear(res);
	return EXIT_OK;
}

/* dispatchctl logs [-f] [--stream stdout|stderr] [--raw] JOB */
int
cmd_logs(Ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"follow", no_argument, NULL, 'f'}, {"stream", required_argument, NULL, 's'},
		{"raw", no_argument, NULL, 'r'}, {NULL, 0, NULL, 0}
	};
	Follow		f = {.want_out = 1, .want_err = 1};
	int			follow = 0;
	int			opt;
	int			status = EXIT_OK;
	int			rc;
	char		channel[64];

	while ((opt = ctl_getopt("logs", argc, argv, "f", opts)) >= 0)
	{
		if (opt == 'f')
			follow = 1;
		else if (opt == 'r')
			f.raw = 1;
		else if (strcmp(optarg, "stdout") == 0 || strcmp(optarg, "stderr") == 0)
		{
			f.want_out = strcmp(optarg, "stdout") == 0;
			f.want_err = !f.want_out;
		}
		else
			return ctl_usage_error("logs", "--stream must be stdout or stderr, not \"%s\"", optarg);
	}
	if (opt == -2)
		return EXIT_USAGE;
	if (argc - optind != 1 || !ctl_is_id(argv[optind]))
		return ctl_usage_error("logs", "expected one JOB (a job id)");
	f.job = argv[optind];
	f.tty_out = isatty(STDOUT_FILENO);
	f.tty_err = isatty(STDERR_FILENO);
	if (conn_open(ctl, follow) != EXIT_OK)
		return EXIT_ERROR;
	snprintf(channel, sizeof(channel), "dispatch_job_%s", f.job);
	if (follow && (conn_listen(ctl, "dispatch_events") != EXIT_OK ||
				   conn_listen(ctl, channel) != EXIT_OK ||
				   start_following(ctl, f.job) != EXIT_OK))
		return EXIT_ERROR;
	while ((rc = read_new(ctl, &f, &status)) == 0 && follow)
		if (conn_wait(ctl, FOLLOW_SAFETY_MS, follow_relevant, &(Watch) {.job = f.job}) < 0)
			return EXIT_ERROR;
	if (rc < 0)
		return EXIT_ERROR;
	return follow ? status : EXIT_OK;
}

/* The exit status wait ends with for a joblist's final state. */
static int
joblist_exit_status(const char *state)
{
	if (strcmp(state, "succeeded") == 0)
		return EXIT_OK;
	if (strcmp(state, "cancelled") == 0)
		return EXIT_CANCELLED;
	return EXIT_FAILED;
}

/* Returns the milliseconds to wait for the next notification: until the next safety
   read, or until timeout seconds (-1: none) after start; -1 when the timeout passed. */
long
follow_left_ms(long timeout, const struct timespec *start)
{
	struct timespec now;
	long		spent;

	if (timeout < 0)
		return FOLLOW_SAFETY_MS;
	clock_gettime(CLOCK_MONOTONIC, &now);
	spent = (now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
	if (spent >= timeout * 1000)
		return -1;
	return timeout * 1000 - spent < FOLLOW_SAFETY_MS ? timeout * 1000 - spent : FOLLOW_SAFETY_MS;
}

/* Waits until joblist id (LISTENed on dispatch_events already) finishes, or until
   timeout seconds (-1: none) after start; prints its final state and returns the exit
   status that follows it (wait's). */
int
follow_joblist(Ctl *ctl, const char *id, long timeout, const struct timespec *start)
{
	const char *params[1] = {id};
	PGresult   *res;

	for (;;)
	{
		long		left_ms;
		const char *state;

		res = conn_exec(ctl, "SELECT * FROM dispatch.joblist_status WHERE joblist_id = $1",
						1, params);
		if (res == NULL)
			return EXIT_ERROR;
		state = PQntuples(res) == 1 ? PQgetvalue(res, 0, PQfnumber(res, "state")) : "queued";
		if (strcmp(state, "queued") != 0 && strcmp(state, "running") != 0)
		{
			int			status = joblist_exit_status(state);

			if (ctl->json)
				output_json(output_row_json(res, 0));
			else
				printf("joblist %s %s\n", id, state);
			PQclear(res);
			return status;
		}
		PQclear(res);
		if ((left_ms = follow_left_ms(timeout, start)) < 0)
		{
			ctl_error("joblist %s has not finished after %ld seconds", id, timeout);
			return EXIT_TIMEOUT;
		}
		if (conn_wait(ctl, (int) left_ms, follow_relevant, &(Watch) {.joblist = id}) < 0)
			return EXIT_ERROR;
	}
}

/* dispatchctl wait [--timeout SECONDS] JOBLIST */
int
cmd_wait(Ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {{"timeout", required_argument, NULL, 't'}, {NULL, 0, NULL, 0}};
	long		timeout = -1;
	int			opt;
	char		id[32];
	struct timespec start;

	while ((opt = ctl_getopt("wait", argc, argv, "", opts)) == 't')
		if (ctl_parse_count("wait", "--timeout", optarg, 0, 31536000, &timeout) != EXIT_OK)
			return EXIT_USAGE;
	if (opt == -2)
		return EXIT_USAGE;
	if (argc - optind != 1)
		return ctl_usage_error("wait", "expected one JOBLIST");
	clock_gettime(CLOCK_MONOTONIC, &start);
	if (conn_open(ctl, 1) != EXIT_OK)
		return EXIT_ERROR;
	/* resolve the name first, LISTEN, then read: an end in between is seen */
	if (list_joblist_id(ctl, argv[optind], id, sizeof(id)) != EXIT_OK)
		return EXIT_ERROR;
	if (conn_listen(ctl, "dispatch_events") != EXIT_OK)
		return EXIT_ERROR;
	return follow_joblist(ctl, id, timeout, &start);
}
