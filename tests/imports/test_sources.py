"""The file readers: every record comes back accepted (with its values and line) or
rejected (with its line and reason); none is dropped, and a resume skips exactly."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from patron.imports import sources
from patron.imports.sources import (
    SNIFF_BYTES,
    RawBatch,
    Reader,
    ReadOptions,
    SourceError,
    detect_encoding,
    detect_format,
)

# Text a field may hold: anything but NUL (rejected on purpose, tested below), lone
# surrogates (not encodable) and the line breaks str.splitlines() knows but csv does not.
FIELD_TEXT = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs",), blacklist_characters="\x00\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
    ),
    max_size=12,
)
DELIMITERS = [",", ";", "\t", "|"]
QUOTING = [csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]
LINE_BREAK = re.compile(r"\r\n|\r|\n")
FILE_NO = iter(range(10**9))


def write(tmp_path: Path, content: str | bytes, name: str = "data.csv", *, gz: bool = False) -> Path:
    path = tmp_path / f"{next(FILE_NO)}-{name}"
    data = content.encode("utf-8") if isinstance(content, str) else content
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def read_all(path: Path, batch_size: int = 1000, skip: int = 0, **options) -> tuple[Reader, list[RawBatch]]:
    reader = Reader(path, ReadOptions(**options))
    return reader, list(reader.batches(batch_size, skip=skip))


def records(reader: Reader, batches: list[RawBatch]) -> list[tuple[int, list[str | None] | str]]:
    """(line, values) for accepted records and (line, reason) for rejected ones, in file order."""
    out: list[tuple[int, list[str | None] | str]] = []
    for b in batches:
        names = list(b.columns)
        out += [(line, [b.columns[c][i] for c in names]) for i, line in enumerate(b.rows)]
        out += [(r.row, r.reason) for r in b.rejected]
    return sorted(out, key=lambda x: x[0])


def lists(batch: RawBatch) -> dict[str, list[str | None]]:
    return {name: column.to_list() for name, column in batch.columns.items()}


def only_rejected(batches: list[RawBatch]):
    return [r for b in batches for r in b.rejected]


def csv_text(rows: list[list[str]], delimiter: str, quoting: int) -> tuple[str, list[int]]:
    """The CSV text of `rows` and the line each row starts on (as a text editor counts)."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, quoting=quoting)
    starts = []
    for row in rows:
        starts.append(len(LINE_BREAK.findall(buf.getvalue())) + 1)
        writer.writerow(row)
    return buf.getvalue(), starts


# -- property tests ----------------------------------------------------------------------------

# The reader parses CSV in blocks (natively when a block is plain, record by record when
# not); tiny blocks put block ends inside quoted fields, between CR and LF, and so on.
BLOCKS = st.sampled_from([1, 7, 64, sources.BLOCK_CHARS])


