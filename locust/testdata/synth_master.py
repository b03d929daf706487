# Master-side locustfile for the runtime's integration tests: the classes only
# name the Go users and their weights; all load comes from Go workers.
from locust import User, task


class SynthUser(User):
    weight = 1

    @task
    def go_task(self):
        pass
