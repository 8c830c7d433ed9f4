"""An Allure result for a test the process is about to abandon (the hard per-test timeout).

allure-pytest writes a test's result when the test ends; a hung test never ends, so the
timeout writes one itself, through allure's public API only: a new ``TestResult`` named and
labelled as allure-pytest would (its public naming functions), status broken, reported with
``allure_commons.plugin_manager.hook.report_result`` (which the redacting writer receives).
What the test added at run time (``allure.dynamic`` labels, parameters, links) is followed by
:class:`DynamicMetadata`, an allure-commons plugin. Steps and attachments recorded before the
hang are not in that result (their files are in the results directory all the same).

This module knows pytest items (allure-pytest's naming functions take them); it does not import pytest.
"""
from __future__ import annotations

import threading
from typing import Any

import allure_commons
from allure_commons.model2 import Label, Link, Parameter, Status, StatusDetails, TestResult
from allure_commons.types import LabelType
from allure_commons.utils import host_tag, md5, now, platform_label, represent, thread_tag, uuid4
from allure_pytest.utils import (allure_description, allure_full_name, allure_labels, allure_links, allure_name,
                                 allure_package, allure_suite_labels, allure_title_path, format_allure_link,
                                 get_history_id, pytest_markers)


class DynamicMetadata:
    """What ``allure.dynamic`` added to the running test, and when it started (an allure-commons
    plugin; reset when each test starts)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # read from the timer thread while the test thread may still write
        self.labels: list[Label] = []
        self.parameters: list[Parameter] = []
        self.links: list[tuple[str, str, str | None]] = []
        self.reset()

    def reset(self) -> None:
        """A test starts (called in the thread that runs it)."""
        with self._lock:
            self.labels, self.parameters, self.links = [], [], []
            self.started, self.thread = now(), thread_tag()

    def snapshot(self) -> tuple[list[Label], list[Parameter], list[tuple[str, str, str | None]]]:
        with self._lock:
            return list(self.labels), list(self.parameters), list(self.links)

    @allure_commons.hookimpl
    def add_label(self, label_type: Any, labels: Any) -> None:
        with self._lock:
            self.labels.extend(Label(label_type, label) for label in labels)

    @allure_commons.hookimpl
    def add_parameter(self, name: str, value: Any, excluded: Any, mode: Any) -> None:
        with self._lock:
            self.parameters = [p for p in self.parameters if p.name != name]
            self.parameters.append(Parameter(name=name, value=represent(value), excluded=excluded or None,
                                             mode=mode.value if mode else None))

    @allure_commons.hookimpl
    def add_link(self, url: str, link_type: str, name: str | None) -> None:
        with self._lock:
            self.links.append((url, link_type, name))


def _suite_labels(item: Any, labels: list[Label]) -> list[Label]:
    present = {label.name for label in labels}
    return [Label(name=name, value=value) for name, value in allure_suite_labels(item) if name not in present]


def broken_result(item: Any, message: str, dynamic: DynamicMetadata | None = None) -> TestResult:
    """The test's result, status broken with message, named and labelled as allure-pytest names its results."""
    params = item.callspec.params if hasattr(item, "callspec") else {}
    param_id = item.callspec.id if hasattr(item, "callspec") else None
    dynamic = dynamic if dynamic is not None else DynamicMetadata()
    labels, parameters, links = dynamic.snapshot()
    named = {p.name for p in parameters}
    parameters += [Parameter(name=name, value=represent(value)) for name, value in params.items() if name not in named]
    full_name = allure_full_name(item)
    labels += [Label(name=name, value=value) for name, value in allure_labels(item)]
    labels += [Label(name=LabelType.TAG, value=value) for value in pytest_markers(item)]
    labels += _suite_labels(item, labels)
    labels += [Label(name=LabelType.HOST, value=host_tag()), Label(name=LabelType.THREAD, value=dynamic.thread),
               Label(name=LabelType.FRAMEWORK, value="pytest"), Label(name=LabelType.LANGUAGE, value=platform_label()),
               Label(name="package", value=allure_package(item))]
    config = item.config
    all_links = [Link(link_type, url, name) for link_type, url, name in allure_links(item)]
    for url, link_type, name in links:
        formatted = format_allure_link(config, url, link_type)
        if all(link.url != formatted for link in all_links):
            all_links.append(Link(link_type, formatted, formatted if name is None else name))
    return TestResult(
        name=allure_name(item, params, param_id), uuid=uuid4(), fullName=full_name,
        titlePath=[*allure_title_path(item)], testCaseId=md5(full_name), description=allure_description(item),
        historyId=get_history_id(full_name, parameters, original_values=params), labels=labels,
        parameters=parameters, links=all_links, status=Status.BROKEN, statusDetails=StatusDetails(message=message),
        start=dynamic.started, stop=now())


def report_broken(item: Any, message: str, dynamic: DynamicMetadata | None = None) -> None:
    allure_commons.plugin_manager.hook.report_result(result=broken_result(item, message, dynamic))


__all__ = ["DynamicMetadata", "broken_result", "report_broken"]
