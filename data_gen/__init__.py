"""Raw skeleton datasets to processed folders (docs/published-behaviour.md §1.3), and synthetic raw data.

- ``ntu_gendata.py`` / ``pku_gendata.py``: the NTU RGB+D and PKU-MMD II converters (layout ``ntu25``).
- ``ucla_gendata.py``: NW-UCLA ``all_sqe`` JSON files -> one ``kinect20`` folder (cross-view split).
- ``msr_gendata.py``: MSR-Action3D ``*_skeleton3D.txt`` files -> one ``kinect20`` folder (cross-subject split).
- ``pyskl_gendata.py``: a pyskl / MMAction2 annotation pickle -> one folder in any layout.
  (All run as scripts or as ``python -m``.)
- ``ntu_reader.py``: NTU file names, split rules, parsing with line-numbered errors, body selection.
- ``normalize.py``: the normalisation (§1.4) through a layout's joints, vectorised across samples, plus
  the literal per-joint loop.
- ``writer.py``: the shared pipeline (parallel parsing, chunked normalisation, atomic chunked writes,
  the folder's ``layout.json``).
- ``missing.py``: joints a recording lacks (pose-estimator misses, zeros, NaN) filled from other frames.
- ``synthetic.py``: NTU/PKU/NW-UCLA/MSR-Action3D raw files in the real formats and a pose estimator's
  COCO-17 pixels in a pyskl pickle (``python -m data_gen.synthetic``).
- ``bench.py``: speed and peak memory of the converter (``python -m data_gen.bench``).
"""
