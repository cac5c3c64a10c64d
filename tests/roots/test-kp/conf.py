# Posts written the Knowledge Repo's way, built with -W (no warning may appear).
extensions = ["sphinx_evaldemo"]
project = "kb"
exclude_patterns = ["_build"]
html_baseurl = "https://kb.example.org/"
