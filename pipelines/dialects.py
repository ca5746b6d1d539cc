"""The SQL in `sql/`, written once in DuckDB's dialect, rendered for PostgreSQL with sqlglot.

The files are kept portable where they can be (explicit column lists, `||` rather than
`format`, `CAST`, `coalesce`, `FILTER`, `LATERAL`, recursive CTEs); sqlglot translates the
rest (`QUALIFY` into a subquery, `date_diff` into date arithmetic, DuckDB's types into
Postgres's, DuckDB's float division of decimals kept as float division). Three things are
done here because sqlglot does not, or not as needed:

- `TRY_CAST(x AS <integer type>)` becomes `CASE WHEN x looks like an integer THEN CAST(...)`
  (sqlglot renders a plain CAST, which fails where TRY_CAST gives NULL); other TRY_CASTs are
  refused, with the file named, rather than rendered wrong.
- A subquery in FROM or JOIN without an alias gets one (PostgreSQL before 16 needs it).
- A macro becomes a SQL function. A scalar one (`CREATE MACRO x(a) AS <expression>`) returns
  the expression's type. A table macro, `CREATE MACRO billing.x(as_of) AS TABLE <select>`,
  becomes a set-returning SQL function, `billing.x(as_of date) RETURNS TABLE (...)
  LANGUAGE sql STABLE`, so that `SELECT * FROM billing.x(DATE '2026-06-30')` reads alike on
  both. Its columns are those of
  the contract (`pipelines/contract.py`) where it names the macro, else those the body
  returns, learnt by the view builder from a probe of the body (`Function.probe`). The body
  reads its parameter as `$1`, as a macro's parameter stands for its argument wherever the
  body names it. PostgreSQL inlines such a function into the query that calls it (LANGUAGE
  sql, STABLE, not STRICT, one SELECT), so `ar_trend_at`'s thirteen calls of
  `ar_summary_at` plan as one query.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from pipelines.contract import MACROS

SOURCE_DIALECT = "duckdb"
# A macro's parameters, by name, and their type on PostgreSQL (DuckDB's macros are untyped).
PARAMETER_TYPES = {
    "as_of": "date",
    "issue_date": "date",
    **dict.fromkeys(
        (
            "seen_at",
            "previous_from",
            "previous_stamp",
            "stamp",
            "created_at",
            "fetched_at",
            "last_event_at",
        ),
        "timestamptz",
    ),
}
FUNCTION_QUOTE = "$invoice_sync$"
_INTEGER_TEXT = r"'^\s*[-+]?[0-9]{1,18}\s*$'"  # digits a BIGINT surely holds


class RenderError(ValueError):
    """A statement that has no faithful rendering in the target dialect."""


@dataclass(frozen=True)
class Statement:
    """One statement, ready to run as it is."""

    sql: str
    kind: str  # view, schema, ... (the object it creates, lower case), or '' for others
    name: str | None  # the object it creates, qualified


@dataclass(frozen=True)
class Function:
    """A macro as a PostgreSQL function, to be created once its columns are known: a table
    macro returns a table, a scalar macro (`CREATE MACRO x(a) AS <expression>`) one value,
    the single column `value` of its body."""

    name: str  # qualified
    parameters: tuple[tuple[str, str], ...]  # (name, PostgreSQL type)
    body: str  # the macro's SELECT in PostgreSQL, its parameters as $1, $2, ...
    probe: str  # the same SELECT with each parameter a NULL of its type: learn its columns
    returns_table: bool = True

    kind = "function"

    @property
    def signature(self) -> str:
        return f"{self.name}({', '.join(kind for _, kind in self.parameters)})"

    def columns(self, probed: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """(name, type) of each column: the contract's type where it names the column."""
        declared = MACROS.get(self.name.split(".")[-1], {})
        return [
            (column, postgres_type(declared[column]) if column in declared else kind)
            for column, kind in probed
        ]

    def create_sql(self, probed: list[tuple[str, str]]) -> str:
        columns = self.columns(probed)
        if not self.returns_table:
            [(name, kind)] = columns
            parameters = ", ".join(f"{p} {t}" for p, t in self.parameters)
            return (
                f"CREATE FUNCTION {self.name}({parameters}) RETURNS {kind} "
                f"LANGUAGE sql STABLE AS {FUNCTION_QUOTE}\n"
                f"SELECT CAST({quote(name)} AS {kind}) FROM (\n{self.body}\n) AS _result\n"
                f"{FUNCTION_QUOTE}"
            )
        returns = ", ".join(f"{quote(name)} {kind}" for name, kind in columns)
        casts = ", ".join(f"CAST({quote(n)} AS {kind}) AS {quote(n)}" for n, kind in columns)
        parameters = ", ".join(f"{name} {kind}" for name, kind in self.parameters)
        return (
            f"CREATE FUNCTION {self.name}({parameters}) RETURNS TABLE ({returns}) "
            f"LANGUAGE sql STABLE AS {FUNCTION_QUOTE}\n"
            f"SELECT {casts} FROM (\n{self.body}\n) AS _result\n{FUNCTION_QUOTE}"
        )


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def postgres_type(duckdb_type: str) -> str:
    return exp.DataType.build(duckdb_type, dialect=SOURCE_DIALECT).sql("postgres")


