"""Spec expressions (``[cleaning] derived``) checked against an allow-list before polars sees them.

polars' SQL layer plans a subquery while it parses: ``x IN (SELECT y FROM read_csv('/etc/passwd'))`` opens the file
inside ``pl.sql_expr`` and its error quotes the file's first line as a column name. Inspecting the ``pl.Expr`` that
comes back (``Expr.meta``) is therefore too late, and so an expression is parsed here first, with sqlglot, and only
an expression made of allowed parts reaches polars:

1. sqlglot's tokenizer splits the text. Comments are dropped; only plain ``'…'`` strings are accepted (no ``$$…$$``,
   ``E'…'``, ``N'…'``), and no parameters, placeholders or second statements.
2. The tokens are written back as a canonical text (strings and quoted names re-quoted, a space between tokens),
   which must tokenize to the same tokens again; sqlglot parses that text and every node of the tree must be of an
   allowed kind: columns, literals, arithmetic, comparison and logic operators, ``CASE``/``IF``, ``IN`` a list,
   ``BETWEEN``, ``LIKE``, casts to scalar types, and scalar functions of numbers, strings and dates.
3. polars compiles the canonical text, never the original: what polars parses is exactly the token sequence that
   was checked, so a difference between the two parsers' lexing (comments, escapes, quoting) cannot smuggle a
   subquery past the check.

Anything else (subqueries, ``WITH``, table functions such as ``read_csv``, aggregates, windows, unknown functions) is
refused with one line naming it.
"""

from __future__ import annotations

import polars as pl
from sqlglot import Token, TokenType, exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, SqlglotError

from trainers._errors import SpecError

__all__ = ["ALLOWED", "MAX_LENGTH", "NAMED_FUNCTIONS", "ExpressionError", "checked_sql", "sql_expression"]

# DuckDB's dialect lexes like polars' SQL: backslashes are plain characters in '…', quotes double inside '…' and
# "…", and `//`, `::` and ILIKE are operators.
_DIALECT = Dialect.get_or_raise("duckdb")

# Tokens written back verbatim: bare words and operators, which lex the same wherever they stand. Quoted forms are
# re-quoted; every other kind of literal is refused.
_QUOTED = {TokenType.STRING: "'", TokenType.IDENTIFIER: '"'}
_OTHER_STRINGS = {
    TokenType.BIT_STRING: "b'…' strings",
    TokenType.HEX_STRING: "x'…' strings",
    TokenType.BYTE_STRING: "E'…' strings",
    TokenType.NATIONAL_STRING: "N'…' strings",
    TokenType.NATIONAL_RAW_STRING: "raw strings",
    TokenType.RAW_STRING: "raw strings",
    TokenType.HEREDOC_STRING: "$$…$$ strings",
    TokenType.UNICODE_STRING: "U&'…' strings",
}
_REFUSED_TOKENS = {
    TokenType.SEMICOLON: "a second statement after ;",
    TokenType.PARAMETER: "the parameter {!r}",
    TokenType.PLACEHOLDER: "the placeholder {!r}",
    TokenType.SESSION_PARAMETER: "the session parameter {!r}",
    TokenType.UNKNOWN: "the character {!r}",
}
# Tokens that only a query has. The tree's check refuses queries already; this one does not depend on how sqlglot's
# grammar places them.
_QUERY_TOKENS = frozenset({TokenType.SELECT, TokenType.WITH, TokenType.VALUES, TokenType.TABLE, TokenType.UNION})
# No space around a dot: `.5` and `5.` stay numbers (qualified names, `t.x`, are refused by the tree's check).
_GLUED = {TokenType.DOT}

