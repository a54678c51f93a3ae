"""Entry point: ``locust -f locustfile.py --host HOST:PORT --model-name resnet ...``.

Runs ``OptionsTfsUser``, configured entirely by options (``locust --help``
lists them under the custom arguments; README "Options").
"""

from tfs_user.user import OptionsTfsUser  # noqa: F401
