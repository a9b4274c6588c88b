"""Entry point of ``python -m bot.loans``."""

import sys

from bot.loans.cli import main

sys.exit(main())
