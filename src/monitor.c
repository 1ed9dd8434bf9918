/*
 * monitor.c: the monitor background worker: alerts, notifications, metric upkeep.
 *
 * Every dispatch.monitor_interval it runs dispatch._monitor_tick() in one
 * transaction (alert rules, rollups, partitions, retention), then sends the
 * notifications that are due.  Sending happens outside any transaction, with
 * libcurl and a timeout: the outbox row is claimed first (an attempt counted, the
 * next try pushed back), the message sent, and the outcome recorded in a second
 * transaction.  So the scheduler's loop never waits on a mail server, a restart
 * loses no notification, and one that was sent is marked sent.
 *
 * Targets: "mailto:addr" goes through SMTP to dispatch.smtp_url (a plain-text
 * mail), "http://" and "https://" get a POST of the JSON body.
 */
#include "pg_dispatch.h"
#include "worker.h"

#include <time.h>

#include <curl/curl.h>

#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#define BATCH 20

/* One notification claimed for sending. */
typedef struct Outgoing
{
	int64		id;
	char	   *target;
	char	   *subject;
	char	   *body;
} Outgoing;

/* The mail being uploaded to the SMTP server. */
typedef struct Upload
{
	const char *data;
	size_t		len;
	size_t		done;
} Upload;

static bool run_sql(const char *sql, int nargs, Oid *types, Datum *values);
static int	claim(Outgoing *out);
static size_t upload_chunk(char *buf, size_t size, size_t n, void *arg);
static size_t discard(char *buf, size_t size, size_t n, void *arg);
static bool send_mail(CURL *curl, const Outgoing *o, char *err);
static bool send_webhook(CURL *curl, const Outgoing *o, char *err);
static void deliver(void);

/*
 * Runs the SELECT sql in its own transaction; returns false when the extension
 * is not installed (nothing is run then).  Its rows are gone when it returns, so
 * callers that need rows use claim().
 */
static bool
run_sql(const char *sql, int nargs, Oid *types, Datum *values)
{
	bool		ready;

	worker_begin(sql);
	ready = OidIsValid(worker_extension_lock());
	if (ready)
		(void) worker_select(sql, nargs, types, values);
	worker_end();
	return ready;
}

/* Claims up to BATCH due notifications into out (in TopMemoryContext); returns how many. */
static int
claim(Outgoing *out)
{
	int			n = 0;

	worker_begin(NULL);
	if (OidIsValid(worker_extension_lock()))
	{
		SPITupleTable *t = worker_select("SELECT * FROM dispatch._notifications_due("
										 CppAsString2(BATCH) ")", 0, NULL, NULL);

		for (uint64 i = 0; i < t->numvals && n < BATCH; i++, n++)
		{
			out[n].id = worker_int8_at(t, i, 1);
			out[n].target = MemoryContextStrdup(TopMemoryContext, worker_text_at(t, i, 2));
			out[n].subject = MemoryContextStrdup(TopMemoryContext, worker_text_at(t, i, 3));
			out[n].body = MemoryContextStrdup(TopMemoryContext, worker_text_at(t, i, 4));
		}
	}
	worker_end();
	return n;
}

/* libcurl read callback: the next piece of the mail. */
static size_t
upload_chunk(char *buf, size_t size, size_t n, void *arg)
{
	Upload	   *u = arg;
	size_t		len = Min(size * n, u->len - u->done);

	memcpy(buf, u->data + u->done, len);
	u->done += len;
	return len;
}

/* libcurl write callback: a webhook's reply is not kept. */
static size_t
discard(char *buf, size_t size, size_t n, void *arg)
{
	return size * n;
}