@st.composite
def tables(draw):
    width = draw(st.integers(min_value=2, max_value=5))
    rows = draw(st.lists(st.lists(FIELD_TEXT, min_size=width, max_size=width), min_size=1, max_size=15))
    return width, rows


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    table=tables(),
    delimiter=st.sampled_from(DELIMITERS),
    quoting=st.sampled_from(QUOTING),
    header=st.booleans(),
    batch_size=st.integers(min_value=1, max_value=7),
    block=BLOCKS,
)
def test_any_csv_written_by_csv_writer_reads_back_identically(
    tmp_path, monkeypatch, table, delimiter, quoting, header, batch_size, block
):
    monkeypatch.setattr(sources, "BLOCK_CHARS", block)
    width, rows = table
    names = [f"col{i}" for i in range(width)]
    text, starts = csv_text([names, *rows] if header else rows, delimiter, quoting)
    if header:
        starts = starts[1:]
    path = write(tmp_path, text)

    reader, batches = read_all(path, batch_size, delimiter=delimiter, header=header)

    assert reader.columns == (names if header else [str(i + 1) for i in range(width)])
    assert records(reader, batches) == list(zip(starts, rows, strict=True))
    assert all(b.records <= batch_size for b in batches)
    assert sum(b.records for b in batches) == len(rows)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=st.lists(
        st.one_of(
            st.lists(st.sampled_from(["a", "b", "1", "", " ", '"q"', '"x,y"', "é"]), min_size=1, max_size=4).map(
                ",".join
            ),
            st.sampled_from(['"open', 'a"b,c', '1,"2"3', ",,,,,,", "", "   ", "\x00,1", "x\u0000y,2"]),
        ),
        max_size=25,
    ),
    batch_size=st.integers(min_value=1, max_value=6),
    block=BLOCKS,
)
def test_every_record_is_accepted_or_rejected_never_dropped(tmp_path, monkeypatch, lines, batch_size, block):
    monkeypatch.setattr(sources, "BLOCK_CHARS", block)
    path = write(tmp_path, "a,b\n" + "\n".join(lines) + ("\n" if lines else ""))

    _reader, batches = read_all(path, batch_size, delimiter=",")

    accepted = [line for b in batches for line in b.rows]
    rejected = [r.row for r in only_rejected(batches)]
    consumed = sum(b.records for b in batches)
    assert len(accepted) + len(rejected) == consumed
    assert len(set(accepted) | set(rejected)) == consumed  # one outcome per record
    assert all(r.reason for r in only_rejected(batches))
    # Every physical line after the header belongs to some record: the records tile the file.
    assert set(accepted) | set(rejected) <= set(range(2, len(lines) + 2))
    if lines:
        assert min(set(accepted) | set(rejected)) == 2
    # Each accepted record has exactly the header's two fields.
    for b in batches:
        assert all(len(v) == len(b.rows) for v in b.columns.values())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    table=tables(),
    delimiter=st.sampled_from(DELIMITERS),
    batch_size=st.integers(min_value=1, max_value=6),
    block=BLOCKS,
    data=st.data(),
)
def test_skip_resumes_exactly_where_the_consumed_records_end(
    tmp_path, monkeypatch, table, delimiter, batch_size, block, data
):
    monkeypatch.setattr(sources, "BLOCK_CHARS", block)
    width, rows = table
    text, _ = csv_text([[f"c{i}" for i in range(width)], *rows], delimiter, csv.QUOTE_MINIMAL)
    # Sprinkle bad records in: they count towards the resume offset like good ones.
    lines = text.split("\r\n")
    bad_at = data.draw(st.sets(st.integers(min_value=1, max_value=len(lines) - 1), max_size=3))
    for i in sorted(bad_at, reverse=True):
        lines.insert(i, "")
    path = write(tmp_path, "\r\n".join(lines))
    reader, full = read_all(path, batch_size, delimiter=delimiter)
    everything = records(reader, full)
    skip = data.draw(st.integers(min_value=0, max_value=sum(b.records for b in full)))

    reader2, rest = read_all(path, batch_size, skip=skip, delimiter=delimiter)

    assert records(reader2, rest) == everything[skip:]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=tables(), delimiter=st.sampled_from(DELIMITERS))
def test_gzip_reads_the_same_as_plain(tmp_path, table, delimiter):
    width, rows = table
    text, _ = csv_text([[f"c{i}" for i in range(width)], *rows], delimiter, csv.QUOTE_MINIMAL)
    plain = read_all(write(tmp_path, text), 4, delimiter=delimiter)
    packed = read_all(write(tmp_path, text, "data.csv.gz", gz=True), 4, delimiter=delimiter)
    assert records(*packed) == records(*plain)
    assert packed[0].format == "csv"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.lists(st.from_regex(r"[A-Za-z0-9 ._-]{1,8}", fullmatch=True), min_size=3, max_size=3),
        min_size=2,
        max_size=10,
    ),
    delimiter=st.sampled_from(DELIMITERS),
)
def test_the_delimiter_is_sniffed(tmp_path, rows, delimiter):
    text, _ = csv_text([["id", "name", "amount"], *rows], delimiter, csv.QUOTE_MINIMAL)
    reader, batches = read_all(write(tmp_path, text), 100)
    assert reader.delimiter == delimiter
    assert records(reader, batches)[0][1] == rows[0]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    values=st.lists(st.text(alphabet="abcdéèüßñÆøÿ £°§½", min_size=1, max_size=10), min_size=1, max_size=10),
    encoding=st.sampled_from(["utf-8", "latin-1"]),
)
@example(values=["plain", "José"], encoding="latin-1")  # the only non-ASCII byte is near the end
def test_utf8_and_latin1_files_are_told_apart(tmp_path, values, encoding):
    text = "id;name\n" + "".join(f"{i};{v}\n" for i, v in enumerate(values))
    path = write(tmp_path, text.encode(encoding))
    reader, batches = read_all(path, 100)
    ascii_only = all(v.isascii() for v in values)
    assert reader.encoding == ("utf-8" if ascii_only else encoding)
    assert [v[1] for _, v in records(reader, batches)] == values


