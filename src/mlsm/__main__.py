"""``python -m mlsm``: the ``mlsm`` command."""

import sys

from mlsm.cli import main

sys.exit(main())
