# Labels are claims (issue 12, hole 5; docs/security.md, "Labels and node names"),
# with real agents.  An admin binds node name db1 to db1's role and gives it the labels
# zone=secure, hostname=db1.  An impostor agent, with a role of its own, claims
# zone=secure and reports the same machine hostname as db1 (both run here); another
# impostor process tries db1's name itself.  A job constrained to zone=secure and
# hostname=db1, with a secret in its env, never reaches an impostor: it waits until
# db1's own agent comes, then runs there.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use DispatchTest;

my $node = start_server();
query($node, q{CREATE ROLE agent_db1 LOGIN IN ROLE dispatch_agent;
	SELECT dispatch.bind_node('db1', 'agent_db1');
	SELECT dispatch.set_node_labels('db1', '{"zone": "secure", "hostname": "db1"}')});

# The impostor under its own name, claiming the zone.
my $evil = start_agent($node, 'evil', '--resource', 'slot=[0-3]', '--label', 'zone=secure');
is(query($node, "SELECT labels ->> 'zone' FROM dispatch.nodes WHERE node = 'evil'"), 'secure',
	'the impostor claims zone=secure');

# The impostor under db1's name, with its own role: refused, and it stays refused.
my $squat_log = "$PostgreSQL::Test::Utils::log_path/017_labels_agent_squat.log";
my $squat_dir = "$PostgreSQL::Test::Utils::tmp_check/017_labels_work_squat";
mkdir $squat_dir;
my $squat = IPC::Run::start([ agent_binary(), '--dbname', $node->connstr('postgres') . ' user=agent_evil',
	'--node', 'db1', '--workdir', $squat_dir, '--job-user', job_user(), '--resource', 'slot=[0-3]',
	'--label', 'zone=secure' ], '<', \undef, '>>', $squat_log, '2>>', $squat_log);
wait_until(sub { slurp_file($squat_log) =~ /permission denied for node "db1"/ },
	'an agent of another role cannot register the bound name db1');

my $dir = shared_dir();
my $jl = submit($node, qq({"name": "secret", "stages": [{"jobs": [
  {"name": "s", "needs": {"slot": 1}, "constraints": {"zone": "secure", "hostname": "db1"},
   "env": {"SECRET": "s3cret"}, "command": "echo \$DISPATCH_NODE \$SECRET"}]}]}));
my $job = job_id_of($node, $jl, 's');
wait_for($node, "SELECT reason = 'no online node matches hostname=db1, zone=secure'
                   FROM dispatch.job_status WHERE job_id = $job",
	'the job waits: the impostor\'s claims do not match');

# db1's own agent comes: the job runs there, and only there.
my $db1 = start_agent($node, 'db1', '--resource', 'slot=[0-1]');
wait_for($node, "SELECT state = 'succeeded' FROM dispatch.job_status WHERE job_id = $job",
	'the job runs once db1 is online');
is(query($node, "SELECT dispatch.job_log($job)"), "db1 s3cret\n", 'on db1, with its secret');
is(query($node, "SELECT string_agg(DISTINCT coalesce(node, '-'), ',') FROM dispatch.job_events
                  WHERE job_id = $job"), '-,db1', 'it was never assigned anywhere else');
is(query($node, "SELECT owner || ' ' || admin_labels::text FROM dispatch.nodes WHERE node = 'db1'"),
	'agent_db1 {"zone": "secure", "hostname": "db1"}',
	'db1 keeps its role and the admin\'s labels after its agent registered');
is(query($node, "SELECT count(DISTINCT hostname) FROM dispatch.nodes WHERE node IN ('db1', 'evil')"),
	'1', 'the impostor reports the very hostname db1 reports');
ok(!grep({ -e $_ } glob("$evil->{workdir}/jobs/$job.*"), glob("$squat_dir/jobs/$job.*")),
	'no impostor ever had the job in its spool');
unlike(slurp_file($evil->{log}) . slurp_file($squat_log), qr/s3cret|job $job\b/,
	'nor in its log');

# A job that asks for the claim explicitly may go to the impostor.
my $cl = submit($node, q({"name": "claims", "stages": [{"jobs": [
  {"name": "c", "needs": {"slot": 1}, "constraints": {"reported:zone": "secure"},
   "command": "echo $DISPATCH_NODE"}]}]}));
my $claim = job_id_of($node, $cl, 'c');
wait_for($node, "SELECT state = 'succeeded' FROM dispatch.job_status WHERE job_id = $claim",
	'a reported:zone job runs');
is(query($node, "SELECT dispatch.job_log($claim)"), "evil\n", 'on the node that claims the zone');

$squat->kill_kill;
is(stop_agent($db1), 0, 'db1 exits 0');
is(stop_agent($evil), 0, 'the impostor exits 0');
done_testing();
