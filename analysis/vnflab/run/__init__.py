"""Run: the lab run as a whole: ``vnflab run`` (ansible-runner and progress), the run lock, timing benchmarks."""
