#!/usr/bin/env python3
"""Checks of the Helm chart charts/casewire, with the real Helm library.

Renders and lints the chart through helm-python-sdk (Helm's own Go SDK,
v4, bound through its C ABI: the same engine, values coalescing and
values.schema.json validation as `helm template` / `helm lint`), validates
every rendered manifest against the Kubernetes OpenAPI schemas bundled in
kubernetes-validate (offline, strict), and asserts what every container of
every profile must be: non-root, read-only root file system, probes,
resources, secrets only through secretKeyRef.

The monitoring the chart ships is held to the code: every metric the
Grafana dashboard (dashboards/casewire.json) or the PrometheusRule queries,
and every label it filters or groups by, must be one the Rust sources under
crates/ and services/ record (grepped at check time), and the values
reference in charts/casewire/README.md must be what
tests/install/values_table.py generates.

When the project's own binary is built (target/debug/casewire or
target/release/casewire, or $CASEWIRE_BIN), the rendered casewire.toml and
each container's environment are also loaded by it, so a config key the
binary does not know fails here rather than at a pod's start; with the
portal apart (portal.enabled), `casewire serve portal` is started with the
portal container's environment and must serve, be live and not ready while
the case API is unreachable.

The Ingress and HTTPRoute are held to the code as well: every path the
portal serves (its route attributes under services/portal/src) and every
scope of the case API (services/case-api/src/lib.rs) must reach the
service that serves it, by the Ingress/Gateway API longest-prefix rules.

Prints one line per check (PASS/FAIL; GAP lines name known gaps and are not
counted) and finally `install checks: N passed, M failed`; exits 1 if M > 0.
Run it through tests/install/chart.sh, which installs what it needs.
"""

from __future__ import annotations

import argparse
import copy
import functools
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import yaml

try:
    import helm_python as helm
except ImportError:  # pragma: no cover - chart.sh installs it
    sys.exit("helm_python is missing: run tests/install/chart.sh (PyPI: helm-python-sdk)")
try:
    import kubernetes_validate.utils as kv
except ImportError:  # pragma: no cover
    sys.exit("kubernetes_validate is missing: run tests/install/chart.sh (PyPI: kubernetes-validate)")

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import values_table  # noqa: E402  (tests/install/values_table.py: the README's values reference)
RELEASE = "cw"
NAMESPACE = "cases"
# The oldest Kubernetes the chart declares (Chart.yaml kubeVersion) and the
# newest whose schemas kubernetes-validate bundles.
KUBE_VERSIONS = ["1.27.0", kv.latest_version()]

# The services as the code defines them (services/casewire/src/main.rs):
# values key -> (serve name, serves the management port by default,
# scalable, the ports it must reach). Stated here independently of the
# chart's own table, so the two are compared.
SERVICES = {
    "caseApi": ("case-api", True, True),
    "portal": ("portal", True, True),
    "storageApi": ("storage-api", True, True),
    "caseEngine": ("case-engine", True, True),
    "projector": ("projector", True, True),
    "wsPublisher": ("ws-publisher", True, True),
    "notifyPublisher": ("notify-publisher", True, False),
    "automation": ("automation", True, True),
    "slaScheduler": ("sla-scheduler", True, True),
    "taskWorker": ("task-worker", True, True),
    "emailIngest": ("email-ingest", True, False),
}
# What each service may reach, by the egress ports of the production
# profile below (kafka 9093, mongodb 27017, s3 443/9000, oidc 443/8443,
# opa 8181, smtp 587/465, imap 993/143, webhooks/http targets 443, the API 8080).
EXPECTED_EGRESS = {
    "case-api": {"kafka", "mongodb", "s3", "oidc", "opa"},
    # `casewire serve portal`: a client of the case API (portal.api_url) that
    # signs people in at the issuers (discovery, token endpoints); no store.
    "portal": {"api", "oidc"},
    "storage-api": {"kafka", "mongodb", "s3", "oidc", "opa"},
    "case-engine": {"kafka", "mongodb"},
    "projector": {"kafka", "mongodb"},
    "ws-publisher": {"kafka", "mongodb", "oidc", "opa"},
    "notify-publisher": {"kafka", "mongodb", "s3", "smtp", "webhooks", "opa"},
    "automation": {"kafka", "mongodb"},
    "sla-scheduler": {"kafka", "mongodb"},
    "task-worker": {"api", "oidc", "smtp", "httpTargets"},
    "email-ingest": {"api", "oidc", "imap"},
    "admin-init": {"kafka", "mongodb", "s3"},
    "test": {"api-management", "oidc"},  # + portal-management when the portal runs apart
}
# Egress ports used by the production profile, distinct per dependency so a
# NetworkPolicy's ports name what it lets a pod reach.
PROD_EGRESS_PORTS = {
    "kafka": [19092], "mongodb": [27017], "s3": [9000], "oidc": [8443], "opa": [8181],
    "smtp": [587], "imap": [993], "webhooks": [443], "httpTargets": [4443],
}

# Environment variables that carry a credential: they must come from a Secret.
SECRET_ENV = {
    "CASEWIRE__STORE__EVENTS", "CASEWIRE__STORE__READ", "CASEWIRE__NOTIFY__SMTP_URL",
    "CASEWIRE__PORTAL__CLIENT_SECRET", "CASEWIRE__SERVICE_ACCOUNT__CLIENT_SECRET",
    "CASEWIRE__TASK_WORKER__HTTP_SECRET", "CASEWIRE__STORAGE__URL", "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
}
SECRETISH_NAME = re.compile(r"(?i)(password|passwd|secret|token|credential|private|access_key|api_key|apikey)")
URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:([^@\s/]+)@", re.I)
VAR_REF = re.compile(r"\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")
# Keys that hold a credential in casewire.toml; the ConfigMap must hold none.
SECRET_TOML_KEYS = {"client_secret", "smtp_url", "http_secret", "imap_url", "events", "read", "notify", "sasl.password",
                    "sasl.username", "ssl.key.password", "ssl.keystore.password"}


# --------------------------------------------------------------------------
# Reporting

class Report:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        if ok:
            self.passed += 1
            print(f"PASS  {name}" + (f" ({detail})" if detail else ""))
        else:
            self.failed += 1
            print(f"FAIL  {name}: {detail}")
        sys.stdout.flush()
        return ok

    def gap(self, name: str, detail: str) -> None:
        print(f"GAP   {name}: {detail}")


def problems_check(report: Report, name: str, problems: list[str], detail: str = "") -> bool:
    shown = "; ".join(problems[:6]) + (f"; ... {len(problems) - 6} more" if len(problems) > 6 else "")
    return report.check(name, not problems, detail if not problems else shown)


# --------------------------------------------------------------------------
# Values and schema

def resolve(schema: dict, node: dict) -> dict:
    while isinstance(node, dict) and "$ref" in node:
        name = node["$ref"].split("/")[-1]
        node = schema["definitions"][name]
    return node


def types_of(node: dict) -> set[str]:
    t = node.get("type")
    if t is None:
        return set()
    return set(t) if isinstance(t, list) else {t}


def is_object_schema(node: dict) -> bool:
    return "object" in types_of(node) or "properties" in node


def passthrough(node: dict) -> bool:
    """Objects whose fields are optional by nature: Kubernetes objects copied
    from the Kubernetes schema, and free-form case data."""
    c = node.get("$comment", "")
    return c.startswith("k8s:") or c.startswith("free-form")


def schema_values_agreement(schema: dict, values: dict) -> tuple[list[str], list[str]]:
    """Keys of values.yaml missing from the schema, and properties of the
    schema's records missing from values.yaml. Inside list items (whose
    fields are optional by nature) and Kubernetes objects only the first."""
    missing_in_schema: list[str] = []
    missing_in_values: list[str] = []

    def walk(node: dict, value, path: str, record: bool) -> None:
        node = resolve(schema, node)
        if isinstance(value, dict):
            props = node.get("properties", {})
            addl = node.get("additionalProperties", True)
            for k, v in value.items():
                p = f"{path}.{k}" if path else k
                if k in props:
                    walk(props[k], v, p, record)
                elif isinstance(addl, dict):
                    walk(addl, v, p, False)
                else:
                    missing_in_schema.append(p)
            if record and props and not passthrough(node):
                for k in props:
                    if k not in value:
                        missing_in_values.append(f"{path}.{k}" if path else k)
        elif isinstance(value, list):
            items = node.get("items")
            if isinstance(items, dict):
                for n, v in enumerate(value):
                    walk(items, v, f"{path}[{n}]", False)

    walk(schema, values, "", True)
    return missing_in_schema, missing_in_values


def unclosed_objects(schema: dict) -> list[str]:
    """Object schemas that accept unknown keys (neither additionalProperties:
    false nor a typed map), except free-form case data."""
    bad: list[str] = []

    def walk(node, path: str) -> None:
        if not isinstance(node, dict):
            return
        if is_object_schema(node) and "$ref" not in node and not node.get("$comment", "").startswith("free-form"):
            if node.get("additionalProperties", True) is True:
                bad.append(path or "/")
        for k, sub in node.get("properties", {}).items():
            walk(sub, f"{path}/properties/{k}")
        for k, sub in node.get("definitions", {}).items():
            walk(sub, f"{path}/definitions/{k}")
        # `if` and `not` are predicates over an object, not definitions of one.
        for key in ("items", "additionalProperties", "propertyNames", "then", "else"):
            if isinstance(node.get(key), dict):
                walk(node[key], f"{path}/{key}")
        for key in ("oneOf", "anyOf", "allOf"):
            for n, sub in enumerate(node.get(key, [])):
                walk(sub, f"{path}/{key}/{n}")

    walk(schema, "")
    return bad


def uncommented_keys(text: str) -> list[str]:
    """Keys of values.yaml without a comment on the line above, except the
    insides of `resources:` (Kubernetes' requests/limits) and of lists."""
    bad = []
    stack: list[tuple[int, bool]] = []  # (indent, children exempt)
    lines = text.split("\n")
    for n, line in enumerate(lines):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        while stack and stack[-1][0] >= indent:
            stack.pop()
        exempt = any(e for _, e in stack)
        stripped = line.strip()
        if stripped.startswith("- "):
            stack.append((indent, True))
            continue
        m = re.match(r"^([A-Za-z0-9_.-]+):(\s|$)", stripped)
        if not m:
            continue
        if not exempt and not (n > 0 and lines[n - 1].strip().startswith("#")):
            bad.append(f"line {n + 1}: {m.group(1)}")
        stack.append((indent, exempt or m.group(1) == "resources"))
    return bad


def secretish_values(values, path: str = "") -> list[str]:
    """Values in values.yaml that look like a credential (comments are not values)."""
    bad = []
    if isinstance(values, dict):
        for k, v in values.items():
            bad += secretish_values(v, f"{path}.{k}" if path else k)
    elif isinstance(values, list):
        for n, v in enumerate(values):
            bad += secretish_values(v, f"{path}[{n}]")
    elif isinstance(values, str):
        if URL_WITH_PASSWORD.search(values) or re.search(r"(?i)whsec_|password=|secret_key=", values):
            bad.append(path)
    return bad


