#!/bin/sh
# The lean install of tfs-locust (no TensorFlow) into the Python environment that runs this script:
# the dependencies of requirements-lean.txt, then the package itself for the `tfs-locust` command,
# then one check that TF Serving's messages compile. deploy/Dockerfile runs it to build the image;
# tests/test_deploy.py runs it in a fresh virtualenv, then the demo job.
#   usage: sh deploy/install.sh          (from anywhere: it installs the clone holding this script)
# Give pip options by environment (PIP_NO_CACHE_DIR=1, PIP_INDEX_URL=...): pip reads PIP_* itself.
set -eu
cd "$(dirname "$0")/.."
python -m pip install -r requirements-lean.txt
python -m pip install --no-deps .
# fails here, not at the first run, if grpcio-tools cannot compile the messages
python -c "from tfs_user.protocols.tfs import messages; print('tfs-locust: TF Serving messages', messages.SOURCE)"
