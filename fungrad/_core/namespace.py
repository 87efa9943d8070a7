"""What ``dir()`` shows of a public module: its API, not the helpers it imports."""
from __future__ import annotations

from typing import Callable


def public_dir(names: list[str]) -> Callable[[], list[str]]:
    """A module-level ``__dir__`` (PEP 562) that lists ``names``, the module's ``__all__``.

    ``dir(module)``, tab completion and ``help()`` then show the public API instead of the
    imports a module needs (``np``, ``Any``, ``annotations``, helper functions), which
    stay importable as before. Use it as ``__dir__ = public_dir(__all__)``.

    Examples:
        >>> __all__ = ["sin", "cos"]
        >>> public_dir(__all__)()
        ['sin', 'cos']
    """
    return lambda: list(names)
