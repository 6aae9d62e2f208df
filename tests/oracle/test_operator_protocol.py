"""A Tensor's operators follow Python's protocol as PyTorch's do: an operand that is not a
Tensor, a number or a NumPy array makes the operator return NotImplemented, so that Python
tries the other operand's reflected method (a class of the user's with ``__rmul__``; a list or
str repeated by a one-element integer tensor) and otherwise raises its own TypeError.

The fuzz (seed 20261216) found ``x * '2'``, which PyTorch gives as '22' (str repetition by
``x.__index__()``), refused by corrnet's own TypeError from inside the operator.
"""

from __future__ import annotations

import operator

import pytest
import torch

import corrnet

from torch_compare import assert_same


class Reflected:
    """An operand of the user's that defines the reflected operators and the comparisons."""

    def _named(name):
        return lambda self, other: f"Reflected.{name}"

    __radd__, __rsub__, __rmul__ = _named("radd"), _named("rsub"), _named("rmul")
    __rtruediv__, __rfloordiv__, __rmod__ = (_named("rtruediv"), _named("rfloordiv"),
                                             _named("rmod"))
    __rpow__, __rand__, __ror__, __rxor__ = (_named("rpow"), _named("rand"), _named("ror"),
                                             _named("rxor"))
    __eq__, __lt__, __gt__ = _named("eq"), _named("lt"), _named("gt")
    __hash__ = object.__hash__


BINARY = {name: getattr(operator, name) for name in (
    "add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "and_", "or_", "xor", "eq", "lt",
    "gt")}
IN_PLACE = {name: getattr(operator, name) for name in (
    "iadd", "isub", "imul", "itruediv", "ifloordiv", "imod", "ipow")}
OPERANDS = {"str": lambda: "2", "list": lambda: [1, 2], "tuple": lambda: (1,),
            "None": lambda: None, "dict": lambda: {}, "user class": Reflected}

# Where PyTorch leaves the protocol: its __rtruediv__ multiplies the tensor's reciprocal by
# the operand, so that ``Reflected() / x`` is answered by Reflected's __rmul__. corrnet's
# returns NotImplemented, and Python raises its TypeError (Reflected has no __truediv__).
NOT_AS_TORCH = {("truediv", "user class", "tensor second"): TypeError}


def _outcome(call):
    try:
        return "ok", call()
    except Exception as exc:  # noqa: BLE001 - the outcome is compared
        return "raised", type(exc)


def _compare(mine, theirs, what):
    assert mine[0] == theirs[0], f"{what}: corrnet {mine}, torch {theirs}"
    if mine[0] == "raised":
        assert mine[1] is theirs[1], f"{what}: corrnet raised {mine[1]}, torch {theirs[1]}"
    elif isinstance(theirs[1], torch.Tensor):
        assert_same(mine[1], theirs[1], what)
    else:
        assert mine[1] == theirs[1], what


@pytest.mark.parametrize("operand", sorted(OPERANDS))
@pytest.mark.parametrize("op", sorted(BINARY))
@pytest.mark.parametrize("side", ["tensor first", "tensor second"])
def test_operators_with_other_operands_as_torch(op, operand, side):
    function = BINARY[op]

    def call(lib):
        x, other = lib.tensor([3]), OPERANDS[operand]()
        return function(x, other) if side == "tensor first" else function(other, x)

    what = f"{op} with {operand}, {side}"
    if (op, operand, side) in NOT_AS_TORCH:
        with pytest.raises(NOT_AS_TORCH[op, operand, side]):
            call(corrnet)
        return
    _compare(_outcome(lambda: call(corrnet)), _outcome(lambda: call(torch)), what)


@pytest.mark.parametrize("operand", sorted(OPERANDS))
@pytest.mark.parametrize("op", sorted(IN_PLACE))
def test_in_place_operators_with_other_operands_as_torch(op, operand):
    def call(lib):
        x = lib.tensor([3])
        result = IN_PLACE[op](x, OPERANDS[operand]())
        return result, x      # (the tensor unchanged where the operator fell back)

    mine, theirs = _outcome(lambda: call(corrnet)), _outcome(lambda: call(torch))
    assert mine[0] == theirs[0], f"{op} with {operand}: corrnet {mine}, torch {theirs}"
    if mine[0] == "ok":
        _compare(("ok", mine[1][0]), ("ok", theirs[1][0]), f"{op} with {operand}: result")
        assert_same(mine[1][1], theirs[1][1], f"{op} with {operand}: the tensor after it")
    else:
        assert mine[1] is theirs[1], f"{op} with {operand}: {mine[1]} != torch {theirs[1]}"


@pytest.mark.parametrize("operand", sorted(OPERANDS))
@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "pow", "remainder",
                                  "floor_divide"])
@pytest.mark.parametrize("form", ["method", "function"])
def test_methods_refuse_other_operands_as_torch(name, operand, form):
    """The named methods and functions are not operators: an operand that is not a Tensor or
    a number is PyTorch's TypeError, not a fallback (``x.pow('2')`` and ``x.mul('2')`` ended
    in Python's operator error, or a str repeated by ``x.__index__``: fuzz, seed 20261217)."""
    def call(lib):
        x, other = lib.tensor([3.0]), OPERANDS[operand]()
        if form == "method":
            return getattr(x, name)(other)
        return getattr(lib, name)(x, other)

    with pytest.raises(TypeError):
        call(torch)
    with pytest.raises(TypeError, match=name):
        call(corrnet)


@pytest.mark.parametrize("operand", sorted(OPERANDS))
@pytest.mark.parametrize("name", ["add_", "sub_", "mul_", "div_", "pow_"])
def test_in_place_methods_refuse_other_operands_as_torch(name, operand):
    """(mul_ and div_ with a tuple ended in an AttributeError on the operator's
    NotImplemented: fuzz, seed 20261218.)"""
    def call(lib):
        return getattr(lib.tensor([3.0]), name)(OPERANDS[operand]())

    with pytest.raises(TypeError):
        call(torch)
    with pytest.raises(TypeError, match=name.rstrip("_")):
        call(corrnet)
