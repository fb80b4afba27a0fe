"""Print what `mutmut run` found, per mutated module: killed / survived / total, and the survivors.

Run from the repository root after `mutmut run` (``make mutation`` does both). The modules are
mutmut's ``only_mutate`` list in setup.cfg. A survivor is printed as ``file:line``, the original
line and the mutated line, so one can judge whether it is equivalent (no test could tell it
apart) or a missing test. Survivors judged equivalent are listed, with the reason, in
scripts/mutation_equivalent.txt; they are shown apart and left out of the "non-equivalent" rate.

Statuses: *killed* (a test failed, or the mutant hung past mutmut's timeout), *survived* (the
tests that run the mutated function all passed), *not run* (no fast test calls the function:
it is guarded by live tests only, if at all). Survived and not-run mutants both count against
the kill rate.

Exit status: 0 when every module's non-equivalent kill rate is at least ``--target`` percent
(default 0, i.e. report only), 1 otherwise.
"""

from __future__ import annotations

import argparse
import ast
import configparser
import fnmatch
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from mutmut.configuration import config
from mutmut.mutation.data import SourceFileMutationData
from mutmut.mutation.diff_apply import get_diff_for_mutant
from mutmut.stats import status_by_exit_code

EQUIVALENT_FILE = Path(__file__).with_name("mutation_equivalent.txt")


@dataclass(frozen=True, slots=True)
class Mutant:
    name: str
    status: str
    path: str
    line: int
    function: str
    before: str
    after: str


@dataclass(frozen=True, slots=True)
class Equivalent:
    path: str
    before: str
    after: str
    reason: str


def load_equivalents(path: Path = EQUIVALENT_FILE) -> list[Equivalent]:
    """Blocks of ``<file>: <reason>`` / ``- <original line>`` / ``+ <mutated line>``, blank-line separated."""
    if not path.exists():
        return []
    found: list[Equivalent] = []
    for block in path.read_text("utf-8").split("\n\n"):
        lines = [line for line in block.splitlines() if line.strip() and not line.startswith("#")]
        if not lines:
            continue
        if len(lines) != 3 or not lines[1].startswith("-") or not lines[2].startswith("+"):
            raise SystemExit(f"{path}: malformed entry (want '<file>: reason', '- line', '+ line'):\n{block}")
        where, _, reason = lines[0].partition(":")
        found.append(Equivalent(where.strip(), lines[1][1:].strip(), lines[2][1:].strip(), reason.strip()))
    return found


def load_out_of_scope(path: Path = Path("setup.cfg")) -> list[tuple[str, str]]:
    """``(file, function pattern)`` pairs from setup.cfg's ``[mutation_report] out_of_scope``."""
    parser = configparser.ConfigParser()
    parser.read(path)
    lines = parser.get("mutation_report", "out_of_scope", fallback="").splitlines()
    return [tuple(line.split(None, 1)) for line in lines if line.strip()]  # type: ignore[misc]


def _status(exit_code: int | None) -> str:
    status = status_by_exit_code[exit_code]
    if status in ("killed", "timeout", "caught by type check"):
        return "killed"
    if status == "no tests":
        return "not run"
    return status  # survived, skipped, suspicious, segfault, not checked


