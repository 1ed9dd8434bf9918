/*
 * digest.h -- SHA-256 of files and buffers as 64 hex digits (digest.c, OpenSSL).
 */
#ifndef AGENT_DIGEST_H
#define AGENT_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#define DIGEST_HEX_LEN 64

/* SHA-256 of what fd yields until its end, into out; *size (may be NULL) the bytes read.  0 or -1. */
int			digest_fd(int fd, char out[DIGEST_HEX_LEN + 1], int64_t *size, char *err, size_t errlen);

/* SHA-256 of the file at path (never through a symbolic link); as digest_fd. */
int			digest_file(const char *path, char out[DIGEST_HEX_LEN + 1], int64_t *size,
						char *err, size_t errlen);

/* SHA-256 of the len bytes at data, into out.  0 or -1. */
int			digest_buf(const void *data, size_t len, char out[DIGEST_HEX_LEN + 1], char *err, size_t errlen);

#endif							/* AGENT_DIGEST_H */
