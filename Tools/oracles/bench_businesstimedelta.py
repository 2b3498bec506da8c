#!/usr/bin/env python3
"""Times the same due-time cases with the `businesstimedelta` package.

Usage: bench_businesstimedelta.py CASES.jsonl RESULTS.jsonl
Each case: {"timeZone", "region", "start" (Unix s), "seconds"}; Monday–Friday 08:00–17:00
with the region's holidays from the `holidays` package. Writes one {"due": Unix s} per case
and prints {"cases": n, "elapsed": seconds} (computation only, setup excluded).
"""
import datetime as dt
import json
import sys
import time

import businesstimedelta
import holidays
import pytz

ORACLE_REGIONS = {"US": ("US", None), "CA-ON": ("CA", "ON"), "GB-ENG": ("GB", "ENG"), "DE": ("DE", None),
                  "FR": ("FR", None), "NL": ("NL", None), "AU-NSW": ("AU", "NSW")}


def rules_for(zone, region):
    tz = pytz.timezone(zone)
    workday = businesstimedelta.WorkDayRule(start_time=dt.time(8), end_time=dt.time(17), working_days=[0, 1, 2, 3, 4], tz=tz)
    rules = [workday]
    if region:
        country, subdiv = ORACLE_REGIONS[region]
        days = set(holidays.country_holidays(country, subdiv=subdiv, years=range(2025, 2030)).keys())
        rules.append(businesstimedelta.HolidayRule(days, tz=tz))
    return businesstimedelta.Rules(rules)


def main():
    cases = [json.loads(line) for line in open(sys.argv[1])]
    rules = {}
    prepared = []
    for c in cases:
        key = (c["timeZone"], c.get("region"))
        if key not in rules:
            rules[key] = rules_for(*key)
        prepared.append((rules[key], dt.datetime.fromtimestamp(c["start"], tz=pytz.utc), c["seconds"]))
    deltas = {}
    results = []
    t0 = time.perf_counter()
    for rule, start, seconds in prepared:
        delta = deltas.get((id(rule), seconds))
        if delta is None:
            delta = deltas[(id(rule), seconds)] = businesstimedelta.BusinessTimeDelta(rule, seconds=seconds)
        results.append(start + delta)
    elapsed = time.perf_counter() - t0
    with open(sys.argv[2], "w") as f:
        for r in results:
            f.write(json.dumps({"due": int(r.timestamp())}) + "\n")
    print(json.dumps({"cases": len(results), "elapsed": elapsed}))


if __name__ == "__main__":
    main()
