"""`python -m coco_operator.convert ...`: the subcommand on its own."""

import sys

from coco_operator.convert.cli import main

sys.exit(main())
