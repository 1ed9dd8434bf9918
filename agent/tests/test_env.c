/*
 * test_env.c -- the job environment: PG* stripped, job env, DISPATCH_* and resources.
 */
#include "unit.h"

/* Returns how many definitions of name env holds. */
static int
count(const StrList *env, const char *name)
{
	size_t		n = strlen(name);
	int			c = 0;

	for (int i = 0; i < env->n; i++)
		c += strncmp(env->items[i], name, n) == 0 && env->items[i][n] == '=';
	return c;
}

/* Builds an environment for env/resources JSON and returns env_build's result. */
static int
build(const char *env_json, const char *res_json, StrList *env, char *err)
{
	char	   *base[] = {"PATH=/usr/bin:/bin", "PGPASSWORD=secret", "PGHOST=db", "PGSSLKEY=/k",
		"PGSERVICEFILE=/s", "HOME=/home/w", "DISPATCH_NODE=spoofed", "LANG=C", "PG=x", NULL};
	JobSpec		job = {42, 3, 7, "true", env_json, res_json, 0, NULL, NULL};
	Assignment	a;
	int			rc;

	strlist_init(env);
	rc = assign_parse(&job, &a, err, AGENT_ERRLEN) < 0 ? -1 :
		env_build(base, &a, "w1", "/spool/jobs/42.3/work", env, err, AGENT_ERRLEN);
	assign_free(&a);
	return rc;
}

void
test_env(void)
{
	StrList		env;
	char		err[AGENT_ERRLEN];

	CHECK(build("{\"FOO\": \"bar\", \"PATH\": \"/opt/bin\", \"DISPATCH_JOB_ID\": \"1\"}",
				"{\"cpu\": [\"0\", \"1\"], \"gpu\": [\"2\", \"3\"], \"mem_mb\": 2048, \"lic_x\": []}",
				&env, err) == 0);
	CHECK(unit_env_get(&env, "PGPASSWORD") == NULL);
	CHECK(unit_env_get(&env, "PGHOST") == NULL);
	CHECK(unit_env_get(&env, "PGSSLKEY") == NULL);
	CHECK(unit_env_get(&env, "PGSERVICEFILE") == NULL);
	CHECK(unit_env_get(&env, "PG") == NULL);
	CHECK_STR(unit_env_get(&env, "HOME"), "/home/w");
	CHECK_STR(unit_env_get(&env, "LANG"), "C");
	CHECK_STR(unit_env_get(&env, "FOO"), "bar");
	CHECK_STR(unit_env_get(&env, "PATH"), "/opt/bin");
	CHECK(count(&env, "PATH") == 1);
	CHECK_STR(unit_env_get(&env, "DISPATCH_JOB_ID"), "42");
	CHECK(count(&env, "DISPATCH_JOB_ID") == 1);
	CHECK_STR(unit_env_get(&env, "DISPATCH_JOBLIST_ID"), "7");
	CHECK_STR(unit_env_get(&env, "DISPATCH_ATTEMPT"), "3");
	CHECK_STR(unit_env_get(&env, "DISPATCH_NODE"), "w1");
	CHECK(count(&env, "DISPATCH_NODE") == 1);
	CHECK_STR(unit_env_get(&env, "DISPATCH_WORKDIR"), "/spool/jobs/42.3/work");
	CHECK_STR(unit_env_get(&env, "DISPATCH_RES_CPU"), "0,1");
	CHECK_STR(unit_env_get(&env, "DISPATCH_RES_GPU"), "2,3");
	CHECK_STR(unit_env_get(&env, "CUDA_VISIBLE_DEVICES"), "2,3");
	CHECK_STR(unit_env_get(&env, "DISPATCH_RES_MEM_MB"), "2048");
	CHECK_STR(unit_env_get(&env, "DISPATCH_RES_LIC_X"), "");
	CHECK(env.items[env.n] == NULL);
	strlist_free(&env);

	/* no env, no resources, JSON null: only the DISPATCH_* basics, no CUDA */
	CHECK(build(NULL, "null", &env, err) == 0);
	CHECK(unit_env_get(&env, "CUDA_VISIBLE_DEVICES") == NULL);
	CHECK_STR(unit_env_get(&env, "DISPATCH_NODE"), "w1");
	strlist_free(&env);

	CHECK(build("[1]", NULL, &env, err) == -1 && strstr(err, "job env must be a JSON object"));
	strlist_free(&env);
	CHECK(build("{\"A\": 1}", NULL, &env, err) == -1 && strstr(err, "must be a string"));
	strlist_free(&env);
	CHECK(build("{\"A=B\": \"x\"}", NULL, &env, err) == -1 && strstr(err, "invalid environment variable name"));
	strlist_free(&env);
	CHECK(build("{\"\": \"x\"}", NULL, &env, err) == -1);
	strlist_free(&env);
	CHECK(build("{\"A\": ", NULL, &env, err) == -1 && strstr(err, "invalid JSON"));
	strlist_free(&env);
	CHECK(build(NULL, "{\"gpu\": \"0\"}", &env, err) == -1 && strstr(err, "array of idents or a number"));
	strlist_free(&env);
	CHECK(build(NULL, "{\"gpu\": [0]}", &env, err) == -1 && strstr(err, "as strings"));
	strlist_free(&env);
	CHECK(build(NULL, "{\"GPU\": [\"0\"]}", &env, err) == -1 && strstr(err, "invalid resource type"));
	strlist_free(&env);
	CHECK(build(NULL, "[]", &env, err) == -1 && strstr(err, "must be a JSON object"));
	strlist_free(&env);
}
