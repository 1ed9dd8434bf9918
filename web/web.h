/*
 * web.h: the parts of dispatch-web and the contracts between them.
 *
 * main.c    options, the HTTP daemon's limits, signals
 * http.c    one request's lifecycle: bounded body, checks, JSON responses and errors
 * pool.c    HTTP Basic logins as database roles, a bounded pool of their connections
 * routes.c  the route table (the one source of what /api/v1 serves) and its SQL
 * openapi.c the OpenAPI 3 document, generated from the route table
 * events.c  one LISTEN connection fanned out to Server-Sent Events clients
 * files.c   the static page
 */
#ifndef WEB_H
#define WEB_H

#include <stdbool.h>
#include <stddef.h>
#include <microhttpd.h>
#include <jansson.h>
#include <libpq-fe.h>

typedef struct WebConfig
{
	const char *conninfo;		/* base connection string (--dbname) */
	const char *listen;			/* host:port */
	const char *static_dir;		/* the page's files */
	const char *tls_cert;		/* PEM files; both or neither */
	const char *tls_key;
	bool		read_only;
	size_t		max_body;		/* bytes of a request body */
	int			max_connections;	/* HTTP connections at once */
	int			max_per_ip;		/* HTTP connections from one address */
	int			timeout_s;		/* idle HTTP connection timeout */
	int			max_db_connections; /* pooled role connections */
	int			pool_max_age_s; /* a pooled login is checked again after this */
	int			statement_timeout_ms;
	int			max_event_clients;
	int			max_login_failures; /* per user and minute */
} WebConfig;

extern WebConfig web_config;

/* What a route needs from the request, in the order of the SQL's $1, $2, ... */
typedef enum ParamIn
{
	PARAM_NONE = 0,
	PARAM_PATH,
	PARAM_QUERY,
	PARAM_BODY,
	PARAM_READONLY				/* the daemon's read-only flag, "true"/"false" */
} ParamIn;

typedef struct RouteParam
{
	const char *name;
	ParamIn		in;
	const char *type;			/* OpenAPI type: integer, string, boolean */
	bool		required;
	const char *doc;
} RouteParam;

#define ROUTE_MAX_PARAMS 5

typedef struct Request Request;
typedef struct Route Route;
typedef enum MHD_Result (*RouteHandler) (Request *req, const Route *route, PGconn *conn);

struct Route
{
	const char *method;			/* GET or POST */
	const char *path;			/* /api/v1/joblists/{id} */
	const char *summary;
	RouteParam	params[ROUTE_MAX_PARAMS];
	const char *sql;			/* returns one row, one column: the body; NULL result = 404 */
	const char *missing;		/* 404 message when the SQL returns NULL ("%s" = 1st param) */
	RouteHandler handler;		/* default: route_run_sql */
	const char *content_type;	/* of the answer; default application/json */
	int			ok_status;		/* default 200 */
	bool		writes;			/* refused in read-only mode; needs a JSON/YAML body type */
	bool		public;			/* no login needed */
};

/* One HTTP request, from its first call to its completion. */
struct Request
{
	struct MHD_Connection *mhd;
	const char *method;
	const char *url;
	char	   *body;
	size_t		body_len;
	bool		too_large;
	const char *user;			/* the authenticated role, once known */
	const char *path_values[ROUTE_MAX_PARAMS];	/* {x} segments of the matched route */
	char		path_buf[1024];
	int			status;			/* for the access log */
};

/* http.c */
enum MHD_Result http_answer(void *cls, struct MHD_Connection *mhd, const char *url,
							const char *method, const char *version, const char *upload,
							size_t *upload_size, void **ctx);
void		http_completed(void *cls, struct MHD_Connection *mhd, void **ctx,
						   enum MHD_RequestTerminationCode why);
enum MHD_Result http_send(Request *req, int status, const char *type, const char *body,
						  size_t len);
enum MHD_Result http_send_json(Request *req, int status, json_t *body);
enum MHD_Result http_error(Request *req, int status, const char *sqlstate,
						   const char *message, const char *detail);
enum MHD_Result http_sql_error(Request *req, json_t *err);
void		http_add_common_headers(struct MHD_Response *resp);

/* pool.c */
typedef enum PoolStatus
{
	POOL_OK,
	POOL_NO_CREDENTIALS,		/* 401, ask for them */
	POOL_AUTH_FAILED,			/* 401 */
	POOL_LOCKED,				/* 429: too many failures for this user */
	POOL_BUSY,					/* 503: every connection in use */
	POOL_DOWN					/* 503: the database does not answer */
} PoolStatus;
void		pool_init(void);
PoolStatus	pool_acquire(const char *user, const char *password, PGconn **conn);
void		pool_release(PGconn *conn);
void		pool_shutdown(void);

/* routes.c */
extern const Route web_routes[];
extern const int web_route_count;
const Route *route_match(Request *req, bool *path_known);
enum MHD_Result route_run_sql(Request *req, const Route *route, PGconn *conn);

/* openapi.c */
json_t	   *openapi_document(void);
enum MHD_Result openapi_serve(Request *req, const Route *route, PGconn *conn);

/* events.c */
int			events_start(char *err, size_t errlen);
void		events_stop(void);
enum MHD_Result events_serve(Request *req, const Route *route, PGconn *conn);

/* files.c */
enum MHD_Result files_serve(Request *req);
bool		files_is_page(const char *url);

#endif
