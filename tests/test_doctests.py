"""The doctests of symlight.models, symlight.tasks and symlight.callbacks, imported by their
installed names. (pytest's own --doctest-modules would import models/ as a top-level package
``models``, a second copy of every class beside ``symlight.models``; symlight/ is collected by it.)
"""

import doctest
import importlib
import pkgutil

import pytest

import symlight.callbacks
import symlight.models
import symlight.tasks

PACKAGES = (symlight.models, symlight.tasks, symlight.callbacks)
MODULES = sorted(
    {p.__name__ for p in PACKAGES}
    | {
        info.name
        for package in PACKAGES
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}.")
    }
)


def test_the_doctest_modules_are_found():
    assert {"symlight.models.linear", "symlight.tasks.ring", "symlight.tasks.bandit.dp"} <= set(
        MODULES
    )


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} doctests failed in {name}"
