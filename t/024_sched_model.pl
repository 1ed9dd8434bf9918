# The scheduler's in-memory model under a busy random workload with real agents:
# submits (some failing and retried), cancels, nodes going offline and coming back,
# pool resources added and removed, admin labels changed, jobs finishing through
# agent_report; after each step the model equals a fresh load of the tables
# (check_scheduler_model()).  The periodic self-check finds a change no trigger
# saw, logs it and rebuilds.  Then node liveness across a scheduler restart: a
# silent node still expires on time, counted from its last heartbeat, not from the
# new scheduler's start.  Last, the check's refusals: a scheduler that stops while a
# check waits, and no scheduler at all.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use DispatchTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = start_server(node_timeout => '10s', 'dispatch.model_check_interval' => '1s');
my @agents = (start_agent($node, 'w1', '--resource', 'cpu=[0-3]'),
	start_agent($node, 'w2', '--resource', 'cpu=[0-1]'));

# Checks the model twice (the second check follows a cycle that began after the
# first answer, so the step's changes have been scheduled); returns the answer.
sub model_check
{
	my $first = query($node, 'SELECT dispatch.check_scheduler_model()');
	return $first eq 'ok' ? query($node, 'SELECT dispatch.check_scheduler_model()') : $first;
}

srand(24);
my $n = 0;
my @steps = (
	sub {    # a joblist of one to three jobs, some failing with a retry left
		my $jobs = join(',', map {
			my $fail = rand() < 0.3 ? 'exit 1' : 'true';
			my $cpus = 1 + int(rand(2));
			qq({"name": "j$_", "command": "sleep 0.0$_; $fail", "retries": 1,
			    "needs": {"cpu": $cpus}})
		} 1 .. 1 + int(rand(3)));
		$n++;
		submit($node, qq({"name": "busy-$n", "stages": [{"jobs": [$jobs]},
			{"jobs": [{"name": "last", "command": "true"}]}]}));
		return 'submit';
	},
	sub {    # a cancel of the newest unfinished joblist
		query($node, q{SELECT dispatch.cancel_joblist(newest)
		                 FROM (SELECT max(joblist_id) FROM dispatch.joblists
		                        WHERE state IN ('queued', 'running')) x(newest)
		                WHERE newest IS NOT NULL});
		return 'cancel';
	},
	sub {    # a node offline; its agent registers again at its next heartbeat
		query($node, "SELECT dispatch.agent_offline('w" . (1 + int(rand(2))) . "')");
		return 'offline';
	},
	sub {    # a pool licence added, or the free ones removed
		if (rand() < 0.5)
		{
			query($node, "SELECT dispatch.add_resource('lic', 'lic-$n')");
			return 'add resource';
		}
		query($node, q{SELECT dispatch.remove_resource('lic', r.ident) FROM dispatch.resources r
		                WHERE r.type = 'lic' AND NOT EXISTS
		                      (SELECT 1 FROM dispatch.allocations a
		                        WHERE a.resource_id = r.resource_id)});
		return 'remove resource';
	},
	sub {    # admin labels
		query($node, "SELECT dispatch.set_node_labels('w2', '{\"zone\": \"z" . int(rand(3)) . "\"}')");
		return 'labels';
	},
	sub {    # a job that needs a licence
		$n++;
		submit($node, qq({"name": "busy-$n", "stages": [{"jobs": [
			{"name": "l", "command": "true", "needs": {"cpu": 1, "lic": 1}}]}]}));
		return 'licence job';
	});
my $offset = -s $node->logfile;
my %bad;
for my $i (1 .. 40)
{
	my $what = $steps[ $i <= 5 ? 0 : int(rand(@steps)) ]->();
	my $check = model_check();
	$bad{"step $i ($what): $check"} = 1 if $check ne 'ok';
}
is(join('; ', sort keys %bad), '', 'after each of 40 random steps the model equals the tables');
wait_for($node, q{SELECT count(*) = 0 FROM dispatch.joblists
                   WHERE state IN ('queued', 'running') AND NOT EXISTS
                         (SELECT 1 FROM dispatch.jobs j WHERE j.joblist_id = joblists.joblist_id
                             AND j.needs ? 'lic')}, 'the busy joblists drain');
