"""The import reads and converts the next batch in a background thread (service._ahead)."""

from __future__ import annotations

import threading

import pytest

from patron.imports.service import _ahead


def test_items_arrive_in_order_and_an_error_arrives_after_the_items_before_it():
    def items():
        yield from range(5)
        raise ValueError("row 6 is broken")

    got = []
    with pytest.raises(ValueError, match="row 6 is broken"):
        for item in _ahead(items(), depth=2):
            got.append(item)
    assert got == [0, 1, 2, 3, 4]


def test_a_consumer_that_stops_early_stops_and_closes_the_producer():
    closed = threading.Event()
    produced = []

    def items():
        try:
            for i in range(1_000):
                produced.append(i)
                yield i
        finally:
            closed.set()

    stream = _ahead(items(), depth=2)
    assert next(stream) == 0
    stream.close()  # what happens when the batch loop raises

    assert closed.is_set()
    assert len(produced) <= 4  # the one consumed, up to `depth` queued, one in hand
    assert not any(t.name == "import-reader" for t in threading.enumerate())