# --------------------------------------------------------------------------
# Rendering

def deep_merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


class Rendered:
    def __init__(self, name: str, files: dict[str, str]):
        self.name = name
        self.notes = files.get("casewire/templates/NOTES.txt", "")
        self.docs: list[dict] = []
        for path, text in sorted(files.items()):
            if path.endswith("NOTES.txt"):
                continue
            for doc in yaml.safe_load_all(text):
                if doc:
                    doc.setdefault("metadata", {})
                    doc["_source"] = path
                    self.docs.append(doc)

    def kind(self, kind: str) -> list[dict]:
        return [d for d in self.docs if d.get("kind") == kind]

    def by_name(self, kind: str) -> dict[str, dict]:
        return {d["metadata"]["name"]: d for d in self.kind(kind)}

    def pod_specs(self) -> list[tuple[dict, dict]]:
        """(owner document, pod spec) for Deployments, Jobs and Pods."""
        out = []
        for d in self.docs:
            if d.get("kind") in ("Deployment", "Job"):
                out.append((d, d["spec"]["template"]["spec"]))
            elif d.get("kind") == "Pod":
                out.append((d, d["spec"]))
        return out

    def config_toml(self) -> str:
        cm = self.by_name("ConfigMap").get(f"{RELEASE}-casewire-config")
        return cm["data"]["casewire.toml"] if cm else ""


def render(chart: "helm.Chart", values: dict) -> dict[str, str]:
    return chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


def strip_private(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if not k.startswith("_")}


# --------------------------------------------------------------------------
# Kubernetes schemas

kv.schema_contents = functools.lru_cache(maxsize=None)(kv.schema_contents)  # each file parsed once
_validated: dict[tuple[str, str], str | None] = {}


def kube_validate(doc: dict, version: str) -> str | None:
    """None if valid; the reason otherwise; 'no-schema' for kinds without one."""
    body = strip_private(doc)
    key = (hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest(), version)
    if key in _validated:
        return _validated[key]
    try:
        kv.validate(body, version, strict=True)
        result = None
    except kv.ValidationError as e:
        path = ".".join(str(p) for p in e.path)
        result = f"{path}: {e.message}"
    except kv.SchemaNotFoundError:
        result = "no-schema"
    _validated[key] = result
    return result


# --------------------------------------------------------------------------
# Metrics: what the Rust sources record, and what PromQL queries of them

METRIC_MACRO = re.compile(r"\b(?:metrics::)?(counter|gauge|histogram)!\s*\(")
# Labels Prometheus adds to every series it scrapes through a ServiceMonitor
# (the Prometheus Operator's relabelling), besides the ones the code sets.
TARGET_LABELS = {"job", "instance", "namespace", "service", "pod", "container", "endpoint"}
# metrics-exporter-prometheus renders histograms as summaries when no
# buckets are set (crates/runtime/src/management.rs: PrometheusBuilder::new()):
# `name{quantile}`, `name_sum` and `name_count`, these quantiles, no `_bucket`.
SUMMARY_QUANTILES = {"0", "0.5", "0.9", "0.95", "0.99", "0.999", "1"}
PROMQL_AGGREGATORS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk",
                      "topk", "quantile", "limitk", "limit_ratio"}
PROMQL_FUNCTIONS = PROMQL_AGGREGATORS | {
    "abs", "absent", "absent_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "day_of_month",
    "day_of_week", "day_of_year", "days_in_month", "delta", "deriv", "exp", "floor", "histogram_quantile", "holt_winters",
    "double_exponential_smoothing", "hour", "idelta", "increase", "irate", "label_join", "label_replace", "ln", "log2",
    "log10", "minute", "month", "predict_linear", "rate", "resets", "round", "scalar", "sgn", "sort", "sort_desc",
    "sort_by_label", "sort_by_label_desc", "sqrt", "time", "timestamp", "vector", "year", "avg_over_time",
    "min_over_time", "max_over_time", "sum_over_time", "count_over_time", "quantile_over_time", "stddev_over_time",
    "stdvar_over_time", "last_over_time", "present_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
    "cos", "cosh", "sin", "sinh", "tan", "tanh", "deg", "rad", "pi"}
PROMQL_GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "atan2"}
PROMQL_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
  | (?P<var>\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*)
  | (?P<num>0x[0-9a-fA-F]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?:ms|s|m|h|d|w|y)*|(?i:inf|nan)\b)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^<>=,(){}\[\]:@])
""", re.X)


class Metric:
    def __init__(self, name: str, kind: str):
        self.name = name
        self.kind = kind
        self.labels: set[str] = set()
        # label -> the Rust expressions of its value, where the metric is recorded
        self.values: dict[str, list[str]] = {}
        self.where: list[str] = []


def split_args(args: str) -> list[str]:
    """A macro's arguments, split at its top-level commas."""
    out, depth, start, i = [], 0, 0, 0
    while i < len(args):
        c = args[i]
        if c == '"':
            i += 1
            while i < len(args) and args[i] != '"':
                i += 2 if args[i] == "\\" else 1
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth == 0:
            out.append(args[start:i].strip())
            start = i + 1
        i += 1
    out.append(args[start:].strip())
    return [a for a in out if a]


def macro_args(text: str, start: int) -> str:
    """The text of a macro's arguments, from just after its `(` to the
    matching `)`, skipping string and char literals."""
    depth = 1
    i = start
    while i < len(text) and depth:
        c = text[i]
        if c == '"':
            i += 1
            while i < len(text) and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        i += 1
    return text[start:i - 1]


@functools.lru_cache(maxsize=None)
def rust_metrics() -> tuple[dict[str, Metric], tuple[str, ...], str]:
    """Every metric the Rust sources record (metrics::counter!/gauge!/
    histogram! with a literal name; tests and comments left out), the calls
    whose name is not a literal, and the sources' text (for label values)."""
    metrics: dict[str, Metric] = {}
    unresolved: list[str] = []
    texts: list[str] = []
    for top in ("crates", "services"):
        for path in sorted((ROOT / top).rglob("*.rs")):
            rel = path.relative_to(ROOT)
            if {"tests", "benches", "target"} & set(rel.parts):
                continue
            text = path.read_text(errors="replace")
            texts.append(text)
            for m in METRIC_MACRO.finditer(text):
                line_start = text.rfind("\n", 0, m.start()) + 1
                if "//" in text[line_start:m.start()]:
                    continue
                line = text.count("\n", 0, m.start()) + 1
                args = macro_args(text, m.end())
                name = re.match(r'\s*"([^"\\]+)"', args)
                if not name:
                    unresolved.append(f"{rel}:{line}")
                    continue
                metric = metrics.setdefault(name.group(1), Metric(name.group(1), m.group(1)))
                if metric.kind != m.group(1):
                    unresolved.append(f"{rel}:{line}: {name.group(1)} is a {m.group(1)} here, a {metric.kind} elsewhere")
                for arg in split_args(args)[1:]:
                    pair = re.match(r'"([A-Za-z_][A-Za-z0-9_]*)"\s*=>\s*(.+)$', arg, re.S)
                    if pair:
                        metric.labels.add(pair.group(1))
                        metric.values.setdefault(pair.group(1), []).append(pair.group(2).strip())
                metric.where.append(f"{rel}:{line}")
    # The code without its comments (for label values: a word in a comment is no value).
    code = re.sub(r"(?m)(^|\s)//.*$", r"\1", "\n".join(texts))
    return metrics, tuple(unresolved), code


def exported_series(metrics: dict[str, Metric]) -> dict[str, tuple[Metric, bool]]:
    """Series name -> (its metric, whether it carries `quantile`), as the exporter renders them."""
    out: dict[str, tuple[Metric, bool]] = {}
    for m in metrics.values():
        if m.kind == "histogram":
            out[m.name] = (m, True)
            out[m.name + "_sum"] = (m, False)
            out[m.name + "_count"] = (m, False)
        else:
            out[m.name] = (m, False)
    return out


def promql_tokens(expr: str) -> tuple[list[tuple[str, str]], list[str]]:
    tokens, problems = [], []
    pos = 0
    while pos < len(expr):
        m = PROMQL_TOKEN.match(expr, pos)
        if not m:
            problems.append(f"cannot read {expr[pos:pos + 20]!r}")
            break
        if m.lastgroup != "ws":
            tokens.append((m.lastgroup, m.group()))
        pos = m.end()
    return tokens, problems


def promql_string(tok: str) -> str:
    if tok.startswith('"'):
        try:
            return json.loads(tok)
        except ValueError:
            return tok[1:-1]
    return tok[1:-1]


def promql_parse(expr: str) -> tuple[list[tuple[str | None, list[tuple[str, str, str]]]], set[str], list[str]]:
    """The series selectors of a PromQL expression (metric name or None,
    [(label, op, value)]), the labels it groups or matches on, and what it
    could not read. Grafana variables ($x, ${x}) are taken as opaque."""
    tokens, problems = promql_tokens(expr)
    selectors: list[tuple[str | None, list[tuple[str, str, str]]]] = []
    grouping: set[str] = set()
    depth = 0
    i = 0

    def matchers(i: int) -> tuple[list[tuple[str, str, str]], int]:
        out = []
        i += 1  # past {
        while i < len(tokens) and tokens[i][1] != "}":
            if (i + 2 < len(tokens) and tokens[i][0] == "ident" and tokens[i + 1][1] in ("=", "!=", "=~", "!~")
                    and tokens[i + 2][0] in ("str", "var")):
                value = promql_string(tokens[i + 2][1]) if tokens[i + 2][0] == "str" else tokens[i + 2][1]
                out.append((tokens[i][1], tokens[i + 1][1], value))
                i += 3
                if i < len(tokens) and tokens[i][1] == ",":
                    i += 1
            else:
                problems.append(f"unreadable label matcher at {tokens[i][1]!r}")
                i += 1
        if i >= len(tokens):
            problems.append("unclosed {")
        return out, i + 1

    while i < len(tokens):
        kind, text = tokens[i]
        nxt = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        if kind == "ident" and text in PROMQL_GROUPING:
            if nxt == "(":
                j = i + 2
                while j < len(tokens) and tokens[j][1] != ")":
                    if tokens[j][0] == "ident":
                        grouping.add(tokens[j][1])
                    elif tokens[j][1] != ",":
                        problems.append(f"unexpected {tokens[j][1]!r} in {text}(...)")
                    j += 1
                i = j + 1
                continue
            i += 1
        elif kind == "ident" and text in PROMQL_WORDS:
            i += 1
        elif kind == "ident" and (nxt == "(" or (text in PROMQL_AGGREGATORS and nxt in ("by", "without"))):
            if text not in PROMQL_FUNCTIONS:
                problems.append(f"unknown function {text}()")
            i += 1
        elif kind == "ident":
            if nxt == "{":
                found, i = matchers(i + 1)
            else:
                found, i = [], i + 1
            selectors.append((text, found))
        elif text == "{":
            found, i = matchers(i)
            selectors.append((None, found))
        elif text == "[":
            j = i
            while j < len(tokens) and tokens[j][1] != "]":
                j += 1
            if j >= len(tokens):
                problems.append("unclosed [")
            i = j + 1
        else:
            if text == "(":
                depth += 1
            elif text == ")":
                depth -= 1
                if depth < 0:
                    problems.append("unbalanced )")
            elif text == "}":
                problems.append("unexpected }")
            i += 1
    if depth > 0:
        problems.append("unclosed (")
    return selectors, grouping, problems


