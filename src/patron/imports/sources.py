"""Readers: stream a CSV, whitespace-separated, JSON Lines or Parquet file (optionally
gzip-compressed) as batches of raw text records, each with the line it came from.

A reader never drops a record: one it cannot split into fields (a stray quote, a wrong
number of fields, an empty line, bytes that are not in the file's encoding, invalid
JSON) is yielded as a rejected record with the reason, so it lands in the error report
and in the counts.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

FileFormat = Literal["csv", "whitespace", "jsonl", "parquet"]
GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
SNIFF_BYTES = 1 << 20
_SURROGATE = re.compile("[\udc80-\udcff]")
_SUSPECT = re.compile("[\x00\udc80-\udcff]")


NUL_REASON = "contains a NUL character, which no text field may hold"
EMPTY_LINE = "empty line"  # reported, but it holds no data: no record of an order


class SourceError(Exception):
    """The file as a whole cannot be read (not a row-level problem)."""


@dataclass
class Rejected:
    row: int
    reason: str
    column: str | None = None
    value: str | None = None


@dataclass
class RawBatch:
    """Consecutive records: `columns` holds the accepted ones, by source column name."""

    columns: dict[str, list[str | None]]
    rows: list[int]  # the file line (or Parquet record number) of each accepted record
    rejected: list[Rejected] = field(default_factory=list)
    records: int = 0  # records consumed from the file, accepted or not: the resume offset


@dataclass
class ReadOptions:
    format: FileFormat | None = None  # guessed from the name and content when None
    encoding: str = "auto"  # auto = UTF-8 when the start of the file is valid UTF-8, else Latin-1
    delimiter: str | None = None  # sniffed when None
    header: bool = True
    # Names for files without a header (and for the whitespace format); defaults to 1, 2, 3...
    column_names: list[str] | None = None


def is_gzip(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(2) == GZIP_MAGIC


class _GzipReader(gzip.GzipFile):
    """A gzip stream that closes the file under it too (GzipFile leaves a given one open)."""

    def __init__(self, raw: IO[bytes]):
        super().__init__(fileobj=raw, mode="rb")
        self._raw = raw

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._raw.close()


def open_binary(path: Path, tracker: list | None = None) -> IO[bytes]:
    raw = path.open("rb")
    if tracker is not None:
        tracker[:] = [raw]
    return _GzipReader(raw) if is_gzip(path) else raw


def detect_format(path: Path) -> FileFormat:
    """Guess the layout from the name (ignoring .gz), then from the first bytes."""
    name = path.name.lower().removesuffix(".gz").removesuffix(".gzip")
    for suffix, fmt in ((".parquet", "parquet"), (".jsonl", "jsonl"), (".ndjson", "jsonl"), (".txt", "whitespace")):
        if name.endswith(suffix):
            return fmt  # type: ignore[return-value]
    with open_binary(path) as f:
        head = f.read(4096)
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    if head.lstrip().startswith(b"{"):
        return "jsonl"
    return "csv"


def detect_encoding(path: Path) -> str:
    """UTF-8 (with or without BOM) when the first megabyte decodes as UTF-8, else Latin-1.

    Latin-1 decodes any byte, so a wrong guess cannot fail; UTF-8 bytes later in the file
    that do not decode are rejected row by row with the reason.
    """
    with open_binary(path) as f:
        head = f.read(SNIFF_BYTES)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is still UTF-8 (only when the
        # sample is cut: a whole file ending in "José\n" is Latin-1).
        cut = len(head) == SNIFF_BYTES and exc.reason == "unexpected end of data"
        if not cut:
            return "latin-1"
    return "utf-8"


def _encoding(path: Path, options: ReadOptions) -> str:
    if options.encoding == "auto":
        return detect_encoding(path)
    try:
        return codecs.lookup(options.encoding).name
    except LookupError:
        raise SourceError(f"unknown encoding {options.encoding!r}; use utf-8 or latin-1") from None


def _text(path: Path, encoding: str, tracker: list | None = None) -> IO[str]:
    # surrogateescape keeps undecodable bytes visible, so the row can be rejected with them.
    return io.TextIOWrapper(open_binary(path, tracker), encoding=encoding, errors="surrogateescape", newline="")


def sniff_delimiter(path: Path, encoding: str) -> str:
    with _text(path, encoding) as f:
        sample = f.read(64 * 1024)
    lines = [line for line in sample.splitlines() if line.strip()][:50]
    if not lines:
        return ","
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _bad_bytes(values: list[str], encoding: str) -> Rejected | None:
    # One search over the whole record first: almost every record is clean, and this is
    # the per-row cost every import pays.
    try:
        whole = "".join(values)
    except TypeError:  # None for a key missing from a JSON line
        whole = "".join(v for v in values if v is not None)
    if not _SUSPECT.search(whole):
        return None
    for i, value in enumerate(values):
        if value is None:  # a key missing from a JSON line
            continue
        if "\x00" in value:
            return Rejected(row=0, column=str(i + 1), value=value.replace("\x00", "\\0")[:100], reason=NUL_REASON)
        if _SURROGATE.search(value):
            raw = value.encode("utf-8", "surrogateescape")
            shown = raw.decode("latin-1")
            return Rejected(
                row=0,
                column=str(i + 1),
                value=shown[:100],
                reason=f"bytes that are not valid {encoding} (try --encoding latin-1)",
            )
    return None


class Reader:
    """Iterate a file in batches of at most `batch_size` records, skipping `skip` records."""

    def __init__(self, path: Path, options: ReadOptions, *, wanted: list[str] | None = None):
        self.path = path
        self.options = options
        if not path.is_file():
            raise SourceError(f"{path} does not exist or is not a file")
        self.format: FileFormat = options.format or detect_format(path)
        self.encoding = "binary" if self.format == "parquet" else _encoding(path, options)
        self.delimiter = None
        if self.format == "csv":
            self.delimiter = options.delimiter or sniff_delimiter(path, self.encoding)
        self.columns: list[str] = []
        self.wanted = wanted
        self._file: list = []  # the file on disk being read, for position()

    def position(self) -> int:
        """Bytes of the file on disk read so far (compressed bytes for gzip), for progress."""
        if not self._file:
            return 0
        try:
            return self._file[0].tell()
        except (ValueError, OSError):  # closed at the end of the file
            return self.path.stat().st_size

    # -- record streams: yield (line, values or None, reason) -------------------------------

    def _csv_records(self) -> Iterator[tuple[int, list[str] | None, str | None]]:
        with _text(self.path, self.encoding, self._file) as f:
            reader = csv.reader(f, delimiter=self.delimiter, strict=True)
            expected: int | None = None
            if self.options.header:
                try:
                    header = next(reader)
                except StopIteration:
                    raise SourceError("the file is empty") from None
                except csv.Error as exc:
                    raise SourceError(f"cannot read the header line: {exc}") from None
                self.columns = [h.strip().lstrip("\ufeff") for h in header]
                expected = len(header)
            last = reader.line_num
            while True:
                start = last + 1
                try:
                    values = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    last = reader.line_num
                    yield start, None, _csv_reason(str(exc), start, last)
                    continue
                last = reader.line_num
                if not values or (len(values) == 1 and not values[0].strip()):
                    yield start, None, EMPTY_LINE
                    continue
                if expected is None:
                    expected = len(values)
                    self.columns = self.options.column_names or [str(i + 1) for i in range(expected)]
                if len(values) != expected:
                    yield (
                        start,
                        None,
                        f"has {len(values)} fields where {expected} were expected (a stray delimiter or quote?)",
                    )
                    continue
                yield start, values, None

    def _whitespace_records(self) -> Iterator[tuple[int, list[str] | None, str | None]]:
        expected: int | None = None
        with _text(self.path, self.encoding, self._file) as f:
            for number, line in enumerate(f, start=1):
                values = line.split()
                if number == 1 and self.options.header:
                    self.columns = values
                    expected = len(values)
                    continue
                if not values:
                    yield number, None, EMPTY_LINE
                    continue
                if expected is None:
                    expected = len(values)
                    self.columns = self.options.column_names or [str(i + 1) for i in range(expected)]
                if len(values) != expected:
                    yield number, None, f"has {len(values)} fields where {expected} were expected"
                    continue
                yield number, values, None

    def _jsonl_records(self) -> Iterator[tuple[int, list[str] | None, str | None]]:
        with _text(self.path, self.encoding, self._file) as f:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    yield number, None, EMPTY_LINE
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield number, None, f"not valid JSON: {exc.msg} at character {exc.pos + 1}"
                    continue
                if not isinstance(obj, dict):
                    yield number, None, "each line must be one JSON object"
                    continue
                if not self.columns:
                    self.columns = self.wanted or list(obj)
                yield number, [_json_text(obj.get(name)) for name in self.columns], None

    def _parquet_batches(self, batch_size: int, skip: int) -> Iterator[RawBatch]:
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(self.path)
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise SourceError(f"not a readable Parquet file: {exc}") from None
        self.columns = list(pf.schema_arrow.names)
        names = [c for c in self.columns if self.wanted is None or c in self.wanted]
        number = 0
        for batch in pf.iter_batches(batch_size=batch_size, columns=names):
            n = batch.num_rows
            if number + n <= skip:
                number += n
                continue
            start = max(0, skip - number)
            batch = batch.slice(start)
            columns = {}
            for name in names:
                arr = batch.column(name)
                if not (arr.type == "string" or arr.type == "large_string"):
                    arr = pc.cast(arr, "string")
                columns[name] = arr.to_pylist()
            rows = list(range(number + start + 1, number + n + 1))
            number += n
            yield RawBatch(columns=columns, rows=rows, records=len(rows))

    # -- batching ----------------------------------------------------------------------------

    def batches(self, batch_size: int, *, skip: int = 0) -> Iterator[RawBatch]:
        """Batches of records after the first `skip` records (the resume offset)."""
        if self.format == "parquet":
            yield from self._parquet_batches(batch_size, skip)
            return
        stream = {"csv": self._csv_records, "whitespace": self._whitespace_records, "jsonl": self._jsonl_records}[
            self.format
        ]()
        skipped = 0
        rows: list[int] = []
        values_list: list[list[str]] = []
        rejected: list[Rejected] = []
        records = 0
        for line, values, reason in stream:
            if skipped < skip:
                skipped += 1
                continue
            records += 1
            if values is None:
                rejected.append(Rejected(row=line, reason=reason or "unreadable"))
            else:
                bad = _bad_bytes(values, self.encoding)
                if bad is not None:
                    bad.row = line
                    if bad.column and bad.column.isdigit() and int(bad.column) <= len(self.columns):
                        bad.column = self.columns[int(bad.column) - 1]
                    rejected.append(bad)
                else:
                    rows.append(line)
                    values_list.append(values)
            if records >= batch_size:
                yield self._batch(rows, values_list, rejected, records)
                rows, values_list, rejected, records = [], [], [], 0
        if records:
            yield self._batch(rows, values_list, rejected, records)

    def _batch(self, rows, values_list, rejected, records) -> RawBatch:
        names = self.columns
        wanted = set(self.wanted) if self.wanted is not None else None
        if values_list:
            transposed = list(zip(*values_list, strict=True))
            columns = {name: list(transposed[i]) for i, name in enumerate(names) if wanted is None or name in wanted}
        else:
            columns = {name: [] for name in names if wanted is None or name in wanted}
        return RawBatch(columns=columns, rows=rows, rejected=rejected, records=records)

    def preview(self, limit: int = 20) -> tuple[list[str], list[list[str | None]], list[Rejected]]:
        """The column names and the first `limit` records, for the mapping screen."""
        wanted, self.wanted = self.wanted, None
        try:
            batch = next(self.batches(limit), None)
        finally:
            self.wanted = wanted
        if batch is None:
            return self.columns, [], []
        rows = [[batch.columns[c][i] for c in self.columns] for i in range(len(batch.rows))]
        return self.columns, rows, batch.rejected


def _csv_reason(message: str, start: int, end: int) -> str:
    if "unexpected end of data" in message or "EOF" in message:
        return f"a quote opened on line {start} is never closed (the record runs to line {end}, the end of the file)"
    if "expected after" in message:
        return f"stray quote: {message} (quote the whole field and double any quote inside it)"
    if "field larger than field limit" in message:
        return "a field is over 128 KB long (an unclosed quote?)"
    if "NUL" in message or "\x00" in message:
        return "contains a NUL byte"
    return message


def _json_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value)
