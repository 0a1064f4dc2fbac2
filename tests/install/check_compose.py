#!/usr/bin/env python3
"""Static checks of the container install: Dockerfile, compose/ and the
Keycloak realms, against what the code says.

Nothing here runs a container (there may be no Docker engine). Every
expectation that the repository already states is read from it, so the
install cannot drift from the code silently:

  - config keys:      the structs of crates/runtime/src/config.rs (and the
                      oidc structs they embed), and the README's table
  - services:         `enum Service` of services/casewire/src/main.rs
  - roles:            policies/**/*.rego (`"<role>" in roles`)
  - demo users:       DEMO_USERS of crates/oidc/src/dev.rs
  - queues:           those users' groups and the definitions' access groups
  - client ids, audience, claim names: the Default impls of the config
  - OPA's package:    the Data API path of crates/policy/src/opa.rs

Prints one line per check and finally `install checks: N passed, M failed`;
exits 1 when a check failed.

    tests/install/check_compose.py [--root DIR] [--hadolint BIN] [--check-jsonschema BIN]
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[2]

# Long-running infrastructure without a Docker health check, and why.
NO_HEALTHCHECK = {
    "opa": "its image has no shell or HTTP client; Casewire answers 503 until it is up",
}
VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])[^}]*)?\}")


# --- Reading the repository --------------------------------------------------


def read(rel: str) -> str:
    return (ROOT / rel).read_text(encoding="utf-8")


def strip_comments(src: str) -> str:
    return re.sub(r"//[^\n]*", "", src)


def rust_structs(*files: str) -> dict[str, dict[str, str]]:
    """`pub struct Name { pub field: Type, ... }` -> {Name: {field: Type}},
    with serde renames applied."""
    structs: dict[str, dict[str, str]] = {}
    for f in files:
        src = strip_comments(read(f))
        for m in re.finditer(r"pub struct (\w+)\s*\{(.*?)\n\}", src, re.S):
            fields: dict[str, str] = {}
            rename = None
            for line in m.group(2).splitlines():
                line = line.strip()
                r = re.match(r'#\[serde\(.*rename\s*=\s*"([^"]+)"', line)
                if r:
                    rename = r.group(1)
                    continue
                fm = re.match(r"pub (\w+):\s*(.+?),?$", line)
                if fm:
                    fields[rename or fm.group(1)] = fm.group(2)
                    rename = None
            structs[m.group(1)] = fields
    return structs


def struct_defaults(rel: str, name: str) -> dict[str, str]:
    """String defaults (`field: "value".into()`) of `impl Default for name`."""
    src = strip_comments(read(rel))
    m = re.search(r"impl Default for " + name + r"\s*\{(.*?)\n\}", src, re.S)
    if not m:
        raise AssertionError(f"no `impl Default for {name}` in {rel}")
    return dict(re.findall(r'(\w+):\s*"([^"]*)"\.into\(\)', m.group(1)))


def kebab(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", camel).lower()


def rust_enum(rel: str, name: str) -> list[str]:
    src = strip_comments(read(rel))
    m = re.search(r"enum " + name + r"\s*\{(.*?)\n\}", src, re.S)
    if not m:
        raise AssertionError(f"no `enum {name}` in {rel}")
    body = re.sub(r"#\[[^\]]*\]", "", m.group(1))
    variants, depth = [], 0
    for line in body.splitlines():
        s = line.strip()
        if depth == 0:
            v = re.match(r"([A-Z]\w*)\s*(?:[,{(]|$)", s)
            if v:
                variants.append(kebab(v.group(1)))
        depth += s.count("{") - s.count("}")
    return variants


def config_tree() -> dict:
    """The config's keys: {name: None (a value) | dict (a section) |
    ("list", dict) (a list of sections) | "map" (free keys)}."""
    structs = rust_structs(
        "crates/runtime/src/config.rs", "crates/oidc/src/principal.rs", "crates/oidc/src/verifier.rs"
    )

    def build(name: str, seen: tuple = ()) -> dict:
        tree: dict = {}
        for field, ty in structs[name].items():
            inner = re.sub(r"^Option<(.*)>$", r"\1", ty.strip())
            vec = re.match(r"^Vec<(?:[\w:]+::)?(\w+)>$", inner)
            base = inner.split("::")[-1]
            if vec and vec.group(1) in structs and vec.group(1) not in seen:
                tree[field] = ("list", build(vec.group(1), seen + (name,)))
            elif base in structs and base not in seen:
                tree[field] = build(base, seen + (name,))
            elif re.search(r"(BTreeMap|HashMap)<", inner):
                tree[field] = "map"
            else:
                tree[field] = None
        return tree

    return build("Config")


def key_exists(tree: dict, path: list[str]) -> bool:
    """Whether a dotted key names a value (or a map, or a whole list of
    sections), never a whole section or something unknown."""
    node = tree
    for idx, part in enumerate(path):
        if node == "map":
            return True
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
        if isinstance(node, tuple):  # a list of sections is set whole
            return idx == len(path) - 1
    return not isinstance(node, dict)


def readme_keys() -> set[str]:
    text = read("README.md")
    section = text.split("\n## Configuration", 1)[1].split("\n## ", 1)[0]
    keys: set[str] = set()
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cell = line.split("|")[1]
        tokens = re.findall(r"`([^`]+)`", cell)
        if not tokens:
            continue
        prefix = tokens[0].rsplit(".", 1)[0] if "." in tokens[0] else ""
        for t in tokens:
            keys.add(t if "." in t or not prefix else f"{prefix}.{t}")
    return keys


def env_key_path(key: str) -> list[str]:
    return [p.lower() for p in key[len("CASEWIRE__"):].split("__")]


def figment_value(text: str):
    """A value as figment's Env provider reads it: `[..]`, `{k = v, ..}`,
    "strings", bare words; anything that does not parse whole is a string."""
    pos = 0

    def ws():
        nonlocal pos
        while pos < len(text) and text[pos].isspace():
            pos += 1

    def value():
        nonlocal pos
        ws()
        c = text[pos] if pos < len(text) else ""
        if c == "[":
            pos += 1
            out = []
            ws()
            if text[pos] == "]":
                pos += 1
                return out
            while True:
                out.append(value())
                ws()
                if text[pos] == ",":
                    pos += 1
                    continue
                if text[pos] == "]":
                    pos += 1
                    return out
                raise ValueError(f"expected , or ] at {pos}")
        if c == "{":
            pos += 1
            out = {}
            ws()
            if text[pos] == "}":
                pos += 1
                return out
            while True:
                ws()
                m = re.compile(r'"([^"]*)"|([A-Za-z0-9_-]+)').match(text, pos)
                if not m:
                    raise ValueError(f"expected a key at {pos}")
                pos = m.end()
                ws()
                if text[pos] != "=":
                    raise ValueError(f"expected = at {pos}")
                pos += 1
                out[m.group(1) or m.group(2)] = value()
                ws()
                if text[pos] == ",":
                    pos += 1
                    continue
                if text[pos] == "}":
                    pos += 1
                    return out
                raise ValueError(f"expected , or }} at {pos}")
        if c == '"':
            end = text.index('"', pos + 1)
            s = text[pos + 1 : end]
            pos = end + 1
            return s
        m = re.compile(r"[^,{}\[\]]*").match(text, pos)
        pos = m.end()
        return m.group(0).strip()

    try:
        v = value()
        ws()
        if pos != len(text):
            return text
        return v
    except (ValueError, IndexError):
        return text


def demo_users() -> list[dict]:
    src = read("crates/oidc/src/dev.rs")
    block = src.split("pub const DEMO_USERS", 1)[1].split("];", 1)[0]
    users = []
    for m in re.finditer(r"DemoUser\s*\{(.*?)\}", block, re.S):
        body = m.group(1)

        def s(field):
            return re.search(field + r':\s*"([^"]*)"', body).group(1)

        def lst(field):
            return re.findall(r'"([^"]*)"', re.search(field + r":\s*&\[(.*?)\]", body, re.S).group(1))

        users.append(
            {
                "username": s("username"),
                "password": s("password"),
                "tenant": s("tenant"),
                "email": s("email"),
                "roles": lst("roles"),
                "groups": lst("groups"),
            }
        )
    if not users:
        raise AssertionError("no DemoUser in crates/oidc/src/dev.rs")
    return users


def policy_files(tests: bool) -> list[Path]:
    files = sorted((ROOT / "policies").rglob("*.rego"))
    return [f for f in files if f.name.endswith("_test.rego") == tests]


def policy_roles() -> set[str]:
    roles = set()
    for f in policy_files(False):
        roles |= set(re.findall(r'"([a-z][a-z0-9-]*)" in roles\b', f.read_text()))
    if not roles:
        raise AssertionError("no `\"<role>\" in roles` in policies/")
    return roles


def policy_packages(tests: bool) -> set[str]:
    pkgs = set()
    for f in policy_files(tests):
        pkgs |= set(re.findall(r"^package\s+([\w.]+)", f.read_text(), re.M))
    return pkgs


def definitions() -> list[dict]:
    out = []
    for f in sorted((ROOT / "definitions").glob("*.y*ml")):
        out.append(yaml.safe_load(f.read_text()))
    return out


def definition_groups() -> set[str]:
    groups = set()
    for d in definitions():
        access = d.get("access") or {}
        groups |= set(access.get("view") or []) | set(access.get("work") or [])
        if d.get("defaultQueue"):
            groups.add(f"/queues/{d['defaultQueue']}")
    return groups


# --- The install's files ------------------------------------------------------


class Install:
    def __init__(self):
        self.compose_path = ROOT / "compose/docker-compose.yml"
        self.compose = yaml.safe_load(self.compose_path.read_text())
        self.services: dict = self.compose["services"]
        self.env_example = {}
        for line in (ROOT / "compose/.env.example").read_text().splitlines():
            m = re.match(r"^([A-Z_][A-Z0-9_]*)=(.*)$", line)
            if m:
                self.env_example[m.group(1)] = m.group(2)
        self.realms = {}
        for f in sorted((ROOT / "compose/keycloak").glob("*.json")):
            self.realms[f.name] = json.loads(f.read_text())
        self.traefik = yaml.safe_load((ROOT / "compose/traefik/dynamic.yml").read_text())
        self.dockerfile = (ROOT / "Dockerfile").read_text()

    def env(self, service: str) -> dict[str, str]:
        env = self.services[service].get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) for e in env)
        return {k: "" if v is None else str(v) for k, v in env.items()}

    def casewire_containers(self) -> list[str]:
        image = self.services["case-api"]["image"]
        return [n for n, s in self.services.items() if s.get("image") == image or "build" in s]

    def serving(self, service_name: str) -> list[str]:
        return [n for n in self.casewire_containers() if self.services[n].get("command") == ["serve", service_name]]

    def resolve(self, value: str) -> str:
        """Compose interpolation with .env.example's values (for
        comparisons between files)."""

        def sub(m):
            return self.env_example.get(m.group(1)) or (m.group(0).split(":-", 1)[1][:-1] if ":-" in m.group(0) else "")

        return VAR.sub(sub, value)

    def keycloak_public(self) -> str:
        return self.resolve(self.env("keycloak")["KC_HOSTNAME"]).rstrip("/")


# --- Checks ---------------------------------------------------------------------

CHECKS: list[tuple[str, object]] = []


def check(name):
    def register(fn):
        CHECKS.append((name, fn))
        return fn

    return register


def fail(msg):
    raise AssertionError(msg)


ARGS = argparse.Namespace(hadolint=None, check_jsonschema=None)


@check("hadolint: Dockerfile has no finding")
def _(i: Install):
    if not ARGS.hadolint:
        fail("no hadolint binary given (--hadolint)")
    r = subprocess.run([ARGS.hadolint, "--no-color", "Dockerfile"], cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        fail((r.stdout + r.stderr).strip().replace("\n", " | "))


@check("compose spec: docker-compose.yml validates against the Compose specification's schema")
def _(i: Install):
    if not ARGS.check_jsonschema:
        fail("no check-jsonschema binary given (--check-jsonschema)")
    r = subprocess.run(
        [ARGS.check_jsonschema, "--builtin-schema", "vendor.compose-spec", str(i.compose_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        fail((r.stdout + r.stderr).strip().replace("\n", " | "))


@check("dockerfile: rust builder matches the workspace's rust-version, on bookworm like the runtime")
def _(i: Install):
    want = tomllib.loads(read("Cargo.toml"))["workspace"]["package"]["rust-version"]
    m = re.search(r"^ARG RUST_VERSION=(\S+)", i.dockerfile, re.M)
    if not m or m.group(1) != want:
        fail(f"ARG RUST_VERSION={m and m.group(1)}, the workspace wants {want}")
    froms = re.findall(r"^FROM\s+(\S+)", i.dockerfile, re.M)
    if not all("bookworm" in f for f in froms if f.startswith("rust:")):
        fail(f"rust stages not on bookworm: {froms}")
    if "debian12" not in froms[-1]:
        fail(f"the runtime {froms[-1]} is not Debian 12 (bookworm), the builder's glibc")


@check("dockerfile: builds package casewire (the binary of services/casewire), runs it as ENTRYPOINT with CMD serve case-api")
def _(i: Install):
    pkg = tomllib.loads(read("services/casewire/Cargo.toml"))["package"]["name"]
    if not (ROOT / "services/casewire/src/main.rs").exists():
        fail("services/casewire has no binary")
    if f"cargo build --release --locked -p {pkg}" not in i.dockerfile:
        fail(f"no `cargo build --release --locked -p {pkg}`")
    if 'ENTRYPOINT ["casewire"]' not in i.dockerfile or 'CMD ["serve", "case-api"]' not in i.dockerfile:
        fail("ENTRYPOINT/CMD differ")
    if "cargo build --release --locked -p casewire" not in i.dockerfile.split("COPY crates crates")[0]:
        fail("no dependency build before the sources are copied")


@check("dockerfile: the runtime stage runs as a non-root user, with OCI labels")
def _(i: Install):
    last = i.dockerfile.rsplit("\nFROM ", 1)[1]
    users = re.findall(r"^USER\s+(\S+)", last, re.M)
    if not users or users[-1].split(":")[0] in ("root", "0"):
        fail(f"USER {users}")
    license_ = tomllib.loads(read("Cargo.toml"))["workspace"]["package"]["license"]
    for label in ("title", "description", "version", "revision", "created", "source", "licenses"):
        if f"org.opencontainers.image.{label}=" not in last:
            fail(f"label org.opencontainers.image.{label} missing")
    if f'org.opencontainers.image.licenses="{license_}"' not in last:
        fail(f"license label is not the workspace's {license_}")


@check("dockerfile: EXPOSE has the API, WebSocket and management ports the compose file binds")
def _(i: Install):
    exposed = set()
    for m in re.findall(r"^EXPOSE\s+(.+)$", i.dockerfile, re.M):
        exposed |= {p.split("/")[0] for p in m.split()}
    want = set()
    for n in i.casewire_containers():
        for k in ("CASEWIRE__API__BIND", "CASEWIRE__WS__BIND", "CASEWIRE__MANAGEMENT__BIND"):
            if k in i.env(n):
                want.add(i.env(n)[k].rsplit(":", 1)[1])
    if not want <= exposed:
        fail(f"binds {sorted(want)} not all in EXPOSE {sorted(exposed)}")


@check("dockerfile: every ENV CASEWIRE__ key is a config key")
def _(i: Install):
    tree = config_tree()
    keys = re.findall(r"\b(CASEWIRE__[A-Z0-9_]+)=", i.dockerfile)
    bad = [k for k in keys if not key_exists(tree, env_key_path(k))]
    if not keys or bad:
        fail(f"unknown: {bad}" if bad else "none")


@check(".dockerignore: the context has every workspace manifest and what the Dockerfile copies, not target/ or .git")
def _(i: Install):
    patterns = [
        l.strip() for l in (ROOT / ".dockerignore").read_text().splitlines() if l.strip() and not l.startswith("#")
    ]

    def excluded(path: str) -> bool:
        out = False
        parts = path.split("/")
        for p in patterns:
            neg = p.startswith("!")
            pat = p[1:] if neg else p
            pat = pat.rstrip("/")
            hit = False
            for k in range(1, len(parts) + 1):
                prefix = "/".join(parts[:k])
                if fnmatch.fnmatch(prefix, pat) or (
                    pat.startswith("**/") and any(fnmatch.fnmatch("/".join(parts[j:k]), pat[3:]) for j in range(k))
                ):
                    hit = True
            if hit:
                out = not neg
        return out

    members = tomllib.loads(read("Cargo.toml"))["workspace"]["members"]
    needed = ["Cargo.toml", "Cargo.lock"] + [f"{m}/Cargo.toml" for m in members]
    for m in re.findall(r"^COPY\s+(?!--from)(?:--\S+\s+)*(\S+)\s+\S+$", i.dockerfile, re.M):
        if m != ".":
            needed.append(m + "/x" if (ROOT / m).is_dir() else m)
    missing = [n for n in needed if excluded(n)]
    if missing:
        fail(f"excluded from the context: {missing}")
    leaked = [p for p in ("target/x", ".git/HEAD", "tests/.state/x", "data/events.db", "compose/.env") if not excluded(p)]
    if leaked:
        fail(f"in the context: {leaked}")


@check("services: every `casewire serve <service>` has a container")
def _(i: Install):
    services = rust_enum("services/casewire/src/main.rs", "Service")
    missing = [s for s in services if not i.serving(s)]
    if len(services) < 8 or missing:
        fail(f"no container for {missing}" if missing else f"parsed only {services}")


@check("services: every Casewire container runs a known subcommand from the root Dockerfile")
def _(i: Install):
    commands = set(rust_enum("services/casewire/src/main.rs", "Command"))
    services = set(rust_enum("services/casewire/src/main.rs", "Service"))
    for n in i.casewire_containers():
        s = i.services[n]
        cmd = s.get("command") or []
        if not cmd or cmd[0] not in commands:
            fail(f"{n}: command {cmd}")
        if cmd[0] == "serve" and (len(cmd) != 2 or cmd[1] not in services):
            fail(f"{n}: serve {cmd[1:]}")
        b = s.get("build") or {}
        if (i.compose_path.parent / b.get("context", "")).resolve() != ROOT or b.get("dockerfile") != "Dockerfile":
            fail(f"{n}: build {b}")
        if cmd[0] == "serve" and i.env(n).get("CASEWIRE__MODE") != "production":
            fail(f"{n}: CASEWIRE__MODE is not production (serve refuses to start without a mode)")


@check("config: every CASEWIRE__ key in the compose file is a field of the config structs")
def _(i: Install):
    tree = config_tree()
    bad = set()
    count = 0
    for n in i.services:
        for k in i.env(n):
            if k.startswith("CASEWIRE__"):
                count += 1
                if not key_exists(tree, env_key_path(k)):
                    bad.add(f"{n}:{k}")
    if bad or count == 0:
        fail(f"unknown keys: {sorted(bad)}")


@check("config: every CASEWIRE__ key in the compose file is in the README's configuration table")
def _(i: Install):
    documented = readme_keys()
    bad = set()
    for n in i.services:
        for k in i.env(n):
            if k.startswith("CASEWIRE__"):
                dotted = ".".join(env_key_path(k))
                if dotted not in documented:
                    bad.add(dotted)
    if bad:
        fail(f"not documented: {sorted(bad)}")


@check("config: enum values used are the config's (mode, policy.engine, log.format)")
def _(i: Install):
    modes = set(rust_enum("crates/runtime/src/config.rs", "Mode"))
    engines = set(rust_enum("crates/runtime/src/config.rs", "PolicyEngineKind"))
    for n in i.casewire_containers():
        e = i.env(n)
        if e.get("CASEWIRE__MODE", "production") not in modes:
            fail(f"{n}: mode {e['CASEWIRE__MODE']} not in {modes}")
        if e.get("CASEWIRE__POLICY__ENGINE", "rego") not in engines:
            fail(f"{n}: policy.engine {e['CASEWIRE__POLICY__ENGINE']} not in {engines}")
        if e.get("CASEWIRE__LOG__FORMAT", "auto") not in ("json", "pretty", "auto"):
            fail(f"{n}: log.format")


@check("config: auth.issuers parse, name real fields, and are the realms' public issuer URLs")
def _(i: Install):
    fields = set(rust_structs("crates/oidc/src/verifier.rs")["TrustedIssuer"])
    audience = struct_defaults("crates/runtime/src/config.rs", "AuthConfig")["audience"]
    realms = {r["realm"] for r in i.realms.values()}
    base = i.keycloak_public()
    for n in i.casewire_containers():
        raw = i.env(n).get("CASEWIRE__AUTH__ISSUERS")
        if raw is None:
            fail(f"{n}: no CASEWIRE__AUTH__ISSUERS (production needs issuers)")
        issuers = figment_value(raw)
        if not isinstance(issuers, list) or not all(isinstance(x, dict) for x in issuers):
            fail(f"{n}: does not parse as a list of tables: {raw[:80]}")
        seen = set()
        for iss in issuers:
            if not set(iss) <= fields or "issuer" not in iss:
                fail(f"{n}: fields {sorted(iss)} not within {sorted(fields)}")
            url = i.resolve(iss["issuer"])
            realm = url.rsplit("/realms/", 1)[-1]
            if url != f"{base}/realms/{realm}" or realm not in realms:
                fail(f"{n}: issuer {url} is not {base}/realms/<one of {sorted(realms)}>")
            if audience not in iss.get("audiences", []):
                fail(f"{n}: issuer {realm} does not accept the audience {audience}")
            jwks = iss.get("jwks_uri")
            if jwks:
                host = urlsplit(jwks).hostname
                if host not in i.services or f"/realms/{realm}/" not in jwks:
                    fail(f"{n}: jwks_uri {jwks}")
            seen.add(realm)
        if seen != realms:
            fail(f"{n}: issuers for {sorted(seen)}, realms are {sorted(realms)}")


@check("config: email.mailboxes parse with real fields, tenants are realms, definitions exist; only email-ingest has imap_url")
def _(i: Install):
    fields = set(rust_structs("crates/runtime/src/config.rs")["MailboxConfig"])
    realms = {r["realm"] for r in i.realms.values()}
    ids = {d["id"] for d in definitions()}
    lists = {}
    for n in i.casewire_containers():
        raw = i.env(n).get("CASEWIRE__EMAIL__MAILBOXES")
        if raw is None:
            continue
        boxes = figment_value(raw)
        if not isinstance(boxes, list) or not all(isinstance(b, dict) for b in boxes):
            fail(f"{n}: does not parse: {raw[:80]}")
        for b in boxes:
            if not set(b) <= fields or not {"name", "tenant", "address", "definition"} <= set(b):
                fail(f"{n}: mailbox fields {sorted(b)} (known {sorted(fields)})")
            if b["tenant"] not in realms or b["definition"] not in ids:
                fail(f"{n}: tenant {b['tenant']} / definition {b['definition']} unknown")
            if "imap_url" in b:
                if i.services[n].get("command") != ["serve", "email-ingest"]:
                    fail(f"{n} holds an IMAP password but is no email-ingest")
                u = urlsplit(i.resolve(b["imap_url"]))
                if u.hostname not in i.services or "${" not in b["imap_url"]:
                    fail(f"{n}: imap_url must name a compose service and take its password from .env")
        lists[n] = [{k: v for k, v in b.items() if k != "imap_url"} for b in boxes]
    readers = i.serving("email-ingest")
    if not readers or not any("imap_url" in str(i.env(r).get("CASEWIRE__EMAIL__MAILBOXES")) for r in readers):
        fail("email-ingest reads no mailbox")
    if len({json.dumps(v, sort_keys=True) for v in lists.values()}) != 1:
        fail("the containers disagree on the mailboxes")


@check("config: service accounts ask Keycloak of a realm for a client of that realm, with that realm's secret")
def _(i: Install):
    defaults = struct_defaults("crates/runtime/src/config.rs", "ServiceAccountConfig")
    by_realm = {r["realm"]: r for r in i.realms.values()}
    for n in i.serving("task-worker") + i.serving("email-ingest"):
        e = i.env(n)
        url = urlsplit(e.get("CASEWIRE__SERVICE_ACCOUNT__TOKEN_URL", ""))
        m = re.fullmatch(r"/realms/([^/]+)/protocol/openid-connect/token", url.path)
        if url.hostname not in i.services or not m or m.group(1) not in by_realm:
            fail(f"{n}: token_url {url.geturl()}")
        client_id = e.get("CASEWIRE__SERVICE_ACCOUNT__CLIENT_ID", defaults["client_id"])
        clients = {c["clientId"]: c for c in by_realm[m.group(1)]["clients"]}
        if client_id not in clients:
            fail(f"{n}: client {client_id} not in realm {m.group(1)}")
        secret_vars = VAR.findall(e.get("CASEWIRE__SERVICE_ACCOUNT__CLIENT_SECRET", ""))
        realm_vars = VAR.findall(clients[client_id].get("secret", ""))
        if not secret_vars or [v[0] for v in secret_vars] != [v[0] for v in realm_vars]:
            fail(f"{n}: secret {secret_vars} is not the realm's {realm_vars}")
        api = urlsplit(e.get("CASEWIRE__SERVICE_ACCOUNT__API_URL", ""))
        if api.hostname not in i.services or i.services[api.hostname].get("command") != ["serve", "case-api"]:
            fail(f"{n}: service_account.api_url {api.geturl()} is not the case-api container")
    if not {m["realm"] for m in i.realms.values()} <= {
        re.search(r"/realms/([^/]+)/", i.env(n)["CASEWIRE__SERVICE_ACCOUNT__TOKEN_URL"]).group(1)
        for n in i.serving("task-worker")
    }:
        fail("some realm (tenant) has no task worker")


@check("opa: policy.engine opa-server everywhere the stores are, at the opa container's address")
def _(i: Install):
    opa = i.services["opa"]
    addr = next(a.split("=", 1)[1] for a in opa["command"] if a.startswith("--addr="))
    for n in i.casewire_containers():
        e = i.env(n)
        if "CASEWIRE__BUS__URL" not in e:
            continue
        if e.get("CASEWIRE__POLICY__ENGINE") != "opa-server":
            fail(f"{n}: policy.engine {e.get('CASEWIRE__POLICY__ENGINE')}")
        u = urlsplit(e.get("CASEWIRE__POLICY__OPA_URL", ""))
        if u.hostname != "opa" or str(u.port) != addr.rsplit(":", 1)[1]:
            fail(f"{n}: opa_url {u.geturl()} vs --addr={addr}")


@check("opa: mounts the repository's policies/ and loads that path, without the *_test.rego files")
def _(i: Install):
    opa = i.services["opa"]
    mounts = [v.split(":") for v in opa.get("volumes", [])]
    target = None
    for m in mounts:
        if (i.compose_path.parent / m[0]).resolve() == (ROOT / "policies").resolve():
            target = m[1]
    if not target:
        fail(f"no mount of policies/: {opa.get('volumes')}")
    cmd = opa["command"]
    if cmd[:2] != ["run", "--server"] or target not in cmd:
        fail(f"command {cmd} does not serve {target}")
    if "--ignore=*_test.rego" not in cmd:
        fail("the *_test.rego files would be loaded (Casewire skips them)")


@check("opa: the package Casewire queries (crates/policy/src/opa.rs) is in policies/, with its rules")
def _(i: Install):
    src = read("crates/policy/src/opa.rs")
    m = re.search(r'"\{\}/v1/data/([\w/]+)/\{rule\}"', src)
    if not m:
        fail("no Data API path in opa.rs")
    package = m.group(1).replace("/", ".")
    rules = set(re.findall(r'self\.query\("(\w+)"', src))
    pkgs = policy_packages(False)
    if package not in pkgs:
        fail(f"{package} not in {sorted(pkgs)}")
    text = "\n".join(f.read_text() for f in policy_files(False))
    missing = [r for r in rules if not re.search(rf"^{r}\s*:=", text, re.M)]
    if not rules or missing:
        fail(f"rules {missing} of {sorted(rules)} undefined")
    if policy_packages(True) & pkgs:
        fail("a test package shares a name with a policy package")


@check("realms: one export per tenant of the demo users (casewire, globex), each loads and is named as its file")
def _(i: Install):
    tenants = {u["tenant"] for u in demo_users()}
    names = {r["realm"] for r in i.realms.values()}
    if names != tenants:
        fail(f"realms {sorted(names)}, tenants {sorted(tenants)}")
    for f, r in i.realms.items():
        if f != f"{r['realm']}-realm.json" or not r.get("enabled"):
            fail(f"{f}: realm {r['realm']} enabled={r.get('enabled')}")


def realm_check(aspect):
    """A check run once per realm export (expanded when the files are read)."""

    def register(fn):
        CHECKS.append((None, (aspect, fn)))
        return fn

    return register


def flat_groups(groups, out=None):
    out = set() if out is None else out
    for g in groups or []:
        out.add(g.get("path") or "")
        flat_groups(g.get("subGroups"), out)
    return out


@realm_check("has every role the policies test for")
def _(i, realm):
    have = {r["name"] for r in realm.get("roles", {}).get("realm", [])}
    missing = policy_roles() - have
    if missing:
        fail(f"missing {sorted(missing)}")


@realm_check("has the /queues/<name> groups of its demo users and of the definitions' access")
def _(i, realm):
    want = definition_groups()
    for u in demo_users():
        if u["tenant"] == realm["realm"]:
            want |= set(u["groups"])
    have = flat_groups(realm.get("groups"))
    missing = want - have
    if missing or not all(g.startswith("/queues/") for g in want):
        fail(f"missing {sorted(missing)}")


@realm_check("has the demo users of its tenant, with their e-mail, roles, groups and password")
def _(i, realm):
    users = {u["username"]: u for u in realm.get("users", [])}
    roles = policy_roles()
    for d in demo_users():
        if d["tenant"] != realm["realm"]:
            continue
        u = users.get(d["username"])
        if not u:
            fail(f"no user {d['username']}")
        if not u.get("enabled") or u.get("email") != d["email"] or u.get("emailVerified") is not True:
            fail(f"{d['username']}: enabled/email/emailVerified")
        if set(u.get("realmRoles", [])) & roles != set(d["roles"]):
            fail(f"{d['username']}: roles {u.get('realmRoles')} != {d['roles']}")
        if set(u.get("groups", [])) != set(d["groups"]):
            fail(f"{d['username']}: groups {u.get('groups')} != {d['groups']}")
        pw = [c for c in u.get("credentials", []) if c.get("type") == "password"]
        if not pw or pw[0].get("value") != d["password"] or pw[0].get("temporary"):
            fail(f"{d['username']}: password is not the dev login's")
        if not u.get("firstName") or not u.get("lastName") or u.get("requiredActions"):
            fail(f"{d['username']}: an incomplete profile stops the login")


@realm_check("portal client: public, code flow only, PKCE S256, redirect to <public URL>/auth/callback")
def _(i, realm):
    client_id = struct_defaults("crates/runtime/src/config.rs", "PortalSettings")["client_id"]
    c = {c["clientId"]: c for c in realm.get("clients", [])}.get(client_id)
    if not c:
        fail(f"no client {client_id}")
    if not (c.get("publicClient") and c.get("standardFlowEnabled")):
        fail("not public with the standard flow")
    if c.get("implicitFlowEnabled") or c.get("directAccessGrantsEnabled") or c.get("serviceAccountsEnabled"):
        fail("implicit, password or service-account grants are on")
    attrs = c.get("attributes", {})
    if attrs.get("pkce.code.challenge.method") != "S256":
        fail("PKCE S256 is not required")
    callback = re.search(r'#\[get\("(/auth/callback)"\)\]', read("services/portal/src/login.rs")).group(1)
    public = "${CASEWIRE_PUBLIC_URL}"
    if f"{public}{callback}" not in c.get("redirectUris", []):
        fail(f"redirectUris {c.get('redirectUris')} lack {public}{callback}")
    if f"{public}/" not in attrs.get("post.logout.redirect.uris", "").split("##"):
        fail("post.logout.redirect.uris lacks the portal")
    kc = i.env("keycloak")
    if kc.get("CASEWIRE_PUBLIC_URL") != i.env("case-api").get("CASEWIRE__API__PUBLIC_URL"):
        fail("Keycloak's CASEWIRE_PUBLIC_URL is not case-api's api.public_url")


@realm_check("service-account client: confidential, client credentials only, its account holds the dev worker's roles")
def _(i, realm):
    defaults = struct_defaults("crates/runtime/src/config.rs", "ServiceAccountConfig")
    c = {c["clientId"]: c for c in realm.get("clients", [])}.get(defaults["client_id"])
    if not c:
        fail(f"no client {defaults['client_id']}")
    if c.get("publicClient") or not c.get("serviceAccountsEnabled"):
        fail("not confidential with a service account")
    if c.get("standardFlowEnabled") or c.get("directAccessGrantsEnabled") or c.get("implicitFlowEnabled"):
        fail("other grants are on")
    if not VAR.fullmatch(c.get("secret", "")):
        fail("the secret is not a ${VAR} placeholder")
    dev_user = next(u for u in demo_users() if u["username"] == defaults["dev_user"])
    accounts = [u for u in realm.get("users", []) if u.get("serviceAccountClientId") == defaults["client_id"]]
    if not accounts or not set(dev_user["roles"]) <= set(accounts[0].get("realmRoles", [])):
        fail(f"the service account lacks {dev_user['roles']} (the roles of dev_user {dev_user['username']})")


@realm_check("both clients map the tenant claim, full group paths and the API's audience into access tokens")
def _(i, realm):
    claims = struct_defaults("crates/oidc/src/principal.rs", "ClaimMapping")
    audience = struct_defaults("crates/runtime/src/config.rs", "AuthConfig")["audience"]
    ids = [
        struct_defaults("crates/runtime/src/config.rs", "PortalSettings")["client_id"],
        struct_defaults("crates/runtime/src/config.rs", "ServiceAccountConfig")["client_id"],
    ]
    clients = {c["clientId"]: c for c in realm.get("clients", [])}
    for cid in ids:
        mappers = {m["protocolMapper"]: m.get("config", {}) for m in clients[cid].get("protocolMappers", [])}
        t = mappers.get("oidc-hardcoded-claim-mapper", {})
        if t.get("claim.name") != claims["tenant_claim"] or t.get("claim.value") != realm["realm"]:
            fail(f"{cid}: tenant claim {t}")
        g = mappers.get("oidc-group-membership-mapper", {})
        if g.get("claim.name") != claims["groups_claim"] or g.get("full.path") != "true":
            fail(f"{cid}: groups claim {g}")
        a = mappers.get("oidc-audience-mapper", {})
        if a.get("included.custom.audience") != audience:
            fail(f"{cid}: audience {a}")
        for cfg in (t, g, a):
            if cfg.get("access.token.claim") != "true":
                fail(f"{cid}: a mapper is not in the access token")


@realm_check("every ${placeholder} is set in Keycloak's environment")
def _(i, realm):
    text = json.dumps(realm)
    kc = i.env("keycloak")
    missing = {m[0] for m in VAR.findall(text)} - set(kc)
    if missing:
        fail(f"not in keycloak's environment: {sorted(missing)}")


@check("keycloak: imports compose/keycloak at start, with a health endpoint")
def _(i: Install):
    kc = i.services["keycloak"]
    if "--import-realm" not in kc.get("command", []):
        fail("no --import-realm")
    mounts = [v.split(":") for v in kc.get("volumes", [])]
    if not any(
        (i.compose_path.parent / m[0]).resolve() == (ROOT / "compose/keycloak") and m[1] == "/opt/keycloak/data/import"
        for m in mounts
    ):
        fail(f"volumes {kc.get('volumes')}")
    if i.env("keycloak").get("KC_HEALTH_ENABLED") != "true":
        fail("KC_HEALTH_ENABLED is not true")


def portal_takes_root(i: Install) -> bool:
    """Whether a `casewire serve portal` container serves the portal (then
    Traefik sends / to it and the API does not serve it)."""
    return bool(i.serving("portal"))


def env_bool(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.strip().lower() in ("true", "1", "yes", "on")


@check("traefik: /api/v1/ws -> ws-publisher, /api and /engine-rest -> case-api, / -> the portal (its own container, "
       "else case-api), most specific first")
def _(i: Install):
    routers = i.traefik["http"]["routers"]
    services = i.traefik["http"]["services"]

    def target(prefix):
        for name, r in routers.items():
            if r.get("rule") == f"PathPrefix(`{prefix}`)":
                url = urlsplit(services[r["service"]]["loadBalancer"]["servers"][0]["url"])
                return r.get("priority", 0), url
        fail(f"no router for {prefix}")

    def port(container, key):
        return int(i.env(container)[key].rsplit(":", 1)[1])

    def serves(u, service, key="CASEWIRE__API__BIND"):
        return u.hostname in i.serving(service) and u.port == port(u.hostname, key)

    ws_p, ws = target("/api/v1/ws")
    api_p, api = target("/api")
    portal_p, portal = target("/")
    if not serves(ws, "ws-publisher", "CASEWIRE__WS__BIND"):
        fail(f"/api/v1/ws goes to {ws.geturl()}")
    if not serves(api, "case-api"):
        fail(f"/api goes to {api.geturl()}")
    root_service = "portal" if portal_takes_root(i) else "case-api"
    if not serves(portal, root_service):
        fail(f"/ goes to {portal.geturl()}, not the {root_service} container")
    engine_p = None
    if root_service != "case-api":
        # The external-task API is the case API's too (/engine-rest).
        engine_p, engine = target("/engine-rest")
        if not serves(engine, "case-api"):
            fail(f"/engine-rest goes to {engine.geturl()}")
    files_p = None
    if any(r.get("rule") == "PathPrefix(`/api/v1/files`)" for r in routers.values()):
        files_p, files = target("/api/v1/files")
        if files.hostname not in i.serving("storage-api"):
            fail(f"/api/v1/files goes to {files.geturl()}")
    order = [p for p in (ws_p, files_p, api_p, portal_p) if p is not None]
    if order != sorted(order, reverse=True) or len(set(order)) != len(order):
        fail(f"priorities {order}")
    if engine_p is not None and not portal_p < engine_p:
        fail(f"/engine-rest (priority {engine_p}) would lose to / ({portal_p})")
    host_routers = [r for r in routers.values() if r["rule"].startswith("Host(") or "Host(`" in r["rule"]]
    if any(r.get("priority", 0) <= ws_p for r in host_routers):
        fail("a host router would lose to the path routers")


@check("portal: its own container calls the case-api container (portal.api_url), signs in at the realms' redirect URI, "
       "opens no store; the API then does not serve the portal")
def _(i: Install):
    portals = i.serving("portal")
    if not portals:
        fail("no `casewire serve portal` container")
    api_bind = {n: i.env(n).get("CASEWIRE__API__BIND", "") for n in i.serving("case-api")}
    for n in portals:
        e = i.env(n)
        u = urlsplit(e.get("CASEWIRE__PORTAL__API_URL", ""))
        if u.scheme != "http" or u.hostname not in api_bind or str(u.port) != api_bind[u.hostname].rsplit(":", 1)[1]:
            fail(f"{n}: portal.api_url {u.geturl()!r} is not a case-api container's api.bind")
        if u.path.rstrip("/"):
            fail(f"{n}: portal.api_url has a path ({u.path}); it is the API's base URL without /api/v1")
        if e.get("CASEWIRE__API__PUBLIC_URL") != i.env("keycloak").get("CASEWIRE_PUBLIC_URL"):
            fail(f"{n}: api.public_url is not Keycloak's CASEWIRE_PUBLIC_URL (the portal client's redirect URI base)")
        stores = [k for k in e if k.startswith(("CASEWIRE__STORE__", "CASEWIRE__BUS__", "CASEWIRE__STORAGE__"))]
        if stores:
            fail(f"{n}: holds {stores}, but the portal opens no store")
        deps = i.services[n].get("depends_on") or {}
        if (deps.get(u.hostname) or {}).get("condition") != "service_healthy":
            fail(f"{n} does not wait for {u.hostname} to be healthy")
    for n in i.serving("case-api"):
        if env_bool(i.env(n).get("CASEWIRE__PORTAL__ENABLED"), True):
            fail(f"{n} still serves the portal at / (set CASEWIRE__PORTAL__ENABLED=false)")


@check("traefik: health checks on the management port; templates' variables and hosts are in its environment")
def _(i: Install):
    t = i.services["traefik"]
    for name, s in i.traefik["http"]["services"].items():
        host = urlsplit(s["loadBalancer"]["servers"][0]["url"]).hostname
        if host not in i.services:
            fail(f"service {name} -> {host}: no such container")
        if host in i.casewire_containers():
            hc = s["loadBalancer"].get("healthCheck", {})
            mgmt = int(i.env(host)["CASEWIRE__MANAGEMENT__BIND"].rsplit(":", 1)[1])
            if hc.get("path") != "/health/ready" or hc.get("port") != mgmt:
                fail(f"{name}: healthCheck {hc}")
    text = (ROOT / "compose/traefik/dynamic.yml").read_text()
    used = set(re.findall(r'env "([A-Z_]+)"', text))
    if not used <= set(i.env("traefik")):
        fail(f"{sorted(used - set(i.env('traefik')))} not in traefik's environment")
    aliases = {i.resolve(a) for a in t["networks"]["default"]["aliases"]}
    kc_host = urlsplit(i.keycloak_public()).hostname
    if kc_host not in aliases:
        fail(f"{kc_host} is no alias of traefik: the portal could not read the issuer's discovery")
    cmd = t["command"]
    mount = next(v.split(":")[1] for v in t["volumes"] if v.startswith("./traefik/"))
    if f"--providers.file.filename={mount}" not in cmd:
        fail("the file provider does not read the mounted file")
    entry = next(c for c in cmd if c.startswith("--entrypoints.web.address="))
    if not any(p.endswith(":" + entry.rsplit(":", 1)[1]) for p in t["ports"]):
        fail(f"{entry} is not published as it is: {t['ports']}")


@check("mongodb: a replica set that the store URL names, initiated by the health check, with Casewire's own user")
def _(i: Install):
    m = i.services["mongodb"]
    parts = []
    for key in ("entrypoint", "command"):
        v = m.get(key) or []
        parts += v if isinstance(v, list) else [v]
    found = re.search(r"--replSet\s+(\S+)", " ".join(parts))
    if not found:
        fail("mongod runs without --replSet")
    rs = found.group(1)
    hc = " ".join(m["healthcheck"]["test"])
    if f'rs.initiate({{_id: "{rs}"' not in hc or "mongodb:27017" not in hc:
        fail("the health check does not initiate the replica set")
    for n in i.casewire_containers():
        for k in ("CASEWIRE__STORE__EVENTS", "CASEWIRE__STORE__READ"):
            url = i.env(n).get(k)
            if url is None:
                continue
            q = parse_qs(urlsplit(i.resolve(url)).query)
            if q.get("replicaSet") != [rs] or urlsplit(i.resolve(url)).hostname != "mongodb":
                fail(f"{n}:{k} does not name replica set {rs} on mongodb")
            if not VAR.search(url.split("@")[0]):
                fail(f"{n}:{k} has an inline password")
    init = [v for v in m["volumes"] if "docker-entrypoint-initdb.d" in v][0].split(":")[0]
    if not list((i.compose_path.parent / init).glob("*.js")):
        fail("no init script")


@check("minio: the init container creates the bucket of storage.url; the public endpoint is a host Traefik serves")
def _(i: Install):
    env = i.env("minio-init")
    for n in i.casewire_containers():
        url = i.env(n).get("CASEWIRE__STORAGE__URL")
        if url is None:
            continue
        u = urlsplit(i.resolve(url))
        q = parse_qs(u.query)
        if u.scheme != "s3" or u.hostname != env.get("CASEWIRE_BUCKET"):
            fail(f"{n}: bucket {u.hostname} vs {env.get('CASEWIRE_BUCKET')}")
        if urlsplit(q["endpoint"][0]).hostname != "minio":
            fail(f"{n}: endpoint {q['endpoint']}")
        public = urlsplit(q["public_endpoint"][0]).hostname
        if public != i.resolve(i.env("traefik").get("FILES_HOST", "")):
            fail(f"{n}: public_endpoint host {public} is not traefik's FILES_HOST")
        if "${" not in url.split("secret_key=", 1)[1]:
            fail(f"{n}: inline S3 secret")


@check("kafka: bus.url is the broker's advertised listener")
def _(i: Install):
    adv = i.env("kafka")["KAFKA_ADVERTISED_LISTENERS"]
    for n in i.casewire_containers():
        url = i.env(n).get("CASEWIRE__BUS__URL")
        if url and f"PLAINTEXT://{url.removeprefix('kafka://')}" not in adv.split(","):
            fail(f"{n}: {url} vs {adv}")


@check("health: long-running infrastructure has health checks, Casewire containers `casewire health`, and depends_on conditions can be met")
def _(i: Install):
    casewire = set(i.casewire_containers())
    for n, s in i.services.items():
        if n in casewire or s.get("restart") == "no":
            continue
        if "healthcheck" not in s and n not in NO_HEALTHCHECK:
            fail(f"{n} has no health check")
    for n, s in i.services.items():
        for dep, cond in (s.get("depends_on") or {}).items():
            if dep not in i.services:
                fail(f"{n} depends on unknown {dep}")
            c = cond.get("condition")
            if c == "service_healthy" and "healthcheck" not in i.services[dep]:
                fail(f"{n} waits for {dep} to be healthy; it has no health check")
            if c == "service_completed_successfully" and i.services[dep].get("restart") != "no":
                fail(f"{n} waits for {dep} to complete; it restarts")
    for n in casewire:
        if i.services[n].get("restart") == "no":
            continue
        test = (i.services[n].get("healthcheck") or {}).get("test")
        if test != ["CMD", "casewire", "health"]:
            fail(f"{n}: the health check is {test}, not casewire health (the image has no shell)")


@check("secrets: every ${VAR} is in .env.example, and no password, secret or key is written inline")
def _(i: Install):
    text = i.compose_path.read_text().replace("$$", "")
    used = {m[0] for m in VAR.findall(text)}
    missing = used - set(i.env_example)
    if missing:
        fail(f"not in .env.example: {sorted(missing)}")
    for n in i.services:
        for k, v in i.env(n).items():
            if re.search(r"PASSWORD|SECRET|_KEY$", k) and not VAR.search(v):
                fail(f"{n}:{k} is written inline")
    required = {m[0] for m in VAR.findall(text) if m[1] == ":?"}
    for k in required:
        if not i.env_example.get(k):
            fail(f"{k} is required but empty in .env.example")


@check("mounts: every file the compose file mounts exists in the repository; every named volume is declared")
def _(i: Install):
    declared = set(i.compose.get("volumes") or {})
    for n, s in i.services.items():
        for v in s.get("volumes", []):
            src = v.split(":")[0]
            if src.startswith((".", "/")):
                if not (i.compose_path.parent / src).exists():
                    fail(f"{n}: {src} does not exist")
            elif src not in declared:
                fail(f"{n}: volume {src} is not declared")


@check("profiles: no service that always runs depends on one that runs only in a profile")
def _(i: Install):
    for n, s in i.services.items():
        if s.get("profiles"):
            continue
        for dep in s.get("depends_on") or {}:
            if i.services[dep].get("profiles"):
                fail(f"{n} depends on {dep} of profile {i.services[dep]['profiles']}")


def main() -> int:
    global ROOT
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--root", type=Path, default=ROOT)
    p.add_argument("--hadolint")
    p.add_argument("--check-jsonschema", dest="check_jsonschema")
    args = p.parse_args()
    ROOT = args.root.resolve()
    ARGS.hadolint, ARGS.check_jsonschema = args.hadolint, args.check_jsonschema
    try:
        install = Install()
    except Exception as e:  # the files themselves do not load
        print(f"FAIL  load compose/, Dockerfile and the realm exports: {e}")
        print("install checks: 0 passed, 1 failed")
        return 1
    checks = []
    for name, fn in CHECKS:
        if name is None:
            aspect, per_realm = fn
            for file, realm in sorted(install.realms.items()):
                checks.append((f"realm {realm.get('realm', file)}: {aspect}", lambda i, r=realm, f=per_realm: f(i, r)))
        else:
            checks.append((name, fn))
    passed = failed = 0
    for name, fn in checks:
        try:
            fn(install)
        except Exception as e:  # noqa: BLE001 - every failure is reported, none stops the run
            failed += 1
            why = str(e) or type(e).__name__
            print(f"FAIL  {name}: {why}")
        else:
            passed += 1
            print(f"PASS  {name}")
    print(f"install checks: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
