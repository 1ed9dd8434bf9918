/*
 * jobs_artefacts.c -- a build job's artefacts on their way through the job table.
 *
 * A build job (its flow has "artefacts", checked by artefacts.c) needs files of
 * its workspace before it starts and leaves others when it ends.
 *
 * Inputs.  jobs.c makes the job's directories as for any job, then hands it
 * here instead of to a supervisor.  jobs_fetch(), called by the event loop
 * while connected, fetches the inputs with one dispatch.agent_blob call each,
 * for at most ROUND_MS per loop round (and at least one input), so that the
 * agent goes on serving its other jobs and the server in between; artefacts.c
 * writes each into the work dir as the job user and checks its size and
 * SHA-256.  When all are in, the supervisor starts.  A call that failed because
 * the connection is gone is made again once connected; any other failure (the
 * server's error, no content, a wrong size or SHA-256, a path that cannot be
 * written) fails the attempt with a detail naming the input; a stale attempt is
 * dropped.  A job fetching counts as running for cancels, drains and questions
 * about it, and an agent restarted meanwhile finds it without a supervisor and
 * reports it failed ("supervisor vanished"): the server retries it as usual.
 *
 * Outputs.  Before the job starts, its outputs, their work dir and
 * max_blob_size go into the crash-safe spool file "outputs" (a restarted agent
 * has no assignment).  Once the job has ended with exit code 0, jobs_pump()
 * (jobs_report.c) calls jobs_store() before it lets the job's end into a
 * batch: each output is read by artefacts.c and sent with
 * dispatch.agent_store_output, for at most ROUND_MS a round again.  The first
 * output that cannot be stored (missing, not a regular file, too large, refused
 * by the server) ends the storing with an outputs_error, which the job's
 * finish carries.  While the connection is down the job stays in the spool
 * with its end unreported; the outputs not stored yet are sent once it is back
 * (every one of them again after an agent restart: the server takes the same
 * content for the same attempt twice).
 */
#include "jobs.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUND_MS 100			/* most time fetching or storing in one loop round, after the first */
#define OUTPUTS_RECORD "outputs"	/* in the job's spool dir: what to store when it ends */

/* A build job fetching its inputs, and what its supervisor needs once they are in. */
struct Fetch
{
	Assignment	a;				/* spec.command is command; the row's other strings are gone */
	char	   *command;
	StrList		env;
	char		workdir[PATH_MAX];
	const json_t *inputs;		/* in a.flow */
	size_t		next;			/* the next input to fetch */
};

/* What conn_blob() hands a fetched input to, and how it went. */
typedef struct Put
{
	const char *workdir;
	const json_t *input;
	int			rc;
	char		why[AGENT_ERRLEN];
} Put;

static int	put_record(const Job *j, const json_t *art, const char *workdir, char *err, size_t errlen);
static void free_fetch(Fetch *f);
static void put_blob(const char *data, size_t len, void *arg);
static void fetched(Job *j);
static int	call_failed(Conn *c, Job *j, CallResult cr, const char *what, const char *path,
						const char *err);
static int	fetch_next(Conn *c, Job *j);
static void run_round(Conn *c, int (*wants) (Job *j), int (*step) (Conn *c, Job *j));
static int	wants_fetch(Job *j);
static void begin_store(Job *j);
static void settle(Job *j, const char *why);
static int	store_next(Conn *c, Job *j);
static int	wants_store(Job *j);

/* Writes j's outputs record (its work dir, outputs and max_blob_size) into its spool dir; 0 or -1. */
static int
put_record(const Job *j, const json_t *art, const char *workdir, char *err, size_t errlen)
{
	StrBuf		text;
	int			rc;

	sb_init(&text);
	jsonio_put(&text, json_pack("{sssOsO}", "workdir", workdir,
								"max_blob_size", json_object_get(art, "max_blob_size"),
								"outputs", json_object_get(art, "outputs")));
	rc = spool_write_file(j->dir, OUTPUTS_RECORD, text.data, text.len, err, errlen);
	sb_free(&text);
	return rc;
}

/*
 * Before a job starts: for a build job with outputs, records them in its spool
 * dir; for one with inputs, takes over a and env (leaving them empty) to fetch
 * them before it starts.  Returns 1 when the job waits for its inputs, 0 when it
 * can start now, -1 with err set.
 */
