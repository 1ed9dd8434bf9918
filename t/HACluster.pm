# HACluster: a real high-availability cluster for the TAP tests in t/: one etcd (v3
# API) and three PostgreSQL 15 members managed by Patroni, all on 127.0.0.1 and free
# ports, with pg_dispatch preloaded on every member and synchronous_mode on.  The
# number of members, Patroni tags per member and more dynamic configuration can be
# given; programs can run beside a member (start_sidecar) and die with it.
#
# Each member is a PostgreSQL::Test::Cluster object that is never init()ed or
# start()ed by the test framework: Patroni creates its data directory (initdb on the
# first leader, pg_basebackup on the replicas) and runs its postmaster.  The object
# still gives the port, the socket directory, psql, poll_query_until and the log
# file (the member's logging collector writes there).
#
# Patroni starts each postmaster detached (its own session), so killing Patroni
# leaves the postmaster running: kill_member() and the END block kill both, and the
# postmaster's children, by pid (postmaster.pid).  Everything this module started
# is killed when the test ends, however it ends; INT, TERM and HUP are turned into
# die() so that END blocks run then too.
#
# Every wait polls with a deadline; nothing sleeps for a fixed time and hopes.

package HACluster;

use strict;
use warnings;
use File::Basename;
use File::Path qw(make_path rmtree);
use HTTP::Tiny;
use IPC::Run;
use JSON::PP;
use Time::HiRes;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use DispatchTest ();

my @clusters;

$SIG{$_} = sub { die "caught SIG$_[0]\n" } for qw(INT TERM HUP);

# Returns a new, not yet started cluster description.  Named settings (all
# optional): ttl, loop_wait, retry_timeout (Patroni, seconds), node_timeout and
# kill_grace (pg_dispatch), members (default 3), tags (member name => Patroni
# tags of that member, e.g. { m4 => { nofailover => JSON::PP::true } }) and dcs
# (more keys for Patroni's bootstrap dynamic configuration).
sub new
{
	my ($class, %opt) = @_;
	my $self = {
		ttl           => $opt{ttl} // 10,
		loop_wait     => $opt{loop_wait} // 1,
		retry_timeout => $opt{retry_timeout} // 3,
		node_timeout  => $opt{node_timeout} // '6s',
		kill_grace    => $opt{kill_grace} // '2s',
		nmembers      => $opt{members} // 3,
		tags          => $opt{tags} // {},
		dcs           => $opt{dcs} // {},
		members       => {},
		names         => [],
		http          => HTTP::Tiny->new(timeout => 2),
	};
	die "Patroni needs loop_wait + 2 * retry_timeout <= ttl"
	  if $self->{loop_wait} + 2 * $self->{retry_timeout} > $self->{ttl};
	bless $self, $class;
	push @clusters, $self;
	return $self;
}

# Returns "ttl=.. loop_wait=.. retry_timeout=.." for notes and docs.
sub settings
{
	my ($self) = @_;
	return join(' ', map { "$_=$self->{$_}" } qw(ttl loop_wait retry_timeout));
}

# Returns the names of the members, in order (m1, m2, ...).
sub names
{
	my ($self) = @_;
	return @{ $self->{names} };
}

# Returns the PostgreSQL::Test::Cluster object of member name.
sub node
{
	my ($self, $name) = @_;
	return $self->{members}{$name}{node} // die "no member $name";
}

# Returns the test's name (the script's base name) for file names.
sub _test_name
{
	return File::Basename::basename($0, '.pl');
}

