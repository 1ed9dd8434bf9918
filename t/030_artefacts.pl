# Artefacts with real agents (docs/artefacts.md): one agent watches a LaTeX-like paper,
# another builds it.  The sources reach the store; the latex/bibtex cycle (a fake
# latex whose .aux settles once the .bbl exists) is rebuilt as one job iterated to a
# fixed point, on the builder, through the store, and the rule after it runs after
# it; an edit of the bibliography rebuilds only what depends on it; 100 rapid writes
# give one rebuild; a followed log file is streamed; a file named badly is refused
# alone; request_build of a leaf builds that leaf alone.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use DispatchTest;
use Digest::SHA qw(sha256_hex);
use PostgreSQL::Test::Utils;
use Test::More;

my $node = start_server(kill_grace => '2s');
my $builder = start_agent($node, 'builder', '--resource', 'cpu=[0-1]');
query($node, q{SELECT dispatch.set_node_labels('builder', '{"tex": "yes"}')});

# The paper, watched on the node "laptop", which an admin bound to Alice's workspace.
my $src = PostgreSQL::Test::Utils::tempdir();
mkdir "$src/logs";
sub write_file
{
	my ($path, $text) = @_;
	open(my $f, '>', "$src/$path") or die "could not write $path: $!";
	print $f $text;
	close $f;
}
write_file('paper.tex', "\\cite{knuth}\nA paper.\n");
write_file('refs.bib', "\@book{knuth, title={TAOCP}}\n");
write_file('notes.txt', "first notes\n");
query($node, q{
	CREATE ROLE agent_laptop LOGIN IN ROLE dispatch_agent;
	CREATE ROLE alice IN ROLE dispatch_user;
	SELECT dispatch.bind_node('laptop', 'agent_laptop');
	SELECT dispatch.create_workspace('paper', 'alice', 'laptop');
	SET ROLE alice;
	SELECT dispatch.create_rule('latex', '{"workspace": "paper",
	  "inputs": ["paper.tex", "paper.aux", "paper.bbl"], "outputs": ["paper.pdf", "paper.aux"], "max_passes": 5,
	  "job": {"command": "if [ -f paper.bbl ]; then s=resolved; else s=unresolved; fi; { grep cite paper.tex; echo $s; } > paper.aux; { cat paper.tex; cat paper.bbl 2>/dev/null; echo $s; } > paper.pdf",
	          "constraints": {"tex": "yes"}}}');
	SELECT dispatch.create_rule('bibtex', '{"workspace": "paper",
	  "inputs": ["paper.aux", "refs.bib"], "outputs": ["paper.bbl"], "max_passes": 5,
	  "job": {"command": "{ grep cite paper.aux; cat refs.bib; } > paper.bbl", "constraints": {"tex": "yes"}}}');
	SELECT dispatch.create_rule('publish', '{"workspace": "paper",
	  "inputs": ["paper.pdf"], "outputs": ["paper.txt"],
	  "job": {"command": "wc -l < paper.pdf > paper.txt", "constraints": {"tex": "yes"}}}');
	SELECT dispatch.create_rule('count', '{"workspace": "paper",
	  "inputs": ["notes.txt"], "outputs": ["count.txt"],
	  "job": {"command": "wc -c < notes.txt > count.txt", "constraints": {"tex": "yes"}}}');
});
my $laptop = start_agent($node, 'laptop', '--resource', 'cpu=0', '--watch', "paper=$src",
	'--follow', 'paper=logs/*.log', '--watch-settle-ms', '50');

sub rebuilds
{
	return query($node, "SELECT count(*) FROM dispatch.joblists WHERE name = 'rebuild paper'");
}

