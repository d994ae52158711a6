"""Training: learners, one-cycle training, the LR finder, cached features, curves, interpretation, the lesson plan and its notebook."""