# Starts etcd, then the members one by one (the first bootstraps the cluster),
# waits until a leader runs, every other member streams from it and one is the
# synchronous standby, then creates pg_dispatch on the leader and waits until every
# member has replayed it.  Returns self.
sub start
{
	my ($self) = @_;
	for my $prog (qw(etcd patroni))
	{
		die "$prog not found in PATH: scripts/setup.sh installs patroni and etcd-server\n"
		  unless grep { -x "$_/$prog" } split(/:/, $ENV{PATH});
	}
	$self->_start_etcd;
	for my $i (1 .. $self->{nmembers})
	{
		my $name = "m$i";
		push @{ $self->{names} }, $name;
		$self->_start_member($name);
		# Let the first member win the initialize race: bootstrap is quicker alone.
		$self->wait_for_leader if $i == 1;
	}
	$self->wait_healthy;
	my $leader = $self->leader;
	$self->node($leader)->safe_psql('postgres', 'CREATE EXTENSION pg_dispatch');
	for my $name ($self->names)
	{
		ok($self->node($name)->poll_query_until('postgres',
				"SELECT count(*) = 1 FROM pg_extension WHERE extname = 'pg_dispatch'"),
			"pg_dispatch replicated to $name");
	}
	ok($self->node($leader)->poll_query_until('postgres',
			'SELECT pid IS NOT NULL FROM dispatch.scheduler_stats()'),
		"the scheduler runs on the leader $leader");
	return $self;
}

# Starts one etcd with the v3 API on two free loopback ports.
sub _start_etcd
{
	my ($self) = @_;
	my $client = PostgreSQL::Test::Cluster::get_free_port();
	my $peer = PostgreSQL::Test::Cluster::get_free_port();
	my $dir = "$PostgreSQL::Test::Utils::tmp_check/" . _test_name() . '_etcd';
	my $log = "$PostgreSQL::Test::Utils::log_path/" . _test_name() . '_etcd.log';
	rmtree($dir);    # a fresh cluster: no keys of an earlier run
	make_path($dir);
	chmod 0700, $dir;
	my @cmd = ('etcd', '--name', 'etcd0', '--data-dir', "$dir/data",
		'--listen-client-urls', "http://127.0.0.1:$client",
		'--advertise-client-urls', "http://127.0.0.1:$client",
		'--listen-peer-urls', "http://127.0.0.1:$peer",
		'--initial-advertise-peer-urls', "http://127.0.0.1:$peer",
		'--initial-cluster', "etcd0=http://127.0.0.1:$peer",
		'--initial-cluster-state', 'new', '--initial-cluster-token', "t$$");
	note "starting etcd: @cmd";
	# etcd reads ETCD_* variables as flags: none may leak in from the environment.
	local %ENV = map { $_ => $ENV{$_} } grep { !/^ETCD_/ } keys %ENV;
	$self->{etcd} = IPC::Run::start(\@cmd, '<', \undef, '>>', $log, '2>>', $log);
	$self->{etcd_port} = $client;
	DispatchTest::wait_until(sub {
		my $r = $self->{http}->get("http://127.0.0.1:$client/health");
		$r->{success} && $r->{content} =~ /"health":\s*"true"/;
	}, "etcd answers on port $client");
	return;
}

