"""``python -m worklane_client`` runs the ``worklane`` command line."""

import sys

from worklane_client.cli import main

sys.exit(main())