def label_value_known(value: str, exprs: list[str], code: str) -> bool:
    """Whether the code can give a label this value, by the expressions it
    records the label with: a string literal is that value; `{:?}` of an enum
    is one of its variants (lower-cased with .to_lowercase()); anything else
    must at least be a string literal somewhere in the code (or a number,
    like an HTTP status). A heuristic for the last two, exact for the first."""
    if "$" in value:
        return True
    for expr in exprs:
        literal = re.fullmatch(r'"([^"\\]*)"', expr)
        if literal:
            if literal.group(1) == value:
                return True
            continue
        if ":?" in expr:
            # An enum variant (CamelCase) as declared (`  Name,`) or used (`::Name`).
            lower = "to_lowercase" in expr
            if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value) and (value == value.lower() if lower else value[0].isupper()):
                variant = rf"(?:::|^\s*)({re.escape(value)})(?:\s*[,({{]|\b)"
                for m in re.finditer(variant, code, re.M | (re.I if lower else 0)):
                    if m.group(1)[0].isupper() and (m.group(0).startswith("::") or re.search(r"[,({]$", m.group(0).rstrip())):
                        return True
            continue
        if value.isdigit() or f'"{value}"' in code:
            return True
    return False


def promql_problems(expr: str, where: str, extra_label: str | None = None) -> list[str]:
    """Why `expr` queries something the Rust sources do not record ([] if
    it does not). extra_label: a label the expression's result must carry
    (label_values)."""
    metrics, _, sources = rust_metrics()
    series = exported_series(metrics)
    selectors, grouping, problems = promql_parse(expr)
    problems = [f"{where}: {p}" for p in problems]
    allowed: set[str] = set(TARGET_LABELS)
    if not selectors:
        problems.append(f"{where}: queries no metric")
    for name, found in selectors:
        names = [name] if name else []
        for label, op, value in found:
            if label == "__name__":
                if op == "=":
                    names.append(value)
                elif op == "=~":
                    hits = [s for s in series if re.fullmatch(value, s)]
                    if not hits:
                        problems.append(f"{where}: __name__=~{value!r} matches no metric the Rust sources record")
                    names += hits
        if not names:
            problems.append(f"{where}: a selector without a metric name")
        labels: set[str] = set(TARGET_LABELS)
        for n in names:
            if n not in series:
                hint = ""
                if n.endswith("_bucket") and n[:-7] in series:
                    hint = " (histograms are exported as summaries: no _bucket series)"
                problems.append(f"{where}: {n} is not a metric the Rust sources record{hint}")
                continue
            metric, quantile = series[n]
            labels |= metric.labels | ({"quantile"} if quantile else set())
        allowed |= labels
        for label, op, value in found:
            if label == "__name__":
                continue
            if label not in labels:
                problems.append(f"{where}: {name or '{...}'} has no label {label!r} (the code sets "
                                f"{sorted(labels - TARGET_LABELS) or 'none'})")
            elif label == "quantile" and op == "=" and value not in SUMMARY_QUANTILES:
                problems.append(f"{where}: quantile {value!r} is not one the exporter renders {sorted(SUMMARY_QUANTILES)}")
            elif op == "=" and label not in TARGET_LABELS and label != "quantile":
                exprs = [e for n in names if n in series for e in series[n][0].values.get(label, [])]
                if not label_value_known(value, exprs, sources):
                    problems.append(f"{where}: {name}{{{label}={value!r}}}: the code never gives {label} that value "
                                    f"(it records {'; '.join(sorted(set(exprs)))})")
    for label in sorted(grouping | ({extra_label} if extra_label else set())):
        if label not in allowed:
            problems.append(f"{where}: groups by {label!r}, which none of its metrics carries")
    return problems


def grafana_query_problems(query: str, where: str) -> list[str]:
    """A Grafana Prometheus variable query: label_values(...) or PromQL."""
    m = re.fullmatch(r"\s*label_values\((.*)\)\s*", query, re.S)
    if not m:
        return promql_problems(query, where)
    inner = m.group(1)
    depth, split = 0, -1
    for n, c in enumerate(inner):
        if c in "({[":
            depth += 1
        elif c in ")}]":
            depth -= 1
        elif c == "," and depth == 0:
            split = n
    if split < 0:
        return [f"{where}: label_values({inner}) names no metric"]
    return promql_problems(inner[:split], where, extra_label=inner[split + 1:].strip())


def dashboard_datasources(node, path: str = "") -> list[tuple[str, object]]:
    """Every `datasource` value in a dashboard, with where it is."""
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            p = f"{path}.{k}" if path else k
            if k == "datasource":
                out.append((p, v))
            out += dashboard_datasources(v, p)
    elif isinstance(node, list):
        for n, v in enumerate(node):
            out += dashboard_datasources(v, f"{path}[{n}]")
    return out


def check_metrics_inventory(report: Report) -> None:
    metrics, unresolved, _ = rust_metrics()
    report.check("the Rust sources record metrics (metrics::counter!/gauge!/histogram!)", bool(metrics),
                 f"{len(metrics)} metrics: " + ", ".join(f"{m.name}{'{' + ','.join(sorted(m.labels)) + '}' if m.labels else ''}"
                                                         for m in sorted(metrics.values(), key=lambda m: m.name)))
    for u in unresolved:
        report.gap("metric inventory", f"{u}: a metric call whose name is not a string literal (not checked)")


def check_dashboard(report: Report, chart_dir: Path) -> dict | None:
    path = chart_dir / "dashboards/casewire.json"
    try:
        dash = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        report.check("dashboards/casewire.json parses as JSON", False, str(e))
        return None
    panels = []
    stack = list(dash.get("panels", []))
    while stack:
        p = stack.pop(0)
        panels.append(p)
        stack += p.get("panels", [])
    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    shape = []
    if not dash.get("uid") or not dash.get("title") or not isinstance(dash.get("schemaVersion"), int):
        shape.append("uid, title or schemaVersion missing")
    ds = variables.get("datasource", {})
    if ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        shape.append("no `datasource` variable of type datasource (query prometheus)")
    for where, value in dashboard_datasources(dash):
        uid = value.get("uid") if isinstance(value, dict) else value
        if uid in ("-- Grafana --",) and where.startswith("annotations"):
            continue
        if uid not in ("${datasource}", "$datasource"):
            shape.append(f"{where}: data source {uid!r} is not the $datasource variable")
    ids = [p.get("id") for p in panels]
    if len(ids) != len(set(ids)) or None in ids:
        shape.append("panel ids are missing or repeated")
    for p in panels:
        g = p.get("gridPos", {})
        if not all(isinstance(g.get(k), int) for k in ("x", "y", "w", "h")) or g.get("x", 0) + g.get("w", 0) > 24:
            shape.append(f"panel {p.get('title')!r}: gridPos")
        if p.get("type") != "row":
            refs = [t.get("refId") for t in p.get("targets", [])]
            if not refs or len(refs) != len(set(refs)) or not all(t.get("expr") for t in p.get("targets", [])):
                shape.append(f"panel {p.get('title')!r}: no targets, or a target without expr or refId")
    queries = [t["expr"] for p in panels for t in p.get("targets", []) if t.get("expr")]
    problems_check(report, "dashboards/casewire.json parses and is a Grafana dashboard (datasource variable, no "
                   "hard-coded data source uid, unique panel ids, every panel queries)", shape,
                   f"{len([p for p in panels if p.get('type') != 'row'])} panels, {len(queries)} queries")
    problems = []
    for p in panels:
        for t in p.get("targets", []):
            if t.get("expr"):
                problems += promql_problems(t["expr"], f"panel {p.get('title')!r} {t.get('refId')}")
    for name, v in variables.items():
        if v.get("type") == "query":
            q = v.get("query")
            q = q.get("query", "") if isinstance(q, dict) else q
            problems += grafana_query_problems(q or "", f"variable {name}")
    used = sorted({n for q in queries for n, _ in promql_parse(q)[0] if n})
    problems_check(report, "every metric and label the dashboard queries is recorded by the Rust sources", problems,
                   f"{len(used)} series: {', '.join(used)}")
    return dash


DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")


def prometheus_rule_shape(doc: dict) -> list[str]:
    """The PrometheusRule CRD's documented shape (monitoring.coreos.com/v1)."""
    bad = []
    if doc.get("apiVersion") != "monitoring.coreos.com/v1":
        bad.append("apiVersion")
    spec = doc.get("spec", {})
    if set(spec) - {"groups"} or not isinstance(spec.get("groups"), list) or not spec["groups"]:
        bad.append(f"spec has {sorted(spec)}, expected groups")
        return bad
    names = set()
    for g in spec["groups"]:
        if set(g) - {"name", "interval", "rules", "partial_response_strategy", "limit", "labels", "query_offset"}:
            bad.append(f"unknown group fields {sorted(g)}")
        if not g.get("name") or g["name"] in names:
            bad.append("a group without a unique name")
        names.add(g.get("name"))
        alerts = set()
        for rule in g.get("rules") or []:
            who = rule.get("alert", rule.get("record", "?"))
            if set(rule) - {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}:
                bad.append(f"{who}: unknown rule fields {sorted(rule)}")
            if not isinstance(rule.get("expr"), str) or not rule["expr"].strip():
                bad.append(f"{who}: no expr")
            if "alert" not in rule:
                continue
            if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", rule["alert"]) or rule["alert"] in alerts:
                bad.append(f"{who}: alert name not CamelCase or repeated")
            alerts.add(rule["alert"])
            if not DURATION.match(str(rule.get("for", ""))):
                bad.append(f"{who}: for {rule.get('for')!r} is not a duration")
            labels = rule.get("labels") or {}
            if not labels.get("severity") or not all(isinstance(v, str) for v in labels.values()):
                bad.append(f"{who}: no severity label, or a label that is not a string")
            ann = rule.get("annotations") or {}
            if not ann.get("summary") or not ann.get("description") or not all(isinstance(v, str) for v in ann.values()):
                bad.append(f"{who}: summary and description annotations required")
        if not g.get("rules"):
            bad.append(f"group {g.get('name')}: no rules")
    return bad