# Writes member name's Patroni configuration and starts Patroni for it.  Patroni is
# given a directory: it merges every *.yml file there in name order, so programs run
# beside the member (start_sidecar) can add files of their own, such as tags, and
# have Patroni reread them (POST /reload).  The configuration is 00-patroni.yml.
sub _start_member
{
	my ($self, $name) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	my $rest = PostgreSQL::Test::Cluster::get_free_port();
	my $user = getpwuid($<);
	my $test = _test_name();
	my $pgdata = $node->data_dir;
	my $port = $node->port;

	# YAML is a superset of JSON: Patroni reads this file as it is.
	my $config = {
		scope     => "dispatch-$test",
		namespace => '/pg_dispatch_test/',
		name      => $name,
		log       => { level => 'INFO' },
		restapi   => {
			listen          => "127.0.0.1:$rest",
			connect_address => "127.0.0.1:$rest"
		},
		etcd3     => { hosts => ["127.0.0.1:$self->{etcd_port}"] },
		watchdog  => { mode => 'off' },
		bootstrap => {
			dcs => {
				ttl                     => $self->{ttl},
				loop_wait               => $self->{loop_wait},
				retry_timeout           => $self->{retry_timeout},
				maximum_lag_on_failover => 1048576,
				synchronous_mode        => JSON::PP::true,
				postgresql              => {
					use_pg_rewind => JSON::PP::true,
					use_slots     => JSON::PP::true,
				},
				%{ $self->{dcs} },
			},
			initdb => [ { encoding => 'UTF8' }, { locale => 'C' } ],
		},
		postgresql => {
			listen          => "127.0.0.1:$port",
			connect_address => "127.0.0.1:$port",
			data_dir        => $pgdata,
			bin_dir         => '/usr/lib/postgresql/15/bin',
			pgpass          => $node->basedir . '/pgpass',
			basebackup      => [ { checkpoint => 'fast' } ],
			authentication  => {
				superuser   => { username => $user },
				replication => { username => 'replicator' },
			},
			pg_hba => [
				'local all all trust',
				'host all all 127.0.0.1/32 trust',
				'host replication all 127.0.0.1/32 trust',
			],
			parameters => {
				unix_socket_directories => $node->host,
				shared_preload_libraries => 'pg_dispatch',
				'dispatch.database'     => 'postgres',
				'dispatch.node_timeout' => $self->{node_timeout},
				'dispatch.kill_grace'   => $self->{kill_grace},
				shared_buffers          => '32MB',
				# A kill -9 of processes loses no data the OS has been handed.
				fsync                   => 'off',
				logging_collector       => 'on',
				log_directory           => $PostgreSQL::Test::Utils::log_path,
				log_filename            => File::Basename::basename($node->logfile),
				log_rotation_age        => 0,
				log_rotation_size       => 0,
				log_line_prefix         => "%m [%p] $name ",
				log_min_messages        => 'info',
			},
		},
	};
	$config->{tags} = $self->{tags}{$name} if $self->{tags}{$name};
	my $dir = $node->basedir . '/patroni.d';
	make_path($dir);
	my $file = "$dir/00-patroni.yml";
	open(my $fh, '>', $file) or die "could not write $file: $!";
	print $fh JSON::PP->new->canonical->pretty->encode($config);
	close $fh or die "could not write $file: $!";

	my $log = "$PostgreSQL::Test::Utils::log_path/${test}_${name}_patroni.log";
	note "starting patroni for $name: PostgreSQL port $port, REST port $rest";
	my $h = IPC::Run::start([ 'patroni', $dir ], '<', \undef, '>>', $log, '2>>', $log);
	$self->{members}{$name} = {
		node     => $node,
		rest     => $rest,
		patroni  => $h,
		log      => $log,
		confdir  => $dir,
		sidecars => [],
		alive    => 1,
	};
	return;
}

# Returns the base URL of member name's Patroni REST API.
sub rest_url
{
	my ($self, $name) = @_;
	return "http://127.0.0.1:$self->{members}{$name}{rest}";
}

# Returns the directory Patroni reads member name's configuration from.
sub config_dir
{
	my ($self, $name) = @_;
	return $self->{members}{$name}{confdir};
}

# Returns the file member name's Patroni logs to.
sub patroni_log
{
	my ($self, $name) = @_;
	return $self->{members}{$name}{log};
}

# Starts cmd (a list) beside member name, as a program that lives on the member's
# machine would: kill_member kills it with the member.  Its output goes to
# tmp_check/log/<test>_<name>_<label>.log; returns that file's name.
sub start_sidecar
{
	my ($self, $name, $label, @cmd) = @_;
	my $m = $self->{members}{$name} // die "no member $name";
	my $log = "$PostgreSQL::Test::Utils::log_path/" . _test_name() . "_${name}_$label.log";
	note "starting $label beside $name: @cmd";
	push @{ $m->{sidecars} },
	  IPC::Run::start(\@cmd, '<', \undef, '>>', $log, '2>>', $log);
	return $log;
}

# Returns the decoded JSON of GET path on member name's REST API, or undef.
sub rest
{
	my ($self, $name, $path) = @_;
	my $r = $self->{http}->get("http://127.0.0.1:$self->{members}{$name}{rest}$path");
	return undef unless $r->{success} || $r->{status} == 503;
	return eval { JSON::PP::decode_json($r->{content}) };
}

# Returns Patroni's view of the cluster (GET /cluster) from the first live member
# that answers, or undef.
sub cluster_state
{
	my ($self) = @_;
	for my $name ($self->names)
	{
		next unless $self->{members}{$name}{alive};
		my $c = $self->rest($name, '/cluster');
		return $c if $c && $c->{members};
	}
	return undef;
}

