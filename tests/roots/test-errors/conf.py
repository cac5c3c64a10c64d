extensions = ["sphinx_evaldemo"]
evaldemo_workers = 2
evaldemo_max_output = 1000
