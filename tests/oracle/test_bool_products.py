"""Products of bool tensors against PyTorch: matmul, mm and every einsum that sums over a
label of two or more operands are refused (PyTorch has no bool kernel for dot, addmv, addmm or
bmm; corrnet multiplied them: fuzz, seed 20261212), an einsum of one bool operand that sums
counts in int64 (a trace), and the ones that sum nothing stay bool."""

from __future__ import annotations

import pytest
import torch

import corrnet

CALLS = [
    ("matmul", [(4,), (4,)]), ("matmul", [(2, 3), (3,)]), ("matmul", [(3,), (3, 2)]),
    ("matmul", [(2, 3), (3, 2)]), ("matmul", [(2, 2, 3), (3, 2)]), ("matmul", [(0,), (0,)]),
    ("mm", [(2, 3), (3, 2)]),
    ("ij->ji", [(2, 3)]), ("ij->j", [(2, 3)]), ("i,j->ij", [(2,), (3,)]), ("i,i", [(3,), (3,)]),
    ("i,i->i", [(3,), (3,)]), ("ij,jk->ik", [(2, 3), (3, 2)]), ("ii->i", [(3, 3)]),
    ("ii", [(3, 3)]), ("bij,bjk->bik", [(2, 2, 3), (2, 3, 2)]), ("i,j", [(2,), (3,)]),
    ("...i->...", [(2, 3)]), ("ij,j->ij", [(2, 3), (3,)]),
]


def _outcome(library, call, shapes):
    operands = [(library.arange(int(torch.tensor(s).prod())) % 3 > 0).reshape(s)
                for s in shapes]
    try:
        if call in ("matmul", "mm"):
            value = getattr(library, call)(*operands)
        else:
            value = library.einsum(call, *operands)
    except Exception as error:  # the refusals are compared by type
        return type(error)
    return str(value.dtype), value.tolist()


@pytest.mark.parametrize("call, shapes", CALLS)
def test_bool_products_as_torch(call, shapes):
    assert _outcome(corrnet, call, shapes) == _outcome(torch, call, shapes)
