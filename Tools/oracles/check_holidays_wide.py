#!/usr/bin/env python3
"""Wider holiday check, 2000-2100, without committed fixtures: compares
`cssctl calendar holidays` with the Python `holidays` oracle year by year.

Run: swift build --product cssctl && python3 Tools/oracles/check_holidays_wide.py [path/to/cssctl]
Prints one line per differing (region, year); exit status 1 if any.
"""
import pathlib
import subprocess
import sys

import holidays

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from gen_holidays import REGIONS  # noqa: E402

cssctl = sys.argv[1] if len(sys.argv) > 1 else ".build/debug/cssctl"
bad = 0
for code, (country, subdiv) in REGIONS.items():
    oracle_all = holidays.country_holidays(country, subdiv=subdiv, years=range(1999, 2102))
    for year in range(2000, 2101):
        oracle = {d.isoformat() for d in oracle_all if d.year == year}
        out = subprocess.run([cssctl, "calendar", "holidays", "--region", code, "--year", str(year)],
                             capture_output=True, text=True, check=True).stdout
        ours = {line.split()[0] for line in out.splitlines()}
        if ours != oracle:
            bad += 1
            print(code, year, "extra", sorted(ours - oracle), "missing", sorted(oracle - ours))
print(f"{len(REGIONS)} regions x 101 years: {bad} differing region-years")
sys.exit(1 if bad else 0)
