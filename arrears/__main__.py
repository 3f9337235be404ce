"""``python -m arrears`` runs the ``arrears`` command."""

import sys

from arrears.cli import main

sys.exit(main())
