"""``python -m cachegrid.meinheld_build [PYTHON]``: see the package docstring."""

import sys

from . import main

sys.exit(main())
