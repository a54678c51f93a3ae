"""A worker's spawn message handled in milliseconds, not seconds.

Locust 2.47's ``WorkerRunner.handle_message`` picks the plugin options out of each spawn message
with ``k not in argument_parser.default_args_dict()`` inside a comprehension over every option:
it builds Locust's whole argument parser once per option (about 11 ms each here, 56 of Locust's
and ours: 1.4-2.3 s per spawn message under load). That runs in the worker's message loop and
holds the process's event loop: no request is sent and no master message is read meanwhile. In
a ``--processes`` users sweep every step starts with a spawn message, so each worker sent none
of the step's warm-up and heard that the step's figures start 1-1.6 s late (seen: step 2's
warm-up 0 against 263 in one process). ``install()`` computes Locust's defaults once per process
(they depend on Locust's own arguments only) and hands out a copy.
"""

import functools

from locust import argument_parser


def install():
    """Make ``locust.argument_parser.default_args_dict`` build its parser once per process (idempotent)."""
    original = argument_parser.default_args_dict
    if getattr(original, "tfs_once", False):
        return
    once = functools.lru_cache(maxsize=1)(original)

    @functools.wraps(original)
    def default_args_dict():
        return dict(once())

    default_args_dict.tfs_once = True
    argument_parser.default_args_dict = default_args_dict
