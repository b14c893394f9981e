"""Custom tool grammars as llama.cpp's GBNF: what converts, to what, and what is refused (the
embedded model's tests check that llama.cpp takes and honours what comes out)."""

from __future__ import annotations

import pytest

from assistantd.backends.constrained import grammar_params
from assistantd.backends.gbnf import Unconvertible, lark_to_gbnf, regex_to_gbnf
from tests.responses.test_client_tools import CODEX_PATCH_GRAMMAR


@pytest.mark.parametrize(
    ("pattern", "gbnf"),
    [
        (r"\d+", "[0-9]+"),
        ("abc", '"abc"'),
        ("ab*c", '"a" "b"* "c"'),
        (r"^[a-z_]{2,5}$", "[a-z_]{2,5}"),
        (r"(?:x|y)?z{3,}", '("x" | "y")? "z"{3,}'),
        (r"(?P<word>\w+)+?", "([a-zA-Z0-9_]+)+"),
        ("a|b|", '"a" | "b" | ""'),
        (r"[^\"\\]*", r"[^\x22\x5C]*"),
        (r"[\d\s-]", r"[0-9 \t\n\r\x0C\x0B\x2D]"),
        (r"\D\W\S", r"[^0-9] [^a-zA-Z0-9_] [^ \t\n\r\x0C\x0B]"),
        (r".\.", r'[^\n] "."'),
        (r"\x41\u00e9\n\t", r'"A\xE9\n\t"'),
        ("é€", r'"\xE9\u20AC"'),
        ("a{x}", '"a{x}"'),
        (r"\$\(\)", '"$()"'),
    ],
)
def test_regex(pattern: str, gbnf: str) -> None:
    assert regex_to_gbnf(pattern) == f"root ::= {gbnf}\n"


@pytest.mark.parametrize(
    "pattern",
    [
        r"(?=a)b",
        r"(?!a)b",
        r"(?<=a)b",
        r"(a)\1",
        r"\bword\b",
        r"a$b",
        r"(?i)abc",
        "a*+",
        "a{1,99999}",
        "[[:alpha:]]",
        r"[\W_]",
    ],
)
def test_regex_without_a_gbnf_form(pattern: str) -> None:
    with pytest.raises(Unconvertible):
        regex_to_gbnf(pattern)


def test_lark_rules_and_terminals() -> None:
    gbnf = lark_to_gbnf(
        'start: greeting NAME "!"?\ngreeting: "hello"i | "hi"\nNAME: /[A-Z][a-z]*/\n'
    )
    lines = gbnf.splitlines()
    assert lines[0] == "root ::= start"
    assert "start ::= greeting NAME BANG | greeting NAME" in lines
    assert "greeting ::= HELLO | HI" in lines
    assert "NAME ::= [A-Z] [a-z]*" in lines
    assert "HELLO ::= [hH] [eE] [lL] [lL] [oO]" in lines
    assert 'HI ::= "hi"' in lines
    assert 'BANG ::= "!"' in lines


def test_lark_repetition_is_not_left_recursive() -> None:
    gbnf = lark_to_gbnf('start: item+ ("," item)*\nitem: "x"\nexpr: expr "+" item | item\n')
    assert "start-plus-0 ::= (item) (item)*" in gbnf
    assert "::= start-plus-0" in gbnf


def test_lark_left_recursion_becomes_repetition() -> None:
    gbnf = lark_to_gbnf('start: expr\nexpr: expr "+" NUM | NUM\nNUM: /[0-9]+/\n')
    assert "expr ::= (NUM) (PLUS NUM)*" in gbnf.splitlines()


def test_lark_ignored_terminals_may_come_between_tokens() -> None:
    gbnf = lark_to_gbnf("start: WORD+\n%import common.WORD\n%import common.WS\n%ignore WS\n")
    lines = gbnf.splitlines()
    assert lines[0] == "root ::= start ignored"
    assert "start-plus-0 ::= (ignored WORD) (ignored WORD)*" in lines
    assert "ignored ::= (WS)*" in lines


def test_codex_apply_patch_grammar() -> None:
    gbnf = lark_to_gbnf(CODEX_PATCH_GRAMMAR)
    lines = gbnf.splitlines()
    assert lines[0] == "root ::= start"
    assert "start ::= begin-patch start-plus-0 end-patch" in lines
    assert any(line.endswith(':= "*** Begin Patch"') for line in lines)
    assert any(line.endswith(":= ([^\\n]+)") for line in lines)  # filename: /(.+)/


@pytest.mark.parametrize(
    "definition",
    [
        'start: a\na: b "x"\nb: a | "y"\n',  # left-recursive through another rule
        "start: X\n%declare X\n",
        "start: A\nA: /(?=a)a/\n",
        "start: A\nA: /abc/i\n",
    ],
)
def test_lark_without_a_gbnf_form(definition: str) -> None:
    with pytest.raises(Unconvertible):
        lark_to_gbnf(definition)


class TestDialects:
    def test_vllm(self) -> None:
        assert grammar_params("vllm", "regex", "a+") == {"structured_outputs": {"regex": "a+"}}
        assert grammar_params("vllm", "lark", "start: A") == {
            "structured_outputs": {"grammar": "start: A"}
        }

    def test_older_vllm(self) -> None:
        assert grammar_params("vllm-guided", "regex", "a+") == {"guided_regex": "a+"}
        assert grammar_params("vllm-guided", "lark", "start: A") == {"guided_grammar": "start: A"}

    def test_llama_cpp(self) -> None:
        assert grammar_params("llama.cpp", "regex", "a+") == {"grammar": 'root ::= "a"+\n'}
        assert grammar_params("llama.cpp", "regex", "(?=a)a") is None
