"""The package's lazy public names all resolve to the objects in their modules."""

from __future__ import annotations

import importlib

import pytest

import stellarbyte.data as data


def test_every_export_resolves():
    for name, module in data._EXPORTS.items():
        if module == "toyworld" and importlib.util.find_spec("stellarbyte.data.toyworld") is None:
            continue
        assert getattr(data, name) is getattr(importlib.import_module(f"stellarbyte.data.{module}"), name)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        data.nope  # noqa: B018
