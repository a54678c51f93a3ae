"""Entry point kept for ``python -m tfs_user.demo_server`` and ``from tfs_user.demo_server import DemoServer``.

The demo server lives in ``tfs_user.demo``: ``server`` (DemoServer, TF Serving's API and the Open
Inference Protocol on one port), ``tfs_service`` and ``handlers`` (the TF Serving API),
``kserve_service`` and ``kserve_handlers`` (the Open Inference Protocol), ``inference`` (what both
share), ``model``, ``cli`` and ``main`` (this command).
"""

import sys

from tfs_user.demo.model import ModelConfig  # noqa: F401
from tfs_user.demo.server import DemoServer  # noqa: F401

if __name__ == "__main__":
    from tfs_user.demo.main import main

    sys.exit(main())
