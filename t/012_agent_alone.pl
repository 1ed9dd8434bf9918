# An agent cut off from the database keeps working alone: its running jobs finish,
# their results, output and the host metrics wait in its crash-safe spool (metrics
# bounded, oldest dropped first, results never), its history file records the jobs
# and that it is alone, and after a kill -9 and a restart while still cut off, the
# spool is delivered exactly once when the database comes back.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use DispatchTest;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = start_server(node_timeout => '6s');
my @opts = ('--metrics-interval', '1', '--metrics-spool-max', '16');
my $agent = start_agent($node, 'w1', @opts);
my $queue = "$agent->{workdir}/metrics";
my $history = "$agent->{workdir}/history.jsonl";

# The lines of the agent's history file, decoded.
sub history
{
	open(my $fh, '<', $history) or return ();
	my @lines = map { decode_json($_) } <$fh>;
	close $fh;
	return @lines;
}

# How many files match pattern.
sub count_files
{
	my @files = glob(shift);
	return scalar @files;
}

# Bytes the metrics queue takes now.
sub queued_bytes
{
	my $sum = 0;
	$sum += -s $_ for glob("$queue/*.json");
	return $sum;
}

my $jl = submit($node, q({"name": "alone", "stages": [{"jobs": [
  {"name": "ok",  "command": "for i in 1 2 3 4 5 6 7 8; do echo ok $i; sleep 0.5; done"},
  {"name": "bad", "command": "for i in 1 2 3 4 5 6; do echo bad $i >&2; sleep 0.5; done; exit 3"}]}]}));
wait_for($node, "SELECT count(*) = 2 FROM dispatch.job_status WHERE joblist_id = $jl AND state = 'running'",
	'both jobs run');
wait_until(sub { my @out = glob("$agent->{workdir}/jobs/*/stdout"); @out && -s $out[0] },
	'the jobs have written output');
my $down_at = query($node, 'SELECT now()');

# --- cut off: the server goes away while the jobs run --------------------------------
$node->stop('fast');
wait_until(sub { count_files("$agent->{workdir}/jobs/*/status") == 2 }, 'both jobs finish while the agent is alone');
wait_until(sub { (grep { $_->{event} eq 'job' } history()) == 2 }, 'the history file records both jobs');
my %ran = map { $_->{job_id} => $_ } grep { $_->{event} eq 'job' } history();
is_deeply([ sort map { $_->{exit_code} } values %ran ], [ 0, 3 ], 'with their exit codes');
ok(!grep({ $_->{connected} } values %ran), 'and that the agent was alone when they ended');
wait_until(sub { count_files("$queue/*.json") >= 3 }, 'metrics are queued while alone');

# The metrics queue stays within --metrics-spool-max (16 kB): the oldest are dropped.
wait_until(sub { slurp_file($agent->{log}) =~ /dropped the \d+ oldest sample/ },
	'the full queue drops its oldest samples');
cmp_ok(queued_bytes(), '<=', 16 * 1024, 'the queue stays within its bound');
is(count_files("$agent->{workdir}/jobs/*/status"), 2, 'results are never dropped');

# kill -9 while alone, and a restart that is still alone.
kill_agent($agent);
$agent = start_agent($node, 'w1', { offline => 1 }, @opts);
wait_until(sub { grep { $_->{event} eq 'presence' && !$_->{connected} } history() },
	'the restarted agent records that it is alone');
my ($alone) = grep { $_->{event} eq 'presence' && !$_->{connected} } history();
is_deeply([ $alone->{jobs_running}, $alone->{jobs_unreported}, $alone->{nodes_online} ],
	[ 0, 2, undef ], 'presence: no job running, two results waiting, no server to ask');
wait_until(sub { slurp_file($agent->{log}) =~ /2 job\(s\) in the spool/ }, 'it finds both results in the spool');

# --- back: everything is delivered once ---------------------------------------------
$node->start;
wait_for($node, "SELECT state = 'failed' FROM dispatch.joblist_status WHERE joblist_id = $jl",
	'the joblist ends with the results from the spool');
my $ok = job_id_of($node, $jl, 'ok');
my $bad = job_id_of($node, $jl, 'bad');
is(query($node, "SELECT string_agg(state || ':' || coalesce(exit_code::text, '-'), ',' ORDER BY name)
                   FROM dispatch.job_status WHERE joblist_id = $jl"), 'failed:3,succeeded:0',
	'each job has its real result');
is(query($node, "SELECT dispatch.job_log($ok)"), join('', map { "ok $_\n" } 1 .. 8),
	'the whole output of one job, in order, once');
is(query($node, "SELECT dispatch.job_log($bad, 'stderr')"), join('', map { "bad $_\n" } 1 .. 6),
	'and of the other');
is(query($node, "SELECT count(*) FROM dispatch.job_events e JOIN dispatch.jobs j USING (job_id)
                  WHERE j.joblist_id = $jl AND e.state IN ('succeeded', 'failed')"), '2',
	'each result is recorded once');
is(query($node, "SELECT count(*) FROM dispatch.job_history WHERE joblist_id = $jl"), '2',
	'one history row per job');
wait_until(sub { count_files("$queue/*.json") == 0 }, 'the metrics queue drains');
is(query($node, "SELECT count(*) - count(DISTINCT at) FROM dispatch.metric_samples"), '0',
	'every sample is stored once');
is(query($node, "SELECT count(*) >= 3 FROM dispatch.metric_samples WHERE at > '$down_at'
                   AND at < (SELECT min(registered_at) FROM dispatch.nodes)"), 't',
	'samples from the time alone are stored');
is(scalar(grep { $_->{event} eq 'job' } history()), 2, 'the history file has each job once, across the kill -9');
wait_until(sub { count_files("$agent->{workdir}/jobs/*") == 0 }, 'the spool is empty once everything is delivered');

# (An error path of the monitor, on this server without dispatch.smtp_url: a mail it
# cannot send stays in the outbox with the reason.)
query($node, "INSERT INTO dispatch.notifications (target, subject, body)
              VALUES ('mailto:ops\@example.com', 'test', '{}')");
wait_for($node, "SELECT attempts >= 1 AND last_error = 'dispatch.smtp_url is not set' AND sent_at IS NULL
                   FROM dispatch.notifications", 'a mail without dispatch.smtp_url fails visibly');
stop_agent($agent);
done_testing();
