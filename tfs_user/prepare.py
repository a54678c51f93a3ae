"""Pre-flight and request bodies, once per process and ``Settings``, through the protocol seam.

The run object (``tfs_user.run``) owns one ``Preparer``; users share its ``Prepared``: the
settings, the protocol's call and response check, the request factory and the request names.
Nothing here names a protocol's messages or a transport: ``tfs_user.protocols.protocol(settings.protocol,
settings.http)`` does.
"""

import dataclasses
from dataclasses import dataclass

from tfs_user import protocols
from tfs_user.data.fitting import data_here, open_sources
from tfs_user.phases import Phase


@dataclass(frozen=True)
class Prepared:
    """What the users of one user class share: their Settings, the protocol, the request bodies, request names."""

    settings: object
    """The class's ``Settings``."""
    api: object
    """The protocol's ``api`` module (``tfs_user.protocols``): ``open_call``, ``check_response``."""
    requests: object
    """The protocol's request factory: ``requests.request(k)`` -> serialized request of batch k."""
    names: dict
    """Phase -> Locust request name (``Predict resnet``, ``Predict resnet (warm-up)``, ...)."""
    variants: tuple = ()
    """A mixed run (``Settings.variants``): ((weight, parts, Prepared of one batch size and file), ...); () = unmixed."""

    @property
    def mix(self):
        """((weight, parts, Prepared), ...): the variants, or this Prepared alone (weight 1, no parts)."""
        return self.variants or ((1.0, (), self),)

    @property
    def iterations_limit(self):
        """Measured requests per user, or None for no limit (``iterations`` -1; 0 = one pass over the data)."""
        iterations = self.settings.iterations
        return {-1: None, 0: self.requests.batches.one_pass}.get(iterations, iterations)


class Preparer:
    """Per-process caches: Settings -> Prepared (or None: model checked, no data here), data paths -> opened data."""

    def __init__(self):
        self._prepared = {}
        self._sources = {}

    def prepare(self, settings, load=True):
        """Pre-flight and requests for ``settings``, once per process; ``load=False``: check the model only.

        Raises OptionError, DataError, InputError or PreflightError (ValueError, one line).
        """
        prepared = self._prepared.get(settings)
        if prepared is None and (load or settings not in self._prepared) and settings.mixed:
            # every (batch size, data file) fitted on its own: a size or a file the signature refuses stops here
            variants = tuple((weight, parts, self.prepare(one, load)) for weight, parts, one in settings.variants())
            if load:
                prepared = dataclasses.replace(variants[0][2], settings=settings, variants=variants)
            self._prepared[settings] = prepared
        elif prepared is None and (load or settings not in self._prepared):
            api = protocols.protocol(settings.protocol, settings.http)
            signature = api.inspect_model(settings)
            if load:
                requests = api.build_requests(settings, signature, self.open(settings))
                names = {p: p.request_name(api.VERB, settings.model_name) for p in Phase}
                prepared = Prepared(settings, api, requests, names)
            self._prepared[settings] = prepared
        return prepared

    def open(self, settings, master=False):
        """The opened data of ``settings`` (once per process), or None on a master without it (DataError)."""
        if not data_here(settings, master):
            return None
        if settings.mixed:  # every file of the mix opened (and checked) now; the first's data returned
            return [self.open(one, master) for _, _, one in settings.variants()][0]
        key = (settings.named_inputs, settings.images_numpy_path, settings.images_dir)
        if key not in self._sources:
            self._sources[key] = open_sources(settings)
        return self._sources[key]
