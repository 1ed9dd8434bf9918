/*
 * main.c -- dispatch-agent: options and the event loop.
 *
 * The agent is one thread around one poll() over three descriptors: the
 * libpq socket (NOTIFY on the node's channel), the spool's inotify fd (job
 * output and status files) and a self-pipe that the signal handlers write
 * (SIGCHLD, SIGTERM, SIGINT, SIGHUP, and SIGUSR1 from the metrics sampler;
 * handlers do nothing else).  Timers for the heartbeat, reconnection backoff,
 * the metrics queue, the presence line and the drain deadline bound the
 * sleep.  Jobs run in detached supervisors (runner.c), so the loop may lose
 * its database, crash or restart without disturbing them; whatever could not
 * be reported waits in the spool (jobs.c) until the next connection.
 */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define EXIT_USAGE 2
#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 4000		/* back within seconds of a failover, whatever the heartbeat */
#define DRAIN_REPORT_MS 10000	/* how long a drained agent keeps trying to report results */
#define METRICS_INTERVAL_MAX 86400	/* seconds: a day */
#define PRESENCE_MS 60000			/* a presence line in the history file this often */
#define METRICS_SPOOL_KB 65536		/* default bound of the metrics queue: 64 MB */
#define METRICS_SPOOL_KB_MAX (64LL * 1024 * 1024)	/* 64 GB */

typedef struct Resource
{
	char	   *type;
	StrList		ids;
} Resource;

typedef struct Options
{
	const char *dbname;
	const char *node;
	const char *workdir;
	const char *history_file;	/* NULL: <workdir>/history.jsonl */
	Resource   *res;
	int			nres;
	StrList		amounts;		/* "type=N" */
	StrList		labels;			/* "key=value" */
	int			allow_root;
	int64_t		heartbeat_ms;	/* 0: from the server */
	int64_t		kill_grace_ms;	/* 0: from the server */
	int			keep_workdirs;
	int64_t		metrics_interval_s; /* 0: no metrics */
	int64_t		metrics_spool_kb;	/* bound of the metrics queue */
	const char *plugin_dir;		/* NULL: no plugins */
	int			print_metrics;
} Options;

/* The loop's state. */
typedef struct Agent
{
	Options    *opt;
	AgentConf	conf;
	Conn	   *conn;
	int			connected;		/* registered and listening on this connection */
	int			need_register;
	int			want_poll;
	int64_t		heartbeat_ms;
	int64_t		next_tick;
	int64_t		next_connect;
	int64_t		backoff_ms;
	int			draining;
	int64_t		drain_deadline;
	int			drain_cancelled;
	int64_t		drain_exit_at;	/* all jobs ended: exit once reported or at this time */
	int64_t		next_presence;
	Metrics		metrics;		/* interval_ms 0: none */
	int64_t		next_metrics;	/* check the sampler, send the queue */
} Agent;

static int	sig_pipe[2] = {-1, -1};

static void on_signal(int signo);
static void usage(FILE *out);
static void die_usage(const char *fmt,...) __attribute__((format(printf, 1, 2), noreturn));
static int64_t ranged(const char *opt, const char *s, long long min, long long max, const char *required);
static int64_t positive(const char *opt, const char *s);
static void check_dir(const char *opt, const char *dir);
static char *split_eq(const char *opt, const char *arg, char **name);
static int type_taken(const Options *o, const char *type);
static void check_type(const Options *o, const char *opt, const char *type);
static int name_ok(const char *s, int label);
static void parse_options(int argc, char **argv, Options *o);
static void add_defaults(Options *o);
static int mkdir_p(const char *dir, char *err, size_t errlen);
static int setup_workdir(const Options *o, char *out, size_t outlen, char *err, size_t errlen);
static void build_info(const Agent *a, StrBuf *sb);
static int register_node(Agent *a, int listen);
static void send_drain(Agent *a);
static void establish(Agent *a);
static int64_t backoff_next(const Agent *a);
static void tick(Agent *a);
static void begin_drain(Agent *a);
static void record_presence(Agent *a);
static int handle_signals(Agent *a);
static int setup_signals(char *err, size_t errlen);
static int next_timeout(const Agent *a, int64_t now);
static int run(Agent *a);
static int print_metrics(const Options *o);

