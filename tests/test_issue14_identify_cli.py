"""``corrnet identify BEFORE AFTER``: image files in (8- and 16-bit PNG and TIFF, .npy), the
kernel out (text or JSON); bad input is one line on stderr and exit status 2.

Oracle: the AFTER images are made with SciPy's ``correlate2d`` from known kernels and written
with Pillow; JSON is read back with the standard library.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import scipy.signal
from PIL import Image

import corrnet
from corrnet import cli


def package_env() -> dict:
    """The environment for a subprocess that imports the corrnet these tests import."""
    import os
    import pathlib

    here = str(pathlib.Path(corrnet.__file__).parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([here, os.environ.get("PYTHONPATH", "")])}


def run(argv, capsys):
    code = cli.main(["identify", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def write(path, array):
    Image.fromarray(array).save(path)
    return path


@pytest.fixture
def pair8(tmp_path):
    """An 8-bit photo-like image and its Sobel-x edge map (same size, clipped to 0..255)."""
    rng = np.random.default_rng(0)
    X = (rng.random((48, 56)) * 255).astype(np.uint8)
    K = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]]) / 8
    Y = scipy.signal.correlate2d(X.astype(float), K, mode="same", boundary="symm") + 128
    Y = np.clip(np.round(Y), 0, 255).astype(np.uint8)
    return write(tmp_path / "before.png", X), write(tmp_path / "after.png", Y), K


def test_8_bit_pngs_text_report(pair8, capsys):
    before, after, K = pair8
    code, out, err = run([before, after], capsys)
    assert code == 0 and err == ""
    for words in ("kernel 3x3", "bias:", "residual RMS:", "standard errors:", "rank 10 of 10",
                  "identifiable", "size chosen by BIC", "time:"):
        assert words in out, (words, out)


def test_8_bit_pngs_json(pair8, capsys):
    before, after, K = pair8
    code, out, err = run([before, after, "--json"], capsys)
    record = json.loads(out)
    assert code == 0 and record["kernel_size"] == [3, 3] and record["identifiable"] is True
    # rounding Y to integers is noise of sd 1/sqrt(12): the kernel to about 0.01
    np.testing.assert_allclose(record["kernel"], K, atol=0.01)
    assert abs(record["bias"] - 128) < 3 and 0.2 < record["residual_rms"] < 0.4
    assert record["before_bit_depth"] == record["after_bit_depth"] == 8
    assert np.array(record["std_errors"]).shape == (3, 3)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_files_valid_mode_with_saturation(tmp_path, capsys, suffix):
    rng = np.random.default_rng(1)
    X = (rng.random((40, 50)) * 65535).astype(np.uint16)
    K = np.array([[0.6, 0.6]])
    Y = np.clip(np.round(scipy.signal.correlate2d(X.astype(float), K, mode="valid")), 0,
                65535).astype(np.uint16)
    assert (Y == 65535).mean() > 0.05  # clipped at the top
    before = write(tmp_path / f"x{suffix}", X)
    after = write(tmp_path / f"y{suffix}", Y)
    code, out, err = run([before, after, "--json", "--no-bias"], capsys)
    record = json.loads(out)
    assert code == 0 and record["after_bit_depth"] == 16 and record["n_saturated"] > 0
    np.testing.assert_allclose(record["kernel"], K, atol=1e-4)


def test_npy_channels_and_per_channel(tmp_path, capsys):
    rng = np.random.default_rng(2)
    X = rng.random((3, 20, 24))
    K = rng.normal(size=(3, 2, 2))
    Y = np.stack([scipy.signal.correlate2d(X[c], K[c], mode="valid") for c in range(3)])
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", Y)
    code, out, _ = run([tmp_path / "x.npy", tmp_path / "y.npy", "--per-channel", "--json"],
                       capsys)
    assert code == 0
    np.testing.assert_allclose(json.loads(out)["kernel"], K, atol=1e-10)
    code, out, _ = run([tmp_path / "x.npy", tmp_path / "y.npy", "--json"], capsys)
    assert code == 0 and np.array(json.loads(out)["kernel"]).shape == (3, 3, 2, 2)


def test_method_gd_and_not_identifiable(tmp_path, capsys):
    X = np.ones((6, 8))
    X[:, 2:6] = 0
    Y = scipy.signal.correlate2d(X, [[1.0, -1.0]], mode="valid")
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", Y)
    code, out, _ = run([tmp_path / "x.npy", tmp_path / "y.npy", "--method", "gd", "--no-bias"],
                       capsys)
    assert code == 0 and "gradient descent" in out and "steps to come within 1e-12" in out
    np.save(tmp_path / "xt.npy", X.T)
    np.save(tmp_path / "yt.npy", scipy.signal.correlate2d(X.T, [[1.0, -1.0]], mode="valid"))
    code, out, _ = run([tmp_path / "xt.npy", tmp_path / "yt.npy"], capsys)
    assert code == 0 and "NOT identifiable" in out and "direction 1: [[ 0.7071 -0.7071]]" in out


def bad_inputs(tmp_path):
    rng = np.random.default_rng(3)
    small = write(tmp_path / "small.png", (rng.random((10, 12)) * 255).astype(np.uint8))
    big = write(tmp_path / "big.png", (rng.random((20, 20)) * 255).astype(np.uint8))
    rgb = write(tmp_path / "rgb.png", (rng.random((20, 20, 3)) * 255).astype(np.uint8))
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(big.read_bytes()[:60])
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object))
    return [
        ([small, big], "AFTER .*big.png.* is larger than BEFORE"),
        ([tmp_path / "missing.png", big], "missing.png: no such file"),
        ([truncated, big], "truncated.png: not a readable image"),
        ([text, big], "notes.png: not a readable image"),
        ([tmp_path / "obj.npy", big], "obj.npy: not a readable .npy array"),
        ([big, small, "--size", "40x3"], "--size 40x3 is larger than BEFORE"),
        ([big, small, "--size", "three"], "--size must be HxW, N or auto"),
        ([big, small, "--size", "5x5"], r"kernel_size \(5, 5\) does not fit"),
        ([rgb, big, "--per-channel"], r"--per-channel needs as many channels in AFTER \(1"),
        ([big, big, "--mode", "valid", "--size", "3"], r"does not fit"),
    ]


def test_bad_input_is_one_line_and_exit_status_2(tmp_path, capsys):
    import re

    for argv, pattern in bad_inputs(tmp_path):
        code, out, err = run(argv, capsys)
        assert code == 2, (argv, out, err)
        assert err.count("\n") == 1 and err.startswith("corrnet identify: error: "), err
        assert re.search(pattern, err), (pattern, err)
        assert "Traceback" not in err


def test_the_installed_command_line_runs(pair8):
    before, after, _ = pair8
    done = subprocess.run([sys.executable, "-m", "corrnet.cli", "identify", str(before),
                           str(after), "--json"], capture_output=True, text=True, timeout=120,
                          env=package_env())
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["kernel_size"] == [3, 3]


def test_the_readme_shell_example_runs_as_pasted(tmp_path):
    """README's "Recovering a kernel from two images": the sh block, with `python` and
    `corrnet` the interpreter running the tests; the kernel it finds is Sobel-x / 8."""
    import pathlib
    import re

    readme = pathlib.Path(__file__).resolve().parents[1] / "README.md"
    text = readme.read_text(encoding="utf-8") if readme.exists() else ""
    section = re.search(r"## Recovering a kernel from two images\n(.*?)\n## ", text, re.S)
    if section is None:
        pytest.skip("README has no section 'Recovering a kernel from two images'")
    script = re.search(r"```sh\n(.*?)```", section.group(1), re.S).group(1)
    script = re.sub(r"^python ", f"{sys.executable} ", script, flags=re.M)
    script = re.sub(r"^corrnet ", f"{sys.executable} -m corrnet.cli ", script, flags=re.M)
    done = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env=package_env())
    assert done.returncode == 0, done.stderr
    record = json.loads(next(line for line in done.stdout.splitlines()
                             if line.startswith("{")))
    sobel = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]]) / 8
    np.testing.assert_allclose(record["kernel"], sobel, atol=0.01)
    assert "steps" in done.stdout and "kernel 3x3" in done.stdout
