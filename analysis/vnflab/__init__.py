"""vnflab controller package: journal, stopping rule, statistics, tables, plots, report, CLI.

Importing the package is cheap on purpose: action plugins import ``vnflab.measure.journal`` and
``vnflab.measure.stopping`` on the controller and must not pay for pandas or matplotlib.
"""

__version__ = "0.1.0"
