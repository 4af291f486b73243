"""``python -m senet`` is the ``senet`` command."""

import sys

from senet.cli import main

sys.exit(main())
