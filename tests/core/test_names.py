"""File names for people and for --json: escaped, and never a byte lost."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pbackup.core import names

BAD = b"Docs/bad\xffname.txt".decode("utf-8", "surrogateescape")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("Docs/été.txt", "Docs/été.txt"),
        (BAD, "Docs/bad\\xffname.txt"),
        ("a\nb\tc\x1b", "a\\nb\\tc\\x1b"),  # a name cannot forge a line of output
        ("back\\slash", "back\\\\slash"),  # so "\\xff" shown can only be the byte
        ("zero\u200bwidth", "zero\\u200bwidth"),
    ],
)
def test_shown(name, text):
    assert names.shown(name) == text


def test_json_keeps_valid_names_and_adds_exact_bytes_for_the_others():
    entry = {"path": BAD, "target": "plain"}
    names.to_json(entry, "path")
    names.to_json(entry, "target")
    assert entry == {"path": "Docs/bad\\xffname.txt", "path_b64": "RG9jcy9iYWT/bmFtZS50eHQ=",
                     "target": "plain"}  # fmt: skip
    listed = {"added": ["ok", BAD]}
    names.to_json(listed, "added")
    assert listed["added_b64"] == [None, "RG9jcy9iYWT/bmFtZS50eHQ="]
    text = json.dumps(listed, ensure_ascii=False)
    assert text.encode("utf-8")  # strict UTF-8: no lone surrogate anywhere
    assert names.from_json(json.loads(text), "added") == ["ok", BAD]


def test_a_list_of_valid_names_gets_no_twin():
    data = {"kept_newer": ["a", "b/é"]}
    names.to_json(data, "kept_newer")
    assert data == {"kept_newer": ["a", "b/é"]}


@given(st.binary(max_size=12))
def test_any_name_round_trips_through_json(raw):
    name = raw.decode("utf-8", "surrogateescape")
    data = {"path": name}
    names.to_json(data, "path")
    parsed = json.loads(json.dumps(data, ensure_ascii=False).encode("utf-8"))
    assert names.raw(names.from_json(parsed, "path")) == raw