/* Signal handler: hands the signal number to the loop through the self-pipe. */
static void
on_signal(int signo)
{
	int			saved = errno;
	unsigned char b = (unsigned char) signo;

	if (write(sig_pipe[1], &b, 1) < 0)
	{
		/* pipe full: the loop has enough wake-ups pending already */
	}
	errno = saved;
}

/* Prints the usage text. */
static void
usage(FILE *out)
{
	fprintf(out,
			"dispatch-agent runs pg_dispatch jobs on this machine.\n\n"
			"Usage:\n"
			"  dispatch-agent --dbname CONNINFO --node NAME [OPTION]...\n\n"
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
			"      --allow-root          run even with effective uid 0\n"
			"  -v, --verbose             log debug lines too\n"
			"  -h, --help                show this help and exit\n"
			"  -V, --version             show the version and exit\n\n"
			"Signals: SIGTERM/SIGINT drain (a second one exits at once, jobs keep running),\n"
			"SIGHUP polls and reconnects now.  Exit status: 0 clean, 1 runtime failure, 2 usage.\n");
}

/* Reports a usage error and exits with status 2. */
static void
die_usage(const char *fmt,...)
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
		die_usage("invalid value \"%s\" for %s: %s is required", s, opt, required);
	return v;
}

/* Parses a positive decimal option value or exits with a usage error. */
static int64_t
positive(const char *opt, const char *s)
{
	return ranged(opt, s, 1, LLONG_MAX, "a positive integer");
}

