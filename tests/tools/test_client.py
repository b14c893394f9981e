"""Client tools as functions and back (unit tests): grammars checked, names that fit, and the
item data a model's call becomes, however loosely the model wrote its arguments."""

from __future__ import annotations

import json
from typing import Any

import pytest

from assistantd.errors import InvalidRequestError
from assistantd.items.client_calls import call_data, custom_input
from assistantd.sandbox.code_stream import CodeStream
from assistantd.tools.client import check_grammar, offered_name
from assistantd.tools.client_params import CustomGrammarFormat

CODEX_GRAMMAR = (
    'start: begin_patch hunk+ end_patch\nbegin_patch: "*** Begin Patch" LF\n'
    'end_patch: "*** End Patch" LF?\nhunk: add_hunk\nadd_hunk: "*** Add File: " filename LF '
    'add_line+\nfilename: /(.+)/\nadd_line: "+" /(.*)/ LF -> line\n%import common.LF\n'
)


def grammar(syntax: str, definition: str) -> CustomGrammarFormat:
    return CustomGrammarFormat(type="grammar", syntax=syntax, definition=definition)


@pytest.mark.parametrize(
    ("syntax", "definition"),
    [("lark", CODEX_GRAMMAR), ("lark", '?start: "a" | "b"'), ("regex", r"^\d{3}-[a-z]+$")],
)
def test_grammars_that_parse(syntax: str, definition: str) -> None:
    check_grammar(grammar(syntax, definition), "tools[0].format.definition")


@pytest.mark.parametrize(
    ("syntax", "definition", "says"),
    [
        ("lark", 'start: "a" (', "Unclosed parenthesis"),
        ("lark", "start: missing", "'missing' used but not defined"),
        ("lark", 'rule: "a"', "no 'start' rule"),
        ("lark", "start: /[/", "unterminated character set"),
        ("lark", "%import nowhere.X\nstart: X", "imports a grammar"),
        ("regex", "a(b", "missing )"),
    ],
)
def test_grammars_that_do_not(syntax: str, definition: str, says: str) -> None:
    with pytest.raises(InvalidRequestError) as err:
        check_grammar(grammar(syntax, definition), "tools[2].format.definition")
    assert err.value.param == "tools[2].format.definition"
    assert says in err.value.message


def test_an_unknown_syntax_names_the_syntax() -> None:
    with pytest.raises(InvalidRequestError) as err:
        check_grammar(grammar("ebnf", "x"), "tools[0].format.definition")
    assert err.value.param == "tools[0].format.syntax"


def test_offered_names() -> None:
    assert offered_name("f", None) == "f"
    assert offered_name("lookup", "crm") == "crm__lookup"
    long = offered_name("f" * 60, "n" * 60)
    assert len(long) == 64
    assert long != offered_name("f" * 61, "n" * 60)  # kept apart by the digest


def test_a_custom_input_written_any_way() -> None:
    assert custom_input('{"input": "a\\nb"}') == "a\nb"
    assert custom_input('"quoted"') == "quoted"
    assert custom_input("*** Begin Patch") == "*** Begin Patch"
    stream = CodeStream("input")
    text = "".join(stream.feed(part) for part in ['{"inp', 'ut": "a\\', 'nb"}'])
    assert text == "a\nb"


CLIENTS: dict[str, dict[str, Any]] = {
    kind: {"kind": kind, "name": kind, "namespace": None}
    for kind in ("local_shell", "shell", "apply_patch", "tool_search")
}


def test_loose_arguments_still_make_valid_items() -> None:
    local = call_data(CLIENTS["local_shell"], "local_shell", '{"command": "ls -la", "env": 3}')
    assert local["action"]["command"] == ["bash", "-lc", "ls -la"]
    assert local["action"]["env"] == {}
    shell = call_data(CLIENTS["shell"], "shell", '{"commands": "pwd", "timeout_ms": "5"}')
    assert shell["action"] == {"commands": ["pwd"], "timeout_ms": None, "max_output_length": None}
    patch = call_data(CLIENTS["apply_patch"], "apply_patch", "not json")
    assert patch["operation"] == {"type": "update_file", "path": "", "diff": ""}
    nested = {"operation": {"type": "delete_file", "path": "a.txt", "diff": "x"}}
    assert call_data(CLIENTS["apply_patch"], "apply_patch", json.dumps(nested))["operation"] == {
        "type": "delete_file",
        "path": "a.txt",
    }
    search = call_data(CLIENTS["tool_search"], "tool_search", "weather")
    assert search == {"arguments": "weather", "execution": "client"}