int
jobs_artefacts_start(Job *j, Assignment *a, const char *workdir, StrList *env, char *err,
					 size_t errlen)
{
	const json_t *art = json_object_get(a->flow, "artefacts");
	Fetch	   *f;

	if (json_array_size(json_object_get(art, "outputs")) > 0 &&
		put_record(j, art, workdir, err, errlen) < 0)
		return -1;
	if (json_array_size(json_object_get(art, "inputs")) == 0)
		return 0;
	f = xmalloc(sizeof(Fetch));
	memset(f, 0, sizeof(Fetch));
	f->a = *a;
	f->command = xstrdup(a->spec.command);
	memset(&f->a.spec, 0, sizeof(f->a.spec));
	f->a.spec.job_id = a->spec.job_id;
	f->a.spec.attempt = a->spec.attempt;
	f->a.spec.joblist_id = a->spec.joblist_id;
	f->a.spec.timeout_ms = a->spec.timeout_ms;
	f->a.spec.command = f->command;
	f->env = *env;
	snprintf(f->workdir, sizeof(f->workdir), "%s", workdir);
	f->inputs = json_object_get(art, "inputs");
	memset(a, 0, sizeof(*a));
	strlist_init(env);
	j->fetch = f;
	log_info("job %" PRId64 " attempt %d: fetching %zu artefact input(s)", j->job_id, j->attempt,
			 json_array_size(f->inputs));
	return 1;
}

/* Releases f. */
static void
free_fetch(Fetch *f)
{
	assign_free(&f->a);
	free(f->command);
	strlist_free(&f->env);
	free(f);
}

/* Releases what j holds for its artefacts: a fetch not finished, an outputs record, an outputs_error. */
void
jobs_artefacts_free(Job *j)
{
	if (j->fetch != NULL)
		free_fetch(j->fetch);
	json_decref(j->store);
	free(j->outputs_error);
	j->fetch = NULL;
	j->store = NULL;
	j->outputs_error = NULL;
}

/* conn_blob() callback: writes the fetched input into the work dir (Put). */
static void
put_blob(const char *data, size_t len, void *arg)
{
	Put		   *p = arg;

	p->rc = artefacts_put_input(p->workdir, p->input, data, len, p->why, sizeof(p->why));
}

/* All of j's inputs are in: starts its supervisor. */
static void
fetched(Job *j)
{
	Fetch	   *f = j->fetch;
	char		err[AGENT_ERRLEN];

	log_info("job %" PRId64 " attempt %d: %zu artefact input(s) fetched", j->job_id, j->attempt, f->next);
	j->fetch = NULL;
	if (jobs_spawn(j, f->workdir, &f->a, &f->env, err, sizeof(err)) < 0)
		jobs_set_status(j, err);
	free_fetch(f);
}

/*
 * After call what ("fetch artefact input") for path of j came to cr: returns -1
 * when the connection is gone (the call is made again once connected), 1 when
 * j is stale now (dropped: jobs_make_stale()), 0 when the caller must give up.
 */
static int
call_failed(Conn *c, Job *j, CallResult cr, const char *what, const char *path, const char *err)
{
	if (cr == CALL_ERROR && !conn_ok(c))
	{
		log_warning("job %" PRId64 " attempt %d: could not %s \"%s\": %s; trying again once connected",
					j->job_id, j->attempt, what, path, err);
		return -1;
	}
	if (cr == CALL_STALE)
	{
		jobs_make_stale(j, err);
		return 1;
	}
	return 0;
}

/* Fetches j's next input; returns 0, or -1 when the connection is gone (the input is fetched again later). */
static int
fetch_next(Conn *c, Job *j)
{
	Fetch	   *f = j->fetch;
	const json_t *in = json_array_get(f->inputs, f->next);
	const char *path = json_string_value(json_object_get(in, "path"));
	Put			put = {f->workdir, in, -1, ""};
	char		err[AGENT_ERRLEN], detail[SPOOL_DETAIL_LEN];
	CallResult	cr = conn_blob(c, jobs_conf->node, j->job_id, j->attempt,
							   json_string_value(json_object_get(in, "sha256")), put_blob, &put,
							   err, sizeof(err));

	int			rc;

	if (cr == CALL_OK && put.rc == 0)
	{
		if (++f->next == json_array_size(f->inputs))
			fetched(j);
		return 0;
	}
	if ((rc = call_failed(c, j, cr, "fetch artefact input", path, err)) != 0)
		return rc < 0 ? -1 : 0;	/* a stale job's fetch ends in jobs_cancel() */
	snprintf(detail, sizeof(detail), "could not fetch artefact input \"%s\": %s", path,
			 cr == CALL_OK ? put.why : err);
	jobs_artefacts_free(j);
	jobs_set_status(j, detail);
	return 0;
}

/*
 * One round of fetching or storing: step() on every job wants() picks, again and
 * again, for at most ROUND_MS (at least once), while connected; stops at a step
 * that lost the connection.
 */
