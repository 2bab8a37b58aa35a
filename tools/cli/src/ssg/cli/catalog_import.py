"""Reading a collection of solutions from CSV or JSON and sending it through ImportSolutions.

The file is streamed: rows are parsed one by one and sent in batches (at most 1,000 rows, and
at most ``MAX_BATCH_BYTES``), so a large collection never sits in memory at once (a ``.json``
array is the exception: JSON has no streaming reader in the standard library; use ``.jsonl``
for large files). Locally a row is only *parsed* (numbers are numbers, enum names exist, the
columns are known); every domain rule (sizes, real SDG targets, countries, known
organizations...) is the service's, which answers each row CREATED, EXISTING (its external id
was imported before: re-importing a file creates nothing), REJECTED (with field and reason) or
NOT_WRITTEN (good, but not written: dry run or all-or-nothing).

Columns (CSV header names; JSON objects use the same keys). Lists inside one CSV cell are
separated by ``;`` and the parts of one item by ``|``; in JSON a list may also be an array and
an item an object with the proto field names.

==========================  =================================================================
external_id (required)      the row's id in the source collection; idempotency key
organization_id (required)  registered organization that owns and vouches for the solution
title, summary              text (the service checks 5-300 and 20-10,000 characters)
challenge, approach,        text
results, replicability,
prerequisites
sdgs                        goal numbers: ``6;7``
sdg_targets                 target codes: ``6.4;7.1``
implementing_countries,     ISO 3166-1 alpha-3: ``KEN;UGA``
beneficiary_countries
regions                     ``AFRICA;ASIA_PACIFIC`` (ssg.common.v1.Region names, no prefix)
modality                    ``SOUTH_SOUTH``, ``TRIANGULAR`` or ``EAST_EAST``
partners                    ``ORG_ID:ROLE;...`` with ROLE PROVIDER, BENEFICIARY, FACILITATOR,
                            FUNDER
start_date, end_date        ``YYYY-MM-DD`` (end optional)
budget_amount,              ``125000.50`` and ``USD`` (both or neither)
budget_currency
indicators                  ``name|baseline|value|unit|year;...`` (year optional)
resources                   ``title|url;...``
contact_name, contact_email text
language                    ISO 639-1, e.g. ``en``
tags                        ``water;solar pumps``
==========================  =================================================================
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Protocol

from ssg.contracts.catalog.v1 import catalog_service_pb2 as pb
from ssg.contracts.catalog.v1 import solution_pb2
from ssg.contracts.common.v1 import geography_pb2, money_pb2, sdg_pb2

MAX_BATCH_ROWS = 1_000  # the service's limit per ImportSolutions call
MAX_BATCH_BYTES = 12 * 1024 * 1024  # under the service's 16 MiB message limit
LIST_SEPARATOR = ";"
PART_SEPARATOR = "|"

TEXT_COLUMNS = (
    "title", "summary", "challenge", "approach", "results", "replicability", "prerequisites",
    "language",
)  # fmt: skip
COLUMNS: tuple[str, ...] = (
    "external_id", "organization_id", *TEXT_COLUMNS, "sdgs", "sdg_targets",
    "implementing_countries", "beneficiary_countries", "regions", "modality", "partners",
    "start_date", "end_date", "budget_amount", "budget_currency", "indicators", "resources",
    "contact_name", "contact_email", "tags",
)  # fmt: skip
REQUIRED_COLUMNS = ("external_id", "organization_id")
FORMATS = ("csv", "json", "jsonl")


class FileFormatError(Exception):
    """The file as a whole cannot be read (unknown format, bad header, not JSON...)."""


class RowError(Exception):
    """One row cannot be parsed; carries every (field, reason) found."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {r}" for f, r in problems))
        self.problems = problems


@dataclass(frozen=True)
class SourceRow:
    """One record of the file: where it starts (line, or item number for a JSON array)."""

    line: int
    values: dict[str, Any]


@dataclass(frozen=True)
class Rejection:
    """One reason a row was not imported."""

    line: int
    external_id: str
    field: str
    reason: str


@dataclass
class ImportSummary:
    """What an import did, row by row where it matters."""

    rows: int = 0
    created: int = 0
    existing: int = 0
    not_written: int = 0
    rejected_rows: int = 0
    batches: int = 0
    seconds: float = 0.0
    rejections: list[Rejection] = field(default_factory=list)
    written: bool = True  # False when nothing was sent for writing (dry run, all-or-nothing)

    @property
    def rate(self) -> float:
        """Rows per second."""
        return self.rows / self.seconds if self.seconds else 0.0


# -- reading ------------------------------------------------------------------------------------


