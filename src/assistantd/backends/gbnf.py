"""A custom tool's grammar as llama.cpp's GBNF (its server's `grammar` parameter).

`regex_to_gbnf(pattern)` converts a practical subset of regular expressions: literals and
escapes (`\\n`, `\\t`, `\\xHH`, `\\uHHHH`, escaped punctuation), `.` (any character but a newline,
unless `dotall`), classes (`[a-z_]`, `[^"]`, `\\d \\w \\s` and their negations), groups (`(...)`,
`(?:...)`, named), alternation, `?`, `*`, `+`, `{m}`, `{m,}`, `{m,n}` (lazy forms too: the
language is the same), and `^` / `$` at the ends of the whole pattern (the output must match it
whole anyway). `lark_to_gbnf(definition)` loads a Lark grammar with Lark's own loader, which
expands its EBNF into plain rules and its terminals into single patterns, and writes each rule
and terminal as a GBNF rule (terminals through `regex_to_gbnf`, `"..."i` literals letter by
letter); `%ignore`d terminals may come before any terminal and at the end, as Lark's lexer
skips them.

What has no GBNF equivalent raises `Unconvertible`: look-arounds, back-references, word
boundaries and other anchors, inline flags, possessive quantifiers, case-insensitive regex
terminals, `%declare`d terminals. The caller then describes the grammar in the tool's text
instead (`backends.constrained`).
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field

__all__ = ["Unconvertible", "lark_to_gbnf", "regex_to_gbnf"]

_MAX_REPEAT = 10_000  # a larger bound makes llama.cpp expand a huge rule


class Unconvertible(ValueError):
    """The grammar uses something GBNF cannot express (`str(exc)` says what)."""


# --- GBNF spelling -------------------------------------------------------------------------

# Written as they are inside a literal or a class; any other character is escaped.
_PLAIN = frozenset(string.ascii_letters + string.digits + " _.,:;!?'#%&*+/<=>@`{|}~()$")


def _char(c: str) -> str:
    """`c` inside a GBNF string literal or class."""
    if c in _PLAIN:
        return c
    if c == "\n":
        return "\\n"
    if c == "\t":
        return "\\t"
    if c == "\r":
        return "\\r"
    code = ord(c)
    if code < 0x100:
        return f"\\x{code:02X}"
    if code < 0x10000:
        return f"\\u{code:04X}"
    return f"\\U{code:08X}"


def _literal(text: str) -> str:
    return '"' + "".join(_char(c) for c in text) + '"'


# --- regular expressions -------------------------------------------------------------------

_DIGITS = [("0", "9")]
_WORD = [("a", "z"), ("A", "Z"), ("0", "9"), ("_", "_")]
_SPACE = [(" ", " "), ("\t", "\t"), ("\n", "\n"), ("\r", "\r"), ("\f", "\f"), ("\v", "\v")]
_CATEGORIES = {"d": _DIGITS, "w": _WORD, "s": _SPACE}
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v", "a": "\a", "0": "\0"}


@dataclass
class _Class:
    ranges: list[tuple[str, str]]
    negated: bool = False

    def gbnf(self) -> str:
        if self.negated and not self.ranges:
            return "."
        inner = "".join(_char(a) if a == b else f"{_char(a)}-{_char(b)}" for a, b in self.ranges)
        return f"[{'^' if self.negated else ''}{inner}]"


@dataclass
class _Node:
    """A sequence of alternatives, each a list of (atom, quantifier) pairs."""

    branches: list[list[tuple[str | _Class | _Node, str]]] = field(default_factory=list)

    def gbnf(self) -> str:
        return " | ".join(_sequence(branch) for branch in self.branches)


def _sequence(branch: list[tuple[str | _Class | _Node, str]]) -> str:
    parts: list[str] = []
    text = ""  # unquantified characters run together in one literal
    for atom, quantifier in branch:
        if isinstance(atom, str) and not quantifier:
            text += atom
            continue
        if text:
            parts.append(_literal(text))
            text = ""
        if isinstance(atom, str):
            parts.append(_literal(atom) + quantifier)
        elif isinstance(atom, _Class):
            parts.append(atom.gbnf() + quantifier)
        else:
            parts.append(f"({atom.gbnf()}){quantifier}")
    if text:
        parts.append(_literal(text))
    return " ".join(parts) or '""'


class _RegexParser:
    def __init__(self, pattern: str, dotall: bool) -> None:
        self.s = pattern
        self.i = 0
        self.dotall = dotall

    def parse(self) -> _Node:
        node = self._alternation(top=True)
        if self.i < len(self.s):
            raise Unconvertible(f"unbalanced ')' at {self.i}")
        return node

    def _peek(self) -> str | None:
        return self.s[self.i] if self.i < len(self.s) else None

    def _alternation(self, top: bool = False) -> _Node:
        node = _Node([self._branch(top)])
        while self._peek() == "|":
            self.i += 1
            node.branches.append(self._branch(top))
        return node

    def _branch(self, top: bool) -> list[tuple[str | _Class | _Node, str]]:
        items: list[tuple[str | _Class | _Node, str]] = []
        while (c := self._peek()) is not None and c not in "|)":
            if c == "^" and top and not items:
                self.i += 1
                continue
            if c == "$" and top and self.s[self.i + 1 : self.i + 2] in ("", "|"):
                self.i += 1
                continue
            atom = self._atom()
            items.append((atom, self._quantifier()))
        return items

    def _atom(self) -> str | _Class | _Node:
        c = self.s[self.i]
        self.i += 1
        if c == "(":
            if self.s.startswith("?:", self.i):
                self.i += 2
            elif self.s.startswith("?P<", self.i) or (
                self.s.startswith("?<", self.i) and self.s[self.i + 2 : self.i + 3] not in "=!"
            ):
                self.i = self.s.index(">", self.i) + 1
            elif self._peek() == "?":
                raise Unconvertible("look-arounds and inline flags have no GBNF equivalent")
            node = self._alternation()
            if self._peek() != ")":
                raise Unconvertible("unbalanced '('")
            self.i += 1
            return node
        if c == "[":
            return self._class()
        if c == ".":
            return _Class([], negated=True) if self.dotall else _Class([("\n", "\n")], True)
        if c == "\\":
            return self._escape()
        if c in "^$":
            raise Unconvertible(f"'{c}' inside the pattern has no GBNF equivalent")
        if c in "*+?{":
            if c == "{" and not self._bounds_ahead(self.i - 1):
                return c
            raise Unconvertible(f"nothing to repeat at {self.i - 1}")
        return c

    def _escape(self) -> str | _Class:
        if self.i >= len(self.s):
            raise Unconvertible("a trailing backslash")
        c = self.s[self.i]
        self.i += 1
        lower = c.lower()
        if lower in _CATEGORIES:
            return _Class(list(_CATEGORIES[lower]), negated=c.isupper())
        if c in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[c]
        if c in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[c]
            digits = self.s[self.i : self.i + width]
            if len(digits) != width:
                raise Unconvertible(f"a short \\{c} escape")
            self.i += width
            return chr(int(digits, 16))
        if c.isalnum():
            raise Unconvertible(f"'\\{c}' has no GBNF equivalent")
        return c

    def _class(self) -> _Class:
        negated = self._peek() == "^"
        if negated:
            self.i += 1
        ranges: list[tuple[str, str]] = []
        first = True
        while True:
            c = self._peek()
            if c is None:
                raise Unconvertible("unbalanced '['")
            if c == "]" and not first:
                self.i += 1
                return _Class(ranges, negated)
            first = False
            low = self._class_char()
            if isinstance(low, _Class):
                if low.negated:
                    raise Unconvertible("a negated category inside a class")
                ranges.extend(low.ranges)
                continue
            if self._peek() == "-" and self.s[self.i + 1 : self.i + 2] not in ("]", ""):
                self.i += 1
                high = self._class_char()
                if isinstance(high, _Class):
                    raise Unconvertible("a category as a range's end")
                ranges.append((low, high))
            else:
                ranges.append((low, low))

    def _class_char(self) -> str | _Class:
        c = self.s[self.i]
        self.i += 1
        if c == "\\":
            if self._peek() == "b":
                self.i += 1
                return "\b"
            return self._escape()
        if c == "[" and self._peek() == ":":
            raise Unconvertible("POSIX classes have no GBNF equivalent")
        return c

    def _bounds_ahead(self, at: int) -> bool:
        end = self.s.find("}", at)
        inner = self.s[at + 1 : end] if end > at else ""
        low, _, high = inner.partition(",")
        return bool(inner) and low.isdigit() and (not high or high.isdigit())

    def _quantifier(self) -> str:
        c = self._peek()
        if c is None or c not in "*+?{":
            return ""
        if c == "{":
            if not self._bounds_ahead(self.i):
                return ""
            end = self.s.index("}", self.i)
            inner = self.s[self.i + 1 : end]
            self.i = end + 1
            low, comma, high = inner.partition(",")
            if int(low) > _MAX_REPEAT or (high and int(high) > _MAX_REPEAT):
                raise Unconvertible(f"a repetition over {_MAX_REPEAT}")
            quantifier = "{" + low + (comma + high) + "}"
        else:
            self.i += 1
            quantifier = c
        if self._peek() == "?":
            self.i += 1  # lazy: the same language
        elif self._peek() == "+":
            raise Unconvertible("possessive quantifiers have no GBNF equivalent")
        return quantifier


def regex_body(pattern: str, *, dotall: bool = False) -> str:
    """The GBNF expression (the right-hand side of a rule) matching `pattern` whole."""
    return _RegexParser(pattern, dotall).parse().gbnf()


def regex_to_gbnf(pattern: str) -> str:
    """A GBNF grammar whose `root` matches what `pattern` fully matches."""
    return f"root ::= {regex_body(pattern)}\n"


# --- Lark ----------------------------------------------------------------------------------


def _names(symbols: list[str]) -> dict[str, str]:
    """GBNF names (letters, digits and '-') for Lark's rule and terminal names."""
    taken = {"root", "ignored"}
    found: dict[str, str] = {}
    for symbol in symbols:
        base = symbol.replace("_", "-").strip("-") or "r"
        name, n = base, 0
        while name in taken:
            n += 1
            name = f"{base}-{n}"
        taken.add(name)
        found[symbol] = name
    return found


