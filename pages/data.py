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
    noun_for,
    plural,
    split_counts,
)
from core.images import IMAGE_SUFFIXES, ImageError, public_reason
from core.labels import COURSE_V3_PATTERN, PATTERN_NOTE, PETS_PATTERN, LabelError
from core.settings import FolderRefused, data_dir, open_allowed, sub_dir
from core.storage import stable_hash
from ui.auth import identity, own_classes_store, teacher_only
from ui.data import file_list, thumbnail, try_labels
from ui.frame import ensure_app_frame
from ui.state import active_dataset, keep, remember, scan_active, set_active_dataset

ensure_app_frame()
st.title("📂 Data: what's in the dataset?")
st.markdown(
    "Lesson 1 starts by looking at the data. The Oxford-IIIT Pet dataset has **37 breeds** "
    "(12 cats, 25 dogs) and about 7,400 photos; each label is hidden in the file name, e.g. "
    "`great_pyrenees_173.jpg`. Choose a source below, label it, then explore it."
)

base = data_dir()


def activate(spec: DatasetSpec, message: str) -> None:
    """Make spec the active dataset and forget labelling widgets of the previous one."""
    set_active_dataset(spec)
    st.session_state["data_flash"] = message
    st.rerun()


# ---------------------------------------------------------------- 1. choose the data
st.header("1 · Choose the data")
tab_pets, tab_folder, tab_zip, tab_own = st.tabs(
    ["🐾 Oxford-IIIT Pet", "📁 Local folder", "🗜️ Upload a .zip", "📸 Your own classes"]
)

with tab_pets:
    found = pets.find_pets(base)
    if found:
        st.success("Oxford-IIIT Pet is in the data folder.")
        if st.button("Use Oxford-IIIT Pet", key="data_use_pets"):
            activate(pets.pets_spec(found), "Now using Oxford-IIIT Pet.")
    else:
        st.markdown(
            "Downloads the archive (~800 MB) with fastai's `untar_data(URLs.PETS)` into the data folder, once. "
            "On a slow classroom network, point the mirror field at a local copy, or use a file you already have."
        )
        mirror = st.text_input("Archive URL (change it to use a mirror)", value=pets.pets_url(), key="data_pets_url")
        if st.button("⬇️ Download Oxford-IIIT Pet", key="data_download") and teacher_only("download_dataset"):
            bar = st.progress(0.0, text="Connecting…")

            def report(done: int, total: int | None) -> None:
                if total:
                    bar.progress(min(1.0, done / total), text=f"{done / 1e6:.0f} / {total / 1e6:.0f} MB")
                else:
                    bar.progress(0.0, text=f"{done / 1e6:.0f} MB")

            try:
                with st.spinner("Downloading and extracting…"):
                    images = pets.download_pets(base, mirror.strip() or None, progress=report)
            except DatasetError as err:
                bar.empty()
                st.error(str(err))
            else:
                activate(pets.pets_spec(images), "Oxford-IIIT Pet downloaded and extracted.")
        with st.expander("Use a local copy (already downloaded archive or extracted folder)"):
            local = st.text_input("Path to oxford-iiit-pet.tgz or to the extracted folder", key="data_pets_local")
            if st.button("Use this copy", key="data_pets_local_go") and local.strip() and teacher_only("open_folder"):
                try:
                    with st.spinner("Checking / extracting…"):
                        images = pets.use_local_pets(Path(local.strip()), base)
                except DatasetError as err:
                    st.error(str(err))
                else:
                    activate(pets.pets_spec(images), "Using the local copy of Oxford-IIIT Pet.")

with tab_folder:
    folder = st.text_input("Folder of images (searched recursively)", key=keep("data_folder_path"))
    label_from = st.radio(
        "Labels come from",
        ["regex", "parent"],
        format_func=lambda v: "the file name (regex)" if v == "regex" else "the parent folder's name",
        horizontal=True,
        key=keep("data_folder_label_from", options=["regex", "parent"]),
    )
    if st.button("Use this folder", key="data_folder_go") and folder.strip() and teacher_only("open_folder"):
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
                wrapped = f" (read from `{inner}`, the folder that holds the images)" if inner.parts else ""
                activate(spec, f"Now using the folder {path.name}{wrapped}.")

