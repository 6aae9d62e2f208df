"""``corrnet identify BEFORE AFTER``: the kernel that turns one image into the other.

    corrnet identify photo.png edges.png             # kernel size implied or searched
    corrnet identify photo.png edges.png --json      # machine-readable
    corrnet identify photo.png edges.png --method gd # the notebooks' gradient descent too
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np

COMMAND = "identify"


class _InputError(Exception):
    """Bad input a user can cause: reported as one line, exit status 2."""


def add_parser(commands) -> None:
    """Add ``identify`` to the command line's subparsers."""
    parser = commands.add_parser(
        COMMAND, help="recover the kernel K and bias b with AFTER = corr2d(BEFORE, K) + b",
        description="Find the kernel K (and bias b) with AFTER = corr2d(BEFORE, K) + b by "
                    "least squares over every window, in one solve. Images: PNG, TIFF, BMP, "
                    "JPEG (8- or 16-bit; gray, RGB; alpha dropped) or .npy arrays (H, W) or "
                    "(C, H, W). Output values at the ends of the 8- or 16-bit range (clipped) "
                    "are left out.")
    parser.add_argument("before", help="the image before filtering")
    parser.add_argument("after", help="the filtered image")
    parser.add_argument("--size", default=None,
                        help="kernel size HxW (or N for NxN), or 'auto': search odd sizes "
                             "(default: implied when AFTER is smaller, auto when the sizes "
                             "are equal)")
    parser.add_argument("--mode", choices=("valid", "same", "full"), default=None,
                        help="how AFTER sits on BEFORE, as corr2d's modes (default: valid "
                             "when AFTER is smaller, same when equal)")
    parser.add_argument("--method", choices=("closed", "gd"), default="closed",
                        help="closed: least squares (default); gd: also run the notebooks' "
                             "gradient descent (lr 0.03) and report how many steps it needs")
    parser.add_argument("--per-channel", action="store_true",
                        help="one kernel per channel: AFTER channel c from BEFORE channel c")
    parser.add_argument("--no-bias", action="store_true", help="fit K only (b = 0)")
    parser.add_argument("--json", action="store_true", help="print JSON")


def _load_image(path) -> tuple[np.ndarray, int | None]:
    """An image file as a (C, H, W) array and its bit depth (8, 16, or None for floats).

    ``.npy``: an (H, W) or (C, H, W) array. Anything else through Pillow: gray, RGB (alpha
    dropped), 16-bit gray."""
    path = Path(path)
    if not path.is_file():
        raise _InputError(f"{path}: no such file")
    if path.suffix.lower() == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as error:
            raise _InputError(f"{path}: not a readable .npy array ({error})") from None
        if array.ndim == 2:
            array = array[None]
        if array.ndim != 3 or not (np.issubdtype(array.dtype, np.number)
                                   or array.dtype == bool):
            raise _InputError(f"{path}: expected a numeric (H, W) or (C, H, W) array, got "
                              f"shape {array.shape} of {array.dtype}")
        depth = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(array.dtype)
        return array, depth
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode in ("1", "L", "P", "LA", "PA", "RGBA", "CMYK", "YCbCr", "HSV", "LAB"):
                image = image.convert("L" if mode in ("1", "L", "LA") else "RGB")
            array = np.asarray(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise _InputError(f"{path}: not a readable image ({error})") from None
    if mode.startswith("I;16"):
        array, depth = array.astype(np.uint16), 16
    elif mode == "I":
        if array.min() >= 0 and array.max() <= 65535:
            array, depth = array.astype(np.uint16), 16
        else:
            depth = None
    elif mode == "F":
        depth = None
    else:
        depth = 8
    array = array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)
    return np.ascontiguousarray(array), depth


def _parse_size(text: str | None):
    if text is None or text == "auto":
        return text
    match = re.fullmatch(r"\s*(\d+)\s*(?:[xX*,]\s*(\d+))?\s*", text)
    if not match or int(match.group(1)) < 1 or (match.group(2) and int(match.group(2)) < 1):
        raise _InputError(f"--size must be HxW, N or auto, got {text!r}")
    kh = int(match.group(1))
    return kh, int(match.group(2) or kh)


def _identify(args):
    from .identify import identify_kernel

    size = _parse_size(args.size)
    before, before_depth = _load_image(args.before)
    after, after_depth = _load_image(args.after)
    (C, H, W), (O, Ho, Wo) = before.shape, after.shape
    if args.mode != "full" and (Ho > H or Wo > W):
        raise _InputError(f"AFTER {args.after} ({O}x{Ho}x{Wo}) is larger than BEFORE "
                          f"{args.before} ({C}x{H}x{W}): no kernel connects them (--mode full "
                          f"if AFTER is corr2d's full output)")
    if args.per_channel and C != O:
        raise _InputError(f"--per-channel needs as many channels in AFTER ({O}, {args.after}) "
                          f"as in BEFORE ({C}, {args.before})")
    if size not in (None, "auto") and (size[0] > H or size[1] > W):
        raise _InputError(f"--size {size[0]}x{size[1]} is larger than BEFORE {args.before} "
                          f"({H}x{W})")
    if C == 1 and O == 1:
        before, after = before[0], after[0]
    saturated = {8: (0, 255), 16: (0, 65535)}.get(after_depth)
    try:
        fit = identify_kernel(before, after, size, bias=not args.no_bias, mode=args.mode,
                              per_channel=args.per_channel, saturated=saturated,
                              method=args.method)
    except (ValueError, TypeError) as error:
        raise _InputError(str(error).removeprefix("identify_kernel: ")) from None
    return fit, before_depth, after_depth


def run(args) -> int:
    """``corrnet identify``: print the kernel, or JSON; 2 on bad input."""
    try:
        fit, before_depth, after_depth = _identify(args)
    except _InputError as error:
        print(f"corrnet {COMMAND}: error: {error}", file=sys.stderr)
        return 2
    if args.json:
        record = fit.to_dict()
        record.update(before=str(args.before), after=str(args.after),
                      before_bit_depth=before_depth, after_bit_depth=after_depth)
        print(json.dumps(record))
        return 0
    print(f"corrnet identify: {args.after} = corr2d({args.before}, K)"
          + ("" if args.no_bias else " + b"))
    print(fit)
    return 0
