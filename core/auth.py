"""Who may do what: laptop mode (no teacher password, one user, everything allowed) or class mode.

Class mode starts when a teacher password is set ($PETLAB_TEACHER_PASSWORD, or `teacher_password`
in .streamlit/secrets.toml). Students may then look and try on every page, but the actions in
TEACHER_ACTIONS are the teacher's: `require` refuses them, and every place that performs one calls
it (core.jobs, core.own_classes, the pages' single guard), so a hidden button is never the only check.

A browser tab is known by its per-tab token (core.session_store, `?s=` in the URL): a reload keeps
the same tab and the same private space. The teacher's sign-in is a token bound to that tab, kept in
the tab's server-side store, and signed with a key derived from the password and the data folder's
secret, so it cannot be forged and changing the password signs everyone out.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from core.i18n import N_, _
from core.settings import secret_file

ENV_PASSWORD = "PETLAB_TEACHER_PASSWORD"
SECRETS_KEY = "teacher_password"
TEACHER_HOURS = 12  # a teacher sign-in lasts a school day
LAPTOP, TEACHER, STUDENT = "laptop", "teacher", "student"
LOCAL_CLIENT = "local"  # a connection from the server itself (or one whose address is unknown)

# action -> what the refusal says the student cannot do
TEACHER_ACTIONS = {
    "train": N_("start or queue a training"),
    "stop": N_("stop or cancel a training"),
    "delete_run": N_("delete a run"),
    "publish": N_("publish a run or a student's classes to the class"),
    "change_class_dataset": N_("change the class dataset"),
    "download_dataset": N_("download a dataset onto the server"),
    "download_archive": N_("download archives"),
    "open_folder": N_("open folders on the server"),
    "import": N_("import files onto the server"),
    "edit_teacher_classes": N_("change the teacher's own classes"),
}


class Forbidden(PermissionError):
    """A student asked for a teacher's action; the message is meant for the page."""


@dataclass(frozen=True)
class Identity:
    """Who is asking: their role, their tab (a student's private space is keyed by it) and their computer.

    `client` (client_key of the connection's address) is what per-student limits and turns count: tabs
    are free to open, a computer is not.
    """

    role: str  # LAPTOP | TEACHER | STUDENT
    tab: str = "local"
    client: str = LOCAL_CLIENT

    @property
    def is_teacher(self) -> bool:
        """The teacher, or the only user of a laptop."""
        return self.role in (LAPTOP, TEACHER)

    @property
    def class_mode(self) -> bool:
        return self.role != LAPTOP


LAPTOP_USER = Identity(LAPTOP)


def client_key(address: str | None) -> str:
    """Who a connection counts as for limits: its IPv4 address, or its IPv6 /64 network (a device picks any
    address in its /64 at will), or LOCAL_CLIENT for the server itself and unknown addresses.

    Streamlit gives the TCP peer's address (a student cannot choose it); behind a reverse proxy on the
    same machine it is the X-Forwarded-For the proxy sets (uvicorn trusts it from 127.0.0.1 only).
    """
    if not address:
        return LOCAL_CLIENT
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return LOCAL_CLIENT
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return LOCAL_CLIENT
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def teacher_password(project_root: Path | None = None) -> str | None:
    """The teacher password: $PETLAB_TEACHER_PASSWORD, else secrets.toml `teacher_password`, else None."""
    chosen = os.environ.get(ENV_PASSWORD)
    if chosen:
        return chosen
    root = project_root or Path(__file__).resolve().parent.parent
    path = root / ".streamlit" / "secrets.toml"
    if path.is_file():
        try:
            value = tomllib.loads(path.read_text()).get(SECRETS_KEY)
        except (tomllib.TOMLDecodeError, OSError):
            return None
        if isinstance(value, str) and value:
            return value
    return None


def check_password(given: str, expected: str) -> bool:
    """Constant-time comparison, so the time taken says nothing about how much of the guess was right."""
    return hmac.compare_digest(given.encode(), expected.encode())


def allowed(identity: Identity, action: str) -> bool:
    if action not in TEACHER_ACTIONS:
        raise ValueError(f"Unknown action {action!r}.")
    return identity.is_teacher


def require(identity: Identity, action: str) -> None:
    """Raise Forbidden unless identity may perform action (a key of TEACHER_ACTIONS)."""
    if not allowed(identity, action):
        raise Forbidden(_("In class mode only the teacher can {action}.").format(action=_(TEACHER_ACTIONS[action])))


# ---- signed tokens ------------------------------------------------------------------------------


def server_secret(base: Path) -> bytes:
    """The data folder's signing key, created once (mode 0600) and kept across server restarts."""
    path = secret_file(base)  # 32 random bytes, mode 0600: signs the tab tokens
    try:
        data = path.read_bytes()
        if len(data) >= 32:
            return data
    except FileNotFoundError:
        pass
    key = secrets.token_bytes(32)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    try:
        os.link(tmp, path)  # first writer wins: two servers starting at once agree on one key
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_bytes()


def _sign(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()[:32]


def _teacher_key(secret: bytes, password: str) -> bytes:
    return hmac.new(secret, b"teacher:" + password.encode(), hashlib.sha256).digest()


def teacher_token(tab: str, secret: bytes, password: str, now: float | None = None) -> str:
    """The teacher's sign-in for one tab: `<expiry>.<signature>`, valid TEACHER_HOURS."""
    expires = int((now or time.time()) + TEACHER_HOURS * 3600)
    return f"{expires}.{_sign(_teacher_key(secret, password), f'{tab}:{expires}')}"


def teacher_token_valid(token: str | None, tab: str, secret: bytes, password: str, now: float | None = None) -> bool:
    """True for a genuine, unexpired sign-in of this very tab under the current password."""
    if not token or token.count(".") != 1:
        return False
    expires, sig = token.split(".")
    if not expires.isdigit() or int(expires) < (now or time.time()):
        return False
    return hmac.compare_digest(sig, _sign(_teacher_key(secret, password), f"{tab}:{expires}"))
