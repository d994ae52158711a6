"""Before class: prepare the data folder, pack it into a bundle, import it (`python -m core.prep`)."""
