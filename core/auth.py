"""Who may do what: laptop mode (no teacher password, one user, everything allowed) or class mode.

Class mode starts when a teacher password is set ($PETLAB_TEACHER_PASSWORD, or `teacher_password`
in .streamlit/secrets.toml). Students may then look and try on every page, but the actions in
TEACHER_ACTIONS are the teacher's: `require` refuses them, and every place that performs one calls
it (core.teach.jobs, core.teach.own_classes, the pages' single guard), so a hidden button is never the only check.

A browser tab is known by its per-tab token (core.store.session_store, `?s=` in the URL): a reload keeps
the same tab and the same private space. The teacher's sign-in is not the URL's: it is a record on the
server that the browser which typed the password proves with a cookie (start_sign_in, sign_in_valid);
Sign out ends every sign-in and a password change voids them. Password guessing is limited per computer
and for the whole server, and logged (attempt_sign_in). Computers, not tabs, are what per-student limits
count (client_key).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import ipaddress
import os
import re
import secrets
import threading
import time
import tomllib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core.codec import parse_dataclass
from core.i18n import N_, _
from core.settings import auth_dir, secret_file
from core.storage import atomic_write_json, read_json

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
    "lead_lesson": N_("choose the lesson step the class follows"),
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


# ---- the teacher's sign-ins: kept on the server, proven by a cookie no URL carries ------------------
# A sign-in is a record in `<data>/auth/sign_ins/<id>.json`. The browser that typed the password holds
# `<id>.<secret>` in a cookie (SIGN_IN_COOKIE); the record holds only the secret's hash and a check of
# the password it was made under. A connection is the teacher when it typed the password itself, or
# its browser sent a cookie whose record exists, is unexpired and matches the current password: a URL
# (?s=, seen on the projector) restores nothing, Sign out deletes every record (every connected session
# is a student at its next rerun), and changing the password voids them all.

SIGN_IN_COOKIE = "petlab_teacher"
_PROCESS_KEY: dict[str, bytes] = {}  # the key when the disk refused to store one
_UNSAVED_SIGN_INS: dict[tuple[str, str], dict] = {}  # (data folder, id) -> a sign-in the disk refused: this process's
_SIGN_IN_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def server_secret(base: Path) -> bytes:
    """The data folder's key, created once (mode 0600) and kept across server restarts."""
    path = secret_file(base)  # 32 random bytes, mode 0600: keys the sign-ins' password check
    try:
        data = path.read_bytes()
        if len(data) >= 32:
            return data
    except FileNotFoundError:
        pass
    key = secrets.token_bytes(32)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
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
    except OSError:  # a full disk: a key for this process (its sign-ins end when it stops)
        tmp.unlink(missing_ok=True)
        return _PROCESS_KEY.setdefault("key", key)


def _password_check(base: Path, password: str) -> str:
    """What a sign-in stores of the password it was made under: a keyed hash (not the password)."""
    return hmac.new(server_secret(base), b"teacher:" + password.encode(), hashlib.sha256).hexdigest()


def _sign_ins_dir(base: Path) -> Path:
    return auth_dir(base) / "sign_ins"


@dataclass(frozen=True)
class SignIn:
    """One teacher sign-in as the server keeps it (never the cookie's secret itself)."""

    sign_in_id: str
    secret_sha256: str
    password_check: str
    created: float
    expires: float
    client: str = LOCAL_CLIENT


def start_sign_in(base: Path, password: str, client: str = LOCAL_CLIENT, now: float | None = None) -> tuple[str, str]:
    """Record a new sign-in (after the password was checked); returns (its id, the cookie value for its browser)."""
    now = time.time() if now is None else now
    sign_in_id, secret = secrets.token_urlsafe(16), secrets.token_urlsafe(32)
    record = SignIn(sign_in_id, hashlib.sha256(secret.encode()).hexdigest(), _password_check(base, password), now,
                    now + TEACHER_HOURS * 3600, client)  # fmt: skip
    folder = _sign_ins_dir(base)
    for old in folder.glob("*.json") if folder.is_dir() else []:  # expired ones go (only a teacher makes them)
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            if read_json(old)["expires"] < now:
                old.unlink()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_json(folder / f"{sign_in_id}.json", asdict(record))
    except OSError:  # a full disk never stops the teacher signing in: kept by this server process
        _UNSAVED_SIGN_INS[(str(base), sign_in_id)] = asdict(record)
    return sign_in_id, f"{sign_in_id}.{secret}"


