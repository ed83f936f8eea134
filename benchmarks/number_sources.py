"""Every measured number in README.md and docs/*.md, and the `results/` record it comes from.

A number with a unit of measurement (%, points, s, min, h, img/s, nats, GiB, MB, x, a ± spread or a [lo, hi]
interval) must sit in a paragraph that links a `results/` file (or names one as a `results/...` path); a table
counts the paragraph above it, a heading the paragraph below it. What is a setting or an example rather than a
measurement is listed in `NOT_MEASURED` with the reason. Fenced code blocks are skipped (commands, printed output).

    python -m benchmarks.number_sources          # every number and its source; exit 1 if one has none
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NUMBER = re.compile(
    r"(?<![\w.×-])[-+~≈]?\d[\d,]*(?:\.\d+)?\s?(?:%|points?\b|ms\b|s\b|min\b|h\b|hours?\b|img/s|images/s|nats\b|GiB\b"
    r"|MB\b|x\b|CPU-s\b)|±\s?\d[\d.]*|\[\s?[-+]?\d+\.\d+, [-+]?\d+\.\d+\]"
)
LINK = re.compile(r"(?:\]\((?:\.\./)?|`)(results/[^)`\s#]*)")  # a Markdown link or a `results/...` path
NOT_MEASURED = {  # text on the line -> why its number is not a measurement
    "up to 60 s *early*": "SLURM's documented signal window (sbatch(1))",
    "with its 95% t interval": "what the report computes (a setting of the statistics)",
    "0.3 points at 80% power": "the report's default power target (--power-delta)",
    "(default 0.003 = 0.3 points) at 80% power": "the report's default power target (--power-delta)",
    "412 img/s  elapsed 0:04:51": "an example of the progress line's format",
    "classes with ≥1 % of the samples": "a threshold of the GAN score (a setting)",
    "64x lr for BatchNorm biases": "airbench94's setting, not a measurement",
    "within 0.05 nats": "a tolerance of the test named in the same row",
    "half-width (95% interval) is at most": "the stopping rule's target, a setting (--target-halfwidth)",
}


@dataclass(frozen=True)
class Number:
    file: str
    line: int
    text: str
    source: str | None  # the results/ path its paragraph links, or why it is not a measurement


def blocks(text: str) -> list[tuple[int, list[str]]]:
    """Paragraphs, tables and headings outside code fences, each with its first line number."""
    out: list[tuple[int, list[str]]] = []
    current: list[str] = []
    start, fence = 0, False
    for i, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            fence = not fence
            current = _flush(out, start, current)
            continue
        if fence or not line.strip() or line.startswith("#"):
            current = _flush(out, start, current)
            if line.startswith("#") and not fence:
                out.append((i, [line]))
            continue
        if not current:
            start = i
        current.append(line)
    _flush(out, start, current)
    return out


def _flush(out: list, start: int, current: list[str]) -> list[str]:
    if current:
        out.append((start, current))
    return []


def numbers(path: Path) -> list[Number]:
    found = []
    parts = blocks(path.read_text())
    for k, (start, lines) in enumerate(parts):
        context = lines[:]
        if lines[0].startswith("|") and k > 0:
            context += parts[k - 1][1]
        if lines[0].startswith("#") and k + 1 < len(parts):
            context += parts[k + 1][1]
        links = LINK.findall("\n".join(context))
        for offset, line in enumerate(lines):
            for match in NUMBER.finditer(line):
                reason = next((why for text, why in NOT_MEASURED.items() if text in line), None)
                source = links[0] if links else reason
                name = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
                found.append(Number(name, start + offset, match.group(0).strip(), source))
    return found


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def main() -> int:
    every = [n for doc in documents() for n in numbers(doc)]
    for n in every:
        print(f"{n.file}:{n.line}: {n.text!r} <- {n.source or 'NO SOURCE'}")
    missing = [n for n in every if n.source is None]
    print(f"{len(every)} numbers, {len(missing)} without a source", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
