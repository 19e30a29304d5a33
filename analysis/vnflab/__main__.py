"""``python -m vnflab``: the ``vnflab`` command (:mod:`vnflab.cli`)."""

import sys

from vnflab.cli import main

sys.exit(main())
