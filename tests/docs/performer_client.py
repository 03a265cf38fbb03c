"""The shell examples' `performer`: hand the command to the zygote, print what it printed,
exit with its code (tests/docs/performer_zygote.py). Standard library only, so it starts
with `python -S` in a few milliseconds."""

import json
import os
import socket
import sys

EXIT_MARK = b"\x00performer-exit "


def run(argv: list[str]) -> int:
    request = {"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}
    with socket.socket(socket.AF_UNIX) as conn:
        conn.connect(os.environ["PERFORMER_ZYGOTE"])
        conn.sendall(json.dumps(request).encode() + b"\n")
        received = bytearray()
        while chunk := conn.recv(65536):
            received += chunk
    output, mark, code = bytes(received).rpartition(EXIT_MARK)
    if not mark:
        sys.stderr.write("performer: the zygote ended without an exit code\n")
        return 1
    sys.stdout.buffer.write(output)
    return int(code)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
