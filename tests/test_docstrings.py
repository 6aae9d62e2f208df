"""The tiny examples in the public docstrings run and print what they say."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import corrnet
from corrnet import filters, functional, io, models, nn, samples, serialization, show
from corrnet.kernels import waiting, windows
from corrnet.nn import conv, pooling
from corrnet.nn import functional as F
from corrnet.nn import windows as nn_windows
from corrnet.utils import image as image_utils

MODULES = [functional, windows, conv, pooling, nn_windows, models, serialization,
           io, filters, image_utils, samples, show,  # issue 14: images, filters, pictures
           waiting]  # issue 13: the helper threads' spin-waits


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples(module, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # serialization's example writes model.npz
    globs = {**vars(module), "corrnet": corrnet, "F": F, "nn": nn, "np": np}
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(module, module.__name__, globs=globs) if t.examples]
    assert tests, f"{module.__name__} has no docstring examples"
    for test in tests:
        corrnet.manual_seed(0)
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} docstring examples of {module.__name__} failed"


def test_generator_docstring_example():
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner()
    for test in finder.find(corrnet.Generator, "Generator", globs={"corrnet": corrnet}):
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


def test_public_conv_and_pool_functions_state_their_output_size_and_an_example():
    public = [getattr(functional, name) for name in functional.__all__
              if name not in ("relu", "sigmoid", "tanh")]
    for fn in public:
        doc = fn.__doc__ or ""
        assert ">>>" in doc, f"{fn.__name__} has no example"
        if fn.__name__ not in ("pad", "corr2d", "convolve2d", "fold"):
            assert "_out = " in doc, f"{fn.__name__} gives no output-size formula"
