"""Hashing: which files of a build context an artifact reads, and its workspace hash.

One port (`port.Engine`: walk a context under its ignore rules, hash a file list against the stat memo,
plus the two byte encodings the engines share) with two implementations, the C engine (`c_engine`,
over reglessbuild/_native, built from reglessbuild/csrc) and the Python engine (`python_engine`),
chosen in one place (`choose`). What both engines obey lives once:

- `ignore`: .dockerignore files and the walk's verdict on each entry
- `globs`: the translation of Go's filepath.Match and moby's ignore patterns into regexes
- `memo`: the stat memo's record format and its merging
- `recipe`: what goes into the workspace hash
- `sources`: which entries of a listing a Dockerfile's COPY/ADD sources reach
- `inputs`: the whole of it for one artifact (`collect`), as run.py uses it

This package imports nothing at import time, so `regless version` can ask `choose` which engine runs
without loading the hashing modules.
"""
