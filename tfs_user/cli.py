"""The ``tfs-locust`` console command: Locust with the bundled locustfile, and a ``--help`` that lists our options.

``tfs-locust ARGS`` runs ``locust -f <tfs_user/locustfile.py> ARGS``: every Locust option
works, and a ``-f`` given in ARGS comes later on the command line and wins.

Locust prints ``--help`` before it loads a locustfile, so ``locust -f locustfile.py --help``
never shows a plugin's options. Here ``--help`` builds Locust's full parser with our options
added (as at run time: directly on the parser, see ``tfs_user.options.add_options``) and, for
the help text only, moves them into groups by topic before printing.
"""

import os
import sys

LOCUSTFILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "locustfile.py")
HELP_GROUP = "tfs-locust"
"""Title prefix of our option groups in ``--help``; each group is one topic (``tfs_user.options.TOPICS``)."""
USAGE = """
Usage: tfs-locust [options] [UserClass ...]

Locust with the TFS Serving gRPC user of tfs_user/locustfile.py: tfs-locust ARGS is
locust -f {locustfile} ARGS. Locust's options come first, ours at the end, by topic
(each is also a config-file key, a TFS_* environment variable and a web UI field).
"""


def wants_help(args):
    """Whether ``args`` ask for help (``-h``/``--help``, also as a prefix such as ``--he``)."""
    for arg in args:
        if arg == "--":
            return False
        if arg == "-h" or (len(arg) > 3 and "--help".startswith(arg)):
            return True
    return False


def group_for_help(parser, prefix=HELP_GROUP):
    """Move this plugin's options into argument groups of ``parser``, one per topic, for ``--help`` only.

    Groups are titled ``PREFIX: TOPIC`` in ``tfs_user.options.TOPICS`` order. The actions stay
    registered on the parser itself (parsing, config files, ``include_in_web_ui`` are unchanged);
    only the groups that format them move. Returns the groups. Raises ValueError when none of our
    options is on the parser.
    """
    from tfs_user.options import topics

    actions = {a.dest: a for a in parser._actions}
    grouped = {topic: [actions[d] for d in dests if d in actions] for topic, dests in topics().items()}
    if not any(grouped.values()):
        raise ValueError("none of the TFS options is on the parser; expected add_options(parser) to have run")
    groups = []
    for topic, members in grouped.items():
        group = parser.add_argument_group(f"{prefix}: {topic}")
        for action in members:
            for other in parser._action_groups:
                if action in other._group_actions:
                    other._group_actions.remove(action)
            group._group_actions.append(action)
        groups.append(group)
    return groups


def print_help(args):
    """Print Locust's help with our options in groups by topic (Locust's parser, as ``locust --help`` builds it); exit 0."""
    from locust.argument_parser import get_parser

    from tfs_user import plugin  # noqa: F401  registers the listener that adds our options to the parser

    parser = get_parser()
    group_for_help(parser)
    parser.description = USAGE.format(locustfile=LOCUSTFILE)
    parser.parse_args(args)  # -h/--help prints and exits, like Locust's own --help


def main(argv=None):
    """Entry point of ``tfs-locust``: Locust's ``main()`` with ``-f <bundled locustfile>`` in front of the arguments."""
    args = sys.argv[1:] if argv is None else list(argv)
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "tfs-locust"
    sys.argv = [prog, "-f", LOCUSTFILE, *args]
    if wants_help(args):
        print_help(sys.argv[1:])
    from locust.main import main as locust_main

    return locust_main()


if __name__ == "__main__":
    sys.exit(main())
