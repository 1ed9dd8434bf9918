/*
 * test_metrics.c -- the metrics queue: oldest dropped first when over its bound,
 * batches in time order, and nothing but finished samples ever read or counted.
 */
#include "unit.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* Queues a sample named after t whose body is {"t":t} padded to size bytes. */
static void
put(const char *dir, long long t, size_t size)
{
	char		name[64], body[4096];
	char		err[AGENT_ERRLEN];
	int			n = snprintf(body, sizeof(body), "{\"t\":%lld", t);

	while ((size_t) n < size - 1)
		body[n++] = ' ';
	body[n++] = '}';
	snprintf(name, sizeof(name), "%016lld.json", t);
	CHECK(spool_write_file(dir, name, body, (size_t) n, err, sizeof(err)) == 0);
}

/* Returns 1 when dir holds the sample of time t. */
static int
has(const char *dir, long long t)
{
	char		path[4096];

	snprintf(path, sizeof(path), "%s/%016lld.json", dir, t);
	return access(path, F_OK) == 0;
}

static void
test_trim(void)
{
	const char *dir = unit_tmpdir("metrics_trim");
	char		err[AGENT_ERRLEN], path[4096];

	for (long long t = 1000; t < 1010; t++)
		put(dir, t, 100);
	/* a temp file of a sampler killed mid-write and a stranger are neither counted nor dropped */
	snprintf(path, sizeof(path), "%s/.0000000000000999.json.tmp", dir);
	CHECK(spool_write_file(dir, ".0000000000000999.json.tmp", "xxxx", 4, err, sizeof(err)) == 0);
	CHECK(spool_write_file(dir, "notes.json", "{}", 2, err, sizeof(err)) == 0);

	CHECK(metrics_trim(dir, 1000, err, sizeof(err)) == 0);	/* exactly at the bound */
	CHECK(metrics_trim(dir, 999, err, sizeof(err)) == 1);
	CHECK(!has(dir, 1000) && has(dir, 1001));
	CHECK(metrics_trim(dir, 350, err, sizeof(err)) == 6);
	CHECK(!has(dir, 1006) && has(dir, 1007) && has(dir, 1009));
	CHECK(metrics_trim(dir, 0, err, sizeof(err)) == 3);
	CHECK(access(path, F_OK) == 0);
	CHECK_STR(unit_read(dir, "notes.json"), "{}");

	CHECK(metrics_trim("/nonexistent/metrics", 0, err, sizeof(err)) == -1);
	CHECK(strstr(err, "could not read directory \"/nonexistent/metrics\"") != NULL);
}

static void
test_batch(void)
{
	const char *dir = unit_tmpdir("metrics_batch");
	char		err[AGENT_ERRLEN];
	StrBuf		json;
	StrList		files;

	/* empty queue: an empty array */
	sb_init(&json);
	strlist_init(&files);
	CHECK(metrics_batch(dir, 10, &json, &files, err, sizeof(err)) == 0);
	CHECK_STR(json.data, "[]");
	sb_free(&json);
	strlist_free(&files);

	put(dir, 2000, 10);
	put(dir, 1999, 10);
	put(dir, 2001, 10);
	CHECK(spool_write_file(dir, ".0000000000002002.json.tmp", "{", 1, err, sizeof(err)) == 0);

	/* oldest first, at most max_files */
	sb_init(&json);
	strlist_init(&files);
	CHECK(metrics_batch(dir, 2, &json, &files, err, sizeof(err)) == 2);
	CHECK_STR(json.data, "[{\"t\":1999},{\"t\":2000}]");
	CHECK(files.n == 2 && strcmp(files.items[0], "0000000000001999.json") == 0);
	sb_free(&json);
	strlist_free(&files);

	/* everything, never the temp file */
	sb_init(&json);
	strlist_init(&files);
	CHECK(metrics_batch(dir, 100, &json, &files, err, sizeof(err)) == 3);
	CHECK(strstr(json.data, "2001") != NULL && strstr(json.data, "2002") == NULL);
	sb_free(&json);
	strlist_free(&files);

	/* a batch stops near 1 MB, but always takes at least one sample */
	dir = unit_tmpdir("metrics_big");
	for (long long t = 1; t <= 400; t++)
		put(dir, t, 4000);
	sb_init(&json);
	strlist_init(&files);
	CHECK(metrics_batch(dir, 1000, &json, &files, err, sizeof(err)) == 263);
	CHECK(json.len > 1024 * 1024 && json.len < 1024 * 1024 + 4100);
	sb_free(&json);
	strlist_free(&files);

	sb_init(&json);
	strlist_init(&files);
	CHECK(metrics_batch("/nonexistent/metrics", 10, &json, &files, err, sizeof(err)) == -1);
	CHECK(files.n == 0);
	sb_free(&json);
	strlist_free(&files);
}

void
test_metrics(void)
{
	test_trim();
	test_batch();
}
