"""Run folders: each run claims its output folder for as long as it runs, and never writes over another
run's files.

`open_run_folder` claims the folder (a second run into it is refused, naming the holder), then looks at
what the folder holds: a fresh run (no resume) into a folder that holds a run is refused, saying what is
there and which flag continues it (`--resume`) or starts afresh (`--fresh`, which moves the old files to
a subfolder `previous-<date-time>/`, never deleting them); a resumed run into a folder that holds a
different run (its settings.json differs: this catches a checkpoint without settings of its own, whose
settings engine.pretrain.read_resume and engine.evaluate.read_probe_resume cannot compare) or from a
checkpoint outside a folder that holds a run (two runs' files would mix) is refused the same way, as is
a folder whose run files stay but one of them (not tensorboard/) is a symbolic link (the run would write
over its target). A
folder holding processed data, or a run of the other family (pretraining, evaluation), is refused even
with `--fresh`, which would move its files away.
"""

import os

from dataset.files import claim_folder, folder_settings, keep_aside, run_family, run_files
from dataset.processed import data_arrays
from options.settings import differences


class RunFolderError(RuntimeError):
    """An output folder holds a run, or data, that this command would overwrite."""


def _what(recorded):
    """What the run files of a folder belong to, from its settings.json (a dict, or None)."""
    family = run_family(recorded, ())
    if family == "evaluation":
        return "a kNN evaluation run" if recorded["stage"] == "knn" else f"a {recorded['stage']} classification run"
    return {"data": "a converter's processed data", "pretraining": "a pretraining run"}.get(
        family, "the files of a run"
    )


def open_run_folder(folder, kind, settings, may_change, resume="", fresh=False, resume_file=None, reads=None):
    """Claim `folder` for a run of `kind` (e.g. 'pretraining') with settings `settings` (a dict; those in
    `may_change` may differ on resume) and make sure it holds nothing this run would overwrite (see the
    module docstring). Returns the Claim.

    `resume_file` is the checkpoint that would continue the run found there, named in the error when it
    exists (None: such runs cannot be continued); `reads`, a file the run reads (the checkpoint an
    evaluation evaluates), which --fresh must not move aside with the earlier run's files. Raises
    dataset.files.FolderInUseError naming the holder when another run holds the folder, and
    RunFolderError naming the folder, what it holds and the flags that continue or restart it.
    """
    data = data_arrays(folder)
    if data:
        raise RunFolderError(
            f"{folder} holds processed data ({', '.join(data)}); a {kind} run does not go there: choose "
            "another output folder (--checkpoint-path)"
        )
    claim = claim_folder(folder, kind)
    files = run_files(folder)
    if not files:
        return claim
    recorded = folder_settings(folder)
    found = run_family(recorded, files)
    if found not in (None, "pretraining" if kind == "pretraining" else "evaluation"):
        claim.release()  # --fresh would move another kind's files away (the checkpoint evaluated, the data)
        raise RunFolderError(
            f"{folder} holds {_what(recorded)} ({', '.join(files)}); a {kind} run does not go there, not even with "
            f"--fresh: choose another output folder (--checkpoint-path)"
        )
    problem = None
    differ = "; ".join((differences(recorded, settings, may_change) if recorded is not None else [])[:3])
    if not resume:
        problem = f"{folder} holds {_what(recorded)} ({', '.join(files)})"
        if differ:  # e.g. the same command after its checkpoint was trained further
            problem += f", made with other settings than this run ({differ})"
        if resume_file and os.path.isfile(resume_file):
            problem += f"; continue it with --resume {resume_file}"
    elif os.path.realpath(os.path.dirname(os.path.abspath(resume))) != os.path.realpath(folder):
        problem = f"{folder} holds a {kind} run ({', '.join(files)}) and --resume {resume} is not one of its files"
    elif differ:
        problem = f"{folder} holds another {kind} run than --resume {resume} ({differ})"
    if problem is not None:
        if not fresh:
            claim.release()
            raise RunFolderError(
                f"{problem}; start afresh with --fresh (its files are moved to "
                f"{os.path.join(folder, 'previous-<date-time>')}/, nothing is deleted), or keep it and choose "
                "another output folder (--checkpoint-path)"
            )
        moved = {os.path.realpath(os.path.join(folder, name)) for name in files}
        if reads and os.path.realpath(reads) in moved:  # by its name in the folder, or through a link
            claim.release()
            raise RunFolderError(
                f"--fresh would move {reads}, which this run reads, out of {folder} with the earlier run's files: "
                "copy it elsewhere first, or choose another output folder (--checkpoint-path)"
            )
        aside = keep_aside(folder, files, "previous")
        print(f"--fresh: the files of the earlier run in {folder} were moved to {aside}/", flush=True)
        return claim
    # a file the run writes, reached through a link, would be written over the link's target (tensorboard/
    # is a folder the run adds event files to)
    linked = [name for name in files if name != "tensorboard" and os.path.islink(os.path.join(folder, name))]
    if linked:
        claim.release()
        path = os.path.join(folder, linked[0])
        raise RunFolderError(
            f"{path} is a symbolic link (to {os.readlink(path)}), which this run would write over: replace the "
            "link by a copy of the file, or give this run another folder (--checkpoint-path)"
        )
    return claim
