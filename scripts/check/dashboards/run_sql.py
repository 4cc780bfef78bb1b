#!/usr/bin/env python3
"""Runs every query of Reactor's Grafana dashboards against real data.

Each ClickHouse query of helm/reactor/dashboards/*.json (panel targets,
annotation targets and variable queries) is expanded the way Grafana and the
grafana-clickhouse-datasource plugin (v4) expand it, then executed

  (a) on the ClickHouse server at --clickhouse-url (the test server), and
  (b) on current ClickHouse in-process through chDB (package chdb-core), into
      which the DDL of schemas/clickhouse/*.sql is applied and every row of the
      server's tables is copied,

for two states of the dashboard variables: their defaults (All) and a
selection (the first values each variable query returns). Both engines must
run every query and agree on its row count; with the defaults, every query
must return rows unless --allow-empty names its panel.

With --prometheus-url, the Prometheus queries (panel targets and label_values
variables) are evaluated on that server over the last --prometheus-range, with
the same rules (the instance variable may be pinned with --instance).

Expansion, in the plugin's order:
  1. $__conditionalAll(cond, $var) becomes `1=1` when $var is All or empty,
     else `cond` (the plugin's applyConditionalAll, run in the browser);
  2. Grafana template variables: $var, ${var}, ${var:format}, [[var]], and
     $__interval, $__interval_ms, $__rate_interval, $__range, $__from, $__to;
     without a format, a multi-value variable becomes 'a','b' for ClickHouse
     (the plugin's format) and a regex alternation for Prometheus;
  3. the plugin's backend macros (pkg/macros/macros.go): $__timeFilter(col) is
     `col >= toDateTime(<from s>) AND col <= toDateTime(<to s>)`,
     $__timeInterval(col) is `toStartOfInterval(toDateTime(col), INTERVAL <n> second)`,
     $__interval_s is <n>, $__fromTime/$__toTime are toDateTime(<s>), and the
     _ms, $__dateFilter and $__dateTimeFilter variants likewise.

Prints one line per query (id, rows on the server, rows in chDB) and a summary;
exits non-zero if any query fails, the engines disagree, or a query that must
return rows returns none.

Usage:
  run_sql.py --clickhouse-url http://127.0.0.1:18123 --database reactor \
      --from 2026-01-01T00:00:00Z --to 2026-01-01T00:30:00Z \
      [--user U --password P] [--dashboard FILE]... [--allow-empty TITLE]... \
      [--prometheus-url URL [--instance NAME] [--prometheus-range 10m]] [--show-sql]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[3]
CLICKHOUSE = "grafana-clickhouse-datasource"
PROMETHEUS = "prometheus"
ALL = "$__all"


# --------------------------------------------------------------- time ------
def parse_time(text: str) -> float:
    """RFC 3339, epoch seconds or epoch milliseconds, as epoch seconds."""
    if re.fullmatch(r"\d+(\.\d+)?", text):
        value = float(text)
        return value / 1000 if value > 1e11 else value
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def round_interval_ms(ms: float) -> int:
    """@grafana/data rangeutil.roundInterval."""
    steps = [
        (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500),
        (1500, 1000), (3500, 2000), (7500, 5000), (12500, 10000), (17500, 15000),
        (25000, 20000), (45000, 30000), (90000, 60000), (210000, 120000),
        (450000, 300000), (750000, 600000), (1050000, 900000), (1500000, 1200000),
        (2700000, 1800000), (5400000, 3600000), (9000000, 7200000),
        (16200000, 10800000), (24300000, 21600000), (64800000, 43200000),
        (129600000, 86400000), (604800000, 86400000), (1814400000, 604800000),
        (3628800000, 2592000000),
    ]
    for below, value in steps:
        if ms < below:
            return value
    return 31536000000


def duration_ms(text: str) -> int:
    """A Grafana interval string such as 15s, 1m, 2h, as milliseconds."""
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d|w|y)", text.strip())
    if not m:
        raise ValueError(f"not an interval: {text!r}")
    unit = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000,
            "w": 604_800_000, "y": 31_536_000_000}[m.group(2)]
    return int(m.group(1)) * unit


def interval_text(ms: int) -> str:
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


@dataclass
class TimeRange:
    start: float  # epoch seconds
    end: float

    def interval_ms(self, panel: dict, min_interval_ms: int) -> int:
        """Grafana's calculateInterval: range / max data points, rounded, at
        least the panel's min interval (or the datasource's)."""
        width = panel.get("gridPos", {}).get("w", 12) / 24 * 1800
        points = panel.get("maxDataPoints") or max(int(width), 1)
        ms = round_interval_ms((self.end - self.start) * 1000 / points)
        low = duration_ms(panel["interval"]) if panel.get("interval") else min_interval_ms
        return max(ms, low)


# ----------------------------------------------------------- variables -----
@dataclass
class Variable:
    name: str
    type: str
    multi: bool = False
    include_all: bool = False
    all_value: str | None = None
    current: list[str] | str = ""
    options: list[str] = field(default_factory=list)

    def is_all(self) -> bool:
        value = self.current
        return value == ALL or (isinstance(value, list) and ALL in value)


def grafana_format(value: list[str] | str, fmt: str) -> str:
    """Grafana's named variable formats (the ones SQL and PromQL use)."""
    values = value if isinstance(value, list) else [value]
    if fmt == "singlequote":
        return ",".join("'" + v.replace("'", "\\'") + "'" for v in values)
    if fmt == "sqlstring":
        return ",".join("'" + v.replace("'", "''") + "'" for v in values)
    if fmt == "doublequote":
        return ",".join('"' + v.replace('"', '\\"') + '"' for v in values)
    if fmt in ("csv", "raw"):
        return ",".join(values)
    if fmt == "pipe":
        return "|".join(values)
    if fmt == "regex":
        escaped = [re.sub(r"[\\^$*+?.()|{}\[\]/]", lambda m: "\\" + m.group(0), v) for v in values]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"
    raise ValueError(f"variable format {fmt!r} is not supported by run_sql.py")


