/*
 * test_routes.c: the route table and the OpenAPI document generated from it.
 *
 * Checks what a typo in web_routes[] would break: every {x} of a path is a declared
 * path parameter and every path parameter is in the path, no method and path is there
 * twice, writing routes are POSTs that run SQL, a route that reads a body writes (so
 * the content type, cross-site and read-only checks guard it), every route has a
 * summary and an answer (SQL or a handler); then that route_match() finds each route by its method
 * and path (with values for its {x}), says 405 for another method and not this
 * route for a longer path, and that the document lists every route and nothing else.
 */
#include <stdio.h>
#include <string.h>

#include "../web.h"

WebConfig	web_config;

static int	failures;

/* Reports a check. */
static void
check(int ok, const char *what, const char *path)
{
	if (!ok)
	{
		failures++;
		printf("not ok - %s: %s\n", what, path);
	}
}

/* Returns how many {x} segments path has, and whether each names a path parameter. */
static int
path_params_declared(const Route *r, int *declared)
{
	int			n = 0;

	*declared = 1;
	for (const char *p = strchr(r->path, '{'); p; p = strchr(p + 1, '{'))
	{
		size_t		len = strchr(p, '}') - p - 1;
		int			found = 0;

		n++;
		for (int i = 0; i < ROUTE_MAX_PARAMS && r->params[i].in != PARAM_NONE; i++)
			found |= r->params[i].in == PARAM_PATH && strlen(r->params[i].name) == len &&
				strncmp(r->params[i].name, p + 1, len) == 0;
		*declared &= found;
	}
	return n;
}

/* Returns path with every {x} replaced by "7". */
static const char *
concrete(const char *path, char *buf, size_t len)
{
	char	   *o = buf;

	for (const char *p = path; *p && o < buf + len - 2; p++)
	{
		if (*p == '{')
		{
			*o++ = '7';
			p = strchr(p, '}');
		}
		else
			*o++ = *p;
	}
	*o = '\0';
	return buf;
}

/* Runs the checks; exit status 1 when one failed. */
int
main(void)
{
	json_t	   *doc = openapi_document();
	json_t	   *paths = json_object_get(doc, "paths");
	size_t		operations = 0;
	const char *key;
	json_t	   *item;

	for (int i = 0; i < web_route_count; i++)
	{
		const Route *r = &web_routes[i];
		int			declared,
					in_path = path_params_declared(r, &declared),
					path_params = 0,
					body = 0;
		char		url[256];
		Request		req = {.url = concrete(r->path, url, sizeof(url)), .method = r->method};
		bool		known;
		json_t	   *op;

		for (int k = 0; k < ROUTE_MAX_PARAMS && r->params[k].in != PARAM_NONE; k++)
		{
			path_params += r->params[k].in == PARAM_PATH;
			body += r->params[k].in == PARAM_BODY;
		}
		check(declared && in_path == path_params, "path parameters match the path", r->path);
		check(r->summary && r->summary[0], "a summary", r->path);
		check((r->sql != NULL) != (r->handler != NULL), "SQL or a handler", r->path);
		check(!r->writes || (strcmp(r->method, "POST") == 0 && r->sql), "writes are POSTs with SQL",
			  r->path);
		check(!body || r->writes, "a route that reads a body writes", r->path);
		check(strncmp(r->path, "/api/v1/", 8) == 0 || strcmp(r->path, "/metrics") == 0,
			  "under /api/v1", r->path);
		for (int j = 0; j < i; j++)
			check(strcmp(web_routes[j].path, r->path) || strcmp(web_routes[j].method, r->method),
				  "no route twice", r->path);
		check(route_match(&req, &known) == r, "route_match finds it", r->path);
		req.method = "PUT";
		check(route_match(&req, &known) == NULL && known, "another method is 405", r->path);
		strcat(url, "/x");
		req.method = r->method;
		check(route_match(&req, &known) != r, "a longer path is not this route", r->path);
		op = json_object_get(json_object_get(paths, r->path),
							 strcmp(r->method, "GET") == 0 ? "get" : "post");
		check(op != NULL, "documented", r->path);
		check(json_array_size(json_object_get(op, "parameters")) >= (size_t) path_params,
			  "its parameters documented", r->path);
	}
	json_object_foreach(paths, key, item)
		operations += json_object_size(item);
	check(operations == (size_t) web_route_count, "the document has nothing else", "");
	{
		Request		req = {.url = "/api/v1/joblists/", .method = "GET"};
		bool		known;

		check(route_match(&req, &known) == NULL && !known, "an empty {id} matches nothing",
			  req.url);
	}
	json_decref(doc);
	printf("%s: %d routes, %d failures\n", failures ? "FAIL" : "ok", web_route_count, failures);
	return failures ? 1 : 0;
}
