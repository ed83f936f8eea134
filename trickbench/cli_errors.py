"""How the training CLI reports a mistake: one line that ends the output (no usage dump, no traceback unless
TRICKBENCH_DEBUG=1), with the reason jsonargparse buried in its union report pulled out."""

from __future__ import annotations

import os
import sys
from typing import Any, NoReturn

from lightning.pytorch.cli import LightningArgumentParser


class TrickbenchParser(LightningArgumentParser):
    """LightningCLI's parser, with argument errors that end the output: no usage dump above them (a misspelt key
    was followed by ~60 lines of usage), and jsonargparse's union report cut to the reason (e.g. "Option
    'label_smoothin' is not accepted"), printed last after the `--help` tip."""

    def print_usage(self, file: Any = None) -> None:  # argparse calls this only when reporting an error
        pass

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        reason = union_reason(message)
        super().error(f"{message.splitlines()[0].rstrip(':')}: {reason}" if reason else message, ex)


def union_reason(text: str) -> str | None:
    """The reasons inside jsonargparse's "Does not validate against any of the Union subtypes" report (what a
    class rejected, one line each, the NoneType alternative left out), or None for other messages."""
    if "Does not validate against any of the Union subtypes" not in text:
        return None
    lines = [ln.strip() for ln in text.splitlines()]
    reasons, keep, given = [], False, ""
    for ln in lines:
        if ln.startswith("Given value:") and len(ln) <= 80 and "NestedArg" not in ln and "amespace(" not in ln:
            given = f" ({ln.lower()})"
        if ln.startswith("- "):
            keep = "Expected a <class 'NoneType'>" not in ln
            if keep:
                reasons.append(ln[2:])
        elif keep and ln and not ln.startswith(("Given value", "Subtypes:", "Errors:")):
            reasons[-1] += " " + ln
    return "; ".join(reasons) + given if reasons else None


def construction_error(err: BaseException) -> str | None:
    """The argument check inside jsonargparse's "Does not validate against any of the Union subtypes" error
    (raised when a class rejects a value while being built), or None for other errors."""
    return union_reason(str(err)) if isinstance(err, ValueError) else None


DEBUG_ENV = "TRICKBENCH_DEBUG"  # set to 1 to see the traceback behind a one-line error


def fail(err: BaseException, line: str) -> NoReturn:
    if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
        raise err
    print(f"error: {line}", file=sys.stderr)
    sys.exit(2)
