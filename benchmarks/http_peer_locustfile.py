"""Locust's own HTTP users posting one prebuilt body (``benchmarks/http_cost.py``'s baseline clients):
``PrebuiltBody`` (FastHttpUser: geventhttpclient) and ``PrebuiltBodyRequests`` (HttpUser: requests).

``HTTP_PEER_BODY`` (file), ``HTTP_PEER_PATH`` and ``HTTP_PEER_HEADERS`` (JSON) come from the environment.
"""

import json
import os

from locust import FastHttpUser, HttpUser, constant, task

BODY = open(os.environ["HTTP_PEER_BODY"], "rb").read()
PATH = os.environ["HTTP_PEER_PATH"]
HEADERS = json.loads(os.environ["HTTP_PEER_HEADERS"])


class PrebuiltBody(FastHttpUser):
    wait_time = constant(0)

    @task
    def infer(self):
        self.client.post(PATH, data=BODY, headers=HEADERS, name="ModelInfer")


class PrebuiltBodyRequests(HttpUser):
    wait_time = constant(0)

    @task
    def infer(self):
        self.client.post(PATH, data=BODY, headers=HEADERS, name="ModelInfer")
