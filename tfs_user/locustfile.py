"""The locustfile that ``tfs-locust`` runs: ``OptionsTfsUser``, configured entirely by options.

``tfs-locust ARGS`` is ``locust -f <this file> ARGS``; ``tfs-locust --help`` lists the options.
"""

from tfs_user import models
from tfs_user.user import OptionsTfsUser  # noqa: F401

models.declare(globals())  # --models: one user class per model, in place of OptionsTfsUser
