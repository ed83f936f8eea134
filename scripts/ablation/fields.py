"""Checks shared by the ablation file's readers (plan.py for arms, factorial.py for factors): a field that must be
a list of strings, with one error naming the field."""

from __future__ import annotations

from typing import Any


def string_list(where: str, value: Any, error: type[Exception], what: str = "strings") -> list[str]:
    """`value` as a list of strings ([] for None), or `error` saying which field is not one."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise error(f"{where} must be a list of {what}, got {value!r}")
    return list(value)
