extensions = ["sphinx_evaldemo"]
project = "articles"
exclude_patterns = ["_build"]