_STRUCTURE: tuple[type[exp.Expr], ...] = (
    exp.Column,
    exp.Identifier,
    exp.Literal,
    exp.Boolean,
    exp.Null,
    exp.Paren,
    exp.Neg,
    exp.Not,
    exp.And,
    exp.Or,
    exp.Xor,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.IntDiv,
    exp.Mod,
    exp.DPipe,
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.NullSafeEQ,
    exp.NullSafeNEQ,
    exp.Is,
    exp.In,
    exp.Between,
    exp.Like,
    exp.ILike,
    exp.Case,
    exp.If,
    exp.Cast,
    exp.TryCast,
    exp.DataType,
    exp.DataTypeParam,
    exp.Extract,
)
_FUNCTIONS: tuple[type[exp.Expr], ...] = (
    # numbers
    exp.Abs,
    exp.Sign,
    exp.Sqrt,
    exp.Cbrt,
    exp.Exp,
    exp.Ln,
    exp.Log,
    exp.Pow,
    exp.Round,
    exp.Floor,
    exp.Ceil,
    exp.Greatest,
    exp.Least,
    exp.Pi,
    exp.Degrees,
    exp.Radians,
    exp.Sin,
    exp.Cos,
    exp.Tan,
    exp.Cot,
    exp.Asin,
    exp.Acos,
    exp.Atan,
    exp.Atan2,
    # missing values
    exp.Coalesce,
    exp.Nullif,
    # strings
    exp.Lower,
    exp.Upper,
    exp.Length,
    exp.Trim,
    exp.Substring,
    exp.Concat,
    exp.ConcatWs,
    exp.Replace,
    exp.Left,
    exp.Right,
    exp.StartsWith,
    exp.EndsWith,
    exp.StrPosition,
    exp.Reverse,
    exp.Initcap,
    exp.RegexpLike,
    exp.RegexpReplace,
    exp.SplitPart,
    exp.Pad,
    # dates and times
    exp.TimeToStr,
)
ALLOWED = _STRUCTURE + _FUNCTIONS
"""The kinds of sqlglot node an expression may hold."""
MAX_LENGTH = 4096
"""Longest expression accepted, in characters."""
NAMED_FUNCTIONS = frozenset({"date_part", "log1p", "octet_length"})
"""Scalar functions polars' SQL has and sqlglot knows by name only (its ``Anonymous`` node)."""

_SCALAR_TYPES = (
    exp.DataType.NUMERIC_TYPES | exp.DataType.TEXT_TYPES | exp.DataType.TEMPORAL_TYPES | {exp.DataType.Type.BOOLEAN}
)
_DESCRIBED: dict[type[exp.Expr], str] = {
    exp.Subquery: "a subquery",
    exp.Select: "a subquery (SELECT)",
    exp.With: "a WITH clause",
    exp.CTE: "a WITH clause",
    exp.Union: "a UNION",
    exp.Values: "VALUES",
    exp.Table: "a table",
    exp.Exists: "EXISTS",
    exp.Any: "ANY",
    exp.All: "ALL",
    exp.Window: "a window (OVER)",
    exp.Star: "*",
    exp.Var: "the bare word",
    exp.Interval: "INTERVAL",
    exp.Array: "an array",
    exp.Struct: "a struct",
}


class ExpressionError(SpecError):
    """An expression that cannot be parsed or holds something outside the allow-list (INVALID_ARGUMENT); its message
    is one line naming what is at fault."""


def checked_sql(text: str) -> str:
    """The canonical text of an allowed expression, to hand to polars instead of ``text``.

    Raises:
        ExpressionError: the text does not parse, or holds a construct outside the allow-list (named).
    """
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"the expression is {len(text)} characters long; at most {MAX_LENGTH} are allowed")
    tokens = _tokens(text)
    canonical = _canonical(tokens)
    try:
        trees = _DIALECT.parse(canonical)
    except ParseError as error:
        raise ExpressionError(f"cannot parse {_shown(text)}: {_parse_problem(error)}") from None
    except RecursionError:
        raise ExpressionError(f"cannot parse {_shown(text)}: it is nested too deeply") from None
    except SqlglotError as error:
        raise ExpressionError(f"cannot parse {_shown(text)}: {str(error).splitlines()[0]}") from None
    statements = [tree for tree in trees if tree is not None]
    if len(statements) != 1:
        raise ExpressionError(f"{_shown(text)} must be one expression")
    for node in statements[0].walk():
        problem = _refused(node)
        if problem is not None:
            raise ExpressionError(
                f"{problem} is not allowed in an expression (columns, literals, operators and scalar functions only)"
            )
    for token in tokens:
        if token.token_type in _QUERY_TOKENS:
            raise ExpressionError(f"the keyword {token.text.upper()} is not allowed in an expression")
    return canonical


