"""A DICOM Storage SCP that spools what planning systems send (pynetdicom).

The node accepts the storage SOP classes of DICOM RT courses (:data:`ACCEPTED_SOP_CLASSES`)
in uncompressed and lossless transfer syntaxes (:data:`ACCEPTED_TRANSFER_SYNTAXES`) from
the peers its :class:`NodeConfig` allows, and writes each object to a spool folder
atomically.  The spool is the queue: whatever is registered downstream (the registry's
content-addressed store) is registered from the spool, by the ``on_stored`` callback right
after the rename and by :func:`spooled_objects` after a crash, so nothing received is lost.

Refusals follow the standard:

* a calling AE title or host that is not allowed: A-ASSOCIATE-RJ, rejected-permanent,
  source service-user, reason "calling-AE-title-not-recognized" (3) or "no-reason-given"
  (1) for a host (DICOM PS3.8 9.3.4, Table 9-21);
* an SOP class or transfer syntax not accepted: that presentation context is rejected
  ("abstract-syntax-not-supported" / "transfer-syntaxes-not-supported", PS3.8 9.3.3.2), so
  the peer cannot send it on this association; if nothing is acceptable, pynetdicom
  rejects the association;
* a C-STORE whose data set cannot be parsed: status 0xC000 "Error: Cannot understand";
  whose SOP Class/Instance UIDs differ from the request's: 0xA900 "Error: Data Set does
  not match SOP Class"; a disk that cannot take it: 0xA700 "Refused: Out of Resources"
  (PS3.4 B.2.3, Storage Service Class statuses).

Spool files are named ``<SOP Instance UID>.dcm``.  An identical re-send (same bytes) is a
no-op reported as success and logged "duplicate"; a different object under a UID already
spooled is kept beside it as ``<UID>.conflict-<sha256 prefix>.dcm`` and logged as a
conflict, never overwriting the first.  A peer killed mid-transfer leaves nothing: pynetdicom
hands a data set to the handler only once it is complete, and the handler writes to a
hidden temporary file that :class:`StorageSCP` removes at start.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import logging
import os
import re
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydicom import uid as _uid
from pydicom.dataset import Dataset

from reirrad.core.dicom_groups import ObjectSummary, ReferencedSeries
from reirrad.errors import InputError
from reirrad.io.dicom import read_dicom

__all__ = [
    "ACCEPTED_SOP_CLASSES",
    "ACCEPTED_TRANSFER_SYNTAXES",
    "AllowedPeer",
    "NodeConfig",
    "SpoolOutcome",
    "StorageSCP",
    "is_conflict_copy",
    "no_delay",
    "parse_peer",
    "spool_bytes",
    "spooled_objects",
    "storage_ae",
    "summarize_dataset",
    "summarize_file",
]

LOG = logging.getLogger("reirrad.dicom_node")

#: Storage SOP classes accepted (PS3.4 Annex B.5, Table B.5-1).  Only the classic image
#: IODs: the Enhanced CT/MR/PET multi-frame classes are refused because the readers of
#: :mod:`reirrad.io.dicom` do not read them.
ACCEPTED_SOP_CLASSES: dict[str, str] = {
    _uid.CTImageStorage: "CT Image Storage",
    _uid.MRImageStorage: "MR Image Storage",
    _uid.PositronEmissionTomographyImageStorage: "PET Image Storage",
    _uid.RTStructureSetStorage: "RT Structure Set Storage",
    _uid.RTPlanStorage: "RT Plan Storage",
    _uid.RTIonPlanStorage: "RT Ion Plan Storage",
    _uid.RTDoseStorage: "RT Dose Storage",
    _uid.SpatialRegistrationStorage: "Spatial Registration Storage",
    _uid.DeformableSpatialRegistrationStorage: "Deformable Spatial Registration Storage",
    _uid.RTBeamsTreatmentRecordStorage: "RT Beams Treatment Record Storage",
    _uid.RTIonBeamsTreatmentRecordStorage: "RT Ion Beams Treatment Record Storage",
    _uid.RTBrachyTreatmentRecordStorage: "RT Brachy Treatment Record Storage",
    _uid.RTTreatmentSummaryRecordStorage: "RT Treatment Summary Record Storage",
}

#: Transfer syntaxes accepted (PS3.5 Annex A): the uncompressed ones, deflate, and the
#: lossless compressions.  Lossy JPEG / JPEG-LS near-lossless / JPEG 2000 are refused: they
#: change Hounsfield units and dose values, which a dose assessment must not silently use.
ACCEPTED_TRANSFER_SYNTAXES: tuple[str, ...] = (
    _uid.ExplicitVRLittleEndian,
    _uid.ImplicitVRLittleEndian,
    _uid.DeflatedExplicitVRLittleEndian,
    _uid.ExplicitVRBigEndian,
    _uid.JPEGLossless,
    _uid.JPEGLosslessSV1,
    _uid.JPEGLSLossless,
    _uid.JPEG2000Lossless,
    _uid.RLELossless,
)

# C-STORE statuses (PS3.4 B.2.3).
STATUS_SUCCESS = 0x0000
STATUS_OUT_OF_RESOURCES = 0xA700
STATUS_DATASET_MISMATCH = 0xA900
STATUS_CANNOT_UNDERSTAND = 0xC000

# A UID is at most 64 characters of digits and dots (PS3.5 9.1); checking it also keeps a
# received UID from naming a path outside the spool.
_UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_TMP_PREFIX = ".incoming-"


@dataclass(frozen=True)
class AllowedPeer:
    """A calling AE allowed to store: AE title, and host (IP address) if restricted."""

    ae_title: str
    host: str | None = None

    def matches(self, ae_title: str, host: str) -> bool:
        return self.ae_title == ae_title and (self.host is None or self.host == host)


def parse_peer(text: str) -> AllowedPeer:
    """``AE`` or ``AE@host`` -> :class:`AllowedPeer` (the CLI's ``--allow``)."""
    ae, _, host = text.partition("@")
    ae, host = ae.strip(), host.strip()
    if not ae or len(ae) > 16 or "\\" in ae:
        raise InputError(
            f"{text!r} is not a calling AE title (1-16 characters, optionally @host)",
            source="--allow",
        )
    if host:
        # compared with the peer's address as the socket reports it: an IP address, not a
        # name (resolving names would make the check depend on DNS at every start)
        try:
            host = str(ipaddress.ip_address(host))
        except ValueError:
            raise InputError(
                f"{host!r} in {text!r} is not an IP address; give the sender's address",
                source="--allow",
            ) from None
    return AllowedPeer(ae, host or None)


@dataclass(frozen=True)
class NodeConfig:
    """Settings of the Storage SCP.

    ``allowed`` empty means any calling AE may store (logged as a warning at start); the
    default host is the loopback interface, reachable only from this machine.
    """

    spool: Path
    ae_title: str = "REIRRAD"
    host: str = "127.0.0.1"
    port: int = 11112
    allowed: tuple[AllowedPeer, ...] = ()

    def __post_init__(self) -> None:
        if not self.ae_title.strip() or len(self.ae_title) > 16:
            raise InputError("the AE title must have 1-16 characters", source="--ae-title")
        if not 0 <= self.port <= 65535:
            raise InputError(f"port {self.port} is outside 0-65535", source="--port")


class SpoolOutcome:
    """What :func:`spool_bytes` did with an object."""

    STORED = "stored"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"


_spool_lock = threading.Lock()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_temp(spool: Path, data: bytes) -> Path:
    fd, name = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=".part", dir=spool)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def spool_bytes(
    spool: Path,
    sop_instance_uid: str,
    data: bytes,
    check: Callable[[Path], object] | None = None,
) -> tuple[Path, str]:
    """Write one object's bytes to the spool atomically; never overwrite.

    The bytes go to a hidden temporary file in the spool folder, are fsynced, optionally
    checked (``check(temp_path)`` may raise to refuse the object, which then leaves no
    trace) and renamed with :func:`os.replace`; the folder is fsynced so the rename
    survives a power cut.

    Returns
    -------
    (path, outcome)
        The object's spool file and :class:`SpoolOutcome`.
    """
    if not _UID_RE.match(sop_instance_uid) or len(sop_instance_uid) > 64:
        raise InputError(
            f"SOP Instance UID {sop_instance_uid!r} is not a valid UID",
            field="SOPInstanceUID",
        )
    final = spool / f"{sop_instance_uid}.dcm"
    temp = _write_temp(spool, data)
    try:
        if check is not None:
            check(temp)
        # The lock makes "is the name free? then rename" atomic between the threads of
        # one node (one association per thread); one spool belongs to one node.
        with _spool_lock:
            target, outcome = final, SpoolOutcome.STORED
            if final.exists():
                if _same_bytes(final, data):
                    temp.unlink()
                    return final, SpoolOutcome.DUPLICATE
                # hashed only here: a conflict copy exists only beside its first object,
                # which the node never removes (SHA-256 of a 0.5 MB CT slice: ~0.4 ms)
                digest = hashlib.sha256(data).hexdigest()
                target = spool / f"{sop_instance_uid}.conflict-{digest[:16]}.dcm"
                outcome = SpoolOutcome.CONFLICT
                if target.exists() and _same_bytes(target, data):
                    temp.unlink()
                    return target, SpoolOutcome.DUPLICATE
            os.replace(temp, target)
        _fsync_dir(spool)
        return target, outcome
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _same_bytes(path: Path, data: bytes) -> bool:
    return path.stat().st_size == len(data) and path.read_bytes() == data


