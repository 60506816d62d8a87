"""``python -m skyrun``: see ``skyrun.cli``."""

import sys

from .cli import main

sys.exit(main())