def detect_format(path: Path, explicit: str = "") -> str:
    """csv, json or jsonl: explicit, else from the file suffix."""
    fmt = (explicit or path.suffix.lstrip(".")).lower()
    fmt = {"ndjson": "jsonl", "tsv": "csv"}.get(fmt, fmt)
    if fmt not in FORMATS:
        raise FileFormatError(f"unknown format {fmt!r}: use .csv, .json or .jsonl (or --format)")
    return fmt


class _Meter:
    """Counts the bytes of the lines handed on (the progress of a streamed file)."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = iter(lines)
        self.bytes = 0

    def __iter__(self) -> Iterator[str]:
        for line in self._lines:
            self.bytes += len(line.encode("utf-8"))
            yield line


def read_rows(path: Path, fmt: str, meter: list[int] | None = None) -> Iterator[SourceRow]:
    """Stream the records of the file; meter[0] follows the bytes read so far."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        lines = _Meter(handle)

        def tick() -> None:
            if meter is not None:
                meter[0] = lines.bytes

        if fmt == "csv":
            reader = csv.DictReader(lines)
            header = reader.fieldnames or []
            unknown = [c for c in header if c not in COLUMNS]
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if unknown or missing:
                parts = []
                if unknown:
                    parts.append(f"unknown column(s) {', '.join(unknown)}")
                if missing:
                    parts.append(f"missing column(s) {', '.join(missing)}")
                raise FileFormatError(f"{path}: {'; '.join(parts)} (columns: {', '.join(COLUMNS)})")
            start = 2
            for record in reader:
                tick()
                extra = record.pop(None, None)
                values: dict[str, Any] = {k: v for k, v in record.items() if v not in (None, "")}
                if extra:
                    values["__extra__"] = extra
                yield SourceRow(start, values)
                start = reader.line_num + 1
        elif fmt == "jsonl":
            for number, line in enumerate(lines, start=1):
                tick()
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield SourceRow(number, {"__error__": f"not JSON: {exc.msg}"})
                    continue
                yield SourceRow(
                    number, item if isinstance(item, dict) else {"__error__": "not an object"}
                )
        else:
            try:
                document = json.load(handle)
            except json.JSONDecodeError as exc:
                raise FileFormatError(f"{path}: not JSON ({exc})") from None
            if isinstance(document, dict):
                document = document.get("solutions", document.get("rows"))
            if not isinstance(document, list):
                raise FileFormatError(
                    f'{path}: expected an array of objects (or {{"solutions": [...]}})'
                )
            if meter is not None:
                meter[0] = path.stat().st_size
            for number, item in enumerate(document, start=1):
                yield SourceRow(
                    number, item if isinstance(item, dict) else {"__error__": "not an object"}
                )


# -- parsing one row ----------------------------------------------------------------------------


def _items(value: Any) -> list[Any]:
    """A list cell: a JSON array as is, a string split on ';' (blank items dropped)."""
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        return [part.strip() for part in value.split(LIST_SEPARATOR) if part.strip()]
    return [value]


