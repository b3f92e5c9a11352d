"""A minimal Query/Retrieve SCP over a folder, run as its own process by the tests (a "PACS").

Usage: ``python pacs_scp.py FOLDER PORT_FILE`` - serves every DICOM file under FOLDER as
AE ``PACS`` on a free loopback port, writes the port to PORT_FILE, and runs until killed.
Study Root C-FIND at STUDY and SERIES level (exact matching on the keys given) and C-GET at
SERIES or STUDY level.
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

    ae = AE(ae_title="PACS")
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelGet)
    for cx in StoragePresentationContexts:
        ae.add_supported_context(cx.abstract_syntax, scp_role=True, scu_role=False)
    server = ae.start_server(
        ("127.0.0.1", 0),
        block=False,
        evt_handlers=[(evt.EVT_C_FIND, on_find), (evt.EVT_C_GET, on_get)],
    )
    port_file.write_text(str(server.server_address[1]))
    try:
        threading.Event().wait()  # until the test kills the process
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
