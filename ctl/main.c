/*
 * main.c -- dispatchctl's command line: the command table, the options every command
 * shares, --help, and the exit codes.
 *
 * "dispatchctl [OPTIONS] COMMAND [ARGS]": the shared options (-d/--dbname, --json,
 * --color, --help) may stand before the command or among its own options, so
 * "dispatchctl status --json" and "dispatchctl --json status" are the same.  A bad
 * command line prints one line saying what is wrong and exits with EXIT_USAGE, before
 * anything connects.
 */
#include "dispatchctl.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CTL_VERSION "0.1.0"

static const char common_usage[] =
	"Options of every command:\n"
	"  -d, --dbname=CONNINFO  the database (a connection string, URI or name; default:\n"
	"                         libpq's PG* variables and service file)\n"
	"      --json             print JSON for scripts instead of tables\n"
	"      --color=WHEN       colour states: auto (a terminal, unless NO_COLOR), always, never\n"
	"  -h, --help             show this help\n";

static const Command commands[] = {
	{"submit", "submit a joblist written in YAML or JSON",
		"submit [-q] FILE|-\n"
		"  -q, --quiet   print only the joblist's id\n", cmd_submit},
	{"status", "list joblists, or show one with its jobs",
		"status [--all] [--limit N] [JOBLIST]\n"
		"  JOBLIST       a joblist id, or a name (the latest joblist of that name)\n"
		"  --all         also joblists that finished more than a day ago\n"
		"  --limit N     at most N joblists (default 50)\n", cmd_status},
	{"jobs", "list jobs",
		"jobs [--joblist JOBLIST] [--state STATE] [--node NODE] [--limit N]\n"
		"  --limit N     at most N jobs, newest first (default 100)\n", cmd_jobs},
	{"logs", "print a job's output; -f follows it until the job ends",
		"logs [-f] [--stream stdout|stderr] [--raw] JOB\n"
		"  -f, --follow  print new output as it arrives; exit with the job's exit status\n"
		"  --stream S    only stdout or only stderr (default: both, each to its own)\n"
		"  --raw         print control characters as they are, even on a terminal\n", cmd_logs},
	{"wait", "wait until a joblist finishes; the exit status follows its state",
		"wait [--timeout SECONDS] JOBLIST\n"
		"  exit status: 0 succeeded, 3 failed, 4 cancelled, 6 --timeout passed\n", cmd_wait},
	{"cancel", "cancel joblists, or one job",
		"cancel JOBLIST...\n"
		"cancel --job JOB\n", cmd_cancel},
	{"build", "rebuild a file of a workspace (and what it needs that is not fresh)",
		"build [--wait [--timeout SECONDS]] WORKSPACE PATH\n"
		"  PATH          a file a rule of the workspace makes\n"
		"  --wait        wait until the rebuild that builds it finishes; exit status as\n"
		"                wait's: 0 succeeded, 3 failed, 4 cancelled, 6 --timeout passed\n",
		cmd_build},
	{"artefacts", "list the files of workspaces and their states",
		"artefacts [--limit N] [WORKSPACE]\n"
		"  WORKSPACE     only its files\n"
		"  --limit N     at most N files (default 1000)\n", cmd_artefacts},
	{"nodes", "list nodes", "nodes\n", cmd_nodes},
	{"resources", "list resource instances and who holds them", "resources [--node NODE]\n",
		cmd_resources},
	{"goals", "list goals", "goals\n", cmd_goals},
	{"alerts", "list alerts that are pending or firing", "alerts\n", cmd_alerts},
	{"top", "nodes' latest metrics, refreshed",
		"top [--interval SECONDS] [--count N]\n"
		"  --interval S  seconds between refreshes (default 2)\n"
		"  --count N     stop after N refreshes (default: until interrupted)\n", cmd_top},
	{NULL, NULL, NULL, NULL}
};

/* Prints "dispatchctl: message" on stderr. */
void
ctl_error(const char *fmt,...)
{
	va_list		ap;

	fputs("dispatchctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Prints a usage error of command (NULL: none yet) and returns EXIT_USAGE. */
int
ctl_usage_error(const char *command, const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "dispatchctl%s%s: ", command ? " " : "", command ? command : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry \"dispatchctl %s%s--help\".\n", command ? command : "",
			command ? " " : "");
	return EXIT_USAGE;
}

/* Parses s as an integer what in [lo, hi] into *out; EXIT_USAGE with a message if not. */
int
ctl_parse_count(const char *command, const char *what, const char *s, long lo, long hi,
				long *out)
{
	char	   *end;

	errno = 0;
	*out = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || *out < lo || *out > hi)
		return ctl_usage_error(command, "%s must be an integer from %ld to %ld, not \"%s\"",
							   what, lo, hi, s);
	return EXIT_OK;
}

/* getopt_long for a command's own options: returns the next option's value, -1 at the
   end, or -2 after printing a usage error (an unknown option, a missing value). */
int
ctl_getopt(const char *command, int argc, char **argv, const char *shortopts,
		   const struct option *opts)
{
	int			opt;

	opterr = 0;
	opt = getopt_long(argc, argv, shortopts, opts, NULL);
	if (opt == '?' || opt == ':')
	{
		ctl_usage_error(command, "unknown option or missing value in \"%s\"", argv[optind - 1]);
		return -2;
	}
	return opt;
}

