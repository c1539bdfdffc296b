"""``python -m bench``: run the benchmark harness (see :mod:`bench.run`)."""

import sys

from .run import main

sys.exit(main())
