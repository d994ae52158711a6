"""The networks: architectures and model loading, devices and thread ceilings, inference and precision, optimizers, LR schedules."""
