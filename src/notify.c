/*
 * notify.c: sending the notification outbox, many at once, from the monitor.
 *
 * The outbox's guarantees are the SQL's (sql/src/85_alerts.sql): a row is
 * claimed in a transaction (an attempt counted, the next try pushed back), sent
 * outside any transaction, and its outcome recorded in another; so a restart
 * loses nothing and a row marked sent is not sent again.  What this file adds is
 * that sending never holds the monitor: up to NOTIFY_IN_FLIGHT transfers run at
 * once in one libcurl multi handle, each bounded by dispatch.notify_timeout, and
 * the monitor pumps them between its evaluations (notify_pump, notify_wait), so
 * six receivers that accept and never answer hold six slots, not the rules and
 * the metric upkeep.  A row in flight is never claimed a second time: the claim
 * passes the ids in flight.
 *
 * What a transfer may do is fixed here, not by the URL: webhooks speak http and
 * https only and follow no redirect, mail speaks smtp and smtps to
 * dispatch.smtp_url only, no proxy from the environment is used.  A webhook goes
 * through target.c's checks again at send time: one that dispatch.webhook_allow
 * does not cover is sent only for a rule of a dispatch_admin member, and then
 * only to public addresses, checked on each socket before it connects.  Mail
 * headers are written by core/mailhdr.c, so no value can add a header.
 */
#include "pg_dispatch.h"
#include "notify.h"
#include "worker.h"

#include <time.h>

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "mailhdr.h"

/* One notification being sent; everything it owns is in cxt. */
typedef struct Transfer
{
	MemoryContext cxt;
	int64		id;
	char	   *target;
	char	   *subject;
	char	   *body;
	bool		trusted;		/* its rule's owner is a dispatch_admin member */
	bool		guard;			/* connect to public addresses only */
	bool		refused;		/* the guard refused an address */
	CURL	   *easy;
	CURLU	   *url;			/* a webhook's parsed URL, what curl fetches */
	struct curl_slist *list;	/* a webhook's headers or a mail's recipient */
	StringInfoData mail;		/* a mail's message, mail.cursor bytes uploaded */
	char		err[CURL_ERROR_SIZE];
} Transfer;

/* Sets a libcurl option of t, keeping the first failure in t->err. */
#define SET(t, option, value) \
	do { \
		CURLcode	rc_ = curl_easy_setopt((t)->easy, option, value); \
		if (rc_ != CURLE_OK && (t)->err[0] == '\0') \
			snprintf((t)->err, CURL_ERROR_SIZE, "could not set %s: %s", #option, \
					 curl_easy_strerror(rc_)); \
	} while (0)

static MemoryContext notify_cxt = NULL;
static CURLM *multi = NULL;
static Transfer *slots[NOTIFY_IN_FLIGHT];	/* NULL: free */
static int	in_flight = 0;
static bool more_due = false;	/* the last claim filled every free slot */

static void claim(void);
static void start(Transfer *t);
static bool setup_webhook(Transfer *t);
static bool setup_mail(Transfer *t);
static void add_header(StringInfo mail, const char *name, const char *value);
static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a);
static size_t upload_chunk(char *buf, size_t size, size_t n, void *arg);
static size_t discard(char *buf, size_t size, size_t n, void *arg);
static void finish(Transfer *t, CURLcode rc);
static void release(Transfer *t);

/* Initialises libcurl and the multi handle; raises when libcurl cannot start. */
void
notify_start(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		ereport(ERROR, (errmsg("could not initialise libcurl")));
	multi = curl_multi_init();
	if (multi == NULL)
		ereport(ERROR, (errmsg("could not initialise libcurl")));
	notify_cxt = AllocSetContextCreate(TopMemoryContext, "pg_dispatch notifications",
									   ALLOCSET_DEFAULT_SIZES);
}

