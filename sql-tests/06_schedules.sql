-- Schedules in pg_cron's language: every accepted form, every rejected one, next-run
-- computation across month ends, leap years, "$", the day rule and daylight saving.
\set SHOW_CONTEXT never
\set VERBOSITY default
SET timezone = 'UTC';

-- Accepted forms: the first three fires after 2026-01-01 00:00 UTC.
CREATE FUNCTION pg_temp.runs(s text, n int DEFAULT 3, tz text DEFAULT 'UTC',
                             "from" timestamptz DEFAULT '2026-01-01 00:00+00') RETURNS text
LANGUAGE sql AS $$
    SELECT string_agg(to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD Dy HH24:MI:SS'), ', ')
      FROM dispatch.next_runs(s, "from", n, tz) t
$$;
SELECT s AS schedule, pg_temp.runs(s) AS next_fires FROM unnest(ARRAY[
  '* * * * *', '0 * * * *', '30 2 * * *', '0 0 1 * *', '5,10,55 * * * *', '0-2 0 * * *',
  '*/20 * * * *', '10-30/10 1 * * *', '0 0 * * 0', '0 0 * * 7', '0 0 * * mon-fri',
  '0 0 * * MON,wed', '0 0 1 jan,Jul *', '0 0 1 jan-mar *', '0 0 * * fri-sun', '0 0 * * sun-sun',
  '0 0 $ * *', '0 0 1,$ * *', '0 0 31 * *', '0 12 * * 1-5/2', '*,5 0 1 1 *',
  '@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly',
  '@DAILY', '  0 0 * * *  ', E'0\t0 * * *', '00 000 01 01 *',
  '1 seconds', '10 seconds', '59 seconds', '30 Seconds', '1 second']) s;
SELECT pg_temp.runs('@reboot') IS NULL AS reboot_never_fires_on_a_clock;
-- pg_cron's day rule: either field beginning with "*" means both must match.
SELECT pg_temp.runs('0 0 1,15 * 1', 6) AS first_fifteenth_or_monday;
SELECT pg_temp.runs('0 0 */2 * 1', 4) AS odd_mondays;
SELECT pg_temp.runs('0 0 * * 1', 2) AS mondays, pg_temp.runs('0 0 13 * 5', 4) AS thirteenth_or_friday;
-- Month ends, leap years and "$".
SELECT pg_temp.runs('0 0 31 * *', 4) AS thirty_firsts;
SELECT pg_temp.runs('0 0 29 2 *', 2) AS leap_days;
SELECT pg_temp.runs('0 0 $ 2 *', 5) AS february_ends;
SELECT pg_temp.runs('0 0 29 2 1', 2, 'UTC', '2020-01-01') AS february_29th_or_mondays;
SELECT pg_temp.runs('59 23 $ 12 *', 2, 'UTC', '2026-12-31 23:58:59+00') AS new_years_eve;
-- Strictly after "from"; fractions of a second are ignored.
SELECT pg_temp.runs('0 0 * * *', 2, 'UTC', '2026-01-01 00:00:00.5+00') AS strictly_after;
-- Daylight saving: a skipped time fires at the change, a repeated time fires once.
SELECT pg_temp.runs('30 2 * * *', 3, 'Europe/Berlin', '2026-03-28 00:00+00') AS berlin_spring;
SELECT pg_temp.runs('30 2 * * *', 3, 'Europe/Berlin', '2026-10-24 00:00+00') AS berlin_autumn;
SELECT pg_temp.runs('*/30 * * * *', 6, 'Europe/Berlin', '2026-10-25 00:00+00') AS berlin_repeated_hour;
SELECT pg_temp.runs('0 2 * * *', 3, 'America/New_York', '2026-03-07 00:00+00') AS new_york_spring;
SELECT pg_temp.runs('30 1 * * *', 3, 'America/New_York', '2026-10-31 00:00+00') AS new_york_autumn;
SELECT pg_temp.runs('30 2 * * *', 3, 'Australia/Sydney', '2026-10-03 00:00+00') AS sydney_spring;
SELECT pg_temp.runs('30 2 * * *', 3, 'Australia/Sydney', '2026-04-04 00:00+00') AS sydney_autumn;
SELECT pg_temp.runs('15 2 * * *', 2, 'Australia/Lord_Howe', '2026-10-03 00:00+00') AS lord_howe_half_hour;
SELECT pg_temp.runs('10 seconds', 3, 'Europe/Berlin', '2026-03-29 00:59:55+00') AS seconds_ignore_dst;
-- The default time zone is dispatch.timezone (UTC unless set in postgresql.conf).
SELECT pg_temp.runs('0 9 * * *', 1, NULL) = pg_temp.runs('0 9 * * *', 1, 'UTC') AS default_zone;

-- Rejected forms: pg_cron accepts some of these silently; here each is an error.
SELECT dispatch.next_runs(s, '2026-01-01', 1) FROM unnest(ARRAY['']) s;
SELECT dispatch.next_runs('   ', '2026-01-01', 1);
SELECT dispatch.next_runs('60 * * * *', '2026-01-01', 1);
SELECT dispatch.next_runs('* 24 * * *', '2026-01-01', 1);
SELECT dispatch.next_runs('* * 0 * *', '2026-01-01', 1);
SELECT dispatch.next_runs('* * 32 * *', '2026-01-01', 1);
SELECT dispatch.next_runs('* * * 0 *', '2026-01-01', 1);
SELECT dispatch.next_runs('* * * 13 *', '2026-01-01', 1);
SELECT dispatch.next_runs('* * * * 8', '2026-01-01', 1);
SELECT dispatch.next_runs('5-1 * * * *', '2026-01-01', 1);
SELECT dispatch.next_runs('* * * * 5-0', '2026-01-01', 1);
SELECT dispatch.next_runs('*/0 * * * *', '2026-01-01', 1);
SELECT dispatch.next_runs('0-10/0 * * * *', '2026-01-01', 1);
SELECT dispatch.next_runs('5/10 * * * *', '2026-01-01', 1);
SELECT dispatch.next_runs('*/61 * * * *', '2026-01-01', 1);
SELECT dispatch.next_runs('5x * * * *', '2026-01-01', 1);
SELECT dispatch.next_runs('1- * * * *', '2026-01-01', 1);
SELECT dispatch.next_runs(',5 * * * *', '2026-01-01', 1);
SELECT dispatch.next_runs('5, * * * *', '2026-01-01', 1);
SELECT dispatch.next_runs('5,,6 * * * *', '2026-01-01', 1);
SELECT dispatch.next_runs('* * * *', '2026-01-01', 1);
SELECT dispatch.next_runs('* * * * * *', '2026-01-01', 1);
SELECT dispatch.next_runs('0 0 * * * 2026', '2026-01-01', 1);
SELECT dispatch.next_runs('0 0 1 foo *', '2026-01-01', 1);
SELECT dispatch.next_runs('0 0 * * funday', '2026-01-01', 1);
SELECT dispatch.next_runs('0 0 * jan-foo *', '2026-01-01', 1);
SELECT dispatch.next_runs('$ 0 * * *', '2026-01-01', 1);
SELECT dispatch.next_runs('0 0 25-$ * *', '2026-01-01', 1);
SELECT dispatch.next_runs('0 0 * * $', '2026-01-01', 1);
SELECT dispatch.next_runs('99999 * * * *', '2026-01-01', 1);
SELECT dispatch.next_runs('@yearly 1', '2026-01-01', 1);
SELECT dispatch.next_runs('@sometimes', '2026-01-01', 1);
SELECT dispatch.next_runs('0 seconds', '2026-01-01', 1);
SELECT dispatch.next_runs('60 seconds', '2026-01-01', 1);
SELECT dispatch.next_runs('10seconds', '2026-01-01', 1);
SELECT dispatch.next_runs('10 minutes', '2026-01-01', 1);
SELECT dispatch.next_runs('-1 * * * *', '2026-01-01', 1);
-- Other arguments.
SELECT dispatch.next_runs('@daily', '2026-01-01', 0);
SELECT dispatch.next_runs('@daily', '2026-01-01', 100001);
SELECT dispatch.next_runs('@daily', 'infinity', 1);
SELECT dispatch.next_runs('@daily', '2026-01-01', 1, 'Mars/Olympus_Mons');
SELECT dispatch.next_runs(NULL, '2026-01-01', 1);
SELECT count(*) AS never FROM dispatch.next_runs('0 0 30 2 *', '2026-01-01', 5);
SELECT count(*) AS many FROM dispatch.next_runs('1 seconds', '2026-01-01', 100000);
