"""constraints.txt (``make lock``): every dependency of pyproject.toml pinned within its range,
and the environment the tests run in installed from those pins (``make test`` uses ``-c``)."""

from __future__ import annotations

import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def pins() -> dict[str, str]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    pairs = [line.split("==", 1) for line in lines if line and not line[0].isspace() and "==" in line]
    return {canonicalize_name(name): pinned.split(";")[0].strip() for name, pinned in pairs}


def requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = [
        *project["dependencies"],
        *(r for extra in project["optional-dependencies"].values() for r in extra),
    ]
    return [Requirement(text.split("#")[0]) for text in listed]


@pytest.mark.parametrize("requirement", requirements(), ids=str)
def test_every_dependency_is_pinned_within_its_range(requirement: Requirement) -> None:
    """Each dependency, extras included, has a pin, and the pin satisfies pyproject's range."""
    pinned = pins().get(canonicalize_name(requirement.name))
    assert pinned is not None, f"{requirement.name} is not in constraints.txt: run `make lock`"
    assert requirement.specifier.contains(pinned, prereleases=True)


def test_the_installed_packages_are_the_pinned_ones() -> None:
    """What this environment has installed of the pinned packages is exactly the pinned version."""
    differ = {}
    for name, pinned in pins().items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            continue  # an extra this environment does not install (fuzz's atheris)
        if installed != pinned:
            differ[name] = (installed, pinned)
    assert differ == {}