def check_prometheus_rule(report: Report, r: Rendered, merged: dict) -> None:
    rules = r.kind("PrometheusRule")
    problems = []
    want = {"serverErrors": "CasewireApiServerErrors", "commandsNotHandled": "CasewireCommandsNotHandled",
            "eventsNotProjected": "CasewireEventsNotProjected", "slaBreaches": "CasewireSlaBreaches",
            "notificationsDead": "CasewireNotificationsUndeliverable", "deadLetters": "CasewireDeadLetters", "consumerLag": "CasewireConsumerLag"}
    cfg = merged["prometheusRule"]
    alerts = {}
    for doc in rules:
        for g in doc["spec"]["groups"]:
            for rule in g["rules"]:
                alerts[rule.get("alert")] = rule
                problems += promql_problems(rule["expr"], rule.get("alert", "?"))
    expected = {name for key, name in want.items() if cfg[key]["enabled"]}
    if set(alerts) != expected:
        problems.append(f"alerts {sorted(alerts)}, expected {sorted(expected)} from prometheusRule.*.enabled")
    for key, name in want.items():
        rule = alerts.get(name)
        if rule and (rule["labels"].get("severity") != cfg[key]["severity"] or str(rule["for"]) != cfg[key]["for"]):
            problems.append(f"{name}: severity/for do not follow prometheusRule.{key}")
        for label, value in (cfg.get("alertLabels") or {}).items():
            if rule and rule["labels"].get(label) != value:
                problems.append(f"{name}: lacks alertLabels {label}")
    problems_check(report, f"[{r.name}] PrometheusRule alerts follow the values and query only metrics and labels the "
                   "Rust sources record", problems, f"{len(alerts)} alerts: {', '.join(sorted(alerts))}")


def check_dashboard_configmap(report: Report, r: Rendered, merged: dict, dash: dict | None) -> None:
    g = merged["grafanaDashboard"]
    cms = [c for c in r.kind("ConfigMap") if "casewire.json" in (c.get("data") or {})]
    problems = []
    if len(cms) != (1 if g["enabled"] else 0):
        problems.append(f"{len(cms)} dashboard ConfigMaps with grafanaDashboard.enabled={g['enabled']}")
    for cm in cms:
        if cm["metadata"].get("labels", {}).get(g["sidecarLabel"]) != g["sidecarLabelValue"]:
            problems.append(f"ConfigMap/{cm['metadata']['name']} lacks the sidecar label "
                            f"{g['sidecarLabel']}: {g['sidecarLabelValue']!r}")
        if dash is not None and json.loads(cm["data"]["casewire.json"]) != dash:
            problems.append(f"ConfigMap/{cm['metadata']['name']} does not hold dashboards/casewire.json")
        if g["namespace"] and cm["metadata"].get("namespace") != g["namespace"]:
            problems.append("the ConfigMap is not in grafanaDashboard.namespace")
    problems_check(report, f"[{r.name}] the Grafana dashboard ConfigMap follows grafanaDashboard (sidecar label, the JSON as shipped)",
                   problems)


# --------------------------------------------------------------------------
# Per-profile assertions

def containers_of(spec: dict) -> list[dict]:
    return list(spec.get("initContainers", [])) + list(spec.get("containers", []))


def component(doc: dict) -> str:
    labels = doc.get("metadata", {}).get("labels", {})
    return labels.get("app.kubernetes.io/component", "?")


def check_security(report: Report, r: Rendered) -> None:
    problems = []
    for owner, spec in r.pod_specs():
        who = f"{owner['kind']}/{owner['metadata']['name']}"
        psc = spec.get("securityContext", {})
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{who}: automountServiceAccountToken is not false")
        if psc.get("runAsUser") == 0:
            problems.append(f"{who}: pod runs as uid 0")
        for c in containers_of(spec):
            sc = c.get("securityContext", {})
            cw = f"{who}/{c['name']}"
            if not (sc.get("runAsNonRoot") is True or (psc.get("runAsNonRoot") is True and sc.get("runAsNonRoot") is not False)):
                problems.append(f"{cw}: runAsNonRoot is not true")
            if sc.get("runAsUser", psc.get("runAsUser")) in (0, None):
                problems.append(f"{cw}: no non-zero runAsUser")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{cw}: root file system is writable")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{cw}: allowPrivilegeEscalation is not false")
            if sc.get("privileged"):
                problems.append(f"{cw}: privileged")
            if "ALL" not in sc.get("capabilities", {}).get("drop", []) or sc.get("capabilities", {}).get("add"):
                problems.append(f"{cw}: capabilities are not drop ALL")
            seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {}))
            if seccomp.get("type") != "RuntimeDefault":
                problems.append(f"{cw}: seccompProfile is not RuntimeDefault")
            mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
            if "/tmp" not in mounts:
                problems.append(f"{cw}: no writable /tmp")
            res = c.get("resources", {})
            if not (res.get("requests", {}).get("cpu") and res.get("requests", {}).get("memory") and res.get("limits", {}).get("memory")):
                problems.append(f"{cw}: resources lack cpu/memory requests or a memory limit")
    for sa in r.kind("ServiceAccount"):
        if sa.get("automountServiceAccountToken") is not False:
            problems.append(f"ServiceAccount/{sa['metadata']['name']}: automountServiceAccountToken is not false")
    n = sum(len(containers_of(s)) for _, s in r.pod_specs())
    problems_check(report, f"[{r.name}] every container is non-root, read-only, drops ALL, RuntimeDefault, has resources",
                   problems, f"{n} containers")


_gaps_told: set[str] = set()


def check_probes(report: Report, r: Rendered, values: dict) -> None:
    problems = []
    gaps = []
    checked = 0
    for d in r.kind("Deployment"):
        comp = component(d)
        key = next(k for k, (n, _, _) in SERVICES.items() if n == comp)
        serves = SERVICES[key][1] or values.get(key, {}).get("managementPort", False)
        for c in d["spec"]["template"]["spec"]["containers"]:
            ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
            if not serves:
                if any(c.get(p) for p in ("livenessProbe", "readinessProbe", "startupProbe")):
                    problems.append(f"{comp}: probes on a port the process does not serve")
                gaps.append(comp)
                continue
            checked += 1
            want = {"livenessProbe": "/health/live", "readinessProbe": "/health/ready", "startupProbe": "/health/live"}
            for probe, path in want.items():
                p = c.get(probe, {}).get("httpGet", {})
                if p.get("path") != path or p.get("port") not in ("management", ports.get("management")):
                    problems.append(f"{comp}: {probe} is not GET {path} on the management port")
            if ports.get("management") != values["ports"]["management"]:
                problems.append(f"{comp}: no management port {values['ports']['management']}")
    problems_check(report, f"[{r.name}] liveness, readiness and startup probes on the management port", problems,
                   f"{checked} containers")
    for comp in gaps:
        if comp not in _gaps_told:
            _gaps_told.add(comp)
            report.gap(f"{comp} probes",
                       "managementPort is false: no liveness/readiness probe, Service or metrics")


def env_problems(c: dict, who: str) -> list[str]:
    problems = []
    from_secret: set[str] = set()
    defined: set[str] = set()
    for e in c.get("env", []):
        name = e["name"]
        if "valueFrom" in e:
            if "secretKeyRef" in e["valueFrom"]:
                from_secret.add(name)
            elif name in SECRET_ENV or SECRETISH_NAME.search(name):
                problems.append(f"{who}: {name} is not from a secretKeyRef")
        else:
            value = str(e.get("value", ""))
            refs = VAR_REF.findall(value)
            plain = VAR_REF.sub("", value)
            if name in SECRET_ENV:
                problems.append(f"{who}: {name} has a plain value")
            elif SECRETISH_NAME.search(name) and not refs:
                problems.append(f"{who}: {name} looks like a secret and has a plain value")
            if URL_WITH_PASSWORD.search(plain) or re.search(r'(?i)"(sasl\.)?password"\s*=\s*"[^"$]', value):
                problems.append(f"{who}: {name} holds a password in plain text")
            for ref in refs:
                if ref not in defined:
                    problems.append(f"{who}: {name} references $({ref}), which is not defined before it")
                elif ref not in from_secret:
                    problems.append(f"{who}: {name} references $({ref}), which is not from a Secret")
        defined.add(name)
    return problems


def check_secrets(report: Report, r: Rendered) -> None:
    problems = []
    for owner, spec in r.pod_specs():
        for c in containers_of(spec):
            problems += env_problems(c, f"{owner['metadata']['name']}/{c['name']}")
            if c.get("envFrom"):
                problems.append(f"{owner['metadata']['name']}: envFrom hides which variables a Secret sets")
    for cm in r.kind("ConfigMap"):
        for key, text in (cm.get("data") or {}).items():
            for n, line in enumerate(text.split("\n")):
                m = re.match(r'^\s*"?([A-Za-z0-9_.-]+)"?\s*=', line)
                if m and m.group(1) in SECRET_TOML_KEYS:
                    problems.append(f"ConfigMap/{cm['metadata']['name']} {key}:{n + 1} sets {m.group(1)}")
                if URL_WITH_PASSWORD.search(line) or re.search(r"(?i)secret_key=|password=", line):
                    problems.append(f"ConfigMap/{cm['metadata']['name']} {key}:{n + 1} holds a credential")
    if r.kind("Secret"):
        problems.append("the chart renders a Secret (credentials must be the operator's existing Secrets)")
    problems_check(report, f"[{r.name}] secrets only through secretKeyRef, none in env values or the ConfigMap", problems)


