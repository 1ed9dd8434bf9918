/*
 * main.c -- dispatch-agent's event loop.
 *
 * The agent is one thread around one poll() over five descriptors: the
 * libpq socket (NOTIFY on the node's channel), the spool's inotify fd (job
 * output and status files), the control dirs' inotify fd (the jobs' wait and
 * signal requests, control.c), the file watcher's inotify fd (--watch,
 * watch.c; its settle deadlines are one more timer) and a self-pipe that the
 * signal handlers write
 * (SIGCHLD, SIGTERM, SIGINT, SIGHUP, and SIGUSR1 from the metrics sampler;
 * handlers do nothing else).  Timers for the heartbeat, reconnection backoff,
 * the metrics queue, the presence line and the drain deadline bound the
 * sleep.  Jobs run in detached supervisors (runner.c), so the loop may lose
 * its database, crash or restart without disturbing them; whatever could not
 * be reported waits in the spool (jobs.c) until the next connection.
 */
#include "agent.h"
#include "control.h"
#include "watch.h"
#include "fixpoint.h"
#include "metrics/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 4000		/* back within seconds of a failover, whatever the heartbeat */
#define DRAIN_REPORT_MS 10000	/* how long a drained agent keeps trying to report results */
#define PRESENCE_MS 60000		/* a presence line in the history file this often */
#define POLL_MAX_MS 60000		/* longest sleep in poll(), whatever the timers say */

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
	Watcher    *watch;			/* NULL: no --watch */
	int64_t		next_watch;		/* a watched file is due */
} Agent;

static int	sig_pipe[2] = {-1, -1};

static void on_signal(int signo);
static int register_again(Agent *a, int listen);
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
static char **copy_argv(int argc, char **argv);
static Watcher *start_watch(const Options *o, const char *workdir, char *err, size_t errlen);

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