is(model_check(), 'ok', 'and the model still equals the tables');
is(query($node, "SELECT count(*) FROM dispatch.job_events e JOIN dispatch.jobs j USING (job_id)
                  WHERE e.state = 'running' GROUP BY e.job_id, e.attempt HAVING count(*) > 1"),
	'', 'no attempt ran twice');
ok(!$node->log_contains(qr/model differs/, $offset), 'the periodic check found nothing meanwhile');

# A change no trigger saw: the periodic check (every second here) finds it, logs it
# and rebuilds the model.
# (w1 must be online: an offline node's labels are not in the model, and its
# registering again would reload it.)
wait_for($node, "SELECT bool_and(state = 'online') FROM dispatch.nodes",
	'both nodes are online again');
$offset = -s $node->logfile;
query($node, q{SET session_replication_role = replica;
               UPDATE dispatch.nodes SET admin_labels = '{"hidden": "1"}' WHERE node = 'w1'});
$node->wait_for_log(qr/WARNING:  pg_dispatch scheduler's model differs from the tables: /, $offset);
ok(1, 'the periodic check logs the difference');
is(model_check(), 'ok', 'and rebuilds the model');

# Liveness across a scheduler restart.  w2 falls silent; the scheduler is terminated
# two seconds later and the launcher starts a new one after its pause (5 s).  The
# node still goes offline 10 s after its last heartbeat, not 10 s after the new
# scheduler's start.
my $old = query($node, 'SELECT pid FROM dispatch.scheduler_stats()');
kill_agent($agents[1]);
my $heartbeat = query($node, "SELECT last_heartbeat FROM dispatch.nodes WHERE node = 'w2'");
sleep 2;
query($node, "SELECT pg_terminate_backend($old)");
wait_for($node, "SELECT pid IS NOT NULL AND pid <> $old FROM dispatch.scheduler_stats()",
	'the launcher starts a new scheduler');
my $new_start = query($node, 'SELECT backend_start FROM pg_stat_activity
                               WHERE pid = (SELECT pid FROM dispatch.scheduler_stats())');
wait_for($node, "SELECT state = 'offline' FROM dispatch.nodes WHERE node = 'w2'",
	'the silent node goes offline');
is(query($node, "SELECT state_changed_at < '$heartbeat'::timestamptz + interval '13s'
                        AND state_changed_at >= '$heartbeat'::timestamptz + interval '10s'
                        AND '$new_start'::timestamptz > '$heartbeat'::timestamptz + interval '2s'
                   FROM dispatch.nodes WHERE node = 'w2'"),
	't', 'counted from its last heartbeat, not from the new scheduler\'s start');
is(query($node, "SELECT state FROM dispatch.nodes WHERE node = 'w1'"), 'online',
	'the node that kept talking stays online');
is(model_check(), 'ok', 'the new scheduler\'s model equals the tables');

# A check from another database than dispatch.database is refused: the model is the
# scheduler's database's.
query($node, 'CREATE DATABASE other');
$node->safe_psql('other', 'CREATE EXTENSION pg_dispatch');
my ($rc, $stdout, $stderr) = $node->psql('other', 'SELECT dispatch.check_scheduler_model()');
like($stderr, qr/the scheduler's model is that of database "postgres"/,
	'a check from another database is refused');

# The check's errors.  A scheduler that stops while a check waits: the scheduler is
# stopped (SIGSTOP) while it sleeps between cycles, a check is asked, the scheduler is
# told to shut down and let go on (SIGCONT); it leaves without answering and the
# waiting check says so.  Then, in the launcher's pause before the next scheduler,
# a check finds none.
stop_agent($agents[0]);
my $pid = query($node, 'SELECT pid FROM dispatch.scheduler_stats()');
my $sleeps = "SELECT wait_event_type = 'Extension' FROM pg_stat_activity WHERE pid = $pid";
wait_until(sub {    # stopped in its sleep, not in a cycle (which would answer)
	kill 'STOP', $pid;
	return 1 if query($node, $sleeps) eq 't';
	kill 'CONT', $pid;
	return 0;
}, 'the scheduler is stopped while it sleeps between cycles');
my ($out, $err) = ('', '');
my $check = IPC::Run::start(
	[ 'psql', '-XAtq', '-d', $node->connstr('postgres'), '-c',
	  'SELECT dispatch.check_scheduler_model()' ],
	'<', \undef, '>', \$out, '2>', \$err);
wait_for($node, q{SELECT count(*) = 1 FROM pg_stat_activity
                   WHERE query LIKE 'SELECT dispatch.check_scheduler_model()%'
                     AND wait_event_type = 'Extension'}, 'the check waits for its answer');
kill 'TERM', $pid;
kill 'CONT', $pid;
$check->finish;
like($err, qr/could not check the scheduler's model.*\n.*The scheduler stopped, or did not answer/,
	'a check whose scheduler stops is refused, saying why');
is($out, '', 'and answers nothing');
wait_for($node, 'SELECT pid IS NULL FROM dispatch.scheduler_stats()', 'the scheduler is gone');
($rc, $stdout, $stderr) = $node->psql('postgres', 'SELECT dispatch.check_scheduler_model()');
like($stderr, qr/no scheduler runs on this server/, 'with no scheduler running a check is refused');
wait_for($node, "SELECT pid IS NOT NULL AND pid <> $pid FROM dispatch.scheduler_stats()",
	'the launcher starts the next scheduler');
is(model_check(), 'ok', 'whose model equals the tables');

done_testing();
