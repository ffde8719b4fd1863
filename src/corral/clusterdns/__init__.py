"""The cluster's own DNS: names from the inventory, answered without I/O.

`zone` turns an inventory into names and addresses; `answer` turns a query into
a reply or says "not ours" (the transport in `corral.services.dns` forwards
those). Both are pure, so the wire server stays a few lines of glue.
"""
