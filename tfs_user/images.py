"""Entry point kept for ``python -m tfs_user.images DIR -o imgs.npy`` (photos to ``.npy``).

The code lives in ``tfs_user.data.images``.
"""

import sys

from tfs_user.data.images import list_images, load_images, main, save_npy  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())  # its exit code: 2 on any error, so that `convert && locust ...` stops