/* Claims due notifications into the free slots and starts them. */
static void
claim(void)
{
	Datum		busy[NOTIFY_IN_FLIGHT];
	int			nbusy = 0,
				want = NOTIFY_IN_FLIGHT - in_flight,
				got = 0;
	Oid			types[2] = {INT4OID, INT8ARRAYOID};
	Datum		values[2];
	Transfer   *claimed[NOTIFY_IN_FLIGHT];

	for (int i = 0; i < NOTIFY_IN_FLIGHT; i++)
		if (slots[i] != NULL)
			busy[nbusy++] = Int64GetDatum(slots[i]->id);
	worker_begin("SELECT dispatch._notifications_due()");
	if (OidIsValid(worker_extension_lock()))
	{
		SPITupleTable *r;

		values[0] = Int32GetDatum(want);
		values[1] = PointerGetDatum(construct_array(busy, nbusy, INT8OID, sizeof(int64),
													FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		r = worker_select("SELECT notification_id, target, subject, body, trusted"
						  "  FROM dispatch._notifications_due($1, $2)", 2, types, values);
		for (uint64 i = 0; i < r->numvals && got < want; i++, got++)
		{
			MemoryContext cxt = AllocSetContextCreate(notify_cxt, "notification",
													  ALLOCSET_SMALL_SIZES);
			Transfer   *t = MemoryContextAllocZero(cxt, sizeof(Transfer));

			t->cxt = cxt;
			t->id = worker_int8_at(r, i, 1);
			t->target = MemoryContextStrdup(cxt, worker_text_at(r, i, 2));
			t->subject = MemoryContextStrdup(cxt, worker_text_at(r, i, 3));
			t->body = MemoryContextStrdup(cxt, worker_text_at(r, i, 4));
			t->trusted = strcmp(worker_text_at(r, i, 5), "t") == 0;
			claimed[got] = t;
		}
	}
	worker_end();
	more_due = got > 0 && got == want;
	for (int i = 0; i < got; i++)
		start(claimed[i]);
}

/* Sets t up and adds it to the multi handle, or records its failure at once. */
static void
start(Transfer *t)
{
	MemoryContext old = MemoryContextSwitchTo(t->cxt);
	bool		ok;
	CURLMcode	mc;

	t->easy = curl_easy_init();
	if (t->easy == NULL)
	{
		snprintf(t->err, CURL_ERROR_SIZE, "could not initialise libcurl");
		ok = false;
	}
	else
	{
		SET(t, CURLOPT_ERRORBUFFER, t->err);
		SET(t, CURLOPT_PRIVATE, t);
		SET(t, CURLOPT_TIMEOUT, (long) dispatch_notify_timeout);
		SET(t, CURLOPT_NOSIGNAL, 1L);
		SET(t, CURLOPT_PROXY, "");
		SET(t, CURLOPT_OPENSOCKETFUNCTION, open_socket);
		SET(t, CURLOPT_OPENSOCKETDATA, t);
		ok = strncmp(t->target, "mailto:", 7) == 0 ? setup_mail(t) : setup_webhook(t);
		ok = ok && t->err[0] == '\0';
	}
	MemoryContextSwitchTo(old);
	if (ok && (mc = curl_multi_add_handle(multi, t->easy)) != CURLM_OK)
	{
		snprintf(t->err, CURL_ERROR_SIZE, "%s", curl_multi_strerror(mc));
		ok = false;
	}
	for (int i = 0; ok && i < NOTIFY_IN_FLIGHT; i++)
		if (slots[i] == NULL)
		{
			slots[i] = t;
			in_flight++;
			return;
		}
	finish(t, CURLE_FAILED_INIT);
}

/* Sets up a webhook POST, after target.c's checks; false with t->err set when it may not go. */
static bool
setup_webhook(Transfer *t)
{
	t->url = target_url(t->target);
	if (t->url == NULL)
	{
		snprintf(t->err, CURL_ERROR_SIZE, "invalid webhook URL");
		return false;
	}
	t->guard = !target_allowed(t->url);
	if (t->guard && !t->trusted)
	{
		snprintf(t->err, CURL_ERROR_SIZE, "the destination is not in dispatch.webhook_allow");
		return false;
	}
	t->list = curl_slist_append(NULL, "Content-Type: application/json");
	if (t->list == NULL)
	{
		snprintf(t->err, CURL_ERROR_SIZE, "out of memory");
		return false;
	}
	SET(t, CURLOPT_CURLU, t->url);
	SET(t, CURLOPT_PROTOCOLS_STR, "http,https");
	SET(t, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	SET(t, CURLOPT_FOLLOWLOCATION, 0L);
	SET(t, CURLOPT_HTTPHEADER, t->list);
	SET(t, CURLOPT_POSTFIELDS, t->body);
	SET(t, CURLOPT_WRITEFUNCTION, discard);
	return true;
}

/* Sets up a mail through dispatch.smtp_url; false with t->err set when it cannot go. */
static bool
setup_mail(Transfer *t)
{
	const char *rcpt = t->target + strlen("mailto:");
	char		date[64];
	time_t		now = time(NULL);
	struct tm	tm;

	if (dispatch_smtp_url == NULL || dispatch_smtp_url[0] == '\0')
	{
		snprintf(t->err, CURL_ERROR_SIZE, "dispatch.smtp_url is not set");
		return false;
	}
	if (!mailhdr_address_ok(rcpt))
	{
		snprintf(t->err, CURL_ERROR_SIZE, "invalid recipient address");
		return false;
	}
	/* LC_TIME is C in a background worker */
	if (now == (time_t) -1 || gmtime_r(&now, &tm) == NULL ||
		strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm) == 0)
	{
		snprintf(t->err, CURL_ERROR_SIZE, "could not read the clock");
		return false;
	}
	t->list = curl_slist_append(NULL, psprintf("<%s>", rcpt));
	if (t->list == NULL)
	{
		snprintf(t->err, CURL_ERROR_SIZE, "out of memory");
		return false;
	}
	initStringInfo(&t->mail);
	add_header(&t->mail, "Date", date);
	add_header(&t->mail, "From", psprintf("<%s>", dispatch_mail_from));
	add_header(&t->mail, "To", psprintf("<%s>", rcpt));
	add_header(&t->mail, "Subject", t->subject);
	/* a retry keeps the Message-ID, so a mailbox can tell a resend from a new alert */
	add_header(&t->mail, "Message-ID", psprintf("<pg-dispatch-notification-" INT64_FORMAT "@%s>",
												t->id, dispatch_database));
	add_header(&t->mail, "MIME-Version", "1.0");
	add_header(&t->mail, "Content-Type", "text/plain; charset=utf-8");
	add_header(&t->mail, "Content-Transfer-Encoding", "8bit");
	appendStringInfo(&t->mail, "\r\n%s\r\n", t->body);
	SET(t, CURLOPT_URL, dispatch_smtp_url);
	SET(t, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	SET(t, CURLOPT_MAIL_FROM, psprintf("<%s>", dispatch_mail_from));
	SET(t, CURLOPT_MAIL_RCPT, t->list);
	SET(t, CURLOPT_READFUNCTION, upload_chunk);
	SET(t, CURLOPT_READDATA, t);
	SET(t, CURLOPT_UPLOAD, 1L);
	return true;
}

/* Appends header name: value to mail, folded and encoded by mailhdr_format(). */
static void
add_header(StringInfo mail, const char *name, const char *value)
{
	size_t		n = mailhdr_format(NULL, 0, name, value);

	enlargeStringInfo(mail, (int) n + 1);
	mail->len += (int) mailhdr_format(mail->data + mail->len, n + 1, name, value);
}

/* libcurl socket callback: refuses a guarded transfer's non-public address before connecting. */
static curl_socket_t
open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	Transfer   *t = arg;

	if (t->guard && !target_public(&a->addr))
	{
		t->refused = true;
		return CURL_SOCKET_BAD;
	}
	return socket(a->family, a->socktype, a->protocol);	/* -1 is CURL_SOCKET_BAD */
}

/* libcurl read callback: the next piece of the mail. */
static size_t
upload_chunk(char *buf, size_t size, size_t n, void *arg)
{
	Transfer   *t = arg;
	size_t		len = Min(size * n, (size_t) (t->mail.len - t->mail.cursor));

	memcpy(buf, t->mail.data + t->mail.cursor, len);
	t->mail.cursor += (int) len;
	return len;
}

/* libcurl write callback: a webhook's reply is not kept. */
static size_t
discard(char *buf, size_t size, size_t n, void *arg)
{
	return size * n;
}

/* Records the outcome rc of t (a webhook also needs a 2xx answer), then frees it. */
static void
finish(Transfer *t, CURLcode rc)
{
	long		status = 200;
	bool		ok;
	Oid			types[3] = {INT8OID, BOOLOID, TEXTOID};
	Datum		values[3];

	if (rc == CURLE_OK && t->url != NULL &&
		curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
		status = 0;
	ok = rc == CURLE_OK && status >= 200 && status <= 299;
	if (t->refused)
		snprintf(t->err, CURL_ERROR_SIZE,
				 "refused to connect to a non-public address: the destination is not in dispatch.webhook_allow");
	else if (rc == CURLE_OK && !ok)
		snprintf(t->err, CURL_ERROR_SIZE, "HTTP status %ld", status);
	else if (!ok && t->err[0] == '\0')
		snprintf(t->err, CURL_ERROR_SIZE, "%s", curl_easy_strerror(rc));
	if (!ok)
		ereport(LOG,
				(errmsg("pg_dispatch could not send notification " INT64_FORMAT " to %s: %s",
						t->id, t->target, t->err)));
	values[0] = Int64GetDatum(t->id);
	values[1] = BoolGetDatum(ok);
	values[2] = CStringGetTextDatum(ok ? "" : t->err);
	(void) worker_run("SELECT dispatch._notification_done($1, $2, $3)", 3, types, values);
	release(t);
}

/* Takes t out of the multi handle and its slot, and frees everything it owns. */
static void
release(Transfer *t)
{
	for (int i = 0; i < NOTIFY_IN_FLIGHT; i++)
		if (slots[i] == t)
		{
			slots[i] = NULL;
			in_flight--;
			if (curl_multi_remove_handle(multi, t->easy) != CURLM_OK)
				elog(ERROR, "curl_multi_remove_handle failed");
		}
	if (t->easy != NULL)
		curl_easy_cleanup(t->easy);
	if (t->url != NULL)
		curl_url_cleanup(t->url);
	curl_slist_free_all(t->list);
	MemoryContextDelete(t->cxt);
}

/*
 * Claims due notifications when claim is true (or when the last claim may have
 * left some), moves every transfer on and records those that finished; returns
 * how many are in flight.
 */
int
notify_pump(bool claim_due)
{
	CURLMsg    *msg;
	CURLMcode	mc;
	int			running,
				left;

	if ((claim_due || more_due) && in_flight < NOTIFY_IN_FLIGHT)
		claim();
	if (in_flight == 0)
		return 0;
	mc = curl_multi_perform(multi, &running);
	if (mc != CURLM_OK)
		elog(ERROR, "curl_multi_perform failed: %s", curl_multi_strerror(mc));
	while ((msg = curl_multi_info_read(multi, &left)) != NULL)
	{
		char	   *t;

		if (msg->msg != CURLMSG_DONE)
			continue;
		if (curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &t) != CURLE_OK)
			elog(ERROR, "curl_easy_getinfo(CURLINFO_PRIVATE) failed");
		finish((Transfer *) t, msg->data.result);
	}
	return in_flight;
}

/* Waits up to ms for a transfer's socket or timer (curl_multi_poll). */
void
notify_wait(long ms)
{
	CURLMcode	mc = curl_multi_poll(multi, NULL, 0, (int) ms, NULL);

	if (mc != CURLM_OK)
		elog(ERROR, "curl_multi_poll failed: %s", curl_multi_strerror(mc));
}

/* Abandons the transfers in flight (their rows are retried later) and cleans libcurl up. */
void
notify_stop(void)
{
	for (int i = 0; i < NOTIFY_IN_FLIGHT; i++)
		if (slots[i] != NULL)
			release(slots[i]);
	curl_multi_cleanup(multi);
	curl_global_cleanup();
}
