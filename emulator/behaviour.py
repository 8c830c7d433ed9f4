"""Switches for behaviour Datadog's docs leave open, and the catalogue of named server defects.

Switches are documented-compatible variants: the harness must pass on every combination.
Defects are plausible Datadog regressions: the harness must fail on each, with the right test.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from core.errors import ConfigError

# name -> allowed values (first = default). Each stands in for an UNCONFIRMED point of the fact sheet.
SWITCHES: dict[str, tuple] = {
    # token-endpoint error body: RFC 6749 {"error","error_description"} or Datadog {"errors":["<error> - <desc>"]}
    "token_error_body": ("rfc", "datadog"),
    # callback `site`: full origin (https://app.datadoghq.eu) or bare host (app.datadoghq.eu)
    "site_param": ("origin", "host"),
    # refresh: same refresh token back / a new one with the old still valid / a new one, old invalid
    "refresh_rotation": ("none", "rotate_keep", "rotate_invalidate"),
    # refresh response may omit refresh_token when it is not rotated (datadog-ci handles that)
    "refresh_response_omits_refresh_token": (False, True),
    # status for an expired access token on the API
    "expired_token_status": (403, 401),
    # HTTP Basic client authentication at token/revoke
    "basic_auth": (False, True),
    # PKCE for confidential clients: required, or optional ("if PKCE is enabled")
    "pkce": ("required", "optional"),
    # callback also carries client_id (older partner sample)
    "callback_client_id": (False, True),
    # US1 shows a region picker before login when there is no session. "never" is NOT documented-
    # compatible (Datadog documents the picker); it exists to prove the region-switch test catches it.
    "site_picker": ("us1_without_session", "never"),
    # revoke with another client's token: 200 and nothing happens, or 400 unauthorized_client
    "revoke_foreign_token": ("ignore", "reject"),
    # --- the second face (issue 12 item 6): a Datadog the harness has never seen. Each combines freely
    # with the others; the clean sweep leaves them out (FACE_SWITCHES), tests/e2e/test_second_face.py
    # drives them all with recipes/second-face.yaml. face and remember_consent are documented-compatible;
    # absent_endpoints=some and error_response_mode=fragment are not (the harness must say so, see
    # docs/emulator.md).
    # the web pages' layout, labels and login path: classic (/account/login, labelled inputs) or second
    # (/signin, placeholders only, an unlabelled scope list, "Allow access" / "Cancel"); see emulator/second_face.py
    "face": ("classic", "second"),
    # a second authorize for the same (user, client, org, scopes) skips the consent page: straight to the callback
    "remember_consent": (False, True),
    # "some": the API endpoints in ABSENT_ENDPOINTS answer 404 Not found, as if this target lacked them
    "absent_endpoints": ("none", "some"),
    # where authorize error redirects (access_denied, invalid_scope, ...) carry their parameters
    "error_response_mode": ("query", "fragment"),
}

# The switches of the second face: not part of the clean sweep (the pages need their own recipes file).
FACE_SWITCHES = {"face", "remember_consent", "absent_endpoints", "error_response_mode"}

# absent_endpoints=some: these scope-catalogue endpoints (core/data/scopes.yaml ids) answer 404. users-me
# is the identity probe (the harness's "does this token still work" evidence); list-hosts is hosts_read's
# read probe (test_scope_data_flow[hosts_read] owns it).
ABSENT_ENDPOINTS = ("users-me", "list-hosts")


@dataclass
class Behaviour:
    token_error_body: str = "rfc"
    site_param: str = "origin"
    refresh_rotation: str = "none"
    refresh_response_omits_refresh_token: bool = False
    expired_token_status: int = 403
    basic_auth: bool = False
    pkce: str = "required"
    callback_client_id: bool = False
    site_picker: str = "us1_without_session"
    revoke_foreign_token: str = "ignore"
    face: str = "classic"
    remember_consent: bool = False
    absent_endpoints: str = "none"
    error_response_mode: str = "query"
    rate_limits: dict = field(default_factory=dict)  # bucket -> {"limit": n, "period": s}
    defects: set = field(default_factory=set)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["defects"] = sorted(self.defects)
        return d

    def update(self, changes: dict) -> None:
        names = {f.name for f in fields(self)}
        for key, value in changes.items():
            if key not in names:
                raise ConfigError(f"unknown behaviour switch {key!r}; known: {', '.join(sorted(SWITCHES))}, rate_limits")
            if key in SWITCHES and value not in SWITCHES[key]:
                raise ConfigError(f"behaviour {key}: {value!r} is not one of {list(SWITCHES[key])}")
            if key == "rate_limits":
                value = _rate_limits(value)
            if key == "defects":
                value = set(value)
                unknown = value - set(DEFECTS)
                if unknown:
                    raise ConfigError(f"unknown defect(s): {', '.join(sorted(unknown))}")
            setattr(self, key, value)

    def has(self, defect: str) -> bool:
        return defect in self.defects


def _rate_limits(value) -> dict:
    """{bucket: {limit, period}} with whole positive numbers; anything else is a ConfigError (never a 500)."""
    problem = "behaviour rate_limits: {bucket: {limit: >0, period: >0 seconds}}"
    if not isinstance(value, dict):
        raise ConfigError(problem)
    out = {}
    for bucket, conf in value.items():
        try:
            limit, period = int(conf["limit"]), int(conf["period"])
        except (TypeError, KeyError, ValueError, OverflowError):  # OverflowError: 1e400 parses as inf
            raise ConfigError(problem) from None
        if limit <= 0 or period <= 0:
            raise ConfigError(problem)
        out[str(bucket)] = {"limit": limit, "period": period}
    return out


NOT_DOCUMENT_COMPATIBLE = {"site_picker"}


def all_switch_variants() -> list[dict]:
    """One dict per non-default value of every documented-compatible switch, for clean-run sweeps
    (the second face's switches are swept by tests/e2e/test_second_face.py, with its recipes file)."""
    out = []
    for name, values in SWITCHES.items():
        if name in NOT_DOCUMENT_COMPATIBLE or name in FACE_SWITCHES:
            continue
        for v in values[1:]:
            out.append({name: v})
    return out


# name -> (description, test ids expected to catch it). The defect campaign reads this.
DEFECTS: dict[str, tuple[str, list[str]]] = {
    "code_reuse_allowed": ("an authorization code can be redeemed twice", ["test_code_is_single_use", "test_concurrent_redemption_one_wins"]),
    "pkce_verifier_ignored": ("the token endpoint accepts any code_verifier", ["test_wrong_verifier_refused", "test_missing_verifier_refused"]),
    "pkce_plain_accepted": ("code_challenge_method=plain is accepted", ["test_pkce_plain_refused"]),
    "redirect_prefix_match": ("redirect_uri matched by prefix instead of exactly", ["test_redirect_uri_mismatch_shows_error_page"]),
    "state_dropped": ("state is not echoed on the callback", ["test_callback_parameters"]),
    "domain_missing": ("domain is missing from the callback", ["test_callback_parameters"]),
    "domain_wrong_region": ("callback domain names another region", ["test_callback_parameters"]),
    "consent_extra_scope": ("the consent page lists a scope the client does not have", ["test_consent_lists_exactly_the_client_scopes"]),
    "token_scope_missing_one": ("token scope string lacks one granted scope", ["test_token_response_fields"]),
    "expires_in_string": ("expires_in is a string", ["test_token_response_fields"]),
    "expires_in_missing": ("expires_in is missing", ["test_token_response_fields"]),
    "token_no_store_missing": ("token response lacks Cache-Control: no-store", ["test_token_response_fields"]),
    "refresh_fails_after_expiry": ("refresh token refused once the access token expired", ["test_refresh_after_access_token_expiry"]),
    "revoke_noop": ("revoke answers 200 but the token keeps working", ["test_revoked_access_token_is_refused", "test_forbidden_variants"]),
    "revoke_no_cascade": ("revoking a refresh token leaves its access tokens alive", ["test_revoked_refresh_token_cascades"]),
    "api_key_invalid": ("the marketplace key does not validate", ["test_marketplace_key_lifecycle"]),
    "api_key_without_scope": ("marketplace key created without api_keys_write", ["test_marketplace_key_needs_api_keys_write"]),
    "api_key_no_409": ("second marketplace key creation succeeds instead of 409", ["test_marketplace_key_lifecycle"]),
    "scope_not_enforced": ("a scoped endpoint answers without its scope", ["test_scope_not_granted_is_refused", "test_forbidden_variants"]),
    "read_probe_empty_body": ("read endpoints answer 200 with an empty body", ["test_scope_data_flow"]),
    "logs_dropped": ("logs intake accepts but drops data", ["test_marketplace_key_lifecycle"]),
    "metrics_dropped": ("metrics intake accepts but drops data", ["test_marketplace_key_lifecycle"]),
    "unknown_client_accepted": ("an unknown client_id gets the login/consent flow", ["test_unknown_client_id_shows_error_page"]),
    "missing_secret_accepted": ("token endpoint accepts a confidential client without its secret", ["test_missing_client_secret_is_401", "test_refresh_without_client_auth_refused"]),
    "bad_verifier_500": ("a bad code_verifier causes a 500", ["test_wrong_verifier_refused", "test_missing_verifier_refused"]),
    "rate_limit_headers_missing": ("API answers lack X-RateLimit-* headers", ["test_rate_limit_headers_present"]),
    "state_altered": ("the success callback carries a truncated state", ["test_callback_parameters"]),
    "error_redirect_with_code": ("error redirects (deny, invalid_scope, ...) also carry a working code",
                                 ["test_deny_returns_access_denied", "test_unknown_scope_refused"]),
    "test_client_any_org": ("an unpublished test client is accepted from an org outside its sandbox org",
                            ["test_test_client_refused_outside_sandbox_org"]),
    "redirect_mismatch_wrong_text": ("a mismatched redirect URI gets the error page with the invalid client_id text",
                                     ["test_redirect_uri_mismatch_shows_error_page"]),
    "old_secret_accepted": ("the previous client secret still works after rotation", ["test_rotated_secret_old_refused"]),
    "refresh_killed_by_rotation": ("secret rotation kills existing refresh tokens", ["test_refresh_survives_rotation"]),
    "no_store_missing_on_consent": ("consent page is cacheable and frameable", ["test_consent_page_headers"]),
    "token_not_json": ("token answers (code and refresh grants) are labelled text/plain, not application/json",
                       ["test_token_response_fields", "test_refresh_returns_working_access_token"]),
    "token_pragma_missing": ("token answers (code and refresh grants) lack Pragma: no-cache",
                             ["test_token_response_fields", "test_refresh_returns_working_access_token"]),
    "refresh_no_store_missing": ("refresh answers lack Cache-Control: no-store (code answers keep it)",
                                 ["test_refresh_returns_working_access_token"]),
    "refresh_token_type_missing": ("refresh answers lack token_type", ["test_refresh_returns_working_access_token"]),
    "refresh_scope_widened": ("a refresh answer's scope adds a scope the grant never had",
                              ["test_refresh_returns_working_access_token"]),
    "token_get_accepted": ("the token endpoint serves a GET (parameters in the query) like a POST",
                           ["test_token_endpoint_refuses_get"]),
    "revoke_missing_token_200": ("revoke without a token parameter answers 200", ["test_revoke_without_token_is_400"]),
    "callback_wrong_org": ("the callback's dd_oid and dd_org_name name another org than the one authorized",
                           ["test_callback_parameters"]),
    "callback_site_wrong_region": ("the callback's site names another region's web origin (domain stays right)",
                                   ["test_callback_parameters"]),
    "callback_path_altered": ("the success callback goes to the redirect URI with a trailing slash added to its path",
                              ["test_callback_parameters"]),
    "validate_unknown_key_200": ("/api/v1/validate answers 200 {\"valid\": false} for an unknown API key",
                                 ["test_validate_refuses_unknown_key"]),
    # defects of the reference partner app (emulator/partner.py), caught by the integration-mode suite
    "partner_ignores_domain": ("the partner ignores the callback's domain and always calls US1", ["test_partner_start_follows_domain"]),
    "partner_subdomain_api_host": ("the partner derives its API host from `site` (which can carry a subdomain) instead of `domain`", ["test_tile_start"]),
    "partner_no_pkce": ("the partner starts the flow without PKCE", ["test_tile_start"]),
    "partner_no_state_check": ("the partner does not check state on its callback", ["test_partner_rejects_forged_state"]),
    "partner_crashes_on_409": ("the partner fails on Datadog's 409 for a second install's API key", ["test_repeat_install"]),
    "partner_sends_no_data": ("the partner connects but never sends data", ["test_tile_start"]),
    "partner_wrong_site_key": ("the partner sends its data to US1 with the region's API key", ["test_tile_start", "test_partner_start_follows_domain"]),
    "partner_static_state": ("the partner sends the same state on every start", ["test_repeat_install"]),
    "partner_static_pkce": ("the partner sends the same PKCE verifier and code_challenge on every start", ["test_repeat_install"]),
    "partner_weak_state": ("the partner's state is 16 hex characters (64 bits): long enough to look fine, too few bits", ["test_tile_start"]),
    "partner_extra_key": ("on a reinstall (Datadog's 409) the partner creates another API key under a name of its own",
                          ["test_repeat_install"]),
    "partner_stores_after_deny": ("the partner records the connection before reading Datadog's answer: after Deny "
                                  "its next start shows the connected page", ["test_deny"]),
}