sub wait_rebuilt
{
	my ($count, $what) = @_;
	wait_for($node, "SELECT count(*) >= $count AND bool_and(state NOT IN ('queued', 'running'))
	                   FROM dispatch.joblists WHERE name = 'rebuild paper'", $what);
	return query($node, "SELECT state FROM dispatch.joblists WHERE name = 'rebuild paper'
	                      ORDER BY joblist_id DESC LIMIT 1");
}

sub stored
{
	my ($path) = @_;
	return query($node, "SELECT convert_from(b.content, 'UTF8') FROM dispatch.artefacts a
	                       JOIN dispatch.blobs b ON b.sha256 = a.blob
	                      WHERE a.workspace = 'paper' AND a.path = '$path'");
}

# The sources arrive with their SHA-256, their contents in the store; the first
# rebuild makes everything.
wait_for($node, "SELECT count(*) = 3 FROM dispatch.artefact_status
                  WHERE workspace = 'paper' AND rule IS NULL AND stored", 'the sources are stored');
is(query($node, "SELECT sha256 FROM dispatch.artefacts WHERE workspace = 'paper' AND path = 'refs.bib'"),
	sha256_hex("\@book{knuth, title={TAOCP}}\n"), 'the watcher reported the SHA-256 of the file');
is(wait_rebuilt(1, 'the first rebuild ends'), 'succeeded', 'the first rebuild succeeds');
is(query($node, "SELECT string_agg(path || '=' || state, ' ' ORDER BY path) FROM dispatch.artefact_status
                  WHERE workspace = 'paper' AND rule IS NOT NULL"),
	'count.txt=fresh paper.aux=fresh paper.bbl=fresh paper.pdf=fresh paper.txt=fresh', 'everything is fresh');
is(stored('paper.pdf'), "\\cite{knuth}\nA paper.\n\\cite{knuth}\n\@book{knuth, title={TAOCP}}\nresolved\n",
	'the cycle reached its fixed point: the pdf has the bibliography and resolved citations');
is(query($node, "SELECT string_agg(DISTINCT node, ',') FROM dispatch.jobs j
                  JOIN dispatch.joblists l USING (joblist_id) WHERE l.name = 'rebuild paper'"),
	'builder', 'the builds ran on the builder, not on the watching node');
my $cycle = query($node, "SELECT job_id FROM dispatch.jobs WHERE name = 'latex+bibtex' ORDER BY job_id DESC LIMIT 1");
is(query($node, "SELECT dispatch.job_result($cycle) ->> 'converged'"), 'true', 'the cycle job says it converged');
is(query($node, "SELECT bool_and(p.started_at >= c.finished_at) FROM dispatch.jobs p JOIN dispatch.jobs c
                  USING (joblist_id) WHERE p.name = 'publish' AND c.name = 'latex+bibtex'"),
	't', 'the rule after the cycle ran after it');
is(stored('paper.txt'), "5\n", 'what the last rule made from the cycle\'s output');

# An edit of the bibliography: the cycle and what follows it, not the word count.
my $before = rebuilds();
write_file('refs.bib', "\@book{knuth, title={The Art of Computer Programming}}\n");
is(wait_rebuilt($before + 1, 'the rebuild after the edit ends'), 'succeeded', 'the rebuild after the edit succeeds');
is(query($node, "SELECT string_agg(name, ' ' ORDER BY job_id) FROM dispatch.jobs
                  WHERE joblist_id = (SELECT max(joblist_id) FROM dispatch.joblists WHERE name = 'rebuild paper')"),
	'latex+bibtex publish', 'only what depends on the bibliography was rebuilt, in order');
like(stored('paper.pdf'), qr/The Art of Computer Programming/, 'the new pdf has the new bibliography');

# 100 rapid writes to one file: one rebuild, of the last content.
$before = rebuilds();
write_file('notes.txt', 'x' x $_) for 1 .. 100;
is(wait_rebuilt($before + 1, 'the rebuild after 100 writes ends'), 'succeeded', 'the rebuild after the writes succeeds');
Time::HiRes::sleep(1.5);
is(rebuilds() - $before, 1, '100 rapid writes gave one rebuild');
is(stored('count.txt'), "100\n", 'it built from the last write');

# A followed log file is streamed, not hashed.
write_file('logs/build.log', "pass 1\n");
open(my $log, '>>', "$src/logs/build.log") or die;
print $log "pass 2\n";
close $log;
wait_for($node, "SELECT dispatch.followed_text('paper', 'logs/build.log') = E'pass 1\\npass 2\\n'",
	'the followed log is streamed');
is(query($node, "SELECT count(*) FROM dispatch.artefacts WHERE workspace = 'paper' AND path = 'logs/build.log'"),
	'0', 'a followed file is no artefact');

# A file whose name no workspace path may have (a newline) is refused alone: the
# watcher's reports after it go on.
write_file("odd\nname.txt", "x\n");
$before = rebuilds();
write_file('notes.txt', 'after the odd name');
is(wait_rebuilt($before + 1, 'the rebuild after the odd name ends'), 'succeeded', 'the reports went on');
is(stored('count.txt'), "18\n", 'and built from them');
like(PostgreSQL::Test::Utils::slurp_file($laptop->{log}), qr/event\(s\) refused, the first: path "odd\\nname.txt"/,
	'the agent logged the refused name');

# request_build of a leaf builds that leaf alone.
$before = rebuilds();
query($node, "SET ROLE alice; SELECT dispatch.request_build('paper', 'paper.txt')");
is(wait_rebuilt($before + 1, 'the requested build ends'), 'succeeded', 'the requested build succeeds');
is(query($node, "SELECT string_agg(name, ' ') FROM dispatch.jobs
                  WHERE joblist_id = (SELECT max(joblist_id) FROM dispatch.joblists WHERE name = 'rebuild paper')"),
	'publish', 'request_build of a leaf whose inputs are fresh builds the leaf alone');

stop_agent($laptop);
stop_agent($builder);
done_testing();
