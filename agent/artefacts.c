/*
 * artefacts.c -- a build job's artefacts: the files of its workspace it gets
 * before it starts, and the ones it leaves for the server.
 *
 * agent_poll hands a build job, in its flow (parsed once by assign.c), the key
 * "artefacts": {"workspace", "inputs": [{"path", "sha256", "size"}],
 * "outputs": [PATH], "max_blob_size"}.  The server checked it; the agent
 * checks it again (artefacts_check(), called by inputs.c), because it writes
 * and reads what the paths name: relative, "/"-separated, no empty, "." or
 * ".." component, at most ARTEFACT_PATH_MAX bytes, at most ARTEFACTS_MAX of
 * each kind, no path twice, sizes within what a bytea holds.
 *
 * Both directions cross into the work dir, which only the job user may enter,
 * so both run in a short-lived child with the job user's rights (jobuser_run)
 * that walks the path one directory at a time without following a symbolic
 * link (files.c): links a hostile job planted redirect nothing.
 *   inputs   the content jobs_artefacts.c fetched (still in libpq's memory,
 *            which the child shares by fork: no copy) goes to a file created
 *            exclusively, mode 0644, and is digested back from that file; a
 *            size or SHA-256 other than the flow's fails the attempt
 *   outputs  missing, not a regular file (a symbolic link, a fifo) or larger
 *            than max_blob_size gives the sentence the job's finish carries as
 *            outputs_error; else the file is opened with O_NOFOLLOW and
 *            O_NONBLOCK, digested (digest.c, the size is what was read) and
 *            sent once through the child's pipe into the buffer that becomes
 *            agent_store_output's bytea parameter.
 */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ARTEFACT_CHILD_MS (300 * 1000)	/* most time a child may take for one artefact */
#define READ_BLOCK (256 * 1024)
#define PATH_RULE "it must be relative, at most %d bytes, with no empty, \".\" or \"..\" component"

/* What the reading child sends first: its verdict. */
enum
{
	CHILD_OK = 'o', CHILD_REFUSED = 'r'
};

/* An input on its way into the work dir. */
typedef struct InputWrite
{
	const char *workdir;
	const char *path;
	const char *sha256;
	const char *data;
	size_t		len;
} InputWrite;

/* An output on its way out of the work dir. */
typedef struct OutputRead
{
	const char *workdir;
	const char *path;
	int64_t		max;
} OutputRead;

static int	path_ok(const char *path);
static int	sha256_ok(const char *s);
static int	seen_before(json_t *seen, const char *path);
static int	item_ok(const json_t *item, size_t i, int outputs, char *err, size_t errlen);
static int	check_list(const json_t *list, int outputs, char *err, size_t errlen);
static int	write_child(void *arg, int fd);
static int	open_output(const OutputRead *o, char *why, size_t whylen);
static int	send_output(int in, const char *hex, int64_t size, int fd);
static int	read_child(void *arg, int fd);

/* Returns 1 when path can be an artefact's: files_path_ok() and at most ARTEFACT_PATH_MAX bytes. */
static int
path_ok(const char *path)
{
	return strlen(path) <= ARTEFACT_PATH_MAX && files_path_ok(path);
}

/* Returns 1 when s is a SHA-256 as the server writes it: 64 lower-case hex digits. */
static int
sha256_ok(const char *s)
{
	return strlen(s) == DIGEST_HEX_LEN && strspn(s, "0123456789abcdef") == DIGEST_HEX_LEN;
}

/* Returns 1 when path is in the set seen already; else adds it and returns 0. */
static int
seen_before(json_t *seen, const char *path)
{
	if (json_object_get(seen, path) != NULL)
		return 1;
	json_object_set_new(seen, path, json_true());
	return 0;
}