static void
run_round(Conn *c, int (*wants) (Job *j), int (*step) (Conn *c, Job *j))
{
	int64_t		deadline = proc_now_ms() + ROUND_MS;
	int			first = 1;

	for (Job *j = jobs_list; j != NULL; j = j->next)
		while (conn_ok(c) && wants(j) && (first || proc_now_ms() < deadline))
		{
			first = 0;
			if (step(c, j) < 0)
				return;
		}
}

/* run_round() filter: j waits for its inputs. */
static int
wants_fetch(Job *j)
{
	return j->fetch != NULL;
}

/* Fetches the inputs of build jobs for one loop round. */
void
jobs_fetch(Conn *c)
{
	run_round(c, wants_fetch, fetch_next);
}

/* Returns 1 when some build job waits for its inputs. */
int
jobs_fetching(void)
{
	for (Job *j = jobs_list; j != NULL; j = j->next)
		if (j->fetch != NULL)
			return 1;
	return 0;
}

/* Decides what the ended job j has to store: nothing (settled), or the outputs of its record. */
static void
begin_store(Job *j)
{
	char		err[AGENT_ERRLEN], path[PATH_MAX + 16], why[AGENT_ERRLEN + 64];
	JobStatus	st;
	StrBuf		text;

	j->outputs = OUTPUTS_SETTLED;
	if (j->no_spool != NULL || !spool_exists(j->dir, OUTPUTS_RECORD) ||
		jobs_read_status(j, &st, err, sizeof(err)) < 0 || !st.has_exit || st.exit_code != 0)
		return;					/* no outputs, or a job that failed anyway */
	snprintf(path, sizeof(path), "%s/%s", j->dir, OUTPUTS_RECORD);
	if (spool_read_text(path, &text, err, sizeof(err)) == 0)
	{
		j->store = jsonio_load(text.data, 0, err, sizeof(err));
		sb_free(&text);
	}
	if (!json_is_string(json_object_get(j->store, "workdir")) ||
		!json_is_integer(json_object_get(j->store, "max_blob_size")) ||
		!json_is_array(json_object_get(j->store, "outputs")))
	{
		snprintf(why, sizeof(why), "the spool's record of the outputs is unusable: %s",
				 j->store == NULL ? err : "keys missing");
		settle(j, why);
		return;
	}
	j->outputs = OUTPUTS_STORING;
	j->stored = 0;
}

/* Ends the storing of j's outputs: all stored (why NULL), or why as its outputs_error. */
static void
settle(Job *j, const char *why)
{
	if (why != NULL)
	{
		log_warning("job %" PRId64 " attempt %d: %s", j->job_id, j->attempt, why);
		j->outputs_error = xstrdup(why);
	}
	else
		log_info("job %" PRId64 " attempt %d: %zu output(s) stored", j->job_id, j->attempt, j->stored);
	j->outputs = OUTPUTS_SETTLED;
	json_decref(j->store);
	j->store = NULL;
}

/* Stores j's next output, or settles j when none is left; returns 0, or -1 when the connection is gone. */
static int
store_next(Conn *c, Job *j)
{
	const char *path = json_string_value(json_array_get(json_object_get(j->store, "outputs"), j->stored));
	char		why[AGENT_ERRLEN], err[AGENT_ERRLEN];
	ArtefactOutput out;
	CallResult	cr;
	int			rc;

	if (path == NULL)
	{
		settle(j, NULL);
		return 0;
	}
	if (artefacts_read_output(json_string_value(json_object_get(j->store, "workdir")), path,
							  json_integer_value(json_object_get(j->store, "max_blob_size")), &out,
							  why, sizeof(why)) < 0)
	{
		artefacts_output_free(&out);
		settle(j, why);
		return 0;
	}
	cr = conn_store_output(c, jobs_conf->node, j->job_id, j->attempt, path, out.sha256, out.data,
						   out.len, err, sizeof(err));
	artefacts_output_free(&out);
	if (cr == CALL_OK)
	{
		j->stored++;
		return 0;
	}
	if ((rc = call_failed(c, j, cr, "store output", path, err)) != 0)
		return rc < 0 ? -1 : 0;
	snprintf(why, sizeof(why), "could not store output \"%.300s\": %s", path, err);
	settle(j, why);
	return 0;
}

/* run_round() filter: j has ended and has outputs to store (decided on the first look). */
static int
wants_store(Job *j)
{
	if (!j->done || j->stale || !j->resumed)
		return 0;
	if (j->outputs == OUTPUTS_UNKNOWN)
		begin_store(j);
	return j->outputs == OUTPUTS_STORING;
}

/*
 * Stores the outputs of ended build jobs for one loop round, before their ends
 * are reported (jobs_pump(): an end goes out once its job's outputs are
 * OUTPUTS_SETTLED).
 */
void
jobs_store(Conn *c)
{
	run_round(c, wants_store, store_next);
}