def spooled_objects(spool: Path) -> Iterator[Path]:
    """The complete objects in a spool (temporary files excluded), in name order.

    Conflicting copies (:func:`is_conflict_copy`) are included: the caller decides.
    """
    for p in sorted(Path(spool).glob("*.dcm")):
        if not p.name.startswith("."):
            yield p


def is_conflict_copy(path: Path) -> bool:
    """True for a spool file kept beside an earlier, different object with the same UID."""
    return ".conflict-" in Path(path).name


# --------------------------------------------------------------------------------------
# Header -> ObjectSummary
# --------------------------------------------------------------------------------------


def _s(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword, "")
    return "" if value is None else str(value).strip()


def _seq(ds: Dataset, keyword: str) -> list[Dataset]:
    value = ds.get(keyword)
    return list(value) if value else []


def _referenced_series(ds: Dataset) -> tuple[ReferencedSeries, ...]:
    out = []
    for frame in _seq(ds, "ReferencedFrameOfReferenceSequence"):
        for study in _seq(frame, "RTReferencedStudySequence"):
            for series in _seq(study, "RTReferencedSeriesSequence"):
                images = tuple(
                    _s(item, "ReferencedSOPInstanceUID")
                    for item in _seq(series, "ContourImageSequence")
                )
                out.append(ReferencedSeries(_s(series, "SeriesInstanceUID"), images))
    return tuple(out)