def lark_to_gbnf(definition: str) -> str:
    """A GBNF grammar for the Lark grammar `definition` (checked already: it loads)."""
    from lark.lexer import PatternStr
    from lark.load_grammar import GrammarBuilder

    builder = GrammarBuilder()
    builder.load_grammar(definition, "<definition>")
    grammar = builder.build()
    terminals, rules, ignore = grammar.compile(["start"], set())
    by_name = {t.name: t for t in terminals}
    alternatives: dict[str, list[list[str]]] = {}
    for rule in rules:
        expansion = [symbol.name for symbol in rule.expansion]
        alternatives.setdefault(rule.origin.name, []).append(expansion)
    for expansions in alternatives.values():
        for name in (n for e in expansions for n in e):
            if name not in alternatives and name not in by_name:
                raise Unconvertible(f"terminal {name} has no definition (%declare)")
    _check_left_recursion(alternatives)
    names = _names([*alternatives, *by_name])
    skip = "ignored " if ignore else ""

    def spelled(expansion: list[str]) -> str:
        words = [f"{skip}{names[n]}" if n in by_name else names[n] for n in expansion]
        return " ".join(words) or '""'

    lines = [f"root ::= {names['start']}{' ignored' if ignore else ''}"]
    for origin, expansions in alternatives.items():
        heads = [e for e in expansions if not e or e[0] != origin]
        tails = [e[1:] for e in expansions if e and e[0] == origin]
        body = " | ".join(spelled(e) for e in heads)
        if tails:  # X ::= a | X b  is  X ::= a (b)*, which GBNF can take
            body = f"({body}) ({' | '.join(spelled(t) for t in tails)})*"
        lines.append(f"{names[origin]} ::= {body}")
    for name, terminal in by_name.items():
        pattern = terminal.pattern
        flags = set(pattern.flags)
        if isinstance(pattern, PatternStr):
            if flags - {"i"}:
                raise Unconvertible(f"terminal {name} has flags {sorted(flags)}")
            body = _literal(pattern.value) if not flags else _caseless(pattern.value)
        else:
            if flags - {"s"}:
                raise Unconvertible(f"terminal {name} has flags {sorted(flags)}")
            body = regex_body(pattern.value, dotall="s" in flags)
        lines.append(f"{names[name]} ::= {body}")
    if ignore:
        lines.append(f"ignored ::= ({' | '.join(names[n] for n in ignore)})*")
    return "\n".join(lines) + "\n"


