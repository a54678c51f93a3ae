"""Capacity: open-loop arrivals, sweeps of users or rates, per-step figures and their output."""
