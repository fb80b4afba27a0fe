"""Copy the latest DESIGN §6 table from bench/results/latest.md into README.md's Performance section.

.venv/bin/python bench/readme_section.py      (run after `make bench`)
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def main() -> None:
    latest = (ROOT / "bench" / "results" / "latest.md").read_text()
    header = latest.split("\n## ", 1)[0].strip().splitlines()
    facts = "\n\n".join(line for line in header[1:] if line.strip())
    table = re.search(r"## DESIGN §6 figures\n\n(.*?)\n\n", latest, re.S).group(1)
    section = f"{START}\n{facts}\n\n{table}\n\n![latency, throughput and scale-out](bench/results/latest.png)\n{END}"
    readme = (ROOT / "README.md").read_text()
    readme = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: section, readme, flags=re.S)
    (ROOT / "README.md").write_text(readme)


if __name__ == "__main__":
    main()
