/*
 * mailhdr.h: one mail header line, safe to send, in plain C (mailhdr.c).
 *
 * A header value that comes from users (an alert rule's name, a metric name)
 * must never add a header of its own: a CR or LF that reached the message would
 * let "x\r\nBcc: victim@example.com" do just that.  mailhdr_format() writes the
 * value as it is when it is printable ASCII, folded at spaces to lines of at most
 * 78 characters (RFC 5322); anything else (other bytes, control characters, a
 * literal "=?", a word too long to fold) is written as RFC 2047 encoded-words of
 * UTF-8 in the "Q" encoding, at most 75 characters each, one per line, never
 * splitting a UTF-8 character.  Either way no CR or LF of the value survives, and
 * the only line break in the output is the folding "\r\n ".  Addresses are not
 * encoded but checked: mailhdr_address_ok() accepts only plain local@domain.  No PostgreSQL
 * headers: see docs/internals.md.
 */
#ifndef DISPATCH_MAILHDR_H
#define DISPATCH_MAILHDR_H

#include <stddef.h>

/* Longest line mailhdr_format() writes, without its CRLF (RFC 5322's "SHOULD"). */
#define MAILHDR_LINE 78

/*
 * Writes "name: value\r\n", folded and encoded as above, into out (at most size
 * bytes, always NUL-terminated when size > 0); returns the length the whole
 * header needs without the NUL, like snprintf.  name is printable ASCII without
 * ':' (the caller's constant).
 */
extern size_t mailhdr_format(char *out, size_t size, const char *name, const char *value);

/*
 * Returns 1 when addr is a plain address, local@domain: a local part of 1 to 64
 * letters, digits and !#$%&'*+/=?^_`{|}~.- (RFC 5322 dot-atom text), a domain of
 * dot-separated labels of letters, digits and "-", 254 characters in all; so an
 * address can go into a header and an SMTP command as it is.
 */
extern int	mailhdr_address_ok(const char *addr);

#endif							/* DISPATCH_MAILHDR_H */
