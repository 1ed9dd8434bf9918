/*
 * target.c: what a notification target may be, and where a webhook may go.
 *
 * A target is "mailto:" and a plain address (core/mailhdr.c), or an http:// or
 * https:// URL.  dispatch.webhook_allow, set by an administrator in the server's
 * configuration, lists the webhook destinations users may name: comma-separated
 * entries "host[:port]" (either scheme, the scheme's default port when none is
 * given) or "http[s]://host[:port][/path]" (that scheme, host and port, and paths
 * at or below path).  URLs are parsed by libcurl's URL API, and the parsed handle
 * is what the sender fetches, so what is checked is what is connected to:
 * "http://allowed@evil/" has host evil, "/a/../b" is "/b", and the port is
 * compared as a number.  The same check runs when a rule is created (through
 * dispatch._notify_target_problem()) and again when each webhook is sent.
 *
 * Members of dispatch_admin may name other webhooks too, but those reach public
 * addresses only: target_public() refuses loopback, private, link-local, shared,
 * multicast and reserved addresses, IPv4 and IPv6 (and IPv4 inside IPv6),
 * checked on the address each socket is about to connect to, after DNS.  A name
 * that resolves to 127.0.0.1 is refused like 127.0.0.1 itself.
 */
#include "pg_dispatch.h"
#include "notify.h"

#include <netinet/in.h>

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "mailhdr.h"

PG_FUNCTION_INFO_V1(_notify_target_problem);

static char *url_part(CURLU *u, CURLUPart what);
static CURLU *parse_entry(const char *entry, const char *scheme);
static bool entry_matches(const char *entry, CURLU *target);
static bool public_v4(const unsigned char *a);

/* Returns part what of u (the default port for CURLUPART_PORT) palloc'd, "" when absent. */
static char *
url_part(CURLU *u, CURLUPart what)
{
	char	   *value = NULL;
	char	   *copy;

	if (curl_url_get(u, what, &value, what == CURLUPART_PORT ? CURLU_DEFAULT_PORT : 0) != CURLUE_OK)
		return pstrdup("");
	copy = pstrdup(value);
	curl_free(value);
	return copy;
}

/* Returns url parsed (curl_url_cleanup() it), or NULL unless it is http:// or https:// with a host. */
CURLU *
target_url(const char *url)
{
	CURLU	   *u = curl_url();
	char	   *scheme,
			   *host;
	bool		ok;

	if (u == NULL)
		return NULL;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
	{
		curl_url_cleanup(u);
		return NULL;
	}
	scheme = url_part(u, CURLUPART_SCHEME);
	host = url_part(u, CURLUPART_HOST);
	ok = host[0] != '\0' && (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0);
	if (!ok)
	{
		curl_url_cleanup(u);
		u = NULL;
	}
	return u;
}

/*
 * Returns entry of dispatch.webhook_allow parsed, with scheme prefixed when the
 * entry names none; NULL when it is not a URL without user, query or fragment.
 */
static CURLU *
parse_entry(const char *entry, const char *scheme)
{
	char	   *url = strstr(entry, "://") != NULL ? pstrdup(entry) : psprintf("%s://%s", scheme, entry);
	CURLU	   *u = target_url(url);

	if (u != NULL && (url_part(u, CURLUPART_USER)[0] != '\0' || url_part(u, CURLUPART_QUERY)[0] != '\0' ||
					  url_part(u, CURLUPART_FRAGMENT)[0] != '\0'))
	{
		curl_url_cleanup(u);
		u = NULL;
	}
	pfree(url);
	return u;
}

/* Returns true when the allow-list entry covers target: scheme, host, port and path prefix. */
static bool
entry_matches(const char *entry, CURLU *target)
{
	char	   *scheme = url_part(target, CURLUPART_SCHEME);
	CURLU	   *e = parse_entry(entry, scheme);
	bool		match = false;

	if (e != NULL)
	{
		char	   *path = url_part(e, CURLUPART_PATH);
		char	   *tpath = url_part(target, CURLUPART_PATH);
		size_t		n = strlen(path);

		match = strcmp(url_part(e, CURLUPART_SCHEME), scheme) == 0 &&
			pg_strcasecmp(url_part(e, CURLUPART_HOST), url_part(target, CURLUPART_HOST)) == 0 &&
			strcmp(url_part(e, CURLUPART_PORT), url_part(target, CURLUPART_PORT)) == 0 &&
			strncmp(tpath, path, n) == 0 &&
			(n == 0 || path[n - 1] == '/' || tpath[n] == '\0' || tpath[n] == '/');
		curl_url_cleanup(e);
	}
	return match;
}