def render(sql: str, dialect: str) -> list[Statement | Function]:
    """The statements of one file (placeholders already expanded) in `dialect`."""
    if dialect == SOURCE_DIALECT:
        return [Statement(sql, "", None)]
    if dialect != "postgres":
        raise RenderError(f"no rendering for the {dialect} dialect")
    try:
        trees = sqlglot.parse(sql, read=SOURCE_DIALECT)
        return [
            _to_postgres(tree) for tree in trees if tree and not isinstance(tree, exp.Semicolon)
        ]
    except SqlglotError as err:  # a parse error, or something PostgreSQL has no form of
        raise RenderError(f"sqlglot cannot render it: {str(err).splitlines()[0]}") from None


def _to_postgres(tree: exp.Expression) -> Statement | Function:
    tree = tree.transform(_portable_try_cast)
    _alias_subqueries(tree)
    if isinstance(tree, exp.Create) and str(tree.args.get("kind")).upper() == "MACRO":
        return _function(tree)
    kind, name = "", None
    if isinstance(tree, exp.Create):
        kind = str(tree.args.get("kind") or "").lower()
        name = tree.this.sql("postgres") if isinstance(tree.this, exp.Table) else None
    return Statement(_sql(tree), kind, name)


def _sql(tree: exp.Expression) -> str:
    return tree.sql("postgres", normalize_functions="lower", unsupported_level="raise")


def _portable_try_cast(node: exp.Expression) -> exp.Expression:
    if not isinstance(node, exp.TryCast):
        return node
    target = node.to
    if target.this not in exp.DataType.INTEGER_TYPES:
        raise RenderError(
            f"TRY_CAST(... AS {target.sql(SOURCE_DIALECT)}) has no PostgreSQL rendering; "
            "write it portably (only integer TRY_CASTs are rendered)"
        )
    value = node.this.sql("postgres")
    kind = target.sql("postgres")
    return sqlglot.parse_one(
        f"CASE WHEN CAST(({value}) AS TEXT) ~ {_INTEGER_TEXT} THEN CAST(({value}) AS {kind}) END",
        read="postgres",
    )


def _alias_subqueries(tree: exp.Expression) -> None:
    for number, subquery in enumerate(tree.find_all(exp.Subquery)):
        if isinstance(subquery.parent, exp.From | exp.Join) and not subquery.alias:
            subquery.set("alias", exp.TableAlias(this=exp.to_identifier(f"_subquery{number}")))


def _function(create: exp.Create) -> Function:
    macro = create.this
    returns = create.find(exp.ReturnsProperty)
    if not isinstance(macro, exp.UserDefinedFunction):
        raise RenderError("a macro sqlglot does not read as one has no PostgreSQL rendering")
    returns_table = bool(returns and returns.args.get("is_table"))
    name = macro.this.sql("postgres")
    names = [parameter.name for parameter in macro.expressions]
    unknown = [n for n in names if n not in PARAMETER_TYPES]
    if unknown:
        raise RenderError(
            f"{name}: no PostgreSQL type for parameter {', '.join(unknown)} "
            "(pipelines/dialects.py, PARAMETER_TYPES)"
        )
    body = create.expression
    if not returns_table:  # one value: the body's single column, named `value`
        body = exp.select(exp.alias_(body, "value"))

    def with_parameters(as_value: callable) -> str:  # type: ignore[valid-type]
        def swap(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Column) and not node.table and node.name in names:
                return as_value(node.name)
            return node

        return _sql(body.copy().transform(swap))

    return Function(
        name=name,
        parameters=tuple((n, PARAMETER_TYPES[n]) for n in names),
        body=with_parameters(lambda n: exp.Parameter(this=exp.Literal.number(names.index(n) + 1))),
        probe=with_parameters(
            lambda n: exp.Cast(
                this=exp.Null(), to=exp.DataType.build(PARAMETER_TYPES[n], dialect="postgres")
            )
        ),
        returns_table=returns_table,
    )
