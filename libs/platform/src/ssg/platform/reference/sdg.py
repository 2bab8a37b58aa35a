"""The 17 Sustainable Development Goals and the codes of their 169 targets."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ssg.contracts.common.v1 import sdg_pb2

# Short goal names (public facts); target texts are not reproduced here.
GOAL_NAMES: dict[int, str] = {
    1: "No poverty",
    2: "Zero hunger",
    3: "Good health and well-being",
    4: "Quality education",
    5: "Gender equality",
    6: "Clean water and sanitation",
    7: "Affordable and clean energy",
    8: "Decent work and economic growth",
    9: "Industry, innovation and infrastructure",
    10: "Reduced inequalities",
    11: "Sustainable cities and communities",
    12: "Responsible consumption and production",
    13: "Climate action",
    14: "Life below water",
    15: "Life on land",
    16: "Peace, justice and strong institutions",
    17: "Partnerships for the goals",
}

# Per goal: (number of numbered outcome targets, letters of its means-of-implementation targets).
_TARGET_SHAPE: dict[int, tuple[int, str]] = {
    1: (5, "ab"),
    2: (5, "abc"),
    3: (9, "abcd"),
    4: (7, "abc"),
    5: (6, "abc"),
    6: (6, "ab"),
    7: (3, "ab"),
    8: (10, "ab"),
    9: (5, "abc"),
    10: (7, "abc"),
    11: (7, "abc"),
    12: (8, "abc"),
    13: (3, "ab"),
    14: (7, "abc"),
    15: (9, "abc"),
    16: (10, "ab"),
    17: (19, ""),
}

TARGETS: frozenset[str] = frozenset(
    f"{goal}.{t}"
    for goal, (numbered, letters) in _TARGET_SHAPE.items()
    for t in [*map(str, range(1, numbered + 1)), *letters]
)
_TARGET_CODE = re.compile(r"^(\d{1,2})\.([0-9]{1,2}|[a-z])\Z")


@dataclass(frozen=True)
class Goal:
    """One SDG: its number, short name and target codes."""

    number: int
    name: str
    targets: tuple[str, ...]


def goal(number: int) -> Goal:
    """The goal with this number (1-17); ValueError otherwise."""
    if number not in GOAL_NAMES:
        raise ValueError(f"SDG must be 1-17, got {number}")
    numbered, letters = _TARGET_SHAPE[number]
    codes = (
        *(f"{number}.{i}" for i in range(1, numbered + 1)),
        *(f"{number}.{c}" for c in letters),
    )
    return Goal(number, GOAL_NAMES[number], codes)


def goal_of_target(code: str) -> int:
    """The goal number a target code belongs to; ValueError if the code is not a real target."""
    match = _TARGET_CODE.match(code)
    if not match or code not in TARGETS:
        raise ValueError(f"not an SDG target: {code!r} (expected e.g. '6.4' or '14.a')")
    return int(match.group(1))


def from_proto(value: int) -> int:
    """Goal number of an ``ssg.common.v1.Sdg`` enum value; ValueError for UNSPECIFIED/unknown."""
    if value == sdg_pb2.SDG_UNSPECIFIED or value not in GOAL_NAMES:
        raise ValueError(f"SDG must be one of the 17 goals, got {value}")
    return value
