"""tfs-locust: a Locust plugin that load-tests TensorFlow Serving gRPC model servers.

``from tfs_user import TfsUser`` in your own locustfile gives the abstract user;
``locustfile.py`` at the top of the project runs ``OptionsTfsUser`` driven by
command-line options. The user classes are imported lazily so that
``python -m tfs_user.demo_server`` and ``tfs_user.data.images`` do not import Locust
(whose gevent monkey-patching must not reach a plain threaded gRPC server).
"""

__all__ = ["TfsUser", "OptionsTfsUser"]


def __getattr__(name):
    if name in __all__:
        from tfs_user import user

        return getattr(user, name)
    raise AttributeError(f"module 'tfs_user' has no attribute {name!r}")