def _parts(item: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """One list item as a dict: a JSON object as is, a string split on '|' into names."""
    if isinstance(item, dict):
        return item
    pieces = [p.strip() for p in str(item).split(PART_SEPARATOR)]
    if len(pieces) > len(names):
        raise ValueError(f"at most {len(names)} parts ({PART_SEPARATOR.join(names)})")
    return dict(zip(names, pieces, strict=False))


def _enum(wrapper: Any, prefix: str, label: Any) -> int:
    name = prefix + str(label).strip().upper().replace("-", "_").replace(" ", "_")
    try:
        return int(wrapper.Value(name))
    except ValueError:
        known = [n.removeprefix(prefix) for n in wrapper.keys() if not n.endswith("UNSPECIFIED")]  # noqa: SIM118
        raise ValueError(f"unknown value {str(label)[:40]!r}; one of: {', '.join(known)}") from None


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("must be a whole number")
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValueError(f"must be a whole number, got {str(value)[:20]!r}") from None


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ValueError("must be text")


def _money(amount: Any, currency: Any) -> money_pb2.Money:
    try:
        number = Decimal(str(amount).strip())
    except InvalidOperation:
        raise ValueError(f"must be a number, got {str(amount)[:20]!r}") from None
    if not number.is_finite():
        raise ValueError("must be a finite number")
    units = int(number)
    nanos = int((number - units) * 1_000_000_000)
    return money_pb2.Money(currency_code=str(currency).strip().upper(), units=units, nanos=nanos)


def parse_row(values: dict[str, Any]) -> pb.ImportRow:
    """The ImportRow of one record; RowError with every unparseable field."""
    problems: list[tuple[str, str]] = []
    if "__error__" in values:
        raise RowError([("row", str(values["__error__"]))])
    if "__extra__" in values:
        problems.append(("row", "more cells than columns in the header"))
    for key in values:
        if key not in COLUMNS and not key.startswith("__"):
            problems.append((key, "unknown column"))
    solution = solution_pb2.Solution()

    def take(name: str, apply: Callable[[Any], None]) -> None:
        if name not in values or values[name] in (None, ""):
            return
        try:
            apply(values[name])
        except (ValueError, TypeError) as exc:
            problems.append((name, str(exc)))

    external_id = ""

    def set_external(v: Any) -> None:
        nonlocal external_id
        external_id = _text(v).strip()

    take("external_id", set_external)
    take("organization_id", lambda v: setattr(solution, "organization_id", _text(v).strip()))

    def text_setter(name: str) -> Callable[[Any], None]:
        return lambda v: setattr(solution, name, _text(v))

    def countries_adder(name: str) -> Callable[[Any], None]:
        return lambda v: getattr(solution, name).extend(_text(i).strip().upper() for i in _items(v))

    for name in TEXT_COLUMNS:
        take(name, text_setter(name))
    take("sdgs", lambda v: solution.sdgs.extend(_integer(i) for i in _items(v)))  # type: ignore[misc]
    take(
        "sdg_targets",
        lambda v: solution.sdg_targets.extend(
            sdg_pb2.SdgTarget(code=_text(i).strip()) for i in _items(v)
        ),
    )
    for name in ("implementing_countries", "beneficiary_countries"):
        take(name, countries_adder(name))
    take(
        "regions",
        lambda v: solution.regions.extend(
            _enum(geography_pb2.Region, "REGION_", i)  # type: ignore[misc]
            for i in _items(v)
        ),
    )
    take(
        "modality",
        lambda v: setattr(
            solution,
            "modality",
            _enum(solution_pb2.CooperationModality, "COOPERATION_MODALITY_", v),
        ),
    )

    def partners(v: Any) -> None:
        for item in _items(v):
            if isinstance(item, dict):
                org_id, role = item.get("organization_id", ""), item.get("role", "")
            else:
                org_id, _, role = str(item).rpartition(":")
                if not org_id:
                    raise ValueError(f"expected ORG_ID:ROLE, got {str(item)[:60]!r}")
            solution.partners.add(
                organization_id=_text(org_id).strip(),
                role=_enum(solution_pb2.PartnerRole, "PARTNER_ROLE_", role),
            )

    take("partners", partners)
    take("start_date", lambda v: setattr(solution.period, "start_date", _text(v).strip()))
    take("end_date", lambda v: setattr(solution.period, "end_date", _text(v).strip()))
    amount, currency = values.get("budget_amount"), values.get("budget_currency")
    if (amount in (None, "")) != (currency in (None, "")):
        problems.append(("budget_amount", "give budget_amount and budget_currency together"))
    elif amount not in (None, ""):
        take("budget_amount", lambda v: solution.budget.CopyFrom(_money(v, currency)))

    def indicators(v: Any) -> None:
        for item in _items(v):
            part = _parts(item, ("name", "baseline", "value", "unit", "year"))
            year = part.get("year")
            solution.indicators.add(
                name=_text(part.get("name", "")),
                baseline=_text(part.get("baseline", "")),
                value=_text(part.get("value", "")),
                unit=_text(part.get("unit", "")),
                year=_integer(year) if year not in (None, "") else 0,
            )

    take("indicators", indicators)

    def resources(v: Any) -> None:
        for item in _items(v):
            part = _parts(item, ("title", "url"))
            solution.resources.add(
                title=_text(part.get("title", "")), url=_text(part.get("url", ""))
            )

    take("resources", resources)
    take("contact_name", lambda v: setattr(solution.contact, "name", _text(v)))
    take("contact_email", lambda v: setattr(solution.contact, "email", _text(v).strip()))
    take("tags", lambda v: solution.tags.extend(_text(i).strip() for i in _items(v)))
    if not external_id:
        problems.append(("external_id", "is required"))
    if problems:
        raise RowError(problems)
    return pb.ImportRow(external_id=external_id, solution=solution)


# -- sending ------------------------------------------------------------------------------------


class ImportStub(Protocol):
    """The one RPC the importer calls."""

    def ImportSolutions(
        self, request: pb.ImportSolutionsRequest, *, timeout: float | None = None
    ) -> Awaitable[pb.ImportSolutionsResponse]:
        """Import one batch."""
        ...


Progress = Callable[[int, int], None]
"""Called after each batch with (rows done, bytes of the file read)."""


async def send_file(
    stub: ImportStub,
    path: Path,
    fmt: str,
    *,
    publish: bool = False,
    dry_run: bool = False,
    all_or_nothing: bool = False,
    batch_rows: int = 500,
    call_seconds: float = 120.0,
    progress: Progress | None = None,
) -> ImportSummary:
    """Stream path into ImportSolutions batches; the summary lists every rejected row.

    all_or_nothing covers the whole file: a first pass checks every batch (dry run) and the
    second writes only when no row of the file was rejected; between the two passes another
    writer could still change what the service decides, which the second pass then reports.
    """
    if all_or_nothing and not dry_run:
        check = await _one_pass(
            stub, path, fmt, publish, True, batch_rows, call_seconds, progress, all_or_nothing=True
        )
        if check.rejected_rows:
            check.written = False
            return check
    summary = await _one_pass(
        stub, path, fmt, publish, dry_run, batch_rows, call_seconds, progress, all_or_nothing
    )
    summary.written = not dry_run
    return summary


async def _one_pass(
    stub: ImportStub,
    path: Path,
    fmt: str,
    publish: bool,
    dry_run: bool,
    batch_rows: int,
    call_seconds: float,
    progress: Progress | None,
    all_or_nothing: bool,
) -> ImportSummary:
    summary = ImportSummary()
    began = time.monotonic()
    meter = [0]
    batch: list[tuple[int, pb.ImportRow]] = []
    size = 0

    async def flush() -> None:
        nonlocal batch, size
        if not batch:
            return
        request = pb.ImportSolutionsRequest(
            rows=[row for _, row in batch],
            publish=publish,
            dry_run=dry_run,
            all_or_nothing=all_or_nothing,
        )
        reply = await stub.ImportSolutions(request, timeout=call_seconds)
        _count(summary, batch, reply)
        summary.batches += 1
        batch, size = [], 0
        if progress is not None:
            progress(summary.rows, meter[0])

    for source in read_rows(path, fmt, meter):
        summary.rows += 1
        try:
            row = parse_row(source.values)
        except RowError as exc:
            summary.rejected_rows += 1
            external = (
                str(source.values.get("external_id", "")) if isinstance(source.values, dict) else ""
            )
            summary.rejections += [Rejection(source.line, external, f, r) for f, r in exc.problems]
            continue
        row_size = row.ByteSize()
        if batch and (len(batch) >= batch_rows or size + row_size > MAX_BATCH_BYTES):
            await flush()
        batch.append((source.line, row))
        size += row_size
    await flush()
    if progress is not None:
        progress(summary.rows, meter[0])
    summary.seconds = time.monotonic() - began
    return summary


def _count(
    summary: ImportSummary, batch: list[tuple[int, pb.ImportRow]], reply: pb.ImportSolutionsResponse
) -> None:
    outcome = pb.ImportOutcome
    for result in reply.results:
        line, row = batch[result.index]
        if result.outcome == outcome.IMPORT_OUTCOME_CREATED:
            summary.created += 1
        elif result.outcome == outcome.IMPORT_OUTCOME_EXISTING:
            summary.existing += 1
        elif result.outcome == outcome.IMPORT_OUTCOME_NOT_WRITTEN:
            summary.not_written += 1
        elif result.outcome == outcome.IMPORT_OUTCOME_REJECTED:
            summary.rejected_rows += 1
            summary.rejections += [
                Rejection(line, row.external_id, _row_field(v.field), v.description)
                for v in result.violations
            ] or [Rejection(line, row.external_id, "row", "rejected")]


# Solution field paths whose file column has another name.
_COLUMN_OF = {
    "period": "start_date",
    "period.start_date": "start_date",
    "period.end_date": "end_date",
    "budget": "budget_amount",
    "budget.units": "budget_amount",
    "budget.nanos": "budget_amount",
    "budget.currency_code": "budget_currency",
    "contact.name": "contact_name",
    "contact.email": "contact_email",
}


def _row_field(path: str) -> str:
    """The file's name for a field the service names: 'solution.contact.email' -> 'contact_email'
    (list positions stay: 'partners[1].organization_id')."""
    field_path = path.removeprefix("solution.")
    return _COLUMN_OF.get(field_path, field_path)


def write_report(path: Path, rejections: Iterable[Rejection]) -> int:
    """Write the rejections as CSV (line, external_id, field, reason); the number written."""
    count = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["line", "external_id", "field", "reason"])
        for r in rejections:
            writer.writerow([r.line, r.external_id, r.field, r.reason])
            count += 1
    return count
