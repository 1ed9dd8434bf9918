
# DispatchTest: a real PostgreSQL 15 server with pg_dispatch loaded, and real
# dispatch-agent processes, for the TAP tests in t/.
#
# Every wait polls the database with a deadline (poll_query_until); nothing sleeps
# for a fixed time and hopes.

package DispatchTest;

use strict;
use warnings;
use Exporter 'import';
use File::Basename;
use IPC::Run;
use Time::HiRes;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my @agents;

our @EXPORT = qw(start_server start_agent stop_agent kill_agent query wait_for
  wait_until submit job_id_of agent_binary job_user shared_dir process_exists);

# Returns the OS user the agents run jobs as (--job-user; scripts/setup.sh creates it).
sub job_user
{
	return $ENV{DISPATCH_JOB_USER} // 'dispatch-job';
}

# Returns a fresh directory that jobs (running as the job user) and the test may both
# write, for the files a test and its jobs exchange.
sub shared_dir
{
	my $dir = PostgreSQL::Test::Utils::tempdir();
	chmod(0777, $dir) or die "could not chmod $dir: $!";
	return $dir;
}

# Returns 1 when process pid exists, whoever owns it (kill 0 cannot tell for the job user's).
sub process_exists
{
	my ($pid) = @_;
	return -e "/proc/$pid" ? 1 : 0;
}

# Returns the path of the dispatch-agent binary built in this tree.
sub agent_binary
{
	my $dir = $ENV{TESTDIR} // '.';
	return "$dir/agent/dispatch-agent";
}

# Starts a server with pg_dispatch preloaded and the extension created in postgres.
# node_timeout and kill_grace set those GUCs; any other setting whose name has a dot
# (dispatch.smtp_url => ...) is written to postgresql.conf as it is.
sub start_server
{
	my (%conf) = @_;
	my $node = PostgreSQL::Test::Cluster->new('dispatch');
	$node->init;
	$node->append_conf('postgresql.conf', join("\n",
		"shared_preload_libraries = 'pg_dispatch'",
		"dispatch.database = 'postgres'",
		"dispatch.node_timeout = '" . ($conf{node_timeout} // '4s') . "'",
		"dispatch.kill_grace = '" . ($conf{kill_grace} // '2s') . "'",
		(map { "$_ = '$conf{$_}'" } grep { /\./ } sort keys %conf),
		"log_min_messages = 'info'", ''));
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION pg_dispatch');
	return $node;
}

# Starts an agent for node name with extra arguments; it logs in as its own role
# (member of dispatch_agent), works in its own directory and runs its jobs as job_user()
# unless the arguments choose (--job-user or --insecure-run-jobs-as-agent).  Returns a handle.
# An optional hash reference before the arguments may give {conninfo => STRING}, the
# agent's connection string without the user (default: node's own connection string),
# and {offline => 1} for an agent (re)started while the server is down: its role must
# exist already, and nothing waits for it to come online.  node is where the role is
# created and where the test waits for the agent.
sub start_agent
{
	my ($node, $name, @args) = @_;
	my $opt = ref $args[0] eq 'HASH' ? shift @args : {};
	my $role = "agent_$name";
	$role =~ s/\W/_/g;
	$node->safe_psql('postgres', qq{
		DO \$\$ BEGIN
			IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$role') THEN
				CREATE ROLE "$role" LOGIN IN ROLE dispatch_agent;
			END IF;
		END \$\$;}) unless $opt->{offline};
	my $test = File::Basename::basename($0, '.pl');
	my $workdir = "$PostgreSQL::Test::Utils::tmp_check/${test}_work_$name";
	mkdir $workdir;
	my $log = "$PostgreSQL::Test::Utils::log_path/${test}_agent_$name.log";
	my $conninfo = ($opt->{conninfo} // $node->connstr('postgres')) . " user=$role";
	my @who = grep({ /^--(job-user|insecure-run-jobs-as-agent)/ } @args) ? () : ('--job-user', job_user());
	my @cmd = (agent_binary(), '--dbname', $conninfo, '--node', $name,
		'--workdir', $workdir, @who, @args);
	my $since = $opt->{offline} ? undef : query($node, 'SELECT clock_timestamp()');
	note "starting agent: @cmd";
	my $h = IPC::Run::start(\@cmd, '<', \undef, '>>', $log, '2>>', $log);
	wait_for($node, "SELECT state = 'online' AND registered_at >= '$since'
	                   FROM dispatch.node_status WHERE node = '$name'", "agent $name online")
	  unless $opt->{offline};
	my $agent = { handle => $h, name => $name, log => $log, workdir => $workdir };
	push @agents, $agent;
	return $agent;
}

# When a test ends, however it ends, no agent and no job it started may outlive it:
# kill the agents, then every supervisor's session listed in their spools.
END
{
	local $?;	# reaping the agents must not change the test's exit status
	for my $agent (@agents)
	{
		eval { $agent->{handle}->kill_kill };
		for my $meta (glob("$agent->{workdir}/jobs/*/meta"))
		{
			open(my $fh, '<', $meta) or next;
			my ($pid) = map { /^pid=(\d+)$/ ? $1 : () } <$fh>;
			close $fh;
			kill('KILL', -$pid, $pid) if $pid;
		}
	}
}

# Stops an agent with SIGTERM and waits for it to exit.
sub stop_agent
{
	my ($agent) = @_;
	$agent->{handle}->signal('TERM');
	$agent->{handle}->finish;
	return $agent->{handle}->result(0);
}

# Kills an agent with SIGKILL (its running jobs keep running in their supervisors).
sub kill_agent
{
	my ($agent) = @_;
	$agent->{handle}->signal('KILL');
	eval { $agent->{handle}->finish };
	return;
}

# Runs a query as superuser and returns its output.
sub query
{
	my ($node, $sql) = @_;
	return $node->safe_psql('postgres', $sql);
}

# Waits until the boolean query returns true; fails the test after the deadline.
sub wait_for
{
	my ($node, $sql, $what) = @_;
	my $ok = $node->poll_query_until('postgres', $sql);
	ok($ok, "waited for: $what");
	return $ok;
}

# Waits until the Perl condition holds; fails the test after the deadline.
sub wait_until
{
	my ($cond, $what) = @_;
	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
	my $ok;
	# Judge by the look that ended the wait: a second look may catch a transient.
	until ($ok = $cond->())
	{
		last if time() > $deadline;
		Time::HiRes::sleep(0.1);
	}
	return ok($ok, "waited for: $what");
}

# Submits a joblist given as a JSON string; returns its id.
sub submit
{
	my ($node, $spec) = @_;
	$spec =~ s/'/''/g;
	return query($node, "SELECT dispatch.submit_joblist('$spec')");
}

# Returns the id of job name in joblist jl.
sub job_id_of
{
	my ($node, $jl, $name) = @_;
	return query($node,
		"SELECT job_id FROM dispatch.job_status WHERE joblist_id = $jl AND name = '$name'");
}

1;