def _registered_frames(ds: Dataset) -> tuple[str, ...]:
    frames = [_s(ds, "FrameOfReferenceUID")]
    for item in _seq(ds, "RegistrationSequence"):  # spatial registration, PS3.3 C.20.2
        frames.append(_s(item, "FrameOfReferenceUID"))
    for item in _seq(ds, "DeformableRegistrationSequence"):  # PS3.3 C.20.3
        frames.append(_s(item, "SourceFrameOfReferenceUID"))
    return tuple(dict.fromkeys(f for f in frames if f))


def _treatment_dates(ds: Dataset) -> tuple[str, ...]:
    dates = []
    for keyword in ("TreatmentSessionBeamSequence", "TreatmentSessionIonBeamSequence"):
        for item in _seq(ds, keyword):
            if _s(item, "TreatmentDate"):
                dates.append(_s(item, "TreatmentDate"))
    # RT General Treatment Record Module: the session's date (beams and brachy records);
    # RT Treatment Summary Record Module: first and most recent treatment dates
    keywords = ("FirstTreatmentDate", "MostRecentTreatmentDate")
    if not dates:
        dates += [_s(ds, k) for k in ("TreatmentDate", *keywords) if _s(ds, k)]
    return tuple(sorted(set(dates)))


def _fractions(ds: Dataset) -> tuple[int, ...]:
    out = []
    for group in _seq(ds, "FractionGroupSequence"):
        value = group.get("NumberOfFractionsPlanned")
        if value not in (None, ""):
            out.append(int(value))
    return tuple(out)


