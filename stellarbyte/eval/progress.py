"""A tqdm progress bar when wanted and installed, else a no-op with the same update/close interface."""

from __future__ import annotations

from typing import Any


class NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def bar(total: int, desc: str, enabled: bool = True) -> Any:
    if not enabled:
        return NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return NoBar()
    return tqdm(total=total, desc=f"  {desc}", leave=False)
