"""What each adapter documents, as data: adapters/expectations/*.toml (one file per framework naming
its adapters), or a plug-in's own declarations in the same schema (`from_data`).

    adapters = ["torch", "torch_functional"]
    [documented]                       # convention (or convention@layer) -> documented variant + citation
    running_variance = { variant = "unbiased", cite = "..." }
    default_eps = { variant = 1e-5, cite = "..." }        # defaults are numbers (momentum: weight on the new batch)
    [[outcome]]                        # documented behaviour other than an output (e.g. raising)
    cases = ["glob*"]; outcome = "raises"; match = "text in the error"; cite = "..."
    [[deviation]]                      # known deviation: a strict xfail, so a fix shows up as XPASS
    adapters = [...] (optional); cases = ["glob*"]; match = "text in the failure"; reason = "..."; link = "..."
    # match: one text, or a list of texts of which any will do (one cause, several symptoms)
    # since = "flax 0.12.1" / until = "keras 3.12.0" (optional, on a rule or a [documented] entry): it holds
    # from `since` on and before `until`, for the installed version of that package; outside, it does not apply

Everything is validated on load: an unknown convention, variant or key is an ExpectationError naming
the file (or plug-in) and the entry.
"""
from __future__ import annotations

import fnmatch
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from normconf.adapters.base import installed_version
from normconf.adapters.compat import version_tuple
from normconf.golden.cases import LAYERS
from normconf.golden.reference import CONVENTIONS

PACKAGED = Path(__file__).resolve().parent.parent / "adapters" / "expectations"


def expectations_dir() -> Path:
    """$NORMCONF_EXPECTATIONS_DIR, read when used, else the package's adapters/expectations/."""
    return Path(os.environ.get("NORMCONF_EXPECTATIONS_DIR") or PACKAGED)
OUTCOMES = ("raises",)
# Documented defaults, measured by the default probes: name -> (type, check of the value).
DEFAULTS = {
    "default_eps": (float, lambda v: v >= 0),
    "default_momentum": (float, lambda v: 0 <= v <= 1),  # the weight on the new batch (PyTorch's form)
    "default_feature_axis": (int, lambda v: True),
    "default_groups": (int, lambda v: v >= 1),  # GroupNorm's number of groups
}


# The packages a version range may name: the frameworks and the companions they run on.
VERSIONED_PACKAGES = ("flax", "jax", "jaxlib", "keras", "tensorflow", "torch", "numpy", "ml_dtypes")
_VERSION = re.compile(r"\d+(\.\d+)*")


class ExpectationError(ValueError):
    def __init__(self, path, problem):
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = str(path), problem


def _release(text: str) -> tuple[int, ...]:
    """'0.12.0' and '0.12' -> (0, 12): trailing zeros dropped, so they compare equal."""
    parts = list(version_tuple(text))
    while parts and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


@dataclass(frozen=True)
class VersionRange:
    """`since` <= the installed version of `package` < `until` (either bound may be absent)."""
    package: str
    since: tuple[int, ...] | None = None
    until: tuple[int, ...] | None = None

    def holds(self, version_of=installed_version) -> bool:
        """False when the package is not installed: a range says nothing about a missing package."""
        text = version_of(self.package)
        if not version_tuple(text):
            return False
        found = _release(text)
        return (self.since is None or found >= self.since) and (self.until is None or found < self.until)

    @property
    def text(self) -> str:
        bounds = [f"{self.package} >= {'.'.join(map(str, self.since or (0,)))}" if self.since is not None else "",
                  f"{self.package} < {'.'.join(map(str, self.until or (0,)))}" if self.until is not None else ""]
        return ", ".join(b for b in bounds if b)


def _version_range(origin, where, entry) -> VersionRange | None:
    """The entry's `since` / `until` ("package version"), validated; None when it has neither."""
    bounds = {}
    for key in ("since", "until"):
        if key not in entry:
            continue
        value = entry[key]
        parts = value.split() if isinstance(value, str) else []
        if len(parts) != 2:
            raise ExpectationError(origin, f"{where}: `{key}` must be \"package version\" (e.g. \"flax 0.12.1\"), "
                                           f"got {value!r}")
        package, version = parts
        if package not in VERSIONED_PACKAGES:
            raise ExpectationError(origin, f"{where}: `{key}` names unknown package {package!r}; "
                                           f"known: {list(VERSIONED_PACKAGES)}")
        if not _VERSION.fullmatch(version):
            raise ExpectationError(origin, f"{where}: `{key}` has bad version {version!r} (digits and dots, "
                                           f"e.g. 0.12.1)")
        bounds[key] = (package, _release(version))
    if not bounds:
        return None
    packages = {package for package, _ in bounds.values()}
    if len(packages) > 1:
        raise ExpectationError(origin, f"{where}: `since` and `until` name different packages {sorted(packages)}")
    since, until = (bounds.get(k, (None, None))[1] for k in ("since", "until"))
    if since is not None and until is not None and since >= until:
        raise ExpectationError(origin, f"{where}: empty range: since {entry['since']!r} is not before "
                                       f"until {entry['until']!r}")
    return VersionRange(packages.pop(), since, until)


