"""Alert rules and webhook routes from one YAML file, validated at start-up.

A bad file stops the worker before it consumes anything, with the line of the problem: an
alerting system that silently runs on defaults because of a typo is worse than one that
refuses to start. Example (every field optional; see README "Alerts")::

    defaults: {warning_z: 3.55, critical_z: 6.0, min_negative: 5, min_share: 0.2}
    topics:
      "Fed | Central Banks": {warning_z: 4.0}
    tickers:
      AAPL: {min_negative: 3}
    routes:
      - name: risk-desk
        url: https://hooks.example.com/riskpulse
        secrets: [env:RISKPULSE_WEBHOOK_SECRET]
        severities: [critical]
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class RulesError(ValueError):
    """The rules file cannot be used; the message names the file, line and field."""


class Rule(BaseModel):
    """Detector thresholds; the README explains each and how they were chosen (backtest)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    halflife_windows: float = Field(30.0, gt=0)  # memory of the baseline (EWMA)
    warmup_windows: int = Field(30, ge=1)  # windows of baseline before a key may fire
    warning_z: float = Field(3.55, gt=0)  # deviation (baseline sds) that fires
    critical_z: float = Field(6.0, gt=0)
    # a page needs this many distinct negative stories in the window: four copies of one headline
    # are one story, however far above the baseline (a warning then)
    critical_min_stories: int = Field(3, ge=1)
    min_negative: int = Field(5, ge=1)  # volume: negatives in the window(s) that fire
    min_share: float = Field(0.2, ge=0, le=1)  # negative share of the window that fires...
    min_share_lift: float = Field(0.05, ge=0, le=1)  # ...and how far above the key's usual share
    resolve_after_windows: int = Field(3, ge=1)  # quiet windows before a firing alert resolves
    cooldown_windows: int = Field(10, ge=0)  # after resolving, no new alert for the key for this long
    # what a window's negatives are: distinct stories (ten copies of one lawsuit are one negative
    # story) or every counted copy, as before stories were found (stream/core/stories.py)
    judge: Literal["stories", "copies"] = "stories"

    @model_validator(mode="after")
    def _ordered(self) -> "Rule":
        if self.critical_z < self.warning_z:
            raise ValueError(f"critical_z ({self.critical_z}) must be >= warning_z ({self.warning_z})")
        return self


class SpreadRule(BaseModel):
    """One negative story carried by many outlets fast: an alert of its own (key_type "story"),
    whatever the key's usual volume, with the story's pick-up timeline as evidence. Defaults:
    docs/stories.md ("Spread")."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = True
    min_sources: int = Field(5, ge=2)  # distinct outlets...
    within_minutes: float = Field(30.0, gt=0)  # ...within this long of the story's first copy
    min_negative_share: float = Field(0.5, ge=0, le=1)  # of its scored copies, for the story to count as negative
    severity: Literal["warning", "critical"] = "warning"


class Route(BaseModel):
    """Where alerts go, as a tree in Alertmanager's manner: an alert (an incident's alert) goes
    down the routes whose matchers (severities, key_types, keys) it meets, in order; a route
    with matching ``routes`` below hands it to them, else receives it itself; ``continue: false``
    stops the routes after it at the same level (the default, true, keeps a flat list's meaning:
    every matching route receives). A route below inherits what it leaves out (url, secrets,
    format, timeout, timing) from the route above it."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    url: str | None = Field(None, pattern=r"^https?://")
    secrets: list[str] | None = None  # whsec_... or env:NAME; several during rotation
    severities: list[Literal["warning", "critical"]] = Field(default_factory=lambda: ["warning", "critical"])
    key_types: list[Literal["topic", "ticker", "story"]] = Field(default_factory=lambda: ["topic", "ticker", "story"])
    keys: list[str] | None = None  # None: every key
    # alertmanager: the body Prometheus Alertmanager's webhook receivers parse
    format: Literal["standard", "slack", "alertmanager"] | None = None
    timeout_s: float | None = Field(None, gt=0, le=60)
    # this route's own notification timing for incidents (alerts/notifier.py); None: the incidents section's
    group_wait_s: float | None = Field(None, ge=0)
    group_interval_s: float | None = Field(None, gt=0)
    repeat_interval_s: float | None = Field(None, gt=0)
    # an incident this route was told of, still firing and acknowledged by nobody this long after
    # the route first saw it, is sent to the route named ``escalate_to`` (once)
    escalate_after_s: float | None = Field(None, gt=0)
    escalate_to: str | None = None
    # a digest receiver: no message per incident, one every this many seconds listing the
    # incidents opened, changed and resolved since the last (none when nothing happened)
    digest_every_s: float | None = Field(None, gt=0)
    continue_: bool = Field(True, alias="continue")
    routes: list["Route"] = Field(default_factory=list)

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, values: list[str] | None) -> list[str] | None:
        for v in values or []:
            if not (v.startswith("whsec_") or v.startswith("env:")):
                raise ValueError("each secret is 'whsec_<base64>' or 'env:VARIABLE_NAME'")
        return values

    def resolved_secrets(self) -> list[str]:
        """Secrets with ``env:`` references read now; a missing variable is a start-up error."""
        out = []
        for v in self.secrets or []:
            if v.startswith("env:"):
                name = v[4:]
                value = os.environ.get(name, "")
                if not value.startswith("whsec_"):
                    raise RulesError(f"route {self.name!r}: environment variable {name} must hold a 'whsec_...' secret")
                out.append(value)
            else:
                out.append(v)
        return out

    def matches(self, severity: str, key_type: str, key: str) -> bool:
        return severity in self.severities and key_type in self.key_types and (self.keys is None or key in self.keys)

    def below(self, parent: "Route | None") -> "Route":
        """This route with what it leaves out taken from ``parent`` (and the defaults at the top)."""
        inherit = ("url", "secrets", "format", "timeout_s", "group_wait_s", "group_interval_s", "repeat_interval_s")
        update = {f: getattr(parent, f) for f in inherit if getattr(self, f) is None and parent is not None}
        made = self.model_copy(update=update)
        return made.model_copy(update={"secrets": made.secrets or [], "format": made.format or "standard",
                                       "timeout_s": made.timeout_s or 10.0})


