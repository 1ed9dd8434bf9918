------------------------------------------------------------------------------
-- Alerts: threshold rules on metrics, their state, and a notification outbox
------------------------------------------------------------------------------
--
-- The monitor worker evaluates the rules each dispatch.monitor_interval against
-- the latest value of their metric on the selected nodes (node.up is 1 for an
-- online node, 0 otherwise), all rules in one set-based pass over the latest sample
-- each node keeps on dispatch.metric_nodes.  The pass is incremental: only nodes
-- that sent a sample or changed state or labels since the last pass
-- (dispatch.alert_dirty), rules not evaluated yet, and alerts whose "for" or
-- "repeat" has run out are looked at; every other alert keeps its state, which is
-- what a full pass would find for it.  An alert is pending while the condition holds for
-- less than the rule's "for", firing after that (notified again every "repeat"),
-- and resolved when the condition stops.  Each notification is a row of the
-- outbox, written in the same transaction as the state change; the worker sends
-- it with libcurl outside any transaction and marks it sent, retrying with
-- backoff, so a restart loses nothing and a sent notification is not sent again.
--
-- Delivery is not a weapon (docs/security.md, "Alert delivery"): a rule name has no
-- control characters, a rule names at most 10 targets, a mail goes only to the plain
-- address the rule names, and a webhook that dispatch.webhook_allow does not cover
-- may be named only by a dispatch_admin member (src/target.c checks it again, with
-- the address it connects to, when it is sent).

CREATE TABLE dispatch.alert_rules (
    rule_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL UNIQUE,
    spec            jsonb NOT NULL,
    metric          text NOT NULL,
    node_pattern    text,
    labels          jsonb NOT NULL DEFAULT '{}',
    op              text NOT NULL CHECK (op IN ('>', '>=', '<', '<=', '=', '!=')),
    threshold       double precision NOT NULL,
    hold            interval NOT NULL DEFAULT '0',
    severity        text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    repeat          interval,
    notify          text[] NOT NULL,
    owner           name NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    evaluated       boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE dispatch.alert_rules IS
    'Threshold rules on node metrics (evaluated: the rule went through one pass over every node)';

CREATE TABLE dispatch.alert_dirty (
    node            text PRIMARY KEY
);
COMMENT ON TABLE dispatch.alert_dirty IS
    'Nodes whose latest sample, state or labels changed since the last alert evaluation '
    '(agent_metrics() and the triggers on dispatch.nodes add them, the evaluation takes them)';

CREATE FUNCTION dispatch._alert_dirty_node() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO dispatch.alert_dirty VALUES (NEW.node) ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION dispatch._alert_dirty_node() IS
    'Trigger: the node of the row goes to the next alert evaluation';
CREATE TRIGGER alert_dirty_new AFTER INSERT ON dispatch.nodes
    FOR EACH ROW EXECUTE FUNCTION dispatch._alert_dirty_node();
CREATE TRIGGER alert_dirty_changed AFTER UPDATE OF state, labels ON dispatch.nodes
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.labels IS DISTINCT FROM NEW.labels)
    EXECUTE FUNCTION dispatch._alert_dirty_node();

CREATE TABLE dispatch.alerts (
    rule_id         bigint NOT NULL REFERENCES dispatch.alert_rules ON DELETE CASCADE,
    node            text NOT NULL,
    state           text NOT NULL CHECK (state IN ('pending', 'firing')),
    value           double precision,
    since           timestamptz NOT NULL,
    fired_at        timestamptz,
    notified_at     timestamptz,
    PRIMARY KEY (rule_id, node)
);
COMMENT ON TABLE dispatch.alerts IS 'Alerts now pending or firing, one per rule and node';