def sql_expression(text: str) -> pl.Expr:
    """The polars expression of an allowed SQL expression: ``checked_sql``, then ``pl.sql_expr`` on its result.

    Raises:
        ExpressionError: as ``checked_sql``, or polars cannot compile the expression (its first line).
    """
    canonical = checked_sql(text)
    try:
        return pl.sql_expr(canonical)
    except pl.exceptions.PolarsError as error:
        lines = str(error).strip().splitlines()
        raise ExpressionError(f"cannot parse {_shown(text)}: {lines[0] if lines else type(error).__name__}") from None


def _tokens(text: str) -> list[Token]:
    if not text.strip():
        raise ExpressionError("the expression is empty")
    try:
        tokens = _DIALECT.tokenize(text)
    except SqlglotError as error:
        raise ExpressionError(f"cannot parse {_shown(text)}: {str(error).splitlines()[0]}") from None
    for token in tokens:
        if token.token_type in _OTHER_STRINGS:
            raise ExpressionError(f"{_OTHER_STRINGS[token.token_type]} are not allowed; write plain '…' strings")
        if token.token_type in _REFUSED_TOKENS:
            raise ExpressionError(
                f"{_REFUSED_TOKENS[token.token_type].format(token.text)} is not allowed in an expression"
            )
    return tokens


def _canonical(tokens: list[Token]) -> str:
    parts = []
    for index, token in enumerate(tokens):
        if index and token.token_type not in _GLUED and tokens[index - 1].token_type not in _GLUED:
            parts.append(" ")
        quote = _QUOTED.get(token.token_type)
        parts.append(token.text if quote is None else quote + token.text.replace(quote, quote * 2) + quote)
    canonical = "".join(parts)
    # The written-back text must be the same tokens again, or polars could read something else than was checked.
    again = [(token.token_type, token.text) for token in _DIALECT.tokenize(canonical)]
    if again != [(token.token_type, token.text) for token in tokens]:
        raise ExpressionError(f"cannot parse {_shown(canonical)}: its tokens are ambiguous")
    return canonical


def _refused(node: exp.Expr) -> str | None:
    """What is wrong with ``node`` (named as the user wrote it), or None when it is allowed."""
    if isinstance(node, exp.Var) and isinstance(node.parent, exp.Extract) and node.arg_key == "this":
        return None  # the unit of EXTRACT(YEAR FROM d)
    if isinstance(node, exp.Anonymous) and node.name.lower() in NAMED_FUNCTIONS:
        return None
    if not isinstance(node, ALLOWED):
        return _describe(node)
    if isinstance(node, exp.Column) and (node.table or node.args.get("db") or node.args.get("catalog")):
        return f"the qualified name {node.sql(dialect=_DIALECT)!r}"
    if isinstance(node, exp.DataType) and node.this not in _SCALAR_TYPES:
        return f"a cast to {node.sql(dialect=_DIALECT)}"
    return None


def _describe(node: exp.Expr) -> str:
    for kind, words in _DESCRIBED.items():
        if isinstance(node, kind):
            if kind is exp.Var:
                return f"{words} {node.name!r}"
            # A query is named with what it would read: "a subquery reading the function read_csv()".
            functions = [
                inner for inner in node.walk() if inner is not node and isinstance(inner, exp.Func) and _refused(inner)
            ]
            sources = [inner for inner in functions if inner.find_ancestor(exp.From, exp.Table)] or functions
            return f"{words} reading {_function(sources[0])}" if sources else words
    if isinstance(node, exp.Func):
        return _function(node)
    return f"{type(node).__name__} ({node.sql(dialect=_DIALECT)[:40]})"


def _function(node: exp.Func) -> str:
    name = node.name if isinstance(node, exp.Anonymous) else node.sql_name().lower()
    return f"the function {name}()"


def _shown(text: str, most: int = 80) -> str:
    return repr(text if len(text) <= most else text[: most - 1] + "…")


def _parse_problem(error: ParseError) -> str:
    # sqlglot's message underlines the spot with terminal escapes over several lines; its description is one line.
    first = error.errors[0] if error.errors else {}
    description = first.get("description")
    return str(description) if description else str(error).splitlines()[0]