def _walk(routes: list[Route], severity: str, key_type: str, key: str) -> list[Route]:
    """The routes an alert reaches in a level of the tree (see :class:`Route`)."""
    out: list[Route] = []
    for route in routes:
        if not route.matches(severity, key_type, key):
            continue
        below = _walk(route.routes, severity, key_type, key)
        out += below if below else ([route] if route.url else [])
        if not route.continue_:
            break
    return out


def _resolved(routes: list[Route], parent: Route | None = None) -> list[Route]:
    out = []
    for route in routes:
        made = route.below(parent)
        out.append(made.model_copy(update={"routes": _resolved(route.routes, made)}))
    return out


def _all(routes: list[Route]) -> list[Route]:
    return [x for r in routes for x in [r, *_all(r.routes)]]


class InhibitSpec(BaseModel):
    """An inhibition rule in Alertmanager's spirit (alerts/incidents.py ``InhibitRule``): a firing
    alert matching ``source`` mutes the alerts matching ``target`` that agree on the ``equal``
    labels, within ``window_minutes``, and (beyond Alertmanager) only where at least
    ``min_evidence_share`` of the target's evidence stories are the source's."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    source: dict[Literal["alertname", "key_type", "key", "severity"], str] = Field(default_factory=dict)
    target: dict[Literal["alertname", "key_type", "key", "severity"], str] = Field(default_factory=dict)
    equal: list[Literal["alertname", "key_type", "key", "severity"]] = Field(default_factory=list)
    min_evidence_share: float | None = Field(None, ge=0, le=1)
    window_minutes: float = Field(10.0, gt=0)


class IncidentsSpec(BaseModel):
    """Alerts that are one event notify as one incident (alerts/incidents.py, alerts/notifier.py).
    Timing as Alertmanager's: the first notification ``group_wait_s`` after an incident opens, a
    change at most every ``group_interval_s``, a reminder every ``repeat_interval_s`` while it
    fires, one when all its alerts resolve. ``enabled: false``: one notification per alert
    state, as before incidents."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = True
    group_by: list[Literal["alertname", "key_type", "key", "severity"]] = Field(
        default_factory=lambda: ["key_type", "key"])
    min_overlap: float = Field(0.5, gt=0, le=1)  # of the smaller alert's evidence stories, shared
    window_minutes: float = Field(10.0, gt=0)  # first windows this close may group
    group_wait_s: float = Field(30.0, ge=0)
    group_interval_s: float = Field(300.0, gt=0)
    repeat_interval_s: float = Field(14400.0, gt=0)
    # None: the default (a ticker alert mutes the topic alerts made mostly of its news); []: none
    inhibit: list[InhibitSpec] | None = None


class RulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    defaults: dict[str, Any] = Field(default_factory=dict)
    topics: dict[str, dict[str, Any]] = Field(default_factory=dict)
    tickers: dict[str, dict[str, Any]] = Field(default_factory=dict)
    spread: SpreadRule = Field(default_factory=SpreadRule)
    incidents: IncidentsSpec = Field(default_factory=IncidentsSpec)
    routes: list[Route] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_routes(self) -> "RulesFile":
        names = [r.name for r in _all(self.routes)]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"route names must be unique: {', '.join(dupes)}")
        for route in _all(_resolved(self.routes)):
            if route.url is None and not route.routes:
                raise ValueError(f"route {route.name!r}: no url, and none from a route above it")
            if (route.escalate_after_s is None) != (route.escalate_to is None):
                raise ValueError(f"route {route.name!r}: escalate_after_s and escalate_to go together")
            if route.escalate_to is not None and route.escalate_to not in set(names):
                raise ValueError(f"route {route.name!r}: escalate_to names no route ({route.escalate_to!r})")
        return self


class Rules:
    """The effective rule for each key, and the routes."""

    def __init__(self, spec: RulesFile, source: str = "<defaults>") -> None:
        self.source = source
        self.default = Rule(**spec.defaults)
        self.overrides = {("topic", k): Rule(**{**spec.defaults, **v}) for k, v in spec.topics.items()}
        self.overrides.update({("ticker", k): Rule(**{**spec.defaults, **v}) for k, v in spec.tickers.items()})
        self.tree = _resolved(spec.routes)
        # every route that can receive (has a url): the deliverer signs and sends for these
        self.routes = [r for r in _all(self.tree) if r.url]
        self.spread = spec.spread
        self.incidents = spec.incidents
        for route in self.routes:
            route.resolved_secrets()  # fail at start-up, not at the first alert

    def rule_for(self, key_type: str, key: str) -> tuple[str, Rule]:
        """The rule's name (shown in alerts) and its thresholds."""
        if (key_type, key) in self.overrides:
            return f"{key_type}:{key}", self.overrides[(key_type, key)]
        return "default", self.default

    def routes_for(self, severity: str, key_type: str, key: str) -> list[Route]:
        """The routes an alert of this severity and key goes to, down the tree."""
        return _walk(self.tree, severity, key_type, key)

    @classmethod
    def defaults(cls) -> "Rules":
        return cls(RulesFile())

    @classmethod
    def load(cls, path: Path | None) -> "Rules":
        if path is None:
            return cls.defaults()
        path = Path(path)
        if not path.exists():
            raise RulesError(f"{path}: rules file not found (RISKPULSE_ALERT_RULES)")
        return cls.parse(path.read_text(), str(path))

    @classmethod
    def parse(cls, text: str, source: str = "<rules>") -> "Rules":
        try:
            root = yaml.compose(text)
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark else ""
            raise RulesError(f"{source}{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise RulesError(f"{source} line 1: expected a mapping with defaults/topics/tickers/spread/incidents/routes")
        try:
            spec = RulesFile.model_validate(data)
        except ValidationError as exc:
            raise RulesError(_describe(exc, root, source, ())) from None
        # thresholds are validated as whole rules, so an error names the section and key it is in
        parts = [(("defaults",), spec.defaults)]
        parts += [((section, key), {**spec.defaults, **override})
                  for section in ("topics", "tickers") for key, override in getattr(spec, section).items()]
        for prefix, values in parts:
            try:
                Rule(**values)
            except ValidationError as exc:
                raise RulesError(_describe(exc, root, source, prefix)) from None
        return cls(spec, source)


def _line_of(node: Any, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the YAML node at ``loc`` (the deepest one that exists)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = [v for k, v in node.value if k.value == str(part)]
            if not match:
                break
            node = match[0]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return line


def _describe(exc: ValidationError, root: Any, source: str, prefix: tuple[Any, ...]) -> str:
    lines = []
    for err in exc.errors()[:5]:
        loc = prefix + tuple(err["loc"])
        line = _line_of(root, loc)
        where = ".".join(str(p) for p in loc) or "(top level)"
        lines.append(f"{source} line {line}: {where}: {err['msg']}")
    return "invalid alert rules:\n  " + "\n  ".join(lines)
