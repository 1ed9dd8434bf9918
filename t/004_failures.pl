# Failures: an agent killed with SIGKILL mid-job loses its job, which is retried on
# the other agent; an agent restarted while jobs run picks them up again; a
# PostgreSQL restart while jobs run loses nothing.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use DispatchTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = start_server(node_timeout => '3s');
my $dir = shared_dir();
my $a1 = start_agent($node, 'n1', '--resource', 'cpu=[0-1]');

# kill -9 of the agent: the node goes offline, the job is lost and retried on n2.
my $jl = submit($node, qq({"name": "survivor", "stages": [{"jobs": [
  {"name": "work", "retries": 1, "command": "echo \$DISPATCH_NODE \$DISPATCH_ATTEMPT; echo \$\$ > $dir/work.\$DISPATCH_ATTEMPT; [ \$DISPATCH_ATTEMPT = 2 ] || while :; do sleep 0.1; done"}]}]}));
my $job = job_id_of($node, $jl, 'work');
wait_for($node, "SELECT state = 'running' AND node = 'n1' FROM dispatch.job_status
                  WHERE job_id = $job", 'job runs on n1');
my $a2 = start_agent($node, 'n2', '--resource', 'cpu=[0-1]');
kill_agent($a1);
wait_for($node, "SELECT state = 'offline' FROM dispatch.node_status WHERE node = 'n1'",
	'silent node goes offline');
wait_for($node, "SELECT state = 'succeeded' FROM dispatch.job_status WHERE job_id = $job",
	'lost job is retried and succeeds');
is(query($node, "SELECT node || ' ' || attempt FROM dispatch.job_status WHERE job_id = $job"),
	'n2 2', 'the retry ran on the other agent as attempt 2');
is(query($node, "SELECT string_agg(state || '\@' || coalesce(node, '-'), ',' ORDER BY event_id)
                   FROM dispatch.job_events WHERE job_id = $job"),
	'pending@-,assigned@n1,running@n1,lost@n1,pending@-,assigned@n2,running@n2,succeeded@n2',
	'history shows the loss and the retry');
is(query($node, "SELECT dispatch.job_log($job)"), "n2 2\n", 'output of the retry');

# The first attempt still runs under its orphaned supervisor on n1; a restarted n1
# agent must find its report refused (stale attempt) and stop it.
chomp(my $stale_pid = slurp_file("$dir/work.1"));
ok(process_exists($stale_pid), 'attempt 1 still runs on n1 without its agent');
$a1 = start_agent($node, 'n1', '--resource', 'cpu=[0-1]');
wait_until(sub { !process_exists($stale_pid) }, 'restarted agent stops the stale attempt');
is(query($node, "SELECT count(*) FROM dispatch.job_output WHERE job_id = $job AND attempt = 2"),
	'1', 'only the current attempt reported output after the restart');

# Agent restart while a job runs: the job keeps running and is reported once.
my $rl = submit($node, qq({"name": "restart", "stages": [{"jobs": [
  {"name": "steady", "constraints": {"node": "n1"}, "command": "echo before; while [ ! -f $dir/go1 ]; do sleep 0.1; done; echo after"}]}]}));
my $steady = job_id_of($node, $rl, 'steady');
wait_for($node, "SELECT dispatch.job_log($steady) = E'before\\n'", 'job runs on n1');
kill_agent($a1);
$a1 = start_agent($node, 'n1', '--resource', 'cpu=[0-1]');
open(my $fh, '>', "$dir/go1") or die;
close $fh;
wait_for($node, "SELECT state = 'succeeded' FROM dispatch.job_status WHERE job_id = $steady",
	'job survives an agent restart');
is(query($node, "SELECT attempt || ' ' || dispatch.job_log(job_id) FROM dispatch.job_status
                  WHERE job_id = $steady"), "1 before\nafter\n", 'same attempt, whole output');

# PostgreSQL restart while a job runs: agents reconnect and report what happened.
my $pl = submit($node, qq({"name": "pgrestart", "stages": [{"jobs": [
  {"name": "through", "constraints": {"node": "n2"}, "command": "echo one; while [ ! -f $dir/go2 ]; do sleep 0.1; done; echo two; touch $dir/done2"}]}]}));
my $through = job_id_of($node, $pl, 'through');
wait_for($node, "SELECT dispatch.job_log($through) = E'one\\n'", 'job runs on n2');
$node->stop('fast');
open($fh, '>', "$dir/go2") or die;
close $fh;
wait_until(sub { -f "$dir/done2" }, 'job finishes while the database is down');
$node->start;
wait_for($node, "SELECT state = 'succeeded' FROM dispatch.job_status WHERE job_id = $through",
	'job finished during the outage is reported after reconnecting');
is(query($node, "SELECT attempt || ' ' || dispatch.job_log(job_id) FROM dispatch.job_status
                  WHERE job_id = $through"), "1 one\ntwo\n", 'nothing lost across the restart');

# SIGTERM: the agent drains; a job still running after the grace is stopped and lost,
# so it is retried on the other agent instead of failing.
is(stop_agent($a1), 0, 'agent n1 exits 0 on SIGTERM');
is(stop_agent($a2), 0, 'agent n2 exits 0 on SIGTERM');
my $dl = submit($node, qq({"name": "drain", "stages": [{"jobs": [
  {"name": "long", "retries": 1, "constraints": {"reported:zone": "x"},
   "command": "echo \$DISPATCH_NODE; [ \$DISPATCH_NODE = n2 ] || while :; do sleep 0.1; done"}]}]}));
my $long = job_id_of($node, $dl, 'long');
$a1 = start_agent($node, 'n1', '--resource', 'cpu=[0-1]', '--label', 'zone=x');
wait_for($node, "SELECT state = 'running' AND node = 'n1' FROM dispatch.job_status
                  WHERE job_id = $long", 'long job runs on n1');
$a2 = start_agent($node, 'n2', '--resource', 'cpu=[0-1]', '--label', 'zone=x');
is(stop_agent($a1), 0, 'draining agent exits 0');
wait_for($node, "SELECT state = 'succeeded' FROM dispatch.job_status WHERE job_id = $long",
	'job stopped by the drain is retried on the other agent');
is(query($node, "SELECT string_agg(state || '\@' || coalesce(node, '-'), ',' ORDER BY event_id)
                   FROM dispatch.job_events WHERE job_id = $long"),
	'pending@-,assigned@n1,running@n1,lost@n1,pending@-,assigned@n2,running@n2,succeeded@n2',
	'the drained job was lost on n1, not failed, and retried on n2');

stop_agent($a2);
$node->stop;
done_testing();
