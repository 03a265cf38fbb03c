"""`python -m server` is `performer`."""

import sys

from server.cli import main

sys.exit(main())
