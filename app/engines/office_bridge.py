"""Keep one LibreOffice process warm and convert documents to PDF through its UNO API.

This script runs under the Python that carries LibreOffice's UNO bindings (Debian's
``python3-uno`` installs them for the system Python only), so it imports nothing but the
standard library and ``uno``. The worker starts one bridge per pool slot, in a process group of
its own, and talks to it over stdin and stdout with one JSON object per line:

- at start the bridge writes ``{"event": "ready", "version": ..., "officePid": ...}`` or
  ``{"event": "failed", "message": ...}``;
- for each request ``{"input": path, "output": path, "filter": ..., ...}`` it writes
  ``{"ok": true, "pages": n}`` or ``{"ok": false, "code": ..., "message": ...}``.

The bridge starts ``soffice`` as its own child, so killing the bridge's process group stops
LibreOffice too. When the worker goes away the bridge kills the group itself.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

import uno
import unohelper
from com.sun.star.beans import PropertyValue
from com.sun.star.connection import NoConnectException
from com.sun.star.io import IOException as UnoIOException
from com.sun.star.lang import DisposedException
from com.sun.star.task import XInteractionHandler
from com.sun.star.uno import RuntimeException as UnoRuntimeException

# Settings written into each new profile. They keep documents from running macros or fetching
# linked content, and skip first-start dialogs and update checks.
PROFILE_SETTINGS = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry"
 xmlns:xs="http://www.w3.org/2001/XMLSchema"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Common/Security/Scripting">
 <prop oor:name="MacroSecurityLevel" oor:op="fuse"><value>3</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Security/Scripting">
 <prop oor:name="DisableMacrosExecution" oor:op="fuse"><value>true</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Security/Scripting">
 <prop oor:name="BlockUntrustedRefererLinks" oor:op="fuse"><value>true</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Misc">
 <prop oor:name="FirstRun" oor:op="fuse"><value>false</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Misc">
 <prop oor:name="UseOpenCL" oor:op="fuse"><value>false</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Misc">
 <prop oor:name="UseLocking" oor:op="fuse"><value>false</value></prop></item>
<item oor:path="/org.openoffice.Office.Writer/Content/Update">
 <prop oor:name="Link" oor:op="fuse"><value>2</value></prop></item>
<item oor:path="/org.openoffice.Office.Calc/Content/Update">
 <prop oor:name="Link" oor:op="fuse"><value>1</value></prop></item>
<item oor:path="/org.openoffice.Office.Impress/Content/Update">
 <prop oor:name="Link" oor:op="fuse"><value>2</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Save/Document">
 <prop oor:name="CreateBackup" oor:op="fuse"><value>false</value></prop></item>
</oor:items>
"""

# com.sun.star.document.UpdateDocMode.NO_UPDATE and MacroExecMode.NEVER_EXECUTE.
NO_UPDATE = 0
NEVER_EXECUTE = 0

# Comma-separated, double-quoted, UTF-8 (76), from line 1; detect numbers and dates.
CSV_FILTER_OPTIONS = "44,34,76,1,,0,false,true,false,false,false"

PDF_FILTERS = {
    "com.sun.star.text.TextDocument": "writer_pdf_Export",
    "com.sun.star.sheet.SpreadsheetDocument": "calc_pdf_Export",
    "com.sun.star.presentation.PresentationDocument": "impress_pdf_Export",
    "com.sun.star.drawing.DrawingDocument": "draw_pdf_Export",
}

KIND_NAMES = {"writer": "text document", "calc": "spreadsheet", "impress": "presentation"}

DOCUMENT_KINDS = {
    "writer": "com.sun.star.text.TextDocument",
    "calc": "com.sun.star.sheet.SpreadsheetDocument",
    "impress": "com.sun.star.presentation.PresentationDocument",
}


class ConversionError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class OfficeGone(Exception):
    """LibreOffice died or its connection broke; the bridge cannot serve more requests."""


def properties(**values: Any) -> tuple[Any, ...]:
    return tuple(PropertyValue(Name=name, Value=value) for name, value in values.items())


class PasswordDetector(unohelper.Base, XInteractionHandler):
    """Interaction handler that aborts every request and notes when a password was asked for.

    Without a handler a password-protected document fails to load with no reason, and with the
    default handler a headless LibreOffice can wait for a reply forever. The request itself
    is not read: PyUNO raises SystemError on ``getRequest()`` for password requests
    (LibreOffice 7.4), so a password request is recognized by its XInteractionPassword
    continuation.
    """

    def __init__(self) -> None:
        self.password_requested = False

    def handle(self, request: Any) -> None:
        abort = None
        for continuation in request.getContinuations():
            interfaces = {interface.typeName for interface in continuation.getTypes()}
            if any(
                name.startswith("com.sun.star.task.XInteractionPassword") for name in interfaces
            ):
                self.password_requested = True
            if "com.sun.star.task.XInteractionAbort" in interfaces:
                abort = continuation
        if abort is not None:
            abort.select()


