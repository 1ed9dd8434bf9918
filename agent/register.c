/*
 * register.c -- agent_register: what the agent tells the server about its node.
 *
 * The registration payload is the node's whole description in one JSON
 * object: the machine (hostname, arch, os, cpus, memory), the agent (version,
 * pid), the operator's labels, every identified resource instance, the amount
 * resources, and the jobs still in the spool so that the server keeps them
 * rather than counting them lost.  The reply names the NOTIFY channel and the
 * server's heartbeat interval and kill grace, which the command line may
 * override.  Registration is idempotent: the loop repeats it whenever the
 * server has forgotten the node.
 */
#include "agent.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#define REGISTER_MEM_AMOUNT "mem_mb="	/* the amount reported as the machine's memory_mb */

static void build_info(const Options *o, StrBuf *sb);

/* Appends the info object for agent_register to sb. */
static void
build_info(const Options *o, StrBuf *sb)
{
	struct utsname u;
	char		host[256] = "", os[512];
	long long	mem = 0;
	size_t		memlen = strlen(REGISTER_MEM_AMOUNT);
	json_t	   *labels = json_object(),
			   *res = json_array(),
			   *amounts = json_object();

	uname(&u);
	gethostname(host, sizeof(host) - 1);
	snprintf(os, sizeof(os), "%s %s", u.sysname, u.release);
	for (int i = 0; i < o->amounts.n; i++)
		if (strncmp(o->amounts.items[i], REGISTER_MEM_AMOUNT, memlen) == 0)
			mem = atoll(o->amounts.items[i] + memlen);
	/* label keys and resource types are ASCII names (options.c checks them) */
	for (int i = 0; i + 1 < o->labels.n; i += 2)
		json_object_set_new(labels, o->labels.items[i], jsonio_str(o->labels.items[i + 1]));
	for (int i = 0; i < o->nres; i++)
		for (int k = 0; k < o->res[i].ids.n; k++)
			json_array_append_new(res, json_pack("{ssso}", "type", o->res[i].type,
												 "ident", jsonio_str(o->res[i].ids.items[k])));
	for (int i = 0; i < o->amounts.n; i++)
	{
		const char *eq = strchr(o->amounts.items[i], '=');	/* TYPE=N, N checked positive */

		json_object_setn_new(amounts, o->amounts.items[i], (size_t) (eq - o->amounts.items[i]),
							 json_integer(strtoll(eq + 1, NULL, 10)));
	}
	jsonio_put(sb, json_pack("{sosososIsIsssisosososo}",
							 "hostname", jsonio_str(host), "arch", jsonio_str(u.machine),
							 "os", jsonio_str(os), "cpus", (json_int_t) sysconf(_SC_NPROCESSORS_ONLN),
							 "memory_mb", (json_int_t) mem, "version", AGENT_VERSION,
							 "pid", (int) getpid(), "labels", labels, "resources", res,
							 "amounts", amounts, "jobs", jobs_info_json()));
}

/*
 * Registers node o->node on c and stores the heartbeat interval and kill grace
 * to use (the options' or else the server's) in *heartbeat_ms and *kill_grace_ms;
 * with listen set, also LISTENs on the node's channel.  Returns 0, or -1 after
 * logging why.
 */
int
register_node(Conn *c, const Options *o, int listen, int64_t *heartbeat_ms, int64_t *kill_grace_ms)
{
	char		err[AGENT_ERRLEN];
	StrBuf		info, reply;
	json_t	   *r = NULL;
	const char *channel;
	int64_t		v;
	int			rc = -1;

	sb_init(&info);
	sb_init(&reply);
	build_info(o, &info);
	log_debug("registering: %s", info.data);
	if (conn_register(c, o->node, info.data, &reply, err, sizeof(err)) != CALL_OK)
		log_error("could not register node \"%s\": %s", o->node, err);
	else if ((r = jsonio_load(reply.data, 0, err, sizeof(err))) == NULL ||
			 (channel = json_string_value(json_object_get(r, "channel"))) == NULL)
		log_error("unexpected reply from agent_register: %s", reply.data);
	else if (listen && conn_listen(c, channel, err, sizeof(err)) < 0)
		log_error("could not listen on channel \"%s\": %s", channel, err);
	else
	{
		*heartbeat_ms = o->heartbeat_ms ? o->heartbeat_ms :
			(jsonio_int(json_object_get(r, "heartbeat_ms"), &v) == 0 && v > 0 ? v : AGENT_HEARTBEAT_MS);
		*kill_grace_ms = o->kill_grace_ms ? o->kill_grace_ms :
			(jsonio_int(json_object_get(r, "kill_grace_ms"), &v) == 0 && v >= 0 ? v : AGENT_KILL_GRACE_MS);
		log_info("registered node \"%s\" (channel \"%s\", heartbeat %" PRId64 " ms, kill grace %" PRId64 " ms)",
				 o->node, channel, *heartbeat_ms, *kill_grace_ms);
		rc = 0;
	}
	json_decref(r);
	sb_free(&info);
	sb_free(&reply);
	return rc;
}
