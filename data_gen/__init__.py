"""Raw skeleton datasets to the processed layout (docs/published-behaviour.md §1.3), and synthetic raw data.

- ``ntu_gendata.py`` / ``pku_gendata.py``: the converters (run as scripts or as ``python -m``).
- ``ntu_reader.py``: NTU file names, split rules, parsing with line-numbered errors, body selection.
- ``normalize.py``: the normalisation (§1.4), vectorised across samples, plus the literal per-joint loop.
- ``writer.py``: the shared pipeline (parallel parsing, chunked normalisation, atomic chunked writes).
- ``synthetic.py``: NTU/PKU raw files in the real formats (``python -m data_gen.synthetic``).
- ``bench.py``: speed and peak memory of the converter (``python -m data_gen.bench``).
"""
