"""File operations on /workspace for the API, run inside the executor as the code's uid.

argv: <opId> then one of (the id is only there for the killer, see killer.py)
    list <maxEntries>     prints JSON [[path, "file"|"directory", size], ...] (sorted)
    read <path> <maxBytes>
                          prints "<size>\\n" then exactly <size> bytes of a regular file
    write <maxBytes>      reads a tar of regular files on stdin and writes each one

Every path is walked one component at a time from /workspace with O_NOFOLLOW (dir_fd), so no
symlink - in the last component or any directory above it - is ever followed, whatever the
code has put in the workspace. Reads open with O_NONBLOCK and check fstat before reading: a
FIFO, socket or device never blocks us. Writes go to a temporary file in the target
directory, renamed over the target only once complete: an aborted upload leaves nothing.

Exit codes: 0 ok; 2 no such file (read); 3 refused: not a regular file, a symlink on the
path, a bad path or tar entry (reason on stderr); 4 larger than maxBytes; 5 no space left.
"""
import errno
import json
import os
import stat
import sys

WS = "/workspace"
EXIT_MISSING, EXIT_REFUSED, EXIT_TOO_LARGE, EXIT_NO_SPACE = 2, 3, 4, 5
MAX_PATH, MAX_DEPTH, MAX_SEGMENT = 1024, 32, 255
CHUNK = 1 << 16


class Refused(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def path_parts(rel):
    """The same rules as the API's workspacePathProblem; raises Refused."""
    if not isinstance(rel, str) or not rel or len(rel) > MAX_PATH:
        raise Refused(EXIT_REFUSED, "bad path length")
    if rel.startswith("/") or "\\" in rel or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in rel):
        raise Refused(EXIT_REFUSED, "path must be relative, with forward slashes and no control characters")
    parts = rel.split("/")
    if len(parts) > MAX_DEPTH:
        raise Refused(EXIT_REFUSED, "path is too deep")
    for p in parts:
        if p in ("", ".", "..") or len(p) > MAX_SEGMENT:
            raise Refused(EXIT_REFUSED, "path has an empty, '.', '..' or too long segment")
    return parts


