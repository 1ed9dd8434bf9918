/*
 * main.c: dispatch-web's command line, the HTTP daemon and its limits, signals.
 *
 *   dispatch-web --dbname CONNINFO [--listen HOST:PORT] [--tls-cert FILE --tls-key FILE]
 *                [--read-only] [limits...]
 *
 * libmicrohttpd runs one thread per HTTP connection (so a slow client or a long
 * event stream holds only its own thread), at most --max-connections of them and
 * --max-per-ip from one address, each closed after --timeout idle seconds; request
 * headers are bounded by MHD's per-connection memory (HEADER_MEMORY), bodies by
 * --max-body.  The main thread waits for SIGTERM or SIGINT and then stops the
 * daemon, the event listener and the pool, in that order.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "web.h"

#define WEB_VERSION "0.1.0"
#define HEADER_MEMORY (64 * 1024)
#define MAX_PEM (1024 * 1024)

WebConfig	web_config = {
	.listen = "127.0.0.1:8080",
	.max_body = 1024 * 1024,
	.max_connections = 64,
	.max_per_ip = 32,
	.timeout_s = 30,
	.max_db_connections = 16,
	.pool_max_age_s = 300,
	.statement_timeout_ms = 30000,
	.max_event_clients = 32,
	.max_login_failures = 10,
};

static const char usage[] =
	"Usage: dispatch-web --dbname CONNINFO [OPTION]...\n"
	"Serves pg_dispatch's REST/JSON API (/api/v1), live events, /metrics and its web page.\n"
	"\n"
	"  -d, --dbname CONNINFO        database to serve; its role LISTENs for events\n"
	"  -l, --listen HOST:PORT       address to listen on (127.0.0.1:8080)\n"
	"      --static DIR             the page's files (the static/ folder next to the binary)\n"
	"      --tls-cert FILE          serve HTTPS with this PEM certificate (chain)...\n"
	"      --tls-key FILE           ...and this PEM private key\n"
	"      --read-only              refuse every request that would change something\n"
	"      --max-body BYTES         largest request body (1048576)\n"
	"      --max-connections N      HTTP connections at once (64)\n"
	"      --max-per-ip N           HTTP connections from one address (32)\n"
	"      --timeout SECONDS        close an idle HTTP connection after this (30)\n"
	"      --max-db-connections N   logged-in database connections kept (16)\n"
	"      --pool-max-age SECONDS   log a pooled role in again after this (300)\n"
	"      --statement-timeout MS   longest query of a request (30000)\n"
	"      --max-event-clients N    event streams at once (32)\n"
	"      --max-login-failures N   failed logins per role and minute before refusing (10)\n"
	"  -V, --version                print the version and exit\n"
	"  -h, --help                   print this help and exit\n"
	"\n"
	"Users log in with HTTP Basic as their database role; the database checks the\n"
	"password and the role's permissions.  See docs/web.md.\n";

/* Parses a whole decimal number in [min, max] into *out; exits with a message else. */
static long
parse_number(const char *opt, const char *text, long min, long max)
{
	char	   *end;
	long		v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || v < min || v > max)
	{
		fprintf(stderr, "dispatch-web: invalid value for --%s: \"%s\" (%ld to %ld)\n",
				opt, text, min, max);
		exit(2);
	}
	return v;
}

/* Reads a PEM file (at most MAX_PEM bytes) into a new NUL-terminated buffer; exits
 * with a message when it cannot. */
static char *
read_pem(const char *path)
{
	FILE	   *f = fopen(path, "r");
	char	   *buf = malloc(MAX_PEM + 1);
	size_t		n = 0;

	if (f == NULL || buf == NULL)
	{
		fprintf(stderr, "dispatch-web: could not open \"%s\": %s\n", path, strerror(errno));
		exit(1);
	}
	n = fread(buf, 1, MAX_PEM + 1, f);
	if (ferror(f) || n > MAX_PEM)
	{
		fprintf(stderr, "dispatch-web: could not read \"%s\" (at most %d bytes)\n", path,
				MAX_PEM);
		exit(1);
	}
	fclose(f);
	buf[n] = '\0';
	return buf;
}

/* Resolves "HOST:PORT" (or "[V6]:PORT") into *res; exits with a message when not. */
static void
resolve_listen(const char *listen, struct addrinfo **res)
{
	char		host[256];
	const char *colon = strrchr(listen, ':');
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
	.ai_flags = AI_PASSIVE};
	size_t		len = colon ? (size_t) (colon - listen) : 0;
	int			rc;

	if (colon == NULL || len == 0 || len >= sizeof(host) || colon[1] == '\0')
	{
		fprintf(stderr, "dispatch-web: --listen wants HOST:PORT, not \"%s\"\n", listen);
		exit(2);
	}
	if (listen[0] == '[' && listen[len - 1] == ']')
		len -= 2, listen++;
	memcpy(host, listen, len);
	host[len] = '\0';
	parse_number("listen", colon + 1, 1, 65535);
	if ((rc = getaddrinfo(host, colon + 1, &hints, res)) != 0)
	{
		fprintf(stderr, "dispatch-web: could not resolve \"%s\": %s\n", host, gai_strerror(rc));
		exit(2);
	}
}