/* Returns 1 when item i of the inputs (or of the outputs) is well-formed; else 0 with err set. */
static int
item_ok(const json_t *item, size_t i, int outputs, char *err, size_t errlen)
{
	const char *path = json_string_value(outputs ? item : json_object_get(item, "path")),
			   *sha = json_string_value(json_object_get(item, "sha256"));
	const json_t *size = json_object_get(item, "size");

	if (outputs && path == NULL)
		agent_seterr(err, errlen, "artefact output %zu must be a string", i);
	else if (!outputs && (path == NULL || sha == NULL || !json_is_integer(size)))
		agent_seterr(err, errlen, "artefact input %zu needs a string \"path\", a string \"sha256\" and an integer \"size\"", i);
	else if (!path_ok(path))
		agent_seterr(err, errlen, "refusing artefact %s path \"%.300s\": " PATH_RULE,
					 outputs ? "output" : "input", path, ARTEFACT_PATH_MAX);
	else if (outputs)
		return 1;
	else if (!sha256_ok(sha))
		agent_seterr(err, errlen, "artefact input \"%.300s\" has an invalid sha256 \"%.80s\": 64 lower-case hex digits are expected",
					 path, sha);
	else if (json_integer_value(size) < 0 || json_integer_value(size) > ARTEFACT_BLOB_MAX)
		agent_seterr(err, errlen, "artefact input \"%.300s\" has an invalid size %lld: from 0 to %d bytes are expected",
					 path, (long long) json_integer_value(size), ARTEFACT_BLOB_MAX);
	else
		return 1;
	return 0;
}

/* Checks the artefact inputs, or outputs (NULL: none); returns 0, or -1 with err set. */
static int
check_list(const json_t *list, int outputs, char *err, size_t errlen)
{
	const char *what = outputs ? "output" : "input";
	json_t	   *seen,
			   *item;
	size_t		i;
	int			rc = 0;

	if (list == NULL)
		return 0;
	if (!json_is_array(list) || json_array_size(list) > ARTEFACTS_MAX)
	{
		agent_seterr(err, errlen, "job flow artefact %ss must be a JSON array of at most %d", what,
					 ARTEFACTS_MAX);
		return -1;
	}
	seen = json_object();
	json_array_foreach(list, i, item)
	{
		const char *path = json_string_value(outputs ? item : json_object_get(item, "path"));

		if (!item_ok(item, i, outputs, err, errlen))
			rc = -1;
		else if (seen_before(seen, path))
		{
			agent_seterr(err, errlen, "artefact %s \"%.300s\" is given more than once", what, path);
			rc = -1;
		}
		if (rc < 0)
			break;
	}
	json_decref(seen);
	return rc;
}

/* Checks the "artefacts" of a job's flow (NULL or JSON null: none); returns 0, or -1 with err set. */
int
artefacts_check(const json_t *art, char *err, size_t errlen)
{
	const json_t *ws = json_object_get(art, "workspace"),
			   *max = json_object_get(art, "max_blob_size");

	if (art == NULL || json_is_null(art))
		return 0;
	if (!json_is_object(art))
		agent_seterr(err, errlen, "job flow artefacts must be a JSON object");
	else if (!json_is_integer(ws) && !(json_is_string(ws) && json_string_length(ws) > 0))
		agent_seterr(err, errlen, "job flow artefacts need a \"workspace\": a non-empty string or an integer");
	else if (!json_is_integer(max) || json_integer_value(max) < 0 ||
			 json_integer_value(max) > ARTEFACT_BLOB_MAX)
		agent_seterr(err, errlen, "job flow artefacts need a \"max_blob_size\" from 0 to %d bytes",
					 ARTEFACT_BLOB_MAX);
	else if (check_list(json_object_get(art, "inputs"), 0, err, errlen) < 0 ||
			 check_list(json_object_get(art, "outputs"), 1, err, errlen) < 0)
		return -1;
	else
		return 0;
	return -1;
}