def sign_in_valid(
    base: Path, sign_in_id: str | None, password: str, secret: str | None = None, now: float | None = None
) -> bool:
    """True while this sign-in exists, is unexpired and was made under the current password; with secret (a
    cookie's), only if it is the sign-in's own. Read from disk on every call: nothing a session cached outlives
    a Sign out."""
    if not isinstance(sign_in_id, str) or not _SIGN_IN_ID.match(sign_in_id):
        return False
    try:
        path = _sign_ins_dir(base) / f"{sign_in_id}.json"
        stored = _UNSAVED_SIGN_INS.get((str(base), sign_in_id)) if not path.exists() else None
        record = parse_dataclass(SignIn, stored if stored is not None else read_json(path), "sign-in")
    except ValueError:
        return False
    if record.expires < (time.time() if now is None else now):
        return False
    if not hmac.compare_digest(record.password_check, _password_check(base, password)):
        return False
    if secret is not None:
        return hmac.compare_digest(record.secret_sha256, hashlib.sha256(secret.encode()).hexdigest())
    return True


def cookie_sign_in(value: str | None) -> tuple[str, str] | None:
    """(sign-in id, secret) from a SIGN_IN_COOKIE value, or None for anything else."""
    if not isinstance(value, str) or value.count(".") != 1:
        return None
    sign_in_id, secret = value.split(".")
    return (sign_in_id, secret) if _SIGN_IN_ID.match(sign_in_id) and 20 <= len(secret) <= 100 else None


def end_sign_ins(base: Path) -> int:
    """Sign out: end every teacher sign-in, in every browser and connected session at once; returns how many."""
    folder = _sign_ins_dir(base)
    mine = [k for k in _UNSAVED_SIGN_INS if k[0] == str(base)]
    for key in mine:
        del _UNSAVED_SIGN_INS[key]
    ended = len(mine)
    for path in folder.glob("*.json") if folder.is_dir() else []:
        path.unlink(missing_ok=True)
        ended += 1
    log_sign_in(base, "signed out: every teacher sign-in ended")
    return ended


# ---- password guessing: a limit per computer and for the whole server, and a log ---------------------
# Every attempt is decided under one lock (`auth/.guard.lock`): a computer (client_key: tabs are free,
# computers are not) waits 1, 2, 4 … s after each wrong password, up to GUESS_LOCKOUT_S (15 min) after
# ten; beyond GUESS_SERVER_PER_HOUR wrong passwords in an hour from the whole network, a computer that
# already failed twice is refused until the hour has passed (a first try, or the server itself, is never
# refused by others' guessing: the teacher keeps a way in). A refused attempt is not checked at all, so
# 100 tabs guess no faster than one. Wrong passwords are logged to `auth/sign_in.log` and shown on the
# Class page (sign_in_report).

GUESS_WINDOW_S = 3600.0
GUESS_BASE_WAIT_S = 1.0
GUESS_LOCKOUT_S = float(os.environ.get("PETLAB_SIGN_IN_LOCKOUT", "900"))
GUESS_SERVER_PER_HOUR = int(os.environ.get("PETLAB_SIGN_IN_PER_HOUR", "60"))
GUESS_FREE = 2  # wrong passwords a computer has before the server-wide limit applies to it too
MAX_GUESSERS = 5000  # computers remembered by the guard (the oldest are forgotten first)
LOG_FILE = "sign_in.log"
LOG_MAX_BYTES = 256 * 1024  # then it becomes sign_in.log.1 (one old file kept)


@dataclass(frozen=True)
class SignInAttempt:
    """The outcome of one sign-in attempt: ok, or refused with how long to wait (the password unchecked)."""

    ok: bool
    checked: bool = True  # False: refused before the password was even compared
    wait: float = 0.0  # seconds before this computer may try again
    failures: int = 0  # wrong passwords from this computer in the last hour


@dataclass(frozen=True)
class Guesser:
    """A computer that typed wrong passwords in the last hour, as the Class page lists it."""

    client: str
    failures: int
    refused: int  # attempts refused unchecked while it had to wait (since this server started)
    last: float
    wait: float  # seconds before it may try again


_GUARD_THREADS = threading.Lock()  # the file lock orders processes; this one this process's threads
_REFUSED: dict[
    tuple[str, str], int
] = {}  # (data folder, computer) -> attempts refused unchecked, in this process (never written: cheap)


_UNSAVED_GUARD: dict[str, dict] = {}  # data folder -> the guard's state the disk refused (a full disk): this process's


