"""The shared sidebar's first box: the active dataset with its counts, the active model, the teacher's disk warning."""

from __future__ import annotations

import streamlit as st

from core import quotas
from core.i18n import _, n_, num
from core.settings import data_dir
from ui.auth import identity
from ui.state import active_dataset, active_model_title, scan_active, shown_name


def sidebar(slot=None) -> None:
    """The shared sidebar: active dataset and active model, drawn into `slot` (an st.sidebar.empty()).

    app.py draws it before the page and again after it, so a dataset or run chosen by this very
    run shows at once (a page that stops early keeps the first drawing).
    """
    with slot.container() if slot is not None else st.sidebar:
        st.markdown("### 🐾 Pet Lab")
        spec = active_dataset()
        if spec is None:
            st.info(_("No dataset yet: choose one on the **Data** page."))
        else:
            result = scan_active()
            if result is not None:
                st.markdown(_("**Dataset:** {name}").format(name=shown_name(spec)))
                c1, c2 = st.columns(2)
                c1.metric(n_("image", "images", result.n_images), num(result.n_images))
                c2.metric(n_("class", "classes", len(result.classes)), len(result.classes))
        st.markdown(_("**Model:** {title}").format(title=active_model_title()))
        if identity().is_teacher:  # the server's paths are for whoever runs it, not for students
            st.caption(_("Data folder: `{folder}`").format(folder=data_dir()))
            disk_warning_ui()


def disk_warning_ui() -> None:
    """A warning (for the teacher's eyes) when the data folder's disk nears the free-space floor."""
    disk = quotas.disk_state(data_dir())
    if disk.nearly_full:
        st.warning(
            _(
                "The data folder's disk is nearly full: {free} MB free. Below {floor} MB, Pet Lab refuses new "
                "photos, kept uploads, trainings and caches. Delete old runs or datasets, or free space on the disk."
            ).format(free=num(disk.free / quotas.MB, 0), floor=num(disk.floor / quotas.MB, 0)),
            icon=":material/hard_drive:",
        )
