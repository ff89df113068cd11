"""``python -m mlsm``: the ``mlsm`` command."""

import sys

from .cli import main

sys.exit(main())
