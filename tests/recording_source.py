"""A cube source that records the windows read from it (tests of lazy, tiled reading)."""

from __future__ import annotations

from unmixgen.scene import ArraySource


class RecordingSource(ArraySource):
    """An `ArraySource` that records every window it is asked for, as (r0, r1, c0, c1)."""

    def __init__(self, array, **kw):
        super().__init__(array, **kw)
        self.windows: list[tuple[int, int, int, int]] = []

    def read(self, rows, cols):
        self.windows.append(record_window(self.shape, rows, cols))
        return super().read(rows, cols)

    def largest_window(self) -> int:
        """Pixels in the largest window read so far (0 when nothing was read)."""
        return max(((r1 - r0) * (c1 - c0) for r0, r1, c0, c1 in self.windows), default=0)


def record_window(shape, rows: slice, cols: slice) -> tuple[int, int, int, int]:
    """``(r0, r1, c0, c1)`` of a window of a ``shape = (rows, cols, ...)`` cube."""
    return rows.indices(shape[0])[:2] + cols.indices(shape[1])[:2]
