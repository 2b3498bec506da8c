#!/usr/bin/env python3
"""Holiday oracle: writes fixtures/holidays.json from the Python `holidays` package.

Development-time only; the Swift library never depends on it.
Run: pip install -r Tools/oracles/requirements.txt && python3 Tools/oracles/gen_holidays.py
"""
import json
import pathlib

import holidays

YEARS = range(2020, 2036)
# region code -> (country, subdivision)
REGIONS = {
    "US": ("US", None),
    "CA-ON": ("CA", "ON"),
    "GB-ENG": ("GB", "ENG"),
    "DE": ("DE", None),
    "FR": ("FR", None),
    "NL": ("NL", None),
    "AU-NSW": ("AU", "NSW"),
}
for state in ["BB", "BE", "BW", "BY", "HB", "HE", "HH", "MV", "NI", "NW", "RP", "SH", "SL", "SN", "ST", "TH"]:
    REGIONS[f"DE-{state}"] = ("DE", state)


def main():
    out = {"generator": f"holidays {holidays.__version__}", "years": [YEARS[0], YEARS[-1]], "regions": {}}
    for code, (country, subdiv) in REGIONS.items():
        cal = holidays.country_holidays(country, subdiv=subdiv, years=YEARS, language="en_US")
        rows = []
        for day, name in sorted(cal.items()):
            if YEARS[0] <= day.year <= YEARS[-1]:
                rows.append([day.isoformat(), name])
        out["regions"][code] = rows
    path = pathlib.Path(__file__).parent / "fixtures" / "holidays.json"
    text = json.dumps(out, indent=0, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")
    print(f"wrote {path} ({len(text)} bytes)")


if __name__ == "__main__":
    main()