def summarize_dataset(ds: Dataset, source: str = "") -> ObjectSummary:
    """The :class:`ObjectSummary` of a parsed data set (header attributes only)."""
    try:
        return ObjectSummary(
            sop_class_uid=_s(ds, "SOPClassUID"),
            sop_instance_uid=_s(ds, "SOPInstanceUID"),
            modality=_s(ds, "Modality"),
            patient_id=_s(ds, "PatientID"),
            patient_name=_s(ds, "PatientName"),
            patient_birth_date=_s(ds, "PatientBirthDate"),
            study_uid=_s(ds, "StudyInstanceUID"),
            series_uid=_s(ds, "SeriesInstanceUID"),
            frame_of_reference_uid=_s(ds, "FrameOfReferenceUID"),
            referenced_plan_uids=tuple(
                _s(i, "ReferencedSOPInstanceUID") for i in _seq(ds, "ReferencedRTPlanSequence")
            ),
            referenced_structure_set_uids=tuple(
                _s(i, "ReferencedSOPInstanceUID")
                for i in _seq(ds, "ReferencedStructureSetSequence")
            ),
            referenced_series=_referenced_series(ds),
            registered_frame_uids=_registered_frames(ds),
            plan_label=_s(ds, "RTPlanLabel"),
            fractions_planned=_fractions(ds),
            plan_date=_s(ds, "RTPlanDate"),
            study_date=_s(ds, "StudyDate"),
            treatment_dates=_treatment_dates(ds),
            source=source,
        )
    except (ValueError, TypeError) as error:
        raise InputError(f"unreadable header attribute ({error})", source=source) from None


def summarize_file(path: str | os.PathLike) -> ObjectSummary:
    """Read a DICOM file's header (hardened :func:`~reirrad.io.dicom.read_dicom`, no pixels).

    Raises
    ------
    InputError
        Not DICOM, truncated, or a header attribute of the wrong type; or a SOP class this
        node does not accept.
    """
    ds = read_dicom(path, stop_before_pixels=True, sop_class_uids=list(ACCEPTED_SOP_CLASSES))
    summary = summarize_dataset(ds, source=str(path))
    if not summary.sop_instance_uid:
        raise InputError("no SOP Instance UID", source=str(path), field="SOPInstanceUID")
    return summary


# --------------------------------------------------------------------------------------
# The SCP
# --------------------------------------------------------------------------------------

OnStored = Callable[[Path, ObjectSummary], None]


def no_delay(event) -> None:
    """Send each PDU at once (TCP_NODELAY).

    A C-STORE response is a small PDU written right after the peer's last data: with
    Nagle's algorithm on both ends it waits for the peer's delayed acknowledgement (tens of
    milliseconds on Linux), which would dominate the time per object.
    """
    sock = getattr(getattr(event.assoc.dul, "socket", None), "socket", None)
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass  # not TCP (cannot happen with pynetdicom) or already closed


def storage_ae(ae_title: str):
    """A pynetdicom AE offering the accepted storage classes in the accepted transfer
    syntaxes, with no limit on the PDUs it receives (the node's, and its benchmark peer's)."""
    from pynetdicom import AE

    ae = AE(ae_title=ae_title)
    for sop_class in ACCEPTED_SOP_CLASSES:
        ae.add_supported_context(sop_class, list(ACCEPTED_TRANSFER_SYNTAXES))
    ae.maximum_pdu_size = 0
    return ae


