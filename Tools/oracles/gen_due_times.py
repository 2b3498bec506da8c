#!/usr/bin/env python3
"""Due-time oracle: an independent, deliberately simple minute-walking reference.

For thousands of random starts and durations it walks UTC time minute by minute,
asking Python's zoneinfo for the local wall-clock time of each minute and checking it
against the opening windows and the holiday set (from the `holidays` package, with
fixtures/intended_differences.json applied). Every offset, window and exclusion used
here is minute-aligned, so business status is constant within a UTC minute and the
walk is exact to the second. Writes fixtures/due_calendars.json and fixtures/due_times.jsonl.

Run: pip install -r Tools/oracles/requirements.txt && python3 Tools/oracles/gen_due_times.py
"""
import datetime as dt
import json
import multiprocessing
import pathlib
import random
from zoneinfo import ZoneInfo

import holidays

HERE = pathlib.Path(__file__).parent
FIXTURES = HERE / "fixtures"
SEED = 20260306
CASES_PER_CALENDAR = 420
YEARS = range(2019, 2037)
STD = [[wd, "08:00", "17:00"] for wd in range(5)]

# name -> definition; hours are [weekday (0 = Monday), open, close]; close <= open crosses midnight.
CALENDARS = {
    "us-ny": {"kind": "business", "timeZone": "America/New_York", "region": "US", "hours": STD},
    "ca-on": {"kind": "business", "timeZone": "America/Toronto", "region": "CA-ON", "hours": STD,
              "extraHolidays": ["2026-03-09", "2031-08-04"]},
    "gb-eng": {"kind": "business", "timeZone": "Europe/London", "region": "GB-ENG", "hours": STD},
    "de": {"kind": "business", "timeZone": "Europe/Berlin", "region": "DE", "hours": STD},
    "fr": {"kind": "business", "timeZone": "Europe/Paris", "region": "FR", "hours": STD},
    "nl": {"kind": "business", "timeZone": "Europe/Amsterdam", "region": "NL", "hours": STD},
    "au-nsw": {"kind": "business", "timeZone": "Australia/Sydney", "region": "AU-NSW", "hours": STD},
    "in-kolkata": {"kind": "business", "timeZone": "Asia/Kolkata", "region": None, "hours": STD,
                   "extraHolidays": ["2026-01-26", "2026-08-15", "2026-10-02", "2030-01-25"]},
    "lord-howe": {"kind": "business", "timeZone": "Australia/Lord_Howe", "region": "AU-NSW", "hours": STD},
    # Windows that DST transitions cut into: nights crossing midnight and early-morning shifts.
    "london-nights": {"kind": "business", "timeZone": "Europe/London", "region": "GB-ENG",
                      "hours": [[wd, "22:00", "06:00"] for wd in range(5)] + [[5, "10:00", "14:00"]]},
    "ny-early": {"kind": "business", "timeZone": "America/New_York", "region": "US",
                 "hours": [[wd, "00:30", "03:30"] for wd in range(7)] + [[wd, "09:00", "12:00"] for wd in range(5)]},
    "lord-howe-full": {"kind": "business", "timeZone": "Australia/Lord_Howe", "region": "AU-NSW",
                       "hours": [[wd, "00:00", "24:00"] for wd in range(6)]},
    "sydney-24x7": {"kind": "24x7", "timeZone": "Australia/Sydney", "region": "AU-NSW", "hours": None},
    "ny-24x7": {"kind": "24x7", "timeZone": "America/New_York", "region": "US", "hours": None},
}

ORACLE_REGIONS = {"US": ("US", None), "CA-ON": ("CA", "ON"), "GB-ENG": ("GB", "ENG"), "DE": ("DE", None),
                  "FR": ("FR", None), "NL": ("NL", None), "AU-NSW": ("AU", "NSW")}


def parse_hm(s):
    h, m = s.split(":")
    return int(h) * 3600 + int(m) * 60


def holiday_set(cal):
    if cal["kind"] != "business":
        return set()
    days = set()
    if cal["region"]:
        country, subdiv = ORACLE_REGIONS[cal["region"]]
        days |= set(holidays.country_holidays(country, subdiv=subdiv, years=YEARS).keys())
        diffs = json.loads((FIXTURES / "intended_differences.json").read_text())["differences"]
        for d in diffs:
            if d["region"] == cal["region"]:
                day = dt.date.fromisoformat(d["date"])
                (days.add if d["kind"] == "extra" else days.discard)(day)
    days |= {dt.date.fromisoformat(s) for s in cal.get("extraHolidays", [])}
    return days


