"""Small widget helpers shared by pages; each returns plain values."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.data.images import ImageError, LoadedImage, load_image_bytes, load_image_file
from core.i18n import N_, _
from ui.state import scan_active
from ui.tab_store import keep, relabelled, tab_store

SOURCES = (N_("Dataset"), N_("Upload"), N_("Camera"))  # values kept in the tab's store; shown translated


def image_picker_ui(key: str, sources: tuple[str, ...] = SOURCES) -> LoadedImage | None:
    """Let the student pick one image from the active dataset, an upload or the camera.

    Returns the loaded RGB image (with notes on what was converted), or None; a bad file shows a
    clear error in the page and returns None. `key` prefixes every widget key (e.g. "viz").
    """
    source = st.segmented_control(
        _("Image from"),
        sources,
        default=sources[0],
        format_func=_,
        key=relabelled(keep(f"{key}_source", options=[*sources, None]), sources, _),
    )
    try:
        if source == "Dataset":
            result = scan_active()
            if result is None or result.n_images == 0:
                st.info(_("No dataset yet: choose one on the Data page, or upload a photo."))
                return None
            classes = result.classes
            c1, c2 = st.columns([2, 1])
            label = c1.selectbox(_("Class"), classes, key=keep(f"{key}_class", options=classes))
            rows = result.items[result.items["label"] == label]
            n = c2.number_input(
                _("Image #"), 1, len(rows), 1, key=keep(f"{key}_idx", valid=lambda i: 1 <= i <= len(rows))
            )
            path = Path(rows.iloc[int(n) - 1]["path"])
            loaded = load_image_file(path)
        elif source == "Upload":
            upload = st.file_uploader(_("Upload a photo"), key=f"{key}_upload")
            loaded = kept_photo_ui(f"{key}_upload", upload)
        elif source == "Camera":
            shot = st.camera_input(_("Take a photo"), key=f"{key}_camera")
            loaded = kept_photo_ui(f"{key}_camera", shot, _("camera photo"))
        else:
            return None
        if loaded is None:
            return None
    except ImageError as err:
        st.error(str(err))
        return None
    for note in loaded.notes:
        st.caption(f"ℹ️ {note}")
    return loaded


def kept_photo_ui(name: str, upload, filename: str | None = None) -> LoadedImage | None:
    """The photo just uploaded (kept for this tab, size-capped), else the one kept earlier, else None.

    A file uploader is empty again after a page change or a reload; the photo kept in the tab's
    store (core/store/session_store.py: at most 10 MB, a few per tab, gone after a day unused) stands in.
    """
    store = tab_store()
    if upload is not None:
        data, shown_name = upload.getvalue(), filename or upload.name
        loaded = load_image_bytes(data, shown_name)  # raises ImageError before anything is kept
        marker = f"_{name}_kept"
        if st.session_state.get(marker) != loaded.digest:  # write once per new photo, not on every rerun
            st.session_state[marker] = loaded.digest if store.put_blob(name, data, shown_name) else None
        if st.session_state[marker] is None:
            st.caption(
                _("ℹ️ This photo cannot be kept after leaving the page (too large, or the server is short of space); "
                  "upload it again then.")
            )  # fmt: skip
        return loaded
    kept = store.get_blob(name)
    if kept is None:
        return None
    c1, c2 = st.columns([4, 1], vertical_alignment="center")
    c1.caption(
        _("Showing **{name}**, uploaded earlier in this tab. Upload another to replace it.").format(name=kept.filename)
    )
    c2.button(_("Forget it"), key=f"{name}_forget", on_click=store.drop_blob, args=(name,))
    try:
        return load_image_bytes(kept.data, kept.filename)
    except ImageError:
        store.drop_blob(name)
        return None