/* Returns 1 when s is an id: 1 to 18 digits (a bigint, whatever the digits). */
int
ctl_is_id(const char *s)
{
	size_t		n = strspn(s, "0123456789");

	return n > 0 && n <= 18 && s[n] == '\0';
}

/* Returns the command called name, or NULL. */
static const Command *
find_command(const char *name)
{
	for (const Command *c = commands; c->name; c++)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

/* Prints the help of command (NULL: the overview) on stdout; returns EXIT_OK. */
int
ctl_help(const char *command)
{
	const Command *c = command ? find_command(command) : NULL;

	if (c)
	{
		printf("dispatchctl %s: %s.\n\nUsage: dispatchctl %s\n%s", c->name, c->summary,
			   c->usage, common_usage);
		return EXIT_OK;
	}
	printf("dispatchctl: the command line of pg_dispatch.\n\n"
		   "Usage: dispatchctl [OPTIONS] COMMAND [ARGS]\n\nCommands:\n");
	for (c = commands; c->name; c++)
		printf("  %-10s %s\n", c->name, c->summary);
	printf("\n%s      --version          print the version\n\n"
		   "\"dispatchctl COMMAND --help\" shows a command's options; man dispatchctl has it all.\n",
		   common_usage);
	return EXIT_OK;
}

/* Returns 1 when argv holds -h or --help (before a "--"). */
int
ctl_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			return 1;
	return 0;
}

/* Applies --color=WHEN (NULL: auto) to ctl; EXIT_USAGE for a bad WHEN. */
static int
set_color(Ctl *ctl, const char *when)
{
	const char *no_color = getenv("NO_COLOR");

	if (when == NULL || strcmp(when, "auto") == 0)
		ctl->color = isatty(STDOUT_FILENO) && !(no_color && no_color[0]);
	else if (strcmp(when, "always") == 0)
		ctl->color = 1;
	else if (strcmp(when, "never") == 0)
		ctl->color = 0;
	else
		return ctl_usage_error(NULL, "--color must be auto, always or never, not \"%s\"", when);
	return EXIT_OK;
}

/* Takes the shared options out of argv (the command's own stay, in order); returns
   EXIT_OK or EXIT_USAGE.  *argc is updated. */
static int
take_common_options(Ctl *ctl, int *argc, char **argv, const char **color)
{
	int			out = 1;

	for (int i = 1; i < *argc; i++)
	{
		const char *a = argv[i];
		const char *value = NULL;

		if (strcmp(a, "--") == 0)
		{
			while (i < *argc)
				argv[out++] = argv[i++];
			break;
		}
		if (strcmp(a, "-d") == 0 || strcmp(a, "--dbname") == 0 || strcmp(a, "--color") == 0)
		{
			if (i + 1 >= *argc)
				return ctl_usage_error(NULL, "option %s needs a value", a);
			value = argv[++i];
		}
		else if (strncmp(a, "--dbname=", 9) == 0 || strncmp(a, "--color=", 8) == 0)
			value = strchr(a, '=') + 1;
		else if (strncmp(a, "-d", 2) == 0 && a[2] != '\0')
			value = a + 2;
		else if (strcmp(a, "--json") == 0)
		{
			ctl->json = 1;
			continue;
		}
		else
		{
			argv[out++] = argv[i];
			continue;
		}
		if (a[1] == 'd' || strncmp(a, "--dbname", 8) == 0)
			ctl->dbname = value;
		else
			*color = value;
	}
	*argc = out;
	argv[out] = NULL;
	return EXIT_OK;
}

/* Parses the shared options, finds the command and runs it; returns its exit status. */
int
main(int argc, char **argv)
{
	Ctl			ctl = {0};
	const char *color = NULL;
	const Command *c;
	int			rc;

	rc = take_common_options(&ctl, &argc, argv, &color);
	if (rc == EXIT_OK)
		rc = set_color(&ctl, color);
	if (rc != EXIT_OK)
		return rc;
	if (argc < 2)
		return ctl_usage_error(NULL, "no command given");
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)
		return ctl_help(NULL);
	if (strcmp(argv[1], "help") == 0)
	{
		if (argc > 2 && find_command(argv[2]) == NULL)
			return ctl_usage_error(NULL, "unknown command \"%s\"", argv[2]);
		return ctl_help(argc > 2 ? argv[2] : NULL);
	}
	if (strcmp(argv[1], "--version") == 0)
	{
		printf("dispatchctl %s\n", CTL_VERSION);
		return EXIT_OK;
	}
	if (argv[1][0] == '-')
		return ctl_usage_error(NULL, "unknown option \"%s\"", argv[1]);
	c = find_command(argv[1]);
	if (c == NULL)
		return ctl_usage_error(NULL, "unknown command \"%s\"", argv[1]);
	if (ctl_wants_help(argc - 1, argv + 1))
		return ctl_help(c->name);
	rc = c->run(&ctl, argc - 1, argv + 1);
	conn_close(&ctl);
	return rc;
}
