"""Child side of adapters/remote.py: python -m adapters.worker module:attribute"""
from __future__ import annotations

import os
import sys
import traceback

from normconf.adapters.base import Unsupported
from normconf.adapters.remote import encode, pack_reply, unpack_call, write_frame


def _read_frame(stream) -> bytes | None:
    head = stream.read(8)
    if len(head) < 8:
        return None
    return stream.read(int.from_bytes(head, "big"))


def main(target: str) -> int:
    # Frameworks print to stdout; keep the real one for frames and send fd 1 to stderr.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    inp = sys.stdin.buffer
    try:
        from normconf.adapters.registry import OPS, load_spec
        adapter = load_spec(target)
        reason = adapter.availability()
        hello = {"unavailable": reason}
    except Exception as exc:  # report any start-up failure to the parent instead of dying silently
        adapter, hello = None, {"unavailable": f"{type(exc).__name__}: {exc}"}
    write_frame(out, encode(hello, {}))
    while (frame := _read_frame(inp)) is not None:
        try:
            op, kwargs = unpack_call(frame)
            if adapter is None or op not in OPS:
                raise RuntimeError(f"cannot run {op!r}: {hello['unavailable']}")
            reply = pack_reply(getattr(adapter, op)(**kwargs))
        except Unsupported as exc:
            reply = encode({"ok": False, "kind": "unsupported", "message": str(exc)}, {})
        except Exception as exc:
            last = traceback.extract_tb(exc.__traceback__)[-1]
            reply = encode({"ok": False, "kind": "error",
                            "message": f"{type(exc).__name__}: {exc} (at {last.filename}:{last.lineno})"}, {})
        write_frame(out, reply)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
