/*
 * worker.h: the boilerplate our background workers share (worker.c).
 *
 * The launcher, the scheduler, the monitor and the SQL job workers all follow
 * autoprewarm_main's shape: define the worker, install the handlers and unblock
 * signals, connect, then loop on ShutdownRequestPending, reloading the
 * configuration when asked and sleeping on the latch.  Each unit of work runs
 * between worker_begin() and worker_end(): one transaction with SPI connected
 * and a snapshot pushed.
 */
#ifndef PG_DISPATCH_WORKER_H
#define PG_DISPATCH_WORKER_H

#include "postgres.h"

#include "executor/spi.h"
#include "postmaster/bgworker.h"

extern void worker_define(BackgroundWorker *w, const char *function, const char *type);
extern void worker_start(void);
extern void worker_connect(const char *database, const char *user, const char *appname);
extern void worker_reload_if_requested(void);
extern void worker_wait(long ms);
extern void worker_begin(const char *activity);
extern void worker_end(void);
extern void worker_abort(void);
extern Oid	worker_extension_lock(void);
extern bool worker_run(const char *sql, int nargs, Oid *types, Datum *values);
extern SPITupleTable *worker_select(const char *sql, int nargs, Oid *types, Datum *values);
extern char *worker_text_at(SPITupleTable *t, uint64 row, int col);
extern int64 worker_int8_at(SPITupleTable *t, uint64 row, int col);

#endif							/* PG_DISPATCH_WORKER_H */
