-- Labels are claims (issue 12, hole 5).  An impostor agent, with a role of its own,
-- claims the hostname and zone of a trusted node: a job constrained to them (with a
-- secret in env) is never assigned to it, and is assigned to the trusted node once
-- that registers; the impostor cannot take the name an admin bound to another role.
\set SHOW_CONTEXT never
\set VERBOSITY default
CREATE ROLE lab_db1 IN ROLE dispatch_agent;
CREATE ROLE lab_evil IN ROLE dispatch_agent;
CREATE ROLE lab_user IN ROLE dispatch_user;
CREATE ROLE lab_admin IN ROLE dispatch_admin;

-- Only admins bind node names and set the labels constraints match.
SET ROLE lab_user;
SELECT dispatch.bind_node('lab-db1', 'lab_db1');
SELECT dispatch.set_node_labels('lab-db1', '{"zone": "secure"}');
RESET ROLE;
SET ROLE lab_evil;
SELECT dispatch.bind_node('lab-db1', 'lab_evil');
SELECT dispatch.set_node_labels('lab-db1', '{"zone": "secure"}');
RESET ROLE;

-- Bad input: a clear error, nothing stored.
SET ROLE lab_admin;
SELECT dispatch.bind_node('bad name', 'lab_db1');
SELECT dispatch.bind_node(NULL, 'lab_db1');
SELECT dispatch.bind_node('lab-db1', NULL);
SELECT dispatch.bind_node('lab-db1', 'lab_no_such_role');
SELECT dispatch.bind_node('lab-db1', 'lab_user');
SELECT dispatch.set_node_labels('lab-db1', '{"zone": "secure"}');
SELECT count(*) AS lab_nodes FROM dispatch.nodes WHERE node LIKE 'lab-%';

-- An admin binds db1's name to db1's role before its agent first registers.
SELECT dispatch.bind_node('lab-db1', 'lab_db1');
SELECT dispatch.bind_node('lab-db1', 'lab_db1');
SELECT dispatch.set_node_labels('lab-db1', NULL);
SELECT dispatch.set_node_labels('lab-db1', '[]');
SELECT dispatch.set_node_labels('lab-db1', '{"node": "lab-evil"}');
SELECT dispatch.set_node_labels('lab-db1', '{"bad key": "x"}');
SELECT dispatch.set_node_labels('lab-db1', '{"reported:zone": "x"}');
SELECT dispatch.set_node_labels('lab-db1', '{"zone": 1}');
SELECT dispatch.set_node_labels('lab-db1', jsonb_build_object('zone', repeat('z', 256)));
SELECT dispatch.set_node_labels('lab-db1', '{"zone": "secure", "hostname": "db1"}');
SELECT node, state, owner, registered_at IS NULL AS never_registered, labels, admin_labels
  FROM dispatch.node_status WHERE node LIKE 'lab-%';
RESET ROLE;
-- The number of admin labels is bounded like the agent's.
SET dispatch.max_node_labels = 1;
SELECT dispatch.set_node_labels('lab-db1', '{"a": "1", "b": "2"}');
RESET dispatch.max_node_labels;
SELECT admin_labels FROM dispatch.nodes WHERE node = 'lab-db1';

-- The impostor cannot take the bound name, nor act for it ...
SET ROLE lab_evil;
SELECT dispatch.agent_register('lab-db1', '{"hostname": "db1", "labels": {"zone": "secure"},
  "resources": [{"type": "lab_cpu", "ident": "0"}]}');
SELECT dispatch.agent_heartbeat('lab-db1');
-- ... so it registers a name of its own, claiming db1's hostname and zone.
SELECT dispatch.agent_register('lab-evil', '{"hostname": "db1", "labels": {"zone": "secure"},
  "resources": [{"type": "lab_cpu", "ident": "0"}]}') IS NOT NULL AS registered;
RESET ROLE;
SELECT node, state, owner, registered_at IS NULL AS never_registered, hostname, labels,
       admin_labels
  FROM dispatch.node_status WHERE node LIKE 'lab-%' ORDER BY node;

-- A job for db1 with a secret: the impostor matches every claim, and gets nothing.
SET ROLE lab_user;
SELECT dispatch.submit_joblist('{"name": "lab-secret", "stages": [{"jobs": [
  {"name": "s", "command": "use-secret", "needs": {"lab_cpu": 1},
   "constraints": {"zone": "secure", "hostname": "db1"}, "env": {"SECRET": "s3cret"}}]}]}')
  AS secret_jl \gset
RESET ROLE;
SELECT job_id AS secret_job FROM dispatch.jobs WHERE joblist_id = :secret_jl \gset
SELECT wait_for(format($$SELECT reason <> 'waiting for the scheduler'
                                   FROM dispatch.jobs WHERE job_id = %s$$, :secret_job));
SELECT state, node, reason FROM dispatch.job_status WHERE job_id = :secret_job;
SET ROLE lab_evil;
SELECT count(*) AS evil_gets FROM dispatch.agent_poll('lab-evil');
RESET ROLE;

