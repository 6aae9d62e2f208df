"""``corrnet show``: pictures of what a network learned, as PNG files (see `corrnet.show`).

    corrnet show kernels runs/lenet/checkpoint.npz            # -> runs/lenet/kernels.png
    corrnet show features runs/lenet/checkpoint.npz shirt.png --layer 1
    corrnet show receptive-field lenet --layer 3 --unit 2,2
    corrnet show curves runs/lenet/checkpoint.npz             # -> runs/lenet/curves.png

A checkpoint written by ``corrnet train`` names its network; an older one needs ``--model``.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HOW_LAYERS = ("a row of `corrnet summary NAME`: its name (first column, e.g. 3 or "
               "1.0.conv1) or its position counted from 0")


def add_parser(commands) -> None:
    """Add ``show`` and its four pictures to argparse's subparsers `commands`."""
    from corrnet.models import MODELS

    show = commands.add_parser("show", help="draw what a network learned, as PNG files",
                               description="Pictures of a network as PNG files (needs "
                                           "matplotlib: pip install 'corrnet[plot]').")
    pictures = show.add_subparsers(dest="picture", required=True)

    def checkpoint_options(sub, default_out):
        sub.add_argument("checkpoint", help="a checkpoint.npz written by `corrnet train`")
        sub.add_argument("--model", choices=sorted(MODELS), default=None,
                         help="the network, for checkpoints that do not name theirs (older "
                              "ones)")
        sub.add_argument("--out", default=None,
                         help=f"the PNG to write (default: {default_out} next to the "
                              "checkpoint)")

    kernels = pictures.add_parser("kernels", help="every kernel of the first convolution")
    checkpoint_options(kernels, "kernels.png")

    features = pictures.add_parser("features", help="the feature maps of an image at a layer")
    checkpoint_options(features, "features-LAYER.png")
    features.add_argument("image", help="an image file (PNG, JPEG, ...): converted to grey, "
                                        "resized to the size the network was trained at")
    features.add_argument("--layer", default=None,
                          help=f"{_HOW_LAYERS} (default: the first convolution)")
    features.add_argument("--invert", action="store_true",
                          help="use 255 - pixel (Fashion-MNIST's clothes are light on black)")

    field = pictures.add_parser("receptive-field",
                                help="the input region one output unit of a layer sees")
    field.add_argument("model", choices=sorted(MODELS), help="the network")
    field.add_argument("--layer", required=True, help=_HOW_LAYERS)
    field.add_argument("--unit", default=None,
                       help="I,J: the output unit (row, column; default the middle one)")
    field.add_argument("--image", default=None,
                       help="an image to draw on (default: a black input of the network's "
                            "size)")
    field.add_argument("--out", default=None,
                       help="the PNG to write (default: receptive-field-MODEL-LAYER.png)")

    curves = pictures.add_parser("curves", help="the training curves of a checkpoint")
    curves.add_argument("checkpoint", help="a checkpoint.npz written by `corrnet train`")
    curves.add_argument("--out", default=None,
                        help="the PNG to write (default: curves.png next to the checkpoint)")


def _read_gray(path):
    """An image file as a grey uint8 array (H, W) (`corrnet.io.read_array`; a 16-bit file is
    brought to 8 bits: the network sees values in [0, 1] either way)."""
    import numpy as np

    from corrnet import io
    from corrnet.show import ShowError

    try:
        gray = io.read_array(path, mode="GRAY")[0]         # (H, W) uint8 or uint16
    except (OSError, ValueError) as err:
        raise ShowError(str(err)) from None                  # (it names the file)
    if gray.dtype == np.uint16:
        gray = np.rint(gray / 257).astype(np.uint8)         # 65535 / 257 = 255
    return gray


def _unit(text):
    from corrnet.show import ShowError

    if text is None:
        return None
    try:
        i, j = (int(part) for part in text.split(","))
    except ValueError:
        raise ShowError(f"--unit {text!r}: expected I,J (two ints, e.g. 2,3)") from None
    return i, j


def _draw(args):
    """The figure the arguments ask for and the file to write it to."""
    from corrnet import models, show
    from corrnet.serialization import LoadError, load
    from corrnet.summary import summary
    from corrnet.train import Epoch, History, _check_checkpoint, plot_history

    if args.picture == "curves":
        state = load(args.checkpoint, map_location="cpu")
        try:
            _check_checkpoint(args.checkpoint, state, None, None, None)
        except RuntimeError as err:
            raise LoadError(str(err)) from None
        out = args.out or Path(args.checkpoint).parent / "curves.png"
        history = History([Epoch(**e) for e in state["history"]])
        if not history.epochs:
            raise show.ShowError(f"checkpoint {args.checkpoint} holds no epoch to draw")
        return lambda: plot_history(history, out), out
    if args.picture == "receptive-field":
        net = models.MODELS[args.model]()
        size = models.INPUT_SIZES[args.model]
        field = show.receptive_field(net, size, args.layer, _unit(args.unit))
        image = None
        if args.image is not None:
            image = show.to_network_input(_read_gray(args.image), size[-2:]).numpy()[0, 0]
        out = args.out or f"receptive-field-{args.model}-{args.layer}.png"
        return show.receptive_field_figure(field, image), out
    net, info = models.from_checkpoint(args.checkpoint, args.model)
    folder = Path(args.checkpoint).parent
    if args.picture == "kernels":
        return show.kernels(net), args.out or folder / "kernels.png"
    rows = summary(net, info.input_size).rows
    if args.layer is None:
        layer = next((i for i, row in enumerate(rows) if row.type == "Conv2d"), 0)
    else:
        layer = show.resolve_layer(rows, args.layer)
    x = show.to_network_input(_read_gray(args.image), info.input_size[-2:], args.invert)
    figure = show.features(net, x, layer)
    name = rows[layer].name or str(layer)
    return figure, args.out or folder / f"features-{name}.png"


def run(args) -> int:
    """Draw and write the picture; a mistake the user can fix is one line on stderr, exit 2."""
    from corrnet import show
    from corrnet.serialization import LoadError

    try:
        figure, out = _draw(args)
        if callable(figure):
            figure()
        else:
            show.save(figure, out)
    except (show.ShowError, show.MatplotlibMissing, LoadError, OSError) as err:
        if isinstance(err, FileNotFoundError) and err.filename is not None:
            message = f"{err.filename}: no such file"
        else:
            message = " ".join(str(err).split())
        print(f"corrnet show {args.picture}: error: {message}", file=sys.stderr)
        return 2
    except ImportError as err:  # plot_history's matplotlib message
        if "corrnet[plot]" not in str(err):
            raise
        print(f"corrnet show {args.picture}: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0