class StorageSCP:
    """The Storage SCP: start, receive in background threads, stop.

    Parameters
    ----------
    config
        Node settings.
    on_stored
        Called as ``on_stored(path, summary)`` after each newly spooled object (also for a
        conflict, not for a duplicate).  An exception in it is logged and the object stays
        in the spool (the queue) for a later :func:`spooled_objects` scan; the sender still
        gets success because the object is safely stored.
    """

    def __init__(self, config: NodeConfig, on_stored: OnStored | None = None) -> None:
        self.config = config
        self.on_stored = on_stored
        self._arrivals: dict[str, float] = {}
        self._lock = threading.Lock()
        self._server = None
        self.counts = {"stored": 0, "duplicate": 0, "conflict": 0, "refused": 0}

    # -- lifecycle --
    def start(self) -> int:
        """Clean the spool of temporaries, bind and serve in the background; return the port."""
        from pynetdicom import evt

        spool = Path(self.config.spool)
        spool.mkdir(parents=True, exist_ok=True)
        for leftover in spool.glob(f"{_TMP_PREFIX}*"):
            LOG.warning("removed incomplete temporary file %s (an interrupted write)", leftover)
            leftover.unlink(missing_ok=True)
        ae = storage_ae(self.config.ae_title)
        handlers = [
            (evt.EVT_CONN_OPEN, no_delay),
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_ACCEPTED, self._on_accepted),
            (evt.EVT_REJECTED, self._on_rejected),
            (evt.EVT_ABORTED, self._on_aborted),
            (evt.EVT_C_STORE, self._on_c_store),
        ]
        if not self.config.allowed:
            LOG.warning("no allowed peers configured: any calling AE title may store")
        try:
            self._server = ae.start_server(
                (self.config.host, self.config.port), block=False, evt_handlers=handlers
            )
        except OSError as error:
            raise InputError(
                f"cannot listen on {self.config.host}:{self.config.port} ({error.strerror or error})",
                source="--port",
            ) from None
        port = self._server.server_address[1]
        LOG.info(
            "listening as %s on %s:%d, spool %s",
            self.config.ae_title,
            self.config.host,
            port,
            spool,
        )
        return port

    def stop(self) -> None:
        """Stop accepting new associations."""
        if self._server is not None:
            self._server.shutdown()
            self._server = None
            LOG.info("stopped")

    def last_arrivals(self) -> dict[str, float]:
        """Study Instance UID -> time.monotonic() of its latest stored object."""
        with self._lock:
            return dict(self._arrivals)

    def mark_arrived(self, study_uids: list[str]) -> None:
        """Count studies as just received (objects spooled before a restart, so that they
        are grouped once idle like new ones)."""
        now = time.monotonic()
        with self._lock:
            for uid in study_uids:
                self._arrivals[uid] = now

    def forget_studies(self, study_uids: list[str]) -> None:
        """Drop studies from the arrival table (after they have been grouped)."""
        with self._lock:
            for uid in study_uids:
                self._arrivals.pop(uid, None)

    # -- handlers --
    @staticmethod
    def _peer(event) -> tuple[str, str]:
        requestor = event.assoc.requestor
        # At EVT_REQUESTED only the received A-ASSOCIATE-RQ primitive knows the calling AE.
        primitive = requestor.primitive
        ae = getattr(primitive, "calling_ae_title", None) or requestor.ae_title
        return str(ae).strip(), str(requestor.address)

    def _on_requested(self, event) -> None:
        ae, host = self._peer(event)
        allowed = self.config.allowed
        if not allowed or any(p.matches(ae, host) for p in allowed):
            return
        known_ae = any(p.ae_title == ae for p in allowed)
        # PS3.8 Table 9-21: reason 3 = calling-AE-title-not-recognized, 1 = no-reason-given.
        why = (
            f"host {host} is not allowed for {ae}"
            if known_ae
            else f"unknown calling AE title {ae!r}"
        )
        LOG.warning("refused association from %s@%s: %s", ae, host, why)
        event.assoc.acse.send_reject(0x01, 0x01, 0x01 if known_ae else 0x03)
        event.assoc.kill()  # as pynetdicom does after its own rejections: flushes the A-ASSOCIATE-RJ

    def _on_accepted(self, event) -> None:
        ae, host = self._peer(event)
        LOG.info("accepted association from %s@%s", ae, host)
        # Senders often propose every storage class they know (dcmtk's storescu ~120): one
        # line per association, naming only classes refused in every context proposed.
        usable = {cx.abstract_syntax for cx in event.assoc.accepted_contexts}
        refused = {cx.abstract_syntax for cx in event.assoc.rejected_contexts} - usable
        for reason, uids in (
            ("SOP class not accepted", sorted(refused - set(ACCEPTED_SOP_CLASSES))),
            ("lossy or unknown transfer syntax", sorted(refused & set(ACCEPTED_SOP_CLASSES))),
        ):
            if uids:
                names = [ACCEPTED_SOP_CLASSES.get(u) or _uid.UID(u).name for u in uids]
                more = f" and {len(names) - 8} more" if len(names) > 8 else ""
                LOG.warning(
                    "refused presentation contexts from %s@%s (%s): %s%s",
                    ae,
                    host,
                    reason,
                    ", ".join(names[:8]),
                    more,
                )

    def _on_rejected(self, event) -> None:
        ae, host = self._peer(event)
        LOG.warning("rejected association from %s@%s", ae, host)

    def _on_aborted(self, event) -> None:
        ae, host = self._peer(event)
        LOG.warning(
            "association from %s@%s aborted: objects not completely received were discarded",
            ae,
            host,
        )

    def _refuse(self, status: int, ae: str, host: str, sop: str, why: str) -> int:
        with self._lock:
            self.counts["refused"] += 1
        LOG.warning(
            "refused C-STORE of %s from %s@%s: 0x%04X %s", sop or "?", ae, host, status, why
        )
        return status

    def _on_c_store(self, event) -> int:
        ae, host = self._peer(event)
        request = event.request
        sop_uid = str(request.AffectedSOPInstanceUID or "")
        sop_class = str(request.AffectedSOPClassUID or "")
        if sop_class not in ACCEPTED_SOP_CLASSES:  # cannot happen: its context was refused
            return self._refuse(0x0122, ae, host, sop_uid, "SOP class not supported")
        try:
            ds = event.dataset
            ds_uid, ds_class = _s(ds, "SOPInstanceUID"), _s(ds, "SOPClassUID")
        except Exception as error:  # pydicom raises many types on a corrupt stream
            return self._refuse(
                STATUS_CANNOT_UNDERSTAND, ae, host, sop_uid, f"data set not parsable ({error})"
            )
        if ds_uid != sop_uid or ds_class != sop_class:
            return self._refuse(
                STATUS_DATASET_MISMATCH,
                ae,
                host,
                sop_uid,
                f"data set has SOP Class/Instance {ds_class}/{ds_uid}, the request {sop_class}/{sop_uid}",
            )
        try:
            # from the data set already parsed in memory: re-reading the written file with
            # the hardened reader would double the time per object; grouping and
            # registration read the spool file with it (summarize_file) anyway
            summary = summarize_dataset(ds)
            data = event.encoded_dataset()
            path, outcome = spool_bytes(Path(self.config.spool), sop_uid, data)
        except InputError as error:
            return self._refuse(STATUS_CANNOT_UNDERSTAND, ae, host, sop_uid, str(error))
        except OSError as error:
            return self._refuse(
                STATUS_OUT_OF_RESOURCES, ae, host, sop_uid, f"cannot write the spool ({error})"
            )
        summary = dataclasses.replace(summary, source=str(path))
        with self._lock:
            self.counts[outcome] += 1
            self._arrivals[summary.study_uid] = time.monotonic()
        if outcome == SpoolOutcome.DUPLICATE:
            LOG.info(
                "duplicate %s %s from %s@%s (identical, kept once)",
                summary.modality,
                sop_uid,
                ae,
                host,
            )
            return STATUS_SUCCESS
        if outcome == SpoolOutcome.CONFLICT:
            LOG.warning(
                "conflict: %s %s from %s@%s differs from the object already spooled under this "
                "UID; kept beside it as %s for a person to resolve",
                summary.modality,
                sop_uid,
                ae,
                host,
                path.name,
            )
        else:
            LOG.info("stored %s %s from %s@%s", summary.modality, sop_uid, ae, host)
        if self.on_stored is not None:
            try:
                self.on_stored(path, summary)
            except Exception:
                LOG.exception(
                    "on_stored failed for %s: it stays in the spool for a later scan", path
                )
        return STATUS_SUCCESS
