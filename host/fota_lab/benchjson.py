"""The figures a benchmark script writes with ``--json PATH``, and ``invoke bench`` reads.

Every script under bench/ takes ``--json PATH``; it prints its figures for a reader and, with that
option, also writes them to PATH in this form (schema 1)::

    {
      "schema": 1,
      "bench": "link",                                  # its name in `invoke bench --only`
      "figures": [
        {"group": "boot time (reset to application)",  # the first column of bench/results.md
         "name": "confirmed image",                     # what was measured
         "value": 24.9,                                 # a number (int or float)
         "unit": "ms",                                  # printed after the value
         "notes": "+-0.06 ms",                          # optional: spread, bound, conditions
         "host_s": 0.46}                                # optional: host seconds the figure took
      ]
    }

A script builds the list with :class:`Figure` and writes it with :func:`write`; the runner reads it
with :func:`read`, which names the field that is wrong when a file does not follow the schema.

    >>> f = Figure(group="twin speed", name="boot", value=48.8, unit="M instructions/s", host_s=0.02)
    >>> f.value_text(), f.detail()
    ('48.8 M instructions/s', '0.02 s host time')
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Literal

from fota_formats.errors import FotaError
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, ValidationError, field_validator

SCHEMA = 1


class BenchJsonError(FotaError):
    """A benchmark's JSON file is missing, is not JSON or does not follow the schema."""


class Figure(BaseModel):
    """One measured figure: ``value`` in ``unit``, under ``group`` in the results table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    group: str = Field(min_length=1)
    name: str = Field(min_length=1)
    value: StrictInt | StrictFloat
    unit: str
    notes: str = ""
    host_s: float | None = Field(default=None, ge=0)

    @field_validator("value")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v

    def value_text(self) -> str:
        number = str(self.value) if isinstance(self.value, int) else f"{self.value:g}"
        return f"{number} {self.unit}".strip()

    def detail(self) -> str:
        host = f"{self.host_s:g} s host time" if self.host_s is not None else ""
        return "; ".join(part for part in (self.notes, host) if part)


class BenchFigures(BaseModel):
    """The whole file: which bench, and its figures (at least one)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_version: Literal[1] = Field(default=SCHEMA, alias="schema")
    bench: str = Field(min_length=1)
    figures: list[Figure] = Field(min_length=1)


def write(path: Path, bench: str, figures: list[Figure]) -> None:
    """Write ``figures`` of ``bench`` to ``path`` (the ``--json`` option of every bench script)."""
    data = BenchFigures(bench=bench, figures=figures)
    path.write_text(json.dumps(data.model_dump(by_alias=True, exclude_none=True), indent=2) + "\n",
                    encoding="utf-8")


def _problems(e: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'the file'}: {err['msg']}"
                     for err in e.errors())


def read(path: Path, bench: str) -> list[Figure]:
    """The figures in ``path``, written by the script of ``bench``; BenchJsonError says what is wrong."""
    if not path.is_file():
        raise BenchJsonError(f"no JSON file written at {path.name}")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BenchJsonError(f"{path.name} is not JSON: {e}") from None
    try:
        data = BenchFigures.model_validate(raw)
    except ValidationError as e:
        raise BenchJsonError(f"{path.name} does not follow the bench schema {SCHEMA}: "
                             f"{_problems(e)}") from None
    if data.bench != bench:
        raise BenchJsonError(f"{path.name} holds the figures of {data.bench!r}, expected {bench!r}")
    return data.figures
