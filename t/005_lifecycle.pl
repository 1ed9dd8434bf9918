# The scheduler's life cycle: the module refuses to work unless preloaded; the launcher
# keeps retrying until dispatch.database exists; a standby schedules nothing while in
# recovery and starts scheduling when promoted.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use DispatchTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# Without shared_preload_libraries the extension cannot be created.
my $plain = PostgreSQL::Test::Cluster->new('plain');
$plain->init;
$plain->start;
my ($rc, $out, $err) = $plain->psql('postgres', 'CREATE EXTENSION pg_dispatch');
isnt($rc, 0, 'CREATE EXTENSION fails without preloading');
like($err, qr/pg_dispatch must be loaded via shared_preload_libraries/, 'and says why');
$plain->stop;

# dispatch.database does not exist yet: no scheduler, until it is created.
my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', join("\n",
	"shared_preload_libraries = 'pg_dispatch'",
	"dispatch.database = 'jobs'", ''));
$primary->start;
$primary->wait_for_log(qr/database "jobs" does not exist/);
$primary->safe_psql('postgres', 'CREATE DATABASE jobs');
$primary->safe_psql('jobs', 'CREATE EXTENSION pg_dispatch');
ok($primary->poll_query_until('jobs',
		'SELECT pid IS NOT NULL FROM dispatch.scheduler_stats()'),
	'the launcher starts the scheduler once the database exists');

# A streaming standby: the extension is there, but nothing schedules in recovery.
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;
$primary->safe_psql('jobs', q{
	SELECT dispatch.agent_register('n1', '{"resources": [{"type": "cpu", "ident": "0"}]}');});
$primary->wait_for_catchup($standby);
is($standby->safe_psql('jobs', 'SELECT pid IS NULL FROM dispatch.scheduler_stats()'), 't',
	'no scheduler on the standby');
is($standby->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity
                                     WHERE backend_type LIKE 'pg_dispatch%'"), '0',
	'no pg_dispatch worker at all while in recovery');

# The primary goes away; the promoted standby schedules the queue.
$primary->stop;
$standby->promote;
ok($standby->poll_query_until('jobs', 'SELECT pid IS NOT NULL FROM dispatch.scheduler_stats()'),
	'the promoted standby starts its scheduler');
my $jl = $standby->safe_psql('jobs', q{SELECT dispatch.submit_joblist(
	'{"name": "after-failover", "stages": [{"jobs": [{"name": "a", "command": "true"}]}]}')});
ok($standby->poll_query_until('jobs', "SELECT state = 'assigned' FROM dispatch.job_status
                                        WHERE joblist_id = $jl"),
	'and assigns work');
$standby->stop;
done_testing();
