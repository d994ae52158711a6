"""Data: choose a dataset, label it with the lesson's regex, and look at it before training."""

from pathlib import Path

import streamlit as st

from core import archives, exploration, pets
from core.classroom import own_classes_privacy_note
from core.datasets import (
    MIN_IMAGES_PER_CLASS,
    DatasetError,
    DatasetSpec,
    check_dataset,
    folder_signature,
    folder_spec,
    split_counts,
)
from core.i18n import _, n_, num, pct, translated_columns
from core.images import IMAGE_SUFFIXES, ImageError, public_reason
from core.labels import COURSE_V3_PATTERN, PATTERN_NOTE, PETS_PATTERN, LabelError
from core.settings import FolderRefused, data_dir, open_allowed, uploads_dir
from core.storage import stable_hash
from ui.auth import identity, own_classes_store, teacher_only
from ui.data import file_list, thumbnail, try_labels
from ui.frame import ensure_app_frame
from ui.state import OWN_CLASSES_NAME, active_dataset, keep, remember, scan_active, set_active_dataset, shown_name

ensure_app_frame()
st.title(_("📂 Data: what's in the dataset?"))
st.markdown(
    _(
        "Lesson 1 starts by looking at the data. The Oxford-IIIT Pet dataset has **37 breeds** "
        "(12 cats, 25 dogs) and about 7,400 photos; each label is hidden in the file name, e.g. "
        "`great_pyrenees_173.jpg`. Choose a source below, label it, then explore it."
    )
)

base = data_dir()


def activate(spec: DatasetSpec, message: str) -> None:
    """Make spec the active dataset and forget labelling widgets of the previous one."""
    set_active_dataset(spec)
    st.session_state["data_flash"] = message
    st.rerun()


# ---------------------------------------------------------------- 1. choose the data
st.header(_("1 · Choose the data"))
tab_pets, tab_folder, tab_zip, tab_own = st.tabs(
    ["🐾 Oxford-IIIT Pet", _("📁 Local folder"), _("🗜️ Upload a .zip"), _("📸 Your own classes")]
)

with tab_pets:
    found = pets.find_pets(base)
    if found:
        st.success(_("Oxford-IIIT Pet is in the data folder."))
        if st.button(_("Use Oxford-IIIT Pet"), key="data_use_pets"):
            activate(pets.pets_spec(found), _("Now using Oxford-IIIT Pet."))
    else:
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
            if (
                st.button(_("Use this copy"), key="data_pets_local_go")
                and local.strip()
                and teacher_only("open_folder")
            ):
                try:
                    with st.spinner(_("Checking / extracting…")):
                        images = pets.use_local_pets(Path(local.strip()), base)
                except DatasetError as err:
                    st.error(str(err))
                else:
                    activate(pets.pets_spec(images), _("Using the local copy of Oxford-IIIT Pet."))

with tab_folder:
    folder = st.text_input(_("Folder of images (searched recursively)"), key=keep("data_folder_path"))
    label_from = st.radio(
        _("Labels come from"),
        ["regex", "parent"],
        format_func={"regex": _("the file name (regex)"), "parent": _("the parent folder's name")}.get,
        horizontal=True,
        key=keep("data_folder_label_from", options=["regex", "parent"]),
    )
    if st.button(_("Use this folder"), key="data_folder_go") and folder.strip() and teacher_only("open_folder"):
        try:  # only folders the server shares (PETLAB_FOLDERS); one answer for missing/unreadable/forbidden
            path = open_allowed(folder.strip(), want="dir", base=base)
        except FolderRefused as err:
            st.error(str(err))
        else:
            try:
                spec = folder_spec(path.name, "folder", path, label_from=label_from)
            except DatasetError as err:
                st.error(str(err))
            else:
                inner = Path(spec.root).relative_to(path.resolve())
                if inner.parts:
                    note = _("Now using the folder {name} (read from `{inner}`, the folder that holds the images).")
                else:
                    note = _("Now using the folder {name}.")
                activate(spec, note.format(name=path.name, inner=inner))

