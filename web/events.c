/*
 * events.c: one LISTEN connection fanned out to the Server-Sent Events clients.
 *
 * A listener thread holds the daemon's own connection (--dbname), LISTENs on
 * dispatch_events (sql/src/47_events.sql says what is sent there: ids and states,
 * which every user may see) and appends each notification to a ring of RING events.
 * Every client reads the ring at its own position in its own connection thread, so a
 * slow client never holds up the others or the listener: a client that falls more
 * than RING events behind is dropped (it reconnects and refetches), and one whose
 * socket stops draining is closed by the HTTP connection timeout.  A client gets a
 * comment every KEEPALIVE_S seconds so proxies keep the stream open, and a client
 * that hung up is noticed within a second while it waits.  After the
 * listener lost its connection (and so maybe notifications), it sends "resync".
 * The number of clients is bounded by --max-event-clients (503 beyond).
 *
 * Output is not on dispatch_events: a stored chunk NOTIFYs only while someone follows
 * its job (sql/src/45_output.sql).  A client asks for one job's output with
 * ?follow=JOB (checked with its own role: it must be allowed to read that output); the
 * listener then follows the job on its own connection (LISTEN dispatch_job_<id>,
 * follow_output()) while any client wants it, and turns each "output" into the event
 * {"type": "output", "job_id": N}, which only the clients following N get.  After a new
 * follow it sends that event once, so the clients read what was stored before.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pqerror.h"
#include "web.h"

#define RING 1024
#define KEEPALIVE_S 15
#define MAX_EVENT 8192			/* a NOTIFY payload is shorter than 8000 bytes */
#define FOLLOW_POLL_MS 100		/* how soon a new follow is applied */
#define MAX_FOLLOWED 256		/* distinct jobs followed at once; a client beyond gets 503 */

/* A job some clients follow, and whether the listener follows it yet. */
typedef struct Followed
{
	int64_t		job;
	int			clients;		/* 0: the listener lets go of it */
	bool		applied;		/* the listener LISTENs and follows it */
} Followed;

typedef struct Client
{
	uint64_t	next;			/* sequence number of the next event to send */
	int			fd;				/* the client's socket, watched for a hang-up */
	char		buf[MAX_EVENT + 64];
	size_t		len;
	size_t		off;
	int64_t		follow;			/* the job whose output it follows, or 0 */
} Client;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t arrived = PTHREAD_COND_INITIALIZER;
static char *ring[RING];
static int64_t ring_job[RING];	/* an output event's job: only its followers get it */
static uint64_t head;			/* sequence number of the next event stored */
static bool stopping;
static int	clients;
static pthread_t listener;
static Followed followed[MAX_FOLLOWED];
static bool follows_changed;

static void *listen_loop(void *arg);
static void push(const char *event, const char *data, int64_t job);

/* Appends one event to the ring (for the clients following job only, unless it is 0)
 * and wakes the clients. */
static void
push(const char *event, const char *data, int64_t job)
{
	size_t		len = strlen(event) + strlen(data) + 20;
	char	   *text = malloc(len);

	if (text == NULL)
		return;
	snprintf(text, len, "event: %s\ndata: %s\n\n", event, data);
	pthread_mutex_lock(&lock);
	free(ring[head % RING]);
	ring[head % RING] = text;
	ring_job[head % RING] = job;
	head++;
	pthread_cond_broadcast(&arrived);
	pthread_mutex_unlock(&lock);
}

/* Forwards a notification whose payload is a JSON object with a lower-case "type";
 * anything else on the channel (someone's stray NOTIFY) is dropped. */
static void
forward(const char *payload)
{
	json_t	   *obj = json_loads(payload, 0, NULL);
	const char *type = json_string_value(json_object_get(obj, "type"));

	if (type != NULL && type[0] != '\0' && strspn(type, "abcdefghijklmnopqrstuvwxyz") ==
		strlen(type) && strlen(type) < 32 && strpbrk(payload, "\r\n") == NULL)
		push(type, payload, 0);
	json_decref(obj);
}

