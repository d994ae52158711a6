"""Small widget helpers shared by pages; each returns plain values."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.images import ImageError, LoadedImage, load_image_bytes, load_image_file
from ui.state import scan_active


def image_picker_ui(key: str, sources: tuple[str, ...] = ("Dataset", "Upload", "Camera")) -> LoadedImage | None:
    """Let the student pick one image from the active dataset, an upload or the camera.

    Returns the loaded RGB image (with notes on what was converted), or None; a bad file shows a
    clear error in the page and returns None. `key` prefixes every widget key (e.g. "viz").
    """
    source = st.segmented_control("Image from", sources, default=sources[0], key=f"{key}_source")
    try:
        if source == "Dataset":
            result = scan_active()
            if result is None or result.n_images == 0:
                st.info("No dataset yet: choose one on the Data page, or upload a photo.")
                return None
            classes = result.classes
            c1, c2 = st.columns([2, 1])
            label = c1.selectbox("Class", classes, key=f"{key}_class")
            rows = result.items[result.items["label"] == label]
            n = c2.number_input("Image #", 1, len(rows), 1, key=f"{key}_idx")
            path = Path(rows.iloc[int(n) - 1]["path"])
            loaded = load_image_file(path)
        elif source == "Upload":
            upload = st.file_uploader("Upload a photo", key=f"{key}_upload")
            if upload is None:
                return None
            loaded = load_image_bytes(upload.getvalue(), upload.name)
        elif source == "Camera":
            shot = st.camera_input("Take a photo", key=f"{key}_camera")
            if shot is None:
                return None
            loaded = load_image_bytes(shot.getvalue(), "camera photo")
        else:
            return None
    except ImageError as err:
        st.error(str(err))
        return None
    for note in loaded.notes:
        st.caption(f"ℹ️ {note}")
    return loaded