/* jobuser_run() body: writes one input and digests it back; on failure sends why to fd. */
static int
write_child(void *arg, int fd)
{
	const InputWrite *in = arg;
	char		why[AGENT_ERRLEN], hex[DIGEST_HEX_LEN + 1];
	int64_t		size = -1;
	int			out = files_create(in->workdir, in->path, why, sizeof(why)),
				rc = -1;

	if (out >= 0 && files_put(out, in->workdir, in->path, in->data, in->len, 0644, why, sizeof(why)) == 0)
	{
		if (lseek(out, 0, SEEK_SET) < 0)
			agent_seterr(why, sizeof(why), "could not read back file \"%s/%s\": %s", in->workdir,
						 in->path, strerror(errno));
		else if (digest_fd(out, hex, &size, why, sizeof(why)) < 0)
			;					/* why says it */
		else if (size != (int64_t) in->len || strcmp(hex, in->sha256) != 0)
			agent_seterr(why, sizeof(why), "its content has SHA-256 %s, not %s", hex, in->sha256);
		else
			rc = 0;
	}
	if (out >= 0 && close(out) < 0 && rc == 0)
	{
		agent_seterr(why, sizeof(why), "could not close file \"%s/%s\": %s", in->workdir, in->path,
					 strerror(errno));
		rc = -1;
	}
	if (rc < 0 && write_all(fd, why, strlen(why)) < 0)
		return -1;				/* the parent says the child failed */
	return rc;
}

/*
 * Writes the fetched content (data NULL: the server had none) of input (an
 * object of a checked flow) to workdir/<its path>, as the job user, and checks
 * its size and SHA-256; returns 0, or -1 with err set.
 */
int
artefacts_put_input(const char *workdir, const json_t *input, const char *data, size_t len,
					char *err, size_t errlen)
{
	InputWrite	in = {workdir, json_string_value(json_object_get(input, "path")),
	json_string_value(json_object_get(input, "sha256")), data, len};
	json_int_t	size = json_integer_value(json_object_get(input, "size"));
	StrBuf		msg;
	int			rc;

	if (data == NULL)
	{
		agent_seterr(err, errlen, "the server has no content for it");
		return -1;
	}
	if ((json_int_t) len != size)
	{
		agent_seterr(err, errlen, "the server sent %zu bytes, not %lld", len, (long long) size);
		return -1;
	}
	sb_init(&msg);
	rc = jobuser_run(write_child, &in, AGENT_ERRLEN, ARTEFACT_CHILD_MS, &msg, err, errlen);
	if (rc < 0 && msg.len > 0)
		agent_seterr(err, errlen, "%s", msg.data);
	sb_free(&msg);
	return rc;
}

/*
 * Opens output o for reading when it can be stored: returns the descriptor,
 * or -1 with why set to the sentence of its outputs_error.
 */