class Reference:
    def __init__(self, cal):
        self.zone = ZoneInfo(cal["timeZone"])
        self.holidays = holiday_set(cal)
        hours = cal["hours"] if cal["hours"] is not None else [[wd, "00:00", "24:00"] for wd in range(7)]
        self.windows = [(wd, parse_hm(o), parse_hm(c)) for wd, o, c in hours]

    def is_business(self, t, exclusions):
        for a, b in exclusions:
            if a <= t < b:
                return False
        local = dt.datetime.fromtimestamp(t, tz=self.zone)
        day = local.date()
        tod = local.hour * 3600 + local.minute * 60 + local.second
        yesterday = day - dt.timedelta(days=1)
        for wd, o, c in self.windows:
            if c > o:
                if day.weekday() == wd and o <= tod < c and day not in self.holidays:
                    return True
            else:  # crosses midnight: belongs to the day it opens on
                if day.weekday() == wd and tod >= o and day not in self.holidays:
                    return True
                if yesterday.weekday() == wd and tod < c and yesterday not in self.holidays:
                    return True
        return False

    def walk(self, start, seconds, probe, exclusions):
        """Due time for `seconds` business seconds from `start`, and business seconds in [start, probe)."""
        bounds = sorted({x for ab in exclusions for x in ab})
        t, remaining, used, at_probe = start, seconds, 0, None
        while True:
            nxt = (t // 60 + 1) * 60
            for x in bounds:
                if t < x < nxt:
                    nxt = x
                    break
            if at_probe is None and probe < nxt:
                at_probe = used + (min(probe - t, remaining) if self.is_business(t, exclusions) else 0)
            if self.is_business(t, exclusions):
                take = min(remaining, nxt - t)
                remaining -= take
                used += take
                t += take
                if remaining == 0:
                    if at_probe is None:
                        at_probe = used
                    return t, at_probe
            else:
                t = nxt


def transitions(zone_name, lo, hi):
    """UTC instants where the zone's offset changes, found by hourly sampling then bisection."""
    zone = ZoneInfo(zone_name)
    off = lambda t: dt.datetime.fromtimestamp(t, tz=zone).utcoffset()
    out, t = [], lo
    while t < hi:
        if off(t) != off(t + 3600):
            a, b = t, t + 3600
            while b - a > 1:
                m = (a + b) // 2
                (a, b) = (m, b) if off(m) == off(a) else (a, m)
            out.append(b)
        t += 3600
    return out


def make_cases(name):
    cal = CALENDARS[name]
    rng = random.Random(f"{SEED}-{name}")
    ref = Reference(cal)
    lo = int(dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc).timestamp())
    hi = int(dt.datetime(2035, 6, 1, tzinfo=dt.timezone.utc).timestamp())
    trans = transitions(cal["timeZone"], lo, hi)
    rows = []
    for i in range(CASES_PER_CALENDAR):
        r = rng.random()
        if trans and r < 0.4:
            start = rng.choice(trans) + rng.randint(-4 * 86400, 2 * 86400)
        elif r < 0.55:
            # Exactly on a minute: openings, closings and the seconds before them.
            start = rng.randint(lo, hi) // 3600 * 3600 + rng.choice([0, 0, -1, 1, 1800])
        else:
            start = rng.randint(lo, hi)
        seconds = rng.choice([3600, 7200, 14400, 28800, 43200, 172800, rng.randint(1, 60 * 3600), rng.randint(1, 900)])
        exclusions = []
        if rng.random() < 0.25:
            for _ in range(rng.randint(1, 3)):
                a = (start + rng.randint(-86400, 5 * 86400)) // 60 * 60
                exclusions.append([a, a + rng.randint(1, 48 * 60) * 60])
        probe = start + rng.randint(0, 8 * 86400)
        due, between = ref.walk(start, seconds, probe, exclusions)
        if probe > due:  # the walk stops at the due time; measure the rest separately
            between = None
        row = {"cal": name, "start": start, "seconds": seconds, "due": due,
               "business": ref.is_business(start, exclusions)}
        if exclusions:
            row["excluded"] = exclusions
        if between is not None:
            row["probe"] = probe
            row["between"] = between
        rows.append(row)
    return rows


def main():
    FIXTURES.mkdir(exist_ok=True)
    (FIXTURES / "due_calendars.json").write_text(json.dumps(
        {"generator": f"minute-walking reference, zoneinfo + holidays {holidays.__version__}", "seed": SEED,
         "calendars": CALENDARS}, indent=1) + "\n")
    with multiprocessing.Pool(2) as pool:
        results = pool.map(make_cases, list(CALENDARS))
    with open(FIXTURES / "due_times.jsonl", "w") as f:
        for rows in results:
            for row in rows:
                f.write(json.dumps(row, separators=(",", ":")) + "\n")
    print(f"wrote {sum(map(len, results))} cases")


if __name__ == "__main__":
    main()
