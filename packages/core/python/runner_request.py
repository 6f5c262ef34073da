"""The runner's request: its header and the code on stdin, and the program's stdin handed over
as exactly the caller's bytes, then EOF. Shipped as one program with runner.py (see there)."""
import os

if False:  # defined in runner.py, which this file is shipped ahead of as one program
    from runner import CTL, write_all


def read_exact(n):
    buf = bytearray()
    while len(buf) < n:
        c = os.read(0, min(1 << 20, n - len(buf)))
        if not c:
            break
        buf += c
    return bytes(buf)


def parse_header(hdr):
    parts = (hdr.strip() or b"0 0").split()
    code_len = int(parts[0])
    data_len = int(parts[1]) if len(parts) > 1 else 0
    if code_len < 0 or data_len < 0:
        raise ValueError("negative length")
    return code_len, data_len


def read_request(exec_id):
    hdr = b""
    while not hdr.endswith(b"\n") and len(hdr) < 64:
        c = os.read(0, 1)
        if not c:
            break
        hdr += c
    code_len, data_len = parse_header(hdr)
    code = read_exact(code_len).decode("utf-8", "replace")
    data = read_exact(data_len)
    # The program's stdin is exactly the caller's bytes, then EOF, whatever the transport
    # does with its own stdin (WebSocket exec cannot half-close).
    path = os.path.join(CTL, exec_id + ".stdin")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        write_all(fd, data)
        os.close(fd)
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        os.unlink(path)
    except OSError:
        fd = os.open(os.devnull, os.O_RDONLY)
    os.dup2(fd, 0)
    os.close(fd)
    return code
