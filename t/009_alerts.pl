# Metrics and alerts end to end.  An agent samples a plugin's value every second; an
# alert rule on it goes pending, fires, repeats and resolves, and every event reaches a
# real SMTP server (aiosmtpd) and an HTTP receiver through the monitor worker.  A
# webhook that fails is retried with backoff across a PostgreSQL restart and delivered
# exactly once; while the server is down the agent queues its samples and delivers each
# once afterwards.  The monitor drops an expired metrics partition.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use DispatchTest;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $dir = PostgreSQL::Test::Utils::tempdir();
my $smtp_port = PostgreSQL::Test::Cluster::get_free_port();
my $http_port = PostgreSQL::Test::Cluster::get_free_port();
my $received = "$dir/received.jsonl";
my $webhook_fails = "$dir/webhook_fails";
my $hook = "http://127.0.0.1:$http_port/hook";

my $ready = '';
my $receivers = IPC::Run::start(
	[ '/usr/bin/python3', "$FindBin::RealBin/receivers.py", $smtp_port, $http_port,
		$received, $webhook_fails ],
	'<', \undef, '>', \$ready, '2>>', "$PostgreSQL::Test::Utils::log_path/009_receivers.log",
	IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
$receivers->pump until $ready =~ /ready/;
END { local $?; $receivers->kill_kill if $receivers }	# keeps the exit status

# Every delivery the receivers logged, optionally only those via smtp or http.
sub deliveries
{
	my ($via) = @_;
	open(my $fh, '<', $received) or return ();
	my @all = map { decode_json($_) } <$fh>;
	close $fh;
	for (@all)		# a mail's body is the same JSON object as the webhook's
	{
		$_->{event} = $_->{via} eq 'http' ? $_->{body} : decode_json($_->{body});
	}
	return grep { !$via || $_->{via} eq $via } @all;
}

# The deliveries of event (firing, repeat, resolved) through via.
sub events
{
	my ($via, $event) = @_;
	return grep { $_->{event}{event} eq $event } deliveries($via);
}

my $node = start_server(
	'dispatch.monitor_interval' => '1s',
	'dispatch.smtp_url' => "smtp://127.0.0.1:$smtp_port",
	'dispatch.mail_from' => 'dispatch@example.com',
	'dispatch.webhook_allow' => "127.0.0.1:$http_port");	# a loopback receiver: allowed explicitly

mkdir "$dir/plugins";
PostgreSQL::Test::Utils::append_to_file("$dir/depth", "1\n");
PostgreSQL::Test::Utils::append_to_file("$dir/plugins/queue",
	"#!/bin/sh\necho \"queue_depth \$(cat $dir/depth)\"\n");
chmod 0755, "$dir/plugins/queue";

# Sets the value the plugin reports.
sub set_depth
{
	my ($v) = @_;
	open(my $fh, '>', "$dir/depth.new") or die $!;
	print $fh "$v\n";
	close $fh;
	rename("$dir/depth.new", "$dir/depth") or die $!;
}

my $agent = start_agent($node, 'n1', '--metrics-interval', '1', '--plugin-dir', "$dir/plugins");
wait_for($node, "SELECT value = 1 FROM dispatch.metric_latest
                  WHERE node = 'n1' AND metric = 'plugin.queue_depth'", "the plugin's value arrives");
is(query($node, "SELECT count(*) > 10 FROM dispatch.metric_latest WHERE node = 'n1'"), 't',
	'host metrics arrive with it');
is(query($node, "SELECT cpu_pct IS NOT NULL AND mem_pct > 0 AND load1 IS NOT NULL
                   FROM dispatch.node_overview WHERE node = 'n1'"), 't', 'node_overview shows the node');

# --- the queue's error paths -------------------------------------------------------
# A damaged sample in the queue is refused by the server; the agent drops it alone
# and delivers the rest.  A sampler that dies is replaced.
my $queue = "$agent->{workdir}/metrics";
PostgreSQL::Test::Utils::append_to_file("$queue/0000000000000001.json", '{"t": 1, "cpu": ');
wait_until(sub { slurp_file($agent->{log}) =~ /dropping sample "0000000000000001\.json", which the server refuses/ },
	'a sample the server refuses is dropped');
ok(!-e "$queue/0000000000000001.json", 'and removed from the queue');
my $agent_pid = $agent->{handle}->{KIDS}[0]{PID};
my ($sampler) = grep { (split ' ', slurp_file("/proc/$_/stat"))[3] == $agent_pid
	  && slurp_file("/proc/$_/cmdline") =~ /metrics sampler/ }
  map { m{/proc/(\d+)$} ? $1 : () } glob('/proc/[0-9]*');
ok($sampler, "the agent's sampler runs (pid $sampler)");
kill 'KILL', $sampler;
wait_until(sub { slurp_file($agent->{log}) =~ /metrics sampler \(pid $sampler\) was killed by signal 9/ },
	'a killed sampler is reported');
wait_until(sub { slurp_file($agent->{log}) =~ /metrics sampler started \(pid (?!$sampler\))\d+\)/ },
	'and replaced');
my $since = query($node, 'SELECT now()');
wait_for($node, "SELECT count(*) >= 2 FROM dispatch.metric_samples WHERE at > '$since'",
	'samples keep coming');

# --- fire, repeat, resolve ----------------------------------------------------------
query($node, qq{SELECT dispatch.create_alert_rule('deep-queue', '{"metric": "plugin.queue_depth",
  "op": ">", "threshold": 10, "for": "2 seconds", "severity": "critical", "repeat": "4 seconds",
  "notify": ["mailto:ops\@example.com", "$hook"]}')});
set_depth(50);
wait_for($node, "SELECT state = 'pending' FROM dispatch.alert_status WHERE rule = 'deep-queue'",
	'the alert is pending first');
wait_until(sub { events('smtp', 'firing') && events('http', 'firing') }, 'firing: a mail and a webhook');
my ($mail) = events('smtp', 'firing');
is_deeply($mail->{to}, ['ops@example.com'], 'the mail goes to the rule\'s address');
is($mail->{from}, 'dispatch@example.com', 'from dispatch.mail_from');
like($mail->{subject}, qr/^\[pg_dispatch\] FIRING critical: deep-queue on n1 \(plugin\.queue_depth > 10, value 50\)$/,
	'the subject says what fired where');
my ($post) = events('http', 'firing');
is($post->{type}, 'application/json', 'the webhook posts JSON');
is_deeply([ @{ $post->{body} }{qw(rule node event severity metric value)} ],
	[ 'deep-queue', 'n1', 'firing', 'critical', 'plugin.queue_depth', 50 ], 'the webhook body');
is(query($node, "SELECT fired_at - since >= interval '2 seconds' FROM dispatch.alert_status
                  WHERE rule = 'deep-queue'"), 't', 'it fired only after holding for its "for"');
wait_until(sub { events('http', 'repeat') && events('smtp', 'repeat') }, 'still firing: repeated');

set_depth(1);
wait_until(sub { events('http', 'resolved') && events('smtp', 'resolved') }, 'resolved: told both ways');
is(query($node, "SELECT count(*) FROM dispatch.alert_status"), '0', 'no alert is left open');

# --- a failing webhook across a PostgreSQL restart; samples queued meanwhile --------
PostgreSQL::Test::Utils::append_to_file($webhook_fails, '');
set_depth(70);
wait_for($node, "SELECT attempts >= 1 AND last_error = 'HTTP status 503' AND sent_at IS NULL
                   FROM dispatch.notifications n JOIN dispatch.alert_events e USING (event_id)
                  WHERE n.target = '$hook' AND e.event = 'firing' AND e.value = 70",
	'the webhook fails and stays in the outbox');
my $event = query($node, "SELECT event_id FROM dispatch.alert_events WHERE event = 'firing' AND value = 70");
set_depth(1);
my $down_at = query($node, 'SELECT now()');
$node->stop('fast');
wait_until(sub { my @q = glob("$queue/*.json"); @q >= 3 }, 'the agent queues samples while the server is down');
$node->start;
my $up_at = query($node, 'SELECT now()');
unlink $webhook_fails;
wait_until(sub { grep { $_->{event}{event_id} == $event } deliveries('http') },
	'the failed webhook is delivered after the restart');
wait_for($node, "SELECT count(*) = 0 FROM dispatch.notifications WHERE sent_at IS NULL AND failed_at IS NULL",
	'the outbox drains');
wait_until(sub { my @q = glob("$queue/*.json"); !@q }, "the agent's queue drains");
is(query($node, "SELECT count(*) >= 3 FROM dispatch.metric_samples s JOIN dispatch.metric_nodes USING (node_id)
                  WHERE node = 'n1' AND s.at > '$down_at' AND s.at < '$up_at'"), 't',
	'samples taken while the server was down are stored');
is(query($node, "SELECT count(*) - count(DISTINCT at) FROM dispatch.metric_samples"), '0',
	'every sample is stored once');
my %seen;
$seen{"$_->{via} $_->{event}{event_id}"}++ for deliveries();
is_deeply([ grep { $seen{$_} > 1 } sort keys %seen ], [], 'no notification was delivered twice');
is(scalar(keys %seen), query($node, "SELECT count(*) FROM dispatch.notifications WHERE sent_at IS NOT NULL"),
	'every notification marked sent was received');

# --- retention drops an expired partition ------------------------------------------
my $old = query($node, "SELECT dispatch._metric_partition('metric_packs', now() - interval '5 days')");
wait_for($node, "SELECT to_regclass('dispatch.$old') IS NULL", "the monitor drops $old");

query($node, "SELECT dispatch.drop_alert_rule('deep-queue')");
stop_agent($agent);
done_testing();