/* Pushes the event that job has (maybe) new output. */
static void
push_output(int64_t job)
{
	char		data[64];

	snprintf(data, sizeof(data), "{\"type\": \"output\", \"job_id\": %lld}", (long long) job);
	push("output", data, job);
}

/* Adds one client's follow of job; returns false when MAX_FOLLOWED jobs are followed. */
static bool
follow_add(int64_t job)
{
	Followed   *slot = NULL;

	pthread_mutex_lock(&lock);
	for (int i = 0; i < MAX_FOLLOWED && (slot == NULL || slot->job != job); i++)
		if (followed[i].job == job || (followed[i].job == 0 && slot == NULL))
			slot = &followed[i];
	if (slot != NULL && slot->job == job)
		slot->clients++;
	else if (slot != NULL)
		*slot = (Followed) {.job = job, .clients = 1};
	follows_changed = true;		/* also when the listener is letting go of it */
	pthread_mutex_unlock(&lock);
	return slot != NULL;
}

/* Drops one client's follow of job (the lock held). */
static void
follow_drop(int64_t job)
{
	for (int i = 0; i < MAX_FOLLOWED; i++)
		if (followed[i].job == job && followed[i].clients > 0)
		{
			followed[i].clients--;
			follows_changed = true;
			return;
		}
}

/* Runs one command of the listener; returns false when it failed. */
static bool
run_command(PGconn *conn, const char *sql, int64_t job)
{
	char		text[128];
	PGresult   *res;
	bool		ok;

	snprintf(text, sizeof(text), sql, (long long) job, (long long) job);
	res = PQexec(conn, text);
	ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
	if (!ok)
		fprintf(stderr, "dispatch-web: events: %s", PQerrorMessage(conn));
	PQclear(res);
	return ok;
}

/* Makes the listener's follows match what the clients want (all again when reset, after
 * a new connection); returns false when the connection failed. */
static bool
apply_follows(PGconn *conn, bool reset)
{
	pthread_mutex_lock(&lock);
	if (!follows_changed && !reset)
	{
		pthread_mutex_unlock(&lock);
		return true;
	}
	follows_changed = false;
	for (int i = 0; i < MAX_FOLLOWED; i++)
	{
		Followed	f = followed[i];
		bool		ok = true;

		if (f.job == 0 || (f.applied && f.clients > 0 && !reset))
			continue;
		pthread_mutex_unlock(&lock);	/* the commands run without the lock */
		if (f.clients > 0)
			ok = run_command(conn, "LISTEN dispatch_job_%lld; "
							 "SELECT dispatch.follow_output(%lld)", f.job);
		else if (f.applied && !reset)
			ok = run_command(conn, "UNLISTEN dispatch_job_%lld; "
							 "SELECT dispatch.unfollow_output(%lld)", f.job);
		pthread_mutex_lock(&lock);
		if (!ok)
		{
			follows_changed = true;
			pthread_mutex_unlock(&lock);
			return false;
		}
		if (followed[i].job == f.job)
		{
			followed[i].applied = f.clients > 0;
			if (followed[i].clients == 0 && !followed[i].applied)
				followed[i].job = 0;
			else if (followed[i].clients == 0)
				follows_changed = true;		/* left meanwhile: let go next round */
		}
		if (f.clients > 0)
		{
			pthread_mutex_unlock(&lock);
			push_output(f.job);			/* read what was stored before the follow */
			pthread_mutex_lock(&lock);
		}
	}
	pthread_mutex_unlock(&lock);
	return true;
}

/* Returns whether the daemon is stopping. */
static bool
is_stopping(void)
{
	bool		s;

	pthread_mutex_lock(&lock);
	s = stopping;
	pthread_mutex_unlock(&lock);
	return s;
}

/* Reads notifications from conn until it breaks or the daemon stops, following the
 * jobs the clients ask for (checked every FOLLOW_POLL_MS). */
