# Hostile agents (issue 12, holes 3 and 12; docs/security.md): a registration with
# amounts beyond the limit is refused and changes nothing; nodes registered with the
# largest amounts allowed do not keep a job pinned to another node from running; a
# real agent whose plugin makes its samples too big has them dropped, not retried
# forever, and its later good samples are stored.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use DispatchTest;

# The huge nodes have no agent: they must stay online for the whole test.
my $node = start_server(node_timeout => '10min');
my $dir = PostgreSQL::Test::Utils::tempdir();

# --- a hostile registration ---------------------------------------------------------
query($node, 'CREATE ROLE agent_evil IN ROLE dispatch_agent');
my ($rc, $out, $err) = $node->psql('postgres', q{SET ROLE agent_evil;
	SELECT dispatch.agent_register('evil', '{"amounts": {"slots": 9223372036854775807}}')});
like($err, qr/amount of "slots" must be between 1 and 1099511627776/, 'a huge amount is refused');
is(query($node, "SELECT count(*) FROM dispatch.nodes WHERE node = 'evil'"), '0',
	'and registers nothing');
for my $n ('evil', 'evil2')
{
	query($node, qq{SET ROLE agent_evil; SELECT dispatch.agent_register('$n',
		'{"amounts": {"slots": 1099511627776}, "resources": [{"type": "cpu", "ident": "0"}]}')});
}

# --- a real agent, its plugin first too big -------------------------------------------
mkdir "$dir/plugins";
PostgreSQL::Test::Utils::append_to_file("$dir/mode", "big\n");
PostgreSQL::Test::Utils::append_to_file("$dir/plugins/many", <<"EOS");
#!/bin/sh
if [ "\$(cat $dir/mode)" = big ]; then
	i=0; while [ \$i -lt 800 ]; do echo "bad_\$i \$i"; i=\$((i+1)); done
else
	echo "good 1"
fi
EOS
chmod 0755, "$dir/plugins/many";
my $agent = start_agent($node, 'good', '--resource', 'slots=[0-1]', '--metrics-interval', '1',
	'--plugin-dir', "$dir/plugins");

# Jobs pinned to the good node are placed and run next to the huge nodes.
my $jl = submit($node, '{"name": "pinned", "stages": [{"jobs": [
  {"name": "a", "command": "true", "needs": {"slots": 1}, "constraints": {"node": "good"}},
  {"name": "b", "command": "true", "needs": {"slots": 1}, "constraints": {"node": "good"}}]}]}');
wait_for($node, "SELECT state = 'succeeded' FROM dispatch.joblist_status WHERE joblist_id = $jl",
	'jobs pinned to the good node run');
is(query($node, "SELECT string_agg(DISTINCT node, ',') FROM dispatch.job_status WHERE joblist_id = $jl"),
	'good', 'on the good node');

# Samples of 800 plugin metrics are refused with SQLSTATE class 22 and dropped.
wait_until(sub { slurp_file($agent->{log}) =~ /dropping sample "[^"]+", which the server refuses/ },
	'a sample with too many metrics is dropped');
like(slurp_file($agent->{log}), qr/the sample has \d+ metrics, more than dispatch\.metrics_max_per_sample = 500 allows/,
	'the agent logs why');
open(my $fh, '>', "$dir/mode.new") or die $!;
print $fh "good\n";
close $fh;
rename("$dir/mode.new", "$dir/mode") or die $!;
wait_for($node, "SELECT value = 1 FROM dispatch.metric_latest
                  WHERE node = 'good' AND metric = 'plugin.good'", 'later good samples are stored');
is(query($node, "SELECT count(*) FROM dispatch.metric_series WHERE name LIKE 'plugin.bad%'"), '0',
	'no bad sample left a series behind');

stop_agent($agent);
done_testing();
