# The batched agent protocol with real agents: many short jobs through two agents are
# reported in batches (dispatch.agent_report), each result and each output recorded
# exactly once; a connection cut while a batch is in flight loses nothing and
# duplicates nothing: the agent asks again after reconnecting and replays its spool
# in one batch.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use DispatchTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = start_server(node_timeout => '20s');
my @agents = map { start_agent($node, $_, '-v', '--metrics-interval', '0', '--resource', 'cpu=[0-7]') }
  qw(b1 b2);

# The batches an agent's log shows: [reports, ends] for each agent_report call.
sub batches
{
	my ($agent) = @_;
	my $log = slurp_file($agent->{log});
	my @batches;
	push @batches, [ $1, $2 ] while $log =~ /agent_report: (\d+) report\(s\), (\d+) end\(s\)/g;
	return @batches;
}

# Checks that every job of joblist jl has one end: one final event, one history row,
# and its output once.
sub recorded_once
{
	my ($jl, $jobs, $what) = @_;
	is(query($node, "SELECT count(*) FROM dispatch.jobs WHERE joblist_id = $jl AND state = 'succeeded'"),
		$jobs, "$what: every job succeeded");
	is(query($node, "SELECT count(*) FROM dispatch.job_events e JOIN dispatch.jobs j USING (job_id)
	                  WHERE j.joblist_id = $jl AND e.state IN ('succeeded', 'failed', 'cancelled', 'lost')"),
		$jobs, "$what: one final event per job");
	is(query($node, "SELECT count(*) FROM dispatch.job_history WHERE joblist_id = $jl"), $jobs,
		"$what: one history row per job");
	is(query($node, "SELECT count(*) FROM dispatch.jobs j
	                  WHERE j.joblist_id = $jl AND dispatch.job_log(j.job_id) <> 'out ' || j.job_id || E'\\n'"),
		'0', "$what: each job's output once, whole");
}

# A joblist of n jobs that print their id.
sub many
{
	my ($name, $n) = @_;
	my $jobs = join(',', map { qq({"name": "j$_", "command": "echo out \$DISPATCH_JOB_ID"}) } 1 .. $n);
	return submit($node, qq({"name": "$name", "stages": [{"jobs": [$jobs]}]}));
}

# --- many short jobs: batches, each result once ----------------------------------------
my $jl = many('many', 300);
wait_for($node, "SELECT state = 'succeeded' FROM dispatch.joblist_status WHERE joblist_id = $jl",
	'300 short jobs through two agents');
recorded_once($jl, 300, 'many short jobs');
my @b = map { batches($_) } @agents;
my $ends = 0;
$ends += $_->[1] for @b;
is($ends, 300, 'the agents reported 300 ends, none twice');
cmp_ok(scalar(grep { $_->[1] > 0 } @b), '<', 300, 'in fewer calls than jobs');

# --- a connection cut while a batch waits: nothing lost, nothing twice -------------------
# A lock on job_history makes every report of an end wait inside agent_report.
stop_agent($agents[1]);
my $locker = $node->background_psql('postgres');
$locker->query_safe('BEGIN');
$locker->query_safe('LOCK TABLE dispatch.job_history IN SHARE MODE');
my $seen = scalar(batches($agents[0]));
# As many jobs as the agent has cpus: all start, although no end reaches the server.
$jl = many('cut', 8);
wait_until(sub { my @s = glob("$agents[0]{workdir}/jobs/*/status"); @s == 8 },
	'all 8 jobs end while their reports wait');
wait_for($node, "SELECT count(*) = 1 FROM pg_stat_activity
                  WHERE query LIKE '%agent_report%' AND wait_event_type = 'Lock'",
	'a batch waits for the lock');
my $pid = query($node, "SELECT pid FROM pg_stat_activity WHERE query LIKE '%agent_report%'
                         AND wait_event_type = 'Lock'");
query($node, "SELECT pg_terminate_backend($pid)");
wait_until(sub { slurp_file($agents[0]{log}) =~ /agent_report failed/ }, 'the agent sees its batch fail');
wait_for($node, "SELECT count(*) = 1 FROM pg_stat_activity
                  WHERE query LIKE '%agent_report%' AND wait_event_type = 'Lock' AND pid <> $pid",
	'after reconnecting, the agent sends its spool again');
is(query($node, "SELECT count(*) FROM dispatch.jobs WHERE joblist_id = $jl AND state = 'running'"), '8',
	'nothing of the cut batch was recorded');
$locker->query_safe('COMMIT');
$locker->quit;
wait_for($node, "SELECT state = 'succeeded' FROM dispatch.joblist_status WHERE joblist_id = $jl",
	'the replayed batch is recorded');
recorded_once($jl, 8, 'after the cut');
my @after = (batches($agents[0]))[ $seen .. scalar(batches($agents[0])) - 1 ];
ok((grep { $_->[0] == 8 && $_->[1] == 0 } @after), 'the replay first asks about all 8 jobs in one call');
ok((grep { $_->[1] == 8 } @after), 'and reports their 8 ends in one call');
wait_until(sub { !glob("$agents[0]{workdir}/jobs/*") }, 'the spool is empty');
stop_agent($agents[0]);
done_testing();