# -- CSV examples -----------------------------------------------------------------------------


def test_latin1_file_ending_in_an_accented_letter_is_read_as_latin1(tmp_path):
    # The last non-ASCII byte is close to the end of the file: not a cut UTF-8 character.
    path = write(tmp_path, "id,name\n1,José\n".encode("latin-1"))
    assert detect_encoding(path) == "latin-1"
    _reader, batches = read_all(path)
    assert batches[0].columns["name"].to_list() == ["José"]


def test_a_bom_is_not_part_of_the_first_column_name(tmp_path):
    path = write(tmp_path, "\ufeffid,name\n1,Ann\n")
    reader, batches = read_all(path)
    assert reader.encoding == "utf-8-sig"
    assert reader.columns == ["id", "name"]
    assert lists(batches[0]) == {"id": ["1"], "name": ["Ann"]}


def test_invalid_utf8_in_a_utf8_file_rejects_that_row_with_the_encoding_reason(tmp_path):
    path = write(tmp_path, b"id,name\n1,caf\xc3\xa9\n2,bad \xff\xfe here\n3,ok\n")
    _reader, batches = read_all(path, encoding="utf-8")
    assert batches[0].rows == [2, 4]
    assert batches[0].columns["name"].to_list() == ["café", "ok"]
    [bad] = only_rejected(batches)
    assert (bad.row, bad.column) == (3, "name")
    assert "not valid utf-8" in bad.reason and "latin-1" in bad.reason
    assert bad.value == "bad ÿþ here"  # the bytes shown, not lost


