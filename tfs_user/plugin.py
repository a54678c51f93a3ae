"""tfs-locust's Locust hooks, registered once, on import of ``tfs_user.user``.

- ``init_command_line_parser``: add our options to Locust's parser (``tfs_user.options``), and
  give ``--processes`` runs a master port of their own (``tfs_user.master_port``);
- ``init``: make the environment's run object (``tfs_user.run.TfsRun``) and start it, which
  registers every other listener on *that* environment's events;
- Locust's CSV writer is replaced by one that writes its files once more at exit
  (``tfs_user.results.locust_csv``);
- Locust's defaults for a worker's spawn message are computed once, not once per option (which
  held a worker's event loop 1.4-2.3 s at each step of a sweep), and a worker handles the master's
  messages only after ``init`` (a worker joining a running ``--models`` test got its spawn message
  before its model classes existed): ``tfs_user.locust_spawn``.

A locustfile that imports ``TfsUser`` or ``OptionsTfsUser`` gets all of them.
"""

from locust import events

from tfs_user import locust_spawn, master_port
from tfs_user.results import locust_csv
from tfs_user.options import add_options
from tfs_user.run import TfsRun, is_ours

locust_csv.install()
locust_spawn.install()


@events.init_command_line_parser.add_listener
def _on_parser(parser, **kwargs):
    add_options(parser)
    master_port.on_parse(parser)


@events.init.add_listener
def _on_init(environment, runner=None, web_ui=None, **kwargs):
    try:
        if runner is not None and is_ours(environment.parsed_options):
            TfsRun.of(environment).start(runner, web_ui)
    finally:  # even if start failed: a worker that never handles the master's messages would not even quit
        locust_spawn.init_done(runner)  # a worker's spawn message waited for the listeners and classes made above
