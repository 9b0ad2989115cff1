"""Docstrings: numpydoc validation and the doctested Examples sections."""

import doctest
import importlib
import inspect

import pytest

import sktransfer
from sktransfer.utils.discovery import all_estimators
from tests._marks import slow_only

# numpydoc is in the dev extra; without it these checks are skipped, not the
# whole collection aborted.
validate = pytest.importorskip("numpydoc.validate").validate

# Checks of numpydoc's validator that sklearn also leaves out.
IGNORED = {"GL01", "GL02", "GL03", "SA01", "ES01", "EX01", "RT02", "SS05", "PR09"}


def _public_objects():
    for name in sktransfer.__all__:
        obj = getattr(sktransfer, name)
        if inspect.isfunction(obj):
            yield f"sktransfer.{name}"
        if inspect.isclass(obj):
            yield f"sktransfer.{name}"
            for attr, member in vars(obj).items():
                if attr.startswith("_") or not callable(member):
                    continue
                yield f"sktransfer.{name}.{attr}"
            for base in obj.__mro__[1:]:
                if base.__module__.startswith("sktransfer"):
                    for attr, member in vars(base).items():
                        # Methods behind sklearn's available_if hold theirs in fn.
                        member = getattr(member, "fn", member)
                        if not attr.startswith("_") and inspect.isfunction(member):
                            yield f"sktransfer.{name}.{attr}"
    for module in ("sktransfer.datasets", "sktransfer.nn"):
        mod = importlib.import_module(module)
        for name in mod.__all__:
            yield f"{module}.{name}"


@pytest.mark.parametrize("name", sorted(set(_public_objects())))
def test_numpydoc(name):
    errors = [
        (code, message)
        for code, message in validate(name)["errors"]
        if code not in IGNORED
    ]
    assert errors == []


MODULES = sorted(
    {cls.__module__ for _, cls in all_estimators()}
    | {
        "sktransfer.tasks._taskset",
        "sktransfer.nn._mlp",
        "sktransfer.datasets._generators",
        "sktransfer.model_selection._few_shot",
        "sktransfer.model_selection._transfer",
        "sktransfer.model_selection._display",
        "sktransfer._adapt",
        "sktransfer._persistence",
    }
)


@pytest.mark.parametrize(
    "module",
    slow_only(
        MODULES,
        "sktransfer._adapt",
        "sktransfer._persistence",
        "sktransfer.baselines._pooled",
        "sktransfer.meta._metaridge",
        "sktransfer.model_selection._display",
    ),
)
def test_examples_run(module):
    result = doctest.testmod(
        importlib.import_module(module), optionflags=doctest.NORMALIZE_WHITESPACE
    )
    assert result.attempted > 0
    assert result.failed == 0