-- db1's agent registers (reporting nothing in particular): the job goes there.
SET ROLE lab_db1;
SELECT dispatch.agent_register('lab-db1', '{"hostname": "db1.example", "labels": {"zone": "a"},
  "resources": [{"type": "lab_cpu", "ident": "0"}]}') IS NOT NULL AS registered;
RESET ROLE;
SELECT wait_for(format($$SELECT state = 'assigned' FROM dispatch.jobs
                                  WHERE job_id = %s$$, :secret_job));
SELECT state, node FROM dispatch.job_status WHERE job_id = :secret_job;
SET ROLE lab_evil;
SELECT count(*) AS evil_gets FROM dispatch.agent_poll('lab-evil');
SELECT count(*) AS evil_gets FROM dispatch.agent_poll('lab-db1');
RESET ROLE;
SET ROLE lab_db1;
SELECT action, name, command, env FROM dispatch.agent_poll('lab-db1');
SELECT dispatch.agent_finish('lab-db1', :secret_job, 1, 0, NULL, false);
RESET ROLE;
-- Registering again changes what the agent reports, never the admin's labels.
SELECT node, owner, registered_at IS NOT NULL AS registered, hostname, labels, admin_labels
  FROM dispatch.node_status WHERE node = 'lab-db1';

-- A job that trusts the agents' claims says so with "reported:": the claim is all
-- it asked for, so the impostor may get it.  Unmatched, the reason names the key.
SET ROLE lab_user;
SELECT dispatch.submit_joblist('{"name": "lab-claims", "stages": [{"jobs": [
  {"name": "c", "command": "true", "needs": {"lab_cpu": 1},
   "constraints": {"reported:zone": "secure", "reported:hostname": "db1"}},
  {"name": "n", "command": "true", "needs": {"lab_cpu": 1},
   "constraints": {"reported:zone": "nowhere"}},
  {"name": "p", "command": "true", "needs": {"lab_cpu": 1},
   "constraints": {"node": "lab-db1"}}]}]}') AS claims_jl \gset
RESET ROLE;
SELECT wait_for(format($$SELECT bool_and(reason IS DISTINCT FROM 'waiting for the scheduler')
                                  FROM dispatch.jobs WHERE joblist_id = %s$$, :claims_jl));
SELECT name, state, node, reason FROM dispatch.job_status WHERE joblist_id = :claims_jl
 ORDER BY name;
SELECT dispatch.cancel_joblist(:claims_jl);

-- Handing a node to another role: the old role's agent is refused at once, the node
-- goes offline and its jobs are lost.
SET ROLE lab_evil;
SELECT dispatch.agent_register('lab-x', '{}') IS NOT NULL AS registered;
RESET ROLE;
SELECT dispatch.submit_joblist('{"name": "lab-on-x", "stages": [{"jobs": [
  {"name": "x", "command": "true", "needs": {"lab_manual": 1}}]}]}') AS x_jl \gset
SELECT dispatch._assign(job_id, 'lab-x', '{}', '{}') FROM dispatch.jobs WHERE joblist_id = :x_jl;
SET ROLE lab_evil;
SELECT action, name FROM dispatch.agent_poll('lab-x');
RESET ROLE;
SET ROLE lab_admin;
SELECT dispatch.bind_node('lab-x', 'lab_db1');
RESET ROLE;
SELECT state, owner FROM dispatch.nodes WHERE node = 'lab-x';
SELECT state, reason FROM dispatch.jobs WHERE joblist_id = :x_jl;
SET ROLE lab_evil;
SELECT dispatch.agent_heartbeat('lab-x');
RESET ROLE;
SET ROLE lab_db1;
SELECT dispatch.agent_register('lab-x', '{}') IS NOT NULL AS registered;
RESET ROLE;

-- With dispatch.open_registration off, an agent registers only bound names (an
-- admin may still register any); the names it already has keep working.
SET dispatch.open_registration = off;
SET ROLE lab_evil;
SET dispatch.open_registration = on;
SELECT dispatch.agent_register('lab-new', '{}');
SELECT dispatch.agent_register('lab-evil', '{}') IS NOT NULL AS registered;
RESET ROLE;
SET ROLE lab_admin;
SELECT dispatch.bind_node('lab-new', 'lab_evil');
RESET ROLE;
SET ROLE lab_evil;
SELECT dispatch.agent_register('lab-new', '{}') IS NOT NULL AS registered;
RESET ROLE;
RESET dispatch.open_registration;
SELECT node, owner FROM dispatch.nodes WHERE node LIKE 'lab-%' ORDER BY node;

-- Clean up: later files see no trace.
DELETE FROM dispatch.joblists WHERE name LIKE 'lab-%';
DELETE FROM dispatch.nodes WHERE node LIKE 'lab-%';
DROP ROLE lab_db1, lab_evil, lab_user, lab_admin;
