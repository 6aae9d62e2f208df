"""The book loop's per-batch overhead: what `d2l.train_ch6` (classic edition) spends per batch
outside the network's forward, backward and optimizer step, as a fraction of that step.

    python benchmarks/loop_overhead.py            # Fashion-MNIST if found, else synthetic
    python benchmarks/loop_overhead.py --synthetic

The loop below is `train_ch6`'s, line for line, with a clock read between its parts:

    loader   next(train_iter): the sampler's shuffled order, the batch's indexing and
             collation (Fashion-MNIST: uint8 -> float32 of 256 images)
    to       X.to(device), y.to(device)
    step     zero_grad, forward, loss, backward, step          (the denominator)
    metric   under no_grad: l * X.shape[0], d2l.accuracy (argmax, compare, sum, float),
             Accumulator.add (three float() calls)
    timer    Timer.start/stop, and train_l / train_acc from the Accumulator

The data are Fashion-MNIST when `corrnet.datasets` finds it (``$CORRNET_DATA``), else random
images and labels of the same shapes (SYNTHETIC_BATCHES batches), through the same DataLoader
(of a TensorDataset). The fraction is (loader + to + metric + timer) / step, medians over the
batches; issue 13's goal is under 5%. `loop_overhead()` returns the parts, for
benchmarks/run.py to report.
"""

from __future__ import annotations

import argparse
import statistics
import time

import corrnet
import corrnet.d2l as d2l
import corrnet.datasets
from corrnet import nn

PARTS = ("loader", "to", "step", "metric", "timer")
SYNTHETIC_BATCHES = 20


def _loaders(batch_size: int, synthetic: bool, seed: int = 0):
    """The training DataLoader: Fashion-MNIST's (shuffled) or a synthetic one like it."""
    if not synthetic:
        try:  # (d2l.load_data_fashion_mnist's loader, without its download)
            return (corrnet.datasets.load_data_fashion_mnist(batch_size, download=False)[0],
                    "Fashion-MNIST")
        except Exception:  # noqa: BLE001 - not found: synthetic data
            pass
    generator = corrnet.Generator().manual_seed(seed)
    count = SYNTHETIC_BATCHES * batch_size       # the loop starts a new epoch when it's done
    images = corrnet.rand(count, 1, 28, 28, generator=generator)
    labels = corrnet.randint(0, 10, (count,), generator=generator)
    dataset = corrnet.utils.data.TensorDataset(images, labels)
    return corrnet.utils.data.DataLoader(dataset, batch_size, shuffle=True), "synthetic"


def loop_overhead(batch_size: int = 256, batches: int = 40, warmup: int = 5,
                  synthetic: bool = False, net=None) -> dict:
    """Time `train_ch6`'s loop over `batches` batches (after `warmup`), part by part.

    Returns {"fraction": overhead / step, "data": which data, part: median seconds per
    batch for each of PARTS}.
    """
    train_iter, data = _loaders(batch_size, synthetic)
    net = corrnet.models.lenet() if net is None else net
    device = d2l.cpu()
    optimizer = corrnet.optim.SGD(net.parameters(), lr=0.9)
    loss = nn.CrossEntropyLoss()
    timer, metric = d2l.Timer(), d2l.Accumulator(3)
    samples = {part: [] for part in PARTS}
    net.train()
    batch_iter = iter(train_iter)
    clock = time.perf_counter
    for i in range(warmup + batches):
        t0 = clock()
        try:
            X, y = next(batch_iter)
        except StopIteration:
            batch_iter = iter(train_iter)
            X, y = next(batch_iter)
        t1 = clock()
        timer.start()
        t2 = clock()
        X, y = X.to(device), y.to(device)
        t3 = clock()
        optimizer.zero_grad()
        y_hat = net(X)
        l = loss(y_hat, y)  # noqa: E741 - the book's name
        l.backward()
        optimizer.step()
        t4 = clock()
        with corrnet.no_grad():
            metric.add(l * X.shape[0], d2l.accuracy(y_hat, y), X.shape[0])
        t5 = clock()
        timer.stop()
        train_l, train_acc = metric[0] / metric[2], metric[1] / metric[2]  # noqa: F841
        t6 = clock()
        if i >= warmup:
            for part, seconds in zip(PARTS, (t1 - t0, t3 - t2, t4 - t3, t5 - t4,
                                             (t2 - t1) + (t6 - t5)), strict=True):
                samples[part].append(seconds)
    result = {part: statistics.median(times) for part, times in samples.items()}
    overhead = sum(result[part] for part in PARTS if part != "step")
    result["fraction"] = overhead / result["step"]
    result["data"] = data
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--synthetic", action="store_true", help="random data, not Fashion-MNIST")
    parser.add_argument("--batches", type=int, default=40)
    args = parser.parse_args()
    result = loop_overhead(batches=args.batches, synthetic=args.synthetic)
    print(f"train_ch6 loop, LeNet, batch 256, {result['data']} data: median ms per batch")
    for part in PARTS:
        print(f"  {part:7s} {1000 * result[part]:7.3f}")
    print(f"  overhead / step = {100 * result['fraction']:.1f}% (goal: under 5%)")


if __name__ == "__main__":
    main()
