#!/usr/bin/env python3
"""master_priority: an ordered master priority for a Patroni 3.0.2 cluster.

Patroni 3.0.2 has no failover_priority.  In synchronous_mode it promotes, on a
failure, only the member named in its /sync key, the synchronous standby; it
never promotes a member tagged nofailover.  This program, run beside every
Patroni, turns an ordered list of members (best first) and a set of members
that must never be master into those two levers:

* nosync steering.  A member gets the tag nosync while an eligible member ranked
  above it, other than the leader, streams from the leader, is caught up and has
  been so for `settle` seconds.  So the only members the leader may pick as its
  synchronous standby are the best healthy replica and the never-master members
  (Patroni 3.0.2 ranks nofailover members last; they are a fallback that keeps
  commits synchronous but can never take over).  On a failure, Patroni itself
  promotes that synchronous standby: the next member in the list.
* nofailover.  A never-master member gets the tag nofailover: Patroni never
  promotes it, neither on a failure nor on a switchover or manual failover.
  Give it the tag in its own patroni.yml too, so that it holds from its very
  first start, before this program has run.
* preemption (optional, on by default).  The program beside the leader asks
  Patroni for a switchover (POST /switchover) to the best member when that member
  ranks above the leader, is the synchronous standby and has been healthy for
  `settle` seconds: after a failover that had to pick a lower member, and when a
  better member comes back, the list's first healthy member becomes master again.
  A still better member that runs but is not ready holds the switchover back for
  up to 3 * settle (at least 10 s), so that one switchover does, not two.

Each program changes only the tags of its own member: it writes them to a file
in Patroni's configuration directory (Patroni 3.0.2 merges every *.yml file of
the directory it is given, in name order) and asks its Patroni to reload
(POST /reload).  Tags are part of Patroni's local configuration and a reload
applies them; Patroni publishes them in its member key, where the leader reads
them when it picks the synchronous standby.

The list lives in one place, Patroni's dynamic configuration (the /config key,
`patronictl edit-config` or PATCH /config), under the key master_priority:

    master_priority:
      order: [db1, db2, db3]      # best first; unlisted members rank after these, by name
      never: [db4]                # never master
      preempt: true               # switch over to a better member once it is ready
      settle: 30                  # seconds a member must stream, caught up, to count
      max_lag: 1048576            # bytes; default: maximum_lag_on_failover

Patroni keeps keys it does not know in /config and ignores them.  The list is
refused (nothing is changed) unless synchronous_mode is on and
synchronous_node_count is 1.  Every decision
is taken from what the leader's Patroni reports (its /cluster and /patroni
views), so every program beside every member comes to the same answer.  When
there is no leader, or its REST API does not answer, nothing is changed: during
a failover the tags stay as they were, and Patroni alone decides.

Standard library only; Python 3.7 or later.
"""

import argparse
import base64
import json
import logging
import os
import signal
import sys
import tempfile
import time
import urllib.error
import urllib.request

DEFAULT_SETTLE = 30.0
DEFAULT_MAX_LAG = 1048576
RELOAD_RETRY = 10.0          # seconds before asking again for a reload that did not show
SWITCHOVER_TIMEOUT = 35.0    # Patroni 3.0.2 polls a switchover's result for up to 20 s

log = logging.getLogger('master_priority')
stopping = False


class PatroniError(Exception):
    """A REST call to Patroni failed."""


