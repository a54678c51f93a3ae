"""Locust web UI wiring: the start form, the TFS tabs, the HTML report section and its charts."""
