"""Start barrier for the simulated nodes: `barrier.py READY_FILE FIFO argv...`.

Touches READY_FILE, blocks opening FIFO for reading until the coordinator opens
it for writing (all nodes are released at once), then execs argv.
"""

import os
import sys

ready, fifo, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(ready, "w"):
    pass
with open(fifo, "rb"):
    pass
os.execvp(argv[0], argv)
