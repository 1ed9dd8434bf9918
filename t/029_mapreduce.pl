# The map-reduce example of docs/dataflow.md, as a new user runs it: dispatchctl
# submits examples/mapreduce.yaml, two agents share the work, psql shows the cells,
# their results and the graph as JSON and DOT.  Also the README's short example.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use DispatchTest;
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;

my $tree = $ENV{TESTDIR} // '.';
my $ctl = "$tree/ctl/dispatchctl";
ok(-x $ctl, "dispatchctl is built at $ctl") or BAIL_OUT('build it with make -C ctl');

my $node = start_server();
my $w1 = start_agent($node, 'w1', '--resource', 'cpu=[0-1]');
my $w2 = start_agent($node, 'w2', '--resource', 'cpu=[0-1]');

my ($out, $err) = ('', '');
IPC::Run::run([ $ctl, '-d', $node->connstr('postgres'), 'submit', '-q',
		"$tree/examples/mapreduce.yaml" ], '>', \$out, '2>', \$err);
is($? >> 8, 0, 'dispatchctl submits the example') or diag($err);
chomp(my $jl = $out);
like($jl, qr/^\d+$/, 'it prints the joblist id');

wait_for($node, "SELECT state NOT IN ('queued', 'running') FROM dispatch.joblists WHERE joblist_id = $jl",
	'the map-reduce ends');
is(query($node, "SELECT state FROM dispatch.joblists WHERE joblist_id = $jl"), 'succeeded', 'it succeeds');
is(query($node, "SELECT string_agg(name || ' ' || state || ' ' || coalesce(cell::text, '-') || ' '
                                   || coalesce(result::text, '-'), E'\\n' ORDER BY job_id)
                   FROM dispatch.job_status WHERE joblist_id = $jl"),
	join("\n",
		'split succeeded - ["1,2", "3,4", "5,6", "7,8"]',
		'sum succeeded - 44',
		'count[0] succeeded {"item": "1,2", "index": 0} 9',
		'count[1] succeeded {"item": "3,4", "index": 1} 8',
		'count[2] succeeded {"item": "5,6", "index": 2} 13',
		'count[3] succeeded {"item": "7,8", "index": 3} 14'),
	'job_status shows every cell, its item and its result');
is(query($node, "SELECT count(DISTINCT node) FROM dispatch.jobs WHERE joblist_id = $jl"), '2',
	'both agents took part');
is(query($node, "SELECT dispatch.job_log(job_id) FROM dispatch.jobs WHERE joblist_id = $jl AND name = 'sum'"),
	"count[0].json\ncount[1].json\ncount[2].json\ncount[3].json\n44\n",
	'sum read one input per cell');
is(query($node, "SELECT dispatch.job_result(job_id) FROM dispatch.jobs WHERE joblist_id = $jl AND name = 'sum'"),
	'44', 'job_result gives the total');

# The graph: JSON edges from each cell to sum, DOT that Graphviz-minded readers expect.
is(query($node, "SELECT count(*) FROM jsonb_array_elements(dispatch.joblist_graph($jl) -> 'edges') e
                   WHERE e ->> 'to' = (SELECT job_id::text FROM dispatch.jobs
                                        WHERE joblist_id = $jl AND name = 'sum')"),
	'4', 'the graph has an edge from every cell to sum');
my $dot = query($node, "SELECT dispatch.joblist_graph_dot($jl)");
like($dot, qr/^digraph "joblist $jl" \{/, 'DOT text starts a digraph');
is(() = $dot =~ /label="count\[\d\]\\nsucceeded"/g, 4, 'DOT has a box per cell with its state');
is(() = $dot =~ / -> /g, 8, 'DOT has an arrow from split to each cell and from each cell to sum');

# The README's example, submitted in SQL.
my $readme = query($node, q{SELECT dispatch.submit_joblist($${"name": "wordcount", "jobs": [
  {"name": "split", "command": "echo '[\"a b\", \"c\"]' > $DISPATCH_RESULT"},
  {"name": "count", "for_each": "split", "command": "echo $DISPATCH_ITEM | wc -w > $DISPATCH_RESULT"},
  {"name": "sum", "after": ["count"], "command": "cat $DISPATCH_INPUTS/*.json | awk '{ s += $1 } END { print s }'"}]}$$)});
wait_for($node, "SELECT state NOT IN ('queued', 'running') FROM dispatch.joblists WHERE joblist_id = $readme",
	'the README example ends');
is(query($node, "SELECT dispatch.job_log(job_id) FROM dispatch.jobs WHERE joblist_id = $readme AND name = 'sum'"),
	"3\n", 'the README example counts three words');

stop_agent($w1);
stop_agent($w2);
done_testing();
