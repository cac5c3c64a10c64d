project = "evaldemo-devices"
extensions = ["sphinx_evaldemo"]
evaldemo_workers = 1