def test_autodetected_utf8_rejects_bad_bytes_after_the_sniffed_start(tmp_path):
    filler = "".join(f"{i},naïve {i:07d}\n" for i in range(SNIFF_BYTES // 16 + 10))
    content = ("id,name\n" + filler).encode("utf-8") + b"999,M\xfcller\n1000,end\n"
    path = write(tmp_path, content)
    reader, batches = read_all(path, 50_000)
    assert reader.encoding == "utf-8"
    [bad] = only_rejected(batches)
    n = filler.count("\n")
    assert bad.row == n + 2 and bad.column == "name" and "not valid utf-8" in bad.reason
    assert sum(len(b.rows) for b in batches) == n + 1


def test_unknown_encoding_is_a_source_error(tmp_path):
    with pytest.raises(SourceError, match="unknown encoding 'klingon'"):
        Reader(write(tmp_path, "a,b\n1,2\n"), ReadOptions(encoding="klingon"))


def test_row_level_problems_each_have_a_reason(tmp_path):
    content = 'id,name,amount\n1,Ann,3\n\n2,"Bo"b,4\n3,Cy\n4,Di,5,6\n   \n5,"Ed, Jr.",7\n6,Fa\x00x,8\n7,"Gil\n'
    reader, batches = read_all(write(tmp_path, content))
    assert [(line, v) for line, v in records(reader, batches) if isinstance(v, list)] == [
        (2, ["1", "Ann", "3"]),
        (8, ["5", "Ed, Jr.", "7"]),
    ]
    reasons = {r.row: r.reason for r in only_rejected(batches)}
    assert reasons[3] == "empty line"
    assert reasons[4].startswith("stray quote")
    assert reasons[5] == "has 2 fields where 3 were expected (a stray delimiter or quote?)"
    assert reasons[6] == "has 4 fields where 3 were expected (a stray delimiter or quote?)"
    assert reasons[7] == "empty line"
    assert "NUL" in reasons[9]
    assert reasons[10].startswith("a quote opened on line 10 is never closed")
    assert set(reasons) == {3, 4, 5, 6, 7, 9, 10}
    assert sum(b.records for b in batches) == 9


def test_a_quoted_field_spanning_lines_keeps_its_first_line_number(tmp_path):
    content = 'id,note\n1,"two\nlines"\n2,after\n'
    reader, batches = read_all(write(tmp_path, content))
    assert records(reader, batches) == [(2, ["1", "two\nlines"]), (4, ["2", "after"])]


def test_without_header_columns_are_numbered_or_named(tmp_path):
    path = write(tmp_path, "x;1\ny;2\n")
    reader, batches = read_all(path, header=False)
    assert reader.columns == ["1", "2"] and batches[0].rows == [1, 2]
    reader, batches = read_all(path, header=False, column_names=["name", "n"])
    assert lists(batches[0]) == {"name": ["x", "y"], "n": ["1", "2"]}


def test_empty_file_and_missing_file(tmp_path):
    with pytest.raises(SourceError, match="the file is empty"):
        read_all(write(tmp_path, ""), delimiter=",")
    with pytest.raises(SourceError, match="does not exist"):
        Reader(tmp_path / "nope.csv", ReadOptions())


def test_header_only_file_has_no_batches(tmp_path):
    reader, batches = read_all(write(tmp_path, "a,b\n"))
    assert batches == [] and reader.columns == ["a", "b"]


def test_wanted_columns_only(tmp_path):
    reader = Reader(write(tmp_path, "a,b,c\n1,2,3\n"), ReadOptions(), wanted=["c", "a"])
    [batch] = reader.batches(10)
    assert lists(batch) == {"a": ["1"], "c": ["3"]}


def test_preview_shows_all_columns_and_rejections(tmp_path):
    reader = Reader(write(tmp_path, 'a,b\n1,2\n"x\n'), ReadOptions(), wanted=["a"])
    columns, rows, rejected = reader.preview(5)
    assert columns == ["a", "b"] and rows == [["1", "2"]]
    assert [r.row for r in rejected] == [3]


# -- whitespace, JSON Lines, Parquet -------------------------------------------------------------


def test_whitespace_format(tmp_path):
    content = " 00004 0001 19970101  2   29.33\n\n 00021 0002 19970101  3\n00022   0003 19970102 1 9.99\n"
    reader, batches = read_all(
        write(tmp_path, content, "cd.txt"), header=False, column_names=["m", "s", "d", "n", "usd"]
    )
    assert reader.format == "whitespace"
    assert records(reader, batches) == [
        (1, ["00004", "0001", "19970101", "2", "29.33"]),
        (2, "empty line"),
        (3, "has 4 fields where 5 were expected"),
        (4, ["00022", "0003", "19970102", "1", "9.99"]),
    ]


def test_jsonl_lines_are_objects_and_bad_lines_are_rejected(tmp_path):
    lines = [
        json.dumps({"id": "a1", "n": 2, "ok": True, "price": 1.5, "tags": ["x"]}),
        "{not json",
        "",
        "[1, 2]",
        json.dumps({"id": "a2", "extra": "ignored"}),
    ]
    reader, batches = read_all(write(tmp_path, "\n".join(lines) + "\n", "o.jsonl"))
    assert reader.format == "jsonl"
    assert reader.columns == ["id", "n", "ok", "price", "tags"]
    assert records(reader, batches) == [
        (1, ["a1", "2", "true", "1.5", '["x"]']),
        (2, "not valid JSON: Expecting property name enclosed in double quotes at character 2"),
        (3, "empty line"),
        (4, "each line must be one JSON object"),
        (5, ["a2", None, None, None, None]),
    ]


def test_jsonl_with_wanted_columns_reads_keys_missing_from_the_first_line(tmp_path):
    content = '{"id": "a"}\n{"id": "b", "email": "b@x.example"}\n'
    reader = Reader(write(tmp_path, content, "o.ndjson.gz", gz=True), ReadOptions(), wanted=["id", "email"])
    [batch] = reader.batches(10)
    assert lists(batch) == {"id": ["a", "b"], "email": [None, "b@x.example"]}


def test_jsonl_skip(tmp_path):
    content = "".join(json.dumps({"i": i}) + "\n" for i in range(10))
    _reader, batches = read_all(write(tmp_path, content, "x.jsonl"), 3, skip=4)
    assert [b.rows for b in batches] == [[5, 6, 7], [8, 9, 10]]
    assert [v for b in batches for v in b.columns["i"]] == [str(i) for i in range(4, 10)]


def parquet_file(tmp_path: Path, n: int, name: str = "orders.parquet") -> Path:
    table = pa.table(
        {
            "order_id": [f"o{i}" for i in range(n)],
            "qty": pa.array(list(range(n)), type=pa.int64()),
            "price": [i + 0.25 for i in range(n)],
            "note": [None if i % 3 == 0 else f"n{i}" for i in range(n)],
        }
    )
    path = tmp_path / name
    pq.write_table(table, path, row_group_size=7)
    return path


def test_parquet_records_are_numbered_from_one_and_values_are_text(tmp_path):
    path = parquet_file(tmp_path, 20)
    reader, batches = read_all(path, 6)
    assert reader.format == "parquet"
    assert [b.records for b in batches] == [len(b.rows) for b in batches]
    rows = [line for b in batches for line in b.rows]
    assert rows == list(range(1, 21))
    first = lists(batches[0])
    assert first["order_id"][:2] == ["o0", "o1"]
    assert first["qty"][:2] == ["0", "1"]
    assert first["price"][:2] == ["0.25", "1.25"]
    assert first["note"][:2] == [None, "n1"]


@pytest.mark.parametrize("skip", [0, 1, 6, 7, 13, 19, 20, 25])
def test_parquet_skip_resumes_exactly(tmp_path, skip):
    path = parquet_file(tmp_path, 20)
    _reader, batches = read_all(path, 5, skip=skip)
    ids = [v for b in batches for v in b.columns["order_id"]]
    assert ids == [f"o{i}" for i in range(skip, 20)]
    assert [line for b in batches for line in b.rows] == list(range(skip + 1, 21))
    assert sum(b.records for b in batches) == max(0, 20 - skip)


def test_parquet_is_recognised_by_content_and_a_damaged_one_is_a_source_error(tmp_path):
    data = parquet_file(tmp_path, 3).read_bytes()
    unnamed = write(tmp_path, data, "export.bin")
    assert detect_format(unnamed) == "parquet"
    with pytest.raises(SourceError, match="not a readable Parquet file"):
        read_all(write(tmp_path, b"PAR1 garbage", "bad.parquet"))


def test_parquet_wanted_columns(tmp_path):
    reader = Reader(parquet_file(tmp_path, 4), ReadOptions(), wanted=["qty"])
    [batch] = reader.batches(10)
    assert lists(batch) == {"qty": ["0", "1", "2", "3"]}


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("a.csv", "x,y\n", "csv"),
        ("a.CSV.gz", "x,y\n", "csv"),
        ("a.jsonl.gz", '{"x": 1}\n', "jsonl"),
        ("a.ndjson", '{"x": 1}\n', "jsonl"),
        ("a.txt", "1 2\n", "whitespace"),
        ("export", '  {"x": 1}\n', "jsonl"),
        ("export", "x;y\n", "csv"),
        # A CSV whose first field starts with "{" (hypothesis found one read as JSON Lines).
        ("a.csv", "{,\n", "csv"),
        ("export", "{,x\n", "csv"),
        ("export", '{"x": 1}', "jsonl"),
    ],
)
def test_detect_format(tmp_path, name, content, expected):
    assert detect_format(write(tmp_path, content, name, gz=name.lower().endswith(".gz"))) == expected


