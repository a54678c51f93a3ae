"""``python -m tfs_user.demo --port 9000``: the demo server on its own (``tfs_user.demo.main``)."""

import sys

from tfs_user.demo.main import main

sys.exit(main())
