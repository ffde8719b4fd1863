#!/bin/sh
# aria2c --on-bt-download-complete / --on-download-complete hook: the node has the verified image.
touch "$NODE_DONE"
