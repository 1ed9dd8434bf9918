/*
 * env.c -- the environment a job runs with.
 *
 * Built in three layers, a later one replacing a variable of an earlier one:
 *   1. the agent's own environment minus every variable whose name starts
 *      with "PG" (PGPASSWORD, PGHOST, PGSERVICEFILE, PGSSLKEY, ...): the
 *      agent's database credentials never reach a job;
 *   2. the job's "env" map from its assignment (assign.c);
 *   3. DISPATCH_JOB_ID, DISPATCH_JOBLIST_ID, DISPATCH_ATTEMPT, DISPATCH_NODE,
 *      DISPATCH_WORKDIR and, per allocated resource type T, DISPATCH_RES_<T>
 *      (identified types: comma-joined idents; amounts: the number), plus
 *      CUDA_VISIBLE_DEVICES for gpu.
 */
#include "agent.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int env_name_ok(const char *s);
static int check_object(const json_t *root, const char *what, char *err, size_t errlen);
static int add_job_env(StrList *env, json_t *root, char *err, size_t errlen);
static int add_resources(StrList *env, json_t *root, char *err, size_t errlen);

/* Sets name=value in env, replacing an earlier definition of name. */
void
env_set(StrList *env, const char *name, const char *value)
{
	size_t		nlen = strlen(name);
	char	   *def = xmalloc(nlen + strlen(value) + 2);

	sprintf(def, "%s=%s", name, value);
	for (int i = 0; i < env->n; i++)
		if (strncmp(env->items[i], name, nlen) == 0 && env->items[i][nlen] == '=')
		{
			free(env->items[i]);
			env->items[i] = def;
			return;
		}
	strlist_add(env, def);
	free(def);
}

/* Returns 1 when s can be an environment variable name. */
static int
env_name_ok(const char *s)
{
	if (!isalpha((unsigned char) *s) && *s != '_')
		return 0;
	for (s++; *s; s++)
		if (!isalnum((unsigned char) *s) && *s != '_')
			return 0;
	return 1;
}

/* Returns 0 when root is absent, JSON null (no members) or an object; else -1 with err saying "job <what> must be...". */
static int
check_object(const json_t *root, const char *what, char *err, size_t errlen)
{
	if (root != NULL && !json_is_object(root) && !json_is_null(root))
	{
		agent_seterr(err, errlen, "job %s must be a JSON object", what);
		return -1;
	}
	return 0;
}

/* Adds the job's "env" map (an object of strings) to env. */
static int
add_job_env(StrList *env, json_t *root, char *err, size_t errlen)
{
	const char *key;
	json_t	   *m;

	if (check_object(root, "env", err, errlen) < 0)
		return -1;
	json_object_foreach(root, key, m)
	{
		if (!env_name_ok(key))
			agent_seterr(err, errlen, "invalid environment variable name \"%s\" in job env", key);
		else if (!json_is_string(m))
			agent_seterr(err, errlen, "job env value of \"%s\" must be a string", key);
		else
		{
			env_set(env, key, json_string_value(m));
			continue;
		}
		return -1;
	}
	return 0;
}

/* Adds DISPATCH_RES_<TYPE> (and CUDA_VISIBLE_DEVICES) for every allocated resource type. */
static int
add_resources(StrList *env, json_t *root, char *err, size_t errlen)
{
	const char *key;
	json_t	   *m, *e;
	size_t		i;
	int			rc = 0;

	if (check_object(root, "resources", err, errlen) < 0)
		return -1;
	json_object_foreach(root, key, m)
	{
		StrBuf		name, value;

		if (!names_type_ok(key))
		{
			agent_seterr(err, errlen, "invalid resource type \"%s\" in job resources", key);
			return -1;
		}
		sb_init(&name);
		sb_init(&value);
		sb_puts(&name, "DISPATCH_RES_");
		for (const char *k = key; *k; k++)
			sb_printf(&name, "%c", toupper((unsigned char) *k));
		if (json_is_number(m))
			jsonio_put(&value, json_incref(m));
		else if (json_is_array(m))
		{
			json_array_foreach(m, i, e)
			{
				if (!json_is_string(e))
				{
					agent_seterr(err, errlen, "resource \"%s\" must list its idents as strings", key);
					rc = -1;
					break;
				}
				sb_puts(&value, i ? "," : "");
				sb_puts(&value, json_string_value(e));
			}
		}
		else
		{
			agent_seterr(err, errlen, "resource \"%s\" must be an array of idents or a number", key);
			rc = -1;
		}
		if (rc == 0)
		{
			env_set(env, name.data, value.data);
			if (strcmp(key, "gpu") == 0)
				env_set(env, "CUDA_VISIBLE_DEVICES", value.data);
		}
		sb_free(&name);
		sb_free(&value);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* Fills out (initialised, empty) with the environment of assignment a built from base; -1 on a bad env or resources map. */
int
env_build(char *const *base, const Assignment *a, const char *node,
		  const char *workdir, StrList *out, char *err, size_t errlen)
{
	const JobSpec *job = &a->spec;
	char		num[32];

	proc_env_without_pg(base, out);
	if (add_job_env(out, a->env, err, errlen) < 0)
		return -1;
	snprintf(num, sizeof(num), "%lld", (long long) job->job_id);
	env_set(out, "DISPATCH_JOB_ID", num);
	snprintf(num, sizeof(num), "%lld", (long long) job->joblist_id);
	env_set(out, "DISPATCH_JOBLIST_ID", num);
	snprintf(num, sizeof(num), "%d", job->attempt);
	env_set(out, "DISPATCH_ATTEMPT", num);
	env_set(out, "DISPATCH_NODE", node);
	env_set(out, "DISPATCH_WORKDIR", workdir);
	return add_resources(out, a->resources, err, errlen);
}
