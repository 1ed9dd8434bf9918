/*
 * test_fixpoint.c -- the fixed-point driver without processes: fake passes that
 * write fake outputs, and every way a cycle ends (at once, after two passes,
 * never, a failed command, an output that is missing and then appears, a pass
 * or a digest that cannot be made).
 */
#include "unit.h"
#include "fixpoint.h"

#define FAKE_OUTPUTS 2
#define FAKE_PASSES 8

/* Fake outputs: what each pass leaves in each ("" : missing), the state before pass 1, failures. */
typedef struct Fake
{
	const char *before[FAKE_OUTPUTS];
	const char *after[FAKE_PASSES + 1][FAKE_OUTPUTS];	/* after[pass][output] */
	int			fail_pass;		/* this pass fails with status 4 */
	int			broken_pass;	/* this pass cannot be run */
	int			broken_digest;	/* the digest after this pass cannot be made */
	int			pass;			/* the last pass run */
	const char *now[FAKE_OUTPUTS];
} Fake;

/* FixRunPass: "runs" pass, which leaves the outputs as after[pass] says. */
static int
fake_run(void *arg, int pass, char *err, size_t errlen)
{
	Fake	   *f = arg;

	f->pass = pass;
	if (pass == f->broken_pass)
	{
		agent_seterr(err, errlen, "could not start a command");
		return -1;
	}
	if (pass == f->fail_pass)
		return 4;
	for (int i = 0; i < FAKE_OUTPUTS; i++)
		f->now[i] = f->after[pass][i];
	return 0;
}

/* FixDigest: the fake content itself stands for the digest ("a" or "b" names the output). */
static int
fake_digest(void *arg, const char *output, char out[DIGEST_HEX_LEN + 1], char *err, size_t errlen)
{
	Fake	   *f = arg;
	const char *content = f->now[output[0] - 'a'];

	if (f->pass > 0 && f->pass == f->broken_digest)
	{
		agent_seterr(err, errlen, "could not read \"%s\"", output);
		return -1;
	}
	if (content == NULL || content[0] == '\0')
		return 0;
	snprintf(out, DIGEST_HEX_LEN + 1, "%s", content);
	return 1;
}

/* Runs the driver over f with outputs "a" (and "b" when two) and at most max passes; returns its result. */
static int
drive(Fake *f, int two, int max, FixResult *res)
{
	StrList		outputs;
	char		err[AGENT_ERRLEN] = "";
	int			rc;

	for (int i = 0; i < FAKE_OUTPUTS; i++)
		f->now[i] = f->before[i];
	strlist_init(&outputs);
	strlist_add(&outputs, "a");
	if (two)
		strlist_add(&outputs, "b");
	rc = fixpoint_run(&outputs, max, fake_run, fake_digest, f, res, err, sizeof(err));
	CHECK(rc == 0 || err[0] != '\0');
	strlist_free(&outputs);
	return rc;
}

void
test_fixpoint(void)
{
	FixResult	res;

	/* the outputs fetched from the last build are already right: one pass */
	{
		Fake		f = {.before = {"aux1"}, .after = {[1] = {"aux1"}}};

		CHECK(drive(&f, 0, 10, &res) == 0);
		CHECK(res.outcome == FIX_CONVERGED && res.passes == 1 && res.changed.n == 0);
		fixpoint_free(&res);
	}
	/* a fake .aux that changes once, then is stable: two passes */
	{
		Fake		f = {.before = {"old"}, .after = {[1] = {"new"}, [2] = {"new"}, [3] = {"x"}}};

		CHECK(drive(&f, 0, 10, &res) == 0);
		CHECK(res.outcome == FIX_CONVERGED && res.passes == 2 && f.pass == 2);
		fixpoint_free(&res);
	}
	/* the first build: no .aux before, the same one after passes 1 and 2 */
	{
		Fake		f = {.before = {""}, .after = {[1] = {"new"}, [2] = {"new"}}};

		CHECK(drive(&f, 0, 10, &res) == 0);
		CHECK(res.outcome == FIX_CONVERGED && res.passes == 2);
		fixpoint_free(&res);
	}
	/* it changes every time: max_passes passes, then unconverged, naming the output */
	{
		Fake		f = {.before = {"0", "s"}, .after = {[1] = {"1", "s"}, [2] = {"2", "s"}, [3] = {"3", "s"},
		[4] = {"4", "s"}, [5] = {"5", "s"}}};

		CHECK(drive(&f, 1, 5, &res) == 0);
		CHECK(res.outcome == FIX_NOT_CONVERGED && res.passes == 5 && f.pass == 5);
		CHECK(res.changed.n == 1 && strcmp(res.changed.items[0], "a") == 0);
		fixpoint_free(&res);
	}
	/* a max of one pass that changes something */
	{
		Fake		f = {.before = {"0"}, .after = {[1] = {"1"}}};

		CHECK(drive(&f, 0, 1, &res) == 0);
		CHECK(res.outcome == FIX_NOT_CONVERGED && res.passes == 1);
		fixpoint_free(&res);
	}
	/* a command of pass 2 fails: its status, no pass 3 */
	{
		Fake		f = {.before = {"0"}, .after = {[1] = {"1"}, [3] = {"1"}}, .fail_pass = 2};

		CHECK(drive(&f, 0, 10, &res) == 0);
		CHECK(res.outcome == FIX_FAILED && res.status == 4 && res.passes == 2 && f.pass == 2);
		fixpoint_free(&res);
	}
	/* an output missing after pass 1 appears in pass 2 and stays: three passes; one never made: never */
	{
		Fake		f = {.before = {"a0", ""}, .after = {[1] = {"a0", ""}, [2] = {"a0", "b"}, [3] = {"a0", "b"}}};

		CHECK(drive(&f, 1, 10, &res) == 0);
		CHECK(res.outcome == FIX_CONVERGED && res.passes == 3);
		fixpoint_free(&res);
	}
	{
		Fake		f = {.before = {"a0", ""}, .after = {[1] = {"a0", ""}, [2] = {"a0", ""}, [3] = {"a0", ""}}};

		CHECK(drive(&f, 1, 3, &res) == 0);
		CHECK(res.outcome == FIX_NOT_CONVERGED && res.passes == 3);
		CHECK(res.changed.n == 1 && strcmp(res.changed.items[0], "b") == 0);
		fixpoint_free(&res);
	}
	/* an output that disappears is a change too */
	{
		Fake		f = {.before = {"a0"}, .after = {[1] = {""}, [2] = {""}}};

		CHECK(drive(&f, 0, 2, &res) == 0);
		CHECK(res.outcome == FIX_NOT_CONVERGED && res.passes == 2);
		fixpoint_free(&res);
	}
	/* a pass that cannot be run, an output that cannot be digested: failures of the driver */
	{
		Fake		f = {.before = {"0"}, .after = {[1] = {"1"}}, .broken_pass = 2};

		CHECK(drive(&f, 0, 10, &res) == -1);
		fixpoint_free(&res);
	}
	{
		Fake		f = {.before = {"0"}, .after = {[1] = {"1"}}, .broken_digest = 1};

		CHECK(drive(&f, 0, 10, &res) == -1);
		fixpoint_free(&res);
	}
}
