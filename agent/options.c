/*
 * options.c -- the agent's command line.
 *
 * Every option is checked here, before anything touches the disk or the
 * network: a bad value ends the agent with exit status 2 and a message that
 * names the option, the way PostgreSQL's own programs answer a bad switch.
 * Resource types, node names and label keys are checked against the one
 * definition of each pattern (names.c), the same patterns the server enforces,
 * so that the server never has to refuse a registration for its shape.
 * The defaults the server cannot know (one cpu per online CPU, the machine's
 * memory) are added by options_add_defaults() once the options are valid.
 * Jobs need a user to run as (--job-user) unless the operator says, in so
 * many words, that they may run as the agent (options_require_job_user).
 */
#include "agent.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXIT_USAGE 2
#define METRICS_INTERVAL_DEFAULT_S 10
#define METRICS_INTERVAL_MAX_S 86400	/* a day */
#define METRICS_SPOOL_KB_DEFAULT 65536	/* 64 MB */
#define METRICS_SPOOL_KB_MIN 16
#define METRICS_SPOOL_KB_MAX (64LL * 1024 * 1024)	/* 64 GB */
#define WATCH_SETTLE_DEFAULT_MS 20	/* watchman's settle */
#define WATCH_SETTLE_MAX_MS 600000	/* ten minutes */

static void usage(FILE *out);
static int64_t ranged(const char *opt, const char *s, long long min, long long max, const char *required);
static int64_t positive(const char *opt, const char *s);
static const char *nonempty(const char *opt, const char *s);
static void check_utf8(const char *opt, const char *s);
static void check_dir(const char *opt, const char *dir);
static char *split_eq(const char *opt, const char *arg, char **name);
static int type_taken(const Options *o, const char *type);
static void check_type(const Options *o, const char *opt, const char *type);
static void add_watch(Options *o, const char *arg);
static void add_follow(Options *o, const char *arg);

/* Prints the usage text. */
static void
usage(FILE *out)
{
	fprintf(out,
			"dispatch-agent runs pg_dispatch jobs on this machine.\n\n"
			"Usage:\n"
			"  dispatch-agent --dbname CONNINFO --node NAME [OPTION]...\n"
			"  dispatch-agent wait NAME              (in a job: wait for signal NAME)\n"
			"  dispatch-agent signal NAME [JSON]     (in a job: send signal NAME)\n"
			"  dispatch-agent iterate [--max-passes N] --output PATH... -- COMMAND...\n"
			"                                        (in a build job: run the COMMANDs again\n"
			"                                        until the outputs stop changing)\n\n"
			"Options:\n"
			"  -d, --dbname=CONNINFO     libpq connection string or URI (required)\n"
			"  -n, --node=NAME           node name: 1-48 letters, digits, '.', '_', '-' (required)\n"
			"  -r, --resource=TYPE=IDS   offer identified instances; IDS is a comma list with\n"
			"                            Slurm ranges: gpu=[0-1], cpu=cpu[0-7], lic=a,b,n[01-03]\n"
			"                            (default: cpu=0..N-1, one per online CPU)\n"
			"  -a, --amount=TYPE=N       offer an amount resource (default: mem_mb=<RAM in MB>)\n"
			"  -l, --label=KEY=VALUE     node label that jobs can select on\n"
			"  -w, --workdir=DIR         spool directory (default: $STATE_DIRECTORY, else\n"
			"                            $XDG_STATE_HOME/dispatch-agent/NODE, else\n"
			"                            $HOME/.local/state/dispatch-agent/NODE)\n"
			"      --history-file=PATH   the agent's own record of its jobs and presence, one\n"
			"                            JSON object per line (default: WORKDIR/history.jsonl)\n"
			"      --heartbeat-ms=N      heartbeat interval (default: from the server)\n"
			"      --kill-grace-ms=N     SIGTERM-to-SIGKILL grace (default: from the server)\n"
			"      --keep-workdirs       keep job directories after reporting (marked 'reported')\n"
			"      --metrics-interval=N  seconds between host metric samples (default 10, 0: none)\n"
			"      --metrics-spool-max=KB  most disk the queue of unsent samples may take; the\n"
			"                            oldest are dropped first (default 65536: 64 MB)\n"
			"      --plugin-dir=DIR      run the executables in DIR for site metrics every sample\n"
			"      --print-metrics       print one metrics sample as JSON (after 1 s) and exit;\n"
			"                            needs no --dbname or --node\n"
			"      --job-user=NAME       run every job as the unprivileged OS user NAME; the\n"
			"                            agent needs CAP_SETUID, CAP_SETGID and CAP_CHOWN\n"
			"      --insecure-run-jobs-as-agent  run jobs as the agent's own user instead (they\n"
			"                            can then read its credentials and act as the agent)\n"
			"      --watch=WS=DIR        watch directory DIR as workspace WS and report its\n"
			"                            files' changes (repeatable; see docs/watching.md)\n"
			"      --watch-settle-ms=N   quiet time before a changed file is hashed (default 20)\n"
			"      --follow=WS=GLOB      stream the bytes appended to WS's files matching GLOB\n"
			"                            (relative to its DIR) instead of hashing them\n"
			"      --allow-root          run even with effective uid 0\n"
			"  -v, --verbose             log debug lines too\n"
			"  -h, --help                show this help and exit\n"
			"  -V, --version             show the version and exit\n\n"
			"Signals: SIGTERM/SIGINT drain (a second one exits at once, jobs keep running),\n"
			"SIGHUP polls and reconnects now.  Exit status: 0 clean, 1 runtime failure, 2 usage.\n");
}

