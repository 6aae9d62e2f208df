"""Makes this folder importable, so that test files here and in oracle/ can share modules
(``torch_compare``, ``pool_geometry``). Pytest's default (prepend) import mode already puts
this folder on sys.path; the insertion below keeps that true under other import modes."""

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
