/*
 * submit.c -- dispatchctl submit: a joblist from a YAML or JSON file (or stdin).
 *
 * The text is read whole (at most YAMLJSON_MAX_BYTES), turned into JSON by lib/
 * (a syntax error names the file's line and column), and handed to
 * dispatch.submit_joblist() as one jsonb parameter: the server validates it.  When it
 * refuses, its detail names the JSON path ("The error is at stages[0].jobs[1].name.")
 * and yaml_json_locate() turns that path back into the line and column in the file,
 * printed compiler-style ("build.yaml:7:15: ..."), so an editor can jump there.
 */
#include "dispatchctl.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "yamljson.h"

static const char path_prefix[] = "The error is at ";

/* Reads all of fd (at most YAMLJSON_MAX_BYTES) into a new buffer; NULL with a message. */
static char *
read_all(int fd, const char *name, size_t *len)
{
	size_t		cap = 65536;
	char	   *buf = malloc(cap);

	*len = 0;
	while (buf)
	{
		ssize_t		n;

		if (*len == cap)
		{
			char	   *grown = cap > YAMLJSON_MAX_BYTES ? NULL : realloc(buf, cap * 2);

			if (grown == NULL)
			{
				ctl_error("%s: the file is larger than %d bytes", name, YAMLJSON_MAX_BYTES);
				free(buf);
				return NULL;
			}
			buf = grown;
			cap *= 2;
		}
		n = read(fd, buf + *len, cap - *len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			ctl_error("could not read %s: %s", name, strerror(errno));
			free(buf);
			return NULL;
		}
		if (n == 0)
			return buf;
		*len += (size_t) n;
	}
	ctl_error("out of memory");
	return NULL;
}

/* Returns the JSON path a server error's detail names (a new string), or NULL. */
static char *
error_path(const PGresult *res)
{
	const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	size_t		len;

	if (detail == NULL || strncmp(detail, path_prefix, strlen(path_prefix)) != 0)
		return NULL;
	detail += strlen(path_prefix);
	len = strlen(detail);
	if (len == 0 || detail[len - 1] != '.')
		return NULL;
	if (strcmp(detail, "the top level.") == 0)
		return strdup("");
	return strndup(detail, len - 1);
}

/* Prints a refused submission; with a JSON path, prefixed by the file's line:column. */
static void
print_refusal(const PGresult *res, const char *name, const char *text, size_t len)
{
	char	   *path = error_path(res);
	int			line;
	int			column;
	char		where[4200];

	if (path && yaml_json_locate(text, len, path, &line, &column))
		snprintf(where, sizeof(where), "%s:%d:%d", name, line, column);
	else
		snprintf(where, sizeof(where), "%s", name);
	conn_print_error(res, where);
	free(path);
}

/* Prints the new joblist: its id (quiet), JSON, or a line and its jobs. */
static int
print_submitted(Ctl *ctl, const char *id, int quiet)
{
	static const Column columns[] = {
		{"job_id", "JOB"}, {"stage", "STAGE"}, {"name", "NAME"}, {"state", "STATE"}, {NULL, NULL}
	};
	const char *params[1] = {id};
	PGresult   *res;
	json_t	   *out;

	if (quiet)
	{
		printf("%s\n", id);
		return EXIT_OK;
	}
	res = conn_exec(ctl, "SELECT job_id, stage, name, state FROM dispatch.job_status"
					" WHERE joblist_id = $1 ORDER BY job_id", 1, params);
	if (res == NULL)
		return EXIT_ERROR;
	if (ctl->json)
	{
		out = json_pack("{sIso}", "joblist_id", (json_int_t) strtoll(id, NULL, 10),
						"jobs", output_rows_json(res));
		PQclear(res);
		return output_json(out);
	}
	printf("joblist %s submitted\n", id);
	output_table(ctl, res, columns);
	PQclear(res);
	return EXIT_OK;
}

/* dispatchctl submit [-q] FILE|- */
int
cmd_submit(Ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {{"quiet", no_argument, NULL, 'q'}, {NULL, 0, NULL, 0}};
	int			quiet = 0;
	int			opt;
	int			fd;
	const char *name;
	char	   *text;
	size_t		len;
	YamlJsonError err;
	json_t	   *spec;
	char	   *json;
	PGresult   *res;
	int			rc = EXIT_ERROR;

	while ((opt = ctl_getopt("submit", argc, argv, "q", opts)) == 'q')
		quiet = 1;
	if (opt != -1)
		return EXIT_USAGE;
	if (argc - optind != 1)
		return ctl_usage_error("submit", "expected one FILE (or - for standard input)");
	name = strcmp(argv[optind], "-") == 0 ? "<stdin>" : argv[optind];
	fd = strcmp(argv[optind], "-") == 0 ? STDIN_FILENO : open(argv[optind], O_RDONLY | O_CLOEXEC);
	if (fd < 0)
	{
		ctl_error("could not open %s: %s", name, strerror(errno));
		return EXIT_ERROR;
	}
	text = read_all(fd, name, &len);
	if (fd != STDIN_FILENO)
		close(fd);
	if (text == NULL)
		return EXIT_ERROR;
	spec = yaml_to_json(text, len, &err);
	if (spec == NULL)
	{
		if (err.line > 0)
			fprintf(stderr, "dispatchctl: %s:%d:%d: %s\n", name, err.line, err.column, err.message);
		else
			fprintf(stderr, "dispatchctl: %s: %s\n", name, err.message);
		free(text);
		return EXIT_ERROR;
	}
	json = json_dumps(spec, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(spec);
	if (json && conn_open(ctl, 1) == EXIT_OK)
	{
		const char *params[1] = {json};

		res = conn_try(ctl, "SELECT dispatch.submit_joblist($1::jsonb)", 1, params);
		if (res && PQresultStatus(res) == PGRES_TUPLES_OK)
			rc = print_submitted(ctl, PQgetvalue(res, 0, 0), quiet);
		else if (res)
			print_refusal(res, name, text, len);
		else
			ctl_error("%s", PQerrorMessage(ctl->conn));
		PQclear(res);
	}
	free(json);
	free(text);
	return rc;
}