class Rest:
    """A small client of Patroni's REST API (basic auth from Patroni's env names)."""

    def __init__(self, cafile=None, timeout=3.0):
        self.timeout = timeout
        self.headers = {'Content-Type': 'application/json'}
        user = os.environ.get('PATRONI_RESTAPI_USERNAME')
        if user is not None:
            secret = '%s:%s' % (user, os.environ.get('PATRONI_RESTAPI_PASSWORD', ''))
            self.headers['Authorization'] = 'Basic ' + base64.b64encode(secret.encode()).decode()
        self.context = None
        if cafile:
            import ssl
            self.context = ssl.create_default_context(cafile=cafile)

    def call(self, method, url, body=None, timeout=None):
        """Returns (status, decoded JSON or text) of one request; raises PatroniError."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method, headers=self.headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout,
                                        context=self.context) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        except (OSError, ValueError) as e:
            raise PatroniError('%s %s: %s' % (method, url, e))
        text = raw.decode('utf-8', 'replace')
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text.strip()

    def get(self, url):
        """Returns the decoded JSON of GET url (any status with a JSON body)."""
        status, body = self.call('GET', url)
        if not isinstance(body, (dict, list)):
            raise PatroniError('GET %s: status %s, %r' % (url, status, body))
        return body


class Priority:
    """The master_priority section of the dynamic configuration, checked."""

    def __init__(self, section, config):
        if not isinstance(section, dict):
            raise ValueError('master_priority must be a mapping')
        order = section.get('order', [])
        if isinstance(order, str):
            order = [x.strip() for x in order.split(',') if x.strip()]
        never = section.get('never', [])
        if isinstance(never, str):
            never = [x.strip() for x in never.split(',') if x.strip()]
        if not all(isinstance(x, str) for x in order + never):
            raise ValueError('master_priority.order and .never must list member names')
        if len(set(order)) != len(order):
            raise ValueError('master_priority.order names a member twice')
        both = set(order) & set(never)
        if both:
            raise ValueError('master_priority names %s both in order and in never'
                             % ', '.join(sorted(both)))
        self.order = order
        self.never = set(never)
        self.preempt = section.get('preempt', True)
        if not isinstance(self.preempt, bool):
            raise ValueError('master_priority.preempt must be true or false')
        try:
            self.settle = float(section.get('settle', DEFAULT_SETTLE))
            self.max_lag = int(section.get('max_lag',
                                           config.get('maximum_lag_on_failover', DEFAULT_MAX_LAG)))
        except (TypeError, ValueError):
            raise ValueError('master_priority.settle and .max_lag must be numbers')
        if self.settle < 0 or self.max_lag < 0:
            raise ValueError('master_priority.settle and .max_lag cannot be negative')
        # The order is enforced through the one synchronous standby.
        if config.get('synchronous_mode') is not True:
            raise ValueError('master_priority needs synchronous_mode: true')
        if int(config.get('synchronous_node_count', 1)) != 1:
            raise ValueError('master_priority needs synchronous_node_count: 1')
        # How long a better member that runs but is not ready holds a switchover back.
        self.hold = max(10.0, 3 * self.settle)

    def rank(self, name):
        """Returns a sort key: listed members by position, then unlisted by name,
        never-master members last."""
        if name in self.never:
            return (2, 0, name)
        if name in self.order:
            return (0, self.order.index(name), name)
        return (1, 0, name)

    def eligible(self, name):
        """Returns whether the member may become master."""
        return name not in self.never


class View:
    """One consistent look at the cluster, taken from the leader's Patroni."""

    def __init__(self, cluster, replication):
        self.members = {m['name']: m for m in cluster.get('members', [])}
        self.leader = next((m['name'] for m in cluster.get('members', [])
                            if m.get('role') == 'leader' and m.get('state') == 'running'), None)
        self.sync = {m['name'] for m in cluster.get('members', []) if m.get('role') == 'sync_standby'}
        self.paused = bool(cluster.get('pause'))
        self.scheduled = 'scheduled_switchover' in cluster
        # application_name is the member name (Patroni sets it so).
        self.streaming = {r.get('application_name') for r in replication
                          if r.get('state') == 'streaming'}

    def healthy(self, name, prio):
        """Returns whether member name streams from the leader and is caught up."""
        m = self.members.get(name)
        if not m or name == self.leader or m.get('state') != 'running':
            return False
        lag = m.get('lag')
        return name in self.streaming and isinstance(lag, int) and lag <= prio.max_lag


