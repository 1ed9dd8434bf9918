#!/usr/bin/python3
"""croniter_compare.py: compares tests/cron_next (cron.c) with python3-croniter.

    /usr/bin/python3 tests/croniter_compare.py ./tests/cron_next

Generates a few hundred schedules from a fixed seed (numbers, ranges, lists, steps,
month and day names, macros; never "$", which croniter spells "L" and handles its
own way), asks both for the next 20 fire times from a few start instants in UTC and
in Europe/Berlin, and compares.  Exits 1 on any difference it cannot explain.

croniter differs from pg_cron in three places, each handled below where it arises
and counted in the summary line:
  * the day-of-month / day-of-week rule: pg_cron ANDs the two when either field
    begins with '*' ("*/2" included) and ORs them otherwise; croniter ORs them
    whenever neither field expands to every value.  croniter is asked to AND
    (day_or=False) where pg_cron does;
  * hence also a field that lists every value without beginning with '*' ("1-31",
    "0-6"): pg_cron ORs it with the other, so every day matches, while croniter
    reads it as '*' and keeps only the other field.  croniter gets '*' for both;
  * daylight saving: given an aware start, croniter shifts a fire time by the
    difference between the UTC offsets at the start and at the fire time (from
    2023-10-28 23:00 UTC, "@yearly" in Berlin gives 2024-01-01 01:00 CET), and
    more near a change.  So in Europe/Berlin croniter runs on naive wall-clock
    time, the calendar it is good at, and its wall-clock times are put on the time
    line by cron.c's documented rule (a skipped time fires at the change, a
    repeated one at its first occurrence) using zoneinfo.  The summary counts the
    runs where aware croniter would differ, and those that met a skipped or
    repeated wall-clock time.
"""
import collections
import concurrent.futures
import datetime
import os
import random
import subprocess
import sys
import zoneinfo

from croniter import croniter, CroniterBadDateError

SEED = 20240531
NEXPR = 300
NFIRES = 20
ZONES = ("UTC", "Europe/Berlin")
STARTS = (
    946684799,      # 1999-12-31 23:59:59 UTC: a century that is a leap year
    1698534000,     # 2023-10-28 23:00:00 UTC: two hours before Berlin's clocks go back
    1711715696,     # 2024-03-29 12:34:56 UTC: a leap year; Berlin's clocks go forward in 2 days
)
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
FIELDS = ((0, 59, None), (0, 23, None), (1, 31, None), (1, 12, MONTHS), (0, 7, DAYS))
MACROS = ["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"]


def spell(rng, v, field):
    """Returns value v of field as a number or, sometimes, its name."""
    lo, _, names = FIELDS[field]
    if names and rng.random() < 0.5 and v - lo < len(names):
        name = names[v - lo]
        return name.upper() if rng.random() < 0.2 else name
    return str(v)