/* Exits with a usage error unless dir is a directory. */
static void
check_dir(const char *opt, const char *dir)
{
	struct stat st;

	if (stat(dir, &st) < 0)
		die_usage("invalid value \"%s\" for %s: %s", dir, opt, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		die_usage("invalid value \"%s\" for %s: not a directory", dir, opt);
}

/* Splits a copy of "NAME=VALUE" (argv stays intact for ps) into *name and the returned value. */
static char *
split_eq(const char *opt, const char *arg, char **name)
{
	char	   *eq;

	*name = xstrdup(arg);
	eq = strchr(*name, '=');
	if (eq == NULL || eq == *name)
		die_usage("invalid value \"%s\" for %s: expected NAME=VALUE", arg, opt);
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
	if (!agent_type_name_ok(type))
		die_usage("invalid resource type \"%s\" for %s: a type is a lower-case letter followed by lower-case letters, digits or underscores",
				  type, opt);
	if (type_taken(o, type))
		die_usage("resource type \"%s\" is given more than once", type);
}

/* Returns 1 when s matches ^[A-Za-z0-9][A-Za-z0-9._-]{0,47}$ (node) or, for labels, ^[A-Za-z0-9_.-]{1,63}$. */
static int
name_ok(const char *s, int label)
{
	size_t		n = strlen(s);

	if (n == 0 || n > (label ? 63u : 48u) || (!label && (s[0] == '.' || s[0] == '_' || s[0] == '-')))
		return 0;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

/* Fills o from argv, exiting with status 2 on any bad option. */
static void
parse_options(int argc, char **argv, Options *o)
{
	enum
	{
		OPT_ALLOW_ROOT = 256, OPT_HEARTBEAT, OPT_GRACE, OPT_KEEP, OPT_METRICS, OPT_SPOOL_MAX,
		OPT_PLUGINS, OPT_PRINT_METRICS, OPT_HISTORY
	};
	static const struct option longopts[] = {
		{"dbname", required_argument, NULL, 'd'},
		{"node", required_argument, NULL, 'n'},
		{"resource", required_argument, NULL, 'r'},
		{"amount", required_argument, NULL, 'a'},
		{"label", required_argument, NULL, 'l'},
		{"workdir", required_argument, NULL, 'w'},
		{"allow-root", no_argument, NULL, OPT_ALLOW_ROOT},
		{"history-file", required_argument, NULL, OPT_HISTORY},
		{"heartbeat-ms", required_argument, NULL, OPT_HEARTBEAT},
		{"kill-grace-ms", required_argument, NULL, OPT_GRACE},
		{"keep-workdirs", no_argument, NULL, OPT_KEEP},
		{"metrics-interval", required_argument, NULL, OPT_METRICS},
		{"metrics-spool-max", required_argument, NULL, OPT_SPOOL_MAX},
		{"plugin-dir", required_argument, NULL, OPT_PLUGINS},
		{"print-metrics", no_argument, NULL, OPT_PRINT_METRICS},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0}
	};
	char		err[AGENT_ERRLEN];
	int			c;

	memset(o, 0, sizeof(*o));
	o->metrics_interval_s = 10;
	o->metrics_spool_kb = METRICS_SPOOL_KB;
	strlist_init(&o->amounts);
	strlist_init(&o->labels);
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
				if (!name_ok(optarg, 0))
					die_usage("invalid node name \"%s\": a node name is 1 to 48 letters, digits, \".\", \"_\" or \"-\", starting with a letter or digit",
							  optarg);
				o->node = optarg;
				break;
			case 'r':
				value = split_eq("--resource", optarg, &name);
				check_type(o, "--resource", name);
				o->res = xrealloc(o->res, sizeof(Resource) * (size_t) (o->nres + 1));
				o->res[o->nres].type = name;
				strlist_init(&o->res[o->nres].ids);
				if (idlist_parse(value, &o->res[o->nres].ids, err, sizeof(err)) < 0)
					die_usage("invalid id list \"%s\" for resource \"%s\": %s", value, name, err);
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
				if (!name_ok(name, 1) || strcmp(name, "arch") == 0 || strcmp(name, "os") == 0 ||
					strcmp(name, "hostname") == 0 || strcmp(name, "node") == 0)
					die_usage("invalid label key \"%s\": a label key is 1 to 63 letters, digits, \"_\", \".\" or \"-\"; arch, os, hostname and node are reserved",
							  name);
				for (int i = 0; i < o->labels.n; i += 2)
					if (strcmp(o->labels.items[i], name) == 0)
						die_usage("label \"%s\" is given more than once", name);
				strlist_add(&o->labels, name);
				strlist_add(&o->labels, value);
				free(name);
				break;
			case 'w':
				o->workdir = optarg;
				break;
			case OPT_HISTORY:
				if (optarg[0] == '\0')
					die_usage("--history-file must not be empty");
				o->history_file = optarg;
				break;
			case OPT_ALLOW_ROOT:
				o->allow_root = 1;
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
				o->metrics_interval_s = ranged("--metrics-interval", optarg, 0, METRICS_INTERVAL_MAX,
											   "a number of seconds from 0 to 86400");
				break;
			case OPT_SPOOL_MAX:
				o->metrics_spool_kb = ranged("--metrics-spool-max", optarg, 16, METRICS_SPOOL_KB_MAX,
											 "a number of kilobytes from 16 to 67108864");
				break;
			case OPT_PLUGINS:
				check_dir("--plugin-dir", optarg);
				o->plugin_dir = optarg;
				break;
			case OPT_PRINT_METRICS:
				o->print_metrics = 1;
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
				die_usage("option %s requires a value", argv[optind - 1]);
			default:
				die_usage("unrecognized option \"%s\"", argv[optind - 1]);
		}
	}
	if (optind < argc)
		die_usage("unexpected argument \"%s\"", argv[optind]);
	if (o->plugin_dir != NULL && o->metrics_interval_s == 0)
		die_usage("--plugin-dir cannot be used with --metrics-interval 0: plugins run with the metrics");
	if (o->print_metrics)
		return;
	if (o->dbname == NULL)
		die_usage("--dbname is required");
	if (o->node == NULL)
		die_usage("--node is required");
}

/* Adds the defaults: one cpu per online CPU, mem_mb = physical memory. */
static void
add_defaults(Options *o)
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

