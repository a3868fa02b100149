"""Summarises py-spy collapsed stacks (`py-spy record --format raw`): where the samples went.

    .venv/bin/python benchmarks/profile_summary.py profile.txt [--top 25] [--focus create_purchase]

Prints the share of samples that include each function (inclusive), the functions samples ended
in (self), and a split by layer (our code, SQLAlchemy, the database driver, FastAPI/Starlette, ...).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

# First match wins, looked up against the leaf frame's file.
LAYERS = [
    ("database driver (sqlite3 / psycopg)", re.compile(r"sqlite3/|psycopg/|psycopg_binary|psycopg_c")),
    ("SQLAlchemy", re.compile(r"sqlalchemy/")),
    ("pydantic", re.compile(r"pydantic/|pydantic_core/")),
    ("FastAPI / Starlette", re.compile(r"fastapi/|starlette/")),
    ("uvicorn / asyncio / anyio", re.compile(r"uvicorn/|asyncio/|anyio/|uvloop|httptools|concurrent/")),
    ("json", re.compile(r"json/")),
    ("loyalty (our code)", re.compile(r"loyalty/")),
    ("threading / other stdlib", re.compile(r"threading\.py|queue\.py|contextlib\.py|selectors\.py")),
]
FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>.+?)(?::(?P<line>\d+))?\)$")


@dataclass(frozen=True, slots=True)
class Frame:
    function: str
    file: str

    @property
    def label(self) -> str:
        short = re.sub(r"^.*?(site-packages|lib/python3\.\d+|src)/", "", self.file)
        return f"{self.function} ({short})"


def parse_frame(text: str) -> Frame:
    match = FRAME.match(text.strip())
    if not match:
        return Frame(text.strip(), "")
    return Frame(match["func"], match["file"])


def load(path: Path) -> list[tuple[list[Frame], int]]:
    stacks = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        stacks.append(([parse_frame(f) for f in stack.split(";") if f], int(count)))
    return stacks


def layer_of(frame: Frame) -> str:
    for name, pattern in LAYERS:
        if pattern.search(frame.file):
            return name
    return "other"


def focus(stacks: list[tuple[list[Frame], int]], needle: str) -> list[tuple[list[Frame], int]]:
    """Only the stacks that pass through a frame whose label contains `needle`."""
    return [(frames, count) for frames, count in stacks if any(needle in f.label for f in frames)]


def summarise(stacks: list[tuple[list[Frame], int]], top: int) -> str:
    total = sum(count for _, count in stacks)
    if not total:
        return "0 samples"
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    for frames, count in stacks:
        for label in {f.label for f in frames}:
            inclusive[label] += count
        if frames:
            own[frames[-1].label] += count
            layers[layer_of(frames[-1])] += count
    lines = [f"{total} samples", "", "## Where samples ended (self time), by layer", "",
             "| layer | share |", "|---|---:|"]
    lines += [f"| {name} | {n / total:.1%} |" for name, n in layers.most_common()]
    lines += ["", f"## Top {top} functions by inclusive share", "", "| function | inclusive |", "|---|---:|"]
    lines += [f"| `{name}` | {n / total:.1%} |" for name, n in inclusive.most_common(top)]
    lines += ["", f"## Top {top} functions by self share", "", "| function | self |", "|---|---:|"]
    lines += [f"| `{name}` | {n / total:.1%} |" for name, n in own.most_common(top)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--focus", default=None, help="keep only stacks through a function whose label has this")
    args = parser.parse_args(argv)
    stacks = load(args.profile)
    if args.focus:
        kept = focus(stacks, args.focus)
        share = sum(c for _, c in kept) / max(1, sum(c for _, c in stacks))
        print(f"focus {args.focus!r}: {share:.1%} of all samples; shares below are of these")
        stacks = kept
    print(summarise(stacks, args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
