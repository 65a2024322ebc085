"""Protobuf enum values read back as plain ints (a database column, a JSON document).

A protobuf enum's values are ints at run time, but the generated .pyi types each enum as its own
int subclass, so an int cannot be passed where a message field wants, say, a `Visibility`.
`enum_value` names the enum for the type checker and changes nothing: proto3 enums are open, so a
number the enum does not define is kept as it is, as the message itself would keep it.
"""

from __future__ import annotations

from typing import TypeVar, cast

E = TypeVar("E", bound=int)


def enum_value(enum: type[E], number: int) -> E:
    """`number` as a value of `enum` (e.g. ``enum_value(Visibility, row.visibility)``).

    `enum` only tells the type checker which enum: at run time it is an EnumTypeWrapper."""
    return cast(E, number)  # the .pyi's enum classes stand for ints: there is nothing to convert
