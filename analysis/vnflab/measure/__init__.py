"""Measure: the controller side of a run, from the action plugins' loop to the run directory it fills.

The batch loop, journal, sample records and their schema, stopping rule, budgets, resume, run directory and
manifest. No pandas or matplotlib: the action plugins import it for every task (tests/unit/test_package_layout.py).
"""