@contextlib.contextmanager
def _guard_locked(base: Path) -> Iterator[dict]:
    """The guard's state (auth/guard.json) under its lock; written back when the block sets state["dirty"].

    Best effort on a full disk: the state the disk refused is kept in this process and used instead, so a
    full disk neither stops the teacher signing in nor lets anyone guess faster.
    """
    folder = auth_dir(base)
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
    with _GUARD_THREADS, contextlib.ExitStack() as stack:
        with contextlib.suppress(OSError):
            fh = stack.enter_context(open(folder / ".guard.lock", "a+"))
            fcntl.flock(fh, fcntl.LOCK_EX)
            stack.callback(fcntl.flock, fh, fcntl.LOCK_UN)
        if str(base) in _UNSAVED_GUARD:
            state = _UNSAVED_GUARD[str(base)]
        else:
            try:
                state = read_json(folder / "guard.json")
                state = state if isinstance(state, dict) and isinstance(state.get("clients"), dict) else {}
            except ValueError:
                state = {}
        state = {"clients": state.get("clients", {})}
        yield state
        if state.pop("dirty", False):
            try:
                atomic_write_json(folder / "guard.json", state)
                _UNSAVED_GUARD.pop(str(base), None)
            except OSError:
                _UNSAVED_GUARD[str(base)] = state


def _failures(entry: Any, now: float) -> list[float]:
    times = entry.get("failures") if isinstance(entry, dict) else None
    return (
        [t for t in times if isinstance(t, int | float) and now - t < GUESS_WINDOW_S] if isinstance(times, list) else []
    )


def _wait(state: dict, client: str, now: float) -> float:
    """Seconds client must wait before its next attempt is checked (0: now)."""
    mine = _failures(state["clients"].get(client), now)
    if not mine:
        return 0.0
    wait = max(0.0, max(mine) + min(GUESS_BASE_WAIT_S * 2 ** (len(mine) - 1), GUESS_LOCKOUT_S) - now)
    if client != LOCAL_CLIENT and len(mine) >= GUESS_FREE:
        everyone = sorted(t for entry in state["clients"].values() for t in _failures(entry, now))
        if len(everyone) >= GUESS_SERVER_PER_HOUR:  # the whole network's hour is used up
            wait = max(wait, everyone[len(everyone) - GUESS_SERVER_PER_HOUR] + GUESS_WINDOW_S - now)
    return wait


def attempt_sign_in(base: Path, given: str, password: str, client: str, now: float | None = None) -> SignInAttempt:
    """Check a teacher password typed on `client`'s computer, within the guessing limits; logs wrong ones."""
    now = time.time() if now is None else now
    with _guard_locked(base) as state:
        entry = state["clients"].get(client)
        wait = _wait(state, client, now)
        if wait > 0:
            _REFUSED[(str(base), client)] = _REFUSED.get((str(base), client), 0) + 1
            return SignInAttempt(False, False, wait, len(_failures(entry, now)))
        state["dirty"] = True
        if check_password(given, password):
            state["clients"].pop(client, None)
            _REFUSED.pop((str(base), client), None)
            log_sign_in(base, f"signed in from {client}")
            return SignInAttempt(True)
        mine = [*_failures(entry, now), now]
        state["clients"].pop(client, None)  # re-inserted last: the dict stays oldest-first
        state["clients"][client] = {"failures": mine}
        while len(state["clients"]) > MAX_GUESSERS:
            state["clients"].pop(next(iter(state["clients"])))
        after = _wait(state, client, now)
        log_sign_in(
            base, f"wrong teacher password from {client} ({len(mine)} in the last hour; next try in {after:.0f} s)"
        )
        return SignInAttempt(False, True, after, len(mine))


def sign_in_report(base: Path, now: float | None = None) -> list[Guesser]:
    """The computers that typed wrong teacher passwords in the last hour, most recent first (the Class page)."""
    now = time.time() if now is None else now
    try:
        state = _UNSAVED_GUARD.get(str(base)) or read_json(auth_dir(base) / "guard.json")
    except ValueError:
        return []
    clients = state.get("clients") if isinstance(state, dict) else None
    if not isinstance(clients, dict):
        return []
    state = {"clients": clients}
    found = []
    for client, entry in clients.items():
        mine = _failures(entry, now)
        if mine:
            found.append(
                Guesser(client, len(mine), _REFUSED.get((str(base), client), 0), max(mine), _wait(state, client, now))
            )
    return sorted(found, key=lambda g: g.last, reverse=True)


def log_sign_in(base: Path, message: str) -> None:
    """One line in auth/sign_in.log (time, what); best effort: a full disk never stops a sign-in."""
    path = auth_dir(base) / LOG_FILE
    line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_file() and path.stat().st_size > LOG_MAX_BYTES:
            os.replace(path, path.with_name(LOG_FILE + ".1"))
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line)
    except OSError:
        pass