/* Returns true when an entry of dispatch.webhook_allow covers target. */
bool
target_allowed(CURLU *target)
{
	char	   *list = pstrdup(dispatch_webhook_allow);
	bool		allowed = false;

	for (char *save = NULL, *entry = strtok_r(list, ", ", &save); entry != NULL && !allowed;
		 entry = strtok_r(NULL, ", ", &save))
		allowed = entry_matches(entry, target);
	pfree(list);
	return allowed;
}

/* Returns true when IPv4 address a (4 bytes, network order) is public. */
static bool
public_v4(const unsigned char *a)
{
	return !(a[0] == 0 || a[0] == 10 || a[0] == 127 || a[0] >= 224 ||	/* this, private, loopback, multicast, reserved */
			 (a[0] == 100 && (a[1] & 0xc0) == 64) ||	/* shared (CGNAT) */
			 (a[0] == 169 && a[1] == 254) ||	/* link-local */
			 (a[0] == 172 && (a[1] & 0xf0) == 16) ||	/* private */
			 (a[0] == 192 && a[1] == 0 && a[2] == 0) ||	/* IETF protocol assignments */
			 (a[0] == 192 && a[1] == 168) ||	/* private */
			 (a[0] == 198 && (a[1] & 0xfe) == 18));	/* benchmarking */
}

/* Returns true when sa is a public IPv4 or IPv6 address (false for any other family). */
bool
target_public(const struct sockaddr *sa)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b};
	const unsigned char *a;

	if (sa->sa_family == AF_INET)
		return public_v4((const unsigned char *) &((const struct sockaddr_in *) sa)->sin_addr);
	if (sa->sa_family != AF_INET6)
		return false;
	a = ((const struct sockaddr_in6 *) sa)->sin6_addr.s6_addr;
	if (memcmp(a, mapped, 12) == 0 || memcmp(a, nat64, 12) == 0)
		return public_v4(a + 12);
	return !((a[0] == 0 && memcmp(a, mapped, 10) == 0) ||	/* ::, ::1, IPv4-compatible */
			 (a[0] & 0xfe) == 0xfc ||	/* unique local */
			 (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) ||	/* link-local */
			 (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0) ||	/* site-local */
			 a[0] == 0xff);		/* multicast */
}

/* Returns NULL when target may be named by anyone, else "invalid" or "not allowed" (a webhook off the list). */
const char *
target_problem(const char *target)
{
	CURLU	   *u;
	bool		allowed;

	if (strncmp(target, "mailto:", 7) == 0)
		return mailhdr_address_ok(target + 7) ? NULL : "invalid";
	u = target_url(target);
	if (u == NULL)
		return "invalid";
	allowed = target_allowed(u);
	curl_url_cleanup(u);
	return allowed ? NULL : "not allowed";
}

/* _notify_target_problem(target text) -> NULL, 'invalid' or 'not allowed' (target_problem) */
Datum
_notify_target_problem(PG_FUNCTION_ARGS)
{
	const char *problem = target_problem(text_to_cstring(PG_GETARG_TEXT_PP(0)));

	if (problem == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(problem));
}

/* GUC check hook of dispatch.webhook_allow: every entry parses. */
bool
target_check_allow(char **newval, void **extra, GucSource source)
{
	char	   *list = pstrdup(*newval);

	for (char *save = NULL, *entry = strtok_r(list, ", ", &save); entry != NULL;
		 entry = strtok_r(NULL, ", ", &save))
	{
		CURLU	   *u = parse_entry(entry, "http");

		if (u == NULL)
		{
			GUC_check_errdetail("\"%s\" is not host[:port] or an http:// or https:// URL without user, query or fragment.",
								entry);
			return false;
		}
		curl_url_cleanup(u);
	}
	pfree(list);
	return true;
}

/* GUC check hook of dispatch.mail_from: a plain address. */
bool
target_check_mail_from(char **newval, void **extra, GucSource source)
{
	if (mailhdr_address_ok(*newval))
		return true;
	GUC_check_errdetail("\"%s\" is not a plain address such as pg-dispatch@example.com.", *newval);
	return false;
}
