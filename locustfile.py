"""Entry point: ``locust -f locustfile.py --host HOST:PORT --model-name resnet ...``.

Runs ``OptionsTfsUser``, configured entirely by options (README "Options"). Locust prints
``--help`` before it loads a locustfile, so ``locust -f locustfile.py --help`` does not list
them; ``tfs-locust --help`` does (README "Install"). The installed command runs the same user
from ``tfs_user/locustfile.py``.
"""

from tfs_user import models
from tfs_user.user import OptionsTfsUser  # noqa: F401

models.declare(globals())  # --models: one user class per model, in place of OptionsTfsUser
