"""Prediction: top-k classes with an honest "not sure", and novelty (is this photo like the training set?)."""
