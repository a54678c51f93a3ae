"""Request bodies built once per batch and kept, whatever the protocol: ``CachedBodies``."""


class CachedBodies:
    """Serialized request bodies, one per batch: ``request(k)`` -> ``bytes`` of batch ``k``.

    A protocol's factory subclasses it with ``_build(k)`` and calls ``_start(batches, cache_bytes)``
    once its fields are set: body 0 is built at once (``request_bytes`` is its size), and all
    ``batches.period`` distinct bodies are cached when they fit in ``cache_bytes`` (``cached``);
    otherwise each is built just before its call.
    """

    def _start(self, batches, cache_bytes):
        self.batches = batches
        first = self._build(0)
        self.request_bytes = len(first)
        self.cached = self.request_bytes * batches.period <= cache_bytes
        self._cache = {0: first} if self.cached else None

    def _build(self, k):
        raise NotImplementedError

    def request(self, k):
        if self._cache is None:
            return self._build(k)
        k %= self.batches.period
        body = self._cache.get(k)
        if body is None:
            body = self._cache[k] = self._build(k)
        return body
