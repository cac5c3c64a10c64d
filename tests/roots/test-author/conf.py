project = "evaldemo-author"
extensions = ["sphinx_evaldemo"]
evaldemo_workers = 1
evaldemo_seed = 3
