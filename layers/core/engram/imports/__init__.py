"""`engram import`: files of other systems read as the adds (or export records) Engram's API
takes. Each reader is pure: a file in, batches out; cli.py sends them."""
