/*
 * pqerror.c: turns a failed PGresult into the JSON error object the HTTP API and
 * dispatchctl --json print, carrying exactly what SQL gave: the SQLSTATE, the primary
 * message, and the detail (where pg_dispatch names the JSON path) and hint.  The
 * connection asks for client_encoding UTF8; text that is not valid UTF-8 is left out.
 */
#include <string.h>

#include "pqerror.h"

/* Sets key to a copy of value with trailing newlines removed; nothing when value is
 * NULL or empty. */
static void
set_field(json_t *obj, const char *key, const char *value)
{
	size_t		len;

	if (value == NULL)
		return;
	len = strlen(value);
	while (len > 0 && (value[len - 1] == '\n' || value[len - 1] == ' '))
		len--;
	if (len > 0)
		json_object_set_new(obj, key, json_stringn(value, len));
}

/* Returns a new error object for res (or conn's last error when res is NULL). */
json_t *
pqerror_json(const PGresult *res, const PGconn *conn)
{
	json_t	   *obj = json_object();
	const char *message = NULL;

	if (res != NULL)
	{
		set_field(obj, "sqlstate", PQresultErrorField(res, PG_DIAG_SQLSTATE));
		message = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		if (message == NULL)
			message = PQresultErrorMessage(res);
		set_field(obj, "message", message);
		set_field(obj, "detail", PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL));
		set_field(obj, "hint", PQresultErrorField(res, PG_DIAG_MESSAGE_HINT));
	}
	else if (conn != NULL)
		set_field(obj, "message", PQerrorMessage(conn));
	if (json_object_get(obj, "message") == NULL)
		json_object_set_new(obj, "message", json_string("unknown error"));
	return obj;
}