def label_match(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def check_references(report: Report, r: Rendered) -> None:
    problems = []
    deployments = r.by_name("Deployment")
    services = r.by_name("Service")
    pod_labels = [(d["metadata"]["name"], d["spec"]["template"]["metadata"]["labels"]) for d in r.kind("Deployment")]
    pod_labels += [(d["metadata"]["name"], d["spec"]["template"]["metadata"]["labels"]) for d in r.kind("Job")]
    pod_labels += [(d["metadata"]["name"], d["metadata"]["labels"]) for d in r.kind("Pod")]
    for name, d in deployments.items():
        if not label_match(d["spec"]["selector"]["matchLabels"], d["spec"]["template"]["metadata"]["labels"]):
            problems.append(f"Deployment/{name}: selector does not match its pods")
        if "checksum/config" not in d["spec"]["template"]["metadata"].get("annotations", {}):
            problems.append(f"Deployment/{name}: no checksum/config annotation")
    for name, s in services.items():
        matched = [n for n, l in pod_labels if label_match(s["spec"]["selector"], l)]
        if len(matched) != 1:
            problems.append(f"Service/{name}: selector matches {matched}")
        else:
            d = deployments.get(matched[0])
            cports = {p["name"] for c in d["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
            for p in s["spec"]["ports"]:
                if p["targetPort"] not in cports:
                    problems.append(f"Service/{name}: targetPort {p['targetPort']} is not a container port")
    for ing in r.kind("Ingress"):
        for rule in ing["spec"]["rules"]:
            for p in rule["http"]["paths"]:
                svc = p["backend"]["service"]
                target = services.get(svc["name"])
                if not target or svc["port"]["name"] not in {x["name"] for x in target["spec"]["ports"]}:
                    problems.append(f"Ingress path {p['path']}: no Service {svc['name']} port {svc['port']}")
    for route in r.kind("HTTPRoute"):
        for rule in route["spec"]["rules"]:
            for b in rule["backendRefs"]:
                target = services.get(b["name"])
                if not target or b["port"] not in {x["port"] for x in target["spec"]["ports"]}:
                    problems.append(f"HTTPRoute: no Service {b['name']} port {b['port']}")
    for hpa in r.kind("HorizontalPodAutoscaler"):
        t = hpa["spec"]["scaleTargetRef"]["name"]
        if t not in deployments:
            problems.append(f"HPA/{hpa['metadata']['name']}: no Deployment {t}")
        elif "replicas" in deployments[t]["spec"]:
            problems.append(f"Deployment/{t}: sets replicas although an HPA scales it")
        if hpa["spec"]["minReplicas"] > hpa["spec"]["maxReplicas"]:
            problems.append(f"HPA/{t}: minReplicas > maxReplicas")
    for kind in ("PodDisruptionBudget",):
        for pdb in r.kind(kind):
            if not any(label_match(pdb["spec"]["selector"]["matchLabels"], l) for _, l in pod_labels):
                problems.append(f"PDB/{pdb['metadata']['name']}: selects no pods")
    for np in r.kind("NetworkPolicy"):
        if not any(label_match(np["spec"]["podSelector"]["matchLabels"], l) for _, l in pod_labels):
            problems.append(f"NetworkPolicy/{np['metadata']['name']}: selects no pods")
    for sm in r.kind("ServiceMonitor"):
        sel = sm["spec"]["selector"]["matchLabels"]
        scraped = [n for n, s in services.items() if label_match(sel, s["metadata"]["labels"])
                   and any(p["name"] == "management" for p in s["spec"]["ports"])]
        if not scraped or any(e["port"] != "management" or e["path"] != "/metrics" for e in sm["spec"]["endpoints"]):
            problems.append("ServiceMonitor scrapes no management port")
    configmaps = set(r.by_name("ConfigMap"))
    for owner, spec in r.pod_specs():
        for vol in spec.get("volumes", []):
            cm = vol.get("configMap", {}).get("name")
            if cm and cm.startswith(f"{RELEASE}-casewire") and cm not in configmaps:
                problems.append(f"{owner['metadata']['name']}: volume of missing ConfigMap {cm}")
        for c in containers_of(spec):
            for e in c.get("env", []):
                if e["name"] == "CASEWIRE_CONFIG" and e["value"] != "/etc/casewire/config/casewire.toml":
                    problems.append(f"{owner['metadata']['name']}: CASEWIRE_CONFIG points elsewhere")
    problems_check(report, f"[{r.name}] selectors, ports, backends, HPA/PDB/NetworkPolicy targets and ConfigMaps agree",
                   problems)


def check_kube_schemas(report: Report, r: Rendered) -> None:
    problems = []
    crds = []
    count = 0
    for d in r.docs:
        for v in KUBE_VERSIONS:
            res = kube_validate(d, v)
            if res == "no-schema":
                crds.append(f"{d['kind']}/{d['metadata']['name']}")
                break
            if res:
                problems.append(f"{d['kind']}/{d['metadata']['name']} @ {v}: {res}")
        count += 1
    problems_check(report, f"[{r.name}] {count} manifests valid against the Kubernetes {' and '.join(KUBE_VERSIONS)} schemas (strict)",
                   problems)
    # CRDs: kubernetes-validate bundles no schema for them; their fields are
    # checked by hand against the CRDs' documented shapes.
    for name in sorted(set(crds)):
        kind = name.split("/")[0]
        doc = next(d for d in r.docs if d["kind"] == kind)
        bad = []
        if kind == "ServiceMonitor":
            if doc["apiVersion"] != "monitoring.coreos.com/v1":
                bad.append("apiVersion")
            if set(doc["spec"]) - {"selector", "namespaceSelector", "endpoints", "jobLabel"}:
                bad.append(f"unknown spec fields {set(doc['spec'])}")
            for e in doc["spec"]["endpoints"]:
                if set(e) - {"port", "path", "scheme", "interval", "scrapeTimeout"}:
                    bad.append(f"unknown endpoint fields {set(e)}")
                if not re.match(r"^[0-9]+(ms|s|m|h)$", str(e.get("interval", "30s"))):
                    bad.append("interval")
        elif kind == "HTTPRoute":
            if doc["apiVersion"] != "gateway.networking.k8s.io/v1":
                bad.append("apiVersion")
            if set(doc["spec"]) - {"parentRefs", "hostnames", "rules"}:
                bad.append(f"unknown spec fields {set(doc['spec'])}")
            for rule in doc["spec"]["rules"]:
                if set(rule) - {"matches", "backendRefs"}:
                    bad.append(f"unknown rule fields {set(rule)}")
                for m in rule["matches"]:
                    if m["path"]["type"] not in ("PathPrefix", "Exact") or not m["path"]["value"].startswith("/"):
                        bad.append("path match")
                for b in rule["backendRefs"]:
                    if set(b) - {"name", "port"} or not isinstance(b["port"], int):
                        bad.append("backendRef")
        elif kind == "PrometheusRule":
            bad += prometheus_rule_shape(doc)
        else:
            bad.append("a kind this check does not know")
        report.check(f"[{r.name}] {name} has the documented shape (no offline schema: structural check)", not bad,
                     "; ".join(bad))


def check_network_policies(report: Report, r: Rendered) -> None:
    """Each pod may reach exactly what its service uses (the production
    profile gives every dependency its own port), and a pod of this release
    that may call another one's port is let in there by the other's policy."""
    port_to_dep = {p: dep for dep, ports in PROD_EGRESS_PORTS.items() for p in ports}
    # In-release targets: (component, port) -> what reaching it means.
    in_release = {("case-api", 8080): "api", ("case-api", 9090): "api-management",
                  ("portal", 9090): "portal-management"}
    problems = []
    policies = {component(np): np for np in r.kind("NetworkPolicy")}
    deployed = {component(d) for d in r.kind("Deployment")}
    pods = deployed | {"admin-init", "test"}
    calls: list[tuple[str, str, int]] = []  # (caller, target component, port)
    for comp in sorted(pods):
        np = policies.get(comp)
        if not np:
            problems.append(f"{comp}: no NetworkPolicy")
            continue
        if set(np["spec"]["policyTypes"]) != {"Ingress", "Egress"}:
            problems.append(f"{comp}: policyTypes {np['spec']['policyTypes']}")
        reached = set()
        for rule in np["spec"].get("egress", []):
            ports = {p["port"] for p in rule.get("ports", [])}
            if ports == {53}:
                continue
            to = rule.get("to", [])
            targets = {peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component")
                       for peer in to if "podSelector" in peer and "namespaceSelector" not in peer}
            targets.discard(None)
            if not rule.get("ports"):
                problems.append(f"{comp}: an egress rule without ports")
            for p in ports:
                if targets:
                    for target in targets:
                        what = in_release.get((target, p))
                        if what:
                            reached.add(what)
                            calls.append((comp, target, p))
                        else:
                            problems.append(f"{comp}: egress to {target} pods on unexpected port {p}")
                elif p in port_to_dep:
                    reached.add(port_to_dep[p])
                else:
                    problems.append(f"{comp}: egress to unexpected port {p}")
        expected = set(EXPECTED_EGRESS[comp])
        if comp == "test" and "portal" in deployed:
            expected.add("portal-management")  # the helm test checks the portal's readiness too
        if reached != expected:
            problems.append(f"{comp}: reaches {sorted(reached)}, expected {sorted(expected)}")
        ingress_ports = {p["port"] for rule in np["spec"].get("ingress") or [] for p in rule.get("ports", [])}
        expected_in = {"case-api": {8080, 9090}, "portal": {8080, 9090}, "storage-api": {8080, 9090},
                       "ws-publisher": {8081, 9090}}.get(comp, set() if comp in ("admin-init", "test") else {9090})
        if ingress_ports != expected_in:
            problems.append(f"{comp}: ingress ports {sorted(ingress_ports)}, expected {sorted(expected_in)}")
    # Every call one pod may make is let in at the other end.
    for caller, target, port in calls:
        np = policies.get(target)
        if target not in deployed or not np:
            continue
        rules = [rule for rule in np["spec"].get("ingress") or [] if port in {p["port"] for p in rule.get("ports", [])}]
        admitted = any(
            "from" not in rule or any(
                peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component") == caller
                and "namespaceSelector" not in peer for peer in rule["from"])
            for rule in rules)
        if not admitted:
            problems.append(f"{caller} may call {target}:{port}, but {target}'s policy does not let it in")
    problems_check(report, f"[{r.name}] NetworkPolicies allow each service only what it must reach, and let its "
                   "in-release callers in", problems, f"{len(policies)} policies, {len(calls)} in-release calls")


# --------------------------------------------------------------------------
# Routes and the portal apart

def portal_paths() -> list[str]:
    """The request paths the portal serves, from its route attributes
    (services/portal/src: #[get("/cases/{id}")] ...), with one segment for
    each path parameter."""
    paths = set()
    for f in sorted((ROOT / "services/portal/src").rglob("*.rs")):
        for m in re.finditer(r'#\[(?:get|post|put|delete|patch|head)\("(/[^"]*)"', f.read_text()):
            paths.add(re.sub(r"\{[^}]+\}", "x", m.group(1)))
    return sorted(paths)


def api_scopes() -> list[str]:
    """The scopes the case API serves (services/case-api/src/lib.rs:
    web::scope("/api/v1"), web::scope("/engine-rest"))."""
    text = (ROOT / "services/case-api/src/lib.rs").read_text()
    return sorted(set(re.findall(r'web::scope\("(/[^"]+)"\)', text)))


def route_table(doc: dict, services: dict[str, dict]) -> list[tuple[str, str, str]]:
    """(match type, path, component of the backend Service) of an Ingress or HTTPRoute."""
    out = []
    if doc["kind"] == "Ingress":
        for rule in doc["spec"]["rules"]:
            for p in rule["http"]["paths"]:
                svc = services.get(p["backend"]["service"]["name"], {})
                out.append((p["pathType"], p["path"], component(svc) if svc else "?"))
    else:
        for rule in doc["spec"]["rules"]:
            svc = services.get(rule["backendRefs"][0]["name"], {})
            for m in rule.get("matches", []):
                kind = {"PathPrefix": "Prefix"}.get(m["path"]["type"], m["path"]["type"])
                out.append((kind, m["path"]["value"], component(svc) if svc else "?"))
    return out


def route_of(table: list[tuple[str, str, str]], path: str) -> str | None:
    """Where a request for `path` goes: Exact, else the longest prefix
    matching whole path segments (Ingress Prefix and HTTPRoute PathPrefix
    semantics)."""
    best = None
    for kind, value, target in table:
        if kind == "Exact":
            hit = path == value
        else:
            base = value.rstrip("/")
            hit = base == "" or path == base or path.startswith(base + "/")
        if hit:
            rank = (len(value.rstrip("/")), kind == "Exact")
            if best is None or rank > best[0]:
                best = (rank, target)
    return best[1] if best else None


def check_routes(report: Report, r: Rendered, merged: dict) -> None:
    """Every path reaches the service that serves it: the portal's own
    paths (read from its sources) go to the portal when it runs apart, else
    to case-api; the API's scopes to case-api, except the WebSocket and,
    optionally, the files."""
    services = r.by_name("Service")
    routes = r.kind("Ingress") + r.kind("HTTPRoute")
    if not routes:
        return
    portal_apart = merged["portal"]["enabled"]
    pages = portal_paths()
    scopes = api_scopes()
    problems = []
    if not pages or "/" not in pages or "/auth/callback" not in pages:
        problems.append(f"read no portal routes from services/portal/src ({pages})")
    if "/api/v1" not in scopes or "/engine-rest" not in scopes:
        problems.append(f"read no API scopes from services/case-api/src/lib.rs ({scopes})")
    clash = [p for p in pages for s in scopes if p == s or p.startswith(s + "/")]
    if clash:
        problems.append(f"portal paths under the API's scopes: {clash}")
    for doc in routes:
        kind = doc["kind"]
        files_apart = merged["storageApi"]["enabled"] and merged["ingress" if kind == "Ingress" else "httpRoute"]["filesToStorageApi"]
        want: dict[str, str] = {p: "portal" if portal_apart else "case-api" for p in pages}
        for s in scopes:
            want[s] = want[s + "/x"] = "case-api"
        want["/api/v1/ws"] = "ws-publisher" if merged["wsPublisher"]["enabled"] else "case-api"
        for f in ("/api/v1/files", "/api/v1/files/x", "/api/v1/files/x/download-url"):
            want[f] = "storage-api" if files_apart else "case-api"
        table = route_table(doc, services)
        for path, target in sorted(want.items()):
            got = route_of(table, path)
            if got != target:
                problems.append(f"{kind}: {path} goes to {got}, expected {target}")
    problems_check(report, f"[{r.name}] Ingress/HTTPRoute send each path to the service that serves it (the portal's "
                   f"routes from its sources{', apart' if portal_apart else ', on case-api'}; /api/v1, /engine-rest)",
                   problems, f"{len(pages)} portal paths, {len(scopes)} API scopes, {len(routes)} route objects")


def check_portal(report: Report, r: Rendered, merged: dict) -> None:
    """The portal apart: a client of the case-api Service, the API told not
    to serve it, the client secret where the portal runs, sticky options."""
    problems = []
    apart = merged["portal"]["enabled"]
    try:
        toml = tomllib.loads(r.config_toml())
    except tomllib.TOMLDecodeError as e:
        toml = {}
        problems.append(f"casewire.toml does not parse: {e}")
    served_by_api = toml.get("portal", {}).get("enabled", True)
    if apart and served_by_api is not False:
        problems.append("the portal runs apart but casewire.toml leaves portal.enabled on for case-api")
    if not apart and merged["config"]["portal"].get("enabled") is None and served_by_api is not True:
        problems.append("casewire.toml turns the API's portal off though the portal does not run apart")
    deployments = {component(d): d for d in r.kind("Deployment")}
    services = {component(s): s for s in r.kind("Service")}
    envs = {comp: {e["name"]: e for c in d["spec"]["template"]["spec"]["containers"] for e in c.get("env", [])}
            for comp, d in deployments.items()}
    s = merged["secrets"]["oidc"]
    host = "portal" if apart else "case-api"
    for comp, env in envs.items():
        has = "CASEWIRE__PORTAL__CLIENT_SECRET" in env
        want = comp == host and bool(s["existingSecret"] and s["portalClientSecretKey"])
        if has != want:
            problems.append(f"{comp}: portal client secret {'present' if has else 'absent'}, expected "
                            f"{'present' if want else 'absent'} (the portal runs in {host})")
        if comp != "portal" and "CASEWIRE__PORTAL__API_URL" in env:
            problems.append(f"{comp}: sets portal.api_url")
    if apart and "portal" in deployments:
        env = envs["portal"]
        api = services.get("case-api")
        url = env.get("CASEWIRE__PORTAL__API_URL", {}).get("value", "")
        if not api:
            problems.append("the portal runs without a case-api Service")
        else:
            port = next(p["port"] for p in api["spec"]["ports"] if p["name"] == "http")
            if url != f"http://{api['metadata']['name']}:{port}":
                problems.append(f"portal.api_url is {url!r}, not the case-api Service http://{api['metadata']['name']}:{port}")
        stores = sorted(k for k in env if k.startswith(("CASEWIRE__STORE__", "CASEWIRE__BUS__", "AWS_")))
        if stores:
            problems.append(f"the portal gets store credentials it does not use: {stores}")
        c = deployments["portal"]["spec"]["template"]["spec"]["containers"][0]
        if c["args"] != ["serve", "portal"]:
            problems.append(f"the portal runs {c['args']}")
        svc = services.get("portal")
        affinity = merged["portal"]["service"]["sessionAffinity"]
        if not svc:
            problems.append("no portal Service")
        elif svc["spec"].get("sessionAffinity", "None") != affinity:
            problems.append(f"portal Service sessionAffinity {svc['spec'].get('sessionAffinity')}, values say {affinity}")
        elif affinity == "ClientIP" and svc["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"] != \
                merged["portal"]["service"]["sessionAffinityTimeoutSeconds"]:
            problems.append("portal Service affinity timeout does not follow the values")
        pods = merged["portal"]["autoscaling"]["maxReplicas"] if merged["portal"]["autoscaling"]["enabled"] \
            else merged["portal"]["replicaCount"]
        if pods > 1 and "sticky sessions" not in r.notes:
            problems.append(f"NOTES.txt does not warn that {pods} portal pods need sticky sessions")
        tests = [p for p in r.kind("Pod") if p["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"]
        if tests and svc and f"http://{svc['metadata']['name']}:{merged['ports']['management']}/health/ready" \
                not in json.dumps(tests[0]["spec"]):
            problems.append("the helm test does not check the portal's readiness")
    for svc in r.kind("Service"):
        if component(svc) != "portal" and "sessionAffinity" in svc["spec"]:
            problems.append(f"Service/{svc['metadata']['name']} has a session affinity")
    problems_check(report, f"[{r.name}] the portal {'runs apart: a client of the case-api Service, the API does not serve it' if apart else 'is served by case-api'}"
                   ", its client secret where it runs", problems)


# --------------------------------------------------------------------------
# The casewire binary loads what the chart renders

def find_binary() -> Path | None:
    env = os.environ.get("CASEWIRE_BIN")
    candidates = [Path(env)] if env else []
    candidates += [ROOT / "target/release/casewire", ROOT / "target/debug/casewire"]
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return c
    return None


def placeholder(secret: str, key: str) -> str:
    """A stand-in for a Secret's value, of the shape it must have."""
    k = key.lower()
    if "imap" in k:
        return "imaps://reader:pw@127.0.0.1:1"
    if "smtp" in secret or "smtp" in k:
        return "smtp://mailer:pw@127.0.0.1:1"
    if "mongodb" in secret or k in ("url", "read-url"):
        return "mongodb://app:pw@127.0.0.1:1/casewire"
    return "placeholder-" + re.sub(r"[^a-z0-9]", "-", k)


def container_env(c: dict, overrides: dict[str, str]) -> dict[str, str]:
    """The environment the container gets, with Kubernetes' $(VAR) expansion."""
    env: dict[str, str] = {}
    for e in c.get("env", []):
        if "valueFrom" in e:
            ref = e["valueFrom"].get("secretKeyRef") or {}
            env[e["name"]] = placeholder(ref.get("name", ""), ref.get("key", ""))
        else:
            env[e["name"]] = VAR_REF.sub(lambda m: env.get(m.group(1), m.group(0)), str(e.get("value", "")))
    env.update(overrides)
    return env


def binary_env(tmp: str, toml: str, container: dict[str, str]) -> dict[str, str]:
    """The environment to run the binary as the container would, in the
    scratch directory `tmp`: the rendered casewire.toml written there, the
    data dir and the policies mount (a ConfigMap in the pod) under it."""
    cfg = Path(tmp) / "casewire.toml"
    cfg.write_text(toml)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tmp}
    env.update({k: v for k, v in container.items() if k != "CASEWIRE_CONFIG"})
    env["CASEWIRE_CONFIG"] = str(cfg)
    env["CASEWIRE__DATA_DIR"] = str(Path(tmp) / "data")
    if "/etc/casewire/policies" in toml:
        (Path(tmp) / "policies").mkdir()
        env["CASEWIRE__POLICY__DIR"] = str(Path(tmp) / "policies")
    return env


@functools.lru_cache(maxsize=None)
def run_binary(binary: str, toml: str, env_items: tuple, args: tuple) -> tuple[int, str]:
    with tempfile.TemporaryDirectory() as tmp:
        env = binary_env(tmp, toml, dict(env_items))
        try:
            p = subprocess.run([binary, *args], env=env, cwd=tmp, capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            return -1, "timed out"
        return p.returncode, p.stdout + p.stderr


def check_binary_loads(report: Report, r: Rendered, binary: Path | None, validate: bool) -> None:
    if binary is None:
        report.gap(f"[{r.name}] config loads in casewire", "no built binary (target/*/casewire or $CASEWIRE_BIN): not checked")
        return
    toml = r.config_toml()
    problems = []
    n = 0
    for owner, spec in r.pod_specs():
        for c in containers_of(spec):
            if not any(e["name"] == "CASEWIRE_CONFIG" for e in c.get("env", [])):
                continue
            n += 1
            env = container_env(c, {})
            items = tuple(sorted((k, v) for k, v in env.items() if k != "CASEWIRE_CONFIG"))
            # `token` loads the configuration (unknown keys and wrong types
            # are errors there) and then refuses: production has no dev issuer.
            rc, out = run_binary(str(binary), toml, items, ("token", "alice"))
            if "the dev issuer is off" not in out:
                problems.append(f"{c['name']}: {out.strip().splitlines()[-1] if out.strip() else rc}")
    problems_check(report, f"[{r.name}] casewire loads the rendered casewire.toml with each container's environment",
                   problems, f"{n} containers, {binary.relative_to(ROOT) if binary.is_relative_to(ROOT) else binary}")
    if not validate:
        return
    # Config::validate (what `serve` runs before it connects): `replay` opens
    # the platform, which validates first; MongoDB is a closed local port,
    # so a valid configuration fails only at the connection.
    problems = []
    stopped_at: set[str] = set()
    for owner, spec in r.pod_specs():
        for c in containers_of(spec):
            if c["name"] not in ("case-api", "email-ingest"):
                continue
            env = container_env(c, {"CASEWIRE__STORE__MONGODB__SERVER_SELECTION_TIMEOUT_MS": "200",
                                    "CASEWIRE__STORE__MONGODB__CONNECT_TIMEOUT_MS": "200"})
            items = tuple(sorted((k, v) for k, v in env.items() if k != "CASEWIRE_CONFIG"))
            rc, out = run_binary(str(binary), toml, items, ("replay",))
            last = out.strip().splitlines()[-1] if out.strip() else f"exit {rc}"
            if "configuration is invalid" in out or "could not be read" in out:
                problems.append(f"{c['name']}: {last}")
            else:
                stopped_at.add(last[:90])
    problems_check(report, f"[{r.name}] casewire validates the rendered configuration (Config::validate)", problems,
                   "then stops at: " + " | ".join(sorted(stopped_at)))


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str) -> tuple[int, str, dict]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(url, timeout=10) as res:
            return res.status, res.read().decode(errors="replace"), dict(res.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace"), dict(e.headers)
    except OSError as e:
        return 0, str(e), {}


def check_portal_serves(report: Report, r: Rendered, binary: Path | None) -> None:
    """`casewire serve portal` starts with the rendered casewire.toml and
    the portal container's environment (binds moved to free loopback
    ports): it serves the portal, is live, and is not ready while the case
    API (the in-cluster Service, unreachable here) does not answer."""
    if binary is None:
        report.gap(f"[{r.name}] casewire serve portal", "no built binary: not run")
        return
    d = next((d for d in r.kind("Deployment") if component(d) == "portal"), None)
    if d is None:
        return
    c = d["spec"]["template"]["spec"]["containers"][0]
    http_port, mgmt_port = free_port(), free_port()
    env = container_env(c, {"CASEWIRE__API__BIND": f"127.0.0.1:{http_port}",
                            "CASEWIRE__MANAGEMENT__BIND": f"127.0.0.1:{mgmt_port}"})
    api_url = env.get("CASEWIRE__PORTAL__API_URL", "")
    problems = []
    output: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        run_env = binary_env(tmp, r.config_toml(), env)
        out_path = Path(tmp) / "out.log"
        with out_path.open("w") as out:
            proc = subprocess.Popen([str(binary), *c["args"]], env=run_env, cwd=tmp, stdout=out,
                                    stderr=subprocess.STDOUT)
            try:
                live = (0, "", {})
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and proc.poll() is None:
                    live = http_get(f"http://127.0.0.1:{mgmt_port}/health/live")
                    if live[0] == 200:
                        break
                    time.sleep(0.2)
                if live[0] != 200:
                    problems.append(f"/health/live answered {live[0] or live[1]} (exit {proc.poll()})")
                else:
                    ready = http_get(f"http://127.0.0.1:{mgmt_port}/health/ready")
                    if ready[0] != 503 or api_url not in ready[1]:
                        problems.append(f"/health/ready answered {ready[0]} {ready[1][:160]!r}; expected 503 naming "
                                        f"the unreachable API {api_url}")
                    home = http_get(f"http://127.0.0.1:{http_port}/")
                    if home[0] not in (302, 303) or "/auth/login" not in home[2].get("Location", home[2].get("location", "")):
                        problems.append(f"GET / answered {home[0]}, not the portal's redirect to /auth/login")
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        output = out_path.read_text(errors="replace").strip().splitlines()
    if problems and output:
        problems.append(f"last output: {output[-1][:200]}")
    problems_check(report, f"[{r.name}] casewire serve portal starts with the rendered config and the portal's "
                   "environment (live; / redirects to sign-in; not ready until the case API answers)", problems,
                   f"portal.api_url {api_url}")


# --------------------------------------------------------------------------
# Profiles

def production_values() -> dict:
    egress = {dep: {"ports": ports, "to": [{"ipBlock": {"cidr": "192.0.2.0/24"}}]}
              for dep, ports in PROD_EGRESS_PORTS.items()}
    return {
        "ingress": {"enabled": True, "className": "nginx", "tlsSecretName": "cases-tls",
                    "annotations": {"nginx.ingress.kubernetes.io/proxy-read-timeout": "3600"}},
        "networkPolicy": {
            "enabled": True,
            "egress": egress,
            "ingress": {
                "api": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}],
                "management": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
            },
        },
        "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
        "grafanaDashboard": {"enabled": True, "annotations": {"grafana_folder": "Casewire"}},
        "prometheusRule": {"enabled": True, "labels": {"release": "prometheus"}, "alertLabels": {"team": "cases"},
                           "serverErrors": {"ratio": 0.02}, "slaBreaches": {"threshold": 5, "window": "1h"},
                           "notificationsDead": {"severity": "critical"}},
        **{key: {"enabled": True,
                 **({"autoscaling": {"enabled": True, "targetMemoryUtilizationPercentage": 80}} if SERVICES[key][2] else {}),
                 "pdb": {"enabled": True, **({"minAvailable": "50%"} if key == "caseApi" else {})},
                 "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                     {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                                                         "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "casewire"}}}}]}},
                 "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "casewire", "effect": "NoSchedule"}]}
           for key in SERVICES},
        "kafka": {"brokers": ["kafka-0.kafka:19092", "kafka-1.kafka:19092"]},
        "s3": {"bucket": "casewire-files", "endpoint": "http://minio.storage:9000",
               "publicEndpoint": "https://files.example.com", "pathStyle": True, "prefix": "casewire/"},
        "policies": {"configMap": "casewire-policies"},
        "dataDir": {"existingClaim": "casewire-data"},
        "secrets": {
            "mongodb": {"existingSecret": "casewire-mongodb", "readUrlKey": "read-url"},
            "kafka": {"existingSecret": "casewire-kafka"},
            "s3": {"existingSecret": "casewire-s3"},
            "oidc": {"existingSecret": "casewire-oidc", "portalClientSecretKey": "portal-client-secret"},
            "smtp": {"existingSecret": "casewire-smtp"},
            "taskWorkerHttp": {"existingSecret": "casewire-http"},
            "imap": {"existingSecret": "casewire-imap", "urlKeys": {"support": "support-imap-url"}},
        },
        "config": {
            "auth": {"issuers": [{"issuer": "https://keycloak.example.com/realms/acme", "audiences": ["casewire"]},
                                 {"issuer": "https://keycloak.example.com/realms/globex", "audiences": ["casewire"],
                                  "tenant": "globex"}],
                     "claims": {"client_id": "casewire"}},
            "bus": {"properties": {"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512"},
                    "partitions": 12, "topic_prefix": "prod."},
            "store": {"mongodb": {"max_pool_size": 50}},
            "service_account": {"token_url": "https://keycloak.example.com/realms/acme/protocol/openid-connect/token"},
            "notify": {"from": "Cases <cases@example.com>", "critical_kinds": ["sla.breached"]},
            "task_worker": {"http_allow": ["https://erp.example.com/api/"], "max_tasks": 16},
            "email": {"mailboxes": [
                {"name": "support", "tenant": "acme", "address": "support@example.com", "definition": "complaint",
                 "data": {"channel": "email", "priority": 2, "labels": ["inbound", "quote\"d"]}, "after": "move:Done"},
                {"name": "sales", "tenant": "acme", "address": "sales@example.com", "definition": "claim",
                 "strangers": "hold"},
            ], "own_addresses": ["noreply@example.com"]},
            "storage": {"max_upload_bytes": 1073741824, "purge_detached_after_secs": 2592000},
            "policy": {"engine": "opa-server", "opa_url": "http://opa.opa:8181"},
            "log": {"level": "casewire=debug,info"},
        },
    }


