"""Run-time machinery shared by every stage: training and evaluation loops, checkpoint I/O,
distributed set-up, results files, feature visualisation and benchmarks. The model itself is in
`moco/`; the data readers in `dataset/` and `feeder/`; settings in `options/`."""
