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

/* Builds the info object for agent_register. */
static void
build_info(const Options *o, StrBuf *sb)
{
	struct utsname u;
	char		host[256] = "", os[512];
	long long	mem = 0;
	size_t		memlen = strlen(REGISTER_MEM_AMOUNT);

	uname(&u);
	gethostname(host, sizeof(host) - 1);
	snprintf(os, sizeof(os), "%s %s", u.sysname, u.release);
	sb_puts(sb, "{\"hostname\": ");
	json_put_str(sb, host);
	sb_puts(sb, ", \"arch\": ");
	json_put_str(sb, u.machine);
	sb_puts(sb, ", \"os\": ");
	json_put_str(sb, os);
	for (int i = 0; i < o->amounts.n; i++)
		if (strncmp(o->amounts.items[i], REGISTER_MEM_AMOUNT, memlen) == 0)
			mem = atoll(o->amounts.items[i] + memlen);
	sb_printf(sb, ", \"cpus\": %ld, \"memory_mb\": %lld, \"version\": ", sysconf(_SC_NPROCESSORS_ONLN), mem);
	json_put_str(sb, AGENT_VERSION);
	sb_printf(sb, ", \"pid\": %d, \"labels\": {", (int) getpid());
	for (int i = 0; i + 1 < o->labels.n; i += 2)
	{
		sb_puts(sb, i ? ", " : "");
		json_put_str(sb, o->labels.items[i]);
		sb_puts(sb, ": ");
		json_put_str(sb, o->labels.items[i + 1]);
	}
	sb_puts(sb, "}, \"resources\": [");
	for (int i = 0, first = 1; i < o->nres; i++)
		for (int k = 0; k < o->res[i].ids.n; k++, first = 0)
		{
			sb_puts(sb, first ? "{\"type\": " : ", {\"type\": ");
			json_put_str(sb, o->res[i].type);
			sb_puts(sb, ", \"ident\": ");
			json_put_str(sb, o->res[i].ids.items[k]);
			sb_puts(sb, "}");
		}
	sb_puts(sb, "], \"amounts\": {");
	for (int i = 0; i < o->amounts.n; i++)
	{
		const char *eq = strchr(o->amounts.items[i], '=');
		char		type[64];

		snprintf(type, sizeof(type), "%.*s", (int) (eq - o->amounts.items[i]), o->amounts.items[i]);
		sb_puts(sb, i ? ", " : "");
		json_put_str(sb, type);
		sb_printf(sb, ": %s", eq + 1);
	}
	sb_puts(sb, "}, \"jobs\": ");
	jobs_info_json(sb);
	sb_puts(sb, "}");
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
	JsonValue  *r = NULL;
	const JsonValue *channel;
	int64_t		v;
	int			rc = -1;

	sb_init(&info);
	sb_init(&reply);
	build_info(o, &info);
	log_debug("registering: %s", info.data);
	if (conn_register(c, o->node, info.data, &reply, err, sizeof(err)) != CALL_OK)
		log_error("could not register node \"%s\": %s", o->node, err);
	else if (json_parse(reply.data, &r, err, sizeof(err)) < 0 ||
			 (channel = json_get(r, "channel")) == NULL || channel->type != JSON_STRING)
		log_error("unexpected reply from agent_register: %s", reply.data);
	else if (listen && conn_listen(c, channel->text, err, sizeof(err)) < 0)
		log_error("could not listen on channel \"%s\": %s", channel->text, err);
	else
	{
		*heartbeat_ms = o->heartbeat_ms ? o->heartbeat_ms :
			(json_int(json_get(r, "heartbeat_ms"), &v) == 0 && v > 0 ? v : AGENT_HEARTBEAT_MS);
		*kill_grace_ms = o->kill_grace_ms ? o->kill_grace_ms :
			(json_int(json_get(r, "kill_grace_ms"), &v) == 0 && v >= 0 ? v : AGENT_KILL_GRACE_MS);
		log_info("registered node \"%s\" (channel \"%s\", heartbeat %" PRId64 " ms, kill grace %" PRId64 " ms)",
				 o->node, channel->text, *heartbeat_ms, *kill_grace_ms);
		rc = 0;
	}
	json_free(r);
	sb_free(&info);
	sb_free(&reply);
	return rc;
}