def profiles() -> list[tuple[str, dict]]:
    out = [
        ("default", {}),
        ("minimal", {
            **{k: {"enabled": False} for k in SERVICES if k not in ("caseApi", "caseEngine", "projector")},
            "caseApi": {"replicaCount": 1}, "caseEngine": {"replicaCount": 1}, "projector": {"replicaCount": 1},
            "adminInit": {"enabled": False}, "tests": {"enabled": False}, "topologySpread": {"enabled": False},
            "config": {"auth": {"issuers": [{"issuer": "https://id.example.com/realms/casewire", "audiences": ["casewire"]}]}},
        }),
        ("production", production_values()),
        ("gateway", {"httpRoute": {"enabled": True, "parentRefs": [{"name": "public", "namespace": "gateways", "sectionName": "https"}]},
                     "storageApi": {"enabled": True}}),
        # The portal apart, behind both an Ingress and an HTTPRoute, two pods
        # held by client address, a confidential portal client.
        ("portal", {
            "portal": {"enabled": True, "replicaCount": 2, "pdb": {"enabled": True}},
            "ingress": {"enabled": True, "tlsSecretName": "cases-tls",
                        "annotations": {"nginx.ingress.kubernetes.io/affinity": "cookie"}},
            "httpRoute": {"enabled": True},
            "secrets": {"oidc": {"existingSecret": "casewire-oidc", "portalClientSecretKey": "portal-client-secret"}},
            "config": {"auth": {"issuers": [{"issuer": "https://id.example.com/realms/acme", "audiences": ["casewire"]}]},
                       "portal": {"client_id": "cases-portal"}},
        }),
        # The portal apart with the files on storage-api, one pod, no affinity.
        ("portal-files", {
            "portal": {"enabled": True, "service": {"sessionAffinity": "None"}},
            "storageApi": {"enabled": True},
            "wsPublisher": {"enabled": False},
            "httpRoute": {"enabled": True},
        }),
    ]
    for key in SERVICES:
        off = {key: {"enabled": False}}
        if key == "caseApi":
            off["portal"] = {"enabled": False}  # the portal is a client of the case API
        out.append((f"without-{SERVICES[key][0]}", deep_merge(production_values(), off)))
    return out


