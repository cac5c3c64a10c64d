project = "evaldemo-scripts"
extensions = ["sphinx_evaldemo"]
evaldemo_workers = 1
latex_documents = [("index", "scripts.tex", "Scripts", "the tests", "howto")]
man_pages = [("index", "scripts", "Scripts", ["the tests"], 1)]