# Returns the name of the member Patroni reports as the running leader whose
# PostgreSQL accepts writes, or undef when there is none right now.
sub leader
{
	my ($self) = @_;
	my $c = $self->cluster_state or return undef;
	my ($m) = grep { $_->{role} eq 'leader' && $_->{state} eq 'running' } @{ $c->{members} };
	return undef unless $m && $self->{members}{ $m->{name} }{alive};
	my ($rc, $out) = $self->node($m->{name})->psql('postgres', 'SELECT pg_is_in_recovery()');
	return $rc == 0 && $out eq 'f' ? $m->{name} : undef;
}

# Waits until a leader (other than the members named in except) accepts writes;
# returns its name.
sub wait_for_leader
{
	my ($self, @except) = @_;
	my %skip = map { $_ => 1 } @except;
	my $leader;
	DispatchTest::wait_until(sub {
		$leader = $self->leader;
		defined $leader && !$skip{$leader};
	}, 'a leader' . (@except ? " other than @except" : '') . ' accepts writes');
	return $leader;
}

# Waits until the live members are one leader plus replicas that all stream from it,
# one of them the synchronous standby, as both Patroni and PostgreSQL see it.
sub wait_healthy
{
	my ($self) = @_;
	my @live = grep { $self->{members}{$_}{alive} } $self->names;
	my $want = @live - 1;
	my $leader = $self->wait_for_leader;
	DispatchTest::wait_until(sub {
		my $c = $self->cluster_state or return 0;
		my @m = grep { $self->{members}{ $_->{name} }{alive} } @{ $c->{members} };
		my $sync = grep { $_->{role} eq 'sync_standby' && $_->{state} eq 'running' } @m;
		my $repl = grep { $_->{role} =~ /^(sync_standby|replica)$/ && $_->{state} eq 'running' } @m;
		return 0 unless $sync == 1 && $repl == $want;
		my ($rc, $out) = $self->node($leader)->psql('postgres',
			"SELECT count(*) FILTER (WHERE state = 'streaming') || ' '
			     || count(*) FILTER (WHERE state = 'streaming' AND sync_state = 'sync')
			   FROM pg_stat_replication");
		return $rc == 0 && $out eq "$want 1";
	}, "$want replica(s) stream from $leader, one synchronously");
	return $leader;
}

# Returns Patroni's timeline history (GET /history: [timeline, lsn, reason, time,
# new leader] per promotion) from the first live member that answers, or undef.
sub history
{
	my ($self) = @_;
	for my $name ($self->names)
	{
		next unless $self->{members}{$name}{alive};
		my $h = $self->rest($name, '/history');
		return $h if ref $h eq 'ARRAY';
	}
	return undef;
}

# Returns member name's Patroni role as /cluster reports it ('' when unknown).
sub role
{
	my ($self, $name) = @_;
	my $c = $self->cluster_state or return '';
	my ($m) = grep { $_->{name} eq $name } @{ $c->{members} };
	return $m ? $m->{role} : '';
}

# Runs sql on member name as superuser and returns its output (dies on error).
sub query
{
	my ($self, $name, $sql) = @_;
	return $self->node($name)->safe_psql('postgres', $sql);
}

# Returns a libpq connection string naming every member, for clients that must
# follow the leader (target_session_attrs=read-write); extra "key=value" words may
# be appended.
sub conninfo
{
	my ($self, @extra) = @_;
	my @names = $self->names;
	return join(' ',
		'host=' . join(',', map { '127.0.0.1' } @names),
		'port=' . join(',', map { $self->node($_)->port } @names),
		'target_session_attrs=read-write', 'dbname=postgres', @extra);
}

# Starts an agent for worker node wname connected through conninfo(): it follows
# the leader across a failover.  The role is created and the agent awaited on the
# current leader.  Arguments as DispatchTest::start_agent.
sub start_agent
{
	my ($self, $wname, @args) = @_;
	my $leader = $self->leader // $self->wait_for_leader;
	return DispatchTest::start_agent($self->node($leader), $wname,
		{ conninfo => $self->conninfo('connect_timeout=2') }, @args);
}

# Returns the pid in the first line of member name's postmaster.pid, or undef.
sub postmaster_pid
{
	my ($self, $name) = @_;
	my $file = $self->node($name)->data_dir . '/postmaster.pid';
	open(my $fh, '<', $file) or return undef;
	my $pid = <$fh>;
	close $fh;
	return defined $pid && $pid =~ /^(\d+)$/ ? $1 : undef;
}

# Returns the pids of every live descendant of pid (children, grandchildren...).
sub _descendants
{
	my ($pid) = @_;
	my %kids;
	for my $stat (glob('/proc/[0-9]*/stat'))
	{
		open(my $fh, '<', $stat) or next;
		my $line = <$fh>;
		close $fh;
		next unless defined $line && $line =~ /^(\d+) \(.*\) \S (\d+) /s;
		push @{ $kids{$2} }, $1;
	}
	my @out;
	my @todo = ($pid);
	while (@todo)
	{
		my $p = shift @todo;
		push @out, @{ $kids{$p} // [] };
		push @todo, @{ $kids{$p} // [] };
	}
	return @out;
}

# Returns the pids of the sidecars of member name that still run.
sub _sidecar_pids
{
	my ($self, $name) = @_;
	return grep { defined && kill(0, $_) }
	  map { $_->{KIDS}[0]{PID} } @{ $self->{members}{$name}{sidecars} };
}

# kill -9 of member name: its Patroni, its postmaster, its sidecars and every
# process under them, in one kill(2) sweep.  Returns the time of the kill
# (Time::HiRes::time).
sub kill_member
{
	my ($self, $name) = @_;
	my $m = $self->{members}{$name};
	my $patroni = $m->{patroni}{KIDS}[0]{PID};
	my $pm = $self->postmaster_pid($name);
	my @side = $self->_sidecar_pids($name);
	my @top = grep { defined } ($patroni, $pm, @side);
	my @pids = (@top, map { _descendants($_) } @top);
	my $at = Time::HiRes::time();
	kill('KILL', @pids);
	note "kill -9 of member $name: patroni $patroni, postmaster " . ($pm // '-')
	  . (@side ? ', ' . scalar(@side) . ' sidecar(s)' : '')
	  . ' and ' . (@pids - @top) . ' processes under them';
	eval { $m->{patroni}->finish };
	eval { $_->finish } for @{ $m->{sidecars} };
	$m->{sidecars} = [];
	$m->{alive} = 0;
	return $at;
}

# Kills whatever is left of member name (used at the end).  A postmaster.pid left
# by a killed member may name a recycled pid: only a postgres running on this
# member's data directory is killed.
sub _reap_member
{
	my ($self, $name) = @_;
	my $m = $self->{members}{$name};
	my @pids = $self->_sidecar_pids($name);
	push @pids, $m->{patroni}{KIDS}[0]{PID} if $m->{alive};
	my $pm = $self->postmaster_pid($name);
	if ($pm && open(my $fh, '<', "/proc/$pm/cmdline"))
	{
		my $cmd = join(' ', split(/\0/, <$fh> // ''));
		close $fh;
		push @pids, $pm if index($cmd, '-D ' . $self->node($name)->data_dir) >= 0;
	}
	@pids = (@pids, map { _descendants($_) } @pids);
	kill('KILL', @pids) if @pids;
	eval { $_->finish } for @{ $m->{sidecars} // [] };
	eval { $m->{patroni}->finish } if $m->{alive};
	$m->{alive} = 0;
	return;
}

# When the test ends, however it ends: kill every Patroni, postmaster and etcd.
END
{
	my $exit = $?;
	for my $c (@clusters)
	{
		for my $name (@{ $c->{names} })
		{
			eval { $c->_reap_member($name) };
		}
		if ($c->{etcd})
		{
			eval { $c->{etcd}->signal('KILL') };
			eval { $c->{etcd}->finish };
		}
	}
	$? = $exit;
}

1;