def clickhouse_format(value: list[str] | str, _variable: Variable) -> str:
    """The plugin's Datasource.format: arrays become 'a','b'; scalars stay raw."""
    if isinstance(value, list):
        return "'" + "','".join(value) + "'"
    return value


def prometheus_format(value: list[str] | str, variable: Variable) -> str:
    """Grafana's Prometheus datasource interpolateQueryExpr."""
    def special(v: str) -> str:
        v = v.replace("\\", "\\\\\\\\")
        return re.sub(r"[$^*{}\[\]'+?.()|]", lambda m: "\\\\" + m.group(0), v)

    if not variable.multi and not variable.include_all:
        v = value if isinstance(value, str) else ",".join(value)
        return v.replace("\\", "\\\\").replace("'", "\\\\'")
    if isinstance(value, str):
        return special(value)
    escaped = [special(v) for v in value]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


TEMPLATE_RE = re.compile(
    r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?\}"
)


def replace_variables(text: str, variables: dict[str, Variable], builtins: dict[str, str],
                      default_format: Callable[[list[str] | str, Variable], str]) -> str:
    """Grafana's TemplateSrv.replace."""
    def one(m: re.Match) -> str:
        name = m.group(1) or m.group(2) or m.group(4)
        fmt = m.group(3) or m.group(6)
        if name in builtins:
            return builtins[name]
        variable = variables.get(name)
        if variable is None:
            return m.group(0)
        value: list[str] | str = variable.current
        if variable.is_all():
            if variable.all_value is not None and fmt not in ("text", "percentencode"):
                return variable.all_value
            value = [o for o in variable.options if o != ALL]
        if isinstance(value, list) and len(value) == 1 and not variable.multi:
            value = value[0]
        if fmt:
            return grafana_format(value, fmt)
        return default_format(value, variable)

    return TEMPLATE_RE.sub(one, text)


# ------------------------------------------------- the plugin's macros -----
def macro_args(text: str, open_index: int) -> list[str]:
    """The plugin's getMacroArgs: arguments of the call whose '(' is at
    open_index, split on commas at depth 1; [] if unbalanced."""
    args: list[str] = []
    depth, last = 0, 1
    sub = text[open_index:]
    for m in re.finditer(r"[(),]", sub):
        token = m.group(0)
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
        if token == "," and depth == 1:
            args.append(sub[last:m.end() - 1])
            last = m.end()
        if depth == 0:
            args.append(sub[last:m.end() - 1])
            return args
    return []


