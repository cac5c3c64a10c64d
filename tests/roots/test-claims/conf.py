project = "evaldemo-claims"
extensions = ["sphinx_evaldemo"]
evaldemo_workers = 1
