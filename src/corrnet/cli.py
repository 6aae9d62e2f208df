"""The ``corrnet`` command line."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .kernels import jit as kernels_jit


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


def demo(seed: int = 0, size: int = 256, pictures="corrnet-demo") -> None:
    """The five notebooks' story, told on corrnet; with `pictures` (a folder), the pictures of
    its last section are written there (None: that section is left out)."""
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
    how = ("a compiled loop (numba)" if kernels_jit.enabled()
           else "NumPy, one pass per kernel offset (9)")
    print(f"   -> the loop runs once per output pixel in Python; corrnet does the pixels in {how}")

    if pictures is not None:
        _demo_picture(Path(pictures))
    print(f"\nkernels that ran: {kernels_jit.path()}")


def _demo_picture(out: Path) -> None:
    """The demo's last section: the notebooks' two ideas on a photo-like picture. Its edge
    maps are written as PNG files; then a kernel is identified back, in one solve, from the
    picture and its filtered version as 8-bit files (as a user's photos would come)."""
    import numpy as np

    import corrnet
    from corrnet import filters, io
    from corrnet.samples import landscape

    _section("8. A photo-like picture: edge maps, and the kernel identified back")
    out.mkdir(parents=True, exist_ok=True)
    picture = landscape()                                       # (3, 384, 512) uint8, RGB
    io.write_png(picture, out / "landscape.png")
    gray = io.read_image(out / "landscape.png", mode="GRAY")    # (1, 384, 512) uint8
    io.write_png(gray, out / "landscape-gray.png")
    image = gray.to(corrnet.float32)
    written = ["landscape.png", "landscape-gray.png"]
    for name in ("edge", "sobel_x", "sobel_y", "sobel"):
        response = getattr(filters, name)(image).abs()
        # the strongest 0.1% of responses at full white, as `corrnet filter --normalize` would
        # stretch, but robust to a few extreme pixels
        scale = float(np.quantile(response.numpy(), 0.999)) or 1.0
        edges = (response * (255 / scale)).clamp(0, 255).round().to(corrnet.uint8)
        file = f"edges-{name.replace('_', '-')}.png"
        io.write_png(edges, out / file)
        written.append(file)
    print(f"written to {out}/: {', '.join(written)}")
    print("   -> |edge| ([[1, -1]], the notebooks' kernel) sees vertical edges only; Sobel x and y"
          " each one direction, their magnitude every edge")

    # Y = sobel_x(X), clipped to 0..255 as an 8-bit file holds it: the negative responses
    # (about half) are lost at 0, the strongest at 255
    after = filters.sobel_x(image).clamp(0, 255).round().to(corrnet.uint8)
    io.write_png(after, out / "sobel-x-clipped.png")
    before = io.read_image(out / "landscape-gray.png")[0]
    after = io.read_image(out / "sobel-x-clipped.png")[0]
    start = time.perf_counter()
    fit = corrnet.identify_kernel(before, after)
    seconds = time.perf_counter() - start
    true = filters.kernel("sobel-x")
    with np.printoptions(precision=3, suppress=True):
        print(f"identify_kernel(landscape-gray.png, sobel-x-clipped.png) in {seconds:.3f} s: "
              f"a {fit.kernel_size[0]}x{fit.kernel_size[1]} kernel (size searched: same-size "
              f"images), bias {fit.bias:+.3f}")
        print(np.asarray(fit.kernel))
    worst = float(np.max(np.abs(np.asarray(fit.kernel) - true)))
    print(f"   -> Sobel x is {true.astype(int).tolist()}: largest error {worst:.1e}, residual "
          f"RMS {fit.residual_rms:.1e} over {fit.n_equations} windows; the {fit.n_saturated} "
          f"windows whose output was clipped at 0 or 255 were left out (a clipped value obeys "
          f"no linear model)")


def _error(command: str, message: str) -> int:
    """A mistake the user can fix: one line on stderr, exit status 2 (argparse's)."""
    print(f"corrnet {command}: error: {message}", file=sys.stderr)
    return 2


def train(args) -> int:
    """``corrnet train NAME``: D2L's Fashion-MNIST experiment with one of the book's networks;
    data-parallel on the ranks of an MPI launch (``mpirun -n N corrnet train ...``, or
    ``--distributed``): see `_train`."""
    from corrnet import distributed

    if not (args.distributed or distributed.is_mpi_launch()):
        return _train(args, None)
    if not distributed.is_available():
        return _error("train", "started by mpirun (or with --distributed), but mpi4py is not "
                               "installed: pip install 'corrnet[mpi]'")
    distributed.init_process_group("mpi")
    try:
        return _train(args, (distributed.get_rank(), distributed.get_world_size()))
    finally:
        distributed.destroy_process_group()


def _train(args, ranks) -> int:
    """The run; `ranks` is (rank, world size) in a data-parallel run, else None.

    Data-parallel: `--batch-size` stays the global batch (what one process would take for a
    step), each rank takes batch-size / N of it (N must divide it) from a
    DistributedSampler's share of the shuffled training set; the model is wrapped in
    DistributedDataParallel (rank 0's initial weights), each rank tests on every N-th test
    image and the figures are summed over the ranks. Only rank 0 prints (progress bar, epoch
    lines, summary) and writes the checkpoint and curves; errors are printed by every rank
    that meets one. Each rank's kernels use cores / (ranks on this machine) threads
    (`corrnet.distributed.init_process_group`)."""
    from pathlib import Path

    import corrnet
    from corrnet import datasets, devices, models
    from corrnet.serialization import LoadError, load
    from corrnet.train import fit
    from corrnet.utils.data import DataLoader, DistributedSampler, Subset

    rank, world = ranks if ranks is not None else (0, 1)
    say = print if rank == 0 else (lambda *a, **k: None)
    if args.batch_size % world:
        return _error("train", f"--batch-size {args.batch_size} is the batch of all {world} "
                               f"ranks together: it must be a multiple of {world} (each rank "
                               f"takes an equal share)")
    out = Path(args.out)
    try:
        device = devices.as_device(args.device, "--device")
    except (RuntimeError, TypeError) as err:
        return _error("train", f"--device {args.device}: {err}")
    if args.resume and not (out / "checkpoint.npz").exists():
        return _error("train", f"--resume: there is no checkpoint {out / 'checkpoint.npz'} to "
                               "continue from (pass the --out folder of the run to resume, or "
                               "leave out --resume to start a new run)")
    if args.resume:  # a checkpoint that names another network: say which, before any work
        try:
            state = load(out / "checkpoint.npz", map_location="cpu")
        except LoadError as err:
            return _error("train", " ".join(str(err).split()))
        network = state.get("network") if isinstance(state, dict) else None
        named = network.get("name") if isinstance(network, dict) else None
        if named is not None and named != args.model:
            return _error("train", f"--resume: {out / 'checkpoint.npz'} is a {named} run, not "
                                   f"{args.model}: pass --model {named} (or another --out)")
    corrnet.manual_seed(args.seed)
    net = models.MODELS[args.model]()
    if not args.model.startswith("lenet-relu") and args.model != "lenet":
        net.apply(models.init_xavier)  # as the book's train_ch6 initializes every network
    try:
        train_set = datasets.FashionMNIST(args.data_root, train=True, download=True,
                                          resize=args.resize)
        test_set = datasets.FashionMNIST(args.data_root, train=False, download=True,
                                         resize=args.resize)
    except (FileNotFoundError, datasets.DataFileError) as err:
        if not datasets.missing_files(args.data_root):  # found, but damaged
            return _error("train", " ".join(str(err).split()))
        why = [line.strip() for line in str(err).splitlines()[1:] if line.startswith("  ")]
        tried = ("downloading is off ($CORRNET_NO_DOWNLOAD)" if datasets.downloads_disabled()
                 else f"the download failed ({why[0] if why else 'no network?'})")
        looked = datasets.where_looked(args.data_root)
        return _error("train", f"Fashion-MNIST not found; looked in {looked}; {tried}. Put the "
                               "four .gz files in a folder and pass --data-root FOLDER")
    if args.train_subset:
        train_set = Subset(train_set, range(min(args.train_subset, len(train_set))))
    if args.test_subset:
        test_set = Subset(test_set, range(min(args.test_subset, len(test_set))))
    on_gpu = device.type == "cuda"  # batches in page-locked memory copy to the GPU faster
    if ranks is None:
        train_iter = DataLoader(train_set, batch_size=args.batch_size, shuffle=True,
                                pin_memory=on_gpu)
        test_iter = DataLoader(test_set, batch_size=args.batch_size, pin_memory=on_gpu)
    else:
        from corrnet.nn.parallel import DistributedDataParallel

        sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True,
                                     seed=args.seed)
        train_iter = DataLoader(train_set, batch_size=args.batch_size // world,
                                sampler=sampler, pin_memory=on_gpu)
        test_iter = DataLoader(Subset(test_set, range(rank, len(test_set), world)),
                               batch_size=args.batch_size, pin_memory=on_gpu)
        net = DistributedDataParallel(net.to(device))
    plot = None
    if not args.no_plot:
        try:
            import matplotlib  # noqa: F401
            plot = out / "curves.png"
        except ImportError:
            say("(no plot: matplotlib is not installed; pip install 'corrnet[plot]')")
    side = "" if args.resize is None else f", resized to {args.resize}x{args.resize}"
    size = args.resize or 28
    network = models.describe(args.model, input_size=(1, 1, size, size), num_classes=10)
    parallel = "" if ranks is None else (f" ({world} ranks data-parallel, "
                                         f"{args.batch_size // world} images each)")
    say(f"training {args.model} on Fashion-MNIST ({len(train_set)} train / {len(test_set)} "
        f"test images{side}): {args.epochs} epochs, SGD lr {args.lr}, batch "
        f"{args.batch_size}{parallel}, seed {args.seed}, on {device}; checkpoints in {out}")
    try:
        fit(net, train_iter, test_iter, args.epochs, args.lr, checkpoint=out / "checkpoint.npz",
            resume=args.resume, plot=plot, progress=not args.no_progress and rank == 0,
            on_nonfinite=args.on_nonfinite, network=network, log=say, device=device)
    except LoadError as err:  # --resume from a damaged checkpoint: checked before any change
        return _error("train", " ".join(str(err).split()))
    if plot is not None:
        say(f"curves: {plot}")
    return 0