static void
read_notifications(PGconn *conn)
{
	struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};
	PGnotify   *n;
	bool		reset = true;

	while (!is_stopping() && PQstatus(conn) == CONNECTION_OK)
	{
		if (!apply_follows(conn, reset))
			break;
		reset = false;
		if (poll(&pfd, 1, FOLLOW_POLL_MS) < 0 || (pfd.revents && !PQconsumeInput(conn)))
			break;
		while ((n = PQnotifies(conn)) != NULL)
		{
			if (strncmp(n->relname, "dispatch_job_", 13) == 0)
			{
				if (strcmp(n->extra, "output") == 0)
					push_output(strtoll(n->relname + 13, NULL, 10));
			}
			else
				forward(n->extra);
			PQfreemem(n);
		}
	}
}

/* The listener thread: connects, LISTENs, reads; reconnects every 2 s when cut off. */
static void *
listen_loop(void *arg)
{
	const char *keys[] = {"dbname", "fallback_application_name", "client_encoding", NULL};
	const char *values[] = {web_config.conninfo, "dispatch-web events", "UTF8", NULL};
	bool		lost = false,
				said = false;

	(void) arg;
	while (!is_stopping())
	{
		PGconn	   *conn = PQconnectdbParams(keys, values, 1);
		PGresult   *res = NULL;

		if (PQstatus(conn) == CONNECTION_OK)
			res = PQexec(conn, "LISTEN dispatch_events");
		if (res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK)
		{
			if (lost)
				push("resync", "{\"type\": \"resync\"}", 0);
			said = false;
			PQclear(res);
			read_notifications(conn);
			lost = true;
		}
		else
		{
			if (!said)
				fprintf(stderr, "dispatch-web: events: could not listen: %s",
						PQerrorMessage(conn));
			said = true;
			PQclear(res);
		}
		PQfinish(conn);
		for (int i = 0; i < 20 && !is_stopping(); i++)
			poll(NULL, 0, 100);
	}
	return NULL;
}

/* Starts the listener thread; returns 0, or -1 with err filled. */
int
events_start(char *err, size_t errlen)
{
	if (pthread_create(&listener, NULL, listen_loop, NULL) != 0)
	{
		snprintf(err, errlen, "could not start the event listener");
		return -1;
	}
	return 0;
}

/* Stops the listener and ends every client's stream. */
void
events_stop(void)
{
	pthread_mutex_lock(&lock);
	stopping = true;
	pthread_cond_broadcast(&arrived);
	pthread_mutex_unlock(&lock);
	pthread_join(listener, NULL);
}

