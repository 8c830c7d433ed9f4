"""Page recipes as configuration: how the browser recognises and drives Datadog's pages.

The built-in recipes (harness/browser/recipes.yaml, whose header documents every key) are
merged with an optional user recipes file (`recipes: PATH` in a targets file, or `--recipes`),
page by page: a page in the user file replaces the keys it names and keeps the others; a page
the built-ins do not know is added (it needs `detect` and `click`). Pages are checked in
ascending `order` (built-ins: 10, 20, ...; a new page without `order` comes after every
built-in, in the file's order). Everything is validated before a browser starts: an unknown
key is one line naming the file and the field, with a did-you-mean.
"""
from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from core.errors import ConfigError
from core.yaml_file import read_yaml
from harness.config.schema import unknown_key_message

LOCATOR_KINDS = ("role", "label", "placeholder", "text", "testid", "css")
BUILTIN_SOURCE = "harness/browser/recipes.yaml"
DEFAULT_LOGIN_PATH = "/account/login"
DEFAULT_SETTLE_S = 1.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Locator(_Strict):
    """One element (or several) on a page. Exactly one of the LOCATOR_KINDS; `name` only with
    `role`; `within` scopes the search to the inside of another locator."""
    role: str | None = None
    name: str | None = None  # with role: the accessible name, a regular expression (searched)
    label: str | None = None  # the text of the field's <label> (or aria-label), exact
    placeholder: str | None = None  # the input's placeholder, exact
    text: str | None = None  # visible text, a regular expression (searched)
    testid: str | None = None  # data-testid
    css: str | None = None  # a CSS selector
    within: Locator | None = None

    @field_validator("name", "text")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression ({exc})") from None
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Locator:
        kinds = [k for k in LOCATOR_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            got = f"got {', '.join(kinds)}" if kinds else "got none"
            raise ValueError(f"a locator needs exactly one of {', '.join(LOCATOR_KINDS)} ({got})")
        if self.name is not None and self.role is None:
            raise ValueError("`name` goes with `role` only (use `text` for visible text)")
        return self


class PageRecipe(_Strict):
    order: int | None = None
    detect: Locator | None = None  # visible: this is the page


class ErrorPage(PageRecipe):
    text: Locator | None = None  # the error message


class ConsentPage(PageRecipe):
    scopes: Locator | None = None  # the list of requested permissions
    scope_item: Locator | None = None  # one scope, inside `scopes`
    org: Locator | None = None  # the line that names the organization
    authorize: Locator | None = None
    deny: Locator | None = None


class PickerPage(PageRecipe):
    choice: Locator | None = None  # the entries; the one whose text names the org / starts with the site key


class MfaPage(PageRecipe):
    code: Locator | None = None
    submit: Locator | None = None
    error: Locator | None = None


class LoginPage(PageRecipe):
    email: Locator | None = None
    password: Locator | None = None
    submit: Locator | None = None
    error: Locator | None = None


class CustomPage(PageRecipe):
    click: Locator | None = None  # what to click to move on (an interstitial, a cookie banner)


PAGE_MODELS: dict[str, type[PageRecipe]] = {"error": ErrorPage, "consent": ConsentPage, "org_picker": PickerPage,
                                            "mfa": MfaPage, "login": LoginPage, "site_picker": PickerPage}


class RecipesFileKeys(_Strict):
    login_path: str | None = None
    settle_s: float | None = None
    force_consent: Any = None  # authorize parameters that make the server show its consent page again
    consent_form_post: bool | None = None  # the consent page is a plain HTML form (codes without rendering)
    pages: dict[str, Any] | None = None


@dataclass(frozen=True)
class NamedPage:
    name: str
    recipe: PageRecipe


@dataclass(frozen=True)
class Recipes:
    pages: tuple[NamedPage, ...]  # in the order they are checked
    login_path: str | None = DEFAULT_LOGIN_PATH  # None: the login starts from the authorize URL
    settle_s: float = DEFAULT_SETTLE_S  # a loaded page that no recipe recognises within this is unrecognised
    source: str = BUILTIN_SOURCE  # the file(s) to fix, for messages
    # authorize parameters that make the server show its consent page although the user consented before
    # (e.g. (("prompt", "consent"),)); Datadog documents none, so by default a remembered consent is a skip
    force_consent: tuple[tuple[str, str], ...] = ()
    # the consent page is a plain HTML form: a test whose subject is the token endpoint gets its code by
    # posting it with the browser session's cookies (harness/browser/form_consent.py), not by rendering
    consent_form_post: bool = False

    def page(self, name: str) -> PageRecipe:
        return next(p.recipe for p in self.pages if p.name == name)

    def names(self) -> list[str]:
        return [p.name for p in self.pages]

    def is_custom(self, name: str) -> bool:
        return name not in PAGE_MODELS


def _first_error(exc: ValidationError, data: Any, model: type[BaseModel], source: str, prefix: str) -> ConfigError:
    errors = exc.errors()
    error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(error["loc"])
    if error["type"] == "extra_forbidden":
        return ConfigError(f"{source}: {unknown_key_message(loc, data, model, prefix)}")
    where = ".".join([prefix, *(str(p) for p in loc)]) if prefix else ".".join(str(p) for p in loc)
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] in ("model_type", "model_attributes_type"):  # every nested model is a locator
        message = f"must be a locator: a mapping with one of {', '.join(LOCATOR_KINDS)} (and `name`, `within`)"
    return ConfigError(f"{source}: {where}: {message}")


