"""``corrnet filter IN OUT --kernel K``: filter an image file with a named or given kernel.

Each colour channel (gray, or R, G and B) is correlated with the kernel alike; an alpha
channel passes through unchanged (in modes 'valid' and 'full' it is cropped or extended in
step with the colour channels). The result is mapped back to the input's bit depth (8 or 16
bits) by --clip (default), --abs or --normalize, and written in the format OUT's suffix names.
"""

from __future__ import annotations

import os
import sys

import numpy as np

EPILOG = """examples:
  corrnet filter photo.png edges.png --kernel sobel
  corrnet filter photo.jpg blurred.jpg --kernel gaussian:2
  corrnet filter photo.png dx.png --kernel "[[1,-1]]" --abs
  corrnet filter scan.tif scan-sharp.tif --kernel unsharp:1.5,1

--boundary symm (the default) mirrors the image at its frame, edge pixel repeated, so a flat
border stays flat: 'fill' (zeros) would draw a false edge around the picture."""


class UsageError(Exception):
    """A mistake of the caller's: printed as one line, exit status 2."""


def add_parser(commands) -> None:
    """Add the ``filter`` command to argparse's subparsers object `commands`."""
    import argparse

    from .filters import SPEC_HELP

    parser = commands.add_parser(
        "filter", help="filter an image file with a named or given kernel",
        description=__doc__.split("\n\n", 1)[1].strip(), epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", metavar="IN", help="image file: PNG, JPEG, TIFF, BMP, ...")
    parser.add_argument("output", metavar="OUT",
                        help="image file to write; its suffix picks the format (.png, .jpg, "
                             ".tif, .bmp)")
    parser.add_argument("--kernel", "-k", required=True, metavar="K",
                        help=f"{SPEC_HELP}; 'sobel' (also prewitt, scharr) gives the gradient "
                             f"magnitude")
    parser.add_argument("--mode", choices=("same", "valid", "full"), default="same",
                        help="output size: same as IN (default), valid (windows inside IN: "
                             "smaller by the kernel's size - 1), full (larger by it)")
    parser.add_argument("--boundary", choices=("symm", "fill", "wrap"), default="symm",
                        help="outside the image: symm (mirrored, edge repeated; default), "
                             "fill (zeros), wrap (periodic)")
    mapping = parser.add_mutually_exclusive_group()
    mapping.add_argument("--clip", dest="mapping", action="store_const", const="clip",
                         help="round and clip to the pixel range (default)")
    mapping.add_argument("--abs", dest="mapping", action="store_const", const="abs",
                         help="absolute values, then clip (edge maps of either sign)")
    mapping.add_argument("--normalize", dest="mapping", action="store_const", const="normalize",
                         help="stretch min..max of the result to the full pixel range")
    parser.add_argument("--gray", action="store_true",
                        help="convert IN to grayscale first (keeping its alpha)")
    parser.set_defaults(mapping="clip")


def _filter_planes(planes: np.ndarray, spec: str, args) -> np.ndarray:
    """(C, H, W) float64 planes filtered as the kernel spec says."""
    from . import filters

    magnitude = spec.strip().lower() in ("sobel", "prewitt", "scharr")
    if magnitude:
        out = getattr(filters, spec.strip().lower())(planes, mode=args.mode,
                                                     boundary=args.boundary)
    else:
        out = filters.correlate(planes, filters.kernel(spec), mode=args.mode,
                                boundary=args.boundary)
    return out.numpy()


def _kernel_shape(spec: str) -> tuple[int, int]:
    from . import filters

    if spec.strip().lower() in ("sobel", "prewitt", "scharr"):
        return (3, 3)
    return filters.kernel(spec).shape


def _map_to_pixels(values: np.ndarray, how: str, top: int) -> np.ndarray:
    """Filtered values mapped to integers 0..top (255 or 65535)."""
    if how == "abs":
        values = np.abs(values)
    elif how == "normalize":
        low, high = float(values.min()), float(values.max())
        values = (values - low) * (top / (high - low)) if high > low else np.zeros_like(values)
    return np.clip(np.rint(values), 0, top)


def _check_format_holds(args, out_format: str, channels: int, bits: int) -> None:
    """Refuse before filtering when OUT's format cannot hold IN's channels and bit depth."""
    from . import io

    allowed = (io._CHANNELS_8 if bits == 8 else io._CHANNELS_16)[out_format]
    if channels in allowed:
        return
    kinds = " or ".join(io._CHANNEL_NAMES[c] for c in allowed) or "nothing"
    fixes = ["write .png or .tif"] if channels in io._CHANNELS_8["PNG"] and bits == 8 else []
    if bits == 16:
        fixes = ["write .png or .tif" if channels == 1 else "add --gray and write .png or .tif"]
    elif channels in (2, 4):
        fixes.append("or add --gray to a .png")
    raise UsageError(f"OUT '{args.output}': {out_format} holds {kinds} at {bits} bits; IN "
                     f"'{args.input}' is {io._CHANNEL_NAMES[channels]} at {bits} bits: "
                     + " ".join(fixes))


def filter_image(args) -> None:
    from . import filters, io

    out_format = io.format_for(args.output, "corrnet filter")   # before any work
    spec = args.kernel
    try:
        kh, kw = _kernel_shape(spec)
    except ValueError as err:
        raise UsageError(f"--kernel: {str(err).removeprefix('kernel: ')}") from None
    pixels = io.read_array(args.input)                              # (C, H, W) uint8 / uint16
    if args.gray:
        pixels = io.read_array(args.input, "GRAY_ALPHA" if pixels.shape[0] in (2, 4) else "GRAY")
    channels, height, width = pixels.shape
    bits = 8 if pixels.dtype == np.uint8 else 16
    _check_format_holds(args, out_format, channels, bits)
    if args.mode == "valid" and (kh > height or kw > width):
        raise UsageError(f"--kernel {spec}: the kernel ({kh} x {kw}) is larger than the "
                         f"image '{args.input}' ({height} x {width}) in --mode valid; use "
                         f"--mode same or a smaller kernel")
    top = 2 ** bits - 1
    colour = pixels[:channels - 1] if channels in (2, 4) else pixels          # (C', H, W)
    filtered = _filter_planes(colour.astype(np.float64), spec, args)
    out = _map_to_pixels(filtered, args.mapping, top)
    if channels in (2, 4):
        # alpha through a kernel that is 1 at the centre: unchanged in 'same', cropped or
        # extended like the colour channels in 'valid' and 'full'
        delta = np.zeros((kh, kw))
        delta[kh // 2, kw // 2] = 1.0
        alpha = filters.correlate(pixels[channels - 1:].astype(np.float64), delta,
                                  mode=args.mode, boundary=args.boundary).numpy()
        out = np.concatenate([out, np.clip(np.rint(alpha), 0, top)], axis=0)
    io.write_image(out.astype(np.uint8 if bits == 8 else np.uint16), args.output)


def run(args) -> int:
    """Run ``corrnet filter``; a mistake of the caller's is one line on stderr, exit 2."""
    try:
        filter_image(args)
    except (UsageError, ValueError, OSError) as err:
        message = str(err)
        for prefix in ("read_image: ", "write_image: ", "corrnet filter: "):
            message = message.removeprefix(prefix)
        print(f"corrnet filter: error: {message}", file=sys.stderr)
        return 2
    print(f"corrnet filter: wrote {os.fspath(args.output)}")
    return 0