def apply_conditional_all(sql: str, variables: dict[str, Variable]) -> str:
    """The plugin's Datasource.applyConditionalAll (src/data/CHDatasource.ts)."""
    macro = "$__conditionalAll("
    index = sql.rfind(macro)
    while index != -1:
        params = macro_args(sql, index + len(macro) - 1)
        if len(params) != 2:
            return sql
        var = re.search(r"(?<=\$\{)[\w\d]+(?=\})|(?<=\$)[\w\d]+", params[1].strip())
        phrase = params[0]
        if var:
            variable = variables.get(var.group(0))
            if variable is not None:
                current = variable.current
                value = ",".join(current) if isinstance(current, list) else current
                if value in ("", ALL):
                    phrase = "1=1"
        sql = sql.replace(f"{macro}{params[0]},{params[1]})", phrase, 1)
        index = sql.rfind(macro)
    return sql


def expand_backend_macros(sql: str, rng: TimeRange, interval_ms: int) -> str:
    """The plugin's backend macros (pkg/macros/macros.go), as sqlds applies them."""
    start, end = int(rng.start), int(rng.end)
    start_ms, end_ms = int(rng.start * 1000), int(rng.end * 1000)
    seconds = int(max(interval_ms / 1000, 1))
    millis = int(max(interval_ms, 1))

    def date(t: int) -> str:
        return "toDate('" + dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%d") + "')"

    def one_arg(f: Callable[[str], str]) -> Callable[[list[str]], str]:
        def g(args: list[str]) -> str:
            if len(args) != 1:
                raise ValueError(f"expected 1 argument, received {len(args)}")
            return f(args[0])
        return g

    def date_time_filter(args: list[str]) -> str:
        if len(args) != 2:
            raise ValueError(f"expected 2 arguments, received {len(args)}")
        d, t = args
        return (f"({d} >= {date(start)} AND {d} <= {date(end)}) AND "
                f"({t} >= toDateTime({start}) AND {t} <= toDateTime({end}))")

    macros: dict[str, Callable[[list[str]], str]] = {
        "fromTime": lambda a: f"toDateTime({start})",
        "toTime": lambda a: f"toDateTime({end})",
        "fromTime_ms": lambda a: f"fromUnixTimestamp64Milli({start_ms})",
        "toTime_ms": lambda a: f"fromUnixTimestamp64Milli({end_ms})",
        "timeFilter": one_arg(lambda c: f"{c} >= toDateTime({start}) AND {c} <= toDateTime({end})"),
        "timeFilter_ms": one_arg(lambda c: f"{c} >= fromUnixTimestamp64Milli({start_ms}) AND "
                                           f"{c} <= fromUnixTimestamp64Milli({end_ms})"),
        "dateFilter": one_arg(lambda c: f"{c} >= {date(start)} AND {c} <= {date(end)}"),
        "dateTimeFilter": date_time_filter,
        "dt": date_time_filter,
        "timeInterval": one_arg(lambda c: f"toStartOfInterval(toDateTime({c}), INTERVAL {seconds} second)"),
        "timeInterval_ms": one_arg(lambda c: f"toStartOfInterval(toDateTime64({c}, 3), INTERVAL {millis} millisecond)"),
        "interval_s": lambda a: str(seconds),
    }
    names = sorted(macros, key=len, reverse=True)
    pattern = re.compile(r"\$__(" + "|".join(map(re.escape, names)) + r")(?![\w])")
    out, pos = [], 0
    for m in pattern.finditer(sql):
        if m.start() < pos:
            continue
        out.append(sql[pos:m.start()])
        end_at, args = m.end(), []
        if sql[m.end():m.end() + 1] == "(":
            args = [a.strip() for a in macro_args(sql, m.end())]
            depth, i = 0, m.end()
            while i < len(sql):
                depth += {"(": 1, ")": -1}.get(sql[i], 0)
                i += 1
                if depth == 0:
                    break
            end_at = i
        try:
            out.append(macros[m.group(1)](args))
        except ValueError as e:
            raise ValueError(f"$__{m.group(1)}: {e}") from None
        pos = end_at
    out.append(sql[pos:])
    expanded = "".join(out)
    left = re.search(r"\$\{?\w+", strip_strings(expanded))
    if left:
        raise ValueError(f"not expanded: {left.group(0)}")
    return expanded


def strip_strings(sql: str) -> str:
    return re.sub(r"'(?:\\.|''|[^'\\])*'", "''", sql)


# ------------------------------------------------------------ engines ------
class QueryError(Exception):
    pass


