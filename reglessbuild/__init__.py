"""regless: build the images of a multi-image project, registry-only, skipping unchanged ones."""

__version__ = "0.1.0"
