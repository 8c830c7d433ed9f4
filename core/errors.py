"""Exception types whose names drive the report categories (see harness/results/outcome.py)."""


class HarnessError(Exception):
    """A problem in the harness or its configuration, not in Datadog."""


class ConfigError(HarnessError):
    """Bad targets file, .env or option; shown as one line and a usage-error exit."""


class ConformanceFailure(AssertionError):
    """A MUST-level check failed: Datadog (or the emulator) broke a requirement."""


class TargetUnavailable(Exception):
    """Datadog could not be reached, timed out, or answered 5xx/429 where a result was needed."""


class LoginFailed(Exception):
    """The browser could not log in (bad credentials, MFA, unknown page)."""


class ClientAuthRefused(ConfigError):
    """Datadog refused the target's client credentials (401 invalid_client) where the harness needed a
    grant: the configured client id or secret is wrong, not Datadog."""


class PrerequisiteFailed(Exception):
    """Something this test needs (a shared grant, a token) could not be had; the test that owns that
    subject reports the failure itself, so this one is broken with the reason, not failed."""


class EndpointAbsent(PrerequisiteFailed):
    """A documented Datadog endpoint answered 404 (harness.http.exchange.endpoint_absent): the endpoint does
    not exist on this target. The test that owns the endpoint fails for it (a named check); every other test
    that merely used it is broken with this reason (category "Endpoint absent on this target")."""

    @classmethod
    def of(cls, method: str, path: str, status: int = 404, detail: str = "") -> "EndpointAbsent":
        return cls(f"endpoint absent on this target: {method} {path} answered {status}"
                   f"{' (' + detail + ')' if detail else ''}, yet Datadog documents it")
