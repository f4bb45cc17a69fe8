"""python -m esp32_twin: see esp32_twin.cli."""

import sys

from esp32_twin.cli import main

sys.exit(main())