@dataclass(frozen=True)
class Rule:
    """An [[outcome]] or [[deviation]] entry; `id` is file#kind[index], stable for reports."""
    id: str
    cases: tuple[str, ...]
    match: tuple[str, ...]                      # texts of the failure (or the error): any of them
    adapters: tuple[str, ...] | None = None
    outcome: str | None = None
    reason: str = ""
    link: str = ""
    versions: VersionRange | None = None

    def names(self, adapter: str, case: str) -> bool:
        """The entry's adapters and case globs cover the cell (whatever the installed versions)."""
        if self.adapters is not None and adapter not in self.adapters:
            return False
        return any(fnmatch.fnmatchcase(case, pat) for pat in self.cases)

    def applies(self, adapter: str, case: str, version_of=installed_version) -> bool:
        """It names the cell and the installed versions are inside its range."""
        return self.names(adapter, case) and (self.versions is None or self.versions.holds(version_of))

    def matches(self, message: str) -> bool:
        return any(text in message for text in self.match)

    @property
    def match_text(self) -> str:
        return " | ".join(self.match)


def _match_texts(path, where, value) -> tuple[str, ...]:
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
        raise ExpectationError(path, f"{where}: `match` must be a text of the failure or a list of such texts, "
                                     f"got {value!r}")
    return tuple(texts)


@dataclass
class Expectation:
    path: str
    adapters: tuple[str, ...]
    documented: dict[str, dict]                 # convention[@layer] -> {"variant", "cite"}
    outcomes: list[Rule] = field(default_factory=list)
    deviations: list[Rule] = field(default_factory=list)

    def documented_variant(self, convention: str, layer: str, version_of=installed_version) -> dict | None:
        """The documented entry for the layer (or for every layer) whose version range holds, or None."""
        for key in (f"{convention}@{layer}", convention):
            entry = self.documented.get(key)
            if entry and (entry.get("versions") is None or entry["versions"].holds(version_of)):
                return entry
        return None

    def rules_for(self, adapter: str, case: str, kind: str) -> list[Rule]:
        rules = self.outcomes if kind == "outcome" else self.deviations
        return [r for r in rules if r.applies(adapter, case)]


def _rules(path, data, kind, adapters) -> list[Rule]:
    out = []
    for i, entry in enumerate(data.get(kind, [])):
        where = f"[[{kind}]] #{i + 1}"
        allowed = {"cases", "match", "adapters", "outcome", "cite", "reason", "link", "since", "until"}
        unknown = set(entry) - allowed
        if unknown:
            raise ExpectationError(path, f"{where}: unknown key(s) {sorted(unknown)}")
        if not entry.get("cases") or not entry.get("match"):
            raise ExpectationError(path, f"{where}: needs `cases` (globs) and `match` (text of the failure)")
        if kind == "outcome" and entry.get("outcome") not in OUTCOMES:
            raise ExpectationError(path, f"{where}: outcome {entry.get('outcome')!r} not in {OUTCOMES}")
        if kind == "deviation" and not entry.get("reason"):
            raise ExpectationError(path, f"{where}: a known deviation needs a `reason`")
        only = entry.get("adapters")
        if only is not None and set(only) - set(adapters):
            raise ExpectationError(path, f"{where}: adapters {sorted(set(only) - set(adapters))} not in this file's")
        out.append(Rule(id=f"{Path(path).name}#{kind}[{i + 1}]", cases=tuple(entry["cases"]),
                        match=_match_texts(path, where, entry["match"]),
                        adapters=tuple(only) if only is not None else None, outcome=entry.get("outcome"),
                        reason=entry.get("reason", entry.get("cite", "")), link=entry.get("link", ""),
                        versions=_version_range(path, where, entry)))
    return out


