"""Inside the network: activations, filters, Grad-CAM, occlusion, top patches, projection, receptive fields."""
