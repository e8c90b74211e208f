"""The file workflow: New, Open, examples, Save/Save As, recent files, import/export, autosave and recovery.

Owns: `FileController`, `Recovery`. It is the only UI code that reads or writes the user's files.
Reads are synchronous (projects are small JSON); writes go through `core.fileformat`, which writes
atomically (temporary file, fsync, rename), so a crash leaves the old file or the new one. A refused
file shows every problem (`FileFormatError.problems`) and leaves the open document untouched.

While the document is dirty, its content is written every 30 s to an autosave file in the platformdirs
user-state directory, beside a small JSON note (owner pid, original path, name). A clean save or close
deletes both; finding a note whose owner is gone at start-up means the previous session crashed, and
`offer_recovery` asks whether to restore it. Imports PySide6, platformdirs and mqstudio.core.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import platformdirs
from PySide6.QtCore import QObject, QSettings, QTimer, Signal
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox, QWidget

from mqstudio.core import fileformat
from mqstudio.core.definitions import export_definitions, import_definitions
from mqstudio.core.document import TopologyDocument
from mqstudio.core.errors import FileFormatError
from mqstudio.core.loading import Format, build_document
from mqstudio.ui.editor import DocumentEditor
from mqstudio.ui.resources import Example
from mqstudio.ui.shelldialogs import Button, ProblemsDialog, ask

PROJECT_FILTER = "mqstudio projects (*.mqs.json *.mqstudio.json)"
DEFINITIONS_FILTER = "RabbitMQ definitions (*.json)"
OPEN_FILTERS = f"mqstudio files (*.mqs.json *.mqstudio.json *.json);;{PROJECT_FILTER};;{DEFINITIONS_FILTER}"
IMAGE_FILTERS = "PNG image (*.png);;SVG image (*.svg)"
AUTOSAVE_INTERVAL_MS = 30_000
MAX_RECENT = 10
RECENT_KEY = "files/recent"
LAST_DIR_KEY = "files/last_dir"
ALL_VHOSTS = "All vhosts (cluster-wide definitions)"


def default_autosave_dir() -> Path:
    return Path(platformdirs.user_state_dir("mqstudio", appauthor=False)) / "autosave"


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists, owned by someone else
    return True


def project_name(name: str) -> str:
    """`name` with a project suffix: ``orders`` → ``orders.mqs.json``; ``x.mqs.json`` unchanged."""
    if name.lower().endswith(fileformat.PROJECT_SUFFIXES):
        return name
    return f"{name.removesuffix('.json')}.mqs.json"


@dataclass(frozen=True, slots=True)
class Recovery:
    """An autosave left behind by a session that did not close cleanly."""

    content: Path
    note: Path
    original: Path | None
    name: str
    saved_at: datetime


class FileController(QObject):
    """Signals: ``document_opened()`` after the editor gets a new document, ``title_changed()`` when the
    display name changes (save as), ``recent_changed()``, ``message(str)`` for the status bar."""

    document_opened = Signal()
    title_changed = Signal()
    recent_changed = Signal()
    message = Signal(str)

    def __init__(
        self,
        window: QWidget,
        editor: DocumentEditor,
        settings: QSettings,
        autosave_dir: Path | None = None,
    ) -> None:
        super().__init__(window)
        self._window = window
        self._editor = editor
        self._settings = settings
        self._suggested: str | None = None
        self.autosave_dir = autosave_dir if autosave_dir is not None else default_autosave_dir()
        self._session = uuid.uuid4().hex[:12]
        self._autosave_timer = QTimer(self)
        self._autosave_timer.setInterval(AUTOSAVE_INTERVAL_MS)
        self._autosave_timer.timeout.connect(self.autosave_now)
        self._autosave_timer.start()

    # -- naming --------------------------------------------------------------------------------
    @property
    def document(self) -> TopologyDocument:
        return self._editor.document

    @property
    def display_name(self) -> str:
        """What the title bar calls the document: its file name, or what an import/example suggests."""
        if self.document.path is not None:
            return self.document.path.name
        return self._suggested or "Untitled"

    def _set_document(self, document: TopologyDocument, suggested: str | None = None) -> None:
        self._suggested = suggested
        self.discard_autosave()
        self._editor.set_document(document)
        self.document_opened.emit()
        self.title_changed.emit()

    def _start_dir(self) -> str:
        if self.document.path is not None:
            return str(self.document.path.parent)
        return str(self._settings.value(LAST_DIR_KEY, "") or Path.home())

    def _remember_dir(self, path: Path) -> None:
        self._settings.setValue(LAST_DIR_KEY, str(path.parent))

    # -- unsaved changes -----------------------------------------------------------------------
    def maybe_save(self) -> bool:
        """Before the document is replaced or closed: True to go on (saved or discarded), False to stop."""
        if not self.document.dirty:
            return True
        answer = ask(
            self._window,
            "Unsaved Changes",
            f"Do you want to save the changes you made to “{self.display_name}”?",
            "Your changes will be lost if you don't save them.",
            buttons=(Button.Save, Button.Discard, Button.Cancel),
            default=Button.Save,
            icon=QMessageBox.Icon.Warning,
            button_texts={Button.Discard: "Do&n't Save"},
        )
        if answer == Button.Save:
            return self.save()
        return answer == Button.Discard

    # -- new / open ----------------------------------------------------------------------------
    def new_document(self) -> bool:
        if not self.maybe_save():
            return False
        self._set_document(TopologyDocument())
        self.message.emit("New project")
        return True

    def open_dialog(self) -> bool:
        if not self.maybe_save():
            return False
        name, _ = QFileDialog.getOpenFileName(self._window, "Open", self._start_dir(), OPEN_FILTERS)
        return bool(name) and self.open_path(name, ask_first=False)

    def open_path(self, path: str | os.PathLike[str], *, ask_first: bool = True) -> bool:
        """Open a project, or a definitions file as a new untitled project. On failure show why and keep
        the open document. With `ask_first`, unsaved changes are offered for saving first."""
        file = Path(path)
        loaded = self._read(file, "Open")
        if loaded is None:
            return False
        kind, document = loaded
        if ask_first and not self.maybe_save():
            return False
        if kind == "project":
            document.path = file
            self._set_document(document)
            self.add_recent(file)
        else:
            self._set_document(document, suggested=project_name(file.name))
            self.message.emit(
                f"Imported RabbitMQ definitions from {file.name}; save to keep them as a project"
            )
        self._remember_dir(file)
        return True

    def open_example(self, example: Example) -> bool:
        """Open a bundled example as an untitled copy: saving never writes into the installation."""
        if not self.maybe_save():
            return False
        loaded = self._read(example.path, "Open Example")
        if loaded is None:
            return False
        document = loaded[1]
        document.path = None
        self._set_document(document, suggested=example.path.name)
        self.message.emit(f"Opened example “{example.title}”")
        return True

    def import_definitions_dialog(self) -> bool:
        if not self.maybe_save():
            return False
        name, _ = QFileDialog.getOpenFileName(
            self._window, "Import RabbitMQ Definitions", self._start_dir(),
            f"{DEFINITIONS_FILTER};;All files (*)",
        )
        return bool(name) and self.import_definitions(Path(name))

    def import_definitions(self, file: Path) -> bool:
        try:
            document = import_definitions(file.read_bytes(), str(file))
        except OSError as exc:
            self._cannot("Import RabbitMQ Definitions", file, exc)
            return False
        except FileFormatError as exc:
            self._show_problems("Import RabbitMQ Definitions", exc)
            return False
        self._set_document(document, suggested=project_name(file.name))
        self._remember_dir(file)
        self.message.emit(f"Imported RabbitMQ definitions from {file.name}")
        return True

    def _read(self, file: Path, title: str) -> tuple[Format, TopologyDocument] | None:
        try:
            data = fileformat.parse_json(file.read_bytes(), str(file))
            return build_document(data, str(file))
        except OSError as exc:
            self._cannot(title, file, exc)
            if isinstance(exc, FileNotFoundError):
                self.remove_recent(file)
        except FileFormatError as exc:
            self._show_problems(title, exc)
        return None

    def _cannot(self, title: str, file: Path, exc: OSError) -> None:
        QMessageBox.warning(self._window, title, f"Cannot read “{file}”:\n{exc.strerror or exc}")

    def _show_problems(self, title: str, exc: FileFormatError) -> None:
        count = len(exc.problems)
        summary = (
            f"<b>“{Path(exc.source).name}” was not opened.</b><br>"
            f"{count} problem{'s' if count != 1 else ''} found; nothing was loaded and the open "
            "document is unchanged."
        )
        ProblemsDialog(self._window, title, summary, exc.problems).exec()

    # -- save ----------------------------------------------------------------------------------
    def save(self) -> bool:
        path = self.document.path
        return self.save_as() if path is None else self.save_to(path)

    def save_as(self) -> bool:
        start = Path(self._start_dir()) / (self.document.path.name if self.document.path else
                                           project_name(self.display_name))
        name, _ = QFileDialog.getSaveFileName(self._window, "Save As", str(start), PROJECT_FILTER)
        if not name:
            return False
        file = Path(name)
        return self.save_to(file.with_name(project_name(file.name)))

    def save_to(self, path: Path) -> bool:
        try:
            fileformat.save(self.document, path)
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            QMessageBox.critical(self._window, "Save", f"Cannot save “{path}”:\n{reason}")
            return False
        self.document.path = path
        self._suggested = None
        self._editor.mark_saved()
        self.discard_autosave()
        self.add_recent(path)
        self._remember_dir(path)
        self.title_changed.emit()
        self.message.emit(f"Saved {path.name}")
        return True

    # -- export --------------------------------------------------------------------------------
    def vhosts(self) -> list[str]:
        topology = self.document.topology
        found = set(topology.vhosts)
        found.update(exchange.vhost for exchange in topology.exchanges)
        found.update(queue.vhost for queue in topology.queues)
        return sorted(found)

    def export_definitions_dialog(self) -> bool:
        choices = [ALL_VHOSTS, *self.vhosts()]
        choice, ok = QInputDialog.getItem(
            self._window, "Export RabbitMQ Definitions",
            "Export the cluster-wide form (every object names its vhost), or one vhost's form for "
            "POST /api/definitions/{vhost}:", choices, 0, False,
        )
        if not ok:
            return False
        vhost = None if choice == ALL_VHOSTS else choice
        stem = self.display_name.removesuffix(".json").removesuffix(".mqs").removesuffix(".mqstudio")
        start = Path(self._start_dir()) / f"{stem}.definitions.json"
        name, _ = QFileDialog.getSaveFileName(self._window, "Export RabbitMQ Definitions", str(start),
                                              DEFINITIONS_FILTER)
        return bool(name) and self.export_definitions(Path(name), vhost)

    def export_definitions(self, path: Path, vhost: str | None = None) -> bool:
        text = json.dumps(export_definitions(self.document, vhost), indent=2, ensure_ascii=False) + "\n"
        try:
            fileformat.write_text_atomic(path, text)
        except OSError as exc:
            QMessageBox.critical(self._window, "Export", f"Cannot write “{path}”:\n{exc.strerror or exc}")
            return False
        topology = self.document.topology
        left_out = len(topology.topics) + len(topology.consumer_groups)
        note = f" ({left_out} Kafka objects left out)" if left_out else ""
        self.message.emit(f"Exported definitions to {path.name}{note}")
        return True

    def export_image_dialog(self, scene: Any) -> bool:
        """Render the canvas (`scene.render_to_image` / `render_to_svg`) to a PNG or SVG file."""
        stem = self.display_name.split(".")[0] or "topology"
        name, chosen = QFileDialog.getSaveFileName(
            self._window, "Export Image", str(Path(self._start_dir()) / f"{stem}.png"), IMAGE_FILTERS
        )
        if not name:
            return False
        path = Path(name)
        if path.suffix.lower() not in (".png", ".svg"):
            path = path.with_name(path.name + (".svg" if "svg" in chosen.lower() else ".png"))
        try:
            if path.suffix.lower() == ".svg":
                scene.render_to_svg(str(path))
            else:
                scene.render_to_image(str(path))
        except OSError as exc:
            QMessageBox.critical(self._window, "Export Image", f"Cannot write “{path}”:\n{exc}")
            return False
        self.message.emit(f"Exported the canvas to {path.name}")
        return True

    # -- recent files --------------------------------------------------------------------------
    def recent_files(self) -> list[Path]:
        value = self._settings.value(RECENT_KEY, [])
        # INI settings give a one-element list back as a plain string.
        items: list[object] = [value] if isinstance(value, str) else []
        if isinstance(value, list):
            items = list(value)
        return [Path(str(item)) for item in items if item]

    def _store_recent(self, paths: list[Path]) -> None:
        self._settings.setValue(RECENT_KEY, [str(p) for p in paths[:MAX_RECENT]])
        self.recent_changed.emit()

    def add_recent(self, path: Path) -> None:
        resolved = path.resolve()
        self._store_recent([resolved, *(p for p in self.recent_files() if p != resolved)])

    def remove_recent(self, path: Path) -> None:
        resolved = path.resolve()
        self._store_recent([p for p in self.recent_files() if p != resolved])

    def clear_recent(self) -> None:
        self._store_recent([])

    # -- autosave and recovery -----------------------------------------------------------------
    @property
    def autosave_path(self) -> Path:
        return self.autosave_dir / f"{self._session}.mqs.json"

    @property
    def _note_path(self) -> Path:
        return self.autosave_dir / f"{self._session}.note.json"

    def autosave_now(self) -> bool:
        """Write the dirty document to the autosave file (or drop the autosave when clean)."""
        if not self.document.dirty:
            self.discard_autosave()
            return False
        note = {
            "pid": os.getpid(),
            "path": str(self.document.path) if self.document.path else None,
            "name": self.display_name,
            "saved_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        }
        try:
            self.autosave_dir.mkdir(parents=True, exist_ok=True)
            fileformat.write_text_atomic(self.autosave_path, fileformat.dumps(self.document))
            fileformat.write_text_atomic(self._note_path, json.dumps(note, indent=2) + "\n")
        except (OSError, ValueError) as exc:
            self.message.emit(f"Autosave failed: {exc}")
            return False
        return True

    def discard_autosave(self) -> None:
        for path in (self.autosave_path, self._note_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def pending_recoveries(self) -> list[Recovery]:
        """Autosaves of sessions that ended without closing cleanly, newest first."""
        found: list[Recovery] = []
        if not self.autosave_dir.is_dir():
            return found
        for note_path in self.autosave_dir.glob("*.note.json"):
            session = note_path.name.removesuffix(".note.json")
            content = self.autosave_dir / f"{session}.mqs.json"
            if session == self._session:
                continue
            try:
                note = json.loads(note_path.read_text(encoding="utf-8"))
                pid = int(note.get("pid", 0))
                saved_at = datetime.fromisoformat(str(note["saved_at"]))
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                continue
            if pid != os.getpid() and _pid_alive(pid):
                continue  # another running mqstudio owns it
            if not content.exists():
                with contextlib.suppress(OSError):
                    note_path.unlink()
                continue
            original = Path(note["path"]) if note.get("path") else None
            name = str(note.get("name") or "Untitled")
            found.append(Recovery(content, note_path, original, name, saved_at))
        return sorted(found, key=lambda r: r.saved_at, reverse=True)

    def offer_recovery(self) -> bool:
        """Ask about each crashed session's autosave; True once one has been recovered."""
        for recovery in self.pending_recoveries():
            when = recovery.saved_at.strftime("%Y-%m-%d %H:%M")
            answer = ask(
                self._window,
                "Recover Unsaved Changes",
                f"mqstudio did not shut down cleanly. Unsaved changes to “{recovery.name}” were "
                f"autosaved at {when}.",
                "Recover them to continue where you left off, or discard them.",
                buttons=(Button.Yes, Button.Discard, Button.Cancel),
                default=Button.Yes,
                button_texts={Button.Yes: "&Recover", Button.Cancel: "&Later"},
            )
            if answer == Button.Discard:
                self._delete_recovery(recovery)
            elif answer == Button.Yes and self.recover(recovery):
                return True
        return False

    def recover(self, recovery: Recovery) -> bool:
        loaded = self._read(recovery.content, "Recover")
        if loaded is None:
            return False
        document = loaded[1]
        document.path = recovery.original
        self._set_document(document, suggested=None if recovery.original else recovery.name)
        # Never clean until saved: the recovered changes are not on disk where the user expects them.
        self._editor.undo_stack.resetClean()
        document.set_dirty(True)
        self._delete_recovery(recovery)
        self.autosave_now()
        self.message.emit(f"Recovered unsaved changes to {recovery.name}")
        return True

    @staticmethod
    def _delete_recovery(recovery: Recovery) -> None:
        for path in (recovery.content, recovery.note):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def shutdown(self) -> None:
        """The window closes cleanly: nothing to recover next time."""
        self._autosave_timer.stop()
        self.discard_autosave()
