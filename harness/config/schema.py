"""The keys a targets file may use, as pydantic models that forbid every other key.

Only the *shape* is checked here (which keys exist where); values are checked by the parsers in
targets.py and integration.py, whose one-line messages name the field and what to write. A typo
(`host:` for `hosts:`) used to be ignored silently - under `network:` that sent the client's
credentials to the real Datadog hosts - so an unknown key is an error with a did-you-mean.
"""
from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from core.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClientKeys(_Strict):
    id: Any = None
    secret: Any = None
    previous_secret: Any = None
    kind: Any = None
    scopes: Any = None
    name: Any = None


class UserKeys(_Strict):
    email: Any = None
    password: Any = None
    totp_secret: Any = None
    storage_state: Any = None


class SuccessKeys(_Strict):
    url: Any = None
    text: Any = None


class FailureKeys(_Strict):
    text: Any = None


class PartnerLoginKeys(_Strict):
    fields: dict[str, Any] | None = None  # the partner's own labels: any key
    submit: Any = None
    url: Any = None


class DataKeys(_Strict):
    metric: Any = None
    tag: Any = None
    wait_s: Any = None


class OrgKeysKeys(_Strict):
    api_key: Any = None
    app_key: Any = None


class IntegrationKeys(_Strict):
    onboarding_url: Any = None
    redirect_uri: Any = None
    client_id: Any = None
    client_ids: Any = None
    client_name: Any = None
    success: SuccessKeys | None = None
    failure: FailureKeys | None = None
    login: PartnerLoginKeys | None = None
    data: DataKeys | None = None
    org_keys: OrgKeysKeys | None = None
    timeout_s: Any = None
    settle_s: Any = None


class TargetKeys(_Strict):
    name: Any = None
    site: Any = None
    org: Any = None
    org_id: Any = None
    foreign_org: Any = None
    client: ClientKeys | None = None
    redirect_uri: Any = None
    user: UserKeys | None = None
    integration: IntegrationKeys | None = None


class NetworkKeys(_Strict):
    hosts: dict[str, Any] | None = None  # hostnames or globs: any key
    ca_bundle: Any = None
    chromium_spki: Any = None


class EndpointsKeys(_Strict):
    authorize: Any = None
    token: Any = None
    revoke: Any = None


class TargetsFileKeys(_Strict):
    targets: list[TargetKeys] | None = None
    network: NetworkKeys | None = None
    emulator_control_url: Any = None
    recipes: Any = None  # a page recipes file, relative to the targets file (harness/config/recipes.py)
    endpoints: EndpointsKeys | None = None  # OAuth endpoint paths, when not Datadog's documented ones


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """ClientKeys | None -> ClientKeys; list[TargetKeys] | None -> TargetKeys; Any -> None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _nested_model(arg)
        if found is not None:
            return found
    return None


def _model_at(loc: tuple, root: type[BaseModel] = None) -> type[BaseModel]:
    """The model that holds the key at `loc` (to list its known keys)."""
    model: type[BaseModel] = root or TargetsFileKeys
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        inner = _nested_model(field.annotation) if field else None
        if inner is None:
            break
        model = inner
    return model


def _where(loc: tuple, data: Any) -> str:
    out = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            name = node[part].get("name") if isinstance(node, list) and isinstance(node[part], dict) else None
            out += f"[{name or part}]"
        else:
            out += f".{part}" if out else str(part)
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
    return out


def unknown_key_message(loc: tuple, data: Any, root: type[BaseModel], prefix: str = "") -> str:
    """`where: unknown key; did you mean 'x'? known keys here: ...` for pydantic's extra_forbidden at `loc`."""
    key = str(loc[-1])
    known = sorted(k for k in _model_at(loc, root).model_fields)
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6) or [
        k for k in known if k.startswith(key) or key.startswith(k)]
    hint = f"did you mean {close[0]!r}? " if close else ""
    where = _where(loc, data)
    where = f"{prefix}.{where}" if prefix else where
    return f"{where}: unknown key; {hint}known keys here: {', '.join(known)}"


def check_known_keys(data: Any, source: str, root: type[BaseModel] = TargetsFileKeys, prefix: str = "") -> None:
    """Raise ConfigError (one line) for the first key the file (a targets file by default; `root` is the
    model of its top level, `prefix` where that level sits in the file) may not have."""
    if not isinstance(data, dict):
        return  # the parser says what the file must be
    try:
        root.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            if error["type"] != "extra_forbidden":
                continue  # a value of the wrong kind: the parser's message is more precise
            raise ConfigError(f"{source}: {unknown_key_message(tuple(error['loc']), data, root, prefix)}") from None
