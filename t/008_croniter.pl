# dispatch.next_runs() against an independent implementation: python3-croniter on a
# few hundred generated schedules, in UTC and Europe/Berlin, through the same
# comparison script that checks the C core (src/core/tests/croniter_compare.py).
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use DispatchTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = start_server();
local $ENV{PGHOST} = $node->host;
local $ENV{PGPORT} = $node->port;
local $ENV{PGDATABASE} = 'postgres';
my $root = "$FindBin::RealBin/..";
my ($out, $err) = run_command(['/usr/bin/python3', "$root/src/core/tests/croniter_compare.py",
	"$FindBin::RealBin/next_runs_sql.sh"]);
note $out;
diag $err if $err;
like($out, qr/^\d{3} expressions compared, 0 skipped, .* 0 unexplained mismatches$/m,
	'next_runs agrees with croniter wherever pg_cron and croniter mean the same');
done_testing();
