"""The worker's JSON codec (stream/core/messages.py): orjson, with the standard library's text."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from riskpulse.stream.core.messages import decode_counting, decode_judging, dumps, json_object, loads

finite = st.floats(allow_nan=False, allow_infinity=False)
scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | finite | st.text()
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                      max_leaves=20)


def stdlib(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@given(values)
def test_every_value_reads_back_as_the_standard_library_reads_its_own_text(value: Any) -> None:
    """The codec changed, the records did not: what a subscriber or a worker of the release before
    parses from a record is what it parsed before."""
    assert json.loads(dumps(value)) == json.loads(stdlib(value))
    assert loads(dumps(value)) == json.loads(stdlib(value))


@given(st.dictionaries(st.integers(-1000, 1000) | st.text(max_size=5), st.integers(), max_size=6))
def test_non_string_keys_are_written_as_the_standard_library_writes_them(value: dict[Any, int]) -> None:
    assert dumps(value) == stdlib(value)


def test_what_orjson_refuses_goes_to_the_standard_library() -> None:
    huge = {"n": 2**80}
    assert dumps(huge) == b'{"n":1208925819614629174706176}'
    with pytest.raises(UnicodeEncodeError):  # a lone surrogate: refused before as now
        dumps({"headline": "\ud800"})


@pytest.mark.parametrize("text", [b'{"a":NaN}', b'{"a":Infinity}', b"[1,", b"\xff", b"", b"null"])
def test_text_that_is_not_a_json_object_is_a_value_error_for_the_stage_to_dead_letter(text: bytes) -> None:
    with pytest.raises(ValueError):
        json_object(text)
    with pytest.raises(ValueError):
        decode_counting(text)
    with pytest.raises(ValueError):
        decode_judging(text)


def test_no_value_at_all_is_refused_too() -> None:
    with pytest.raises((ValueError, TypeError)):
        decode_counting(None)
    assert math.isnan(json.loads(b"NaN"))  # what the standard library let through, and orjson does not
