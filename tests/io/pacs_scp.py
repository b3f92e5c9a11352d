"""A minimal Query/Retrieve SCP over a folder, run as its own process by the tests (a "PACS").

Usage: ``python pacs_scp.py FOLDER PORT_FILE [AE=PORT,...]`` - serves every DICOM file under
FOLDER as AE ``PACS`` on a free loopback port, writes the port to PORT_FILE, and runs until
killed. Study Root C-FIND at STUDY and SERIES level (exact matching on the keys given), and
C-GET and C-MOVE at SERIES or STUDY level; C-MOVE sends (as calling AE ``PACS``) to the move
destinations of the third argument, on loopback, and answers 0xA801 for any other.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pynetdicom import AE, StoragePresentationContexts, evt
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)


def load(folder: Path) -> list[tuple[Path, Dataset]]:
    out = []
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            try:
                out.append((p, pydicom.dcmread(p, stop_before_pixels=True)))
            except Exception:
                continue
    return out


def main() -> None:
    folder, port_file = Path(sys.argv[1]), Path(sys.argv[2])
    files = load(folder)
    destinations = {}
    if len(sys.argv) > 3:
        for item in sys.argv[3].split(","):
            ae_title, _, port = item.partition("=")
            destinations[ae_title] = int(port)

    def matches(ds: Dataset, query: Dataset) -> bool:
        for key in ("PatientID", "StudyInstanceUID", "SeriesInstanceUID"):
            wanted = str(query.get(key, "") or "")
            if wanted and str(ds.get(key, "")) != wanted:
                return False
        return True

    def on_find(event):
        query = event.identifier
        level = query.QueryRetrieveLevel
        key = "StudyInstanceUID" if level == "STUDY" else "SeriesInstanceUID"
        seen: dict[str, list[Dataset]] = {}
        for _, ds in files:
            if matches(ds, query):
                seen.setdefault(str(ds[key].value), []).append(ds)
        for uid, members in seen.items():
            first = members[0]
            rsp = Dataset()
            rsp.QueryRetrieveLevel = level
            rsp.StudyInstanceUID = first.StudyInstanceUID
            rsp.PatientID = first.get("PatientID", "")
            rsp.PatientName = first.get("PatientName", "")
            if level == "STUDY":
                rsp.StudyDate = first.get("StudyDate", "")
                rsp.StudyDescription = first.get("StudyDescription", "")
                rsp.ModalitiesInStudy = sorted({str(m.Modality) for m in members})
            else:
                rsp.SeriesInstanceUID = uid
                rsp.Modality = first.Modality
            yield 0xFF00, rsp

    def on_get(event):
        chosen = [p for p, ds in files if matches(ds, event.identifier)]
        yield len(chosen)
        for p in chosen:
            yield 0xFF00, pydicom.dcmread(p)

    def on_move(event):
        port = destinations.get(
            event.move_destination.decode().strip()
            if isinstance(event.move_destination, bytes)
            else str(event.move_destination).strip()
        )
        if port is None:
            yield None, None  # pynetdicom answers 0xA801, move destination unknown
            return
        yield "127.0.0.1", port
        chosen = [p for p, ds in files if matches(ds, event.identifier)]
        yield len(chosen)
        for p in chosen:
            yield 0xFF00, pydicom.dcmread(p)

    ae = AE(ae_title="PACS")
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelGet)
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelMove)
    # C-MOVE sub-operations: this AE requests the storage classes of its files
    syntaxes: dict[str, set[str]] = {}
    for _, ds in files:
        syntaxes.setdefault(str(ds.SOPClassUID), set()).add(str(ds.file_meta.TransferSyntaxUID))
    for sop_class, transfer in sorted(syntaxes.items()):
        ae.add_requested_context(sop_class, sorted(transfer))
    for cx in StoragePresentationContexts:
        ae.add_supported_context(cx.abstract_syntax, scp_role=True, scu_role=False)
    server = ae.start_server(
        ("127.0.0.1", 0),
        block=False,
        evt_handlers=[
            (evt.EVT_C_FIND, on_find),
            (evt.EVT_C_GET, on_get),
            (evt.EVT_C_MOVE, on_move),
        ],
    )
    port_file.write_text(str(server.server_address[1]))
    try:
        threading.Event().wait()  # until the test kills the process
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
