"""A TfsUser whose answer check or call raises an unexpected exception on every Nth request (for
tests/test_odd_answers.py): each such request must end as one failed request event, never a lost request."""

import os

from tfs_user.user import OptionsTfsUser

EVERY = int(os.environ.get("ODD_EVERY", "3"))
WHERE = os.environ.get("ODD_WHERE", "check")


class OddUser(OptionsTfsUser):
    def on_start(self):
        super().on_start()
        calls = [0]
        call, check = self._call, self._check_response

        def odd_call(*args, **kwargs):
            calls[0] += 1
            if WHERE == "call" and calls[0] % EVERY == 0:
                raise KeyError("odd call")
            return call(*args, **kwargs)

        def odd_check(response, *args):
            if WHERE == "check" and calls[0] % EVERY == 0:
                raise TypeError("odd answer")
            return check(response, *args)

        self._call, self._check_response = odd_call, odd_check
