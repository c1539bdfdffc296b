"""The public face of the package: what `from kiiex_async import ...` offers."""

import kiiex_async
import kiiex_async.models
import kiiex_async.testing


def test_all_is_complete() -> None:
    """`__all__` has no duplicates and every name in it exists (ruff RUF022 keeps it sorted)."""
    for module in (kiiex_async, kiiex_async.models, kiiex_async.testing):
        names = module.__all__
        assert len(set(names)) == len(names)
        missing = [n for n in names if not hasattr(module, n)]
        assert missing == []


def test_public_members_are_exported() -> None:
    """Every public class or function defined in the package root is in `__all__`."""
    public = {
        name
        for name, value in vars(kiiex_async).items()
        if not name.startswith("_")
        and getattr(value, "__module__", "").startswith("kiiex_async")
        and callable(value)
    }
    assert public <= set(kiiex_async.__all__)


def test_the_transport_seam_is_public() -> None:
    """The seam's names are exported: users can write or mock a transport without privates."""
    assert {"AsyncTransport", "AiohttpTransport", "Request", "Response"} <= set(kiiex_async.__all__)
    assert {"MockTransport", "Request", "Response"} <= set(kiiex_async.testing.__all__)
    assert kiiex_async.testing.Request is kiiex_async.Request
