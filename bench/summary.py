"""One table of every benchmark's ratio against its ceiling, and the goal it is held to.

`make bench` runs each benchmark with `--json bench-results/<name>.json` and then this;
`.venv/bin/python bench/summary.py bench-results/*.json` prints the table again.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# (bench, phase prefix, database or None for both) -> the goal, as a ratio and a p99 bound.
GOALS = {
    ("ingest", "onetap", "sqlite"): (0.5, 50),
    ("ingest", "legacy", "sqlite"): (0.5, 50),
    ("ingest", "secure", "sqlite"): (0.5, 50),
    ("ingest", "onetap", "postgresql"): (0.4, 50),
    ("ingest", "legacy", "postgresql"): (0.4, 50),
    ("ingest", "secure", "postgresql"): (0.4, 50),
    ("ingest", "state 304", None): (0.8, None),
    ("ingest", "state (", None): (0.3, 50),
}
BATCH_GOAL = 20_000  # check-ins a second over HTTP, 1,000-item batches


def goal_of(row: dict) -> str:
    if row["bench"] == "ingest" and row["phase"] == "batch":
        met = row["autocheckin"] >= BATCH_GOAL
        return f"≥ {BATCH_GOAL:,}/s {'met' if met else 'NOT met'}"
    for (bench, prefix, database), (ratio, p99) in GOALS.items():
        if row["bench"] == bench and row["phase"].startswith(prefix):
            if database not in (None, row.get("database")):
                continue
            met = row["ratio"] >= ratio and (p99 is None or row.get("p99_ms", 0) < p99)
            bound = f" and p99 < {p99} ms" if p99 else ""
            return f"≥ {ratio}×{bound} {'met' if met else 'NOT met'}"
    return "—"


def main(paths: list[str]) -> None:
    rows = [row for path in paths for row in json.loads(Path(path).read_text())]
    header = ("bench", "database", "phase", "ratio", "p99 ms", "goal")
    lines = [
        (
            row["bench"],
            row.get("database", ""),
            row["phase"],
            f"{row['ratio']:.2f}×",
            f"{row['p99_ms']:.0f}" if "p99_ms" in row else "",
            goal_of(row),
        )
        for row in rows
    ]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *lines, strict=True)]
    for line in (header, *lines):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)))


if __name__ == "__main__":
    main(sys.argv[1:])