def item(rng, field):
    """Returns one random list item of field: a number, a range or a step."""
    lo, hi, _ = FIELDS[field]
    kind = rng.choice(["number", "number", "range", "star-step", "range-step"])
    if kind == "number":
        return spell(rng, rng.randint(lo, hi), field)
    if kind == "star-step":
        return "*/%d" % rng.randint(1, hi // 2 + 1)
    a = rng.randint(lo, hi)
    b = rng.randint(a, hi)
    text = "%s-%s" % (spell(rng, a, field), spell(rng, b, field))
    if kind == "range-step":
        text += "/%d" % rng.randint(1, max(1, (b - a) // 2 + 1))
    return text


def field_text(rng, field):
    """Returns a random field: '*', one item, or a list of items."""
    r = rng.random()
    if r < 0.35:
        return "*"
    if r < 0.7:
        return item(rng, field)
    return ",".join(item(rng, field) for _ in range(rng.randint(2, 4)))


def schedules():
    """Returns the schedules to compare, the same on every run."""
    rng = random.Random(SEED)
    out = list(MACROS)
    while len(out) < NEXPR:
        out.append(rng.choice([" ", "  ", "\t"]).join(field_text(rng, f) for f in range(5)))
    return out


def for_croniter(text):
    """Returns (expression, day_or, reason) making croniter follow pg_cron's day rule."""
    if text.startswith("@"):
        return text, True, None
    fields = text.split()
    expanded = croniter.expand(" ".join(fields))[0]
    star_dom = expanded[2][0] == "*"   # croniter reads the field as every day
    star_dow = expanded[4][0] == "*"
    if fields[2].startswith("*") or fields[4].startswith("*"):
        if not star_dom and not star_dow:
            # pg_cron ANDs ("*/2" begins with '*'), croniter would OR: ask it to AND.
            return text, False, "a '*' step ANDs the day fields"
        return text, True, None
    if star_dom or star_dow:
        # pg_cron ORs a field listing every value with the other: every day matches.
        fields[2] = fields[4] = "*"
        return " ".join(fields), True, "a list of every day ORs to every day"
    return text, True, None


def ours(cli, text, start, zone):
    """Returns cron_next's fire times (epoch seconds, None for "never")."""
    run = subprocess.run([cli, text, str(start), str(NFIRES), zone],
                         capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise RuntimeError("cron_next %r failed: %s" % (text, run.stderr.strip()))
    return [None if line == "never" else int(line) for line in run.stdout.split()]


def croniters(expr, day_or, start, tz):
    """Returns croniter's fire times from start in tz, None ending a list that stops."""
    it = croniter(expr, datetime.datetime.fromtimestamp(start, tz), day_or=day_or)
    out = []
    while len(out) < NFIRES:
        try:
            out.append(int(it.get_next(float)))
        except CroniterBadDateError:
            out.append(None)
            break
    return out


def wall_to_utc(wall, tz):
    """Returns the instant cron.c fires naive wall-clock time wall in tz: its first
    occurrence, or the end of the daylight saving gap that skips it."""
    valid = [t for t in (wall.replace(tzinfo=tz, fold=f).timestamp() for f in (0, 1))
             if datetime.datetime.fromtimestamp(t, tz).replace(tzinfo=None) == wall]
    if valid:
        return int(min(valid))
    lo, hi = sorted(int(wall.replace(tzinfo=tz, fold=f).timestamp()) for f in (0, 1))
    while hi - lo > 1:     # the gap: first instant whose wall-clock time is past wall
        mid = (lo + hi) // 2
        if datetime.datetime.fromtimestamp(mid, tz).replace(tzinfo=None) >= wall:
            hi = mid
        else:
            lo = mid
    return hi


def croniter_walls(expr, day_or, start, tz, met):
    """Returns the fire times by croniter's wall-clock times (naive, so without its
    daylight saving handling) put on the time line by cron.c's rule; sets met[0]
    when one of them was skipped or repeated by a daylight saving change."""
    wall = datetime.datetime.fromtimestamp(start, tz).replace(tzinfo=None)
    it = croniter(expr, wall, day_or=day_or)
    out, last = [], start
    while len(out) < NFIRES:
        try:
            w = it.get_next(datetime.datetime)
        except CroniterBadDateError:
            out.append(None)
            break
        t = wall_to_utc(w, tz)
        met[0] |= (w.replace(tzinfo=tz, fold=0).utcoffset() !=
                   w.replace(tzinfo=tz, fold=1).utcoffset())
        if t > last:       # a skipped hour's times fire once, at the change
            out.append(t)
            last = t
    return out


def compare(cli, text):
    """Compares one schedule everywhere; returns (adjustments, problems)."""
    expr, day_or, reason = for_croniter(text)
    adjusted, problems = collections.Counter(), []
    if reason:
        adjusted[reason] += 1
    for zone in ZONES:
        tz = zoneinfo.ZoneInfo(zone)
        for start in STARTS:
            got = ours(cli, text, start, zone)
            want = croniters(expr, day_or, start, tz)
            if zone != "UTC":
                # croniter's own daylight saving handling, see the top of the file.
                met = [False]
                aware, want = want, croniter_walls(expr, day_or, start, tz, met)
                adjusted["runs where aware croniter differs"] += aware != want
                adjusted["runs meeting a skipped or repeated time"] += met[0]
            if got != want:
                problems.append("%r from %d in %s (croniter %r):\n  ours     %s\n  croniter %s"
                                % (text, start, zone, expr, got, want))
    return adjusted, problems


def main():
    cli = sys.argv[1] if len(sys.argv) > 1 else "./tests/cron_next"
    texts = schedules()
    adjusted, problems = collections.Counter(), []
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for adj, probs in pool.map(lambda t: compare(cli, t), texts):
            adjusted.update(adj)
            problems.extend(probs)
    for p in problems[:10]:
        print("MISMATCH " + p, file=sys.stderr)
    day_rule = [k for k in sorted(adjusted) if not k.startswith("runs")]
    print("%d expressions compared, 0 skipped, %d adjusted to pg_cron's day rule (%s); "
          "%d runs of %d fires each; in %s, %d runs where aware croniter differs and %d "
          "meeting a skipped or repeated time; %d unexplained mismatches"
          % (len(texts), sum(adjusted[k] for k in day_rule),
             ", ".join("%s: %d" % (k, adjusted[k]) for k in day_rule),
             len(texts) * len(ZONES) * len(STARTS), NFIRES, ZONES[1],
             adjusted["runs where aware croniter differs"],
             adjusted["runs meeting a skipped or repeated time"], len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