/* Returns true when the client's end of the connection is closed. */
static bool
hung_up(const Client *c)
{
	struct pollfd pfd = {.fd = c->fd, .events = POLLRDHUP};

	return c->fd >= 0 && poll(&pfd, 1, 0) > 0 &&
		(pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

/* Waits (lock held) until an event is there for c, the daemon stops, the client hangs
 * up or KEEPALIVE_S seconds pass; returns false when the client hung up. */
static bool
wait_for_event(Client *c)
{
	for (int i = 0; i < KEEPALIVE_S && !stopping && c->next == head; i++)
	{
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		pthread_cond_timedwait(&arrived, &lock, &until);
		if (c->next == head && hung_up(c))
			return false;
	}
	return true;
}

/* MHD's content reader of a client's stream: the next event, a keepalive, or the end
 * (stopping, hung up, or dropped for falling behind). */
static ssize_t
read_events(void *cls, uint64_t pos, char *buf, size_t max)
{
	Client	   *c = cls;
	size_t		n;

	(void) pos;
	if (c->off == c->len)
	{
		bool		skipped;

		pthread_mutex_lock(&lock);
		do
		{
			if (!wait_for_event(c) || stopping)
			{
				pthread_mutex_unlock(&lock);
				return MHD_CONTENT_READER_END_OF_STREAM;
			}
			if (head - c->next > RING)
			{
				uint64_t	behind = head - c->next;

				pthread_mutex_unlock(&lock);
				fprintf(stderr, "dispatch-web: events: dropped a client %llu events behind\n",
						(unsigned long long) behind);
				return MHD_CONTENT_READER_END_WITH_ERROR;
			}
			/* another job's output is not this client's business */
			for (skipped = false; c->next != head && ring_job[c->next % RING] != 0 &&
				 ring_job[c->next % RING] != c->follow; skipped = true)
				c->next++;
		} while (skipped && c->next == head);
		if (c->next == head)
			c->len = snprintf(c->buf, sizeof(c->buf), ": keepalive\n\n");
		else
			c->len = snprintf(c->buf, sizeof(c->buf), "%s", ring[c->next++ % RING]);
		pthread_mutex_unlock(&lock);
		c->off = 0;
	}
	n = c->len - c->off < max ? c->len - c->off : max;
	memcpy(buf, c->buf + c->off, n);
	c->off += n;
	return n;
}

/* MHD's cleanup of a client's stream. */
static void
free_client(void *cls)
{
	Client	   *c = cls;

	pthread_mutex_lock(&lock);
	clients--;
	if (c->follow != 0)
		follow_drop(c->follow);
	pthread_mutex_unlock(&lock);
	free(cls);
}

/* Checks ?follow=JOB: a job whose output the caller may read (asked with its own role,
 * conn); returns true with *job set, or false with the error response queued in *ret. */
static bool
check_follow(Request *req, PGconn *conn, const char *follow, int64_t *job,
			 enum MHD_Result *ret)
{
	char	   *end;
	const char *values[1] = {follow};
	PGresult   *res;
	bool		ok;

	errno = 0;
	*job = strtoll(follow, &end, 10);
	if (errno != 0 || end == follow || *end != '\0' || *job <= 0)
	{
		*ret = http_error(req, 400, "22023", "follow must be a job id", NULL);
		return false;
	}
	/* attempt 0 never exists: the permission check without reading any output */
	res = PQexecParams(conn, "SELECT dispatch.job_log($1::bigint, 'stdout', 0)", 1, NULL,
					   values, NULL, NULL, 0);
	ok = PQresultStatus(res) == PGRES_TUPLES_OK;
	if (!ok)
		*ret = http_sql_error(req, pqerror_json(res, conn));
	PQclear(res);
	return ok;
}

/* Serves GET /api/v1/events: a stream starting with "hello" at the current position. */
enum MHD_Result
events_serve(Request *req, const Route *route, PGconn *conn)
{
	const char *follow = MHD_lookup_connection_value(req->mhd, MHD_GET_ARGUMENT_KIND, "follow");
	int64_t		job = 0;
	Client	   *c;
	struct MHD_Response *resp;
	enum MHD_Result ret;

	(void) route;
	if (follow != NULL && !check_follow(req, conn, follow, &job, &ret))
		return ret;
	if ((c = calloc(1, sizeof(Client))) == NULL)
		return MHD_NO;
	pthread_mutex_lock(&lock);
	if (clients >= web_config.max_event_clients)
	{
		pthread_mutex_unlock(&lock);
		free(c);
		return http_error(req, 503, "53300", "too many event streams",
						  "The limit is --max-event-clients.");
	}
	clients++;
	c->next = head;
	c->fd = MHD_get_connection_info(req->mhd, MHD_CONNECTION_INFO_CONNECTION_FD)->connect_fd;
	pthread_mutex_unlock(&lock);
	if (job != 0 && !follow_add(job))
	{
		char		detail[96];

		free_client(c);
		snprintf(detail, sizeof(detail), "At most %d jobs are followed at once; try again later.",
				 MAX_FOLLOWED);
		return http_error(req, 503, "53300", "too many jobs followed", detail);
	}
	c->follow = job;
	c->len = snprintf(c->buf, sizeof(c->buf),
					  "retry: 3000\nevent: hello\ndata: {\"type\": \"hello\"}\n\n");
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, read_events, c,
											 free_client);
	if (resp == NULL)
	{
		free_client(c);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "text/event-stream");
	MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	http_add_common_headers(resp);
	req->status = 200;
	ret = MHD_queue_response(req->mhd, 200, resp);
	MHD_destroy_response(resp);
	return ret;
}
