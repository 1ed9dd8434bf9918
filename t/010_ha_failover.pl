# Failover under load: etcd and three Patroni-managed members (synchronous_mode on),
# two agents that reach the database through one multi-host connection string with
# target_session_attrs=read-write, staged joblists in flight and a client submitting
# joblists without pause.  kill -9 of the leader's Patroni and PostgreSQL while jobs
# run.  Then: the synchronous standby takes over and its scheduler carries on; the
# agents reconnect to it and report what ran meanwhile; every job that was running
# finishes as the same attempt and is recorded once; every joblist acknowledged
# before the kill completes; no job runs twice to completion; new submissions work.
# The time from the kill to the first new dispatch is measured and printed.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use DispatchTest;
use HACluster;
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes;

my $node_timeout = '6s';
my $ha = HACluster->new(ttl => 10, loop_wait => 1, retry_timeout => 3,
	node_timeout => $node_timeout, kill_grace => '2s')->start;
my $old = $ha->leader;
my ($sync) = grep { $ha->role($_) eq 'sync_standby' } $ha->names;
note "leader $old, synchronous standby $sync; Patroni " . $ha->settings;
my $dir = shared_dir();
my @agents = map { $ha->start_agent("w$_", '--resource', 'cpu=[0-1]') } 1 .. 2;

# Returns a job that prints "start", then a number every 0.2 s, ticks times, then
# "done"; its start and end also go to files shared by all jobs, the jobs' own
# account of what ran, independent of the database.
sub job
{
	my ($name, $ticks) = @_;
	return qq({"name": "$name", "retries": 1, "env": {"TICKS": "$ticks"}, "command":
	  "echo start; echo \$DISPATCH_JOB_ID \$DISPATCH_ATTEMPT >> $dir/starts; for i in \$(seq \$TICKS); do sleep 0.2; echo \$i; done; echo \$DISPATCH_JOB_ID \$DISPATCH_ATTEMPT >> $dir/ends; echo done"});
}

# Three joblists of three stages of two jobs on four cpus: at the kill, the first
# stages of load-1 and load-2 run (one job of each still runs and prints when the
# agents are back, the other ends while no database is reachable) and load-3 waits.
my @load;
for my $l (1 .. 3)
{
	my $long = $l <= 2 ? 80 : 10;
	push @load, submit($ha->node($old), qq({"name": "load-$l", "stages": [
	  {"name": "s0", "jobs": [@{[ job("s0a", 10) ]}, @{[ job("s0b", $long) ]}]},
	  {"name": "s1", "jobs": [@{[ job("s1a", 10) ]}, @{[ job("s1b", 10) ]}]},
	  {"name": "s2", "jobs": [@{[ job("s2a", 5) ]}, @{[ job("s2b", 5) ]}]}]}));
}
my $load = join(',', @load);

# A client that submits a small joblist every 0.2 s through the multi-host string
# and writes down each id it got back, that is, each commit it saw acknowledged.
my $submit_sh = "$dir/submit.sh";
open(my $fh, '>', $submit_sh) or die;
print $fh <<'EOF';
i=0
while [ ! -e "$2/stop" ]; do
	i=$((i + 1))
	if id=$(psql -XAtq -v ON_ERROR_STOP=1 -d "$1" 2>>"$2/submit.err" -c \
		"SELECT dispatch.submit_joblist('{\"name\": \"ack-$i\", \"stages\": [{\"jobs\": [{\"name\": \"a\", \"command\": \"echo $i\"}]}]}')")
	then
		echo "$id $(date +%s.%N)" >> "$2/acked"
	fi
	sleep 0.2
done
EOF
close $fh;
my $submitter = IPC::Run::start([ 'bash', $submit_sh, $ha->conninfo('connect_timeout=2'), $dir ],
	'<', \undef, '>>', "$dir/submit.err", '2>>', "$dir/submit.err");
END { eval { $submitter->kill_kill } if $submitter; }

# Kill the leader once four jobs run and have sent output.  With a synchronous
# standby, a commit shows to other sessions only once the standby has it, so what
# this snapshot sees running is running on the standby too.
wait_for($ha->node($old), "SELECT count(*) = 4 FROM dispatch.job_status
                            WHERE joblist_id IN ($load) AND state = 'running'
                              AND dispatch.job_log(job_id) LIKE E'start\\n%'",
	'four jobs run on two agents');