with tab_zip:
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
        from core.images import image_digest

        target = uploads_dir(base) / f"{Path(upload.name).stem}-{image_digest(upload.getvalue())}"
        try:
            with st.spinner(_("Extracting…")):
                report = archives.extract_zip(upload, target)
        except archives.ArchiveError as err:
            st.error(str(err))
        else:
            st.session_state["data_zip_skipped"] = report.skipped
            if not report.extracted:
                st.error(_("The zip holds no usable images."))
            else:
                # a zip of one folder wraps everything in it: labels start below that folder
                spec = folder_spec(Path(upload.name).stem, "zip", report.target, report.extracted)
                done = n_("Extracted {n} image from {zip}.", "Extracted {n} images from {zip}.", len(report.extracted))
                skipped_note = n_(
                    "Skipped {n} file (listed below).", "Skipped {n} files (listed below).", len(report.skipped)
                )
                activate(
                    spec,
                    done.format(n=num(len(report.extracted)), zip=upload.name)
                    + (" " + skipped_note.format(n=num(len(report.skipped))) if report.skipped else ""),
                )
    skipped = st.session_state.get("data_zip_skipped")
    if skipped:
        with st.expander(
            n_("{n} file skipped from the last zip", "{n} files skipped from the last zip", len(skipped)).format(
                n=num(len(skipped))
            )
        ):
            st.dataframe([{_("file"): name, _("reason"): why} for name, why in skipped], hide_index=True)

with tab_own:
    st.markdown(
        _(
            "Teach the model your own categories, Teachable-Machine style: name a few classes, then add photos "
            "to each from your files or your camera. {privacy}"
        ).format(privacy=own_classes_privacy_note(identity()))
    )
    store = own_classes_store()  # in class mode a student's own, private classes

    def add_own_class() -> None:
        """Button callback: create the class, select it, clear the name box."""
        try:
            st.session_state["data_own_class"] = store.add_class(st.session_state.get("data_own_new", ""))
            st.session_state["data_own_new"] = ""
        except ValueError as err:
            st.session_state["data_own_error"] = str(err)

    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    c1.text_input(_("New class name"), key="data_own_new", placeholder=_("e.g. my_cat"))
    c2.button(_("Add class"), key="data_own_add", on_click=add_own_class)
    if err := st.session_state.pop("data_own_error", None):
        st.error(err)
    counts = store.classes()
    if counts:
        chosen = st.selectbox(
            _("Add photos to"),
            list(counts),
            format_func={
                c: _("{cls} ({n})").format(cls=c, n=n_("{n} photo", "{n} photos", n).format(n=num(n)))
                for c, n in counts.items()
            }.get,
            key=keep("data_own_class", options=list(counts)),
        )
        files = st.file_uploader(
            _("Photos"),
            accept_multiple_files=True,
            key=f"data_own_files_{chosen}",
            type=None,
            help=_("Any image format"),
        )
        shot = st.camera_input(_("…or take one"), key=f"data_own_camera_{chosen}")
        if st.button(_("Add these photos"), key="data_own_save"):
            added, problems = 0, []
            for item in [*(files or []), *([shot] if shot else [])]:
                try:
                    store.add_photo(chosen, item.getvalue(), item.name)
                    added += 1
                except ImageError as err:
                    problems.append(str(err))
            for problem in problems:
                st.error(problem)
            if added:
                st.success(
                    n_("Added {n} photo to {cls}.", "Added {n} photos to {cls}.", added).format(
                        n=num(added), cls=chosen
                    )
                )
        photos = store.photos(chosen)
        if photos:
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
                st.session_state.pop("data_own_class", None)
                st.rerun()
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
                ).format(n=num(len(few)), min=MIN_IMAGES_PER_CLASS, names=", ".join(few[:5]))
            )
        if len(ready) >= 2:
            if st.button(_("Use my classes"), type="primary", key="data_own_use"):
                activate(
                    DatasetSpec(name=OWN_CLASSES_NAME, kind="own", root=str(store.root), label_from="parent"),
                    _("Now using your own classes."),
                )
        else:
            st.info(_("Add at least two classes with two or more photos each to use them."))

if msg := st.session_state.pop("data_flash", None):
    st.toast(msg)

spec = active_dataset()
if spec is None:
    st.info(
        _("No dataset chosen yet. Download Oxford-IIIT Pet, point to a folder, upload a zip or make your own classes.")
    )
    st.stop()

