# Data flows with real agents: a diamond runs in dependency order, a 3x2 matrix whose
# cells read their own values from a template and their environment, on_failure and
# always jobs after a failure while the failure's descendants end skipped, and a
# joblist timeout that stops what runs and still runs its clean-up, and a group run in
# its reservation.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use DispatchTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = start_server(kill_grace => '2s');
my $a1 = start_agent($node, 'f1', '--resource', 'cpu=[0-2]');
my $a2 = start_agent($node, 'f2', '--resource', 'cpu=[0-2]');

sub wait_end
{
	my ($jl, $what) = @_;
	wait_for($node, "SELECT state NOT IN ('queued', 'running') FROM dispatch.joblists
	                  WHERE joblist_id = $jl", $what);
	return query($node, "SELECT state FROM dispatch.joblists WHERE joblist_id = $jl");
}

sub states
{
	my ($jl) = @_;
	return query($node, "SELECT string_agg(name || '=' || state, ' ' ORDER BY job_id)
	                       FROM dispatch.jobs WHERE joblist_id = $jl");
}

# A diamond: b and c after a, d after both.  Each job sleeps a little so that the
# order is visible in the timestamps.
my $jl = submit($node, q({"name": "diamond", "jobs": [
  {"name": "a", "command": "sleep 0.3"},
  {"name": "b", "command": "sleep 0.3", "after": ["a"]},
  {"name": "c", "command": "sleep 0.3", "after": ["a"]},
  {"name": "d", "command": "true", "after": ["b", "c"]}]}));
is(wait_end($jl, 'the diamond ends'), 'succeeded', 'the diamond succeeds');
is(query($node, "SELECT bool_and(u.finished_at <= j.started_at)
                   FROM dispatch.jobs j JOIN dispatch.jobs u
                     ON u.joblist_id = j.joblist_id AND u.name = ANY (j.after)
                  WHERE j.joblist_id = $jl"), 't', 'every job started after what it runs after ended');
is(query($node, "SELECT count(*) FROM dispatch.jobs b JOIN dispatch.jobs c USING (joblist_id)
                  WHERE b.joblist_id = $jl AND b.name = 'b' AND c.name = 'c'
                    AND b.started_at < c.finished_at AND c.started_at < b.finished_at"), '1',
	'b and c ran at the same time');

# A 3x2 matrix: each cell reads its values from its own rendered file and its env.
$jl = submit($node, q({"name": "matrix", "jobs": [
  {"name": "test", "command": "cat cell.ini; echo \"env $os/$py\"",
   "files": [{"path": "cell.ini", "content": "os={{os}} py={{py}}\n", "template": true}],
   "matrix": {"os": ["debian", "alpine", "arch"], "py": ["3.11", "3.12"]}},
  {"name": "report", "command": "echo all cells done", "after": ["test"]}]}));
is(wait_end($jl, 'the matrix ends'), 'succeeded', 'the matrix succeeds');
is(query($node, "SELECT string_agg(name || ': ' || replace(dispatch.job_log(job_id), E'\\n', ' '), E'\\n'
                                   ORDER BY job_id)
                   FROM dispatch.jobs WHERE joblist_id = $jl AND task = 'test'"),
	join("\n",
		'test[os=debian,py=3.11]: os=debian py=3.11 env debian/3.11 ',
		'test[os=debian,py=3.12]: os=debian py=3.12 env debian/3.12 ',
		'test[os=alpine,py=3.11]: os=alpine py=3.11 env alpine/3.11 ',
		'test[os=alpine,py=3.12]: os=alpine py=3.12 env alpine/3.12 ',
		'test[os=arch,py=3.11]: os=arch py=3.11 env arch/3.11 ',
		'test[os=arch,py=3.12]: os=arch py=3.12 env arch/3.12 '),
	'every cell read its own values');
is(query($node, "SELECT (SELECT min(started_at) FROM dispatch.jobs WHERE joblist_id = $jl AND name = 'report')
                        >= (SELECT max(finished_at) FROM dispatch.jobs WHERE joblist_id = $jl AND task = 'test')"),
	't', 'the fan-in job waited for every cell');

# A failure: its descendants end skipped, a slow sibling is stopped (fail_fast),
# on_failure and always jobs still run.
$jl = submit($node, q({"name": "failing", "jobs": [
  {"name": "compile", "command": "echo broken >&2; exit 2"},
  {"name": "slow", "command": "sleep 60"},
  {"name": "test", "command": "true", "after": ["compile"]},
  {"name": "deploy", "command": "true", "after": ["test"]},
  {"name": "page", "command": "echo paging", "after": ["compile"], "when": "on_failure"},
  {"name": "tidy", "command": "echo tidy", "after": ["deploy", "slow"], "when": "always"}]}));
is(wait_end($jl, 'the failing joblist ends'), 'failed', 'the joblist fails');
is(states($jl), 'compile=failed slow=cancelled test=skipped deploy=skipped page=succeeded tidy=succeeded',
	'descendants skipped, the sibling cancelled, clean-up and notification ran');
is(query($node, "SELECT string_agg(name || ': ' || reason, '; ' ORDER BY job_id) FROM dispatch.job_status
                  WHERE joblist_id = $jl AND state = 'skipped'"),
	'test: skipped: job "compile" exited with code 2; deploy: skipped: job "compile" exited with code 2',
	'job_status says why each was skipped');
is(query($node, "SELECT dispatch.job_log(job_id) FROM dispatch.jobs WHERE joblist_id = $jl AND name = 'page'"),
	"paging\n", 'the on_failure job ran its command');
is(query($node, "SELECT jobs_skipped || ' ' || failure FROM dispatch.joblist_status WHERE joblist_id = $jl"),
	'2 job "compile" exited with code 2', 'joblist_status counts the skipped and names the failure');

# A joblist timeout: the running job gets SIGTERM, what waits on it is cancelled, the
# always job runs; the joblist fails with the timeout as its reason.
$jl = submit($node, q({"name": "slowpoke", "timeout": "2 seconds", "jobs": [
  {"name": "solve", "command": "trap 'echo got TERM; exit 143' TERM; sleep 60 & wait"},
  {"name": "publish", "command": "true", "after": ["solve"]},
  {"name": "tidy", "command": "echo tidy", "after": ["solve"], "when": "always"}]}));
is(wait_end($jl, 'the timed-out joblist ends'), 'failed', 'the joblist fails at its timeout');
is(states($jl), 'solve=cancelled publish=cancelled tidy=succeeded', 'the running job was stopped, tidy ran');
is(query($node, "SELECT reason FROM dispatch.joblists WHERE joblist_id = $jl"),
	'joblist timed out after 00:00:02', 'the reason is the timeout');
like(query($node, "SELECT dispatch.job_log(job_id) FROM dispatch.jobs WHERE joblist_id = $jl AND name = 'solve'"),
	qr/got TERM/, 'the job got SIGTERM');
is(query($node, "SELECT extract(epoch FROM finished_at - submitted_at) < 30 FROM dispatch.joblists
                  WHERE joblist_id = $jl"), 't', 'it did not wait for the job to end by itself');

# The graph of the failing joblist in DOT, as a user would draw it.
like(query($node, "SELECT dispatch.joblist_graph_dot(joblist_id) FROM dispatch.joblists
                    WHERE name = 'failing'"),
	qr/"j\d+" -> "j\d+" \[style=dashed, label="on_failure"\];/, 'the DOT text marks the on_failure edge');

# A group with a reservation of two cpus: its four one-cpu jobs run on one node, two
# at a time, in the reservation; the reservation ends with them.
$jl = submit($node, q({"name": "pond", "jobs": [
  {"name": "w0", "command": "sleep 0.5; echo $DISPATCH_RES_CPU > \"$DISPATCH_SCRATCH/w0\"",
   "group": {"name": "pond", "needs": {"cpu": 2}}},
  {"name": "w1", "command": "sleep 0.5", "group": "pond"},
  {"name": "w2", "command": "sleep 0.5", "group": "pond"},
  {"name": "w3", "command": "test -s \"$DISPATCH_SCRATCH/w0\"", "after": ["w0"], "group": "pond"}]}));
is(wait_end($jl, 'the reserved group ends'), 'succeeded', 'the reserved group succeeds');
is(states($jl), 'w0=succeeded w1=succeeded w2=succeeded w3=succeeded group:pond=succeeded',
	'every job ran, and the reservation ended with them');
is(query($node, "SELECT count(DISTINCT node) FROM dispatch.jobs WHERE joblist_id = $jl"), '1',
	'the reservation and its jobs were on one node');
is(query($node, "SELECT max((SELECT count(*) FROM dispatch.jobs o
                              WHERE o.joblist_id = j.joblist_id AND o.reserves IS NULL
                                AND o.started_at <= j.started_at AND j.started_at < o.finished_at))
                   FROM dispatch.jobs j WHERE j.joblist_id = $jl AND j.reserves IS NULL"), '2',
	'no more than the two reserved cpus were busy at once');
is(query($node, "SELECT bool_and(resources->'cpu' <@ (SELECT resources->'cpu' FROM dispatch.jobs
                                                      WHERE joblist_id = $jl AND reserves = 'pond'))
                   FROM dispatch.jobs WHERE joblist_id = $jl AND reserves IS NULL"), 't',
	'each job ran on cpus of the reservation');

stop_agent($a1);
stop_agent($a2);
done_testing();