def load_file(path) -> Expectation:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise ExpectationError(path, f"unreadable ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ExpectationError(path, f"not valid TOML ({exc})") from None
    return from_data(data, path)


def from_data(data: dict, origin, adapters: tuple[str, ...] | None = None) -> Expectation:
    """Validate expectations given as data (a TOML file's, or a plug-in's declarations)."""
    if not isinstance(data, dict):
        raise ExpectationError(origin, f"expectations must be a table, got {type(data).__name__}")
    unknown = set(data) - {"adapters", "documented", "outcome", "deviation"}
    if unknown:
        raise ExpectationError(origin, f"unknown top-level key(s) {sorted(unknown)}")
    adapters = tuple(data.get("adapters", ())) or adapters
    if not adapters:
        raise ExpectationError(origin, "`adapters` must name the adapters this file describes")
    documented = {key: _documented(origin, key, entry) for key, entry in data.get("documented", {}).items()}
    return Expectation(str(origin), adapters, documented, _rules(origin, data, "outcome", adapters),
                       _rules(origin, data, "deviation", adapters))


def _documented(origin, key: str, entry) -> dict:
    """One [documented] entry: a convention's variant, or a default's number, with its citation."""
    convention, _, layer = key.partition("@")
    known = sorted(CONVENTIONS) + sorted(DEFAULTS)
    if convention not in CONVENTIONS and convention not in DEFAULTS:
        raise ExpectationError(origin, f"[documented] {key}: unknown convention {convention!r}; known: {known}")
    if layer and layer not in LAYERS:
        raise ExpectationError(origin, f"[documented] {key}: unknown layer {layer!r}; known: {LAYERS}")
    keys = {"variant", "cite", "since", "until"}
    if not isinstance(entry, dict) or set(entry) - keys:
        extra = sorted(set(entry) - keys) if isinstance(entry, dict) else entry
        raise ExpectationError(origin, f"[documented] {key}: expected {{ variant = ..., cite = ... }} "
                                       f"(and optionally since/until), got {extra!r}")
    variant = entry.get("variant")
    if convention in CONVENTIONS:
        if variant not in CONVENTIONS[convention]:
            raise ExpectationError(origin, f"[documented] {key}: unknown variant {variant!r}; "
                                           f"known: {CONVENTIONS[convention]}")
    else:
        kind, valid = DEFAULTS[convention]
        try:
            variant = kind(variant)
        except (TypeError, ValueError):
            raise ExpectationError(origin, f"[documented] {key}: {variant!r} is not a {kind.__name__}") from None
        if not (math.isfinite(variant) and valid(variant)):
            raise ExpectationError(origin, f"[documented] {key}: {variant!r} is out of range")
    if not entry.get("cite"):
        raise ExpectationError(origin, f"[documented] {key}: a documented variant needs a `cite`")
    return {"variant": variant, "cite": entry["cite"], "versions": _version_range(origin, f"[documented] {key}", entry)}


def load_all(directory=None) -> tuple[dict[str, Expectation], list[str]]:
    """adapter name -> Expectation, plus the errors of files that could not be loaded.  A file that fails
    still names its adapters when it can be parsed: their cells then report this file's error."""
    by_adapter, errors = {}, []
    for path in sorted(Path(directory or expectations_dir()).glob("*.toml")):
        try:
            exp = load_file(path)
        except ExpectationError as exc:
            errors.append(str(exc))
            for name in _named_adapters(path):
                by_adapter[name] = BrokenExpectation(str(path), (name,), {}, error=str(exc))
            continue
        for name in exp.adapters:
            by_adapter[name] = exp
    return by_adapter, errors


def _named_adapters(path) -> list[str]:
    """The adapters a broken file names, so their cells report its error: from the parsed TOML, else (a
    syntax error) from its first `adapters = [...]` line read as text."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError):
        return []
    try:
        names = tomllib.loads(text).get("adapters", [])
    except tomllib.TOMLDecodeError:
        line = re.search(r'^\s*adapters\s*=\s*\[([^\]]*)\]', text, re.MULTILINE)
        names = re.findall(r'"([^"]+)"', line.group(1)) if line else []
    return [n for n in names if isinstance(n, str)]


@dataclass
class BrokenExpectation(Expectation):
    """Stands for a file that failed to load: every cell of its adapters is an error naming the problem."""
    error: str = ""


def declared_expectation(adapter):
    """What a plug-in declares, in the schema of adapters/expectations/*.toml: `documented` (convention
    -> variant, or -> {variant, cite}), `outcomes` ([[outcome]] entries) and `deviations` ([[deviation]]
    entries).  None when it declares nothing; ExpectationError naming the plug-in when it is invalid."""
    origin = f"plug-in {adapter.name!r} ({adapter.spec})"
    data = {}
    documented = getattr(adapter, "documented", None)
    if documented:
        data["documented"] = {k: v if isinstance(v, dict) else {"variant": v, "cite": f"declared by {origin}"}
                              for k, v in dict(documented).items()}
    for attr, key in (("outcomes", "outcome"), ("deviations", "deviation")):
        if getattr(adapter, attr, None):
            data[key] = list(getattr(adapter, attr))
    return from_data(data, origin, adapters=(adapter.name,)) if data else None


def undocumented(adapter_name: str) -> Expectation:
    """For a plug-in that documents nothing: its conventions are identified and shown, not judged."""
    return Expectation(f"plug-in {adapter_name!r}", (adapter_name,), {})
