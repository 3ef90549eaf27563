"""Summarise a py-spy `--format raw` profile: where the samples went, by function.

    .venv/bin/python -m bench.profile_summary /tmp/prof/ours-memory-fanout.txt [--top 25]

Each input line is `frame;frame;...;leaf COUNT`, a frame being `function (file:line)`. Lines
are dropped from the key so a function counts once whatever line it was on. *Inclusive* is the
share of samples with the function anywhere on the stack (counted once per stack); *self* is
the share with it as the innermost frame.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_LINE_NUMBER = re.compile(r":\d+\)$")


@dataclass(frozen=True)
class Summary:
    samples: int
    inclusive: Counter[str]
    self_time: Counter[str]


def function_key(frame: str) -> str:
    return _LINE_NUMBER.sub(")", frame.strip())


def summarise(collapsed: str) -> Summary:
    inclusive: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [function_key(frame) for frame in stack.split(";")]
        samples += count
        for key in set(frames):
            inclusive[key] += count
        self_time[frames[-1]] += count
    return Summary(samples, inclusive, self_time)


def render(summary: Summary, top: int) -> str:
    def table(title: str, counts: Counter[str]) -> list[str]:
        rows = [f"{title}:"]
        for key, count in counts.most_common(top):
            rows.append(f"  {100 * count / summary.samples:5.1f}%  {count:6d}  {key}")
        return rows

    lines = [f"samples: {summary.samples}"]
    lines += table("inclusive (anywhere on the stack)", summary.inclusive)
    lines += table("self (innermost frame)", summary.self_time)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.profile_summary", description=__doc__)
    parser.add_argument("profile", type=Path, help="py-spy record --format raw output")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    print(render(summarise(args.profile.read_text()), args.top))


if __name__ == "__main__":
    main()
