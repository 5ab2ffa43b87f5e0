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

import numpy as np
import polars as pl

FileFormat = Literal["csv", "whitespace", "jsonl", "parquet"]
GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
SNIFF_BYTES = 1 << 20
# CSV is decoded and parsed in blocks of about this many characters, cut at a line end.
BLOCK_CHARS = 1 << 20
# How io splits lines with newline="" (and so what csv counts): \r\n, \r or \n.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
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

    columns: dict[str, pl.Series]  # String columns, one value per accepted record
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
    """Guess the layout from the name (ignoring .gz), then from the first bytes.

    A file named .csv or .tsv is CSV whatever it starts with (a first field of "{" made a
    CSV look like JSON Lines); otherwise JSON Lines is recognised by a first line that is
    a JSON object.
    """
    name = path.name.lower().removesuffix(".gz").removesuffix(".gzip")
    suffixes = (
        (".parquet", "parquet"),
        (".jsonl", "jsonl"),
        (".ndjson", "jsonl"),
        (".txt", "whitespace"),
        (".csv", "csv"),
        (".tsv", "csv"),
    )
    for suffix, fmt in suffixes:
        if name.endswith(suffix):
            return fmt  # type: ignore[return-value]
    with open_binary(path) as f:
        head = f.read(4096)
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    first, newline, _ = head.lstrip().partition(b"\n")
    if first.startswith(b"{"):
        if not newline and len(head) == 4096:
            return "jsonl"  # a first line longer than what was read: too long for a CSV header
        try:
            if isinstance(json.loads(first), dict):
                return "jsonl"
        except ValueError:
            pass
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


class _TextBlocks:
    """The decoded text of a file in blocks of whole lines; unused lines can be handed back."""

    def __init__(self, f: IO[str]):
        self._f, self._rest, self._eof = f, "", False

    def read(self) -> str:
        """The next block ("" at the end); it ends at a line end unless it is the last."""
        while not self._eof:
            chunk = self._f.read(BLOCK_CHARS)
            if not chunk:
                self._eof = True
                break
            data = self._rest + chunk
            # Cut after a "\n": a "\r" at the end could be the first half of "\r\n".
            cut = data.rfind("\n") + 1
            self._rest = data[cut:]
            if cut:
                return data[:cut]
        data, self._rest = self._rest, ""
        return data

    def unread(self, text: str) -> None:
        self._rest = text + self._rest


class _LineFeed:
    """Lines for csv.reader: a block's, then more from the file while a record runs on."""

    def __init__(self, lines: list[str], blocks: _TextBlocks):
        self.lines, self.blocks, self.used = lines, blocks, 0

    def __iter__(self):
        return self

    def __next__(self) -> str:
        if self.used == len(self.lines):
            more = self.blocks.read()
            if not more:
                raise StopIteration
            self.lines += _LINE.findall(more)
        self.used += 1
        return self.lines[self.used - 1]

    def give_back(self) -> None:
        """Return the lines pulled but not read to the block stream."""
        self.blocks.unread("".join(self.lines[self.used :]))
        del self.lines[self.used :]


