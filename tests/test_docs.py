"""Every `>>>` example in the package's docstrings and the README's Python block run."""

import doctest
import importlib
import os
import pkgutil
import re

import jax.numpy as jnp
import numpy as np
import pytest

import dynrnn as dy

MODULES = ["dynrnn"] + [f"dynrnn.{m.name}" for m in pkgutil.walk_packages(dy.__path__)]
README = os.path.join(os.path.dirname(__file__), "..", "README.md")


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"dy": dy, "jnp": jnp, "np": np}, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_readme_example_runs():
    text = open(README).read()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "README has no python example"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
