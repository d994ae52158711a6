"""The Data page's sources, one `*_ui()` per tab: Oxford-IIIT Pet, a server folder, an uploaded .zip, your own classes.

Each makes its choice the active dataset (`activate`) and says so once (`chosen_ui`).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.data import archives, pets
from core.data.datasets import MIN_IMAGES_PER_CLASS, DatasetError, DatasetSpec, folder_spec
from core.data.images import ImageError
from core.i18n import _, listed, n_, num, sentences
from core.quotas import QuotaError
from core.settings import FolderRefused, data_dir, open_allowed, uploads_dir
from core.storage import stable_hash
from core.teach.classroom import own_classes_privacy_note, published_classes
from core.teach.roster import markdown_safe
from ui.auth import identity, own_classes_store, teacher_only
from ui.notices import Level, notices_ui, notify
from ui.state import OWN_CLASSES_NAME, active_dataset, class_dataset, set_active_dataset, shown_name
from ui.tab_store import forget, keep, recall, relabelled, remember

CHOSEN = "data_chosen"  # notice place (ui.notices): which dataset was just chosen, as a toast
OWN_ADD = "data_own_add"  # notice place: the answer to Add class
OWN_PHOTOS = "data_own_photos"  # notice place: what Add these photos did
ZIP_SKIPPED = "data_zip_skipped"  # files the last zip left out, listed under the upload


def activate(spec: DatasetSpec, message: str) -> None:
    """Make spec the active dataset and forget labelling widgets of the previous one."""
    set_active_dataset(spec)
    notify(CHOSEN, message, Level.TOAST)
    st.rerun()


def chosen_ui() -> None:
    """The toast saying which dataset was just chosen (once)."""
    notices_ui(CHOSEN)


def sources_ui(base: Path) -> None:
    """One tab per source (and in class mode the class's datasets), then which dataset was just chosen."""
    in_class = identity().class_mode
    tabs = st.tabs(
        ["🐾 Oxford-IIIT Pet", _("📁 Local folder"), _("🗜️ Upload a .zip"), _("📸 Your own classes")]
        + ([_("🏫 Class datasets")] if in_class else [])
    )
    with tabs[0]:
        pets_source_ui(base)
    with tabs[1]:
        folder_source_ui(base)
    with tabs[2]:
        zip_source_ui(base)
    with tabs[3]:
        own_classes_ui()
    if in_class:
        with tabs[4]:
            class_sources_ui()
    chosen_ui()


def pets_source_ui(base: Path) -> None:
    """Oxford-IIIT Pet: use it when present, else download it (or a mirror) or use a local copy."""
    found = pets.find_pets(base)
    if found:
        st.success(_("Oxford-IIIT Pet is in the data folder."))
        if st.button(_("Use Oxford-IIIT Pet"), key="data_use_pets"):
            activate(pets.pets_spec(found), _("Now using Oxford-IIIT Pet."))
        return
    st.markdown(
        _(
            "Downloads the archive (~800 MB) with fastai's `untar_data(URLs.PETS)` into the data folder, "
            "once. On a slow classroom network, point the mirror field at a local copy, or use a file you "
            "already have."
        )
    )
    mirror = st.text_input(_("Archive URL (change it to use a mirror)"), value=pets.pets_url(), key="data_pets_url")
    if st.button(_("⬇️ Download Oxford-IIIT Pet"), key="data_download") and teacher_only("download_dataset"):
        bar = st.progress(0.0, text=_("Connecting…"))

        def report(done: int, total: int | None) -> None:
            if total:
                bar.progress(min(1.0, done / total), text=f"{num(done / 1e6, 0)} / {num(total / 1e6, 0)} MB")
            else:
                bar.progress(0.0, text=f"{num(done / 1e6, 0)} MB")

        try:
            with st.spinner(_("Downloading and extracting…")):
                images = pets.download_pets(base, mirror.strip() or None, progress=report)
        except DatasetError as err:
            bar.empty()
            st.error(str(err))
        else:
            activate(pets.pets_spec(images), _("Oxford-IIIT Pet downloaded and extracted."))
    with st.expander(_("Use a local copy (already downloaded archive or extracted folder)")):
        local = st.text_input(_("Path to oxford-iiit-pet.tgz or to the extracted folder"), key="data_pets_local")
        if st.button(_("Use this copy"), key="data_pets_local_go") and local.strip() and teacher_only("open_folder"):
            try:
                with st.spinner(_("Checking / extracting…")):
                    images = pets.use_local_pets(Path(local.strip()), base)
            except DatasetError as err:
                st.error(str(err))
            else:
                activate(pets.pets_spec(images), _("Using the local copy of Oxford-IIIT Pet."))


def folder_source_ui(base: Path) -> None:
    """A server folder (only those the server shares), labelled by file name or parent folder."""
    folder = st.text_input(_("Folder of images (searched recursively)"), key=keep("data_folder_path"))
    ways = {"regex": _("the file name (regex)"), "parent": _("the parent folder's name")}
    label_from = st.radio(
        _("Labels come from"),
        list(ways),
        format_func=ways.get,
        horizontal=True,
        key=relabelled(keep("data_folder_label_from", options=list(ways)), ways, ways.get),
    )
    if not (st.button(_("Use this folder"), key="data_folder_go") and folder.strip() and teacher_only("open_folder")):
        return
    try:  # only folders the server shares (PETLAB_FOLDERS); one answer for missing/unreadable/forbidden
        path = open_allowed(folder.strip(), want="dir", base=base)
    except FolderRefused as err:
        st.error(str(err))
        return
    try:
        spec = folder_spec(path.name, "folder", path, label_from=label_from)
    except DatasetError as err:
        st.error(str(err))
        return
    inner = Path(spec.root).relative_to(path.resolve())
    if inner.parts:
        note = _("Now using the folder {name} (read from `{inner}`, the folder that holds the images).")
    else:
        note = _("Now using the folder {name}.")
    activate(spec, note.format(name=path.name, inner=inner))


def zip_source_ui(base: Path) -> None:
    """An uploaded .zip, extracted (checked) into the data folder; what it left out is listed."""
    st.caption(
        _(
            "Images inside the zip are extracted into the data folder; nothing can be written outside it. "
            "Limits: {files} files, {gib} GiB unpacked, {mp} MP per image. Other files are listed and skipped."
        ).format(
            files=num(archives.MAX_FILES),
            gib=num(archives.MAX_TOTAL_BYTES / 1024**3, 0),
            mp=num(archives.MAX_IMAGE_PIXELS / 1e6, 0),
        )
    )
    upload = st.file_uploader(_("A .zip of images (labelled by folder or by file name)"), type=["zip"], key="data_zip")
    if upload is not None and st.button(_("Extract and use"), key="data_zip_go") and teacher_only("import"):
        _extract_zip(upload, base)
    skipped = st.session_state.get(ZIP_SKIPPED)
    if skipped:
        with st.expander(
            n_("{n} file skipped from the last zip", "{n} files skipped from the last zip", len(skipped)).format(
                n=num(len(skipped))
            )
        ):
            st.dataframe([{_("file"): name, _("reason"): why} for name, why in skipped], hide_index=True)


def _extract_zip(upload, base: Path) -> None:
    from core.data.images import image_digest

    target = uploads_dir(base) / f"{Path(upload.name).stem}-{image_digest(upload.getvalue())}"
    try:
        with st.spinner(_("Extracting…")):
            report = archives.extract_zip(upload, target)
    except archives.ArchiveError as err:
        st.error(str(err))
        return
    st.session_state[ZIP_SKIPPED] = report.skipped
    if not report.extracted:
        st.error(_("The zip holds no usable images."))
        return
    # a zip of one folder wraps everything in it: labels start below that folder
    spec = folder_spec(Path(upload.name).stem, "zip", report.target, report.extracted)
    done = n_("Extracted {n} image from {zip}.", "Extracted {n} images from {zip}.", len(report.extracted))
    skipped_note = n_("Skipped {n} file (listed below).", "Skipped {n} files (listed below).", len(report.skipped))
    activate(
        spec,
        sentences(
            done.format(n=num(len(report.extracted)), zip=upload.name),
            skipped_note.format(n=num(len(report.skipped))) if report.skipped else "",
        ),
    )


def own_classes_ui() -> None:
    """Your own classes, Teachable-Machine style: name classes, add photos from files or the camera, use them."""
    st.markdown(
        _(
            "Teach the model your own categories, Teachable-Machine style: name a few classes, then add photos "
            "to each from your files or your camera. {privacy}"
        ).format(privacy=own_classes_privacy_note(identity()))
    )
    store = own_classes_store()  # in class mode a student's own, private classes

    def add_own_class() -> None:
        """Button callback: create the class (or find the one of that name), select it, clear the name box."""
        try:
            had = store.classes()
            name = store.add_class(st.session_state.get("data_own_new", ""))
        except ValueError as err:
            notify(OWN_ADD, str(err), Level.ERROR)
            return
        st.session_state[OWN_PICKED] = name
        st.session_state["data_own_new"] = ""
        if name in had:
            notify(OWN_ADD, _("There is already a class {cls}: photos you add go there.").format(cls=name))

    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    c1.text_input(_("New class name"), key="data_own_new", placeholder=_("e.g. my_cat"))
    c2.button(_("Add class"), key="data_own_add", on_click=add_own_class)
    notices_ui(OWN_ADD)
    quota_caption_ui(store)
    counts = store.classes()
    if not counts:
        return
    chosen = own_class_picker_ui(counts)
    _add_photos_ui(store, chosen)
    photos = store.photos(chosen)
    _own_photos_grid_ui(store, chosen, photos)
    with st.popover(_("Delete the class {cls}").format(cls=chosen)):
        st.write(
            n_(
                "Removes {cls} and its {n} photo from this machine.",
                "Removes {cls} and its {n} photos from this machine.",
                len(photos),
            ).format(cls=chosen, n=num(len(photos)))
        )
        if st.button(_("Delete it"), key="data_own_rm_class", type="primary"):
            store.remove_class(chosen)
            st.session_state.pop(OWN_PICKED, None)
            forget(OWN_PICKED)
            st.rerun()
    _use_own_classes_ui(store)


def quota_caption_ui(store) -> None:
    """What a student's classes use of their quotas (nothing for the teacher, whose store has none)."""
    if store.quotas is None:
        return
    made, used = store.usage()
    st.caption(
        _(
            "Your share of the server: {n} of {classes} classes, {used} of {limit} MB, up to {photos} photos per class."
        ).format(
            n=made,
            classes=store.quotas.classes,
            used=num(used / 1024**2, 1),
            limit=num(store.quotas.student_mb, 0),
            photos=num(store.quotas.photos_per_class, 0),
        )
    )


ADD_NONCE = "data_own_nonce"  # part of the uploader's key: a new one after photos were added empties it


def _add_photos(store, chosen: str, files_key: str, camera_key: str) -> None:
    """Button callback: store the chosen files and camera shot, before the page (and its counts) is drawn."""
    items = [
        *(st.session_state.get(files_key) or []),
        *([st.session_state[camera_key]] if st.session_state.get(camera_key) else []),
    ]
    added, problems = 0, []
    for item in items:
        try:
            store.add_photo(chosen, item.getvalue(), item.name)
            added += 1
        except QuotaError as err:  # a quota or the disk: the next photos would be refused as well
            problems.append(str(err))
            break
        except (ImageError, ValueError) as err:
            problems.append(str(err))
    for problem in problems:
        notify(OWN_PHOTOS, problem, Level.ERROR)
    if added:
        said = n_("Added {n} photo to {cls}.", "Added {n} photos to {cls}.", added)
        notify(OWN_PHOTOS, said.format(n=num(added), cls=chosen), Level.SUCCESS)
        st.session_state[ADD_NONCE] = st.session_state.get(ADD_NONCE, 0) + 1  # empty the uploader and camera


OWN_PICKED = "data_own_class"  # the class photos are added to (kept with the tab)


def own_class_picker_ui(counts: dict[str, int]) -> str:
    """ "Add photos to", each class with its photo count, always current; returns the class picked.

    The browser's select keeps showing the label it was drawn with ("bears (0 photos)") after the counts
    change, so the widget's key carries the counts: a count that changes draws a new picker, set to the
    class picked before; a language switch relabels it (ui.tab_store.relabelled).
    """
    picked = st.session_state.get(OWN_PICKED) or recall(OWN_PICKED)
    key = f"data_own_pick_{stable_hash(sorted(counts.items()), 10)}"
    if key not in st.session_state and picked in counts:
        st.session_state[key] = picked
    shown = {
        c: _("{cls} ({n})").format(cls=c, n=n_("{n} photo", "{n} photos", n).format(n=num(n)))
        for c, n in counts.items()
    }
    chosen = st.selectbox(
        _("Add photos to"), list(counts), format_func=shown.get, key=relabelled(key, counts, shown.get)
    )
    st.session_state[OWN_PICKED] = chosen
    remember(OWN_PICKED, chosen)
    return chosen


def _add_photos_ui(store, chosen: str) -> None:
    nonce = st.session_state.get(ADD_NONCE, 0)
    files_key, camera_key = f"data_own_files_{chosen}_{nonce}", f"data_own_camera_{chosen}_{nonce}"
    st.file_uploader(_("Photos"), accept_multiple_files=True, key=files_key, type=None, help=_("Any image format"))
    st.camera_input(_("…or take one"), key=camera_key)
    st.button(
        _("Add these photos"), key="data_own_save", on_click=_add_photos, args=(store, chosen, files_key, camera_key)
    )
    notices_ui(OWN_PHOTOS)


def _own_photos_grid_ui(store, chosen: str, photos: list[Path]) -> None:
    if not photos:
        return
    st.caption(
        n_("{n} photo in {cls}; ✕ removes one.", "{n} photos in {cls}; ✕ removes one.", len(photos)).format(
            n=num(len(photos)), cls=chosen
        )
    )
    grid = st.columns(8)
    for i, photo in enumerate(photos[:48]):
        with grid[i % 8]:
            st.image(str(photo), width="stretch")
            if st.button("✕", key=f"data_own_rm_{chosen}_{photo.name}", help=_("Remove this photo")):
                store.remove_photo(chosen, photo.name)
                st.rerun()


def _use_own_classes_ui(store) -> None:
    ready = [c for c, n in store.classes().items() if n >= 2]
    few = [c for c, n in store.classes().items() if n < MIN_IMAGES_PER_CLASS]
    if few:
        st.caption(
            "⚠️ "
            + n_(
                "{n} class with fewer than {min} photos ({names}): with so few, the validation set holds one or "
                "two photos per class and its error rate means little.",
                "{n} classes with fewer than {min} photos ({names}): with so few, the validation set holds one or "
                "two photos per class and its error rate means little.",
                len(few),
            ).format(n=num(len(few)), min=MIN_IMAGES_PER_CLASS, names=listed(few[:5]))
        )
    if len(ready) >= 2:
        if st.button(_("Use my classes"), type="primary", key="data_own_use"):
            activate(
                DatasetSpec(name=OWN_CLASSES_NAME, kind="own", root=str(store.root), label_from="parent"),
                _("Now using your own classes."),
            )
    else:
        st.info(_("Add at least two classes with two or more photos each to use them."))


def class_sources_ui() -> None:
    """Class mode: the class dataset and every class set the teacher published, for anyone to use."""
    default, active = class_dataset(), active_dataset()
    if default is not None:
        c1, c2 = st.columns([4, 1], vertical_alignment="center")
        c1.markdown(
            _("**Class dataset** (the teacher's choice): {name}").format(name=markdown_safe(shown_name(default)))
        )
        if c2.button(_("Use it"), key="data_class_use", disabled=active == default):
            activate(default, _("Now using the class dataset."))
    found = published_classes(data_dir())
    if not found:
        st.caption(_("The teacher has not published any students' classes yet."))
        return
    st.markdown(_("**Classes the teacher published** (students' own classes, for everyone)"))
    for item in found:
        c1, c2 = st.columns([4, 1], vertical_alignment="center")
        counts = listed(
            _("{cls} ({n})").format(cls=markdown_safe(c), n=n_("{n} photo", "{n} photos", n).format(n=num(n)))
            for c, n in item.classes.items()
        )
        c1.markdown(f"**{markdown_safe(shown_name(item.spec))}** · {counts}")
        if c2.button(_("Use it"), key=f"data_pub_{stable_hash(item.spec.root, 8)}", disabled=active == item.spec):
            activate(item.spec, _("Now using {name}.").format(name=shown_name(item.spec)))