# ---------------------------------------------------------------- 2. label
st.header(_("2 · Label: {name}").format(name=shown_name(spec)))
root = Path(spec.root)
if not root.is_dir():
    st.error(
        _("The dataset folder of {name} no longer exists. Choose another dataset above.").format(name=shown_name(spec))
    )
    st.stop()
try:
    rel_paths = tuple(file_list(str(root), folder_signature(root)))
except DatasetError as err:
    st.error(str(err))
    st.stop()
if not rel_paths:
    st.warning(
        _("No images found in {name} (looked for {suffixes}). Choose another dataset above.").format(
            name=shown_name(spec), suffixes=", ".join(sorted(IMAGE_SUFFIXES))
        )
    )
    st.stop()

ds_key = stable_hash(spec.root, 8)  # labelling widgets are per dataset: switching datasets resets them
label_from = st.radio(
    _("Labels come from"),
    ["regex", "parent"],
    index=0 if spec.label_from == "regex" else 1,
    format_func={"regex": _("a regular expression on the file name/path"), "parent": _("the parent folder")}.get,
    horizontal=True,
    key=f"data_label_from_{ds_key}",
)
pattern, match_on = spec.pattern, spec.match_on
if label_from == "regex":
    c1, c2 = st.columns([3, 2])
    pattern = c1.text_input(_("Pattern (the ( ) group is the label)"), value=spec.pattern, key=f"data_pattern_{ds_key}")
    match_on = c2.radio(
        _("Match against"),
        ["name", "path"],
        index=0 if spec.match_on == "name" else 1,
        format_func={"name": _("file name (from_name_re)"), "path": _("whole path (from_path_re)")}.get,
        key=f"data_match_on_{ds_key}",
    )
    st.caption(
        _("Lesson default: `{pets}` · course-v3: `{v3}`. {note}").format(
            pets=PETS_PATTERN, v3=COURSE_V3_PATTERN, note=_(PATTERN_NOTE)
        )
    )
    st.code(
        f"dls = ImageDataLoaders.{'from_name_re' if match_on == 'name' else 'from_path_re'}(\n"
        f"    path, fnames, pat=r'{pattern}', valid_pct=0.2, seed=42, item_tfms=Resize(224))",
        language="python",
    )
    try:
        result = try_labels(rel_paths, pattern, match_on)
    except LabelError as err:
        st.error(_("{error} Labels are unchanged until the pattern works.").format(error=err))
        result = None
else:
    from core.labels import label_by_parent

    result = label_by_parent(list(rel_paths))

if result is not None:
    m1, m2, m3 = st.columns(3)
    m1.metric(_("files matched"), num(len(result.labels)))
    m2.metric(_("unmatched"), num(len(result.unmatched)))
    m3.metric(n_("class found", "classes found", len(result.classes)), len(result.classes))
    c1, c2 = st.columns(2)
    with c1:
        st.markdown(_("**Examples of each class**"))
        st.dataframe(translated_columns(exploration.label_examples(result)), hide_index=True, height=220)
    with c2:
        st.markdown(_("**Unmatched files** (left out of the dataset)"))
        if result.unmatched:
            st.dataframe({_("file"): result.unmatched[:500]}, hide_index=True, height=220)
        else:
            st.caption(_("None: every image got a label."))
    changed = (label_from, pattern, match_on) != (spec.label_from, spec.pattern, spec.match_on)
    if changed and result.labels:
        if len(result.classes) < 2:
            st.warning(_("This labelling finds fewer than two classes; keep the previous one."))
        else:
            set_active_dataset(spec.with_labelling(label_from, pattern, match_on))
            spec = active_dataset()
    elif changed:
        st.warning(_("The pattern matches no file; the previous labelling is kept."))

scan = scan_active()
if scan is None or scan.n_images == 0:
    st.stop()
items = scan.items

# ---------------------------------------------------------------- 3. explore
st.header(_("3 · Explore"))
for check in check_dataset(scan):  # datasets that cannot teach anything are named before training
    st.warning(check.message, icon="⚠️")
