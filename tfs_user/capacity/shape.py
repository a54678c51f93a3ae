"""Locust ``LoadTestShape`` for a users sweep (``--sweep users:...``): the users of each step in turn."""

from locust import LoadTestShape

from tfs_user.capacity.plans import step_at


class SweepShape(LoadTestShape):
    """Locust load shape for a users sweep: ``users`` of step i during step i, all started at once.

    ``steps`` is a ``plan(...)``; ``stop()`` ends the sweep at the end of the
    current tick (the next ``tick()`` returns None, so Locust stops the test).
    """

    abstract = True
    steps: list = []
    spawn_rate: float = 0.0
    """Users started per second when the user count changes; 0 = 10 x the step's users (0.1 s), at most 100
    (Locust warns above 100/s)."""

    def __init__(self):
        super().__init__()
        self.stopped = False

    def stop(self):
        self.stopped = True

    def current_step(self):
        """The running Step (None after the last one or after ``stop()``)."""
        if self.stopped:
            return None
        return step_at(self.steps, self.get_run_time())[0]

    def tick(self):
        step = self.current_step()
        if step is None:
            return None
        return step.users, self.spawn_rate or min(max(float(step.users), 1.0) * 10.0, 100.0)
