"""`python -m bench`: list the benchmarks; `python -m bench NAME [ARGS...]` runs one.

Every benchmark is a script in bench/ (or bench/provision/run.py for `provision`) whose
docstring says what it compares and the command that made the figures in
bench/RESULTS.md. None runs by default: each takes minutes and most need root and a
quiet machine, so choosing one is the caller's decision (`make bench B=provision
ARGS='--n 8'`).
"""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
HELPERS = {"__main__"}


def benchmarks() -> dict[str, Path]:
    found = {p.stem: p for p in sorted(HERE.glob("*.py")) if p.stem not in HELPERS}
    found["provision"] = HERE / "provision" / "run.py"
    return dict(sorted(found.items()))


def summary(script: Path) -> str:
    doc = ast.get_docstring(ast.parse(script.read_text())) or ""
    return doc.split("\n", 1)[0]


def main(argv: list[str]) -> int:
    known = benchmarks()
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m bench NAME [ARGS...]   (NAME --help: its options)\n")
        for name, script in known.items():
            print(f"  {name:16} {summary(script)}")
        print("\nFigures and the commands that made them: bench/RESULTS.md")
        return 0
    name, *rest = argv
    if name not in known:
        print(f"no benchmark called {name!r}; `python -m bench` lists them", file=sys.stderr)
        return 2
    script = known[name]
    os.execv(sys.executable, [sys.executable, str(script), *rest])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
