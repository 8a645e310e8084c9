"""runtime.ensure: a runtime folder of the user's own for the tools, only where the session gives none.
(tests/test_rootless.py runs the whole scenario as a user with no XDG_RUNTIME_DIR.)"""

from __future__ import annotations

import os

import pytest

from reglessbuild import runtime

UID = 4242  # another user: whatever this test's process makes belongs to someone else as ensure sees it


def test_root_keeps_the_tools_defaults(tmp_path):
    assert runtime.ensure({}, uid=0, tmp=str(tmp_path)) is None


def test_a_writable_session_folder_of_the_users_is_kept(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to give the folder to another user")
    mine = tmp_path / "run"
    mine.mkdir(mode=0o700)
    os.chown(mine, UID, UID)
    assert runtime.ensure({"XDG_RUNTIME_DIR": str(mine)}, uid=UID, tmp=str(tmp_path)) is None
    got = runtime.ensure({"XDG_RUNTIME_DIR": str(tmp_path)}, uid=UID, tmp=str(tmp_path))  # someone else's
    assert got is not None and got.reason == f"XDG_RUNTIME_DIR {tmp_path} is not a writable folder of yours"


def test_unset_gives_a_private_folder_and_says_why(tmp_path):
    got = runtime.ensure({}, uid=UID, tmp=str(tmp_path))
    assert got is not None and got.reason == "XDG_RUNTIME_DIR is not set (no login session)"
    assert got.path.parent == tmp_path and got.path.name.startswith(f"regless-runtime-{UID}")
    assert got.path.is_dir() and not got.path.is_symlink() and got.path.stat().st_mode & 0o777 == 0o700


def test_a_name_taken_by_a_symlink_is_not_used(tmp_path):
    taken = tmp_path / f"regless-runtime-{UID}"
    taken.symlink_to(tmp_path)  # a trap laid in /tmp by another user
    got = runtime.ensure({"XDG_RUNTIME_DIR": "/nonexistent"}, uid=UID, tmp=str(tmp_path))
    assert got is not None and got.path != taken and got.path.parent == tmp_path
    assert got.path.name.startswith(f"regless-runtime-{UID}-") and got.path.stat().st_mode & 0o777 == 0o700
    assert got.reason == "XDG_RUNTIME_DIR /nonexistent is not a writable folder of yours"
