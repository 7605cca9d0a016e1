"""Names a package exports but imports only on first access."""

import importlib
from typing import Any, Callable, Dict, List, Tuple


def lazy_exports(
    package: str, namespace: Dict[str, Any], exports: Dict[str, str]
) -> Tuple[Callable[[str], Any], Callable[[], List[str]]]:
    """The ``__getattr__`` and ``__dir__`` of a package whose names
    ``exports`` (``{name: module}``) are imported from their modules when first
    used (and then kept in the package's ``namespace``).

    Used so that ``import metal`` stays cheap and never fails for a missing
    optional dependency, and so that a package's light modules can be imported
    without its heavy ones.
    """

    def __getattr__(name: str) -> Any:
        if name in exports:
            value = getattr(importlib.import_module(exports[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> List[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
