"""``python -m fleet.cli``: the same as ``crowdfab-fleet``."""

from __future__ import annotations

import sys

from . import main

sys.exit(main())