def test_position_reports_bytes_read_for_progress(tmp_path):
    path = write(tmp_path, "a,b\n" + "1,2\n" * 10_000, "big.csv.gz", gz=True)
    reader = Reader(path, ReadOptions())
    assert reader.position() == 0
    positions = []
    for _ in reader.batches(1000):
        positions.append(reader.position())
    assert positions[-1] == path.stat().st_size
    assert positions == sorted(positions)


def test_plain_and_quoted_blocks_interleave_with_exact_line_numbers(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "BLOCK_CHARS", 256)
    rows = [[f"id{i}", str(i), f"name {i}"] for i in range(300)]
    rows[120][2] = 'two\nlines, "quoted"'
    rows[121][2] = "x" * 600  # longer than a block
    text, starts = csv_text([["id", "n", "name"], *rows], ",", csv.QUOTE_MINIMAL)
    text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    lines.insert(200, "")  # an empty line in the middle of a plain stretch
    path = write(tmp_path, "\n".join(lines))

    reader, batches = read_all(path, 50)

    got = records(reader, batches)
    assert (201, "empty line") in got
    accepted = [r for r in got if r[1] != "empty line"]
    expected_lines = [s if s < 201 else s + 1 for s in starts[1:]]
    assert accepted == list(zip(expected_lines, rows, strict=True))


def test_a_value_starting_with_u_feff_at_a_block_start_keeps_it(tmp_path, monkeypatch):
    # Polars drops a leading U+FEFF as a byte-order mark; inside a file it is data.
    monkeypatch.setattr(sources, "BLOCK_CHARS", 8)
    path = write(tmp_path, "a,b\n1,2\n\ufeffx,y\n")
    _reader, batches = read_all(path)
    assert lists(batches[0]) == {"a": ["1", "\ufeffx"], "b": ["2", "y"]}
