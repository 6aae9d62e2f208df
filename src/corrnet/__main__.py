"""``python -m corrnet``: the same command line as ``corrnet`` (see `corrnet.cli`)."""

import sys

from corrnet.cli import main

sys.exit(main())
