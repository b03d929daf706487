"""Smoke tests: the Locust of the interpreter running the tests loads
locustfile_master.py and the zeno_metrics plugin works in a real master.

Run once per master version, from the repository root:
    /tmp/setup/venv/bin/python -m unittest discover -s tests_py -v   # Locust 2.47.0
    /usr/bin/python3 -m unittest discover -s tests_py -v             # Debian Locust 2.12.1

Everything binds to 127.0.0.1 on free ports; every wait has a deadline and
every process started here is killed by its own pid in tearDown.
A stock Python Locust worker running tests_py/fake_worker_locustfile.py
stands in for the Go zeno-worker and sends known zeno_metrics windows.
"""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LOCUSTFILE = os.path.join(ROOT, "locustfile_master.py")
FAKE_WORKER = os.path.join(HERE, "fake_worker_locustfile.py")
LOCUST = [sys.executable, "-m", "locust"]
ZENO_DESTS = [
    "zeno_quick_weight", "zeno_analysis_weight", "zeno_conversation_weight", "zeno_wait_min", "zeno_wait_max",
    "zeno_turns_min", "zeno_turns_max", "zeno_think_min", "zeno_think_max", "zeno_fail_on_nonfatal",
]  # fmt: skip

sys.path.insert(0, HERE)
from fake_worker_data import EXPECTED  # noqa: E402  (plain data, no Locust import)


def locust_version():
    out = subprocess.run(
        [sys.executable, "-c", "import locust.runners as r; print(r.__version__ or '2.12.1-debian')"],
        capture_output=True, text=True, timeout=60, cwd=tempfile.gettempdir(),
    )  # fmt: skip
    return out.stdout.strip()


