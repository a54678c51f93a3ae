"""tfs-locust's two Locust event listeners, registered once, on import of ``tfs_user.user``.

- ``init_command_line_parser``: add our options to Locust's parser (``tfs_user.options``);
- ``init``: make the environment's run object (``tfs_user.run.TfsRun``) and start it, which
  registers every other listener on *that* environment's events.

A locustfile that imports ``TfsUser`` or ``OptionsTfsUser`` gets both.
"""

from locust import events

from tfs_user.options import add_options
from tfs_user.run import TfsRun, is_ours


@events.init_command_line_parser.add_listener
def _on_parser(parser, **kwargs):
    add_options(parser)


@events.init.add_listener
def _on_init(environment, runner=None, web_ui=None, **kwargs):
    if runner is not None and is_ours(environment.parsed_options):
        TfsRun.of(environment).start(runner, web_ui)
