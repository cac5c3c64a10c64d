project = "evaldemo-limits"
extensions = ["sphinx_evaldemo"]
evaldemo_workers = 1
evaldemo_max_output = 500
evaldemo_memory_limit = 512
