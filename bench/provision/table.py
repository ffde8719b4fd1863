"""Markdown table of bench/provision/results.jsonl: `python bench/provision/table.py [LABEL...]`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results.jsonl"


def row(r: dict[str, object]) -> str:
    args = " ".join(str(a) for a in r["server_args"]) or "-"  # type: ignore[attr-defined]
    cells = [
        r["label"], r["n"], r["mode"], r["client"], f"{r['server_mbit']:g}", args,
        r["time_ratio"], r["median_ratio"], r["egress_ratio"], f"{r['verified']}/{r['n']}",
        "yes" if r["cpu_saturated"] else f"{r['cpu_max']}",
    ]  # fmt: skip
    return "| " + " | ".join(str(c) for c in cells) + " |"


def main() -> None:
    labels = set(sys.argv[1:])
    print("| label | N | mode | client | server Mbit/s | server options | time/limit (all) "
          "| time/limit (median) | egress/image | verified | CPU 100% |")  # fmt: skip
    print("| --- " * 11 + "|")
    for line in RESULTS.read_text().splitlines():
        r = json.loads(line)
        if not labels or r["label"] in labels:
            print(row(r))


if __name__ == "__main__":
    main()
