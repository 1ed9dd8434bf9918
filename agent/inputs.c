/*
 * inputs.c -- a job's flow dir: what it gets from the jobs it runs after, and
 * where it leaves its own result.
 *
 * agent_poll hands a job its "flow" (parsed once by assign.c): the results of
 * the jobs it runs after, "inputs": [{"name", "file", "result"}], and its group,
 * {"key", "name"}.  Next to its work dir work-<token> the job gets flow-<token>
 * (the same token nobody else can guess; the job user's with the agent's group,
 * mode 0770, as it is also the job's control dir, control.c):
 *   result.json  $DISPATCH_RESULT: the job may write it; result.c reads it when
 *                the job has ended
 *   inputs/      $DISPATCH_INPUTS: per input the file <file> holding the JSON
 *                text of its result, written before the exec by the job's child,
 *                already the job user, through files.c (created exclusively,
 *                never through a symbolic link); a job without inputs gets
 *                <spool>/no-inputs instead, the agent's empty dir
 *   <id>.req, <id>.ans  $DISPATCH_CONTROL: wait and signal requests (control.c)
 * A group's $DISPATCH_SCRATCH comes from scratch.c; a build job's "artefacts"
 * (files of its work dir, fetched and stored by jobs_artefacts.c) are checked
 * by artefacts.c.  The server makes every file name safe; it is checked again
 * here (one path component, no leading ".", at most INPUTS_FILE_MAX bytes),
 * because whatever it names is written.
 */
#include "agent.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int	file_ok(const char *name);
static int	check_flow(const json_t *flow, char *err, size_t errlen);

/* Returns 1 when name can be the file of an input: one component, no leading ".", at most INPUTS_FILE_MAX bytes. */
static int
file_ok(const char *name)
{
	size_t		n = strlen(name);

	return n > 0 && n <= INPUTS_FILE_MAX && name[0] != '.' && strchr(name, '/') == NULL;
}

/* Checks the shape of a job's flow (NULL or JSON null: none); returns 0, or -1 with err set. */
static int
check_flow(const json_t *flow, char *err, size_t errlen)
{
	const json_t *inputs = json_object_get(flow, "inputs"),
			   *group = json_object_get(flow, "group"),
			   *in;
	size_t		i;

	if (flow == NULL || json_is_null(flow))
		return 0;
	if (!json_is_object(flow))
		agent_seterr(err, errlen, "job flow must be a JSON object");
	else if (inputs != NULL && !json_is_array(inputs))
		agent_seterr(err, errlen, "job flow inputs must be a JSON array");
	else if (group != NULL && !scratch_key_ok(json_string_value(json_object_get(group, "key"))))
		agent_seterr(err, errlen, "job flow group needs a key of the form <joblist>-<n>");
	else if (artefacts_check(json_object_get(flow, "artefacts"), err, errlen) < 0)
		return -1;
	else
	{
		json_array_foreach(inputs, i, in)
		{
			const char *file = json_string_value(json_object_get(in, "file"));

			if (file == NULL || json_object_get(in, "result") == NULL)
				agent_seterr(err, errlen, "a job input needs a string \"file\" and a \"result\"");
			else if (!file_ok(file))
				agent_seterr(err, errlen, "refusing unsafe job input file name \"%s\"", file);
			else
				continue;
			return -1;
		}
		return 0;
	}
	return -1;
}

/* Writes into out the flow dir that goes with work dir workdir (".../work-T" -> ".../flow-T"); returns 0 or -1. */
int
inputs_flow_dir(const char *workdir, char *out, size_t len)
{
	const char *base = strrchr(workdir, '/');

	if (base == NULL || strncmp(base, "/work-", 6) != 0 ||
		snprintf(out, len, "%.*s/flow-%s", (int) (base - workdir), workdir, base + 6) >= (int) len)
		return -1;
	return 0;
}

/*
 * Before a job starts: checks its flow, creates its flow dir next to workdir (the
 * job user's) and, for a group, the group's scratch dir under the spool, and sets
 * DISPATCH_RESULT, DISPATCH_INPUTS and DISPATCH_SCRATCH in env.  Returns 0, or -1
 * with err set to the detail the job's status gets.
 */
int
inputs_prepare(const char *workdir, const Assignment *a, const char *spool, StrList *env,
			   char *err, size_t errlen)
{
	char		dir[PATH_MAX], path[PATH_MAX + 16];
	const char *key = json_string_value(json_object_get(json_object_get(a->flow, "group"), "key"));

	if (check_flow(a->flow, err, errlen) < 0)
		return -1;
	if (inputs_flow_dir(workdir, dir, sizeof(dir)) < 0)
	{
		agent_seterr(err, errlen, "work directory \"%s\" has no flow directory name", workdir);
		return -1;
	}
	/* the agent's until control_attach() gives it to the job user (0770, the agent's group) */
	if (mkdir(dir, 0700) < 0)
	{
		agent_seterr(err, errlen, "could not create directory \"%s\": %s", dir, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/result.json", dir);
	env_set(env, "DISPATCH_RESULT", path);
	/* a job without inputs gets the one empty dir of the spool: a mkdir less per job */
	if (json_array_size(json_object_get(a->flow, "inputs")) > 0)
		snprintf(path, sizeof(path), "%s/inputs", dir);
	else if (snprintf(path, sizeof(path), "%s/no-inputs", spool) < 0 ||
			 own_dir(path, 0755, err, errlen) < 0)
		return -1;
	env_set(env, "DISPATCH_INPUTS", path);
	if (key == NULL)
		return 0;
	if (scratch_prepare(spool, key, path, sizeof(path), err, errlen) < 0)
		return -1;
	env_set(env, "DISPATCH_SCRATCH", path);
	return 0;
}

/*
 * In the job's child, as the job user: creates the inputs dir in the flow dir of
 * workdir and writes a file per input (the flow was checked by inputs_prepare(),
 * the names are checked again).  Returns 0, or -1 with err set.
 */
int
inputs_write(const char *workdir, const Assignment *a, char *err, size_t errlen)
{
	char		dir[PATH_MAX + 16];
	const json_t *inputs = json_object_get(a->flow, "inputs"),
			   *in;
	Assignment	files = {0};
	size_t		i;
	int			rc = 0;

	if (json_array_size(inputs) == 0)
		return 0;				/* DISPATCH_INPUTS is the spool's empty dir */
	files.files = json_array();

	if (inputs_flow_dir(workdir, dir, sizeof(dir) - 8) < 0)
	{
		agent_seterr(err, errlen, "work directory \"%s\" has no flow directory name", workdir);
		json_decref(files.files);
		return -1;
	}
	strcat(dir, "/inputs");
	if (mkdir(dir, 0700) < 0)
	{
		agent_seterr(err, errlen, "could not create directory \"%s\": %s", dir, strerror(errno));
		json_decref(files.files);
		return -1;
	}
	json_array_foreach(inputs, i, in)
	{
		const char *file = json_string_value(json_object_get(in, "file"));
		StrBuf		text;

		if (file == NULL || !file_ok(file))
		{
			agent_seterr(err, errlen, "refusing unsafe job input file name \"%s\"", file ? file : "(none)");
			rc = -1;
			break;
		}
		sb_init(&text);
		jsonio_put(&text, json_incref(json_object_get(in, "result")));
		sb_puts(&text, "\n");
		json_array_append_new(files.files, json_pack("{ssssss}", "path", file, "mode", "0600",
													 "content", text.data));
		sb_free(&text);
	}
	if (rc == 0)
		rc = files_write(dir, &files, err, errlen);
	json_decref(files.files);
	return rc;
}
