/*
 * names.c -- the agent's one definition of each name the server also checks.
 *
 * A node name, a resource type, a label key and a watched workspace's name
 * each have one pattern, spelt exactly as the server's SQL spells it, and one
 * function that matches it (POSIX extended regular expressions in the C locale read these patterns the
 * way PostgreSQL's ~ does).  The option parser, the job environment and
 * anything else on the agent side ask these functions, never a copy.
 */
#include "agent.h"

#include <regex.h>
#include <stdlib.h>

#define NAMES_NODE_PATTERN "^[A-Za-z0-9][A-Za-z0-9._-]{0,47}$"
#define NAMES_TYPE_PATTERN "^[a-z][a-z0-9_]{0,62}$"
#define NAMES_LABEL_KEY_PATTERN "^[A-Za-z0-9_.-]{1,63}$"
#define NAMES_WORKSPACE_PATTERN "^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"

static int	matches(const char *pattern, const char *s);

/* Returns 1 when s matches the extended regular expression pattern. */
static int
matches(const char *pattern, const char *s)
{
	regex_t		re;
	int			ok;

	if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0)
	{
		log_error("could not compile pattern \"%s\"", pattern);
		abort();				/* a constant above is broken */
	}
	ok = regexec(&re, s, 0, NULL, 0) == 0;
	regfree(&re);
	return ok;
}

/* Returns 1 when s is a valid node name: ^[A-Za-z0-9][A-Za-z0-9._-]{0,47}$. */
int
names_node_ok(const char *s)
{
	return matches(NAMES_NODE_PATTERN, s);
}

/* Returns 1 when s is a valid resource type: ^[a-z][a-z0-9_]{0,62}$. */
int
names_type_ok(const char *s)
{
	return matches(NAMES_TYPE_PATTERN, s);
}

/* Returns 1 when s is a valid label key: ^[A-Za-z0-9_.-]{1,63}$ (reserved keys aside). */
int
names_label_key_ok(const char *s)
{
	return matches(NAMES_LABEL_KEY_PATTERN, s);
}

/* Returns 1 when s is a valid workspace name: ^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$. */
int
names_workspace_ok(const char *s)
{
	return matches(NAMES_WORKSPACE_PATTERN, s);
}