def _check_left_recursion(alternatives: dict[str, list[list[str]]]) -> None:
    """A rule that can begin with itself other than directly (`a: b "x"`, `b: a | "y"`), which
    llama.cpp refuses and the rewrite of `X: a | X b` does not cover."""
    nullable: set[str] = set()
    changed = True
    while changed:
        changed = False
        for origin, expansions in alternatives.items():
            if origin not in nullable and any(all(n in nullable for n in e) for e in expansions):
                nullable.add(origin)
                changed = True
    corners: dict[str, set[str]] = {}
    for origin, expansions in alternatives.items():
        found = corners.setdefault(origin, set())
        for expansion in expansions:
            for at, name in enumerate(expansion):
                if name in alternatives and not (at == 0 and name == origin):
                    found.add(name)
                if name not in nullable:
                    break
    for origin in alternatives:
        seen: set[str] = set()
        todo = list(corners[origin])
        while todo:
            name = todo.pop()
            if name == origin:
                raise Unconvertible(f"rule {origin} is left-recursive through other rules")
            if name not in seen:
                seen.add(name)
                todo.extend(corners.get(name, ()))


def _caseless(text: str) -> str:
    parts = []
    for c in text:
        if c.lower() != c.upper():
            parts.append(f"[{_char(c.lower())}{_char(c.upper())}]")
        else:
            parts.append(_literal(c))
    return " ".join(parts) or '""'
