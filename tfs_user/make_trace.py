"""``python -m tfs_user.make_trace``: a trace from a CSV of timestamps (``tfs_user.capacity.trace_maker``)."""

import sys

from tfs_user.capacity.trace_maker import main

if __name__ == "__main__":
    sys.exit(main())
