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
 */
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "web.h"

#define RING 1024
#define KEEPALIVE_S 15
#define MAX_EVENT 8192			/* a NOTIFY payload is shorter than 8000 bytes */

typedef struct Client
{
	uint64_t	next;			/* sequence number of the next event to send */
	int			fd;				/* the client's socket, watched for a hang-up */
	char		buf[MAX_EVENT + 64];
	size_t		len;
	size_t		off;
} Client;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t arrived = PTHREAD_COND_INITIALIZER;
static char *ring[RING];
static uint64_t head;			/* sequence number of the next event stored */
static bool stopping;
static int	clients;
static pthread_t listener;

static void *listen_loop(void *arg);
static void push(const char *event, const char *data);

/* Appends one event to the ring and wakes the clients. */
static void
push(const char *event, const char *data)
{
	size_t		len = strlen(event) + strlen(data) + 20;
	char	   *text = malloc(len);

	if (text == NULL)
		return;
	snprintf(text, len, "event: %s\ndata: %s\n\n", event, data);
	pthread_mutex_lock(&lock);
	free(ring[head % RING]);
	ring[head % RING] = text;
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
		push(type, payload);
	json_decref(obj);
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

/* Reads notifications from conn until it breaks or the daemon stops. */
static void
read_notifications(PGconn *conn)
{
	struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};
	PGnotify   *n;

	while (!is_stopping() && PQstatus(conn) == CONNECTION_OK)
	{
		if (poll(&pfd, 1, 1000) < 0 || (pfd.revents && !PQconsumeInput(conn)))
			break;
		while ((n = PQnotifies(conn)) != NULL)
		{
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
				push("resync", "{\"type\": \"resync\"}");
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
		pthread_mutex_lock(&lock);
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
	pthread_mutex_lock(&lock);
	clients--;
	pthread_mutex_unlock(&lock);
	free(cls);
}

/* Serves GET /api/v1/events: a stream starting with "hello" at the current position. */
enum MHD_Result
events_serve(Request *req, const Route *route, PGconn *conn)
{
	Client	   *c = calloc(1, sizeof(Client));
	struct MHD_Response *resp;
	enum MHD_Result ret;

	(void) route;
	(void) conn;
	if (c == NULL)
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
