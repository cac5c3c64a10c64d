project = "evaldemo-progress"
copyright = "2026, the sphinx-evaldemo tests"
version = release = "1.0"
extensions = ["sphinx_evaldemo"]
evaldemo_workers = 1
