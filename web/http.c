/*
 * http.c: the life of one HTTP request in dispatch-web.
 *
 * libmicrohttpd calls http_answer() once for the headers, once per piece of the body
 * and once at the end.  The body is kept up to --max-body bytes (a Content-Length over
 * that is refused at once with 413, a longer chunked body when it ends).  Then, in this
 * order: the route (404, 405), read-only mode and cross-site checks for writing routes
 * (403, 415), the login (401, 429, 503), and the route's handler with a connection of
 * the caller's own role.  Every answer, errors included, is JSON shaped like a SQL
 * error: {"sqlstate", "message", "detail", "hint"}; security headers go on every one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "web.h"

static enum MHD_Result dispatch_request(Request *req);
static bool write_refused(Request *req, enum MHD_Result *ret);
static enum MHD_Result refuse_login(Request *req, PoolStatus status);
static int	sqlstate_status(const char *sqlstate);

/* Adds the headers every answer carries: no sniffing, no framing, no referrer, and a
 * content security policy that allows the page's own files only. */
void
http_add_common_headers(struct MHD_Response *resp)
{
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "Content-Security-Policy",
							"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
}

/* Queues a response with a copy of body; returns MHD's verdict. */
enum MHD_Result
http_send(Request *req, int status, const char *type, const char *body, size_t len)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(len, (void *) body, MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", type);
	http_add_common_headers(resp);
	req->status = status;
	ret = MHD_queue_response(req->mhd, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Queues body (a reference taken over) as a JSON response. */
enum MHD_Result
http_send_json(Request *req, int status, json_t *body)
{
	char	   *text = json_dumps(body, JSON_COMPACT);
	enum MHD_Result ret;

	json_decref(body);
	if (text == NULL)
		return MHD_NO;
	ret = http_send(req, status, "application/json", text, strlen(text));
	free(text);
	return ret;
}

/* Queues an error of dispatch-web's own, shaped like a SQL error (detail may be NULL). */
enum MHD_Result
http_error(Request *req, int status, const char *sqlstate, const char *message,
		   const char *detail)
{
	json_t	   *err = json_object();

	json_object_set_new(err, "sqlstate", json_string(sqlstate));
	json_object_set_new(err, "message", json_string(message));
	if (detail != NULL)
		json_object_set_new(err, "detail", json_string(detail));
	return http_send_json(req, status, err);
}

/* Queues err (a reference taken over), a SQL error as pqerror_json() makes it, with the
 * HTTP status its SQLSTATE means. */
enum MHD_Result
http_sql_error(Request *req, json_t *err)
{
	const char *state = json_string_value(json_object_get(err, "sqlstate"));

	return http_send_json(req, sqlstate_status(state), err);
}

/* Returns the HTTP status for a SQLSTATE: what the client did wrong, what it may not
 * do, what does not exist, what conflicts, or what failed on our side. */
static int
sqlstate_status(const char *sqlstate)
{
	if (sqlstate == NULL)
		return 503;				/* no SQLSTATE: the connection broke */
	if (strcmp(sqlstate, "42501") == 0 || strcmp(sqlstate, "25006") == 0 ||
		strncmp(sqlstate, "28", 2) == 0)
		return 403;
	if (strcmp(sqlstate, "42704") == 0 || strcmp(sqlstate, "P0002") == 0)
		return 404;
	if (strcmp(sqlstate, "42710") == 0 || strncmp(sqlstate, "55", 2) == 0 ||
		strncmp(sqlstate, "40", 2) == 0)
		return 409;
	if (strcmp(sqlstate, "57014") == 0)
		return 504;				/* statement_timeout */
	if (strncmp(sqlstate, "08", 2) == 0 || strncmp(sqlstate, "53", 2) == 0 ||
		strncmp(sqlstate, "57", 2) == 0)
		return 503;
	if (strncmp(sqlstate, "22", 2) == 0 || strncmp(sqlstate, "23", 2) == 0 ||
		strncmp(sqlstate, "42", 2) == 0 || strncmp(sqlstate, "54", 2) == 0)
		return 400;
	return 500;
}

/* MHD's access handler: collects the bounded body, then answers the request. */
enum MHD_Result
http_answer(void *cls, struct MHD_Connection *mhd, const char *url, const char *method,
			const char *version, const char *upload, size_t *upload_size, void **ctx)
{
	Request    *req = *ctx;

	(void) cls;
	(void) version;
	if (req == NULL)
	{
		const char *length = MHD_lookup_connection_value(mhd, MHD_HEADER_KIND,
														 MHD_HTTP_HEADER_CONTENT_LENGTH);

		req = calloc(1, sizeof(Request));
		if (req == NULL)
			return MHD_NO;
		req->mhd = mhd;
		req->method = method;
		req->url = url;
		*ctx = req;
		if (length != NULL && strtoull(length, NULL, 10) > web_config.max_body)
		{
			req->too_large = true;
			return http_error(req, 413, "54000", "request body too large",
							  "The limit is --max-body bytes.");
		}
		return MHD_YES;
	}
	if (*upload_size > 0)
	{
		if (!req->too_large && req->body_len + *upload_size <= web_config.max_body)
		{
			char	   *grown = realloc(req->body, req->body_len + *upload_size + 1);

			if (grown == NULL)
				return MHD_NO;
			req->body = grown;
			memcpy(req->body + req->body_len, upload, *upload_size);
			req->body_len += *upload_size;
			req->body[req->body_len] = '\0';
		}
		else
			req->too_large = true;
		*upload_size = 0;
		return MHD_YES;
	}
	if (req->too_large)
		return req->status ? MHD_YES :
			http_error(req, 413, "54000", "request body too large",
					   "The limit is --max-body bytes.");
	return dispatch_request(req);
}

/* Answers a complete request: route, checks, login, handler. */
static enum MHD_Result
dispatch_request(Request *req)
{
	bool		known = false;
	const Route *route;
	PGconn	   *conn = NULL;
	char	   *user = NULL,
			   *password = NULL;
	PoolStatus	status = POOL_OK;
	enum MHD_Result ret;

	route = route_match(req, &known);
	if (route == NULL && !files_is_page(req->url))
		return known ? http_error(req, 405, "42601", "method not allowed", NULL)
			: http_error(req, 404, "42704", "no such API path", NULL);
	if (route != NULL && route->writes && write_refused(req, &ret))
		return ret;
	if (route == NULL || !route->public)
	{
		user = MHD_basic_auth_get_username_password(req->mhd, &password);
		status = pool_acquire(user, password, &conn);
		if (password != NULL)
		{
			memset(password, 0, strlen(password));
			free(password);
		}
		if (status != POOL_OK)
		{
			free(user);
			return refuse_login(req, status);
		}
		req->user = user;
	}
	if (route == NULL)
		ret = files_serve(req);
	else
		ret = (route->handler ? route->handler : route_run_sql) (req, route, conn);
	if (conn != NULL)
		pool_release(conn);
	return ret;
}

/* Returns true when a writing request is refused, with the verdict of the refusal
 * queued in *ret. */
static bool
write_refused(Request *req, enum MHD_Result *ret)
{
	const char *type = MHD_lookup_connection_value(req->mhd, MHD_HEADER_KIND,
												   MHD_HTTP_HEADER_CONTENT_TYPE);
	const char *site = MHD_lookup_connection_value(req->mhd, MHD_HEADER_KIND,
												   "Sec-Fetch-Site");

	if (web_config.read_only)
		*ret = http_error(req, 403, "25006", "dispatch-web is in read-only mode",
						  "It was started with --read-only.");
	/* Browsers send Basic credentials with any request to this origin: a page of
	 * another site must not be able to submit or cancel in the user's name.  A form
	 * cannot send these content types without a CORS preflight, which we never grant. */
	else if (site != NULL && strcasecmp(site, "cross-site") == 0)
		*ret = http_error(req, 403, "42501", "cross-site requests cannot change anything",
						  NULL);
	else if (type == NULL || (strncasecmp(type, "application/json", 16) != 0 &&
							  strncasecmp(type, "application/yaml", 16) != 0))
		*ret = http_error(req, 415, "22023", "unsupported content type",
						  "Send Content-Type: application/json (or application/yaml for a joblist).");
	else
		return false;
	return true;
}

/* Queues the answer to a refused login. */
static enum MHD_Result
refuse_login(Request *req, PoolStatus status)
{
	const char *body = "{\"sqlstate\":\"28P01\",\"message\":\"authentication failed\"}";
	struct MHD_Response *resp;
	enum MHD_Result ret;

	switch (status)
	{
		case POOL_LOCKED:
			return http_error(req, 429, "28000", "too many failed logins for this user",
							  "Try again in a minute.");
		case POOL_BUSY:
			return http_error(req, 503, "53300", "every database connection is in use",
							  "The limit is --max-db-connections.");
		case POOL_DOWN:
			return http_error(req, 503, "08006", "could not connect to the database", NULL);
		default:
			break;
	}
	if (status == POOL_NO_CREDENTIALS)
		body = "{\"sqlstate\":\"28000\",\"message\":\"login required\"}";
	resp = MHD_create_response_from_buffer(strlen(body), (void *) body,
										   MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "application/json");
	http_add_common_headers(resp);
	req->status = 401;
	ret = MHD_queue_basic_auth_fail_response(req->mhd, "pg_dispatch", resp);
	MHD_destroy_response(resp);
	return ret;
}

/* MHD's completion callback: one access log line, then the request is freed.  The log
 * names the role, never a password. */
void
http_completed(void *cls, struct MHD_Connection *mhd, void **ctx,
			   enum MHD_RequestTerminationCode why)
{
	Request    *req = *ctx;

	(void) cls;
	(void) mhd;
	if (req == NULL)
		return;
	fprintf(stderr, "dispatch-web: %s %s %d %s%s\n", req->method, req->url, req->status,
			req->user ? req->user : "-",
			why == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (aborted)");
	free((char *) req->user);
	free(req->body);
	free(req);
	*ctx = NULL;
}