class Controller:
    """The loop beside one member: steer its tags, preempt from the leader."""

    def __init__(self, args):
        self.name = args.name
        self.api = args.api.rstrip('/')
        self.tags_file = args.tags_file
        self.rest = Rest(args.cafile)
        self.healthy_since = {}      # member -> time it was first seen healthy, this streak
        self.leader_seen = None
        self.written = self.read_tags_file() if self.tags_file else None
        self.reload_asked = 0.0
        self.switchover_at = None
        self.held_since = None       # (candidate, time) a switchover was first held back
        self.last_note = None

    def read_tags_file(self):
        """Returns the tags our file holds now, or None when there is no file."""
        try:
            with open(self.tags_file) as f:
                text = ''.join(line for line in f if not line.lstrip().startswith('#'))
            return json.loads(text).get('tags', {})
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            log.warning('could not read %s: %s; it will be rewritten', self.tags_file, e)
            return None

    def write_tags_file(self, tags):
        """Writes tags to the file atomically (temp file, fsync, rename)."""
        directory = os.path.dirname(os.path.abspath(self.tags_file))
        fd, tmp = tempfile.mkstemp(prefix='.master_priority.', dir=directory)
        try:
            with os.fdopen(fd, 'w') as f:
                f.write('# Written by master_priority.py from master_priority in the dynamic\n'
                        '# configuration; edits here are overwritten.\n')
                f.write(json.dumps({'tags': tags}, sort_keys=True) + '\n')
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            os.rename(tmp, self.tags_file)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def note(self, msg, *args):
        """Logs msg at INFO once, until a different message comes."""
        text = msg % args
        if text != self.last_note:
            log.info('%s', text)
            self.last_note = text

    def observe(self):
        """Returns (Priority or None, View or None): the list and the leader's view."""
        config = self.rest.get(self.api + '/config')
        section = config.get('master_priority') if isinstance(config, dict) else None
        prio = Priority(section, config) if section is not None else None
        cluster = self.rest.get(self.api + '/cluster')
        leader = next((m for m in cluster.get('members', [])
                       if m.get('role') == 'leader' and m.get('state') == 'running'), None)
        if leader is None or not leader.get('api_url'):
            return prio, None
        base = leader['api_url'].rsplit('/', 1)[0]
        status = self.rest.get(base + '/patroni')
        if status.get('role') not in ('master', 'primary') or status.get('state') != 'running':
            return prio, None
        # Read /cluster from the leader too: its view of /sync is the one that counts.
        cluster = self.rest.get(base + '/cluster')
        view = View(cluster, status.get('replication', []))
        if view.leader != leader['name']:
            return prio, None
        return prio, view

    def track(self, view, prio, now):
        """Updates the healthy streaks; returns the set of members healthy for settle s."""
        if view.leader != self.leader_seen:
            self.healthy_since = {}
            self.leader_seen = view.leader
        for name in view.members:
            if view.healthy(name, prio):
                self.healthy_since.setdefault(name, now)
            else:
                self.healthy_since.pop(name, None)
        for name in list(self.healthy_since):
            if name not in view.members:
                del self.healthy_since[name]
        return {n for n, t in self.healthy_since.items() if now - t >= prio.settle}

    def wanted_tags(self, prio, view, ready):
        """Returns (tags this member should carry, reason)."""
        tags = {}
        reason = []
        if prio is None:
            return tags, 'no master_priority in the dynamic configuration'
        if not prio.eligible(self.name):
            tags['nofailover'] = True
            reason.append('never master')
            return tags, ', '.join(reason)
        better = sorted((n for n in ready if prio.eligible(n) and n != view.leader
                         and prio.rank(n) < prio.rank(self.name)), key=prio.rank)
        if better:
            tags['nosync'] = True
            reason.append('nosync: %s ranks higher and is ready' % better[0])
        else:
            reason.append('may be synchronous standby')
        return tags, ', '.join(reason)

    def apply_tags(self, tags, view, now, reason):
        """Writes and reloads when the tags differ from what we wrote or what shows."""
        if tags != self.written:
            log.info('tags of %s: %s -> %s (%s)', self.name,
                     json.dumps(self.written, sort_keys=True), json.dumps(tags, sort_keys=True), reason)
            self.write_tags_file(tags)
            self.written = tags
            self.reload(now)
            return
        # Patroni publishes its tags in its member key: check that the reload took.
        # Only tags we set are checked; a nosync we did not ask for may come from
        # the member's own patroni.yml or from a shutdown in progress.
        shown = (view.members.get(self.name) or {}).get('tags', {}) if view else None
        if shown is None:
            return
        if any(bool(shown.get(k)) != bool(v) for k, v in tags.items()) \
                and now - self.reload_asked >= RELOAD_RETRY:
            log.warning('Patroni shows tags %s, not %s yet: asking for a reload again',
                        json.dumps(shown, sort_keys=True), json.dumps(tags, sort_keys=True))
            self.reload(now)

    def reload(self, now):
        """Asks the local Patroni to reread its configuration directory."""
        self.reload_asked = now
        try:
            status, body = self.rest.call('POST', self.api + '/reload')
            if status >= 300:
                log.warning('POST /reload: %s %s', status, body)
        except PatroniError as e:
            log.warning('%s', e)

    def maybe_switchover(self, prio, view, ready, now):
        """From the leader only: switch over to the best ready synchronous standby
        when it ranks above the leader."""
        if prio is None or not prio.preempt or view.leader != self.name:
            return
        if view.paused or view.scheduled:
            return
        candidates = sorted((n for n in ready if prio.eligible(n)), key=prio.rank)
        if not candidates or prio.rank(candidates[0]) >= prio.rank(self.name):
            return
        best = candidates[0]
        # A better member that runs but is not ready yet (it is catching up, or it
        # has just come back) holds the switchover back, for a while: two
        # switchovers in a row would cost two interruptions.
        waiting = [n for n, m in view.members.items() if prio.eligible(n) and n != view.leader
                   and prio.rank(n) < prio.rank(best) and m.get('state') == 'running']
        if waiting:
            if not self.held_since or self.held_since[0] != best:
                self.held_since = (best, now)
            if now - self.held_since[1] < prio.hold:
                self.note('%s runs but is not ready; switchover to %s held back for up to %.0f s',
                          waiting[0], best, prio.hold)
                return
        else:
            self.held_since = None
        if best not in view.sync:
            self.note('%s ranks above the leader %s; waiting until it is the synchronous standby',
                      best, self.name)
            return
        if self.switchover_at is not None and now - self.switchover_at < prio.hold:
            return
        self.switchover_at = now
        log.info('switchover %s -> %s: %s ranks higher, is the synchronous standby and '
                 'has streamed, caught up, for %.1f s', self.name, best, best,
                 now - self.healthy_since[best])
        try:
            status, body = self.rest.call('POST', self.api + '/switchover',
                                          {'leader': self.name, 'candidate': best},
                                          timeout=SWITCHOVER_TIMEOUT)
            log.info('switchover answered %s: %s', status, body)
        except PatroniError as e:
            log.warning('%s', e)

    def step(self):
        """One round: observe, steer the tags, maybe switch over."""
        now = time.monotonic()
        try:
            prio, view = self.observe()
        except PatroniError as e:
            self.note('cannot see the cluster: %s', e)
            return
        except ValueError as e:
            self.note('master_priority is invalid, nothing changed: %s', e)
            return
        if view is None and prio is not None:
            # No running leader that answers: a failover may be in progress.
            # Nothing is changed; Patroni alone decides.
            self.healthy_since = {}
            self.note('no leader answers; tags left as they are')
            return
        ready = self.track(view, prio, now) if view and prio else set()
        tags, reason = self.wanted_tags(prio, view, ready)
        self.apply_tags(tags, view, now, reason)
        if prio is None:
            self.note('%s', reason)
        elif view:
            self.note('leader %s, synchronous %s, ready %s; %s: %s', view.leader,
                      ','.join(sorted(view.sync)) or '-', ','.join(sorted(ready, key=prio.rank)) or '-',
                      self.name, reason)
            self.maybe_switchover(prio, view, ready, now)


