/*
 * notify.h: alert delivery, shared by the monitor (monitor.c), the sender
 * (notify.c) and the target rules (target.c).
 *
 * The monitor evaluates rules on its own clock; the sender keeps up to
 * NOTIFY_IN_FLIGHT transfers going at once in one libcurl multi handle, so a
 * receiver that never answers holds one slot for dispatch.notify_timeout, not the
 * monitor.  target.c says which targets a rule may name and where a webhook may
 * connect.
 */
#ifndef PG_DISPATCH_NOTIFY_H
#define PG_DISPATCH_NOTIFY_H

#include "postgres.h"

#include <sys/socket.h>

#include <curl/curl.h>

#include "utils/guc.h"

/* Transfers in flight at once (a rule names at most 10 targets: sql/src/85_alerts.sql). */
#define NOTIFY_IN_FLIGHT 32

/* notify.c */
extern void notify_start(void);
extern int	notify_pump(bool claim_due);
extern void notify_wait(long ms);
extern void notify_stop(void);

/* target.c */
extern CURLU *target_url(const char *url);
extern bool target_allowed(CURLU *target);
extern bool target_public(const struct sockaddr *sa);
extern const char *target_problem(const char *target);
extern bool target_check_allow(char **newval, void **extra, GucSource source);
extern bool target_check_mail_from(char **newval, void **extra, GucSource source);

#endif							/* PG_DISPATCH_NOTIFY_H */
