project = "evaldemo-dask"
extensions = ["sphinx_evaldemo"]
evaldemo_workers = 1
evaldemo_timeout = 60
