# Three weighted classes for the dispatch test (3/5/2).
from locust import User, task


class UserA(User):
    weight = 3

    @task
    def go_task(self):
        pass


class UserB(User):
    weight = 5

    @task
    def go_task(self):
        pass


class UserC(User):
    weight = 2

    @task
    def go_task(self):
        pass
