-- Least privilege: users submit and cancel their own work and see everything;
-- agents act only for their own nodes; admins may do anything.
\set SHOW_CONTEXT never
\set VERBOSITY default
CREATE ROLE alice IN ROLE dispatch_user;
CREATE ROLE bob IN ROLE dispatch_user;
CREATE ROLE boss IN ROLE dispatch_admin;
CREATE ROLE agent_a IN ROLE dispatch_agent;
CREATE ROLE agent_b IN ROLE dispatch_agent;
CREATE ROLE nobody;

SET ROLE alice;
SELECT dispatch.current_caller();
SELECT dispatch.submit_joblist('{"name": "alices", "stages": [{"jobs": [
  {"name": "a", "command": "true", "needs": {"handdriven": 1}}]}]}') AS alices \gset
SELECT submitted_by FROM dispatch.joblist_status WHERE joblist_id = :alices;
-- Users read everything but write nothing directly, and cannot act as agents or admins.
SELECT count(*) > 0 AS sees_all FROM dispatch.job_status;
UPDATE dispatch.jobs SET state = 'succeeded';
DELETE FROM dispatch.joblists;
SELECT dispatch.agent_register('alice-node', '{}');
SELECT dispatch.add_resource('gpu', '9');
SELECT dispatch._housekeeping(now(), true, NULL);
RESET ROLE;

SET ROLE bob;
SELECT dispatch.cancel_joblist(:alices::bigint);
SELECT dispatch.cancel_joblist('alices');
SELECT dispatch.cancel_job(job_id) FROM dispatch.jobs WHERE joblist_id = :alices;
RESET ROLE;

SET ROLE nobody;
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [{"name": "a", "command": "c"}]}]}');
SELECT * FROM dispatch.job_status;
RESET ROLE;

-- An admin may cancel anyone's joblist.
SET ROLE boss;
SELECT dispatch.cancel_joblist(:alices::bigint);
SELECT state, reason FROM dispatch.joblist_status WHERE joblist_id = :alices;
RESET ROLE;

-- Agents: the first registration makes the role the node's owner.
SET ROLE agent_a;
SELECT dispatch.agent_register('node-a', '{}') IS NOT NULL AS registered;
SELECT dispatch.submit_joblist('{"name": "x", "stages": [{"jobs": [{"name": "a", "command": "c"}]}]}');
-- An agent reads nothing directly: it acts and learns only through the agent_* calls.
SELECT count(*) FROM dispatch.jobs;
RESET ROLE;
SELECT owner FROM dispatch.nodes WHERE node = 'node-a';
SELECT dispatch.submit_joblist('{"name": "agentwork", "stages": [{"jobs": [
  {"name": "a", "command": "true", "needs": {"handdriven": 1}}]}]}') AS aw \gset
SELECT job_id AS awjob FROM dispatch.jobs WHERE joblist_id = :aw \gset
SELECT dispatch._assign(:awjob, 'node-a', '{}', '{}');

SET ROLE agent_b;
SELECT dispatch.agent_register('node-a', '{}');
SELECT dispatch.agent_heartbeat('node-a');
SELECT * FROM dispatch.agent_poll('node-a');
SELECT dispatch.agent_output('node-a', :awjob, 1, 'stdout', 0, 'x');
SELECT dispatch.agent_finish('node-a', :awjob, 1, 0, NULL, false);
SELECT dispatch.agent_drain('node-a');
SELECT dispatch.agent_online_nodes('node-a');
SELECT dispatch.agent_offline('node-a');
RESET ROLE;

SET ROLE agent_a;
SELECT action, name FROM dispatch.agent_poll('node-a');
SELECT dispatch.agent_finish('node-a', :awjob, 1, 0, NULL, false);
SELECT dispatch.agent_offline('node-a');
RESET ROLE;

-- Admins act for any node.
SET ROLE boss;
SELECT dispatch.agent_heartbeat('node-a');
RESET ROLE;

DROP OWNED BY alice, bob, boss, agent_a, agent_b, nobody;
DROP ROLE alice, bob, boss, agent_a, agent_b, nobody;
