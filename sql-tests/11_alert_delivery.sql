-- Alert delivery is not a weapon: rule names cannot carry mail headers, a rule names
-- few targets, mail goes to plain addresses only, and users name only the webhooks
-- dispatch.webhook_allow covers (regress.conf: 'hooks.example.com,
-- http://127.0.0.1:9/allowed/'); admins may name others, which the sender then lets
-- reach public addresses only (t/015_alert_delivery.pl shows the sending side).
\set SHOW_CONTEXT never
\set VERBOSITY default
CREATE ROLE alert_user IN ROLE dispatch_user;
CREATE ROLE alert_admin IN ROLE dispatch_admin;
SET ROLE alert_user;
-- Rule names: a CR LF (a Bcc header), a lone LF or CR, a tab, NEL, the Unicode line and
-- paragraph separators, surrounding spaces, empty, too long.
SELECT dispatch.create_alert_rule(E'r\r\nBcc: victim@example.com', '{"metric": "m", "op": ">", "threshold": 1, "notify": ["mailto:ops@example.com"]}');
SELECT dispatch.create_alert_rule(E'r\nBcc: victim@example.com', '{"metric": "m", "op": ">", "threshold": 1, "notify": ["mailto:ops@example.com"]}');
SELECT dispatch.create_alert_rule(E'r\rx', '{"metric": "m", "op": ">", "threshold": 1, "notify": ["mailto:ops@example.com"]}');
SELECT dispatch.create_alert_rule(E'r\tx', '{"metric": "m", "op": ">", "threshold": 1, "notify": ["mailto:ops@example.com"]}');
SELECT dispatch.create_alert_rule(E'r\u0085x', '{"metric": "m", "op": ">", "threshold": 1, "notify": ["mailto:ops@example.com"]}');
SELECT dispatch.create_alert_rule(E'r\u2028x', '{"metric": "m", "op": ">", "threshold": 1, "notify": ["mailto:ops@example.com"]}');
SELECT dispatch.create_alert_rule(E'r\u2029x', '{"metric": "m", "op": ">", "threshold": 1, "notify": ["mailto:ops@example.com"]}');
SELECT dispatch.create_alert_rule(E'r\u007fx', '{"metric": "m", "op": ">", "threshold": 1, "notify": ["mailto:ops@example.com"]}');
SELECT dispatch.create_alert_rule(' r', '{"metric": "m", "op": ">", "threshold": 1, "notify": ["mailto:ops@example.com"]}');
SELECT dispatch.create_alert_rule('r ', '{"metric": "m", "op": ">", "threshold": 1, "notify": ["mailto:ops@example.com"]}');
SELECT dispatch.create_alert_rule('', '{"metric": "m", "op": ">", "threshold": 1, "notify": ["mailto:ops@example.com"]}');
SELECT dispatch.create_alert_rule(repeat('r', 201), '{"metric": "m", "op": ">", "threshold": 1, "notify": ["mailto:ops@example.com"]}');
-- Mail targets: plain addresses only, so none can add a recipient or a header.
SELECT dispatch.create_alert_rule('r', E'{"metric": "m", "op": ">", "threshold": 1, "notify": ["mailto:ops@example.com\\r\\nBcc: victim@example.com"]}');
SELECT dispatch.create_alert_rule('r', '{"metric": "m", "op": ">", "threshold": 1, "notify": ["mailto:<ops@example.com>"]}');
SELECT dispatch.create_alert_rule('r', '{"metric": "m", "op": ">", "threshold": 1, "notify": ["mailto:ops@example.com,victim@example.com"]}');
SELECT dispatch.create_alert_rule('r', '{"metric": "m", "op": ">", "threshold": 1, "notify": ["mailto:ops@example.com victim@example.com"]}');
SELECT dispatch.create_alert_rule('r', '{"metric": "m", "op": ">", "threshold": 1, "notify": ["mailto:ops@[127.0.0.1]"]}');
SELECT dispatch.create_alert_rule('r', '{"metric": "m", "op": ">", "threshold": 1, "notify": ["mailto:"]}');
-- At most 10 targets.
SELECT dispatch.create_alert_rule('r', jsonb_build_object('metric', 'm', 'op', '>', 'threshold', 1,
  'notify', (SELECT jsonb_agg('mailto:ops' || i || '@example.com') FROM generate_series(1, 11) i)));
-- Webhooks the allow-list does not cover: another port, scheme, path or host, a path that
-- only starts like the allowed one, dot segments out of it, a user part naming the
-- allowed host, IPv6 loopback, a scheme libcurl must not speak, a space.
SELECT dispatch.create_alert_rule('r', '{"metric": "m", "op": ">", "threshold": 1, "notify": ["http://127.0.0.1:8080/hook"]}');
SELECT dispatch.create_alert_rule('r', '{"metric": "m", "op": ">", "threshold": 1, "notify": ["https://127.0.0.1:9/allowed/x"]}');
SELECT dispatch.create_alert_rule('r', '{"metric": "m", "op": ">", "threshold": 1, "notify": ["http://127.0.0.1:9/other"]}');
SELECT dispatch.create_alert_rule('r', '{"metric": "m", "op": ">", "threshold": 1, "notify": ["http://127.0.0.1:9/allowedx"]}');
SELECT dispatch.create_alert_rule('r', '{"metric": "m", "op": ">", "threshold": 1, "notify": ["http://127.0.0.1:9/allowed/../admin"]}');
SELECT dispatch.create_alert_rule('r', '{"metric": "m", "op": ">", "threshold": 1, "notify": ["http://hooks.example.com@127.0.0.1:8080/"]}');
SELECT dispatch.create_alert_rule('r', '{"metric": "m", "op": ">", "threshold": 1, "notify": ["http://[::1]:9/allowed/"]}');
SELECT dispatch.create_alert_rule('r', '{"metric": "m", "op": ">", "threshold": 1, "notify": ["https://hooks.example.com:8443/x"]}');
SELECT dispatch.create_alert_rule('r', '{"metric": "m", "op": ">", "threshold": 1, "notify": ["https://hooks.example.com.evil.org/x"]}');
SELECT dispatch.create_alert_rule('r', '{"metric": "m", "op": ">", "threshold": 1, "notify": ["https://evil.org/hooks.example.com"]}');
SELECT dispatch.create_alert_rule('r', '{"metric": "m", "op": ">", "threshold": 1, "notify": ["mailto:ops@example.com", "gopher://hooks.example.com/"]}');
SELECT dispatch.create_alert_rule('r', '{"metric": "m", "op": ">", "threshold": 1, "notify": ["http://hooks.example.com/a b"]}');
SELECT count(*) AS rules FROM dispatch.alert_rules;
-- What the allow-list covers: the host with either scheme and its default port, in any
-- case; paths at or below the allowed one; the allowed address written in hex (libcurl
-- reads it as 127.0.0.1, and connects there).  A non-ASCII name is fine; 10 targets too.
SELECT dispatch.create_alert_rule('d' || U&'\00E9p' || U&'\00F4t plein', jsonb_build_object('metric', 'm', 'op', '>', 'threshold', 1,
  'notify', (SELECT jsonb_agg('mailto:ops' || i || '@example.com') FROM generate_series(1, 8) i)
            || '["https://hooks.example.com/x", "http://HOOKS.example.com:80/y"]')) > 0 AS created;
SELECT dispatch.create_alert_rule('allowed paths', '{"metric": "m", "op": ">", "threshold": 1,
  "notify": ["http://127.0.0.1:9/allowed/", "http://127.0.0.1:9/allowed/a/b?x=1", "http://127.0.0.1:9/allowed/x/../y",
             "http://0x7f000001:9/allowed/"]}') > 0 AS created;
RESET ROLE;
-- An admin may name any webhook; the sender lets it reach public addresses only.
SET ROLE alert_admin;
SELECT dispatch.create_alert_rule('admin hook', '{"metric": "m", "op": ">", "threshold": 1,
  "notify": ["http://127.0.0.1:8080/hook"]}') > 0 AS created;
SELECT dispatch.create_alert_rule('admin bad', '{"metric": "m", "op": ">", "threshold": 1, "notify": ["ftp://127.0.0.1/"]}');
RESET ROLE;
SELECT name, owner, notify FROM dispatch.alert_rules ORDER BY rule_id;

-- The sender learns whether a rule's owner is an admin, and never gets a busy row twice.
SELECT dispatch._alert_event(r, 'n1', 'firing', 2) FROM dispatch.alert_rules r ORDER BY rule_id;
SELECT target, trusted FROM dispatch._notifications_due(100) ORDER BY notification_id;
UPDATE dispatch.notifications SET next_attempt_at = now();
SELECT count(*) AS claimed_again FROM dispatch._notifications_due(100,
  (SELECT array_agg(notification_id) FROM dispatch.notifications WHERE target LIKE 'mailto:%'));
-- A rule whose owner left dispatch_admin (or was dropped) is no longer trusted.
REVOKE dispatch_admin FROM alert_admin;
UPDATE dispatch.notifications SET next_attempt_at = now();
SELECT target, trusted FROM dispatch._notifications_due(100) WHERE target LIKE '%8080%';

-- The settings: an allow-list entry that is no URL, a sender that is no plain address.
ALTER SYSTEM SET dispatch.webhook_allow = 'ftp://files.example.com';
ALTER SYSTEM SET dispatch.webhook_allow = 'hooks.example.com, http://user@127.0.0.1:9/';
ALTER SYSTEM SET dispatch.webhook_allow = 'http://127.0.0.1:9/?q=1';
ALTER SYSTEM SET dispatch.mail_from = E'dispatch@example.com\r\nBcc: victim@example.com';
ALTER SYSTEM SET dispatch.mail_from = 'Dispatch <dispatch@example.com>';
SET dispatch.webhook_allow = '127.0.0.1';
SHOW dispatch.webhook_allow;

SELECT dispatch.drop_alert_rule(name) FROM dispatch.alert_rules ORDER BY rule_id;
DELETE FROM dispatch.notifications;
DROP ROLE alert_user;
DROP ROLE alert_admin;
