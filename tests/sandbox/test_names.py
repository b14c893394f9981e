"""File names in /mnt/data, sandbox links, and how the tool reads the model's arguments."""

from __future__ import annotations

import pytest

from assistantd.sandbox.names import find_links, safe_name, unique_name
from assistantd.sandbox.tool import parse_code


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("data.csv", "data.csv"),
        ("../../etc/passwd", "passwd"),
        ("/abs/path/report.xlsx", "report.xlsx"),
        ("C:\\Users\\me\\..\\notes.txt", "notes.txt"),
        ("..", "file-x"),
        ("...", "file-x"),
        (".bashrc", "bashrc"),
        ("a\nb\x00c.txt", "a_b_c.txt"),
        ("  spaced name.csv  ", "spaced name.csv"),
        ("données.csv", "données.csv"),
    ],
)
def test_safe_name(filename: str, expected: str) -> None:
    assert safe_name(filename, "file-x") == expected


def test_safe_name_keeps_the_extension_of_long_names() -> None:
    name = safe_name("x" * 300 + ".csv", "file-x")
    assert name.endswith(".csv")
    assert len(name.encode()) <= 200


def test_unique_name() -> None:
    assert unique_name("a.csv", set()) == "a.csv"
    assert unique_name("a.csv", {"a.csv"}) == "a-2.csv"
    assert unique_name("a.csv", {"a.csv", "a-2.csv"}) == "a-3.csv"


def test_find_links() -> None:
    known = {"a.csv": "file-a", "a.csv.zip": "file-z", "my report.csv": "file-r"}
    text = (
        "[zip](sandbox:/mnt/data/a.csv.zip), sandbox:/mnt/data/a.csv. "
        "[r](sandbox:/mnt/data/my%20report.csv) sandbox:/mnt/data/my report.csv "
        "sandbox:/mnt/data/other.csv"
    )
    found = find_links(text, known)
    assert [(text[s:e], link, file_id) for s, e, link, file_id in found] == [
        ("sandbox:/mnt/data/a.csv.zip", "sandbox:/mnt/data/a.csv.zip", "file-z"),
        ("sandbox:/mnt/data/a.csv", "sandbox:/mnt/data/a.csv", "file-a"),
        ("sandbox:/mnt/data/my%20report.csv", "sandbox:/mnt/data/my%20report.csv", "file-r"),
        ("sandbox:/mnt/data/my report.csv", "sandbox:/mnt/data/my report.csv", "file-r"),
    ]


@pytest.mark.parametrize(
    ("arguments", "code"),
    [
        ('{"code": "print(1)"}', "print(1)"),
        ('"print(2)"', "print(2)"),
        ("print(3)", "print(3)"),  # raw code, as OpenAI's own python tool takes it
        ('{"source": "x"}', None),
        ("", None),
    ],
)
def test_parse_code(arguments: str, code: str | None) -> None:
    assert parse_code(arguments) == code
