"""DICOM de-identification: PS3.15 Annex E Basic Application Level Confidentiality Profile on the
header, Tesseract on the pixels for burned-in text.

Header: every attribute of the profile's table gets its action (X remove, Z empty, D dummy value,
U UID remapped through a keyed hash, so that study/series/instance links and references stay
consistent across the files of a run); sequences are walked; private tags, overlays and curves
are dropped; any person name, date or time the table does not list goes too. PatientIdentityRemoved
and DeidentificationMethod(CodeSequence) record what was done.

Pixels: the first frame is rendered to 8 bits; every text region found in it (Tesseract in several
views and modes, widened to the glyph lines it sits on) is painted out on every frame, PHI or not.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import BaseTag

from medcurate.privacy.config import DeidConfig
from medcurate.privacy.images import box_mask, extend_to_lines, find_text, glyph_lines, text_boxes
from medcurate.privacy.operators import pseudonym_uid

if TYPE_CHECKING:
    from PIL import Image

    from medcurate.privacy.text import TextDeidentifier

# pydicom warnings and log lines quote header values.
logging.getLogger("pydicom").setLevel(logging.CRITICAL)

# PS3.15 Table E.1-1, Basic Profile column. Combined actions are resolved to the stricter one
# that still keeps the file valid: "Z/D" -> Z, "X/Z", "X/D", "X/Z/D" -> X; "X/Z/U*" sequences
# are kept and walked (their UIDs are remapped). Two additions: RequestedProcedureCodeSequence and
# PerformedProtocolCodeSequence, whose code meanings are often the (removed) descriptions typed at
# the RIS.
BASIC_PROFILE = """
AccessionNumber Z
AcquisitionComments X
AcquisitionContextSequence X
AcquisitionDate X
AcquisitionDateTime X
AcquisitionDeviceProcessingDescription X
AcquisitionProtocolDescription X
AcquisitionTime X
ActualHumanPerformersSequence X
AdditionalPatientHistory X
AdmissionID X
AdmittingDate X
AdmittingDiagnosesCodeSequence X
AdmittingDiagnosesDescription X
AdmittingTime X
AffectedSOPInstanceUID X
Allergies X
Arbitrary X
AuthorObserverSequence X
BranchOfService X
CassetteID X
CommentsOnThePerformedProcedureStep X
ConcatenationUID U
ConfidentialityConstraintOnPatientDataDescription X
ConsultingPhysicianName X
ConsultingPhysicianIdentificationSequence X
ContentCreatorName Z
ContentCreatorIdentificationCodeSequence X
ContentDate Z
ContentSequence X
ContentTime Z
ContextGroupExtensionCreatorUID U
ContrastBolusAgent Z
ContributionDescription X
CountryOfResidence X
CreatorVersionUID U
CurrentPatientLocation X
CurveDate X
CurveTime X
CustodialOrganizationSequence X
DataSetTrailingPadding X
Date X
DateOfLastCalibration X
DateOfSecondaryCapture X
DateTime X
DerivationDescription X
DetectorID X
DeviceSerialNumber X
DeviceUID U
DeviceDescription X
DigitalSignatureUID X
DigitalSignaturesSequence X
DimensionOrganizationUID U
DischargeDiagnosisDescription X
DistributionAddress X
DistributionName X
DoseReferenceUID U
EthnicGroup X
FailedSOPInstanceUIDList U
FiducialUID U
FillerOrderNumberImagingServiceRequest Z
FrameComments X
FrameOfReferenceUID U
GantryID X
GeneratorID X
HumanPerformerName X
HumanPerformerOrganization X
IconImageSequence X
IdentifyingComments X
ImageComments X
ImagePresentationComments X
ImagingServiceRequestComments X
Impressions X
InstanceCoercionDateTime X
InstanceCreationDate X
InstanceCreationTime X
InstanceCreatorUID U
InstitutionAddress X
InstitutionCodeSequence X
InstitutionName X
InstitutionalDepartmentName X
InstitutionalDepartmentTypeCodeSequence X
InsurancePlanIdentification X
IntendedRecipientsOfResultsIdentificationSequence X
InterpretationApproverSequence X
InterpretationAuthor X
InterpretationDiagnosisDescription X
InterpretationIDIssuer X
InterpretationRecorder X
InterpretationText X
InterpretationTranscriber X
IrradiationEventUID U
IssuerOfAdmissionID X
IssuerOfPatientID X
IssuerOfServiceEpisodeID X
LargePaletteColorLookupTableUID U
LastMenstrualDate X
MAC X
MediaStorageSOPInstanceUID U
MedicalAlerts X
MedicalRecordLocator X
MilitaryRank X
ModifiedAttributesSequence X
ModifiedImageDescription X
ModifyingDeviceID X
ModifyingDeviceManufacturer X
NameOfPhysiciansReadingStudy X
NamesOfIntendedRecipientsOfResults X
NetworkID X
ObservationDateTime X
ObservationUID U
Occupation X
OperatorIdentificationSequence X
OperatorsName X
OrderCallbackPhoneNumber X
OrderEnteredBy X
OrderEntererLocation X
OriginalAttributesSequence X
OtherPatientIDs X
OtherPatientIDsSequence X
OtherPatientNames X
OverlayDate X
OverlayTime X
ParticipantSequence X
PatientAddress X
PatientAge X
PatientBirthDate Z
PatientBirthName X
PatientBirthTime X
PatientComments X
PatientID Z
PatientInstitutionResidence X
PatientInsurancePlanCodeSequence X
PatientMotherBirthName X
PatientName Z
PatientPrimaryLanguageCodeSequence X
PatientPrimaryLanguageModifierCodeSequence X
PatientReligiousPreference X
PatientSex Z
PatientSexNeutered X
PatientSize X
PatientState X
PatientTelephoneNumbers X
PatientTransportArrangements X
PatientWeight X
PerformedLocation X
PerformedProcedureStepDescription X
PerformedProcedureStepEndDate X
PerformedProcedureStepEndTime X
PerformedProcedureStepID X
PerformedProcedureStepStartDate X
PerformedProcedureStepStartTime X
PerformedProtocolCodeSequence X
PerformedStationAETitle X
PerformedStationGeographicLocationCodeSequence X
PerformedStationName X
PerformedStationNameCodeSequence X
PerformingPhysicianIdentificationSequence X
PerformingPhysicianName X
PersonAddress X
PersonIdentificationCodeSequence X
PersonName D
PersonTelephoneNumbers X
PhysicianApprovingInterpretation X
PhysiciansOfRecord X
PhysiciansOfRecordIdentificationSequence X
PhysiciansReadingStudyIdentificationSequence X
PlacerOrderNumberImagingServiceRequest Z
PlateID X
PreMedication X
PregnancyStatus X
ProcedureCodeSequence X
ProtocolName X
ReasonForStudy X
ReasonForTheImagingServiceRequest X
ReferencedDateTime X
ReferencedDigitalSignatureSequence X
ReferencedFrameOfReferenceUID U
ReferencedGeneralPurposeScheduledProcedureStepTransactionUID U
ReferencedPatientAliasSequence X
ReferencedPatientSequence X
ReferencedPerformedProcedureStepSequence X
ReferencedStudySequence X
ReferencedSOPInstanceMACSequence X
ReferencedSOPInstanceUID U
ReferencedSOPInstanceUIDInFile U
ReferringPhysicianAddress X
ReferringPhysicianIdentificationSequence X
ReferringPhysicianName Z
ReferringPhysicianTelephoneNumbers X
RegionOfResidence X
RelatedFrameOfReferenceUID U
RequestAttributesSequence X
RequestedContrastAgent X
RequestedProcedureCodeSequence X
RequestedProcedureComments X
RequestedProcedureDescription X
RequestedProcedureID X
RequestedProcedureLocation X
RequestedSOPInstanceUID U
RequestingPhysician X
RequestingService X
ResponsibleOrganization X
ResponsiblePerson X
ResultsComments X
ResultsDistributionListSequence X
ResultsIDIssuer X
RetrieveAETitle X
ReviewerName X
ScheduledHumanPerformersSequence X
ScheduledPatientInstitutionResidence X
ScheduledPerformingPhysicianIdentificationSequence X
ScheduledPerformingPhysicianName X
ScheduledProcedureStepDescription X
ScheduledProcedureStepEndDate X
ScheduledProcedureStepEndTime X
ScheduledProcedureStepLocation X
ScheduledProcedureStepStartDate X
ScheduledProcedureStepStartTime X
ScheduledStationAETitle X
ScheduledStationGeographicLocationCodeSequence X
ScheduledStationName X
ScheduledStationNameCodeSequence X
ScheduledStudyLocation X
ScheduledStudyLocationAETitle X
SeriesDate X
SeriesDescription X
SeriesInstanceUID U
SeriesTime X
ServiceEpisodeDescription X
ServiceEpisodeID X
SmokingStatus X
SOPInstanceUID U
SourceApplicationEntityTitle X
SpecialNeeds X
StationName X
StorageMediaFileSetUID U
StudyComments X
StudyDate Z
StudyDescription X
StudyID Z
StudyIDIssuer X
StudyInstanceUID U
StudyTime Z
SynchronizationFrameOfReferenceUID U
TemplateExtensionCreatorUID U
TemplateExtensionOrganizationUID U
TextComments X
TextString X
Time X
TimeOfLastCalibration X
TimeOfSecondaryCapture X
TimezoneOffsetFromUTC X
TopicAuthor X
TopicKeywords X
TopicSubject X
TopicTitle X
TransactionUID U
UID U
VerifyingObserverIdentificationCodeSequence Z
VerifyingObserverName D
VerifyingObserverSequence D
VerifyingOrganization X
VisitComments X
ClinicalTrialSponsorName D
ClinicalTrialProtocolID D
ClinicalTrialProtocolName Z
ClinicalTrialSiteID Z
ClinicalTrialSiteName Z
ClinicalTrialSubjectID Z
ClinicalTrialSubjectReadingID Z
ClinicalTrialTimePointID Z
ClinicalTrialTimePointDescription X
ClinicalTrialCoordinatingCenterName Z
ClinicalTrialSeriesID X
ClinicalTrialSeriesDescription X
ClinicalTrialProtocolEthicsCommitteeName D
ClinicalTrialProtocolEthicsCommitteeApprovalNumber X
"""
ACTIONS: dict[BaseTag, str] = {}
for _line in BASIC_PROFILE.strip().splitlines():
    _keyword, _action = _line.split()
    _tag = tag_for_keyword(_keyword)
    if _tag is None:
        raise ValueError(f"unknown DICOM keyword in the profile table: {_keyword}")
    ACTIONS[BaseTag(_tag)] = _action
# Overlays (60xx) and curves (50xx) can carry text and drawings: the profile removes them.
_REPEATING_GROUPS = ((0x5000, 0x50FF), (0x6000, 0x60FF))
_DUMMY = {"PN": "ANONYMOUS", "DA": "19000101", "TM": "000000", "DT": "19000101000000"}
# Value representations that can hold identifying text (CS holds enumerations such as "YES").
_TEXT_VRS = frozenset({"PN", "LO", "SH", "LT", "ST", "UT", "AE", "DA", "DT", "TM", "AS", "UC", "UI"})


@dataclass
class DicomResult:
    dataset: Dataset
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)
    ocr: str = "not_run"


class DicomDeidentifier:
    """Header profile plus burned-in text; UIDs map the same way for every file it sees."""

    def __init__(self, config: DeidConfig | None = None, text: TextDeidentifier | None = None) -> None:
        self.config = config or DeidConfig()
        self.text = text

    def deidentify(self, dataset: Dataset) -> DicomResult:
        """A de-identified copy of `dataset` (which is left as it was)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom's warnings can quote header values
            return self._deidentify(dataset)

    def _deidentify(self, dataset: Dataset) -> DicomResult:
        out = _copy(dataset)
        self.scrub(out)
        if "PixelData" not in out:
            return DicomResult(out, ocr="no_pixels")
        if not self.config.ocr:
            return DicomResult(out)
        try:
            frames = _frames(out)
            boxes = burned_in_boxes(_render(frames[0]))
        except Exception as error:  # undecodable pixels or Tesseract failing: reported, not hidden
            return DicomResult(out, ocr=f"failed:{type(error).__name__}")
        if boxes:
            _paint(out, frames, boxes)
        out.BurnedInAnnotation = "NO"
        _add_method_code(out, "113101", "Clean Pixel Data Option")
        return DicomResult(out, boxes, "checked")

    def scrub(self, dataset: Dataset) -> None:
        """Annex E Basic Profile in place, file meta included."""
        dataset.remove_private_tags()
        self._walk(dataset)
        if hasattr(dataset, "file_meta"):
            self._walk(dataset.file_meta)  # the instance UID again, the sending AE title
        dataset.PatientIdentityRemoved = "YES"
        dataset.DeidentificationMethod = "PS3.15 E Basic Application Confidentiality Profile (medcurate)"
        _add_method_code(dataset, "113100", "Basic Application Confidentiality Profile")

    def _walk(self, dataset: Dataset) -> None:
        for element in list(dataset):
            tag = element.tag
            action = ACTIONS.get(tag)
            if action is None and (
                any(low <= tag.group <= high for low, high in _REPEATING_GROUPS)
                or element.VR in ("PN", "DA", "DT")
            ):
                action = "X"  # names and dates the table does not list, overlays and curves
            if element.VR == "SQ" and action not in ("X", "Z"):
                for item in element.value:
                    self._walk(item)
                continue
            if action == "X":
                del dataset[tag]
            elif action == "Z":
                element.value = DicomSequence() if element.VR == "SQ" else ""
            elif action == "D":
                element.value = _DUMMY.get(element.VR, "ANONYMIZED")
            elif action == "U" or (element.VR == "UI" and tag != 0x00080016 and _is_instance_uid(element)):
                element.value = _remap(self.config, element.value)


