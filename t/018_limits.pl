# One big joblist cannot stall scheduling (issue 12, hole 9): a user submits 20,000
# jobs that can never run, and another user's job is still assigned within a couple
# of scheduling cycles, even with planner statistics taken while the queue was empty.
# No plan of the scheduler's job query scans every job, and a joblist over
# dispatch.max_jobs_per_joblist is refused with nothing stored.  Cycles are counted
# with dispatch.scheduler_stats(); nothing here measures wall-clock time.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use DispatchTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = start_server();
my $agent = start_agent($node, 'n1', '--resource', 'cpu=[0-1]');
query($node, "CREATE ROLE mallory IN ROLE dispatch_user; CREATE ROLE victim IN ROLE dispatch_user");

# Statistics that say the queue is empty, as when a big joblist arrives all at once.
query($node, 'ANALYZE dispatch.jobs, dispatch.joblists');

# The attack: 20,000 jobs of one joblist, each needing a resource nobody offers.
my $big = query($node, q{SET ROLE mallory;
SELECT dispatch.submit_joblist(jsonb_build_object('name', 'flood', 'stages', jsonb_build_array(
         jsonb_build_object('jobs', (SELECT jsonb_agg(jsonb_build_object('name', 'j' || i,
                                        'command', 'true', 'needs', '{"bigmem": 1}'::jsonb))
                                       FROM generate_series(1, 20000) i)))))});
like($big, qr/^\d+$/, 'a 20,000-job joblist is accepted (the default limit is 100,000)');
is(query($node, "SELECT count(*) FROM dispatch.jobs WHERE joblist_id = $big"), '20000',
	'all 20,000 jobs are stored');

# The victim's job, submitted after the flood, runs: the cycles that see the flood end.
my $c0 = query($node, 'SELECT cycles FROM dispatch.scheduler_stats()');
my $small = query($node, q{SET ROLE victim;
SELECT dispatch.submit_joblist('{"name": "small", "stages": [{"jobs": [
  {"name": "a", "command": "true"}]}]}')});
wait_for($node, "SELECT state <> 'pending' FROM dispatch.job_status WHERE joblist_id = $small",
	"the other user's job is assigned despite the flood");
my $cycles = query($node, "SELECT cycles - $c0 FROM dispatch.scheduler_stats()");
cmp_ok($cycles, '<=', 4, "within a few cycles of its submission ($cycles)");
wait_for($node, "SELECT state = 'succeeded' FROM dispatch.joblist_status WHERE joblist_id = $small",
	'and runs');
is(query($node, "SELECT count(*) FROM dispatch.jobs WHERE joblist_id = $big
                  AND reason = 'no online node offers bigmem'"), '20000',
	'every flood job was looked at and says why it waits');

# No plan of the scheduler's query, with stale or fresh statistics, reads all of jobs
# or joins jobs with themselves.
for my $stats ('stale', 'fresh')
{
	query($node, 'ANALYZE dispatch.jobs, dispatch.joblists') if $stats eq 'fresh';
	my $plan = query($node, 'EXPLAIN (FORMAT JSON) SELECT job_id, joblist_id, needs, constraints
	                           FROM dispatch._sched_jobs');
	my @jobs_scans = $plan =~ /"Relation Name": "jobs"/g;
	unlike($plan, qr/"Node Type": "Seq Scan",[^{}]*"Relation Name": "jobs"/,
		"$stats statistics: jobs is never scanned whole");
	is(scalar(@jobs_scans), 1, "$stats statistics: jobs is read once, not joined with itself");
}

# Over the limit: refused with the limit's name, nothing stored, and cheap to refuse.
my ($rc, $out, $err) = $node->psql('postgres', q{SET ROLE mallory;
SELECT dispatch.submit_joblist(jsonb_build_object('name', 'toobig', 'stages', jsonb_build_array(
         jsonb_build_object('jobs', (SELECT jsonb_agg(jsonb_build_object('name', 'j' || i,
                                        'command', 'true'))
                                       FROM generate_series(1, 60000) i)),
         jsonb_build_object('jobs', (SELECT jsonb_agg(jsonb_build_object('name', 'k' || i,
                                        'command', 'true'))
                                       FROM generate_series(1, 40001) i)))))});
isnt($rc, 0, 'a joblist of 100,001 jobs is refused');
like($err, qr/the joblist has 100001 jobs, more than dispatch.max_jobs_per_joblist = 100000 allows/,
	'the error names the count and the setting');
like($err, qr/The error is at stages\./, 'and the JSON path');
is(query($node, "SELECT count(*) FROM dispatch.joblists WHERE name = 'toobig'"), '0',
	'nothing of it is stored');

stop_agent($agent);
done_testing();