class _BatchBuilder:
    """Collects a batch's accepted records (native frames and single records) in file order."""

    def __init__(self, reader: Reader):
        self.reader = reader
        self.parts: list[pl.DataFrame] = []
        self.values: list[list[str]] = []
        self.rows: list[int] = []
        self.rejected: list[Rejected] = []
        self.records = 0

    def add_frame(self, first: int, frame: pl.DataFrame) -> None:
        self._flush_values()
        self.parts.append(frame)
        self.rows.extend(range(first, first + frame.height))
        self.records += frame.height

    def add_values(self, line: int, values: list[str | None]) -> None:
        self.values.append(values)
        self.rows.append(line)
        self.records += 1

    def add_rejected(self, rejected: Rejected) -> None:
        self.rejected.append(rejected)
        self.records += 1

    def _flush_values(self) -> None:
        if self.values:
            schema = {name: pl.String for name in self.reader.columns}
            self.parts.append(pl.DataFrame(self.values, schema=schema, orient="row"))
            self.values = []

    def build(self) -> RawBatch:
        self._flush_values()
        names = [c for c in self.reader.columns if self.reader.wanted is None or c in self.reader.wanted]
        if self.parts:
            frame = pl.concat([p.select(names) for p in self.parts], rechunk=True)
            columns = {name: frame[name] for name in names}
        else:
            columns = {name: pl.Series(name, [], dtype=pl.String) for name in names}
        return RawBatch(columns=columns, rows=self.rows, rejected=self.rejected, records=self.records)


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

    def _csv_records(self) -> Iterator[tuple[int, list[str] | None, str | None] | tuple[int, pl.DataFrame]]:
        """CSV records, in blocks: a block of plain lines (no quotes, no bad bytes, every line
        with the expected fields) is parsed natively as one frame `(first line, frame)`; any
        other block goes record by record through Python's csv module, which can say what
        is wrong with each record. Both count lines the same way."""
        with _text(self.path, self.encoding, self._file) as f:
            blocks = _TextBlocks(f)
            self._expected: int | None = None
            line = 0
            if self.options.header:
                line = self._csv_header(blocks)
            while block := blocks.read():
                frame = self._plain_block(block)
                if frame is not None:
                    yield line + 1, frame
                    line += frame.height
                    continue
                lines = _LINE.findall(block)
                feed = _LineFeed(lines, blocks)
                reader = csv.reader(feed, delimiter=self.delimiter, strict=True)
                last, in_block = 0, len(lines)
                # A quoted field may run on past the block: the feed then pulls further
                # lines, and what it pulled but the reader did not need goes back (to be
                # read natively again when plain).
                while reader.line_num < in_block:
                    start = line + last + 1
                    try:
                        values = next(reader)
                    except StopIteration:
                        break
                    except csv.Error as exc:
                        last = reader.line_num
                        yield start, None, _csv_reason(str(exc), start, line + last)
                        continue
                    last = reader.line_num
                    yield start, *self._check_fields(values)
                feed.give_back()
                line += reader.line_num

    def _csv_header(self, blocks: _TextBlocks) -> int:
        """Read the header record; returns the number of lines it took."""
        lines = _LINE.findall(blocks.read())
        feed = _LineFeed(lines, blocks)
        reader = csv.reader(feed, delimiter=self.delimiter, strict=True)
        try:
            header = next(reader)
        except StopIteration:
            raise SourceError("the file is empty") from None
        except csv.Error as exc:
            raise SourceError(f"cannot read the header line: {exc}") from None
        feed.give_back()
        self.columns = [h.strip().lstrip("\ufeff") for h in header]
        self._expected = len(header)
        return reader.line_num

    def _check_fields(self, values: list[str]) -> tuple[list[str] | None, str | None]:
        if not values or (len(values) == 1 and not values[0].strip()):
            return None, EMPTY_LINE
        if self._expected is None:
            self._expected = len(values)
            self.columns = self.options.column_names or [str(i + 1) for i in range(self._expected)]
        if len(values) != self._expected:
            return None, f"has {len(values)} fields where {self._expected} were expected (a stray delimiter or quote?)"
        return values, None

    def _plain_block(self, block: str) -> pl.DataFrame | None:
        """The block parsed by Polars, or None when it needs the careful, per-record path."""
        d, expected = self.delimiter or ",", self._expected
        if expected is None or expected < 2 or len(d) != 1 or not d.isascii():
            return None
        if '"' in block or "\x00" in block or block.count("\r") != block.count("\r\n"):
            return None
        if block.startswith(("\n", "\r\n")) or "\n\n" in block or "\n\r\n" in block:
            return None  # empty lines are reported
        if block.startswith("\ufeff"):
            return None  # Polars would take a leading U+FEFF for a byte-order mark and drop it
        try:
            data = block.encode("utf-8")
        except UnicodeEncodeError:  # bytes that did not decode (kept as surrogates)
            return None
        chars = np.frombuffer(data, dtype=np.uint8)
        ends = np.flatnonzero(chars == 10)
        if not data.endswith(b"\n"):
            ends = np.append(ends, len(chars))
        seen = np.concatenate(([0], np.cumsum(chars == ord(d))))[ends]
        if not (np.diff(seen, prepend=0) == expected - 1).all():
            return None
        frame = pl.read_csv(
            data,
            has_header=False,
            separator=d,
            quote_char=None,
            infer_schema=False,
            new_columns=self.columns,
            empty_string_is_null=False,
        )
        return frame if frame.height == len(ends) else None

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
                columns[name] = pl.Series(name, pl.from_arrow(arr), dtype=pl.String)
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
        batch = _BatchBuilder(self)
        for item in stream:
            if isinstance(item[1], pl.DataFrame):
                first, frame = item
                if skipped < skip:
                    n = min(skip - skipped, frame.height)
                    skipped += n
                    first, frame = first + n, frame.slice(n)
                while frame.height:
                    piece = frame.slice(0, batch_size - batch.records)
                    batch.add_frame(first, piece)
                    first, frame = first + piece.height, frame.slice(piece.height)
                    if batch.records >= batch_size:
                        yield batch.build()
                        batch = _BatchBuilder(self)
                continue
            line, values, reason = item
            if skipped < skip:
                skipped += 1
                continue
            if values is None:
                batch.add_rejected(Rejected(row=line, reason=reason or "unreadable"))
            else:
                bad = _bad_bytes(values, self.encoding)
                if bad is not None:
                    bad.row = line
                    if bad.column and bad.column.isdigit() and int(bad.column) <= len(self.columns):
                        bad.column = self.columns[int(bad.column) - 1]
                    batch.add_rejected(bad)
                else:
                    batch.add_values(line, values)
            if batch.records >= batch_size:
                yield batch.build()
                batch = _BatchBuilder(self)
        if batch.records:
            yield batch.build()

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