def _is_instance_uid(element: Any) -> bool:
    """UIDs that name data (not SOP classes or transfer syntaxes) are remapped wherever they sit."""
    return element.keyword.endswith("InstanceUID") or element.keyword.endswith("ReferenceUID")


def _remap(config: DeidConfig, value: Any) -> Any:
    if isinstance(value, (list, MultiValue)):
        return [pseudonym_uid(config, str(v)) for v in value]
    return pseudonym_uid(config, str(value)) if value else value


def _add_method_code(dataset: Dataset, code: str, meaning: str) -> None:
    item = Dataset()
    item.CodeValue = code
    item.CodingSchemeDesignator = "DCM"
    item.CodeMeaning = meaning
    sequence = dataset.get("DeidentificationMethodCodeSequence") or DicomSequence()
    if all(existing.get("CodeValue") != code for existing in sequence):
        sequence.append(item)
    dataset.DeidentificationMethodCodeSequence = sequence


def _copy(dataset: Dataset) -> Dataset:
    return copy.deepcopy(dataset)


def header_values(dataset: Dataset) -> set[str]:
    """Every value of a profile-listed or private text attribute, with names split in their parts."""
    values: set[str] = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's warnings can quote header values
        elements = list(dataset.iterall())
    for element in elements:
        listed = element.tag in ACTIONS or element.tag.is_private or element.VR == "PN"
        if not listed or element.VR not in _TEXT_VRS or element.value in (None, ""):
            continue
        items = element.value if isinstance(element.value, (list, MultiValue)) else [element.value]
        for item in items:
            text = str(item).strip()
            parts = [text, *re.split(r"[\^=\s]+", text)] if element.VR == "PN" else [text]
            values.update(p.strip() for p in parts if len(p.strip()) >= 3)
    if hasattr(dataset, "file_meta"):
        values.add(str(dataset.file_meta.get("MediaStorageSOPInstanceUID", "")))
    values.discard("")
    return values


