/*
 * pqerror.h: a libpq error as JSON, shared by dispatchctl and dispatch-web.
 */
#ifndef PQERROR_H
#define PQERROR_H

#include <jansson.h>
#include <libpq-fe.h>

/* Returns a new {"sqlstate", "message", "detail", "hint"} object for a failed result
 * (absent fields left out; conn's message when res is NULL). */
json_t *pqerror_json(const PGresult *res, const PGconn *conn);

#endif