def _validate(model: type[BaseModel], data: Any, source: str, prefix: str) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _first_error(exc, data, model, source, prefix) from None


def _read(path: Path) -> dict:
    data = read_yaml(path, str(path), "recipes file")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a recipes file is a mapping (login_path, settle_s, pages)")
    return data


def _pages(data: dict, source: str) -> dict[str, dict]:
    top = _validate(RecipesFileKeys, data, source, "")
    pages = top.pages or {}
    for name, page in pages.items():
        if not isinstance(page, dict):
            raise ConfigError(f"{source}: pages.{name}: must be a mapping of the page's keys")
        _validate(PAGE_MODELS.get(name, CustomPage), page, source, f"pages.{name}")
    return pages


def merge(builtin: dict, user: dict, user_source: str) -> Recipes:
    """The built-in recipes with a user file's pages and settings laid over them (both validated)."""
    base_pages = _pages(builtin, BUILTIN_SOURCE)
    user_pages = _pages(user, user_source)
    merged: dict[str, dict] = {}
    for i, (name, page) in enumerate(base_pages.items()):
        merged[name] = {"order": (i + 1) * 10, **page}
    last = max((p["order"] for p in merged.values()), default=0)
    for name, page in user_pages.items():
        if name not in merged:
            if page.get("detect") is None or page.get("click") is None:
                close = difflib.get_close_matches(name, list(PAGE_MODELS), n=1, cutoff=0.6)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise ConfigError(f"{user_source}: pages.{name}: not a built-in page ({hint}built-in: "
                                  f"{', '.join(PAGE_MODELS)}); a new page needs `detect` and `click`")
            last += 1
            merged[name] = {"order": last, **page}
        else:
            merged[name] = {**merged[name], **{k: v for k, v in page.items() if v is not None or k != "order"}}
    ordered = sorted(merged.items(), key=lambda item: item[1]["order"])  # stable: ties keep the file order
    pages = tuple(NamedPage(name, _validate(PAGE_MODELS.get(name, CustomPage), page, user_source, f"pages.{name}"))
                  for name, page in ordered)
    login_path = builtin.get("login_path", DEFAULT_LOGIN_PATH)
    if "login_path" in user:
        login_path = user["login_path"]
    if login_path is not None and (not isinstance(login_path, str) or not login_path.startswith("/")):
        raise ConfigError(f"{user_source}: login_path: a path on the site's web host starting with '/' "
                          f"(or null: start the login from the authorize URL), got {login_path!r}")
    settle = user.get("settle_s", builtin.get("settle_s", DEFAULT_SETTLE_S))
    if not isinstance(settle, (int, float)) or isinstance(settle, bool) or not 0 < settle <= 30:
        raise ConfigError(f"{user_source}: settle_s: seconds between 0 and 30, got {settle!r}")
    force = user["force_consent"] if "force_consent" in user else builtin.get("force_consent")
    if force is None:
        force = {}
    if not isinstance(force, dict) or not all(isinstance(k, str) and k and isinstance(v, str)
                                              for k, v in force.items()):
        raise ConfigError(f"{user_source}: force_consent: a mapping of authorize parameters to string values "
                          f"(e.g. {{prompt: consent}}), or null, got {force!r}")
    form_post = user.get("consent_form_post", builtin.get("consent_form_post"))
    if form_post is None:
        form_post = False
    if not isinstance(form_post, bool):
        raise ConfigError(f"{user_source}: consent_form_post: true or false, got {form_post!r}")
    source = BUILTIN_SOURCE if user_source == BUILTIN_SOURCE else f"{user_source} (over the built-in recipes)"
    return Recipes(pages=pages, login_path=login_path, settle_s=float(settle), source=source,
                   force_consent=tuple(force.items()), consent_form_post=form_post)


@functools.lru_cache(maxsize=1)
def _builtin_data() -> dict:
    return yaml.safe_load(resources.files("harness.browser").joinpath("recipes.yaml").read_text())


@functools.lru_cache(maxsize=1)
def builtin_recipes() -> Recipes:
    return merge(_builtin_data(), {}, BUILTIN_SOURCE)


def load_recipes(path: Path | None) -> Recipes:
    """The built-in recipes, with the file at `path` merged over them (None: the built-ins alone)."""
    if path is None:
        return builtin_recipes()
    return merge(_builtin_data(), _read(path), str(path))
