# Cancelling a running joblist signals its jobs (SIGTERM, then SIGKILL after the
# grace period), and timeouts end jobs that run too long.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use DispatchTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = start_server(kill_grace => '1s');
my $dir = shared_dir();
my $agent = start_agent($node, 'n1', '--resource', 'cpu=[0-3]');

# A job that notes SIGTERM, and one that ignores it and needs SIGKILL.
my $jl = submit($node, qq({"name": "long", "stages": [{"jobs": [
  {"name": "polite", "command": "trap 'echo term > $dir/polite; exit 143' TERM; echo \$\$ > $dir/polite.pid; while :; do sleep 0.1; done"},
  {"name": "stubborn", "command": "trap '' TERM; echo \$\$ > $dir/stubborn.pid; while :; do sleep 0.1; done"}]},
  {"name": "never", "jobs": [{"name": "after", "command": "true"}]}]}));
wait_for($node, "SELECT count(*) = 2 FROM dispatch.job_status
                  WHERE joblist_id = $jl AND state = 'running'", 'both jobs run');
wait_until(sub { -s "$dir/stubborn.pid" && -s "$dir/polite.pid" }, 'jobs started');
is(query($node, "SELECT dispatch.cancel_joblist($jl)"), 't', 'cancel_joblist accepts');
is(query($node, "SELECT state FROM dispatch.joblist_status WHERE joblist_id = $jl"), 'cancelled',
	'joblist is cancelled at once');
wait_for($node, "SELECT bool_and(state = 'cancelled') FROM dispatch.job_status
                  WHERE joblist_id = $jl", 'every job ends cancelled');
is(slurp_file("$dir/polite"), "term\n", 'the polite job got SIGTERM');
is(query($node, "SELECT signal FROM dispatch.job_status WHERE joblist_id = $jl AND name = 'stubborn'"),
	'9', 'the job ignoring SIGTERM was killed after the grace period');
for my $name ('polite', 'stubborn')
{
	chomp(my $pid = slurp_file("$dir/$name.pid"));
	ok(!process_exists($pid), "$name job process is gone");
}
is(query($node, "SELECT count(*) FROM dispatch.job_status WHERE joblist_id = $jl AND name = 'after'
                    AND state = 'cancelled'"), '1', 'later stages never start');

# Timeout: the job is stopped and fails with a reason; with retries it is tried again.
my $tl = submit($node, q({"name": "slow", "stages": [{"jobs": [
  {"name": "sleepy", "command": "sleep 60", "timeout": "1 second", "retries": 1}]}]}));
wait_for($node, "SELECT state = 'failed' FROM dispatch.joblist_status WHERE joblist_id = $tl",
	'timed out joblist fails');
is(query($node, "SELECT attempt || ' ' || timed_out || ' ' || reason FROM dispatch.job_status
                  WHERE joblist_id = $tl"), '2 true timed out after 00:00:01',
	'the job timed out twice (retries 1) and says so');
is(query($node, "SELECT string_agg(e.state, ',' ORDER BY event_id) FROM dispatch.job_events e
                   JOIN dispatch.jobs j USING (job_id) WHERE j.joblist_id = $tl"),
	'pending,assigned,running,failed,pending,assigned,running,failed',
	'event history shows both attempts');

# A failing job fails its joblist fast.
my $fl = submit($node, q({"name": "bad", "stages": [{"jobs": [
  {"name": "boom", "command": "exit 3"}]}, {"jobs": [{"name": "next", "command": "true"}]}]}));
wait_for($node, "SELECT state = 'failed' FROM dispatch.joblist_status WHERE joblist_id = $fl",
	'failing joblist fails');
is(query($node, "SELECT reason FROM dispatch.joblist_status WHERE joblist_id = $fl"),
	'job "boom" exited with code 3', 'joblist says which job failed and how');

stop_agent($agent);
$node->stop;
done_testing();
