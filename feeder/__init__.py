"""Data feeders and skeleton augmentations for pretraining and downstream evaluation."""
