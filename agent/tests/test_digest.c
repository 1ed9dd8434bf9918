/*
 * test_digest.c -- SHA-256 of files: known vectors, a file larger than one read
 * block, and the errors.
 */
#include "unit.h"
#include "digest.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

/* Writes n bytes of content (repeating pattern when n exceeds its length) to dir/name; returns the path (static). */
static const char *
write_file(const char *dir, const char *name, const char *pattern, size_t n)
{
	static char path[4096];
	size_t		plen = strlen(pattern);
	FILE	   *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	for (size_t i = 0; f && i < n; i++)
		fputc(plen ? pattern[i % plen] : 0, f);
	if (f)
		fclose(f);
	return path;
}

void
test_digest(void)
{
	const char *dir = unit_tmpdir("digest");
	char		hex[DIGEST_HEX_LEN + 1], err[AGENT_ERRLEN], link[4096];
	int64_t		size = -1;

	/* FIPS 180-2 vectors: "abc" and the empty input */
	CHECK(digest_file(write_file(dir, "abc", "abc", 3), hex, &size, err, sizeof(err)) == 0);
	CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	CHECK(size == 3);
	CHECK(digest_file(write_file(dir, "empty", "", 0), hex, &size, err, sizeof(err)) == 0);
	CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	CHECK(size == 0);
	/* a million "a", four read blocks: the FIPS 180-2 long vector */
	CHECK(digest_file(write_file(dir, "million", "a", 1000000), hex, &size, err, sizeof(err)) == 0);
	CHECK_STR(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	CHECK(size == 1000000);
	/* errors: a missing file, a symbolic link (never followed), a directory */
	CHECK(digest_file("/nonexistent/x", hex, NULL, err, sizeof(err)) == -1);
	CHECK(strstr(err, "could not open") != NULL);
	snprintf(link, sizeof(link), "%s/link", dir);
	CHECK(symlink("abc", link) == 0);
	CHECK(digest_file(link, hex, NULL, err, sizeof(err)) == -1);
	CHECK(digest_file(dir, hex, NULL, err, sizeof(err)) == -1);
	CHECK(strstr(err, "could not read") != NULL);
}
