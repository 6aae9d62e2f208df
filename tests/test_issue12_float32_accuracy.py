"""Float32 accuracy on the chapter's networks (issue 12, item 6): corrnet's float32 forward
output and every parameter's gradient are at most twice as far from the float64 result as
PyTorch's float32 results are.

The float64 reference is PyTorch's, in float64, on the same float32-rounded weights and
inputs. Distances are RMS-relative, sqrt(mean((y - y64)^2) / mean(y64^2)); a gradient that is
zero but for rounding (a bias just before BatchNorm) is measured against a hundredth of the
largest gradient's RMS instead of its own, and PyTorch's distance counts as at least four
float32 roundings (where it happens to be exact).

Measured (issue 12): every network passes at the book's sizes, ResNet-18's 3x3 layers included
(issue 11 replaced Winograd F(4x4, 3x3) by F(2x2, 3x3)). The closest call is im2col + GEMM's
input gradient of a 3x3 convolution on a 2x2 map with 160-320 channels (GoogLeNet's last
stage at 64x64 inputs): 3.2e-7 against PyTorch's 1.7e-7, which through the network reached
2.1x on one bias gradient (4.1.p2_1.bias) at 64x64; no algorithm choice changes it (GEMM is
the only one there).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from issue12_torch_nets import CASES, inputs, pair

import corrnet

BOUND = 2.0

# The book's input sizes for the networks with global pooling (batch 2, 1 for GoogLeNet):
# smaller maps
# put the last stages at 1x1 or 2x2, where a ReLU input within rounding of zero flips in one
# library and not the other by chance, and BatchNorm over 4 values amplifies rounding
# chaotically; at the book's sizes the distances measure the arithmetic.
SHAPES = {"googlenet": (1, 1, 96, 96), "resnet18": (2, 1, 96, 96),
          "densenet": (2, 1, 96, 96)}
# Even so, a pre-activation within rounding of zero (1.2e-7 in DenseNet's first block for
# seed 1) flips a ReLU in one library and not in the other, by chance, and moves that
# library's gradients by 1e-3: the distances are medians over three inputs. So does a max
# pool window whose two largest values are within rounding of each other: VGG-11 on seed 1
# (block 4: 0.00913149 twice in float64) took the other one in corrnet on an AMD EPYC, and
# every gradient before it moved by 1e-4. AlexNet (no BatchNorm, eval mode, the costliest)
# runs on one input.
SEEDS = {"alexnet": (1,)}


def rms(a) -> float:
    return float(np.sqrt(np.mean(np.asarray(a, np.float64) ** 2)))


def passes(net, library, x, upstream):
    """(output, {parameter name: gradient}) as float64 NumPy arrays."""
    dtype = next(net.parameters()).dtype
    tx = library.tensor(x).to(dtype)
    out = net(tx)
    out.backward(library.tensor(upstream).to(dtype))
    grads = {n: p.grad.detach().numpy().astype(np.float64) for n, p in net.named_parameters()}
    return out.detach().numpy().astype(np.float64), grads


def distances(name: str, seed: int):
    """{'output' or parameter name: (corrnet's distance, PyTorch's distance)} for one input."""
    cn32, torch32 = pair(name, "float32")
    torch64 = copy.deepcopy(torch32).double()
    x, upstream = inputs(name, seed=seed, shape=SHAPES.get(name))
    x = x.astype(np.float32).astype(np.float64)
    upstream = upstream.astype(np.float32).astype(np.float64)
    ref_out, ref_grads = passes(torch64, torch, x, upstream)
    cn_out, cn_grads = passes(cn32, corrnet, x, upstream)
    th_out, th_grads = passes(torch32, torch, x, upstream)
    floor = 1e-2 * max(rms(g) for g in ref_grads.values())
    result = {"output": (rms(cn_out - ref_out) / rms(ref_out),
                         rms(th_out - ref_out) / rms(ref_out))}
    for k, ref in ref_grads.items():
        scale = max(rms(ref), floor)
        result[k] = (rms(cn_grads[k] - ref) / scale, rms(th_grads[k] - ref) / scale)
    return result


@pytest.mark.parametrize("name", list(CASES))
def test_issue12_float32_within_2x_of_torch(name):
    runs = [distances(name, seed) for seed in SEEDS.get(name, (1, 2, 3))]
    failures = []
    for key in runs[0]:
        err_cn = float(np.median([run[key][0] for run in runs]))
        err_torch = float(np.median([run[key][1] for run in runs]))
        # a floor of a few float32 roundings where PyTorch happens to be exact
        if err_cn > BOUND * max(err_torch, 4 * np.finfo(np.float32).eps):
            failures.append(f"{key}: corrnet {err_cn:.2e}, torch {err_torch:.2e}")
    assert not failures, f"{name}: float32 further from float64 than 2x PyTorch's:\n" + \
        "\n".join(failures)
