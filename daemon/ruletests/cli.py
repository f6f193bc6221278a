"""`tickwatch test` and `python -m daemon.ruletests`: run test files, print, exit 0/1/2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TextIO

from daemon.ruletests.load import ConfigCache, _display, load_suite
from daemon.ruletests.report import render_result
from daemon.ruletests.run import run_suite

__all__ = ["EXIT_FAILED", "EXIT_INVALID", "EXIT_OK", "main"]

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def _test_files(paths: Iterable[str]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        path = Path(p)
        try:
            if path.is_dir():
                out += sorted(q for q in path.iterdir() if q.suffix in (".yaml", ".yml"))
                continue
        except OSError:  # an unreadable directory: load_suite says why
            pass
        out.append(path)
    return out


def main(
    paths: list[str],
    *,
    out: TextIO | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """Run rule tests; exit 0 all passed, 1 a test failed, 2 a test file or config is invalid.

    `out` defaults to `sys.stdout` at call time (so captured output works in tests). Every
    valid file runs even when another is invalid, so one run reports everything.
    """
    out = sys.stdout if out is None else out
    files = _test_files(paths)
    if not files:
        print(
            "tickwatch test: no test files given (e.g. tickwatch test rules/tests/*.yaml)", file=out
        )
        return EXIT_INVALID
    configs: ConfigCache = {}
    reported: set[Path] = set()
    passed = failed = invalid = 0
    for path in files:
        try:
            suite, problems = load_suite(path, env=env, configs=configs, reported=reported)
        except Exception as e:  # a tickwatch bug: still exit 2 with the file named, not a traceback
            suite, problems = (
                None,
                [
                    f"{_display(path)}: internal error while reading this test file "
                    f"({type(e).__name__}: {e}); please report it as a tickwatch bug, with the file"
                ],
            )
        if suite is None:
            invalid += 1
            for line in problems:
                print(line, file=out)
            continue
        for result in run_suite(suite):
            if result.passed:
                passed += 1
            else:
                failed += 1
            for line in render_result(result):
                print(line, file=out)
    print(f"{passed} passed, {failed} failed", file=out)
    if invalid:
        print(
            f"{invalid} test file{'s' * (invalid != 1)} invalid: fix the problems above", file=out
        )
        return EXIT_INVALID
    return EXIT_FAILED if failed else EXIT_OK


def _cli(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m daemon.ruletests",
        description="Run rule unit tests (the file format: daemon.ruletests' docstring).",
    )
    parser.add_argument("paths", nargs="+", help="test files, or directories of them")
    args = parser.parse_args(argv)
    return main(list(args.paths))