def burned_in_boxes(rendered: Image.Image) -> list[tuple[int, int, int, int]]:
    """Every text region of a rendered frame, PHI-classified or not: burned-in annotation in a DICOM
    carries PHI by default (PS3.15 E, Burned In Annotation), and a banner's name, sex or ID can read
    as harmless on its own."""
    words = text_boxes(find_text(rendered))
    return extend_to_lines(words, glyph_lines(np.asarray(rendered.convert("L")))) if words else []


def _frames(dataset: Dataset) -> np.ndarray:
    """All frames as (frames, rows, columns[, samples]), in RGB where the source was YBR."""
    from pydicom.pixels import convert_color_space

    array = dataset.pixel_array
    frames = int(dataset.get("NumberOfFrames") or 1)
    if frames == 1:
        array = array[np.newaxis]
    if str(dataset.get("PhotometricInterpretation", "")).startswith("YBR"):
        array = convert_color_space(array, str(dataset.PhotometricInterpretation), "RGB")
    return array


def _render(frame: np.ndarray) -> Image.Image:
    """8-bit rendering for OCR: min-max stretch, so that dim overlays on 16-bit data stay legible."""
    from PIL import Image

    values = frame.astype(np.float32)
    low, high = float(values.min()), float(values.max())
    scaled = ((values - low) * (255.0 / (high - low or 1.0))).astype(np.uint8)
    return Image.fromarray(scaled, "RGB" if scaled.ndim == 3 else "L")


