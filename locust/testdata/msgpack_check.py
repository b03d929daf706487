"""Cross-checks the Go codec with the installed Locust's own rpc.protocol.

decode DIR: unserialize every DIR/*.bin the Go test wrote, print a JSON
description of each (types as Python sees them).
encode DIR: serialize master->worker messages as the master would, into DIR.
"""
import json
import os
import sys

from locust.rpc.protocol import Message


def describe(v):
    if isinstance(v, dict):
        return {"dict": {f"{type(k).__name__}:{k}": describe(x) for k, x in v.items()}}
    if isinstance(v, (list, tuple)):
        return {"list": [describe(x) for x in v]}
    return f"{type(v).__name__}:{v}"


def main():
    mode, d = sys.argv[1], sys.argv[2]
    if mode == "decode":
        out = {}
        for name in sorted(os.listdir(d)):
            if name.endswith(".bin"):
                with open(os.path.join(d, name), "rb") as f:
                    m = Message.unserialize(f.read())
                out[name[:-4]] = {"type": describe(m.type), "node_id": describe(m.node_id), "data": describe(m.data)}
        print(json.dumps(out))
    else:
        msgs = {
            "ack": Message("ack", {"index": 3}, "n1"),
            "ack_old": Message("ack", None, "n1"),
            "spawn": Message("spawn", {"timestamp": 1796300771.25, "user_classes_count": {"ZenoChatUser": 7, "Other": 0},
                                       "host": "http://127.0.0.1:8000", "stop_timeout": 2.5,
                                       "parsed_options": {"zeno_quick_weight": 30, "zeno_wait_min": 0.5, "tags": None,
                                                          "big": 2**40, "neg": -5, "flag": True, "lst": ["a", 1]}}, "n1"),
            "spawn_nil_timeout": Message("spawn", {"timestamp": 1.0, "user_classes_count": {"A": 1}, "host": None,
                                                   "stop_timeout": None, "parsed_options": {}}, "n1"),
            "stop": Message("stop", None, "n1"),
            "quit": Message("quit", None, "n1"),
            "heartbeat": Message("heartbeat", None, "n1"),
            "reconnect": Message("reconnect", None, "n1"),
            "spawning_complete": Message("spawning_complete", {"user_count": 10}, "n1"),
            "custom": Message("zeno_hello", {"x": [1, 2.5, "s"]}, "n1"),
        }
        for name, m in msgs.items():
            with open(os.path.join(d, name + ".bin"), "wb") as f:
                f.write(m.serialize())


main()