/* Reports a usage error and exits with status 2. */
void
options_die_usage(const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "dispatch-agent: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry \"dispatch-agent --help\" for more information.\n");
	exit(EXIT_USAGE);
}

/* Parses a decimal option value from min to max or exits with a usage error saying what is required. */
static int64_t
ranged(const char *opt, const char *s, long long min, long long max, const char *required)
{
	char	   *end;
	long long	v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		options_die_usage("invalid value \"%s\" for %s: %s is required", s, opt, required);
	return v;
}

/* Parses a positive decimal option value or exits with a usage error. */
static int64_t
positive(const char *opt, const char *s)
{
	return ranged(opt, s, 1, LLONG_MAX, "a positive integer");
}

/* Returns s, or exits with a usage error when it is empty. */
static const char *
nonempty(const char *opt, const char *s)
{
	if (s[0] == '\0')
		options_die_usage("%s must not be empty", opt);
	return s;
}

/* Exits with a usage error unless s is valid UTF-8 (it goes to the server as JSON text). */
static void
check_utf8(const char *opt, const char *s)
{
	char	   *copy = xstrdup(s);
	int			bad;

	utf8_sanitize(copy, strlen(copy), 1);
	bad = strcmp(copy, s) != 0;
	free(copy);
	if (bad)
		options_die_usage("%s must be valid UTF-8", opt);
}