/* Registers the node again and applies the reply; with listen set, also LISTENs on its channel. */
static int
register_again(Agent *a, int listen)
{
	if (register_node(a->conn, a->opt, listen, &a->heartbeat_ms, &a->conf.kill_grace_ms) < 0)
		return -1;
	a->want_poll = 1;
	return 0;
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
	int64_t		now = proc_now_ms();

	if (conn_connect(a->conn, err, sizeof(err)) < 0)
		log_error("%s", err);
	else if (register_again(a, 1) == 0)
	{
		if (a->draining)
			send_drain(a);
		jobs_resume_all();
		control_reask();
		if (a->watch)
			watch_resume(a->watch);
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
	control_reask();
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
		jsonio_put_str(&line, server);
	else
		sb_puts(&line, "null");
	sb_printf(&line, ",\"jobs_running\":%d,\"jobs_unreported\":%d,\"nodes_online\":",
			  jobs_running(), jobs_count() - jobs_running());
	if (a->connected && conn_online_nodes(a->conn, a->opt->node, &online, err, sizeof(err)) == CALL_OK)
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
	a->drain_deadline = proc_now_ms() + a->conf.kill_grace_ms;
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
				a->next_metrics = proc_now_ms();	/* the sampler queued a sample */
			else if (buf[i] == SIGHUP)
			{
				log_info("SIGHUP: polling and reconnecting now");
				a->want_poll = 1;
				a->next_connect = proc_now_ms();
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
	if (a->connected && control_want_pump(&pump) && pump < t)
		t = pump;
	if (a->watch && a->next_watch < t)
		t = a->next_watch;
	if (a->connected && a->watch && watch_want_send(a->watch, &pump) && pump < t)
		t = pump;
	if (a->connected && (a->want_poll || a->need_register || jobs_fetching()))
		t = now;
	return t <= now ? 0 : (int) (t - now > POLL_MAX_MS ? POLL_MAX_MS : t - now);
}

/* The event loop; returns the process exit status. */
static int
run(Agent *a)
{
	char		err[AGENT_ERRLEN];

	for (;;)
	{
		int64_t		now = proc_now_ms();
		struct pollfd fds[5];
		int			nfds = 4, notified = 0;

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
			register_again(a, 0);
		}
		if (a->connected && a->want_poll)
		{
			a->want_poll = 0;
			if (conn_poll(a->conn, a->opt->node, jobs_on_poll_row, &a->draining, err, sizeof(err)) != CALL_OK)
				log_warning("agent_poll failed: %s", err);
			scratch_process(a->conn, a->opt->node, a->conf.workdir);
		}
		if (now >= a->next_presence)
		{
			a->next_presence = now + PRESENCE_MS;
			record_presence(a);
		}
		jobs_record_ended(a->connected);
		if (a->connected)
		{
			jobs_fetch(a->conn);
			jobs_pump(a->conn, 0);
			control_pump(a->conn, a->opt->node);
		}
		if (a->watch)
		{
			a->next_watch = watch_tick(a->watch, proc_now_ms());
			if (a->connected)
				watch_send(a->watch, a->conn, a->opt->node, proc_now_ms());
		}
		if (a->draining && !a->drain_cancelled && proc_now_ms() >= a->drain_deadline && jobs_running())
		{
			log_info("drain grace is over: stopping %d job(s)", jobs_running());
			jobs_abandon_all();
			a->drain_cancelled = 1;
		}
		if (a->draining && jobs_running() == 0 && a->drain_exit_at == 0)
			a->drain_exit_at = proc_now_ms() + DRAIN_REPORT_MS;
		if (a->drain_exit_at && (!a->connected || jobs_count() == 0 || proc_now_ms() >= a->drain_exit_at))
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
		fds[2].fd = control_inotify_fd();
		fds[2].events = POLLIN;
		fds[3].fd = a->watch ? watch_fd(a->watch) : -1;	/* poll() skips a negative fd */
		fds[3].events = POLLIN;
		if (a->connected && conn_ok(a->conn))
		{
			fds[4].fd = conn_socket(a->conn);
			fds[4].events = POLLIN;
			nfds = 5;
		}
		if (poll(fds, (nfds_t) nfds, next_timeout(a, proc_now_ms())) < 0 && errno != EINTR)
		{
			log_error("poll failed: %s", strerror(errno));
			return 1;
		}
		if (handle_signals(a))
			return 0;
		jobs_inotify_read();
		control_inotify_read();
		if (a->watch)
			watch_read(a->watch, proc_now_ms());
		if (a->connected && conn_consume(a->conn, &notified, err, sizeof(err)) < 0)
			log_warning("%s", err);
		if (notified)
			a->want_poll = 1;
		if (conn_take_signalled(a->conn))
			control_reask();	/* a signal some waiting job may take */
	}
}

/* Returns a copy of argv that outlives the process title written over the original. */
static char **
copy_argv(int argc, char **argv)
{
	char	  **copy = xmalloc(sizeof(char *) * (size_t) (argc + 1));

	for (int i = 0; i < argc; i++)
		copy[i] = xstrdup(argv[i]);
	copy[argc] = NULL;
	return copy;
}

/* Starts the watcher over the --watch workspaces (NULL: none, or on failure with err set). */
static Watcher *
start_watch(const Options *o, const char *workdir, char *err, size_t errlen)
{
	Watcher    *w;
	int			rc = 0;

	err[0] = '\0';
	if (o->watches.n == 0 || (w = watch_new(workdir, o->watch_settle_ms, err, errlen)) == NULL)
		return NULL;
	for (int i = 0; rc == 0 && i < o->watches.n; i += 2)
		rc = watch_add(w, o->watches.items[i], o->watches.items[i + 1], err, errlen);
	for (int i = 0; rc == 0 && i < o->follows.n; i += 2)
		rc = watch_follow(w, o->follows.items[i], o->follows.items[i + 1], err, errlen);
	if (rc == 0 && watch_start(w, proc_now_ms(), err, errlen) == 0)
	{
		log_info("watching %d workspace(s), settling files for %" PRId64 " ms", o->watches.n / 2,
				 o->watch_settle_ms);
		return w;
	}
	watch_free(w);
	return NULL;
}

int
main(int argc, char **argv)
{
	Options		opt;
	Agent		a;
	char		err[AGENT_ERRLEN], workdir[PATH_MAX], history[PATH_MAX + 32];
	int			rc;

	if (argc >= 2 && signal_cmd_is(argv[1]))
		return signal_cmd_main(argc - 1, argv + 1);	/* run by a job: no options, no database */
	if (argc >= 2 && strcmp(argv[1], "iterate") == 0)
		return iterate_cmd_main(argc - 1, argv + 1);	/* a build job's cycle: no database either */
	/* parse a copy: argv is overwritten below, so that no password stays in /proc/PID/cmdline */
	options_parse(argc, copy_argv(argc, argv), &opt);
	if (opt.print_metrics)
	{
		if (proc_drop_capabilities(err, sizeof(err)) < 0)
		{
			log_error("%s", err);
			return 1;
		}
		return collect_print(opt.plugin_dir);
	}
	proc_title_init(argc, argv);
	proc_set_title("dispatch-agent", "agent of node %s", opt.node);
	if (geteuid() == 0 && !opt.allow_root)
		options_die_usage(opt.job_user ? "refusing to run as root: run the agent as an unprivileged user with the capabilities --job-user needs; use --allow-root to override" :
						  "refusing to run as root: jobs would run as root too; use --allow-root to override");
	options_require_job_user(&opt);
	if (proc_set_undumpable(err, sizeof(err)) < 0)
	{
		log_error("%s", err);
		return 1;
	}
	if (opt.job_user != NULL && jobuser_init(opt.job_user, err, sizeof(err)) < 0)
		options_die_usage("%s", err);
	if (opt.insecure_jobs)
		log_warning("jobs run as the agent's own user (--insecure-run-jobs-as-agent): every job can read the agent's credentials and act as the agent; use --job-user");
	options_add_defaults(&opt);
	memset(&a, 0, sizeof(a));
	a.opt = &opt;
	a.conf.node = opt.node;
	a.conf.workdir = workdir;
	a.conf.keep_workdirs = opt.keep_workdirs;
	a.conf.history_file = history;
	a.conf.kill_grace_ms = opt.kill_grace_ms ? opt.kill_grace_ms : AGENT_KILL_GRACE_MS;
	a.heartbeat_ms = opt.heartbeat_ms ? opt.heartbeat_ms : AGENT_HEARTBEAT_MS;
	a.backoff_ms = BACKOFF_MIN_MS;
	a.next_tick = proc_now_ms() + a.heartbeat_ms;
	if (workdir_setup(opt.workdir, opt.node, workdir, sizeof(workdir), err, sizeof(err)) < 0 ||
		jobuser_check_spool(workdir, err, sizeof(err)) < 0 ||
		setup_signals(err, sizeof(err)) < 0 ||
		control_init(err, sizeof(err)) < 0 ||
		jobs_init(&a.conf, err, sizeof(err)) < 0 ||
		(opt.metrics_interval_s > 0 &&
		 metrics_init(&a.metrics, workdir, opt.metrics_interval_s * 1000, opt.metrics_spool_kb * 1024,
					  opt.plugin_dir, err, sizeof(err)) < 0) ||
		((a.watch = start_watch(&opt, workdir, err, sizeof(err))) == NULL && err[0] != '\0'))
	{
		log_error("%s", err);
		return 1;
	}
	if (opt.history_file != NULL)
		snprintf(history, sizeof(history), "%s", opt.history_file);
	else
		snprintf(history, sizeof(history), "%s/history.jsonl", workdir);
	log_info("dispatch-agent %s starting: node \"%s\", spool \"%s\", %d job(s) in the spool, jobs run as %s",
			 AGENT_VERSION, opt.node, workdir, jobs_count(), opt.job_user ? opt.job_user : "the agent's user");
	a.conn = conn_new(opt.dbname);
	rc = run(&a);
	metrics_stop(&a.metrics);
	conn_free(a.conn);
	watch_free(a.watch);
	jobs_shutdown();
	control_shutdown();
	return rc;
}
