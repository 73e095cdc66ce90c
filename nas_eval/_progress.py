"""One rule for progress bars: ``progress=None`` shows them on a terminal only, True always,
False never (jobs inside a study pass False; the study shows one bar over jobs)."""


def disabled(progress):
    """tqdm's ``disable=`` for a ``progress`` argument."""
    return None if progress is None else not progress