/* Exits with a usage error unless dir is a directory. */
static void
check_dir(const char *opt, const char *dir)
{
	struct stat st;

	if (stat(dir, &st) < 0)
		options_die_usage("invalid value \"%s\" for %s: %s", dir, opt, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		options_die_usage("invalid value \"%s\" for %s: not a directory", dir, opt);
}

/* Splits a copy of "NAME=VALUE" (argv stays intact for ps) into *name and the returned value. */
static char *
split_eq(const char *opt, const char *arg, char **name)
{
	char	   *eq;

	*name = xstrdup(arg);
	eq = strchr(*name, '=');
	if (eq == NULL || eq == *name)
		options_die_usage("invalid value \"%s\" for %s: expected NAME=VALUE", arg, opt);
	*eq = '\0';
	return eq + 1;
}

/* Returns 1 when type is already offered as an identified or amount resource. */
static int
type_taken(const Options *o, const char *type)
{
	size_t		n = strlen(type);

	for (int i = 0; i < o->nres; i++)
		if (strcmp(o->res[i].type, type) == 0)
			return 1;
	for (int i = 0; i < o->amounts.n; i++)
		if (strncmp(o->amounts.items[i], type, n) == 0 && o->amounts.items[i][n] == '=')
			return 1;
	return 0;
}

/* Checks a resource type from option opt; exits with a usage error when invalid or repeated. */
static void
check_type(const Options *o, const char *opt, const char *type)
{
	if (!names_type_ok(type))
		options_die_usage("invalid resource type \"%s\" for %s: a type is a lower-case letter followed by lower-case letters, digits or underscores",
				  type, opt);
	if (type_taken(o, type))
		options_die_usage("resource type \"%s\" is given more than once", type);
}

/* Adds --watch WS=DIR: a valid, new workspace name and an existing directory, made absolute. */
static void
add_watch(Options *o, const char *arg)
{
	char	   *ws,
			   *dir = split_eq("--watch", arg, &ws),
			   *abs;

	if (!names_workspace_ok(ws))
		options_die_usage("invalid workspace name \"%s\" for --watch: a workspace name is 1 to 63 letters, digits, \".\", \"_\" or \"-\", starting with a letter or digit",
						  ws);
	for (int i = 0; i < o->watches.n; i += 2)
		if (strcmp(o->watches.items[i], ws) == 0)
			options_die_usage("workspace \"%s\" is given more than once", ws);
	check_dir("--watch", nonempty("--watch", dir));
	if ((abs = realpath(dir, NULL)) == NULL)
		options_die_usage("invalid value \"%s\" for --watch: %s", dir, strerror(errno));
	strlist_add(&o->watches, ws);
	strlist_add(&o->watches, abs);
	free(abs);
	free(ws);
}

/* Adds --follow WS=GLOB for a workspace that --watch names (given before or after). */
static void
add_follow(Options *o, const char *arg)
{
	char	   *ws,
			   *glob = split_eq("--follow", arg, &ws);

	nonempty("--follow", glob);
	if (glob[0] == '/')
		options_die_usage("invalid value \"%s\" for --follow: the pattern is relative to the workspace's directory", arg);
	strlist_add(&o->follows, ws);
	strlist_add(&o->follows, glob);
	free(ws);
}

/* Fills o from argv, exiting with status 2 on any bad option. */
void
options_parse(int argc, char **argv, Options *o)
{
	enum
	{
		OPT_ALLOW_ROOT = 256, OPT_HEARTBEAT, OPT_GRACE, OPT_KEEP, OPT_METRICS, OPT_SPOOL_MAX,
		OPT_PLUGINS, OPT_PRINT_METRICS, OPT_HISTORY, OPT_JOB_USER, OPT_INSECURE_JOBS,
		OPT_WATCH, OPT_SETTLE, OPT_FOLLOW
	};
	static const struct option longopts[] = {
		{"dbname", required_argument, NULL, 'd'},
		{"node", required_argument, NULL, 'n'},
		{"resource", required_argument, NULL, 'r'},
		{"amount", required_argument, NULL, 'a'},
		{"label", required_argument, NULL, 'l'},
		{"workdir", required_argument, NULL, 'w'},
		{"allow-root", no_argument, NULL, OPT_ALLOW_ROOT},
		{"job-user", required_argument, NULL, OPT_JOB_USER},
		{"insecure-run-jobs-as-agent", no_argument, NULL, OPT_INSECURE_JOBS},
		{"history-file", required_argument, NULL, OPT_HISTORY},
		{"heartbeat-ms", required_argument, NULL, OPT_HEARTBEAT},
		{"kill-grace-ms", required_argument, NULL, OPT_GRACE},
		{"keep-workdirs", no_argument, NULL, OPT_KEEP},
		{"metrics-interval", required_argument, NULL, OPT_METRICS},
		{"metrics-spool-max", required_argument, NULL, OPT_SPOOL_MAX},
		{"plugin-dir", required_argument, NULL, OPT_PLUGINS},
		{"print-metrics", no_argument, NULL, OPT_PRINT_METRICS},
		{"watch", required_argument, NULL, OPT_WATCH},
		{"watch-settle-ms", required_argument, NULL, OPT_SETTLE},
		{"follow", required_argument, NULL, OPT_FOLLOW},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0}
	};
	char		err[AGENT_ERRLEN];
	int			c;

	memset(o, 0, sizeof(*o));
	o->metrics_interval_s = METRICS_INTERVAL_DEFAULT_S;
	o->metrics_spool_kb = METRICS_SPOOL_KB_DEFAULT;
	strlist_init(&o->amounts);
	strlist_init(&o->labels);
	strlist_init(&o->watches);
	strlist_init(&o->follows);
	o->watch_settle_ms = WATCH_SETTLE_DEFAULT_MS;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":d:n:r:a:l:w:vhV", longopts, NULL)) != -1)
	{
		char	   *name,
				   *value;

		switch (c)
		{
			case 'd':
				o->dbname = optarg;
				break;
			case 'n':
				if (!names_node_ok(optarg))
					options_die_usage("invalid node name \"%s\": a node name is 1 to 48 letters, digits, \".\", \"_\" or \"-\", starting with a letter or digit",
							  optarg);
				o->node = optarg;
				break;
			case 'r':
				value = split_eq("--resource", optarg, &name);
				check_utf8("--resource", value);
				check_type(o, "--resource", name);
				o->res = xrealloc(o->res, sizeof(Resource) * (size_t) (o->nres + 1));
				o->res[o->nres].type = name;
				strlist_init(&o->res[o->nres].ids);
				if (idlist_parse(value, &o->res[o->nres].ids, err, sizeof(err)) < 0)
					options_die_usage("invalid id list \"%s\" for resource \"%s\": %s", value, name, err);
				o->nres++;
				break;
			case 'a':
				value = split_eq("--amount", optarg, &name);
				check_type(o, "--amount", name);
				positive("--amount", value);
				strlist_add(&o->amounts, optarg);
				free(name);
				break;
			case 'l':
				value = split_eq("--label", optarg, &name);
				if (!names_label_key_ok(name) || strcmp(name, "arch") == 0 || strcmp(name, "os") == 0 ||
					strcmp(name, "hostname") == 0 || strcmp(name, "node") == 0)
					options_die_usage("invalid label key \"%s\": a label key is 1 to 63 letters, digits, \"_\", \".\" or \"-\"; arch, os, hostname and node are reserved",
							  name);
				for (int i = 0; i < o->labels.n; i += 2)
					if (strcmp(o->labels.items[i], name) == 0)
						options_die_usage("label \"%s\" is given more than once", name);
				strlist_add(&o->labels, name);
				check_utf8("--label", value);
				strlist_add(&o->labels, value);
				free(name);
				break;
			case 'w':
				o->workdir = optarg;
				break;
			case OPT_HISTORY:
				o->history_file = nonempty("--history-file", optarg);
				break;
			case OPT_ALLOW_ROOT:
				o->allow_root = 1;
				break;
			case OPT_JOB_USER:
				o->job_user = nonempty("--job-user", optarg);
				break;
			case OPT_INSECURE_JOBS:
				o->insecure_jobs = 1;
				break;
			case OPT_HEARTBEAT:
				o->heartbeat_ms = positive("--heartbeat-ms", optarg);
				break;
			case OPT_GRACE:
				o->kill_grace_ms = positive("--kill-grace-ms", optarg);
				break;
			case OPT_KEEP:
				o->keep_workdirs = 1;
				break;
			case OPT_METRICS:
				o->metrics_interval_s = ranged("--metrics-interval", optarg, 0, METRICS_INTERVAL_MAX_S,
											   "a number of seconds from 0 to 86400");
				break;
			case OPT_SPOOL_MAX:
				o->metrics_spool_kb = ranged("--metrics-spool-max", optarg, METRICS_SPOOL_KB_MIN, METRICS_SPOOL_KB_MAX,
											 "a number of kilobytes from 16 to 67108864");
				break;
			case OPT_PLUGINS:
				check_dir("--plugin-dir", optarg);
				o->plugin_dir = optarg;
				break;
			case OPT_PRINT_METRICS:
				o->print_metrics = 1;
				break;
			case OPT_WATCH:
				add_watch(o, optarg);
				break;
			case OPT_SETTLE:
				o->watch_settle_ms = ranged("--watch-settle-ms", optarg, 1, WATCH_SETTLE_MAX_MS,
											"a number of milliseconds from 1 to 600000");
				break;
			case OPT_FOLLOW:
				add_follow(o, optarg);
				break;
			case 'v':
				agent_log_verbose = 1;
				break;
			case 'h':
				usage(stdout);
				exit(0);
			case 'V':
				printf("dispatch-agent %s\n", AGENT_VERSION);
				exit(0);
			case ':':
				options_die_usage("option %s requires a value", argv[optind - 1]);
			default:
				options_die_usage("unrecognized option \"%s\"", argv[optind - 1]);
		}
	}
	if (optind < argc)
		options_die_usage("unexpected argument \"%s\"", argv[optind]);
	if (o->plugin_dir != NULL && o->metrics_interval_s == 0)
		options_die_usage("--plugin-dir cannot be used with --metrics-interval 0: plugins run with the metrics");
	for (int i = 0; i < o->follows.n; i += 2)
		if (strlist_find(&o->watches, o->follows.items[i]) < 0)	/* dirs start with '/': no name matches one */
			options_die_usage("--follow names workspace \"%s\", which no --watch gives", o->follows.items[i]);
	if (o->print_metrics)
		return;
	if (o->dbname == NULL)
		options_die_usage("--dbname is required");
	if (o->node == NULL)
		options_die_usage("--node is required");
	if (o->job_user != NULL && o->insecure_jobs)
		options_die_usage("--job-user and --insecure-run-jobs-as-agent cannot be used together");
}