with tab_zip:
    st.caption(
        f"Images inside the zip are extracted into the data folder; nothing can be written outside it. "
        f"Limits: {archives.MAX_FILES:,} files, {archives.MAX_TOTAL_BYTES / 1024**3:.0f} GiB unpacked, "
        f"{archives.MAX_IMAGE_PIXELS / 1e6:.0f} MP per image. Other files are listed and skipped."
    )
    upload = st.file_uploader("A .zip of images (labelled by folder or by file name)", type=["zip"], key="data_zip")
    if upload is not None and st.button("Extract and use", key="data_zip_go") and teacher_only("import"):
        from core.images import image_digest

        target = sub_dir("datasets") / "uploads" / f"{Path(upload.name).stem}-{image_digest(upload.getvalue())}"
        try:
            with st.spinner("Extracting…"):
                report = archives.extract_zip(upload, target)
        except archives.ArchiveError as err:
            st.error(str(err))
        else:
            st.session_state["data_zip_skipped"] = report.skipped
            if not report.extracted:
                st.error("The zip holds no usable images.")
            else:
                # a zip of one folder wraps everything in it: labels start below that folder
                spec = folder_spec(Path(upload.name).stem, "zip", report.target, report.extracted)
                activate(
                    spec,
                    f"Extracted {plural(len(report.extracted), 'image')} from {upload.name}"
                    + (f"; skipped {plural(len(report.skipped), 'file')} (listed below)." if report.skipped else "."),
                )
    skipped = st.session_state.get("data_zip_skipped")
    if skipped:
        with st.expander(f"{plural(len(skipped), 'file')} skipped from the last zip"):
            st.dataframe([{"file": name, "reason": why} for name, why in skipped], hide_index=True)