def open_dir(parts, create):
    """An fd of the directory that holds the last part, walked without following symlinks."""
    fd = os.open(WS, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for i, p in enumerate(parts[:-1]):
            flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
            try:
                nfd = os.open(p, flags, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                try:
                    os.mkdir(p, 0o755, dir_fd=fd)
                except FileExistsError:
                    pass
                nfd = os.open(p, flags, dir_fd=fd)
            except OSError as e:
                if e.errno == errno.ELOOP or (create and e.errno == errno.ENOTDIR):
                    raise Refused(EXIT_REFUSED, "%s is a symlink or not a directory" % "/".join(parts[: i + 1]))
                raise
            os.close(fd)
            fd = nfd
        return fd
    except BaseException:
        os.close(fd)
        raise


def write_all(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


# ---------------------------------------------------------------- list

def list_entries(limit):
    out = []
    for root, dirs, files in os.walk(WS):
        dirs.sort()
        for name in dirs + sorted(files):
            full = os.path.join(root, name)
            try:
                st = os.lstat(full)
            except OSError:
                continue
            rel = os.path.relpath(full, WS)
            if stat.S_ISDIR(st.st_mode):
                out.append([rel, "directory", 0])
            elif stat.S_ISREG(st.st_mode):
                out.append([rel, "file", st.st_size])
            if len(out) >= limit:
                break
        if len(out) >= limit:
            break
    out.sort(key=lambda e: e[0])
    return out


# ---------------------------------------------------------------- read

def open_for_read(rel, max_bytes):
    """(fd, size) of a regular file; raises Refused."""
    parts = path_parts(rel)
    try:
        d = open_dir(parts, create=False)
    except (FileNotFoundError, NotADirectoryError):
        raise Refused(EXIT_MISSING, "no such file")
    try:
        fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY, dir_fd=d)
    except FileNotFoundError:
        raise Refused(EXIT_MISSING, "no such file")
    except OSError as e:
        raise Refused(EXIT_REFUSED, "not a regular file (%s)" % os.strerror(e.errno))
    finally:
        os.close(d)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise Refused(EXIT_REFUSED, "not a regular file")
    if st.st_size > max_bytes:
        os.close(fd)
        raise Refused(EXIT_TOO_LARGE, "%d bytes, more than the limit of %d" % (st.st_size, max_bytes))
    os.set_blocking(fd, True)
    return fd, st.st_size


def read_file(rel, max_bytes, out_fd=1):
    fd, size = open_for_read(rel, max_bytes)
    try:
        write_all(out_fd, b"%d\n" % size)
        left = size
        while left > 0:
            chunk = os.read(fd, min(CHUNK, left))
            if not chunk:
                break
            write_all(out_fd, chunk)
            left -= len(chunk)
        if left > 0:  # the file shrank meanwhile: keep the promised length
            write_all(out_fd, b"\0" * left)
    finally:
        os.close(fd)


# ---------------------------------------------------------------- write

def write_member(parts, src, size):
    d = open_dir(parts, create=True)
    tmp = ".ci-upload-%s.part" % os.urandom(8).hex()
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=d)
        try:
            left = size
            while left > 0:
                chunk = src.read(min(CHUNK, left))
                if not chunk:
                    raise Refused(EXIT_REFUSED, "the upload ended early")
                write_all(fd, chunk)
                left -= len(chunk)
            os.fchmod(fd, 0o644)
        finally:
            os.close(fd)
        try:
            st = os.stat(parts[-1], dir_fd=d, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                raise Refused(EXIT_REFUSED, "%s is a directory" % "/".join(parts))
        except FileNotFoundError:
            pass
        # rename replaces a symlink itself, never what it points to
        os.rename(tmp, parts[-1], src_dir_fd=d, dst_dir_fd=d)
        tmp = None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp, dir_fd=d)
            except OSError:
                pass
        os.close(d)


def write_files(max_bytes, in_fd=0):
    import tarfile
    src = os.fdopen(in_fd, "rb", buffering=0, closefd=False)
    try:
        tf = tarfile.open(fileobj=src, mode="r|")
    except tarfile.TarError as e:
        raise Refused(EXIT_REFUSED, "not a tar stream: %s" % e)
    n = 0
    try:
        for m in tf:
            if not m.isreg():
                raise Refused(EXIT_REFUSED, "%r is not a regular file entry" % m.name)
            if m.size > max_bytes:
                raise Refused(EXIT_TOO_LARGE, "%r is larger than the limit of %d bytes" % (m.name, max_bytes))
            parts = path_parts(m.name)
            write_member(parts, tf.extractfile(m), m.size)
            n += 1
    except tarfile.TarError as e:
        raise Refused(EXIT_REFUSED, "bad tar stream: %s" % e)
    return n


# ---------------------------------------------------------------- main

def main(argv):
    argv = argv[1:]  # the operation's id: for the killer only
    try:
        op = argv[0] if argv else ""
        if op == "list" and len(argv) == 2:
            sys.stdout.write(json.dumps(list_entries(int(argv[1]))))
            sys.stdout.flush()
        elif op == "read" and len(argv) == 3:
            read_file(argv[1], int(argv[2]))
        elif op == "write" and len(argv) == 2:
            write_files(int(argv[1]))
        else:
            sys.stderr.write("usage: workspace list N | read PATH MAX | write MAX\n")
            sys.exit(64)
    except Refused as e:
        sys.stderr.write("%s\n" % e)
        sys.exit(e.code)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            sys.stderr.write("no space left in the workspace\n")
            sys.exit(EXIT_NO_SPACE)
        raise


if __name__ == "__main__":
    main(sys.argv[1:])
