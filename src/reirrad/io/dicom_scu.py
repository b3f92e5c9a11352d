"""DICOM SCU side of the node: send objects (C-STORE) and query/retrieve a PACS (C-FIND, C-GET).

* :func:`send_files` stores files on a peer (the planning system) and reports the C-STORE
  status of each (PS3.4 B.2.3; 0x0000 success, 0xB000/0xB006/0xB007 warnings, anything
  else a failure).
* :func:`find_studies` asks a PACS for a patient's studies (Study Root Query/Retrieve
  Information Model - FIND at the STUDY level, PS3.4 C.6.2), :func:`find_series` for the
  series of a study (SERIES level).
* :func:`retrieve_study` fetches a study's series of chosen modalities (e.g. only the RT
  objects of a prior course) with C-GET (PS3.4 C.4.3), which returns the objects on the same
  association so the PACS needs no route back to this node (C-MOVE would); they are written
  with the node's atomic spool writer.
* :func:`move_study` asks the PACS to send the same series by C-MOVE (PS3.4 C.4.2) to a move
  destination AE -- normally this node's own Storage SCP (``reirrad dicom-listen``), which the
  PACS must know by AE title, host and port. The objects then arrive as any other C-STORE
  (spool, grouping); the SCU only reports the sub-operation counts.

Network and peer problems are :class:`~reirrad.errors.InputError` naming the peer and what
to check, since they come from a setting the user gave (AE title, host, port).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset

from reirrad.errors import InputError
from reirrad.io.dicom import read_dicom
from reirrad.io.dicom_node import ACCEPTED_SOP_CLASSES, ACCEPTED_TRANSFER_SYNTAXES, spool_bytes

__all__ = [
    "MoveResult",
    "Peer",
    "SendResult",
    "StudyMatch",
    "find_series",
    "find_studies",
    "move_study",
    "parse_destination",
    "retrieve_study",
    "send_files",
]

LOG = logging.getLogger("reirrad.dicom_scu")

#: The RT modalities retrieved by default for a prior course (PS3.3 C.7.3.1.1.1).
RT_MODALITIES = ("RTPLAN", "RTDOSE", "RTSTRUCT", "REG", "RTRECORD")

# Warning statuses of C-STORE (PS3.4 B.2.3): the object was stored.
_STORE_WARNINGS = frozenset({0xB000, 0xB006, 0xB007})


@dataclass(frozen=True)
class Peer:
    """A remote AE: title, host and port."""

    ae_title: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


def parse_destination(text: str, *, source: str = "--to") -> Peer:
    """``AE@host:port`` -> :class:`Peer`."""
    ae, at, rest = text.partition("@")
    host, colon, port = rest.rpartition(":")
    if not (at and colon and ae.strip() and host and port.isdigit()) or len(ae.strip()) > 16:
        raise InputError(
            f"{text!r} is not AE@host:port (e.g. PLANNING@10.0.0.5:104)", source=source
        )
    if not 0 < int(port) <= 65535:
        raise InputError(f"port {port} is outside 1-65535", source=source)
    return Peer(ae.strip(), host, int(port))


@dataclass(frozen=True)
class SendResult:
    """Outcome of one C-STORE."""

    path: str
    sop_instance_uid: str
    status: int | None
    message: str

    @property
    def ok(self) -> bool:
        return self.status == 0x0000 or self.status in _STORE_WARNINGS


def _associate(peer: Peer, calling_ae: str, contexts, *, handlers=None, roles=None):
    from pynetdicom import AE

    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 60
    for abstract, syntaxes in contexts:
        ae.add_requested_context(abstract, syntaxes)
    try:
        assoc = ae.associate(
            peer.host, peer.port, ae_title=peer.ae_title, evt_handlers=handlers or [], ext_neg=roles
        )
    except (OSError, ValueError) as error:
        raise InputError(f"cannot connect ({error})", source=str(peer)) from None
    if not assoc.is_established:
        why = "rejected the association" if assoc.is_rejected else "could not be reached"
        raise InputError(
            f"the peer {why}; check its AE title, host and port, and that it accepts "
            f"calling AE {calling_ae!r}",
            source=str(peer),
        )
    return assoc


def send_files(
    paths: Iterable[str | os.PathLike], peer: Peer, *, calling_ae: str = "REIRRAD"
) -> list[SendResult]:
    """Send DICOM files to ``peer`` by C-STORE on one association.

    Each file's header is read first (hardened :func:`~reirrad.io.dicom.read_dicom`) to
    propose one presentation context per SOP class and transfer syntax; the data set is then
    sent as stored, without re-encoding.

    Returns
    -------
    list of SendResult
        One per file, in order; ``status`` is None when the peer never answered (the
        association dropped, or it refused the presentation context).
    """
    files = [Path(p) for p in paths]
    headers = [read_dicom(p, stop_before_pixels=True) for p in files]
    wanted: dict[str, list[str]] = {}
    for ds in headers:
        ts = str(ds.file_meta.TransferSyntaxUID)
        syntaxes = wanted.setdefault(str(ds.SOPClassUID), [])
        if ts not in syntaxes:
            syntaxes.append(ts)
    if len(wanted) > 128:  # PS3.8 9.3.2.2: at most 128 presentation contexts (odd IDs 1-255)
        raise InputError(f"{len(wanted)} SOP classes: send them in several batches")
    assoc = _associate(peer, calling_ae, wanted.items())
    results = []
    try:
        for path, ds in zip(files, headers, strict=True):
            uid = str(ds.SOPInstanceUID)
            try:
                rsp = assoc.send_c_store(path)
            except (ValueError, RuntimeError) as error:
                results.append(SendResult(str(path), uid, None, f"not sent: {error}"))
                continue
            status = int(rsp.Status) if "Status" in rsp else None
            message = (
                "success"
                if status == 0
                else (
                    "no answer (association dropped)"
                    if status is None
                    else f"status 0x{status:04X}"
                )
            )
            results.append(SendResult(str(path), uid, status, message))
            LOG.info("C-STORE %s to %s: %s", uid, peer, message)
    finally:
        if assoc.is_established:
            assoc.release()
    return results


@dataclass(frozen=True)
class StudyMatch:
    """One study a PACS returned for a query."""

    study_uid: str
    patient_id: str
    patient_name: str
    study_date: str
    description: str
    modalities: tuple[str, ...]


def _find(peer: Peer, calling_ae: str, query: Dataset) -> list[Dataset]:
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as Find

    assoc = _associate(peer, calling_ae, [(Find, list(ACCEPTED_TRANSFER_SYNTAXES[:2]))])
    found = []
    try:
        for status, identifier in assoc.send_c_find(query, Find):
            code = int(status.Status) if status and "Status" in status else None
            if code in (0xFF00, 0xFF01) and identifier is not None:  # pending: a match
                found.append(identifier)
            elif code is None or code != 0x0000:
                raise InputError(
                    f"C-FIND failed at {peer}: status "
                    f"{'none (association dropped)' if code is None else f'0x{code:04X}'}",
                    source=str(peer),
                )
    finally:
        if assoc.is_established:
            assoc.release()
    return found


def find_studies(peer: Peer, patient_id: str, *, calling_ae: str = "REIRRAD") -> list[StudyMatch]:
    """The studies of ``patient_id`` on ``peer`` (Study Root C-FIND, STUDY level)."""
    if not patient_id.strip() or "*" in patient_id or "?" in patient_id:
        raise InputError("give the exact patient ID (no wildcards)", source="patient_id")
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.PatientID = patient_id
    for keyword in (
        "PatientName",
        "StudyInstanceUID",
        "StudyDate",
        "StudyDescription",
        "ModalitiesInStudy",
    ):
        setattr(query, keyword, "")
    out = []
    for ds in _find(peer, calling_ae, query):
        if str(ds.get("PatientID", "")) != patient_id:
            continue  # a PACS that matches loosely: never take another patient's study
        modalities = ds.get("ModalitiesInStudy", "")
        modalities = [modalities] if isinstance(modalities, str) else list(modalities)
        out.append(
            StudyMatch(
                study_uid=str(ds.get("StudyInstanceUID", "")),
                patient_id=patient_id,
                patient_name=str(ds.get("PatientName", "")),
                study_date=str(ds.get("StudyDate", "")),
                description=str(ds.get("StudyDescription", "")),
                modalities=tuple(m for m in modalities if m),
            )
        )
    return sorted(out, key=lambda m: (m.study_date, m.study_uid))


def find_series(
    peer: Peer, study_uid: str, *, calling_ae: str = "REIRRAD"
) -> list[tuple[str, str]]:
    """``(SeriesInstanceUID, Modality)`` of the series of a study (SERIES level C-FIND)."""
    query = Dataset()
    query.QueryRetrieveLevel = "SERIES"
    query.StudyInstanceUID = study_uid
    query.SeriesInstanceUID = ""
    query.Modality = ""
    return sorted(
        (str(ds.get("SeriesInstanceUID", "")), str(ds.get("Modality", "")))
        for ds in _find(peer, calling_ae, query)
    )


def retrieve_study(
    peer: Peer,
    study_uid: str,
    destination: str | os.PathLike,
    *,
    modalities: Sequence[str] | None = RT_MODALITIES,
    calling_ae: str = "REIRRAD",
) -> list[Path]:
    """Fetch a study's series of ``modalities`` (None: all) by C-GET into ``destination``.

    Files are written atomically and named by SOP Instance UID, as in the node's spool.

    Returns
    -------
    list of Path
        The files received (duplicates of files already there included once).

    Raises
    ------
    InputError
        The peer refused, or a sub-operation failed (the files received so far stay).
    """
    from pynetdicom import build_role, evt
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet as Get

    dest = Path(destination)
    dest.mkdir(parents=True, exist_ok=True)
    series = [
        uid
        for uid, modality in find_series(peer, study_uid, calling_ae=calling_ae)
        if modalities is None or modality in modalities
    ]
    received: list[Path] = []

    def on_store(event) -> int:
        try:
            path, _ = spool_bytes(
                dest, str(event.request.AffectedSOPInstanceUID), event.encoded_dataset()
            )
        except (InputError, OSError) as error:
            LOG.warning("C-GET sub-operation refused: %s", error)
            return 0xA700 if isinstance(error, OSError) else 0xC000
        if path not in received:
            received.append(path)
        return 0x0000

    contexts = [(Get, list(ACCEPTED_TRANSFER_SYNTAXES[:2]))] + [
        (cls, list(ACCEPTED_TRANSFER_SYNTAXES)) for cls in ACCEPTED_SOP_CLASSES
    ]
    roles = [build_role(cls, scp_role=True) for cls in ACCEPTED_SOP_CLASSES]
    for series_uid in series:
        query = Dataset()
        query.QueryRetrieveLevel = "SERIES"
        query.StudyInstanceUID = study_uid
        query.SeriesInstanceUID = series_uid
        assoc = _associate(
            peer, calling_ae, contexts, handlers=[(evt.EVT_C_STORE, on_store)], roles=roles
        )
        try:
            final = None
            for status, _identifier in assoc.send_c_get(query, Get):
                final = int(status.Status) if status and "Status" in status else None
        finally:
            if assoc.is_established:
                assoc.release()
        if final != 0x0000:
            text = "none (association dropped)" if final is None else f"0x{final:04X}"
            raise InputError(
                f"C-GET of series {series_uid} from {peer} ended with status {text}",
                source=str(peer),
            )
    return received


# C-MOVE statuses (PS3.4 C.4.2.1.5) with what to do about them.
_MOVE_FAILURES = {
    0xA701: "out of resources (could not count the matches)",
    0xA702: "out of resources (could not perform the sub-operations)",
    0xA801: "the move destination is unknown to the PACS: register its AE title, host and port "
    "there",
    0xA900: "the identifier does not match the SOP class",
    0xB000: "sub-operations completed with one or more failures",
    0xFE00: "cancelled",
}


@dataclass(frozen=True)
class MoveResult:
    """Outcome of the C-MOVE of one series: the final status and sub-operation counts."""

    series_uid: str
    status: int | None
    completed: int
    failed: int
    warning: int


def _move_series(assoc, query: Dataset, destination: str, series_uid: str) -> MoveResult:
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove as Move

    final, counts = None, (0, 0, 0)
    for status, _identifier in assoc.send_c_move(query, destination, Move):
        if not status or "Status" not in status:
            final = None
            break
        final = int(status.Status)
        counts = tuple(
            int(status.get(k, 0) or 0)
            for k in (
                "NumberOfCompletedSuboperations",
                "NumberOfFailedSuboperations",
                "NumberOfWarningSuboperations",
            )
        )
    return MoveResult(series_uid, final, *counts)


def move_study(
    peer: Peer,
    study_uid: str,
    move_destination: str,
    *,
    modalities: Sequence[str] | None = RT_MODALITIES,
    calling_ae: str = "REIRRAD",
) -> list[MoveResult]:
    """Have ``peer`` send a study's series of ``modalities`` (None: all) to ``move_destination``.

    Parameters
    ----------
    peer
        The PACS (Study Root Query/Retrieve - MOVE SCP).
    study_uid
        The study to retrieve.
    move_destination
        AE title the PACS sends to (PS3.4 C.4.2.1.4.1 Move Destination), normally this node's.
    modalities
        Series to retrieve, by modality; the series are found with a SERIES-level C-FIND.

    Returns
    -------
    list of MoveResult
        One per series, all with status 0x0000.

    Raises
    ------
    InputError
        The PACS refused, or a series ended with another status (named, with the counts);
        series moved before it stay moved.
    """
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove as Move

    destination = move_destination.strip()
    if not destination or len(destination) > 16 or "\\" in destination:
        raise InputError(
            f"{move_destination!r} is not an AE title (1-16 characters)", source="move_destination"
        )
    series = [
        uid
        for uid, modality in find_series(peer, study_uid, calling_ae=calling_ae)
        if modalities is None or modality in modalities
    ]
    results = []
    for series_uid in series:
        query = Dataset()
        query.QueryRetrieveLevel = "SERIES"
        query.StudyInstanceUID = study_uid
        query.SeriesInstanceUID = series_uid
        assoc = _associate(peer, calling_ae, [(Move, list(ACCEPTED_TRANSFER_SYNTAXES[:2]))])
        try:
            result = _move_series(assoc, query, destination, series_uid)
        finally:
            if assoc.is_established:
                assoc.release()
        LOG.info(
            "C-MOVE series %s from %s to %s: status %s, %d completed, %d failed, %d warnings",
            series_uid, peer, destination,
            "none" if result.status is None else f"0x{result.status:04X}",
            result.completed, result.failed, result.warning,
        )  # fmt: skip
        if result.status != 0x0000:
            why = (
                "no answer (association dropped)"
                if result.status is None
                else f"0x{result.status:04X} "
                + _MOVE_FAILURES.get(result.status, "failure (see the PACS's log)")
            )
            raise InputError(
                f"C-MOVE of series {series_uid} to {destination} ended with status {why}; "
                f"{result.completed} objects sent, {result.failed} failed",
                source=str(peer),
            )
        results.append(result)
    return results
