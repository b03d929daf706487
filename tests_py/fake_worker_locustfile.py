"""A Python stand-in for a Go zeno-worker, used only by tests_py/test_locust_masters.py.

It joins the master as a stock Locust worker (same Locust version as the
master), declares ZenoChatUser, and sends a fixed, known set of
"zeno_metrics" delta windows: three windows shortly after the test starts,
one malformed message, and a final window when the test stops (as the Go
worker does at quit). The data and the expected totals are in fake_worker_data.py.
"""

import gevent
from fake_worker_data import FINAL, MALFORMED, WINDOWS
from locust import User, constant, events, task
import locust.runners
from locust.runners import WorkerRunner

# Debian's python3-locust 2.12.1 reports an empty __version__, and a master
# rejects an empty client_ready version as a "pre 2.0 worker". Test-only fix.
if not locust.runners.__version__:
    locust.runners.__version__ = "2.12.1"


class ZenoChatUser(User):
    wait_time = constant(1)

    @task
    def idle(self):
        pass


_sent_final = False


@events.init.add_listener
def _init(environment, **_kw):
    if not isinstance(environment.runner, WorkerRunner):
        return

    def send_windows():
        for w in WINDOWS:
            gevent.sleep(0.2)
            environment.runner.send_message("zeno_metrics", w)
        environment.runner.send_message("zeno_metrics", MALFORMED)

    @environment.events.test_start.add_listener
    def _start(**_kw):
        gevent.spawn(send_windows)

    @environment.events.test_stop.add_listener
    def _stop(**_kw):
        global _sent_final
        if not _sent_final:
            _sent_final = True
            environment.runner.send_message("zeno_metrics", FINAL)