VERSION = locust_version()
IS_MODERN = not VERSION.startswith("2.12")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args, timeout=60):
    return subprocess.run(LOCUST + args, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


class LoadTest(unittest.TestCase):
    """Both versions must load the file and accept the --zeno-* options."""

    def test_help_exits_0(self):
        r = run(["-f", LOCUSTFILE, "--help"])
        self.assertEqual(r.returncode, 0, r.stderr)
        if not IS_MODERN:
            # 2.12.1 imports the locustfile before printing --help
            for flag in ("--zeno-quick-weight", "--zeno-fail-on-nonfatal", "--zeno-think-max"):
                self.assertIn(flag, r.stdout)
        # 2.47 prints --help before importing any locustfile (argument_parser.parse_locustfile_option),
        # so custom options cannot appear there; test_parser_has_options covers them.

    def test_parser_has_options(self):
        """The help text / web UI form Locust builds once the locustfile is imported."""
        code = f"""
import json, sys
sys.path.insert(0, {ROOT!r})
import locustfile_master
from locust import argument_parser as ap
parser = ap.get_parser()
ns = parser.parse_args(["-f", "x.py"])
ns2 = parser.parse_args(["-f", "x.py", "--zeno-fail-on-nonfatal", "false", "--zeno-wait-min", "1.5",
                         "--zeno-quick-weight", "7"])
print(json.dumps({{
    "help": parser.format_help(),
    "defaults": {{k: [getattr(ns, k), type(getattr(ns, k)).__name__] for k in {ZENO_DESTS!r}}},
    "parsed": [ns2.zeno_fail_on_nonfatal, ns2.zeno_wait_min, ns2.zeno_quick_weight],
    "ui": sorted(k for k in ap.ui_extra_args_dict(["-f", "x.py"]) if k.startswith("zeno_")),
}}))
"""
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
        self.assertEqual(r.returncode, 0, r.stderr)
        d = json.loads(r.stdout.strip().splitlines()[-1])
        for flag in ("--zeno-quick-weight", "--zeno-wait-min", "--zeno-fail-on-nonfatal"):
            self.assertIn(flag, d["help"])
        self.assertEqual(
            d["defaults"],
            {
                "zeno_quick_weight": [30, "int"],
                "zeno_analysis_weight": [50, "int"],
                "zeno_conversation_weight": [20, "int"],
                "zeno_wait_min": [5.0, "float"],
                "zeno_wait_max": [15.0, "float"],
                "zeno_turns_min": [3, "int"],
                "zeno_turns_max": [6, "int"],
                "zeno_think_min": [2.0, "float"],
                "zeno_think_max": [8.0, "float"],
                "zeno_fail_on_nonfatal": [True, "bool"],
            },
        )
        self.assertEqual(d["parsed"], [False, 1.5, 7])
        self.assertEqual(d["ui"], sorted(ZENO_DESTS))  # all shown in the web UI form

    def test_cli_flags_and_list(self):
        r = run(["-f", LOCUSTFILE, "--zeno-quick-weight", "7", "--zeno-fail-on-nonfatal", "false", "--list"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("ZenoChatUser", r.stdout)
        r = run(["-f", LOCUSTFILE, "--zeno-fail-on-nonfatal", "maybe", "--list"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("expected true or false", r.stderr)


class MasterTest(unittest.TestCase):
    """A real master (this interpreter's Locust) + a Python stand-in worker."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.procs = []

    def tearDown(self):
        for p, *_ in self.procs:
            if p.poll() is None:
                p.kill()  # only processes started by this test, by pid
                p.wait(10)
        for _, out, err in self.procs:
            out.close()
            err.close()
        self.tmp.cleanup()

    def start(self, name, args):
        out = open(os.path.join(self.dir, f"{name}.out"), "w+")
        err = open(os.path.join(self.dir, f"{name}.err"), "w+")
        p = subprocess.Popen(LOCUST + args, stdout=out, stderr=err, cwd=ROOT, stdin=subprocess.DEVNULL)
        self.procs.append((p, out, err))
        return p

    def output(self, name):
        text = ""
        for ext in ("out", "err"):
            with open(os.path.join(self.dir, f"{name}.{ext}")) as fh:
                text += fh.read()
        return text

    def start_worker(self, master_port):
        return self.start(
            "worker", ["-f", FAKE_WORKER, "--worker", "--master-host", "127.0.0.1", "--master-port", str(master_port)]
        )

    def check_snapshot_or_csv(self, by_name, quota, conv, s429):
        self.assertEqual(by_name["quick_query"], EXPECTED["quick_query"])
        self.assertEqual(by_name["analysis_query"], EXPECTED["analysis_query"])
        self.assertEqual(quota, EXPECTED["quota"])
        self.assertEqual(conv, (EXPECTED["started"], EXPECTED["completed"], EXPECTED["continuity_failures"]))
        self.assertEqual(s429, EXPECTED["status_429"])

    def test_headless_csv_html_summary(self):
        mport = free_port()
        os.makedirs(os.path.join(self.dir, "reports"))  # 2.12.1's own CSV writer does not create directories
        prefix = os.path.join(self.dir, "reports", "run")
        html = os.path.join(self.dir, "reports", "report_{u}.html" if IS_MODERN else "report.html")
        master = self.start(
            "master",
            ["-f", LOCUSTFILE, "--master", "--headless", "-u", "1", "-r", "1", "-t", "3s", "--expect-workers", "1",
             "--master-bind-host", "127.0.0.1", "--master-bind-port", str(mport), "--csv", prefix, "--html", html],
        )  # fmt: skip
        time.sleep(0.5)
        worker = self.start_worker(mport)
        try:
            master.wait(45)
        except subprocess.TimeoutExpired:
            self.fail("master did not finish:\n" + self.output("master")[-3000:])
        try:
            worker.wait(20)  # the master's quit message stops the worker
        except subprocess.TimeoutExpired:
            self.fail("worker did not quit:\n" + self.output("worker")[-3000:] + self.output("master")[-3000:])
        log = self.output("master")
        self.assertEqual(master.returncode, 0, log[-3000:])
        self.assertEqual(log.count("Zeno metrics ("), 1, log[-3000:])  # summary printed exactly once
        self.assertIn("zk_test_aaaa", log)
        self.assertIn("Conversations: started 4, completed 3, continuity failures 1; turns p50 3, max 6", log)

        with open(prefix + "_zeno.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        by = {(r["Type"], r["Name"]): r for r in rows}
        self.check_snapshot_or_csv(
            {n: int(by[("request", n)]["Count"]) for n in ("quick_query", "analysis_query")},
            {r["Name"]: (int(r["Value"]), int(r["Limit"])) for r in rows if r["Type"] == "quota"},
            tuple(int(by[("conversations", k)]["Value"]) for k in ("started", "completed", "continuity_failures")),
            int(by[("http", "status_429")]["Value"]),
        )
        # the final window (sent by the worker at quit) is included
        self.assertEqual(int(by[("request", "conversation_start")]["Count"]), EXPECTED["conversation_start"])
        self.assertEqual(int(by[("conversations", "turns_max")]["Value"]), EXPECTED["turns_max"])
        self.assertEqual(by[("request", "quick_query")]["TTFB 50%"], "120")
        self.assertEqual(by[("request", "analysis_query")]["First Line 99%"], "2200")
        self.assertEqual(by[("meta", "malformed")]["Value"], "1")

        zeno_html = os.path.join(self.dir, "reports", "report_1_zeno.html" if IS_MODERN else "report_zeno.html")
        self.assertTrue(os.path.exists(zeno_html), os.listdir(os.path.dirname(zeno_html)))
        with open(zeno_html) as fh:
            page = fh.read()
        self.assertIn("analysis_query", page)
        self.assertIn("zk_test_bbbb", page)

    def http(self, port, path, data=None):
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", data=body, timeout=10) as r:
            return r.read().decode()

    def wait_http(self, port, path, predicate, timeout=30):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                last = self.http(port, path)
                if predicate(last):
                    return last
            except OSError as e:
                last = repr(e)
            time.sleep(0.3)
        self.fail(f"timeout waiting for {path}: {last!s:.500}\n{self.output('master')[-3000:]}")

    def test_web_ui(self):
        mport, wport = free_port(), free_port()
        master = self.start(
            "master",
            ["-f", LOCUSTFILE, "--master", "--web-host", "127.0.0.1", "--web-port", str(wport),
             "--master-bind-host", "127.0.0.1", "--master-bind-port", str(mport)],
        )  # fmt: skip
        self.wait_http(wport, "/zeno/stats", lambda b: json.loads(b)["messages"] == 0)
        self.start_worker(mport)
        self.wait_http(wport, "/stats/requests", lambda b: len(json.loads(b).get("workers", [])) >= 1)
        self.assertIn('"success": true', self.http(wport, "/swarm", {"user_count": 1, "spawn_rate": 1}).replace(
            '"success":true', '"success": true'))  # fmt: skip
        body = self.wait_http(wport, "/zeno/stats", lambda b: json.loads(b)["messages"] >= 4)
        snap = json.loads(body)
        self.assertEqual(
            set(snap), {"v", "messages", "workers", "malformed", "dropped", "last_update", "requests", "total",
                        "quota", "conversations", "status_429"},
        )  # fmt: skip
        q = snap["requests"]["quick_query"]
        self.assertEqual(q["ttfb"]["p50"], 120)
        self.assertEqual(q["first_line"]["p99"], 300)
        self.assertEqual(q["avg_bytes"], 100)
        self.assertEqual(snap["quota"]["zk_test_aaaa"], {"used": 9, "quota": 100})
        self.assertEqual(snap["malformed"], 1)

        csv_text = self.http(wport, "/zeno/csv")
        self.assertTrue(csv_text.startswith("Type,Name,Count"))

        log = self.output("master")
        if IS_MODERN:
            index = self.http(wport, "/")
            self.assertIn('"extended_tabs"', index)
            self.assertIn('"title": "Zeno"', index.replace('"title":"Zeno"', '"title": "Zeno"'))
            stats = self.wait_http(wport, "/stats/requests", lambda b: "extended_stats" in b)
            ext = json.loads(stats)["extended_stats"]
            self.assertEqual(ext[0]["key"], "zeno")
            rows = {r["metric"]: r for r in ext[0]["data"]}
            self.assertEqual(rows["quick_query"]["ttfb_p50"], 120)
            self.assertEqual(rows["quota zk_test_aaaa"]["value"], "9 / 100")
            self.assertNotIn("skipping the Zeno tab", log)
        else:
            self.assertEqual(log.count("skipping the Zeno tab"), 1, log[-2000:])

        master.send_signal(signal.SIGTERM)  # Locust's SIGTERM handler runs the normal shutdown
        try:
            master.wait(30)
        except subprocess.TimeoutExpired:
            self.fail("master ignored SIGTERM:\n" + self.output("master")[-3000:])
        log = self.output("master")
        self.assertEqual(log.count("Zeno metrics ("), 1, log[-3000:])
        self.assertNotIn("Traceback", log)


if __name__ == "__main__":
    unittest.main()