def show(args):
    """Prints the list, each member's role, health and the tags the rules give it."""
    c = Controller(args)
    prio, view = c.observe()
    if prio is None:
        print('no master_priority in the dynamic configuration')
        return 1
    if view is None:
        print('no running leader answers')
        return 1
    print('order %s, never %s, preempt %s, settle %g s, max_lag %d'
          % (','.join(prio.order) or '-', ','.join(sorted(prio.never)) or '-',
             prio.preempt, prio.settle, prio.max_lag))
    healthy = {n for n in view.members if view.healthy(n, prio)}
    for name in sorted(view.members, key=prio.rank):
        c.name = name
        tags, reason = c.wanted_tags(prio, view, healthy)
        m = view.members[name]
        print('%-16s %-13s %-9s lag %-10s %s' % (name, m.get('role'), m.get('state'),
                                              m.get('lag', '-'), reason))
    return 0


def main():
    p = argparse.ArgumentParser(description='Ordered master priority for Patroni 3.0.2 '
                                '(see the comment at the top of this file).')
    p.add_argument('--api', default='http://127.0.0.1:8008',
                   help="this member's Patroni REST API (default %(default)s)")
    p.add_argument('--name', required=True, help="this member's Patroni name")
    p.add_argument('--tags-file', help='file in the Patroni configuration directory this program '
                   'owns, e.g. /etc/patroni/config.d/99-master-priority.yml')
    p.add_argument('--interval', type=float, default=2.0,
                   help='seconds between rounds (default %(default)s)')
    p.add_argument('--cafile', help='CA bundle for an https REST API')
    p.add_argument('--show', action='store_true', help='print the plan once and exit')
    p.add_argument('--verbose', action='store_true')
    args = p.parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if args.verbose else logging.INFO,
                        format='%(asctime)s master_priority ' + args.name + ' %(levelname)s: %(message)s')
    if args.show:
        return show(args)
    if not args.tags_file:
        p.error('--tags-file is required')

    def stop(signum, frame):
        global stopping
        stopping = True
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    c = Controller(args)
    log.info('started beside %s (%s), tags file %s', args.name, c.api, args.tags_file)
    while not stopping:
        started = time.monotonic()
        try:
            c.step()
        except OSError as e:
            log.error('%s', e)
        end = started + args.interval
        while not stopping and time.monotonic() < end:
            time.sleep(min(0.2, max(end - time.monotonic(), 0)))
    log.info('stopping')
    return 0


if __name__ == '__main__':
    sys.exit(main())