/* Fills web_config from the command line; exits on --help, --version or an error. */
static void
parse_options(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"dbname", required_argument, NULL, 'd'}, {"listen", required_argument, NULL, 'l'},
		{"static", required_argument, NULL, 's'}, {"tls-cert", required_argument, NULL, 'c'},
		{"tls-key", required_argument, NULL, 'k'}, {"read-only", no_argument, NULL, 'r'},
		{"max-body", required_argument, NULL, 1}, {"max-connections", required_argument, NULL, 2},
		{"max-per-ip", required_argument, NULL, 3}, {"timeout", required_argument, NULL, 4},
		{"max-db-connections", required_argument, NULL, 5},
		{"pool-max-age", required_argument, NULL, 6},
		{"statement-timeout", required_argument, NULL, 7},
		{"max-event-clients", required_argument, NULL, 8},
		{"max-login-failures", required_argument, NULL, 9},
		{"version", no_argument, NULL, 'V'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	int			c,
				index = -1;

	while ((c = getopt_long(argc, argv, "d:l:Vh", longopts, &index)) != -1)
	{
		const char *name = index >= 0 ? longopts[index].name : "";

		switch (c)
		{
			case 'd': web_config.conninfo = optarg; break;
			case 'l': web_config.listen = optarg; break;
			case 's': web_config.static_dir = optarg; break;
			case 'c': web_config.tls_cert = optarg; break;
			case 'k': web_config.tls_key = optarg; break;
			case 'r': web_config.read_only = true; break;
			case 1: web_config.max_body = parse_number(name, optarg, 0, 64L << 20); break;
			case 2: web_config.max_connections = parse_number(name, optarg, 1, 10000); break;
			case 3: web_config.max_per_ip = parse_number(name, optarg, 1, 10000); break;
			case 4: web_config.timeout_s = parse_number(name, optarg, 1, 3600); break;
			case 5: web_config.max_db_connections = parse_number(name, optarg, 1, 1000); break;
			case 6: web_config.pool_max_age_s = parse_number(name, optarg, 1, 86400); break;
			case 7: web_config.statement_timeout_ms = parse_number(name, optarg, 1, INT_MAX); break;
			case 8: web_config.max_event_clients = parse_number(name, optarg, 0, 10000); break;
			case 9: web_config.max_login_failures = parse_number(name, optarg, 1, 1000000); break;
			case 'V': printf("dispatch-web %s\n", WEB_VERSION); exit(0);
			case 'h': fputs(usage, stdout); exit(0);
			default: fputs(usage, stderr); exit(2);
		}
		index = -1;
	}
	if (optind < argc || web_config.conninfo == NULL)
	{
		fprintf(stderr, "dispatch-web: %s\n%s", optind < argc ? "unexpected argument" :
				"--dbname is required", usage);
		exit(2);
	}
	if ((web_config.tls_cert == NULL) != (web_config.tls_key == NULL))
	{
		fprintf(stderr, "dispatch-web: --tls-cert and --tls-key go together\n");
		exit(2);
	}
}

/* Returns the static/ folder next to the running binary. */
static const char *
default_static_dir(void)
{
	static char dir[PATH_MAX];
	ssize_t		n = readlink("/proc/self/exe", dir, sizeof(dir) - 8);
	char	   *slash;

	if (n <= 0)
		return "static";
	dir[n] = '\0';
	slash = strrchr(dir, '/');
	strcpy(slash ? slash + 1 : dir, "static");
	return dir;
}

/* Starts the HTTP daemon on the resolved address; exits with a message when it cannot. */
static struct MHD_Daemon *
start_daemon(const struct addrinfo *ai)
{
	unsigned int flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
		MHD_USE_POLL | MHD_USE_ERROR_LOG;
	char	   *cert = NULL,
			   *key = NULL;
	struct MHD_Daemon *d;

	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (web_config.tls_cert != NULL)
	{
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
		{
			fprintf(stderr, "dispatch-web: this libmicrohttpd has no TLS support\n");
			exit(1);
		}
		flags |= MHD_USE_TLS;
		cert = read_pem(web_config.tls_cert);
		key = read_pem(web_config.tls_key);
	}
	d = MHD_start_daemon(flags, 0, NULL, NULL, http_answer, NULL,
						 MHD_OPTION_SOCK_ADDR, ai->ai_addr,
						 MHD_OPTION_CONNECTION_LIMIT, (unsigned int) web_config.max_connections,
						 MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int) web_config.max_per_ip,
						 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) web_config.timeout_s,
						 MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) HEADER_MEMORY,
						 MHD_OPTION_NOTIFY_COMPLETED, http_completed, NULL,
						 /* without TLS the list ends here */
						 cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, cert,
						 MHD_OPTION_HTTPS_MEM_KEY, key,
						 MHD_OPTION_END);
	if (d == NULL)
	{
		fprintf(stderr, "dispatch-web: could not listen on %s%s\n", web_config.listen,
				cert ? " (or the TLS certificate and key were refused)" : "");
		exit(1);
	}
	if (key != NULL)
	{
		memset(key, 0, strlen(key));
		free(key);
	}
	free(cert);
	return d;
}

/* Serves until SIGTERM or SIGINT. */
int
main(int argc, char **argv)
{
	sigset_t	stop;
	int			sig;
	char		err[256];
	struct addrinfo *ai;
	struct MHD_Daemon *d;

	parse_options(argc, argv);
	if (web_config.static_dir == NULL)
		web_config.static_dir = default_static_dir();
	resolve_listen(web_config.listen, &ai);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);	/* every thread inherits the mask */

	pool_init();
	if (events_start(err, sizeof(err)) != 0)
	{
		fprintf(stderr, "dispatch-web: %s\n", err);
		return 1;
	}
	d = start_daemon(ai);
	freeaddrinfo(ai);
	fprintf(stderr, "dispatch-web: serving %s://%s/%s\n",
			web_config.tls_cert ? "https" : "http", web_config.listen,
			web_config.read_only ? " (read-only)" : "");
	sigwait(&stop, &sig);
	fprintf(stderr, "dispatch-web: stopping (signal %d)\n", sig);
	events_stop();
	MHD_stop_daemon(d);
	pool_shutdown();
	return 0;
}
