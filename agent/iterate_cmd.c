/*
 * iterate_cmd.c -- `dispatch-agent iterate [--max-passes N] --output PATH...
 * -- COMMAND...`: a build job's cycle (LaTeX and its .aux file) run to a fixed
 * point.
 *
 * A job runs it with the agent's own binary ("$DISPATCH_AGENT"), as the job
 * user, in its work dir, where the outputs of the last build already lie as
 * fetched inputs.  Each pass runs every COMMAND in order as `/bin/sh -c
 * COMMAND` in the current directory, with the job's stdin, stdout and stderr;
 * fixpoint.c decides when to stop, with the outputs digested by digest.c
 * (never through a symbolic link).  Exit status: 0 at the fixed point, 3 when
 * --max-passes passes still changed an output, the status of a command that
 * failed (128 + N for one killed by signal N), 2 for bad arguments and 1 for
 * any other failure; a line on stderr says which.  With $DISPATCH_RESULT set,
 * the job's result says how the cycle went: {"passes": K, "converged": BOOL,
 * "changed": [PATH...]}, which the server shows.  Like wait and signal it needs
 * no database, and it drops every capability first thing.
 */
#include "fixpoint.h"
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define EXIT_NO_FIXED_POINT 3
#define DEFAULT_PASSES 10
#define MAX_OUTPUTS 10000		/* as many as a build job may declare */
#define MAX_COMMANDS 100
#define NAMED_MAX 10			/* most outputs named in the "still changed" line */
#define USAGE "usage: dispatch-agent iterate [--max-passes N] --output PATH... -- COMMAND..."

/* What the command line asks for. */
typedef struct Iterate
{
	int			max_passes;
	StrList		outputs;
	StrList		commands;
} Iterate;

static int	option(int argc, char **argv, int *i, const char *name, const char **value);
static int	parse(int argc, char **argv, Iterate *it, char *err, size_t errlen);
static int	run_pass(void *arg, int pass, char *err, size_t errlen);
static int	digest_output(void *arg, const char *output, char out[DIGEST_HEX_LEN + 1], char *err,
						  size_t errlen);
static int	write_result(const FixResult *res, char *err, size_t errlen);
static void say_unconverged(const FixResult *res);

/*
 * Returns 1 when argv[*i] is option name, with *value its value (after "=" or
 * the next argument, which *i then moves to), -1 when it has no value, 0 when it
 * is something else.
 */
static int
option(int argc, char **argv, int *i, const char *name, const char **value)
{
	size_t		n = strlen(name);

	if (strncmp(argv[*i], name, n) != 0 || (argv[*i][n] != '\0' && argv[*i][n] != '='))
		return 0;
	if (argv[*i][n] == '=')
		*value = argv[*i] + n + 1;
	else if (*i + 1 < argc)
		*value = argv[++*i];
	else
		return -1;
	return 1;
}

/* Fills it (initialised) from argv[1..] (argv[0] is "iterate"); returns 0, or -1 with err set. */
static int
parse(int argc, char **argv, Iterate *it, char *err, size_t errlen)
{
	const char *v = NULL;
	char	   *end;
	long		n;
	int			i, passes, output;

	for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
	{
		if ((passes = option(argc, argv, &i, "--max-passes", &v)) < 0 ||
			(passes == 0 && (output = option(argc, argv, &i, "--output", &v)) < 0))
		{
			agent_seterr(err, errlen, "option \"%s\" requires a value", argv[i]);
			return -1;
		}
		if (passes)
		{
			errno = 0;
			n = strtol(v, &end, 10);
			if (errno != 0 || end == v || *end != '\0' || n < 1 || n > FIXPOINT_MAX_PASSES)
			{
				agent_seterr(err, errlen, "--max-passes must be an integer from 1 to %d, not \"%.64s\"",
							 FIXPOINT_MAX_PASSES, v);
				return -1;
			}
			it->max_passes = (int) n;
		}
		else if (!output)
			agent_seterr(err, errlen, "unexpected argument \"%.200s\" before \"--\"", argv[i]);
		else if (v[0] == '\0')
			agent_seterr(err, errlen, "--output must not be empty");
		else if (strlist_find(&it->outputs, v) >= 0)
			agent_seterr(err, errlen, "output \"%.200s\" is given more than once", v);
		else if (it->outputs.n == MAX_OUTPUTS)
			agent_seterr(err, errlen, "at most %d outputs can be given", MAX_OUTPUTS);
		else
		{
			strlist_add(&it->outputs, v);
			continue;
		}
		if (!passes)
			return -1;
	}
	if (it->outputs.n == 0)
		agent_seterr(err, errlen, "at least one --output is required");
	else if (i == argc)
		agent_seterr(err, errlen, "\"--\" and the commands are missing");
	else if (i + 1 == argc)
		agent_seterr(err, errlen, "no command after \"--\"");
	else if (argc - i - 1 > MAX_COMMANDS)
		agent_seterr(err, errlen, "at most %d commands can be given", MAX_COMMANDS);
	else
	{
		for (i++; i < argc; i++)
		{
			if (argv[i][0] == '\0')
			{
				agent_seterr(err, errlen, "a command must not be empty");
				return -1;
			}
			strlist_add(&it->commands, argv[i]);
		}
		return 0;
	}
	return -1;
}