def summary(args) -> int:
    """``corrnet summary lenet``: the layer table of a built-in network."""
    import corrnet
    from corrnet import models

    print(corrnet.summary(models.MODELS[args.model](), models.INPUT_SIZES[args.model]))
    return 0


def tune(args) -> int:
    """``corrnet tune``: measure this machine once and keep the planner's winners in the user
    cache (kernels/calibration.py); ``--compare``, ``--show``, ``--forget`` read or delete
    that file without measuring."""
    from .kernels import calibration

    file = calibration.path()
    if args.forget:
        existed = file.exists()
        file.unlink(missing_ok=True)
        print(f"{'deleted' if existed else 'no calibration file at'} {file}")
        return 0
    if args.show:
        print(calibration.describe_file(file))
        return 0
    if not args.compare:
        path_kind = "compiled (numba)" if kernels_jit.enabled() else "NumPy (no numba)"
        print(f"corrnet tune: timing each algorithm of each convolution pass on this machine, "
              f"{path_kind} kernels{' (quick: small layers)' if args.quick else ''}")
        start = time.perf_counter()
        written = calibration.tune(quick=args.quick, progress=print)
        print(f"done in {time.perf_counter() - start:.0f} s; "
              + (f"written to {written}" if written else "NOT saved (see the warning)"))
    elif calibration.read(file) is None:
        print(f"no calibration for this machine at {file}: run `corrnet tune` first")
        return 1
    rows = calibration.compare(calibration.QUICK_LAYERS if args.quick
                               else calibration.BENCHMARK_ROWS)
    if rows:
        print("\nthe rules (no calibration file) against the tuned choice, per benchmark row "
              "and pass (times measured by the tuning):")
        print(calibration.compare_table(rows))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="corrnet",
        description="corrnet: convolutional networks on NumPy, with PyTorch's semantics",
    )
    from corrnet import __version__

    parser.add_argument("--version", action="version", version=f"corrnet {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    demo_parser = commands.add_parser("demo", help="walk through the notebooks' examples")
    demo_parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo_parser.add_argument("--size", type=int, default=256,
                             help="image side for the speed comparison (default 256)")
    demo_parser.add_argument("--out", default="corrnet-demo",
                             help="folder for the demo's pictures (default ./corrnet-demo)")

    from corrnet.models import MODELS

    train_parser = commands.add_parser(
        "train", help="train a built-in network on Fashion-MNIST (D2L's experiments)")
    train_parser.add_argument("model", nargs="?", choices=sorted(MODELS), default=None,
                              help="the network (default lenet)")
    train_parser.add_argument("--model", dest="model_option", choices=sorted(MODELS),
                              help="the network, as an option")
    train_parser.add_argument("--epochs", type=int, default=10, help="default 10")
    train_parser.add_argument("--lr", type=float, default=None,
                              help="SGD learning rate (default: the book's for the network, "
                                   "0.9 for lenet; 0.1 for lenet-relu)")
    train_parser.add_argument("--batch-size", type=int, default=256, help="default 256")
    train_parser.add_argument("--seed", type=int, default=0, help="default 0")
    train_parser.add_argument("--data-root", default=None,
                              help="folder with the Fashion-MNIST .gz files (default: "
                                   "$CORRNET_DATA, the user cache, Debian's copy, download)")
    train_parser.add_argument("--resize", type=int, default=None,
                              help="resize the images to N x N (default: the side the network "
                                   "is built for, e.g. 96 for resnet18, 224 for alexnet)")
    train_parser.add_argument("--limit", type=int, default=0,
                              help="use the first M images of each split only (quick runs; "
                                   "--train-subset and --test-subset set them apart)")
    train_parser.add_argument("--out", default=None,
                              help="output folder for checkpoint.npz and curves.png "
                                   "(default runs/NAME)")
    train_parser.add_argument("--resume", action="store_true",
                              help="continue from the checkpoint in --out")
    train_parser.add_argument("--train-subset", type=int, default=0,
                              help="train on the first N images only (quick runs)")
    train_parser.add_argument("--test-subset", type=int, default=0,
                              help="test on the first N images only")
    train_parser.add_argument("--on-nonfinite", choices=("raise", "skip"), default="raise",
                              help="at a NaN or infinite loss or gradient: stop with an error "
                                   "(default) or skip the batch")
    train_parser.add_argument("--device", default="cpu",
                              help="where to train: cpu (default), cuda or cuda:N (a GPU "
                                   "through CuPy)")
    train_parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    train_parser.add_argument("--distributed", action="store_true",
                              help="train data-parallel on the ranks of an MPI launch "
                                   "(automatic under mpirun -n N with N > 1; needs "
                                   "corrnet[mpi])")
    train_parser.add_argument("--no-plot", action="store_true", help="no curves.png")
    summary_parser = commands.add_parser("summary", help="the layer table of a network")
    summary_parser.add_argument("model", choices=sorted(MODELS))

    tune_parser = commands.add_parser(
        "tune", help="measure which convolution algorithm is fastest on this machine and keep "
                     "it in the user cache")
    tune_parser.add_argument("--quick", action="store_true",
                             help="small layers only: seconds instead of a minute or two")
    tune_parser.add_argument("--compare", action="store_true",
                             help="measure nothing: compare the saved winners with the rules")
    tune_parser.add_argument("--show", action="store_true",
                             help="measure nothing: where the file is and what it holds")
    tune_parser.add_argument("--forget", action="store_true",
                             help="delete this machine's calibration file")

    from . import _cmd_filter, _cmd_identify, _cmd_show  # issue 14: filter, identify, show

    _cmd_filter.add_parser(commands)
    _cmd_identify.add_parser(commands)
    _cmd_show.add_parser(commands)

    args = parser.parse_args(argv)
    if args.command == "filter":
        return _cmd_filter.run(args)
    if args.command == _cmd_identify.COMMAND:
        return _cmd_identify.run(args)
    if args.command == "show":
        return _cmd_show.run(args)
    if args.command == "tune":
        return tune(args)
    if args.command == "demo":
        if args.size < 3:
            parser.error("--size must be at least 3 (the kernel is 3x3)")
        demo(seed=args.seed, size=args.size, pictures=args.out)
        return 0
    if args.command == "summary":
        return summary(args)
    if args.model and args.model_option and args.model != args.model_option:
        parser.error(f"two models given: {args.model} and --model {args.model_option}")
    args.model = args.model_option or args.model or "lenet"
    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.limit < 0:
        parser.error("--limit must not be negative")
    args.train_subset = args.train_subset or args.limit
    args.test_subset = args.test_subset or args.limit
    from corrnet.models import INPUT_SIZES

    built_for = INPUT_SIZES[args.model][-1]
    if args.resize is None:
        args.resize = None if built_for == 28 else built_for
    elif args.resize < 1:
        parser.error("--resize must be at least 1")
    elif args.resize == 28:
        args.resize = None
    if args.out is None:
        args.out = f"runs/{args.model}"
    if args.lr is None:
        from corrnet.models import DEFAULT_LR

        args.lr = DEFAULT_LR[args.model]
    if args.lr <= 0:
        parser.error("--lr must be positive")
    return train(args)


if __name__ == "__main__":
    sys.exit(main())