def write_profile(profile: Path) -> None:
    user = profile / "user"
    user.mkdir(parents=True, exist_ok=True)
    settings = user / "registrymodifications.xcu"
    if not settings.exists():
        settings.write_text(PROFILE_SETTINGS, encoding="utf-8")


def start_office(soffice: str, profile: Path, pipe_name: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            soffice,
            "--headless",
            "--invisible",
            "--nocrashreport",
            "--nodefault",
            "--nologo",
            "--nofirststartwizard",
            "--norestore",
            "--nolockcheck",
            f"-env:UserInstallation={profile.resolve().as_uri()}",
            f"--accept=pipe,name={pipe_name};urp;StarOffice.ComponentContext",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def connect(pipe_name: str, office: subprocess.Popen[bytes], timeout: float) -> Any:
    local_context = uno.getComponentContext()
    resolver = local_context.ServiceManager.createInstanceWithContext(
        "com.sun.star.bridge.UnoUrlResolver", local_context
    )
    url = f"uno:pipe,name={pipe_name};urp;StarOffice.ComponentContext"
    deadline = time.monotonic() + timeout
    while True:
        try:
            return resolver.resolve(url)
        except NoConnectException as err:
            # The soffice wrapper restarts soffice.bin once when it creates a new profile,
            # so an exit code alone is not final until the deadline passes.
            if office.poll() is not None and office.returncode not in (0, 81):
                raise OfficeGone(f"soffice exited with code {office.returncode} at start") from err
            if time.monotonic() > deadline:
                message = f"LibreOffice did not accept connections within {timeout:g} s"
                raise OfficeGone(message) from err
            time.sleep(0.05)


def office_version(context: Any) -> str:
    provider = context.ServiceManager.createInstanceWithContext(
        "com.sun.star.configuration.ConfigurationProvider", context
    )
    access = provider.createInstanceWithArguments(
        "com.sun.star.configuration.ConfigurationAccess",
        properties(nodepath="/org.openoffice.Setup/Product"),
    )
    return f"{access.ooName} {access.ooSetupVersionAboutBox}"


def document_kind(document: Any) -> str | None:
    for kind, service in DOCUMENT_KINDS.items():
        if document.supportsService(service):
            return kind
    return None


def page_styles(document: Any) -> list[Any]:
    styles = document.StyleFamilies.getByName("PageStyles")
    return [styles.getByName(name) for name in styles.ElementNames]


def apply_landscape(document: Any) -> None:
    for style in page_styles(document):
        width, height = style.Width, style.Height
        if width < height:
            style.Width = height
            style.Height = width
        style.IsLandscape = True


def apply_fit_to_width(document: Any) -> None:
    for style in page_styles(document):
        style.ScaleToPagesX = 1
        style.ScaleToPagesY = 0


def count_pages(document: Any, kind: str) -> int | None:
    """Return the document's page count before export, or None when it is not cheap to know."""
    if kind == "impress":
        return int(document.DrawPages.Count)
    if kind == "writer":
        controller = document.getCurrentController()
        if controller is not None:
            return int(controller.PageCount)
    return None


def selected_pages(page_range: str, pages: int) -> int:
    """Count the pages of ``page_range`` (sorted, non-overlapping ranges) that exist."""
    selected = 0
    for part in page_range.split(","):
        first, _, last = part.partition("-")
        selected += max(0, min(int(last or first), pages) - int(first) + 1)
    return selected


def check_page_count(request: dict[str, Any], pages: int | None, kind: str) -> None:
    """Reject a selection with no page, or more pages than the tool's limit, before export.

    Spreadsheets have no page count before their export, so the worker checks the PDF.
    """
    if pages is None:
        return
    unit = "slides" if kind == "impress" else "pages"
    page_range = request.get("pageRange")
    selected = selected_pages(page_range, pages) if page_range else pages
    if selected == 0:
        raise ConversionError(
            "invalid_options",
            f"pageRange {page_range} selects none of the document's {pages} {unit}. "
            f"Choose {unit} that exist.",
        )
    max_pages = request.get("maxPages")
    if max_pages and selected > max_pages:
        raise ConversionError(
            "input_too_large",
            f"{selected} {unit} are selected; this tool converts at most {max_pages}. "
            "Convert a part of the document with the pageRange option.",
        )


class Bridge:
    def __init__(self, desktop: Any) -> None:
        self.desktop = desktop

    def convert(self, request: dict[str, Any]) -> dict[str, Any]:
        source = Path(request["input"])
        target = Path(request["output"])
        detector = PasswordDetector()
        load = {
            "Hidden": True,
            "ReadOnly": True,
            "UpdateDocMode": NO_UPDATE,
            "MacroExecutionMode": NEVER_EXECUTE,
            "InteractionHandler": detector,
        }
        if request.get("importFilter"):
            load["FilterName"] = request["importFilter"]
        if request.get("importOptions"):
            load["FilterOptions"] = request["importOptions"]

        try:
            document = self.desktop.loadComponentFromURL(
                source.absolute().as_uri(), "_blank", 0, properties(**load)
            )
        except Exception as err:
            if is_disconnect(err):
                raise OfficeGone(f"LibreOffice went away while loading: {err}") from err
            raise load_failure(detector) from err
        if document is None:
            raise load_failure(detector)

        try:
            return self._export(document, request, target, detector)
        finally:
            try:
                document.close(True)
            except Exception as err:
                if is_disconnect(err):
                    raise OfficeGone(f"LibreOffice went away while closing: {err}") from err

    def _export(
        self, document: Any, request: dict[str, Any], target: Path, detector: PasswordDetector
    ) -> dict[str, Any]:
        kind = document_kind(document)
        expected = str(request.get("kind") or "")
        if kind is None or (expected and kind != expected):
            found = KIND_NAMES.get(kind or "", "document of another kind")
            raise ConversionError(
                "input_type_mismatch",
                f"The file opened as a {found}, not as a {KIND_NAMES.get(expected, expected)}. "
                "Use the tool for that kind of document.",
            )
        if detector.password_requested:
            raise ConversionError(
                "input_encrypted", "The document is protected by a password. Remove it first."
            )

        if request.get("landscape"):
            apply_landscape(document)
        if request.get("fitToWidth"):
            apply_fit_to_width(document)

        filter_data: dict[str, Any] = {}
        if request.get("pageRange"):
            filter_data["PageRange"] = request["pageRange"]
        if request.get("pdfA"):
            filter_data["SelectPdfVersion"] = 2
        if request.get("singlePageSheets"):
            filter_data["SinglePageSheets"] = True

        check_page_count(request, count_pages(document, kind), kind)

        store = {
            "FilterName": PDF_FILTERS[DOCUMENT_KINDS[kind]],
            "Overwrite": True,
            "FilterData": uno.Any("[]com.sun.star.beans.PropertyValue", properties(**filter_data)),
        }
        try:
            document.storeToURL(target.resolve().as_uri(), properties(**store))
        except Exception as err:
            # LibreOffice 7.4 fails the export with an IOException when PageRange selects no
            # existing page.
            if request.get("pageRange") and isinstance(err, UnoIOException):
                raise ConversionError(
                    "invalid_options",
                    f"pageRange {request['pageRange']} selects no page of the document. "
                    "Choose pages that exist.",
                ) from err
            raise
        if not target.exists() or target.stat().st_size == 0:
            raise ConversionError("engine_failed", "LibreOffice finished without writing a PDF.")
        return {"ok": True, "kind": kind}


def load_failure(detector: PasswordDetector) -> ConversionError:
    if detector.password_requested:
        return ConversionError(
            "input_encrypted",
            "The document is protected by a password. Remove the password and upload it again.",
        )
    return ConversionError(
        "input_corrupt",
        "LibreOffice could not open the document. Check that it opens in an office suite.",
    )


def is_disconnect(err: BaseException) -> bool:
    """Tell whether a UNO call failed because the connection to LibreOffice is gone."""
    if isinstance(err, DisposedException):
        return True
    return isinstance(err, UnoRuntimeException) and "Binary URP bridge" in str(err)


def send(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def watch_parent(parent_pid: int) -> None:
    """Kill the process group when the worker that started the bridge is gone."""
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    os.killpg(0, signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--soffice", required=True)
    parser.add_argument("--profile", required=True, type=Path)
    parser.add_argument("--start-timeout", type=float, default=60.0)
    args = parser.parse_args()

    threading.Thread(target=watch_parent, args=(os.getppid(),), daemon=True).start()
    write_profile(args.profile)
    pipe_name = f"worklane-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    office = start_office(args.soffice, args.profile, pipe_name)
    try:
        context = connect(pipe_name, office, args.start_timeout)
        desktop = context.ServiceManager.createInstanceWithContext(
            "com.sun.star.frame.Desktop", context
        )
        version = office_version(context)
    except Exception as err:
        send({"event": "failed", "message": str(err)})
        os.killpg(0, signal.SIGKILL)
        return
    send({"event": "ready", "version": version, "officePid": office.pid})

    bridge = Bridge(desktop)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            send(bridge.convert(request))
        except ConversionError as err:
            send({"ok": False, "code": err.code, "message": err.message})
        except OfficeGone as err:
            send({"ok": False, "code": "engine_crashed", "message": str(err)})
            break
        except Exception as err:
            if is_disconnect(err) or office.poll() is not None:
                send({"ok": False, "code": "engine_crashed", "message": str(err)})
                break
            send(
                {
                    "ok": False,
                    "code": "engine_failed",
                    "message": f"{type(err).__name__}: {err}",
                    "trace": traceback.format_exc(limit=5),
                }
            )
    os.killpg(0, signal.SIGKILL)


if __name__ == "__main__":
    main()