static int
open_output(const OutputRead *o, char *why, size_t whylen)
{
	char		err[AGENT_ERRLEN];
	const char *base;
	struct stat st;
	int			at = files_open_parent(o->workdir, o->path, 0, &base, err, sizeof(err)),
				fd = -1;

	if (at < 0 && (errno == ENOENT || errno == ENOTDIR))
		agent_seterr(why, whylen, "output \"%.300s\" was not made", o->path);
	else if (at < 0 && errno == ELOOP)
		agent_seterr(why, whylen, "output \"%.300s\" is not a regular file", o->path);
	else if (at < 0)
		agent_seterr(why, whylen, "output \"%.300s\" could not be read: %s", o->path, err);
	else if (fstatat(at, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
		agent_seterr(why, whylen, errno == ENOENT ? "output \"%.300s\" was not made" :
					 "output \"%.300s\" could not be read", o->path);
	else if (!S_ISREG(st.st_mode))
		agent_seterr(why, whylen, "output \"%.300s\" is not a regular file", o->path);
	else if (st.st_size > o->max)
		agent_seterr(why, whylen, "output \"%.300s\" is larger than %lld bytes", o->path, (long long) o->max);
	else if ((fd = openat(at, base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)) < 0)
		agent_seterr(why, whylen, "output \"%.300s\" %s", o->path,
					 errno == ELOOP ? "is not a regular file" : "could not be read");
	else if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
	{
		/* swapped for something else since the lstat */
		agent_seterr(why, whylen, "output \"%.300s\" is not a regular file", o->path);
		close(fd);				/* read-only: nothing to lose */
		fd = -1;
	}
	if (at >= 0)
		close(at);				/* read-only: nothing to lose */
	return fd;
}

/* Sends CHILD_OK, hex and exactly size bytes of in to fd; returns 0, or -1 when in shrank or the pipe broke. */
static int
send_output(int in, const char *hex, int64_t size, int fd)
{
	char		tag = CHILD_OK,
			   *buf;
	ssize_t		n = 0;

	if (write_all(fd, &tag, 1) < 0 || write_all(fd, hex, DIGEST_HEX_LEN) < 0)
		return -1;
	buf = xmalloc(READ_BLOCK);
	while (size > 0 && (n = read(in, buf, size < READ_BLOCK ? (size_t) size : READ_BLOCK)) != 0)
	{
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || write_all(fd, buf, (size_t) n) < 0)
			break;
		size -= n;
	}
	free(buf);
	return size == 0 ? 0 : -1;
}

/*
 * jobuser_run() body: digests output arg (the size is what was read) and sends
 * it, or CHILD_REFUSED and why it cannot be stored, to fd.
 */
static int
read_child(void *arg, int fd)
{
	const OutputRead *o = arg;
	char		why[AGENT_ERRLEN],
				err[AGENT_ERRLEN],
				hex[DIGEST_HEX_LEN + 1],
				tag = CHILD_REFUSED;
	int64_t		size = 0;
	int			in = open_output(o, why, sizeof(why)),
				rc = 1;

	if (in < 0)
		;						/* why says it */
	else if (digest_fd(in, hex, &size, err, sizeof(err)) < 0)
		agent_seterr(why, sizeof(why), "output \"%.300s\" could not be read: %s", o->path, err);
	else if (size > o->max)		/* it grew since it was looked at */
		agent_seterr(why, sizeof(why), "output \"%.300s\" is larger than %lld bytes", o->path,
					 (long long) o->max);
	else if (lseek(in, 0, SEEK_SET) < 0)
		agent_seterr(why, sizeof(why), "output \"%.300s\" could not be read: %s", o->path,
					 strerror(errno));
	else
		rc = send_output(in, hex, size, fd);
	if (in >= 0)
		close(in);				/* read-only: nothing to lose */
	if (rc > 0 && (write_all(fd, &tag, 1) < 0 || write_all(fd, why, strlen(why)) < 0))
		return -1;
	return rc < 0 ? -1 : 0;
}

/*
 * Reads output path of workdir (at most max bytes) as the job user into out,
 * which must be released with artefacts_output_free() either way: returns 0
 * with out's data, len and sha256 set, or -1 with why set to the sentence of
 * the job's outputs_error.
 */
int
artefacts_read_output(const char *workdir, const char *path, int64_t max, ArtefactOutput *out,
					  char *why, size_t whylen)
{
	OutputRead	o = {workdir, path, max};
	char		err[AGENT_ERRLEN];
	StrBuf	   *raw = &out->raw;

	sb_init(raw);
	out->data = NULL;
	out->len = 0;
	out->sha256[0] = '\0';
	if (jobuser_run(read_child, &o, (size_t) max + 1 + DIGEST_HEX_LEN, ARTEFACT_CHILD_MS, raw,
					err, sizeof(err)) < 0)
		agent_seterr(why, whylen, "output \"%.300s\" could not be read: %s", path, err);
	else if (raw->len > 0 && raw->data[0] == CHILD_REFUSED)
		agent_seterr(why, whylen, "%s", raw->data + 1);
	else if (raw->len < 1 + DIGEST_HEX_LEN || raw->data[0] != CHILD_OK)
		agent_seterr(why, whylen, "output \"%.300s\" could not be read: its reader sent no answer", path);
	else
	{
		memcpy(out->sha256, raw->data + 1, DIGEST_HEX_LEN);
		out->sha256[DIGEST_HEX_LEN] = '\0';
		out->data = raw->data + 1 + DIGEST_HEX_LEN;
		out->len = raw->len - 1 - DIGEST_HEX_LEN;
		return 0;
	}
	return -1;
}

/* Releases what artefacts_read_output() read. */
void
artefacts_output_free(ArtefactOutput *out)
{
	sb_free(&out->raw);
	out->data = NULL;
}