/* Creates dir and its missing parents (mode 0700 for new ones). */
static int
mkdir_p(const char *dir, char *err, size_t errlen)
{
	char		path[PATH_MAX];

	snprintf(path, sizeof(path), "%s", dir);
	for (char *p = path + 1;; p++)
	{
		if (*p == '/' || *p == '\0')
		{
			char		save = *p;

			*p = '\0';
			if (mkdir(path, 0700) < 0 && errno != EEXIST)
			{
				agent_seterr(err, errlen, "could not create directory \"%s\": %s", path, strerror(errno));
				return -1;
			}
			*p = save;
			if (save == '\0')
				return 0;
		}
	}
}

/* Chooses, creates and locks the spool directory; stores its absolute path in out. */
static int
setup_workdir(const Options *o, char *out, size_t outlen, char *err, size_t errlen)
{
	char		dir[PATH_MAX], lock[PATH_MAX + 16];
	const char *state = getenv("STATE_DIRECTORY");
	const char *xdg = getenv("XDG_STATE_HOME");
	const char *home = getenv("HOME");
	int			fd;

	if (o->workdir != NULL)
		snprintf(dir, sizeof(dir), "%s", o->workdir);
	else if (state != NULL && *state != '\0')
		snprintf(dir, sizeof(dir), "%.*s", (int) strcspn(state, ":"), state);
	else if (xdg != NULL && *xdg == '/')
		snprintf(dir, sizeof(dir), "%s/dispatch-agent/%s", xdg, o->node);
	else if (home != NULL && *home == '/')
		snprintf(dir, sizeof(dir), "%s/.local/state/dispatch-agent/%s", home, o->node);
	else
		snprintf(dir, sizeof(dir), "dispatch-work");
	if (mkdir_p(dir, err, errlen) < 0)
		return -1;
	if (realpath(dir, out) == NULL)
	{
		agent_seterr(err, errlen, "could not resolve directory \"%s\": %s", dir, strerror(errno));
		return -1;
	}
	if (strlen(out) + 128 > outlen)
	{
		agent_seterr(err, errlen, "spool directory path \"%s\" is too long", out);
		return -1;
	}
	snprintf(lock, sizeof(lock), "%s/agent.lock", out);
	if ((fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
	{
		agent_seterr(err, errlen, "could not open lock file \"%s\": %s", lock, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0)
	{
		agent_seterr(err, errlen, errno == EWOULDBLOCK ?
					 "another dispatch-agent uses the spool directory \"%s\"" :
					 "could not lock the spool directory \"%s\"", out);
		close(fd);				/* unused, unlocked: nothing to lose */
		return -1;
	}
	return 0;					/* the descriptor stays open: it holds the lock */
}

/* Builds the info object for agent_register. */
static void
build_info(const Agent *a, StrBuf *sb)
{
	const Options *o = a->opt;
	struct utsname u;
	char		host[256] = "", os[512];
	long long	mem = 0;

	uname(&u);
	gethostname(host, sizeof(host) - 1);
	snprintf(os, sizeof(os), "%s %s", u.sysname, u.release);
	sb_puts(sb, "{\"hostname\": ");
	json_put_str(sb, host);
	sb_puts(sb, ", \"arch\": ");
	json_put_str(sb, u.machine);
	sb_puts(sb, ", \"os\": ");
	json_put_str(sb, os);
	for (int i = 0; i < o->amounts.n; i++)
		if (strncmp(o->amounts.items[i], "mem_mb=", 7) == 0)
			mem = atoll(o->amounts.items[i] + 7);
	sb_printf(sb, ", \"cpus\": %ld, \"memory_mb\": %lld, \"version\": ", sysconf(_SC_NPROCESSORS_ONLN), mem);
	json_put_str(sb, AGENT_VERSION);
	sb_printf(sb, ", \"pid\": %d, \"labels\": {", (int) getpid());
	for (int i = 0; i + 1 < o->labels.n; i += 2)
	{
		sb_puts(sb, i ? ", " : "");
		json_put_str(sb, o->labels.items[i]);
		sb_puts(sb, ": ");
		json_put_str(sb, o->labels.items[i + 1]);
	}
	sb_puts(sb, "}, \"resources\": [");
	for (int i = 0, first = 1; i < o->nres; i++)
		for (int k = 0; k < o->res[i].ids.n; k++, first = 0)
		{
			sb_puts(sb, first ? "{\"type\": " : ", {\"type\": ");
			json_put_str(sb, o->res[i].type);
			sb_puts(sb, ", \"ident\": ");
			json_put_str(sb, o->res[i].ids.items[k]);
			sb_puts(sb, "}");
		}
	sb_puts(sb, "], \"amounts\": {");
	for (int i = 0; i < o->amounts.n; i++)
	{
		const char *eq = strchr(o->amounts.items[i], '=');
		char		type[64];

		snprintf(type, sizeof(type), "%.*s", (int) (eq - o->amounts.items[i]), o->amounts.items[i]);
		sb_puts(sb, i ? ", " : "");
		json_put_str(sb, type);
		sb_printf(sb, ": %s", eq + 1);
	}
	sb_puts(sb, "}, \"jobs\": ");
	jobs_info_json(sb);
	sb_puts(sb, "}");
}

/* Registers the node and applies the reply; with listen set, also LISTENs on the channel. */
static int
register_node(Agent *a, int listen)
{
	char		err[AGENT_ERRLEN];
	StrBuf		info, reply;
	JsonValue  *r = NULL;
	const JsonValue *channel;
	int64_t		v;
	int			rc = -1;

	sb_init(&info);
	sb_init(&reply);
	build_info(a, &info);
	log_debug("registering: %s", info.data);
	if (conn_register(a->conn, a->opt->node, info.data, &reply, err, sizeof(err)) != CALL_OK)
		log_error("could not register node \"%s\": %s", a->opt->node, err);
	else if (json_parse(reply.data, &r, err, sizeof(err)) < 0 ||
			 (channel = json_get(r, "channel")) == NULL || channel->type != JSON_STRING)
		log_error("unexpected reply from agent_register: %s", reply.data);
	else if (listen && conn_listen(a->conn, channel->text, err, sizeof(err)) < 0)
		log_error("could not listen on channel \"%s\": %s", channel->text, err);
	else
	{
		a->heartbeat_ms = a->opt->heartbeat_ms ? a->opt->heartbeat_ms :
			(json_int(json_get(r, "heartbeat_ms"), &v) == 0 && v > 0 ? v : 10000);
		a->conf.kill_grace_ms = a->opt->kill_grace_ms ? a->opt->kill_grace_ms :
			(json_int(json_get(r, "kill_grace_ms"), &v) == 0 && v >= 0 ? v : 10000);
		log_info("registered node \"%s\" (channel \"%s\", heartbeat %" PRId64 " ms, kill grace %" PRId64 " ms)",
				 a->opt->node, channel->text, a->heartbeat_ms, a->conf.kill_grace_ms);
		a->want_poll = 1;
		rc = 0;
	}
	json_free(r);
	sb_free(&info);
	sb_free(&reply);
	return rc;
}

/* Tells the server to stop assigning jobs to this node. */
static void
send_drain(Agent *a)
{
	char		err[AGENT_ERRLEN];

	if (conn_node_call(a->conn, "agent_drain", a->opt->node, err, sizeof(err)) != CALL_OK)
		log_warning("could not drain node \"%s\": %s", a->opt->node, err);
}

/* Connects, registers, listens and resumes the jobs; on failure schedules the next attempt. */
static void
establish(Agent *a)
{
	char		err[AGENT_ERRLEN];
	int64_t		now = agent_now_ms();

	if (conn_connect(a->conn, err, sizeof(err)) < 0)
		log_error("%s", err);
	else if (register_node(a, 1) == 0)
	{
		if (a->draining)
			send_drain(a);
		jobs_resume_all(a->conn);
		a->connected = 1;
		a->backoff_ms = BACKOFF_MIN_MS;
		a->next_tick = now + a->heartbeat_ms;
		a->next_metrics = now;	/* deliver what was queued while away */
		log_info("connected to the database");
		return;
	}
	conn_close(a->conn);
	log_info("retrying in %" PRId64 " ms", a->backoff_ms);
	a->next_connect = now + a->backoff_ms;
	a->backoff_ms = backoff_next(a);
}

/*
 * Returns the next reconnection delay: doubling, but never longer than a heartbeat
 * interval, so a node is back before the server's node_timeout expires it, nor than
 * BACKOFF_MAX_MS, so it finds a new leader soon after a failover.
 */
static int64_t
backoff_next(const Agent *a)
{
	int64_t		cap = a->heartbeat_ms > 0 && a->heartbeat_ms < BACKOFF_MAX_MS ?
		a->heartbeat_ms : BACKOFF_MAX_MS;

	if (cap < BACKOFF_MIN_MS)
		cap = BACKOFF_MIN_MS;
	return a->backoff_ms * 2 > cap ? cap : a->backoff_ms * 2;
}

/* The heartbeat timer: beat, fall back to a poll and a full output scan, check supervisors. */
static void
tick(Agent *a)
{
	char		err[AGENT_ERRLEN];
	StrBuf		state;

	jobs_check_alive();
	if (!a->connected)
		return;
	sb_init(&state);
	if (conn_heartbeat(a->conn, a->opt->node, &state, err, sizeof(err)) != CALL_OK)
	{
		log_warning("heartbeat failed: %s", err);
		a->need_register = conn_ok(a->conn);
	}
	else if (strcmp(state.data, "offline") == 0)
	{
		log_warning("the server considers node \"%s\" offline; registering again", a->opt->node);
		a->need_register = 1;
	}
	sb_free(&state);
	a->want_poll = 1;
	jobs_pump(a->conn, 1);
}

/* Appends a presence line to the history file: connected where, jobs, the nodes online. */
static void
record_presence(Agent *a)
{
	char		err[AGENT_ERRLEN], server[512];
	StrBuf		line, online;

	sb_init(&line);
	sb_init(&online);
	conn_server(a->conn, server, sizeof(server));
	history_begin(&line, "presence", a->opt->node);
	sb_printf(&line, ",\"connected\":%s,\"server\":", a->connected ? "true" : "false");
	if (a->connected)
		json_put_str(&line, server);
	else
		sb_puts(&line, "null");
	sb_printf(&line, ",\"jobs_running\":%d,\"jobs_unreported\":%d,\"nodes_online\":",
			  jobs_running(), jobs_count() - jobs_running());
	if (a->connected && conn_online_nodes(a->conn, &online, err, sizeof(err)) == CALL_OK)
		sb_append(&line, online.data, online.len);
	else
		sb_puts(&line, "null");
	if (history_append(a->conf.history_file, &line, err, sizeof(err)) < 0)
		log_warning("%s", err);
	sb_free(&online);
	sb_free(&line);
}

/* Starts draining after the first SIGTERM/SIGINT. */
static void
begin_drain(Agent *a)
{
	a->draining = 1;
	a->drain_deadline = agent_now_ms() + a->conf.kill_grace_ms;
	log_info("draining: %d job(s) running, waiting up to %" PRId64 " ms before cancelling them",
			 jobs_running(), a->conf.kill_grace_ms);
	if (a->connected)
		send_drain(a);
}

/* Handles the signals queued in the self-pipe; returns 1 when the agent must exit at once. */
static int
handle_signals(Agent *a)
{
	unsigned char buf[64];
	ssize_t		n;

	while ((n = read(sig_pipe[0], buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < n; i++)
		{
			if (buf[i] == SIGCHLD)
			{
				metrics_reap(&a->metrics);
				jobs_reap();
			}
			else if (buf[i] == SIGUSR1)
				a->next_metrics = agent_now_ms();	/* the sampler queued a sample */
			else if (buf[i] == SIGHUP)
			{
				log_info("SIGHUP: polling and reconnecting now");
				a->want_poll = 1;
				a->next_connect = agent_now_ms();
				a->backoff_ms = BACKOFF_MIN_MS;
			}
			else if (a->draining)
			{
				log_info("second shutdown signal: exiting now, jobs keep running");
				return 1;
			}
			else
				begin_drain(a);
		}
	return 0;
}

/* Sets up the self-pipe and the signal handlers. */
static int
setup_signals(char *err, size_t errlen)
{
	struct sigaction sa;
	const int	sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1};

	if (pipe2(sig_pipe, O_NONBLOCK | O_CLOEXEC) < 0)
	{
		agent_seterr(err, errlen, "could not create pipe: %s", strerror(errno));
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

/* Returns the poll() timeout in ms: time to the nearest timer, capped by the heartbeat. */
static int
next_timeout(const Agent *a, int64_t now)
{
	int64_t		t = a->next_tick;
	int64_t		pump;

	if (!a->connected && a->next_connect < t)
		t = a->next_connect;
	if (a->draining && !a->drain_cancelled && a->drain_deadline < t)
		t = a->drain_deadline;
	if (a->drain_exit_at && a->drain_exit_at < t)
		t = a->drain_exit_at;
	if (a->metrics.interval_ms > 0 && a->next_metrics < t)
		t = a->next_metrics;
	if (a->next_presence < t)
		t = a->next_presence;
	if (a->connected && jobs_want_pump(&pump) && pump < t)
		t = pump;
	if (a->connected && (a->want_poll || a->need_register))
		t = now;
	return t <= now ? 0 : (int) (t - now > 60000 ? 60000 : t - now);
}

/* The event loop; returns the process exit status. */
static int
run(Agent *a)
{
	char		err[AGENT_ERRLEN];

	for (;;)
	{
		int64_t		now = agent_now_ms();
		struct pollfd fds[3];
		int			nfds = 2, notified = 0;

		if (a->connected && !conn_ok(a->conn))
		{
			log_warning("lost the database connection; jobs keep running");
			a->connected = 0;
			a->next_connect = now;
		}
		if (!a->connected && now >= a->next_connect)
			establish(a);
		if (now >= a->next_tick)
		{
			a->next_tick = now + a->heartbeat_ms;
			tick(a);
		}
		if (a->metrics.interval_ms > 0 && now >= a->next_metrics)
		{
			a->next_metrics = now + a->metrics.interval_ms;
			metrics_check(&a->metrics);
			if (a->connected)
				metrics_send(&a->metrics, a->conn, a->opt->node);
		}
		if (a->connected && a->need_register)
		{
			a->need_register = 0;	/* on failure, the next heartbeat decides again */
			register_node(a, 0);
		}
		if (a->connected && a->want_poll)
		{
			a->want_poll = 0;
			if (conn_poll(a->conn, a->opt->node, jobs_on_poll_row, &a->draining, err, sizeof(err)) != CALL_OK)
				log_warning("agent_poll failed: %s", err);
		}
		if (now >= a->next_presence)
		{
			a->next_presence = now + PRESENCE_MS;
			record_presence(a);
		}
		jobs_record_ended(a->connected);
		if (a->connected)
			jobs_pump(a->conn, 0);
		if (a->draining && !a->drain_cancelled && agent_now_ms() >= a->drain_deadline && jobs_running())
		{
			log_info("drain grace is over: stopping %d job(s)", jobs_running());
			jobs_abandon_all();
			a->drain_cancelled = 1;
		}
		if (a->draining && jobs_running() == 0 && a->drain_exit_at == 0)
			a->drain_exit_at = agent_now_ms() + DRAIN_REPORT_MS;
		if (a->drain_exit_at && (!a->connected || jobs_count() == 0 || agent_now_ms() >= a->drain_exit_at))
		{
			if (a->connected)
			{
				if (conn_node_call(a->conn, "agent_offline", a->opt->node, err, sizeof(err)) != CALL_OK)
					log_warning("could not mark node \"%s\" offline: %s", a->opt->node, err);
			}
			if (jobs_count() > 0)
				log_warning("%d finished job(s) stay in the spool until the next start", jobs_count());
			log_info("drained; exiting");
			return 0;
		}

		fds[0].fd = sig_pipe[0];
		fds[0].events = POLLIN;
		fds[1].fd = jobs_inotify_fd();
		fds[1].events = POLLIN;
		if (a->connected && conn_ok(a->conn))
		{
			fds[2].fd = conn_socket(a->conn);
			fds[2].events = POLLIN;
			nfds = 3;
		}
		if (poll(fds, (nfds_t) nfds, next_timeout(a, agent_now_ms())) < 0 && errno != EINTR)
		{
			log_error("poll failed: %s", strerror(errno));
			return 1;
		}
		if (handle_signals(a))
			return 0;
		jobs_inotify_read();
		if (a->connected && conn_consume(a->conn, &notified, err, sizeof(err)) < 0)
			log_warning("%s", err);
		if (notified)
			a->want_poll = 1;
	}
}

/* --print-metrics: a reading, 1 s, then a sample with rates printed on stdout; returns the exit status. */
static int
print_metrics(const Options *o)
{
	struct timespec second = {1, 0};
	Collector	c;
	StrBuf		json;
	char		err[AGENT_ERRLEN];
	int			rc = 0;

	collect_init(&c);
	c.plugin_dir = o->plugin_dir;
	sb_init(&json);
	if (collect_prime(&c, err, sizeof(err)) < 0 || nanosleep(&second, NULL) < 0 ||
		collect_sample(&c, &json, err, sizeof(err)) < 0)
	{
		log_error("%s", err);
		rc = 1;
	}
	else if (printf("%s\n", json.data) < 0 || fflush(stdout) != 0)
	{
		log_error("could not write to standard output: %s", strerror(errno));
		rc = 1;
	}
	sb_free(&json);
	collect_free(&c);
	return rc;
}

int
main(int argc, char **argv)
{
	Options		opt;
	Agent		a;
	char		err[AGENT_ERRLEN], workdir[PATH_MAX], history[PATH_MAX + 32];
	int			rc;

	parse_options(argc, argv, &opt);
	if (opt.print_metrics)
		return print_metrics(&opt);
	runner_set_title_area(argc, argv);
	if (geteuid() == 0 && !opt.allow_root)
		die_usage("refusing to run as root: jobs would run as root too; use --allow-root to override");
	add_defaults(&opt);
	memset(&a, 0, sizeof(a));
	a.opt = &opt;
	a.conf.node = opt.node;
	a.conf.workdir = workdir;
	a.conf.keep_workdirs = opt.keep_workdirs;
	a.conf.history_file = history;
	a.conf.kill_grace_ms = opt.kill_grace_ms ? opt.kill_grace_ms : 10000;
	a.heartbeat_ms = opt.heartbeat_ms ? opt.heartbeat_ms : 10000;
	a.backoff_ms = BACKOFF_MIN_MS;
	a.next_tick = agent_now_ms() + a.heartbeat_ms;
	if (setup_workdir(&opt, workdir, sizeof(workdir), err, sizeof(err)) < 0 ||
		setup_signals(err, sizeof(err)) < 0 ||
		jobs_init(&a.conf, err, sizeof(err)) < 0 ||
		(opt.metrics_interval_s > 0 &&
		 metrics_init(&a.metrics, workdir, opt.metrics_interval_s * 1000, opt.metrics_spool_kb * 1024,
					  opt.plugin_dir, err, sizeof(err)) < 0))
	{
		log_error("%s", err);
		return 1;
	}
	if (opt.history_file != NULL)
		snprintf(history, sizeof(history), "%s", opt.history_file);
	else
		snprintf(history, sizeof(history), "%s/history.jsonl", workdir);
	log_info("dispatch-agent %s starting: node \"%s\", spool \"%s\", %d job(s) in the spool",
			 AGENT_VERSION, opt.node, workdir, jobs_count());
	a.conn = conn_new(opt.dbname);
	rc = run(&a);
	metrics_stop(&a.metrics);
	conn_free(a.conn);
	jobs_shutdown();
	return rc;
}
