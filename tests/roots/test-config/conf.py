project = "evaldemo-config"
extensions = ["sphinx_evaldemo"]
# every value below is wrong in a way Sphinx's own type check lets through
evaldemo_execute = "sometimes"
evaldemo_timeout = 0
evaldemo_seed = -1
evaldemo_max_output = 50
evaldemo_workers = 0