CREATE TABLE dispatch.alert_events (
    event_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule_id         bigint NOT NULL REFERENCES dispatch.alert_rules ON DELETE CASCADE,
    node            text NOT NULL,
    event           text NOT NULL CHECK (event IN ('firing', 'repeat', 'resolved')),
    value           double precision,
    at              timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX alert_events_rule_idx ON dispatch.alert_events (rule_id, event_id);
COMMENT ON TABLE dispatch.alert_events IS 'History of alerts: when each fired, repeated and resolved';

CREATE TABLE dispatch.notifications (
    notification_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        bigint REFERENCES dispatch.alert_events ON DELETE SET NULL,
    target          text NOT NULL,
    subject         text NOT NULL,
    body            jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    sent_at         timestamptz,
    failed_at       timestamptz,
    last_error      text
);
CREATE INDEX notifications_due_idx ON dispatch.notifications (next_attempt_at)
    WHERE sent_at IS NULL AND failed_at IS NULL;
COMMENT ON TABLE dispatch.notifications IS
    'Outbox of alert notifications (mail and webhooks): sent once, retried with backoff';

CREATE FUNCTION dispatch._rule_hold(spec jsonb) RETURNS interval
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN NOT spec ? 'for' OR spec -> 'for' IN ('0', '"0"') THEN interval '0'
                ELSE dispatch._json_interval(spec -> 'for', 'for', '"for"') END
$$;
COMMENT ON FUNCTION dispatch._rule_hold(jsonb) IS
    'How long the condition of rule spec must hold before it fires ("for", 0 when absent)';

CREATE FUNCTION dispatch._notify_target_problem(target text) RETURNS text
    LANGUAGE C STABLE STRICT AS 'MODULE_PATHNAME', '_notify_target_problem';
COMMENT ON FUNCTION dispatch._notify_target_problem(text) IS
    'NULL when anyone may name notification target, else ''invalid'' or ''not allowed'' '
    '(a webhook dispatch.webhook_allow does not cover)';

CREATE FUNCTION dispatch._validate_alert_rule(name text, spec jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t text;
    problem text;
    i int := 0;
BEGIN
    PERFORM dispatch._check_spec_name(name, 'rule name');
    -- names go into mail subjects and logs: no line may be broken or forged
    IF name ~ '[[:cntrl:]\u0085\u2028\u2029]' THEN
        PERFORM dispatch._spec_error('the rule name',
            'rule name must not contain control characters or line breaks');
    END IF;
    IF name <> btrim(name) THEN
        PERFORM dispatch._spec_error('the rule name', 'rule name must not begin or end with a space');
    END IF;
    PERFORM dispatch._json_typed('object', spec, '', 'alert rule spec');
    PERFORM dispatch._check_keys(spec, ARRAY['metric', 'node', 'labels', 'op', 'threshold',
        'for', 'severity', 'repeat', 'notify'], '', 'alert rule');
    PERFORM dispatch._require_key(spec, 'metric', '', 'alert rule');
    PERFORM dispatch._json_text(spec -> 'metric', 'metric', 'metric', 500);
    IF spec ? 'node' THEN
        PERFORM dispatch._json_text(spec -> 'node', 'node', 'node pattern');
    END IF;
    IF spec ? 'labels' THEN
        PERFORM dispatch._json_string_map(spec -> 'labels', '^[A-Za-z0-9_.-]{1,63}$', 'labels',
            'labels', 'A label key is 1 to 63 letters, digits, "_", "." or "-".');
    END IF;
    PERFORM dispatch._json_choice(spec -> 'op', ARRAY['>', '>=', '<', '<=', '=', '!='], 'op',
        'op must be one of ">", ">=", "<", "<=", "=", "!="');
    IF jsonb_typeof(spec -> 'threshold') IS DISTINCT FROM 'number' THEN
        PERFORM dispatch._spec_error('threshold', 'threshold must be a number');
    END IF;
    PERFORM dispatch._rule_hold(spec);
    IF spec ? 'repeat' THEN
        PERFORM dispatch._json_interval(spec -> 'repeat', 'repeat', 'repeat');
    END IF;
    IF spec ? 'severity' THEN
        PERFORM dispatch._json_choice(spec -> 'severity', ARRAY['info', 'warning', 'critical'],
            'severity', 'severity must be "info", "warning" or "critical"');
    END IF;
    IF jsonb_typeof(spec -> 'notify') IS DISTINCT FROM 'array'
       OR jsonb_array_length(spec -> 'notify') = 0 THEN
        PERFORM dispatch._spec_error('notify', 'notify must be a non-empty array of targets',
            'A target is "mailto:someone@example.com" or an "http://" or "https://" URL.');
    END IF;
    IF jsonb_array_length(spec -> 'notify') > 10 THEN
        PERFORM dispatch._spec_error('notify', 'notify must name at most 10 targets',
            'Send to a mailing list or one webhook that fans out.');
    END IF;
    FOR t IN SELECT jsonb_array_elements(spec -> 'notify') #>> '{}' LOOP
        problem := coalesce(dispatch._notify_target_problem(t), '');
        IF t IS NULL OR problem = 'invalid' THEN
            PERFORM dispatch._spec_error(format('notify[%s]', i),
                format('invalid notification target %s', coalesce(to_jsonb(t)::text, 'null')),
                'A target is "mailto:someone@example.com" or an "http://" or "https://" URL.');
        ELSIF problem = 'not allowed' AND NOT dispatch._caller_is_admin() THEN
            RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
                MESSAGE = format('webhook destination %s is not allowed', to_jsonb(t)::text),
                DETAIL = format('The error is at notify[%s].', i),
                HINT = 'An administrator lists the destinations users may name in dispatch.webhook_allow.';
        END IF;
        i := i + 1;
    END LOOP;
END
$$;
COMMENT ON FUNCTION dispatch._validate_alert_rule(text, jsonb) IS
    'Validates an alert rule spec; raises like a spec error';

CREATE FUNCTION dispatch.create_alert_rule(name text, spec jsonb) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id bigint;
BEGIN
    PERFORM dispatch._validate_alert_rule(name, spec);
    IF EXISTS (SELECT FROM dispatch.alert_rules r WHERE r.name = create_alert_rule.name) THEN
        RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
            MESSAGE = format('alert rule "%s" already exists', name),
            HINT = 'Drop it first with dispatch.drop_alert_rule().';
    END IF;
    INSERT INTO dispatch.alert_rules (name, spec, metric, node_pattern, labels, op, threshold,
                                      hold, severity, repeat, notify, owner)
    VALUES (name, spec, spec ->> 'metric', spec ->> 'node', coalesce(spec -> 'labels', '{}'),
            spec ->> 'op', (spec ->> 'threshold')::double precision,
            dispatch._rule_hold(spec),
            coalesce(spec ->> 'severity', 'warning'),
            CASE WHEN spec ? 'repeat' THEN dispatch._json_interval(spec -> 'repeat', 'repeat', 'repeat') END,
            ARRAY(SELECT jsonb_array_elements_text(spec -> 'notify')), dispatch.current_caller())
    RETURNING rule_id INTO id;
    RETURN id;
END
$$;
COMMENT ON FUNCTION dispatch.create_alert_rule(text, jsonb) IS
    'Create a threshold rule on a metric (node selector, for, severity, repeat, '
    'mailto:/http targets)';

CREATE FUNCTION dispatch.drop_alert_rule(name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r dispatch.alert_rules;
BEGIN
    SELECT * INTO r FROM dispatch.alert_rules x WHERE x.name = drop_alert_rule.name FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('alert rule "%s" does not exist', name);
    END IF;
    IF r.owner <> dispatch.current_caller() AND NOT dispatch._caller_is_admin() THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = format('alert rule "%s" belongs to %s', name, r.owner);
    END IF;
    DELETE FROM dispatch.alert_rules WHERE rule_id = r.rule_id;
END
$$;
COMMENT ON FUNCTION dispatch.drop_alert_rule(text) IS 'Drop an alert rule and its alerts';

CREATE FUNCTION dispatch._notify(r dispatch.alert_rules, ev dispatch.alert_events) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO dispatch.notifications (event_id, target, subject, body)
    SELECT ev.event_id, t,
           format('[pg_dispatch] %s %s: %s on %s (%s %s %s, value %s)', upper(ev.event),
                  r.severity, r.name, ev.node, r.metric, r.op, r.threshold, ev.value),
           jsonb_build_object('rule', r.name, 'node', ev.node, 'event', ev.event,
                              'severity', r.severity, 'metric', r.metric, 'op', r.op,
                              'threshold', r.threshold, 'value', ev.value, 'at', ev.at,
                              'event_id', ev.event_id)
      FROM unnest(r.notify) t
$$;
COMMENT ON FUNCTION dispatch._notify(dispatch.alert_rules, dispatch.alert_events) IS
    'Queues the notifications of alert event ev of rule r';

CREATE FUNCTION dispatch._alert_event(r dispatch.alert_rules, node text, event text,
                                      value double precision) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ev dispatch.alert_events;
BEGIN
    INSERT INTO dispatch.alert_events (rule_id, node, event, value)
    VALUES (r.rule_id, node, event, value) RETURNING * INTO ev;
    PERFORM dispatch._notify(r, ev);
END
$$;
COMMENT ON FUNCTION dispatch._alert_event(dispatch.alert_rules, text, text, double precision) IS
    'Records event of rule r on node (with value) and queues its notifications';

-- (jit off: the planner cannot know how few pairs an incremental pass has, and
-- compiling the plan it fears took 3.4 s of a 3.5 s pass at 10,000 nodes)
CREATE FUNCTION dispatch._evaluate_alerts(whole boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
    rules bigint[];
    nodes text[];
    events text[];
    vals double precision[];
    fresh bigint[];			-- rules not evaluated before
BEGIN
    -- Set-based, over the pairs of rule and node that may have changed: every rule on
    -- the nodes that sent a sample or changed state or labels (taken from alert_dirty
    -- in this statement's snapshot: a change committed later stays for the next pass),
    -- every node for a rule not evaluated yet (or for all, with whole), and the alerts
    -- whose "for" or "repeat" ran out.  Then the value of each rule's metric on each
    -- node it selects (one at most: a node has one latest sample; none when not fresh,
    -- and the alert keeps its state), whether the condition holds, and what follows
    -- for the alert, which is written only when something changed.  An alert is
    -- deleted when its condition stops (a firing one is resolved), created pending
    -- when it starts, firing once it has held for the rule's "for" (at once when that
    -- is 0), repeated every "repeat".
    WITH dirty AS MATERIALIZED (
        DELETE FROM dispatch.alert_dirty RETURNING node),
    fresh AS MATERIALIZED (
        SELECT r.rule_id FROM dispatch.alert_rules r WHERE NOT r.evaluated OR whole),
    pairs AS MATERIALIZED (	-- each pair once, without a sort
        SELECT f.rule_id, n.node FROM fresh f CROSS JOIN dispatch.nodes n
        UNION ALL
        SELECT r.rule_id, d.node FROM dirty d CROSS JOIN dispatch.alert_rules r
         WHERE r.rule_id NOT IN (SELECT rule_id FROM fresh)
        UNION ALL
        SELECT a.rule_id, a.node FROM dispatch.alerts a JOIN dispatch.alert_rules r USING (rule_id)
         WHERE ((a.state = 'pending' AND now() - a.since >= r.hold)
                OR (a.state = 'firing' AND now() - a.notified_at >= r.repeat))
           AND a.rule_id NOT IN (SELECT rule_id FROM fresh) AND a.node NOT IN (SELECT node FROM dirty)),
    pos AS MATERIALIZED (	-- where each rule's metric sits in each layout that has it
        SELECT s.name, l.layout_id, array_position(l.series, s.series_id) AS p
          FROM dispatch.metric_series s JOIN dispatch.metric_layouts l ON s.series_id = ANY (l.series)
         WHERE s.name IN (SELECT metric FROM dispatch.alert_rules)),
    cur AS MATERIALIZED (
        SELECT x.rule_id, x.node, v.value,
               CASE r.op WHEN '>' THEN v.value > r.threshold
                         WHEN '>=' THEN v.value >= r.threshold
                         WHEN '<' THEN v.value < r.threshold
                         WHEN '<=' THEN v.value <= r.threshold
                         WHEN '=' THEN v.value = r.threshold
                         ELSE v.value <> r.threshold END AS holds
          FROM pairs x
          JOIN dispatch.alert_rules r USING (rule_id)
          JOIN dispatch.nodes n ON n.node = x.node
          LEFT JOIN dispatch.metric_nodes m
                 ON m.node = x.node AND r.metric <> 'node.up'
                AND m.last_sample_at > now() - 3 * current_setting('dispatch.monitor_interval')::interval
                                             - interval '30 seconds'
          LEFT JOIN pos o ON o.layout_id = m.latest_layout AND o.name = r.metric
          CROSS JOIN LATERAL (SELECT CASE WHEN r.metric = 'node.up'
                                          THEN (n.state = 'online')::int::double precision
                                          ELSE m.latest_vals[o.p] END AS value) v
         WHERE (r.node_pattern IS NULL OR x.node LIKE replace(r.node_pattern, '*', '%'))
           AND (r.labels = '{}' OR n.labels @> r.labels) AND v.value IS NOT NULL),
    st AS MATERIALIZED (
        SELECT c.rule_id, c.node, c.value, c.holds, a.state, a.since,
               CASE WHEN NOT c.holds THEN CASE WHEN a.state = 'firing' THEN 'resolved' END
                    WHEN coalesce(a.state, 'pending') = 'pending'
                         AND now() - coalesce(a.since, now()) >= r.hold THEN 'firing'
                    WHEN a.state = 'firing' AND now() - a.notified_at >= r.repeat THEN 'repeat'
               END AS event
          FROM cur c JOIN dispatch.alert_rules r USING (rule_id)
          LEFT JOIN dispatch.alerts a USING (rule_id, node)
         WHERE c.holds OR a.state IS NOT NULL),
    gone AS (
        DELETE FROM dispatch.alerts a USING st
         WHERE a.rule_id = st.rule_id AND a.node = st.node AND NOT st.holds),
    kept AS (
        INSERT INTO dispatch.alerts (rule_id, node, state, value, since, fired_at, notified_at)
        SELECT st.rule_id, st.node, CASE WHEN st.event = 'firing' THEN 'firing'
                                         ELSE coalesce(st.state, 'pending') END,
               st.value, coalesce(st.since, now()),
               CASE WHEN st.event = 'firing' THEN now() END,
               CASE WHEN st.event IN ('firing', 'repeat') THEN now() END
          FROM st WHERE st.holds
        ON CONFLICT (rule_id, node) DO UPDATE
           SET state = excluded.state, value = excluded.value,
               fired_at = coalesce(excluded.fired_at, dispatch.alerts.fired_at),
               notified_at = coalesce(excluded.notified_at, dispatch.alerts.notified_at)
         WHERE dispatch.alerts.value IS DISTINCT FROM excluded.value
            OR dispatch.alerts.state <> excluded.state OR excluded.notified_at IS NOT NULL)
    SELECT array_agg(st.rule_id ORDER BY st.rule_id, st.node), array_agg(st.node ORDER BY st.rule_id, st.node),
           array_agg(st.event ORDER BY st.rule_id, st.node), array_agg(st.value ORDER BY st.rule_id, st.node),
           (SELECT array_agg(f.rule_id) FROM fresh f)
      INTO rules, nodes, events, vals, fresh
      FROM st WHERE st.event IS NOT NULL;
    -- Events are few: each is recorded with its notifications in rule and node order.
    PERFORM dispatch._alert_event(r, e.node, e.event, e.value)
       FROM unnest(rules, nodes, events, vals) WITH ORDINALITY e(rule_id, node, event, value, o)
       JOIN dispatch.alert_rules r USING (rule_id)
      ORDER BY e.o;
    -- Only now: an event's foreign key check on a rule row this transaction updated
    -- would cost a MultiXact each.
    UPDATE dispatch.alert_rules r SET evaluated = true WHERE r.rule_id = ANY (fresh) AND NOT r.evaluated;
END
$$;
COMMENT ON FUNCTION dispatch._evaluate_alerts(boolean) IS
    'Monitor: evaluates the alert rules where something may have changed (new samples, node '
    'state or labels, new rules, "for" or "repeat" run out), set-based; with every, every rule '
    'on every node';

CREATE FUNCTION dispatch._notifications_due(n int, busy bigint[] DEFAULT '{}')
RETURNS TABLE (notification_id bigint, target text, subject text, body text, trusted boolean)
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    UPDATE dispatch.notifications x
       SET attempts = x.attempts + 1,
           next_attempt_at = now() + make_interval(secs => least(5 * 2 ^ x.attempts, 3600))
     WHERE x.notification_id IN (SELECT y.notification_id FROM dispatch.notifications y
                                  WHERE y.sent_at IS NULL AND y.failed_at IS NULL
                                    AND y.next_attempt_at <= now()
                                    AND y.notification_id <> ALL (busy)
                                  ORDER BY y.notification_id LIMIT n FOR UPDATE SKIP LOCKED)
    RETURNING x.notification_id, x.target, x.subject, x.body::text,
              coalesce((SELECT CASE WHEN EXISTS (SELECT FROM pg_roles o WHERE o.rolname = r.owner)
                                    THEN pg_has_role(r.owner, 'dispatch_admin', 'MEMBER') END
                          FROM dispatch.alert_events e JOIN dispatch.alert_rules r USING (rule_id)
                         WHERE e.event_id = x.event_id), false)
$$;
COMMENT ON FUNCTION dispatch._notifications_due(int, bigint[]) IS
    'Monitor: claims up to n notifications that are due and not busy (in flight): one more '
    'attempt, next try pushed back; trusted when the rule''s owner is a dispatch_admin member';

CREATE FUNCTION dispatch._notification_done(id bigint, ok boolean, error text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    UPDATE dispatch.notifications
       SET sent_at = CASE WHEN ok THEN now() ELSE sent_at END,
           last_error = CASE WHEN ok THEN last_error ELSE error END,
           failed_at = CASE WHEN NOT ok AND attempts >= current_setting('dispatch.notify_max_attempts')::int
                            THEN now() END
     WHERE notification_id = id
$$;
COMMENT ON FUNCTION dispatch._notification_done(bigint, boolean, text) IS
    'Monitor: records the outcome of sending notification id';

CREATE VIEW dispatch.alert_status AS
    SELECT r.name AS rule, a.node, a.state, r.severity, r.metric, r.op, r.threshold, a.value,
           a.since, a.fired_at, a.notified_at
      FROM dispatch.alerts a JOIN dispatch.alert_rules r USING (rule_id);
COMMENT ON VIEW dispatch.alert_status IS 'Alerts now pending or firing, with their rule';