/* Sends o as a mail through dispatch.smtp_url; false with err set on failure. */
static bool
send_mail(CURL *curl, const Outgoing *o, char *err)
{
	const char *rcpt = o->target + strlen("mailto:");
	struct curl_slist *to = curl_slist_append(NULL, rcpt);
	StringInfoData mail;
	Upload		u;
	CURLcode	rc;
	char		from[256],
				date[64];
	time_t		now;
	struct tm	tm;

	if (dispatch_smtp_url == NULL || dispatch_smtp_url[0] == '\0')
	{
		curl_slist_free_all(to);
		snprintf(err, CURL_ERROR_SIZE, "dispatch.smtp_url is not set");
		return false;
	}
	snprintf(from, sizeof(from), "<%s>", dispatch_mail_from);
	now = time(NULL);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", gmtime_r(&now, &tm));	/* LC_TIME is C */
	initStringInfo(&mail);
	/* a retry keeps the Message-ID, so a mailbox can tell a resend from a new alert */
	appendStringInfo(&mail,
					 "Date: %s\r\nFrom: %s\r\nTo: <%s>\r\nSubject: %s\r\n"
					 "Message-ID: <pg-dispatch-notification-" INT64_FORMAT "@%s>\r\n"
					 "Content-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n",
					 date, from, rcpt, o->subject, o->id, dispatch_database, o->body);
	u.data = mail.data;
	u.len = mail.len;
	u.done = 0;
	curl_easy_setopt(curl, CURLOPT_URL, dispatch_smtp_url);
	curl_easy_setopt(curl, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, to);
	curl_easy_setopt(curl, CURLOPT_READFUNCTION, upload_chunk);
	curl_easy_setopt(curl, CURLOPT_READDATA, &u);
	curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
	rc = curl_easy_perform(curl);
	curl_slist_free_all(to);
	pfree(mail.data);
	if (rc != CURLE_OK && err[0] == '\0')
		snprintf(err, CURL_ERROR_SIZE, "%s", curl_easy_strerror(rc));
	return rc == CURLE_OK;
}

/* POSTs o's JSON body to its URL; false with err set unless the reply is 2xx. */
static bool
send_webhook(CURL *curl, const Outgoing *o, char *err)
{
	struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
	CURLcode	rc;
	long		status = 0;

	curl_easy_setopt(curl, CURLOPT_URL, o->target);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, o->body);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
	rc = curl_easy_perform(curl);
	curl_slist_free_all(headers);
	if (rc != CURLE_OK)
	{
		if (err[0] == '\0')
			snprintf(err, CURL_ERROR_SIZE, "%s", curl_easy_strerror(rc));
		return false;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status > 299)
	{
		snprintf(err, CURL_ERROR_SIZE, "HTTP status %ld", status);
		return false;
	}
	return true;
}

/* Sends every due notification, batch by batch, recording each outcome. */
static void
deliver(void)
{
	Outgoing	out[BATCH];
	int			n;

	while (!ShutdownRequestPending && (n = claim(out)) > 0)
	{
		for (int i = 0; i < n; i++)
		{
			CURL	   *curl = curl_easy_init();
			char		err[CURL_ERROR_SIZE] = "";
			bool		ok;
			Oid			types[3] = {INT8OID, BOOLOID, TEXTOID};
			Datum		values[3];

			if (curl == NULL)
			{
				snprintf(err, sizeof(err), "could not initialise libcurl");
				ok = false;
			}
			else
			{
				curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, err);
				curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long) dispatch_notify_timeout);
				curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
				ok = strncmp(out[i].target, "mailto:", 7) == 0 ? send_mail(curl, &out[i], err)
					: send_webhook(curl, &out[i], err);
				curl_easy_cleanup(curl);
			}
			if (!ok)
				ereport(LOG,
						(errmsg("pg_dispatch could not send notification " INT64_FORMAT " to %s: %s",
								out[i].id, out[i].target, err)));
			values[0] = Int64GetDatum(out[i].id);
			values[1] = BoolGetDatum(ok);
			values[2] = CStringGetTextDatum(err);
			run_sql("SELECT dispatch._notification_done($1, $2, $3)", 3, types, values);
			pfree(out[i].target);
			pfree(out[i].subject);
			pfree(out[i].body);
		}
	}
}

/* Main loop of the monitor worker. */
void
monitor_main(Datum arg)
{
	worker_start();
	worker_connect(dispatch_database, NULL, "pg_dispatch monitor");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		ereport(ERROR, (errmsg("could not initialise libcurl")));

	while (!ShutdownRequestPending)
	{
		worker_reload_if_requested();
		if (!RecoveryInProgress() && run_sql("SELECT dispatch._monitor_tick()", 0, NULL, NULL))
			deliver();
		worker_wait(dispatch_monitor_interval * 1000L);
	}
	curl_global_cleanup();
	proc_exit(0);
}
