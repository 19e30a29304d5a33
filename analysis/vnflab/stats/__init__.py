"""Stats: a run directory loaded into frames, and the statistics on it (summaries, tests, comparisons, overhead,
rankings)."""
