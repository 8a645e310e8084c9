"""The C part of regless (reglessbuild/csrc, the C engine of hashing): optional. Where it cannot be built
(no C compiler, no Python headers or no xxhash.h: Debian's gcc, python3-dev and libxxhash-dev), pip installs
regless without it and the Python engine hashes, more slowly (reglessbuild/hashing/choose.py)."""

from glob import glob

from setuptools import Extension, setup

setup(ext_modules=[Extension("reglessbuild._native", sorted(glob("reglessbuild/csrc/*.c")),
                             depends=sorted(glob("reglessbuild/csrc/*.h")),
                             extra_compile_args=["-std=c11", "-Wall", "-Wno-unused-function"],
                             optional=True)])
