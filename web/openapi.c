/*
 * openapi.c: the OpenAPI 3 document of /api/v1, generated from the route table.
 *
 * Nothing here lists a path: every route of web_routes[] is documented with its
 * summary, parameters, body and answers, and nothing else is, so the document and
 * what is served are the same list by construction (t/022_web_api.pl still checks
 * both directions against the running server).
 */
#include <ctype.h>
#include <string.h>

#include "web.h"

/* The login scheme and the error every route may answer with. */
static const char components[] =
	"{\"securitySchemes\": {\"basic\": {\"type\": \"http\", \"scheme\": \"basic\"}},"
	" \"responses\": {\"Error\": {\"description\": \"An error, as SQL reported it\","
	"   \"content\": {\"application/json\": {\"schema\": {\"$ref\": \"#/components/schemas/Error\"}}}}},"
	" \"schemas\": {\"Error\": {\"type\": \"object\", \"required\": [\"message\"],"
	"   \"properties\": {\"sqlstate\": {\"type\": \"string\"}, \"message\": {\"type\": \"string\"},"
	"   \"detail\": {\"type\": \"string\"}, \"hint\": {\"type\": \"string\"},"
	"   \"line\": {\"type\": \"integer\"}, \"column\": {\"type\": \"integer\"}}}}}";

/* Returns the OpenAPI parameter objects of route (path and query ones). */
static json_t *
parameters(const Route *route)
{
	json_t	   *list = json_array();

	for (int i = 0; i < ROUTE_MAX_PARAMS && route->params[i].in != PARAM_NONE; i++)
	{
		const RouteParam *p = &route->params[i];

		if (p->in != PARAM_PATH && p->in != PARAM_QUERY)
			continue;
		json_array_append_new(list, json_pack("{s:s, s:s, s:b, s:s, s:{s:s}}",
											  "name", p->name,
											  "in", p->in == PARAM_PATH ? "path" : "query",
											  "required", p->required,
											  "description", p->doc,
											  "schema", "type", p->type));
	}
	return list;
}

/* Returns the OpenAPI operation object of route. */
static json_t *
operation(const Route *route)
{
	char		status[8];
	const char *type = route->content_type ? route->content_type : "application/json";
	json_t	   *op = json_pack("{s:s, s:o}", "summary", route->summary,
							   "parameters", parameters(route));
	json_t	   *responses = json_object();

	for (int i = 0; i < ROUTE_MAX_PARAMS && route->params[i].in != PARAM_NONE; i++)
		if (route->params[i].in == PARAM_BODY)
			json_object_set_new(op, "requestBody", json_pack(
				"{s:b, s:s, s:{s:{s:{s:s}}, s:{s:{s:s}}}}", "required", 1,
				"description", route->params[i].doc,
				"content", "application/json", "schema", "type", "object",
				"application/yaml", "schema", "type", "string"));
	snprintf(status, sizeof(status), "%d", route->ok_status ? route->ok_status : 200);
	json_object_set_new(responses, status, json_pack("{s:s, s:{s:{}}}", "description", "OK",
													 "content", type));
	json_object_set_new(responses, "default",
						json_pack("{s:s}", "$ref", "#/components/responses/Error"));
	json_object_set_new(op, "responses", responses);
	if (route->public)
		json_object_set_new(op, "security", json_array());
	return op;
}

/* Returns the whole document. */
json_t *
openapi_document(void)
{
	json_t	   *paths = json_object();

	for (int i = 0; i < web_route_count; i++)
	{
		const Route *r = &web_routes[i];
		json_t	   *item = json_object_get(paths, r->path);
		char		method[8];
		size_t		k;

		if (item == NULL)
		{
			item = json_object();
			json_object_set_new(paths, r->path, item);
		}
		for (k = 0; r->method[k] != '\0' && k < sizeof(method) - 1; k++)
			method[k] = tolower((unsigned char) r->method[k]);
		method[k] = '\0';
		json_object_set_new(item, method, operation(r));
	}
	return json_pack("{s:s, s:{s:s, s:s, s:s}, s:o, s:[{s:[]}], s:o}",
					 "openapi", "3.0.3",
					 "info", "title", "pg_dispatch", "version", "0.1.0",
					 "description", "dispatch-web: the REST/JSON API of pg_dispatch. Log in "
					 "with HTTP Basic as a database role; the database's permissions apply.",
					 "paths", paths,
					 "security", "basic",
					 "components", json_loads(components, 0, NULL));
}

/* Serves the document. */
enum MHD_Result
openapi_serve(Request *req, const Route *route, PGconn *conn)
{
	(void) route;
	(void) conn;
	return http_send_json(req, 200, openapi_document());
}
