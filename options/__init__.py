"""Command-line options and the table of per-experiment presets (docs/published-behaviour.md §4)."""
