"""Command-line options and the table of per-experiment presets (SPEC §4)."""