def _function_lines(source: str) -> dict[str, tuple[int, int]]:
    """``name -> (first line, last line)`` of every function and method (methods as ``Class.name``)."""
    spans: dict[str, tuple[int, int]] = {}

    def visit(node: ast.AST, owner: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                spans[owner + child.name] = (child.lineno, child.end_lineno or child.lineno)
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{owner}{child.name}.")

    visit(ast.parse(source), "")
    return spans


def _function_of(mutant_name: str) -> str:
    """``gateway.limits.xǁKeyLimitsThrottleǁadmit__mutmut_3`` -> ``KeyLimitsThrottle.admit``."""
    tail = mutant_name.rpartition(".")[2].rpartition("__mutmut_")[0]
    if tail.startswith("xǁ"):
        _, cls, method = tail.split("ǁ", 2)
        return f"{cls}.{method}"
    return tail.removeprefix("x_")


def _changed_lines(diff: str) -> tuple[list[str], list[str]]:
    removed = [line[1:].strip() for line in diff.splitlines() if line.startswith("-") and not line.startswith("---")]
    added = [line[1:].strip() for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    return removed, added


def _line_number(source_lines: list[str], span: tuple[int, int] | None, removed: str) -> int:
    """The line of the function's span whose text is the first removed line (its start if none is)."""
    if span is None:
        return 0
    for number in range(span[0], span[1] + 1):
        if source_lines[number - 1].strip() == removed:
            return number
    return span[0]


def collect(module: str) -> list[Mutant]:
    path = Path(module)
    data = SourceFileMutationData(path=path)
    data.load()
    source = path.read_text("utf-8")
    source_lines = source.splitlines()
    spans = _function_lines(source)
    mutants = []
    for name, exit_code in sorted(data.exit_code_by_key.items(), key=lambda item: _natural(item[0])):
        status = _status(exit_code)
        function = _function_of(name)
        before = after = ""
        line = spans.get(function, (0, 0))[0]
        if status not in ("killed", "not run"):
            removed, added = _changed_lines(get_diff_for_mutant(name, path=path))
            line = _line_number(source_lines, spans.get(function), removed[0] if removed else "")
            before, after = " ".join(removed), " ".join(added)
        mutants.append(Mutant(name, status, module, line, function, before, after))
    return mutants


def _natural(name: str) -> tuple[str, int]:
    head, _, number = name.rpartition("__mutmut_")
    return head, int(number) if number.isdigit() else 0


def _is_equivalent(mutant: Mutant, equivalents: list[Equivalent]) -> Equivalent | None:
    for entry in equivalents:
        if entry.path == mutant.path and entry.before == mutant.before and entry.after == mutant.after:
            return entry
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", type=float, default=0.0, help="minimum non-equivalent kill rate, percent")
    parser.add_argument("modules", nargs="*", help="report only these (default: setup.cfg's only_mutate)")
    args = parser.parse_args()
    modules = args.modules or config().only_mutate
    equivalents = load_equivalents()
    out_of_scope = load_out_of_scope()

    rows = []
    details = []
    failing = []
    for module in modules:
        mutants = collect(module)
        patterns = [pattern for where, pattern in out_of_scope if where == module]
        scoped_out = Counter(m.function for m in mutants if any(fnmatch.fnmatch(m.function, p) for p in patterns))
        mutants = [m for m in mutants if m.function not in scoped_out]
        counts = Counter(m.status for m in mutants)
        equivalent = [(m, e) for m in mutants if m.status == "survived" and (e := _is_equivalent(m, equivalents))]
        equivalent_names = {m.name for m, _ in equivalent}
        survivors = [m for m in mutants if m.status not in ("killed", "not run") and m.name not in equivalent_names]
        not_run = [m for m in mutants if m.status == "not run"]
        total = len(mutants)
        rate = 100.0 * counts["killed"] / total if total else 0.0
        real = total - len(equivalent)
        real_rate = 100.0 * counts["killed"] / real if real else 100.0
        if real_rate < args.target:
            failing.append(module)
        rows.append((module, counts["killed"], len(survivors), len(not_run), len(equivalent), total, rate, real_rate))
        details.append((module, survivors, not_run, equivalent, scoped_out))

    header = ("module", "killed", "survived", "not run", "equivalent", "total", "kill rate", "non-equiv.")
    width = max(len(header[0]), *(len(r[0]) for r in rows))
    print(f"{header[0]:<{width}}  " + "  ".join(f"{h:>10}" for h in header[1:]))
    for module, killed, survived, not_run, equivalent, total, rate, real_rate in rows:
        print(
            f"{module:<{width}}  {killed:>10}  {survived:>10}  {not_run:>10}  {equivalent:>10}  {total:>10}"
            f"  {rate:>9.1f}%  {real_rate:>9.1f}%"
        )

    for module, survivors, not_run, equivalent, scoped_out in details:
        if not (survivors or not_run or equivalent or scoped_out):
            continue
        print(f"\n== {module}")
        if scoped_out:
            print(f"  out of scope (setup.cfg [mutation_report]), not counted: {sum(scoped_out.values())} mutants of")
            print("    " + ", ".join(sorted(scoped_out)))
        for m in survivors:
            tag = "" if m.status == "survived" else f" [{m.status}]"
            print(f"{m.path}:{m.line}  {m.function}{tag}  ({m.name})\n    - {m.before}\n    + {m.after}")
        if not_run:
            by_function = Counter(m.function for m in not_run)
            lines = {m.function: m.line for m in not_run}
            print("  not run by any fast test:")
            for function, count in sorted(by_function.items(), key=lambda item: lines[item[0]]):
                print(f"    {module}:{lines[function]}  {function}  ({count} mutants)")
        if equivalent:
            print("  equivalent (scripts/mutation_equivalent.txt):")
            for m, entry in equivalent:
                print(f"    {m.path}:{m.line}  {m.function}: {entry.reason}\n      - {m.before}\n      + {m.after}")
    if failing:
        print(f"\nBelow the {args.target:g} % target: {', '.join(failing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
