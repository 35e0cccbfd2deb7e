"""A bounded, per-process store that a wrapped WeasyPrint step consults while it is active.

Notices are rendered thousands of times from the same templates, stylesheets
and fonts, so some of WeasyPrint's work gives the same result for every
notice. WeasyPrint has no option to keep such results between documents; the
modules that do (`_shared_styles`, `_font_subsets`) each provide a
replacement for one WeasyPrint function, which `_weasyprint_patches` installs
after checking it, and the replacement consults its store only inside
`store.active()`: every other document is made exactly as WeasyPrint makes it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ClassVar, Self


class BoundedStore:
    """Values by key, dropped all at once past `limit` entries; `hits` and `misses` count lookups.

    Each subclass declares its own `_active` ContextVar (one store of a kind
    is active at a time, per thread).
    """

    _active: ClassVar[ContextVar[Any]]

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.hits = 0
        self.misses = 0
        self._values: dict[Hashable, Any] = {}

    def __len__(self) -> int:
        return len(self._values)

    @classmethod
    def current(cls) -> Self | None:
        """The store active in this context, if any."""
        return cls._active.get()

    @contextmanager
    def active(self) -> Iterator[Self]:
        """Within this block, the wrapped step takes results from and adds them to this store."""
        token = self._active.set(self)
        try:
            yield self
        finally:
            self._active.reset(token)

    def get(self, key: Hashable, accept: Callable[[Any], bool] | None = None) -> Any:  # noqa: ANN401
        """The value stored under `key` (None when there is none, or when `accept` refuses it)."""
        value = self._values.get(key)
        if value is None or (accept is not None and not accept(value)):
            self.misses += 1
            return None
        self.hits += 1
        return value

    def put(self, key: Hashable, value: Any) -> None:  # noqa: ANN401
        if len(self._values) >= self.limit:
            self._values.clear()
        self._values[key] = value
