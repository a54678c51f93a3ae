"""Entry point kept for ``python -m tfs_user.demo_server`` and ``from tfs_user.demo_server import DemoServer``.

The demo server lives in ``tfs_user.demo`` (``server``: the gRPC server; ``model``, ``handlers``, ``cli``).
"""

from tfs_user.demo.model import ModelConfig  # noqa: F401
from tfs_user.demo.server import DemoServer, main  # noqa: F401

if __name__ == "__main__":
    main()