wait_until(sub { -s "$dir/acked" }, 'the client has submitted joblists');
my %running = map { split /\|/ } split /\n/, query($ha->node($old),
	"SELECT job_id || '|' || attempt FROM dispatch.job_status
	  WHERE joblist_id IN ($load) AND state = 'running'");
my $t_kill = $ha->kill_member($old);

# Only the synchronous standby may take over; its scheduler starts on promotion.
my $new = $ha->wait_for_leader($old);
my $t_leader = Time::HiRes::time();
is($new, $sync, 'the synchronous standby became the leader');
my $node = $ha->node($new);
wait_for($node, 'SELECT pid IS NOT NULL FROM dispatch.scheduler_stats()',
	"the scheduler runs on the new leader $new");
wait_for($node, "SELECT count(*) = 2 FROM dispatch.node_status
                  WHERE state = 'online' AND registered_at > to_timestamp($t_kill)",
	'both agents reconnected to the new leader');
my $t_agents = Time::HiRes::time();
wait_for($node, "SELECT count(*) > 0 FROM dispatch.job_events
                  WHERE state = 'assigned' AND at > to_timestamp($t_kill)",
	'the new leader dispatches jobs');
my ($t_assign, $t_run) = split /\|/, query($node,
	"SELECT extract(epoch FROM min(at) FILTER (WHERE state = 'assigned')) || '|' ||
	        coalesce(extract(epoch FROM min(at) FILTER (WHERE state = 'running'))::text, '')
	   FROM dispatch.job_events WHERE at > to_timestamp($t_kill)");
diag(sprintf('failover: %.1f s from kill to first dispatch (Patroni %s, dispatch.node_timeout %s)',
	$t_assign - $t_kill, $ha->settings, $node_timeout));
note(sprintf('kill -> new leader accepts writes %.1f s, -> both agents online %.1f s, '
	  . '-> first dispatch %.1f s, -> first job claimed %s',
	$t_leader - $t_kill, $t_agents - $t_kill, $t_assign - $t_kill,
	$t_run ne '' ? sprintf('%.1f s', $t_run - $t_kill) : 'not yet'));

# Let the client go on a little on the new leader, then stop it.
wait_until(sub { grep { (split)[1] > $t_leader } split /\n/, slurp_file("$dir/acked") },
	'the client submits through the multi-host string again');
open($fh, '>', "$dir/stop") or die;
close $fh;
$submitter->finish;
my @acked = map { [split] } split /\n/, slurp_file("$dir/acked");
my $acked = join(',', map { $_->[0] } @acked);
my ($last) = sort { $b <=> $a } grep { $_ < $t_kill } map { $_->[1] } @acked;
note sprintf('last acknowledgement %.2f s before the kill; %d acknowledged, %s ack-* joblists stored',
	$t_kill - $last, scalar(@acked),
	query($node, "SELECT count(*) FROM dispatch.joblists WHERE name LIKE 'ack-%'"));
ok($t_kill - $last < 2, 'a joblist was acknowledged less than two seconds before the kill');
ok(scalar(grep { $_->[1] > $t_leader } @acked),
	'and joblists were acknowledged after the failover');

# A new submission after the failover.
my $after = submit($node, qq({"name": "after", "stages": [
  {"jobs": [@{[ job("a", 5) ]}, @{[ job("b", 5) ]}]}, {"jobs": [@{[ job("c", 5) ]}]}]}));

wait_for($node, "SELECT count(*) = 0 FROM dispatch.joblist_status
                  WHERE joblist_id IN ($load, $acked, $after) AND state IN ('queued', 'running')",
	'every joblist ended');
is(query($node, "SELECT count(*) FROM dispatch.joblist_status
                  WHERE joblist_id IN ($load, $after) AND state = 'succeeded'"),
	scalar(@load) + 1, 'every joblist submitted before the kill and the new one succeeded');
is(query($node, "SELECT count(*) FROM dispatch.joblist_status
                  WHERE joblist_id IN ($acked) AND state = 'succeeded'"),
	scalar(@acked), 'every joblist the client saw acknowledged exists and succeeded');

# Exactly once, from the database's side: one success per job, its output once.
my $jobs = "SELECT job_id FROM dispatch.jobs WHERE joblist_id IN ($load, $after)";
my $njobs = 6 * @load + 3;
is(query($node, "SELECT count(*) FROM ($jobs) j"), $njobs, "$njobs jobs");
is(query($node, "SELECT count(*) FROM dispatch.jobs j WHERE job_id IN ($jobs)
                    AND state = 'succeeded' AND exit_code = 0
                    AND dispatch.job_log(job_id) = E'start\\n'
                        || (SELECT string_agg(i || E'\\n', '' ORDER BY i)
                              FROM generate_series(1, (j.env ->> 'TICKS')::int) i)
                        || E'done\\n'"),
	$njobs, 'every job succeeded and its whole output was stored once, in order');
is(query($node, "SELECT count(*) FROM (SELECT job_id FROM dispatch.job_events
                   WHERE job_id IN ($jobs) AND state = 'succeeded'
                   GROUP BY job_id HAVING count(*) = 1) x"),
	$njobs, 'every job has exactly one success recorded');
is(query($node, "SELECT string_agg(job_id || ' ' || attempt, ',' ORDER BY job_id)
                   FROM dispatch.job_status
                  WHERE job_id IN (" . join(',', keys %running) . ")"),
	join(',', map { "$_ $running{$_}" } sort { $a <=> $b } keys %running),
	'the jobs that ran at the kill finished as the same attempt');
is(query($node, "SELECT count(*) FROM dispatch.job_events
                  WHERE job_id IN (" . join(',', keys %running) . ") AND state = 'lost'"),
	'0', 'and none of them was lost');

# Exactly once, from the jobs' side: each job ran to its end once, and the attempt
# that ended is the one recorded.
my %ends;
$ends{$_}++ for split /\n/, slurp_file("$dir/ends");
my %recorded = map { ($_ => 1) } split /\n/, query($node,
	"SELECT job_id || ' ' || attempt FROM dispatch.job_status WHERE job_id IN ($jobs)");
is_deeply([ sort keys %ends ], [ sort keys %recorded ],
	'the attempts that ran to their end are the attempts recorded');
is(scalar(grep { $ends{$_} > 1 } keys %ends), 0, 'no attempt ran to its end twice');
my %once;
$once{ (split)[0] }++ for keys %ends;
is(scalar(grep { $once{$_} > 1 } keys %once), 0, 'no job ran to its end twice');
my @starts = split /\n/, slurp_file("$dir/starts");
note 'attempts started: ' . scalar(@starts) . ', ended: ' . scalar(keys %ends);

is(query($node, "SELECT string_agg(node || ' ' || state, ',' ORDER BY node)
                   FROM dispatch.node_status"), 'w1 online,w2 online',
	'both agents are online on the new leader');

# The surviving replica follows the new leader, synchronously again.
is($ha->wait_healthy, $new, 'the remaining replica streams from the new leader');

# --- status and history from any member ------------------------------------------
my ($replica) = grep { $_ ne $old && $_ ne $new } $ha->names;
my $rnode = $ha->node($replica);
my ($snap, $lsn) = split /\|/, query($node, "SELECT now() || '|' || pg_current_wal_lsn()");
wait_for($rnode, "SELECT pg_last_wal_replay_lsn() >= '$lsn'", "the replica $replica has replayed it all");
is($ha->query($replica, 'SELECT pg_is_in_recovery()'), 't', "$replica is a read-only standby");
for my $q ("SELECT count(*) FROM dispatch.joblist_status WHERE joblist_id IN ($load, $after)",
	"SELECT string_agg(job_id || state || coalesce(exit_code, -1), ',' ORDER BY job_id) FROM dispatch.job_status",
	"SELECT string_agg(node || state, ',' ORDER BY node) FROM dispatch.node_status",
	"SELECT count(*) FROM dispatch.node_overview",
	"SELECT count(*) FROM dispatch.resource_status",
	"SELECT count(*) || ' ' || sum(jobs_succeeded) FROM dispatch.joblist_history",
	"SELECT string_agg(job_id || ' ' || attempt || state, ',' ORDER BY job_id, attempt) FROM dispatch.job_history",
	"SELECT count(*) FROM dispatch.presence
	  WHERE 'w1' = ANY (online) AND 'w2' = ANY (online) AND at <= '$snap'")
{
	is($ha->query($replica, $q), query($node, $q), "the replica answers as the leader: $q");
}
is(query($node, "SELECT count(*) FROM dispatch.job_history WHERE job_id IN ($jobs) AND state = 'succeeded'"),
	$njobs, 'job_history holds one success per job');
cmp_ok(query($node, "SELECT count(*) FROM dispatch.presence WHERE 'w1' = ANY (online)"), '>', 0,
	'presence records the agents online');

# Submit and cancel from the replica's machine: a connection string that names the
# replica first reaches the leader through target_session_attrs=read-write.
my $anywhere = join(' ', 'host=127.0.0.1,127.0.0.1', 'port=' . join(',', $rnode->port, $node->port),
	'target_session_attrs=read-write dbname=postgres');
my ($rc, $out, $err) = $rnode->psql('postgres',
	q{SELECT dispatch.submit_joblist('{"name": "anywhere", "stages": [{"jobs": [{"name": "x", "command": "sleep 300"}]}]}')},
	connstr => $anywhere);
is($rc, 0, 'a joblist submitted from the replica\'s side is accepted') or diag $err;
wait_for($node, "SELECT state = 'running' FROM dispatch.job_status WHERE joblist_id = $out",
	'and runs');
($rc, undef, $err) = $rnode->psql('postgres', "SELECT dispatch.cancel_joblist($out)", connstr => $anywhere);
is($rc, 0, 'and is cancelled the same way') or diag $err;
wait_for($node, "SELECT state = 'cancelled' FROM dispatch.job_status WHERE joblist_id = $out",
	'the cancelled job stops');
($rc, undef, $err) = $rnode->psql('postgres', "SELECT dispatch.cancel_joblist($out)");
like($err, qr/read-only transaction/, 'on the standby itself, a change is refused as read-only');

is(stop_agent($_), 0, 'agent exits 0 on SIGTERM') for @agents;
done_testing();
