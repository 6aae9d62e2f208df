"""``parameters_to_vector`` and ``vector_to_parameters``, as ``torch.nn.utils``.

>>> vec = nn.utils.parameters_to_vector(model.parameters())   # one 1-d tensor
>>> nn.utils.vector_to_parameters(vec * 0, model.parameters()) # every parameter zeroed
"""

from __future__ import annotations

from ...tensor import Tensor, cat


def parameters_to_vector(parameters) -> Tensor:
    """The parameters flattened and joined into one 1-d tensor (differentiable)."""
    return cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec: Tensor, parameters) -> None:
    """Give the parameters, in order, the values of consecutive slices of the 1-d `vec`
    (their ``.data`` is replaced, as PyTorch's)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__name__}")
    pointer = 0
    for p in parameters:
        n = p.numel()
        if pointer + n > vec.numel():
            raise RuntimeError(f"vector_to_parameters: `vec` has {vec.numel()} elements, "
                               "fewer than the parameters hold")
        p.data = vec[pointer:pointer + n].reshape(p.shape).data
        pointer += n
