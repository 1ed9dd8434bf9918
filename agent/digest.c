/*
 * digest.c -- SHA-256 of files, through OpenSSL's EVP interface.
 *
 * The watcher (an artefact's content, once it has settled) and the artefact
 * store (a build's outputs before they are stored) both name content by its
 * SHA-256 as 64 lower-case hex digits, the form the server checks and stores.
 * A file is read once, in blocks, whatever its size; the caller gets the size it
 * read, which is what the digest covers.  A buffer (a blob about to be
 * uploaded, checked once more against the digest the server asked for) is
 * digested in one call.
 */
#include "util.h"
#include "digest.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#define DIGEST_BLOCK (256 * 1024)

/* Writes the 32 bytes md as 64 hex digits and a NUL into out. */
static void
to_hex(const unsigned char *md, char out[DIGEST_HEX_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 0; i < 32; i++)
	{
		out[2 * i] = digits[md[i] >> 4];
		out[2 * i + 1] = digits[md[i] & 15];
	}
	out[DIGEST_HEX_LEN] = '\0';
}

int
digest_fd(int fd, char out[DIGEST_HEX_LEN + 1], int64_t *size, char *err, size_t errlen)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char *buf = xmalloc(DIGEST_BLOCK);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int64_t		total = 0;
	int			rc = -1;

	if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
	{
		agent_seterr(err, errlen, "could not start a SHA-256 digest");
		goto out;
	}
	for (;;)
	{
		ssize_t		n = read(fd, buf, DIGEST_BLOCK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			agent_seterr(err, errlen, "could not read for SHA-256: %s", strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		if (EVP_DigestUpdate(ctx, buf, (size_t) n) != 1)
		{
			agent_seterr(err, errlen, "SHA-256 digest failed");
			goto out;
		}
		total += n;
	}
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32)
	{
		agent_seterr(err, errlen, "SHA-256 digest failed");
		goto out;
	}
	to_hex(md, out);
	if (size)
		*size = total;
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	free(buf);
	return rc;
}

int
digest_file(const char *path, char out[DIGEST_HEX_LEN + 1], int64_t *size, char *err, size_t errlen)
{
	int			fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	int			rc;

	if (fd < 0)
	{
		agent_seterr(err, errlen, "could not open \"%s\": %s", path, strerror(errno));
		return -1;
	}
	rc = digest_fd(fd, out, size, err, errlen);
	close(fd);
	return rc;
}

int
digest_buf(const void *data, size_t len, char out[DIGEST_HEX_LEN + 1], char *err, size_t errlen)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
	{
		agent_seterr(err, errlen, "SHA-256 digest failed");
		return -1;
	}
	to_hex(md, out);
	return 0;
}
