"""Put this folder on PYTHONPATH and ``tensorflow`` (and ``tensorflow_serving``) cannot be imported in that
process, as on a lean install (requirements-lean.txt): Python imports ``sitecustomize`` at start-up.

Used by tests that run the lean path with this machine's full virtualenv (tests/wire_table.py,
tests/test_deploy.py); tests/test_lean_install.py uses a real lean virtualenv instead.
"""

import sys


class _NoTensorFlow:
    """A meta path finder for which ``tensorflow`` and ``tensorflow_serving`` do not exist."""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("tensorflow", "tensorflow_serving"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NoTensorFlow())
