"""A small, safe parser for arithmetic answers: + - * / and parentheses over integer literals.

Never `eval`: the text is tokenised and parsed by recursive descent into exact `Fraction`s,
with hard limits on length and depth, so hostile model output cannot hang or crash grading.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

MAX_CHARS = 200
MAX_DEPTH = 32
MAX_DIGITS = 12
_TOKEN = re.compile(r"\s*(?:([0-9]+)|(.))")  # ASCII digits only: int() would read others


class ParseError(ValueError):
    """The text is not a well-formed arithmetic expression."""


@dataclass(frozen=True)
class Parsed:
    value: Fraction
    numbers: tuple[int, ...]  # the integer literals used, in order of appearance


def _tokens(text: str) -> list[str]:
    out = []
    for m in _TOKEN.finditer(text):
        num, sym = m.groups()
        if num is not None:
            if len(num) > MAX_DIGITS:
                raise ParseError(f"number too long: {num[:20]}...")
            out.append(num)
        elif sym is not None and not sym.isspace():
            if sym not in "+-*/()":
                raise ParseError(f"unexpected character {sym!r}")
            out.append(sym)
    return out


def apply_op(op: str, a: Fraction | int, b: Fraction | int) -> Fraction:
    """a op b exactly, for op in + - * /; ParseError on division by zero or an unknown op."""
    a, b = Fraction(a), Fraction(b)
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        if b == 0:
            raise ParseError("division by zero")
        return a / b
    raise ParseError(f"unknown operator {op!r}")


class _Parser:
    # expr := term (('+'|'-') term)* ; term := atom (('*'|'/') atom)* ; atom := INT | '(' expr ')'
    def __init__(self, tokens: list[str]):
        self.toks, self.pos, self.numbers = tokens, 0, []

    def peek(self) -> str | None:
        return self.toks[self.pos] if self.pos < len(self.toks) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            raise ParseError("unexpected end of expression")
        self.pos += 1
        return tok

    def expr(self, depth: int) -> Fraction:
        value = self.term(depth)
        while self.peek() in ("+", "-"):
            op = self.take()
            value = apply_op(op, value, self.term(depth))
        return value

    def term(self, depth: int) -> Fraction:
        value = self.atom(depth)
        while self.peek() in ("*", "/"):
            op = self.take()
            value = apply_op(op, value, self.atom(depth))
        return value

    def atom(self, depth: int) -> Fraction:
        if depth > MAX_DEPTH:
            raise ParseError("expression nested too deeply")
        tok = self.take()
        if tok == "(":
            value = self.expr(depth + 1)
            if self.take() != ")":
                raise ParseError("missing ')'")
            return value
        if tok.isdigit():
            self.numbers.append(int(tok))
            return Fraction(int(tok))
        raise ParseError(f"unexpected token {tok!r}")


def parse_expression(text: str) -> Parsed:
    """Parse `text` into its exact value and the literals it uses; ParseError if malformed."""
    if len(text) > MAX_CHARS:
        raise ParseError(f"expression longer than {MAX_CHARS} characters")
    parser = _Parser(_tokens(text))
    if not parser.toks:
        raise ParseError("empty expression")
    value = parser.expr(0)
    if parser.peek() is not None:
        raise ParseError(f"unexpected token {parser.peek()!r}")
    return Parsed(value=value, numbers=tuple(parser.numbers))
