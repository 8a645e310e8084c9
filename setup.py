"""The C part of regless (reglessbuild/_native.c): optional. Where it cannot be built (no C compiler,
no Python headers or no xxhash.h: Debian's gcc, python3-dev and libxxhash-dev), pip installs regless
without it and inputs.py runs the same loops in Python, more slowly."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("reglessbuild._native", ["reglessbuild/_native.c"],
                             extra_compile_args=["-std=c11", "-Wall", "-Wno-unused-function"],
                             optional=True)])