/*
 * Exits with a usage error unless jobs have a user to run as: a job running
 * as the agent's own user can read the agent's credentials and speak for it,
 * so that takes an option nobody gives by accident.
 */
void
options_require_job_user(const Options *o)
{
	if (o->job_user == NULL && !o->insecure_jobs)
		options_die_usage("no job user: give --job-user NAME to run jobs as that unprivileged user (or --insecure-run-jobs-as-agent to run them as the agent's own user, which lets every job read the agent's credentials)");
}

/* Adds the defaults: one cpu per online CPU, mem_mb = physical memory. */
void
options_add_defaults(Options *o)
{
	if (!type_taken(o, "cpu"))
	{
		long		n = sysconf(_SC_NPROCESSORS_ONLN);
		char		id[16];

		o->res = xrealloc(o->res, sizeof(Resource) * (size_t) (o->nres + 1));
		o->res[o->nres].type = "cpu";
		strlist_init(&o->res[o->nres].ids);
		for (long i = 0; i < (n > 0 ? n : 1); i++)
		{
			snprintf(id, sizeof(id), "%ld", i);
			strlist_add(&o->res[o->nres].ids, id);
		}
		o->nres++;
	}
	if (!type_taken(o, "mem_mb"))
	{
		char		def[64];

		snprintf(def, sizeof(def), "mem_mb=%lld",
				 (long long) sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE) / (1024 * 1024));
		strlist_add(&o->amounts, def);
	}
}
