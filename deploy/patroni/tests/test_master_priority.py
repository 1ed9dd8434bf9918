"""Unit tests of deploy/patroni/master_priority.py's decisions, against a fake Patroni.

The TAP test t/011_master_priority.pl runs the program against real Patroni
members; these cases cover what that run does not reach: bad lists, unlisted
members, lag, settle, pause, cooldown.  Run: python3 -m unittest discover -s deploy/patroni/tests
"""

import argparse
import importlib.util
import json
import logging
import os
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location(
    'master_priority', os.path.join(HERE, '..', 'master_priority.py'))
mp = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mp)
logging.disable(logging.CRITICAL)


def member(name, role='replica', lag=0, state='running', tags=None, port=0):
    """Returns a /cluster member entry."""
    m = {'name': name, 'role': role, 'state': state,
         'api_url': 'http://127.0.0.1:%d/patroni' % (8000 + port)}
    if role != 'leader':
        m['lag'] = lag
    if tags:
        m['tags'] = tags
    return m


class FakeRest:
    """Answers GET /config, /cluster, /patroni from dicts; records POSTs."""

    def __init__(self, config, cluster, replication):
        self.config, self.cluster, self.replication = config, cluster, replication
        self.posts = []

    def get(self, url):
        if url.endswith('/config'):
            return self.config
        if url.endswith('/cluster'):
            return self.cluster
        if url.endswith('/patroni'):
            return {'role': 'master', 'state': 'running', 'replication': self.replication}
        raise AssertionError(url)

    def call(self, method, url, body=None, timeout=None):
        self.posts.append((url.rsplit('/', 1)[1], body))
        return 200, 'ok'


def streaming(*names):
    return [{'application_name': n, 'state': 'streaming', 'sync_state': 'async'} for n in names]


