"""ui.notices: a message kept across a rerun is shown once where its place is drawn (or for a while)."""

from streamlit.testing.v1 import AppTest

TIMEOUT = 60


def page():
    import streamlit as st

    from ui.notices import Level, notices_ui, notify

    def said() -> None:
        notify("here", "Saved.", Level.SUCCESS)
        notify("here", "One file was skipped.", Level.WARNING)

    def wrong() -> None:
        notify("sign_in", f"Wrong password ({st.session_state.get('tries', 0)}).", Level.ERROR, seconds=60,
               replace=True)  # fmt: skip
        st.session_state["tries"] = st.session_state.get("tries", 0) + 1

    st.button("save", key="t_save", on_click=said)
    st.button("sign in", key="t_sign_in", on_click=wrong)
    notices_ui("elsewhere")
    notices_ui("here")
    notices_ui("sign_in")


def test_a_kept_message_shows_once_where_its_place_is_drawn():
    at = AppTest.from_function(page, default_timeout=TIMEOUT).run()
    assert not at.success and not at.warning
    at.button(key="t_save").click().run()
    assert [s.value for s in at.success] == ["Saved."] and [w.value for w in at.warning] == ["One file was skipped."]
    at.run()
    assert not at.success and not at.warning  # shown once


def test_a_timed_message_stays_for_its_time_and_the_newest_replaces_it(monkeypatch):
    import time

    at = AppTest.from_function(page, default_timeout=TIMEOUT).run()
    at.button(key="t_sign_in").click().run()
    at.run()
    assert [e.value for e in at.error] == ["Wrong password (0)."]  # a rerun from elsewhere does not swallow it
    at.button(key="t_sign_in").click().run()
    assert [e.value for e in at.error] == ["Wrong password (1)."]  # replaced, not stacked
    later = time.time() + 61
    monkeypatch.setattr(time, "time", lambda: later)
    at.run()
    assert not at.error
