"""`python -m daemon.ruletests rules/tests/*.yaml`: the same as `tickwatch test`."""

import sys

from daemon.ruletests.cli import _cli

sys.exit(_cli())
