/*
 * caller.c: dispatch.current_caller(), who is calling, for permission checks.
 *
 * The SQL API runs as SECURITY DEFINER functions, where current_user is the
 * functions' owner.  Recording who submitted or cancelled, and the permission
 * checks (users cancel their own joblists, agents act for their own node), need
 * the role that called in from outside, which SQL cannot name:
 * GetOuterUserId(), the session user as changed by SET ROLE.
 */
#include "pg_dispatch.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(current_caller);

/* Returns the role outside any SECURITY DEFINER function (SET ROLE honoured). */
Datum
current_caller(PG_FUNCTION_ARGS)
{
	char	   *role = GetUserNameFromId(GetOuterUserId(), false);

	PG_RETURN_DATUM(DirectFunctionCall1(namein, CStringGetDatum(role)));
}