class Case(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix='prio-unit-')
        self.prio = {'order': ['a', 'b', 'c'], 'never': ['n'], 'settle': 5}

    def controller(self, name, members, replication, prio=None, extra=None):
        """Returns a Controller for member name over a fake cluster."""
        args = argparse.Namespace(name=name, api='http://127.0.0.1:8000',
                                  tags_file=os.path.join(self.dir, name + '.yml'), cafile=None)
        c = mp.Controller(args)
        config = {'maximum_lag_on_failover': 1000, 'synchronous_mode': True}
        if prio is not False:
            config['master_priority'] = prio or self.prio
        cluster = {'members': members}
        cluster.update(extra or {})
        c.rest = FakeRest(config, cluster, replication)
        return c

    def run_rounds(self, c, times):
        """Runs step() at the given monotonic times."""
        clock = iter(times)
        real = mp.time.monotonic
        mp.time.monotonic = lambda: next(clock)
        try:
            for _ in times:
                c.step()
        finally:
            mp.time.monotonic = real

    def tags_written(self, c):
        with open(c.tags_file) as f:
            return json.loads(''.join(line for line in f if not line.startswith('#')))['tags']

    def test_priority_parsing(self):
        sync = {'synchronous_mode': True}
        p = mp.Priority({'order': 'a, b,c', 'never': 'n'}, sync)
        self.assertEqual(p.order, ['a', 'b', 'c'])
        self.assertEqual(sorted(['n', 'x', 'c', 'a', 'b'], key=p.rank), ['a', 'b', 'c', 'x', 'n'])
        self.assertEqual(p.max_lag, mp.DEFAULT_MAX_LAG)
        self.assertTrue(p.preempt)
        for bad in ({'order': ['a', 'a']}, {'order': ['a'], 'never': ['a']},
                    {'order': [1]}, {'never': [None]}, {'preempt': 'no'},
                    {'settle': 'soon'}, {'settle': -1}, {'max_lag': None}):
            with self.assertRaises(ValueError):
                mp.Priority(bad, sync)
        with self.assertRaises(ValueError):
            mp.Priority(['a'], sync)
        for config in ({}, {'synchronous_mode': False},
                       {'synchronous_mode': True, 'synchronous_node_count': 2}):
            with self.assertRaises(ValueError):
                mp.Priority({'order': ['a']}, config)

    def test_lower_member_gets_nosync_once_better_is_ready(self):
        members = [member('a', 'leader'), member('b', port=1), member('c', 'sync_standby', port=2),
                   member('n', port=3)]
        c = self.controller('c', members, streaming('b', 'c', 'n'))
        self.run_rounds(c, [100.0])
        self.assertEqual(self.tags_written(c), {}, 'b has not streamed for settle seconds yet')
        self.run_rounds(c, [104.0, 105.0])
        self.assertEqual(self.tags_written(c), {'nosync': True})
        self.assertEqual([p[0] for p in c.rest.posts], ['reload', 'reload'])

    def test_better_member_down_releases_nosync_at_once(self):
        members = [member('a', 'leader'), member('b', 'sync_standby', port=1),
                   member('c', port=2)]
        c = self.controller('c', members, streaming('b', 'c'))
        self.run_rounds(c, [0.0, 6.0])
        self.assertEqual(self.tags_written(c), {'nosync': True})
        c.rest.replication = streaming('c')
        self.run_rounds(c, [6.5])
        self.assertEqual(self.tags_written(c), {})

    def test_lagging_member_is_not_ready(self):
        members = [member('a', 'leader'), member('b', lag=5000, port=1), member('c', port=2)]
        c = self.controller('c', members, streaming('b', 'c'))
        self.run_rounds(c, [0.0, 10.0])
        self.assertEqual(self.tags_written(c), {})
        members[1]['lag'] = 'unknown'
        self.run_rounds(c, [20.0])
        self.assertEqual(self.tags_written(c), {})

    def test_leader_does_not_count_and_top_member_never_nosync(self):
        members = [member('b', 'leader', port=1), member('a', port=0), member('c', port=2)]
        c = self.controller('a', members, streaming('a', 'c'))
        self.run_rounds(c, [0.0, 10.0])
        self.assertEqual(self.tags_written(c), {})
        c = self.controller('c', [member('b', 'leader', port=1), member('c', port=2)],
                            streaming('c'))
        self.run_rounds(c, [0.0, 10.0])
        self.assertEqual(self.tags_written(c), {}, 'only the leader ranks above c')

    def test_never_master_gets_nofailover_only(self):
        members = [member('a', 'leader'), member('b', port=1), member('n', port=3)]
        c = self.controller('n', members, streaming('b', 'n'))
        self.run_rounds(c, [0.0, 10.0])
        self.assertEqual(self.tags_written(c), {'nofailover': True})

    def test_unlisted_member_ranks_after_the_list(self):
        members = [member('a', 'leader'), member('c', port=2), member('x', port=4)]
        c = self.controller('x', members, streaming('c', 'x'))
        self.run_rounds(c, [0.0, 10.0])
        self.assertEqual(self.tags_written(c), {'nosync': True})

    def test_leader_change_restarts_settle(self):
        members = [member('a', 'leader'), member('b', port=1), member('c', port=2)]
        c = self.controller('c', members, streaming('b', 'c'))
        self.run_rounds(c, [0.0, 6.0])
        self.assertEqual(self.tags_written(c), {'nosync': True})
        c.rest.cluster = {'members': [member('a', 'leader', port=0), member('b', port=1),
                                      member('c', port=2)]}
        c.rest.cluster['members'][0]['role'] = 'replica'
        c.rest.cluster['members'][0]['lag'] = 0
        c.rest.cluster['members'][1]['role'] = 'leader'
        c.rest.replication = streaming('a', 'c')
        self.run_rounds(c, [7.0])
        self.assertEqual(self.tags_written(c), {}, 'a streams from b but has not settled')
        self.run_rounds(c, [12.5])
        self.assertEqual(self.tags_written(c), {'nosync': True})

    def test_no_leader_changes_nothing(self):
        members = [member('a', 'replica'), member('b', port=1), member('c', port=2)]
        c = self.controller('c', members, streaming())
        self.run_rounds(c, [0.0, 10.0])
        self.assertFalse(os.path.exists(c.tags_file))
        self.assertEqual(c.rest.posts, [])

    def test_no_list_clears_our_tags(self):
        members = [member('a', 'leader'), member('c', port=2)]
        c = self.controller('c', members, streaming('c'), prio=False)
        self.run_rounds(c, [0.0])
        self.assertEqual(self.tags_written(c), {})

    def test_invalid_list_changes_nothing(self):
        members = [member('a', 'leader'), member('c', port=2)]
        c = self.controller('c', members, streaming('c'), prio={'order': ['a', 'a']})
        self.run_rounds(c, [0.0])
        self.assertFalse(os.path.exists(c.tags_file))

    def test_switchover_to_best_synchronous_member(self):
        members = [member('c', 'leader', port=2), member('a', 'sync_standby'),
                   member('b', port=1), member('n', port=3)]
        c = self.controller('c', members, streaming('a', 'b', 'n'))
        self.run_rounds(c, [0.0, 4.0])
        self.assertNotIn('switchover', [p[0] for p in c.rest.posts], 'not settled')
        self.run_rounds(c, [5.0])
        self.assertIn(('switchover', {'leader': 'c', 'candidate': 'a'}), c.rest.posts)
        c.rest.posts = []
        self.run_rounds(c, [6.0, 19.5])
        self.assertEqual([p for p in c.rest.posts if p[0] == 'switchover'], [], 'cooldown 15 s')
        self.run_rounds(c, [20.5])
        self.assertEqual([p[1]['candidate'] for p in c.rest.posts if p[0] == 'switchover'], ['a'])

    def test_running_better_member_holds_switchover_back(self):
        members = [member('c', 'leader', port=2), member('a', lag=5000),
                   member('b', 'sync_standby', port=1)]
        c = self.controller('c', members, streaming('a', 'b'))
        # b is ready at 5; a, running, holds the switchover back 3 * settle = 15 s.
        self.run_rounds(c, [0.0, 5.0, 19.5])
        self.assertEqual([p for p in c.rest.posts if p[0] == 'switchover'], [], 'a may catch up')
        self.run_rounds(c, [20.5])
        self.assertIn(('switchover', {'leader': 'c', 'candidate': 'b'}), c.rest.posts)
        # A member that is down holds nothing back.
        members[1]['state'] = 'stopped'
        c = self.controller('c', members, streaming('b'))
        self.run_rounds(c, [0.0, 5.0])
        self.assertIn(('switchover', {'leader': 'c', 'candidate': 'b'}), c.rest.posts)

    def test_no_switchover_when_best_is_not_synchronous(self):
        members = [member('c', 'leader', port=2), member('a'), member('b', 'sync_standby', port=1)]
        c = self.controller('c', members, streaming('a', 'b'))
        self.run_rounds(c, [0.0, 10.0])
        self.assertEqual([p for p in c.rest.posts if p[0] == 'switchover'], [])

    def test_no_switchover_paused_or_without_preempt(self):
        members = [member('c', 'leader', port=2), member('a', 'sync_standby')]
        c = self.controller('c', members, streaming('a'), extra={'pause': True})
        self.run_rounds(c, [0.0, 10.0])
        self.assertEqual([p for p in c.rest.posts if p[0] == 'switchover'], [])
        c = self.controller('c', members, streaming('a'),
                            prio=dict(self.prio, preempt=False))
        self.run_rounds(c, [0.0, 10.0])
        self.assertEqual([p for p in c.rest.posts if p[0] == 'switchover'], [])

    def test_never_master_is_no_switchover_candidate(self):
        members = [member('c', 'leader', port=2), member('n', 'sync_standby', port=3)]
        c = self.controller('c', members, streaming('n'))
        self.run_rounds(c, [0.0, 10.0])
        self.assertEqual([p for p in c.rest.posts if p[0] == 'switchover'], [])

    def test_never_master_leader_hands_over(self):
        members = [member('n', 'leader', port=3), member('c', 'sync_standby', port=2)]
        c = self.controller('n', members, streaming('c'))
        self.run_rounds(c, [0.0, 10.0])
        self.assertIn(('switchover', {'leader': 'n', 'candidate': 'c'}), c.rest.posts)

    def test_reload_is_asked_again_when_tags_do_not_show(self):
        members = [member('a', 'leader'), member('n', port=3)]
        c = self.controller('n', members, streaming('n'))
        self.run_rounds(c, [0.0, 1.0, 5.0])
        self.assertEqual([p[0] for p in c.rest.posts], ['reload'])
        self.run_rounds(c, [11.0])
        self.assertEqual([p[0] for p in c.rest.posts], ['reload', 'reload'])
        members[1]['tags'] = {'nofailover': True}
        self.run_rounds(c, [30.0])
        self.assertEqual([p[0] for p in c.rest.posts], ['reload', 'reload'])


if __name__ == '__main__':
    unittest.main()