if scan.corrupt or scan.skipped:
    n_bad = len(scan.corrupt) + len(scan.skipped)
    st.warning(
        n_(
            "{n} file could not be read or used and is left out (listed at the bottom).",
            "{n} files could not be read or used and are left out (listed at the bottom).",
            n_bad,
        ).format(n=num(n_bad))
    )

st.subheader(_("Class balance"))
st.caption(
    _(
        "Roughly equal counts per class mean plain accuracy is a fair metric. In Pets the cat breeds are the "
        "capitalised names."
    )
)
st.plotly_chart(exploration.class_balance_figure(items), key="data_balance")

st.subheader(_("A batch of examples"))
f1, f2, f3 = st.columns([3, 1, 1])
# one filter per dataset and labelling: a class chip of another dataset never carries over
labelling = stable_hash([scan.spec.root, scan.spec.label_from, scan.spec.pattern, scan.spec.match_on], 10)
filter_key = keep(f"data_filter_{labelling}", options=scan.classes)
chosen = f1.multiselect(_("Show only these classes"), scan.classes, key=filter_key)
n_show = f2.select_slider(
    _("Images"), [6, 9, 12, 18, 24], value=12, key=keep("data_n_show", options=[6, 9, 12, 18, 24])
)
keep("data_seed")
if f3.button(_("🔀 Shuffle"), key="data_shuffle"):
    st.session_state["data_seed"] = st.session_state.get("data_seed", 0) + 1
    remember("data_seed", st.session_state["data_seed"])
rows = exploration.sample_rows(items, chosen, n_show, st.session_state.get("data_seed", 0))
cols = st.columns(6)
for i, row in enumerate(rows.itertuples()):
    with cols[i % 6]:
        try:
            st.image(thumbnail(row.path, 160, Path(row.path).stat().st_mtime), caption=row.label, width="stretch")
        except (OSError, ValueError) as err:
            st.caption(f"⚠️ {row.rel}: {public_reason(err, row.path)}")

st.subheader(_("Image sizes"))
st.caption(_("Photos come in every size, read here from the file headers only. The model needs one size: Resize(224)."))
c1, c2 = st.columns([3, 1])
c1.plotly_chart(exploration.size_figure(items), key="data_sizes")
for name, value in exploration.size_summary(items).items():
    c2.metric(_(name), f"{num(value, 0)} px")

st.subheader(_("Training and validation split"))
st.caption(
    _(
        "`valid_pct={valid_pct}`, `seed={seed}`: a random {share} of the images is held out to measure error on "
        "photos the model never trained on. The seed makes it the same split every time."
    ).format(valid_pct=spec.valid_pct, seed=spec.seed, share=pct(spec.valid_pct))
)
counts = split_counts(items)
c1, c2 = st.columns([1, 2])
c1.metric(_("train"), num(int((~items["is_valid"]).sum())))
c1.metric(_("valid"), num(int(items["is_valid"].sum())))
c2.dataframe(translated_columns(counts), hide_index=True, height=260)

st.subheader(_("ImageNet normalisation"))
st.caption(
    _(
        "A pretrained model expects inputs scaled like ImageNet: each channel has the ImageNet mean subtracted "
        "and is divided by its std, so values sit around 0 with spread about 1."
    )
)
sample_path = rows.iloc[0]["path"] if len(rows) else items.iloc[0]["path"]
try:
    sample = thumbnail(sample_path, 224, Path(sample_path).stat().st_mtime)
except (OSError, ValueError) as err:
    st.warning(
        _("Could not open {name}: {reason}").format(name=Path(sample_path).name, reason=public_reason(err, sample_path))
    )
else:
    c1, c2 = st.columns([1, 3])
    c1.image(sample, caption=Path(sample_path).name, width="stretch")
    c2.dataframe(translated_columns(exploration.normalisation_table(sample)), hide_index=True)
    st.plotly_chart(exploration.channel_histogram_figure(sample), key="data_hist")

if scan.corrupt or scan.skipped:
    st.subheader(_("Unreadable files"))
    st.caption(
        _("Left out: damaged images, links whose target is gone or outside the folder, sockets, unreadable folders.")
    )
    st.dataframe([{_("file"): rel, _("problem"): why} for rel, why in [*scan.corrupt, *scan.skipped]], hide_index=True)
