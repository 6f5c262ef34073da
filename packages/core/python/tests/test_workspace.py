import io
import json
import os
import tarfile
import time

import pytest

from conftest import NOBODY, run_boot


def ws_run(box, *argv, stdin=b""):
    return run_boot("workspace.py", ["op-1"] + list(argv), {"WS": box["WS"]}, stdin=stdin, uid=NOBODY)


def put(box, rel, data=b"x"):
    full = os.path.join(box["WS"], rel)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "wb") as f:
        f.write(data)
    return full


def tar_of(*files, truncate=None):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in files:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    raw = buf.getvalue()
    return raw[:truncate] if truncate else raw


# ---------------------------------------------------------------- list

def test_list_files_and_directories_sorted(box):
    put(box, "b.txt", b"12345")
    put(box, "a/c.txt")
    os.symlink("/etc", os.path.join(box["WS"], "link"))
    os.mkfifo(os.path.join(box["WS"], "fifo"))
    r = ws_run(box, "list", 100)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [["a", "directory", 0], ["a/c.txt", "file", 1], ["b.txt", "file", 5]]


def test_list_stops_at_the_limit(box):
    for i in range(10):
        put(box, "f%d" % i)
    assert len(json.loads(ws_run(box, "list", 3).stdout)) == 3


# ---------------------------------------------------------------- read

def test_read_prints_size_then_bytes(box):
    put(box, "d/f.bin", b"\0\1\2")
    r = ws_run(box, "read", "d/f.bin", 100)
    assert r.returncode == 0 and r.stdout == b"3\n\0\1\2"


@pytest.mark.parametrize("rel", ["nope", "nope/x", "f.txt/x"])
def test_read_missing_is_exit_2(box, rel):
    put(box, "f.txt")
    assert ws_run(box, "read", rel, 100).returncode == 2


def test_read_of_a_fifo_is_refused_at_once(box):
    os.mkfifo(os.path.join(box["WS"], "fifo"))
    t = time.monotonic()
    r = ws_run(box, "read", "fifo", 100)
    assert r.returncode == 3 and b"not a regular file" in r.stderr
    assert time.monotonic() - t < 5


@pytest.mark.parametrize("make", [
    lambda ws: os.symlink("/etc/hostname", os.path.join(ws, "t")),
    lambda ws: os.mkdir(os.path.join(ws, "t")),
    lambda ws: os.symlink("/dev/zero", os.path.join(ws, "t")),
])
def test_read_of_symlinks_and_directories_is_refused(box, make):
    make(box["WS"])
    assert ws_run(box, "read", "t", 100).returncode == 3


def test_read_never_follows_a_directory_symlink(box):
    os.symlink("/etc", os.path.join(box["WS"], "etc"))
    r = ws_run(box, "read", "etc/hostname", 100)
    assert r.returncode in (2, 3) and r.stdout == b""


def test_read_of_a_huge_sparse_file_is_refused_as_too_large(box):
    with open(os.path.join(box["WS"], "sparse"), "wb") as f:
        f.truncate(50 * 1024 ** 3)
    r = ws_run(box, "read", "sparse", 1024 * 1024)
    assert r.returncode == 4 and r.stdout == b""


@pytest.mark.parametrize("rel", ["../x", "/etc/passwd", "a//b", "./a", "a\nb"])
def test_read_rejects_unsafe_paths(box, rel):
    assert ws_run(box, "read", rel, 100).returncode == 3


# ---------------------------------------------------------------- write

def test_write_extracts_regular_files_creating_directories(box):
    r = ws_run(box, "write", 100, stdin=tar_of(("a.txt", b"A"), ("d/e/f.bin", b"\0" * 3)))
    assert r.returncode == 0, r.stderr
    assert open(os.path.join(box["WS"], "d/e/f.bin"), "rb").read() == b"\0\0\0"
    assert sorted(os.listdir(box["WS"])) == ["a.txt", "d"]


def test_write_replaces_a_symlink_instead_of_following_it(box):
    target = put(box, "target.txt", b"keep")
    os.symlink(target, os.path.join(box["WS"], "link"))
    assert ws_run(box, "write", 100, stdin=tar_of(("link", b"new"))).returncode == 0
    assert open(target, "rb").read() == b"keep"
    assert not os.path.islink(os.path.join(box["WS"], "link"))


def test_write_through_a_directory_symlink_is_refused(box):
    outside = os.path.join(box["ROOT"], "outside")
    os.mkdir(outside)
    os.chmod(outside, 0o777)
    os.symlink(outside, os.path.join(box["WS"], "out"))
    r = ws_run(box, "write", 100, stdin=tar_of(("out/x.txt", b"escape")))
    assert r.returncode == 3 and b"symlink" in r.stderr
    assert os.listdir(outside) == []


def test_write_over_a_directory_is_refused(box):
    os.mkdir(os.path.join(box["WS"], "d"))
    assert ws_run(box, "write", 100, stdin=tar_of(("d", b"x"))).returncode == 3


@pytest.mark.parametrize("name", ["../escape", "/abs", "a/../../b", "a/./b"])
def test_write_refuses_unsafe_names(box, name):
    r = ws_run(box, "write", 100, stdin=tar_of((name, b"x")))
    assert r.returncode == 3
    assert not os.path.exists(os.path.join(box["ROOT"], "escape")) and not os.path.exists("/abs")


def test_write_refuses_links_and_devices_in_the_tar(box):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo("l")
        ti.type = tarfile.SYMTYPE
        ti.linkname = "/etc/passwd"
        tf.addfile(ti)
    assert ws_run(box, "write", 100, stdin=buf.getvalue()).returncode == 3
    assert os.listdir(box["WS"]) == []


def test_write_is_atomic_an_aborted_upload_leaves_nothing(box):
    put(box, "f.txt", b"old")
    data = tar_of(("f.txt", b"n" * 100000), truncate=30000)
    r = ws_run(box, "write", 10 ** 6, stdin=data)
    assert r.returncode == 3
    assert os.listdir(box["WS"]) == ["f.txt"]
    assert open(os.path.join(box["WS"], "f.txt"), "rb").read() == b"old"


def test_write_refuses_a_file_over_the_limit(box):
    assert ws_run(box, "write", 10, stdin=tar_of(("f", b"x" * 11))).returncode == 4
    assert os.listdir(box["WS"]) == []


def test_write_reads_only_the_archive_then_stops(box):
    # Transports that cannot half-close stdin: the archive's end is enough.
    data = tar_of(("f", b"x"))
    assert ws_run(box, "write", 10, stdin=data + b"\0" * 10240).returncode == 0
