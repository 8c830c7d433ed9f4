"""Generic response rules for faults and wire deviations (the control API's /rules).

A rule matches {host glob, method, path regex} and then answers with a canned response,
waits `delay_ms` before the normal answer, or drops the connection; for `times` requests
or for ever.
"""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

from core.errors import ConfigError


@dataclass
class Rule:
    host: str = "*"
    method: str = "*"
    path: str = ".*"
    status: int | None = None
    headers: dict = field(default_factory=dict)
    body: object = None
    delay_ms: int = 0
    drop: bool = False
    times: int | None = None
    hits: int = 0

    @classmethod
    def from_dict(cls, data: dict) -> "Rule":
        match = data.get("match", {})
        action = data.get("action", data)
        try:
            rule = cls(
                host=str(match.get("host", "*")), method=str(match.get("method", "*")).upper(),
                path=str(match.get("path", ".*")), status=action.get("status"),
                headers=dict(action.get("headers", {})), body=action.get("body"),
                delay_ms=int(action.get("delay_ms", 0)), drop=bool(action.get("drop", False)),
                times=data.get("times"),
            )
            re.compile(rule.path)
        except (re.error, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"bad rule: {exc}") from None
        if rule.times is not None and (not isinstance(rule.times, int) or isinstance(rule.times, bool)
                                       or rule.times < 0):
            raise ConfigError("rule times must be a whole number >= 0, or absent for always")
        if not 0 <= rule.delay_ms <= 600_000:
            raise ConfigError("rule delay_ms must be between 0 and 600000")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in rule.headers.items()):
            raise ConfigError("rule headers must map names to string values")
        if rule.status is None and not rule.delay_ms and not rule.drop:
            raise ConfigError("a rule needs an action: status, delay_ms or drop")
        if rule.status is not None and not 100 <= int(rule.status) <= 599:
            raise ConfigError("rule status must be an HTTP status")
        return rule

    def matches(self, host: str, method: str, path: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        return (fnmatch.fnmatch(host, self.host) and self.method in ("*", method)
                and re.search(self.path, path) is not None)

    def as_dict(self) -> dict:
        return {"match": {"host": self.host, "method": self.method, "path": self.path},
                "action": {"status": self.status, "headers": self.headers, "body": self.body,
                           "delay_ms": self.delay_ms, "drop": self.drop},
                "times": self.times, "hits": self.hits}


class RuleSet(list):
    def first_match(self, host: str, method: str, path: str) -> Rule | None:
        for rule in self:
            if rule.matches(host, method, path):
                rule.hits += 1
                return rule
        return None
