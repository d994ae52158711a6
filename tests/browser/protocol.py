"""A browser tab reduced to Streamlit's websocket protocol, for the attacks a script makes (issue 18).

What a hostile student's script does: open many sessions (tabs are free), from any address the network
lets it claim, and send the same BackMsg a browser sends when a widget changes or a button is pressed.
`X-Forwarded-For` stands for "another computer": the server trusts it only from 127.0.0.1 (uvicorn's
default), i.e. only from the test itself, never from a student's machine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.sync.client import connect

WIDGETS = ("button", "text_input", "number_input", "checkbox", "selectbox", "toggle")


@dataclass
class Run:
    """What one script run drew: widgets by their key, alert texts, and whether it raised."""

    widgets: dict[str, tuple[str, object]] = field(default_factory=dict)  # key -> (type, element)
    alerts: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    seconds: float = 0.0


class Tab:
    """One session on the server: connect, run a page, set widgets, press buttons."""

    def __init__(self, base_url: str, address: str | None = None):
        headers = {"X-Forwarded-For": address} if address else {}
        url = base_url.replace("http://", "ws://") + "/_stcore/stream"
        self.ws = connect(url, subprotocols=["streamlit"], additional_headers=headers, open_timeout=60,
                          max_size=None)  # fmt: skip
        self.query = ""
        self.page_hash = ""
        self.widgets: dict[str, tuple[str, object]] = {}

    def close(self) -> None:
        self.ws.close()

    def run(self, page: str = "", states: list[WidgetState] | None = None, timeout: float = 180) -> Run:
        """Rerun (the page by its URL name the first time, then the current one) and wait for the end."""
        back = BackMsg()
        rerun = back.rerun_script
        rerun.query_string = self.query
        if page:
            rerun.page_name = page
        else:
            rerun.page_script_hash = self.page_hash
        for state in states or []:
            rerun.widget_states.widgets.append(state)
        started = time.perf_counter()
        self.ws.send(back.SerializeToString())
        result = Run()
        deadline = time.monotonic() + timeout
        while True:
            msg = ForwardMsg()
            msg.ParseFromString(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            kind = msg.WhichOneof("type")
            if kind == "new_session":
                self.page_hash = msg.new_session.page_script_hash or self.page_hash
            elif kind == "navigation" and msg.navigation.page_script_hash:
                self.page_hash = msg.navigation.page_script_hash
            elif kind == "page_info_changed":
                self.query = msg.page_info_changed.query_string
            elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                element = msg.delta.new_element
                etype = element.WhichOneof("type")
                if etype in WIDGETS:
                    widget = getattr(element, etype)
                    result.widgets[widget.id.rsplit("-", 1)[-1]] = (etype, widget)
                elif etype == "alert":
                    result.alerts.append(element.alert.body)
                elif etype == "exception":
                    result.exceptions.append(element.exception.message)
            elif kind == "script_finished":
                if msg.script_finished == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    continue  # the app reran itself (a first visit): wait for the real end
                if msg.script_finished != ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY:
                    break
        result.seconds = time.perf_counter() - started
        self.widgets = result.widgets
        return result

    def state(self, key: str, value: object = True) -> WidgetState:
        """The widget state a browser sends for the widget drawn with this key (a button: pressed)."""
        etype, widget = self.widgets[key]
        state = WidgetState(id=widget.id)
        if etype == "button":
            state.trigger_value = bool(value)
        elif etype == "text_input":
            state.string_value = str(value)
        elif etype == "number_input":
            state.int_value = int(value)
        else:
            raise ValueError(f"no state for a {etype}")
        return state

    def press(self, key: str, **values: object) -> Run:
        """Set the named widgets (by key) and press the button `key`, in one rerun."""
        states = [self.state(k, v) for k, v in values.items()]
        return self.run(states=[*states, self.state(key)])