/* fixpoint_run() callback: runs every command of the pass, in order, stopping at the first that fails. */
static int
run_pass(void *arg, int pass, char *err, size_t errlen)
{
	const Iterate *it = arg;

	for (int i = 0; i < it->commands.n; i++)
	{
		const char *cmd = it->commands.items[i];
		int			ws, status;
		pid_t		pid;

		fflush(NULL);			/* nothing of ours written twice by the child */
		if ((pid = fork()) < 0)
		{
			agent_seterr(err, errlen, "could not start a command: %s", strerror(errno));
			return -1;
		}
		if (pid == 0)
		{
			execl("/bin/sh", "sh", "-c", cmd, (char *) NULL);
			fprintf(stderr, "dispatch-agent iterate: could not execute /bin/sh: %s\n", strerror(errno));
			_exit(PROC_EXIT_EXEC_FAILED);
		}
		while (waitpid(pid, &ws, 0) < 0)
			if (errno != EINTR)
			{
				agent_seterr(err, errlen, "could not wait for a command: %s", strerror(errno));
				return -1;
			}
		status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
		if (status == 0)
			continue;
		fprintf(stderr, "dispatch-agent iterate: pass %d: command \"%s\" %s %d\n", pass, cmd,
				WIFEXITED(ws) ? "exited with status" : "was killed by signal",
				WIFEXITED(ws) ? status : WTERMSIG(ws));
		return status;
	}
	return 0;
}

/* fixpoint_run() callback: the SHA-256 of file output, or 0 when there is none. */
static int
digest_output(void *arg, const char *output, char out[DIGEST_HEX_LEN + 1], char *err, size_t errlen)
{
	struct stat st;

	(void) arg;
	if (lstat(output, &st) < 0 && errno == ENOENT)
		return 0;
	return digest_file(output, out, NULL, err, errlen) < 0 ? -1 : 1;
}

/* Writes the cycle's result to $DISPATCH_RESULT when it is set; returns 0, or -1 with err set. */
static int
write_result(const FixResult *res, char *err, size_t errlen)
{
	const char *path = getenv("DISPATCH_RESULT");
	json_t	   *changed = json_array();
	StrBuf		text;
	int			fd, rc = 0;

	if (path == NULL || path[0] == '\0')
	{
		json_decref(changed);
		return 0;
	}
	for (int i = 0; i < res->changed.n; i++)
		json_array_append_new(changed, jsonio_str(res->changed.items[i]));
	sb_init(&text);
	jsonio_put(&text, json_pack("{sisbso}", "passes", res->passes,
								"converged", res->outcome == FIX_CONVERGED, "changed", changed));
	sb_puts(&text, "\n");
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644)) < 0 ||
		write_all(fd, text.data, text.len) < 0)
	{
		agent_seterr(err, errlen, "could not write the result \"%s\": %s", path, strerror(errno));
		rc = -1;
	}
	if (fd >= 0 && close(fd) < 0 && rc == 0)
	{
		agent_seterr(err, errlen, "could not close the result \"%s\": %s", path, strerror(errno));
		rc = -1;
	}
	sb_free(&text);
	return rc;
}

/* Prints that no fixed point was reached and what the last pass changed (the first NAMED_MAX). */
static void
say_unconverged(const FixResult *res)
{
	fprintf(stderr, "dispatch-agent iterate: no fixed point after %d passes: ", res->passes);
	for (int i = 0; i < res->changed.n && i < NAMED_MAX; i++)
		fprintf(stderr, "%s\"%s\"", i > 0 ? ", " : "", res->changed.items[i]);
	if (res->changed.n > NAMED_MAX)
		fprintf(stderr, " and %d more", res->changed.n - NAMED_MAX);
	fprintf(stderr, " still changed\n");
}

/* Runs `dispatch-agent iterate` (argv[0] is "iterate"); returns the exit status. */
int
iterate_cmd_main(int argc, char **argv)
{
	char		err[AGENT_ERRLEN];
	Iterate		it = {.max_passes = DEFAULT_PASSES};
	FixResult	res;
	int			rc;

	if (proc_drop_capabilities(err, sizeof(err)) < 0)
	{
		fprintf(stderr, "dispatch-agent iterate: %s\n", err);
		return EXIT_FAILED;
	}
	strlist_init(&it.outputs);
	strlist_init(&it.commands);
	if (parse(argc, argv, &it, err, sizeof(err)) < 0)
	{
		fprintf(stderr, "dispatch-agent iterate: %s\n%s\n", err, USAGE);
		rc = EXIT_USAGE;
	}
	else if (fixpoint_run(&it.outputs, it.max_passes, run_pass, digest_output, &it, &res, err,
						  sizeof(err)) < 0)
	{
		fprintf(stderr, "dispatch-agent iterate: %s\n", err);
		rc = EXIT_FAILED;
		fixpoint_free(&res);
	}
	else
	{
		if (res.outcome == FIX_FAILED)
			rc = res.status;
		else if (res.outcome == FIX_CONVERGED)
		{
			fprintf(stderr, "dispatch-agent iterate: fixed point after %d pass%s\n", res.passes,
					res.passes == 1 ? "" : "es");
			rc = 0;
		}
		else
		{
			say_unconverged(&res);
			rc = EXIT_NO_FIXED_POINT;
		}
		if (res.outcome != FIX_FAILED && write_result(&res, err, sizeof(err)) < 0)
		{
			fprintf(stderr, "dispatch-agent iterate: %s\n", err);
			rc = EXIT_FAILED;
		}
		fixpoint_free(&res);
	}
	strlist_free(&it.outputs);
	strlist_free(&it.commands);
	return rc;
}
