"""The ``corrnet`` command line."""

from __future__ import annotations

import argparse
import sys
import time


def _section(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 72 - len(title)))


def _show(label: str, value, meaning: str) -> None:
    text = repr(value)
    print(f"{label}:" + ("\n" if "\n" in text else " ") + text)
    print(f"   -> {meaning}")


def _notebook_corr2d(X, K):
    """The notebooks' own corr2d: a Python double loop over output pixels."""
    import corrnet as torch

    h, w = K.shape
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
    return Y


def demo(seed: int = 0, size: int = 256) -> None:
    """The five notebooks' story, told on corrnet."""
    import numpy as np

    import corrnet as torch
    from corrnet import nn

    torch.manual_seed(seed)
    print("corrnet demo: the 'Convolutional Neural Networks' notebooks of Dive into Deep "
          "Learning, on NumPy")

    _section("1. Cross-correlation")
    X = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
    K = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    _show("corr2d(X, K)", torch.corr2d(X, K),
          "each output is the sum of a 2x2 window of X times K: 0*0 + 1*1 + 3*2 + 4*3 = 19")
    _show("corr2d on int64 tensors", torch.corr2d(X.long(), K.long()),
          "integer inputs stay integer, as PyTorch's dtype rules say")

    _section("2. Edge detection")
    X = torch.ones((6, 8))
    X[:, 2:6] = 0
    _show("image X", X, "a white image (1) with a black stripe (0) in columns 2 to 5")
    K = torch.tensor([[1.0, -1.0]])
    Y = torch.corr2d(X, K)
    _show("edge map corr2d(X, [[1, -1]])", Y,
          "1 where white turns black, -1 where black turns white, 0 elsewhere")
    _show("corr2d(X.t(), K)", torch.corr2d(X.t(), K),
          "the same kernel sees no vertical change: it detects vertical edges only")

    _section("3. Learning the kernel back from X and Y")
    conv2d = nn.Conv2d(1, 1, kernel_size=(1, 2), bias=False)
    X4, Y4 = X.reshape((1, 1, 6, 8)), Y.reshape((1, 1, 6, 7))
    lr = 3e-2
    for i in range(10):
        Y_hat = conv2d(X4)
        loss = (Y_hat - Y4) ** 2
        conv2d.zero_grad()
        loss.sum().backward()
        conv2d.weight.data[:] -= lr * conv2d.weight.grad
        if (i + 1) % 2 == 0:
            print(f"batch {i + 1}, loss {loss.sum():.3f}")
    _show("learned kernel", conv2d.weight.data.reshape((1, 2)),
          "gradient descent on the squared error recovers [1, -1] from the images alone")

    _section("4. Padding and stride")
    X = torch.rand(8, 8)
    for layer, meaning in [
        (nn.Conv2d(1, 1, kernel_size=3, padding=1), "3x3 kernel, padding 1: size kept"),
        (nn.Conv2d(1, 1, kernel_size=(5, 3), padding=(2, 1)), "5x3 kernel, padding (2, 1): kept"),
        (nn.Conv2d(1, 1, kernel_size=3, padding=1, stride=2), "stride 2 halves each side"),
        (nn.Conv2d(1, 1, kernel_size=(3, 5), padding=(0, 1), stride=(3, 4)),
         "floor((8 + 0 - 3)/3) + 1 = 2, floor((8 + 2 - 5)/4) + 1 = 2"),
    ]:
        out = layer(X.reshape((1, 1) + X.shape))
        _show(repr(layer), out.shape[2:], meaning)

    _section("5. Multiple input and output channels, 1x1 convolution")
    X = torch.tensor([[[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[1, 2, 3], [4, 5, 6], [7, 8, 9]]])
    K = torch.tensor([[[0, 1], [2, 3]], [[1, 2], [3, 4]]])
    _show("two input channels", torch.nn.functional.conv2d(X, K.unsqueeze(0)).squeeze(0),
          "one output channel sums the cross-correlations of every input channel")
    K3 = torch.stack([K, K + 1, K + 2])
    _show("three output channels", torch.nn.functional.conv2d(X, K3),
          "one kernel stack per output channel: K, K+1, K+2")
    X = torch.rand(3, 3, 3)
    K = torch.rand(2, 3, 1, 1)
    as_matmul = torch.mm(K.reshape(2, 3), X.reshape(3, 9)).reshape(2, 3, 3)
    difference = (as_matmul - torch.nn.functional.conv2d(X, K)).norm().item()
    _show("|1x1 conv - matrix product|", round(difference, 9),
          "a 1x1 convolution is a fully connected layer applied at every pixel")

    _section("6. Pooling")
    X = torch.arange(16, dtype=torch.float).reshape((1, 1, 4, 4))
    _show("X", X, "a 4x4 input")
    for layer, meaning in [
        (nn.MaxPool2d(3), "one 3x3 window fits: its maximum"),
        (nn.MaxPool2d(3, padding=1, stride=2), "padding with -inf never wins the maximum"),
        (nn.MaxPool2d((2, 4), padding=(1, 2), stride=(2, 3)), "rectangular windows and strides"),
        (nn.AvgPool2d(2), "the mean of each 2x2 block"),
    ]:
        _show(repr(layer), layer(X), meaning)
    X2 = torch.cat((X, X + 1), dim=1)
    _show("MaxPool2d(3, padding=1, stride=2) on 2 channels",
          nn.MaxPool2d(3, padding=1, stride=2)(X2), "pooling keeps channels apart")

    _section(f"7. Speed: corr2d on a {size}x{size} image with a 3x3 kernel")
    image = torch.rand(size, size)
    kernel = torch.rand(3, 3)
    start = time.perf_counter()
    slow = _notebook_corr2d(image, kernel)
    loop_seconds = time.perf_counter() - start
    runs = []
    for _ in range(20):
        start = time.perf_counter()
        fast = torch.corr2d(image, kernel)
        runs.append(time.perf_counter() - start)
    fast_seconds = float(np.median(runs))
    agree = bool(np.allclose(slow.numpy(), fast.numpy(), rtol=1e-5, atol=1e-5))
    print(f"notebook double loop: {loop_seconds * 1e3:9.1f} ms")
    print(f"corrnet.corr2d:       {fast_seconds * 1e3:9.3f} ms (median of 20)")
    print(f"speed-up: {loop_seconds / fast_seconds:,.0f}x, same result: {agree}")
    print("   -> the loop runs once per output pixel in Python; corrnet loops over the 9 "
          "kernel offsets and lets NumPy do the pixels")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="corrnet",
        description="corrnet: convolutional networks on NumPy, with PyTorch's semantics",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo_parser = commands.add_parser("demo", help="walk through the notebooks' examples")
    demo_parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo_parser.add_argument("--size", type=int, default=256,
                             help="image side for the speed comparison (default 256)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        if args.size < 3:
            parser.error("--size must be at least 3 (the kernel is 3x3)")
        demo(seed=args.seed, size=args.size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
