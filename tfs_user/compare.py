"""Entry point for ``python -m tfs_user.compare BASE.json NEW.json`` (``tfs_user.results.compare_cli``).

Compares two JSON summaries (``--json-summary``) as ``--baseline`` does at the end of a run: exit 0 when
no figure is worse, 3 when one is, 2 when the files cannot be compared.
"""

import sys

if __name__ == "__main__":
    from tfs_user.results.compare_cli import main

    sys.exit(main())