def check_profile_shape(report: Report, name: str, r: Rendered, values: dict, merged: dict) -> None:
    problems = []
    deployments = {component(d) for d in r.kind("Deployment")}
    expected = {SERVICES[k][0] for k in SERVICES if merged[k]["enabled"]}
    if deployments != expected:
        problems.append(f"Deployments {sorted(deployments)}, expected {sorted(expected)}")
    for d in r.kind("Deployment"):
        c = d["spec"]["template"]["spec"]["containers"][0]
        if c["command"] != ["casewire"] or c["args"] != ["serve", component(d)]:
            problems.append(f"{component(d)}: runs {c['command'] + c['args']}")
    for kind in ("Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy"):
        for doc in r.kind(kind):
            comp = component(doc)
            if comp not in expected and comp not in ("admin-init", "test", "?"):
                problems.append(f"{kind}/{doc['metadata']['name']} for disabled {comp}")
    for ing in r.kind("Ingress") + r.kind("HTTPRoute"):
        text = json.dumps(ing)
        for k in SERVICES:
            if not merged[k]["enabled"] and f"{RELEASE}-casewire-{SERVICES[k][0]}\"" in text:
                problems.append(f"{ing['kind']} routes to disabled {SERVICES[k][0]}")
    hpas = {component(h) for h in r.kind("HorizontalPodAutoscaler")}
    want_hpas = {SERVICES[k][0] for k in SERVICES if merged[k]["enabled"] and merged[k].get("autoscaling", {}).get("enabled")}
    if hpas != want_hpas:
        problems.append(f"HPAs {sorted(hpas)}, expected {sorted(want_hpas)}")
    pdbs = {component(p) for p in r.kind("PodDisruptionBudget")}
    want_pdbs = {SERVICES[k][0] for k in SERVICES if merged[k]["enabled"] and merged[k]["pdb"]["enabled"]}
    if pdbs != want_pdbs:
        problems.append(f"PDBs {sorted(pdbs)}, expected {sorted(want_pdbs)}")
    if bool(r.kind("ServiceMonitor")) != merged["serviceMonitor"]["enabled"]:
        problems.append("ServiceMonitor presence does not follow serviceMonitor.enabled")
    if bool(r.kind("PrometheusRule")) != merged["prometheusRule"]["enabled"]:
        problems.append("PrometheusRule presence does not follow prometheusRule.enabled")
    if bool(r.kind("NetworkPolicy")) != merged["networkPolicy"]["enabled"]:
        problems.append("NetworkPolicies do not follow networkPolicy.enabled")
    ws_routed = any("/api/v1/ws" in json.dumps(x) for x in r.kind("Ingress") + r.kind("HTTPRoute"))
    if (merged["ingress"]["enabled"] or merged["httpRoute"]["enabled"]) and merged["caseApi"]["enabled"]:
        if ws_routed != merged["wsPublisher"]["enabled"]:
            problems.append("/api/v1/ws is routed iff ws-publisher runs: not so")
        if not any('"/"' in json.dumps(x) for x in r.kind("Ingress") + r.kind("HTTPRoute")):
            problems.append("/ (API and portal) is not routed")
    hooks = [j for j in r.kind("Job") if "pre-install" in j["metadata"].get("annotations", {}).get("helm.sh/hook", "")]
    if merged["adminInit"]["enabled"]:
        if len(hooks) != 1 or hooks[0]["spec"]["template"]["spec"]["containers"][0]["args"] != ["admin", "init"]:
            problems.append("no pre-install/pre-upgrade Job running `casewire admin init`")
        elif "pre-upgrade" not in hooks[0]["metadata"]["annotations"]["helm.sh/hook"]:
            problems.append("the admin init Job is not a pre-upgrade hook")
    tests = [p for p in r.kind("Pod") if p["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"]
    if merged["tests"]["enabled"]:
        script = json.dumps(tests[0]["spec"]) if tests else ""
        if merged["caseApi"]["enabled"] and "/health/ready" not in script:
            problems.append("the helm test does not check /health/ready")
        for issuer in merged["config"]["auth"]["issuers"]:
            if f"{issuer['issuer']}/.well-known/openid-configuration" not in script:
                problems.append(f"the helm test does not check the discovery of {issuer['issuer']}")
    # NOTES.txt names every Secret a pod references.
    refs = {e["valueFrom"]["secretKeyRef"]["name"] for _, s in r.pod_specs() for c in containers_of(s)
            for e in c.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})}
    for secret in refs:
        if secret not in r.notes:
            problems.append(f"NOTES.txt does not name Secret {secret}")
    if "http" not in r.notes:
        problems.append("NOTES.txt names no URL")
    problems_check(report, f"[{name}] resources follow the values (services, HPA, PDB, routes, hooks, test, NOTES)",
                   problems, f"{len(r.docs)} manifests, {len(deployments)} Deployments")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chart", default=str(ROOT / "charts/casewire"))
    args = ap.parse_args()
    chart_dir = Path(args.chart)
    started = time.monotonic()
    report = Report()
    from importlib.metadata import version
    print(f"helm-python-sdk {version('helm-python-sdk')}: Helm SDK {helm.helm_sdk_version()} "
          f"(libhelm_c {helm.helm_c_version()}); kubernetes-validate {version('kubernetes-validate')}, "
          f"schemas of Kubernetes {' and '.join(KUBE_VERSIONS)}")

    values_text = (chart_dir / "values.yaml").read_text()
    values = yaml.safe_load(values_text)
    schema = json.loads((chart_dir / "values.schema.json").read_text())

    # -- values.yaml and values.schema.json agree
    missing_in_schema, missing_in_values = schema_values_agreement(schema, values)
    problems_check(report, "every key of values.yaml is in values.schema.json", missing_in_schema)
    problems_check(report, "every property of values.schema.json is in values.yaml", missing_in_values)
    problems_check(report, "every object in values.schema.json is closed (additionalProperties: false, or a typed map)",
                   unclosed_objects(schema))
    problems_check(report, "every key of values.yaml has a comment", uncommented_keys(values_text))
    problems_check(report, "values.yaml holds no credential", secretish_values(values))
    problems_check(report, "every property of values.schema.json has a description",
                   values_table.missing_descriptions(schema))
    problems_check(report, "charts/casewire/README.md holds the values table tests/install/values_table.py generates",
                   values_table.readme_problems(chart_dir))

    # -- monitoring: the dashboard and the rules query what the code records
    check_metrics_inventory(report)
    dashboard = check_dashboard(report, chart_dir)

    chart = helm.Chart.load(str(chart_dir))
    problems_check(report, "values.yaml passes its own schema (Helm's validator)",
                   [] if _schema_ok(chart, {}) is None else [_schema_ok(chart, {})])

    # -- helm lint
    for name, vals in (("default", {}), ("production", production_values())):
        for kube in ("v1.27.0", f"v{kv.latest_version()}"):
            lint = helm.lint(str(chart_dir), vals, strict=True, namespace=NAMESPACE, kube_version=kube)
            bad = [f"{m['path']}: {m['error'].strip()}" for m in lint["messages"] if m["severity"] >= 2] + lint["errors"]
            problems_check(report, f"helm lint --strict, {name} values, Kubernetes {kube}", bad,
                           f"{len(lint['messages'])} info messages")

    # -- what the schema refuses
    refused = [
        ("a typo in a service key (caseApi.replicaCont)", {"caseApi": {"replicaCont": 3}}),
        ("a typo at the top (replicaCont)", {"replicaCont": 3}),
        ("a typo in a config key (config.api.max_wiat_secs)", {"config": {"api": {"max_wiat_secs": 5}}}),
        ("a wrong type (caseApi.replicaCount: \"two\")", {"caseApi": {"replicaCount": "two"}}),
        ("a wrong type (ingress.enabled: \"yes\")", {"ingress": {"enabled": "yes"}}),
        ("a wrong type (ports.api: 70000)", {"ports": {"api": 70000}}),
        ("autoscaling on a singleton (notifyPublisher.autoscaling)", {"notifyPublisher": {"autoscaling": {"enabled": True}}}),
        ("a credential in config (config.notify.smtp_url)", {"config": {"notify": {"smtp_url": "smtp://u:p@h:25"}}}),
        ("a password in bus.properties (sasl.password)", {"config": {"bus": {"properties": {"sasl.password": "x"}}}}),
        ("a secret-looking extraEnv with a plain value", {"caseApi": {"extraEnv": [{"name": "DB_PASSWORD", "value": "hunter2"}]}}),
        ("an unknown key in an issuer", {"config": {"auth": {"issuers": [{"issuer": "https://a/realms/b", "audiences": ["c"], "jwks": "x"}]}}}),
        ("a typo in an alert key (prometheusRule.slaBreaches.treshold)", {"prometheusRule": {"slaBreaches": {"treshold": 3}}}),
        ("a wrong duration (prometheusRule.serverErrors.for: \"10 minutes\")", {"prometheusRule": {"serverErrors": {"for": "10 minutes"}}}),
        ("a ratio above 1 (prometheusRule.serverErrors.ratio: 5)", {"prometheusRule": {"serverErrors": {"ratio": 5}}}),
        ("a typo in grafanaDashboard (grafanaDashboard.enable)", {"grafanaDashboard": {"enable": True}}),
        ("the portal apart without the case API it calls", {"portal": {"enabled": True}, "caseApi": {"enabled": False}}),
        ("an unknown portal session affinity (portal.service.sessionAffinity: Cookie)",
         {"portal": {"service": {"sessionAffinity": "Cookie"}}}),
    ]
    for label, vals in refused:
        try:
            render(chart, vals)
            rendered_err = None
        except helm.HelmError as e:
            rendered_err = str(e).strip().splitlines()[-1]
        lint = helm.lint(str(chart_dir), vals, strict=True, namespace=NAMESPACE)
        lint_failed = bool(lint["errors"]) or any(m["severity"] >= 3 for m in lint["messages"])
        report.check(f"refused: {label}", rendered_err is not None and lint_failed,
                     f"render: {rendered_err}" if rendered_err and lint_failed
                     else f"render {'failed' if rendered_err else 'succeeded'}, lint {'failed' if lint_failed else 'passed'}")

    # -- profiles
    binary = find_binary()
    rendered: dict[str, Rendered] = {}
    for name, vals in profiles():
        try:
            files = render(chart, vals)
        except helm.HelmError as e:
            report.check(f"[{name}] renders", False, str(e).strip())
            continue
        r = Rendered(name, files)
        rendered[name] = r
        merged = chart.merge_values(vals)
        report.check(f"[{name}] renders", True, f"{len(r.docs)} manifests")
        check_kube_schemas(report, r)
        check_security(report, r)
        check_probes(report, r, merged)
        check_secrets(report, r)
        check_references(report, r)
        check_profile_shape(report, name, r, vals, merged)
        check_routes(report, r, merged)
        check_portal(report, r, merged)
        check_dashboard_configmap(report, r, merged, dashboard)
        if merged["prometheusRule"]["enabled"]:
            check_prometheus_rule(report, r, merged)
        if merged["networkPolicy"]["enabled"] and name == "production":
            check_network_policies(report, r)
        if name in ("default", "minimal", "production", "gateway", "portal"):
            check_binary_loads(report, r, binary, validate=name in ("production", "minimal", "portal"))
        if name in ("production", "portal"):
            check_portal_serves(report, r, binary)

    # -- alerts switched off one by one are left out
    vals = {"prometheusRule": {"enabled": True, "selector": 'namespace="cases"',
                               **{k: {"enabled": False} for k in ("slaBreaches", "commandsNotHandled")}}}
    r = Rendered("alerts-subset", render(chart, vals))
    check_prometheus_rule(report, r, chart.merge_values(vals))

    # -- a config change rolls the pods
    base = rendered.get("default")
    changed = Rendered("changed", render(chart, {"config": {"log": {"level": "debug"}}}))
    if base:
        sums = lambda r: {d["metadata"]["name"]: d["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
                          for d in r.kind("Deployment")}
        a, b = sums(base), sums(changed)
        same = [n for n in a if a[n] == b.get(n)]
        report.check("a config change changes every Deployment's checksum/config (the pods roll)", bool(a) and not same,
                     f"unchanged: {same}" if same else f"{len(a)} Deployments")
    again = Rendered("again", render(chart, {}))
    report.check("rendering is deterministic (same values, same manifests)",
                 base is not None and json.dumps(again.docs, sort_keys=True) == json.dumps(base.docs, sort_keys=True))

    elapsed = time.monotonic() - started
    print(f"({elapsed:.1f} s)")
    print(f"install checks: {report.passed} passed, {report.failed} failed")
    return 1 if report.failed else 0


def _schema_ok(chart, vals) -> str | None:
    try:
        chart.validate_schema(vals)
        return None
    except helm.HelmError as e:
        return str(e).strip()


if __name__ == "__main__":
    sys.exit(main())
