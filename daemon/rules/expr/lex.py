"""The expression lexer: text to tokens, each refusal naming the offending column."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from daemon.durations import parse_duration

MAX_DIGITS = 15
_KEYWORDS = ("and", "or", "not")
_OPS = ("<=", ">=", "==", "!=", "<", ">", "+", "-", "*", "/", "(", ")", ",")
_REFUSED = {
    "**": "'**' (power) is not allowed; multiply instead, e.g. x * x",
    "//": "'//' is not allowed; use / to divide", "%": "'%' is not allowed",
    "&&": "'&&' is not allowed; write 'and'", "&": "'&' is not allowed; write 'and'",
    "||": "'||' is not allowed; write 'or'", "|": "'|' is not allowed; write 'or'",
    "!": "'!' is not allowed; write 'not'", "~": "'~' is not allowed; write 'not' or '-'",
    "=": "'=' is not allowed; compare with == (there are no assignments or keyword arguments)",
    "[": "subscripts and lists are not allowed", "]": "subscripts and lists are not allowed",
    "{": "braces are not allowed", "}": "braces are not allowed",
}  # fmt: skip
_DIGITS = frozenset("0123456789")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WORD = re.compile(r"[0-9.][A-Za-z0-9_.]*")
_NUMBER = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)\Z")
_SYMBOL = re.compile(r"[A-Z][A-Z0-9_]*\Z")
_DURATION_LIKE = re.compile(r"(?:\d+(?:\.\d+)?[A-Za-z]+)+\Z")


class ExprError(ValueError):
    """Why an expression was refused, with the 1-based `column` of the offending token."""

    def __init__(self, message: str, column: int):
        super().__init__(f"column {column}: {message}")
        self.message = message
        self.column = column


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: Literal["num", "dur", "name", "kw", "str", "op", "end"]
    text: str
    col: int
    value: float = 0.0  # a number, or a duration in ms


def _word(word: str, col: int) -> _Tok:
    if _NUMBER.match(word):
        if sum(c.isdigit() for c in word) > MAX_DIGITS:
            raise ExprError(f"number {word} has more than {MAX_DIGITS} digits", col)
        return _Tok("num", word, col, float(word))
    if not _DURATION_LIKE.match(word):
        raise ExprError(f"'{word}' is neither a number (12, 0.5) nor a duration (30s, 20d)", col)
    try:
        ms = parse_duration(word).total_seconds() * 1000
    except ValueError as e:
        raise ExprError(str(e), col) from None
    return _Tok("dur", word, col, ms)


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        ch, col = text[i], i + 1
        if ch.isspace():
            i += 1
        elif ch in _DIGITS or (ch == "." and text[i + 1 : i + 2] in _DIGITS):
            m = _WORD.match(text, i)
            assert m is not None
            toks.append(_word(m.group(), col))
            i = m.end()
        elif ch.isascii() and (ch.isalpha() or ch == "_"):
            m = _NAME.match(text, i)
            assert m is not None
            kind: Literal["name", "kw"] = "kw" if m.group() in _KEYWORDS else "name"
            toks.append(_Tok(kind, m.group(), col))
            i = m.end()
        elif ch in "\"'":
            j = text.find(ch, i + 1)
            if j < 0:
                raise ExprError("unterminated quoted text", col)
            if j - i - 1 > 32:
                raise ExprError("quoted text longer than 32 characters", col)
            toks.append(_Tok("str", text[i + 1 : j], col))
            i = j + 1
        elif ch == ".":
            prev, after = (toks[-1] if toks else None), _NAME.match(text, i + 1)
            if prev and prev.kind == "name" and _SYMBOL.match(prev.text) and after:
                raise ExprError(
                    f'dotted symbols must be quoted: write "{prev.text}.{after.group()}"', col
                )
            raise ExprError("attribute access ('.') is not allowed", col)
        else:
            two = text[i : i + 2]
            op = two if two in _OPS or two in _REFUSED else ch
            if op in _REFUSED:
                raise ExprError(_REFUSED[op], col)
            if op not in _OPS:
                raise ExprError(f"unexpected character {ch!r}", col)
            toks.append(_Tok("op", op, col))
            i += len(op)
    toks.append(_Tok("end", "", n + 1))
    return toks
