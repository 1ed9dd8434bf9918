/*
 * fixpoint.h -- a cycle of build commands run as one unit until its outputs
 * stop changing: the driver (fixpoint.c, pure: it runs passes and digests
 * outputs through callbacks) and `dispatch-agent iterate`, which drives it with
 * real commands and files (iterate_cmd.c).
 */
#ifndef AGENT_FIXPOINT_H
#define AGENT_FIXPOINT_H

#include "util.h"
#include "digest.h"

#define FIXPOINT_MAX_PASSES 100		/* most passes one iterate may ask for */

/* How a fixpoint_run() ended. */
typedef enum FixOutcome
{
	FIX_CONVERGED = 0,			/* a pass left every output as it found it */
	FIX_NOT_CONVERGED,			/* the last pass allowed still changed some */
	FIX_FAILED					/* a command of a pass failed: status */
} FixOutcome;

typedef struct FixResult
{
	FixOutcome	outcome;
	int			passes;			/* passes run, the last one included */
	int			status;			/* FIX_FAILED: the exit status of the failed command */
	StrList		changed;		/* FIX_NOT_CONVERGED: the outputs the last pass changed */
} FixResult;

/* Runs pass (1, 2, ...): returns 0 when all its commands succeeded, else the first failure's status (> 0), or -1 with err set. */
typedef int (*FixRunPass) (void *arg, int pass, char *err, size_t errlen);

/* Digests output into out: returns 1, 0 when the output does not exist, or -1 with err set. */
typedef int (*FixDigest) (void *arg, const char *output, char out[DIGEST_HEX_LEN + 1], char *err,
						  size_t errlen);

int			fixpoint_run(const StrList *outputs, int max_passes, FixRunPass run, FixDigest digest,
						 void *arg, FixResult *res, char *err, size_t errlen);
void		fixpoint_free(FixResult *res);

/* ---- iterate_cmd.c ---- */

int			iterate_cmd_main(int argc, char **argv);

#endif							/* AGENT_FIXPOINT_H */
