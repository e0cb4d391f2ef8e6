"""`python -m stellarbyte.data.toyworld --out DIR --size 1MB --seed 0` (see cli.py)."""

import sys

from .cli import main

sys.exit(main())