with tab_own:
    st.markdown(
        "Teach the model your own categories, Teachable-Machine style: name a few classes, then add photos "
        "to each from your files or your camera. " + own_classes_privacy_note(identity())
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
    c1.text_input("New class name", key="data_own_new", placeholder="e.g. my_cat")
    c2.button("Add class", key="data_own_add", on_click=add_own_class)
    if err := st.session_state.pop("data_own_error", None):
        st.error(err)
    counts = store.classes()
    if counts:
        chosen = st.selectbox(
            "Add photos to",
            list(counts),
            format_func=lambda c: f"{c} ({plural(counts[c], 'photo')})",
            key=keep("data_own_class", options=list(counts)),
        )
        files = st.file_uploader(
            "Photos", accept_multiple_files=True, key=f"data_own_files_{chosen}", type=None, help="Any image format"
        )
        shot = st.camera_input("…or take one", key=f"data_own_camera_{chosen}")
        if st.button("Add these photos", key="data_own_save"):
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
                st.success(f"Added {plural(added, 'photo')} to {chosen}.")
        photos = store.photos(chosen)
        if photos:
            st.caption(f"{plural(len(photos), 'photo')} in {chosen}; ✕ removes one.")
            grid = st.columns(8)
            for i, photo in enumerate(photos[:48]):
                with grid[i % 8]:
                    st.image(str(photo), width="stretch")
                    if st.button("✕", key=f"data_own_rm_{chosen}_{photo.name}", help="Remove this photo"):
                        store.remove_photo(chosen, photo.name)
                        st.rerun()
        with st.popover(f"Delete the class {chosen}"):
            st.write(f"Removes {chosen} and its {plural(len(photos), 'photo')} from this machine.")
            if st.button("Delete it", key="data_own_rm_class", type="primary"):
                store.remove_class(chosen)
                st.session_state.pop("data_own_class", None)
                st.rerun()
        ready = [c for c, n in store.classes().items() if n >= 2]
        few = [c for c, n in store.classes().items() if n < MIN_IMAGES_PER_CLASS]
        if few:
            st.caption(
                f"⚠️ {plural(len(few), 'class')} with fewer than {MIN_IMAGES_PER_CLASS} photos ({', '.join(few[:5])}): "
                "with so few, the validation set holds one or two photos per class and its error rate means little."
            )
        if len(ready) >= 2:
            if st.button("Use my classes", type="primary", key="data_own_use"):
                activate(
                    DatasetSpec(name="Your own classes", kind="own", root=str(store.root), label_from="parent"),
                    "Now using your own classes.",
                )
        else:
            st.info("Add at least two classes with two or more photos each to use them.")

if msg := st.session_state.pop("data_flash", None):
    st.toast(msg)

spec = active_dataset()
if spec is None:
    st.info(
        "No dataset chosen yet. Download Oxford-IIIT Pet, point to a folder, upload a zip or make your own classes."
    )
    st.stop()

# ---------------------------------------------------------------- 2. label
st.header(f"2 · Label: {spec.name}")
root = Path(spec.root)
if not root.is_dir():
    st.error(f"The dataset folder of {spec.name} no longer exists. Choose another dataset above.")
    st.stop()
try:
    rel_paths = tuple(file_list(str(root), folder_signature(root)))
except DatasetError as err:
    st.error(str(err))
    st.stop()
if not rel_paths:
    st.warning(
        f"No images found in {spec.name} (looked for {', '.join(sorted(IMAGE_SUFFIXES))}). Choose another dataset above."
    )
    st.stop()

ds_key = stable_hash(spec.root, 8)  # labelling widgets are per dataset: switching datasets resets them
label_from = st.radio(
    "Labels come from",
    ["regex", "parent"],
    index=0 if spec.label_from == "regex" else 1,
    format_func=lambda v: "a regular expression on the file name/path" if v == "regex" else "the parent folder",
    horizontal=True,
    key=f"data_label_from_{ds_key}",
)
pattern, match_on = spec.pattern, spec.match_on
if label_from == "regex":
    c1, c2 = st.columns([3, 2])
    pattern = c1.text_input("Pattern (the ( ) group is the label)", value=spec.pattern, key=f"data_pattern_{ds_key}")
    match_on = c2.radio(
        "Match against",
        ["name", "path"],
        index=0 if spec.match_on == "name" else 1,
        format_func=lambda v: "file name (from_name_re)" if v == "name" else "whole path (from_path_re)",
        key=f"data_match_on_{ds_key}",
    )
    st.caption(f"Lesson default: `{PETS_PATTERN}` · course-v3: `{COURSE_V3_PATTERN}`. {PATTERN_NOTE}")
    st.code(
        f"dls = ImageDataLoaders.{'from_name_re' if match_on == 'name' else 'from_path_re'}(\n"
        f"    path, fnames, pat=r'{pattern}', valid_pct=0.2, seed=42, item_tfms=Resize(224))",
        language="python",
    )
    try:
        result = try_labels(rel_paths, pattern, match_on)
    except LabelError as err:
        st.error(f"{err} Labels are unchanged until the pattern works.")
        result = None
else:
    from core.labels import label_by_parent

    result = label_by_parent(list(rel_paths))

if result is not None:
    m1, m2, m3 = st.columns(3)
    m1.metric("files matched", f"{len(result.labels):,}")
    m2.metric("unmatched", f"{len(result.unmatched):,}")
    m3.metric(f"{noun_for(len(result.classes), 'class')} found", len(result.classes))
    c1, c2 = st.columns(2)
    with c1:
        st.markdown("**Examples of each class**")
        st.dataframe(exploration.label_examples(result), hide_index=True, height=220)
    with c2:
        st.markdown("**Unmatched files** (left out of the dataset)")
        if result.unmatched:
            st.dataframe({"file": result.unmatched[:500]}, hide_index=True, height=220)
        else:
            st.caption("None: every image got a label.")
    changed = (label_from, pattern, match_on) != (spec.label_from, spec.pattern, spec.match_on)
    if changed and result.labels:
        if len(result.classes) < 2:
            st.warning("This labelling finds fewer than two classes; keep the previous one.")
        else:
            set_active_dataset(spec.with_labelling(label_from, pattern, match_on))
            spec = active_dataset()
    elif changed:
        st.warning("The pattern matches no file; the previous labelling is kept.")

scan = scan_active()
if scan is None or scan.n_images == 0:
    st.stop()
items = scan.items

# ---------------------------------------------------------------- 3. explore
st.header("3 · Explore")
for check in check_dataset(scan):  # datasets that cannot teach anything are named before training
    st.warning(check.message, icon="⚠️")
if scan.corrupt or scan.skipped:
    st.warning(
        f"{plural(len(scan.corrupt) + len(scan.skipped), 'file')} could not be read or used and are left out "
        "(listed at the bottom)."
    )

st.subheader("Class balance")
st.caption(
    "Roughly equal counts per class mean plain accuracy is a fair metric. In Pets the cat breeds are the "
    "capitalised names."
)
st.plotly_chart(exploration.class_balance_figure(items), key="data_balance")

st.subheader("A batch of examples")
f1, f2, f3 = st.columns([3, 1, 1])
# one filter per dataset and labelling: a class chip of another dataset never carries over
labelling = stable_hash([scan.spec.root, scan.spec.label_from, scan.spec.pattern, scan.spec.match_on], 10)
filter_key = keep(f"data_filter_{labelling}", options=scan.classes)
chosen = f1.multiselect("Show only these classes", scan.classes, key=filter_key)
n_show = f2.select_slider("Images", [6, 9, 12, 18, 24], value=12, key=keep("data_n_show", options=[6, 9, 12, 18, 24]))
keep("data_seed")
if f3.button("🔀 Shuffle", key="data_shuffle"):
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

st.subheader("Image sizes")
st.caption("Photos come in every size, read here from the file headers only. The model needs one size: Resize(224).")
c1, c2 = st.columns([3, 1])
c1.plotly_chart(exploration.size_figure(items), key="data_sizes")
for name, value in exploration.size_summary(items).items():
    c2.metric(name, f"{value:.0f} px")

st.subheader("Training and validation split")
st.caption(
    f"`valid_pct={spec.valid_pct}`, `seed={spec.seed}`: a random {spec.valid_pct:.0%} of the images is held out "
    "to measure error on photos the model never trained on. The seed makes it the same split every time."
)
counts = split_counts(items)
c1, c2 = st.columns([1, 2])
c1.metric("train", f"{int((~items['is_valid']).sum()):,}")
c1.metric("valid", f"{int(items['is_valid'].sum()):,}")
c2.dataframe(counts, hide_index=True, height=260)

st.subheader("ImageNet normalisation")
st.caption(
    "A pretrained model expects inputs scaled like ImageNet: each channel has the ImageNet mean subtracted and "
    "is divided by its std, so values sit around 0 with spread about 1."
)
sample_path = rows.iloc[0]["path"] if len(rows) else items.iloc[0]["path"]
try:
    sample = thumbnail(sample_path, 224, Path(sample_path).stat().st_mtime)
except (OSError, ValueError) as err:
    st.warning(f"Could not open {Path(sample_path).name}: {public_reason(err, sample_path)}")
else:
    c1, c2 = st.columns([1, 3])
    c1.image(sample, caption=Path(sample_path).name, width="stretch")
    c2.dataframe(exploration.normalisation_table(sample), hide_index=True)
    st.plotly_chart(exploration.channel_histogram_figure(sample), key="data_hist")

if scan.corrupt or scan.skipped:
    st.subheader("Unreadable files")
    st.caption(
        "Left out: damaged images, links whose target is gone or outside the folder, sockets, unreadable folders."
    )
    st.dataframe([{"file": rel, "problem": why} for rel, why in [*scan.corrupt, *scan.skipped]], hide_index=True)
