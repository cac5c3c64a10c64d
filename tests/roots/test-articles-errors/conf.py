extensions = ["sphinx_evaldemo"]
project = "articles-errors"
exclude_patterns = ["_build"]
