"""regless: build the images of a multi-image project, registry-only, skipping unchanged ones."""

from time import perf_counter as _clock

__version__ = "0.1.0"
IMPORTED = _clock()  # when regless's own start-up began: the "startup" of a build's phases counts from here


def began() -> float:
    """When this command's regless began (perf_counter): IMPORTED, or the client's where a warm
    server's child runs the command (reglessbuild/warm), which sets IMPORTED to it."""
    return IMPORTED
