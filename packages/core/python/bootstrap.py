# Started as `python3 -I -S -c <this> <N> <args...>`: runs the program whose N bytes come first
# on stdin (the runner, the workspace helper), so command lines stay short (Kubernetes exec
# carries argv in the URL) and every platform gets the same bytes. Before anything is read the
# process becomes non-dumpable: code of the same uid can then neither ptrace it nor open
# /proc/<pid>/fd/* (its control channel). Whatever follows the program on stdin is its own.
import ctypes, os, sys
if ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0) != 0:  # PR_SET_DUMPABLE = 4
    sys.stderr.write("bootstrap: prctl(PR_SET_DUMPABLE) failed\n")
    os._exit(125)
n = int(sys.argv.pop(1))
b = bytearray()
while len(b) < n:
    c = os.read(0, n - len(b))
    if not c:
        break
    b += c
del c, n
exec(compile(bytes(b), "<program>", "exec"))
