"""The data wing: corpora on disk, suites, the results store, run results and the environment record."""
