"""Images and datasets: reading photos, labels from file names, dataset folders, the Pets download, augmentation, exploration."""