class Server:
    """A ClickHouse server over HTTP."""

    name = "server"

    def __init__(self, url: str, database: str, user: str | None, password: str | None):
        self.url, self.database = url.rstrip("/"), database
        self.params = {"database": database}
        if user:
            self.params["user"] = user
        if password:
            self.params["password"] = password
        self.version = self.text("SELECT version()").strip()

    def text(self, sql: str) -> str:
        url = self.url + "/?" + urllib.parse.urlencode(self.params)
        request = urllib.request.Request(url, data=sql.encode(), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.read().decode()
        except urllib.error.HTTPError as e:
            raise QueryError(e.read().decode(errors="replace").strip()) from None
        except urllib.error.URLError as e:
            raise QueryError(f"cannot reach {self.url}: {e.reason}") from None

    def rows(self, sql: str) -> list[list]:
        return json.loads(self.text(sql + "\nFORMAT JSONCompact"))["data"]


class Chdb:
    """Current ClickHouse in-process (chdb-core), loaded with the server's rows."""

    name = "chdb"

    def __init__(self, server: Server, tmp: Path):
        try:
            from chdb import session  # type: ignore[import-not-found]
        except ImportError as e:
            raise SystemExit(f"chdb is not installed in {sys.executable} ({e}); "
                             "run scripts/check/dashboards-types --install and use the python it prints") from None
        self.session = session.Session(str(tmp / "chdb"))
        self.version = self.rows("SELECT version()")[0][0]
        self.tables: dict[str, int] = {}
        for statement in ddl(server.database):
            self.session.query(statement)
        for table in self.rows(f"SELECT name FROM system.tables WHERE database = '{server.database}' ORDER BY name"):
            self.copy(server, table[0], tmp)

    def copy(self, server: Server, table: str, tmp: Path) -> None:
        """Copies every row (all versions, unmerged) of a server table."""
        qualified = f"{server.database}.{table}"
        columns = [line.split("\t")[:2] for line in server.text(f"DESCRIBE TABLE {qualified}").splitlines()]
        # DateTime crosses as epoch seconds, whatever either side's time zone.
        is_time = [ctype == "DateTime" for _, ctype in columns]
        select = ", ".join(f"toUInt32({n})" if t else n for (n, _), t in zip(columns, is_time))
        structure = ", ".join(f"{n} {'UInt32' if t else ctype}" for (n, ctype), t in zip(columns, is_time))
        convert = ", ".join(f"toDateTime({n})" if t else n for (n, _), t in zip(columns, is_time))
        path = tmp / f"{table}.tsv"
        data = server.text(f"SELECT {select} FROM {qualified} FORMAT TabSeparated")
        path.write_text(data)
        # Every row as the server holds it: no replacing of equal keys on insert.
        self.session.query(f"INSERT INTO {qualified} SELECT {convert} FROM file('{path}', 'TabSeparated', "
                           f"'{structure}') SETTINGS optimize_on_insert = 0")
        copied = int(self.rows(f"SELECT count() FROM {qualified}")[0][0])
        expected = data.count("\n")
        if copied != expected:
            raise SystemExit(f"chdb: loaded {copied} of the {expected} rows read from the server's {qualified}")
        self.tables[table] = copied

    def rows(self, sql: str) -> list[list]:
        try:
            result = self.session.query(sql, "JSONCompact")
        except Exception as e:  # chdb raises its own ChdbError / RuntimeError
            raise QueryError(str(e).strip()) from None
        return json.loads(result.bytes() or b'{"data": []}')["data"]


def ddl(database: str) -> list[str]:
    """schemas/clickhouse/*.sql for `database`, as Reactor applies them
    (src/sink/clickhouse/schema.rs)."""
    statements = []
    for path in sorted((REPO / "schemas/clickhouse").glob("*.sql")):
        for statement in path.read_text().split(";"):
            lines = [line for line in statement.splitlines() if not line.lstrip().startswith("--")]
            statement = "\n".join(lines).strip()
            if statement:
                statements.append(statement
                                  .replace("DATABASE IF NOT EXISTS reactor", f"DATABASE IF NOT EXISTS {database}")
                                  .replace(" reactor.", f" {database}."))
    return statements


class Prometheus:
    name = "prometheus"

    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def get(self, path: str, params: list[tuple[str, str]]) -> dict:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as e:
            try:
                body = json.loads(e.read())
            except ValueError:
                raise QueryError(f"HTTP {e.code}") from None
        except urllib.error.URLError as e:
            raise QueryError(f"cannot reach {self.url}: {e.reason}") from None
        if body.get("status") != "success":
            raise QueryError(f"{body.get('errorType')}: {body.get('error')}")
        return body["data"]


# -------------------------------------------------------- the checks ------
@dataclass
class Query:
    """One query of a dashboard: a panel target, an annotation or a variable."""

    dashboard: str
    kind: str  # panel, annotation, variable
    title: str
    ref: str
    datasource: str
    text: str
    panel: dict
    target: dict

    @property
    def id(self) -> str:
        return f"{self.dashboard} {self.kind} {self.title!r} {self.ref}"


def datasource_type(ref: object, variables: dict[str, dict]) -> str:
    if isinstance(ref, dict):
        if ref.get("type"):
            return str(ref["type"])
        ref = ref.get("uid", "")
    if isinstance(ref, str):
        m = re.fullmatch(r"\$\{?(\w+)\}?", ref)
        if m and m.group(1) in variables:
            return str(variables[m.group(1)].get("query", ""))
    return ""


def queries_of(path: Path) -> tuple[dict, list[Query]]:
    dashboard = json.loads(path.read_text())
    name = path.stem
    var_defs = {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}
    out: list[Query] = []
    for v in var_defs.values():
        if v["type"] == "query":
            query = v["query"] if isinstance(v["query"], str) else v["query"].get("rawSql") or v["query"].get("query", "")
            out.append(Query(name, "variable", v["name"], "var", datasource_type(v.get("datasource"), var_defs),
                             query, {}, {}))
    panels = []
    for p in dashboard.get("panels", []):
        panels.extend(p.get("panels", []) if p.get("type") == "row" else [p])
    for p in panels:
        for t in p.get("targets", []):
            ds = datasource_type(t.get("datasource") or p.get("datasource"), var_defs)
            text = t.get("rawSql") if ds == CLICKHOUSE else t.get("expr")
            out.append(Query(name, "panel", p.get("title", f"#{p.get('id')}"), t["refId"], ds, text or "", p, t))
    for a in dashboard.get("annotations", {}).get("list", []):
        t = a.get("target")
        if a.get("builtIn") or not isinstance(t, dict):
            continue
        ds = datasource_type(t.get("datasource") or a.get("datasource"), var_defs)
        text = t.get("rawSql") if ds == CLICKHOUSE else t.get("expr")
        out.append(Query(name, "annotation", a["name"], t.get("refId", "Anno"), ds, text or "", {}, t))
    return dashboard, out


def variables_of(dashboard: dict, database: str) -> dict[str, Variable]:
    out = {}
    for v in dashboard.get("templating", {}).get("list", []):
        current = v.get("current", {}).get("value", "")
        var = Variable(v["name"], v["type"], bool(v.get("multi")), bool(v.get("includeAll")),
                       v.get("allValue") or None, current,
                       [o["value"] for o in v.get("options", [])])
        if v["type"] == "constant":
            var.current = database if v["name"] == "database" else str(v.get("query", ""))
        out[v["name"]] = var
    return out


class Runner:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.range = TimeRange(parse_time(args.time_from), parse_time(args.time_to))
        self.failures: list[str] = []
        self.executed: dict[str, int] = {}
        self.empty_ok = set(args.allow_empty)
        # Rows (or series) each panel, annotation or variable showed, by state.
        self.shown: dict[tuple[str, str], int] = {}

    def fail(self, message: str) -> None:
        self.failures.append(message)
        print(f"FAIL {message}", flush=True)

    def count(self, engine: str) -> None:
        self.executed[engine] = self.executed.get(engine, 0) + 1

    def showed(self, state: str, q: Query, rows: int) -> None:
        key = (state, f"{q.dashboard} {q.kind} {q.title!r}")
        self.shown[key] = self.shown.get(key, 0) + rows

    def require_data(self, state: str, queries: list[Query]) -> None:
        """Every panel (over all its queries), annotation and variable of
        `queries` showed something in `state`, unless --allow-empty names it."""
        for q in queries:
            key = (state, f"{q.dashboard} {q.kind} {q.title!r}")
            if q.title not in self.empty_ok and self.shown.get(key) == 0:
                self.shown[key] = -1  # reported once
                self.fail(f"[{state}] {key[1]}: no data (it must show some; --allow-empty exempts it)")

    # ClickHouse ---------------------------------------------------------
    def clickhouse_sql(self, q: Query, variables: dict[str, Variable]) -> str:
        interval = self.range.interval_ms(q.panel, 1000)
        builtins = {"__interval": interval_text(interval), "__interval_ms": str(interval),
                    "__from": str(int(self.range.start * 1000)), "__to": str(int(self.range.end * 1000))}
        sql = apply_conditional_all(q.text, variables)
        sql = replace_variables(sql, variables, builtins, clickhouse_format)
        return expand_backend_macros(sql, self.range, interval)

    def run_clickhouse(self, state: str, q: Query, variables: dict[str, Variable],
                       engines: list) -> list[list] | None:
        try:
            sql = self.clickhouse_sql(q, variables)
        except ValueError as e:
            self.fail(f"[{state}] {q.id}: cannot expand: {e}")
            return None
        if self.args.show_sql:
            print(f"---- [{state}] {q.id}\n{sql}\n----")
        results: dict[str, list[list]] = {}
        for engine in engines:
            self.count(engine.name)
            try:
                results[engine.name] = engine.rows(sql)
            except QueryError as e:
                self.fail(f"[{state}] {q.id} on {engine.name}: {e}\n{sql}")
        counts = {name: len(rows) for name, rows in results.items()}
        shown = ", ".join(f"{name} {n} rows" for name, n in counts.items())
        print(f"[{state}] {q.id}: {shown}", flush=True)
        if len(results) < len(engines):
            return None
        if len(set(counts.values())) > 1:
            self.fail(f"[{state}] {q.id}: engines disagree on the row count ({shown})\n{sql}")
        self.showed(state, q, min(counts.values()))
        return next(iter(results.values()))

    def check_clickhouse(self, path: Path, dashboard: dict, queries: list[Query], engines: list) -> None:
        ch = [q for q in queries if q.datasource == CLICKHOUSE]
        if not ch:
            return
        for state in ("defaults", "selected"):
            variables = variables_of(dashboard, self.args.database)
            for q in (q for q in ch if q.kind == "variable"):
                rows = self.run_clickhouse(state, q, variables, engines)
                if rows is None:
                    continue
                var = variables[q.title]
                values = [str(r[0]) for r in rows]
                var.options = ([ALL] if var.include_all else []) + values
                if state == "selected" and values:
                    var.current = values[:2] if var.multi else values[0]
                    print(f"[{state}] {path.stem}: {var.name} = {var.current}")
            for q in (q for q in ch if q.kind != "variable"):
                self.run_clickhouse(state, q, variables, engines)
            # With a selection, a panel may rightly be empty (no anomaly there).
            self.require_data(state, ch if state == "defaults" else [q for q in ch if q.kind == "variable"])

    # Prometheus -----------------------------------------------------------
    def check_prometheus(self, path: Path, dashboard: dict, queries: list[Query], prom: Prometheus) -> None:
        pq = [q for q in queries if q.datasource == PROMETHEUS]
        if not pq:
            return
        end = time.time()
        start = end - duration_ms(self.args.prometheus_range) / 1000
        rng = TimeRange(start, end)
        scrape_ms = duration_ms(self.args.scrape_interval)
        variables = variables_of(dashboard, self.args.database)
        if self.args.instance and "instance" in variables:
            variables["instance"].current = [self.args.instance]
        state = "prometheus"
        for q in pq:
            interval = rng.interval_ms(q.panel, scrape_ms)
            builtins = {
                "__interval": interval_text(interval), "__interval_ms": str(interval),
                "__rate_interval": interval_text(max(interval + scrape_ms, 4 * scrape_ms)),
                "__range": f"{int(end - start)}s", "__range_s": str(int(end - start)),
                "__range_ms": str(int((end - start) * 1000)),
                "__from": str(int(start * 1000)), "__to": str(int(end * 1000)),
            }
            expr = replace_variables(q.text, variables, builtins, prometheus_format)
            if self.args.show_sql:
                print(f"---- [{state}] {q.id}\n{expr}\n----")
            self.count(prom.name)
            try:
                if q.kind == "variable":
                    m = re.fullmatch(r"\s*label_values\((?:(.*),\s*)?(\w+)\)\s*", expr)
                    if not m:
                        raise QueryError(f"unsupported variable query {expr!r}")
                    params = [("start", str(start)), ("end", str(end))]
                    if m.group(1):
                        params.append(("match[]", m.group(1)))
                    values = prom.get(f"/api/v1/label/{m.group(2)}/values", params)
                    var = variables[q.title]
                    var.options = ([ALL] if var.include_all else []) + values
                    rows = len(values)
                elif q.target.get("instant"):
                    rows = len(prom.get("/api/v1/query", [("query", expr), ("time", str(end))])["result"])
                else:
                    step = str(max(interval / 1000, 1))
                    rows = len(prom.get("/api/v1/query_range", [("query", expr), ("start", str(start)),
                                                                ("end", str(end)), ("step", step)])["result"])
            except QueryError as e:
                self.fail(f"[{state}] {q.id}: {e}\n{expr}")
                continue
            print(f"[{state}] {q.id}: {rows} {'values' if q.kind == 'variable' else 'series'}", flush=True)
            self.showed(state, q, rows)
        self.require_data(state, pq)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clickhouse-url", default=os.environ.get("CLICKHOUSE_URL", "http://127.0.0.1:18123"))
    parser.add_argument("--database", default="reactor", help="the database Reactor wrote (clickhouse.database)")
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--from", dest="time_from", required=True, help="RFC 3339 or epoch s/ms")
    parser.add_argument("--to", dest="time_to", required=True, help="RFC 3339 or epoch s/ms")
    parser.add_argument("--dashboard", action="append", type=Path,
                        help="a dashboard JSON file (repeatable; default: helm/reactor/dashboards/*.json)")
    parser.add_argument("--allow-empty", action="append", default=[], metavar="TITLE",
                        help="a panel, annotation or variable that may return no rows (repeatable)")
    parser.add_argument("--no-chdb", action="store_true", help="run on the server only")
    parser.add_argument("--prometheus-url", help="also evaluate the Prometheus queries there")
    parser.add_argument("--prometheus-range", default="10m", help="range ending now for Prometheus queries")
    parser.add_argument("--scrape-interval", default="15s",
                        help="the Prometheus datasource's scrape interval, for $__rate_interval")
    parser.add_argument("--instance", help="value of the instance variable (default: All)")
    parser.add_argument("--show-sql", action="store_true", help="print every expanded query")
    args = parser.parse_args()

    runner = Runner(args)
    dashboards = args.dashboard or sorted((REPO / "helm/reactor/dashboards").glob("*.json"))
    if not dashboards:
        print("no dashboards found", file=sys.stderr)
        return 1
    loaded = [(path, *queries_of(path)) for path in dashboards]
    needs_clickhouse = any(q.datasource == CLICKHOUSE for _, _, qs in loaded for q in qs)

    with tempfile.TemporaryDirectory(prefix="reactor-dashboards-") as tmp:
        engines: list = []
        if needs_clickhouse:
            try:
                server = Server(args.clickhouse_url, args.database, args.user, args.password)
            except QueryError as e:
                print(f"ClickHouse server: {e}", file=sys.stderr)
                return 1
            engines.append(server)
            print(f"ClickHouse server {server.version} at {args.clickhouse_url}, database {args.database}")
            if not args.no_chdb:
                chdb = Chdb(server, Path(tmp))
                engines.append(chdb)
                print(f"chDB (ClickHouse {chdb.version}) loaded with "
                      + ", ".join(f"{n} {t} rows" for t, n in chdb.tables.items()))
        prom = Prometheus(args.prometheus_url) if args.prometheus_url else None
        for path, dashboard, queries in loaded:
            unknown = {q.datasource for q in queries} - {CLICKHOUSE, PROMETHEUS}
            if unknown:
                runner.fail(f"{path.name}: queries on datasources run_sql.py cannot run: {sorted(unknown)}")
            runner.check_clickhouse(path, dashboard, queries, engines)
            if prom is not None:
                runner.check_prometheus(path, dashboard, queries, prom)
            elif any(q.datasource == PROMETHEUS for q in queries):
                print(f"{path.name}: Prometheus queries not run (no --prometheus-url)")

    executed = ", ".join(f"{n} on {e}" for e, n in runner.executed.items()) or "none"
    if runner.failures:
        print(f"FAILED: {len(runner.failures)} problem(s); queries executed: {executed}")
        return 1
    print(f"OK: queries executed: {executed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