def _paint(dataset: Dataset, frames: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> None:
    """Boxes filled with the darkest value on every frame; the result is stored uncompressed."""
    painted = frames.copy()
    mask = np.array(box_mask((frames.shape[2], frames.shape[1]), boxes)) > 0
    painted[:, mask] = frames.min()
    photometric = "RGB" if painted.ndim == 4 else str(dataset.PhotometricInterpretation)
    data = painted if int(dataset.get("NumberOfFrames") or 1) > 1 else painted[0]
    bits = int(dataset.get("BitsStored") or data.dtype.itemsize * 8)
    dataset.set_pixel_data(data, photometric, bits, generate_instance_uid=False)


def deidentify_tree(
    source: Path, target: Path, deidentifier: DicomDeidentifier | None = None
) -> tuple[int, int]:
    """Every DICOM file under `source` (or `source` itself) to the same relative path under `target`,
    plus `target/redactions.jsonl` ({file, boxes, ocr}); returns (written, unreadable)."""
    if deidentifier is None:
        from medcurate.privacy.text import TextDeidentifier

        config = DeidConfig()
        deidentifier = DicomDeidentifier(config, TextDeidentifier(config))
    target.mkdir(parents=True, exist_ok=True)
    written = failed = 0
    with (target / "redactions.jsonl").open("w", encoding="utf-8") as log:
        root = source.parent if source.is_file() else source
        files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
        for path in files:
            relative = path.relative_to(root)
            if relative == Path("redactions.jsonl"):
                continue
            dataset = _read(path)
            if dataset is None:
                failed += path.suffix.lower() in (".dcm", ".dicom")
                continue
            try:
                result = deidentifier.deidentify(dataset)
            except Exception:  # a malformed header: counted, never written half-scrubbed
                failed += 1
                continue
            out = target / relative
            out.parent.mkdir(parents=True, exist_ok=True)
            result.dataset.save_as(out, enforce_file_format=True)
            log.write(
                json.dumps({"file": relative.as_posix(), "boxes": result.boxes, "ocr": result.ocr}) + "\n"
            )
            written += 1
    return written, failed


def _read(path: Path) -> Dataset | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pydicom.dcmread(path)
    except (InvalidDicomError, OSError, ValueError, EOFError):
        return None


def header_phi_values(source: Path, target: Path) -> tuple[int, int]:
    """(surviving, total): each original file's header PHI values searched in its output's bytes as
    whole tokens ("MARY" inside "PRIMARY" is no leak), as written and upper-cased."""
    survived = total = 0
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        dataset = _read(path)
        out = target / path.relative_to(source)
        if dataset is None or not out.exists():
            continue
        data = out.read_bytes()
        for value in header_values(dataset):
            total += 1
            forms = {value.encode("latin-1", "replace"), value.upper().encode("latin-1", "replace")}
            survived += any(
                re.search(rb"(?<![A-Za-z0-9_])" + re.escape(form) + rb"(?![A-Za-z0-9_])", data)
                for form in forms
            )
    return survived, total
