project = "evaldemo-trace"
copyright = "2026, the sphinx-evaldemo tests"
version = release = "1.0"
extensions = ["sphinx_evaldemo"]
evaldemo_workers = 1
evaldemo_details = "full"  # a page about the mechanism: every fact, the full per-layer table
