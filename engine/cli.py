"""The one error policy of every command: a usage error exits with status 2 before any work (argparse,
options/); anything else the code anticipates — bad data, a bad checkpoint, an output that cannot be
written, a folder in use, a full disk, a diverging loss — exits with status 1 and one line naming the
file and what was wrong, no traceback. Only a bug shows a traceback."""

import logging
import os
import re
import sys

from dataset.files import FolderInUseError
from dataset.layouts import LayoutError
from dataset.processed import ProcessedDataError
from engine.checkpoint import CheckpointError
from engine.distributed import PeerStoppedError
from engine.runfolder import RunFolderError
from engine.runtime import RunError

# OSError covers unwritable outputs (read-only file systems, missing permissions) and NoSpaceError.
ANTICIPATED = (
    ProcessedDataError,
    LayoutError,
    CheckpointError,
    FolderInUseError,
    RunFolderError,
    PeerStoppedError,
    OSError,
)


# How gloo and NCCL report a peer that has gone (killed, or stopped by its own error).
PEER_LOST = re.compile(r"Connection closed by peer|Connection reset by peer|[Bb]roken pipe|NCCL|[Gg]loo")


def main_guard(prog, fn, *args):
    """Call fn(*args); an anticipated error prints `prog: error: <message>` and returns exit status 1."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        fn(*args)
    except (*ANTICIPATED, RunError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except RuntimeError as exc:  # a collective whose peer went away: that peer said why
        if int(os.environ.get("WORLD_SIZE", "1")) < 2 or not PEER_LOST.search(str(exc)):
            raise
        print(f"{prog}: error: another process of this run stopped ({str(exc).splitlines()[0][:200]})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C: every file is written whole or not at all, so one line is enough
        print(
            f"{prog}: interrupted; the files written so far are whole (a run folder says how to go on)", file=sys.stderr
        )
        return 130
    return 0
